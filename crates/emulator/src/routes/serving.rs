//! Model Serving (`shared/UPSTREAM.md` §4.3, `shared/UPSTREAM-2.md` §2): endpoint list and get,
//! the endpoint's OpenAPI description, invocations, and the OpenAI-compatible routes, each
//! endpoint answering with its fixture [`Behavior`].
//!
//! The invocation route speaks the protocol of the endpoint's behaviour (a `chat` endpoint
//! speaks the Responses API when the body has `input` and no `messages`). The OpenAI-compatible
//! routes under `/serving-endpoints/` (`chat/completions`, `completions`, `embeddings`,
//! `responses`) take the endpoint from the body's `model`, as OpenAI clients with base URL
//! `{host}/serving-endpoints` send it, and refuse an endpoint whose behaviour does not serve
//! their protocol. `stream: true` turns a chat, completions or Responses answer into server-sent
//! events (`stream.rs`); embeddings and custom models have no stream form and ignore it.
//!
//! Invocations of an endpoint whose state is not `READY` are refused with
//! `400 INVALID_STATE` (the real service's exact answer is unconfirmed).
//!
//! Submodules: `conversation` (message validation and the scripted model), `openai` (chat and
//! text completion shapes), `responses` (the Responses API), `stream` (SSE pacing and faults).

mod conversation;
mod openai;
mod responses;
mod stream;

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use serde_json::{Map, Value, json};

use self::conversation::{Conversation, Reply};
use self::openai::Answer;
use self::stream::Pacing;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::faults::StreamFault;
use crate::fixture::{Behavior, ServingEndpoint};
use crate::routes::{JsonBody, base_url};
use crate::state::{Emulator, Principal, group_id};

/// Epoch milliseconds every fixture endpoint claims to have been created at (2025-01-01).
const CREATED_AT_MS: i64 = 1_735_689_600_000;

/// Dimensions of the deterministic embedding vectors.
const EMBEDDING_DIMENSIONS: usize = 8;

/// The wire protocol of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// `{"predictions": …}` for `dataframe_*`, `instances` or `inputs`.
    Custom,
    /// OpenAI chat completions.
    Chat,
    /// OpenAI text completions.
    Completions,
    /// OpenAI embeddings.
    Embeddings,
    /// OpenAI Responses.
    Responses,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Self::Custom => "custom",
            Self::Chat => "chat completions",
            Self::Completions => "completions",
            Self::Embeddings => "embeddings",
            Self::Responses => "responses",
        }
    }
}

pub(super) fn router() -> Router<Emulator> {
    Router::new()
        .route("/api/2.0/serving-endpoints", get(list_endpoints))
        // mlflow's deployment client lists with a trailing slash (`shared/UPSTREAM-2.md` §2.1).
        .route("/api/2.0/serving-endpoints/", get(list_endpoints))
        .route("/api/2.0/serving-endpoints/{name}", get(get_endpoint))
        .route(
            "/api/2.0/serving-endpoints/{name}/openapi",
            get(get_openapi),
        )
        .route("/serving-endpoints/{name}/invocations", post(invoke))
        .route("/serving-endpoints/chat/completions", post(openai_chat))
        .route("/serving-endpoints/completions", post(openai_completions))
        .route("/serving-endpoints/embeddings", post(openai_embeddings))
        .route("/serving-endpoints/responses", post(openai_responses))
}

async fn list_endpoints(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
) -> Json<Value> {
    let endpoints: Vec<Value> = emulator
        .fixture
        .serving_endpoints
        .iter()
        .filter(|e| principal.admitted_by(e.readers.as_ref()))
        .map(|e| endpoint_info(e, false))
        .collect();
    Json(json!({ "endpoints": endpoints }))
}

async fn get_endpoint(
    State(emulator): State<Emulator>,
    headers: axum::http::HeaderMap,
    Authenticated(principal): Authenticated,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let endpoint = visible_endpoint(&emulator, &principal, &name)?;
    let mut info = endpoint_info(endpoint, true);
    info["endpoint_url"] = json!(format!(
        "{}/serving-endpoints/{}/invocations",
        base_url(&headers, &emulator),
        endpoint.name
    ));
    Ok(Json(info))
}

/// An OpenAPI description of the invocation route, with the first served entity's input example.
async fn get_openapi(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let endpoint = visible_endpoint(&emulator, &principal, &name)?;
    let example = endpoint
        .served_entities
        .iter()
        .find_map(|e| e.input_example.clone())
        .unwrap_or_else(|| default_example(endpoint.behavior));
    let path = format!("/serving-endpoints/{}/invocations", endpoint.name);
    Ok(Json(json!({
        "openapi": "3.1.0",
        "info": {"title": endpoint.name, "version": "1"},
        "paths": {
            path: {"post": {
                "requestBody": {"content": {"application/json": {
                    "schema": request_schema(endpoint.behavior),
                    "example": example,
                }}},
                "responses": {"200": {"description": "Successful invocation"}},
            }}
        }
    })))
}

