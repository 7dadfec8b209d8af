//! The Lakebase control plane (UPSTREAM §4.5): database credentials — the OAuth tokens that are
//! Postgres passwords — for Provisioned instances and Autoscaling endpoints, and the instance and
//! endpoint lookups that give the host to connect to. The store's token cache calls these as the
//! app (`Client::as_app`); it owns refreshing, this module only asks.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use reqwest::Method;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};

use super::encode_segment;
use crate::client::Workspace;
use crate::error::{DatabricksError, ErrorKind};
use crate::http::Operation;

// The `api`/`operation` names of this module's calls (see [`Operation`]).
const GENERATE_DATABASE_CREDENTIAL: Operation =
    Operation::new("database", "generate_database_credential");
const GET_DATABASE_INSTANCE: Operation = Operation::new("database", "get_database_instance");
const GENERATE_POSTGRES_CREDENTIAL: Operation =
    Operation::new("postgres", "generate_postgres_credential");
const GET_POSTGRES_ENDPOINT: Operation = Operation::new("postgres", "get_postgres_endpoint");
const LIST_POSTGRES_ENDPOINTS: Operation = Operation::new("postgres", "list_postgres_endpoints");

/// Pages of a branch's endpoints read at most; a branch has a handful of endpoints.
const MAX_ENDPOINT_PAGES: usize = 10;

/// A database credential: the token to use as the Postgres password, and its expiry.
#[derive(Clone)]
#[non_exhaustive]
pub struct DatabaseCredential {
    /// The token (a JWT); never logged.
    pub token: SecretString,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for DatabaseCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseCredential")
            .field("token", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A Lakebase Provisioned instance (`DatabaseInstance`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct DatabaseInstance {
    /// Name.
    pub name: String,
    /// Unique id.
    #[serde(default)]
    pub uid: Option<String>,
    /// `STARTING`, `AVAILABLE`, `STOPPED`, ...
    #[serde(default)]
    pub state: Option<String>,
    /// Host for read-write connections.
    #[serde(default)]
    pub read_write_dns: Option<String>,
    /// Host for read-only connections.
    #[serde(default)]
    pub read_only_dns: Option<String>,
    /// e.g. `PG_VERSION_16`.
    #[serde(default)]
    pub pg_version: Option<String>,
    /// e.g. `CU_1`.
    #[serde(default)]
    pub capacity: Option<String>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// A Lakebase Autoscaling endpoint.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct PostgresEndpoint {
    /// `projects/{p}/branches/{b}/endpoints/{e}`.
    pub name: String,
    /// Status with hosts.
    #[serde(default)]
    pub status: Option<EndpointStatus>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct EndpointPage {
    #[serde(default)]
    endpoints: Vec<PostgresEndpoint>,
    #[serde(default)]
    next_page_token: Option<String>,
}

impl PostgresEndpoint {
    /// Whether it is a read-write endpoint (its `status.endpoint_type` says `READ_WRITE`).
    #[must_use]
    pub fn is_read_write(&self) -> bool {
        self.status
            .as_ref()
            .and_then(|s| s.endpoint_type.as_deref())
            .is_some_and(|t| t.contains("READ_WRITE"))
    }

    /// The read-write host, if reported.
    #[must_use]
    pub fn host(&self) -> Option<&str> {
        self.status.as_ref()?.hosts.as_ref()?.host.as_deref()
    }
}

/// `status` of an endpoint.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct EndpointStatus {
    /// e.g. `ACTIVE`.
    #[serde(default)]
    pub current_state: Option<String>,
    /// `ENDPOINT_TYPE_READ_WRITE` or `ENDPOINT_TYPE_READ_ONLY`.
    #[serde(default)]
    pub endpoint_type: Option<String>,
    /// Host names.
    #[serde(default)]
    pub hosts: Option<EndpointHosts>,
}

/// `status.hosts` of an endpoint.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointHosts {
    /// Read-write host.
    #[serde(default)]
    pub host: Option<String>,
    /// Read-only host.
    #[serde(default)]
    pub read_only_host: Option<String>,
    /// Pooled read-write host.
    #[serde(default)]
    pub read_write_pooled_host: Option<String>,
    /// Pooled read-only host.
    #[serde(default)]
    pub read_only_pooled_host: Option<String>,
}

#[derive(Deserialize)]
struct ProvisionedCredential {
    token: SecretString,
    expiration_time: String,
}

#[derive(Deserialize)]
struct AutoscalingCredential {
    token: SecretString,
    expire_time: String,
}

fn parse_time(value: &str, what: &str) -> Result<DateTime<Utc>, DatabricksError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            DatabricksError::new(
                ErrorKind::Decode,
                format!("{what}: {value:?} is not an RFC 3339 time: {e}"),
            )
        })
}

