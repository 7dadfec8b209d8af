//! Streaming chat with a serving endpoint, as the user:
//! `POST /api/model-serving/endpoints/{name}/chat`.
//!
//! The request is checked (messages in every shape the OpenAI chat contract allows, UPSTREAM-2
//! §2.4) and the endpoint is invoked once, as the user, with `stream: true`; nothing else is
//! asked of the workspace first. Its refusal is mapped as for invocations (unknown or hidden →
//! `ENDPOINT_NOT_FOUND`, `INVALID_STATE` → `ENDPOINT_NOT_READY`, other 4xx →
//! `MODEL_INPUT_INVALID`). Anything that fails before the stream starts is an ordinary JSON
//! error answer with its status. Once the
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
//! A turn uses one of the caller's invocation quota (`DBAPP_QUOTA_INVOCATIONS_PER_MINUTE`; over
//! it: `429 RATE_LIMITED`, nothing called or recorded). With a store, every turn is recorded in
//! the caller's conversation: the request's messages before the endpoint is called, the answer
//! (put together from the stream, text cut at [`MAX_RECORDED_ANSWER_BYTES`]) when the stream
//! ends, completed, failed or cancelled; a request refused before that leaves nothing.
//!
//! Every outcome is measured: time to first token and tokens per second per endpoint
//! (`chat_*` metrics), with the outcome in the log line `chat.stream_ended`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::Response;
use dbapp_databricks::ErrorKind;
use dbapp_databricks::api::ServingStream;
use dbapp_store::{
    MAX_CONVERSATION_MESSAGES, MessageOutcome, NewConversation, NewMessage, Store, UserId,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::model_serving::model_error;
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
    /// The caller's conversation to continue (`GET /api/conversations`): `messages` are then the
    /// new messages only, sent after the stored ones. Without it a new conversation is started
    /// with `messages` (when a store is configured).
    pub conversation_id: Option<Uuid>,
    /// The conversation so far (or, with `conversation_id`, the new messages), OpenAI chat
    /// messages: `{"role", "content"}` with `content` a
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
    (status = 200, content_type = "text/event-stream", body = super::sse::SseEvent,
        description = "`data: <OpenAI chat completion chunk>` events as the endpoint sends them, `: keep-alive` comments, then `data: [DONE]`, or a last `data: {\"error\": <error envelope>}` when the stream fails"),
    (status = 400, body = ErrorBody, description = "INVALID_REQUEST, MODEL_INPUT_INVALID (detail.status)"),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "ENDPOINT_NOT_FOUND"),
    (status = 409, body = ErrorBody, description = "ENDPOINT_NOT_READY"),
    (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
    (status = 429, body = ErrorBody, description = "RATE_LIMITED: the workspace's, or the caller's invocation quota (a chat turn is an invocation; detail.quota = invocations); Retry-After set"),
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
    check_request(&request)?;
    app.quotas.check_invocation(caller.user_id())?;
    let (recorder, messages) = Recorder::open(
        &app,
        &caller,
        &name,
        request.conversation_id,
        &request.messages,
        1,
    )
    .await?;
    let upstream_body = upstream_body(messages, request);
    let timeout = Duration::from_secs(app.settings.dbapp.chat_timeout_secs);
    let started = Instant::now();
    let mut turn = Turn {
        app: app.clone(),
        endpoint: name.to_string(),
        correlation_id: current_correlation_id(),
        started,
        first_token: None,
        answer: Answer::default(),
        error: None,
        outcome: MessageOutcome::Cancelled,
        recorder,
        span: tracing::Span::none(),
    };
    let upstream = match caller
        .workspace(&app)
        .stream_serving_endpoint(&name, upstream_body, timeout)
        .await
    {
        Ok(upstream) => upstream,
        Err(error) => {
            let error = model_error(&app, &caller, &name, error, timeout.as_secs());
            turn.failed(&error);
            // Like a stream's last event, the error answers once the turn is stored.
            turn.store_answer().await;
            return Err(error);
        }
    };
    turn.span = tracing::info_span!(
        "chat.relay",
        endpoint = %name,
        outcome = tracing::field::Empty,
        first_token_ms = tracing::field::Empty,
        completion_tokens = tracing::field::Empty,
    );
    let conversation_id = turn.recorder.as_ref().map(|r| r.conversation_id);
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
    let mut response = super::sse::event_stream(Body::from_stream(events));
    if let Some(id) = conversation_id
        && let Ok(value) = HeaderValue::from_str(&id.to_string())
    {
        response.headers_mut().insert(CONVERSATION_ID_HEADER, value);
    }
    Ok(response)
}

/// The response header naming the conversation a stream is recorded in.
pub const CONVERSATION_ID_HEADER: &str = "x-conversation-id";

