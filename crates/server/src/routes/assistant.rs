//! The data assistant, as the user (`docs/assistant.md`):
//! `POST /api/assistant/conversations/{id}/messages`.
//!
//! An agent answers the caller's question with a bounded tool loop on the chat endpoint named by
//! `DBAPP_ASSISTANT_ENDPOINT` (unset: `503 ASSISTANT_NOT_CONFIGURED`). Its tools are the API's
//! own code, run with the caller's token: `ask_genie` ([`super::genie::ask_and_wait`]),
//! `list_tables` ([`super::unity_catalog::tables_page`]) and `preview_table`
//! ([`super::unity_catalog::preview`]). Nothing runs as the app except the store.
//!
//! Each step calls the endpoint **without streaming** (a step's output is either tool calls or
//! the final text, and the client is shown steps, not tokens), executes the tool calls it asks
//! for and appends their `tool` messages (with `tool_call_id`); a tool's failure is the tool's
//! result, which the model sees, not the stream's end. The loop ends when the model answers with
//! text, or at a limit: `DBAPP_ASSISTANT_MAX_STEPS` tool calls, `DBAPP_ASSISTANT_DEADLINE_SECS`
//! for the whole answer, `DBAPP_ASSISTANT_MAX_TOKENS` per call (an answer cut there).
//!
//! The stream (`200 text/event-stream`): `event: step` per tool call and per tool result,
//! `event: answer` with the text, `event: limit` when a limit ended the answer, then
//! `data: [DONE]`; a failure of the endpoint ends it with `event: error` and the API's error
//! envelope. `: keep-alive` comments are sent while a step is running.
//!
//! `{id}` is `new` (a conversation is started, titled after the question; its id is in the
//! `X-Conversation-ID` header) or a conversation of the caller (`GET /api/conversations`). Every
//! message is stored there through the chat's recorder ([`super::chat::Recorder`]): the
//! question, each assistant message with its tool calls, each tool result, the answer (or the
//! limit's message). An answer uses one of the caller's invocation quota, as a chat turn does.

use std::convert::Infallible;
use std::pin::Pin;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::HeaderValue;
use axum::response::Response;
use dbapp_store::{MessageOutcome, NewMessage};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::chat::{CONVERSATION_ID_HEADER, Recorder};
use super::{Cursor, PageSpec, sse};
use crate::auth::Caller;
use crate::correlation::current_correlation_id;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, Name};
use crate::state::AppState;

/// Longest question, in characters.
pub const MAX_QUESTION_CHARS: usize = 10_000;
/// Most bytes of a tool's result sent to the model and stored; the rest is cut.
pub const MAX_TOOL_RESULT_BYTES: usize = 16 * 1024;
/// Most rows `preview_table` reads.
pub const MAX_PREVIEW_ROWS: u32 = 100;
/// Tables `list_tables` lists at most.
pub const MAX_LISTED_TABLES: u32 = 200;

/// What the model is told before the conversation (not stored).
const SYSTEM_PROMPT: &str = "You are a data assistant. Answer the user's questions about their data. \
Use ask_genie to ask a Genie space a question in words, list_tables to see the tables of a schema, \
and preview_table to read a few rows. Every tool runs with the user's own permissions; \
when a tool fails, say so plainly.";

/// A question for the assistant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssistantRequest {
    /// The question, 1 to 10 000 characters.
    pub content: String,
}

/// A step of the answer, the `data` of an `event: step`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssistantStep {
    /// `tool_call` (the model asks for a tool) or `tool_result` (what the tool answered).
    pub kind: String,
    /// The tool: `ask_genie`, `list_tables` or `preview_table`.
    pub tool: String,
    /// The call's id, which its result repeats.
    pub call_id: String,
    /// The call's arguments (as the model wrote them; a string when not JSON).
    #[schema(value_type = Object)]
    pub arguments: Value,
    /// For a result: whether the tool succeeded; null for a call.
    #[schema(required)]
    pub ok: Option<bool>,
    /// For a result: a short summary (e.g. `12 rows`, or the error code); null for a call.
    #[schema(required)]
    pub summary: Option<String>,
    /// For a result: what the model is sent, JSON of at most 16 KiB (rows past that are left out
    /// and `truncated` set; other text is cut); null for a call.
    #[schema(required)]
    pub result: Option<String>,
    /// Milliseconds since the answer started.
    pub elapsed_ms: u64,
}

