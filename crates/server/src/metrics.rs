//! Prometheus metrics (`API.md` "Metrics"): the metric names and labels, the recorder
//! ([`Metrics`]) with its cache of series handles, the upstream [`AttemptObserver`], and the
//! upkeep task. It imports only `config` (for [`UserLabels`]): the modules that write metrics
//! import this one (the HTTP layer in `http_metrics`, the identity lookups in `auth`, the
//! dropped-record count in `records`, the deleted-row count in `retention`), never the reverse.
//!
//! Each [`Metrics`] owns its own `PrometheusRecorder`, so several servers in one process (tests)
//! never mix their counts; `dbapp serve` also installs it as the global recorder
//! ([`Metrics::install_global`]) so the store's `lakebase_*` series
//! land in the same exposition. Labels are route templates (`MatchedPath`), never raw paths;
//! `auth_requests_by_user` names users by a short salted hash (or, with
//! `DBAPP_METRICS_USER_LABELS=email`, their id) and is bounded: past `DBAPP_METRICS_MAX_USERS`
//! distinct users, new ones count under `user_id="_other"`. The `api` and `operation` labels of upstream calls are the
//! names each `dbapp_databricks::api` method gives its call, never a path.
//!
//! Series handles are cached (`Series`): after a series' first use, counting it costs one hash
//! lookup of borrowed label values and an atomic update, with no allocation, so metrics stay off
//! the profile of the hottest routes.

use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use dbapp_databricks::{Attempt, AttemptObserver};
use hashbrown::{Equivalent, HashMap};
use metrics::{Counter, Gauge, Histogram, Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use sha2::{Digest, Sha256};

use crate::config::UserLabels;

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
/// `db_pool_connections{state="idle"|"in_use"}`: the store's pool, read at each scrape.
pub const DB_POOL_CONNECTIONS: &str = "db_pool_connections";
/// `quota_rejections_total{quota}`: requests refused for a per-user quota.
pub const QUOTA_REJECTIONS_TOTAL: &str = "quota_rejections_total";
/// Request records dropped because the writer's channel was full.
pub const REQUEST_RECORDS_DROPPED_TOTAL: &str = "request_records_dropped_total";
/// `inference_history_outbox_records`: inference-history records waiting for the store.
pub const INFERENCE_HISTORY_OUTBOX_RECORDS: &str = "inference_history_outbox_records";
/// `inference_history_delayed_total`: records that went to the outbox instead of the store.
pub const INFERENCE_HISTORY_DELAYED_TOTAL: &str = "inference_history_delayed_total";
/// `inference_history_written_late_total`: records the outbox writer stored.
pub const INFERENCE_HISTORY_WRITTEN_LATE_TOTAL: &str = "inference_history_written_late_total";
/// `inference_history_dropped_total{reason}`: records never stored (`invalid`: the store
/// refused them; `shutdown`: still waiting when the shutdown grace ended).
pub const INFERENCE_HISTORY_DROPPED_TOTAL: &str = "inference_history_dropped_total";
/// `retention_deleted_rows_total{table}`: rows the retention task deleted.
pub const RETENTION_DELETED_ROWS_TOTAL: &str = "retention_deleted_rows_total";

/// Log lines dropped because the log writer's queue was full.
pub const LOG_LINES_DROPPED_TOTAL: &str = "log_lines_dropped_total";

/// `chat_streams_total{endpoint, outcome}`: streamed chat turns by how they ended
/// (`completed`, `failed`, `cancelled`).
pub const CHAT_STREAMS_TOTAL: &str = "chat_streams_total";
/// `chat_time_to_first_token_seconds{endpoint}`: from the request to the first generated text
/// or tool call of a streamed chat turn.
pub const CHAT_TIME_TO_FIRST_TOKEN_SECONDS: &str = "chat_time_to_first_token_seconds";
/// `chat_tokens_per_second{endpoint}`: completion tokens (the endpoint's usage) over the time
/// from the first token to the end of the stream.
pub const CHAT_TOKENS_PER_SECOND: &str = "chat_tokens_per_second";

/// `genie_messages_total{outcome}`: Genie questions streamed, by how the stream ended
/// (`completed`, `failed`: Genie could not answer, `error`: another error, `cancelled`: the
/// client went away). Not labelled by space: the label set stays bounded.
pub const GENIE_MESSAGES_TOTAL: &str = "genie_messages_total";

/// `query_cache_hits_total{query}`: governed query requests answered from the result cache;
/// `query` is always a declared query's name, so the series are bounded by the catalog.
pub const QUERY_CACHE_HITS_TOTAL: &str = "query_cache_hits_total";
/// `query_cache_misses_total{query}`: governed query requests that ran a statement.
pub const QUERY_CACHE_MISSES_TOTAL: &str = "query_cache_misses_total";

/// The `user_id` (and `endpoint`) label for values past their bound.
pub const OTHER_USERS: &str = "_other";

/// Most distinct `endpoint` label values; later endpoints count under [`OTHER_USERS`].
pub const MAX_ENDPOINT_LABELS: usize = 100;

/// Buckets of `chat_tokens_per_second`.
const TOKEN_RATE_BUCKETS: &[f64] = &[
    1.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1_000.0, 5_000.0,
];

/// A bounded set of label values: each key gets its label once, computed on first use, and keys
/// past the bound get none (the caller counts them under [`OTHER_USERS`]).
struct BoundedLabels {
    seen: Mutex<HashMap<String, Arc<str>>>,
    max: usize,
}

impl BoundedLabels {
    fn new(max: usize) -> Self {
        Self {
            seen: Mutex::new(HashMap::new()),
            max,
        }
    }

    fn label(&self, key: &str, make: impl FnOnce() -> Arc<str>) -> Option<Arc<str>> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        match seen.get(key) {
            Some(label) => Some(Arc::clone(label)),
            None if seen.len() < self.max => {
                let label = make();
                seen.insert(key.to_owned(), Arc::clone(&label));
                Some(label)
            }
            None => None,
        }
    }
}

