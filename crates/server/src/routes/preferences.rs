//! The caller's preferences, in the store under their `UserId`: no request can reach another
//! user's keys, whatever it sends. Keys match `^[a-z][a-z0-9_.-]{0,99}$` (a [`Name`] of
//! [`PreferenceKey`]); values are any JSON up to 100 KiB. `PUT` is an atomic upsert: 201 when created, 200 when replaced.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use dbapp_store::Preference;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{Name, PreferenceKey};
use crate::limits::PREFERENCE_VALUE_BYTES;
use crate::state::AppState;

/// One preference.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreferenceItem {
    /// The key.
    pub key: String,
    /// Any JSON.
    pub value: Value,
    /// First written.
    pub created_at: DateTime<Utc>,
    /// Last written.
    pub updated_at: DateTime<Utc>,
}

/// All of the caller's preferences.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreferenceList {
    /// By key.
    pub items: Vec<PreferenceItem>,
}

impl From<Preference> for PreferenceItem {
    fn from(p: Preference) -> Self {
        Self {
            key: p.key,
            value: p.value,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_preferences))
        .routes(routes!(get_preference, put_preference, delete_preference))
}

fn not_found(key: &str) -> ApiError {
    ApiError::not_found(
        ErrorCode::PreferenceNotFound,
        format!("You have no preference '{key}'."),
    )
}

/// The caller's preferences.
#[utoipa::path(get, path = "/api/preferences", tag = "preferences", security(("user_token" = [])), responses(
    (status = 200, body = PreferenceList),
    (status = 401, body = ErrorBody),
    (status = 503, body = ErrorBody, description = "DATABASE_UNAVAILABLE, STORAGE_NOT_CONFIGURED"),
))]
async fn list_preferences(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<Json<PreferenceList>, ApiError> {
    let items = app.store()?.list_preferences(caller.user_id()).await?;
    Ok(Json(PreferenceList {
        items: items.into_iter().map(PreferenceItem::from).collect(),
    }))
}

/// One of the caller's preferences.
#[utoipa::path(get, path = "/api/preferences/{key}", tag = "preferences", security(("user_token" = [])),
    params(("key" = String, Path, pattern = "^[a-z][a-z0-9_.-]{0,99}$")), responses(
    (status = 200, body = PreferenceItem),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "PREFERENCE_NOT_FOUND"),
    (status = 503, body = ErrorBody),
))]
async fn get_preference(
    State(app): State<AppState>,
    caller: Caller,
    key: Name<PreferenceKey>,
) -> Result<Json<PreferenceItem>, ApiError> {
    match app.store()?.get_preference(caller.user_id(), &key).await {
        Ok(p) => Ok(Json(p.into())),
        Err(dbapp_store::StoreError::NotFound(_)) => Err(not_found(&key)),
        Err(e) => Err(e.into()),
    }
}

/// Sets one of the caller's preferences; the body is the value (any JSON, ≤ 100 KiB).
#[utoipa::path(put, path = "/api/preferences/{key}", tag = "preferences", security(("user_token" = [])),
    params(("key" = String, Path, pattern = "^[a-z][a-z0-9_.-]{0,99}$")),
    request_body(content = Value, content_type = "application/json", description = "The value: any JSON up to 100 KiB"),
    responses(
    (status = 200, body = PreferenceItem, description = "Replaced"),
    (status = 201, body = PreferenceItem, description = "Created"),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 503, body = ErrorBody),
))]
async fn put_preference(
    State(app): State<AppState>,
    caller: Caller,
    key: Name<PreferenceKey>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return Err(ApiError::UnsupportedMediaType {
            expected: "application/json",
        });
    }
    if body.len() > PREFERENCE_VALUE_BYTES {
        return Err(ApiError::PayloadTooLarge {
            limit_bytes: PREFERENCE_VALUE_BYTES,
        });
    }
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid("body", format!("not valid JSON: {e}")))?;
    let upserted = app
        .store()?
        .upsert_preference(caller.user_id(), &key, &value)
        .await?;
    let status = if upserted.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(PreferenceItem::from(upserted.preference))).into_response())
}

/// Deletes one of the caller's preferences.
#[utoipa::path(delete, path = "/api/preferences/{key}", tag = "preferences", security(("user_token" = [])),
    params(("key" = String, Path, pattern = "^[a-z][a-z0-9_.-]{0,99}$")), responses(
    (status = 204, description = "Deleted"),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "PREFERENCE_NOT_FOUND"),
    (status = 503, body = ErrorBody),
))]
async fn delete_preference(
    State(app): State<AppState>,
    caller: Caller,
    key: Name<PreferenceKey>,
) -> Result<StatusCode, ApiError> {
    if app
        .store()?
        .delete_preference(caller.user_id(), &key)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&key))
    }
}
