//! Running one SQL statement on the configured warehouse and typing its rows: the one path the
//! table preview and the governed queries share. It takes a [`Workspace`] view, so whose
//! identity a statement runs with is decided by the caller of this module (the user's view for
//! the preview and `run_as: user` queries, the app's for `run_as: app`), and returns
//! [`DatabricksError`]s for the routes to map. Values are typed by the client from the
//! manifest (`dbapp_databricks::api::sql`): numbers as numbers, booleans as booleans, NULL as
//! null, everything else as the string sent.

use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use dbapp_databricks::api::sql::{ResultColumn, StatementResponse, typed_value};
use dbapp_databricks::api::{ExecuteStatement, StatementParameter, StatementProgress};
use dbapp_databricks::{DatabricksError, Workspace};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// A result column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Column {
    /// Name.
    pub name: String,
    /// e.g. `LONG`, `STRING`, `DECIMAL`.
    #[schema(required)]
    pub type_name: Option<String>,
    /// The SQL type, e.g. `BIGINT`, `DECIMAL(10,2)`.
    #[schema(required)]
    pub type_text: Option<String>,
}

/// A finished statement's typed rows.
#[derive(Debug, Clone, PartialEq)]
pub struct StatementRows {
    /// Columns in order.
    pub columns: Vec<Column>,
    /// Rows, typed from the manifest.
    pub rows: Vec<Vec<Value>>,
    /// Whether the statement's `row_limit` cut the result.
    pub truncated: bool,
    /// The workspace's statement id.
    pub statement_id: String,
    /// When it finished, RFC 3339 UTC.
    pub executed_at: String,
    /// From submission to the last chunk fetched, as seen here.
    pub execution_time_ms: u64,
}

/// Where a statement stands.
#[derive(Debug)]
pub enum Progress {
    /// Finished, with its rows.
    Done(StatementRows),
    /// Still waiting for its warehouse to start.
    Pending {
        /// The id to resume it with.
        statement_id: String,
    },
}

/// A named `INT` parameter.
#[must_use]
pub fn int_param(name: &str, value: u64) -> StatementParameter {
    typed_param(name, "INT", value.to_string())
}

/// A named parameter of SQL type `type_name`.
#[must_use]
pub fn typed_param(name: &str, type_name: &str, value: String) -> StatementParameter {
    StatementParameter {
        name: name.to_owned(),
        value: Some(value),
        type_name: Some(type_name.to_owned()),
    }
}

/// Runs `request` through `workspace`: to completion, or, with `pending_wait`, until it is
/// still waiting for its warehouse after that long.
///
/// # Errors
/// The statement's failure, a timeout, or the call's error, as the client classifies them.
pub async fn run(
    workspace: &Workspace<'_>,
    request: &ExecuteStatement,
    pending_wait: Option<Duration>,
) -> Result<Progress, DatabricksError> {
    let started = Instant::now();
    let progress = workspace.start_statement(request, pending_wait).await?;
    Ok(progress_of(progress, started))
}

/// Picks up a pending statement (see [`run`]).
///
/// # Errors
/// As [`run`]; `NotFound` when the workspace no longer knows the statement.
pub async fn resume(
    workspace: &Workspace<'_>,
    statement_id: &str,
    pending_wait: Duration,
    timeout: Duration,
) -> Result<Progress, DatabricksError> {
    let started = Instant::now();
    let progress = workspace
        .resume_statement(statement_id, pending_wait, timeout)
        .await?;
    Ok(progress_of(progress, started))
}

/// The result columns as the API sends them.
#[must_use]
pub fn columns(columns: Vec<ResultColumn>) -> Vec<Column> {
    columns
        .into_iter()
        .map(|c| Column {
            name: c.name,
            type_name: c.type_name,
            type_text: c.type_text,
        })
        .collect()
}

/// The first page of a statement response that someone else ran to its end (a Genie query
/// result): at most `limit` rows of its first chunk, typed by the same rule as every other
/// result ([`typed_value`], from the manifest's column types).
#[derive(Debug, Clone, PartialEq)]
pub struct FirstPage {
    /// The workspace's statement id.
    pub statement_id: String,
    /// Columns in order.
    pub columns: Vec<Column>,
    /// Rows, typed.
    pub rows: Vec<Vec<Value>>,
    /// Whether the result holds more rows than these: a limit cut it, more chunks follow, or
    /// the first chunk held more than `limit`.
    pub truncated: bool,
    /// Rows in the whole result, when the workspace says.
    pub total_row_count: Option<u64>,
}

/// Types the first chunk of `response` (its state is not checked here), cut at `limit` rows.
#[must_use]
pub fn first_page(response: StatementResponse, limit: usize) -> FirstPage {
    let (schema, mut truncated, total_row_count) = match response.manifest {
        Some(manifest) => (
            manifest.schema.map(|s| s.columns).unwrap_or_default(),
            manifest.truncated,
            manifest.total_row_count,
        ),
        None => (Vec::new(), false, None),
    };
    let mut raw = match response.result {
        Some(chunk) => {
            truncated |= chunk.next_chunk_index.is_some();
            chunk.data_array
        }
        None => Vec::new(),
    };
    if raw.len() > limit {
        raw.truncate(limit);
        truncated = true;
    }
    let types: Vec<Option<&str>> = schema.iter().map(|c| c.type_name.as_deref()).collect();
    let rows = raw
        .iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .map(|(i, v)| typed_value(v.as_deref(), types.get(i).copied().flatten()))
                .collect()
        })
        .collect();
    FirstPage {
        statement_id: response.statement_id,
        columns: columns(schema),
        rows,
        truncated,
        total_row_count,
    }
}

fn progress_of(progress: StatementProgress, started: Instant) -> Progress {
    match progress {
        StatementProgress::Finished(result) => Progress::Done(StatementRows {
            columns: columns(result.columns),
            rows: result.rows,
            truncated: result.truncated,
            statement_id: result.statement_id,
            executed_at: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            execution_time_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }),
        StatementProgress::Pending { statement_id } => Progress::Pending { statement_id },
    }
}
