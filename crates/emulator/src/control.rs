//! The control surface tests use to steer a running emulator: inject faults, change run-time
//! settings, mint, expire and revoke tokens, read the request log, reset.
//!
//! Each operation is written once, as a method of the shared state, and reached two ways:
//! in process through the typed methods of [`EmulatorHandle`] (what Rust tests call), and over
//! HTTP under `/_emulator/` (for the Python SDK tests, demos and any other client). The HTTP
//! routes need no token, are never subject to faults and are not logged. `docs/emulator.md`
//! documents each route:
//!
//! | route | what it does | typed method |
//! |---|---|---|
//! | `GET /_emulator/info` | base URL, workspace id, current settings | [`EmulatorHandle::settings`] |
//! | `GET`/`PUT /_emulator/config` | read / patch the run-time [`Settings`] (a partial JSON object) | [`EmulatorHandle::update_settings`] |
//! | `POST /_emulator/faults` | add a [`FaultRule`]; returns its `id` | [`EmulatorHandle::inject_fault`] |
//! | `GET`/`DELETE /_emulator/faults` | list rules with how often each fired / remove all | [`EmulatorHandle::faults`], [`EmulatorHandle::clear_faults`] |
//! | `DELETE /_emulator/faults/{id}` | remove one rule | - |
//! | `POST /_emulator/tokens` | mint a JWT-shaped token for a principal: `{"principal", "ttl_secs"}` | [`EmulatorHandle::mint_token`] |
//! | `POST /_emulator/tokens/expire` | `{"token"}`: the token is expired from now on (a Lakebase credential also stops logging in to Postgres) | [`EmulatorHandle::expire_token`] |
//! | `POST /_emulator/tokens/revoke` | `{"token"}`: the token is unknown from now on (likewise) | [`EmulatorHandle::revoke_token`] |
//! | `GET`/`DELETE /_emulator/requests` | the request log (`?path_prefix=`, `?since=<seq>`) / clear it | [`EmulatorHandle::requests`], [`EmulatorHandle::clear_requests`] |
//! | `PUT /_emulator/warehouses/{id}` | `{"state"}`: put a warehouse in `RUNNING`, `STOPPED`, `STARTING` or `STOPPING` (a transitional state lasts its full delay) | [`EmulatorHandle::set_warehouse_state`] |
//! | `GET /_emulator/sessions` | the open SQL sessions | [`EmulatorHandle::sql_sessions`] |
//! | `GET /_emulator/apps/{name}/logs` | with `run_apps`: the captured output of the app's replicas, as text, each line prefixed `[<replica>]` | [`EmulatorHandle::app_logs`] |
//! | `GET /_emulator/apps/{name}/replicas` | with `run_apps`: `[{"index", "port", "pid", "state"}]` of the serving replicas, then those of a deployment in progress | - |
//! | `GET /_emulator/apps/{name}/credentials` | the OAuth client id and secret of an app's own service principal, which the Apps API never returns | [`EmulatorHandle::app_credentials`] |
//! | `POST /_emulator/reset` | tokens, statements, warehouses, sessions, Genie conversations, Autoscaling projects, apps, faults, settings, volume files and log as at start | [`EmulatorHandle::reset`] |

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::EmulatorHandle;
use crate::apps::AppCredentials;
use crate::error::ApiError;
use crate::faults::{ActiveFault, FaultRule};
use crate::fixture::{Settings, WarehouseState};
use crate::routes::{JsonBody, QueryParams};
use crate::state::{Emulator, LoggedRequest, SqlSessionInfo, lock};
use tokio::time::Instant;

/// Why a control operation was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// The fault rule or settings are not valid (`400 INVALID_PARAMETER_VALUE` over HTTP).
    #[error("{0}")]
    Invalid(String),
    /// Neither the fixture nor an app has such a principal (`404` over HTTP).
    #[error("no principal {0}")]
    UnknownPrincipal(String),
    /// The emulator never issued this token (`404` over HTTP).
    #[error("no such token")]
    UnknownToken,
    /// No fault rule has this id (`404` over HTTP).
    #[error("no fault rule {0}")]
    UnknownFault(u64),
    /// The fixture has no warehouse with this id (`404` over HTTP).
    #[error("no warehouse {0}")]
    UnknownWarehouse(String),
    /// No app has this name (`404` over HTTP).
    #[error("no app {0}")]
    UnknownApp(String),
}