async fn invoke(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path(name): Path<String>,
    fault: Option<Extension<StreamFault>>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let endpoint = visible_endpoint(&emulator, &principal, &name)?;
    answer(&emulator, endpoint, body, None, fault.map(|f| f.0)).await
}

async fn openai_chat(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    fault: Option<Extension<StreamFault>>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    openai_invoke(&emulator, &principal, body, Protocol::Chat, fault).await
}

async fn openai_completions(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    fault: Option<Extension<StreamFault>>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    openai_invoke(&emulator, &principal, body, Protocol::Completions, fault).await
}

async fn openai_embeddings(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    fault: Option<Extension<StreamFault>>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    openai_invoke(&emulator, &principal, body, Protocol::Embeddings, fault).await
}

async fn openai_responses(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    fault: Option<Extension<StreamFault>>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    openai_invoke(&emulator, &principal, body, Protocol::Responses, fault).await
}

/// An OpenAI-compatible route: the endpoint is the body's `model`.
async fn openai_invoke(
    emulator: &Emulator,
    principal: &Principal,
    body: Value,
    protocol: Protocol,
    fault: Option<Extension<StreamFault>>,
) -> Result<Response, ApiError> {
    let name = body
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("Missing required field: model"))?;
    let endpoint = visible_endpoint(emulator, principal, name)?;
    answer(emulator, endpoint, body, Some(protocol), fault.map(|f| f.0)).await
}

fn visible_endpoint<'a>(
    emulator: &'a Emulator,
    principal: &Principal,
    name: &str,
) -> Result<&'a ServingEndpoint, ApiError> {
    let endpoint = emulator
        .fixture
        .serving_endpoints
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| {
            ApiError::not_found(
                "RESOURCE_DOES_NOT_EXIST",
                format!("Endpoint with name '{name}' does not exist."),
            )
        })?;
    if !principal.admitted_by(endpoint.readers.as_ref()) {
        return Err(ApiError::permission_denied(format!(
            "User does not have permission 'Query' on Serving Endpoint '{name}'."
        )));
    }
    Ok(endpoint)
}

/// Answers an invocation in `route`'s protocol (the endpoint's own on the invocation route).
async fn answer(
    emulator: &Emulator,
    endpoint: &ServingEndpoint,
    body: Value,
    route: Option<Protocol>,
    fault: Option<StreamFault>,
) -> Result<Response, ApiError> {
    if endpoint.ready != "READY" {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_STATE",
            format!(
                "Endpoint '{}' is not ready to serve requests (state: {}).",
                endpoint.name, endpoint.ready
            ),
        ));
    }
    let Value::Object(body) = body else {
        return Err(ApiError::bad_request(
            "The request body must be a JSON object.",
        ));
    };
    let settings = emulator.settings();
    if settings.serving_latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(settings.serving_latency_ms)).await;
    }
    let model = model_name(endpoint);
    let protocol = protocol_of(endpoint, &body, route)?;
    let stream = match body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(stream)) => *stream,
        Some(_) => return Err(ApiError::bad_request("'stream' must be a boolean.")),
    };
    let pacing = Pacing::new(settings.serving_chunk_latency_ms, fault);
    let max_tokens = body.get("max_tokens").and_then(Value::as_u64);
    let new_answer = |prompt_tokens, prefix: &str| Answer {
        id: format!("{prefix}{}", uuid::Uuid::new_v4().simple()),
        created: Utc::now().timestamp(),
        model,
        prompt_tokens,
    };
    let mut response = match protocol {
        Protocol::Custom => Json(echo(&body)?).into_response(),
        Protocol::Embeddings => Json(embeddings(&body, model)?).into_response(),
        Protocol::Chat => {
            let conversation = Conversation::from_chat(&body)?;
            let reply = conversation.reply(&endpoint.rules, max_tokens);
            let answer = new_answer(conversation.prompt_tokens, "chatcmpl-");
            if stream {
                let chunks = answer.chat_chunks(&reply, openai::include_usage(&body)?);
                stream::sse(chunks, pacing, openai::error_event)
            } else {
                Json(answer.chat_body(&reply)).into_response()
            }
        }
        Protocol::Completions => {
            let prompts = openai::prompts(&body)?;
            let replies: Vec<Reply> = prompts
                .iter()
                .map(|p| Reply::text(&format!("Completion of: {p}"), max_tokens))
                .collect();
            let words = prompts.iter().map(|p| conversation::word_count(p)).sum();
            let answer = new_answer(words, "cmpl-");
            if stream {
                let chunks = answer.completion_chunks(&replies, openai::include_usage(&body)?);
                stream::sse(chunks, pacing, openai::error_event)
            } else {
                Json(answer.completion_body(&replies)).into_response()
            }
        }
        Protocol::Responses => {
            let conversation = responses::conversation(&body)?;
            let max_tokens = responses::max_output_tokens(&body);
            let reply = conversation.reply(&endpoint.rules, max_tokens);
            let answer = new_answer(conversation.prompt_tokens, "resp_");
            if stream {
                let events = answer.responses_events(&reply);
                stream::sse(events, pacing, responses::error_event)
            } else {
                Json(answer.responses_body(&reply)).into_response()
            }
        }
    };
    if let Some(entity) = endpoint.served_entities.first()
        && let Ok(value) = HeaderValue::from_str(&entity.name)
    {
        response.headers_mut().insert("served-model-name", value);
    }
    Ok(response)
}

