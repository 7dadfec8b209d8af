//! The life of a submitted statement (`shared/UPSTREAM.md` §4.4): the `PENDING → RUNNING →
//! terminal` clock, result chunking and the JSON shapes of a statement, its manifest and its
//! result chunks, plus the types a result is made of ([`ColumnInfo`], [`ResultSet`], [`SqlError`]).
//! Parsing and evaluating the SQL is `crate::engine`'s job, whose header documents what SQL the
//! emulator understands; this module knows nothing of HTTP either: request validation, waiting,
//! and "only the submitter may see it" live in `routes::statements`.
//!
//! # Failures
//!
//! A statement that cannot run is reported as state `FAILED` with `error_code` `BAD_REQUEST`, a
//! message that starts with the Spark error class in brackets and ends with `SQLSTATE: <code>`
//! (and `(line L, pos P)` for a syntax error, `pos` counting characters from 0 as Spark does),
//! and `status.sql_state`. The classes are listed in `crate::engine`.
//!
//! # Results
//!
//! `data_array` holds strings or `null` only, whatever the column type; `crate::engine` renders
//! them. Column metadata has `type_text` upper-cased as the real service reports it
//! (`decimal(10,2)` → `DECIMAL(10,2)`; struct field names keep their case) and
//! `type_precision`/`type_scale` for decimals.
//!
//! Results are cut into chunks of `sql_chunk_rows` rows. An empty result has one chunk with
//! `row_count` 0 and no `data_array` (`total_chunk_count` 1), which is what clients that loop over
//! `chunks` handle without a special case.
//!
//! # Lifecycle
//!
//! A statement is evaluated once, when it is submitted (the fixture never changes while the
//! emulator runs, so the outcome is already known), and that outcome is revealed by the clock: the
//! statement is `PENDING` for `sql_pending_ms`, then `RUNNING` for `sql_running_ms`, then
//! `SUCCEEDED` or `FAILED`. No task runs in the background; the state is a function of the time.
//! The timings and chunk size are those of the moment of submission. A cancel before the terminal
//! state makes it `CANCELED` for good; after, it changes nothing. The emulator never moves a
//! statement to `CLOSED`. A succeeded statement holds its rendered rows (at most
//! `engine::MAX_RESULT_ROWS`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::state::Principal;

/// The most statements kept; past it the oldest are forgotten, so a benchmark cannot grow the map.
pub(crate) const STATEMENT_CAPACITY: usize = 10_000;

/// How many statements one eviction forgets: a batch, so that evicting stays cheap per insert.
const EVICTION_BATCH: usize = STATEMENT_CAPACITY / 10;

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a statement failed, as Spark would report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SqlError {
    /// Spark error class, e.g. `TABLE_OR_VIEW_NOT_FOUND`.
    class: &'static str,
    detail: String,
    sql_state: &'static str,
    /// `(line, pos)` of a parse error: line from 1, pos in characters from 0.
    position: Option<(usize, usize)>,
}

impl SqlError {
    /// An error of Spark class `class` with SQLSTATE `sql_state`.
    pub(crate) fn new(
        class: &'static str,
        sql_state: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            class,
            detail: detail.into(),
            sql_state,
            position: None,
        }
    }

    /// The same error, pointing at `(line, pos)` of the statement.
    pub(crate) fn at(self, position: Option<(usize, usize)>) -> Self {
        Self { position, ..self }
    }

    /// `TABLE_OR_VIEW_NOT_FOUND`, quoting the name as written.
    pub(crate) fn table_not_found(parts: &[String]) -> Self {
        let name = parts
            .iter()
            .map(|p| format!("`{}`", p.replace('`', "``")))
            .collect::<Vec<_>>()
            .join(".");
        Self::new(
            "TABLE_OR_VIEW_NOT_FOUND",
            "42P01",
            format!(
                "The table or view {name} cannot be found. Verify the spelling and correctness of \
                 the schema and catalog. If you did not qualify the name with a schema, verify the \
                 current_schema() output, or qualify the name with the correct schema and catalog."
            ),
        )
    }

    /// `INSUFFICIENT_PERMISSIONS` for reading the table `catalog.schema.table`.
    pub(crate) fn insufficient_permissions(catalog: &str, schema: &str, table: &str) -> Self {
        Self::new(
            "INSUFFICIENT_PERMISSIONS",
            "42501",
            format!(
                "Insufficient privileges: User does not have SELECT on Table \
                 '{catalog}.{schema}.{table}'."
            ),
        )
    }

    /// The Spark error class, e.g. `PARSE_SYNTAX_ERROR`.
    #[cfg(test)]
    pub(crate) fn class(&self) -> &'static str {
        self.class
    }

    /// The SQLSTATE, e.g. `42P01`.
    pub(crate) fn sql_state(&self) -> &'static str {
        self.sql_state
    }
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{}] {} SQLSTATE: {}",
            self.class, self.detail, self.sql_state
        )?;
        if let Some((line, pos)) = self.position {
            write!(f, " (line {line}, pos {pos})")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

/// A column of the result, as the manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ColumnInfo {
    name: String,
    position: usize,
    type_name: String,
    type_text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    type_precision: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    type_scale: Option<u32>,
}

