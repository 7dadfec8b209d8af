//! Streaming chat with a serving endpoint, as the user:
//! `POST /api/model-serving/endpoints/{name}/chat`.
//!
//! The request is checked (messages in every shape the OpenAI chat contract allows, UPSTREAM-2
//! §2.4), the endpoint is read as the user (unknown → `ENDPOINT_NOT_FOUND`, not ready →
//! `ENDPOINT_NOT_READY`), and the endpoint is invoked once with `stream: true`. Anything that
//! fails before the stream starts is an ordinary JSON error answer with its status. Once the
//! endpoint has answered, the reply is `200 text/event-stream`, and:
//!
//! - every event of the endpoint is passed on as it arrives, as `data: <its data>\n\n`, unchanged
//!   (OpenAI chat completion chunks), so any OpenAI-style SSE parser reads the stream;
//! - while the endpoint is silent, a `: keep-alive` comment is sent every
//!   `DBAPP_CHAT_HEARTBEAT_SECS` so that idle proxies do not cut the connection;
//! - a failure mid-stream (the connection to the endpoint drops, the stream outlives
//!   `DBAPP_CHAT_TIMEOUT_SECS`, the endpoint sends an `error` event) ends the stream with one
//!   `data: {"error": <the API's error envelope>}` event, which the `openai` client raises as an
//!   `APIError`; nothing is retried once bytes have been sent;
//! - a stream that ends well ends with `data: [DONE]\n\n`;
//! - when the client goes away (disconnect, cancel), the body is dropped, and with it the
//!   connection to the endpoint: the generation is abandoned at once.
//!
//! Every outcome is measured: time to first token and tokens per second per endpoint
//! (`chat_*` metrics), with the outcome in the log line `chat.stream_ended`.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dbapp_databricks::ErrorKind;
use dbapp_databricks::api::ServingStream;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model_serving::{model_error, ready_endpoint};
use crate::auth::Caller;
use dbapp_databricks::CorrelationId;

use crate::correlation::current_correlation_id;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{ApiJson, Endpoint, Name};
use crate::metrics::{
    CHAT_STREAMS_TOTAL, CHAT_TIME_TO_FIRST_TOKEN_SECONDS, CHAT_TOKENS_PER_SECOND,
};
use crate::state::AppState;

/// Most messages one chat request may carry.
pub const MAX_CHAT_MESSAGES: usize = 500;

/// Roles a chat message may have.
const ROLES: [&str; 5] = ["system", "developer", "user", "assistant", "tool"];

/// A chat request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatRequest {
    /// The conversation so far, OpenAI chat messages: `{"role", "content"}` with `content` a
    /// string or a list of parts (`{"type": "text", "text"}`); an assistant message may have
    /// `content: null` with `tool_calls`; a `tool` message needs `tool_call_id`. 1 to 500.
    #[schema(value_type = Vec<Object>)]
    pub messages: Vec<Value>,
    /// Most tokens to generate.
    #[schema(minimum = 1)]
    pub max_tokens: Option<u32>,
    /// Sampling temperature, 0 to 2.
    pub temperature: Option<f64>,
    /// Tools the model may call (OpenAI `tools`), passed on as given.
    #[schema(value_type = Option<Vec<Object>>)]
    pub tools: Option<Vec<Value>>,
    /// OpenAI `tool_choice`, passed on as given.
    #[schema(value_type = Option<Object>)]
    pub tool_choice: Option<Value>,
}

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(chat))
}