impl Workspace<'_> {
    /// A credential for Lakebase Provisioned instances (`POST /api/2.0/database/credentials`
    /// with `instance_names` and a random `request_id`, as the SDK sends).
    ///
    /// ```no_run
    /// # async fn run(client: dbapp_databricks::Client) -> Result<(), dbapp_databricks::DatabricksError> {
    /// use secrecy::ExposeSecret;
    ///
    /// let credential = client.as_app().generate_database_credential(&["dev-lakebase"]).await?;
    /// let password = credential.token.expose_secret(); // the Postgres password, until expires_at
    /// # let _ = password; Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] for an unknown instance, [`ErrorKind::BadRequest`] for an empty
    /// list, auth, transport and 5xx kinds, [`ErrorKind::Decode`] for an unreadable expiry.
    #[tracing::instrument(skip_all, fields(instances = ?instance_names))]
    pub async fn generate_database_credential(
        &self,
        instance_names: &[&str],
    ) -> Result<DatabaseCredential, DatabricksError> {
        let body = json!({
            "instance_names": instance_names,
            "request_id": uuid::Uuid::new_v4().to_string(),
        });
        // The request id makes a repeat harmless, and a fresh credential is harmless anyway.
        let call = self
            .call(
                GENERATE_DATABASE_CREDENTIAL,
                Method::POST,
                "/api/2.0/database/credentials",
            )
            .json(body)
            .idempotent(true);
        let body: ProvisionedCredential = self.get_json(call, "database credential").await?;
        Ok(DatabaseCredential {
            expires_at: parse_time(&body.expiration_time, "database credential expiration_time")?,
            token: body.token,
        })
    }

    /// A credential for a Lakebase Autoscaling endpoint (`POST /api/2.0/postgres/credentials`),
    /// `endpoint` being `projects/{p}/branches/{b}/endpoints/{e}`; `ttl_secs` (300–3600) when
    /// given, else the service's default.
    ///
    /// # Errors
    /// As [`Workspace::generate_database_credential`].
    #[tracing::instrument(skip_all, fields(endpoint = %endpoint))]
    pub async fn generate_postgres_credential(
        &self,
        endpoint: &str,
        ttl_secs: Option<u32>,
    ) -> Result<DatabaseCredential, DatabricksError> {
        let mut body = json!({ "endpoint": endpoint });
        if let Some(ttl) = ttl_secs {
            body["ttl"] = json!(format!("{ttl}s"));
        }
        let call = self
            .call(
                GENERATE_POSTGRES_CREDENTIAL,
                Method::POST,
                "/api/2.0/postgres/credentials",
            )
            .json(body)
            .idempotent(true);
        let body: AutoscalingCredential = self.get_json(call, "postgres credential").await?;
        Ok(DatabaseCredential {
            expires_at: parse_time(&body.expire_time, "postgres credential expire_time")?,
            token: body.token,
        })
    }

    /// A Provisioned instance by name.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`], auth, transport and 5xx kinds.
    #[tracing::instrument(skip_all, fields(instance = %name))]
    pub async fn get_database_instance(
        &self,
        name: &str,
    ) -> Result<DatabaseInstance, DatabricksError> {
        let path = format!("/api/2.0/database/instances/{}", encode_segment(name));
        self.get_json(
            self.call(GET_DATABASE_INSTANCE, Method::GET, &path),
            "database instance",
        )
        .await
    }

    /// An Autoscaling endpoint by name (`projects/{p}/branches/{b}/endpoints/{e}`).
    ///
    /// # Errors
    /// [`ErrorKind::BadRequest`] for a malformed name; [`ErrorKind::NotFound`], auth,
    /// transport and 5xx kinds.
    #[tracing::instrument(skip_all, fields(endpoint = %name))]
    pub async fn get_postgres_endpoint(
        &self,
        name: &str,
    ) -> Result<PostgresEndpoint, DatabricksError> {
        let segments = resource_path(name, &["projects", "branches", "endpoints"])?;
        let path = format!("/api/2.0/postgres/{segments}");
        self.get_json(
            self.call(GET_POSTGRES_ENDPOINT, Method::GET, &path),
            "postgres endpoint",
        )
        .await
    }

    /// The endpoints of an Autoscaling branch (`projects/{p}/branches/{b}`), every page.
    ///
    /// # Errors
    /// [`ErrorKind::BadRequest`] for a malformed name; [`ErrorKind::NotFound`], auth,
    /// transport and 5xx kinds.
    #[tracing::instrument(skip_all, fields(branch = %branch))]
    pub async fn list_postgres_endpoints(
        &self,
        branch: &str,
    ) -> Result<Vec<PostgresEndpoint>, DatabricksError> {
        let segments = resource_path(branch, &["projects", "branches"])?;
        let path = format!("/api/2.0/postgres/{segments}/endpoints");
        let mut endpoints = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_ENDPOINT_PAGES {
            let mut call = self.call(LIST_POSTGRES_ENDPOINTS, Method::GET, &path);
            if let Some(token) = &token {
                call = call.query("page_token", token);
            }
            let page: EndpointPage = self.get_json(call, "postgres endpoints").await?;
            endpoints.extend(page.endpoints);
            token = page.next_page_token.filter(|t| !t.is_empty());
            if token.is_none() {
                break;
            }
        }
        Ok(endpoints)
    }

    /// The endpoint `name` stands for: an endpoint (`projects/{p}/branches/{b}/endpoints/{e}`)
    /// as it is, or a branch (`projects/{p}/branches/{b}`)'s read-write endpoint, the first its
    /// list reports, as databricks-ai-bridge's `LakebasePool` picks it (UPSTREAM-2 §6).
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] for a branch without a read-write endpoint; otherwise as
    /// [`Workspace::get_postgres_endpoint`] and [`Workspace::list_postgres_endpoints`].
    pub async fn find_postgres_endpoint(
        &self,
        name: &str,
    ) -> Result<PostgresEndpoint, DatabricksError> {
        if !is_postgres_branch(name) {
            return self.get_postgres_endpoint(name).await;
        }
        self.list_postgres_endpoints(name)
            .await?
            .into_iter()
            .find(PostgresEndpoint::is_read_write)
            .ok_or_else(|| {
                DatabricksError::new(
                    ErrorKind::NotFound,
                    format!("branch {name} has no read-write endpoint"),
                )
            })
    }
}

