//! Fault injection: rules that make matching requests slow, fail, or lose their connection.
//!
//! A rule matches on a path pattern (`*` matches any run of characters, `/` included), and
//! optionally a method and the principal of the request's token. It fires a given number of
//! times (`count`), or on every match with a given `probability` drawn from a seeded generator
//! (so a run can be replayed), or both; without either it fires on every match until removed.
//! When it fires it adds `latency_ms`, then either drops the connection without an answer, answers
//! with `status` (and a Databricks error body, or the raw `body` given), or — with neither —
//! lets the request through. Rules are tried in the order they were added; the first that fires
//! wins. `/_emulator/` itself is never subject to faults.
//!
//! Streamed answers (`stream: true` on Model Serving) have three more effects, applied by the
//! serving routes to a request the rule let through: `chunk_latency_ms` before each chunk after
//! the first, and after `drop_after_chunks` chunks the connection is cut, or after
//! `error_after_chunks` chunks an error event is sent and the stream ends. A chunk is one `data:`
//! event, `[DONE]` included. These effects cannot be combined with `status` or `drop_connection`
//! (the stream would never start), nor with each other; on an answer that is not streamed they
//! change nothing.
//!
//! A rule is a [`FaultRule`]: built with its methods by tests in process, or posted as JSON to
//! `POST /_emulator/faults` (the field names are the wire names below).

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::{PrincipalSlot, bearer_token};
use crate::control::ControlError;
use crate::error::{ApiError, default_code};
use crate::state::{Emulator, lock};

/// A fault rule: what to match and what to do when it fires.
///
/// The same type is the body of `POST /_emulator/faults` and the argument of
/// [`EmulatorHandle::inject_fault`](crate::EmulatorHandle::inject_fault), so both accept exactly
/// the same rules. Build one with [`FaultRule::new`] and the methods below:
///
/// ```
/// use dbapp_emulator::FaultRule;
///
/// // Two 503s on SCIM Me, then the real answer.
/// let rule = FaultRule::new("/api/2.0/preview/scim/v2/Me").status(503).times(2);
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// Path pattern, e.g. `/api/2.1/unity-catalog/*`.
    path: String,
    /// Only this HTTP method (any when absent).
    #[serde(default)]
    method: Option<String>,
    /// Only requests whose token belongs to this principal (user name or application id).
    #[serde(default)]
    principal: Option<String>,
    /// Fire this many times, then stop matching.
    #[serde(default)]
    count: Option<u32>,
    /// Fire with this probability (0..=1) on each match.
    #[serde(default)]
    probability: Option<f64>,
    /// Answer with this status.
    #[serde(default)]
    status: Option<u16>,
    /// `error_code` of the body; the usual code for the status when absent.
    #[serde(default)]
    error_code: Option<String>,
    /// `message` of the body.
    #[serde(default)]
    message: Option<String>,
    /// A raw body instead of the Databricks error body: a JSON string is sent as text (with
    /// `content_type`, default `text/plain`), anything else as JSON.
    #[serde(default)]
    body: Option<Value>,
    /// Content type of a raw string `body`.
    #[serde(default)]
    content_type: Option<String>,
    /// `Retry-After` header, in seconds.
    #[serde(default)]
    retry_after: Option<u32>,
    /// Delay before answering (or before letting the request through).
    #[serde(default)]
    latency_ms: u64,
    /// Close the connection without answering.
    #[serde(default)]
    drop_connection: bool,
    /// Delay before each chunk of a streamed answer after the first.
    #[serde(default)]
    chunk_latency_ms: u64,
    /// Cut the connection of a streamed answer after this many chunks.
    #[serde(default)]
    drop_after_chunks: Option<u32>,
    /// End a streamed answer with an error event after this many chunks.
    #[serde(default)]
    error_after_chunks: Option<u32>,
}

impl FaultRule {
    /// A rule for requests whose path matches `pattern` (`*` matches any run of characters,
    /// `/` included). Alone it fires on every match and changes nothing; add an effect.
    pub fn new(pattern: impl Into<String>) -> Self {
        Self {
            path: pattern.into(),
            method: None,
            principal: None,
            count: None,
            probability: None,
            status: None,
            error_code: None,
            message: None,
            body: None,
            content_type: None,
            retry_after: None,
            latency_ms: 0,
            drop_connection: false,
            chunk_latency_ms: 0,
            drop_after_chunks: None,
            error_after_chunks: None,
        }
    }

