//! Model Serving, as the user: endpoints, one endpoint, its input schema, invocations (each one
//! recorded in the caller's inference history, whatever its outcome), and that history.
//!
//! An invocation first uses one of the caller's invocation quota (`crate::quota`; over it:
//! `429 RATE_LIMITED`, no upstream call and no history record), then takes a slot in the
//! history's outbox (none free: `503 DATABASE_UNAVAILABLE`, nothing invoked; see the `history`
//! module, which stores the records), then reads the endpoint (as the user): unknown →
//! `ENDPOINT_NOT_FOUND`, not ready → `ENDPOINT_NOT_READY` without invoking. The call is not
//! retried (a model call is not known to be idempotent) and is bounded by `timeout_seconds`
//! (`MODEL_TIMEOUT`, recorded as `TIMEOUT`). One deadline policy: `timeout_seconds` is 1 to the
//! request deadline minus its margin (`ServerSettings::model_timeout_max_secs`, 100 by default),
//! default [`DEFAULT_TIMEOUT_SECONDS`] (or that maximum when lower), so that a model timeout is
//! answered and recorded before the request deadline could cut the handler. The endpoint
//! refusing the inputs (its 4xx other than 403/404/429) is `400 MODEL_INPUT_INVALID` with the
//! model's own message (at most [`MODEL_MESSAGE_CHARS`] characters), since the caller must change
//! the inputs; any other error answer is `502 MODEL_ERROR`; both carry `detail.status`.
//!
//! The request body sent to the endpoint: `inputs` as is when it is an object already in one of
//! the serving formats (`messages`, `prompt`, `input`, `inputs`, `instances`,
//! `dataframe_split`, `dataframe_records`), else wrapped as `{"inputs": <inputs>}`.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use chrono::Utc;
use dbapp_databricks::api::ServingEndpoint;
use dbapp_databricks::{DatabricksError, ErrorKind};
use dbapp_store::InferenceStatus;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{CountedPage, Cursor, ItemsPage, PageSpec, Pagination, page_upstream, rfc3339_ms};
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{ApiJson, Endpoint, Name};
use crate::history::Outcome;
use crate::state::AppState;

/// Endpoint state as the API reports it.
#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EndpointStateName {
    /// Serving.
    Ready,
    /// Not serving.
    NotReady,
    /// Serving, a new configuration is being deployed.
    Updating,
    /// The last configuration update failed.
    UpdateFailed,
}

/// A serving endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointItem {
    /// Name.
    pub name: String,
    /// Id.
    #[schema(required)]
    pub id: Option<String>,
    /// Task, e.g. `llm/v1/chat`; null for custom models.
    #[schema(required)]
    pub task: Option<String>,
    /// State.
    pub state: EndpointStateName,
    /// The first served entity's model.
    #[schema(required)]
    pub model_name: Option<String>,
    /// Its version.
    #[schema(required)]
    pub model_version: Option<String>,
    /// Creation time (RFC 3339).
    #[schema(required)]
    pub creation_timestamp: Option<String>,
}

/// A served entity.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServedEntityItem {
    /// Served entity name.
    #[schema(required)]
    pub name: Option<String>,
    /// Model name.
    #[schema(required)]
    pub entity_name: Option<String>,
    /// Model version.
    #[schema(required)]
    pub entity_version: Option<String>,
}

/// A serving endpoint with its served entities: the list item's fields, and more.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointDetail {
    /// The fields of the list item.
    #[serde(flatten)]
    pub endpoint: EndpointItem,
    /// Served entities.
    pub served_entities: Vec<ServedEntityItem>,
    /// Last update (RFC 3339).
    #[schema(required)]
    pub last_updated_timestamp: Option<String>,
}

/// What an endpoint takes.
#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EndpointKind {
    /// `llm/v1/chat`.
    Chat,
    /// `llm/v1/completions`.
    Completions,
    /// `llm/v1/embeddings`.
    Embeddings,
    /// A custom model.
    Custom,
    /// Nothing says.
    Unknown,
}

/// An endpoint's input description.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointSchema {
    /// The endpoint.
    pub endpoint_name: String,
    /// From the endpoint's task and served entity, never guessed from its name.
    pub kind: EndpointKind,
    /// The request body's JSON schema, from the endpoint's OpenAPI description.
    #[schema(required)]
    pub input_schema: Option<Value>,
    /// An example request body.
    pub example: Value,
}

