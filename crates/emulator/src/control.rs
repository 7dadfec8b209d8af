//! The `/_emulator/` control API, for tests and demos. It needs no token and is never subject to
//! faults or logged. `docs/emulator.md` documents each route:
//!
//! | route | what it does |
//! |---|---|
//! | `GET /_emulator/info` | base URL, workspace id, current settings |
//! | `GET`/`PUT /_emulator/config` | read / patch the run-time [`Settings`] (a partial JSON object) |
//! | `POST /_emulator/faults` | add a fault rule (see `faults`); returns its `id` |
//! | `GET`/`DELETE /_emulator/faults` | list rules with how often each fired / remove all |
//! | `DELETE /_emulator/faults/{id}` | remove one rule |
//! | `POST /_emulator/tokens` | mint a JWT-shaped token for a principal: `{"principal", "ttl_secs"}` |
//! | `POST /_emulator/tokens/expire` | `{"token"}`: the token is expired from now on (a Lakebase credential also stops logging in to Postgres) |
//! | `POST /_emulator/tokens/revoke` | `{"token"}`: the token is unknown from now on (likewise) |
//! | `GET`/`DELETE /_emulator/requests` | the request log (`?path_prefix=`, `?since=<seq>`) / clear it |
//! | `POST /_emulator/reset` | tokens, statements, faults, settings and log as at start |

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use chrono::Duration;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::faults::FaultSpec;
use crate::fixture::Settings;
use crate::routes::{JsonBody, QueryParams};
use crate::state::{Emulator, lock};

pub(crate) fn router() -> Router<Emulator> {
    Router::new()
        .route("/info", get(info))
        .route("/config", get(get_config).put(put_config))
        .route(
            "/faults",
            post(add_fault).get(list_faults).delete(clear_faults),
        )
        .route("/faults/{id}", delete(remove_fault))
        .route("/tokens", post(mint_token))
        .route("/tokens/expire", post(expire_token))
        .route("/tokens/revoke", post(revoke_token))
        .route("/requests", get(list_requests).delete(clear_requests))
        .route("/reset", post(reset))
}

async fn info(State(emulator): State<Emulator>) -> Json<Value> {
    Json(json!({
        "base_url": emulator.base_url,
        "workspace_id": emulator.fixture.workspace.workspace_id.to_string(),
        "lakebase_logins": emulator.lakebase.is_some(),
        "settings": emulator.settings(),
    }))
}

async fn get_config(State(emulator): State<Emulator>) -> Json<Settings> {
    Json(emulator.settings())
}

/// Merges a partial settings object into the current settings; unknown keys are refused.
async fn put_config(
    State(emulator): State<Emulator>,
    JsonBody(patch): JsonBody<serde_json::Map<String, Value>>,
) -> Result<Json<Settings>, ApiError> {
    let mut settings = lock(&emulator.settings);
    let mut merged =
        serde_json::to_value(&*settings).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let object = merged
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("settings"))?;
    for (key, value) in patch {
        if !object.contains_key(&key) {
            return Err(ApiError::bad_request(format!("unknown setting {key}")));
        }
        object.insert(key, value);
    }
    let updated: Settings =
        serde_json::from_value(merged).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if updated.default_page_size == 0 || updated.max_page_size == 0 || updated.sql_chunk_rows == 0 {
        return Err(ApiError::bad_request(
            "page sizes and sql_chunk_rows must be at least 1",
        ));
    }
    *settings = updated.clone();
    Ok(Json(updated))
}

async fn add_fault(
    State(emulator): State<Emulator>,
    JsonBody(spec): JsonBody<FaultSpec>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = lock(&emulator.faults).add(spec)?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))))
}

async fn list_faults(State(emulator): State<Emulator>) -> Json<Value> {
    Json(json!({ "faults": lock(&emulator.faults).list() }))
}

async fn clear_faults(State(emulator): State<Emulator>) -> StatusCode {
    lock(&emulator.faults).clear();
    StatusCode::NO_CONTENT
}

async fn remove_fault(
    State(emulator): State<Emulator>,
    Path(id): Path<u64>,
) -> Result<StatusCode, ApiError> {
    if lock(&emulator.faults).remove(id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(
            "RESOURCE_DOES_NOT_EXIST",
            format!("no fault rule {id}"),
        ))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MintRequest {
    principal: String,
    #[serde(default = "default_ttl")]
    ttl_secs: i64,
}

fn default_ttl() -> i64 {
    3600
}

async fn mint_token(
    State(emulator): State<Emulator>,
    JsonBody(request): JsonBody<MintRequest>,
) -> Result<Json<Value>, ApiError> {
    let principal = emulator
        .principals
        .get(&request.principal)
        .cloned()
        .ok_or_else(|| {
            ApiError::not_found(
                "RESOURCE_DOES_NOT_EXIST",
                format!("no principal {}", request.principal),
            )
        })?;
    let (token, expires_at) =
        emulator.mint_token(&principal, Duration::seconds(request.ttl_secs), "workspace");
    Ok(Json(
        json!({ "token": token, "expires_at": expires_at.to_rfc3339() }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    token: String,
}

async fn expire_token(
    State(emulator): State<Emulator>,
    JsonBody(request): JsonBody<TokenRequest>,
) -> Result<StatusCode, ApiError> {
    change_token(&emulator, &request.token, false).await
}

async fn revoke_token(
    State(emulator): State<Emulator>,
    JsonBody(request): JsonBody<TokenRequest>,
) -> Result<StatusCode, ApiError> {
    change_token(&emulator, &request.token, true).await
}

async fn change_token(
    emulator: &Emulator,
    token: &str,
    revoke: bool,
) -> Result<StatusCode, ApiError> {
    if !emulator.update_token(token, revoke) {
        return Err(ApiError::not_found(
            "RESOURCE_DOES_NOT_EXIST",
            "no such token",
        ));
    }
    // A Lakebase credential that is a role's password must stop opening Postgres sessions too.
    if let Some(lakebase) = &emulator.lakebase {
        lakebase.logins().await.expire(token).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct LogQuery {
    path_prefix: Option<String>,
    since: Option<u64>,
}

async fn list_requests(
    State(emulator): State<Emulator>,
    QueryParams(query): QueryParams<LogQuery>,
) -> Json<Value> {
    let log = lock(&emulator.log);
    let requests: Vec<_> = log
        .entries()
        .filter(|r| query.since.is_none_or(|s| r.seq > s))
        .filter(|r| {
            query
                .path_prefix
                .as_deref()
                .is_none_or(|p| r.path.starts_with(p))
        })
        .collect();
    Json(json!({ "requests": requests }))
}

async fn clear_requests(State(emulator): State<Emulator>) -> StatusCode {
    lock(&emulator.log).clear();
    StatusCode::NO_CONTENT
}

async fn reset(State(emulator): State<Emulator>) -> Result<StatusCode, ApiError> {
    emulator.reset();
    // Minted tokens are unknown after a reset, so none may remain a Postgres password.
    if let Some(lakebase) = &emulator.lakebase {
        lakebase.logins().await.expire_all().await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