/// Checks the request's messages and options.
fn check_request(request: &ChatRequest) -> Result<(), ApiError> {
    if request.messages.is_empty() || request.messages.len() > MAX_CHAT_MESSAGES {
        return Err(ApiError::invalid(
            "messages",
            format!("must hold 1 to {MAX_CHAT_MESSAGES} messages"),
        ));
    }
    for (index, message) in request.messages.iter().enumerate() {
        let field = format!("messages[{index}]");
        check_message(message).map_err(|reason| ApiError::invalid(field.as_str(), reason))?;
        dbapp_store::check_storable_json(&field, message)
            .map_err(|e| ApiError::invalid(field.as_str(), e.to_string()))?;
    }
    if let Some(t) = request.temperature
        && !(0.0..=2.0).contains(&t)
    {
        return Err(ApiError::invalid("temperature", "must be between 0 and 2"));
    }
    if request.max_tokens == Some(0) {
        return Err(ApiError::invalid("max_tokens", "must be at least 1"));
    }
    Ok(())
}

/// The endpoint's body: the OpenAI chat request over `messages` (the stored conversation and
/// the new messages) with `stream: true` and usage in the last chunk.
fn upstream_body(messages: Vec<Value>, request: ChatRequest) -> Value {
    let mut body = Map::new();
    body.insert("messages".into(), Value::Array(messages));
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
    Value::Object(body)
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
    outcome: MessageOutcome,
    /// Where the turn is recorded; `None` without a store.
    recorder: Option<Recorder>,
    /// The relay phase, from the endpoint's answer head to the stream's end, for the trace
    /// export (opening the stream is the upstream call's own span).
    span: tracing::Span,
}

impl Turn {
    /// Notes that the turn failed with `error`, before or during the stream.
    fn failed(&mut self, error: &ApiError) {
        self.outcome = MessageOutcome::Failed;
        self.error = Some((error.code(), error.to_string()));
    }

    /// Stores the answer now (at the end of a stream that ended, before its last event).
    async fn store_answer(&mut self) {
        if let Some(recorder) = self.recorder.take() {
            let message = self.message();
            recorder.store_answer(message).await;
        }
    }