/// Streams a chat answer from the endpoint, as the user, as server-sent events.
#[utoipa::path(post, path = "/api/model-serving/endpoints/{name}/chat", tag = "model-serving",
    security(("user_token" = [])), params(("name" = String, Path)), request_body = ChatRequest,
    responses(
    (status = 200, content_type = "text/event-stream", body = String,
        description = "`data: <OpenAI chat completion chunk>` events as the endpoint sends them, `: keep-alive` comments, then `data: [DONE]`, or a last `data: {\"error\": <error envelope>}` when the stream fails"),
    (status = 400, body = ErrorBody, description = "INVALID_REQUEST, MODEL_INPUT_INVALID (detail.status)"),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "ENDPOINT_NOT_FOUND"),
    (status = 409, body = ErrorBody, description = "ENDPOINT_NOT_READY"),
    (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
    (status = 429, body = ErrorBody, description = "RATE_LIMITED"),
    (status = 502, body = ErrorBody, description = "MODEL_ERROR (detail.status), UPSTREAM_ERROR"),
    (status = 504, body = ErrorBody, description = "MODEL_TIMEOUT"),
))]
async fn chat(
    State(app): State<AppState>,
    caller: Caller,
    name: Name<Endpoint>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let request: ChatRequest = super::from_json_object("body", body)?;
    let upstream_body = upstream_body(request)?;
    ready_endpoint(&app, &caller, &name).await?;
    let timeout = Duration::from_secs(app.settings.dbapp.chat_timeout_secs);
    let started = Instant::now();
    let upstream = caller
        .workspace(&app)
        .stream_serving_endpoint(&name, upstream_body, timeout)
        .await
        .map_err(|e| model_error(&app, &caller, &name, e, timeout.as_secs()))?;
    let turn = Turn {
        app: app.clone(),
        endpoint: name.to_string(),
        correlation_id: current_correlation_id(),
        started,
        first_token: None,
        answer: Answer::default(),
        error: None,
        outcome: Outcome::Cancelled,
    };
    let heartbeat = Duration::from_secs(app.settings.dbapp.chat_heartbeat_secs);
    let events = futures_util::stream::unfold(
        Relay {
            upstream,
            turn,
            heartbeat,
            finished: false,
        },
        Relay::next,
    );
    let mut response = Body::from_stream(events).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // nginx-style proxies otherwise buffer the whole answer.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    *response.status_mut() = StatusCode::OK;
    Ok(response)
}