impl ColumnInfo {
    /// A column named `name` at `position`, with the API's type name and text.
    pub(crate) fn new(
        name: String,
        position: usize,
        type_name: String,
        type_text: String,
        type_precision: Option<u32>,
        type_scale: Option<u32>,
    ) -> Self {
        Self {
            name,
            position,
            type_name,
            type_text,
            type_precision,
            type_scale,
        }
    }
}

/// `(precision, scale)` of `decimal(p,s)`; Spark's default `DECIMAL(10,0)` when not written.
pub(crate) fn decimal_precision_scale(type_text: &str) -> (u32, u32) {
    let inside = type_text
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(inside, _)| inside);
    let mut numbers = inside
        .into_iter()
        .flat_map(|i| i.split(','))
        .map(|n| n.trim().parse::<u32>().ok());
    // Spark's maximum is 38 for both; clamping keeps a bad fixture from asking for huge strings.
    let precision = numbers.next().flatten().unwrap_or(10).min(38);
    let scale = numbers.next().flatten().unwrap_or(0).min(precision);
    (precision, scale)
}

/// Upper-cases the type keywords of a type text, leaving struct field names (a word followed by
/// `:`) and backquoted names as written, as Spark prints `STRUCT<a: INT>`.
pub(crate) fn upper_type_text(type_text: &str) -> String {
    let mut out = String::with_capacity(type_text.len());
    let mut rest = type_text;
    while let Some(c) = rest.chars().next() {
        if c == '`' {
            let close = rest[1..].find('`').map_or(rest.len(), |i| i + 2);
            out.push_str(&rest[..close]);
            rest = &rest[close..];
        } else if c.is_alphanumeric() || c == '_' {
            let len = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let (word, after) = rest.split_at(len);
            if after.trim_start().starts_with(':') {
                out.push_str(word);
            } else {
                out.push_str(&word.to_uppercase());
            }
            rest = after;
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// The rows of a successful statement, rendered as `data_array` strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResultSet {
    columns: Vec<ColumnInfo>,
    rows: Vec<Vec<Option<String>>>,
    /// Whether `row_limit` or the engine's row cap removed rows.
    truncated: bool,
}

impl ResultSet {
    /// A result of `columns` and `rows`, `truncated` when rows were cut off.
    pub(crate) fn new(
        columns: Vec<ColumnInfo>,
        rows: Vec<Vec<Option<String>>>,
        truncated: bool,
    ) -> Self {
        Self {
            columns,
            rows,
            truncated,
        }
    }

    /// Columns, rows and the truncation flag, for tests that look inside a result.
    #[cfg(test)]
    pub(crate) fn parts(&self) -> (&[ColumnInfo], &[Vec<Option<String>>], bool) {
        (&self.columns, &self.rows, self.truncated)
    }

    /// Rows in the result.
    fn len(&self) -> usize {
        self.rows.len()
    }

    /// Result rows `from..to` as `data_array` rows.
    fn rows(&self, from: usize, to: usize) -> Vec<Vec<Option<String>>> {
        let last = to.min(self.rows.len());
        self.rows[from.min(last)..last].to_vec()
    }
}

// ---------------------------------------------------------------------------------------------
// Lifecycle
// ---------------------------------------------------------------------------------------------

/// `StatementState` of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum StatementState {
    Pending,
    Running,
    Succeeded,
    Failed,
    Canceled,
}

impl StatementState {
    /// Whether the state can no longer change.
    pub(crate) fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Canceled)
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Canceled => "CANCELED",
        }
    }
}

