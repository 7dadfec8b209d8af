//! Operations: `/health` and `/api/health` (liveness, no I/O), `/ready` (store and app
//! credentials), `/metrics` (Prometheus text, for admins or a scraper with
//! `DBAPP_METRICS_TOKEN`; the store's `db_pool_connections` are read at each scrape).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::MetricsReader;
use crate::error::ErrorBody;
use crate::metrics::DB_POOL_CONNECTIONS;
use crate::state::AppState;

/// Liveness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `healthy`.
    #[schema(example = "healthy")]
    pub status: &'static str,
    /// The server's version.
    pub version: &'static str,
}

/// Readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    /// Each check: `ok`, `not_configured`, or `failed: <reason>`.
    pub checks: BTreeMap<String, String>,
}

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_health))
        .routes(routes!(get_api_health))
        .routes(routes!(get_ready))
        .routes(routes!(get_metrics))
}

fn health() -> Json<Health> {
    Json(Health {
        status: "healthy",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// Liveness: the process answers (no I/O).
#[utoipa::path(get, path = "/health", tag = "health", responses((status = 200, body = Health)))]
async fn get_health() -> Json<Health> {
    health()
}

/// Liveness, under `/api` for clients that only reach that prefix.
#[utoipa::path(get, path = "/api/health", tag = "health", responses((status = 200, body = Health)))]
async fn get_api_health() -> Json<Health> {
    health()
}

/// Readiness: the store answers and the app's own credentials work.
#[utoipa::path(get, path = "/ready", tag = "health", responses(
    (status = 200, body = Ready, description = "Every check passed"),
    (status = 503, body = Ready, description = "A check failed; `checks` says which"),
))]
async fn get_ready(State(app): State<AppState>) -> Response {
    let mut checks = BTreeMap::new();
    let store = match &app.store {
        None => "not_configured".to_owned(),
        Some(store) => match store.ping().await {
            Ok(()) => "ok".to_owned(),
            Err(error) => format!("failed: {error}"),
        },
    };
    checks.insert("store".to_owned(), store);
    let credentials = match app.databricks.app_credentials().token().await {
        Ok(_) => "ok".to_owned(),
        Err(error) => format!("failed: {}", error.kind()),
    };
    checks.insert("credentials".to_owned(), credentials);
    let ready = checks.values().all(|v| !v.starts_with("failed"));
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Ready {
        status: if ready { "ready" } else { "not_ready" },
        checks,
    };
    (status, Json(body)).into_response()
}

/// Prometheus text exposition of the server's metrics: for admins, or a scraper presenting
/// `DBAPP_METRICS_TOKEN` as `Authorization: Bearer …`.
#[utoipa::path(get, path = "/metrics", tag = "health", security(("user_token" = []), ("metrics_token" = [])), responses(
    (status = 200, content_type = "text/plain; version=0.0.4", body = String),
    (status = 401, body = ErrorBody, description = "AUTH_MISSING, AUTH_INVALID (also a wrong scrape token)"),
    (status = 403, body = ErrorBody, description = "ADMIN_REQUIRED"),
))]
async fn get_metrics(State(app): State<AppState>, _reader: MetricsReader) -> Response {
    // Read at scrape time, so the gauge is as fresh as the scrape for every kind of store.
    if let Some(store) = &app.store {
        let pool = store.pool_connections();
        for (state, connections) in [("idle", pool.idle), ("in_use", pool.in_use)] {
            app.metrics.gauge(
                DB_POOL_CONNECTIONS,
                &[("state", state)],
                f64::from(connections),
            );
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        app.metrics.render(),
    )
        .into_response()
}
