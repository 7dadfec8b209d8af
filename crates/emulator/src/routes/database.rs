//! The Lakebase control plane (`shared/UPSTREAM.md` §4.5): database credentials for Provisioned
//! instances and Autoscaling endpoints, and instance get and list. Autoscaling's projects,
//! branches and endpoints are `routes::autoscaling`; a credential's endpoint must exist there.
//!
//! Credentials are JWT-shaped tokens minted for the caller (`sub` = its user name or application
//! id) with the `lakebase` audience; they authenticate against the workspace APIs like any minted
//! token. When the emulator has a Postgres backend, the Lakebase front (`pgfront`) accepts them as
//! passwords of the caller's role, host names in instances and endpoints become the front's host,
//! the caller's role is made ready before the credential is handed out (so a role that cannot
//! exist fails here, with the reason), and a credential for an Autoscaling endpoint opens its
//! branch's database.
//!
//! Lifetimes: Provisioned credentials live `db_token_ttl_secs` (an hour by default). Autoscaling
//! credentials take `ttl` (`"3600s"`) or `expire_time` (RFC 3339), which must give 300 to 3600
//! seconds; without either they live `db_token_ttl_secs` too, so tests can make them short.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Authenticated;
use crate::autoscaling;
use crate::error::ApiError;
use crate::fixture::DatabaseInstance;
use crate::routes::{JsonBody, QueryParams, page_of};
use crate::state::{Emulator, Principal, lock};

/// Bounds of an Autoscaling credential's requested lifetime, in seconds.
const MIN_TTL_SECS: i64 = 300;
const MAX_TTL_SECS: i64 = 3600;
/// Longest lifetime `db_token_ttl_secs` may give (a century), so expiry times stay representable.
const MAX_SETTING_TTL_SECS: i64 = 100 * 365 * 24 * 3600;
/// Fixture instances carry no creation time; a fixed one keeps answers deterministic.
const CREATION_TIME: &str = "2025-01-01T00:00:00Z";
/// Point-in-time recovery window the real service defaults to.
const RETENTION_DAYS: u32 = 7;

pub(super) fn router() -> Router<Emulator> {
    Router::new()
        .route("/api/2.0/database/credentials", post(database_credential))
        .route("/api/2.0/database/instances", get(list_instances))
        .route("/api/2.0/database/instances/{name}", get(get_instance))
        .route("/api/2.0/postgres/credentials", post(postgres_credential))
}

/// `GenerateDatabaseCredentialRequest`; `request_id` is accepted and ignored.
#[derive(Deserialize)]
struct DatabaseCredentialRequest {
    #[serde(default)]
    instance_names: Vec<String>,
    #[serde(default)]
    claims: Vec<Value>,
}

async fn database_credential(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    JsonBody(request): JsonBody<DatabaseCredentialRequest>,
) -> Result<Json<Value>, ApiError> {
    if request.instance_names.is_empty() && request.claims.is_empty() {
        return Err(ApiError::bad_request(
            "At least one of instance_names or claims must be provided.",
        ));
    }
    for name in &request.instance_names {
        if instance(&emulator, name).is_none() {
            return Err(instance_not_found(name));
        }
    }
    let ttl = Duration::seconds(db_token_ttl(&emulator));
    let (token, expires_at) = issue(&emulator, &principal, ttl, None).await?;
    Ok(Json(json!({
        "token": token,
        "expiration_time": rfc3339(expires_at),
    })))
}

/// `GenerateCredentialRequest` of the Postgres (Autoscaling) API; `claims` are accepted and not
/// enforced (see `lakebase`).
#[derive(Deserialize)]
struct PostgresCredentialRequest {
    endpoint: Option<String>,
    /// A protobuf `Duration` in JSON: `"3600s"` (a number of seconds is accepted too).
    ttl: Option<Value>,
    expire_time: Option<String>,
}

async fn postgres_credential(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    JsonBody(request): JsonBody<PostgresCredentialRequest>,
) -> Result<Json<Value>, ApiError> {
    let name = request
        .endpoint
        .as_deref()
        .filter(|e| !e.is_empty())
        .ok_or_else(|| ApiError::bad_request("Missing required field: endpoint"))?;
    let (project, branch, endpoint) = parse_endpoint_name(name)?;
    if !lock(&emulator.autoscaling).endpoint_exists(project, branch, endpoint) {
        return Err(autoscaling::not_found("endpoint", name));
    }
    let ttl = match (request.ttl, request.expire_time) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "Only one of ttl and expire_time may be set.",
            ));
        }
        (Some(ttl), None) => requested_ttl(&ttl)?,
        (None, Some(at)) => requested_expiry(&at, Utc::now())?,
        (None, None) => Duration::seconds(db_token_ttl(&emulator)),
    };
    let branch = format!("projects/{project}/branches/{branch}");
    let (token, expires_at) = issue(&emulator, &principal, ttl, Some(branch)).await?;
    Ok(Json(json!({
        "token": token,
        "expire_time": rfc3339(expires_at),
    })))
}