impl std::fmt::Display for StatementState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Orders statements for eviction; a counter, because two submissions can share an instant.
static NEXT_SEQ: AtomicU64 = AtomicU64::new(0);

/// A submitted SQL statement.
#[derive(Debug, Clone)]
pub(crate) struct Statement {
    id: String,
    /// User name of the submitter, the only principal that may see or cancel it.
    owner: String,
    seq: u64,
    running_at: Instant,
    done_at: Instant,
    /// Rows per chunk, fixed at submission so chunk indices never move under a client.
    chunk_rows: usize,
    outcome: Result<ResultSet, SqlError>,
    canceled: bool,
    /// Woken on cancel, so that an execute call waiting for this statement returns at once.
    wake: Arc<Notify>,
}

/// The timing of a statement, taken from the settings at submission.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) pending: Duration,
    pub(crate) running: Duration,
    pub(crate) chunk_rows: usize,
}

impl Statement {
    /// A statement submitted by `owner` at `now` whose result is `outcome`.
    pub(crate) fn new(
        id: String,
        owner: &Principal,
        now: Instant,
        timing: Timing,
        outcome: Result<ResultSet, SqlError>,
    ) -> Self {
        let running_at = now + timing.pending;
        Self {
            id,
            owner: owner.user_name.clone(),
            seq: NEXT_SEQ.fetch_add(1, Ordering::Relaxed),
            running_at,
            done_at: running_at + timing.running,
            chunk_rows: timing.chunk_rows.max(1),
            outcome,
            canceled: false,
            wake: Arc::new(Notify::new()),
        }
    }

    /// The statement id.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// Whether `principal` submitted it.
    pub(crate) fn owned_by(&self, principal: &Principal) -> bool {
        self.owner == principal.user_name
    }

    /// When it reaches its terminal state unless canceled first.
    pub(crate) fn done_at(&self) -> Instant {
        self.done_at
    }

    /// Notified when the statement is canceled.
    pub(crate) fn wake(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// The state at `now`.
    pub(crate) fn state_at(&self, now: Instant) -> StatementState {
        if self.canceled {
            StatementState::Canceled
        } else if now < self.running_at {
            StatementState::Pending
        } else if now < self.done_at {
            StatementState::Running
        } else if self.outcome.is_ok() {
            StatementState::Succeeded
        } else {
            StatementState::Failed
        }
    }

    /// Cancels the statement if it has not finished at `now`; returns whether it did.
    pub(crate) fn cancel(&mut self, now: Instant) -> bool {
        if self.state_at(now).is_terminal() {
            return false;
        }
        self.canceled = true;
        self.wake.notify_waiters();
        true
    }

    /// The response of execute and get at `now`: manifest and first chunk only once succeeded.
    pub(crate) fn response(&self, now: Instant) -> StatementResponse {
        let state = self.state_at(now);
        let mut response = StatementResponse {
            statement_id: self.id.clone(),
            status: StatementStatus {
                state,
                error: None,
                sql_state: None,
            },
            manifest: None,
            result: None,
        };
        match (&self.outcome, state) {
            (Ok(result), StatementState::Succeeded) => {
                response.manifest = Some(self.manifest(result));
                response.result = Some(self.result_chunk(result, 0));
            }
            (Err(error), StatementState::Failed) => {
                response.status.error = Some(ServiceError {
                    error_code: "BAD_REQUEST",
                    message: error.to_string(),
                });
                response.status.sql_state = Some(error.sql_state());
            }
            _ => {}
        }
        response
    }

    /// Chunk `index` of the result, as the chunk endpoint returns it.
    ///
    /// # Errors
    /// [`ChunkError::NotSucceeded`] before success (or after failure or cancel), and
    /// [`ChunkError::OutOfRange`] past the last chunk.
    pub(crate) fn chunk(&self, index: usize, now: Instant) -> Result<ResultChunk, ChunkError> {
        let state = self.state_at(now);
        let result = match (&self.outcome, state) {
            (Ok(result), StatementState::Succeeded) => result,
            _ => return Err(ChunkError::NotSucceeded(state)),
        };
        let count = self.chunk_count(result);
        if index >= count {
            return Err(ChunkError::OutOfRange { count });
        }
        Ok(self.result_chunk(result, index))
    }

    /// One chunk per `chunk_rows` rows, and one empty chunk for an empty result.
    fn chunk_count(&self, result: &ResultSet) -> usize {
        result.len().div_ceil(self.chunk_rows).max(1)
    }

    /// `(row_offset, row_count)` of chunk `index`.
    fn chunk_bounds(&self, result: &ResultSet, index: usize) -> (usize, usize) {
        let offset = index.saturating_mul(self.chunk_rows).min(result.len());
        (offset, self.chunk_rows.min(result.len() - offset))
    }

    fn manifest(&self, result: &ResultSet) -> Manifest {
        let count = self.chunk_count(result);
        let chunks = (0..count)
            .map(|chunk_index| {
                let (row_offset, row_count) = self.chunk_bounds(result, chunk_index);
                ChunkInfo {
                    chunk_index,
                    row_offset,
                    row_count,
                }
            })
            .collect();
        Manifest {
            format: "JSON_ARRAY",
            schema: ResultSchema {
                column_count: result.columns.len(),
                columns: result.columns.clone(),
            },
            total_chunk_count: count,
            total_row_count: result.len(),
            chunks,
            truncated: result.truncated,
        }
    }

    fn result_chunk(&self, result: &ResultSet, index: usize) -> ResultChunk {
        let (row_offset, row_count) = self.chunk_bounds(result, index);
        let data_array = (row_count > 0).then(|| result.rows(row_offset, row_offset + row_count));
        let next = index + 1;
        let has_next = next < self.chunk_count(result);
        ResultChunk {
            chunk_index: index,
            row_offset,
            row_count,
            data_array,
            next_chunk_index: has_next.then_some(next),
            next_chunk_internal_link: has_next.then(|| {
                format!(
                    "/api/2.0/sql/statements/{}/result/chunks/{next}?row_offset={}",
                    self.id,
                    row_offset + row_count
                )
            }),
        }
    }
}

/// Why a chunk cannot be returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkError {
    /// The statement is not (or not yet) `SUCCEEDED`; it is in this state.
    NotSucceeded(StatementState),
    /// The index is past the last chunk; the result has `count` chunks.
    OutOfRange { count: usize },
}

