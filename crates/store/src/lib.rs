//! `dbapp-store`: the persistence of dbapp, behind one user-scoped [`Store`] trait.
//!
//! What this crate owns:
//! - the [`Store`] trait (a trait object, `Arc<dyn Store>`) and its models: preferences, model
//!   inference logs, chat conversations with their messages, usage events and request
//!   performance records;
//! - [`UserId`], the only way to name whose data a call touches. Every method that reads or writes
//!   user data takes one, and every SQL statement behind it filters or writes `user_id`, so no
//!   call can reach another user's rows. On Postgres, row-level security enforces it again
//!   (`PgStore` names the caller on every connection it hands out); SQLite has only the filters.
//!   Aggregates across users are separate methods whose names start with `admin_`; the caller
//!   (the server's admin routes) decides who may call them;
//! - two implementations with one SQL text per dialect: [`postgres::PgStore`] (Postgres and
//!   Lakebase) and [`sqlite::SqliteStore`] (local work and tests), which pass one conformance
//!   suite (`tests/store/`);
//! - the migrations of both dialects (`src/migrations/{postgres,sqlite}/`), embedded in the
//!   binary with `sqlx::migrate!`: numbered, forward-only, and a no-op when run twice;
//! - [`config`]: [`StoreConfig`], the database and login parsed once from the environment;
//! - [`lakebase`]: connection settings from the `PG*` variables, and a token refresher that rotates
//!   the OAuth token Lakebase takes as a password.
//!
//! - [`setup`]: what the app's Postgres role needs (schema privileges, ownership of the tables,
//!   grants to readers, pending migrations) as a plan of statements, for `dbapp lakebase setup`
//!   and `dbapp doctor`.
//! - [`workspace`]: the real [`lakebase::TokenSource`], minting credentials through
//!   `dbapp-databricks` as the app's identity (`LAKEBASE_INSTANCE_NAME` or `LAKEBASE_ENDPOINT`).
//!
//! What it leaves to others: HTTP types and status codes (the server maps [`StoreError`] to its
//! error codes), the validation of preference keys against the API's pattern (the server does
//! it; the store accepts any non-empty key), and the workspace protocol itself
//! (`dbapp-databricks`).
//!
//! Conversations: a [`Conversation`] belongs to one user and holds up to
//! [`MAX_CONVERSATION_MESSAGES`] messages, appended in batches that are stored whole or not at
//! all, numbered from 0 in the order appended. Titles are 1 to [`MAX_TITLE_CHARS`] characters,
//! not all whitespace; a message's content and tool calls are at most [`MAX_MESSAGE_BYTES`] of
//! JSON. Another user's conversation is [`StoreError::NotFound`], exactly as a missing one, so
//! that ids cannot be probed. Shaping what a chat stream produced into messages (and truncating
//! content to fit, setting `content_truncated`) is the caller's.
//!
//! Time: every timestamp is UTC with microsecond precision (Postgres' `timestamptz` precision);
//! values are truncated to whole microseconds before they are written, so both backends give
//! back exactly what they were given. Time windows are half-open: `start <= t < end`.
//!
//! Request performance is kept three times: raw rows (`performance_metrics`), per-minute
//! rollups (`performance_rollups`: request and error counts per minute, route, method and
//! latency histogram bucket) and the same per hour (`performance_rollups_hourly`), all written
//! in one transaction by [`Store::insert_request_records`]. The admin report and time series
//! read only the rollups — a window's whole hours from the hourly rows, its partial hours at
//! each end from the minute rows (the 5-minute time series: minute rows only) — so their cost
//! and memory depend on hours (plus up to two hours of minutes) × routes × [`LATENCY_BUCKETS`],
//! never on the number of raw rows; the price is a one-minute window resolution and
//! percentiles within [`PERCENTILE_MAX_RELATIVE_ERROR`].
//!
//! Retention: every append-only table (usage events, inference history, raw request records,
//! rollups) can be purged of rows older than a cutoff ([`Store::purge_older_than`]), in
//! statements of at most [`PURGE_BATCH`] rows so that a purge never holds a long lock.

#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Duration, DurationRound, TimeDelta, Utc};
use dbapp_databricks::api::CurrentUser;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

mod aggregate;
pub mod config;
mod error;
pub mod lakebase;
pub mod postgres;
pub mod setup;
pub mod sqlite;
pub mod workspace;

pub use config::StoreConfig;
pub use error::{Resource, StoreError};

