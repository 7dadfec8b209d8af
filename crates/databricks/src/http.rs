//! HTTP to the workspace: the one connection pool, per-call timeouts, the user agent, correlation
//! id forwarding, and the retry policy of `shared/DESIGN.md`. Every request of this crate goes
//! through `Http::send`, so "will this call be retried?" has one answer, here:
//!
//! - **Retried**, for idempotent calls only (GET, HEAD, PUT, DELETE, and POSTs this crate knows are
//!   safe to repeat, such as token requests and statement polling): connection failures, the
//!   per-call timeout, and 502/503/504. Waits of 100, 200 and 400 ms (backon's
//!   `ExponentialBuilder`, factor 2, at most 3 retries) plus a jitter of at most 10 % of each wait,
//!   and never past the 5 s retry budget, counted from the first attempt. Retries are per call,
//!   with no state shared between calls.
//! - **Never retried**: 429 — the workspace is asking every replica to slow down, and retries
//!   would make it worse; the caller gets `retry_after` from `Retry-After` instead. 500 (the
//!   SDKs do not retry it either) and every other 4xx: repeating them cannot change the answer.
//! - **Once, without waiting**: a request made with the app's own refreshable credentials that
//!   the workspace refuses as an invalid or expired token, after dropping the cached token
//!   (UPSTREAM §3.3: refresh once, then surface the error). A user's token is never refreshed.
//!
//! backon provides the delays (its `Backoff` iterator); the loop is written out rather than using
//! `Retryable::retry` so that every attempt is reported to the caller's [`AttemptObserver`] with
//! its outcome and the retry decision in one place, for metrics and logs. reqwest's own retry is
//! turned off, so the emulator's request log shows exactly the attempts reported here.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::Method;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER, USER_AGENT,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;
use tracing::Instrument as _;

use crate::config::{Config, WorkspaceHost};
use crate::credentials::CredentialsProvider;
use crate::error::{DatabricksError, ErrorKind};

/// The header carrying the correlation id on outgoing requests.
pub const CORRELATION_ID_HEADER: &str = "X-Correlation-ID";

/// The retry policy of `shared/DESIGN.md`; the defaults are the documented numbers.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// The first wait (100 ms).
    pub min_delay: Duration,
    /// Growth of each wait (2).
    pub factor: f32,
    /// Retries after the first attempt (3).
    pub max_retries: usize,
    /// Largest jitter, as a fraction of each wait (0.1).
    pub jitter: f32,
    /// No retry starts once this much time has passed since the first attempt, or would end
    /// past it (5 s).
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            min_delay: Duration::from_millis(100),
            factor: 2.0,
            max_retries: 3,
            jitter: 0.1,
            budget: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    #[must_use]
    pub fn never() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// The waits before each retry, without jitter, as backon computes them.
    fn backoff(&self) -> impl Iterator<Item = Duration> + use<> {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_factor(self.factor)
            .with_max_times(self.max_retries)
            .with_total_delay(Some(self.budget))
            .build()
            // backon multiplies in f32; whole milliseconds are what the policy means.
            .map(|d| Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
    }

    fn jittered(&self, delay: Duration) -> Duration {
        jittered(delay, self.jitter)
    }
}

/// `delay` plus a random extra of at most `fraction` of it (none when `fraction` is 0), so
/// clients that failed or started together do not come back in step. Shared by the retry policy
/// and the pollers of `api` (e.g. the Genie waiter).
pub(crate) fn jittered(delay: Duration, fraction: f32) -> Duration {
    if fraction <= 0.0 {
        return delay;
    }
    delay + delay.mul_f32(fraction * rand::random::<f32>())
}

/// A validated correlation id: 1–128 characters of `[A-Za-z0-9._:-]` (`API.md`). Shared, so
/// that the copies a request hands around (its task-local, each upstream call) cost no
/// allocation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CorrelationId(Arc<str>);

impl CorrelationId {
    /// Accepts `value` when it is a sane correlation id.
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        let valid = (1..=128).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        valid.then(|| Self(Arc::from(value)))
    }

    /// A new random id (UUID v4).
    #[must_use]
    pub fn new_random() -> Self {
        Self(Arc::from(
            uuid::Uuid::new_v4()
                .hyphenated()
                .encode_lower(&mut uuid::Uuid::encode_buffer()) as &str,
        ))
    }

    /// The id.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a call does, named by the method of [`crate::api`] that makes it: the `api` and