    /// The assistant message this turn leaves in the conversation.
    fn message(&self) -> NewMessage {
        let answer = &self.answer;
        let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let tokens = |n: Option<u64>| n.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        let (tool_calls, calls_cut) = recorded_tool_calls(&answer.tool_calls);
        let content = if answer.content.is_empty() && tool_calls.is_some() {
            Value::Null
        } else {
            Value::String(answer.content.clone())
        };
        NewMessage {
            tool_calls,
            endpoint_name: Some(self.endpoint.clone()),
            finish_reason: answer.finish_reason.clone(),
            outcome: Some(self.outcome),
            prompt_tokens: tokens(answer.prompt_tokens),
            completion_tokens: tokens(answer.completion_tokens),
            latency_ms: Some(millis(self.started.elapsed())),
            first_token_ms: self.first_token.map(millis),
            error_code: self
                .error
                .as_ref()
                .map(|(code, _)| code.as_str().to_owned()),
            error_message: self.error.as_ref().map(|(_, message)| message.clone()),
            content_truncated: answer.content_truncated || calls_cut,
            ..NewMessage::new("assistant", content)
        }
    }

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
        if let Some(recorder) = self.recorder.take() {
            recorder.record(self.message());
        }
        self.span.record("outcome", self.outcome.as_str());
        if let Some(first) = self.first_token {
            self.span.record("first_token_ms", first.as_millis() as u64);
        }
        if let Some(tokens) = self.answer.completion_tokens {
            self.span.record("completion_tokens", tokens);
        }
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

/// Most tool calls of one answer kept in its record, and the most bytes of each call's
/// arguments: with [`MAX_RECORDED_ANSWER_BYTES`] of text, a record stays well within the store's
/// `MAX_MESSAGE_BYTES`.
pub const MAX_RECORDED_TOOL_CALLS: usize = 32;
/// See [`MAX_RECORDED_TOOL_CALLS`].
pub const MAX_RECORDED_ARGUMENT_BYTES: usize = 16 * 1024;

/// The tool calls as recorded (`None` without any), and whether any was cut.
fn recorded_tool_calls(calls: &[Value]) -> (Option<Value>, bool) {
    if calls.is_empty() {
        return (None, false);
    }
    let mut cut = calls.len() > MAX_RECORDED_TOOL_CALLS;
    let kept = calls
        .iter()
        .take(MAX_RECORDED_TOOL_CALLS)
        .map(|call| {
            let mut call = call.clone();
            if let Some(Value::String(arguments)) = call.pointer_mut("/function/arguments")
                && arguments.len() > MAX_RECORDED_ARGUMENT_BYTES
            {
                let mut end = MAX_RECORDED_ARGUMENT_BYTES;
                while !arguments.is_char_boundary(end) {
                    end -= 1;
                }
                arguments.truncate(end);
                cut = true;
            }
            call
        })
        .collect();
    (Some(Value::Array(kept)), cut)
}

/// Most chat turns being recorded at once, per server: a turn holds a slot from its start until
/// its answer is stored. When all are taken, a new turn waits for one before it starts (bounded
/// by the request deadline), so a store slower than the chat traffic slows new turns down instead
/// of letting unwritten records pile up in memory.
pub const MAX_CHAT_RECORDINGS: usize = 64;

/// Where a turn is recorded: the caller's conversation in the store.
///
/// Nothing the store does is on the way to the first token of a new conversation: the
/// conversation and the request's messages are written by a task started before the endpoint is
/// called, and the answer is appended after that task has finished. What could make the store
/// refuse them (NUL characters, the size and count limits) is checked before anything starts.
/// Continuing a conversation reads it first, since its messages are sent to the endpoint.
pub(crate) struct Recorder {
    store: Arc<dyn Store>,
    user: UserId,
    pub(crate) conversation_id: Uuid,
    /// The write of the conversation and the request's messages; `true` once stored.
    opening: tokio::task::JoinHandle<bool>,
    /// This turn's recording slot, given back when its answer is stored.
    slot: tokio::sync::OwnedSemaphorePermit,
}

impl Recorder {
    /// Starts recording the turn: reads the conversation it continues (`conversation_id`), or
    /// names a new one, and starts writing the request's messages; returns the recorder with
    /// every message to send the endpoint. Without a store nothing is recorded, and continuing a
    /// conversation is `STORAGE_NOT_CONFIGURED`. `answers` is the room kept in the conversation
    /// for the messages the turn will add (one for a chat turn, more for an assistant's steps).
    /// Shared with the assistant (`routes::assistant`).
    pub(crate) async fn open(
        app: &AppState,
        caller: &Caller,
        endpoint: &str,
        conversation_id: Option<Uuid>,
        request_messages: &[Value],
        answers: usize,
    ) -> Result<(Option<Self>, Vec<Value>), ApiError> {
        let store = match (&app.store, conversation_id) {
            (None, None) => return Ok((None, request_messages.to_vec())),
            (None, Some(_)) => return Err(ApiError::StorageNotConfigured),
            (Some(store), _) => Arc::clone(store),
        };
        let slot = Arc::clone(&app.chat_recordings)
            .acquire_owned()
            .await
            .map_err(|_| ApiError::Internal("the chat recording slots are closed".into()))?;
        let user = caller.user_id().clone();
        let mut messages = Vec::new();
        let new: Vec<NewMessage> = request_messages.iter().map(stored_message).collect();
        let (conversation_id, created) = match conversation_id {
            Some(id) => {
                let stored = store.get_conversation(&user, id).await?;
                // Room for the new messages and the answer.
                let count = stored.conversation.message_count as usize;
                if count + new.len() + answers > MAX_CONVERSATION_MESSAGES {
                    return Err(ApiError::invalid(
                        "conversation_id",
                        format!(
                            "the conversation holds {count} messages; it can hold {MAX_CONVERSATION_MESSAGES}"
                        ),
                    ));
                }
                messages.extend(
                    stored
                        .messages
                        .iter()
                        .filter_map(|m| wire_message(&m.message)),
                );
                (id, None)
            }
            None => {
                let conversation = NewConversation {
                    id: Uuid::new_v4(),
                    title: title_of(request_messages),
                    endpoint_name: endpoint.to_owned(),
                };
                (conversation.id, Some(conversation))
            }
        };
        messages.extend(request_messages.iter().cloned());
        let opening = tokio::spawn(Self::write_opening(
            Arc::clone(&store),
            user.clone(),
            conversation_id,
            created,
            new,
        ));
        Ok((
            Some(Self {
                store,
                user,
                conversation_id,
                opening,
                slot,
            }),
            messages,
        ))
    }

    /// Creates the conversation (when new) and stores the request's messages; a conversation
    /// it created is taken back when its messages cannot be stored.
    async fn write_opening(
        store: Arc<dyn Store>,
        user: UserId,
        id: Uuid,
        created: Option<NewConversation>,
        messages: Vec<NewMessage>,
    ) -> bool {
        let result = async {
            if let Some(conversation) = &created {
                store.create_conversation(&user, conversation).await?;
            }
            store.append_messages(&user, id, &messages).await
        }
        .await;
        match result {
            Ok(()) => true,
            Err(error) => {
                if created.is_some() {
                    let _ = store.delete_conversation(&user, id).await;
                }
                tracing::warn!(
                    event = "chat.record_failed",
                    conversation_id = %id,
                    error = %crate::error::cause_chain(&error),
                );
                false
            }
        }
    }

