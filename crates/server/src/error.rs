//! The HTTP edge's one error type, [`ApiError`], and the envelope every non-2xx response carries
//! ([`ErrorBody`] with an [`ErrorCode`], `shared/API.md` "Errors").
//!
//! Policy:
//! - Handlers and extractors return `Result<_, ApiError>`. Library errors convert at the edge:
//!   [`ApiError::from_identity`] for the SCIM Me lookup behind `Caller` (token refused →
//!   `AUTH_*`), [`ApiError::from_upstream`] for resource calls made as the user (403 →
//!   `PERMISSION_DENIED`, 404 → the resource's `*_NOT_FOUND`, 429 → `RATE_LIMITED`, timeouts →
//!   `UPSTREAM_TIMEOUT`, 5xx and unreadable bodies → `UPSTREAM_ERROR`), and `From<StoreError>`.
//!   A token the workspace refuses is always an `AUTH_*` code, never a 502: the user has to act.
//! - Messages are written for people and never carry tokens, SQL or upstream bodies verbatim;
//!   the cause stays on the error (`source()`), and the `TrackHttpLayer` middleware logs the whole
//!   chain once, under the correlation id (5xx at `error`, 4xx at `debug`). `into_response` has
//!   no side effect: it stores an `Arc<ApiError>` in the response extensions for that middleware.
//! - The correlation id in the body comes from the task-local that the correlation middleware
//!   sets around every request ([`current_correlation_id`]).
//! - Responses that the framework or a tower layer produced without an `ApiError` (unknown
//!   route, wrong method, body limit, timeout, panic) are rewritten into the envelope by
//!   [`envelope_for_status`], called from the correlation middleware.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dbapp_databricks::{DatabricksError, ErrorKind};
use dbapp_store::{Resource, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::correlation::current_correlation_id;
use crate::grants::MissingGrant;
use crate::limits::{BODY_LIMIT_BYTES, IDENTIFIER_PATTERN};

/// Every machine-readable error code of `API.md`, as sent in `error_code`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, PartialOrd, Ord,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// 401: no token, or an empty one.
    AuthMissing,
    /// 401: malformed token, or the workspace rejects it.
    AuthInvalid,
    /// 401: the workspace says the token has expired.
    AuthExpired,
    /// 429: the workspace rate-limits the identity lookup.
    AuthRateLimited,
    /// 502: the identity could not be established for another reason.
    AuthUserIdentityFailed,
    /// 401: `X-Forwarded-Email` differs from the token's identity.
    IdentityMismatch,
    /// 403: the workspace denies the user access to the resource.
    PermissionDenied,
    /// 403: admin-only route, caller not in an admin group.
    AdminRequired,
    /// 404: no such API route.
    RouteNotFound,
    /// 404: no such catalog (or invisible to the user).
    CatalogNotFound,
    /// 404: no such schema.
    SchemaNotFound,
    /// 404: no such table.
    TableNotFound,
    /// 404: no such volume (or invisible to the user).
    VolumeNotFound,
    /// 404: no such file or directory in the volume.
    FileNotFound,
    /// 404: no such serving endpoint.
    EndpointNotFound,
    /// 404: no such preference of the caller.
    PreferenceNotFound,
    /// 404: no such conversation of the caller (another user's included).
    ConversationNotFound,
    /// 404: no such governed query.
    QueryNotFound,
    /// 404: no such run of the caller for this query (another user's, an expired one, or one
    /// already answered included).
    QueryRunNotFound,
    /// 404: no such Genie space (a space the caller may not use is `PERMISSION_DENIED`).
    GenieSpaceNotFound,
    /// 404: no such Genie conversation of the caller in the space, or no such message or query
    /// attachment in it.
    GenieConversationNotFound,
    /// 405: the route exists, not with this method.
    MethodNotAllowed,
    /// 400: bad query, path or body; `detail` says which field and why.
    InvalidRequest,
    /// 400: a catalog, schema, table or volume name that is not a safe identifier.
    InvalidIdentifier,
    /// 409: the serving endpoint is not ready.
    EndpointNotReady,
    /// 409: the file exists and the upload did not ask to overwrite it.
    FileAlreadyExists,
    /// 409: the Genie message has not finished yet, so its query result cannot be read;
    /// `detail.status` is its status.
    GenieResultNotReady,
    /// 413: body over the limit; `detail.limit_bytes` has the limit.
    PayloadTooLarge,
    /// 415: the body's content type is not accepted.
    UnsupportedMediaType,
    /// 414: the request target is too long; `detail.limit_bytes` has the limit.
    UriTooLong,
    /// 431: too many header fields, or too many bytes of them; `detail` has both limits.
    HeadersTooLarge,
    /// 429: the workspace rate-limits a resource call (never retried by the server), or the
    /// caller is over a per-user quota (`detail.quota` names it); `Retry-After` always set.
    RateLimited,
    /// 502: the workspace answered 5xx after retries, or an unparseable body.
    UpstreamError,
    /// 400: the model endpoint refused the inputs (its 4xx); `message` is the model's own,
    /// `detail.status` its HTTP status.
    ModelInputInvalid,
    /// 502: the model endpoint returned an error; `detail.status` is its HTTP status.
    ModelError,
    /// 502: Genie could not answer: the message ended `FAILED` or `CANCELLED`
    /// (`detail.status`), `detail.type` is Genie's error type (e.g. `SQL_EXECUTION_EXCEPTION`)
    /// and `detail.genie_error` Genie's own message.
    GenieMessageFailed,
    /// 504: an upstream call exceeded its timeout.
    UpstreamTimeout,
    /// 504: a model invocation exceeded `timeout_seconds`.
    ModelTimeout,
    /// 503: the store cannot be reached; `retry_after` 5.
    DatabaseUnavailable,
    /// 503: no store is configured.
    StorageNotConfigured,
    /// 503: table preview without `DATABRICKS_WAREHOUSE_ID`.
    WarehouseNotConfigured,
    /// 503: the assistant without `DBAPP_ASSISTANT_ENDPOINT`.
    AssistantNotConfigured,
    /// 503: a `run_as: app` query, and the server has no credentials of its own.
    AppCredentialsNotConfigured,
    /// 500: anything else; details only in the log, under the correlation id.
    InternalError,
}