/// An invocation request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvocationRequest {
    /// The model input (any JSON).
    pub inputs: Value,
    /// 1 to the request deadline minus its margin: 100 s by default
    /// (`DBAPP_REQUEST_TIMEOUT_SECS` − 10); default 30.
    #[schema(minimum = 1, maximum = 100)]
    pub timeout_seconds: Option<i64>,
}

/// A successful invocation.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvocationResponse {
    /// The id under which it is recorded in the inference history.
    pub request_id: Uuid,
    /// The endpoint.
    pub endpoint_name: String,
    /// The model's answer (`predictions` when it has them, else its whole body).
    pub predictions: Value,
    /// Wall time of the call.
    pub execution_time_ms: i64,
}

/// An entry of the inference history.
#[derive(Debug, Serialize, ToSchema)]
pub struct InferenceLogItem {
    /// The invocation's id.
    pub request_id: Uuid,
    /// The endpoint.
    pub endpoint_name: String,
    /// `SUCCESS`, `ERROR` or `TIMEOUT`.
    #[schema(value_type = String, example = "SUCCESS")]
    pub status: InferenceStatus,
    /// The inputs, with NUL characters replaced by U+FFFD; when `inputs_truncated`, a string
    /// holding the first `DBAPP_HISTORY_INPUT_MAX_BYTES` bytes of their JSON.
    pub inputs: Value,
    /// Whether the inputs were larger than the history keeps (64 KiB of JSON by default).
    pub inputs_truncated: bool,
    /// The predictions, on success (NUL characters replaced by U+FFFD).
    #[schema(required)]
    pub predictions: Option<Value>,
    /// Why it failed.
    #[schema(required)]
    pub error_message: Option<String>,
    /// Wall time.
    pub execution_time_ms: i64,
    /// Start (RFC 3339).
    pub created_at: chrono::DateTime<Utc>,
    /// End (RFC 3339).
    #[schema(required)]
    pub completed_at: Option<chrono::DateTime<Utc>>,
}

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_endpoints))
        .routes(routes!(get_endpoint))
        .routes(routes!(get_endpoint_schema))
        .routes(routes!(invoke_endpoint))
        .routes(routes!(list_inference_logs))
}

fn state_of(endpoint: &ServingEndpoint) -> EndpointStateName {
    let state = endpoint.state.as_ref();
    let ready = state.and_then(|s| s.ready.as_deref());
    let update = state.and_then(|s| s.config_update.as_deref());
    match (ready, update) {
        (_, Some("UPDATE_FAILED")) => EndpointStateName::UpdateFailed,
        (Some("READY"), Some("IN_PROGRESS")) => EndpointStateName::Updating,
        (Some("READY"), _) => EndpointStateName::Ready,
        _ => EndpointStateName::NotReady,
    }
}

fn endpoint_item(endpoint: &ServingEndpoint) -> EndpointItem {
    let first = endpoint.served_entities().first();
    EndpointItem {
        name: endpoint.name.clone(),
        id: endpoint.id.clone(),
        task: endpoint.task.clone(),
        state: state_of(endpoint),
        model_name: first.and_then(|e| e.entity_name.clone()),
        model_version: first.and_then(|e| e.entity_version.clone()),
        creation_timestamp: rfc3339_ms(endpoint.creation_timestamp),
    }
}

/// The serving endpoints the user can see.
#[utoipa::path(get, path = "/api/model-serving/endpoints", tag = "model-serving",
    security(("user_token" = [])), params(Pagination), responses(
    (status = 200, body = ItemsPage<EndpointItem>),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 429, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody),
))]
async fn list_endpoints(
    State(app): State<AppState>,
    caller: Caller,
    spec: PageSpec,
) -> Result<Json<ItemsPage<EndpointItem>>, ApiError> {
    if spec.cursor.upstream.is_some() {
        return Err(ApiError::invalid(
            "page_token",
            "is not a token this API issued",
        ));
    }
    let endpoints = caller
        .workspace(&app)
        .list_serving_endpoints()
        .await
        .map_err(|e| caller.upstream_error(&app, e, ErrorCode::EndpointNotFound))?;
    // The upstream list is not paginated: one page holds everything.
    let (items, next) = page_upstream(&spec, |_, _| {
        let items: Vec<EndpointItem> = endpoints.iter().map(endpoint_item).collect();
        async move { Ok::<_, ApiError>((items, None)) }
    })
    .await?;
    Ok(Json(ItemsPage {
        items,
        next_page_token: next.map(|c: Cursor| c.encode()),
    }))
}