/// Checks the request and builds the endpoint's body: the OpenAI chat request with
/// `stream: true` and usage in the last chunk.
fn upstream_body(request: ChatRequest) -> Result<Value, ApiError> {
    if request.messages.is_empty() || request.messages.len() > MAX_CHAT_MESSAGES {
        return Err(ApiError::invalid(
            "messages",
            format!("must hold 1 to {MAX_CHAT_MESSAGES} messages"),
        ));
    }
    for (index, message) in request.messages.iter().enumerate() {
        check_message(message)
            .map_err(|reason| ApiError::invalid(format!("messages[{index}]"), reason))?;
    }
    if let Some(t) = request.temperature
        && !(0.0..=2.0).contains(&t)
    {
        return Err(ApiError::invalid("temperature", "must be between 0 and 2"));
    }
    if request.max_tokens == Some(0) {
        return Err(ApiError::invalid("max_tokens", "must be at least 1"));
    }
    let mut body = Map::new();
    body.insert("messages".into(), Value::Array(request.messages));
    if let Some(n) = request.max_tokens {
        body.insert("max_tokens".into(), n.into());
    }
    if let Some(t) = request.temperature {
        body.insert("temperature".into(), t.into());
    }
    if let Some(tools) = request.tools {
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = request.tool_choice {
        body.insert("tool_choice".into(), choice);
    }
    body.insert("stream".into(), Value::Bool(true));
    body.insert("stream_options".into(), json!({"include_usage": true}));
    Ok(Value::Object(body))
}

/// Why a message is not one the chat contract allows (UPSTREAM-2 §2.4).
fn check_message(message: &Value) -> Result<(), String> {
    let Value::Object(message) = message else {
        return Err("must be an object".into());
    };
    let role = message
        .get("role")
        .and_then(Value::as_str)
        .ok_or("needs a role")?;
    if !ROLES.contains(&role) {
        return Err(format!("role must be one of {}", ROLES.join(", ")));
    }
    let tool_calls = match message.get("tool_calls") {
        None | Some(Value::Null) => false,
        Some(Value::Array(calls)) if role == "assistant" => {
            if calls.iter().any(|c| !c.is_object()) {
                return Err("tool_calls must be objects".into());
            }
            !calls.is_empty()
        }
        Some(_) => return Err("only an assistant message has tool_calls, as a list".into()),
    };
    match message.get("content") {
        Some(Value::String(_)) => {}
        Some(Value::Array(parts)) => {
            let text_part = |p: &Value| {
                p.get("type").and_then(Value::as_str).is_some()
                    && p.get("text").is_none_or(Value::is_string)
            };
            if !parts.iter().all(text_part) {
                return Err("content parts must be objects with a type".into());
            }
        }
        None | Some(Value::Null) if tool_calls => {}
        None | Some(Value::Null) => {
            return Err("needs content (null only for an assistant calling tools)".into());
        }
        Some(_) => return Err("content must be a string or a list of parts".into()),
    }
    if role == "tool" && !message.get("tool_call_id").is_some_and(Value::is_string) {
        return Err("a tool message needs tool_call_id".into());
    }
    Ok(())
}

/// How a streamed turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// `[DONE]`, or the end of the endpoint's stream.
    Completed,
    /// An error event ended it.
    Failed,
    /// The client went away first.
    Cancelled,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Most bytes of an answer's text kept for its record; the rest is cut (and the record says so).
pub const MAX_RECORDED_ANSWER_BYTES: usize = 256 * 1024;

/// The assistant message of a streamed turn, put together from its chunks' deltas
/// (UPSTREAM-2 §2.3, §2.4): the text, the tool calls by `index` (id, name, arguments appended),
/// the finish reason and the usage.
#[derive(Debug, Default, Clone, PartialEq)]
struct Answer {
    content: String,
    content_truncated: bool,
    tool_calls: Vec<Value>,
    finish_reason: Option<String>,
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

impl Answer {
    /// Adds one chunk; returns whether it carried generated output (text or a tool call).
    fn add(&mut self, chunk: &Value) -> bool {
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.prompt_tokens = usage.get("prompt_tokens").and_then(Value::as_u64);
            self.completion_tokens = usage.get("completion_tokens").and_then(Value::as_u64);
        }
        let mut output = false;
        let choices = chunk.get("choices").and_then(Value::as_array);
        for choice in choices.into_iter().flatten() {
            if choice.get("index").and_then(Value::as_u64).unwrap_or(0) != 0 {
                continue;
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                self.finish_reason = Some(reason.to_owned());
            }
            let Some(delta) = choice.get("delta") else {
                continue;
            };
            if let Some(text) = delta.get("content").and_then(Value::as_str)
                && !text.is_empty()
            {
                output = true;
                self.push_text(text);
            }
            for call in delta
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                output = true;
                self.add_tool_call(call);
            }
        }
        output
    }

    fn push_text(&mut self, text: &str) {
        let room = MAX_RECORDED_ANSWER_BYTES - self.content.len();
        if text.len() <= room {
            self.content.push_str(text);
            return;
        }
        let mut cut = room;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        self.content.push_str(&text[..cut]);
        self.content_truncated = true;
    }

    fn add_tool_call(&mut self, delta: &Value) {
        let index = delta.get("index").and_then(Value::as_u64).unwrap_or(0);
        let Ok(index) = usize::try_from(index) else {
            return;
        };
        // A call's first delta opens it; indexes are small and dense in practice, and a gap is
        // bounded by the number of deltas received.
        if index > self.tool_calls.len() + 64 {
            return;
        }
        while self.tool_calls.len() <= index {
            self.tool_calls.push(json!({
                "id": null, "type": "function", "function": {"name": "", "arguments": ""}
            }));
        }
        let call = &mut self.tool_calls[index];
        if let Some(id) = delta.get("id").and_then(Value::as_str) {
            call["id"] = Value::String(id.to_owned());
        }
        if let Some(kind) = delta.get("type").and_then(Value::as_str) {
            call["type"] = Value::String(kind.to_owned());
        }
        for field in ["name", "arguments"] {
            if let Some(part) = delta
                .pointer(&format!("/function/{field}"))
                .and_then(Value::as_str)
            {
                let slot = &mut call["function"][field];
                let joined = format!("{}{part}", slot.as_str().unwrap_or_default());
                *slot = Value::String(joined);
            }
        }
    }
}

/// What one streamed turn did, measured and logged when it ends (also when dropped).
struct Turn {
    app: AppState,
    endpoint: String,
    correlation_id: CorrelationId,
    started: Instant,
    first_token: Option<Duration>,
    answer: Answer,
    error: Option<(ErrorCode, String)>,
    outcome: Outcome,
}