/// Most usage events one [`Store::insert_usage_events`] call accepts (`DESIGN.md`'s batch limit).
pub const MAX_USAGE_BATCH: usize = 1_000;
/// Most request records one [`Store::insert_request_records`] call accepts.
pub const MAX_REQUEST_RECORD_BATCH: usize = 10_000;
/// Largest page [`PageRequest`] allows (`API.md`'s `limit` bound).
pub const MAX_PAGE_LIMIT: u32 = 1_000;
/// Longest preference key, in bytes. The API allows 100 ASCII characters; the store's own bound
/// is looser so that it never refuses what the server accepted.
pub const MAX_PREFERENCE_KEY_BYTES: usize = 255;
/// Most messages one conversation holds; an append that would pass it stores nothing.
pub const MAX_CONVERSATION_MESSAGES: usize = 1_000;
/// Longest conversation title, in characters (Unicode scalar values).
pub const MAX_TITLE_CHARS: usize = 200;
/// Largest message: its `content` and `tool_calls`, serialised as JSON, together at most this
/// many bytes (1 MiB, the server's request body limit, so any message a client can send fits).
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// How many pages [`Store::admin_usage_summary`] reports in `top_pages`.
pub const TOP_PAGES: usize = 10;
/// The earliest instant the store keeps: 0001-01-01T00:00:00Z. Postgres' `timestamptz` goes back
/// to 4713 BC and SQLite keeps any text, but RFC 3339 (what the API and the SQLite rows write)
/// has four-digit years, so both backends keep years 1 to 9999 and refuse the rest alike.
pub const EARLIEST_TIMESTAMP_SECS: i64 = -62_135_596_800;
/// The latest instant the store keeps: 9999-12-31T23:59:59.999999Z (see
/// [`EARLIEST_TIMESTAMP_SECS`]).
pub const LATEST_TIMESTAMP_SECS: i64 = 253_402_300_799;
/// The smallest HTTP status counted as an error in performance aggregates: server errors only,
/// since 4xx answers (a missing preference, a bad request) are the API working as specified.
pub const ERROR_STATUS_MIN: u16 = 500;

/// Histogram buckets per doubling of latency: bucket `i` holds durations in
/// `[2^(i/16), 2^((i+1)/16))` ms, so a bucket is 2^(1/16) ≈ 4.43 % wide.
pub const LATENCY_BUCKETS_PER_DOUBLING: u32 = 16;
/// Durations below this (2^-10 ms, about one microsecond), zero included, share one bucket
/// `[0, LATENCY_MIN_MS)`.
pub const LATENCY_MIN_MS: f64 = 1.0 / 1024.0;
/// Durations of this (2^24 ms, about 4.7 hours) or more count in the last bucket, just below
/// it: far above any request deadline (`DBAPP_REQUEST_TIMEOUT_SECS`).
pub const LATENCY_MAX_MS: f64 = 16_777_216.0;
/// How many latency buckets there are: one below [`LATENCY_MIN_MS`], then 16 per doubling up to
/// [`LATENCY_MAX_MS`] (34 doublings). The most rows a report reads per route and method.
pub const LATENCY_BUCKETS: usize = 1 + 34 * 16;
/// The most a reported percentile differs from Postgres' exact `percentile_cont` over the raw
/// durations, relative to the exact value: one bucket width, 2^(1/16) − 1 = 0.044274 (rounded
/// up). Below [`LATENCY_MIN_MS`] the error is at most [`LATENCY_MIN_MS`] absolute instead, and
/// durations of [`LATENCY_MAX_MS`] or more are reported below it.
pub const PERCENTILE_MAX_RELATIVE_ERROR: f64 = 0.044_274;
/// Most rows one statement of [`Store::purge_older_than`] deletes.
pub const PURGE_BATCH: u32 = 10_000;

/// Sizes and timeouts of a connection pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSettings {
    /// Most open connections. For Lakebase, the instance's connection limit divided by the
    /// number of replicas is the budget.
    pub max_connections: u32,
    /// How long a query waits for a connection before failing with
    /// [`StoreError::Unavailable`]: short, so that an outage answers `DATABASE_UNAVAILABLE`
    /// quickly instead of holding requests.
    pub acquire_timeout: std::time::Duration,
    /// Connections older than this are closed when returned: 45 minutes, so that none outlives
    /// the hour-long token it logged in with by much, as Lakebase's guidance asks.
    pub max_lifetime: std::time::Duration,
    /// Idle connections are closed after this long.
    pub idle_timeout: std::time::Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: std::time::Duration::from_secs(5),
            max_lifetime: std::time::Duration::from_secs(45 * 60),
            idle_timeout: std::time::Duration::from_secs(10 * 60),
        }
    }
}

