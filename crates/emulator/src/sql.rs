//! The life of a submitted statement (`shared/UPSTREAM.md` §4.4): the `PENDING → RUNNING →
//! terminal` clock, result chunking, limits and dispositions, and the JSON shapes of a statement,
//! its manifest and its result chunks, plus the types a result is made of ([`ColumnInfo`], [`ResultSet`], [`SqlError`]).
//! Parsing and evaluating the SQL is `crate::engine`'s job, whose header documents what SQL the
//! emulator understands; this module knows nothing of HTTP either: request validation, warehouses,
//! waiting, and "only the submitter may see it" live in `routes::statements`.
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
//! `chunks` handle without a special case. `byte_limit` keeps the longest prefix of rows whose JSON
//! texts add up to at most the limit; it and `row_limit` set `manifest.truncated` when they cut.
//!
//! A chunk goes out as its rows (`INLINE`), as a signed link to its bytes (`EXTERNAL_LINKS`), or,
//! for `INLINE_OR_EXTERNAL_LINKS`, inline when the result is one chunk of at most
//! `sql_hybrid_inline_bytes` (rows for `JSON_ARRAY`, base64 bytes in `attachment` otherwise) and as
//! links when not. The bytes of each format and the link tokens are `crate::results`' business.
//!
//! # Lifecycle
//!
//! A statement is evaluated once, when it is submitted (the fixture never changes while the
//! emulator runs, so the outcome is already known), and that outcome is revealed by the clock: the
//! statement is `PENDING` for `sql_pending_ms` (and at least until its warehouse is `RUNNING`,
//! when the submission had to start it), then `RUNNING` for `sql_running_ms`, then `SUCCEEDED` or
//! `FAILED`. No task runs in the background; the state is a function of the time. The timings,
//! chunk size and delivery options are those of the moment of submission. A cancel before the
//! terminal state makes it `CANCELED` for good; after, it changes nothing. A close (the SQL
//! connector's `DELETE`) cancels it if unfinished and makes it `CLOSED`, its result gone. A
//! succeeded statement holds its rendered rows (at most `engine::MAX_RESULT_ROWS`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::results::{self, ColumnType, Format, LinkSigner, LinkTarget};
use crate::state::Principal;
use crate::warehouse::later;

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
    /// Closed by its owner (`DELETE /api/2.0/sql/statements/{id}`): its result is gone.
    Closed,
}

impl StatementState {
    /// Whether the state can no longer change.
    pub(crate) fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Canceled | Self::Closed
        )
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Canceled => "CANCELED",
            Self::Closed => "CLOSED",
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

/// How the result of a statement is handed over: the request's `disposition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// `data_array` in the responses (`JSON_ARRAY` only).
    Inline,
    /// A URL per chunk, fetched without the workspace token.
    ExternalLinks,
    /// Inline when the result is one chunk of at most `sql_hybrid_inline_bytes`, else links.
    InlineOrExternalLinks,
}

/// The delivery options of a statement, validated by the route.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Delivery {
    pub(crate) format: Format,
    pub(crate) disposition: Disposition,
    /// `byte_limit`: rows past it are cut and the result marked `truncated`.
    pub(crate) byte_limit: Option<u64>,
    /// `sql_hybrid_inline_bytes` at submission.
    pub(crate) hybrid_inline_bytes: usize,
}

/// What the URLs of `EXTERNAL_LINKS` need: who signs them, where they point, how long they live.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Links<'a> {
    pub(crate) signer: &'a LinkSigner,
    /// Scheme and authority the client reached us at.
    pub(crate) base_url: &'a str,
    pub(crate) ttl: chrono::Duration,
}

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
    /// Rows handed over: the result's rows up to `byte_limit`.
    shown: usize,
    /// Whether `row_limit` or `byte_limit` removed rows.
    truncated: bool,
    format: Format,
    /// Whether the result goes out as links (resolved at submission for the hybrid disposition).
    external: bool,
    canceled: bool,
    closed: bool,
    /// Woken on cancel, so that an execute call waiting for this statement returns at once.
    wake: Arc<Notify>,
}