impl From<ControlError> for ApiError {
    fn from(error: ControlError) -> Self {
        match error {
            ControlError::Invalid(message) => ApiError::bad_request(message),
            ControlError::UnknownPrincipal(_)
            | ControlError::UnknownToken
            | ControlError::UnknownFault(_)
            | ControlError::UnknownWarehouse(_)
            | ControlError::UnknownApp(_) => {
                ApiError::not_found("RESOURCE_DOES_NOT_EXIST", error.to_string())
            }
        }
    }
}

/// The operations themselves, shared by the typed methods and the HTTP routes.
impl Emulator {
    fn add_fault(&self, rule: FaultRule) -> Result<u64, ControlError> {
        lock(&self.faults).add(rule)
    }

    fn faults(&self) -> Vec<ActiveFault> {
        lock(&self.faults).list().to_vec()
    }

    fn clear_faults(&self) {
        lock(&self.faults).clear();
    }

    /// Applies `edit` to a copy of the settings and keeps the result if it is valid.
    fn update_settings(
        &self,
        edit: impl FnOnce(&mut Settings) -> Result<(), ControlError>,
    ) -> Result<Settings, ControlError> {
        let mut settings = lock(&self.settings);
        let mut updated = settings.clone();
        edit(&mut updated)?;
        if updated.default_page_size == 0
            || updated.max_page_size == 0
            || updated.sql_chunk_rows == 0
        {
            return Err(ControlError::Invalid(
                "page sizes and sql_chunk_rows must be at least 1".into(),
            ));
        }
        *settings = updated.clone();
        Ok(updated)
    }

    /// A workspace token for `principal`; with `scopes`, limited to them as the Apps proxy's
    /// user tokens are.
    fn mint_for(
        &self,
        principal: &str,
        ttl: Duration,
        scopes: Option<&[String]>,
    ) -> Result<(String, DateTime<Utc>), ControlError> {
        let principal = self
            .principal(principal)
            .ok_or_else(|| ControlError::UnknownPrincipal(principal.to_owned()))?;
        Ok(match scopes {
            Some(scopes) => self.mint_downscoped_token(&principal, ttl, scopes),
            None => self.mint_token(&principal, ttl, "workspace"),
        })
    }

    /// Expires (`revoke == false`) or revokes a token; the Lakebase front reads the same record,
    /// so a database credential stops opening sessions at once (open ones live on).
    fn change_token(&self, token: &str, revoke: bool) -> Result<(), ControlError> {
        if !self.update_token(token, revoke) {
            return Err(ControlError::UnknownToken);
        }
        Ok(())
    }

    fn logged_requests(&self, path_prefix: Option<&str>, since: Option<u64>) -> Vec<LoggedRequest> {
        lock(&self.log)
            .entries()
            .filter(|r| since.is_none_or(|s| r.seq > s))
            .filter(|r| path_prefix.is_none_or(|p| r.path.starts_with(p)))
            .cloned()
            .collect()
    }

    fn clear_log(&self) {
        lock(&self.log).clear();
    }

    fn set_warehouse_state(&self, id: &str, state: WarehouseState) -> Result<(), ControlError> {
        let warehouse = (self.fixture.warehouses.iter())
            .find(|w| w.id == id)
            .ok_or_else(|| ControlError::UnknownWarehouse(id.to_owned()))?;
        let settings = self.settings();
        lock(&self.warehouses).set(warehouse, &settings, state, Instant::now());
        Ok(())
    }

    fn app_credentials(&self, name: &str) -> Result<AppCredentials, ControlError> {
        lock(&self.apps)
            .credentials(name)
            .ok_or_else(|| ControlError::UnknownApp(name.to_owned()))
    }

    /// The captured output of an app's replicas.
    fn app_logs(&self, name: &str) -> Result<String, ControlError> {
        self.runtime()
            .ok_or_else(not_running_apps)?
            .logs(name)
            .ok_or_else(|| ControlError::UnknownApp(name.to_owned()))
    }

    fn sql_sessions(&self) -> Vec<SqlSessionInfo> {
        let mut sessions: Vec<_> = lock(&self.sessions).values().cloned().collect();
        sessions.sort_by(|a, b| a.session_id.cmp(&b.session_id));
        sessions
    }
}

/// Typed control methods: the `/_emulator/` API without HTTP, for tests in the same process.
impl EmulatorHandle {
    /// Adds a fault rule after the ones already in force and returns its id.
    ///
    /// # Errors
    /// [`ControlError::Invalid`] when the probability is outside `0..=1` or the status is not a
    /// valid final status (below 200 or above 999).
    pub fn inject_fault(&self, rule: FaultRule) -> Result<u64, ControlError> {
        self.emulator.add_fault(rule)
    }