/// An authenticated user's identity: whose rows a store call may touch.
///
/// The field is private and the only constructor, [`UserId::from_authenticated_identity`], takes
/// the workspace's answer to SCIM Me ([`CurrentUser`]), never a string. What the compiler does
/// guarantee: no code can turn request input (a path segment, a header, a body field) into a
/// `UserId`, because outside `dbapp-databricks` a `CurrentUser` cannot be built field by field
/// (`#[non_exhaustive]`); in the server the only one comes from `Workspace::me` with the caller's
/// token, in the `Caller` extractor. What it does not: `CurrentUser` is `Deserialize`, so code
/// that deserialises one from arbitrary JSON can name any user (the store's tests do, on
/// purpose); review, not the type system, keeps that out of production code.
///
/// Neither a string nor anything converted from one makes a `UserId`:
///
/// ```compile_fail
/// let user = dbapp_store::UserId::from_authenticated_identity("alice".to_owned());
/// ```
///
/// ```compile_fail
/// let user: dbapp_store::UserId = "alice".to_owned().into();
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

impl UserId {
    /// The identity a SCIM Me answer names: its `userName`, the key of the user's rows. Call it
    /// only with the answer for the caller's own token (the server's `Caller` extractor does).
    #[must_use]
    pub fn from_authenticated_identity(user: &CurrentUser) -> Self {
        Self(user.user_name.clone())
    }

    /// The identity as stored in the `user_id` columns.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One stored preference of one user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preference {
    /// The key, unique per user.
    pub key: String,
    /// Any JSON value.
    pub value: Value,
    /// When the key was first written (since it last did not exist).
    pub created_at: DateTime<Utc>,
    /// When the value was last written.
    pub updated_at: DateTime<Utc>,
}

/// What [`Store::upsert_preference`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Upserted {
    /// The preference as stored now.
    pub preference: Preference,
    /// `true` when the key did not exist before (the API answers 201), `false` when its value was
    /// replaced (200).
    pub created: bool,
}

/// Outcome of a model invocation, as recorded in the inference history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InferenceStatus {
    /// The endpoint answered with predictions.
    Success,
    /// The endpoint answered with an error, or could not be called.
    Error,
    /// The invocation exceeded its `timeout_seconds`.
    Timeout,
}

impl InferenceStatus {
    /// The stored (and API) spelling: `SUCCESS`, `ERROR` or `TIMEOUT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "SUCCESS",
            Self::Error => "ERROR",
            Self::Timeout => "TIMEOUT",
        }
    }
}

impl FromStr for InferenceStatus {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "SUCCESS" => Ok(Self::Success),
            "ERROR" => Ok(Self::Error),
            "TIMEOUT" => Ok(Self::Timeout),
            other => Err(StoreError::Corrupt(format!(
                "unknown inference status {other:?}"
            ))),
        }
    }
}

/// One model invocation, success or not, as recorded in its caller's inference history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferenceLog {
    /// Unique across all users (the server makes a UUID per invocation).
    pub request_id: Uuid,
    /// The serving endpoint invoked.
    pub endpoint_name: String,
    /// How the invocation ended.
    pub status: InferenceStatus,
    /// The request's `inputs`; when [`InferenceLog::inputs_truncated`], a JSON string holding
    /// the first bytes of their serialized form instead.
    pub inputs: Value,
    /// Whether the inputs were larger than the server's history cap and `inputs` holds only the
    /// beginning of their serialized form.
    pub inputs_truncated: bool,
    /// The endpoint's predictions, on success.
    pub predictions: Option<Value>,
    /// Why it failed, for errors and timeouts.
    pub error_message: Option<String>,
    /// Wall time of the invocation.
    pub execution_time_ms: i64,
    /// When the invocation started; the history is ordered by it, newest first.
    pub created_at: DateTime<Utc>,
    /// When it ended.
    pub completed_at: Option<DateTime<Utc>>,
}

/// One of a user's chat conversations, without its messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// Unique across all users (the server makes a UUID per conversation).
    pub id: Uuid,
    /// 1 to [`MAX_TITLE_CHARS`] characters.
    pub title: String,
    /// The serving endpoint the conversation was started with.
    pub endpoint_name: String,
    /// How many messages it holds (at most [`MAX_CONVERSATION_MESSAGES`]).
    pub message_count: u32,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its title or its messages last changed; lists are ordered by it, newest first.
    pub updated_at: DateTime<Utc>,
}

/// A conversation with all its messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationDetail {
    /// The conversation.
    pub conversation: Conversation,
    /// Its messages, by position.
    pub messages: Vec<StoredMessage>,
}

/// A conversation to create with [`Store::create_conversation`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewConversation {
    /// Its id, made by the caller; reusing one is [`StoreError::Conflict`].
    pub id: Uuid,
    /// 1 to [`MAX_TITLE_CHARS`] characters, not all whitespace.
    pub title: String,
    /// The serving endpoint it is started with.
    pub endpoint_name: String,
}

/// How the stream behind an assistant message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageOutcome {
    /// The endpoint finished its answer.
    Completed,
    /// The stream ended with an error.
    Failed,
    /// The client went away before the end.
    Cancelled,
}

