//! SQL Statement Execution (UPSTREAM §4.4): run a statement on a warehouse, poll it until a
//! deadline, fetch every result chunk, cancel it when the deadline passes, and type the values
//! from the manifest.
//!
//! Value conversion (`data_array` holds only strings and nulls, whatever the column type):
//! `LONG`, `INT`, `SHORT`, `BYTE` → JSON integers; `DOUBLE`, `FLOAT` → JSON numbers;
//! `DECIMAL` → a JSON number (precision beyond an `f64` is lost: callers that need exact
//! decimals read [`StatementResult::raw_rows`]); `BOOLEAN` → `true`/`false`; NULL → `null`;
//! every other type (strings, dates, timestamps, intervals, binary, complex types) → the string
//! as sent. A value that does not parse as its type stays a string rather than failing the
//! whole result. Non-finite floats (`NaN`, `Infinity`) stay strings, since JSON has no such
//! numbers.
//!
//! A failed statement is reported with HTTP 200 and `status.state = FAILED`; it becomes a
//! [`DatabricksError`] classified from its `error_code`.

use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Number, Value, json};
use tokio::time::Instant;

use super::encode_segment;
use crate::client::Workspace;
use crate::error::{DatabricksError, ErrorKind};
use crate::http::Operation;

// The `api`/`operation` names of this module's calls (see [`Operation`]).
const EXECUTE_STATEMENT: Operation = Operation::new("sql", "execute_statement");
const GET_STATEMENT: Operation = Operation::new("sql", "get_statement");
const GET_STATEMENT_RESULT_CHUNK: Operation = Operation::new("sql", "get_statement_result_chunk");
const CANCEL_STATEMENT: Operation = Operation::new("sql", "cancel_statement");

/// A statement to run and how long to wait for it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ExecuteStatement {
    /// The SQL text; named parameters `:name` only.
    pub statement: String,
    /// The warehouse.
    pub warehouse_id: String,
    /// Default catalog.
    pub catalog: Option<String>,
    /// Default schema.
    pub schema: Option<String>,
    /// Named parameters.
    pub parameters: Vec<StatementParameter>,
    /// Rows to return at most (sets `truncated` when hit).
    pub row_limit: Option<u64>,
    /// How long the execute call waits server-side (0 or 5–50 s; default 10 s).
    pub wait_timeout: Duration,
    /// The overall deadline: polling stops and the statement is cancelled when it passes
    /// (default 60 s).
    pub timeout: Duration,
}

impl ExecuteStatement {
    /// A statement on a warehouse, with the default waits.
    #[must_use]
    pub fn new(statement: impl Into<String>, warehouse_id: impl Into<String>) -> Self {
        Self {
            statement: statement.into(),
            warehouse_id: warehouse_id.into(),
            catalog: None,
            schema: None,
            parameters: Vec::new(),
            row_limit: None,
            wait_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
        }
    }

    /// Sets the default catalog and schema.
    #[must_use]
    pub fn in_schema(mut self, catalog: impl Into<String>, schema: impl Into<String>) -> Self {
        self.catalog = Some(catalog.into());
        self.schema = Some(schema.into());
        self
    }

    /// Sets the server-side wait of the execute call.
    #[must_use]
    pub fn wait_timeout(mut self, wait: Duration) -> Self {
        self.wait_timeout = wait;
        self
    }

    /// Sets the overall deadline.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the named parameters (sent typed, never written into the SQL).
    #[must_use]
    pub fn parameters(mut self, parameters: Vec<StatementParameter>) -> Self {
        self.parameters = parameters;
        self
    }

    /// Sets the row limit.
    #[must_use]
    pub fn row_limit(mut self, limit: u64) -> Self {
        self.row_limit = Some(limit);
        self
    }
}

/// A named parameter.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StatementParameter {
    /// Name, without the colon.
    pub name: String,
    /// Value as text; `None` is SQL NULL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// SQL type, e.g. `INT`; `None` is STRING.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_name: Option<String>,
}

/// A statement's raw response (`POST` and `GET /api/2.0/sql/statements/...`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct StatementResponse {
    /// The statement id.
    pub statement_id: String,
    /// State and error.
    pub status: StatementStatus,
    /// Schema and chunk layout (on `SUCCEEDED`).
    #[serde(default)]
    pub manifest: Option<Manifest>,
    /// The first chunk (on `SUCCEEDED`).
    #[serde(default)]
    pub result: Option<ResultChunk>,
}