    /// The rules in force, in the order they are tried, with how often each fired.
    pub fn faults(&self) -> Vec<ActiveFault> {
        self.emulator.faults()
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.emulator.clear_faults();
    }

    /// A copy of the current run-time settings.
    pub fn settings(&self) -> Settings {
        self.emulator.settings()
    }

    /// Changes the run-time settings with `edit` and returns the result, e.g.
    /// `handle.update_settings(|s| s.sql_chunk_rows = 10)`.
    ///
    /// # Errors
    /// [`ControlError::Invalid`] when a page size or `sql_chunk_rows` would be 0; the settings
    /// are then unchanged.
    pub fn update_settings(
        &self,
        edit: impl FnOnce(&mut Settings),
    ) -> Result<Settings, ControlError> {
        self.emulator.update_settings(|settings| {
            edit(settings);
            Ok(())
        })
    }

    /// Mints a JWT-shaped OAuth token for a principal (user name or application id) that
    /// expires after `ttl`.
    ///
    /// # Errors
    /// [`ControlError::UnknownPrincipal`] when neither the fixture nor an app has such a
    /// principal;
    /// [`ControlError::Invalid`] when `ttl` is too large to represent.
    pub fn mint_token(
        &self,
        principal: &str,
        ttl: std::time::Duration,
    ) -> Result<String, ControlError> {
        let ttl = Duration::from_std(ttl)
            .map_err(|_| ControlError::Invalid(format!("ttl {ttl:?} is out of range")))?;
        let (token, _) = self.emulator.mint_for(principal, ttl, None)?;
        Ok(token)
    }

    /// Makes a token expired from now on: the workspace APIs refuse it (an OAuth token with
    /// "JWT has expired"), and a Lakebase credential stops opening Postgres sessions.
    ///
    /// # Errors
    /// [`ControlError::UnknownToken`] for a token the emulator never issued.
    pub async fn expire_token(&self, token: &str) -> Result<(), ControlError> {
        self.emulator.change_token(token, false)
    }

    /// Revokes a token: from now on it is refused as unknown ("Invalid access token.").
    ///
    /// # Errors
    /// As [`EmulatorHandle::expire_token`].
    pub async fn revoke_token(&self, token: &str) -> Result<(), ControlError> {
        self.emulator.change_token(token, true)
    }

    /// The logged workspace requests whose path starts with `path_prefix`, oldest first
    /// (`"/"` for all). Control calls are never logged.
    pub fn requests(&self, path_prefix: &str) -> Vec<LoggedRequest> {
        self.emulator.logged_requests(Some(path_prefix), None)
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        self.emulator.clear_log();
    }

    /// Puts warehouse `id` in `state` from now on, whatever it was doing: `RUNNING` or `STOPPED`
    /// at once, `STARTING` or `STOPPING` for the warehouse's full start or stop delay.
    ///
    /// # Errors
    /// [`ControlError::UnknownWarehouse`] when the fixture has no such warehouse.
    pub fn set_warehouse_state(&self, id: &str, state: WarehouseState) -> Result<(), ControlError> {
        self.emulator.set_warehouse_state(id, state)
    }

    /// The open SQL sessions, in id order.
    pub fn sql_sessions(&self) -> Vec<SqlSessionInfo> {
        self.emulator.sql_sessions()
    }

    /// The OAuth client id and secret of app `name`'s own service principal, which
    /// `/oidc/v1/token` takes as any service principal's.
    ///
    /// # Errors
    /// [`ControlError::UnknownApp`] when no app has this name.
    pub fn app_credentials(&self, name: &str) -> Result<AppCredentials, ControlError> {
        self.emulator.app_credentials(name)
    }

    /// The captured output of app `name`'s replicas (stdout and stderr, and the emulator's
    /// `[emulator]` lifecycle lines), each line prefixed with its replica index, e.g. `[0] `.
    ///
    /// # Errors
    /// [`ControlError::UnknownApp`] when no app has this name; [`ControlError::Invalid`] when
    /// the emulator does not run apps.
    pub fn app_logs(&self, name: &str) -> Result<String, ControlError> {
        self.emulator.app_logs(name)
    }

    /// Returns tokens, statements, warehouses, sessions, Genie conversations, Autoscaling
    /// projects, apps (whose service principals then stop authenticating), faults, settings,
    /// volume files and the request log to their state at start. Minted tokens become unknown,
    /// so the Lakebase front refuses them too; data in the Postgres backend stays.
    pub async fn reset(&self) {
        self.emulator.reset();
    }
}

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
        .route("/warehouses/{id}", put(set_warehouse_state))
        .route("/sessions", get(list_sessions))
        .route("/apps/{name}/credentials", get(app_credentials))
        .route("/apps/{name}/logs", get(app_logs))
        .route("/apps/{name}/replicas", get(app_replicas))
        .route("/reset", post(reset))
}