/// The protocol a request is answered in: the route's, which the endpoint must serve, or on the
/// invocation route the endpoint's own.
fn protocol_of(
    endpoint: &ServingEndpoint,
    body: &Map<String, Value>,
    route: Option<Protocol>,
) -> Result<Protocol, ApiError> {
    let served: &[Protocol] = match endpoint.behavior {
        Behavior::Echo => &[Protocol::Custom],
        Behavior::Chat => &[Protocol::Chat, Protocol::Responses],
        Behavior::Completions => &[Protocol::Completions],
        Behavior::Embeddings => &[Protocol::Embeddings],
        Behavior::Error => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                format!(
                    "Model '{}' failed to process the request.",
                    model_name(endpoint)
                ),
            ));
        }
    };
    match route {
        Some(protocol) if served.contains(&protocol) => Ok(protocol),
        Some(protocol) => Err(ApiError::bad_request(format!(
            "Endpoint '{}' does not serve the {} API.",
            endpoint.name,
            protocol.name()
        ))),
        None if endpoint.behavior == Behavior::Chat
            && body.contains_key("input")
            && !body.contains_key("messages") =>
        {
            Ok(Protocol::Responses)
        }
        None => Ok(served[0]),
    }
}

/// The model an endpoint serves (its first entity), as answers name it in `model`.
fn model_name(endpoint: &ServingEndpoint) -> &str {
    endpoint
        .served_entities
        .first()
        .map_or(endpoint.name.as_str(), |e| e.entity_name.as_str())
}

const CUSTOM_INPUTS: [&str; 4] = [
    "dataframe_split",
    "dataframe_records",
    "instances",
    "inputs",
];

fn echo(body: &Map<String, Value>) -> Result<Value, ApiError> {
    let present: Vec<&str> = CUSTOM_INPUTS
        .into_iter()
        .filter(|k| body.contains_key(*k))
        .collect();
    match present.as_slice() {
        [key] => Ok(json!({ "predictions": body[*key] })),
        _ => Err(ApiError::bad_request(format!(
            "The request must contain exactly one of {}.",
            CUSTOM_INPUTS.join(", ")
        ))),
    }
}

