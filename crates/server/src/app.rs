//! The application: [`build_app`] with its middleware stack (over the routes and the shared
//! [`AppState`]), and [`serve`] (the connection loop itself is [`mod@crate::serve`]); after
//! the last request, serving drains the inference history's outbox within the shutdown grace.
//!
//! Middleware, outer to inner. All but the last wrap the routed application once, as one tower
//! stack, rather than each route (`Router::layer` would box and clone every layer per request);
//! so they run before routing and know the path, not the route template.
//! 1. `CorrelateLayer` — first, so every response, even a caught panic's 500 or a routing 404,
//!    carries `X-Correlation-ID` and the error envelope (STYLE puts `CatchPanicLayer` first; it
//!    comes later here for exactly that reason);
//! 2. security headers (`X-Content-Type-Options`, `X-Frame-Options`, `Referrer-Policy`) —
//!    this far out so that every response has them, the body limit's 413, the deadline's 504
//!    and a caught panic's 500 included (`CorrelateLayer` keeps them on its envelopes);
//! 3. `CatchPanicLayer` — a panicking handler becomes a 500 instead of a dropped connection;
//! 4. `SetSensitiveRequestHeadersLayer` — `Authorization` and `X-Forwarded-Access-Token` are
//!    marked sensitive before anything could log headers;
//! 5. `TraceLayer` with `make_request_span` — the request span every log line is written in,
//!    and the one `http.request` access-log line;
//! 6. `TimeoutLayer` — the whole-request deadline, below the Apps proxy's ~120 s;
//! 7. `CompressionLayer` — gzip for clients that ask, except responses marked
//!    [`Uncompressed`] (file downloads, whose `Content-Length` the client should see);
//! 8. `BodyLimitLayer` — 1 MiB, before any handler buffers a body; the volume upload, which
//!    streams its body under its own cap, is exempt (the `body_limit` module). Inside the
//!    compression layer, so that it sees the router's own response type and can answer a 413
//!    itself;
//! 9. CORS (only for configured dev origins);
//! 10. `RequestHeadLayer` — the request-target and header limits (414, 431): inside the
//!     envelope, the security headers and the access log, and before routing and every
//!     extractor; last of the stack because it answers with the router's own body type;
//! 11. `TrackHttpLayer`, after routing (`Router::layer`), where `MatchedPath` is known: records the
//!     route template on the span, metrics and performance records by route (only for `/api`
//!     requests whose caller was identified), and logs each `ApiError` once with its cause
//!     chain.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::response::Response;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tower::{Service, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, Predicate};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::body_limit::BodyLimitLayer;
use crate::http_metrics::TrackHttpLayer;
use crate::limits::SHUTDOWN_GRACE;
use crate::request_head::RequestHeadLayer;
use crate::routes::Uncompressed;
use crate::serve::serve_app;
use crate::state::AppState;
use crate::telemetry::{CorrelateLayer, make_request_span, on_response};

/// The whole application, routes inside their middleware (see the module header), as one
/// tower service: served as it is, with no router around it that would box the stack's future
/// and clone the stack on every request.
pub fn build_app(
    state: AppState,
) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
+ Clone
+ Send
+ Sync
+ 'static {
    let (api, openapi) = crate::openapi::api_router().split_for_parts();
    let openapi = Arc::new(openapi);
    let routed = Router::new()
        .merge(api)
        .merge(crate::openapi::docs_router(Arc::clone(&openapi)))
        .merge(crate::routes::fallback_router())
        .fallback(crate::assets::spa)
        .layer(TrackHttpLayer::new(
            state.metrics.clone(),
            state.records.clone(),
        ))
        .with_state(state.clone());
    let cors = (!state.settings.dbapp.cors_origins.is_empty()).then(|| {
        let origins: Vec<HeaderValue> = state
            .settings
            .dbapp
            .cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([
                header::CONTENT_TYPE,
                HeaderName::from_static("x-correlation-id"),
                HeaderName::from_static("x-forwarded-access-token"),
            ])
            .expose_headers([HeaderName::from_static("x-correlation-id")])
    });
    ServiceBuilder::new()
        .layer(CorrelateLayer)
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(CatchPanicLayer::new())
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            HeaderName::from_static("x-forwarded-access-token"),
            header::COOKIE,
        ]))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(make_request_span)
                .on_request(())
                .on_response(on_response)
                .on_failure(()),
        )
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::GATEWAY_TIMEOUT,
            state.settings.request_timeout(),
        ))
        .layer(
            CompressionLayer::new().compress_when(DefaultPredicate::new().and(
                |_: axum::http::StatusCode,
                 _: axum::http::Version,
                 _: &axum::http::HeaderMap,
                 extensions: &axum::http::Extensions| {
                    extensions.get::<Uncompressed>().is_none()
                },
            )),
        )
        .layer(BodyLimitLayer)
        .option_layer(cors)
        .layer(RequestHeadLayer)
        .service(routed)
}

/// Serves `state`'s router on `listener` (HTTP/1.1 and HTTP/2 cleartext) within the
/// settings' connection limits until `shutdown` resolves (see [`serve_app`]).
///
/// # Errors
/// An I/O error of the listener.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_service(listener, build_app(state.clone()), &state, shutdown).await
}

/// How often the Prometheus recorder's upkeep runs.
const UPKEEP_PERIOD: Duration = Duration::from_secs(5);

/// Serves `app` (built from `state`, perhaps wrapped) until `shutdown` resolves, with the
/// metrics upkeep running; then gives the inference history's outbox what is left of the
/// shutdown grace ([`SHUTDOWN_GRACE`] from the signal) to reach the store.
///
/// # Errors
/// An I/O error of the listener.
pub(crate) async fn serve_service<S>(
    listener: TcpListener,
    app: S,
    state: &AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let upkeep = crate::metrics::spawn_upkeep(state.metrics.clone(), UPKEEP_PERIOD);
    let (signalled_tx, signalled) = oneshot::channel();
    let shutdown = async move {
        shutdown.await;
        let _ = signalled_tx.send(Instant::now());
    };
    let result = serve_app(listener, app, state.settings.connection_limits(), shutdown).await;
    let signalled = signalled.await.unwrap_or_else(|_| Instant::now());
    state.history.close(signalled + SHUTDOWN_GRACE).await;
    upkeep.abort();
    result
}