/// Histogram buckets in seconds, from 5 ms to 60 s.
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Label pairs as the hot paths pass them: static names, borrowed values.
pub type Labels<'a> = [(&'static str, &'a str)];

/// A registered series, owned: the metric name and its label pairs.
#[derive(PartialEq, Eq)]
struct SeriesKey {
    name: &'static str,
    labels: Box<[(&'static str, Box<str>)]>,
}

/// The same series, borrowed: what a lookup is made with, so a hit allocates nothing.
struct SeriesRef<'a> {
    name: &'static str,
    labels: &'a Labels<'a>,
}

// `SeriesKey` and `SeriesRef` must hash alike for `Equivalent` lookups: name, then each pair.
impl Hash for SeriesKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        for (name, value) in &self.labels {
            name.hash(state);
            (**value).hash(state);
        }
    }
}

impl Hash for SeriesRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        for (name, value) in self.labels {
            name.hash(state);
            value.hash(state);
        }
    }
}

impl Equivalent<SeriesKey> for SeriesRef<'_> {
    fn equivalent(&self, key: &SeriesKey) -> bool {
        self.name == key.name
            && self.labels.len() == key.labels.len()
            && self
                .labels
                .iter()
                .zip(&key.labels)
                .all(|((n1, v1), (n2, v2))| n1 == n2 && *v1 == &**v2)
    }
}

/// The handles of one kind (counter, histogram, gauge) registered so far. Cardinality is that
/// of the labels, which are bounded (route templates, the bounded user set, fixed vocabularies).
struct Series<H>(RwLock<HashMap<SeriesKey, H>>);

impl<H: Clone> Series<H> {
    fn new() -> Self {
        Self(RwLock::new(HashMap::new()))
    }

    /// The handle of `series`, registered with `register` on first use.
    fn get(&self, series: &SeriesRef<'_>, register: impl FnOnce(&Key) -> H) -> H {
        if let Some(handle) = self.0.read().unwrap_or_else(|e| e.into_inner()).get(series) {
            return handle.clone();
        }
        let labels: Vec<Label> = series
            .labels
            .iter()
            .map(|(name, value)| Label::new(*name, (*value).to_owned()))
            .collect();
        let handle = register(&Key::from_parts(series.name, labels));
        let key = SeriesKey {
            name: series.name,
            labels: series
                .labels
                .iter()
                .map(|(name, value)| (*name, Box::from(*value)))
                .collect(),
        };
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_insert(handle)
            .clone()
    }
}