impl ErrorCode {
    /// Every code, in the order of `API.md`'s table.
    pub const ALL: [Self; 44] = [
        Self::AuthMissing,
        Self::AuthInvalid,
        Self::AuthExpired,
        Self::AuthRateLimited,
        Self::AuthUserIdentityFailed,
        Self::IdentityMismatch,
        Self::PermissionDenied,
        Self::AdminRequired,
        Self::RouteNotFound,
        Self::CatalogNotFound,
        Self::SchemaNotFound,
        Self::TableNotFound,
        Self::VolumeNotFound,
        Self::FileNotFound,
        Self::EndpointNotFound,
        Self::PreferenceNotFound,
        Self::ConversationNotFound,
        Self::QueryNotFound,
        Self::QueryRunNotFound,
        Self::GenieSpaceNotFound,
        Self::GenieConversationNotFound,
        Self::MethodNotAllowed,
        Self::InvalidRequest,
        Self::InvalidIdentifier,
        Self::EndpointNotReady,
        Self::FileAlreadyExists,
        Self::GenieResultNotReady,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::UriTooLong,
        Self::HeadersTooLarge,
        Self::RateLimited,
        Self::UpstreamError,
        Self::ModelInputInvalid,
        Self::ModelError,
        Self::GenieMessageFailed,
        Self::UpstreamTimeout,
        Self::ModelTimeout,
        Self::DatabaseUnavailable,
        Self::StorageNotConfigured,
        Self::WarehouseNotConfigured,
        Self::AssistantNotConfigured,
        Self::AppCredentialsNotConfigured,
        Self::InternalError,
    ];

