//! Correlation ids, the request span, the access log and the log subscriber.
//!
//! - [`CorrelateLayer`] is the outermost middleware: it takes `X-Correlation-ID`, else
//!   `X-Request-Id`, when it is 1–128 characters of `[A-Za-z0-9._:-]` (`API.md`), else makes a
//!   UUID v4 ([`correlation_id_from`]); keeps it in the task-local of [`crate::correlation`]
//!   around the request ([`current_correlation_id`]: the request span, the error body and the
//!   upstream calls read it there), echoes it on every response, and rewrites the framework's
//!   own non-2xx answers (unknown route, wrong method, body limit, timeout, panic) into the error
//!   envelope.
//!   tower-http's request-id layers read one header and do not validate it, hence this layer. It
//!   is a plain tower layer, not `from_fn`, because it wraps the whole stack: `from_fn` would
//!   clone that stack and box its future on every request.
//! - [`make_request_span`] opens the span every log line of a request is written in, with
//!   `correlation_id`, `method`, and `route` (the template, never the raw path; recorded by
//!   `http_metrics::TrackHttpLayer` once routing has matched), `user_id` and `auth_method`
//!   (recorded by `Caller`) left empty. Health checks get `debug` spans so that load-balancer
//!   polling does not drown the logs.
//! - [`on_response`] writes the one `http.request` access-log line per request.
//! - [`init`] installs the subscriber: flat JSON lines on stdout ([`crate::json_log`], span
//!   fields flattened to the top level so `correlation_id` and `user_id` are on every line), or
//!   human-readable lines with `DBAPP_LOG_FORMAT=pretty`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::BoxError;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use dbapp_databricks::CorrelationId;
use pin_project_lite::pin_project;
use tokio::task::futures::TaskLocalFuture;
use tower::{Layer, Service};
use tracing::Span;
use tracing_subscriber::layer::Layered;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry};

use crate::config::LogFormat;
use crate::correlation::CORRELATION_ID;
pub use crate::correlation::{
    CORRELATION_HEADER, REQUEST_ID_HEADER, correlation_id_from, current_correlation_id,
};
use crate::error::{LoggedError, envelope_for_status};

/// Copies the headers of a framework or layer response onto its envelope (`Allow`, the
/// security headers, CORS), except those that describe the replaced body.
fn keep_headers(from: &HeaderMap, to: &mut HeaderMap) {
    use axum::http::header;
    const BODY: [header::HeaderName; 4] = [
        header::CONTENT_TYPE,
        header::CONTENT_LENGTH,
        header::CONTENT_ENCODING,
        header::TRANSFER_ENCODING,
    ];
    for name in from.keys() {
        if BODY.contains(name) || to.contains_key(name) {
            continue;
        }
        for value in from.get_all(name) {
            to.append(name.clone(), value.clone());
        }
    }
}

/// The outermost layer: assigns the correlation id and puts every error in the envelope (see
/// the module header).
#[derive(Clone, Copy, Debug, Default)]
pub struct CorrelateLayer;

impl<S> Layer<S> for CorrelateLayer {
    type Service = Correlate<S>;

    fn layer(&self, inner: S) -> Correlate<S> {
        Correlate { inner }
    }
}

/// The service of [`CorrelateLayer`].
#[derive(Clone, Debug)]
pub struct Correlate<S> {
    inner: S,
}

impl<S, B> Service<Request> for Correlate<S>
where
    S: Service<Request, Response = axum::http::Response<B>, Error = Infallible>,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = CorrelateFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let id = correlation_id_from(request.headers());
        let header = HeaderValue::from_str(id.as_str()).ok();
        let path = request.uri().path();
        let is_api = path == "/api" || path.starts_with("/api/");
        let inner = CORRELATION_ID.sync_scope(id.clone(), || self.inner.call(request));
        CorrelateFuture {
            inner: CORRELATION_ID.scope(id, inner),
            header,
            is_api,
        }
    }
}