/// Inserts `statement`, first forgetting the oldest statements when the map is full.
pub(crate) fn insert_bounded(statements: &mut HashMap<String, Statement>, statement: Statement) {
    if statements.len() >= STATEMENT_CAPACITY {
        let mut seqs: Vec<u64> = statements.values().map(|s| s.seq).collect();
        let batch = EVICTION_BATCH.clamp(1, seqs.len());
        let (_, cutoff, _) = seqs.select_nth_unstable(batch - 1);
        let cutoff = *cutoff;
        statements.retain(|_, s| s.seq > cutoff);
    }
    statements.insert(statement.id.clone(), statement);
}

// ---------------------------------------------------------------------------------------------
// Wire shapes
// ---------------------------------------------------------------------------------------------

/// The body of execute and get (`StatementResponse`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StatementResponse {
    statement_id: String,
    status: StatementStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    manifest: Option<Manifest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<ResultChunk>,
}

/// `StatementStatus`; `error` and `sql_state` only when `FAILED`.
#[derive(Debug, Clone, Serialize)]
struct StatementStatus {
    state: StatementState,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ServiceError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sql_state: Option<&'static str>,
}

/// `ServiceError`: the `error_code` is one of the API's `ServiceErrorCode` values.
#[derive(Debug, Clone, Serialize)]
struct ServiceError {
    error_code: &'static str,
    message: String,
}

/// `ResultManifest`.
#[derive(Debug, Clone, Serialize)]
struct Manifest {
    format: &'static str,
    schema: ResultSchema,
    total_chunk_count: usize,
    total_row_count: usize,
    chunks: Vec<ChunkInfo>,
    truncated: bool,
}

#[derive(Debug, Clone, Serialize)]
struct ResultSchema {
    column_count: usize,
    columns: Vec<ColumnInfo>,
}

#[derive(Debug, Clone, Serialize)]
struct ChunkInfo {
    chunk_index: usize,
    row_offset: usize,
    row_count: usize,
}

