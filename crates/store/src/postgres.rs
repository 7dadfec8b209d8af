//! [`PgStore`]: the [`Store`] on Postgres (Lakebase in production), with runtime queries in the
//! Postgres dialect.
//!
//! Every statement that reads or writes user data binds `user_id` as its first parameter and
//! filters or writes it, and runs on a connection acting for that user ([`Scope`]): the tables'
//! row-level-security policies (migration 0008) then enforce the same isolation in Postgres, so
//! a statement that forgot its filter would still see only the caller's rows. Naming the scope
//! costs no round trip of its own: it is the statement that checks a pooled connection is alive
//! before it is handed out, in place of sqlx's ping ([`PgStore::connection`]). Admin aggregates
//! and retention use the explicit, logged admin bypass. Request aggregates sum the per-minute rollups in SQL (one row per
//! route, method and latency bucket, or per time bucket and latency bucket) and compute the
//! percentiles from that histogram in `aggregate`, as the SQLite store does; sorting of text
//! uses `COLLATE "C"` (byte order), so results do not depend on the database's collation and
//! match the SQLite store's. Timestamps are `timestamptz`.
//!
//! The pool is built by the caller: [`PgStore::connect_lazy`] for a static URL, or
//! [`crate::lakebase`] for Lakebase, which keeps rotating the pool's password.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, Connection, Postgres};
use uuid::Uuid;

use crate::aggregate;
use crate::lakebase::{RefreshTask, TokenRefresher};
use crate::{
    Bucket, Conversation, ConversationDetail, InferenceLog, NewConversation, NewMessage,
    NewRequestRecord, NewUsageEvent, PURGE_BATCH, Page, PageRequest, PageViews, PerformanceReport,
    PoolSettings, Preference, Resource, Retained, Store, StoreError, StoredMessage, TOP_PAGES,
    TimeSeriesPoint, TimeWindow, Upserted, UsageSummary, UserId, micros,
};

/// The Postgres migrations, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/migrations/postgres");

/// How often a connection whose login was refused is retried (see [`PgStore::conn`]).
const LOGIN_RETRIES: u32 = 3;

/// The [`Store`] on Postgres.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The Lakebase token refresher of this pool, when it has one. Shared by the clones, and it
    /// stops the refresher when the last clone is dropped.
    lakebase: Option<Arc<RefreshTask>>,
}