    /// Matches only this HTTP method (compared case-insensitively).
    #[must_use]
    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.method = Some(method.into());
        self
    }

    /// Matches only requests whose token belongs to this principal (a user name or a service
    /// principal's application id).
    #[must_use]
    pub fn principal(mut self, principal: impl Into<String>) -> Self {
        self.principal = Some(principal.into());
        self
    }

    /// Fires `count` times, then stops matching (`count` on the wire).
    #[must_use]
    pub fn times(mut self, count: u32) -> Self {
        self.count = Some(count);
        self
    }

    /// Fires on each match with this probability, drawn from the fixture's seeded generator.
    #[must_use]
    pub fn probability(mut self, probability: f64) -> Self {
        self.probability = Some(probability);
        self
    }

    /// Answers with this status and a Databricks error body (the usual code for the status).
    #[must_use]
    pub fn status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// The `error_code` of the error body.
    #[must_use]
    pub fn error_code(mut self, code: impl Into<String>) -> Self {
        self.error_code = Some(code.into());
        self
    }

    /// The `message` of the error body.
    #[must_use]
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// Sends this JSON instead of the Databricks error body. A JSON string is sent as text, as
    /// [`FaultRule::text_body`] does with `text/plain`.
    #[must_use]
    pub fn json_body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// Sends this text, with this content type, instead of the Databricks error body.
    #[must_use]
    pub fn text_body(mut self, body: impl Into<String>, content_type: impl Into<String>) -> Self {
        self.body = Some(Value::String(body.into()));
        self.content_type = Some(content_type.into());
        self
    }

    /// Adds `Retry-After: <seconds>` to the answer.
    #[must_use]
    pub fn retry_after_secs(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Waits this long (whole milliseconds) before answering or letting the request through.
    #[must_use]
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// Closes the connection without answering.
    #[must_use]
    pub fn drop_connection(mut self) -> Self {
        self.drop_connection = true;
        self
    }

    /// Waits this long (whole milliseconds) before each chunk of a streamed answer after the
    /// first.
    #[must_use]
    pub fn chunk_latency(mut self, latency: Duration) -> Self {
        self.chunk_latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// Cuts the connection of a streamed answer once `chunks` chunks have been sent.
    #[must_use]
    pub fn drop_after_chunks(mut self, chunks: u32) -> Self {
        self.drop_after_chunks = Some(chunks);
        self
    }

    /// Ends a streamed answer with an error event (`error_code` and `message` of this rule) once
    /// `chunks` chunks have been sent.
    #[must_use]
    pub fn error_after_chunks(mut self, chunks: u32) -> Self {
        self.error_after_chunks = Some(chunks);
        self
    }

    /// What this rule does to a streamed answer, if anything.
    fn stream_fault(&self) -> Option<StreamFault> {
        let cut = match (self.drop_after_chunks, self.error_after_chunks) {
            (Some(after), _) => Some(StreamCut::Drop { after }),
            (None, Some(after)) => Some(StreamCut::Error {
                after,
                code: self
                    .error_code
                    .clone()
                    .unwrap_or_else(|| "INTERNAL_ERROR".to_owned()),
                message: self
                    .message
                    .clone()
                    .unwrap_or_else(|| "Injected fault: the stream failed".to_owned()),
            }),
            (None, None) => None,
        };
        (cut.is_some() || self.chunk_latency_ms > 0).then(|| StreamFault {
            chunk_latency: Duration::from_millis(self.chunk_latency_ms),
            cut,
        })
    }
}

/// What a fired rule does to a streamed answer; put in the request's extensions for the serving
/// routes, which alone know where chunks begin and end.
#[derive(Debug, Clone)]
pub(crate) struct StreamFault {
    /// Added to the fixture's `serving_chunk_latency_ms`.
    pub(crate) chunk_latency: Duration,
    pub(crate) cut: Option<StreamCut>,
}

/// How a faulted stream ends early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StreamCut {
    /// The connection is cut once `after` chunks were sent.
    Drop { after: u32 },
    /// An error event with this code and message follows the first `after` chunks.
    Error {
        after: u32,
        code: String,
        message: String,
    },
}

