//! Model Serving (UPSTREAM §4.3): endpoint list and get, invocation with raw JSON in and out,
//! and a chat helper for OpenAI-style chat endpoints.
//!
//! Invocations are POSTs that may run a model (and bill for it) twice if repeated, so they are
//! not retried unless the caller says the call is idempotent
//! ([`Workspace::invoke_serving_endpoint_with`]).

use std::collections::BTreeMap;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::encode_segment;
use crate::client::Workspace;
use crate::error::DatabricksError;
use crate::http::Operation;
use crate::sse::SseParser;

// The `api`/`operation` names of this module's calls (see [`Operation`]).
const LIST_SERVING_ENDPOINTS: Operation = Operation::new("serving", "list_serving_endpoints");
const GET_SERVING_ENDPOINT: Operation = Operation::new("serving", "get_serving_endpoint");
const GET_OPEN_API: Operation = Operation::new("serving", "get_open_api");
const QUERY: Operation = Operation::new("serving", "query");
const QUERY_STREAM: Operation = Operation::new("serving", "query_stream");

/// A serving endpoint.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct ServingEndpoint {
    /// Name.
    pub name: String,
    /// Id.
    #[serde(default)]
    pub id: Option<String>,
    /// Creator.
    #[serde(default)]
    pub creator: Option<String>,
    /// `llm/v1/chat`, `llm/v1/completions`, `llm/v1/embeddings`, ...
    #[serde(default)]
    pub task: Option<String>,
    /// Readiness and config update state.
    #[serde(default)]
    pub state: Option<EndpointState>,
    /// Served entities.
    #[serde(default)]
    pub config: Option<EndpointConfig>,
    /// Creation time, epoch milliseconds.
    #[serde(default)]
    pub creation_timestamp: Option<i64>,
    /// Last update, epoch milliseconds.
    #[serde(default)]
    pub last_updated_timestamp: Option<i64>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

impl ServingEndpoint {
    /// Whether `state.ready` is `READY`.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.state.as_ref().and_then(|s| s.ready.as_deref()) == Some("READY")
    }

    /// The served entities, if any.
    #[must_use]
    pub fn served_entities(&self) -> &[ServedEntity] {
        self.config.as_ref().map_or(&[], |c| &c.served_entities)
    }
}

/// `state` of an endpoint.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointState {
    /// `READY` or `NOT_READY`.
    #[serde(default)]
    pub ready: Option<String>,
    /// `NOT_UPDATING`, `IN_PROGRESS`, `UPDATE_FAILED`, `UPDATE_CANCELED`.
    #[serde(default)]
    pub config_update: Option<String>,
}

/// `config` of an endpoint.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct EndpointConfig {
    /// Served entities.
    #[serde(default)]
    pub served_entities: Vec<ServedEntity>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// A served model or entity.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct ServedEntity {
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// The model or entity served.
    #[serde(default)]
    pub entity_name: Option<String>,
    /// Its version.
    #[serde(default)]
    pub entity_version: Option<String>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct Endpoints {
    #[serde(default)]
    endpoints: Vec<ServingEndpoint>,
}

/// An invocation's answer.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Invocation {
    /// The response body, as sent.
    pub body: Value,
    /// The `served-model-name` response header.
    pub served_model_name: Option<String>,
}

/// A chat message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl ChatMessage {
    /// A `user` message.
    #[must_use]
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: "user".to_owned(),
            content: content.into(),
        }
    }

    /// A `system` message.
    #[must_use]
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: "system".to_owned(),
            content: content.into(),
        }
    }
}

/// A chat request.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
#[non_exhaustive]
pub struct ChatRequest {
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// Most tokens to generate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
}

impl ChatRequest {
    /// A request with these messages.
    #[must_use]
    pub fn new(messages: Vec<ChatMessage>) -> Self {
        Self {
            messages,
            ..Self::default()
        }
    }
}

/// A chat completion.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct ChatResponse {
    /// Id.
    #[serde(default)]
    pub id: Option<String>,
    /// Model that answered.
    #[serde(default)]
    pub model: Option<String>,
    /// Choices.
    #[serde(default)]
    pub choices: Vec<ChatChoice>,
    /// Token usage.
    #[serde(default)]
    pub usage: Option<Usage>,
}

impl ChatResponse {
    /// The first choice's text.
    #[must_use]
    pub fn content(&self) -> Option<&str> {
        self.choices.first().map(|c| c.message.content.as_str())
    }
}