impl PgStore {
    /// A store on an existing pool.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            lakebase: None,
        }
    }

    pub(crate) fn with_refresher(pool: PgPool, task: RefreshTask) -> Self {
        Self {
            pool,
            lakebase: Some(Arc::new(task)),
        }
    }

    /// The Lakebase token refresher, for a store built by [`crate::lakebase::connect`].
    pub fn token_refresher(&self) -> Option<&Arc<TokenRefresher>> {
        self.lakebase.as_ref().map(|task| task.refresher())
    }

    /// A store whose pool connects on first use, so a server can start while the database is
    /// down (its `/ready` then reports it).
    pub fn connect_lazy(options: PgConnectOptions, settings: &PoolSettings) -> Self {
        Self::new(pool_options(settings).connect_lazy_with(options))
    }

    /// The pool, e.g. for [`crate::lakebase`] to rotate its password or for benchmarks. A
    /// connection taken from it directly still carries the scope the store last named on it
    /// (and is not checked before it is handed out): user data goes through
    /// [`Self::connection`].
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Whom a connection acts for under the row-level-security policies of the user tables
/// (migration 0008): `dbapp.user_id` and `dbapp.scope`, set on the connection each time the store
/// hands it out.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// The caller: only their rows of the user tables are visible or writable.
    User(&'a UserId),
    /// Every user's rows, for admin aggregates and retention: the explicit bypass, logged as
    /// `store.rls_bypass` with its reason.
    Admin(&'static str),
    /// No user: the user tables show no rows. For the request telemetry tables (which have no
    /// policy), migrations and the readiness ping.
    Nobody,
}

/// Names the connection's caller (or the admin bypass, or nobody) for the policies. Session
/// settings rather than `SET LOCAL` (which would need a transaction, and so two more round trips
/// around a single statement): they hold until the store hands the connection out again, which
/// always overwrites both, before any other statement runs on it.
const SET_SCOPE: &str =
    "SELECT set_config('dbapp.user_id', $1, false), set_config('dbapp.scope', $2, false)";

impl PgStore {
    /// A connection acting for `scope`: every statement of the store runs on one, so the
    /// policies hide other users' rows even from a statement that forgets its `user_id` filter.
    ///
    /// [`SET_SCOPE`] is the only statement the store sends before its own, and it replaces
    /// sqlx's ping of an idle connection (the pool is built with `test_before_acquire(false)`,
    /// see [`pool_options`]), so RLS adds no round trip. It doubles as that liveness check: a
    /// connection that cannot run it (the server restarted, an idle session was cut) is
    /// discarded and another one taken, as the pool does after a failed ping; the statement
    /// changes nothing, so running it again is harmless.
    pub async fn connection(
        &self,
        scope: Scope<'_>,
    ) -> Result<PoolConnection<Postgres>, StoreError> {
        let (user, admin) = match scope {
            Scope::User(user) => (user.as_str(), ""),
            Scope::Admin(reason) => {
                tracing::info!(event = "store.rls_bypass", reason);
                ("", "admin")
            }
            Scope::Nobody => ("", ""),
        };
        let mut attempt = 1;
        loop {
            let mut conn = self.conn().await?;
            let named = sqlx::query(SET_SCOPE)
                .bind(user)
                .bind(admin)
                .execute(&mut *conn)
                .await;
            match named {
                Ok(_) => return Ok(conn),
                // Any failure: the statement changes nothing, so running it again is harmless.
                Err(error) => self.discard(conn, error, &mut attempt, |_| true)?,
            }
        }
    }

    /// After `error` on `conn`: closes the connection and returns so that the caller tries again
    /// on another, while attempts remain and `retry` accepts the error; else the error. Every
    /// idle connection may be dead (after a server restart), and one more opens anew.
    fn discard(
        &self,
        mut conn: PoolConnection<Postgres>,
        error: sqlx::Error,
        attempt: &mut u32,
        retry: fn(&sqlx::Error) -> bool,
    ) -> Result<(), StoreError> {
        if *attempt > self.pool.options().get_max_connections() || !retry(&error) {
            return Err(error.into());
        }
        tracing::debug!(event = "store.connection_discarded", attempt = *attempt, %error);
        // Closed, not returned to the pool (sqlx bounds the close by a timeout).
        conn.close_on_drop();
        *attempt += 1;
        Ok(())
    }

    /// A connection from the pool, its scope not yet named: only [`Self::connection`] takes
    /// one. A login the server refused is retried a few times, briefly apart: a rotating
    /// password (Lakebase) can be refused at the instant it is replaced, and a refused login ran
    /// no statement, so retrying it cannot repeat a write.
    async fn conn(&self) -> Result<PoolConnection<Postgres>, StoreError> {
        let mut attempt = 0;
        loop {
            match self.pool.acquire().await {
                Ok(conn) => return Ok(conn),
                Err(error) if attempt < LOGIN_RETRIES && login_refused(&error) => {
                    attempt += 1;
                    tracing::debug!(event = "store.login_retry", attempt);
                    tokio::time::sleep(Duration::from_millis(100) * attempt).await;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }
}

/// The connection is gone rather than the statement refused: I/O or protocol failures, and
/// Postgres' connection-exception (08) and operator-intervention (57P) classes, e.g. an
/// administrator's termination. A write is tried again only after one of these.
fn connection_lost(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(e) => e
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}

/// Postgres `invalid_password` or `invalid_authorization_specification`.
fn login_refused(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if matches!(e.code().as_deref(), Some("28P01" | "28000")))
}

/// Pool options from the settings; `max_lifetime` recycles connections before their login token
/// is an hour old. No ping before a connection is handed out: [`PgStore::connection`]'s scope
/// statement checks it instead, in the same round trip.
pub(crate) fn pool_options(settings: &PoolSettings) -> PgPoolOptions {
    PgPoolOptions::new()
        .test_before_acquire(false)
        .max_connections(settings.max_connections)
        .min_connections(0)
        .acquire_timeout(settings.acquire_timeout)
        .max_lifetime(settings.max_lifetime)
        .idle_timeout(settings.idle_timeout)
}

#[derive(sqlx::FromRow)]
struct PreferenceRow {
    key: String,
    value: Json<Value>,
    revision: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl PreferenceRow {
    fn into_preference(self) -> Preference {
        Preference {
            key: self.key,
            value: self.value.0,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct InferenceRow {
    request_id: Uuid,
    endpoint_name: String,
    status: String,
    inputs: Json<Value>,
    inputs_truncated: bool,
    predictions: Option<Json<Value>>,
    error_message: Option<String>,
    execution_time_ms: i64,
    created_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
}

impl InferenceRow {
    fn into_log(self) -> Result<InferenceLog, StoreError> {
        Ok(InferenceLog {
            request_id: self.request_id,
            endpoint_name: self.endpoint_name,
            status: self.status.parse()?,
            inputs: self.inputs.0,
            inputs_truncated: self.inputs_truncated,
            predictions: self.predictions.map(|p| p.0),
            error_message: self.error_message,
            execution_time_ms: self.execution_time_ms,
            created_at: self.created_at,
            completed_at: self.completed_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct ConversationRow {
    id: Uuid,
    title: String,
    endpoint_name: String,
    message_count: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl ConversationRow {
    fn into_conversation(self) -> Result<Conversation, StoreError> {
        Ok(Conversation {
            id: self.id,
            title: self.title,
            endpoint_name: self.endpoint_name,
            message_count: u32::try_from(self.message_count)
                .map_err(|_| StoreError::Corrupt("message_count is out of range".into()))?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct MessageRow {
    position: i32,
    role: String,
    content: Option<Json<Value>>,
    tool_calls: Option<Json<Value>>,
    tool_call_id: Option<String>,
    endpoint_name: Option<String>,
    finish_reason: Option<String>,
    outcome: Option<String>,
    prompt_tokens: Option<i64>,
    completion_tokens: Option<i64>,
    latency_ms: Option<i64>,
    first_token_ms: Option<i64>,
    error_code: Option<String>,
    error_message: Option<String>,
    content_truncated: bool,
    created_at: DateTime<Utc>,
}

impl MessageRow {
    fn into_message(self) -> Result<StoredMessage, StoreError> {
        Ok(StoredMessage {
            position: u32::try_from(self.position)
                .map_err(|_| StoreError::Corrupt("position is out of range".into()))?,
            message: NewMessage {
                role: self.role,
                content: self.content.map_or(Value::Null, |c| c.0),
                tool_calls: self.tool_calls.map(|c| c.0),
                tool_call_id: self.tool_call_id,
                endpoint_name: self.endpoint_name,
                finish_reason: self.finish_reason,
                outcome: self.outcome.map(|o| o.parse()).transpose()?,
                prompt_tokens: self.prompt_tokens,
                completion_tokens: self.completion_tokens,
                latency_ms: self.latency_ms,
                first_token_ms: self.first_token_ms,
                error_code: self.error_code,
                error_message: self.error_message,
                content_truncated: self.content_truncated,
            },
            created_at: self.created_at,
        })
    }
}

const SELECT_PREFERENCE: &str = "SELECT key, value, revision, created_at, updated_at \
     FROM user_preferences WHERE user_id = $1 AND key = $2";

const LIST_PREFERENCES: &str = "SELECT key, value, revision, created_at, updated_at \
     FROM user_preferences WHERE user_id = $1 ORDER BY key COLLATE \"C\"";

// One statement, so Postgres' ON CONFLICT makes it atomic; `revision` = 1 afterwards means this
// statement inserted the row. GREATEST keeps `updated_at` from moving back when racing writers'
// clocks were read in a different order than their writes happened.
//
// The hot write names its caller for the policies inside its own statement, in the same round
// trip, instead of after PgStore::connection's scope statement: the row's `user_id` IS the value
// `set_config` returns, so the setting is in place before the row exists, and Postgres checks a
// policy on a row (WITH CHECK, and USING on the row in conflict) only once it exists. `true`
// makes the setting local to the statement's own transaction: the connection goes back to the
// pool as it came. The statement writes only the caller's row by construction (its conflict
// target includes `user_id`), even on a connection last used for an admin aggregate.
const UPSERT_PREFERENCE: &str = "INSERT INTO user_preferences \
         (user_id, key, value, revision, created_at, updated_at) \
     SELECT set_config('dbapp.user_id', $1, true), $2, $3, 1, $4, $4 \
     ON CONFLICT (user_id, key) DO UPDATE SET \
         value = EXCLUDED.value, \
         revision = user_preferences.revision + 1, \
         updated_at = GREATEST(EXCLUDED.updated_at, user_preferences.updated_at) \
     RETURNING key, value, revision, created_at, updated_at";

const DELETE_PREFERENCE: &str = "DELETE FROM user_preferences WHERE user_id = $1 AND key = $2";

const INSERT_INFERENCE_LOG: &str = "INSERT INTO model_inference_logs \
         (user_id, request_id, endpoint_name, status, inputs, predictions, error_message, \
          execution_time_ms, created_at, completed_at, inputs_truncated) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

const LIST_INFERENCE_LOGS: &str = "SELECT request_id, endpoint_name, status, inputs, \
         inputs_truncated, predictions, error_message, execution_time_ms, created_at, \
         completed_at \
     FROM model_inference_logs WHERE user_id = $1 \
     ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3";

const COUNT_INFERENCE_LOGS: &str = "SELECT count(*) FROM model_inference_logs WHERE user_id = $1";

const INSERT_CONVERSATION: &str = "INSERT INTO conversations \
         (user_id, id, title, endpoint_name, message_count, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, 0, $5, $5) \
     RETURNING id, title, endpoint_name, message_count, created_at, updated_at";

const SELECT_CONVERSATION: &str = "SELECT id, title, endpoint_name, message_count, created_at, \
         updated_at \
     FROM conversations WHERE user_id = $1 AND id = $2";

const LIST_CONVERSATIONS: &str = "SELECT id, title, endpoint_name, message_count, created_at, \
         updated_at \
     FROM conversations WHERE user_id = $1 \
     ORDER BY updated_at DESC, id DESC LIMIT $2 OFFSET $3";

const COUNT_CONVERSATIONS: &str = "SELECT count(*) FROM conversations WHERE user_id = $1";

// FOR UPDATE: concurrent appends to one conversation queue here, so each reads the count the
// previous one left and no two pick the same positions.
const LOCK_MESSAGE_COUNT: &str =
    "SELECT message_count FROM conversations WHERE user_id = $1 AND id = $2 FOR UPDATE";

// One statement per batch: the arrays are unnested into rows, numbered from the count held.
const INSERT_MESSAGES: &str = "INSERT INTO conversation_messages \
         (user_id, conversation_id, position, role, content, tool_calls, tool_call_id, \
          endpoint_name, finish_reason, outcome, prompt_tokens, completion_tokens, latency_ms, \
          first_token_ms, error_code, error_message, content_truncated, created_at) \
     SELECT $1, $2, ($3::int4 + m.ord - 1)::int4, m.role, m.content::jsonb, m.tool_calls::jsonb, \
         m.tool_call_id, m.endpoint_name, m.finish_reason, m.outcome, m.prompt_tokens, \
         m.completion_tokens, m.latency_ms, m.first_token_ms, m.error_code, m.error_message, \
         m.content_truncated, $4 \
     FROM UNNEST($5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], \
         $11::text[], $12::int8[], $13::int8[], $14::int8[], $15::int8[], $16::text[], \
         $17::text[], $18::bool[]) WITH ORDINALITY \
         AS m(role, content, tool_calls, tool_call_id, endpoint_name, finish_reason, outcome, \
             prompt_tokens, completion_tokens, latency_ms, first_token_ms, error_code, \
             error_message, content_truncated, ord)";

const ADD_MESSAGES: &str = "UPDATE conversations \
     SET message_count = message_count + $3, updated_at = GREATEST(updated_at, $4) \
     WHERE user_id = $1 AND id = $2";

const LIST_MESSAGES: &str = "SELECT position, role, content, tool_calls, tool_call_id, \
         endpoint_name, finish_reason, outcome, prompt_tokens, completion_tokens, latency_ms, \
         first_token_ms, error_code, error_message, content_truncated, created_at \
     FROM conversation_messages WHERE user_id = $1 AND conversation_id = $2 ORDER BY position";

const RENAME_CONVERSATION: &str = "UPDATE conversations \
     SET title = $3, updated_at = GREATEST(updated_at, $4) \
     WHERE user_id = $1 AND id = $2 \
     RETURNING id, title, endpoint_name, message_count, created_at, updated_at";

// The messages go with it (ON DELETE CASCADE).
const DELETE_CONVERSATION: &str = "DELETE FROM conversations WHERE user_id = $1 AND id = $2";

// One statement per batch: the arrays are unnested into rows.
const INSERT_USAGE_EVENTS: &str = "INSERT INTO usage_events \
         (user_id, event_type, page_name, element_id, success, metadata, occurred_at) \
     SELECT $1, e.event_type, e.page_name, e.element_id, e.success, e.metadata::jsonb, \
         e.occurred_at \
     FROM UNNEST($2::text[], $3::text[], $4::text[], $5::bool[], $6::text[], \
         $7::timestamptz[]) \
         AS e(event_type, page_name, element_id, success, metadata, occurred_at)";

const COUNT_USAGE_EVENTS: &str = "SELECT count(*) FROM usage_events \
     WHERE user_id = $1 AND occurred_at >= $2 AND occurred_at < $3";

const USAGE_TOTALS: &str = "SELECT count(*) AS total, count(DISTINCT user_id) AS users \
     FROM usage_events WHERE occurred_at >= $1 AND occurred_at < $2";

const USAGE_BY_TYPE: &str = "SELECT event_type, count(*) FROM usage_events \
     WHERE occurred_at >= $1 AND occurred_at < $2 GROUP BY event_type";

const USAGE_TOP_PAGES: &str = "SELECT page_name, count(*) AS views FROM usage_events \
     WHERE occurred_at >= $1 AND occurred_at < $2 AND page_name IS NOT NULL \
     GROUP BY page_name ORDER BY views DESC, page_name COLLATE \"C\" LIMIT $3";

const INSERT_REQUEST_RECORDS: &str = "INSERT INTO performance_metrics \
         (route, method, status_code, duration_ms, recorded_at) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::int4[], $4::float8[], $5::timestamptz[])";

// Rollup rows of a batch, added to what earlier batches wrote for the same key: per minute,
// then per hour.
const UPSERT_MINUTE_ROLLUPS: &str = "INSERT INTO performance_rollups AS r \
         (minute, route, method, bucket, requests, errors) \
     SELECT * FROM UNNEST($1::timestamptz[], $2::text[], $3::text[], $4::int2[], $5::int8[], \
         $6::int8[]) \
     ON CONFLICT (minute, route, method, bucket) DO UPDATE SET \
         requests = r.requests + EXCLUDED.requests, errors = r.errors + EXCLUDED.errors";
const UPSERT_HOUR_ROLLUPS: &str = "INSERT INTO performance_rollups_hourly AS r \
         (hour, route, method, bucket, requests, errors) \
     SELECT * FROM UNNEST($1::timestamptz[], $2::text[], $3::text[], $4::int2[], $5::int8[], \
         $6::int8[]) \
     ON CONFLICT (hour, route, method, bucket) DO UPDATE SET \
         requests = r.requests + EXCLUDED.requests, errors = r.errors + EXCLUDED.errors";

// The rollup rows of a window (`aggregate::split`): whole hours `[$2, $3)` from the hourly
// rows, the partial hours `[$1, $2)` and `[$3, $4)` from the minute rows.
const WINDOW_ROLLUPS: &str = "SELECT hour AS period, route, method, bucket, requests, errors \
         FROM performance_rollups_hourly WHERE hour >= $2 AND hour < $3 \
     UNION ALL \
     SELECT minute, route, method, bucket, requests, errors FROM performance_rollups \
         WHERE (minute >= $1 AND minute < $2) OR (minute >= $3 AND minute < $4)";

// At most routes × methods × LATENCY_BUCKETS rows, whatever the number of requests.
fn performance_histograms() -> String {
    format!(
        "SELECT route, method, bucket, sum(requests)::int8, sum(errors)::int8 \
         FROM ({WINDOW_ROLLUPS}) r WHERE $5::text IS NULL OR route = $5 \
         GROUP BY route, method, bucket"
    )
}

// Buckets are numbered by whole widths since the epoch; `extract(epoch …)` is numeric, so the
// division is exact and agrees with SQLite's integer division of microseconds. At most
// points × LATENCY_BUCKETS rows.
fn request_buckets() -> String {
    format!(
        "SELECT floor(extract(epoch FROM period) * 1000000 / $5::bigint)::bigint AS slot, \
             bucket, sum(requests)::int8, sum(errors)::int8 \
         FROM ({WINDOW_ROLLUPS}) r GROUP BY 1, 2"
    )
}

const USAGE_BUCKETS: &str = "SELECT \
         floor(extract(epoch FROM occurred_at) * 1000000 / $3::bigint)::bigint AS bucket, \
         count(*) AS events, count(DISTINCT user_id) AS users \
     FROM usage_events WHERE occurred_at >= $1 AND occurred_at < $2 GROUP BY 1";

/// The bounded purge statements of a retained table: `$1` the cutoff, `$2` the batch size.
fn purge_statements(table: Retained) -> &'static [&'static str] {
    match table {
        Retained::UsageEvents => &["DELETE FROM usage_events WHERE id IN \
             (SELECT id FROM usage_events WHERE received_at < $1 LIMIT $2)"],
        Retained::InferenceLogs => &["DELETE FROM model_inference_logs WHERE id IN \
             (SELECT id FROM model_inference_logs WHERE created_at < $1 LIMIT $2)"],
        Retained::RequestRecords => &["DELETE FROM performance_metrics WHERE id IN \
             (SELECT id FROM performance_metrics WHERE recorded_at < $1 LIMIT $2)"],
        Retained::Rollups => &[
            "DELETE FROM performance_rollups WHERE (minute, route, method, bucket) IN \
             (SELECT minute, route, method, bucket FROM performance_rollups \
              WHERE minute < $1 LIMIT $2)",
            "DELETE FROM performance_rollups_hourly WHERE (hour, route, method, bucket) IN \
             (SELECT hour, route, method, bucket FROM performance_rollups_hourly \
              WHERE hour < $1 LIMIT $2)",
        ],
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn postgres(&self) -> Option<&PgStore> {
        Some(self)
    }

    fn pool_connections(&self) -> crate::PoolConnections {
        crate::PoolConnections::of(self.pool.size(), self.pool.num_idle())
    }

    #[tracing::instrument(skip_all)]
    async fn migrate(&self) -> Result<(), StoreError> {
        // On the pool itself: the migrations touch no user's rows, and run at start, on a pool
        // with no idle connection that could have been cut.
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn ping(&self) -> Result<(), StoreError> {
        // Naming the scope is a statement the server answered.
        self.connection(Scope::Nobody).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(user_id = %user))]
    #[tracing::instrument(name = "store.get_preference", skip_all, fields(db.system.name = "postgresql"))]
    async fn get_preference(&self, user: &UserId, key: &str) -> Result<Preference, StoreError> {
        let row: Option<PreferenceRow> = sqlx::query_as(SELECT_PREFERENCE)
            .bind(user.as_str())
            .bind(key)
            .fetch_optional(&mut *self.connection(Scope::User(user)).await?)
            .await?;
        row.map(PreferenceRow::into_preference)
            .ok_or(StoreError::NotFound(Resource::Preference))
    }

    #[tracing::instrument(skip_all, fields(user_id = %user))]
    #[tracing::instrument(name = "store.list_preferences", skip_all, fields(db.system.name = "postgresql"))]
    async fn list_preferences(&self, user: &UserId) -> Result<Vec<Preference>, StoreError> {
        let rows: Vec<PreferenceRow> = sqlx::query_as(LIST_PREFERENCES)
            .bind(user.as_str())
            .fetch_all(&mut *self.connection(Scope::User(user)).await?)
            .await?;
        Ok(rows
            .into_iter()
            .map(PreferenceRow::into_preference)
            .collect())
    }

    #[tracing::instrument(skip_all, fields(user_id = %user))]
    #[tracing::instrument(name = "store.upsert_preference", skip_all, fields(db.system.name = "postgresql"))]
    async fn upsert_preference(
        &self,
        user: &UserId,
        key: &str,
        value: &Value,
    ) -> Result<Upserted, StoreError> {
        aggregate::check_key(key)?;
        aggregate::check_json("value", value)?;
        // Names its caller itself (UPSERT_PREFERENCE), so it runs on a connection as taken from
        // the pool, and is tried again on another when that one turns out to be dead.
        let now = crate::now();
        let mut attempt = 1;
        let row: PreferenceRow = loop {
            let mut conn = self.conn().await?;
            let upserted = sqlx::query_as(UPSERT_PREFERENCE)
                .bind(user.as_str())
                .bind(key)
                .bind(Json(value))
                .bind(now)
                .fetch_one(&mut *conn)
                .await;
            match upserted {
                Ok(row) => break row,
                Err(error) => self.discard(conn, error, &mut attempt, connection_lost)?,
            }
        };
        let created = row.revision == 1;
        Ok(Upserted {
            preference: row.into_preference(),
            created,
        })
    }

    #[tracing::instrument(skip_all, fields(user_id = %user))]
    #[tracing::instrument(name = "store.delete_preference", skip_all, fields(db.system.name = "postgresql"))]
    async fn delete_preference(&self, user: &UserId, key: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(DELETE_PREFERENCE)
            .bind(user.as_str())
            .bind(key)
            .execute(&mut *self.connection(Scope::User(user)).await?)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    #[tracing::instrument(skip_all, fields(user_id = %user, request_id = %log.request_id))]
    #[tracing::instrument(name = "store.append_inference_log", skip_all, fields(db.system.name = "postgresql"))]
    async fn append_inference_log(
        &self,
        user: &UserId,
        log: &InferenceLog,
    ) -> Result<(), StoreError> {
        aggregate::check_inference_log(log)?;
        sqlx::query(INSERT_INFERENCE_LOG)
            .bind(user.as_str())
            .bind(log.request_id)
            .bind(&log.endpoint_name)
            .bind(log.status.as_str())
            .bind(Json(&log.inputs))
            .bind(log.predictions.as_ref().map(Json))
            .bind(log.error_message.as_deref())
            .bind(log.execution_time_ms)
            .bind(micros(log.created_at))
            .bind(log.completed_at.map(micros))
            .bind(log.inputs_truncated)
            .execute(&mut *self.connection(Scope::User(user)).await?)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::Conflict("inference log"),
                other => other,
            })?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(user_id = %user))]
    #[tracing::instrument(name = "store.list_inference_logs", skip_all, fields(db.system.name = "postgresql"))]
    async fn list_inference_logs(
        &self,
        user: &UserId,
        page: PageRequest,
    ) -> Result<Page<InferenceLog>, StoreError> {
        let mut conn = self.connection(Scope::User(user)).await?;
        let rows: Vec<InferenceRow> = sqlx::query_as(LIST_INFERENCE_LOGS)
            .bind(user.as_str())
            .bind(page.limit_i64())
            .bind(page.offset_i64())
            .fetch_all(&mut *conn)
            .await?;
        let total_count: i64 = sqlx::query_scalar(COUNT_INFERENCE_LOGS)
            .bind(user.as_str())
            .fetch_one(&mut *conn)
            .await?;
        let items = rows
            .into_iter()
            .map(InferenceRow::into_log)
            .collect::<Result<_, _>>()?;
        Ok(Page { items, total_count })
    }

    #[tracing::instrument(skip_all, fields(user_id = %user, conversation_id = %conversation.id))]
    #[tracing::instrument(name = "store.create_conversation", skip_all, fields(db.system.name = "postgresql"))]
    async fn create_conversation(
        &self,
        user: &UserId,
        conversation: &NewConversation,
    ) -> Result<Conversation, StoreError> {
        aggregate::check_new_conversation(conversation)?;
        let row: ConversationRow = sqlx::query_as(INSERT_CONVERSATION)
            .bind(user.as_str())
            .bind(conversation.id)
            .bind(&conversation.title)
            .bind(&conversation.endpoint_name)
            .bind(crate::now())
            .fetch_one(&mut *self.connection(Scope::User(user)).await?)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::Conflict("conversation"),
                other => other,
            })?;
        row.into_conversation()
    }

    #[tracing::instrument(skip_all, fields(user_id = %user, %conversation_id, messages = messages.len()))]
    #[tracing::instrument(name = "store.append_messages", skip_all, fields(db.system.name = "postgresql"))]
    async fn append_messages(
        &self,
        user: &UserId,
        conversation_id: Uuid,
        messages: &[NewMessage],
    ) -> Result<(), StoreError> {
        aggregate::check_messages(messages)?;
        let mut conn = self.connection(Scope::User(user)).await?;
        let mut tx = conn.begin().await?;
        let held: Option<i32> = sqlx::query_scalar(LOCK_MESSAGE_COUNT)
            .bind(user.as_str())
            .bind(conversation_id)
            .fetch_optional(&mut *tx)
            .await?;
        let held = held.ok_or(StoreError::NotFound(Resource::Conversation))?;
        aggregate::check_room(i64::from(held), messages.len())?;
        if messages.is_empty() {
            return Ok(());
        }
        let now = crate::now();
        let texts = |field: fn(&NewMessage) -> Option<String>| -> Vec<Option<String>> {
            messages.iter().map(field).collect()
        };
        let figures = |field: fn(&NewMessage) -> Option<i64>| -> Vec<Option<i64>> {
            messages.iter().map(field).collect()
        };
        sqlx::query(INSERT_MESSAGES)
            .bind(user.as_str())
            .bind(conversation_id)
            .bind(held)
            .bind(now)
            .bind(texts(|m| Some(m.role.clone())))
            .bind(texts(|m| {
                (!m.content.is_null()).then(|| m.content.to_string())
            }))
            .bind(texts(|m| m.tool_calls.as_ref().map(Value::to_string)))
            .bind(texts(|m| m.tool_call_id.clone()))
            .bind(texts(|m| m.endpoint_name.clone()))
            .bind(texts(|m| m.finish_reason.clone()))
            .bind(texts(|m| m.outcome.map(|o| o.as_str().to_owned())))
            .bind(figures(|m| m.prompt_tokens))
            .bind(figures(|m| m.completion_tokens))
            .bind(figures(|m| m.latency_ms))
            .bind(figures(|m| m.first_token_ms))
            .bind(texts(|m| m.error_code.clone()))
            .bind(texts(|m| m.error_message.clone()))
            .bind(
                messages
                    .iter()
                    .map(|m| m.content_truncated)
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *tx)
            .await?;
        sqlx::query(ADD_MESSAGES)
            .bind(user.as_str())
            .bind(conversation_id)
            .bind(i32::try_from(messages.len()).unwrap_or(i32::MAX))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(user_id = %user, conversation_id = %id))]
    #[tracing::instrument(name = "store.get_conversation", skip_all, fields(db.system.name = "postgresql"))]
    async fn get_conversation(
        &self,
        user: &UserId,
        id: Uuid,
    ) -> Result<ConversationDetail, StoreError> {
        let mut conn = self.connection(Scope::User(user)).await?;
        // One snapshot for both reads, so the messages match the conversation's count even
        // while an append commits.
        let mut tx = conn
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await?;
        let row: Option<ConversationRow> = sqlx::query_as(SELECT_CONVERSATION)
            .bind(user.as_str())
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let conversation = row
            .ok_or(StoreError::NotFound(Resource::Conversation))?
            .into_conversation()?;
        let rows: Vec<MessageRow> = sqlx::query_as(LIST_MESSAGES)
            .bind(user.as_str())
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let messages = rows
            .into_iter()
            .map(MessageRow::into_message)
            .collect::<Result<_, _>>()?;
        Ok(ConversationDetail {
            conversation,
            messages,
        })
    }

    #[tracing::instrument(skip_all, fields(user_id = %user))]
    #[tracing::instrument(name = "store.list_conversations", skip_all, fields(db.system.name = "postgresql"))]
    async fn list_conversations(
        &self,
        user: &UserId,
        page: PageRequest,
    ) -> Result<Page<Conversation>, StoreError> {
        let mut conn = self.connection(Scope::User(user)).await?;
        let rows: Vec<ConversationRow> = sqlx::query_as(LIST_CONVERSATIONS)
            .bind(user.as_str())
            .bind(page.limit_i64())
            .bind(page.offset_i64())
            .fetch_all(&mut *conn)
            .await?;
        let total_count: i64 = sqlx::query_scalar(COUNT_CONVERSATIONS)
            .bind(user.as_str())
            .fetch_one(&mut *conn)
            .await?;
        let items = rows
            .into_iter()
            .map(ConversationRow::into_conversation)
            .collect::<Result<_, _>>()?;
        Ok(Page { items, total_count })
    }

    #[tracing::instrument(skip_all, fields(user_id = %user, conversation_id = %id))]
    #[tracing::instrument(name = "store.rename_conversation", skip_all, fields(db.system.name = "postgresql"))]
    async fn rename_conversation(
        &self,
        user: &UserId,
        id: Uuid,
        title: &str,
    ) -> Result<Conversation, StoreError> {
        aggregate::check_title(title)?;
        let row: Option<ConversationRow> = sqlx::query_as(RENAME_CONVERSATION)
            .bind(user.as_str())
            .bind(id)
            .bind(title)
            .bind(crate::now())
            .fetch_optional(&mut *self.connection(Scope::User(user)).await?)
            .await?;
        row.ok_or(StoreError::NotFound(Resource::Conversation))?
            .into_conversation()
    }

    #[tracing::instrument(skip_all, fields(user_id = %user, conversation_id = %id))]
    #[tracing::instrument(name = "store.delete_conversation", skip_all, fields(db.system.name = "postgresql"))]
    async fn delete_conversation(&self, user: &UserId, id: Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query(DELETE_CONVERSATION)
            .bind(user.as_str())
            .bind(id)
            .execute(&mut *self.connection(Scope::User(user)).await?)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    #[tracing::instrument(skip_all, fields(user_id = %user, events = events.len()))]
    #[tracing::instrument(name = "store.insert_usage_events", skip_all, fields(db.system.name = "postgresql"))]
    async fn insert_usage_events(
        &self,
        user: &UserId,
        events: &[NewUsageEvent],
    ) -> Result<u64, StoreError> {
        aggregate::check_usage_events(events)?;
        if events.is_empty() {
            return Ok(0);
        }
        let metadata: Vec<Option<String>> = events
            .iter()
            .map(|e| e.metadata.as_ref().map(Value::to_string))
            .collect();
        let done = sqlx::query(INSERT_USAGE_EVENTS)
            .bind(user.as_str())
            .bind(
                events
                    .iter()
                    .map(|e| e.event_type.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(
                events
                    .iter()
                    .map(|e| e.page_name.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(
                events
                    .iter()
                    .map(|e| e.element_id.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(events.iter().map(|e| e.success).collect::<Vec<_>>())
            .bind(metadata)
            .bind(
                events
                    .iter()
                    .map(|e| micros(e.timestamp))
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *self.connection(Scope::User(user)).await?)
            .await?;
        Ok(done.rows_affected())
    }

    #[tracing::instrument(skip_all, fields(user_id = %user))]
    #[tracing::instrument(name = "store.count_usage_events", skip_all, fields(db.system.name = "postgresql"))]
    async fn count_usage_events(
        &self,
        user: &UserId,
        window: TimeWindow,
    ) -> Result<i64, StoreError> {
        let window = window.truncated();
        Ok(sqlx::query_scalar(COUNT_USAGE_EVENTS)
            .bind(user.as_str())
            .bind(window.start)
            .bind(window.end)
            .fetch_one(&mut *self.connection(Scope::User(user)).await?)
            .await?)
    }

    #[tracing::instrument(skip_all)]
    #[tracing::instrument(name = "store.admin_usage_summary", skip_all, fields(db.system.name = "postgresql"))]
    async fn admin_usage_summary(&self, window: TimeWindow) -> Result<UsageSummary, StoreError> {
        let mut conn = self.connection(Scope::Admin("usage summary")).await?;
        let window = window.truncated();
        let (total_events, unique_users): (i64, i64) = sqlx::query_as(USAGE_TOTALS)
            .bind(window.start)
            .bind(window.end)
            .fetch_one(&mut *conn)
            .await?;
        let by_type: Vec<(String, i64)> = sqlx::query_as(USAGE_BY_TYPE)
            .bind(window.start)
            .bind(window.end)
            .fetch_all(&mut *conn)
            .await?;
        let pages: Vec<(String, i64)> = sqlx::query_as(USAGE_TOP_PAGES)
            .bind(window.start)
            .bind(window.end)
            .bind(TOP_PAGES as i64)
            .fetch_all(&mut *conn)
            .await?;
        Ok(UsageSummary {
            total_events,
            unique_users,
            by_event_type: by_type.into_iter().collect(),
            top_pages: pages
                .into_iter()
                .map(|(page_name, views)| PageViews { page_name, views })
                .collect(),
        })
    }

    #[tracing::instrument(skip_all, fields(records = records.len()))]
    async fn insert_request_records(
        &self,
        records: &[NewRequestRecord],
    ) -> Result<u64, StoreError> {
        aggregate::check_request_records(records)?;
        if records.is_empty() {
            return Ok(0);
        }
        let mut conn = self.connection(Scope::Nobody).await?;
        let mut tx = conn.begin().await?;
        let done = sqlx::query(INSERT_REQUEST_RECORDS)
            .bind(records.iter().map(|r| r.route.clone()).collect::<Vec<_>>())
            .bind(records.iter().map(|r| r.method.clone()).collect::<Vec<_>>())
            .bind(
                records
                    .iter()
                    .map(|r| i32::from(r.status))
                    .collect::<Vec<_>>(),
            )
            .bind(records.iter().map(|r| r.duration_ms).collect::<Vec<_>>())
            .bind(
                records
                    .iter()
                    .map(|r| micros(r.recorded_at))
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *tx)
            .await?;
        for (statement, period_us) in [
            (UPSERT_MINUTE_ROLLUPS, aggregate::MINUTE_US),
            (UPSERT_HOUR_ROLLUPS, aggregate::HOUR_US),
        ] {
            let rollups = aggregate::rollups(records, period_us);
            sqlx::query(statement)
                .bind(rollups.iter().map(|r| r.period).collect::<Vec<_>>())
                .bind(rollups.iter().map(|r| r.route).collect::<Vec<_>>())
                .bind(rollups.iter().map(|r| r.method).collect::<Vec<_>>())
                .bind(rollups.iter().map(|r| r.bucket).collect::<Vec<_>>())
                .bind(rollups.iter().map(|r| r.requests).collect::<Vec<_>>())
                .bind(rollups.iter().map(|r| r.errors).collect::<Vec<_>>())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    #[tracing::instrument(skip_all, fields(route = route.unwrap_or("*")))]
    #[tracing::instrument(name = "store.admin_performance_report", skip_all, fields(db.system.name = "postgresql"))]
    async fn admin_performance_report(
        &self,
        window: TimeWindow,
        route: Option<&str>,
    ) -> Result<PerformanceReport, StoreError> {
        let split = aggregate::split(window.truncated(), true);
        let rows: Vec<aggregate::RouteBucketRow> =
            sqlx::query_as(AssertSqlSafe(performance_histograms()))
                .bind(split.start)
                .bind(split.hours_start)
                .bind(split.hours_end)
                .bind(split.end)
                .bind(route)
                .fetch_all(&mut *self.connection(Scope::Nobody).await?)
                .await?;
        Ok(aggregate::report(rows))
    }

    #[tracing::instrument(skip_all, fields(bucket = bucket.as_str()))]
    #[tracing::instrument(name = "store.admin_time_series", skip_all, fields(db.system.name = "postgresql"))]
    async fn admin_time_series(
        &self,
        window: TimeWindow,
        bucket: Bucket,
    ) -> Result<Vec<TimeSeriesPoint>, StoreError> {
        let window = window.truncated();
        let range = aggregate::bucket_range(window, bucket)?;
        let mut conn = self.connection(Scope::Admin("time series")).await?;
        let width_us = bucket.seconds() * 1_000_000;
        let split = aggregate::split(window, bucket.seconds() % 3_600 == 0);
        let requests: Vec<aggregate::TimeBucketRow> =
            sqlx::query_as(AssertSqlSafe(request_buckets()))
                .bind(split.start)
                .bind(split.hours_start)
                .bind(split.hours_end)
                .bind(split.end)
                .bind(width_us)
                .fetch_all(&mut *conn)
                .await?;
        let usage: Vec<(i64, i64, i64)> = sqlx::query_as(USAGE_BUCKETS)
            .bind(window.start)
            .bind(window.end)
            .bind(width_us)
            .fetch_all(&mut *conn)
            .await?;
        let requests = aggregate::request_buckets(requests);
        let usage = aggregate::usage_buckets(usage);
        Ok(aggregate::dense_series(range, bucket, &requests, &usage))
    }

    #[tracing::instrument(skip_all, fields(table = table.as_str()))]
    async fn purge_older_than(
        &self,
        table: Retained,
        cutoff: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        aggregate::check_timestamp("cutoff", cutoff)?;
        let scope = match table {
            Retained::UsageEvents | Retained::InferenceLogs => Scope::Admin("retention"),
            Retained::RequestRecords | Retained::Rollups => Scope::Nobody,
        };
        let mut conn = self.connection(scope).await?;
        let mut deleted = 0;
        for &statement in purge_statements(table) {
            loop {
                let done = sqlx::query(statement)
                    .bind(micros(cutoff))
                    .bind(i64::from(PURGE_BATCH))
                    .execute(&mut *conn)
                    .await?;
                deleted += done.rows_affected();
                if done.rows_affected() < u64::from(PURGE_BATCH) {
                    break;
                }
            }
        }
        Ok(deleted)
    }
}