/// The server's metrics: a recorder of its own, the handles of its series, and the bounded
/// user set.
#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
    counters: Arc<Series<Counter>>,
    histograms: Arc<Series<Histogram>>,
    gauges: Arc<Series<Gauge>>,
    /// User id → its label (the id itself, or its hash, computed once per user).
    users: Arc<BoundedLabels>,
    /// Serving endpoint name → its label.
    endpoints: Arc<BoundedLabels>,
    max_users: usize,
    user_labels: UserLabels,
    /// Random per process: a hashed label cannot be looked up from a list of e-mail addresses.
    salt: [u8; 16],
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("max_users", &self.max_users)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// A recorder with histogram buckets; `max_users` bounds `auth_requests_by_user`, whose
    /// users are named as `user_labels` says.
    #[must_use]
    pub fn new(max_users: usize, user_labels: UserLabels) -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets(BUCKETS)
            .expect("the bucket list is not empty")
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full(CHAT_TOKENS_PER_SECOND.to_owned()),
                TOKEN_RATE_BUCKETS,
            )
            .expect("the bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        let metrics = Self {
            recorder: Arc::new(recorder),
            handle,
            counters: Arc::new(Series::new()),
            histograms: Arc::new(Series::new()),
            gauges: Arc::new(Series::new()),
            users: Arc::new(BoundedLabels::new(max_users)),
            endpoints: Arc::new(BoundedLabels::new(MAX_ENDPOINT_LABELS)),
            max_users,
            user_labels,
            salt: *uuid::Uuid::new_v4().as_bytes(),
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
            QUOTA_REJECTIONS_TOTAL,
            Unit::Count,
            "Requests refused with 429 for a per-user quota, by quota",
        );
        d(
            HTTP_REQUESTS_TOTAL,
            Unit::Count,
            "HTTP requests served, by route template",
        );
        d(
            GENIE_MESSAGES_TOTAL,
            Unit::Count,
            "Genie questions streamed, by outcome",
        );
        d(
            RETENTION_DELETED_ROWS_TOTAL,
            Unit::Count,
            "Rows deleted by the retention task, by table",
        );
    }

    fn metadata() -> Metadata<'static> {
        Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()))
    }

    /// Adds `value` to a counter.
    pub fn count(&self, name: &'static str, labels: &Labels<'_>, value: u64) {
        self.counters
            .get(&SeriesRef { name, labels }, |key| {
                self.recorder.register_counter(key, &Self::metadata())
            })
            .increment(value);
    }

    /// Records a histogram observation.
    pub fn observe(&self, name: &'static str, labels: &Labels<'_>, value: f64) {
        self.histograms
            .get(&SeriesRef { name, labels }, |key| {
                self.recorder.register_histogram(key, &Self::metadata())
            })
            .record(value);
    }

    /// Sets a gauge.
    pub fn gauge(&self, name: &'static str, labels: &Labels<'_>, value: f64) {
        self.gauges
            .get(&SeriesRef { name, labels }, |key| {
                self.recorder.register_gauge(key, &Self::metadata())
            })
            .set(value);
    }

    /// Counts one authenticated request of `user_id`, under `_other` past the bound.
    pub fn count_user(&self, user_id: &str, route: &str) {
        let known = self.users.label(user_id, || match self.user_labels {
            UserLabels::Email => user_id.into(),
            UserLabels::Hash => self.user_label(user_id).into(),
        });
        let label = known.as_deref().unwrap_or(OTHER_USERS);
        self.count(
            AUTH_REQUESTS_BY_USER,
            &[("user_id", label), ("route", route)],
            1,
        );
    }

    /// The `endpoint` label of a serving endpoint: its name, or [`OTHER_USERS`] past
    /// [`MAX_ENDPOINT_LABELS`] names.
    #[must_use]
    pub fn endpoint_label(&self, endpoint: &str) -> Arc<str> {
        self.endpoints
            .label(endpoint, || endpoint.into())
            .unwrap_or_else(|| OTHER_USERS.into())
    }

    /// The hashed label of a user: `u` and 12 hex digits of SHA-256(salt, user id).
    #[must_use]
    pub fn user_label(&self, user_id: &str) -> String {
        let digest = Sha256::new()
            .chain_update(self.salt)
            .chain_update(user_id.as_bytes())
            .finalize();
        let mut label = String::with_capacity(13);
        label.push('u');
        for byte in &digest[..6] {
            let _ = write!(label, "{byte:02x}");
        }
        label
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
        let code;
        let status = match (attempt.status, attempt.error) {
            (Some(status), _) => {
                code = status.to_string();
                code.as_str()
            }
            (None, Some(error)) if error.kind() == dbapp_databricks::ErrorKind::Timeout => {
                "timeout"
            }
            _ => "error",
        };
        let labels = [
            ("api", attempt.api),
            ("operation", attempt.operation),
            ("status", status),
        ];
        self.metrics.count(UPSTREAM_REQUESTS_TOTAL, &labels, 1);
        self.metrics.observe(
            UPSTREAM_REQUEST_DURATION_SECONDS,
            &labels,
            attempt.elapsed.as_secs_f64(),
        );
        if attempt.api == "scim" && attempt.retry_in.is_some() {
            self.metrics.count(
                AUTH_RETRY_TOTAL,
                &[
                    ("route", &self.route),
                    ("attempt", &attempt.number.to_string()),
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
    fn users_past_the_bound_count_as_other() {
        // Arrange
        let metrics = Metrics::new(2, UserLabels::Email);

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

    #[test]
    fn hashed_user_labels_hide_the_address_and_stay_stable() {
        // Arrange
        let metrics = Metrics::new(10, UserLabels::Hash);
        let other = Metrics::new(10, UserLabels::Hash);

        // Act
        metrics.count_user("alice@example.com", "/api/user/me");
        metrics.count_user("alice@example.com", "/api/user/me");
        let text = metrics.render();

        // Assert: one series, no address, and another process's salt gives another label.
        let label = metrics.user_label("alice@example.com");
        assert!(label.starts_with('u') && label.len() == 13, "{label}");
        assert!(!text.contains("alice"), "{text}");
        assert!(
            text.contains(&format!(
                r#"auth_requests_by_user{{user_id="{label}",route="/api/user/me"}} 2"#
            )),
            "{text}"
        );
        assert_ne!(other.user_label("alice@example.com"), label);
    }
}