    /// The HTTP status `API.md` gives the code.
    #[must_use]
    pub fn status(self) -> StatusCode {
        match self {
            Self::AuthMissing | Self::AuthInvalid | Self::AuthExpired | Self::IdentityMismatch => {
                StatusCode::UNAUTHORIZED
            }
            Self::AuthRateLimited | Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::AuthUserIdentityFailed
            | Self::UpstreamError
            | Self::ModelError
            | Self::GenieMessageFailed => StatusCode::BAD_GATEWAY,
            Self::PermissionDenied | Self::AdminRequired => StatusCode::FORBIDDEN,
            Self::RouteNotFound
            | Self::CatalogNotFound
            | Self::SchemaNotFound
            | Self::TableNotFound
            | Self::VolumeNotFound
            | Self::FileNotFound
            | Self::EndpointNotFound
            | Self::PreferenceNotFound
            | Self::ConversationNotFound
            | Self::QueryNotFound
            | Self::QueryRunNotFound
            | Self::GenieSpaceNotFound
            | Self::GenieConversationNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::InvalidRequest | Self::InvalidIdentifier | Self::ModelInputInvalid => {
                StatusCode::BAD_REQUEST
            }
            Self::EndpointNotReady | Self::FileAlreadyExists | Self::GenieResultNotReady => {
                StatusCode::CONFLICT
            }
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::UriTooLong => StatusCode::URI_TOO_LONG,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::UpstreamTimeout | Self::ModelTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::DatabaseUnavailable
            | Self::StorageNotConfigured
            | Self::WarehouseNotConfigured
            | Self::AssistantNotConfigured
            | Self::AppCredentialsNotConfigured => StatusCode::SERVICE_UNAVAILABLE,
            Self::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The wire spelling, e.g. `AUTH_MISSING`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthMissing => "AUTH_MISSING",
            Self::AuthInvalid => "AUTH_INVALID",
            Self::AuthExpired => "AUTH_EXPIRED",
            Self::AuthRateLimited => "AUTH_RATE_LIMITED",
            Self::AuthUserIdentityFailed => "AUTH_USER_IDENTITY_FAILED",
            Self::IdentityMismatch => "IDENTITY_MISMATCH",
            Self::PermissionDenied => "PERMISSION_DENIED",
            Self::AdminRequired => "ADMIN_REQUIRED",
            Self::RouteNotFound => "ROUTE_NOT_FOUND",
            Self::CatalogNotFound => "CATALOG_NOT_FOUND",
            Self::SchemaNotFound => "SCHEMA_NOT_FOUND",
            Self::TableNotFound => "TABLE_NOT_FOUND",
            Self::VolumeNotFound => "VOLUME_NOT_FOUND",
            Self::FileNotFound => "FILE_NOT_FOUND",
            Self::EndpointNotFound => "ENDPOINT_NOT_FOUND",
            Self::PreferenceNotFound => "PREFERENCE_NOT_FOUND",
            Self::ConversationNotFound => "CONVERSATION_NOT_FOUND",
            Self::QueryNotFound => "QUERY_NOT_FOUND",
            Self::QueryRunNotFound => "QUERY_RUN_NOT_FOUND",
            Self::GenieSpaceNotFound => "GENIE_SPACE_NOT_FOUND",
            Self::GenieConversationNotFound => "GENIE_CONVERSATION_NOT_FOUND",
            Self::GenieResultNotReady => "GENIE_RESULT_NOT_READY",
            Self::GenieMessageFailed => "GENIE_MESSAGE_FAILED",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::InvalidRequest => "INVALID_REQUEST",
            Self::InvalidIdentifier => "INVALID_IDENTIFIER",
            Self::EndpointNotReady => "ENDPOINT_NOT_READY",
            Self::FileAlreadyExists => "FILE_ALREADY_EXISTS",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::UriTooLong => "URI_TOO_LONG",
            Self::HeadersTooLarge => "HEADERS_TOO_LARGE",
            Self::RateLimited => "RATE_LIMITED",
            Self::UpstreamError => "UPSTREAM_ERROR",
            Self::ModelInputInvalid => "MODEL_INPUT_INVALID",
            Self::ModelError => "MODEL_ERROR",
            Self::UpstreamTimeout => "UPSTREAM_TIMEOUT",
            Self::ModelTimeout => "MODEL_TIMEOUT",
            Self::DatabaseUnavailable => "DATABASE_UNAVAILABLE",
            Self::StorageNotConfigured => "STORAGE_NOT_CONFIGURED",
            Self::WarehouseNotConfigured => "WAREHOUSE_NOT_CONFIGURED",
            Self::AssistantNotConfigured => "ASSISTANT_NOT_CONFIGURED",
            Self::AppCredentialsNotConfigured => "APP_CREDENTIALS_NOT_CONFIGURED",
            Self::InternalError => "INTERNAL_ERROR",
        }
    }
}

/// The one error envelope of `API.md`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code.
    pub error_code: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
    /// Structured detail, e.g. `{"field": "limit", "reason": "…"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
    /// Seconds to wait before retrying; mirrored in the `Retry-After` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// The request's correlation id (also in `X-Correlation-ID`).
    pub correlation_id: String,
}

