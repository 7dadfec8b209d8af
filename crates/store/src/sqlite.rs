//! [`SqliteStore`]: the [`Store`] on a SQLite file, for local work (`dbapp dev`) and tests, with
//! runtime queries in the SQLite dialect.
//!
//! Storage choices, all invisible through the trait: timestamps are `INTEGER` microseconds since
//! the Unix epoch (UTC), so comparisons and bucketing are exact integer arithmetic; JSON values
//! are text. Request aggregates sum the per-minute rollups in SQL, as the Postgres store does,
//! and the percentiles come from that histogram (see `aggregate`): no query loads one row per
//! request. Text sorts by bytes (`BINARY`), as the Postgres store's `COLLATE "C"` does.
//!
//! The database runs in WAL mode with a busy timeout: readers never block the one writer, and
//! concurrent writers wait for each other instead of failing. Multi-statement writes start with
//! `BEGIN IMMEDIATE`, which takes the write lock up front, so they never fail half way on a lock.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::AssertSqlSafe;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use uuid::Uuid;

use crate::aggregate;
use crate::{
    Bucket, Conversation, ConversationDetail, InferenceLog, NewConversation, NewMessage,
    NewRequestRecord, NewUsageEvent, PURGE_BATCH, Page, PageRequest, PageViews, PerformanceReport,
    PoolSettings, Preference, Resource, Retained, Store, StoreError, StoredMessage, TOP_PAGES,
    TimeSeriesPoint, TimeWindow, Upserted, UsageSummary, UserId,
};

/// The SQLite migrations, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/migrations/sqlite");

/// How long a statement waits for another connection's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The [`Store`] on SQLite.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// A store on an existing pool. The pool's options should set WAL mode, a busy timeout and
    /// foreign keys (deleting a conversation cascades to its messages) as [`SqliteStore::open`]
    /// does.
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// A store on the SQLite file at `path`, created when missing; connects on first use.
    pub fn open(path: &Path, settings: &PoolSettings) -> Self {
        Self::connect_lazy(SqliteConnectOptions::new().filename(path), settings)
    }

    /// A store on `options` (e.g. parsed from a `sqlite:` URL), with WAL mode, a busy timeout,
    /// and the file created when missing; connects on first use.
    pub fn connect_lazy(options: SqliteConnectOptions, settings: &PoolSettings) -> Self {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .idle_timeout(settings.idle_timeout)
            .connect_lazy_with(options);
        Self::new(pool)
    }

    /// The pool, e.g. for benchmarks.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

fn to_us(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn from_us(us: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {us} is out of range")))
}

fn parse_json(field: &str, text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("{field} is not valid JSON: {e}")))
}

#[derive(sqlx::FromRow)]
struct PreferenceRow {
    key: String,
    value: String,
    revision: i64,
    created_at: i64,
    updated_at: i64,
}