/// `operation` labels of the server's `upstream_requests_total`. Named at the call, never parsed
/// back out of the URL, whose path holds catalog names and statement ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Operation {
    /// The service, e.g. `unity_catalog`.
    pub(crate) api: &'static str,
    /// The operation, e.g. `list_catalogs`.
    pub(crate) name: &'static str,
}

impl Operation {
    pub(crate) const fn new(api: &'static str, name: &'static str) -> Self {
        Self { api, name }
    }
}

/// One HTTP attempt, as reported to an [`AttemptObserver`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Attempt<'a> {
    /// 1 for the first attempt.
    pub number: u32,
    /// The service called, e.g. `unity_catalog`, `scim`, `serving`, `sql`; `other` for
    /// [`crate::Workspace::call_json`].
    pub api: &'static str,
    /// The operation, e.g. `list_catalogs`, `me`, `query`; a fixed vocabulary, safe as a metric
    /// label.
    pub operation: &'static str,
    /// HTTP method.
    pub method: &'a str,
    /// The URL path (no query, no host).
    pub path: &'a str,
    /// The status, when a response arrived.
    pub status: Option<u16>,
    /// The failure, when the attempt failed.
    pub error: Option<&'a DatabricksError>,
    /// Time the attempt took.
    pub elapsed: Duration,
    /// The wait before the next attempt, when one follows.
    pub retry_in: Option<Duration>,
}

