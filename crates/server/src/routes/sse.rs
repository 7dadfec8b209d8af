//! Server-sent events as this API sends them (`docs/chat.md`, `docs/genie.md`): the response
//! head of a stream, its events, the keep-alive comment, the `[DONE]` end marker and the last
//! event of a failed stream, which carries the API's error envelope. Shared by the streaming
//! routes so that every stream looks the same to the browser and to proxies.

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::ApiError;

/// One event of a stream, as a client's SSE parser reads it: the OpenAPI schema of a
/// `text/event-stream` answer describes each event (OpenAPI 3.1 has no `itemSchema`, so
/// `schema` stands for it). The route's description says what `data` holds for each `event`.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)] // documentation only: events are written as bytes by the functions below
pub struct SseEvent {
    /// The event's name; absent means `message`.
    event: Option<String>,
    /// The event's data: JSON, or `[DONE]` on the last event of a stream that ended well.
    data: String,
}

/// The comment sent while the upstream is silent, so idle proxies keep the connection.
pub const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// The last event of a stream that ended well.
pub const DONE: &[u8] = b"data: [DONE]\n\n";

/// `200 text/event-stream` over `body`, uncached and unbuffered (nginx-style proxies otherwise
/// buffer the whole answer).
pub fn event_stream(body: Body) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    *response.status_mut() = StatusCode::OK;
    response
}

/// An unnamed event: `data: <data>`.
#[must_use]
pub fn data(data: &str) -> Bytes {
    Bytes::from(format!("data: {data}\n\n"))
}

/// A named event: `event: <name>` then `data: <data>` (one line: `data` is JSON).
#[must_use]
pub fn named(name: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// The last event of a failed stream: `data: {"error": <the API's error envelope>}`, named
/// `event` when given (the `openai` client raises an unnamed one as an `APIError`).
#[must_use]
pub fn error(error: &ApiError, correlation_id: &str, event: Option<&str>) -> Bytes {
    let body = json!({ "error": error.envelope(correlation_id) }).to_string();
    match event {
        Some(name) => named(name, &body),
        None => data(&body),
    }
}