impl PreferenceRow {
    fn into_preference(self) -> Result<Preference, StoreError> {
        Ok(Preference {
            value: parse_json("value", &self.value)?,
            key: self.key,
            created_at: from_us(self.created_at)?,
            updated_at: from_us(self.updated_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct InferenceRow {
    request_id: String,
    endpoint_name: String,
    status: String,
    inputs: String,
    inputs_truncated: bool,
    predictions: Option<String>,
    error_message: Option<String>,
    execution_time_ms: i64,
    created_at: i64,
    completed_at: Option<i64>,
}

impl InferenceRow {
    fn into_log(self) -> Result<InferenceLog, StoreError> {
        Ok(InferenceLog {
            request_id: Uuid::parse_str(&self.request_id)
                .map_err(|e| StoreError::Corrupt(format!("request_id is not a UUID: {e}")))?,
            endpoint_name: self.endpoint_name,
            status: self.status.parse()?,
            inputs: parse_json("inputs", &self.inputs)?,
            inputs_truncated: self.inputs_truncated,
            predictions: self
                .predictions
                .map(|p| parse_json("predictions", &p))
                .transpose()?,
            error_message: self.error_message,
            execution_time_ms: self.execution_time_ms,
            created_at: from_us(self.created_at)?,
            completed_at: self.completed_at.map(from_us).transpose()?,
        })
    }
}

fn parse_uuid(field: &str, text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|e| StoreError::Corrupt(format!("{field} is not a UUID: {e}")))
}

#[derive(sqlx::FromRow)]
struct ConversationRow {
    id: String,
    title: String,
    endpoint_name: String,
    message_count: i64,
    created_at: i64,
    updated_at: i64,
}

impl ConversationRow {
    fn into_conversation(self) -> Result<Conversation, StoreError> {
        Ok(Conversation {
            id: parse_uuid("conversation id", &self.id)?,
            title: self.title,
            endpoint_name: self.endpoint_name,
            message_count: u32::try_from(self.message_count)
                .map_err(|_| StoreError::Corrupt("message_count is out of range".into()))?,
            created_at: from_us(self.created_at)?,
            updated_at: from_us(self.updated_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct MessageRow {
    position: i64,
    role: String,
    content: Option<String>,
    tool_calls: Option<String>,
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
    created_at: i64,
}

impl MessageRow {
    fn into_message(self) -> Result<StoredMessage, StoreError> {
        Ok(StoredMessage {
            position: u32::try_from(self.position)
                .map_err(|_| StoreError::Corrupt("position is out of range".into()))?,
            message: NewMessage {
                role: self.role,
                content: self
                    .content
                    .map(|c| parse_json("content", &c))
                    .transpose()?
                    .unwrap_or(Value::Null),
                tool_calls: self
                    .tool_calls
                    .map(|c| parse_json("tool_calls", &c))
                    .transpose()?,
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
            created_at: from_us(self.created_at)?,
        })
    }
}

const SELECT_PREFERENCE: &str = "SELECT key, value, revision, created_at, updated_at \
     FROM user_preferences WHERE user_id = ?1 AND key = ?2";

const LIST_PREFERENCES: &str = "SELECT key, value, revision, created_at, updated_at \
     FROM user_preferences WHERE user_id = ?1 ORDER BY key";

// One statement, atomic in SQLite; `revision` = 1 afterwards means it inserted the row. In
// `DO UPDATE SET`, bare column names are the existing row's.
const UPSERT_PREFERENCE: &str = "INSERT INTO user_preferences \
         (user_id, key, value, revision, created_at, updated_at) \
     VALUES (?1, ?2, ?3, 1, ?4, ?4) \
     ON CONFLICT (user_id, key) DO UPDATE SET \
         value = excluded.value, \
         revision = revision + 1, \
         updated_at = max(excluded.updated_at, updated_at) \
     RETURNING key, value, revision, created_at, updated_at";

const DELETE_PREFERENCE: &str = "DELETE FROM user_preferences WHERE user_id = ?1 AND key = ?2";

const INSERT_INFERENCE_LOG: &str = "INSERT INTO model_inference_logs \
         (user_id, request_id, endpoint_name, status, inputs, predictions, error_message, \
          execution_time_ms, created_at, completed_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

// The truncation flag lives in a table of its own (see migration 0006).
const LIST_INFERENCE_LOGS: &str = "SELECT request_id, endpoint_name, status, inputs, \
         EXISTS (SELECT 1 FROM model_inference_truncated_inputs t \
             WHERE t.request_id = model_inference_logs.request_id) AS inputs_truncated, \
         predictions, error_message, execution_time_ms, created_at, completed_at \
     FROM model_inference_logs WHERE user_id = ?1 \
     ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3";

const INSERT_TRUNCATED_INPUTS: &str =
    "INSERT INTO model_inference_truncated_inputs (request_id) VALUES (?1)";

const COUNT_INFERENCE_LOGS: &str = "SELECT count(*) FROM model_inference_logs WHERE user_id = ?1";

const INSERT_CONVERSATION: &str = "INSERT INTO conversations \
         (id, user_id, title, endpoint_name, message_count, created_at, updated_at) \
     VALUES (?2, ?1, ?3, ?4, 0, ?5, ?5) \
     RETURNING id, title, endpoint_name, message_count, created_at, updated_at";

const SELECT_CONVERSATION: &str = "SELECT id, title, endpoint_name, message_count, created_at, \
         updated_at \
     FROM conversations WHERE user_id = ?1 AND id = ?2";

const LIST_CONVERSATIONS: &str = "SELECT id, title, endpoint_name, message_count, created_at, \
         updated_at \
     FROM conversations WHERE user_id = ?1 \
     ORDER BY updated_at DESC, id DESC LIMIT ?2 OFFSET ?3";

const COUNT_CONVERSATIONS: &str = "SELECT count(*) FROM conversations WHERE user_id = ?1";

const SELECT_MESSAGE_COUNT: &str =
    "SELECT message_count FROM conversations WHERE user_id = ?1 AND id = ?2";

const INSERT_MESSAGE: &str = "INSERT INTO conversation_messages \
         (user_id, conversation_id, position, role, content, tool_calls, tool_call_id, \
          endpoint_name, finish_reason, outcome, prompt_tokens, completion_tokens, latency_ms, \
          first_token_ms, error_code, error_message, content_truncated, created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)";

const ADD_MESSAGES: &str = "UPDATE conversations \
     SET message_count = message_count + ?3, updated_at = max(updated_at, ?4) \
     WHERE user_id = ?1 AND id = ?2";

const LIST_MESSAGES: &str = "SELECT position, role, content, tool_calls, tool_call_id, \
         endpoint_name, finish_reason, outcome, prompt_tokens, completion_tokens, latency_ms, \
         first_token_ms, error_code, error_message, content_truncated, created_at \
     FROM conversation_messages WHERE user_id = ?1 AND conversation_id = ?2 ORDER BY position";

const RENAME_CONVERSATION: &str = "UPDATE conversations \
     SET title = ?3, updated_at = max(updated_at, ?4) \
     WHERE user_id = ?1 AND id = ?2 \
     RETURNING id, title, endpoint_name, message_count, created_at, updated_at";

// The messages go with it (ON DELETE CASCADE).
const DELETE_CONVERSATION: &str = "DELETE FROM conversations WHERE user_id = ?1 AND id = ?2";

const INSERT_USAGE_EVENT: &str = "INSERT INTO usage_events \
         (user_id, event_type, page_name, element_id, success, metadata, occurred_at, \
          received_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

const COUNT_USAGE_EVENTS: &str = "SELECT count(*) FROM usage_events \
     WHERE user_id = ?1 AND occurred_at >= ?2 AND occurred_at < ?3";

const USAGE_TOTALS: &str = "SELECT count(*), count(DISTINCT user_id) \
     FROM usage_events WHERE occurred_at >= ?1 AND occurred_at < ?2";

const USAGE_BY_TYPE: &str = "SELECT event_type, count(*) FROM usage_events \
     WHERE occurred_at >= ?1 AND occurred_at < ?2 GROUP BY event_type";

const USAGE_TOP_PAGES: &str = "SELECT page_name, count(*) AS views FROM usage_events \
     WHERE occurred_at >= ?1 AND occurred_at < ?2 AND page_name IS NOT NULL \
     GROUP BY page_name ORDER BY views DESC, page_name LIMIT ?3";

const INSERT_REQUEST_RECORD: &str = "INSERT INTO performance_metrics \
         (route, method, status_code, duration_ms, recorded_at) \
     VALUES (?1, ?2, ?3, ?4, ?5)";

// Rollup rows of a batch, added to what earlier batches wrote for the same key: per minute,
// then per hour. In `DO UPDATE SET`, bare column names are the existing row's.
const UPSERT_MINUTE_ROLLUP: &str = "INSERT INTO performance_rollups \
         (minute, route, method, bucket, requests, errors) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
     ON CONFLICT (minute, route, method, bucket) DO UPDATE SET \
         requests = requests + excluded.requests, errors = errors + excluded.errors";
const UPSERT_HOUR_ROLLUP: &str = "INSERT INTO performance_rollups_hourly \
         (hour, route, method, bucket, requests, errors) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
     ON CONFLICT (hour, route, method, bucket) DO UPDATE SET \
         requests = requests + excluded.requests, errors = errors + excluded.errors";

// The rollup rows of a window (`aggregate::split`): whole hours `[?2, ?3)` from the hourly
// rows, the partial hours `[?1, ?2)` and `[?3, ?4)` from the minute rows.
const WINDOW_ROLLUPS: &str = "SELECT hour AS period, route, method, bucket, requests, errors \
         FROM performance_rollups_hourly WHERE hour >= ?2 AND hour < ?3 \
     UNION ALL \
     SELECT minute, route, method, bucket, requests, errors FROM performance_rollups \
         WHERE (minute >= ?1 AND minute < ?2) OR (minute >= ?3 AND minute < ?4)";

// At most routes × methods × LATENCY_BUCKETS rows, whatever the number of requests.
fn performance_histograms() -> String {
    format!(
        "SELECT route, method, bucket, sum(requests), sum(errors) \
         FROM ({WINDOW_ROLLUPS}) WHERE ?5 IS NULL OR route = ?5 \
         GROUP BY route, method, bucket"
    )
}

// Floor division (also right for instants before 1970, where `/` would round towards zero).
// At most points × LATENCY_BUCKETS rows.
fn request_buckets() -> String {
    format!(
        "SELECT (period - ((period % ?5) + ?5) % ?5) / ?5 AS slot, bucket, \
             sum(requests), sum(errors) \
         FROM ({WINDOW_ROLLUPS}) GROUP BY slot, bucket"
    )
}

const USAGE_BUCKETS: &str = "SELECT bucket, count(*), count(DISTINCT user_id) FROM ( \
         SELECT (occurred_at - ((occurred_at % ?3) + ?3) % ?3) / ?3 AS bucket, user_id \
         FROM usage_events WHERE occurred_at >= ?1 AND occurred_at < ?2) \
     GROUP BY bucket";

/// The bounded purge statements of a retained table: `?1` the cutoff, `?2` the batch size.
fn purge_statements(table: Retained) -> &'static [&'static str] {
    match table {
        Retained::UsageEvents => &["DELETE FROM usage_events WHERE id IN \
             (SELECT id FROM usage_events WHERE received_at < ?1 LIMIT ?2)"],
        Retained::InferenceLogs => &["DELETE FROM model_inference_logs WHERE id IN \
             (SELECT id FROM model_inference_logs WHERE created_at < ?1 LIMIT ?2)"],
        Retained::RequestRecords => &["DELETE FROM performance_metrics WHERE id IN \
             (SELECT id FROM performance_metrics WHERE recorded_at < ?1 LIMIT ?2)"],
        Retained::Rollups => &[
            "DELETE FROM performance_rollups WHERE (minute, route, method, bucket) IN \
             (SELECT minute, route, method, bucket FROM performance_rollups \
              WHERE minute < ?1 LIMIT ?2)",
            "DELETE FROM performance_rollups_hourly WHERE (hour, route, method, bucket) IN \
             (SELECT hour, route, method, bucket FROM performance_rollups_hourly \
              WHERE hour < ?1 LIMIT ?2)",
        ],
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn pool_connections(&self) -> crate::PoolConnections {
        crate::PoolConnections::of(self.pool.size(), self.pool.num_idle())
    }

    #[tracing::instrument(skip_all)]
    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(user_id = %user))]
    #[tracing::instrument(name = "store.get_preference", skip_all, fields(db.system.name = "sqlite"))]
    async fn get_preference(&self, user: &UserId, key: &str) -> Result<Preference, StoreError> {
        let row: Option<PreferenceRow> = sqlx::query_as(SELECT_PREFERENCE)
            .bind(user.as_str())
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.ok_or(StoreError::NotFound(Resource::Preference))?
            .into_preference()
    }

    #[tracing::instrument(skip_all, fields(user_id = %user))]
    #[tracing::instrument(name = "store.list_preferences", skip_all, fields(db.system.name = "sqlite"))]
    async fn list_preferences(&self, user: &UserId) -> Result<Vec<Preference>, StoreError> {
        let rows: Vec<PreferenceRow> = sqlx::query_as(LIST_PREFERENCES)
            .bind(user.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(PreferenceRow::into_preference)
            .collect()
    }

    #[tracing::instrument(skip_all, fields(user_id = %user))]
    #[tracing::instrument(name = "store.upsert_preference", skip_all, fields(db.system.name = "sqlite"))]
    async fn upsert_preference(
        &self,
        user: &UserId,
        key: &str,
        value: &Value,
    ) -> Result<Upserted, StoreError> {
        aggregate::check_key(key)?;
        aggregate::check_json("value", value)?;
        let row: PreferenceRow = sqlx::query_as(UPSERT_PREFERENCE)
            .bind(user.as_str())
            .bind(key)
            .bind(value.to_string())
            .bind(to_us(crate::now()))
            .fetch_one(&self.pool)
            .await?;
        let created = row.revision == 1;
        Ok(Upserted {
            preference: row.into_preference()?,
            created,
        })
    }

    #[tracing::instrument(skip_all, fields(user_id = %user))]
    #[tracing::instrument(name = "store.delete_preference", skip_all, fields(db.system.name = "sqlite"))]
    async fn delete_preference(&self, user: &UserId, key: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(DELETE_PREFERENCE)
            .bind(user.as_str())
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    #[tracing::instrument(skip_all, fields(user_id = %user, request_id = %log.request_id))]
    #[tracing::instrument(name = "store.append_inference_log", skip_all, fields(db.system.name = "sqlite"))]
    async fn append_inference_log(
        &self,
        user: &UserId,
        log: &InferenceLog,
    ) -> Result<(), StoreError> {
        aggregate::check_inference_log(log)?;
        let request_id = log.request_id.to_string();
        // The log and its truncation flag are one write (the flag has a table of its own).
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(INSERT_INFERENCE_LOG)
            .bind(user.as_str())
            .bind(&request_id)
            .bind(&log.endpoint_name)
            .bind(log.status.as_str())
            .bind(log.inputs.to_string())
            .bind(log.predictions.as_ref().map(Value::to_string))
            .bind(log.error_message.as_deref())
            .bind(log.execution_time_ms)
            .bind(to_us(log.created_at))
            .bind(log.completed_at.map(to_us))
            .execute(&mut *tx)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::Conflict("inference log"),
                other => other,
            })?;
        if log.inputs_truncated {
            sqlx::query(INSERT_TRUNCATED_INPUTS)
                .bind(&request_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(user_id = %user))]
    #[tracing::instrument(name = "store.list_inference_logs", skip_all, fields(db.system.name = "sqlite"))]
    async fn list_inference_logs(
        &self,
        user: &UserId,
        page: PageRequest,
    ) -> Result<Page<InferenceLog>, StoreError> {
        let rows: Vec<InferenceRow> = sqlx::query_as(LIST_INFERENCE_LOGS)
            .bind(user.as_str())
            .bind(page.limit_i64())
            .bind(page.offset_i64())
            .fetch_all(&self.pool)
            .await?;
        let total_count: i64 = sqlx::query_scalar(COUNT_INFERENCE_LOGS)
            .bind(user.as_str())
            .fetch_one(&self.pool)
            .await?;
        let items = rows
            .into_iter()
            .map(InferenceRow::into_log)
            .collect::<Result<_, _>>()?;
        Ok(Page { items, total_count })
    }

    #[tracing::instrument(skip_all, fields(user_id = %user, conversation_id = %conversation.id))]
    #[tracing::instrument(name = "store.create_conversation", skip_all, fields(db.system.name = "sqlite"))]
    async fn create_conversation(
        &self,
        user: &UserId,
        conversation: &NewConversation,
    ) -> Result<Conversation, StoreError> {
        aggregate::check_new_conversation(conversation)?;
        let row: ConversationRow = sqlx::query_as(INSERT_CONVERSATION)
            .bind(user.as_str())
            .bind(conversation.id.to_string())
            .bind(&conversation.title)
            .bind(&conversation.endpoint_name)
            .bind(to_us(crate::now()))
            .fetch_one(&self.pool)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::Conflict("conversation"),
                other => other,
            })?;
        row.into_conversation()
    }

    #[tracing::instrument(skip_all, fields(user_id = %user, %conversation_id, messages = messages.len()))]
    #[tracing::instrument(name = "store.append_messages", skip_all, fields(db.system.name = "sqlite"))]
    async fn append_messages(
        &self,
        user: &UserId,
        conversation_id: Uuid,
        messages: &[NewMessage],
    ) -> Result<(), StoreError> {
        aggregate::check_messages(messages)?;
        let id = conversation_id.to_string();
        // The write lock up front: the count read here stays true until the commit, so two
        // appends to one conversation can never pick the same positions.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let held: Option<i64> = sqlx::query_scalar(SELECT_MESSAGE_COUNT)
            .bind(user.as_str())
            .bind(&id)
            .fetch_optional(&mut *tx)
            .await?;
        let held = held.ok_or(StoreError::NotFound(Resource::Conversation))?;
        aggregate::check_room(held, messages.len())?;
        if messages.is_empty() {
            return Ok(());
        }
        let now = to_us(crate::now());
        for (position, message) in (held..).zip(messages) {
            sqlx::query(INSERT_MESSAGE)
                .bind(user.as_str())
                .bind(&id)
                .bind(position)
                .bind(&message.role)
                .bind((!message.content.is_null()).then(|| message.content.to_string()))
                .bind(message.tool_calls.as_ref().map(Value::to_string))
                .bind(message.tool_call_id.as_deref())
                .bind(message.endpoint_name.as_deref())
                .bind(message.finish_reason.as_deref())
                .bind(message.outcome.map(|o| o.as_str()))
                .bind(message.prompt_tokens)
                .bind(message.completion_tokens)
                .bind(message.latency_ms)
                .bind(message.first_token_ms)
                .bind(message.error_code.as_deref())
                .bind(message.error_message.as_deref())
                .bind(message.content_truncated)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(ADD_MESSAGES)
            .bind(user.as_str())
            .bind(&id)
            .bind(messages.len() as i64)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(user_id = %user, conversation_id = %id))]
    #[tracing::instrument(name = "store.get_conversation", skip_all, fields(db.system.name = "sqlite"))]
    async fn get_conversation(
        &self,
        user: &UserId,
        id: Uuid,
    ) -> Result<ConversationDetail, StoreError> {
        let id = id.to_string();
        // One read transaction: in WAL mode its reads share one snapshot, so the messages match
        // the conversation's count even while an append commits.
        let mut tx = self.pool.begin().await?;
        let row: Option<ConversationRow> = sqlx::query_as(SELECT_CONVERSATION)
            .bind(user.as_str())
            .bind(&id)
            .fetch_optional(&mut *tx)
            .await?;
        let conversation = row
            .ok_or(StoreError::NotFound(Resource::Conversation))?
            .into_conversation()?;
        let rows: Vec<MessageRow> = sqlx::query_as(LIST_MESSAGES)
            .bind(user.as_str())
            .bind(&id)
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
    #[tracing::instrument(name = "store.list_conversations", skip_all, fields(db.system.name = "sqlite"))]
    async fn list_conversations(
        &self,
        user: &UserId,
        page: PageRequest,
    ) -> Result<Page<Conversation>, StoreError> {
        let rows: Vec<ConversationRow> = sqlx::query_as(LIST_CONVERSATIONS)
            .bind(user.as_str())
            .bind(page.limit_i64())
            .bind(page.offset_i64())
            .fetch_all(&self.pool)
            .await?;
        let total_count: i64 = sqlx::query_scalar(COUNT_CONVERSATIONS)
            .bind(user.as_str())
            .fetch_one(&self.pool)
            .await?;
        let items = rows
            .into_iter()
            .map(ConversationRow::into_conversation)
            .collect::<Result<_, _>>()?;
        Ok(Page { items, total_count })
    }

    #[tracing::instrument(skip_all, fields(user_id = %user, conversation_id = %id))]
    #[tracing::instrument(name = "store.rename_conversation", skip_all, fields(db.system.name = "sqlite"))]
    async fn rename_conversation(
        &self,
        user: &UserId,
        id: Uuid,
        title: &str,
    ) -> Result<Conversation, StoreError> {
        aggregate::check_title(title)?;
        let row: Option<ConversationRow> = sqlx::query_as(RENAME_CONVERSATION)
            .bind(user.as_str())
            .bind(id.to_string())
            .bind(title)
            .bind(to_us(crate::now()))
            .fetch_optional(&self.pool)
            .await?;
        row.ok_or(StoreError::NotFound(Resource::Conversation))?
            .into_conversation()
    }

    #[tracing::instrument(skip_all, fields(user_id = %user, conversation_id = %id))]
    #[tracing::instrument(name = "store.delete_conversation", skip_all, fields(db.system.name = "sqlite"))]
    async fn delete_conversation(&self, user: &UserId, id: Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query(DELETE_CONVERSATION)
            .bind(user.as_str())
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    #[tracing::instrument(skip_all, fields(user_id = %user, events = events.len()))]
    #[tracing::instrument(name = "store.insert_usage_events", skip_all, fields(db.system.name = "sqlite"))]
    async fn insert_usage_events(
        &self,
        user: &UserId,
        events: &[NewUsageEvent],
    ) -> Result<u64, StoreError> {
        aggregate::check_usage_events(events)?;
        if events.is_empty() {
            return Ok(0);
        }
        let received_at = to_us(crate::now());
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for event in events {
            sqlx::query(INSERT_USAGE_EVENT)
                .bind(user.as_str())
                .bind(&event.event_type)
                .bind(event.page_name.as_deref())
                .bind(event.element_id.as_deref())
                .bind(event.success)
                .bind(event.metadata.as_ref().map(Value::to_string))
                .bind(to_us(event.timestamp))
                .bind(received_at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(events.len() as u64)
    }

    #[tracing::instrument(skip_all, fields(user_id = %user))]
    #[tracing::instrument(name = "store.count_usage_events", skip_all, fields(db.system.name = "sqlite"))]
    async fn count_usage_events(
        &self,
        user: &UserId,
        window: TimeWindow,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(COUNT_USAGE_EVENTS)
            .bind(user.as_str())
            .bind(to_us(window.start))
            .bind(to_us(window.end))
            .fetch_one(&self.pool)
            .await?)
    }

    #[tracing::instrument(skip_all)]
    #[tracing::instrument(name = "store.admin_usage_summary", skip_all, fields(db.system.name = "sqlite"))]
    async fn admin_usage_summary(&self, window: TimeWindow) -> Result<UsageSummary, StoreError> {
        let (start, end) = (to_us(window.start), to_us(window.end));
        let (total_events, unique_users): (i64, i64) = sqlx::query_as(USAGE_TOTALS)
            .bind(start)
            .bind(end)
            .fetch_one(&self.pool)
            .await?;
        let by_type: Vec<(String, i64)> = sqlx::query_as(USAGE_BY_TYPE)
            .bind(start)
            .bind(end)
            .fetch_all(&self.pool)
            .await?;
        let pages: Vec<(String, i64)> = sqlx::query_as(USAGE_TOP_PAGES)
            .bind(start)
            .bind(end)
            .bind(TOP_PAGES as i64)
            .fetch_all(&self.pool)
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
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for record in records {
            sqlx::query(INSERT_REQUEST_RECORD)
                .bind(&record.route)
                .bind(&record.method)
                .bind(i64::from(record.status))
                .bind(record.duration_ms)
                .bind(to_us(record.recorded_at))
                .execute(&mut *tx)
                .await?;
        }
        for (statement, period_us) in [
            (UPSERT_MINUTE_ROLLUP, aggregate::MINUTE_US),
            (UPSERT_HOUR_ROLLUP, aggregate::HOUR_US),
        ] {
            for rollup in aggregate::rollups(records, period_us) {
                sqlx::query(statement)
                    .bind(to_us(rollup.period))
                    .bind(rollup.route)
                    .bind(rollup.method)
                    .bind(rollup.bucket)
                    .bind(rollup.requests)
                    .bind(rollup.errors)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(records.len() as u64)
    }

    #[tracing::instrument(skip_all, fields(route = route.unwrap_or("*")))]
    #[tracing::instrument(name = "store.admin_performance_report", skip_all, fields(db.system.name = "sqlite"))]
    async fn admin_performance_report(
        &self,
        window: TimeWindow,
        route: Option<&str>,
    ) -> Result<PerformanceReport, StoreError> {
        let split = aggregate::split(window, true);
        let rows: Vec<aggregate::RouteBucketRow> =
            sqlx::query_as(AssertSqlSafe(performance_histograms()))
                .bind(to_us(split.start))
                .bind(to_us(split.hours_start))
                .bind(to_us(split.hours_end))
                .bind(to_us(split.end))
                .bind(route)
                .fetch_all(&self.pool)
                .await?;
        Ok(aggregate::report(rows))
    }

    #[tracing::instrument(skip_all, fields(bucket = bucket.as_str()))]
    #[tracing::instrument(name = "store.admin_time_series", skip_all, fields(db.system.name = "sqlite"))]
    async fn admin_time_series(
        &self,
        window: TimeWindow,
        bucket: Bucket,
    ) -> Result<Vec<TimeSeriesPoint>, StoreError> {
        let range = aggregate::bucket_range(window, bucket)?;
        let width_us = bucket.seconds() * 1_000_000;
        let (start, end) = (to_us(window.start), to_us(window.end));
        let split = aggregate::split(window, bucket.seconds() % 3_600 == 0);
        let requests: Vec<aggregate::TimeBucketRow> =
            sqlx::query_as(AssertSqlSafe(request_buckets()))
                .bind(to_us(split.start))
                .bind(to_us(split.hours_start))
                .bind(to_us(split.hours_end))
                .bind(to_us(split.end))
                .bind(width_us)
                .fetch_all(&self.pool)
                .await?;
        let usage: Vec<(i64, i64, i64)> = sqlx::query_as(USAGE_BUCKETS)
            .bind(start)
            .bind(end)
            .bind(width_us)
            .fetch_all(&self.pool)
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
        let mut deleted = 0;
        for &statement in purge_statements(table) {
            loop {
                let done = sqlx::query(statement)
                    .bind(to_us(cutoff))
                    .bind(i64::from(PURGE_BATCH))
                    .execute(&self.pool)
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
