//! SQL sessions and the side calls of `databricks-sql-connector` with `use_sea=True`
//! (`shared/UPSTREAM-2.md` §3.3).
//!
//! A session names a warehouse and default `catalog`/`schema` for the statements that carry its
//! `session_id`; `session_confs` are kept (the control API reports them) but not applied. A
//! session belongs to its creator: anyone else gets the 404 of an unknown id. At most
//! `sql_max_sessions` are open at once; one more is `429 RESOURCE_EXHAUSTED`, so a client that
//! never closes its sessions fails loudly instead of growing the emulator. Sessions never expire
//! on their own.
//!
//! The connector also asks for its feature flags (answered with none, valid for 15 minutes) and,
//! unless `enable_telemetry=False`, posts telemetry, which is accepted and dropped.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::routes::JsonBody;
use crate::routes::statements::{find_session, usable_warehouse};
use crate::state::{Emulator, SqlSessionInfo, lock};

/// How long the connector may cache the (empty) feature flags.
const FEATURE_FLAGS_TTL_SECONDS: u64 = 900;

pub(super) fn router() -> Router<Emulator> {
    Router::new()
        .route("/api/2.0/sql/sessions", post(create_session))
        .route("/api/2.0/sql/sessions/", post(create_session))
        .route("/api/2.0/sql/sessions/{id}", delete(delete_session))
        .route(
            "/api/2.0/connector-service/feature-flags/{driver}/{version}",
            get(feature_flags),
        )
        .route("/telemetry-ext", post(telemetry))
}

/// The body of `POST /api/2.0/sql/sessions`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CreateSessionRequest {
    warehouse_id: Option<String>,
    catalog: Option<String>,
    schema: Option<String>,
    session_confs: Option<HashMap<String, String>>,
}

/// Opens a session on a warehouse the caller may use.
async fn create_session(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    JsonBody(request): JsonBody<CreateSessionRequest>,
) -> Result<Json<Value>, ApiError> {
    let warehouse_id = request
        .warehouse_id
        .filter(|w| !w.is_empty())
        .ok_or_else(|| ApiError::bad_request("warehouse_id is required"))?;
    usable_warehouse(&emulator, &principal, &warehouse_id)?;
    let max = emulator.settings().sql_max_sessions;
    let session_id = uuid::Uuid::new_v4().to_string();
    let mut sessions = lock(&emulator.sessions);
    if sessions.len() >= max {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RESOURCE_EXHAUSTED",
            format!("At most {max} SQL sessions may be open at once; close one first."),
        ));
    }
    let non_empty = |v: Option<String>| v.filter(|v| !v.is_empty());
    sessions.insert(
        session_id.clone(),
        SqlSessionInfo {
            session_id: session_id.clone(),
            owner: principal.user_name.clone(),
            warehouse_id,
            catalog: non_empty(request.catalog),
            schema: non_empty(request.schema),
            session_confs: request.session_confs.unwrap_or_default(),
        },
    );
    Ok(Json(json!({ "session_id": session_id })))
}

/// Closes a session; the connector sends `{warehouse_id, session_id}` as a JSON body, which is
/// not needed.
async fn delete_session(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    find_session(&emulator, &principal, &id)?;
    lock(&emulator.sessions).remove(&id);
    Ok(Json(json!({})))
}

/// The connector's feature flags: none.
async fn feature_flags(
    Authenticated(_): Authenticated,
    Path((_driver, _version)): Path<(String, String)>,
) -> Json<Value> {
    Json(json!({ "flags": [], "ttl_seconds": FEATURE_FLAGS_TTL_SECONDS }))
}

/// Client telemetry on the authenticated route: accepted and dropped.
async fn telemetry(Authenticated(_): Authenticated, JsonBody(_): JsonBody<Value>) -> Json<Value> {
    Json(json!({ "errors": [], "numSuccess": 0, "numProtoSuccess": 0 }))
}