/// The timing of a statement, taken from the settings and its warehouse at submission.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) pending: Duration,
    pub(crate) running: Duration,
    pub(crate) chunk_rows: usize,
    /// When the warehouse is `RUNNING`: the statement stays `PENDING` at least until then.
    pub(crate) warehouse_ready: Instant,
}

/// Why a chunk's bytes could not be produced.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode the result: {0}")]
pub(crate) struct EncodeError(#[from] arrow_schema::ArrowError);

impl Statement {
    /// A statement submitted by `owner` at `now` whose result is `outcome`, delivered inline as
    /// `JSON_ARRAY` until [`Statement::deliver`] says otherwise.
    pub(crate) fn new(
        id: String,
        owner: &Principal,
        now: Instant,
        timing: Timing,
        outcome: Result<ResultSet, SqlError>,
    ) -> Self {
        let running_at = later(now, timing.pending).max(timing.warehouse_ready);
        let (shown, truncated) = outcome
            .as_ref()
            .map_or((0, false), |r| (r.len(), r.truncated));
        Self {
            id,
            owner: owner.user_name.clone(),
            seq: NEXT_SEQ.fetch_add(1, Ordering::Relaxed),
            running_at,
            done_at: later(running_at, timing.running),
            chunk_rows: timing.chunk_rows.max(1),
            outcome,
            shown,
            truncated,
            format: Format::JsonArray,
            external: false,
            canceled: false,
            closed: false,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Applies the delivery options: `byte_limit` (bytes counted as the JSON text of each row)
    /// and the format and disposition, the hybrid one resolved against the result's size.
    pub(crate) fn deliver(mut self, delivery: Delivery) -> Self {
        self.format = delivery.format;
        let mut bytes = 0usize;
        if let Ok(result) = &self.outcome {
            let sizes = result
                .rows
                .iter()
                .map(|row| serde_json::to_vec(row).map_or(0, |v| v.len()));
            let limit = delivery
                .byte_limit
                .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
            let mut kept = 0;
            for size in sizes {
                if bytes.saturating_add(size) > limit {
                    break;
                }
                bytes += size;
                kept += 1;
            }
            if kept < result.len() {
                self.shown = kept;
                self.truncated = true;
            }
        }
        self.external = match delivery.disposition {
            Disposition::Inline => false,
            Disposition::ExternalLinks => true,
            Disposition::InlineOrExternalLinks => {
                bytes > delivery.hybrid_inline_bytes || self.shown > self.chunk_rows
            }
        };
        self
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

    /// `(rows handed over, truncated)` of a result, whatever the state; `None` for a failure.
    pub(crate) fn result_summary(&self) -> Option<(usize, bool)> {
        self.outcome.is_ok().then_some((self.shown, self.truncated))
    }

    /// The format its result is delivered in.
    pub(crate) fn format(&self) -> Format {
        self.format
    }

    /// Notified when the statement is canceled.
    pub(crate) fn wake(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// The state at `now`.
    pub(crate) fn state_at(&self, now: Instant) -> StatementState {
        if self.closed {
            StatementState::Closed
        } else if self.canceled {
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

    /// Closes the statement: it is canceled if still running, and its result is released.
    pub(crate) fn close(&mut self, now: Instant) {
        self.cancel(now);
        self.closed = true;
    }

    /// The response of execute and get at `now`: manifest and first chunk only once succeeded.
    ///
    /// # Errors
    /// [`EncodeError`] when an external chunk cannot be encoded to count its bytes.
    pub(crate) fn response(
        &self,
        now: Instant,
        links: &Links<'_>,
    ) -> Result<StatementResponse, EncodeError> {
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
                response.manifest = Some(self.manifest(result)?);
                response.result = Some(self.result_chunk(result, 0, links)?);
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
        Ok(response)
    }

    /// The succeeded result, or the state that keeps it from being read.
    fn succeeded(&self, now: Instant) -> Result<&ResultSet, ChunkError> {
        match (&self.outcome, self.state_at(now)) {
            (Ok(result), StatementState::Succeeded) => Ok(result),
            (_, state) => Err(ChunkError::NotSucceeded(state)),
        }
    }

    fn check_index(&self, index: usize) -> Result<(), ChunkError> {
        let count = self.chunk_count();
        if index >= count {
            return Err(ChunkError::OutOfRange { count });
        }
        Ok(())
    }

    /// Chunk `index` of the result, as the chunk endpoint returns it: rows inline, or the link
    /// to them.
    ///
    /// # Errors
    /// [`ChunkError::NotSucceeded`] before success (or after failure, cancel or close),
    /// [`ChunkError::OutOfRange`] past the last chunk, [`ChunkError::Encode`] when its bytes
    /// cannot be produced.
    pub(crate) fn chunk(
        &self,
        index: usize,
        now: Instant,
        links: &Links<'_>,
    ) -> Result<ResultChunk, ChunkError> {
        let result = self.succeeded(now)?;
        self.check_index(index)?;
        Ok(self.result_chunk(result, index, links)?)
    }

    /// The bytes of chunk `index` in the statement's format, as its external link serves them.
    ///
    /// # Errors
    /// As [`Statement::chunk`].
    pub(crate) fn chunk_bytes(&self, index: usize, now: Instant) -> Result<Vec<u8>, ChunkError> {
        let result = self.succeeded(now)?;
        self.check_index(index)?;
        Ok(self.encode_chunk(result, index)?)
    }

    /// One chunk per `chunk_rows` rows, and one empty chunk for an empty result.
    fn chunk_count(&self) -> usize {
        self.shown.div_ceil(self.chunk_rows).max(1)
    }

    /// `(row_offset, row_count)` of chunk `index`.
    fn chunk_bounds(&self, index: usize) -> (usize, usize) {
        let offset = index.saturating_mul(self.chunk_rows).min(self.shown);
        (offset, self.chunk_rows.min(self.shown - offset))
    }

    fn encode_chunk(&self, result: &ResultSet, index: usize) -> Result<Vec<u8>, EncodeError> {
        let (row_offset, row_count) = self.chunk_bounds(index);
        let rows = result.rows(row_offset, row_offset + row_count);
        let columns: Vec<ColumnType<'_>> =
            result.columns.iter().map(ColumnInfo::column_type).collect();
        Ok(results::encode(self.format, &columns, &rows)?)
    }

    fn manifest(&self, result: &ResultSet) -> Result<Manifest, EncodeError> {
        let count = self.chunk_count();
        let mut chunks = Vec::with_capacity(count);
        let mut total_bytes = 0;
        for chunk_index in 0..count {
            let (row_offset, row_count) = self.chunk_bounds(chunk_index);
            let byte_count = if self.external {
                let bytes = self.encode_chunk(result, chunk_index)?.len();
                total_bytes += bytes;
                Some(bytes)
            } else {
                None
            };
            chunks.push(ChunkInfo {
                chunk_index,
                row_offset,
                row_count,
                byte_count,
            });
        }
        Ok(Manifest {
            format: self.format.as_str(),
            schema: ResultSchema {
                column_count: result.columns.len(),
                columns: result.columns.clone(),
            },
            total_chunk_count: count,
            total_row_count: self.shown,
            total_byte_count: self.external.then_some(total_bytes),
            chunks,
            truncated: self.truncated,
        })
    }

    fn result_chunk(
        &self,
        result: &ResultSet,
        index: usize,
        links: &Links<'_>,
    ) -> Result<ResultChunk, EncodeError> {
        let (row_offset, row_count) = self.chunk_bounds(index);
        let next = index + 1;
        let has_next = next < self.chunk_count();
        let next_chunk_index = has_next.then_some(next);
        let next_chunk_internal_link = has_next.then(|| {
            format!(
                "/api/2.0/sql/statements/{}/result/chunks/{next}?row_offset={}",
                self.id,
                row_offset + row_count
            )
        });
        if self.external {
            let bytes = self.encode_chunk(result, index)?;
            // Checked: a huge `sql_link_ttl_secs` means "never", not an overflow.
            let expires_at = chrono::Utc::now()
                .checked_add_signed(links.ttl)
                .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
            let token = links.signer.token(&LinkTarget {
                statement_id: self.id.clone(),
                chunk_index: index,
                expires_at,
            });
            let link = ExternalLink {
                chunk_index: index,
                row_offset,
                row_count,
                byte_count: bytes.len(),
                external_link: format!("{}/_emulator/results/{token}", links.base_url),
                expiration: expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                http_headers: serde_json::Map::new(),
                next_chunk_index,
                next_chunk_internal_link,
            };
            return Ok(ResultChunk::External {
                external_links: vec![link],
            });
        }
        let (data_array, attachment) = match (row_count > 0, self.format) {
            (false, _) => (None, None),
            (true, Format::JsonArray) => {
                (Some(result.rows(row_offset, row_offset + row_count)), None)
            }
            // The hybrid disposition's inline form for Arrow and CSV: the bytes, base64.
            (true, _) => {
                let bytes = self.encode_chunk(result, index)?;
                (None, Some(STANDARD.encode(bytes)))
            }
        };
        Ok(ResultChunk::Inline {
            chunk_index: index,
            row_offset,
            row_count,
            data_array,
            attachment,
            next_chunk_index,
            next_chunk_internal_link,
        })
    }
}

impl ColumnInfo {
    /// What the result encoders need of the column.
    fn column_type(&self) -> ColumnType<'_> {
        ColumnType {
            name: &self.name,
            type_name: &self.type_name,
            precision: self.type_precision,
            scale: self.type_scale,
        }
    }
}

/// Why a chunk cannot be returned.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChunkError {
    /// The statement is not (or not yet) `SUCCEEDED`; it is in this state.
    #[error("the statement is {0}")]
    NotSucceeded(StatementState),
    /// The index is past the last chunk; the result has `count` chunks.
    #[error("the result has {count} chunk(s)")]
    OutOfRange { count: usize },
    /// The chunk's bytes could not be produced.
    #[error(transparent)]
    Encode(#[from] EncodeError),
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

/// `ResultManifest`. `result_compression` is never sent: results are not compressed, and the
/// connector decompresses only when it says `LZ4_FRAME`.
#[derive(Debug, Clone, Serialize)]
struct Manifest {
    format: &'static str,
    schema: ResultSchema,
    total_chunk_count: usize,
    total_row_count: usize,
    /// Only for external links, where each chunk is a download of known size.
    #[serde(skip_serializing_if = "Option::is_none")]
    total_byte_count: Option<usize>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    byte_count: Option<usize>,
}

/// `ExternalLink`: where to download one chunk, without the workspace token.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ExternalLink {
    chunk_index: usize,
    row_offset: usize,
    row_count: usize,
    byte_count: usize,
    external_link: String,
    /// RFC 3339, UTC.
    expiration: String,
    http_headers: serde_json::Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_chunk_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_chunk_internal_link: Option<String>,
}

/// `ResultData`: one inline chunk (`data_array` absent when it has no rows; `attachment` for the
/// hybrid disposition's Arrow or CSV bytes), or the link to one.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub(crate) enum ResultChunk {
    Inline {
        chunk_index: usize,
        row_offset: usize,
        row_count: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        data_array: Option<Vec<Vec<Option<String>>>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        attachment: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        next_chunk_index: Option<usize>,
        #[serde(skip_serializing_if = "Option::is_none")]
        next_chunk_internal_link: Option<String>,
    },
    External {
        external_links: Vec<ExternalLink>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
            // Already running: these tests are about the statement's own clock.
            warehouse_ready: Instant::now()
                .checked_sub(Duration::from_secs(1))
                .unwrap_or_else(Instant::now),
        }
    }

    fn links(signer: &LinkSigner) -> Links<'_> {
        Links {
            signer,
            base_url: "http://127.0.0.1:1",
            ttl: chrono::Duration::minutes(15),
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
        let ok = Statement::new(
            "s1".into(),
            &Principal::alice(),
            start,
            timing(100, 200, 10),
            rows(25),
        );
        let bad = Statement::new(
            "s2".into(),
            &Principal::alice(),
            start,
            timing(100, 200, 10),
            failed(),
        );
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
            &Principal::alice(),
            start,
            timing(0, 100, 10),
            outcome.clone(),
        );
        let mut late = Statement::new(
            "b".into(),
            &Principal::alice(),
            start,
            timing(0, 100, 10),
            outcome,
        );
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
        let mut statement = Statement::new(
            "w".into(),
            &Principal::alice(),
            start,
            timing(60_000, 0, 10),
            outcome,
        );
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
        let signer = LinkSigner::new();
        let now = Instant::now();
        let statement = Statement::new(
            "s".into(),
            &Principal::alice(),
            now,
            timing(0, 0, 10),
            rows(25),
        );

        // Act
        let body = serde_json::to_value(statement.response(now, &links(&signer)).unwrap()).unwrap();
        let last = statement.chunk(2, now, &links(&signer)).unwrap();

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
        assert!(matches!(
            statement.chunk(3, now, &links(&signer)),
            Err(ChunkError::OutOfRange { count: 3 })
        ));
    }

    #[test]
    fn an_empty_result_is_one_chunk_without_data() {
        // Arrange
        let signer = LinkSigner::new();
        let now = Instant::now();
        let statement = Statement::new(
            "e".into(),
            &Principal::alice(),
            now,
            timing(0, 0, 10),
            rows(0),
        );

        // Act
        let body = serde_json::to_value(statement.response(now, &links(&signer)).unwrap()).unwrap();

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
        let signer = LinkSigner::new();
        let now = Instant::now();
        let statement = Statement::new(
            "f".into(),
            &Principal::bob(),
            now,
            timing(0, 0, 10),
            failed(),
        );

        // Act
        let body = serde_json::to_value(statement.response(now, &links(&signer)).unwrap()).unwrap();
        let chunk = statement.chunk(0, now, &links(&signer));

        // Assert
        assert_eq!(body["status"]["state"], "FAILED");
        assert_eq!(body["status"]["error"]["error_code"], "BAD_REQUEST");
        assert_eq!(body["status"]["sql_state"], "42501");
        assert!(body.get("manifest").is_none() && body.get("result").is_none());
        assert!(matches!(
            chunk,
            Err(ChunkError::NotSucceeded(StatementState::Failed))
        ));
    }

    #[test]
    fn pending_statements_show_only_their_state() {
        // Arrange
        let signer = LinkSigner::new();
        let now = Instant::now();
        let statement = Statement::new(
            "p".into(),
            &Principal::alice(),
            now,
            timing(1000, 0, 10),
            failed(),
        );

        // Act
        let body = serde_json::to_value(statement.response(now, &links(&signer)).unwrap()).unwrap();

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
                &Principal::alice(),
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

    #[test]
    fn a_statement_stays_pending_until_its_warehouse_runs() {
        // Arrange
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let timing = Timing {
            warehouse_ready: at(500),
            ..timing(10, 0, 10)
        };

        // Act
        let statement = Statement::new("w".into(), &Principal::alice(), start, timing, rows(1));

        // Assert
        assert_eq!(statement.state_at(at(499)), StatementState::Pending);
        assert_eq!(statement.state_at(at(500)), StatementState::Succeeded);
    }

    #[test]
    fn the_hybrid_disposition_links_only_what_is_too_big_to_inline() {
        // Arrange
        let now = Instant::now();
        let make = |count, hybrid_inline_bytes| {
            Statement::new(
                "h".into(),
                &Principal::alice(),
                now,
                timing(0, 0, 10),
                rows(count),
            )
            .deliver(Delivery {
                format: Format::ArrowStream,
                disposition: Disposition::InlineOrExternalLinks,
                byte_limit: None,
                hybrid_inline_bytes,
            })
        };

        // Act
        let small = make(3, 1000);
        let many_chunks = make(11, 1000);
        let too_many_bytes = make(3, 10);

        // Assert
        assert!(!small.external);
        assert!(many_chunks.external);
        assert!(too_many_bytes.external);
    }
}