/// Mints a database credential, after making the caller's role ready on the Postgres backend.
async fn issue(
    emulator: &Emulator,
    principal: &Principal,
    ttl: Duration,
    branch: Option<String>,
) -> Result<(String, DateTime<Utc>), ApiError> {
    if let Some(lakebase) = &emulator.lakebase
        && let Err(error) = lakebase.prepare_role(&principal.user_name).await
    {
        tracing::warn!(
            event = "lakebase.role_failed",
            role = %principal.user_name,
            error = %error
        );
        return Err(error.into());
    }
    Ok(emulator.mint_database_credential(principal, ttl, branch))
}

/// `db_token_ttl_secs`, capped so that no setting can overflow a timestamp.
fn db_token_ttl(emulator: &Emulator) -> i64 {
    i64::try_from(emulator.settings().db_token_ttl_secs)
        .unwrap_or(i64::MAX)
        .min(MAX_SETTING_TTL_SECS)
}

/// Parses `"3600s"` (or `"3600.5s"`, or a bare number) and checks the 300–3600 s bounds.
fn requested_ttl(ttl: &Value) -> Result<Duration, ApiError> {
    let invalid = || {
        ApiError::bad_request(format!(
            "Invalid ttl {ttl}: expected a duration in seconds such as \"3600s\"."
        ))
    };
    let seconds = match ttl {
        Value::String(text) => text
            .strip_suffix('s')
            .and_then(|n| n.parse::<f64>().ok())
            .ok_or_else(invalid)?,
        Value::Number(n) => n.as_f64().ok_or_else(invalid)?,
        _ => return Err(invalid()),
    };
    if !seconds.is_finite() {
        return Err(invalid());
    }
    let millis = (seconds * 1000.0).round();
    if millis < (MIN_TTL_SECS * 1000) as f64 || millis > (MAX_TTL_SECS * 1000) as f64 {
        return Err(ApiError::bad_request(format!(
            "ttl must be between {MIN_TTL_SECS}s and {MAX_TTL_SECS}s, got {ttl}."
        )));
    }
    // In range, so the cast cannot truncate.
    Ok(Duration::milliseconds(millis as i64))
}

/// Parses an RFC 3339 `expire_time` and checks that it lies 300–3600 s after `now`.
fn requested_expiry(at: &str, now: DateTime<Utc>) -> Result<Duration, ApiError> {
    let expire = DateTime::parse_from_rfc3339(at)
        .map_err(|e| ApiError::bad_request(format!("Invalid expire_time {at:?}: {e}.")))?
        .with_timezone(&Utc);
    let lifetime = expire - now;
    // Whole seconds, rounded: a client asking for "now + 300 s" loses a few milliseconds in
    // transit and must not be refused for it.
    let seconds = (lifetime.num_milliseconds() as f64 / 1000.0).round() as i64;
    if !(MIN_TTL_SECS..=MAX_TTL_SECS).contains(&seconds) {
        return Err(ApiError::bad_request(format!(
            "expire_time must be between {MIN_TTL_SECS} and {MAX_TTL_SECS} seconds from now."
        )));
    }
    Ok(lifetime)
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn instance<'a>(emulator: &'a Emulator, name: &str) -> Option<&'a DatabaseInstance> {
    emulator
        .fixture
        .database_instances
        .iter()
        .find(|i| i.name == name)
}

fn instance_not_found(name: &str) -> ApiError {
    ApiError::not_found(
        "RESOURCE_DOES_NOT_EXIST",
        format!("Database instance '{name}' does not exist."),
    )
}

async fn get_instance(
    State(emulator): State<Emulator>,
    Authenticated(_): Authenticated,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let found = instance(&emulator, &name).ok_or_else(|| instance_not_found(&name))?;
    Ok(Json(instance_json(&emulator, found)))
}

#[derive(Deserialize)]
struct ListQuery {
    page_size: Option<i64>,
    page_token: Option<String>,
}