    /// Appends the turn's answer once the request's messages are stored, off the request (the
    /// stream may already be gone).
    fn record(self, message: NewMessage) {
        tokio::spawn(self.store_answer(message));
    }

    /// Appends the turn's answer once the request's messages are stored, holding the slot until
    /// then; failures are logged.
    async fn store_answer(self, message: NewMessage) {
        self.store_answers(vec![message]).await;
    }

    /// Appends the turn's messages (an assistant's steps and answer) once the request's messages
    /// are stored, holding the slot until then; failures are logged.
    pub(crate) async fn store_answers(self, messages: Vec<NewMessage>) {
        if !self.opening.await.unwrap_or(false) || messages.is_empty() {
            return;
        }
        if let Err(error) = self
            .store
            .append_messages(&self.user, self.conversation_id, &messages)
            .await
        {
            tracing::warn!(
                event = "chat.record_failed",
                conversation_id = %self.conversation_id,
                error = %crate::error::cause_chain(&error),
            );
        }
        drop(self.slot);
    }
}

/// Longest title taken from the first user message of a new conversation, in characters.
pub const TITLE_CHARS: usize = 80;

/// A new conversation's title: the start of its first user message's text.
fn title_of(messages: &[Value]) -> String {
    let text = messages
        .iter()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .find_map(|m| match m.get("content") {
            Some(Value::String(text)) => Some(text.clone()),
            Some(Value::Array(parts)) => parts
                .iter()
                .find_map(|p| p.get("text").and_then(Value::as_str).map(str::to_owned)),
            _ => None,
        })
        .unwrap_or_default();
    let title: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let title: String = title.chars().take(TITLE_CHARS).collect();
    if title.is_empty() {
        "New conversation".to_owned()
    } else {
        title
    }
}

/// A request message as stored (checked by [`check_message`] already).
fn stored_message(message: &Value) -> NewMessage {
    let text = |key: &str| message.get(key).and_then(Value::as_str).map(str::to_owned);
    NewMessage {
        tool_calls: message.get("tool_calls").filter(|c| c.is_array()).cloned(),
        tool_call_id: text("tool_call_id"),
        ..NewMessage::new(
            text("role").unwrap_or_default(),
            message.get("content").cloned().unwrap_or(Value::Null),
        )
    }
}

/// A stored message as the endpoint is sent it; `None` for an answer that holds nothing to send
/// (a failed turn without text or tool calls).
fn wire_message(message: &NewMessage) -> Option<Value> {
    let empty = match &message.content {
        Value::Null => true,
        Value::String(text) => text.is_empty(),
        _ => false,
    };
    if empty && message.tool_calls.is_none() {
        return None;
    }
    let mut wire = Map::new();
    wire.insert("role".into(), Value::String(message.role.clone()));
    wire.insert("content".into(), message.content.clone());
    if let Some(calls) = &message.tool_calls {
        wire.insert("tool_calls".into(), calls.clone());
    }
    if let Some(id) = &message.tool_call_id {
        wire.insert("tool_call_id".into(), Value::String(id.clone()));
    }
    Some(Value::Object(wire))
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
            Err(_) => Bytes::from_static(super::sse::KEEP_ALIVE),
            Ok(Ok(Some(data))) => {
                if let Some(error) = upstream_error_event(&data) {
                    self.fail(error)
                } else {
                    self.turn.observe(&data);
                    super::sse::data(&data)
                }
            }
            Ok(Ok(None)) => {
                self.finished = true;
                self.turn.outcome = MessageOutcome::Completed;
                Bytes::from_static(super::sse::DONE)
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
        if self.finished {
            // The answer is stored before the last event goes out, so a client that continues
            // the conversation at once (an agent sending tool results) finds it there.
            self.turn.store_answer().await;
        }
        Some((Ok(bytes), self))
    }

    /// The last event: the error in the API's envelope.
    fn fail(&mut self, error: ApiError) -> Bytes {
        self.finished = true;
        self.turn.failed(&error);
        tracing::warn!(
            event = "chat.stream_failed",
            endpoint = %self.turn.endpoint,
            error = %crate::error::cause_chain(&error),
        );
        super::sse::error(&error, self.turn.correlation_id.as_str(), None)
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
            conversation_id: None,
            messages: vec![json!({"role": "user", "content": "hi"})],
            max_tokens: Some(64),
            temperature: None,
            tools: None,
            tool_choice: None,
        };

        // Act
        let body = upstream_body(request.messages.clone(), request);

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