impl MessageOutcome {
    /// The stored (and API) spelling: `completed`, `failed` or `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

impl FromStr for MessageOutcome {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "completed" => Ok(Self::Completed),
            "failed" => Ok(Self::Failed),
            "cancelled" => Ok(Self::Cancelled),
            other => Err(StoreError::Corrupt(format!(
                "unknown message outcome {other:?}"
            ))),
        }
    }
}

/// A message to append with [`Store::append_messages`]: an OpenAI chat message, and for an
/// assistant turn what its stream did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewMessage {
    /// `system`, `developer`, `user`, `assistant` or `tool` (not empty).
    pub role: String,
    /// A string, a list of content parts, or `null` (an assistant calling tools).
    pub content: Value,
    /// The assistant's tool calls (a JSON list), when it made any.
    pub tool_calls: Option<Value>,
    /// The call a `tool` message answers.
    pub tool_call_id: Option<String>,
    /// The serving endpoint that produced an assistant message.
    pub endpoint_name: Option<String>,
    /// The endpoint's `finish_reason` (`stop`, `length`, `tool_calls`, …).
    pub finish_reason: Option<String>,
    /// How the stream of an assistant message ended.
    pub outcome: Option<MessageOutcome>,
    /// Prompt tokens the endpoint reported (≥ 0).
    pub prompt_tokens: Option<i64>,
    /// Completion tokens the endpoint reported (≥ 0).
    pub completion_tokens: Option<i64>,
    /// Wall time of the stream (≥ 0).
    pub latency_ms: Option<i64>,
    /// Time to the first generated token (≥ 0).
    pub first_token_ms: Option<i64>,
    /// The API error code that ended a failed stream, e.g. `MODEL_ERROR`.
    pub error_code: Option<String>,
    /// Its message.
    pub error_message: Option<String>,
    /// Whether the caller cut `content` to fit [`MAX_MESSAGE_BYTES`].
    pub content_truncated: bool,
}

impl NewMessage {
    /// A message with `role` and `content` only, the rest empty: a user or system message.
    #[must_use]
    pub fn new(role: impl Into<String>, content: Value) -> Self {
        Self {
            role: role.into(),
            content,
            tool_calls: None,
            tool_call_id: None,
            endpoint_name: None,
            finish_reason: None,
            outcome: None,
            prompt_tokens: None,
            completion_tokens: None,
            latency_ms: None,
            first_token_ms: None,
            error_code: None,
            error_message: None,
            content_truncated: false,
        }
    }
}

/// A message as stored: what was appended, with its place and time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// Its place in the conversation, from 0, in the order appended.
    pub position: u32,
    /// The message as appended.
    #[serde(flatten)]
    pub message: NewMessage,
    /// When it was appended.
    pub created_at: DateTime<Utc>,
}

/// A page of a list, with the number of items in the whole list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// How many items the whole list holds.
    pub total_count: i64,
}

/// Which page of a list to read: `limit` items after skipping `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    limit: u32,
    offset: u64,
}

impl PageRequest {
    /// A page of `limit` (1 to [`MAX_PAGE_LIMIT`]) items after skipping `offset`.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] for a `limit` out of range or an `offset` past `i64::MAX`.
    pub fn new(limit: u32, offset: u64) -> Result<Self, StoreError> {
        if limit == 0 || limit > MAX_PAGE_LIMIT {
            return Err(StoreError::InvalidInput(format!(
                "limit must be between 1 and {MAX_PAGE_LIMIT}, got {limit}"
            )));
        }
        if i64::try_from(offset).is_err() {
            return Err(StoreError::InvalidInput(format!(
                "offset {offset} is too large"
            )));
        }
        Ok(Self { limit, offset })
    }

    /// The number of items asked for.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The number of items skipped.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub(crate) fn limit_i64(&self) -> i64 {
        i64::from(self.limit)
    }

    pub(crate) fn offset_i64(&self) -> i64 {
        // Checked in `new`.
        i64::try_from(self.offset).unwrap_or(i64::MAX)
    }
}

impl Default for PageRequest {
    /// The API's default page: 100 items from the start.
    fn default() -> Self {
        Self {
            limit: 100,
            offset: 0,
        }
    }
}

/// One usage event sent by the UI (a page view, a click, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewUsageEvent {
    /// What happened, e.g. `page_view` or `click`.
    pub event_type: String,
    /// The page it happened on.
    pub page_name: Option<String>,
    /// The element involved.
    pub element_id: Option<String>,
    /// Whether the action succeeded.
    pub success: Option<bool>,
    /// Free-form details.
    pub metadata: Option<Value>,
    /// When it happened, by the client's clock.
    pub timestamp: DateTime<Utc>,
}