/// The final answer, the `data` of an `event: answer`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssistantAnswer {
    /// The answer's text (markdown).
    pub text: String,
    /// The endpoint's `finish_reason` (`length`: cut at the token limit).
    #[schema(required)]
    pub finish_reason: Option<String>,
    /// Tool calls made.
    pub steps: u32,
    /// Milliseconds since the answer started.
    pub elapsed_ms: u64,
}

/// A limit that ended the answer, the `data` of an `event: limit`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssistantLimit {
    /// `max_steps`, `deadline` or `max_tokens`.
    pub limit: String,
    /// What happened, for people (also stored as the conversation's last message).
    pub message: String,
    /// Milliseconds since the answer started.
    pub elapsed_ms: u64,
}

/// How the assistant is set up, for a client to show before the first question.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssistantInfo {
    /// The chat serving endpoint the assistant runs on (`DBAPP_ASSISTANT_ENDPOINT`); null when
    /// none is configured, and then every question is `503 ASSISTANT_NOT_CONFIGURED`. Its
    /// conversations are those of `GET /api/conversations` with this `endpoint_name`.
    #[schema(required)]
    pub endpoint: Option<String>,
    /// Most tool calls of one answer (`DBAPP_ASSISTANT_MAX_STEPS`).
    pub max_steps: u32,
    /// The longest one answer may take, in seconds (`DBAPP_ASSISTANT_DEADLINE_SECS`).
    pub deadline_secs: u64,
    /// `max_tokens` of each call to the endpoint (`DBAPP_ASSISTANT_MAX_TOKENS`).
    pub max_tokens: u32,
    /// The tools the model may call, each run as the caller.
    pub tools: Vec<AssistantTool>,
}

/// One tool of the assistant.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssistantTool {
    /// The tool's name, as the steps name it.
    pub name: String,
    /// What it does, as the model is told.
    pub description: String,
}

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(info))
        .routes(routes!(ask))
}