async fn info(State(emulator): State<Emulator>) -> Json<Value> {
    Json(json!({
        "base_url": emulator.base_url,
        "workspace_id": emulator.fixture.workspace.workspace_id.to_string(),
        "lakebase_logins": emulator.lakebase.is_some(),
        "run_apps": emulator.runtime().is_some(),
        "lakebase": emulator.lakebase.as_ref().map(|l| json!({
            "host": l.host(),
            "port": l.front().port(),
            "certificate_pem": l.certificate_pem(),
        })),
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
    let invalid = |e: serde_json::Error| ControlError::Invalid(e.to_string());
    let updated = emulator.update_settings(|settings| {
        let mut merged = serde_json::to_value(&*settings).map_err(invalid)?;
        let object = merged
            .as_object_mut()
            .ok_or_else(|| ControlError::Invalid("settings".into()))?;
        for (key, value) in patch {
            if !object.contains_key(&key) {
                return Err(ControlError::Invalid(format!("unknown setting {key}")));
            }
            object.insert(key, value);
        }
        *settings = serde_json::from_value(merged).map_err(invalid)?;
        Ok(())
    })?;
    Ok(Json(updated))
}

async fn add_fault(
    State(emulator): State<Emulator>,
    JsonBody(rule): JsonBody<FaultRule>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = emulator.add_fault(rule)?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))))
}

async fn list_faults(State(emulator): State<Emulator>) -> Json<Value> {
    Json(json!({ "faults": emulator.faults() }))
}

async fn clear_faults(State(emulator): State<Emulator>) -> StatusCode {
    emulator.clear_faults();
    StatusCode::NO_CONTENT
}

async fn remove_fault(
    State(emulator): State<Emulator>,
    Path(id): Path<u64>,
) -> Result<StatusCode, ApiError> {
    if lock(&emulator.faults).remove(id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ControlError::UnknownFault(id).into())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MintRequest {
    principal: String,
    #[serde(default = "default_ttl")]
    ttl_secs: i64,
    /// Limits the token to these user authorization scopes.
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

fn default_ttl() -> i64 {
    3600
}

async fn mint_token(
    State(emulator): State<Emulator>,
    JsonBody(request): JsonBody<MintRequest>,
) -> Result<Json<Value>, ApiError> {
    let (token, expires_at) = emulator.mint_for(
        &request.principal,
        Duration::seconds(request.ttl_secs),
        request.scopes.as_deref(),
    )?;
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
    emulator.change_token(&request.token, false)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn revoke_token(
    State(emulator): State<Emulator>,
    JsonBody(request): JsonBody<TokenRequest>,
) -> Result<StatusCode, ApiError> {
    emulator.change_token(&request.token, true)?;
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
    let requests = emulator.logged_requests(query.path_prefix.as_deref(), query.since);
    Json(json!({ "requests": requests }))
}

async fn clear_requests(State(emulator): State<Emulator>) -> StatusCode {
    emulator.clear_log();
    StatusCode::NO_CONTENT
}

async fn reset(State(emulator): State<Emulator>) -> StatusCode {
    emulator.reset();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WarehouseStateRequest {
    state: WarehouseState,
}

async fn set_warehouse_state(
    State(emulator): State<Emulator>,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<WarehouseStateRequest>,
) -> Result<StatusCode, ApiError> {
    emulator.set_warehouse_state(&id, request.state)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn app_credentials(
    State(emulator): State<Emulator>,
    Path(name): Path<String>,
) -> Result<Json<AppCredentials>, ApiError> {
    Ok(Json(emulator.app_credentials(&name)?))
}

async fn app_logs(
    State(emulator): State<Emulator>,
    Path(name): Path<String>,
) -> Result<([(axum::http::HeaderName, &'static str); 1], String), ApiError> {
    let text = emulator.app_logs(&name)?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        text,
    ))
}

async fn app_replicas(
    State(emulator): State<Emulator>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let replicas = emulator
        .runtime()
        .ok_or_else(not_running_apps)?
        .replicas(&name)
        .ok_or_else(|| ControlError::UnknownApp(name.clone()))?;
    Ok(Json(json!(replicas)))
}

fn not_running_apps() -> ControlError {
    ControlError::Invalid("the emulator does not run apps (run_apps is off)".into())
}

async fn list_sessions(State(emulator): State<Emulator>) -> Json<Value> {
    Json(json!({ "sessions": emulator.sql_sessions() }))
}