impl StreamCut {
    /// How many chunks are sent before the stream ends early.
    pub(crate) fn after(&self) -> u32 {
        match self {
            Self::Drop { after } | Self::Error { after, .. } => *after,
        }
    }
}

/// A rule in force, with its id and the number of times it fired.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ActiveFault {
    /// The id `DELETE /_emulator/faults/{id}` takes.
    pub id: u64,
    /// The rule as added.
    #[serde(flatten)]
    pub rule: FaultRule,
    /// How many requests it has answered, delayed or dropped so far.
    pub fired: u64,
}

/// The rules in force and the generator for probabilistic ones.
#[derive(Debug)]
pub(crate) struct FaultRules {
    rules: Vec<ActiveFault>,
    next_id: u64,
    rng: StdRng,
}

impl FaultRules {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            rules: Vec::new(),
            next_id: 1,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Adds a rule after the others and returns its id.
    pub(crate) fn add(&mut self, rule: FaultRule) -> Result<u64, ControlError> {
        if rule.probability.is_some_and(|p| !(0.0..=1.0).contains(&p)) {
            return Err(ControlError::Invalid(
                "probability must be between 0 and 1".into(),
            ));
        }
        if let Some(status) = rule.status
            && (StatusCode::from_u16(status).is_err() || status < 200)
        {
            return Err(ControlError::Invalid(format!(
                "status {status} is not valid"
            )));
        }
        if rule.drop_after_chunks.is_some() && rule.error_after_chunks.is_some() {
            return Err(ControlError::Invalid(
                "drop_after_chunks and error_after_chunks cannot be combined".into(),
            ));
        }
        if rule.stream_fault().is_some() && (rule.status.is_some() || rule.drop_connection) {
            return Err(ControlError::Invalid(
                "stream effects cannot be combined with status or drop_connection".into(),
            ));
        }
        let id = self.next_id;
        self.next_id += 1;
        self.rules.push(ActiveFault { id, rule, fired: 0 });
        Ok(id)
    }

    pub(crate) fn list(&self) -> &[ActiveFault] {
        &self.rules
    }

    pub(crate) fn remove(&mut self, id: u64) -> bool {
        let before = self.rules.len();
        self.rules.retain(|r| r.id != id);
        before != self.rules.len()
    }

    pub(crate) fn clear(&mut self) {
        self.rules.clear();
    }

    /// The first rule that fires for this request, counted as fired.
    fn fire(&mut self, method: &str, path: &str, principal: Option<&str>) -> Option<FaultRule> {
        let Self { rules, rng, .. } = self;
        let active = rules.iter_mut().find(|active| {
            let rule = &active.rule;
            let matches = glob_match(&rule.path, path)
                && rule
                    .method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && rule
                    .principal
                    .as_deref()
                    .is_none_or(|p| Some(p) == principal)
                && rule.count.is_none_or(|c| u64::from(c) > active.fired);
            matches && rule.probability.is_none_or(|p| rng.random::<f64>() < p)
        })?;
        active.fired += 1;
        Some(active.rule.clone())
    }
}

/// Marks a response whose connection must be closed without sending it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DropConnection;

/// Marks a response that an injected fault produced or delayed, for the request log.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FaultApplied;

/// Middleware applying the first rule that fires.
pub(crate) async fn apply(
    State(emulator): State<Emulator>,
    request: Request,
    next: Next,
) -> Response {
    if lock(&emulator.faults).rules.is_empty() {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    // An invalid token is left for the handler to refuse.
    let principal = bearer_token(&parts.headers)
        .ok()
        .and_then(|t| emulator.authenticate(t).ok());
    if let (Some(p), Some(slot)) = (&principal, parts.extensions.get::<PrincipalSlot>()) {
        *lock(&slot.0) = Some(p.user_name.clone());
    }
    let spec = lock(&emulator.faults).fire(
        parts.method.as_str(),
        parts.uri.path(),
        principal.as_ref().map(|p| p.user_name.as_str()),
    );
    let mut request = Request::from_parts(parts, body);
    let Some(spec) = spec else {
        return next.run(request).await;
    };
    if let Some(stream_fault) = spec.stream_fault() {
        request.extensions_mut().insert(stream_fault);
    }
    if spec.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(spec.latency_ms)).await;
    }
    let mut response = if spec.drop_connection {
        let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
        response.extensions_mut().insert(DropConnection);
        response
    } else if let Some(status) = spec.status {
        fault_response(&spec, status)
    } else {
        next.run(request).await
    };
    response.extensions_mut().insert(FaultApplied);
    response
}