/// Sees every HTTP attempt of a call, for metrics (`upstream_requests_total`,
/// `auth_retry_total`) and logs. Implemented for any `Fn(&Attempt<'_>) + Send + Sync`.
/// Token requests of the app's credentials are not reported: one refresh serves every caller.
///
/// ```no_run
/// # async fn run(client: dbapp_databricks::Client, token: dbapp_databricks::UserToken) -> Result<(), dbapp_databricks::DatabricksError> {
/// use std::sync::Arc;
/// use dbapp_databricks::{Attempt, CorrelationId};
///
/// let observer = Arc::new(|attempt: &Attempt<'_>| {
///     println!("attempt {} of {} -> {:?}, retry in {:?}", attempt.number, attempt.path, attempt.status, attempt.retry_in);
/// });
/// let me = client
///     .as_user(&token)
///     .with_correlation_id(CorrelationId::new_random())
///     .with_observer(observer)
///     .me()
///     .await?;
/// # let _ = me; Ok(()) }
/// ```
pub trait AttemptObserver: Send + Sync {
    /// Called once per attempt, after it finished and its retry was decided.
    fn on_attempt(&self, attempt: &Attempt<'_>);
}

impl<F: Fn(&Attempt<'_>) + Send + Sync> AttemptObserver for F {
    fn on_attempt(&self, attempt: &Attempt<'_>) {
        self(attempt);
    }
}

/// Per-call settings: nothing here is shared between calls.
#[derive(Clone, Default)]
pub struct CallOptions {
    /// Sent as `X-Correlation-ID`.
    pub correlation_id: Option<CorrelationId>,
    /// Sees every attempt.
    pub observer: Option<Arc<dyn AttemptObserver>>,
    /// Replaces the configured per-call timeout.
    pub timeout: Option<Duration>,
}

impl fmt::Debug for CallOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallOptions")
            .field("correlation_id", &self.correlation_id)
            .field("observer", &self.observer.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// How a request authenticates.
#[derive(Clone, Copy)]
pub(crate) enum Auth<'a> {
    /// No `Authorization` header (discovery documents).
    None,
    /// A Bearer token given by the caller, e.g. a user's forwarded token.
    Token(&'a SecretString),
    /// A Bearer token from a credentials provider, asked anew for each attempt.
    Provider(&'a dyn CredentialsProvider),
    /// HTTP Basic, for the OAuth token endpoint.
    Basic(&'a str, &'a SecretString),
}

/// A request body.
#[derive(Debug)]
pub(crate) enum Body {
    Empty,
    Json(serde_json::Value),
    Form(Vec<(&'static str, String)>),
    /// A streamed body, taken by the first attempt: it cannot be replayed, so a call with one
    /// must be sent with [`Http::send_streaming`], which never retries.
    Stream(std::sync::Mutex<Option<reqwest::Body>>),
}

/// One call: everything [`Http::send`] needs.
pub(crate) struct Call<'a> {
    pub(crate) operation: Operation,
    pub(crate) method: Method,
    pub(crate) url: String,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) body: Body,
    /// Headers of this call beyond those every call sends (e.g. `Range`, `Content-Type`).
    pub(crate) headers: HeaderMap,
    pub(crate) idempotent: bool,
    /// Replaces the per-call timeout for this call (e.g. a statement that waits server-side).
    pub(crate) timeout: Option<Duration>,
    pub(crate) auth: Auth<'a>,
    pub(crate) options: &'a CallOptions,
}

impl<'a> Call<'a> {
    pub(crate) fn new(
        operation: Operation,
        method: Method,
        url: String,
        auth: Auth<'a>,
        options: &'a CallOptions,
    ) -> Self {
        let idempotent = matches!(
            method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        );
        Self {
            operation,
            method,
            url,
            query: Vec::new(),
            body: Body::Empty,
            headers: HeaderMap::new(),
            idempotent,
            timeout: None,
            auth,
            options,
        }
    }

    /// The span of this call, for logs and the trace export: the fields every line logged
    /// during the call carries, and the client span's attributes (recorded as the call ends).
    fn span(&self) -> tracing::Span {
        tracing::info_span!(
            "databricks",
            api = self.operation.api,
            operation = self.operation.name,
            method = %self.method,
            path = %path_of(&self.url),
            attempts = tracing::field::Empty,
            databricks.request_id = tracing::field::Empty,
            http.response.status_code = tracing::field::Empty,
            otel.name = self.operation.name,
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
        )
    }

    pub(crate) fn query(mut self, key: &str, value: impl ToString) -> Self {
        self.query.push((key.to_owned(), value.to_string()));
        self
    }

    pub(crate) fn json(mut self, body: serde_json::Value) -> Self {
        self.body = Body::Json(body);
        self
    }

    pub(crate) fn form(mut self, form: Vec<(&'static str, String)>) -> Self {
        self.body = Body::Form(form);
        self
    }

    /// A streamed body (see [`Body::Stream`]).
    pub(crate) fn stream(mut self, body: reqwest::Body) -> Self {
        self.body = Body::Stream(std::sync::Mutex::new(Some(body)));
        self
    }

    /// Adds a header to this call.
    pub(crate) fn header(mut self, name: reqwest::header::HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// Sets this call's timeout, whatever the view's.
    pub(crate) fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Marks a POST as safe to repeat.
    pub(crate) fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }
}

/// A successful response.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Response {
    pub(crate) fn json<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
    ) -> Result<T, DatabricksError> {
        let body: &[u8] = if self.body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &self.body
        };
        serde_json::from_slice(body).map_err(|e| {
            DatabricksError::new(
                ErrorKind::Decode,
                format!("{what}: unexpected response body: {e}"),
            )
            .with_source(e)
        })
    }
}

/// The HTTP layer: one `reqwest::Client` (one connection pool) for the whole process.
#[derive(Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    host: WorkspaceHost,
    retry: RetryPolicy,
    timeout: Duration,
    user_agent: String,
    workspace_id: Option<HeaderValue>,
}

impl fmt::Debug for Http {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http")
            .field("host", &self.host)
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .field("user_agent", &self.user_agent)
            .finish_non_exhaustive()
    }
}