/// Why a request failed; one variant per way of failing, each with its status and code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// `401 AUTH_MISSING`: no `X-Forwarded-Access-Token`, or an empty one.
    #[error("User authentication required. Please provide a valid user access token.")]
    AuthMissing,
    /// `401 AUTH_INVALID`: the token is malformed or the workspace rejects it.
    #[error("The user access token is not valid: {reason}.")]
    AuthInvalid {
        /// Why, in words safe to show (never the token).
        reason: &'static str,
        /// The workspace's answer, when it refused the token.
        #[source]
        source: Option<DatabricksError>,
    },
    /// `401 AUTH_EXPIRED`: the workspace says the token has expired.
    #[error("The user access token has expired. Please sign in again.")]
    AuthExpired(#[source] Option<DatabricksError>),
    /// `429 AUTH_RATE_LIMITED`: the workspace rate-limits the identity lookup.
    #[error("Too many identity lookups; please retry later.")]
    AuthRateLimited {
        /// Seconds, from the workspace's `Retry-After` (default 60).
        retry_after: u64,
        /// The workspace's answer.
        #[source]
        source: DatabricksError,
    },
    /// `502 AUTH_USER_IDENTITY_FAILED`: the workspace was unreachable or failed after retries.
    #[error("The user's identity could not be established with the Databricks workspace.")]
    AuthUserIdentityFailed(#[source] DatabricksError),
    /// `401 IDENTITY_MISMATCH`: `X-Forwarded-Email` differs from the token's identity.
    #[error("The forwarded e-mail does not match the identity of the access token.")]
    IdentityMismatch,
    /// `403 PERMISSION_DENIED`: the workspace denies the user access to the resource. When the
    /// denial names the missing privilege ([`MissingGrant`]), so do the message and `detail`.
    #[error("{}", permission_message(.0))]
    PermissionDenied(#[source] DatabricksError),
    /// `403 ADMIN_REQUIRED`: admin-only route.
    #[error("This route is for administrators only.")]
    AdminRequired,
    /// `404 ROUTE_NOT_FOUND`: no such API route.
    #[error("No API route matches this path.")]
    RouteNotFound,
    /// `404 <code>_NOT_FOUND`: the named resource does not exist or is invisible to the user.
    #[error("{message}")]
    NotFound {
        /// One of the `*_NOT_FOUND` codes.
        code: ErrorCode,
        /// e.g. `Catalog 'x' was not found.`
        message: String,
    },
    /// `405 METHOD_NOT_ALLOWED`.
    #[error("This method is not allowed on this route.")]
    MethodNotAllowed,
    /// `400 INVALID_REQUEST`: `detail` names the field and says why.
    #[error("Invalid request: {field}: {reason}")]
    InvalidRequest {
        /// The field (query parameter, path segment or body member), or `body`.
        field: String,
        /// Why it was refused.
        reason: String,
    },
    /// `400 INVALID_IDENTIFIER`: an unsafe catalog, schema, table or volume name.
    #[error("'{field}' is not a valid identifier.")]
    InvalidIdentifier {
        /// `catalog`, `schema`, `table` or `volume`.
        field: &'static str,
    },
    /// `409 ENDPOINT_NOT_READY`: the serving endpoint's state is not ready.
    #[error("Serving endpoint '{name}' is not ready (state {state}).")]
    EndpointNotReady {
        /// The endpoint.
        name: String,
        /// Its state, e.g. `NOT_READY`.
        state: String,
    },
    /// `409 FILE_ALREADY_EXISTS`: the file exists and the upload did not ask to overwrite it.
    #[error("The file already exists; upload with overwrite=true to replace it.")]
    FileAlreadyExists(#[source] DatabricksError),
    /// `413 PAYLOAD_TOO_LARGE`: `detail.limit_bytes` is the limit.
    #[error("The request body is larger than {limit_bytes} bytes.")]
    PayloadTooLarge {
        /// The limit that was exceeded.
        limit_bytes: usize,
    },
    /// `415 UNSUPPORTED_MEDIA_TYPE`.
    #[error("Unsupported content type: {expected}.")]
    UnsupportedMediaType {
        /// What is accepted instead.
        expected: &'static str,
    },
    /// `414 URI_TOO_LONG`: the request target is longer than `detail.limit_bytes`.
    #[error("The request target is longer than {limit_bytes} bytes.")]
    UriTooLong {
        /// The limit that was exceeded.
        limit_bytes: usize,
    },
    /// `431 HEADERS_TOO_LARGE`: more header fields than `detail.limit_headers`, or more bytes
    /// of them than `detail.limit_bytes`.
    #[error(
        "The request has more than {limit_headers} header fields or more than {limit_bytes} bytes of them."
    )]
    HeadersTooLarge {
        /// Most header fields.
        limit_headers: usize,
        /// Most bytes of header fields.
        limit_bytes: usize,
    },
    /// `429 RATE_LIMITED`: the workspace rate-limits a resource call; not retried.
    #[error("The Databricks workspace is rate limiting requests; please retry later.")]
    RateLimited {
        /// Seconds, from the workspace's `Retry-After` when it sent one.
        retry_after: Option<u64>,
        /// The workspace's answer.
        #[source]
        source: DatabricksError,
    },
    /// `429 RATE_LIMITED`: the caller is over one of their per-user quotas; `detail.quota`
    /// names it, `retry_after` says when the request would fit.
    #[error(
        "You are over your quota of {per_minute} {quota} per minute; please retry in {retry_after} s."
    )]
    QuotaExceeded {
        /// `usage_events` or `invocations` (the `quota` module's `QuotaName`).
        quota: &'static str,
        /// The quota.
        per_minute: u32,
        /// Whole seconds until the request would fit (at least 1).
        retry_after: u64,
    },
    /// `502 UPSTREAM_ERROR`: the workspace answered 5xx after retries, or an unreadable body.
    #[error("The Databricks workspace did not answer as expected.")]
    Upstream(#[source] DatabricksError),
    /// `400 MODEL_INPUT_INVALID`: the model endpoint refused the inputs with a 4xx; the
    /// message is the model's own (it describes the caller's input, not a secret).
    #[error("The model endpoint refused the inputs: {message}")]
    ModelInputInvalid {
        /// The endpoint's HTTP status.
        status: u16,
        /// The model's message.
        message: String,
        /// Its answer.
        #[source]
        source: DatabricksError,
    },
    /// `502 MODEL_ERROR`: the model endpoint returned an error.
    #[error("The model endpoint returned an error (HTTP {status}).")]
    ModelError {
        /// The endpoint's HTTP status.
        status: u16,
        /// Its answer.
        #[source]
        source: DatabricksError,
    },
    /// `502 MODEL_ERROR` mid-stream: the endpoint ended its stream with an error event.
    #[error("The model endpoint failed while streaming: {message}")]
    ModelStreamFailed {
        /// The endpoint's message, at most 1 000 characters.
        message: String,
    },
    /// `502 GENIE_MESSAGE_FAILED`: the Genie message ended `FAILED` or `CANCELLED`.
    #[error("Genie could not answer this question.")]
    GenieMessageFailed {
        /// The message's status, e.g. `FAILED`.
        status: String,
        /// Genie's error type, e.g. `SQL_EXECUTION_EXCEPTION`.
        error_type: Option<String>,
        /// Genie's message for people, at most [`GENIE_ERROR_CHARS`] characters.
        genie_error: Option<String>,
    },
    /// `409 GENIE_RESULT_NOT_READY`: the message has not finished, so no result can be read.
    #[error("The Genie message has not finished (status {status}); its result is not ready.")]
    GenieResultNotReady {
        /// The message's status, e.g. `ASKING_AI`.
        status: String,
    },
    /// `504 UPSTREAM_TIMEOUT`: an upstream call (or the request) exceeded its timeout.
    #[error("The Databricks workspace did not answer in time.")]
    UpstreamTimeout(#[source] Option<DatabricksError>),
    /// `504 MODEL_TIMEOUT`: the invocation exceeded `timeout_seconds`.
    #[error("The model did not answer within {timeout_seconds} s.")]
    ModelTimeout {
        /// The caller's `timeout_seconds`.
        timeout_seconds: u64,
    },
    /// `503 DATABASE_UNAVAILABLE`: the store cannot be reached; `retry_after` 5.
    #[error("The database is unavailable; please retry shortly.")]
    DatabaseUnavailable(#[source] StoreError),
    /// `503 DATABASE_UNAVAILABLE`: the inference-history outbox is full (the store has refused
    /// records for a while), so a model invocation is refused before the model is called: an
    /// invocation that could not be recorded is not made. `retry_after` 5.
    #[error(
        "The inference history cannot record more invocations right now; please retry shortly."
    )]
    HistoryBacklogFull {
        /// The outbox's capacity (`DBAPP_HISTORY_OUTBOX_CAPACITY`).
        capacity: usize,
    },
    /// `503 STORAGE_NOT_CONFIGURED`: no store is configured.
    #[error("No database is configured for this app, so this feature is unavailable.")]
    StorageNotConfigured,
    /// `503 WAREHOUSE_NOT_CONFIGURED`: table preview without `DATABRICKS_WAREHOUSE_ID`.
    #[error(
        "No SQL warehouse is configured (DATABRICKS_WAREHOUSE_ID), so tables cannot be previewed."
    )]
    WarehouseNotConfigured,
    /// `503 ASSISTANT_NOT_CONFIGURED`: the assistant without `DBAPP_ASSISTANT_ENDPOINT`.
    #[error(
        "No assistant endpoint is configured (DBAPP_ASSISTANT_ENDPOINT), so the assistant is unavailable."
    )]
    AssistantNotConfigured,
    /// `503 APP_CREDENTIALS_NOT_CONFIGURED`: a `run_as: app` query, and the server has no
    /// credentials of its own (`DATABRICKS_CLIENT_ID`/`DATABRICKS_CLIENT_SECRET`).
    #[error(
        "This query runs as the app, and the app has no credentials of its own (DATABRICKS_CLIENT_ID, DATABRICKS_CLIENT_SECRET)."
    )]
    AppCredentialsNotConfigured,
    /// `500 INTERNAL_ERROR`: anything else; the cause is only logged.
    #[error("An internal error occurred.")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// The code this error answers with.
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::AuthMissing => ErrorCode::AuthMissing,
            Self::AuthInvalid { .. } => ErrorCode::AuthInvalid,
            Self::AuthExpired(_) => ErrorCode::AuthExpired,
            Self::AuthRateLimited { .. } => ErrorCode::AuthRateLimited,
            Self::AuthUserIdentityFailed(_) => ErrorCode::AuthUserIdentityFailed,
            Self::IdentityMismatch => ErrorCode::IdentityMismatch,
            Self::PermissionDenied(_) => ErrorCode::PermissionDenied,
            Self::AdminRequired => ErrorCode::AdminRequired,
            Self::RouteNotFound => ErrorCode::RouteNotFound,
            Self::NotFound { code, .. } => *code,
            Self::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            Self::InvalidRequest { .. } => ErrorCode::InvalidRequest,
            Self::InvalidIdentifier { .. } => ErrorCode::InvalidIdentifier,
            Self::EndpointNotReady { .. } => ErrorCode::EndpointNotReady,
            Self::FileAlreadyExists(_) => ErrorCode::FileAlreadyExists,
            Self::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            Self::UnsupportedMediaType { .. } => ErrorCode::UnsupportedMediaType,
            Self::UriTooLong { .. } => ErrorCode::UriTooLong,
            Self::HeadersTooLarge { .. } => ErrorCode::HeadersTooLarge,
            Self::RateLimited { .. } | Self::QuotaExceeded { .. } => ErrorCode::RateLimited,
            Self::Upstream(_) => ErrorCode::UpstreamError,
            Self::ModelInputInvalid { .. } => ErrorCode::ModelInputInvalid,
            Self::ModelError { .. } | Self::ModelStreamFailed { .. } => ErrorCode::ModelError,
            Self::GenieMessageFailed { .. } => ErrorCode::GenieMessageFailed,
            Self::GenieResultNotReady { .. } => ErrorCode::GenieResultNotReady,
            Self::UpstreamTimeout(_) => ErrorCode::UpstreamTimeout,
            Self::ModelTimeout { .. } => ErrorCode::ModelTimeout,
            Self::DatabaseUnavailable(_) | Self::HistoryBacklogFull { .. } => {
                ErrorCode::DatabaseUnavailable
            }
            Self::StorageNotConfigured => ErrorCode::StorageNotConfigured,
            Self::WarehouseNotConfigured => ErrorCode::WarehouseNotConfigured,
            Self::AssistantNotConfigured => ErrorCode::AssistantNotConfigured,
            Self::AppCredentialsNotConfigured => ErrorCode::AppCredentialsNotConfigured,
            Self::Internal(_) => ErrorCode::InternalError,
        }
    }

    /// The error envelope of this error for the request with `correlation_id` (for answers made
    /// outside the request's task, e.g. an error event at the end of a stream).
    #[must_use]
    pub fn envelope(&self, correlation_id: &str) -> ErrorBody {
        ErrorBody {
            error_code: self.code(),
            message: self.to_string(),
            detail: self.detail(),
            retry_after: self.retry_after(),
            correlation_id: correlation_id.to_owned(),
        }
    }

    /// A `400 INVALID_REQUEST` about one field.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidRequest {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// A `404` with one of the `*_NOT_FOUND` codes.
    pub fn not_found(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::NotFound {
            code,
            message: message.into(),
        }
    }

    /// A `500 INTERNAL_ERROR` with its cause (logged, never returned).
    pub fn internal(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(error.into())
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::AuthRateLimited { retry_after, .. } => Some(*retry_after),
            Self::RateLimited { retry_after, .. } => *retry_after,
            Self::QuotaExceeded { retry_after, .. } => Some(*retry_after),
            Self::DatabaseUnavailable(_) | Self::HistoryBacklogFull { .. } => {
                Some(DATABASE_RETRY_AFTER_SECS)
            }
            _ => None,
        }
    }

    fn detail(&self) -> Option<Value> {
        match self {
            Self::InvalidRequest { field, reason } => {
                Some(json!({"field": field, "reason": reason}))
            }
            Self::InvalidIdentifier { field } => Some(json!({
                "field": field,
                "reason": format!("must match {IDENTIFIER_PATTERN}"),
            })),
            Self::EndpointNotReady { state, .. } => Some(json!({"state": state})),
            Self::PayloadTooLarge { limit_bytes } | Self::UriTooLong { limit_bytes } => {
                Some(json!({"limit_bytes": limit_bytes}))
            }
            Self::HeadersTooLarge {
                limit_headers,
                limit_bytes,
            } => Some(json!({"limit_headers": limit_headers, "limit_bytes": limit_bytes})),
            Self::QuotaExceeded {
                quota, per_minute, ..
            } => Some(json!({"quota": quota, "per_minute": per_minute})),
            Self::UnsupportedMediaType { expected } => Some(json!({"expected": expected})),
            Self::ModelError { status, .. } | Self::ModelInputInvalid { status, .. } => {
                Some(json!({"status": status}))
            }
            Self::ModelTimeout { timeout_seconds } => {
                Some(json!({"timeout_seconds": timeout_seconds}))
            }
            Self::HistoryBacklogFull { capacity } => {
                Some(json!({"history_outbox_capacity": capacity}))
            }
            Self::GenieMessageFailed {
                status,
                error_type,
                genie_error,
            } => Some(json!({"status": status, "type": error_type, "genie_error": genie_error})),
            Self::GenieResultNotReady { status } => Some(json!({"status": status})),
            Self::PermissionDenied(error) => MissingGrant::parse(error.message()).map(|grant| {
                json!({
                    "privilege": grant.privilege,
                    "securable_type": grant.securable_type,
                    "securable": grant.securable,
                })
            }),
            _ => None,
        }
    }

    /// Maps a failed identity lookup (SCIM Me with the user's token) to an `AUTH_*` error.
    #[must_use]
    pub fn from_identity(error: DatabricksError) -> Self {
        match error.kind() {
            ErrorKind::TokenExpired => Self::AuthExpired(Some(error)),
            ErrorKind::InvalidToken | ErrorKind::Unauthenticated => Self::AuthInvalid {
                reason: "the workspace rejected it",
                source: Some(error),
            },
            // A token without the `iam.current-user:read` scope cannot name its user: the user
            // (or the app's scopes) must change, not us, so this is not a 502.
            ErrorKind::PermissionDenied => Self::AuthInvalid {
                reason: "it may not read the user's identity",
                source: Some(error),
            },
            ErrorKind::RateLimited => Self::AuthRateLimited {
                retry_after: error
                    .retry_after()
                    .map_or(DEFAULT_AUTH_RETRY_AFTER_SECS, |d| d.as_secs().max(1)),
                source: error,
            },
            _ => Self::AuthUserIdentityFailed(error),
        }
    }

    /// Maps a failed resource call made as the user; `not_found` is the code of the resource
    /// named by the route, refined by the workspace's own code where it names another one (a
    /// missing catalog while listing tables is `CATALOG_NOT_FOUND`).
    #[must_use]
    pub fn from_upstream(error: DatabricksError, not_found: ErrorCode) -> Self {
        match error.kind() {
            ErrorKind::TokenExpired => Self::AuthExpired(Some(error)),
            ErrorKind::InvalidToken | ErrorKind::Unauthenticated => Self::AuthInvalid {
                reason: "the workspace rejected it",
                source: Some(error),
            },
            ErrorKind::PermissionDenied => Self::PermissionDenied(error),
            ErrorKind::NotFound => {
                let code = match error.error_code() {
                    Some("CATALOG_DOES_NOT_EXIST") => ErrorCode::CatalogNotFound,
                    Some("SCHEMA_DOES_NOT_EXIST") => ErrorCode::SchemaNotFound,
                    Some("TABLE_DOES_NOT_EXIST") => ErrorCode::TableNotFound,
                    _ => not_found,
                };
                let what = match code {
                    ErrorCode::CatalogNotFound => "catalog",
                    ErrorCode::SchemaNotFound => "schema",
                    ErrorCode::TableNotFound => "table",
                    ErrorCode::VolumeNotFound => "volume",
                    ErrorCode::FileNotFound => "file or directory",
                    ErrorCode::EndpointNotFound => "serving endpoint",
                    ErrorCode::GenieSpaceNotFound => "Genie space",
                    ErrorCode::GenieConversationNotFound => {
                        "Genie conversation, message or attachment"
                    }
                    _ => "resource",
                };
                Self::not_found(
                    code,
                    format!("The {what} does not exist or you cannot see it."),
                )
            }
            ErrorKind::RateLimited => Self::RateLimited {
                retry_after: error.retry_after().map(|d| d.as_secs().max(1)),
                source: error,
            },
            ErrorKind::Timeout => Self::UpstreamTimeout(Some(error)),
            ErrorKind::BadRequest => Self::InvalidRequest {
                field: "request".into(),
                reason: "the Databricks workspace refused the request as invalid".into(),
            },
            _ => Self::Upstream(error),
        }
    }
}