/// `status` of a statement.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct StatementStatus {
    /// `PENDING`, `RUNNING`, `SUCCEEDED`, `FAILED`, `CANCELED` or `CLOSED`.
    pub state: String,
    /// The failure, when `FAILED`.
    #[serde(default)]
    pub error: Option<StatementError>,
    /// SQLSTATE of a failure.
    #[serde(default)]
    pub sql_state: Option<String>,
}

/// A statement's failure.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct StatementError {
    /// e.g. `BAD_REQUEST`.
    #[serde(default)]
    pub error_code: Option<String>,
    /// Message.
    #[serde(default)]
    pub message: Option<String>,
}

/// Result schema and layout.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct Manifest {
    /// Columns.
    #[serde(default)]
    pub schema: Option<ResultSchema>,
    /// Whether a row or byte limit cut the result.
    #[serde(default)]
    pub truncated: bool,
    /// Rows in all chunks.
    #[serde(default)]
    pub total_row_count: Option<u64>,
    /// Number of chunks.
    #[serde(default)]
    pub total_chunk_count: Option<u64>,
}

/// `manifest.schema`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct ResultSchema {
    /// Columns in order.
    #[serde(default)]
    pub columns: Vec<ResultColumn>,
}

/// A result column.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResultColumn {
    /// Name.
    pub name: String,
    /// Position.
    #[serde(default)]
    pub position: u32,
    /// `LONG`, `STRING`, ...
    #[serde(default)]
    pub type_name: Option<String>,
    /// SQL type text.
    #[serde(default)]
    pub type_text: Option<String>,
}

/// One chunk of rows.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct ResultChunk {
    /// Index of this chunk.
    #[serde(default)]
    pub chunk_index: u64,
    /// Rows: strings or nulls.
    #[serde(default)]
    pub data_array: Vec<Vec<Option<String>>>,
    /// Index of the next chunk, absent on the last.
    #[serde(default)]
    pub next_chunk_index: Option<u64>,
}

/// Where a statement stands after [`Workspace::start_statement`] or
/// [`Workspace::resume_statement`].
#[derive(Debug, Clone, PartialEq)]
pub enum StatementProgress {
    /// It finished; its typed result.
    Finished(StatementResult),
    /// It is still waiting for its warehouse (`PENDING`).
    Pending {
        /// The id to resume it with.
        statement_id: String,
    },
}

/// A finished statement's typed result.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StatementResult {
    /// The statement id.
    pub statement_id: String,
    /// Columns.
    pub columns: Vec<ResultColumn>,
    /// Rows, typed from the manifest (see the module header).
    pub rows: Vec<Vec<Value>>,
    /// Rows as sent.
    pub raw_rows: Vec<Vec<Option<String>>>,
    /// Whether a limit cut the result.
    pub truncated: bool,
    /// Result chunks fetched.
    pub chunks: u32,
}