/// `ResultData` of an `INLINE` result: one chunk; `data_array` absent when it has no rows.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ResultChunk {
    chunk_index: usize,
    row_offset: usize,
    row_count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_array: Option<Vec<Vec<Option<String>>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_chunk_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_chunk_internal_link: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn principal(user_name: &str, groups: &[&str]) -> Principal {
        Principal {
            id: "1".into(),
            user_name: user_name.into(),
            display_name: user_name.into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            active: true,
            is_service_principal: false,
        }
    }

    fn alice() -> Principal {
        principal("alice@example.com", &["users", "data-analysts"])
    }

    fn bob() -> Principal {
        principal("bob@example.com", &["users"])
    }

    /// A succeeded outcome of `count` one-column rows (`"1"`, `"2"`, …).
    fn rows(count: usize) -> Result<ResultSet, SqlError> {
        let column = ColumnInfo::new("id".into(), 0, "LONG".into(), "BIGINT".into(), None, None);
        let data = (1..=count).map(|i| vec![Some(i.to_string())]).collect();
        Ok(ResultSet::new(vec![column], data, false))
    }

    fn failed() -> Result<ResultSet, SqlError> {
        Err(SqlError::insufficient_permissions(
            "main", "sales", "orders",
        ))
    }

    fn timing(pending_ms: u64, running_ms: u64, chunk_rows: usize) -> Timing {
        Timing {
            pending: Duration::from_millis(pending_ms),
            running: Duration::from_millis(running_ms),
            chunk_rows,
        }
    }

    #[test]
    fn type_text_is_upper_cased_except_field_names() {
        // Arrange
        let cases = [
            ("bigint", "BIGINT"),
            ("decimal(10,2)", "DECIMAL(10,2)"),
            ("array<string>", "ARRAY<STRING>"),
            ("map<string, int>", "MAP<STRING, INT>"),
            (
                "struct<firstName: string, `odd name`:int>",
                "STRUCT<firstName: STRING, `odd name`:INT>",
            ),
        ];

        for (text, expected) in cases {
            // Act / Assert
            assert_eq!(upper_type_text(text), expected);
        }
        assert_eq!(decimal_precision_scale("decimal(10,2)"), (10, 2));
        assert_eq!(decimal_precision_scale("decimal"), (10, 0));
        assert_eq!(decimal_precision_scale("decimal(10,4000000000)"), (10, 10));
    }

    #[test]
    fn state_follows_the_clock_and_the_outcome() {
        // Arrange
        let start = Instant::now();
        let ok = Statement::new("s1".into(), &alice(), start, timing(100, 200, 10), rows(25));
        let bad = Statement::new("s2".into(), &alice(), start, timing(100, 200, 10), failed());
        let at = |ms| start + Duration::from_millis(ms);

        // Act / Assert
        assert_eq!(ok.state_at(at(0)), StatementState::Pending);
        assert_eq!(ok.state_at(at(99)), StatementState::Pending);
        assert_eq!(ok.state_at(at(100)), StatementState::Running);
        assert_eq!(ok.state_at(at(299)), StatementState::Running);
        assert_eq!(ok.state_at(at(300)), StatementState::Succeeded);
        assert_eq!(bad.state_at(at(299)), StatementState::Running);
        assert_eq!(bad.state_at(at(300)), StatementState::Failed);
        assert_eq!(ok.done_at(), at(300));
    }

    #[test]
    fn cancel_wins_only_before_the_terminal_state() {
        // Arrange
        let start = Instant::now();
        let outcome = rows(25);
        let mut early = Statement::new(
            "a".into(),
            &alice(),
            start,
            timing(0, 100, 10),
            outcome.clone(),
        );
        let mut late = Statement::new("b".into(), &alice(), start, timing(0, 100, 10), outcome);
        let after = start + Duration::from_millis(100);

        // Act
        let canceled_early = early.cancel(start);
        let canceled_late = late.cancel(after);

        // Assert
        assert!(canceled_early);
        assert_eq!(early.state_at(after), StatementState::Canceled);
        assert!(!canceled_late);
        assert_eq!(late.state_at(after), StatementState::Succeeded);
    }

    #[tokio::test]
    async fn cancel_wakes_whoever_waits_for_the_statement() {
        // Arrange
        let start = Instant::now();
        let outcome = rows(25);
        let mut statement =
            Statement::new("w".into(), &alice(), start, timing(60_000, 0, 10), outcome);
        let wake = statement.wake();
        let canceled = wake.notified();
        tokio::pin!(canceled);
        canceled.as_mut().enable();

        // Act
        statement.cancel(Instant::now());

        // Assert
        let woken = tokio::time::timeout(Duration::from_secs(5), canceled).await;
        assert!(woken.is_ok(), "a cancel must wake the waiter at once");
    }

    #[test]
    fn results_are_cut_into_linked_chunks() {
        // Arrange
        let now = Instant::now();
        let statement = Statement::new("s".into(), &alice(), now, timing(0, 0, 10), rows(25));

        // Act
        let body = serde_json::to_value(statement.response(now)).unwrap();
        let last = statement.chunk(2, now).unwrap();

        // Assert
        assert_eq!(body["status"], json!({"state": "SUCCEEDED"}));
        assert_eq!(body["manifest"]["total_chunk_count"], 3);
        assert_eq!(body["manifest"]["total_row_count"], 25);
        assert_eq!(
            body["manifest"]["chunks"],
            json!([
                {"chunk_index": 0, "row_offset": 0, "row_count": 10},
                {"chunk_index": 1, "row_offset": 10, "row_count": 10},
                {"chunk_index": 2, "row_offset": 20, "row_count": 5},
            ])
        );
        assert_eq!(body["manifest"]["schema"]["column_count"], 1);
        assert_eq!(
            body["manifest"]["schema"]["columns"][0],
            json!({"name": "id", "position": 0, "type_name": "LONG", "type_text": "BIGINT"})
        );
        assert_eq!(body["result"]["next_chunk_index"], 1);
        assert_eq!(
            body["result"]["next_chunk_internal_link"],
            "/api/2.0/sql/statements/s/result/chunks/1?row_offset=10"
        );
        let last = serde_json::to_value(last).unwrap();
        assert_eq!(last["row_offset"], 20);
        assert_eq!(last["data_array"].as_array().map(Vec::len), Some(5));
        assert!(last.get("next_chunk_index").is_none());
        assert_eq!(
            statement.chunk(3, now).unwrap_err(),
            ChunkError::OutOfRange { count: 3 }
        );
    }

    #[test]
    fn an_empty_result_is_one_chunk_without_data() {
        // Arrange
        let now = Instant::now();
        let statement = Statement::new("e".into(), &alice(), now, timing(0, 0, 10), rows(0));

        // Act
        let body = serde_json::to_value(statement.response(now)).unwrap();

        // Assert
        assert_eq!(body["manifest"]["total_chunk_count"], 1);
        assert_eq!(body["manifest"]["total_row_count"], 0);
        assert_eq!(
            body["result"],
            json!({"chunk_index": 0, "row_offset": 0, "row_count": 0})
        );
    }

    #[test]
    fn failures_carry_bad_request_and_the_sql_state_without_results() {
        // Arrange
        let now = Instant::now();
        let statement = Statement::new("f".into(), &bob(), now, timing(0, 0, 10), failed());

        // Act
        let body = serde_json::to_value(statement.response(now)).unwrap();
        let chunk = statement.chunk(0, now);

        // Assert
        assert_eq!(body["status"]["state"], "FAILED");
        assert_eq!(body["status"]["error"]["error_code"], "BAD_REQUEST");
        assert_eq!(body["status"]["sql_state"], "42501");
        assert!(body.get("manifest").is_none() && body.get("result").is_none());
        assert_eq!(
            chunk.unwrap_err(),
            ChunkError::NotSucceeded(StatementState::Failed)
        );
    }

    #[test]
    fn pending_statements_show_only_their_state() {
        // Arrange
        let now = Instant::now();
        let statement = Statement::new("p".into(), &alice(), now, timing(1000, 0, 10), failed());

        // Act
        let body = serde_json::to_value(statement.response(now)).unwrap();

        // Assert
        assert_eq!(
            body,
            json!({"statement_id": "p", "status": {"state": "PENDING"}})
        );
    }

    #[test]
    fn the_statement_map_stays_bounded_and_forgets_the_oldest() {
        // Arrange
        let mut statements = HashMap::new();
        let now = Instant::now();
        let outcome = rows(1);
        let make = |i: usize| {
            Statement::new(
                format!("s{i}"),
                &alice(),
                now,
                timing(0, 0, 10),
                outcome.clone(),
            )
        };

        // Act
        for i in 0..=STATEMENT_CAPACITY {
            insert_bounded(&mut statements, make(i));
        }

        // Assert
        assert!(statements.len() <= STATEMENT_CAPACITY);
        assert!(!statements.contains_key("s0"));
        assert!(statements.contains_key(&format!("s{STATEMENT_CAPACITY}")));
        assert!(statements.contains_key(&format!("s{}", STATEMENT_CAPACITY - 1)));
    }
}