impl Http {
    pub(crate) fn new(config: &Config) -> Result<Self, DatabricksError> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout())
            .timeout(config.http_timeout())
            // Our loop below is the only retry, so attempt counts are exact.
            .retry(reqwest::retry::never())
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(DatabricksError::from_reqwest)?;
        let version = env!("CARGO_PKG_VERSION");
        let user_agent = format!(
            "dbapp/{version} dbapp-databricks/{version} os/{}",
            std::env::consts::OS
        );
        let workspace_id = config
            .workspace_id()
            .and_then(|id| HeaderValue::from_str(id).ok());
        Ok(Self {
            client,
            host: config.host().clone(),
            retry: config.retry().clone(),
            timeout: config.http_timeout(),
            user_agent,
            workspace_id,
        })
    }

    pub(crate) fn host(&self) -> &WorkspaceHost {
        &self.host
    }

    /// Sends a call, retrying as the module header says.
    ///
    /// # Errors
    /// The last attempt's [`DatabricksError`], with the number of attempts made.
    pub(crate) async fn send(&self, call: Call<'_>) -> Result<Response, DatabricksError> {
        let span = call.span();
        self.send_retrying(call).instrument(span).await
    }

    /// [`Self::send`], inside the call's span.
    async fn send_retrying(&self, call: Call<'_>) -> Result<Response, DatabricksError> {
        let path = path_of(&call.url).to_owned();
        let started = Instant::now();
        let mut backoff = self.retry.backoff();
        let mut attempt = 0u32;
        let mut refreshed_credentials = false;
        loop {
            attempt += 1;
            // Getting a token is not an HTTP attempt of this call: its own requests were already
            // retried, so a failure here ends the call.
            let bearer = match self.bearer(&call).await {
                Ok(bearer) => bearer,
                Err(error) => return Err(error.with_attempts(attempt - 1)),
            };
            let attempt_started = Instant::now();
            let result = self.attempt(&call, bearer).await;
            let elapsed = attempt_started.elapsed();
            let retry_in = match &result {
                Ok(_) => None,
                Err(e) if e.kind().is_transient() && call.idempotent => backoff
                    .next()
                    .map(|d| self.retry.jittered(d))
                    .filter(|d| started.elapsed() + *d <= self.retry.budget),
                Err(e) if e.kind().is_auth_failure() && !refreshed_credentials => match call.auth {
                    Auth::Provider(p) if p.refreshable() && e.status().is_some() => {
                        refreshed_credentials = true;
                        p.invalidate();
                        Some(Duration::ZERO)
                    }
                    _ => None,
                },
                Err(_) => None,
            };
            let status = result
                .as_ref()
                .map_or_else(|e| e.status(), |r| Some(r.status));
            report(
                &call,
                &path,
                attempt,
                status,
                result.as_ref().err(),
                elapsed,
                retry_in,
            );
            if retry_in.is_none() {
                record_outcome(attempt, status, result.as_ref().err());
            }
            match (result, retry_in) {
                (Ok(response), _) => return Ok(response),
                (Err(error), Some(wait)) => {
                    tracing::warn!(
                        event = "databricks.retry",
                        attempt,
                        status = error.status(),
                        kind = %error.kind(),
                        wait_ms = wait.as_millis() as u64,
                        "retrying"
                    );
                    tokio::time::sleep(wait).await;
                }
                (Err(error), None) => return Err(error.with_attempts(attempt)),
            }
        }
    }

    /// Sends a call once, never retried (a stream's bytes may already have reached the caller
    /// when it fails), and returns the successful answer with its body unread. The attempt is
    /// reported to the observer like any other; the call's timeout covers the whole body.
    ///
    /// # Errors
    /// The attempt's [`DatabricksError`]; an error answer's body is read to build it.
    pub(crate) async fn send_streaming(
        &self,
        call: Call<'_>,
    ) -> Result<reqwest::Response, DatabricksError> {
        let span = call.span();
        self.send_once(call).instrument(span).await
    }

    /// [`Self::send_streaming`], inside the call's span.
    async fn send_once(&self, call: Call<'_>) -> Result<reqwest::Response, DatabricksError> {
        let path = path_of(&call.url).to_owned();
        let bearer = self.bearer(&call).await?;
        let started = Instant::now();
        let result = self.attempt_head(&call, bearer).await;
        let status = result
            .as_ref()
            .map_or_else(|e| e.status(), |r| Some(r.status().as_u16()));
        let error = result.as_ref().err();
        report(&call, &path, 1, status, error, started.elapsed(), None);
        record_outcome(1, status, error);
        result.map_err(|e| e.with_attempts(1))
    }

    /// The Bearer header and auth type name for this attempt (asked anew each time, so a
    /// refreshed token is used by the next attempt).
    async fn bearer(
        &self,
        call: &Call<'_>,
    ) -> Result<Option<(HeaderValue, &'static str)>, DatabricksError> {
        Ok(match call.auth {
            Auth::None | Auth::Basic(..) => None,
            Auth::Token(token) => Some((bearer(token)?, "pat")),
            Auth::Provider(provider) => {
                let token = provider.token().await?;
                Some((bearer(&token)?, provider.auth_type().as_str()))
            }
        })
    }

    async fn attempt(
        &self,
        call: &Call<'_>,
        bearer: Option<(HeaderValue, &'static str)>,
    ) -> Result<Response, DatabricksError> {
        let response = self.attempt_head(call, bearer).await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(DatabricksError::from_reqwest)?
            .to_vec();
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// Sends one attempt and returns the successful response with its body unread; an error
    /// answer is read and turned into the [`DatabricksError`].
    async fn attempt_head(
        &self,
        call: &Call<'_>,
        bearer: Option<(HeaderValue, &'static str)>,
    ) -> Result<reqwest::Response, DatabricksError> {
        let timeout = call
            .timeout
            .or(call.options.timeout)
            .unwrap_or(self.timeout);
        let mut url = url::Url::parse(&call.url).map_err(|e| {
            DatabricksError::new(ErrorKind::Config, format!("invalid URL {}: {e}", call.url))
        })?;
        if !call.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&call.query);
        }
        let mut request = self
            .client
            .request(call.method.clone(), url)
            .timeout(timeout)
            .header(ACCEPT, "application/json");
        let auth_name = match bearer {
            Some((value, name)) => {
                request = request.header(AUTHORIZATION, value);
                Some(name)
            }
            None => None,
        };
        if let Auth::Basic(id, secret) = call.auth {
            request = request.basic_auth(id, Some(secret.expose_secret()));
        }
        let user_agent = match auth_name {
            Some(name) => format!("{} auth/{name}", self.user_agent),
            None => self.user_agent.clone(),
        };
        request = request.header(USER_AGENT, user_agent);
        if let Some(id) = &call.options.correlation_id {
            request = request.header(CORRELATION_ID_HEADER, id.as_str());
        }
        if let Some(id) = &self.workspace_id {
            request = request.header("X-Databricks-Workspace-Id", id.clone());
        }
        request = match &call.body {
            Body::Empty => request,
            Body::Json(value) => request.json(value),
            Body::Form(form) => request.form(form),
            Body::Stream(slot) => {
                let taken = slot
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take();
                match taken {
                    Some(body) => request.body(body),
                    None => {
                        return Err(DatabricksError::new(
                            ErrorKind::Config,
                            "a streamed request body can be sent only once",
                        ));
                    }
                }
            }
        };
        // Last, and replacing: a call's own `Accept` or `Content-Type` wins over the defaults.
        if !call.headers.is_empty() {
            request = request.headers(call.headers.clone());
        }
        if let Some(context) = trace_context() {
            request = request.headers(context);
        }
        let response = request
            .send()
            .await
            .map_err(DatabricksError::from_reqwest)?;
        if let Some(id) = response.headers().get(REQUEST_ID_HEADER) {
            tracing::Span::current().record("databricks.request_id", id.to_str().unwrap_or(""));
        }
        let status = response.status();
        if status.is_success() && is_private_link_redirect(response.url()) {
            return Err(DatabricksError::new(
                ErrorKind::PermissionDenied,
                "the workspace redirected to its login page (private-link-validation-error): this network may not reach the workspace",
            ));
        }
        if status.is_success() {
            return Ok(response);
        }
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(DatabricksError::from_reqwest)?
            .to_vec();
        let header = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        Err(DatabricksError::from_response(
            status.as_u16(),
            header(CONTENT_TYPE.as_str()),
            header("x-databricks-reason-phrase"),
            header(RETRY_AFTER.as_str()),
            &body,
        ))
    }
}