async fn list_instances(
    State(emulator): State<Emulator>,
    Authenticated(_): Authenticated,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let items = (emulator.fixture.database_instances.iter())
        .map(|i| instance_json(&emulator, i))
        .collect();
    let body = page_of(
        "database_instances",
        items,
        query.page_size,
        query.page_token.as_deref(),
        &emulator.settings(),
    )?;
    Ok(Json(body))
}

/// A `DatabaseInstance` as the real service describes one (field names of §4.5).
fn instance_json(emulator: &Emulator, instance: &DatabaseInstance) -> Value {
    let host = emulator
        .lakebase
        .as_ref()
        .map_or(instance.read_write_dns.as_str(), |l| l.host());
    let stopped = instance.state == "STOPPED";
    let mut body = json!({
        "name": instance.name,
        "uid": instance.uid,
        "state": instance.state,
        "read_write_dns": host,
        "pg_version": instance.pg_version,
        "capacity": instance.capacity,
        "node_count": 1,
        "stopped": stopped,
        "enable_readable_secondaries": false,
        "enable_pg_native_login": false,
        "retention_window_in_days": RETENTION_DAYS,
        "creation_time": CREATION_TIME,
        "effective_capacity": instance.capacity,
        "effective_pg_version": instance.pg_version,
        "effective_node_count": 1,
        "effective_stopped": stopped,
        "effective_enable_readable_secondaries": false,
        "effective_enable_pg_native_login": false,
        "effective_retention_window_in_days": RETENTION_DAYS,
    });
    if let Some(creator) = creator(emulator) {
        body["creator"] = Value::String(creator.to_owned());
    }
    body
}

/// The fixture names no creator: the first workspace admin stands in, else the first user.
fn creator(emulator: &Emulator) -> Option<&str> {
    let users = &emulator.fixture.users;
    users
        .iter()
        .find(|u| u.groups.iter().any(|g| g == "admins"))
        .or_else(|| users.first())
        .map(|u| u.user_name.as_str())
}

/// Splits `projects/{p}/branches/{b}/endpoints/{e}`.
fn parse_endpoint_name(name: &str) -> Result<(&str, &str, &str), ApiError> {
    let parts: Vec<&str> = name.split('/').collect();
    match parts.as_slice() {
        ["projects", p, "branches", b, "endpoints", e]
            if !p.is_empty() && !b.is_empty() && !e.is_empty() =>
        {
            Ok((p, b, e))
        }
        _ => Err(ApiError::bad_request(format!(
            "Invalid endpoint {name:?}: expected projects/{{project}}/branches/{{branch}}/endpoints/{{endpoint}}."
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_accepts_protobuf_durations_within_bounds() {
        // Arrange
        let good = [json!("300s"), json!("3600s"), json!("1800.5s"), json!(600)];
        let bad = [
            json!("299s"),
            json!("3601s"),
            json!("60m"),
            json!("abc"),
            json!(true),
        ];

        // Act
        let good: Vec<_> = good.iter().map(requested_ttl).collect();
        let bad: Vec<_> = bad.iter().map(requested_ttl).collect();

        // Assert
        assert_eq!(good[0].as_ref().unwrap().num_seconds(), 300);
        assert_eq!(good[2].as_ref().unwrap().num_milliseconds(), 1_800_500);
        assert!(good.iter().all(Result::is_ok));
        assert!(bad.iter().all(Result::is_err));
    }

    #[test]
    fn expire_time_must_be_300_to_3600_seconds_ahead() {
        // Arrange
        let now = Utc::now();
        let at = |ms: i64| {
            (now + Duration::milliseconds(ms)).to_rfc3339_opts(SecondsFormat::Millis, true)
        };

        // Act / Assert
        assert!(requested_expiry(&at(299_995), now).is_ok());
        assert!(requested_expiry(&at(3_600_000), now).is_ok());
        assert!(requested_expiry(&at(290_000), now).is_err());
        assert!(requested_expiry(&at(3_601_000), now).is_err());
        assert!(requested_expiry("tomorrow", now).is_err());
    }

    #[test]
    fn endpoint_names_need_all_three_segments() {
        // Arrange / Act
        let ok = parse_endpoint_name("projects/p/branches/b/endpoints/e");

        // Assert
        assert_eq!(ok.unwrap(), ("p", "b", "e"));
        assert!(parse_endpoint_name("projects/p/branches/b").is_err());
        assert!(parse_endpoint_name("projects//branches/b/endpoints/e").is_err());
    }
}
