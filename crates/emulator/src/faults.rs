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
use crate::error::{ApiError, default_code};
use crate::state::{Emulator, lock};

/// A fault rule as posted to `POST /_emulator/faults`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FaultSpec {
    /// Path pattern, e.g. `/api/2.1/unity-catalog/*`.
    pub(crate) path: String,
    /// Only this HTTP method (any when absent).
    #[serde(default)]
    pub(crate) method: Option<String>,
    /// Only requests whose token belongs to this principal (user name or application id).
    #[serde(default)]
    pub(crate) principal: Option<String>,
    /// Fire this many times, then stop matching.
    #[serde(default)]
    pub(crate) count: Option<u32>,
    /// Fire with this probability (0..=1) on each match.
    #[serde(default)]
    pub(crate) probability: Option<f64>,
    /// Answer with this status.
    #[serde(default)]
    pub(crate) status: Option<u16>,
    /// `error_code` of the body; the usual code for the status when absent.
    #[serde(default)]
    pub(crate) error_code: Option<String>,
    /// `message` of the body.
    #[serde(default)]
    pub(crate) message: Option<String>,
    /// A raw body instead of the Databricks error body: a JSON string is sent as text (with
    /// `content_type`, default `text/plain`), anything else as JSON.
    #[serde(default)]
    pub(crate) body: Option<Value>,
    /// Content type of a raw string `body`.
    #[serde(default)]
    pub(crate) content_type: Option<String>,
    /// `Retry-After` header, in seconds.
    #[serde(default)]
    pub(crate) retry_after: Option<u32>,
    /// Delay before answering (or before letting the request through).
    #[serde(default)]
    pub(crate) latency_ms: u64,
    /// Close the connection without answering.
    #[serde(default)]
    pub(crate) drop_connection: bool,
}

/// A rule with its id and the number of times it fired.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FaultRule {
    pub(crate) id: u64,
    #[serde(flatten)]
    pub(crate) spec: FaultSpec,
    pub(crate) fired: u64,
}

/// The rules in force and the generator for probabilistic ones.
#[derive(Debug)]
pub(crate) struct FaultRules {
    rules: Vec<FaultRule>,
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

    pub(crate) fn add(&mut self, spec: FaultSpec) -> Result<u64, ApiError> {
        if spec.probability.is_some_and(|p| !(0.0..=1.0).contains(&p)) {
            return Err(ApiError::bad_request("probability must be between 0 and 1"));
        }
        if let Some(status) = spec.status
            && (StatusCode::from_u16(status).is_err() || status < 200)
        {
            return Err(ApiError::bad_request(format!(
                "status {status} is not valid"
            )));
        }
        let id = self.next_id;
        self.next_id += 1;
        self.rules.push(FaultRule { id, spec, fired: 0 });
        Ok(id)
    }

    pub(crate) fn list(&self) -> &[FaultRule] {
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
    fn fire(&mut self, method: &str, path: &str, principal: Option<&str>) -> Option<FaultSpec> {
        let Self { rules, rng, .. } = self;
        let rule = rules.iter_mut().find(|rule| {
            let spec = &rule.spec;
            let matches = glob_match(&spec.path, path)
                && spec
                    .method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && spec
                    .principal
                    .as_deref()
                    .is_none_or(|p| Some(p) == principal)
                && spec.count.is_none_or(|c| u64::from(c) > rule.fired);
            matches && spec.probability.is_none_or(|p| rng.random::<f64>() < p)
        })?;
        rule.fired += 1;
        Some(rule.spec.clone())
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
    let principal = bearer_token(&parts)
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
    let request = Request::from_parts(parts, body);
    let Some(spec) = spec else {
        return next.run(request).await;
    };
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

fn fault_response(spec: &FaultSpec, status: u16) -> Response {
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

    fn spec(count: Option<u32>, probability: Option<f64>) -> FaultSpec {
        serde_json::from_value(serde_json::json!({
            "path": "/x", "status": 503, "count": count, "probability": probability
        }))
        .unwrap()
    }

    #[test]
    fn counted_rules_stop_after_their_count() {
        // Arrange
        let mut rules = FaultRules::new(1);
        rules.add(spec(Some(2), None)).unwrap();

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
            rules.add(spec(None, Some(0.5))).unwrap();
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
        assert!(rules.add(spec(None, Some(1.5))).is_err());
        let mut bad_status = spec(None, None);
        bad_status.status = Some(99);
        assert!(rules.add(bad_status).is_err());
    }
}