/// The header of a workspace answer naming the request, for Databricks support (UNCONFIRMED
/// beyond the error body's `RequestInfo`; see `docs/emulator.md`).
const REQUEST_ID_HEADER: &str = "x-request-id";

/// Records how the call ended on its span (for the trace export): the attempts made, the last
/// status, and the request id of an error body when no header named one.
fn record_outcome(attempts: u32, status: Option<u16>, error: Option<&DatabricksError>) {
    let span = tracing::Span::current();
    span.record("attempts", attempts);
    if let Some(status) = status {
        span.record("http.response.status_code", status);
    }
    if let Some(error) = error {
        span.record("otel.status_code", "error");
        if let Some(id) = &error.details().request_id {
            span.record("databricks.request_id", id.as_str());
        }
    }
}

/// W3C `traceparent` (and `tracestate`) for the current span, through the global propagator:
/// nothing unless the application installed one (`dbapp serve` does when it exports traces),
/// so the workspace's own traces can join the caller's.
fn trace_context() -> Option<HeaderMap> {
    use opentelemetry::propagation::Injector;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    struct Headers(HeaderMap);
    impl Injector for Headers {
        fn set(&mut self, key: &str, value: String) {
            if let (Ok(name), Ok(value)) = (
                reqwest::header::HeaderName::from_bytes(key.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                self.0.insert(name, value);
            }
        }
    }

    let context = tracing::Span::current().context();
    let mut headers = Headers(HeaderMap::new());
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut headers);
    });
    (!headers.0.is_empty()).then_some(headers.0)
}

