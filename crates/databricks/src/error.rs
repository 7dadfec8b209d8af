//! [`DatabricksError`]: the one error type of this crate, and the parser for every error body
//! shape a Databricks workspace sends (`shared/UPSTREAM.md` §3.1).
//!
//! A caller acts on the [`ErrorKind`], which comes from the HTTP status and, where the status is
//! ambiguous, from the body: a 403 whose integer `error_code` is `403` means the token itself was
//! rejected (`InvalidToken`, or `TokenExpired` when the message says the JWT has expired), not that
//! the principal lacks a permission. Everything else the workspace said (code, message, the
//! `Retry-After` header, `details`) is kept on the error for logs and for the HTTP edge.
//!
//! Parsing never fails: a body that matches no known shape still yields a message (the text
//! itself, or the HTTP reason phrase when empty), so an odd proxy page cannot hide a status.
//! This module knows nothing of retries; `http` decides what to retry from [`ErrorKind`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

/// What kind of failure a [`DatabricksError`] is; the part a caller `match`es on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// 401: no credentials were sent, or the workspace did not accept the kind sent.
    Unauthenticated,
    /// 403 with the integer code `403` ("Invalid access token."): the token is unknown or revoked.
    InvalidToken,
    /// 403 "JWT has expired": the token was valid and has expired; a new one may work.
    TokenExpired,
    /// 403: the principal is authenticated but may not do this.
    PermissionDenied,
    /// 404: the resource does not exist or is invisible to the principal.
    NotFound,
    /// 400: the request was malformed or a parameter invalid.
    BadRequest,
    /// 409: the resource is in a conflicting state or already exists.
    Conflict,
    /// 429: the workspace asks the client to slow down; see [`DatabricksError::retry_after`].
    RateLimited,
    /// 499: the request was cancelled.
    Cancelled,
    /// 500 and 5xx other than those below: the workspace failed.
    Internal,
    /// 501: the operation is not implemented by this workspace.
    NotImplemented,
    /// 502 or 503: the workspace (or a proxy in front of it) is temporarily unavailable.
    Unavailable,
    /// 504, or the client's own per-call timeout.
    Timeout,
    /// Any other 4xx.
    ClientError,
    /// The connection failed or broke before a response arrived.
    Transport,
    /// A 2xx answer whose body is not what the API documents.
    Decode,
    /// Credentials could not be obtained (token endpoint, CLI, token file).
    Credentials,
    /// The configuration is invalid or incomplete.
    Config,
}

impl ErrorKind {
    /// The class of an HTTP error status (UPSTREAM §3.2), before the body is considered.
    #[must_use]
    pub fn from_status(status: u16) -> Self {
        match status {
            400 => Self::BadRequest,
            401 => Self::Unauthenticated,
            403 => Self::PermissionDenied,
            404 => Self::NotFound,
            409 => Self::Conflict,
            429 => Self::RateLimited,
            499 => Self::Cancelled,
            501 => Self::NotImplemented,
            502 | 503 => Self::Unavailable,
            504 => Self::Timeout,
            402..=498 => Self::ClientError,
            _ => Self::Internal,
        }
    }

    /// The class of a Databricks `error_code` when no HTTP status says it, as in a failed SQL
    /// statement (which is reported with HTTP 200).
    #[must_use]
    pub fn from_error_code(code: &str) -> Self {
        match code {
            "BAD_REQUEST" | "INVALID_PARAMETER_VALUE" | "INVALID_STATE" => Self::BadRequest,
            "UNAUTHENTICATED" => Self::Unauthenticated,
            "PERMISSION_DENIED" => Self::PermissionDenied,
            "NOT_FOUND" | "RESOURCE_DOES_NOT_EXIST" => Self::NotFound,
            "ALREADY_EXISTS" | "RESOURCE_ALREADY_EXISTS" | "ABORTED" | "RESOURCE_CONFLICT" => {
                Self::Conflict
            }
            "RESOURCE_EXHAUSTED" | "REQUEST_LIMIT_EXCEEDED" => Self::RateLimited,
            "CANCELLED" => Self::Cancelled,
            "DEADLINE_EXCEEDED" => Self::Timeout,
            "TEMPORARILY_UNAVAILABLE"
            | "SERVICE_UNDER_MAINTENANCE"
            | "WORKSPACE_TEMPORARILY_UNAVAILABLE" => Self::Unavailable,
            _ => Self::Internal,
        }
    }

