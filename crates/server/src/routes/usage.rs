//! Usage events (from the UI, `navigator.sendBeacon` included), under the caller's usage-event
//! quota (`crate::quota`), and the metrics dashboards: the caller's event count, and for admins
//! request performance, usage and a time series.

use std::num::NonZeroU32;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use chrono::{DateTime, Utc};
use dbapp_store::{NewUsageEvent, TimeRange};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Admin, Caller};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::limits::USAGE_BATCH_EVENTS;
use crate::quota::QuotaName;
use crate::state::AppState;

/// One usage event.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UsageEvent {
    /// e.g. `page_view`, `click`.
    pub event_type: String,
    /// The page.
    #[serde(default)]
    pub page_name: Option<String>,
    /// The element.
    #[serde(default)]
    pub element_id: Option<String>,
    /// Whether the action succeeded.
    #[serde(default)]
    pub success: Option<bool>,
    /// Free-form details.
    #[serde(default)]
    pub metadata: Option<Value>,
    /// When it happened (RFC 3339).
    pub timestamp: DateTime<Utc>,
}

/// A batch of events.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UsageEventBatch {
    /// 1–1000 events.
    pub events: Vec<UsageEvent>,
}

/// Events stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// How many.
    pub accepted: u64,
}

/// A time window parameter.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    /// `24h` (default), `7d`, `30d` or `90d`.
    #[param(value_type = Option<String>, pattern = "^(24h|7d|30d|90d)$")]
    pub time_range: Option<String>,
}

/// Performance query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PerformanceQuery {
    /// `24h` (default), `7d`, `30d` or `90d`.
    #[param(value_type = Option<String>, pattern = "^(24h|7d|30d|90d)$")]
    pub time_range: Option<String>,
    /// Only this route template.
    pub route: Option<String>,
}

/// Time series query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TimeSeriesQuery {
    /// `24h` (default), `7d`, `30d` or `90d`.
    #[param(value_type = Option<String>, pattern = "^(24h|7d|30d|90d)$")]
    pub time_range: Option<String>,
    /// `performance`, `usage` or `both` (default).
    #[param(value_type = Option<String>, pattern = "^(performance|usage|both)$")]
    pub metric_type: Option<String>,
}

/// The caller's event count.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageCount {
    /// Events in the window.
    pub count: i64,
    /// The window's name.
    pub time_range: String,
    /// Start.
    pub start_time: DateTime<Utc>,
    /// End.
    pub end_time: DateTime<Utc>,
}

/// Counts and latency percentiles.
#[derive(Debug, Serialize, ToSchema)]
pub struct PerformanceSummary {
    /// Requests.
    pub requests: i64,
    /// Share of 5xx answers.
    pub error_rate: f64,
    /// Median (ms).
    #[schema(required)]
    pub p50_ms: Option<f64>,
    /// 95th percentile (ms).
    #[schema(required)]
    pub p95_ms: Option<f64>,
    /// 99th percentile (ms).
    #[schema(required)]
    pub p99_ms: Option<f64>,
}

/// One route's numbers.
#[derive(Debug, Serialize, ToSchema)]
pub struct RouteStats {
    /// Route template.
    pub route: String,
    /// Method.
    pub method: String,
    /// Requests.
    pub requests: i64,
    /// 5xx answers.
    pub errors: i64,
    /// Share of 5xx answers.
    pub error_rate: f64,
    /// Median (ms).
    #[schema(required)]
    pub p50_ms: Option<f64>,
    /// 95th percentile (ms).
    #[schema(required)]
    pub p95_ms: Option<f64>,
    /// 99th percentile (ms).
    #[schema(required)]
    pub p99_ms: Option<f64>,
}

/// Request performance.
#[derive(Debug, Serialize, ToSchema)]
pub struct PerformanceMetrics {
    /// The window's name.
    pub time_range: String,
    /// Start.
    pub start_time: DateTime<Utc>,
    /// End.
    pub end_time: DateTime<Utc>,
    /// All requests.
    pub summary: PerformanceSummary,
    /// Per route and method.
    pub routes: Vec<RouteStats>,
}

/// Views of one page.
#[derive(Debug, Serialize, ToSchema)]
pub struct TopPage {
    /// Page.
    pub page_name: String,
    /// Events naming it.
    pub views: i64,
}

/// Usage across users.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageMetrics {
    /// The window's name.
    pub time_range: String,
    /// Events.
    pub total_events: i64,
    /// Distinct users.
    pub unique_users: i64,
    /// Events per type.
    pub by_event_type: std::collections::BTreeMap<String, i64>,
    /// Most viewed pages.
    pub top_pages: Vec<TopPage>,
}

