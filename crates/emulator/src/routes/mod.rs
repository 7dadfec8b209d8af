//! The router: one module per Databricks service, the request log around all of them, fault
//! injection inside the log (so injected failures are logged too), and, outside both, the
//! `/_emulator/` control API and the downloads behind external result links (which stand in for
//! cloud storage, not the workspace).
//!
//! Also home of the lenient extractors every service uses: [`JsonBody`] (parses the body as JSON
//! whatever its content type, like the real service) and [`QueryParams`], both answering bad
//! input with a Databricks error body instead of axum's plain-text rejections.

mod apps;
mod autoscaling;
mod catalog;
mod database;
mod files;
mod genie;
mod oidc;
mod scim;
mod serving;
mod sessions;
mod statements;
mod warehouses;
mod workspace;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::auth::PrincipalSlot;
use crate::error::ApiError;
use crate::faults::{self, FaultApplied};
use crate::fixture::Settings;
use crate::state::{Emulator, LoggedRequest, lock};

pub(crate) fn router(emulator: Emulator) -> Router {
    let workspace = Router::new()
        .merge(oidc::router())
        .merge(scim::router())
        .merge(catalog::router())
        .merge(files::router())
        .merge(serving::router())
        .merge(statements::router())
        .merge(warehouses::router())
        .merge(sessions::router())
        .merge(database::router())
        .merge(autoscaling::router())
        .merge(apps::router())
        .merge(workspace::router())
        .merge(genie::router())
        .fallback(no_such_api)
        .layer(from_fn_with_state(emulator.clone(), faults::apply))
        .layer(from_fn_with_state(emulator.clone(), log_request));
    Router::new()
        .nest("/_emulator", crate::control::router())
        .merge(statements::download_router())
        .merge(workspace)
        .with_state(emulator)
}

async fn no_such_api(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(
        "ENDPOINT_NOT_FOUND",
        format!("No API found for '{method} {}'", uri.path()),
    )
}

/// Records every workspace request in the log once its response is known.
async fn log_request(
    State(emulator): State<Emulator>,
    mut request: Request,
    next: Next,
) -> Response {
    let slot = PrincipalSlot::default();
    request.extensions_mut().insert(slot.clone());
    // A block, so no borrow of the (non-`Sync`) request is held across the `.await` below.
    let (correlation_id, user_agent, traceparent) = {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let correlation_id = header("x-correlation-id").or_else(|| header("x-request-id"));
        (
            correlation_id,
            header(header::USER_AGENT.as_str()),
            header("traceparent"),
        )
    };
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let mut response = next.run(request).await;
    // Each answer names its request, as the workspace's do (UNCONFIRMED: `docs/emulator.md`).
    let request_id = uuid::Uuid::new_v4().to_string();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    let principal = lock(&slot.0).take();
    lock(&emulator.log).push(LoggedRequest {
        seq: 0,
        timestamp: Utc::now(),
        method,
        path,
        query,
        principal,
        status: response.status().as_u16(),
        fault: response.extensions().get::<FaultApplied>().is_some(),
        correlation_id,
        user_agent,
        traceparent,
        request_id,
    });
    response
}

/// The scheme and authority clients used to reach us, for URLs we hand back.
pub(crate) fn base_url(headers: &HeaderMap, emulator: &Emulator) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map_or_else(
            || emulator.base_url.clone(),
            |host| format!("http://{host}"),
        )
}

/// A boolean query parameter as clients send it (`true`, `True`, `1`; absent is false).
pub(crate) fn flag(name: &str, value: Option<&str>) -> Result<bool, ApiError> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("false" | "0" | "") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "Invalid {name} {other:?}: expected true or false."
        ))),
    }
}

/// A transition delay setting in milliseconds as a duration, at most a day so that the time it
/// settles stays representable.
pub(crate) fn clock_delay(ms: u64) -> chrono::Duration {
    chrono::Duration::milliseconds(i64::try_from(ms).unwrap_or(i64::MAX).min(86_400_000))
}

/// An opaque page token for a list position, so clients cannot rely on its shape.
pub(crate) fn encode_page_token(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("dbapp-emulator:{offset}"))
}

/// The list position a page token stands for; anything else is `400`.
pub(crate) fn decode_page_token(token: &str) -> Result<usize, ApiError> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix("dbapp-emulator:")?.parse().ok())
        .ok_or_else(|| ApiError::bad_request(format!("Invalid page token: {token}")))
}

/// One page of `items` as `{key: [...], "next_page_token"?}`, for the lists that take
/// `page_size` (absent or 0: `default_page_size`; capped at `max_page_size`; negative: `400`) and
/// an opaque `page_token`; the token is absent on the last page.
pub(crate) fn page_of(
    key: &str,
    items: Vec<Value>,
    page_size: Option<i64>,
    page_token: Option<&str>,
    settings: &Settings,
) -> Result<Value, ApiError> {
    let size = match page_size {
        None | Some(0) => settings.default_page_size,
        Some(n) => usize::try_from(n).map_err(|_| {
            ApiError::bad_request(format!("page_size must not be negative, got {n}."))
        })?,
    }
    .min(settings.max_page_size);
    let start = match page_token.filter(|t| !t.is_empty()) {
        Some(token) => decode_page_token(token)?,
        None => 0,
    };
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(start).take(size).collect();
    let mut body = serde_json::Map::new();
    body.insert(key.to_owned(), Value::Array(page));
    let next = start.saturating_add(size);
    if next < total {
        body.insert("next_page_token".into(), encode_page_token(next).into());
    }
    Ok(Value::Object(body))
}

/// Reads a request body (or one part of it) to its end, refusing it with `too_large` as soon as
/// it passes `limit` bytes; `capacity` sizes the buffer up front (a declared length already
/// within the limit), so a large body is not copied over and over as the buffer grows.
pub(crate) async fn read_capped<E: std::fmt::Display>(
    stream: impl Stream<Item = Result<Bytes, E>>,
    limit: usize,
    capacity: usize,
    too_large: impl FnOnce() -> ApiError,
) -> Result<Vec<u8>, ApiError> {
    let mut stream = std::pin::pin!(stream);
    let mut data = Vec::with_capacity(capacity);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request(format!("The request body could not be read: {e}"))
        })?;
        if data.len() + chunk.len() > limit {
            return Err(too_large());
        }
        data.extend_from_slice(&chunk);
    }
    Ok(data)
}

/// A JSON body, parsed whatever the content type; bad JSON is `400 MALFORMED_REQUEST`.
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let malformed = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "MALFORMED_REQUEST", m);
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|e| malformed(e.body_text()))?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(text)
            .map(Self)
            .map_err(|e| malformed(format!("Could not parse request object: {e}")))
    }
}

/// Query parameters; a bad one is `400 INVALID_PARAMETER_VALUE`.
#[derive(Debug)]
pub(crate) struct QueryParams<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_garbage_is_refused() {
        assert_eq!(decode_page_token(&encode_page_token(42)).unwrap(), 42);
        assert!(decode_page_token("garbage!").is_err());
        assert!(decode_page_token(&URL_SAFE_NO_PAD.encode("other:1")).is_err());
    }
}