    /// Whether the failure is transient, so that an idempotent call may be tried again:
    /// connection failures, timeouts and 502/503/504. Never 429 (the workspace asked us to slow
    /// down, and every retry would make it worse) and never another 4xx.
    #[must_use]
    pub fn is_transient(self) -> bool {
        matches!(self, Self::Transport | Self::Timeout | Self::Unavailable)
    }

    /// Whether the token presented was refused as such (invalid, expired, or not accepted), so
    /// that the caller must get a new one rather than a new permission.
    #[must_use]
    pub fn is_auth_failure(self) -> bool {
        matches!(
            self,
            Self::Unauthenticated | Self::InvalidToken | Self::TokenExpired
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Self::Unauthenticated => "unauthenticated",
            Self::InvalidToken => "invalid access token",
            Self::TokenExpired => "access token expired",
            Self::PermissionDenied => "permission denied",
            Self::NotFound => "not found",
            Self::BadRequest => "bad request",
            Self::Conflict => "conflict",
            Self::RateLimited => "rate limited",
            Self::Cancelled => "cancelled",
            Self::Internal => "internal error",
            Self::NotImplemented => "not implemented",
            Self::Unavailable => "temporarily unavailable",
            Self::Timeout => "timed out",
            Self::ClientError => "request rejected",
            Self::Transport => "connection failed",
            Self::Decode => "unexpected response",
            Self::Credentials => "credentials unavailable",
            Self::Config => "invalid configuration",
        };
        f.write_str(text)
    }
}

/// An error from the workspace or from talking to it.
///
/// Cheap to clone (the contents are shared), so a single-flight token refresh can hand the same
/// failure to every waiter. It never holds a token or secret: messages come from the workspace's
/// error body or from this crate, and request bodies are never copied into it.
#[derive(Clone)]
pub struct DatabricksError(Arc<Inner>);

struct Inner {
    kind: ErrorKind,
    status: Option<u16>,
    error_code: Option<String>,
    message: String,
    retry_after: Option<Duration>,
    details: ErrorDetails,
    attempts: u32,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

/// The structured `details` of a Databricks error body, where present.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErrorDetails {
    /// `ErrorInfo.reason`.
    pub reason: Option<String>,
    /// `ErrorInfo.domain`.
    pub domain: Option<String>,
    /// `RequestInfo.request_id`, to quote to Databricks support.
    pub request_id: Option<String>,
    /// `RetryInfo.retry_delay`, parsed.
    pub retry_delay: Option<Duration>,
}