/// Whether `name` has the shape of an Autoscaling branch (`projects/{p}/branches/{b}`) rather
/// than of an endpoint.
#[must_use]
pub fn is_postgres_branch(name: &str) -> bool {
    resource_path(name, &["projects", "branches"]).is_ok()
}

/// `name`'s segments, percent-encoded and joined, when it is `{kinds[0]}/{id}/{kinds[1]}/{id}…`
/// with no empty id; [`ErrorKind::BadRequest`] naming the expected shape otherwise.
fn resource_path(name: &str, kinds: &[&str]) -> Result<String, DatabricksError> {
    let segments: Vec<&str> = name.split('/').collect();
    let valid = segments.len() == 2 * kinds.len()
        && segments
            .chunks(2)
            .zip(kinds)
            .all(|(pair, kind)| pair[0] == *kind && !pair[1].is_empty());
    if !valid {
        let shape: Vec<String> = kinds.iter().map(|k| format!("{k}/{{id}}")).collect();
        return Err(DatabricksError::new(
            ErrorKind::BadRequest,
            format!("{name:?} is not {}", shape.join("/")),
        ));
    }
    Ok(segments
        .iter()
        .map(|s| encode_segment(s))
        .collect::<Vec<_>>()
        .join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_and_endpoint_names_are_told_apart() {
        assert!(is_postgres_branch("projects/p/branches/b"));
        assert!(!is_postgres_branch("projects/p/branches/b/endpoints/e"));
        assert!(!is_postgres_branch("projects/p/branches/"));
        assert!(!is_postgres_branch("projects/p/databases/b"));
        assert_eq!(
            resource_path("projects/a b/branches/c", &["projects", "branches"]).unwrap(),
            "projects/a%20b/branches/c"
        );
    }

    #[test]
    fn credential_debug_hides_the_token() {
        let credential = DatabaseCredential {
            token: SecretString::from("eyJsecret"),
            expires_at: Utc::now(),
        };
        assert!(!format!("{credential:?}").contains("eyJsecret"));
    }
}
