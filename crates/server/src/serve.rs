//! The connection loop: [`serve_app`] accepts TCP connections and serves each with hyper
//! (HTTP/1.1, and HTTP/2 cleartext with prior knowledge), with the bounds axum's `serve` leaves
//! out, so that idle or slow sockets can neither exhaust the process's file descriptors nor hold
//! up a shutdown (`docs/operations.md` "Connections" gives each number and why):
//! - **a connection cap** ([`ConnectionLimits::max_connections`]): a slot is taken *before*
//!   `accept`, and held by the connection's task, so past the cap new connections wait in the
//!   kernel's listen backlog, where they cost no descriptor of ours;
//! - **a header-read timeout** ([`ConnectionLimits::header_read_timeout`]): a new connection
//!   must send its first request head within it, and once a byte of a later request head has
//!   arrived the whole head must follow within it;
//! - **an idle timeout** ([`ConnectionLimits::idle_timeout`]): a connection with no request in
//!   flight — idle between keep-alive requests, or an HTTP/2 connection with no stream — is
//!   closed after it;
//! - **no Nagle delay**: accepted sockets set `TCP_NODELAY`, so the many small writes of a
//!   streamed answer leave at once instead of each waiting for the client's delayed ACK;
//! - **HTTP/2 limits**: keep-alive pings, concurrent streams, and the reset-stream bounds that
//!   make a rapid-reset flood end in `GOAWAY` instead of unbounded work;
//! - **shutdown**: on the signal, accepting stops; idle and half-sent connections are closed at
//!   once, in-flight requests finish, and whatever is left is dropped at [`SHUTDOWN_GRACE`].
//!
//! Both timeouts are kept here rather than by hyper: hyper's HTTP/1 header timer also starts as
//! soon as a response is written, so it would bound the keep-alive idle time too (and could not
//! be longer than the header timeout), and it never runs before hyper-util has told HTTP/1 from
//! HTTP/2, nor for HTTP/2 at all. Each connection therefore tracks its requests in flight and
//! the bytes it reads (`Activity`), and its task closes it when a deadline passes.

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::response::Response;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::Service;

use crate::config::ConnectionLimits;
use crate::limits::SHUTDOWN_GRACE;

/// HTTP/2: how often an idle connection is pinged, so a peer that vanished without a FIN is
/// noticed; and how long the answer may take before the connection is closed.
const H2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(20);
const H2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// HTTP/2: streams one connection may have open at once; each is a spawned request task.
const H2_MAX_CONCURRENT_STREAMS: u32 = 100;
/// HTTP/2 rapid reset (CVE-2023-44487): streams the client may open and reset before we have
/// accepted them; past it the connection ends with `GOAWAY ENHANCE_YOUR_CALM`.
const H2_MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;
/// HTTP/2: streams we may reset for the client's protocol errors before ending the connection.
const H2_MAX_LOCAL_ERROR_RESET_STREAMS: usize = 256;
/// HTTP/1: header fields hyper parses before it answers `431` itself: twice ours, so that our
/// own limit (`request_head`), which answers in the envelope, is the one clients meet.
const H1_MAX_HEADERS: usize = 2 * crate::limits::MAX_HEADERS;
/// Pause after an `accept` error that is not about one connection (e.g. `EMFILE`), so a
/// persistent one does not spin a core.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Serves `app` on `listener` (HTTP/1.1 and HTTP/2 cleartext) within `limits` until `shutdown`
/// resolves; then stops accepting, closes idle and half-sent connections, lets in-flight
/// requests finish, and returns at the latest [`SHUTDOWN_GRACE`] after the signal.
///
/// # Errors
/// None today: a failed `accept` is logged and retried, as it concerns one connection or a
/// passing shortage of descriptors; the `Result` keeps the callers' signature.
pub async fn serve_app<S>(
    listener: TcpListener,
    app: S,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let builder = Arc::new(http_builder());
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = accept(&listener, &slots) => accepted,
        };
        if let Some((stream, slot)) = accepted {
            connections.spawn(serve_connection(
                stream,
                app.clone(),
                Arc::clone(&builder),
                limits,
                stop_rx.clone(),
                slot,
            ));
        }
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    tracing::info!(
        event = "server.shutdown_started",
        open_connections = connections.len()
    );
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            event = "server.shutdown_forced",
            grace_secs = SHUTDOWN_GRACE.as_secs(),
            open_connections = connections.len()
        );
        connections.abort_all();
    }
    tracing::info!(event = "server.stopped");
    Ok(())
}