impl DatabricksError {
    /// An error of `kind` with a message, not tied to an HTTP response.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self(Arc::new(Inner {
            kind,
            status: None,
            error_code: None,
            message: message.into(),
            retry_after: None,
            details: ErrorDetails::default(),
            attempts: 0,
            source: None,
        }))
    }

    /// The error an HTTP error response stands for: status, parsed body and `Retry-After`.
    #[must_use]
    pub fn from_response(
        status: u16,
        content_type: Option<&str>,
        reason_header: Option<&str>,
        retry_after_header: Option<&str>,
        body: &[u8],
    ) -> Self {
        let parsed = ErrorBody::parse(status, content_type, body, reason_header);
        let kind = classify(status, &parsed);
        let retry_after = retry_after_header
            .and_then(parse_retry_after)
            .or(parsed.details.retry_delay);
        Self(Arc::new(Inner {
            kind,
            status: Some(status),
            error_code: parsed.error_code,
            message: parsed.message,
            retry_after,
            details: parsed.details,
            attempts: 0,
            source: None,
        }))
    }

    /// A transport failure (connection, timeout, body) from reqwest.
    pub(crate) fn from_reqwest(error: reqwest::Error) -> Self {
        let kind = if error.is_timeout() {
            ErrorKind::Timeout
        } else if error.is_decode() {
            ErrorKind::Decode
        } else if error.is_builder() {
            ErrorKind::Config
        } else {
            ErrorKind::Transport
        };
        // reqwest's Display names the URL, never headers, so it holds no token.
        let message = error.to_string();
        Self::new(kind, message).with_source(error)
    }

    /// Attaches a source error, kept for `source()` chains.
    #[must_use]
    pub fn with_source(self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        let mut inner = self.into_inner();
        inner.source = Some(Arc::new(source));
        Self(Arc::new(inner))
    }

    /// Records how many attempts were made before this error was returned.
    #[must_use]
    pub(crate) fn with_attempts(self, attempts: u32) -> Self {
        let mut inner = self.into_inner();
        inner.attempts = attempts;
        Self(Arc::new(inner))
    }

    /// Prefixes the message with what was being done, e.g. `"oauth-m2m token"`.
    #[must_use]
    pub(crate) fn context(self, what: &str) -> Self {
        let mut inner = self.into_inner();
        inner.message = format!("{what}: {}", inner.message);
        Self(Arc::new(inner))
    }

    /// Changes the kind, e.g. a token endpoint's 401 into [`ErrorKind::Credentials`].
    #[must_use]
    pub(crate) fn with_kind(self, kind: ErrorKind) -> Self {
        let mut inner = self.into_inner();
        inner.kind = kind;
        Self(Arc::new(inner))
    }

    fn into_inner(self) -> Inner {
        Arc::try_unwrap(self.0).unwrap_or_else(|shared| Inner {
            kind: shared.kind,
            status: shared.status,
            error_code: shared.error_code.clone(),
            message: shared.message.clone(),
            retry_after: shared.retry_after,
            details: shared.details.clone(),
            attempts: shared.attempts,
            source: shared.source.clone(),
        })
    }

    /// The classification to act on.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The HTTP status, when the workspace answered.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        self.0.status
    }

    /// The Databricks `error_code` (an integer code is given as its decimal text, e.g. `"403"`;
    /// a SCIM error as `SCIM_<status>`).
    #[must_use]
    pub fn error_code(&self) -> Option<&str> {
        self.0.error_code.as_deref()
    }

    /// The workspace's message (or ours, for transport and configuration failures).
    #[must_use]
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// How long the workspace asked us to wait: `Retry-After` (integer seconds), else the body's
    /// `RetryInfo.retry_delay`.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        self.0.retry_after
    }

    /// The structured details of the body.
    #[must_use]
    pub fn details(&self) -> &ErrorDetails {
        &self.0.details
    }

    /// How many HTTP attempts were made for the call that failed (0 when none was sent).
    #[must_use]
    pub fn attempts(&self) -> u32 {
        self.0.attempts
    }
}

impl fmt::Debug for DatabricksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabricksError")
            .field("kind", &self.0.kind)
            .field("status", &self.0.status)
            .field("error_code", &self.0.error_code)
            .field("message", &self.0.message)
            .field("retry_after", &self.0.retry_after)
            .field("details", &self.0.details)
            .field("attempts", &self.0.attempts)
            .field("source", &self.0.source.as_ref().map(|s| s.to_string()))
            .finish()
    }
}

impl fmt::Display for DatabricksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.kind)?;
        match (self.0.status, &self.0.error_code) {
            (Some(status), Some(code)) => write!(f, " ({status} {code})")?,
            (Some(status), None) => write!(f, " ({status})")?,
            (None, Some(code)) => write!(f, " ({code})")?,
            (None, None) => {}
        }
        write!(f, ": {}", self.0.message)
    }
}

impl std::error::Error for DatabricksError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

/// The class of an error response, from its status and, for 403, its body.
fn classify(status: u16, body: &ErrorBody) -> ErrorKind {
    if status == 403 {
        let message = body.message.to_ascii_lowercase();
        let integer_403 = body.error_code.as_deref() == Some("403");
        if message.contains("jwt has expired")
            || (integer_403 && message.contains("expired"))
            || message.contains("token is expired")
            || message.contains("token has expired")
        {
            return ErrorKind::TokenExpired;
        }
        if integer_403 || message.contains("invalid access token") {
            return ErrorKind::InvalidToken;
        }
    }
    ErrorKind::from_status(status)
}