/// Usage across all users in a time window, for the admin dashboard.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct UsageSummary {
    /// Events in the window.
    pub total_events: i64,
    /// Distinct users with at least one event in the window.
    pub unique_users: i64,
    /// Events per `event_type`.
    pub by_event_type: BTreeMap<String, i64>,
    /// The [`TOP_PAGES`] pages with the most events (any event carrying that `page_name`), most
    /// first, ties by name.
    pub top_pages: Vec<PageViews>,
}

/// How many events named one page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PageViews {
    /// The page.
    pub page_name: String,
    /// Events that carried it.
    pub views: i64,
}

/// One served HTTP request, as the server's batch writer records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewRequestRecord {
    /// The route template (`/api/preferences/{key}`), never the raw path.
    pub route: String,
    /// The HTTP method.
    pub method: String,
    /// The response status.
    pub status: u16,
    /// Time from request to response.
    pub duration_ms: f64,
    /// When the request arrived.
    pub recorded_at: DateTime<Utc>,
}

/// Request counts and latency percentiles of a set of requests.
///
/// Counts and error rates are exact. Percentiles are continuous (`percentile_cont`: linear
/// interpolation between the two nearest ranks) over the latency histogram of the rollups, each
/// rank's duration interpolated inside its bucket, so they are within
/// [`PERCENTILE_MAX_RELATIVE_ERROR`] of the exact figure; both backends compute them with the
/// same Rust code from the same integer counts, so they agree to the last bit.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct PerformanceStats {
    /// Requests in the set.
    pub requests: i64,
    /// Requests answered with a status of at least [`ERROR_STATUS_MIN`].
    pub errors: i64,
    /// `errors / requests`, 0 when there were no requests.
    pub error_rate: f64,
    /// Median duration; `None` without requests.
    pub p50_ms: Option<f64>,
    /// 95th percentile duration.
    pub p95_ms: Option<f64>,
    /// 99th percentile duration.
    pub p99_ms: Option<f64>,
}

/// [`PerformanceStats`] of one route and method.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoutePerformance {
    /// The route template.
    pub route: String,
    /// The HTTP method.
    pub method: String,
    /// Its numbers.
    #[serde(flatten)]
    pub stats: PerformanceStats,
}

/// Request performance in a time window, for the admin dashboard.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct PerformanceReport {
    /// All requests of the window (of the route, when one was named).
    pub summary: PerformanceStats,
    /// One entry per route and method, most requests first, then by route and method.
    pub routes: Vec<RoutePerformance>,
}

/// One bucket of the admin time series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimeSeriesPoint {
    /// Start of the bucket (buckets are aligned on multiples of their width since the Unix epoch).
    pub timestamp: DateTime<Utc>,
    /// Requests recorded in the bucket.
    pub requests: i64,
    /// Median duration of those requests; `None` without requests.
    pub p50_ms: Option<f64>,
    /// 95th percentile duration of those requests; `None` without requests.
    pub p95_ms: Option<f64>,
    /// 99th percentile duration of those requests; `None` without requests.
    pub p99_ms: Option<f64>,
    /// Their error rate, 0 without requests.
    pub error_rate: f64,
    /// Usage events in the bucket.
    pub events: i64,
    /// Distinct users with usage events in the bucket.
    pub unique_users: i64,
}

/// The time ranges of the metrics routes (`API.md`: `24h`, `7d`, `30d`, `90d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TimeRange {
    /// The last 24 hours, in 5-minute buckets.
    #[serde(rename = "24h")]
    Last24Hours,
    /// The last 7 days, in 1-hour buckets.
    #[serde(rename = "7d")]
    Last7Days,
    /// The last 30 days, in 1-day buckets.
    #[serde(rename = "30d")]
    Last30Days,
    /// The last 90 days, in 1-day buckets.
    #[serde(rename = "90d")]
    Last90Days,
}

impl TimeRange {
    /// The API spelling: `24h`, `7d`, `30d` or `90d`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Last24Hours => "24h",
            Self::Last7Days => "7d",
            Self::Last30Days => "30d",
            Self::Last90Days => "90d",
        }
    }

    /// How far back the range reaches.
    pub fn duration(self) -> Duration {
        match self {
            Self::Last24Hours => Duration::hours(24),
            Self::Last7Days => Duration::days(7),
            Self::Last30Days => Duration::days(30),
            Self::Last90Days => Duration::days(90),
        }
    }

    /// The bucket width of its time series: 5m for 24h, 1h for 7d, 1d for 30d and 90d.
    pub fn bucket(self) -> Bucket {
        match self {
            Self::Last24Hours => Bucket::FiveMinutes,
            Self::Last7Days => Bucket::OneHour,
            Self::Last30Days | Self::Last90Days => Bucket::OneDay,
        }
    }

    /// The window `[end - duration, end)`.
    pub fn ending_at(self, end: DateTime<Utc>) -> TimeWindow {
        TimeWindow {
            start: end - self.duration(),
            end,
        }
    }
}