async fn fetch_endpoint(
    app: &AppState,
    caller: &Caller,
    name: &Name<Endpoint>,
) -> Result<ServingEndpoint, ApiError> {
    caller
        .workspace(app)
        .get_serving_endpoint(name)
        .await
        .map_err(|e| caller.upstream_error(app, e, ErrorCode::EndpointNotFound))
}

/// One serving endpoint.
#[utoipa::path(get, path = "/api/model-serving/endpoints/{name}", tag = "model-serving",
    security(("user_token" = [])), params(("name" = String, Path)), responses(
    (status = 200, body = EndpointDetail),
    (status = 400, body = ErrorBody, description = "INVALID_REQUEST (the name)"),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "ENDPOINT_NOT_FOUND"),
    (status = 429, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody),
))]
async fn get_endpoint(
    State(app): State<AppState>,
    caller: Caller,
    name: Name<Endpoint>,
) -> Result<Json<EndpointDetail>, ApiError> {
    let endpoint = fetch_endpoint(&app, &caller, &name).await?;
    let item = endpoint_item(&endpoint);
    Ok(Json(EndpointDetail {
        endpoint: item,
        served_entities: endpoint
            .served_entities()
            .iter()
            .map(|e| ServedEntityItem {
                name: e.name.clone(),
                entity_name: e.entity_name.clone(),
                entity_version: e.entity_version.clone(),
            })
            .collect(),
        last_updated_timestamp: rfc3339_ms(endpoint.last_updated_timestamp),
    }))
}

fn kind_of(endpoint: &ServingEndpoint) -> EndpointKind {
    match endpoint.task.as_deref() {
        Some("llm/v1/chat") => EndpointKind::Chat,
        Some("llm/v1/completions") => EndpointKind::Completions,
        Some("llm/v1/embeddings") => EndpointKind::Embeddings,
        Some(_) => EndpointKind::Custom,
        None if endpoint
            .served_entities()
            .iter()
            .any(|e| e.entity_name.is_some()) =>
        {
            EndpointKind::Custom
        }
        None => EndpointKind::Unknown,
    }
}

fn default_example(kind: EndpointKind) -> Value {
    match kind {
        EndpointKind::Chat => json!({"messages": [{"role": "user", "content": "Hello!"}]}),
        EndpointKind::Completions => json!({"prompt": "Hello"}),
        EndpointKind::Embeddings => json!({"input": ["Hello"]}),
        EndpointKind::Custom | EndpointKind::Unknown => json!({"inputs": {}}),
    }
}

/// What the endpoint takes: kind, input schema and an example.
#[utoipa::path(get, path = "/api/model-serving/endpoints/{name}/schema", tag = "model-serving",
    security(("user_token" = [])), params(("name" = String, Path)), responses(
    (status = 200, body = EndpointSchema),
    (status = 400, body = ErrorBody, description = "INVALID_REQUEST (the name)"),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "ENDPOINT_NOT_FOUND"),
    (status = 429, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody),
))]
async fn get_endpoint_schema(
    State(app): State<AppState>,
    caller: Caller,
    name: Name<Endpoint>,
) -> Result<Json<EndpointSchema>, ApiError> {
    let endpoint = fetch_endpoint(&app, &caller, &name).await?;
    let kind = kind_of(&endpoint);
    // The endpoint's own OpenAPI description, where the workspace has one; its absence is not
    // an error (older endpoints have none).
    let openapi = caller.workspace(&app).get_open_api(&name).await.ok();
    let body = openapi.as_ref().and_then(|doc| {
        doc.get("paths")?
            .as_object()?
            .values()
            .find_map(|item| item.pointer("/post/requestBody/content/application~1json"))
            .cloned()
    });
    let input_schema = body.as_ref().and_then(|b| b.get("schema").cloned());
    let example = body
        .as_ref()
        .and_then(|b| b.get("example").cloned())
        .or_else(|| {
            endpoint
                .served_entities()
                .iter()
                .find_map(|e| e.other.get("input_example").cloned())
        })
        .unwrap_or_else(|| default_example(kind));
    Ok(Json(EndpointSchema {
        endpoint_name: endpoint.name,
        kind,
        input_schema,
        example,
    }))
}