/// How the assistant is set up: its endpoint (or none), its limits and its tools.
#[utoipa::path(get, path = "/api/assistant", tag = "assistant",
    security(("user_token" = [])),
    responses(
    (status = 200, body = AssistantInfo),
    (status = 401, body = ErrorBody),
))]
async fn info(State(app): State<AppState>, _caller: Caller) -> axum::Json<AssistantInfo> {
    let settings = &app.settings.dbapp;
    let tools = tools()
        .as_array()
        .into_iter()
        .flatten()
        .map(|tool| AssistantTool {
            name: tool
                .pointer("/function/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            description: tool
                .pointer("/function/description")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        })
        .collect();
    axum::Json(AssistantInfo {
        endpoint: settings.assistant_endpoint.clone(),
        max_steps: settings.assistant_max_steps,
        deadline_secs: settings.assistant_deadline_secs,
        max_tokens: settings.assistant_max_tokens,
        tools,
    })
}

/// Asks the data assistant a question, as the caller, and streams its steps and answer as
/// server-sent events.
#[utoipa::path(post, path = "/api/assistant/conversations/{id}/messages", tag = "assistant",
    security(("user_token" = [])),
    params(("id" = String, Path, description = "`new`, or the caller's conversation to continue")),
    request_body = AssistantRequest,
    responses(
    (status = 200, content_type = "text/event-stream", body = String,
        description = "`event: step` (`AssistantStep`) per tool call and result, `event: answer` (`AssistantAnswer`), `event: limit` (`AssistantLimit`) when a limit ended the answer, `: keep-alive` comments, then `data: [DONE]`; or a last `event: error` with `data: {\"error\": <error envelope>}` (MODEL_ERROR, ENDPOINT_NOT_FOUND, …). The conversation's id is in `X-Conversation-ID`."),
    (status = 400, body = ErrorBody, description = "INVALID_REQUEST"),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "CONVERSATION_NOT_FOUND"),
    (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
    (status = 429, body = ErrorBody, description = "RATE_LIMITED: the caller's invocation quota (an answer is an invocation)"),
    (status = 503, body = ErrorBody, description = "ASSISTANT_NOT_CONFIGURED, STORAGE_NOT_CONFIGURED (continuing a conversation without a store), DATABASE_UNAVAILABLE"),
))]
async fn ask(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let Some(endpoint) = app.settings.dbapp.assistant_endpoint.clone() else {
        return Err(ApiError::AssistantNotConfigured);
    };
    let conversation_id = match id.as_str() {
        "new" => None,
        other => Some(
            Uuid::parse_str(other)
                .map_err(|_| ApiError::invalid("id", "must be `new` or a conversation id"))?,
        ),
    };
    let request: AssistantRequest = super::from_json_object("body", body)?;
    let chars = request.content.chars().count();
    if request.content.trim().is_empty() || chars > MAX_QUESTION_CHARS {
        return Err(ApiError::invalid(
            "content",
            format!("must hold 1 to {MAX_QUESTION_CHARS} characters"),
        ));
    }
    let question = json!({"role": "user", "content": request.content});
    dbapp_store::check_storable_json("content", &question)
        .map_err(|e| ApiError::invalid("content", e.to_string()))?;
    app.quotas.check_invocation(caller.user_id())?;
    let max_steps = app.settings.dbapp.assistant_max_steps;
    // Room for every step's call and result, and the answer.
    let room = 2 * max_steps as usize + 1;
    let (recorder, history) = Recorder::open(
        &app,
        &caller,
        &endpoint,
        conversation_id,
        std::slice::from_ref(&question),
        room,
    )
    .await?;
    let conversation = recorder.as_ref().map(|r| r.conversation_id);
    let mut messages = vec![json!({"role": "system", "content": SYSTEM_PROMPT})];
    messages.extend(history);
    let (events, receiver) = mpsc::unbounded_channel();
    let agent = Agent {
        app: app.clone(),
        caller,
        endpoint,
        messages,
        events,
        started: Instant::now(),
        steps: 0,
        record: Record {
            recorder,
            messages: Vec::new(),
        },
        correlation_id: current_correlation_id().as_str().to_owned(),
    };
    let relay = Relay {
        agent: Some(Box::pin(agent.run())),
        events: receiver,
        heartbeat: Duration::from_secs(app.settings.dbapp.chat_heartbeat_secs),
    };
    let stream = futures_util::stream::unfold(relay, Relay::next);
    let mut response = sse::event_stream(Body::from_stream(stream));
    if let Some(id) = conversation
        && let Ok(value) = HeaderValue::from_str(&id.to_string())
    {
        response.headers_mut().insert(CONVERSATION_ID_HEADER, value);
    }
    Ok(response)
}

/// The messages an answer adds to the conversation, stored when it ends; when the client goes
/// away first, the answer is dropped and what it did so far is stored from [`Drop`].
struct Record {
    recorder: Option<Recorder>,
    messages: Vec<NewMessage>,
}

impl Record {
    async fn store(&mut self) {
        if let Some(recorder) = self.recorder.take() {
            recorder
                .store_answers(std::mem::take(&mut self.messages))
                .await;
        }
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        if let Some(recorder) = self.recorder.take() {
            let messages = std::mem::take(&mut self.messages);
            tokio::spawn(recorder.store_answers(messages));
        }
    }
}

/// How a step of the loop ended.
enum Next {
    Continue,
    Done,
}

/// One answer of the assistant, run inside the response body.
struct Agent {
    app: AppState,
    caller: Caller,
    endpoint: String,
    /// What the endpoint is sent: the system prompt, the conversation, the steps so far.
    messages: Vec<Value>,
    events: mpsc::UnboundedSender<Bytes>,
    started: Instant,
    /// Tool calls made.
    steps: u32,
    record: Record,
    correlation_id: String,
}

impl Agent {
    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn send(&self, event: &str, data: &impl Serialize) {
        let data = serde_json::to_string(data).unwrap_or_else(|_| "null".to_owned());
        // The receiver is gone only with the stream, and then so is this agent.
        let _ = self.events.send(sse::named(event, &data));
    }

    fn deadline(&self) -> Instant {
        self.started + Duration::from_secs(self.app.settings.dbapp.assistant_deadline_secs)
    }