/// Tells the call's observer, if any, how one attempt went.
fn report(
    call: &Call<'_>,
    path: &str,
    number: u32,
    status: Option<u16>,
    error: Option<&DatabricksError>,
    elapsed: Duration,
    retry_in: Option<Duration>,
) {
    if let Some(observer) = &call.options.observer {
        observer.on_attempt(&Attempt {
            number,
            api: call.operation.api,
            operation: call.operation.name,
            method: call.method.as_str(),
            path,
            status,
            error,
            elapsed,
            retry_in,
        });
    }
}

fn bearer(token: &SecretString) -> Result<HeaderValue, DatabricksError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
        // The message must not quote the token.
        .map_err(|_| {
            DatabricksError::new(
                ErrorKind::InvalidToken,
                "the token contains characters that cannot be sent in a header",
            )
        })?;
    value.set_sensitive(true);
    Ok(value)
}

/// Whether a followed redirect ended on the login page with a private-link error, which the
/// workspace uses to refuse callers outside its private network (UPSTREAM §3.1).
fn is_private_link_redirect(url: &url::Url) -> bool {
    url.path().ends_with("/login.html")
        && url
            .query_pairs()
            .any(|(k, v)| k == "error" && v == "private-link-validation-error")
}

/// The path of a URL, for logs and metrics (never the query, which may hold names).
fn path_of(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme.find('/').map_or("/", |at| &after_scheme[at..]);
    path.split(['?', '#']).next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_policy_waits_100_200_400_ms() {
        let waits: Vec<_> = RetryPolicy::default().backoff().collect();
        assert_eq!(waits, [100, 200, 400].map(Duration::from_millis).to_vec());
    }

    #[test]
    fn jitter_is_at_most_ten_percent() {
        let policy = RetryPolicy::default();
        for _ in 0..1000 {
            let wait = policy.jittered(Duration::from_millis(400));
            assert!(wait >= Duration::from_millis(400) && wait <= Duration::from_millis(440));
        }
    }

    #[test]
    fn backoff_stops_at_the_budget() {
        let policy = RetryPolicy {
            max_retries: 10,
            budget: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        let waits: Vec<_> = policy.backoff().collect();
        assert_eq!(waits, [100, 200, 400].map(Duration::from_millis).to_vec());
    }

    #[test]
    fn private_link_login_redirect_is_recognised() {
        let url = |s: &str| url::Url::parse(s).unwrap();
        assert!(is_private_link_redirect(&url(
            "https://h/login.html?error=private-link-validation-error"
        )));
        assert!(!is_private_link_redirect(&url("https://h/login.html")));
        assert!(!is_private_link_redirect(&url(
            "https://h/api/2.0/x?error=private-link-validation-error"
        )));
    }

    #[test]
    fn paths_are_extracted_without_query() {
        assert_eq!(path_of("http://h:1/api/2.0/x?y=1"), "/api/2.0/x");
        assert_eq!(path_of("https://h"), "/");
    }

    proptest! {
        #[test]
        fn correlation_ids_accept_exactly_the_documented_alphabet(value in ".{0,140}") {
            let ok = CorrelationId::parse(&value).is_some();
            let expected = (1..=128).contains(&value.len())
                && value.chars().all(|c| c.is_ascii_alphanumeric() || "._:-".contains(c));
            prop_assert_eq!(ok, expected);
        }
    }
}