fn fault_response(spec: &FaultRule, status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match &spec.body {
        Some(Value::String(text)) => {
            let content_type = spec.content_type.as_deref().unwrap_or("text/plain");
            let mut response = (status, text.clone()).into_response();
            if let Ok(value) = HeaderValue::from_str(content_type) {
                response.headers_mut().insert(header::CONTENT_TYPE, value);
            }
            response
        }
        Some(json) => (status, axum::Json(json.clone())).into_response(),
        None => {
            let code = spec.error_code.as_deref().unwrap_or(default_code(status));
            let message = spec
                .message
                .clone()
                .unwrap_or_else(|| format!("Injected fault: {code}"));
            ApiError::new(status, code, message).into_response()
        }
    };
    if let Some(seconds) = spec.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// Matches `text` against `pattern`, where `*` stands for any run of characters.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_prefixes_suffixes_and_exact_paths() {
        assert!(glob_match("/api/*", "/api/2.0/x"));
        assert!(glob_match(
            "*/invocations",
            "/serving-endpoints/echo/invocations"
        ));
        assert!(glob_match("/a/*/c/*", "/a/b/c/d"));
        assert!(glob_match("/exact", "/exact"));
        assert!(!glob_match("/exact", "/exact/more"));
        assert!(!glob_match("/api/*/tables", "/api/2.1/schemas"));
        assert!(glob_match("*", ""));
    }

    #[test]
    fn counted_rules_stop_after_their_count() {
        // Arrange
        let mut rules = FaultRules::new(1);
        rules
            .add(FaultRule::new("/x").status(503).times(2))
            .unwrap();

        // Act
        let fired: Vec<bool> = (0..4)
            .map(|_| rules.fire("GET", "/x", None).is_some())
            .collect();

        // Assert
        assert_eq!(fired, [true, true, false, false]);
    }

    #[test]
    fn probabilistic_rules_replay_with_the_same_seed() {
        // Arrange
        let run = |seed| {
            let mut rules = FaultRules::new(seed);
            rules
                .add(FaultRule::new("/x").status(503).probability(0.5))
                .unwrap();
            (0..64)
                .map(|_| rules.fire("GET", "/x", None).is_some())
                .collect::<Vec<_>>()
        };

        // Act
        let (a, b) = (run(7), run(7));

        // Assert
        assert_eq!(a, b);
        let hits = a.iter().filter(|h| **h).count();
        assert!((16..=48).contains(&hits), "{hits} of 64 at p=0.5");
    }

    #[test]
    fn invalid_rules_are_refused() {
        let mut rules = FaultRules::new(1);
        assert!(rules.add(FaultRule::new("/x").probability(1.5)).is_err());
        assert!(rules.add(FaultRule::new("/x").status(99)).is_err());
        let both_cuts = FaultRule::new("/x")
            .drop_after_chunks(1)
            .error_after_chunks(2);
        assert!(rules.add(both_cuts).is_err());
        let never_streams = FaultRule::new("/x").status(503).drop_after_chunks(1);
        assert!(rules.add(never_streams).is_err());
        let dropped = FaultRule::new("/x").drop_connection().error_after_chunks(1);
        assert!(rules.add(dropped).is_err());
    }

    #[test]
    fn stream_effects_become_a_stream_fault_with_the_rules_error() {
        // Arrange
        let rule = FaultRule::new("/x")
            .chunk_latency(Duration::from_millis(5))
            .error_after_chunks(2)
            .error_code("RESOURCE_EXHAUSTED")
            .message("out of capacity");

        // Act
        let fault = rule.stream_fault().expect("a stream fault");

        // Assert
        assert_eq!(fault.chunk_latency, Duration::from_millis(5));
        assert_eq!(
            fault.cut,
            Some(StreamCut::Error {
                after: 2,
                code: "RESOURCE_EXHAUSTED".into(),
                message: "out of capacity".into()
            })
        );
        assert!(FaultRule::new("/x").status(503).stream_fault().is_none());
    }
}