/// Most characters of Genie's own error message kept in `detail.genie_error`.
pub const GENIE_ERROR_CHARS: usize = 1_000;

/// `retry_after` of `DATABASE_UNAVAILABLE` (`API.md`).
pub const DATABASE_RETRY_AFTER_SECS: u64 = 5;
/// `retry_after` of `AUTH_RATE_LIMITED` when the workspace sent no `Retry-After`.
pub const DEFAULT_AUTH_RETRY_AFTER_SECS: u64 = 60;

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        if error.is_unavailable() {
            return Self::DatabaseUnavailable(error);
        }
        match error {
            StoreError::NotFound(resource) => Self::not_found(
                not_found_code(resource),
                format!("The {resource} was not found."),
            ),
            StoreError::InvalidInput(reason) => Self::invalid("body", reason),
            other => Self::internal(other),
        }
    }
}

/// The `*_NOT_FOUND` code of a resource the store did not find. An exhaustive match: a new
/// [`Resource`] must choose its code here rather than borrow another resource's.
fn not_found_code(resource: Resource) -> ErrorCode {
    match resource {
        Resource::Preference => ErrorCode::PreferenceNotFound,
        Resource::Conversation => ErrorCode::ConversationNotFound,
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => Self::UnsupportedMediaType {
                expected: "application/json",
            },
            JsonRejection::BytesRejection(bytes) => bytes_rejection(bytes.status()),
            other => Self::invalid("body", other.body_text()),
        }
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::BytesRejection) -> Self {
        bytes_rejection(rejection.status())
    }
}