const SERVING_KEYS: &[&str] = &[
    "messages",
    "prompt",
    "input",
    "inputs",
    "instances",
    "dataframe_split",
    "dataframe_records",
];

fn request_body(inputs: &Value) -> Value {
    match inputs {
        Value::Object(map) if map.keys().any(|k| SERVING_KEYS.contains(&k.as_str())) => {
            inputs.clone()
        }
        other => json!({ "inputs": other }),
    }
}

/// Invokes the endpoint as the user; every outcome is recorded in the caller's history.
///
/// Each invocation uses one of the caller's invocation quota; over it (429), nothing is called
/// or recorded.
#[utoipa::path(post, path = "/api/model-serving/endpoints/{name}/invocations", tag = "model-serving",
    security(("user_token" = [])), params(("name" = String, Path)), request_body = InvocationRequest,
    responses(
    (status = 200, body = InvocationResponse),
    (status = 400, body = ErrorBody, description = "INVALID_REQUEST, MODEL_INPUT_INVALID (detail.status)"),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "ENDPOINT_NOT_FOUND"),
    (status = 409, body = ErrorBody, description = "ENDPOINT_NOT_READY"),
    (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
    (status = 429, body = ErrorBody, description = "RATE_LIMITED: the workspace's, or the caller's invocation quota (detail.quota = invocations); Retry-After set"),
    (status = 502, body = ErrorBody, description = "MODEL_ERROR (detail.status), UPSTREAM_ERROR"),
    (status = 503, body = ErrorBody, description = "DATABASE_UNAVAILABLE: the history cannot record more invocations; nothing was invoked"),
    (status = 504, body = ErrorBody, description = "MODEL_TIMEOUT"),
))]
async fn invoke_endpoint(
    State(app): State<AppState>,
    caller: Caller,
    name: Name<Endpoint>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<InvocationResponse>, ApiError> {
    let request: InvocationRequest = super::from_json_object("body", body)?;
    let max = app.settings.model_timeout_max_secs();
    let timeout_seconds = match request.timeout_seconds {
        None => DEFAULT_TIMEOUT_SECONDS.min(max),
        Some(n) if n >= 1 && n.unsigned_abs() <= max => n.unsigned_abs(),
        Some(_) => {
            return Err(ApiError::invalid(
                "timeout_seconds",
                format!(
                    "must be between 1 and {max} (the request deadline of {} s minus its margin)",
                    app.settings.dbapp.request_timeout_secs
                ),
            ));
        }
    };
    app.quotas.check_invocation(caller.user_id())?;
    let request_id = Uuid::new_v4();
    let deadline = tokio::time::Instant::now().checked_add(app.settings.request_timeout());
    let pending = app.history.reserve(
        caller.user_id().clone(),
        request_id,
        &name,
        &request.inputs,
        deadline,
    )?;
    let started = Instant::now();
    let outcome = invoke(&app, &caller, &name, &request.inputs, timeout_seconds).await;
    let execution_time_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let (status, predictions, error_message) = match &outcome {
        Ok(predictions) => (InferenceStatus::Success, Some(predictions.clone()), None),
        Err(ApiError::ModelTimeout { .. }) => (
            InferenceStatus::Timeout,
            None,
            Some(format!("no answer within {timeout_seconds} s")),
        ),
        Err(error) => (InferenceStatus::Error, None, Some(error.to_string())),
    };
    pending
        .record(Outcome {
            status,
            predictions,
            error_message,
            execution_time_ms,
        })
        .await;
    let predictions = outcome?;
    Ok(Json(InvocationResponse {
        request_id,
        endpoint_name: name.to_string(),
        predictions,
        execution_time_ms,
    }))
}

async fn invoke(
    app: &AppState,
    caller: &Caller,
    name: &Name<Endpoint>,
    inputs: &Value,
    timeout_seconds: u64,
) -> Result<Value, ApiError> {
    ready_endpoint(app, caller, name).await?;
    let timeout = Duration::from_secs(timeout_seconds);
    let workspace = caller.workspace(app).with_timeout(timeout);
    let call = workspace.invoke_serving_endpoint(name, request_body(inputs));
    let invocation = match tokio::time::timeout(timeout, call).await {
        Err(_) => return Err(ApiError::ModelTimeout { timeout_seconds }),
        Ok(result) => result.map_err(|e| model_error(app, caller, name, e, timeout_seconds))?,
    };
    let body = invocation.body;
    Ok(match body {
        Value::Object(mut map) if map.contains_key("predictions") => {
            map.remove("predictions").unwrap_or(Value::Null)
        }
        other => other,
    })
}

/// Reads the endpoint as the user and checks that it serves.
///
/// # Errors
/// `ENDPOINT_NOT_FOUND` and the other upstream errors of the read, `ENDPOINT_NOT_READY`.
async fn ready_endpoint(
    app: &AppState,
    caller: &Caller,
    name: &Name<Endpoint>,
) -> Result<(), ApiError> {
    let endpoint = fetch_endpoint(app, caller, name).await?;
    let state = state_of(&endpoint);
    if matches!(
        state,
        EndpointStateName::Ready | EndpointStateName::Updating
    ) {
        return Ok(());
    }
    Err(ApiError::EndpointNotReady {
        name: name.to_string(),
        state: serde_json::to_value(state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
    })
}

/// `timeout_seconds` when the request does not say (lowered to the maximum when that is less).
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 30;

/// Longest model message a `MODEL_INPUT_INVALID` answer repeats.
pub const MODEL_MESSAGE_CHARS: usize = 1000;

/// The API error for an invocation the endpoint refused or failed.
pub(super) fn model_error(
    app: &AppState,
    caller: &Caller,
    name: &str,
    error: DatabricksError,
    timeout_seconds: u64,
) -> ApiError {
    match (error.kind(), error.status()) {
        (ErrorKind::Timeout, None) => ApiError::ModelTimeout { timeout_seconds },
        (kind, _)
            if kind.is_auth_failure()
                || matches!(
                    kind,
                    ErrorKind::PermissionDenied | ErrorKind::NotFound | ErrorKind::RateLimited
                ) =>
        {
            caller.upstream_error(app, error, ErrorCode::EndpointNotFound)
        }
        (ErrorKind::BadRequest, _) if error.error_code() == Some("INVALID_STATE") => {
            ApiError::EndpointNotReady {
                name: name.to_owned(),
                state: "NOT_READY".to_owned(),
            }
        }
        (_, Some(status)) if (400..500).contains(&status) => ApiError::ModelInputInvalid {
            status,
            message: error.message().chars().take(MODEL_MESSAGE_CHARS).collect(),
            source: error,
        },
        (_, Some(status)) => ApiError::ModelError {
            status,
            source: error,
        },
        _ => ApiError::Upstream(error),
    }
}

/// The caller's inference history, newest first.
#[utoipa::path(get, path = "/api/model-serving/logs", tag = "model-serving",
    security(("user_token" = [])), params(Pagination), responses(
    (status = 200, body = CountedPage<InferenceLogItem>),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    (status = 503, body = ErrorBody, description = "DATABASE_UNAVAILABLE, STORAGE_NOT_CONFIGURED"),
))]
async fn list_inference_logs(
    State(app): State<AppState>,
    caller: Caller,
    spec: PageSpec,
) -> Result<Json<CountedPage<InferenceLogItem>>, ApiError> {
    let page = app
        .store()?
        .list_inference_logs(caller.user_id(), spec.store_page()?)
        .await?;
    Ok(Json(CountedPage::from_store(&spec, page, |l| {
        InferenceLogItem {
            request_id: l.request_id,
            endpoint_name: l.endpoint_name,
            status: l.status,
            inputs: l.inputs,
            inputs_truncated: l.inputs_truncated,
            predictions: l.predictions,
            error_message: l.error_message,
            execution_time_ms: l.execution_time_ms,
            created_at: l.created_at,
            completed_at: l.completed_at,
        }
    })))
}
