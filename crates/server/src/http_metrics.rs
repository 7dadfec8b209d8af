//! The HTTP metrics layer, [`TrackHttpLayer`]: the innermost middleware, applied after routing
//! (`Router::layer`) where the route template (`MatchedPath`) is known. For each request it
//! records the template on the request span, counts `http_requests_total` and
//! `http_request_duration_seconds`, hands a performance record of each `/api` request to the
//! batch writer ([`RequestRecorder`]), and logs the response's error once ([`log_error`]).
//!
//! Only requests whose caller was identified get a performance record: a request refused as
//! unauthenticated (`AUTH_*`, `IDENTITY_MISMATCH`), an unknown `/api` path, a wrong method or
//! the public `/api/health` is counted here but writes no row, because anyone can send those,
//! and a row each would let an anonymous flood fill the database. The signal is typed: for
//! `/api` routes this layer puts an [`IdentifiedSlot`] in the request's extensions, and the
//! `Caller` extractor marks it once it has established who is calling.
//!
//! A plain tower layer rather than `from_fn`, which would clone the route and box a future per
//! request on top of the router's own. It holds only what it writes to (the [`Metrics`] and the
//! [`RequestRecorder`]), not the application state.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::response::Response;
use dbapp_store::NewRequestRecord;
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::error::log_error;
use crate::metrics::{HTTP_REQUEST_DURATION_SECONDS, HTTP_REQUESTS_TOTAL, Metrics};
use crate::records::RequestRecorder;

/// The `method` label: the standard methods by name, anything else as `OTHER`, so that a client
/// inventing methods cannot grow the series without bound.
fn method_label(method: &Method) -> &'static str {
    const STANDARD: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    STANDARD
        .iter()
        .find(|m| *m == method)
        .map_or("OTHER", Method::as_str)
}

/// Whether a request's caller was identified (see the module header): shared between this
/// layer, which reads it once the response is ready, and the `Caller` extractor, which marks it.
#[derive(Debug, Clone, Default)]
pub struct IdentifiedSlot(Arc<AtomicBool>);

impl IdentifiedSlot {
    /// Records that the request's caller was identified.
    pub fn mark(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn is_marked(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The innermost middleware (see the module header).
#[derive(Debug, Clone)]
pub struct TrackHttpLayer {
    metrics: Metrics,
    records: RequestRecorder,
}

impl TrackHttpLayer {
    /// The layer counting into `metrics` and handing performance records to `records`.
    #[must_use]
    pub fn new(metrics: Metrics, records: RequestRecorder) -> Self {
        Self { metrics, records }
    }
}

impl<S> Layer<S> for TrackHttpLayer {
    type Service = TrackHttp<S>;

    fn layer(&self, inner: S) -> TrackHttp<S> {
        TrackHttp {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`TrackHttpLayer`].
#[derive(Debug, Clone)]
pub struct TrackHttp<S> {
    inner: S,
    layer: TrackHttpLayer,
}

impl<S> Service<Request> for TrackHttp<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = TrackHttpFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let started = Instant::now();
        let matched = request.extensions().get::<MatchedPath>().cloned();
        let route = matched.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
        let span = tracing::Span::current();
        span.record("route", route);
        if crate::otel::enabled() {
            span.record(
                "otel.name",
                format!("{} {route}", request.method().as_str()).as_str(),
            );
        }
        let identified = route.starts_with("/api/").then(IdentifiedSlot::default);
        if let Some(slot) = &identified {
            request.extensions_mut().insert(slot.clone());
        }
        let method = method_label(request.method());
        TrackHttpFuture {
            inner: self.inner.call(request),
            layer: self.layer.clone(),
            matched,
            identified,
            method,
            started,
        }
    }
}

/// The `route` label of a request no route matched.
const UNMATCHED: &str = "unmatched";

pin_project! {
    /// The response future of [`TrackHttp`].
    pub struct TrackHttpFuture<F> {
        #[pin]
        inner: F,
        layer: TrackHttpLayer,
        matched: Option<MatchedPath>,
        // `Some` for `/api` routes: marked when the caller was identified.
        identified: Option<IdentifiedSlot>,
        method: &'static str,
        started: Instant,
    }
}

impl<F> Future for TrackHttpFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(response) = ready!(this.inner.poll(cx));
        let elapsed = this.started.elapsed();
        let route = this.matched.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
        let method = *this.method;
        log_error(&response);
        let status = response.status();
        let metrics = &this.layer.metrics;
        metrics.count(
            HTTP_REQUESTS_TOTAL,
            &[
                ("route", route),
                ("method", method),
                ("status", status.as_str()),
            ],
            1,
        );
        metrics.observe(
            HTTP_REQUEST_DURATION_SECONDS,
            &[("route", route), ("method", method)],
            elapsed.as_secs_f64(),
        );
        if this
            .identified
            .as_ref()
            .is_some_and(IdentifiedSlot::is_marked)
        {
            this.layer.records.record(NewRequestRecord {
                route: route.to_owned(),
                method: method.to_owned(),
                status: status.as_u16(),
                duration_ms: elapsed.as_secs_f64() * 1000.0,
                recorded_at: chrono::Utc::now()
                    - chrono::TimeDelta::from_std(elapsed).unwrap_or_default(),
            });
        }
        Poll::Ready(Ok(response))
    }
}