/// One bucket.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimeSeriesPointItem {
    /// Bucket start.
    pub timestamp: DateTime<Utc>,
    /// Requests (performance).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<i64>,
    /// Median latency (performance).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_ms: Option<f64>,
    /// p95 (performance).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p95_ms: Option<f64>,
    /// p99 (performance).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
    /// Error rate (performance).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    /// Events (usage).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<i64>,
    /// Distinct users (usage).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unique_users: Option<i64>,
}

/// A time series.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimeSeries {
    /// The window's name.
    pub time_range: String,
    /// `5m`, `1h` or `1d`.
    pub interval: String,
    /// One point per bucket.
    pub points: Vec<TimeSeriesPointItem>,
}

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(post_usage_events))
        .routes(routes!(get_usage_count))
        .routes(routes!(get_performance))
        .routes(routes!(get_usage))
        .routes(routes!(get_time_series))
}

fn range(value: Option<&str>) -> Result<TimeRange, ApiError> {
    value
        .unwrap_or("24h")
        .parse()
        .map_err(|_| ApiError::invalid("time_range", "must be one of 24h, 7d, 30d, 90d"))
}

/// Records usage events of the caller. `text/plain` carrying JSON is accepted, so
/// `navigator.sendBeacon` works.
///
/// Each event uses one of the caller's usage-event quota; a batch over it is refused whole
/// (429, nothing stored), and a batch larger than the whole quota is 400.
#[utoipa::path(post, path = "/api/v1/metrics/usage-events", tag = "metrics", security(("user_token" = [])),
    request_body(content = UsageEventBatch, content_type = "application/json"),
    responses(
    (status = 202, body = Accepted),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
    (status = 429, body = ErrorBody, description = "RATE_LIMITED: over the caller's usage-event quota (detail.quota = usage_events); Retry-After set"),
    (status = 503, body = ErrorBody),
))]
async fn post_usage_events(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let body = body?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !(content_type.starts_with("application/json") || content_type.starts_with("text/plain")) {
        return Err(ApiError::UnsupportedMediaType {
            expected: "application/json or text/plain",
        });
    }
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid("events", format!("not a valid event batch: {e}")))?;
    // Objects all the way down: serde would also take a struct as an array of its fields.
    if let Some(index) = value["events"]
        .as_array()
        .and_then(|events| events.iter().position(|e| !e.is_object()))
    {
        return Err(ApiError::invalid(
            format!("events[{index}]"),
            "must be a JSON object",
        ));
    }
    let batch: UsageEventBatch = super::from_json_object("events", value)?;
    let count = u32::try_from(batch.events.len())
        .ok()
        .and_then(NonZeroU32::new)
        .filter(|n| n.get() as usize <= USAGE_BATCH_EVENTS)
        .ok_or_else(|| {
            ApiError::invalid(
                "events",
                format!("must hold 1 to {USAGE_BATCH_EVENTS} events"),
            )
        })?;
    if let Some(index) = batch
        .events
        .iter()
        .position(|e| e.event_type.trim().is_empty())
    {
        return Err(ApiError::invalid(
            format!("events[{index}].event_type"),
            "must not be empty",
        ));
    }
    app.quotas
        .check(QuotaName::UsageEvents, caller.user_id(), count, "events")?;
    let events: Vec<NewUsageEvent> = batch
        .events
        .into_iter()
        .map(|e| NewUsageEvent {
            event_type: e.event_type,
            page_name: e.page_name,
            element_id: e.element_id,
            success: e.success,
            metadata: e.metadata,
            timestamp: e.timestamp,
        })
        .collect();
    let accepted = app
        .store()?
        .insert_usage_events(caller.user_id(), &events)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { accepted })))
}

/// The caller's event count in a window.
#[utoipa::path(get, path = "/api/v1/metrics/usage/count", tag = "metrics", security(("user_token" = [])),
    params(RangeQuery), responses(
    (status = 200, body = UsageCount),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody),
))]
async fn get_usage_count(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<RangeQuery>,
) -> Result<Json<UsageCount>, ApiError> {
    let time_range = range(query.time_range.as_deref())?;
    let window = time_range.ending_at(Utc::now());
    let count = app
        .store()?
        .count_usage_events(caller.user_id(), window)
        .await?;
    Ok(Json(UsageCount {
        count,
        time_range: time_range.as_str().to_owned(),
        start_time: window.start,
        end_time: window.end,
    }))
}