pin_project! {
    /// The response future of [`Correlate`].
    pub struct CorrelateFuture<F> {
        #[pin]
        inner: TaskLocalFuture<CorrelationId, F>,
        header: Option<HeaderValue>,
        is_api: bool,
    }
}

impl<F, B> Future for CorrelateFuture<F>
where
    F: Future<Output = Result<axum::http::Response<B>, Infallible>>,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let Ok(response) = ready!(this.inner.as_mut().poll(cx));
        let mut response = match this.inner.take_value() {
            Some(id) => CORRELATION_ID.sync_scope(id, || envelope(response, *this.is_api)),
            None => envelope(response, *this.is_api),
        };
        if let Some(value) = this.header.take() {
            response.headers_mut().insert(CORRELATION_HEADER, value);
        }
        Poll::Ready(Ok(response))
    }
}

/// A handler's own JSON answer (an `ApiError`, or `/ready`'s 503) is kept; what the framework or
/// a layer made (empty or plain-text bodies: unknown route, wrong method, body limit, timeout,
/// panic) gets the envelope, keeping its headers.
fn envelope<B>(response: axum::http::Response<B>, is_api: bool) -> Response
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if status.as_u16() < 400 || is_json || response.extensions().get::<LoggedError>().is_some() {
        return response.map(Body::new);
    }
    match envelope_for_status(status, is_api) {
        Some(error) => {
            let mut enveloped = error.into_response();
            keep_headers(response.headers(), enveloped.headers_mut());
            enveloped
        }
        None => response.map(Body::new),
    }
}

/// The paths of the health checks, whose spans and access-log lines are `debug`.
const QUIET_PATHS: [&str; 3] = ["/health", "/api/health", "/ready"];

/// The span of one request (see the module header). Runs before routing, so `route` starts
/// empty; field values are borrowed, and not even read when the span is disabled.
pub fn make_request_span(request: &Request) -> Span {
    let id = current_correlation_id();
    let correlation_id = id.as_str();
    let method = request.method().as_str();
    let span = if QUIET_PATHS.contains(&request.uri().path()) {
        tracing::debug_span!(
            "request",
            correlation_id,
            route = tracing::field::Empty,
            method,
            user_id = tracing::field::Empty,
            auth_method = tracing::field::Empty,
        )
    } else {
        tracing::info_span!(
            "request",
            correlation_id,
            route = tracing::field::Empty,
            method,
            user_id = tracing::field::Empty,
            auth_method = tracing::field::Empty,
            // For the trace export only (`json_log` leaves `otel.*` out of log lines).
            otel.name = tracing::field::Empty,
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            http.response.status_code = tracing::field::Empty,
        )
    };
    crate::otel::accept_parent(&span, request.headers());
    span
}

/// Writes the `http.request` access-log line, inside the request span.
pub fn on_response<B>(response: &axum::http::Response<B>, latency: Duration, span: &Span) {
    let status = response.status().as_u16();
    let duration_ms = latency.as_secs_f64() * 1000.0;
    let quiet = span
        .metadata()
        .is_some_and(|m| *m.level() == tracing::Level::DEBUG);
    if quiet {
        tracing::debug!(event = "http.request", status, duration_ms);
    } else {
        tracing::info!(event = "http.request", status, duration_ms);
        if crate::otel::enabled() {
            span.record("http.response.status_code", status);
            if status >= 500 {
                span.record("otel.status_code", "error");
            }
        }
    }
}

/// The default filter when `RUST_LOG` is unset.
pub const DEFAULT_FILTER: &str = "info";