impl Workspace<'_> {
    /// Runs a statement to completion within `request.timeout`: waits server-side, polls,
    /// fetches every chunk, and types the values.
    ///
    /// ```no_run
    /// # async fn run(client: dbapp_databricks::Client, token: dbapp_databricks::UserToken) -> Result<(), dbapp_databricks::DatabricksError> {
    /// use std::time::Duration;
    /// use dbapp_databricks::api::ExecuteStatement;
    ///
    /// let request = ExecuteStatement::new("SELECT * FROM main.default.customers LIMIT 10", "dev-warehouse")
    ///     .timeout(Duration::from_secs(30));
    /// let result = client.as_user(&token).execute_statement(&request).await?;
    /// for row in &result.rows {
    ///     println!("{row:?}");
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::Timeout`] when the deadline passes (the statement is then cancelled); the
    /// statement's failure classified from its `error_code` (e.g. [`ErrorKind::BadRequest`] for
    /// a SQL error); [`ErrorKind::Cancelled`] when it was cancelled; auth, transport and 5xx
    /// kinds.
    #[tracing::instrument(skip_all, fields(warehouse_id = %request.warehouse_id))]
    pub async fn execute_statement(
        &self,
        request: &ExecuteStatement,
    ) -> Result<StatementResult, DatabricksError> {
        match self.start_statement(request, None).await? {
            StatementProgress::Finished(result) => Ok(result),
            // Without a pending wait `drive` only returns once the statement is terminal.
            StatementProgress::Pending { statement_id } => Err(DatabricksError::new(
                ErrorKind::Timeout,
                format!("statement {statement_id} is still pending"),
            )),
        }
    }

    /// Submits a statement and drives it as [`Workspace::execute_statement`] does, except that
    /// a statement still `PENDING` (its warehouse is starting) once `pending_wait` has passed
    /// is handed back as [`StatementProgress::Pending`], neither cancelled nor failed, so the
    /// caller can report progress and pick it up later with [`Workspace::resume_statement`].
    /// `None` waits for the whole `request.timeout`.
    ///
    /// # Errors
    /// As [`Workspace::execute_statement`].
    #[tracing::instrument(skip_all, fields(warehouse_id = %request.warehouse_id))]
    pub async fn start_statement(
        &self,
        request: &ExecuteStatement,
        pending_wait: Option<Duration>,
    ) -> Result<StatementProgress, DatabricksError> {
        let started = Instant::now();
        let deadline = started + request.timeout;
        let pending_until = pending_wait.map(|wait| started + wait);
        let response = self
            .submit_statement(request, deadline, pending_wait)
            .await?;
        self.drive(response, deadline, pending_until, request.timeout)
            .await
    }

    /// Picks up a statement that [`Workspace::start_statement`] handed back as pending: reads
    /// its state, and drives it on within `timeout`, handing it back again when it is still
    /// `PENDING` after `pending_wait`.
    ///
    /// # Errors
    /// As [`Workspace::execute_statement`]; [`ErrorKind::NotFound`] for an unknown id.
    #[tracing::instrument(skip_all, fields(statement_id = %statement_id))]
    pub async fn resume_statement(
        &self,
        statement_id: &str,
        pending_wait: Duration,
        timeout: Duration,
    ) -> Result<StatementProgress, DatabricksError> {
        let started = Instant::now();
        let response = self.get_statement(statement_id).await?;
        self.drive(
            response,
            started + timeout,
            Some(started + pending_wait),
            timeout,
        )
        .await
    }

    /// Polls until the statement is terminal (then fetches its result), still `PENDING` at
    /// `pending_until`, or past `deadline` (then cancels it).
    async fn drive(
        &self,
        mut response: StatementResponse,
        deadline: Instant,
        pending_until: Option<Instant>,
        timeout: Duration,
    ) -> Result<StatementProgress, DatabricksError> {
        let mut poll = Duration::from_millis(100);
        while matches!(response.status.state.as_str(), "PENDING" | "RUNNING") {
            let now = Instant::now();
            if now >= deadline {
                let id = response.statement_id.clone();
                // Best effort: the deadline error matters more than a failed cancel.
                if let Err(error) = self.cancel_statement(&id).await {
                    tracing::warn!(event = "databricks.statement_cancel_failed", statement_id = %id, error = %error);
                }
                return Err(DatabricksError::new(
                    ErrorKind::Timeout,
                    format!("statement {id} did not finish within {timeout:?}; it was cancelled"),
                ));
            }
            let waiting_for_warehouse = response.status.state == "PENDING";
            if waiting_for_warehouse && pending_until.is_some_and(|until| now >= until) {
                return Ok(StatementProgress::Pending {
                    statement_id: response.statement_id,
                });
            }
            let mut wake = deadline;
            if waiting_for_warehouse && let Some(until) = pending_until {
                wake = wake.min(until);
            }
            tokio::time::sleep(poll.min(wake - now)).await;
            poll = (poll * 2).min(Duration::from_secs(1));
            response = self.get_statement(&response.statement_id).await?;
        }
        self.finish(response, deadline)
            .await
            .map(StatementProgress::Finished)
    }

    async fn submit_statement(
        &self,
        request: &ExecuteStatement,
        deadline: Instant,
        pending_wait: Option<Duration>,
    ) -> Result<StatementResponse, DatabricksError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        // A caller that reports a pending statement early must get the answer early too.
        let wait = wait_timeout(
            request
                .wait_timeout
                .min(remaining)
                .min(pending_wait.unwrap_or(Duration::MAX)),
        );
        let mut body = json!({
            "statement": request.statement,
            "warehouse_id": request.warehouse_id,
            "wait_timeout": format!("{}s", wait.as_secs()),
            "on_wait_timeout": "CONTINUE",
            "disposition": "INLINE",
            "format": "JSON_ARRAY",
        });
        if let Some(catalog) = &request.catalog {
            body["catalog"] = json!(catalog);
        }
        if let Some(schema) = &request.schema {
            body["schema"] = json!(schema);
        }
        if !request.parameters.is_empty() {
            body["parameters"] = json!(request.parameters);
        }
        if let Some(limit) = request.row_limit {
            body["row_limit"] = json!(limit);
        }
        // Running a statement twice is not harmless: the execute call is not retried.
        let call = self
            .call(EXECUTE_STATEMENT, Method::POST, "/api/2.0/sql/statements")
            .json(body)
            .timeout(wait + Duration::from_secs(30));
        self.get_json(call, "statement").await
    }

    /// The state (and, once succeeded, the first chunk) of a statement.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] for an unknown id; auth, transport and 5xx kinds.
    #[tracing::instrument(skip_all, fields(statement_id = %statement_id))]
    pub async fn get_statement(
        &self,
        statement_id: &str,
    ) -> Result<StatementResponse, DatabricksError> {
        let path = format!("/api/2.0/sql/statements/{}", encode_segment(statement_id));
        self.get_json(self.call(GET_STATEMENT, Method::GET, &path), "statement")
            .await
    }

    /// One result chunk of a succeeded statement.
    ///
    /// # Errors
    /// As [`Workspace::get_statement`].
    #[tracing::instrument(skip_all, fields(statement_id = %statement_id, chunk_index))]
    pub async fn get_statement_result_chunk(
        &self,
        statement_id: &str,
        chunk_index: u64,
    ) -> Result<ResultChunk, DatabricksError> {
        let path = format!(
            "/api/2.0/sql/statements/{}/result/chunks/{chunk_index}",
            encode_segment(statement_id)
        );
        self.get_json(
            self.call(GET_STATEMENT_RESULT_CHUNK, Method::GET, &path),
            "result chunk",
        )
        .await
    }

    /// Cancels a statement (cancelling twice is harmless, so this is retried).
    ///
    /// # Errors
    /// As [`Workspace::get_statement`].
    #[tracing::instrument(skip_all, fields(statement_id = %statement_id))]
    pub async fn cancel_statement(&self, statement_id: &str) -> Result<(), DatabricksError> {
        let path = format!(
            "/api/2.0/sql/statements/{}/cancel",
            encode_segment(statement_id)
        );
        let call = self
            .call(CANCEL_STATEMENT, Method::POST, &path)
            .idempotent(true);
        self.send(call).await.map(|_| ())
    }

    async fn finish(
        &self,
        response: StatementResponse,
        deadline: Instant,
    ) -> Result<StatementResult, DatabricksError> {
        let id = response.statement_id.clone();
        match response.status.state.as_str() {
            "SUCCEEDED" => {}
            "FAILED" => {
                let error = response.status.error.unwrap_or(StatementError {
                    error_code: None,
                    message: None,
                });
                let code = error.error_code.unwrap_or_else(|| "UNKNOWN".to_owned());
                let message = error
                    .message
                    .unwrap_or_else(|| "the statement failed".to_owned());
                return Err(DatabricksError::new(
                    ErrorKind::from_error_code(&code),
                    format!("{code}: {message}"),
                ));
            }
            "CANCELED" => {
                return Err(DatabricksError::new(
                    ErrorKind::Cancelled,
                    format!("statement {id} was cancelled"),
                ));
            }
            "CLOSED" => {
                return Err(DatabricksError::new(
                    ErrorKind::NotFound,
                    format!("statement {id} succeeded but its result is no longer available"),
                ));
            }
            other => {
                return Err(DatabricksError::new(
                    ErrorKind::Decode,
                    format!("statement {id} is in unknown state {other}"),
                ));
            }
        }
        let manifest = response.manifest.unwrap_or(Manifest {
            schema: None,
            truncated: false,
            total_row_count: None,
            total_chunk_count: None,
        });
        let columns = manifest.schema.map(|s| s.columns).unwrap_or_default();
        let mut raw_rows = Vec::new();
        let mut chunks = 0u32;
        let mut next = match response.result {
            Some(first) => {
                chunks += 1;
                let next = first.next_chunk_index;
                raw_rows.extend(first.data_array);
                next
            }
            None if manifest.total_chunk_count.unwrap_or(0) > 0 => Some(0),
            None => None,
        };
        let mut last = None;
        while let Some(index) = next {
            if last.is_some_and(|l| index <= l) {
                return Err(DatabricksError::new(
                    ErrorKind::Decode,
                    format!("statement {id}: chunk links do not advance ({index})"),
                ));
            }
            if Instant::now() >= deadline {
                return Err(DatabricksError::new(
                    ErrorKind::Timeout,
                    format!("statement {id}: result chunks not fetched before the deadline"),
                ));
            }
            let chunk = self.get_statement_result_chunk(&id, index).await?;
            chunks += 1;
            last = Some(index);
            next = chunk.next_chunk_index;
            raw_rows.extend(chunk.data_array);
        }
        let types: Vec<Option<&str>> = columns.iter().map(|c| c.type_name.as_deref()).collect();
        let rows = raw_rows
            .iter()
            .map(|row| {
                row.iter()
                    .enumerate()
                    .map(|(i, v)| typed_value(v.as_deref(), types.get(i).copied().flatten()))
                    .collect()
            })
            .collect();
        Ok(StatementResult {
            statement_id: id,
            columns,
            rows,
            raw_rows,
            truncated: manifest.truncated,
            chunks,
        })
    }
}

/// The server-side wait the API accepts: 0 s, or 5–50 s.
fn wait_timeout(wait: Duration) -> Duration {
    let secs = wait.as_secs();
    if secs < 5 {
        Duration::ZERO
    } else {
        Duration::from_secs(secs.min(50))
    }
}

/// Types one value from its column's `type_name` (see the module header).
#[must_use]
pub fn typed_value(value: Option<&str>, type_name: Option<&str>) -> Value {
    let Some(text) = value else {
        return Value::Null;
    };
    let as_string = || Value::String(text.to_owned());
    match type_name.unwrap_or("STRING") {
        "LONG" | "INT" | "SHORT" | "BYTE" => text
            .trim()
            .parse::<i64>()
            .map_or_else(|_| as_string(), |n| Value::Number(n.into())),
        "DOUBLE" | "FLOAT" | "DECIMAL" => text
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map_or_else(as_string, Value::Number),
        "BOOLEAN" => match text.trim() {
            "true" | "TRUE" | "True" => Value::Bool(true),
            "false" | "FALSE" | "False" => Value::Bool(false),
            _ => as_string(),
        },
        _ => as_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_typed_from_the_manifest() {
        assert_eq!(typed_value(Some("42"), Some("LONG")), json!(42));
        assert_eq!(typed_value(Some("-7"), Some("INT")), json!(-7));
        assert_eq!(typed_value(Some("3"), Some("SHORT")), json!(3));
        assert_eq!(typed_value(Some("1"), Some("BYTE")), json!(1));
        assert_eq!(typed_value(Some("2.5"), Some("DOUBLE")), json!(2.5));
        assert_eq!(typed_value(Some("0.25"), Some("FLOAT")), json!(0.25));
        assert_eq!(typed_value(Some("10.50"), Some("DECIMAL")), json!(10.5));
        assert_eq!(typed_value(Some("true"), Some("BOOLEAN")), json!(true));
        assert_eq!(typed_value(Some("false"), Some("BOOLEAN")), json!(false));
        assert_eq!(
            typed_value(Some("2026-01-01"), Some("DATE")),
            json!("2026-01-01")
        );
        assert_eq!(typed_value(Some("x"), Some("STRING")), json!("x"));
        assert_eq!(typed_value(None, Some("LONG")), Value::Null);
        assert_eq!(typed_value(Some("NaN"), Some("DOUBLE")), json!("NaN"));
        assert_eq!(typed_value(Some("abc"), Some("LONG")), json!("abc"));
    }

    #[test]
    fn wait_timeout_is_clamped_to_what_the_api_accepts() {
        assert_eq!(wait_timeout(Duration::from_secs(3)), Duration::ZERO);
        assert_eq!(
            wait_timeout(Duration::from_secs(10)),
            Duration::from_secs(10)
        );
        assert_eq!(
            wait_timeout(Duration::from_secs(99)),
            Duration::from_secs(50)
        );
    }
}