/// Request performance by route (admins).
#[utoipa::path(get, path = "/api/v1/metrics/performance", tag = "metrics", security(("user_token" = [])),
    params(PerformanceQuery), responses(
    (status = 200, body = PerformanceMetrics),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody, description = "ADMIN_REQUIRED"), (status = 503, body = ErrorBody),
))]
async fn get_performance(
    State(app): State<AppState>,
    _admin: Admin,
    ApiQuery(query): ApiQuery<PerformanceQuery>,
) -> Result<Json<PerformanceMetrics>, ApiError> {
    let time_range = range(query.time_range.as_deref())?;
    let window = time_range.ending_at(Utc::now());
    let report = app
        .store()?
        .admin_performance_report(window, query.route.as_deref())
        .await?;
    Ok(Json(PerformanceMetrics {
        time_range: time_range.as_str().to_owned(),
        start_time: window.start,
        end_time: window.end,
        summary: PerformanceSummary {
            requests: report.summary.requests,
            error_rate: report.summary.error_rate,
            p50_ms: report.summary.p50_ms,
            p95_ms: report.summary.p95_ms,
            p99_ms: report.summary.p99_ms,
        },
        routes: report
            .routes
            .into_iter()
            .map(|r| RouteStats {
                route: r.route,
                method: r.method,
                requests: r.stats.requests,
                errors: r.stats.errors,
                error_rate: r.stats.error_rate,
                p50_ms: r.stats.p50_ms,
                p95_ms: r.stats.p95_ms,
                p99_ms: r.stats.p99_ms,
            })
            .collect(),
    }))
}

/// Usage across all users (admins).
#[utoipa::path(get, path = "/api/v1/metrics/usage", tag = "metrics", security(("user_token" = [])),
    params(RangeQuery), responses(
    (status = 200, body = UsageMetrics),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody, description = "ADMIN_REQUIRED"), (status = 503, body = ErrorBody),
))]
async fn get_usage(
    State(app): State<AppState>,
    _admin: Admin,
    ApiQuery(query): ApiQuery<RangeQuery>,
) -> Result<Json<UsageMetrics>, ApiError> {
    let time_range = range(query.time_range.as_deref())?;
    let window = time_range.ending_at(Utc::now());
    let summary = app.store()?.admin_usage_summary(window).await?;
    Ok(Json(UsageMetrics {
        time_range: time_range.as_str().to_owned(),
        total_events: summary.total_events,
        unique_users: summary.unique_users,
        by_event_type: summary.by_event_type,
        top_pages: summary
            .top_pages
            .into_iter()
            .map(|p| TopPage {
                page_name: p.page_name,
                views: p.views,
            })
            .collect(),
    }))
}

/// Performance and usage per time bucket (admins).
#[utoipa::path(get, path = "/api/v1/metrics/time-series", tag = "metrics", security(("user_token" = [])),
    params(TimeSeriesQuery), responses(
    (status = 200, body = TimeSeries),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody, description = "ADMIN_REQUIRED"), (status = 503, body = ErrorBody),
))]
async fn get_time_series(
    State(app): State<AppState>,
    _admin: Admin,
    ApiQuery(query): ApiQuery<TimeSeriesQuery>,
) -> Result<Json<TimeSeries>, ApiError> {
    let time_range = range(query.time_range.as_deref())?;
    let (performance, usage) = match query.metric_type.as_deref().unwrap_or("both") {
        "performance" => (true, false),
        "usage" => (false, true),
        "both" => (true, true),
        _ => {
            return Err(ApiError::invalid(
                "metric_type",
                "must be one of performance, usage, both",
            ));
        }
    };
    let window = time_range.ending_at(Utc::now());
    let bucket = time_range.bucket();
    let points = app.store()?.admin_time_series(window, bucket).await?;
    Ok(Json(TimeSeries {
        time_range: time_range.as_str().to_owned(),
        interval: bucket.as_str().to_owned(),
        points: points
            .into_iter()
            .map(|p| TimeSeriesPointItem {
                timestamp: p.timestamp,
                requests: performance.then_some(p.requests),
                p50_ms: p.p50_ms.filter(|_| performance),
                p95_ms: p.p95_ms.filter(|_| performance),
                p99_ms: p.p99_ms.filter(|_| performance),
                error_rate: performance.then_some(p.error_rate),
                events: usage.then_some(p.events),
                unique_users: usage.then_some(p.unique_users),
            })
            .collect(),
    }))
}