/// Parses `Retry-After` given in integer seconds (the only form Databricks sends).
fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Parses a protobuf duration string such as `"1s"` or `"0.5s"`.
fn parse_proto_duration(value: &str) -> Option<Duration> {
    let seconds: f64 = value.trim().strip_suffix('s')?.parse().ok()?;
    Duration::try_from_secs_f64(seconds).ok()
}

/// An error body reduced to code, message and details, whatever shape it arrived in.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErrorBody {
    /// `error_code` as text (integers in decimal), or `SCIM_<status>`, or the code of a plain
    /// text `CODE: message` body; `None` when the body names none.
    pub error_code: Option<String>,
    /// The human-readable message; never empty (the reason phrase stands in).
    pub message: String,
    /// `details`, where the body has them.
    pub details: ErrorDetails,
}

impl ErrorBody {
    /// Parses an error body of any of the shapes of UPSTREAM §3.1, in this order: the Databricks
    /// JSON body (`error_code` string or integer, `message`, `details`); `{"error": ..}` (API 1.2
    /// and OAuth); SCIM `{"detail", "status"}`; plain text `ERROR_CODE: message`; HTML `<pre>`
    /// or `<title>`; other text as is; an empty body gives the reason phrase (the
    /// `X-Databricks-Reason-Phrase` header when present, else the status's canonical phrase).
    #[must_use]
    pub fn parse(
        status: u16,
        content_type: Option<&str>,
        body: &[u8],
        reason_header: Option<&str>,
    ) -> Self {
        let reason = || {
            reason_header
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .or_else(|| {
                    reqwest::StatusCode::from_u16(status)
                        .ok()
                        .and_then(|s| s.canonical_reason())
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| format!("HTTP {status}"))
        };
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if text.is_empty() {
            return Self::plain(None, reason());
        }
        if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text)
            && let Some(parsed) = Self::from_json(&map)
        {
            let message = match parsed.message.trim() {
                "" => reason(),
                trimmed => trimmed.to_owned(),
            };
            return Self { message, ..parsed };
        }
        let is_html = content_type.is_some_and(|c| c.contains("html"))
            || text.starts_with('<')
            || text.contains("<html");
        if is_html {
            let message = between(text, "<pre>", "</pre>")
                .or_else(|| between(text, "<title>", "</title>"))
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_owned)
                .unwrap_or_else(reason);
            return Self::plain(None, message);
        }
        if let Some((code, message)) = split_code(text) {
            return Self::plain(Some(code.to_owned()), message.trim().to_owned());
        }
        Self::plain(None, text.to_owned())
    }

    fn plain(error_code: Option<String>, message: String) -> Self {
        Self {
            error_code,
            message,
            details: ErrorDetails::default(),
        }
    }

    fn from_json(map: &serde_json::Map<String, Value>) -> Option<Self> {
        let text = |key: &str| -> Option<String> {
            match map.get(key)? {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Null => None,
                other => Some(other.to_string()),
            }
        };
        if map.contains_key("error_code") || map.contains_key("message") {
            let details = map
                .get("details")
                .and_then(Value::as_array)
                .map(|d| parse_details(d))
                .unwrap_or_default();
            return Some(Self {
                error_code: text("error_code"),
                message: text("message").unwrap_or_default(),
                details,
            });
        }
        if map.contains_key("errorCode") || map.contains_key("errorSummary") {
            return Some(Self::plain(
                text("errorCode"),
                text("errorSummary").unwrap_or_default(),
            ));
        }
        if let Some(error) = text("error") {
            // OAuth endpoints send {"error": "invalid_client", "error_description": ".."}: the
            // `error` is then a code; API 1.2 sends only {"error": "<message>"}.
            return Some(match text("error_description") {
                Some(description) => Self::plain(Some(error), description),
                None => Self::plain(None, error),
            });
        }
        if let Some(detail) = text("detail") {
            let code = text("status").map(|s| format!("SCIM_{s}"));
            return Some(Self::plain(code, detail));
        }
        None
    }
}