impl FromStr for TimeRange {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "24h" => Ok(Self::Last24Hours),
            "7d" => Ok(Self::Last7Days),
            "30d" => Ok(Self::Last30Days),
            "90d" => Ok(Self::Last90Days),
            other => Err(StoreError::InvalidInput(format!(
                "time_range must be one of 24h, 7d, 30d, 90d, got {other:?}"
            ))),
        }
    }
}

/// Bucket widths of the admin time series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Bucket {
    /// 5 minutes.
    #[serde(rename = "5m")]
    FiveMinutes,
    /// 1 hour.
    #[serde(rename = "1h")]
    OneHour,
    /// 1 day (UTC days).
    #[serde(rename = "1d")]
    OneDay,
}

impl Bucket {
    /// The API spelling: `5m`, `1h` or `1d`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FiveMinutes => "5m",
            Self::OneHour => "1h",
            Self::OneDay => "1d",
        }
    }

    /// The width in seconds.
    pub fn seconds(self) -> i64 {
        match self {
            Self::FiveMinutes => 300,
            Self::OneHour => 3_600,
            Self::OneDay => 86_400,
        }
    }

    /// The start of the bucket holding `at`.
    pub fn floor(self, at: DateTime<Utc>) -> DateTime<Utc> {
        let width = self.seconds();
        let seconds = at.timestamp().div_euclid(width) * width;
        DateTime::from_timestamp(seconds, 0).unwrap_or(at)
    }
}

/// The append-only tables that retention purges ([`Store::purge_older_than`]), each by the
/// time column named here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Retained {
    /// `usage_events`, by the server's arrival time (`received_at`), not the client's
    /// `timestamp`: a client clock set years back would otherwise have its events purged on
    /// arrival, and one set ahead would keep them forever.
    UsageEvents,
    /// `model_inference_logs`, by the invocation's start (`created_at`, the server's clock).
    InferenceLogs,
    /// `performance_metrics` (raw request records), by `recorded_at` (the server's clock).
    RequestRecords,
    /// `performance_rollups` and `performance_rollups_hourly`, by the start of the rollup's
    /// minute or hour.
    Rollups,
}

impl Retained {
    /// Every retained table.
    pub const ALL: [Self; 4] = [
        Self::UsageEvents,
        Self::InferenceLogs,
        Self::RequestRecords,
        Self::Rollups,
    ];

    /// The table's name, as logs and metric labels show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UsageEvents => "usage_events",
            Self::InferenceLogs => "model_inference_logs",
            Self::RequestRecords => "performance_metrics",
            Self::Rollups => "performance_rollups",
        }
    }
}

/// A half-open time window: `start <= t < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    /// First instant inside the window.
    pub start: DateTime<Utc>,
    /// First instant after the window.
    pub end: DateTime<Utc>,
}

impl TimeWindow {
    /// The window `[start, end)`.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] when `end` is before `start`, or either is outside the years
    /// 1 to 9999 ([`EARLIEST_TIMESTAMP_SECS`], [`LATEST_TIMESTAMP_SECS`]).
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, StoreError> {
        aggregate::check_timestamp("start_time", start)?;
        aggregate::check_timestamp("end_time", end)?;
        if end < start {
            return Err(StoreError::InvalidInput(
                "a time window cannot end before it starts".into(),
            ));
        }
        Ok(Self { start, end })
    }

    pub(crate) fn truncated(self) -> Self {
        Self {
            start: micros(self.start),
            end: micros(self.end),
        }
    }
}

/// The connections of a store's pool at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConnections {
    /// Open and waiting to be used.
    pub idle: u32,
    /// Lent to a query.
    pub in_use: u32,
}

impl PoolConnections {
    /// From a pool's `size()` (open connections) and `num_idle()`.
    #[must_use]
    pub fn of(size: u32, idle: usize) -> Self {
        let idle = u32::try_from(idle).unwrap_or(size).min(size);
        Self {
            idle,
            in_use: size - idle,
        }
    }
}