impl Turn {
    /// Notes what an event of the endpoint says.
    fn observe(&mut self, data: &str) {
        let Ok(chunk) = serde_json::from_str::<Value>(data) else {
            return;
        };
        if self.answer.add(&chunk) && self.first_token.is_none() {
            self.first_token = Some(self.started.elapsed());
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let endpoint = self.app.metrics.endpoint_label(&self.endpoint);
        let labels_ref = [("endpoint", &*endpoint)];
        let elapsed = self.started.elapsed();
        if let Some(first) = self.first_token {
            self.app.metrics.observe(
                CHAT_TIME_TO_FIRST_TOKEN_SECONDS,
                &labels_ref,
                first.as_secs_f64(),
            );
            let generating = elapsed.saturating_sub(first).as_secs_f64();
            if let Some(tokens) = self.answer.completion_tokens
                && generating > 0.0
            {
                self.app.metrics.observe(
                    CHAT_TOKENS_PER_SECOND,
                    &labels_ref,
                    tokens as f64 / generating,
                );
            }
        }
        self.app.metrics.count(
            CHAT_STREAMS_TOTAL,
            &[
                ("endpoint", labels_ref[0].1),
                ("outcome", self.outcome.as_str()),
            ],
            1,
        );
        tracing::info!(
            event = "chat.stream_ended",
            endpoint = %self.endpoint,
            outcome = self.outcome.as_str(),
            correlation_id = %self.correlation_id,
            elapsed_ms = elapsed.as_millis() as u64,
            first_token_ms = self.first_token.map(|d| d.as_millis() as u64),
            completion_tokens = self.answer.completion_tokens,
        );
    }
}

/// The relay from the endpoint's stream to the client's.
struct Relay {
    upstream: ServingStream,
    turn: Turn,
    heartbeat: Duration,
    finished: bool,
}

impl Relay {
    /// The next bytes for the client: an event, a heartbeat, `[DONE]` or the error event.
    async fn next(mut self) -> Option<(Result<Bytes, Infallible>, Self)> {
        if self.finished {
            return None;
        }
        let next = tokio::time::timeout(self.heartbeat, self.upstream.next_data()).await;
        let bytes = match next {
            Err(_) => Bytes::from_static(b": keep-alive\n\n"),
            Ok(Ok(Some(data))) => {
                if let Some(error) = upstream_error_event(&data) {
                    self.fail(error)
                } else {
                    self.turn.observe(&data);
                    Bytes::from(format!("data: {data}\n\n"))
                }
            }
            Ok(Ok(None)) => {
                self.finished = true;
                self.turn.outcome = Outcome::Completed;
                Bytes::from_static(b"data: [DONE]\n\n")
            }
            Ok(Err(error)) => {
                let error = match error.kind() {
                    ErrorKind::Timeout => ApiError::ModelTimeout {
                        timeout_seconds: self.turn.app.settings.dbapp.chat_timeout_secs,
                    },
                    _ => ApiError::Upstream(error),
                };
                self.fail(error)
            }
        };
        Some((Ok(bytes), self))
    }