/// Embeddings of `input`, as float arrays or, with `encoding_format: "base64"` (what the
/// `openai` client asks for by default), base64 of little-endian float32.
fn embeddings(body: &Map<String, Value>, model: &str) -> Result<Value, ApiError> {
    let refused = || ApiError::bad_request("'input' must be a string or a list of strings.");
    let inputs: Vec<&str> = match body.get("input") {
        Some(Value::String(p)) => vec![p.as_str()],
        Some(Value::Array(list)) if !list.is_empty() => list
            .iter()
            .map(|p| p.as_str().ok_or_else(refused))
            .collect::<Result<_, _>>()?,
        _ => return Err(refused()),
    };
    let base64 = match body.get("encoding_format") {
        None | Some(Value::Null) => false,
        Some(Value::String(f)) if f == "float" => false,
        Some(Value::String(f)) if f == "base64" => true,
        Some(_) => {
            return Err(ApiError::bad_request(
                "'encoding_format' must be 'float' or 'base64'.",
            ));
        }
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let vector = vector(text);
            let embedding = if base64 {
                let bytes: Vec<u8> = vector
                    .iter()
                    .flat_map(|x| (*x as f32).to_le_bytes())
                    .collect();
                json!(STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let tokens = inputs.iter().map(|t| conversation::word_count(t)).sum();
    Ok(json!({"object": "list", "model": model, "data": data, "usage": openai::usage(tokens, 0)}))
}

/// A deterministic unit vector of [`EMBEDDING_DIMENSIONS`] for a text.
fn vector(text: &str) -> Vec<f64> {
    let raw: Vec<f64> = (0..EMBEDDING_DIMENSIONS)
        .map(|i| {
            let h: f64 = group_id(&format!("{i}:{text}")).parse().unwrap_or(0.0);
            h / 1e12 - 0.5
        })
        .collect();
    let norm = raw
        .iter()
        .map(|x| x * x)
        .sum::<f64>()
        .sqrt()
        .max(f64::EPSILON);
    raw.into_iter().map(|x| x / norm).collect()
}

fn default_example(behavior: Behavior) -> Value {
    match behavior {
        Behavior::Chat => {
            json!({"messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 64})
        }
        Behavior::Completions => json!({"prompt": "Once upon a time", "max_tokens": 32}),
        Behavior::Embeddings => json!({"input": ["A sentence to embed"]}),
        Behavior::Echo | Behavior::Error => json!({"inputs": {"text": "hello"}}),
    }
}

fn request_schema(behavior: Behavior) -> Value {
    match behavior {
        Behavior::Chat => json!({"type": "object", "required": ["messages"], "properties": {
            "messages": {"type": "array", "items": {"type": "object", "required": ["role"],
                "properties": {
                    "role": {"type": "string",
                             "enum": ["system", "developer", "user", "assistant", "tool"]},
                    "content": {"oneOf": [{"type": "string"}, {"type": "null"}, {"type": "array",
                        "items": {"type": "object", "required": ["type", "text"]}}]},
                    "tool_calls": {"type": "array"}, "tool_call_id": {"type": "string"}}}},
            "tools": {"type": "array"}, "stream": {"type": "boolean"},
            "max_tokens": {"type": "integer"}, "temperature": {"type": "number"}}}),
        Behavior::Completions => json!({"type": "object", "required": ["prompt"], "properties": {
            "prompt": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
            "max_tokens": {"type": "integer"}}}),
        Behavior::Embeddings => json!({"type": "object", "required": ["input"], "properties": {
            "input": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}}}),
        Behavior::Echo | Behavior::Error => json!({"type": "object", "properties": {
            "inputs": {}, "instances": {"type": "array"}, "dataframe_records": {"type": "array"},
            "dataframe_split": {"type": "object"}}}),
    }
}

fn endpoint_info(endpoint: &ServingEndpoint, detailed: bool) -> Value {
    let deployment = if endpoint.ready == "READY" {
        "DEPLOYMENT_READY"
    } else {
        "DEPLOYMENT_CREATING"
    };
    let entities: Vec<Value> = endpoint
        .served_entities
        .iter()
        .map(|e| {
            let mut entity = json!({
                "name": e.name,
                "entity_name": e.entity_name,
                "entity_version": e.entity_version,
            });
            if detailed {
                entity["state"] = json!({"deployment": deployment});
                entity["workload_size"] = json!("Small");
                entity["scale_to_zero_enabled"] = json!(true);
            }
            entity
        })
        .collect();
    let mut config = json!({ "served_entities": entities });
    if detailed {
        let routes: Vec<Value> = endpoint
            .served_entities
            .iter()
            .map(|e| json!({"served_model_name": e.name, "traffic_percentage": 100 / endpoint.served_entities.len().max(1)}))
            .collect();
        config["config_version"] = json!(1);
        config["traffic_config"] = json!({ "routes": routes });
    }
    let mut info = json!({
        "name": endpoint.name,
        "id": group_id(&format!("endpoint:{}", endpoint.name)),
        "creator": endpoint.creator,
        "creation_timestamp": CREATED_AT_MS,
        "last_updated_timestamp": CREATED_AT_MS,
        "state": {"ready": endpoint.ready, "config_update": endpoint.config_update},
        "config": config,
        "description": endpoint.description,
        "tags": [],
    });
    if let Some(task) = &endpoint.task {
        info["task"] = json!(task);
    }
    if detailed {
        info["permission_level"] = json!("CAN_QUERY");
        info["route_optimized"] = json!(false);
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn echo_needs_exactly_one_input_field() {
        assert_eq!(
            echo(&object(json!({"inputs": [1, 2]}))).unwrap(),
            json!({"predictions": [1, 2]})
        );
        assert!(echo(&object(json!({}))).is_err());
        assert!(echo(&object(json!({"inputs": 1, "instances": [1]}))).is_err());
    }

    #[test]
    fn base64_embeddings_decode_to_the_float_vector() {
        // Arrange
        let body = object(json!({"input": ["hello"], "encoding_format": "base64"}));

        // Act
        let answer = embeddings(&body, "m").unwrap();

        // Assert
        let encoded = answer["data"][0]["embedding"].as_str().unwrap();
        let bytes = STANDARD.decode(encoded).unwrap();
        let floats: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let expected: Vec<f32> = vector("hello").iter().map(|x| *x as f32).collect();
        assert_eq!(floats, expected);
        let bad = object(json!({"input": "x", "encoding_format": "int8"}));
        assert!(embeddings(&bad, "m").is_err());
    }

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let a = vector("hello");
        assert_eq!(a, vector("hello"));
        assert_ne!(a, vector("world"));
        let norm: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-9);
    }
}