/// Installs the process-wide subscriber writing to stdout through [`QueuedStdout`], filtered by
/// `directives` (`RUST_LOG` from the environment snapshot; [`DEFAULT_FILTER`] when unset or
/// invalid), and exporting traces when `otel` is given ([`crate::otel`]). Call once, in `main`,
/// and keep the guard until the end: dropping it exports the queued spans and writes out the
/// queued lines.
///
/// # Errors
/// When a subscriber is already installed, or the exporter cannot be started.
pub fn init(
    format: LogFormat,
    directives: Option<&str>,
    otel: Option<crate::otel::Exporter>,
) -> Result<LogGuard, Box<dyn std::error::Error + Send + Sync + 'static>> {
    let filter = directives
        .and_then(|d| EnvFilter::try_new(d).ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER));
    let (writer, mut guard) = QueuedStdout::start()?;
    guard.otel = init_with_writer(format, filter, writer, otel)?;
    Ok(guard)
}

/// Log lines queued before new ones are dropped (and counted in `log_lines_dropped_total`).
pub const LOG_QUEUE_LINES: usize = 65_536;
/// The most bytes written to stdout in one call.
const LOG_BATCH_BYTES: usize = 64 * 1024;
/// How often the log thread writes out what has queued.
pub const LOG_FLUSH_INTERVAL: Duration = Duration::from_millis(50);

/// The log writer of `dbapp serve`: lines go through a bounded queue to a thread of their own,
/// which wakes every [`LOG_FLUSH_INTERVAL`] and writes whatever has queued up in one call. A
/// request never waits on stdout (a pipe in Databricks Apps; a system call per line was a
/// measurable part of a cached `/api/user/me`) nor wakes a thread (the writer is never parked
/// on the queue), and a busy server writes many lines per call. When the queue is full a line
/// is dropped and counted rather than blocking the request.
#[derive(Debug, Clone)]
pub struct QueuedStdout {
    queue: std::sync::mpsc::SyncSender<Vec<u8>>,
}

/// Keeps the log thread (and the trace export, when on); dropping it exports the queued spans,
/// writes out what is queued and stops the thread.
#[derive(Debug)]
pub struct LogGuard {
    otel: Option<crate::otel::OtelGuard>,
    queue: std::sync::mpsc::SyncSender<Vec<u8>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl QueuedStdout {
    /// Starts the log thread.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn start() -> std::io::Result<(Self, LogGuard)> {
        let (queue, lines) = std::sync::mpsc::sync_channel::<Vec<u8>>(LOG_QUEUE_LINES);
        let thread = std::thread::Builder::new()
            .name("dbapp-log".to_owned())
            .spawn(move || {
                while write_lines(&lines, &mut std::io::stdout()) {
                    std::thread::sleep(LOG_FLUSH_INTERVAL);
                }
            })?;
        let guard = LogGuard {
            otel: None,
            queue: queue.clone(),
            thread: Some(thread),
        };
        Ok((Self { queue }, guard))
    }
}

/// One round of the log thread: writes every line queued now, at most [`LOG_BATCH_BYTES`] per
/// call; `false` once it has met the guard's stop signal (an empty line) or the queue is gone.
fn write_lines(lines: &std::sync::mpsc::Receiver<Vec<u8>>, out: &mut impl std::io::Write) -> bool {
    use std::sync::mpsc::TryRecvError;
    let mut batch = Vec::new();
    loop {
        let (line, more) = match lines.try_recv() {
            Ok(line) if line.is_empty() => (None, false),
            Ok(line) => (Some(line), true),
            Err(TryRecvError::Empty) => (None, true),
            Err(TryRecvError::Disconnected) => (None, false),
        };
        if let Some(line) = &line {
            batch.extend_from_slice(line);
        }
        if (line.is_none() || batch.len() >= LOG_BATCH_BYTES) && !batch.is_empty() {
            let _ = out.write_all(&batch);
            let _ = out.flush();
            batch.clear();
        }
        if line.is_none() {
            return more;
        }
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        // Spans first: their export may still log.
        drop(self.otel.take());
        // The stop signal queues behind every line already sent.
        if self.queue.send(Vec::new()).is_ok()
            && let Some(thread) = self.thread.take()
        {
            let _ = thread.join();
        }
    }
}