/// hyper's settings: HTTP/1.1 and HTTP/2 by prior knowledge, with the HTTP/2 limits above.
fn http_builder() -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    // Explicitly off: the connection task keeps both timeouts (module header).
    builder
        .http1()
        .header_read_timeout(None)
        .max_headers(H1_MAX_HEADERS);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(H2_KEEP_ALIVE_TIMEOUT)
        .max_concurrent_streams(H2_MAX_CONCURRENT_STREAMS)
        .max_pending_accept_reset_streams(H2_MAX_PENDING_ACCEPT_RESET_STREAMS)
        .max_local_error_reset_streams(H2_MAX_LOCAL_ERROR_RESET_STREAMS);
    builder
}

/// Takes a connection slot, then accepts one connection; `None` when `accept` failed.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> Option<(TcpStream, OwnedSemaphorePermit)> {
    // The slot first: past the cap, clients wait in the kernel's backlog, not in our fd table.
    let slot = Arc::clone(slots)
        .acquire_owned()
        .await
        .expect("the slot semaphore is never closed");
    match listener.accept().await {
        Ok((stream, _peer)) => {
            // A streamed answer is many small writes: with Nagle's algorithm each would wait for
            // the client's (delayed, up to 40 ms) ACK of the previous one.
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(event = "server.nodelay_failed", error = %error);
            }
            Some((stream, slot))
        }
        Err(error) if is_connection_error(&error) => None,
        Err(error) => {
            tracing::error!(event = "server.accept_failed", error = %error);
            tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            None
        }
    }
}

/// An `accept` error about the one connection being accepted (gone before we took it).
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Serves one connection until the client closes it, a timeout closes it, or the server stops;
/// `_slot` is given back when it ends.
async fn serve_connection<S>(
    stream: TcpStream,
    app: S,
    builder: Arc<Builder<TokioExecutor>>,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(TrackedIo {
        inner: stream,
        activity: Arc::clone(&activity),
    });
    let service = TowerToHyperService::new(TrackRequests {
        inner: app,
        activity: Arc::clone(&activity),
    });
    let mut connection = pin!(builder.serve_connection(io, service));
    let mut stopping = pin!(async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    });
    let mut timer = pin!(tokio::time::sleep(limits.idle_timeout));
    let mut closing_since: Option<Instant> = None;
    poll_fn(|cx| {
        loop {
            if let Poll::Ready(result) = connection.as_mut().poll(cx) {
                if let Err(error) = result {
                    tracing::debug!(event = "server.connection_error", error = %error);
                }
                return Poll::Ready(());
            }
            // After polling hyper, so a request it has just read counts as in flight.
            let now = activity.observe();
            if let Some(since) = closing_since {
                // Nothing in flight and nothing unwritten: closing loses nothing (an idle
                // connection, or a request head that never completed).
                if now.in_flight == 0 && !now.write_blocked {
                    return Poll::Ready(());
                }
                // A finished response the client does not read gets one header timeout more.
                if now.in_flight == 0 {
                    let linger = since.max(now.quiet_since) + limits.header_read_timeout;
                    if expired(timer.as_mut(), linger, cx) {
                        return Poll::Ready(());
                    }
                }
                return Poll::Pending;
            }
            let stopped = stopping.as_mut().poll(cx).is_ready();
            let timed_out = match now.deadline(&limits) {
                Some(deadline) => expired(timer.as_mut(), deadline, cx),
                // Requests in flight: no deadline, but a re-check within an idle timeout, since
                // a request ending on another task (an HTTP/2 stream) does not wake this one.
                None => {
                    expired(timer.as_mut(), Instant::now() + limits.idle_timeout, cx);
                    false
                }
            };
            if !stopped && !timed_out {
                return Poll::Pending;
            }
            tracing::debug!(
                event = "server.connection_closing",
                reason = if stopped { "shutdown" } else { "timeout" }
            );
            closing_since = Some(Instant::now());
            // hyper closes an idle HTTP/1 connection at once, lets an in-flight request finish
            // without keep-alive, and sends HTTP/2 `GOAWAY`; then the loop re-checks.
            connection.as_mut().graceful_shutdown();
        }
    })
    .await;
}

/// Whether `deadline` has passed, arming `timer` to wake the task by then otherwise.
///
/// The timer is moved only *earlier* as the deadline changes: a busy connection pushes its
/// deadline later on every request, and re-arming the timer each time would cost a timer-wheel
/// update per request. A timer that fires before the (since postponed) deadline is re-armed
/// then, once.
fn expired(
    mut timer: Pin<&mut tokio::time::Sleep>,
    deadline: Instant,
    cx: &mut Context<'_>,
) -> bool {
    if deadline < timer.deadline() {
        timer.as_mut().reset(deadline);
    }
    if timer.as_mut().poll(cx).is_pending() {
        return false;
    }
    if Instant::now() >= deadline {
        return true;
    }
    timer.as_mut().reset(deadline);
    timer.poll(cx).is_ready()
}