    /// The last event: the error in the API's envelope.
    fn fail(&mut self, error: ApiError) -> Bytes {
        self.finished = true;
        self.turn.outcome = Outcome::Failed;
        tracing::warn!(
            event = "chat.stream_failed",
            endpoint = %self.turn.endpoint,
            error = %crate::error::cause_chain(&error),
        );
        let envelope = error.envelope(self.turn.correlation_id.as_str());
        self.turn.error = Some((envelope.error_code, envelope.message.clone()));
        let event = json!({ "error": envelope });
        Bytes::from(format!("data: {event}\n\n"))
    }
}

/// The endpoint's own mid-stream error event (`{"error": {...}}`, UPSTREAM-2 §2.5) as
/// `MODEL_ERROR`.
fn upstream_error_event(data: &str) -> Option<ApiError> {
    let value: Value = serde_json::from_str(data).ok()?;
    let error = value
        .get("error")
        .filter(|e| !matches!(e, Value::Null | Value::Bool(false)))?;
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("the endpoint failed during streaming");
    Some(ApiError::ModelStreamFailed {
        message: message
            .chars()
            .take(super::model_serving::MODEL_MESSAGE_CHARS)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_shape_of_the_contract_is_accepted() {
        // Arrange
        let shapes = [
            json!({"role": "user", "content": "hi"}),
            json!({"role": "user", "content": [{"type": "text", "text": "hi"}]}),
            json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}),
            json!({"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}),
            json!({"role": "tool", "tool_call_id": "call_1", "content": "42"}),
            json!({"role": "system", "content": "be brief"}),
        ];

        // Act / Assert
        for shape in &shapes {
            assert_eq!(check_message(shape), Ok(()), "{shape}");
        }
    }

    #[test]
    fn malformed_messages_are_refused_with_a_reason() {
        // Arrange
        let bad = [
            json!("hi"),
            json!({"content": "no role"}),
            json!({"role": "wizard", "content": "x"}),
            json!({"role": "user", "content": null}),
            json!({"role": "user", "content": 5}),
            json!({"role": "user", "content": "x", "tool_calls": []}),
            json!({"role": "assistant", "content": null, "tool_calls": []}),
            json!({"role": "tool", "content": "42"}),
            json!({"role": "user", "content": [1]}),
        ];

        // Act / Assert
        for message in &bad {
            assert!(check_message(message).is_err(), "{message}");
        }
    }

    #[test]
    fn the_endpoint_is_asked_to_stream_with_usage() {
        // Arrange
        let request = ChatRequest {
            messages: vec![json!({"role": "user", "content": "hi"})],
            max_tokens: Some(64),
            temperature: None,
            tools: None,
            tool_choice: None,
        };

        // Act
        let body = upstream_body(request).unwrap();

        // Assert
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(body["max_tokens"], 64);
        assert!(body.get("temperature").is_none());
    }

    #[test]
    fn an_answer_is_put_together_from_text_and_tool_call_deltas() {
        // Arrange: the chunk sequence of UPSTREAM-2 §2.3 and §2.4.
        let chunks = [
            json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}], "usage": null}),
            json!({"choices": [{"index": 0, "delta": {"content": "Let me "}, "finish_reason": null}]}),
            json!({"choices": [{"index": 0, "delta": {"content": "check."}, "finish_reason": null}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "weather", "arguments": ""}}]}}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\""}}]}}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ": \"Oslo\"}"}}]}, "finish_reason": "tool_calls"}]}),
            json!({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}}),
        ];
        let mut answer = Answer::default();

        // Act
        let outputs: Vec<bool> = chunks.iter().map(|c| answer.add(c)).collect();

        // Assert
        assert_eq!(outputs, [false, true, true, true, true, true, false]);
        assert_eq!(answer.content, "Let me check.");
        assert_eq!(answer.tool_calls[0]["id"], "call_1");
        assert_eq!(answer.tool_calls[0]["function"]["name"], "weather");
        assert_eq!(
            answer.tool_calls[0]["function"]["arguments"],
            "{\"city\": \"Oslo\"}"
        );
        assert_eq!(answer.finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(
            (answer.prompt_tokens, answer.completion_tokens),
            (Some(12), Some(9))
        );
    }

    #[test]
    fn a_long_answer_is_cut_at_a_character_boundary_and_says_so() {
        // Arrange
        let mut answer = Answer::default();
        let text = "é".repeat(MAX_RECORDED_ANSWER_BYTES);

        // Act
        answer.add(&json!({"choices": [{"index": 0, "delta": {"content": text}}]}));

        // Assert
        assert!(answer.content_truncated);
        assert!(answer.content.len() <= MAX_RECORDED_ANSWER_BYTES);
        assert!(answer.content.chars().all(|c| c == 'é'));
    }

    #[test]
    fn only_a_truthy_error_key_is_an_error_event() {
        assert!(upstream_error_event(r#"{"error": {"message": "boom"}}"#).is_some());
        assert!(upstream_error_event(r#"{"error": null, "choices": []}"#).is_none());
        assert!(upstream_error_event(r#"{"choices": []}"#).is_none());
        assert!(upstream_error_event("not json").is_none());
    }
}