/// One chat choice.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct ChatChoice {
    /// Index.
    #[serde(default)]
    pub index: u32,
    /// The message.
    pub message: ChatMessage,
    /// Why generation stopped; the real API sends `finish_reason`, the Python SDK's types say
    /// `finishReason`: both are accepted.
    #[serde(default, alias = "finishReason")]
    pub finish_reason: Option<String>,
}

/// Token usage.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct Usage {
    /// Prompt tokens.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Completion tokens.
    #[serde(default)]
    pub completion_tokens: u64,
    /// Total tokens.
    #[serde(default)]
    pub total_tokens: u64,
}

impl Workspace<'_> {
    /// Every serving endpoint (the API is unpaginated).
    ///
    /// # Errors
    /// Auth, transport and 5xx kinds.
    #[tracing::instrument(skip_all)]
    pub async fn list_serving_endpoints(&self) -> Result<Vec<ServingEndpoint>, DatabricksError> {
        let body: Endpoints = self
            .get_json(
                self.call(
                    LIST_SERVING_ENDPOINTS,
                    Method::GET,
                    "/api/2.0/serving-endpoints",
                ),
                "serving endpoints",
            )
            .await?;
        Ok(body.endpoints)
    }

    /// One serving endpoint.
    ///
    /// # Errors
    /// [`crate::ErrorKind::NotFound`], auth, transport and 5xx kinds.
    #[tracing::instrument(skip_all, fields(endpoint = %name))]
    pub async fn get_serving_endpoint(
        &self,
        name: &str,
    ) -> Result<ServingEndpoint, DatabricksError> {
        let path = format!("/api/2.0/serving-endpoints/{}", encode_segment(name));
        self.get_json(
            self.call(GET_SERVING_ENDPOINT, Method::GET, &path),
            "serving endpoint",
        )
        .await
    }

    /// The endpoint's own OpenAPI description (`GET /api/2.0/serving-endpoints/{name}/openapi`),
    /// as JSON.
    ///
    /// # Errors
    /// [`crate::ErrorKind::NotFound`] (also for endpoints without a description), auth,
    /// transport and 5xx kinds.
    #[tracing::instrument(skip_all, fields(endpoint = %name))]
    pub async fn get_open_api(&self, name: &str) -> Result<Value, DatabricksError> {
        let path = format!(
            "/api/2.0/serving-endpoints/{}/openapi",
            encode_segment(name)
        );
        self.get_json(
            self.call(GET_OPEN_API, Method::GET, &path),
            "endpoint OpenAPI",
        )
        .await
    }

    /// Invokes an endpoint with any JSON body and returns its JSON answer. Not retried.
    ///
    /// # Errors
    /// The endpoint's error (e.g. [`crate::ErrorKind::Internal`] for a model failure,
    /// [`crate::ErrorKind::BadRequest`] for an endpoint that is not ready), auth and transport
    /// kinds.
    pub async fn invoke_serving_endpoint(
        &self,
        name: &str,
        input: Value,
    ) -> Result<Invocation, DatabricksError> {
        self.invoke_serving_endpoint_with(name, input, false).await
    }

    /// As [`Workspace::invoke_serving_endpoint`], retried like a GET when `idempotent`.
    ///
    /// # Errors
    /// As [`Workspace::invoke_serving_endpoint`].
    #[tracing::instrument(skip_all, fields(endpoint = %name, idempotent))]
    pub async fn invoke_serving_endpoint_with(
        &self,
        name: &str,
        input: Value,
        idempotent: bool,
    ) -> Result<Invocation, DatabricksError> {
        let path = format!("/serving-endpoints/{}/invocations", encode_segment(name));
        let call = self
            .call(QUERY, Method::POST, &path)
            .json(input)
            .idempotent(idempotent);
        let response = self.send(call).await?;
        let served_model_name = response
            .headers
            .get("served-model-name")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Invocation {
            body: response.json("invocation")?,
            served_model_name,
        })
    }

    /// Sends a chat request to an OpenAI-style chat endpoint. Not retried.
    ///
    /// ```no_run
    /// # async fn run(client: dbapp_databricks::Client, token: dbapp_databricks::UserToken) -> Result<(), dbapp_databricks::DatabricksError> {
    /// use dbapp_databricks::api::{ChatMessage, ChatRequest};
    ///
    /// let request = ChatRequest::new(vec![ChatMessage::user("Hello!")]);
    /// let reply = client.as_user(&token).chat("chat", &request).await?;
    /// println!("{}", reply.content().unwrap_or_default());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Workspace::invoke_serving_endpoint`], plus [`crate::ErrorKind::Decode`] when the
    /// answer is not a chat completion.
    #[tracing::instrument(skip_all, fields(endpoint = %name))]
    pub async fn chat(
        &self,
        name: &str,
        request: &ChatRequest,
    ) -> Result<ChatResponse, DatabricksError> {
        let input = serde_json::to_value(request).map_err(|e| {
            DatabricksError::new(crate::ErrorKind::Decode, format!("chat request: {e}"))
        })?;
        let invocation = self.invoke_serving_endpoint(name, input).await?;
        serde_json::from_value(invocation.body).map_err(|e| {
            DatabricksError::new(
                crate::ErrorKind::Decode,
                format!("endpoint {name} did not answer with a chat completion: {e}"),
            )
        })
    }
}