fn parse_details(details: &[Value]) -> ErrorDetails {
    let mut out = ErrorDetails::default();
    for detail in details {
        let kind = detail.get("@type").and_then(Value::as_str).unwrap_or("");
        let field = |key: &str| detail.get(key).and_then(Value::as_str).map(str::to_owned);
        if kind.ends_with("google.rpc.ErrorInfo") {
            out.reason = field("reason");
            out.domain = field("domain");
        } else if kind.ends_with("google.rpc.RequestInfo") {
            out.request_id = field("request_id");
        } else if kind.ends_with("google.rpc.RetryInfo") {
            out.retry_delay = field("retry_delay")
                .as_deref()
                .and_then(parse_proto_duration);
        }
    }
    out
}

/// The text between the first `open` and the following `close`, case-insensitively.
fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let lower = text.to_ascii_lowercase();
    let start = lower.find(open)? + open.len();
    let end = start + lower[start..].find(close)?;
    text.get(start..end)
}

/// `ERROR_CODE: message` (the code being upper-case letters and underscores).
fn split_code(text: &str) -> Option<(&str, &str)> {
    let (code, message) = text.split_once(": ")?;
    let valid = !code.is_empty() && code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_');
    valid.then_some((code, message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(status: u16, body: &str) -> DatabricksError {
        DatabricksError::from_response(
            status,
            Some("application/json"),
            None,
            None,
            body.as_bytes(),
        )
    }

    #[test]
    fn string_error_code_with_details_is_parsed() {
        // Arrange
        let body = r#"{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"Catalog 'x' does not exist.",
            "details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"NO_CATALOG","domain":"uc","metadata":{}},
                       {"@type":"type.googleapis.com/google.rpc.RequestInfo","request_id":"req-1","serving_data":""},
                       {"@type":"type.googleapis.com/google.rpc.RetryInfo","retry_delay":"1.5s"}]}"#;

        // Act
        let error = parse(404, body);

        // Assert
        assert_eq!(error.kind(), ErrorKind::NotFound);
        assert_eq!(error.error_code(), Some("RESOURCE_DOES_NOT_EXIST"));
        assert_eq!(error.message(), "Catalog 'x' does not exist.");
        assert_eq!(error.details().reason.as_deref(), Some("NO_CATALOG"));
        assert_eq!(error.details().domain.as_deref(), Some("uc"));
        assert_eq!(error.details().request_id.as_deref(), Some("req-1"));
        assert_eq!(error.retry_after(), Some(Duration::from_millis(1500)));
    }

    #[test]
    fn integer_403_invalid_token_is_invalid_token() {
        let error = parse(
            403,
            r#"{"error_code":403,"message":"Invalid access token."}"#,
        );
        assert_eq!(error.kind(), ErrorKind::InvalidToken);
        assert_eq!(error.error_code(), Some("403"));
    }

    #[test]
    fn integer_403_jwt_expired_is_token_expired() {
        let error = parse(403, r#"{"error_code":403,"message":"JWT has expired"}"#);
        assert_eq!(error.kind(), ErrorKind::TokenExpired);
    }

    #[test]
    fn string_permission_denied_403_stays_permission_denied() {
        let error = parse(
            403,
            r#"{"error_code":"PERMISSION_DENIED","message":"nope"}"#,
        );
        assert_eq!(error.kind(), ErrorKind::PermissionDenied);
    }

    #[test]
    fn api_1_2_error_body_gives_its_message() {
        let error = parse(400, r#"{"error":"Bad thing happened"}"#);
        assert_eq!(error.error_code(), None);
        assert_eq!(error.message(), "Bad thing happened");
        assert_eq!(error.kind(), ErrorKind::BadRequest);
    }

    #[test]
    fn oauth_error_body_gives_code_and_description() {
        let error = parse(
            401,
            r#"{"error":"invalid_client","error_description":"Client authentication failed."}"#,
        );
        assert_eq!(error.error_code(), Some("invalid_client"));
        assert_eq!(error.message(), "Client authentication failed.");
    }

    #[test]
    fn scim_error_body_gets_scim_code() {
        let error = parse(
            404,
            r#"{"detail":"User not found","status":"404","scimType":"x"}"#,
        );
        assert_eq!(error.error_code(), Some("SCIM_404"));
        assert_eq!(error.message(), "User not found");
        let numeric = parse(404, r#"{"detail":"User not found","status":404}"#);
        assert_eq!(numeric.error_code(), Some("SCIM_404"));
    }

    #[test]
    fn plain_text_code_and_message_are_split() {
        let error = DatabricksError::from_response(
            503,
            Some("text/plain"),
            None,
            None,
            b"TEMPORARILY_UNAVAILABLE: try later",
        );
        assert_eq!(error.error_code(), Some("TEMPORARILY_UNAVAILABLE"));
        assert_eq!(error.message(), "try later");
        assert_eq!(error.kind(), ErrorKind::Unavailable);
    }

    #[test]
    fn html_pre_then_title_give_the_message() {
        let pre = DatabricksError::from_response(
            502,
            Some("text/html"),
            None,
            None,
            b"<html><head><title>Bad Gateway</title></head><body><pre>upstream reset</pre></body></html>",
        );
        assert_eq!(pre.message(), "upstream reset");
        let title = DatabricksError::from_response(
            502,
            Some("text/html"),
            None,
            None,
            b"<html><head><TITLE>502 Bad Gateway</TITLE></head></html>",
        );
        assert_eq!(title.message(), "502 Bad Gateway");
    }

    #[test]
    fn empty_body_gives_the_reason_phrase() {
        let error = DatabricksError::from_response(503, None, None, None, b"");
        assert_eq!(error.message(), "Service Unavailable");
        let header =
            DatabricksError::from_response(403, None, Some("Invalid access token."), None, b"");
        assert_eq!(header.message(), "Invalid access token.");
        assert_eq!(header.kind(), ErrorKind::InvalidToken);
    }

    #[test]
    fn retry_after_header_wins_over_retry_info() {
        let error = DatabricksError::from_response(
            429,
            None,
            None,
            Some("7"),
            br#"{"error_code":"REQUEST_LIMIT_EXCEEDED","message":"slow down"}"#,
        );
        assert_eq!(error.kind(), ErrorKind::RateLimited);
        assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
    }

    #[test]
    fn display_names_kind_status_code_and_message() {
        let error = parse(
            404,
            r#"{"error_code":"CATALOG_DOES_NOT_EXIST","message":"no x"}"#,
        );
        assert_eq!(
            error.to_string(),
            "not found (404 CATALOG_DOES_NOT_EXIST): no x"
        );
    }

    #[test]
    fn transient_kinds_are_exactly_transport_timeout_and_unavailable() {
        for status in [400u16, 401, 403, 404, 409, 429, 500, 501] {
            assert!(!ErrorKind::from_status(status).is_transient(), "{status}");
        }
        for status in [502u16, 503, 504] {
            assert!(ErrorKind::from_status(status).is_transient(), "{status}");
        }
    }

    proptest! {
        #[test]
        fn any_body_parses_to_a_non_empty_message(status in 400u16..600, body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let parsed = ErrorBody::parse(status, None, &body, None);
            prop_assert!(!parsed.message.trim().is_empty());
        }

        #[test]
        fn json_bodies_round_trip_code_and_message(
            code in "[A-Z][A-Z_]{0,30}",
            message in "[^\u{0}-\u{1f}]{1,80}",
            numeric in any::<bool>(),
            number in 100u16..600,
        ) {
            prop_assume!(!message.trim().is_empty());
            let code_value = if numeric { serde_json::json!(number) } else { serde_json::json!(code) };
            let body = serde_json::json!({"error_code": code_value, "message": message}).to_string();
            let parsed = ErrorBody::parse(400, Some("application/json"), body.as_bytes(), None);
            let expected = if numeric { number.to_string() } else { code.clone() };
            prop_assert_eq!(parsed.error_code, Some(expected));
            prop_assert_eq!(parsed.message, message.trim());
        }

        #[test]
        fn plain_text_bodies_round_trip(code in "[A-Z][A-Z_]{0,30}", message in "[a-z][a-z .]{0,60}") {
            let body = format!("{code}: {message}");
            let parsed = ErrorBody::parse(500, Some("text/plain"), body.as_bytes(), None);
            prop_assert_eq!(parsed.error_code, Some(code));
            prop_assert_eq!(parsed.message, message.trim());
        }
    }
}