    /// The loop; every way out stores the conversation before the last event.
    async fn run(mut self) {
        let last = loop {
            match self.step().await {
                Ok(Next::Continue) => {}
                Ok(Next::Done) => break Bytes::from_static(sse::DONE),
                Err(error) => {
                    tracing::warn!(
                        event = "assistant.failed",
                        endpoint = %self.endpoint,
                        error = %crate::error::cause_chain(&error),
                    );
                    self.record.messages.push(NewMessage {
                        endpoint_name: Some(self.endpoint.clone()),
                        outcome: Some(MessageOutcome::Failed),
                        error_code: Some(error.code().as_str().to_owned()),
                        error_message: Some(error.to_string()),
                        ..NewMessage::new("assistant", Value::String(String::new()))
                    });
                    break sse::error(&error, &self.correlation_id, Some("error"));
                }
            }
        };
        self.record.store().await;
        tracing::info!(
            event = "assistant.answer_ended",
            endpoint = %self.endpoint,
            steps = self.steps,
            elapsed_ms = self.elapsed_ms(),
        );
        let _ = self.events.send(last);
    }

    /// Ends the answer at a limit: the `limit` event, and its message stored as the answer.
    fn limit(&mut self, limit: &str, message: String) -> Next {
        self.send(
            "limit",
            &AssistantLimit {
                limit: limit.to_owned(),
                message: message.clone(),
                elapsed_ms: self.elapsed_ms(),
            },
        );
        self.record.messages.push(NewMessage {
            endpoint_name: Some(self.endpoint.clone()),
            finish_reason: Some(limit.to_owned()),
            outcome: Some(MessageOutcome::Completed),
            ..NewMessage::new("assistant", Value::String(message))
        });
        Next::Done
    }

    fn deadline_passed(&mut self) -> Next {
        let secs = self.app.settings.dbapp.assistant_deadline_secs;
        self.limit(
            "deadline",
            format!("The assistant stopped: the answer took longer than its {secs} s deadline."),
        )
    }

