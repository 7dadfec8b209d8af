//! Prometheus metrics (`API.md` "Metrics"): the names and labels, the recorder, the
//! [`track_http`] middleware, the upstream [`AttemptObserver`] and the request-record writer.
//!
//! Each [`Metrics`] owns its own `PrometheusRecorder`, so several servers in one process (tests)
//! never mix their counts; `dbapp serve` also installs it as the global recorder
//! ([`Metrics::install_global`]) so the store's `lakebase_*` and `db_pool_connections` series
//! land in the same exposition. Labels are route templates (`MatchedPath`), never raw paths;
//! `auth_requests_by_user` is bounded: past `DBAPP_METRICS_MAX_USERS` distinct users, new ones
//! count under `user_id="_other"`.
//!
//! Request performance records for the admin dashboard go through a bounded channel to one
//! batch writer task ([`RequestRecorder`]), so no request waits on the database for them; when
//! the channel is full a record is dropped and counted rather than blocking.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use dbapp_databricks::{Attempt, AttemptObserver};
use dbapp_store::{NewRequestRecord, Store};
use metrics::{Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use tokio::sync::mpsc;

use crate::app::AppState;

/// `auth_success_total{route, auth_method}`.
pub const AUTH_SUCCESS_TOTAL: &str = "auth_success_total";
/// `auth_failure_total{route, auth_method, reason}`.
pub const AUTH_FAILURE_TOTAL: &str = "auth_failure_total";
/// `auth_retry_total{route, attempt}`.
pub const AUTH_RETRY_TOTAL: &str = "auth_retry_total";
/// `auth_request_duration_seconds{route}`.
pub const AUTH_REQUEST_DURATION_SECONDS: &str = "auth_request_duration_seconds";
/// `auth_requests_by_user{user_id, route}`.
pub const AUTH_REQUESTS_BY_USER: &str = "auth_requests_by_user";
/// `http_requests_total{route, method, status}`.
pub const HTTP_REQUESTS_TOTAL: &str = "http_requests_total";
/// `http_request_duration_seconds{route, method}`.
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "http_request_duration_seconds";
/// `upstream_requests_total{api, operation, status}`.
pub const UPSTREAM_REQUESTS_TOTAL: &str = "upstream_requests_total";
/// `upstream_request_duration_seconds{api, operation, status}`.
pub const UPSTREAM_REQUEST_DURATION_SECONDS: &str = "upstream_request_duration_seconds";
/// `identity_cache_hits_total`.
pub const IDENTITY_CACHE_HITS_TOTAL: &str = "identity_cache_hits_total";
/// `identity_cache_misses_total`.
pub const IDENTITY_CACHE_MISSES_TOTAL: &str = "identity_cache_misses_total";
/// `lakebase_token_refresh_total{outcome}` (written by dbapp-store).
pub const LAKEBASE_TOKEN_REFRESH_TOTAL: &str = "lakebase_token_refresh_total";
/// `lakebase_token_expiry_seconds` (written by dbapp-store).
pub const LAKEBASE_TOKEN_EXPIRY_SECONDS: &str = "lakebase_token_expiry_seconds";
/// `db_pool_connections{state}`.
pub const DB_POOL_CONNECTIONS: &str = "db_pool_connections";
/// Request records dropped because the writer's channel was full.
pub const REQUEST_RECORDS_DROPPED_TOTAL: &str = "request_records_dropped_total";

/// The `user_id` label for users past the bound.
pub const OTHER_USERS: &str = "_other";

/// Histogram buckets in seconds, from 5 ms to 60 s.
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The server's metrics: a recorder of its own and the bounded user set.
#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
    users: Arc<Mutex<HashSet<String>>>,
    max_users: usize,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("max_users", &self.max_users)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// A recorder with histogram buckets; `max_users` bounds `auth_requests_by_user`.
    #[must_use]
    pub fn new(max_users: usize) -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets(BUCKETS)
            .expect("the bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        let metrics = Self {
            recorder: Arc::new(recorder),
            handle,
            users: Arc::new(Mutex::new(HashSet::new())),
            max_users,
        };
        metrics.describe();
        metrics
    }

    /// Makes this recorder the process-wide one, so metrics written with the `metrics` macros by
    /// other crates (the store's Lakebase refresher) appear in `/metrics`. Once per process.
    ///
    /// # Errors
    /// When a global recorder is already installed.
    pub fn install_global(&self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        metrics::set_global_recorder(Arc::clone(&self.recorder))
            .map_err(|e| format!("a metrics recorder is already installed: {e}").into())
    }

    /// The Prometheus text exposition.
    #[must_use]
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Drains histograms; run periodically, since the exporter's own listener is not used.
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }

    fn describe(&self) {
        use metrics::Unit;
        let d = |name: &'static str, unit: Unit, text: &'static str| {
            self.recorder
                .describe_counter(name.into(), Some(unit), text.into());
        };
        d(
            AUTH_SUCCESS_TOTAL,
            Unit::Count,
            "Requests whose user identity was established",
        );
        d(
            AUTH_FAILURE_TOTAL,
            Unit::Count,
            "Requests refused while establishing identity, by AUTH_* reason",
        );
        d(
            HTTP_REQUESTS_TOTAL,
            Unit::Count,
            "HTTP requests served, by route template",
        );
    }

    fn key(name: &'static str, labels: &[(&'static str, String)]) -> Key {
        let labels: Vec<Label> = labels
            .iter()
            .map(|(k, v)| Label::new(*k, v.clone()))
            .collect();
        Key::from_parts(name, labels)
    }

    fn metadata() -> Metadata<'static> {
        Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()))
    }

    /// Adds `value` to a counter.
    pub fn count(&self, name: &'static str, labels: &[(&'static str, String)], value: u64) {
        self.recorder
            .register_counter(&Self::key(name, labels), &Self::metadata())
            .increment(value);
    }

    /// Records a histogram observation.
    pub fn observe(&self, name: &'static str, labels: &[(&'static str, String)], value: f64) {
        self.recorder
            .register_histogram(&Self::key(name, labels), &Self::metadata())
            .record(value);
    }

    /// Sets a gauge.
    pub fn gauge(&self, name: &'static str, labels: &[(&'static str, String)], value: f64) {
        self.recorder
            .register_gauge(&Self::key(name, labels), &Self::metadata())
            .set(value);
    }

    /// Counts one authenticated request of `user_id`, under `_other` past the bound.
    pub fn count_user(&self, user_id: &str, route: &str) {
        let label = {
            let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
            if users.contains(user_id) {
                user_id.to_owned()
            } else if users.len() < self.max_users {
                users.insert(user_id.to_owned());
                user_id.to_owned()
            } else {
                OTHER_USERS.to_owned()
            }
        };
        self.count(
            AUTH_REQUESTS_BY_USER,
            &[("user_id", label), ("route", route.to_owned())],
            1,
        );
    }

    /// An observer recording `upstream_requests_total` and `upstream_request_duration_seconds`
    /// for every attempt, and `auth_retry_total` for retried identity lookups of `route`.
    #[must_use]
    pub fn upstream_observer(&self, route: &str) -> Arc<dyn AttemptObserver> {
        Arc::new(UpstreamObserver {
            metrics: self.clone(),
            route: route.to_owned(),
        })
    }
}