/// What one connection is doing, shared by its I/O, its requests and its task.
#[derive(Debug)]
struct Activity {
    state: Mutex<ActivityState>,
}

#[derive(Debug)]
struct ActivityState {
    /// Requests whose response body hyper has not yet taken whole (or dropped).
    in_flight: usize,
    /// When `in_flight` last fell to zero, or the connection was accepted.
    quiet_since: Instant,
    /// When a request head began: the first byte read while nothing was in flight, or the
    /// connection's accept (a new connection owes its first request within the header timeout).
    head_started: Option<Instant>,
    /// The last write could not complete: hyper holds bytes for a client that is not reading.
    write_blocked: bool,
    /// The connection began with the HTTP/2 preface (`None` before its first byte). Bytes
    /// read on an idle HTTP/2 connection are pings and settings, not a request head.
    http2: Option<bool>,
}

/// What the connection task reads of an [`ActivityState`] (a copy: no waker clone per poll).
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    in_flight: usize,
    quiet_since: Instant,
    head_started: Option<Instant>,
    write_blocked: bool,
}

impl Snapshot {
    /// When the connection is to be closed, if nothing happens first; `None` while a request
    /// is in flight (the request deadline bounds those).
    fn deadline(&self, limits: &ConnectionLimits) -> Option<Instant> {
        if self.in_flight > 0 {
            return None;
        }
        let idle = self.quiet_since + limits.idle_timeout;
        Some(match self.head_started {
            Some(started) => idle.min(started + limits.header_read_timeout),
            None => idle,
        })
    }
}

impl Activity {
    fn new() -> Self {
        let accepted = Instant::now();
        Self {
            state: Mutex::new(ActivityState {
                in_flight: 0,
                quiet_since: accepted,
                head_started: Some(accepted),
                write_blocked: false,
                http2: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ActivityState> {
        // The state stays consistent under a panic elsewhere: every update is one assignment.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A snapshot for the connection task. Nothing wakes the task when a request ends: an
    /// HTTP/1 response body is dropped inside the task's own poll, which then re-checks, and
    /// while requests are in flight the task re-checks at least every idle timeout anyway
    /// (see [`serve_connection`]); a wake per request would cost a poll per request.
    fn observe(&self) -> Snapshot {
        let state = self.lock();
        Snapshot {
            in_flight: state.in_flight,
            quiet_since: state.quiet_since,
            head_started: state.head_started,
            write_blocked: state.write_blocked,
        }
    }

    fn begin_request(self: &Arc<Self>) -> RequestGuard {
        let mut state = self.lock();
        state.in_flight += 1;
        state.head_started = None;
        RequestGuard(Arc::clone(self))
    }

    fn end_request(&self) {
        let mut state = self.lock();
        state.in_flight -= 1;
        if state.in_flight == 0 {
            state.quiet_since = Instant::now();
            state.head_started = None;
        }
    }

    /// `bytes` were read (inside the connection task's poll, which then re-checks: no wake).
    fn on_read(&self, bytes: &[u8]) {
        let mut state = self.lock();
        let http2 = *state
            .http2
            .get_or_insert_with(|| bytes.starts_with(b"PRI * HTTP/2.0"));
        if state.in_flight == 0 && state.head_started.is_none() && !http2 {
            state.head_started = Some(Instant::now());
        }
    }

    fn on_write(&self, blocked: bool) {
        let mut state = self.lock();
        state.write_blocked = blocked;
    }
}

/// One request in flight, from the service call until hyper drops the response body.
#[derive(Debug)]
struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.end_request();
    }
}

/// The TCP stream, reporting reads and blocked writes to its [`Activity`].
#[derive(Debug)]
struct TrackedIo {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for TrackedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.on_read(&buf.filled()[before..]);
        }
        result
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.activity.on_write(result.is_pending());
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.activity.on_write(result.is_pending());
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The application as hyper calls it: counts each request in flight until its response body
/// is done.
#[derive(Debug, Clone)]
struct TrackRequests<S> {
    inner: S,
    activity: Arc<Activity>,
}

type TrackedResponse =
    Pin<Box<dyn Future<Output = Result<Response<TrackedBody>, Infallible>> + Send>>;

impl<S> Service<hyper::Request<Incoming>> for TrackRequests<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = TrackedResponse;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: hyper::Request<Incoming>) -> Self::Future {
        let guard = self.activity.begin_request();
        let response = self.inner.call(request.map(Body::new));
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| TrackedBody {
                inner: body,
                _guard: guard,
            }))
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body that ends its request's [`RequestGuard`] when hyper drops it.
    struct TrackedBody {
        #[pin]
        inner: Body,
        _guard: RequestGuard,
    }
}

impl hyper::body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