    /// One call of the endpoint, and the tools it asks for.
    async fn step(&mut self) -> Result<Next, ApiError> {
        let Some(remaining) = self.deadline().checked_duration_since(Instant::now()) else {
            return Ok(self.deadline_passed());
        };
        let body = json!({
            "messages": self.messages,
            "tools": tools(),
            "max_tokens": self.app.settings.dbapp.assistant_max_tokens,
        });
        let call_started = Instant::now();
        let workspace = self.caller.workspace(&self.app);
        // Not retried: the endpoint may have generated (and billed) an answer already.
        let invocation = match tokio::time::timeout(
            remaining,
            workspace.invoke_serving_endpoint(&self.endpoint, body),
        )
        .await
        {
            Err(_) => return Ok(self.deadline_passed()),
            Ok(result) => result.map_err(|e| {
                super::model_serving::model_error(
                    &self.app,
                    &self.caller,
                    &self.endpoint,
                    e,
                    self.app.settings.dbapp.assistant_deadline_secs,
                )
            })?,
        };
        let latency = i64::try_from(call_started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let choice = invocation.body.pointer("/choices/0");
        let message = choice.and_then(|c| c.get("message")).cloned();
        let Some(message) = message.filter(Value::is_object) else {
            return Err(ApiError::ModelStreamFailed {
                message: "the endpoint did not answer with a chat completion".to_owned(),
            });
        };
        let finish_reason = choice
            .and_then(|c| c.get("finish_reason"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let usage = |key: &str| {
            invocation
                .body
                .pointer(&format!("/usage/{key}"))
                .and_then(Value::as_i64)
        };
        let calls: Vec<Value> = message
            .get("tool_calls")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let text = message
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let recorded = NewMessage {
            endpoint_name: Some(self.endpoint.clone()),
            finish_reason: finish_reason.clone(),
            outcome: Some(MessageOutcome::Completed),
            prompt_tokens: usage("prompt_tokens"),
            completion_tokens: usage("completion_tokens"),
            latency_ms: Some(latency),
            tool_calls: (!calls.is_empty()).then(|| Value::Array(calls.clone())),
            ..NewMessage::new(
                "assistant",
                if calls.is_empty() || !text.is_empty() {
                    Value::String(text.clone())
                } else {
                    Value::Null
                },
            )
        };
        if calls.is_empty() {
            self.record.messages.push(recorded);
            self.send(
                "answer",
                &AssistantAnswer {
                    text,
                    finish_reason: finish_reason.clone(),
                    steps: self.steps,
                    elapsed_ms: self.elapsed_ms(),
                },
            );
            if finish_reason.as_deref() == Some("length") {
                let tokens = self.app.settings.dbapp.assistant_max_tokens;
                return Ok(self.limit(
                    "max_tokens",
                    format!("The answer was cut at the assistant's limit of {tokens} tokens."),
                ));
            }
            return Ok(Next::Done);
        }
        let max_steps = self.app.settings.dbapp.assistant_max_steps;
        if self.steps as usize + calls.len() > max_steps as usize {
            return Ok(self.limit(
                "max_steps",
                format!(
                    "The assistant stopped: answering needs more than its limit of {max_steps} tool calls."
                ),
            ));
        }
        self.record.messages.push(recorded);
        let mut wire = json!({"role": "assistant", "content": Value::Null, "tool_calls": calls});
        if !text.is_empty() {
            wire["content"] = Value::String(text);
        }
        self.messages.push(wire);
        for call in &calls {
            if !self.call_tool(call).await {
                return Ok(self.deadline_passed());
            }
        }
        Ok(Next::Continue)
    }

    /// Runs one tool call and adds its result; `false` when the deadline passed meanwhile (its
    /// result then says so).
    async fn call_tool(&mut self, call: &Value) -> bool {
        self.steps += 1;
        let call_id = call
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let tool = call
            .pointer("/function/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let raw = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or("{}");
        let arguments: Value =
            serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()));
        self.send(
            "step",
            &AssistantStep {
                kind: "tool_call".to_owned(),
                tool: tool.clone(),
                call_id: call_id.clone(),
                arguments: arguments.clone(),
                ok: None,
                summary: None,
                result: None,
                elapsed_ms: self.elapsed_ms(),
            },
        );
        let remaining = self
            .deadline()
            .checked_duration_since(Instant::now())
            .unwrap_or_default();
        let (outcome, in_time) = match tokio::time::timeout(
            remaining,
            run_tool(&self.app, &self.caller, &tool, &arguments),
        )
        .await
        {
            Ok(outcome) => (outcome, true),
            Err(_) => (
                Err(ToolError::Message(
                    "the assistant's deadline passed while the tool was running".to_owned(),
                )),
                false,
            ),
        };
        let (ok, summary, result) = match outcome {
            Ok((summary, value)) => (true, summary, value),
            Err(error) => {
                let (summary, value) = error.result();
                (false, summary, value)
            }
        };
        let content = fit(result, MAX_TOOL_RESULT_BYTES);
        tracing::info!(event = "assistant.tool_called", tool = %tool, ok, elapsed_ms = self.elapsed_ms());
        self.send(
            "step",
            &AssistantStep {
                kind: "tool_result".to_owned(),
                tool,
                call_id: call_id.clone(),
                arguments,
                ok: Some(ok),
                summary: Some(summary),
                result: Some(content.clone()),
                elapsed_ms: self.elapsed_ms(),
            },
        );
        self.messages.push(json!({
            "role": "tool", "tool_call_id": call_id, "content": content,
        }));
        self.record.messages.push(NewMessage {
            tool_call_id: Some(call_id),
            ..NewMessage::new("tool", Value::String(content))
        });
        in_time
    }
}

/// Where a tool's rows are: a table preview's `rows`, a Genie answer's `result.rows`.
const ROW_POINTERS: [&str; 2] = ["/rows", "/result/rows"];

/// A tool's result as JSON of at most `max` bytes. Rows are dropped from the end first (the
/// object holding them then says `"truncated": true`), so the model and the stored conversation
/// keep valid JSON with the first rows; only when that is not enough is the text cut.
fn fit(mut result: Value, max: usize) -> String {
    let mut text = result.to_string();
    for pointer in ROW_POINTERS {
        while text.len() > max {
            let Some(rows) = result.pointer_mut(pointer).and_then(Value::as_array_mut) else {
                break;
            };
            if rows.is_empty() {
                break;
            }
            let keep = rows.len() / 2;
            rows.truncate(keep);
            let parent = &pointer[..pointer.len() - "/rows".len()];
            if let Some(Value::Object(holder)) = result.pointer_mut(parent) {
                holder.insert("truncated".to_owned(), Value::Bool(true));
            }
            text = result.to_string();
        }
    }
    cut(&text, max)
}

/// `text` cut at `max` bytes, on a character boundary.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// Why a tool gave no answer: the API's error (the same the route would answer) or a problem
/// with the call itself.
enum ToolError {
    Api(ApiError),
    Message(String),
}

impl From<ApiError> for ToolError {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

impl ToolError {
    /// The summary and the result the model is sent: `{"error": {"error_code", "message"}}`.
    fn result(self) -> (String, Value) {
        match self {
            Self::Api(error) => {
                let code = error.code().as_str();
                let mut body = json!({"error_code": code, "message": error.to_string()});
                if let Some(detail) = error.envelope("").detail {
                    body["detail"] = detail;
                }
                (format!("error: {code}"), json!({ "error": body }))
            }
            Self::Message(message) => (
                format!("error: {message}"),
                json!({"error": {"error_code": "INVALID_TOOL_CALL", "message": message}}),
            ),
        }
    }
}

/// The tools offered to the model, as OpenAI function tools.
fn tools() -> Value {
    let string = |description: &str| json!({"type": "string", "description": description});
    json!([
        {"type": "function", "function": {
            "name": "ask_genie",
            "description": "Ask a Genie space a question about its data, in words; Genie writes and runs SQL as the user and answers with text and rows.",
            "parameters": {"type": "object", "properties": {
                "space_id": string("The Genie space's id"),
                "question": string("The question, in words"),
            }, "required": ["space_id", "question"]},
        }},
        {"type": "function", "function": {
            "name": "list_tables",
            "description": "List the tables of a Unity Catalog schema that the user can see.",
            "parameters": {"type": "object", "properties": {
                "catalog": string("The catalog"),
                "schema": string("The schema"),
            }, "required": ["catalog", "schema"]},
        }},
        {"type": "function", "function": {
            "name": "preview_table",
            "description": "Read the first rows of a table, as the user.",
            "parameters": {"type": "object", "properties": {
                "catalog": string("The catalog"),
                "schema": string("The schema"),
                "table": string("The table"),
                "limit": {"type": "integer", "minimum": 1, "maximum": MAX_PREVIEW_ROWS, "description": "Rows to read (default 10)"},
            }, "required": ["catalog", "schema", "table"]},
        }},
    ])
}

#[derive(Deserialize)]
struct AskGenieArgs {
    space_id: String,
    question: String,
}

#[derive(Deserialize)]
struct ListTablesArgs {
    catalog: String,
    schema: String,
}

#[derive(Deserialize)]
struct PreviewArgs {
    catalog: String,
    schema: String,
    table: String,
    limit: Option<u32>,
}

fn args<T: serde::de::DeserializeOwned>(arguments: &Value) -> Result<T, ToolError> {
    serde_json::from_value(arguments.clone())
        .map_err(|e| ToolError::Message(format!("invalid arguments: {e}")))
}

/// Runs a tool as the caller: its summary and result, or why it failed.
async fn run_tool(
    app: &AppState,
    caller: &Caller,
    tool: &str,
    arguments: &Value,
) -> Result<(String, Value), ToolError> {
    match tool {
        "ask_genie" => {
            let a: AskGenieArgs = args(arguments)?;
            let answer = super::genie::ask_and_wait(app, caller, &a.space_id, &a.question).await?;
            let rows = answer.result.as_ref().map_or(0, |r| r.row_count);
            let summary = match &answer.query {
                Some(query) => format!(
                    "Genie ran {}: {rows} rows",
                    query.title.as_deref().unwrap_or("a query")
                ),
                None => "Genie answered in words".to_owned(),
            };
            Ok((summary, to_value(&answer)))
        }
        "list_tables" => {
            let a: ListTablesArgs = args(arguments)?;
            let catalog = Name::parse(&a.catalog)?;
            let schema = Name::parse(&a.schema)?;
            let spec = PageSpec {
                limit: MAX_LISTED_TABLES,
                cursor: Cursor::default(),
            };
            let page =
                super::unity_catalog::tables_page(app, caller, &catalog, &schema, &spec).await?;
            let names: Vec<&str> = page.items.iter().map(|t| t.full_name.as_str()).collect();
            Ok((
                format!("{} tables", names.len()),
                json!({ "tables": names }),
            ))
        }
        "preview_table" => {
            let a: PreviewArgs = args(arguments)?;
            let limit = a.limit.unwrap_or(10).clamp(1, MAX_PREVIEW_ROWS);
            let (catalog, schema, table) = (
                Name::parse(&a.catalog)?,
                Name::parse(&a.schema)?,
                Name::parse(&a.table)?,
            );
            let rows =
                super::unity_catalog::preview(app, caller, &catalog, &schema, &table, limit, 0)
                    .await?;
            Ok((format!("{} rows", rows.row_count), to_value(&rows)))
        }
        other => Err(ToolError::Message(format!("there is no tool {other:?}"))),
    }
}

fn to_value(value: &impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

type AgentFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The response body: the agent's events as they come, keep-alive comments while it works.
struct Relay {
    agent: Option<AgentFuture>,
    events: mpsc::UnboundedReceiver<Bytes>,
    heartbeat: Duration,
}

enum Polled {
    Event(Bytes),
    Finished,
    Idle,
}

impl Relay {
    async fn next(mut self) -> Option<(Result<Bytes, Infallible>, Self)> {
        loop {
            if let Ok(bytes) = self.events.try_recv() {
                return Some((Ok(bytes), self));
            }
            let agent = self.agent.as_mut()?;
            let polled = tokio::select! {
                biased;
                Some(bytes) = self.events.recv() => Polled::Event(bytes),
                () = agent => Polled::Finished,
                () = tokio::time::sleep(self.heartbeat) => Polled::Idle,
            };
            match polled {
                Polled::Event(bytes) => return Some((Ok(bytes), self)),
                Polled::Finished => self.agent = None,
                Polled::Idle => return Some((Ok(Bytes::from_static(sse::KEEP_ALIVE)), self)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_is_an_openai_function_with_required_arguments() {
        let tools = tools();
        let names: Vec<&str> = tools
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["function"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["ask_genie", "list_tables", "preview_table"]);
        for tool in tools.as_array().unwrap() {
            assert_eq!(tool["type"], "function");
            assert!(tool["function"]["parameters"]["required"].is_array());
        }
    }

    #[test]
    fn a_result_with_too_many_rows_keeps_its_first_rows_as_valid_json() {
        let rows: Vec<Value> = (0..1000).map(|i| json!([i, "x".repeat(50)])).collect();
        let answer =
            json!({"text": ["ok"], "result": {"columns": [], "rows": rows, "truncated": false}});
        let preview = json!({"columns": [], "rows": answer["result"]["rows"].clone()});

        for value in [answer, preview] {
            let text = fit(value, MAX_TOOL_RESULT_BYTES);
            let parsed: Value = serde_json::from_str(&text).expect("valid JSON");
            let holder = parsed.pointer("/result").unwrap_or(&parsed);
            let kept = holder["rows"].as_array().unwrap();
            assert!(text.len() <= MAX_TOOL_RESULT_BYTES);
            assert!(!kept.is_empty() && kept.len() < 1000);
            assert_eq!(kept[0][0], 0);
            assert_eq!(holder["truncated"], true);
        }
    }

    #[test]
    fn a_small_result_is_left_alone_and_text_without_rows_is_cut() {
        let small = json!({"rows": [[1]]});
        assert_eq!(fit(small.clone(), 1024), small.to_string());
        let long = json!({"message": "y".repeat(100)});
        assert_eq!(fit(long, 20).len(), 20);
    }

    #[test]
    fn a_long_result_is_cut_on_a_character_boundary() {
        let text = "é".repeat(10);
        assert_eq!(cut(&text, 5), "éé");
        assert_eq!(cut("short", 16), "short");
    }
}
