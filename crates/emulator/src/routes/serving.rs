//! Model Serving (`shared/UPSTREAM.md` §4.3): endpoint list and get, the endpoint's OpenAPI
//! description, and invocations, each endpoint answering with its fixture [`Behavior`].
//!
//! Invocations of an endpoint whose state is not `READY` are refused with
//! `400 INVALID_STATE` (the real service's exact answer is unconfirmed). The OpenAI-compatible
//! routes `POST /serving-endpoints/chat/completions` and `/embeddings` take the endpoint name
//! from the body's `model`, as the SDK's OpenAI client sends it.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde_json::{Map, Value, json};

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::fixture::{Behavior, ServingEndpoint};
use crate::routes::{JsonBody, base_url};
use crate::state::{Emulator, Principal, group_id};

/// Epoch milliseconds every fixture endpoint claims to have been created at (2025-01-01).
const CREATED_AT_MS: i64 = 1_735_689_600_000;

pub(super) fn router() -> Router<Emulator> {
    Router::new()
        .route("/api/2.0/serving-endpoints", get(list_endpoints))
        .route("/api/2.0/serving-endpoints/{name}", get(get_endpoint))
        .route(
            "/api/2.0/serving-endpoints/{name}/openapi",
            get(get_openapi),
        )
        .route("/serving-endpoints/{name}/invocations", post(invoke))
        .route("/serving-endpoints/chat/completions", post(openai_invoke))
        .route("/serving-endpoints/embeddings", post(openai_invoke))
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
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let endpoint = visible_endpoint(&emulator, &principal, &name)?;
    answer(&emulator, endpoint, body).await
}

async fn openai_invoke(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let name = body
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("Missing required field: model"))?;
    let endpoint = visible_endpoint(&emulator, &principal, name)?;
    answer(&emulator, endpoint, body).await
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

async fn answer(
    emulator: &Emulator,
    endpoint: &ServingEndpoint,
    body: Value,
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
    let latency = emulator.settings().serving_latency_ms;
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let model = endpoint
        .served_entities
        .first()
        .map_or(endpoint.name.as_str(), |e| e.entity_name.as_str());
    let output = match endpoint.behavior {
        Behavior::Echo => echo(&body)?,
        Behavior::Chat => chat(&body, model)?,
        Behavior::Completions => completions(&body, model)?,
        Behavior::Embeddings => embeddings(&body, model)?,
        Behavior::Error => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                format!("Model '{model}' failed to process the request."),
            ));
        }
    };
    let mut response = Json(output).into_response();
    if let Some(entity) = endpoint.served_entities.first()
        && let Ok(value) = HeaderValue::from_str(&entity.name)
    {
        response.headers_mut().insert("served-model-name", value);
    }
    Ok(response)
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

fn chat(body: &Map<String, Value>, model: &str) -> Result<Value, ApiError> {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| ApiError::bad_request("'messages' must be a non-empty array."))?;
    let mut last_user = None;
    for message in messages {
        let role = message.get("role").and_then(Value::as_str);
        let content = message.get("content").and_then(Value::as_str);
        match (role, content) {
            (Some("user"), Some(text)) => last_user = Some(text),
            (Some("system" | "assistant" | "tool"), Some(_)) => {}
            _ => {
                return Err(ApiError::bad_request(
                    "Each message needs a 'role' (system, user, assistant) and a string 'content'.",
                ));
            }
        }
    }
    let prompt = last_user.ok_or_else(|| ApiError::bad_request("No user message to answer."))?;
    let (reply, finish_reason) = limited(&format!("You said: {prompt}"), body);
    let prompt_tokens: usize = messages
        .iter()
        .filter_map(|m| m.get("content").and_then(Value::as_str))
        .map(word_count)
        .sum();
    Ok(json!({
        "id": format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
        "object": "chat.completion",
        "created": Utc::now().timestamp(),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": reply},
            "finish_reason": finish_reason,
        }],
        "usage": usage(prompt_tokens, word_count(&reply)),
    }))
}

fn completions(body: &Map<String, Value>, model: &str) -> Result<Value, ApiError> {
    let prompts: Vec<&str> = match body.get("prompt") {
        Some(Value::String(p)) => vec![p.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => {
            return Err(ApiError::bad_request(
                "'prompt' must be a string or a list of strings.",
            ));
        }
    };
    let choices: Vec<Value> = prompts
        .iter()
        .enumerate()
        .map(|(index, prompt)| {
            let (text, finish_reason) = limited(&format!("Completion of: {prompt}"), body);
            json!({"index": index, "text": text, "finish_reason": finish_reason})
        })
        .collect();
    let prompt_tokens = prompts.iter().copied().map(word_count).sum();
    Ok(json!({
        "id": format!("cmpl-{}", uuid::Uuid::new_v4().simple()),
        "object": "text_completion",
        "created": Utc::now().timestamp(),
        "model": model,
        "choices": choices,
        "usage": usage(prompt_tokens, prompts.len() * 3),
    }))
}

fn embeddings(body: &Map<String, Value>, model: &str) -> Result<Value, ApiError> {
    let inputs: Vec<&str> = match body.get("input") {
        Some(Value::String(p)) => vec![p.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => {
            return Err(ApiError::bad_request(
                "'input' must be a string or a list of strings.",
            ));
        }
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| json!({"object": "embedding", "index": index, "embedding": vector(text)}))
        .collect();
    let tokens = inputs.iter().copied().map(word_count).sum();
    Ok(json!({"object": "list", "model": model, "data": data, "usage": usage(tokens, 0)}))
}

/// A deterministic 8-dimensional unit vector for a text.
fn vector(text: &str) -> Vec<f64> {
    let raw: Vec<f64> = (0..8)
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

/// Cuts a reply to `max_tokens` words, reporting `length` as the finish reason when it does.
fn limited(reply: &str, body: &Map<String, Value>) -> (String, &'static str) {
    let max = body.get("max_tokens").and_then(Value::as_u64);
    match max {
        Some(max) if (word_count(reply) as u64) > max => {
            let cut: Vec<&str> = reply.split_whitespace().take(max as usize).collect();
            (cut.join(" "), "length")
        }
        _ => (reply.to_owned(), "stop"),
    }
}

fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

fn usage(prompt_tokens: usize, completion_tokens: usize) -> Value {
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    })
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
            "messages": {"type": "array", "items": {"type": "object", "required": ["role", "content"],
                "properties": {"role": {"type": "string", "enum": ["system", "user", "assistant"]},
                               "content": {"type": "string"}}}},
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
    fn chat_repeats_the_last_user_message_and_honours_max_tokens() {
        let body = object(json!({"messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello there"}]}));
        let reply = chat(&body, "m").unwrap();
        assert_eq!(
            reply["choices"][0]["message"]["content"],
            "You said: hello there"
        );
        assert_eq!(reply["choices"][0]["finish_reason"], "stop");

        let mut short = body.clone();
        short.insert("max_tokens".into(), json!(2));
        let reply = chat(&short, "m").unwrap();
        assert_eq!(reply["choices"][0]["message"]["content"], "You said:");
        assert_eq!(reply["choices"][0]["finish_reason"], "length");
    }

    #[test]
    fn chat_refuses_malformed_messages() {
        assert!(chat(&object(json!({"messages": []})), "m").is_err());
        assert!(chat(&object(json!({"messages": [{"role": "user"}]})), "m").is_err());
        assert!(chat(&object(json!({"messages": "hi"})), "m").is_err());
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