struct UpstreamObserver {
    metrics: Metrics,
    route: String,
}

impl AttemptObserver for UpstreamObserver {
    fn on_attempt(&self, attempt: &Attempt<'_>) {
        let (api, operation) = operation_of(attempt.method, attempt.path);
        let status = match (attempt.status, attempt.error) {
            (Some(status), _) => status.to_string(),
            (None, Some(error)) if error.kind() == dbapp_databricks::ErrorKind::Timeout => {
                "timeout".to_owned()
            }
            _ => "error".to_owned(),
        };
        let labels = [
            ("api", api.to_owned()),
            ("operation", operation.to_owned()),
            ("status", status),
        ];
        self.metrics.count(UPSTREAM_REQUESTS_TOTAL, &labels, 1);
        self.metrics.observe(
            UPSTREAM_REQUEST_DURATION_SECONDS,
            &labels,
            attempt.elapsed.as_secs_f64(),
        );
        if api == "scim" && attempt.retry_in.is_some() {
            self.metrics.count(
                AUTH_RETRY_TOTAL,
                &[
                    ("route", self.route.clone()),
                    ("attempt", attempt.number.to_string()),
                ],
                1,
            );
            tracing::warn!(
                event = "auth.retry_attempt",
                attempt = attempt.number,
                status = ?attempt.status,
                retry_in_ms = attempt.retry_in.map(|d| d.as_millis() as u64),
            );
        }
    }
}

/// The `api` and `operation` labels of an upstream call: a fixed vocabulary, never a raw path
/// (which would hold catalog names and statement ids).
#[must_use]
pub fn operation_of(method: &str, path: &str) -> (&'static str, &'static str) {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["api", _, "preview", "scim", "v2", "Me"] => ("scim", "me"),
        ["api", _, "unity-catalog", "catalogs"] => ("unity_catalog", "list_catalogs"),
        ["api", _, "unity-catalog", "catalogs", _] => ("unity_catalog", "get_catalog"),
        ["api", _, "unity-catalog", "schemas"] => ("unity_catalog", "list_schemas"),
        ["api", _, "unity-catalog", "schemas", _] => ("unity_catalog", "get_schema"),
        ["api", _, "unity-catalog", "tables"] => ("unity_catalog", "list_tables"),
        ["api", _, "unity-catalog", "tables", _] => ("unity_catalog", "get_table"),
        ["api", _, "serving-endpoints"] => ("serving", "list_serving_endpoints"),
        ["api", _, "serving-endpoints", _] => ("serving", "get_serving_endpoint"),
        ["api", _, "serving-endpoints", _, "openapi"] => ("serving", "get_open_api"),
        ["serving-endpoints", _, "invocations"] => ("serving", "query"),
        ["api", _, "sql", "statements"] if method == "POST" => ("sql", "execute_statement"),
        ["api", _, "sql", "statements", _] => ("sql", "get_statement"),
        ["api", _, "sql", "statements", _, "cancel"] => ("sql", "cancel_statement"),
        ["api", _, "sql", "statements", _, "result", "chunks", _] => {
            ("sql", "get_statement_result_chunk")
        }
        ["api", _, "database", "credentials"] => ("database", "generate_database_credential"),
        ["api", _, "postgres", "credentials"] => ("postgres", "generate_postgres_credential"),
        ["oidc", ..] => ("oauth", "token"),
        _ => ("other", "other"),
    }
}