fn bytes_rejection(status: StatusCode) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge {
            limit_bytes: BODY_LIMIT_BYTES,
        }
    } else {
        ApiError::invalid("body", "the request body could not be read")
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::invalid("query", rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::invalid("path", rejection.body_text())
    }
}

/// The marker `log_error` reads: the error a response was made from.
#[derive(Debug, Clone)]
pub struct LoggedError(pub Arc<ApiError>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        let body = self.envelope(current_correlation_id().as_str());
        let mut response = (code.status(), Json(&body)).into_response();
        if let Some(seconds) = body.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
            .extensions_mut()
            .insert(LoggedError(Arc::new(self)));
        response
    }
}

/// The envelope for a non-2xx response that no `ApiError` produced (the router's 404/405, the
/// body limit's 413, the timeout's 408, a caught panic's 500), by status.
#[must_use]
pub fn envelope_for_status(status: StatusCode, is_api: bool) -> Option<ApiError> {
    Some(match status {
        StatusCode::NOT_FOUND if is_api => ApiError::RouteNotFound,
        StatusCode::NOT_FOUND => return None,
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge {
            limit_bytes: BODY_LIMIT_BYTES,
        },
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType {
            expected: "application/json",
        },
        StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => {
            ApiError::UpstreamTimeout(None)
        }
        s if s.is_client_error() => ApiError::invalid("request", "the request was not accepted"),
        s if s.is_server_error() => {
            ApiError::internal(format!("a layer answered {s} without an error"))
        }
        _ => return None,
    })
}