/// One line on its way to the queue.
#[derive(Debug)]
pub struct QueuedLine<'a>(&'a QueuedStdout);

impl std::io::Write for QueuedLine<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match self.0.queue.try_send(buf.to_vec()) {
            Ok(()) => {}
            Err(std::sync::mpsc::TrySendError::Full(_)) => {
                metrics::counter!(crate::metrics::LOG_LINES_DROPPED_TOTAL).increment(1);
            }
            // After the guard has stopped the thread (the process is ending): write directly.
            Err(std::sync::mpsc::TrySendError::Disconnected(line)) => {
                std::io::stdout().write_all(&line)?;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for QueuedStdout {
    type Writer = QueuedLine<'a>;

    fn make_writer(&'a self) -> QueuedLine<'a> {
        QueuedLine(self)
    }
}

/// As [`init`], writing to `writer` (tests capture the log lines with it); returns the guard of
/// the trace export when `otel` is given.
///
/// # Errors
/// When a subscriber is already installed, or the exporter cannot be started.
pub fn init_with_writer<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
    otel: Option<crate::otel::Exporter>,
) -> Result<Option<crate::otel::OtelGuard>, Box<dyn std::error::Error + Send + Sync + 'static>>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        LogFormat::Json => install(filter, crate::json_log::JsonLayer::new(writer), otel),
        LogFormat::Pretty => install(
            filter,
            tracing_subscriber::fmt::layer().with_writer(writer),
            otel,
        ),
    }
}

/// The filter, then the log layer, then the trace export when asked.
fn install<L>(
    filter: EnvFilter,
    logs: L,
    otel: Option<crate::otel::Exporter>,
) -> Result<Option<crate::otel::OtelGuard>, Box<dyn std::error::Error + Send + Sync + 'static>>
where
    L: tracing_subscriber::Layer<Layered<EnvFilter, Registry>> + Send + Sync + 'static,
{
    let registry = tracing_subscriber::registry().with(filter).with(logs);
    let (layer, guard) = match otel {
        Some(exporter) => {
            let (layer, guard) = exporter.start()?;
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    registry.with(layer).try_init()?;
    Ok(guard)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that records each call it gets.
    #[derive(Default)]
    struct Calls(Vec<Vec<u8>>);

    impl std::io::Write for Calls {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.push(buf.to_vec());
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn queued_lines_are_written_together_in_order_and_the_stop_signal_ends_the_thread() {
        // Arrange: lines queued before the thread runs, then the stop signal.
        let (queue, lines) = std::sync::mpsc::sync_channel::<Vec<u8>>(16);
        for n in 0..5 {
            queue.send(format!("line {n}\n").into_bytes()).unwrap();
        }
        queue.send(Vec::new()).unwrap();
        queue.send(b"after the stop\n".to_vec()).unwrap();

        // Act
        let mut out = Calls::default();
        let more = write_lines(&lines, &mut out);

        // Assert: one write for all five, nothing after the stop signal, and the thread stops.
        assert!(!more);
        assert_eq!(out.0.len(), 1);
        assert_eq!(
            String::from_utf8(out.0[0].clone()).unwrap(),
            "line 0\nline 1\nline 2\nline 3\nline 4\n"
        );
    }

    #[test]
    fn a_full_queue_drops_lines_instead_of_blocking() {
        // Arrange: a queue of one that nobody reads.
        let (queue, _lines) = std::sync::mpsc::sync_channel::<Vec<u8>>(1);
        let writer = QueuedStdout { queue };

        // Act: the second and third lines find the queue full.
        let mut line = tracing_subscriber::fmt::MakeWriter::make_writer(&writer);
        for _ in 0..3 {
            assert_eq!(std::io::Write::write(&mut line, b"x\n").unwrap(), 2);
        }

        // Assert: returned at once (the test would hang otherwise), one line queued.
        assert!(writer.queue.try_send(Vec::new()).is_err(), "still full");
    }
}