/// The user-scoped persistence of dbapp. Use it as `Arc<dyn Store>`.
///
/// Every method that touches user data takes the [`UserId`] whose rows it may read or write and
/// cannot reach any other user's; methods named `admin_*` aggregate across users and are for
/// admin routes only. Errors: [`StoreError::Unavailable`] when the database cannot be reached
/// (the server answers `DATABASE_UNAVAILABLE`), [`StoreError::InvalidInput`] for arguments out of
/// bounds, [`StoreError::Database`] for anything else the database refused.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// The backend's name, `postgres` or `sqlite`.
    fn backend(&self) -> &'static str;

    /// The Postgres store behind this one, for what only Postgres has (`setup`: roles, owners,
    /// grants); `None` for SQLite.
    fn postgres(&self) -> Option<&postgres::PgStore> {
        None
    }

    /// The connections of the store's pool now, for the `db_pool_connections` gauge: every
    /// backend has one (Lakebase, any Postgres, SQLite).
    fn pool_connections(&self) -> PoolConnections;

    /// Applies the migrations not yet applied; a no-op when all are.
    ///
    /// # Errors
    /// [`StoreError::Migrate`] or [`StoreError::Unavailable`].
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Checks that the database answers (for `/ready`).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    async fn ping(&self) -> Result<(), StoreError>;

    /// The user's preference `key`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the user has no such key.
    async fn get_preference(&self, user: &UserId, key: &str) -> Result<Preference, StoreError>;

    /// All the user's preferences, ordered by key (empty when there are none).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`], [`StoreError::Database`].
    async fn list_preferences(&self, user: &UserId) -> Result<Vec<Preference>, StoreError>;

    /// Creates or replaces the user's preference `key` in one atomic statement; however many
    /// upserts of one missing key race, exactly one reports `created`.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] for an empty key, a key over [`MAX_PREFERENCE_KEY_BYTES`], or
    /// a NUL character (Postgres cannot store one) in the key or the value.
    async fn upsert_preference(
        &self,
        user: &UserId,
        key: &str,
        value: &Value,
    ) -> Result<Upserted, StoreError>;

    /// Deletes the user's preference `key`; returns whether it existed.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`], [`StoreError::Database`].
    async fn delete_preference(&self, user: &UserId, key: &str) -> Result<bool, StoreError>;

    /// Appends one invocation to the user's inference history.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when `request_id` is already recorded;
    /// [`StoreError::InvalidInput`] for NUL characters or a negative execution time.
    async fn append_inference_log(
        &self,
        user: &UserId,
        log: &InferenceLog,
    ) -> Result<(), StoreError>;

    /// A page of the user's inference history, newest first, with its total size.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`], [`StoreError::Database`].
    async fn list_inference_logs(
        &self,
        user: &UserId,
        page: PageRequest,
    ) -> Result<Page<InferenceLog>, StoreError>;

    /// Creates a conversation of the user, with no messages.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the id is taken (by any user);
    /// [`StoreError::InvalidInput`] for a title that is empty, all whitespace or over
    /// [`MAX_TITLE_CHARS`], or NUL characters.
    async fn create_conversation(
        &self,
        user: &UserId,
        conversation: &NewConversation,
    ) -> Result<Conversation, StoreError>;

    /// Appends `messages` to the user's conversation, atomically (all or none), at the positions
    /// after its last message, and moves its `updated_at` forward. An empty batch changes nothing.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the user has no such conversation (another user's included,
    /// which is left untouched); [`StoreError::InvalidInput`] when the conversation would hold
    /// more than [`MAX_CONVERSATION_MESSAGES`] messages, for an empty role, content that is not a
    /// string, a list or null, tool calls that are not a list, a message over
    /// [`MAX_MESSAGE_BYTES`], a negative count or duration, or NUL characters.
    async fn append_messages(
        &self,
        user: &UserId,
        conversation_id: Uuid,
        messages: &[NewMessage],
    ) -> Result<(), StoreError>;

    /// The user's conversation with its messages, read in one snapshot.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the user has no such conversation.
    async fn get_conversation(
        &self,
        user: &UserId,
        id: Uuid,
    ) -> Result<ConversationDetail, StoreError>;

    /// A page of the user's conversations, most recently updated first (ties: higher id first),
    /// with their total number.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`], [`StoreError::Database`].
    async fn list_conversations(
        &self,
        user: &UserId,
        page: PageRequest,
    ) -> Result<Page<Conversation>, StoreError>;

    /// Renames the user's conversation (which moves its `updated_at` forward).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the user has no such conversation;
    /// [`StoreError::InvalidInput`] for a title as [`Store::create_conversation`] refuses it.
    async fn rename_conversation(
        &self,
        user: &UserId,
        id: Uuid,
        title: &str,
    ) -> Result<Conversation, StoreError>;

    /// Deletes the user's conversation and its messages; returns whether it existed.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`], [`StoreError::Database`].
    async fn delete_conversation(&self, user: &UserId, id: Uuid) -> Result<bool, StoreError>;

    /// Stores up to [`MAX_USAGE_BATCH`] events of the user in one transaction; returns how many.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] for more than [`MAX_USAGE_BATCH`] events (none is stored),
    /// NUL characters, or a timestamp outside the years 1 to 9999.
    async fn insert_usage_events(
        &self,
        user: &UserId,
        events: &[NewUsageEvent],
    ) -> Result<u64, StoreError>;

    /// How many usage events the user has in the window.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`], [`StoreError::Database`].
    async fn count_usage_events(
        &self,
        user: &UserId,
        window: TimeWindow,
    ) -> Result<i64, StoreError>;

    /// Usage of all users in the window (admin only).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`], [`StoreError::Database`].
    async fn admin_usage_summary(&self, window: TimeWindow) -> Result<UsageSummary, StoreError>;

    /// Stores up to [`MAX_REQUEST_RECORD_BATCH`] request records, and adds them to the
    /// per-minute rollups, in one transaction: both or neither are written.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] for a larger batch (none is stored), a negative or non-finite
    /// duration, NUL characters, or a time outside the years 1 to 9999.
    async fn insert_request_records(&self, records: &[NewRequestRecord])
    -> Result<u64, StoreError>;

    /// Request performance in the window, of one route or of all (admin only), from the
    /// rollups: a request counts when the minute it was recorded in starts inside the window
    /// (one-minute resolution), and percentiles are within [`PERCENTILE_MAX_RELATIVE_ERROR`].
    ///
    /// # Errors
    /// [`StoreError::Unavailable`], [`StoreError::Database`].
    async fn admin_performance_report(
        &self,
        window: TimeWindow,
        route: Option<&str>,
    ) -> Result<PerformanceReport, StoreError>;

    /// One point per bucket overlapping the window, oldest first, empty buckets included, with
    /// request and usage figures merged (admin only). Request figures come from the rollups,
    /// with the resolution and error of [`Store::admin_performance_report`]; usage figures count
    /// events by their `timestamp`, exactly.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] when the window would need more than 100 000 buckets.
    async fn admin_time_series(
        &self,
        window: TimeWindow,
        bucket: Bucket,
    ) -> Result<Vec<TimeSeriesPoint>, StoreError>;

    /// Deletes the rows of `table` older than `cutoff` (by the column [`Retained`] names), in
    /// statements of at most [`PURGE_BATCH`] rows, each its own transaction, until none is
    /// left; returns how many were deleted.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] for a cutoff outside the years 1 to 9999; a failure after
    /// some statements leaves their deletions in place.
    async fn purge_older_than(
        &self,
        table: Retained,
        cutoff: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
}