/// Logs the error behind a response once, with its whole cause chain: 5xx at `error` (they are
/// ours to fix), 4xx at `debug` (the client's to fix). Called by the HTTP metrics layer
/// (`TrackHttpLayer`), inside the request span, so the line carries the correlation id.
pub fn log_error(response: &Response) {
    if let Some(LoggedError(error)) = response.extensions().get::<LoggedError>() {
        let chain = cause_chain(error.as_ref());
        let code = error.code().as_str();
        if response.status().is_server_error() {
            tracing::error!(event = "http.error", error_code = code, error = %chain);
        } else {
            tracing::debug!(event = "http.error", error_code = code, error = %chain);
        }
    }
}

/// `error: cause: cause…`, for logs.
#[must_use]
pub fn cause_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The message of a `PERMISSION_DENIED`: the missing privilege and its securable when the
/// workspace named them, else a generic sentence.
fn permission_message(error: &DatabricksError) -> String {
    match MissingGrant::parse(error.message()) {
        Some(grant) => format!(
            "You do not have the {} privilege on {} {}.",
            grant.privilege, grant.securable_type, grant.securable
        ),
        None => "You do not have permission to access this resource.".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_serialises_to_its_documented_spelling() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, json!(code.as_str()));
        }
    }

    #[test]
    fn identity_failures_map_to_auth_codes() {
        // Arrange
        let cases = [
            (
                403,
                r#"{"error_code":403,"message":"Invalid access token."}"#,
                ErrorCode::AuthInvalid,
            ),
            (
                403,
                r#"{"error_code":403,"message":"JWT has expired"}"#,
                ErrorCode::AuthExpired,
            ),
            (
                401,
                r#"{"error_code":"UNAUTHENTICATED","message":"x"}"#,
                ErrorCode::AuthInvalid,
            ),
            (
                429,
                r#"{"error_code":"REQUEST_LIMIT_EXCEEDED","message":"x"}"#,
                ErrorCode::AuthRateLimited,
            ),
            (503, "", ErrorCode::AuthUserIdentityFailed),
        ];
        for (status, body, expected) in cases {
            // Act
            let error = DatabricksError::from_response(status, None, None, None, body.as_bytes());
            // Assert
            assert_eq!(
                ApiError::from_identity(error).code(),
                expected,
                "{status} {body}"
            );
        }
    }

    #[test]
    fn auth_rate_limit_defaults_to_sixty_seconds() {
        let error = DatabricksError::from_response(429, None, None, None, b"");
        let api = ApiError::from_identity(error);
        assert_eq!(api.retry_after(), Some(60));
    }

    #[test]
    fn resource_failures_map_to_resource_codes() {
        let parse = |status: u16, body: &str| {
            DatabricksError::from_response(status, None, None, Some("7"), body.as_bytes())
        };
        let not_found = ApiError::from_upstream(
            parse(
                404,
                r#"{"error_code":"SCHEMA_DOES_NOT_EXIST","message":"x"}"#,
            ),
            ErrorCode::TableNotFound,
        );
        assert_eq!(not_found.code(), ErrorCode::SchemaNotFound);
        let denied = ApiError::from_upstream(
            parse(403, r#"{"error_code":"PERMISSION_DENIED","message":"x"}"#),
            ErrorCode::CatalogNotFound,
        );
        assert_eq!(denied.code(), ErrorCode::PermissionDenied);
        assert_eq!(
            denied.to_string(),
            "You do not have permission to access this resource."
        );
        assert_eq!(denied.detail(), None);
        let named = ApiError::from_upstream(
            parse(
                403,
                r#"{"error_code":"PERMISSION_DENIED","message":"User does not have USE SCHEMA on Schema 'main.sales'."}"#,
            ),
            ErrorCode::TableNotFound,
        );
        assert_eq!(
            named.to_string(),
            "You do not have the USE SCHEMA privilege on schema main.sales."
        );
        assert_eq!(
            named.detail(),
            Some(
                json!({"privilege": "USE SCHEMA", "securable_type": "schema", "securable": "main.sales"})
            )
        );
        let limited = ApiError::from_upstream(parse(429, ""), ErrorCode::CatalogNotFound);
        assert_eq!(limited.code(), ErrorCode::RateLimited);
        assert_eq!(limited.retry_after(), Some(7));
        assert_eq!(
            ApiError::from_upstream(parse(504, ""), ErrorCode::CatalogNotFound).code(),
            ErrorCode::UpstreamTimeout
        );
        assert_eq!(
            ApiError::from_upstream(parse(500, ""), ErrorCode::CatalogNotFound).code(),
            ErrorCode::UpstreamError
        );
    }

    #[test]
    fn a_store_not_found_names_its_resource() {
        // Act
        let error = ApiError::from(StoreError::NotFound(Resource::Preference));

        // Assert
        assert_eq!(error.code(), ErrorCode::PreferenceNotFound);
        assert_eq!(error.code().status(), StatusCode::NOT_FOUND);
        assert_eq!(error.to_string(), "The preference was not found.");
        let conversation = ApiError::from(StoreError::NotFound(Resource::Conversation));
        assert_eq!(conversation.code(), ErrorCode::ConversationNotFound);
        assert_eq!(conversation.to_string(), "The conversation was not found.");
    }

    #[test]
    fn messages_never_repeat_the_upstream_body() {
        let error =
            DatabricksError::from_response(500, None, None, None, b"secret-sql SELECT * FROM x");
        let api = ApiError::from_upstream(error, ErrorCode::CatalogNotFound);
        assert!(!api.to_string().contains("secret-sql"));
    }
}