/// Records `http_requests_total` and `http_request_duration_seconds` by route template, and
/// hands a performance record to the batch writer.
pub async fn track_http(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let recorded_at = chrono::Utc::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    app.metrics.count(
        HTTP_REQUESTS_TOTAL,
        &[
            ("route", route.clone()),
            ("method", method.clone()),
            ("status", status.to_string()),
        ],
        1,
    );
    app.metrics.observe(
        HTTP_REQUEST_DURATION_SECONDS,
        &[("route", route.clone()), ("method", method.clone())],
        elapsed.as_secs_f64(),
    );
    if route.starts_with("/api/") {
        app.records.record(NewRequestRecord {
            route,
            method,
            status,
            duration_ms: elapsed.as_secs_f64() * 1000.0,
            recorded_at,
        });
    }
    response
}

/// The sending side of the request-record channel; cheap to clone.
#[derive(Debug, Clone)]
pub struct RequestRecorder {
    sender: Option<mpsc::Sender<NewRequestRecord>>,
    metrics: Option<Metrics>,
}

/// Records buffered before new ones are dropped.
pub const RECORD_CHANNEL_CAPACITY: usize = 10_000;
/// Most records written in one batch.
const RECORD_BATCH: usize = 500;

impl RequestRecorder {
    /// A recorder that records nothing (no store configured).
    #[must_use]
    pub fn disabled() -> Self {
        Self {
            sender: None,
            metrics: None,
        }
    }

    /// Starts the batch writer on the current runtime. It ends, after writing what is queued,
    /// when every clone of the returned recorder has been dropped.
    #[must_use]
    pub fn spawn(store: Arc<dyn Store>, metrics: Metrics) -> (Self, tokio::task::JoinHandle<()>) {
        let (sender, mut receiver) = mpsc::channel::<NewRequestRecord>(RECORD_CHANNEL_CAPACITY);
        let handle = tokio::spawn(async move {
            let mut batch = Vec::with_capacity(RECORD_BATCH);
            while receiver.recv_many(&mut batch, RECORD_BATCH).await > 0 {
                if let Err(error) = store.insert_request_records(&batch).await {
                    tracing::warn!(
                        event = "metrics.request_records_failed",
                        records = batch.len(),
                        error = %crate::error::cause_chain(&error),
                    );
                }
                batch.clear();
            }
        });
        (
            Self {
                sender: Some(sender),
                metrics: Some(metrics),
            },
            handle,
        )
    }

    /// Queues one record without waiting; drops (and counts) it when the queue is full.
    pub fn record(&self, record: NewRequestRecord) {
        let Some(sender) = &self.sender else { return };
        if sender.try_send(record).is_err()
            && let Some(metrics) = &self.metrics
        {
            metrics.count(REQUEST_RECORDS_DROPPED_TOTAL, &[], 1);
        }
    }
}

/// Runs [`Metrics::run_upkeep`] every `period` until the process ends.
pub fn spawn_upkeep(metrics: Metrics, period: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(period);
        loop {
            interval.tick().await;
            metrics.run_upkeep();
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_paths_map_to_a_fixed_vocabulary() {
        assert_eq!(
            operation_of("GET", "/api/2.0/preview/scim/v2/Me"),
            ("scim", "me")
        );
        assert_eq!(
            operation_of("GET", "/api/2.1/unity-catalog/tables/main.sales.orders"),
            ("unity_catalog", "get_table")
        );
        assert_eq!(
            operation_of("POST", "/serving-endpoints/echo/invocations"),
            ("serving", "query")
        );
        assert_eq!(
            operation_of("GET", "/api/2.0/sql/statements/abc/result/chunks/3"),
            ("sql", "get_statement_result_chunk")
        );
        assert_eq!(operation_of("GET", "/weird/path"), ("other", "other"));
    }

    #[test]
    fn users_past_the_bound_count_as_other() {
        // Arrange
        let metrics = Metrics::new(2);

        // Act
        for user in ["a@x", "b@x", "c@x", "a@x", "d@x"] {
            metrics.count_user(user, "/api/user/me");
        }

        // Assert
        let text = metrics.render();
        assert!(text.contains(r#"user_id="a@x""#), "{text}");
        assert!(text.contains(r#"user_id="b@x""#));
        assert!(!text.contains(r#"user_id="c@x""#));
        assert!(text.contains(r#"auth_requests_by_user{user_id="_other",route="/api/user/me"} 2"#));
    }
}