/// Checks that a JSON value can be stored: no NUL character (which Postgres refuses in text and
/// JSON) in any string or object key. For callers that must refuse such input before they start
/// anything that cannot be taken back.
///
/// # Errors
/// [`StoreError::InvalidInput`] naming `field`.
pub fn check_storable_json(field: &str, value: &Value) -> Result<(), StoreError> {
    aggregate::check_json(field, value)
}

/// `at` truncated to whole microseconds, the precision both backends store.
pub(crate) fn micros(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(at)
}

/// The current time, truncated to whole microseconds.
pub(crate) fn now() -> DateTime<Utc> {
    micros(Utc::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ranges_parse_their_api_spelling_and_pick_their_bucket() {
        // Arrange
        let spellings = ["24h", "7d", "30d", "90d"];

        // Act
        let ranges: Vec<TimeRange> = spellings.iter().map(|s| s.parse().unwrap()).collect();

        // Assert
        let buckets: Vec<&str> = ranges.iter().map(|r| r.bucket().as_str()).collect();
        assert_eq!(buckets, ["5m", "1h", "1d", "1d"]);
        assert!(ranges.iter().zip(spellings).all(|(r, s)| r.as_str() == s));
        assert!("1y".parse::<TimeRange>().is_err());
    }

    #[test]
    fn buckets_floor_to_multiples_of_their_width_since_the_epoch() {
        // Arrange
        let at = DateTime::parse_from_rfc3339("2026-11-22T05:07:31.5Z")
            .unwrap()
            .with_timezone(&Utc);

        // Act
        let floors: Vec<String> = [Bucket::FiveMinutes, Bucket::OneHour, Bucket::OneDay]
            .iter()
            .map(|b| b.floor(at).to_rfc3339())
            .collect();

        // Assert
        assert_eq!(
            floors,
            [
                "2026-11-22T05:05:00+00:00",
                "2026-11-22T05:00:00+00:00",
                "2026-11-22T00:00:00+00:00"
            ]
        );
    }

    #[test]
    fn page_requests_refuse_limits_out_of_bounds() {
        // Arrange / Act / Assert
        assert!(PageRequest::new(0, 0).is_err());
        assert!(PageRequest::new(1001, 0).is_err());
        assert!(PageRequest::new(1000, u64::MAX).is_err());
        assert_eq!(PageRequest::new(1000, 5).unwrap().limit(), 1000);
    }
}
