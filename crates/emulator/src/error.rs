//! Databricks error responses, in the body shape of `shared/UPSTREAM.md` §3.1 and with the status
//! mapping of §3.2. Every handler returns [`ApiError`] for failures, so every error the emulator
//! sends has one shape (fault injection may send others on purpose).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A Databricks API error.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    status: StatusCode,
    /// A string such as `RESOURCE_DOES_NOT_EXIST`, or the integer the token checks send.
    error_code: Value,
    message: String,
    reason_phrase: bool,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, error_code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            error_code: Value::String(error_code.to_owned()),
            message: message.into(),
            reason_phrase: false,
        }
    }

    /// `400 INVALID_PARAMETER_VALUE`.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE", message)
    }

    /// `400 RESOURCE_LIMIT_EXCEEDED`: one of the emulator's caps is reached. A `400`, not a `429`,
    /// so SDKs fail at once instead of retrying.
    pub(crate) fn limit_exceeded(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "RESOURCE_LIMIT_EXCEEDED", message)
    }

    /// `404` with a resource-specific code such as `CATALOG_DOES_NOT_EXIST`.
    pub(crate) fn not_found(error_code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, error_code, message)
    }

    /// `403 PERMISSION_DENIED`.
    pub(crate) fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "PERMISSION_DENIED", message)
    }

    /// `401 UNAUTHENTICATED`: no credentials were sent.
    pub(crate) fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message)
    }

    /// `403` with the integer code 403, as the real service answers a token it rejects.
    pub(crate) fn token_rejected(message: &str) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            error_code: Value::from(403),
            message: message.to_owned(),
            reason_phrase: true,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error_code": self.error_code, "message": self.message});
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.reason_phrase
            && let Ok(value) = HeaderValue::from_str(&self.message)
        {
            response
                .headers_mut()
                .insert("x-databricks-reason-phrase", value);
        }
        response
    }
}

/// The usual `error_code` for a status, used by injected faults that name only a status.
pub(crate) fn default_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_PARAMETER_VALUE",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "RESOURCE_DOES_NOT_EXIST",
        409 => "RESOURCE_CONFLICT",
        429 => "REQUEST_LIMIT_EXCEEDED",
        501 => "NOT_IMPLEMENTED",
        502 => "BAD_GATEWAY",
        503 => "TEMPORARILY_UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL_ERROR",
    }
}