/// A streamed invocation's answer (UPSTREAM-2 §2.2): the `data` of each server-sent event as it
/// arrives. Dropping it closes the connection, which cancels the generation upstream.
#[derive(Debug)]
pub struct ServingStream {
    response: reqwest::Response,
    parser: SseParser,
    done: bool,
    ended: Option<StreamEnd>,
}

/// How a [`ServingStream`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// With `data: [DONE]`.
    Done,
    /// The connection closed without `[DONE]` (both official parsers accept this quietly).
    Eof,
}

impl ServingStream {
    /// The data of the next event, `None` once the stream has ended (see [`Self::end`]). The
    /// bytes are read as the endpoint sends them; nothing is buffered beyond one event.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Transport`] when the connection fails mid-stream,
    /// [`crate::ErrorKind::Timeout`] past the call's timeout, [`crate::ErrorKind::Decode`] for an
    /// event larger than [`crate::sse::MAX_EVENT_BYTES`].
    pub async fn next_data(&mut self) -> Result<Option<String>, DatabricksError> {
        loop {
            if self.parser.overflowed() {
                return Err(DatabricksError::new(
                    crate::ErrorKind::Decode,
                    format!(
                        "the endpoint sent an event over {} bytes",
                        crate::sse::MAX_EVENT_BYTES
                    ),
                ));
            }
            if self.ended.is_some() {
                return Ok(None);
            }
            if let Some(data) = self.parser.next_event() {
                if data.trim() == "[DONE]" {
                    self.ended = Some(StreamEnd::Done);
                    return Ok(None);
                }
                return Ok(Some(data));
            }
            if self.done {
                self.ended = Some(StreamEnd::Eof);
                return Ok(None);
            }
            match self
                .response
                .chunk()
                .await
                .map_err(DatabricksError::from_reqwest)?
            {
                Some(bytes) => self.parser.feed(&bytes),
                None => self.done = true,
            }
        }
    }

    /// How the stream ended; `None` while it has not.
    #[must_use]
    pub fn end(&self) -> Option<StreamEnd> {
        self.ended
    }
}

impl Workspace<'_> {
    /// Invokes an endpoint with `stream: true` semantics and returns its server-sent events as
    /// they arrive. `input` is sent as given (set `"stream": true` in it). Never retried;
    /// `timeout` bounds the whole stream.
    ///
    /// # Errors
    /// As [`Workspace::invoke_serving_endpoint`] for an answer refused before the stream starts.
    #[tracing::instrument(skip_all, fields(endpoint = %name))]
    pub async fn stream_serving_endpoint(
        &self,
        name: &str,
        input: Value,
        timeout: std::time::Duration,
    ) -> Result<ServingStream, DatabricksError> {
        let path = format!("/serving-endpoints/{}/invocations", encode_segment(name));
        let call = self
            .call(QUERY_STREAM, Method::POST, &path)
            .json(input)
            .timeout(timeout);
        let response = self.send_streaming(call).await?;
        Ok(ServingStream {
            response,
            parser: SseParser::new(),
            done: false,
            ended: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_reason_is_accepted_in_both_spellings() {
        for key in ["finish_reason", "finishReason"] {
            let body = serde_json::json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, key: "stop"}]});
            let response: ChatResponse = serde_json::from_value(body).unwrap();
            assert_eq!(response.choices[0].finish_reason.as_deref(), Some("stop"));
        }
    }
}
