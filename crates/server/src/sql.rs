//! Running one SQL statement on the configured warehouse and typing its rows: the one path the
//! table preview and the governed queries share. It takes a [`Workspace`] view, so whose
//! identity a statement runs with is decided by the caller of this module (the user's view for
//! the preview and `run_as: user` queries, the app's for `run_as: app`), and returns
//! [`DatabricksError`]s for the routes to map. Values are typed by the client from the
//! manifest (`dbapp_databricks::api::sql`): numbers as numbers, booleans as booleans, NULL as
//! null, everything else as the string sent.

use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
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

fn progress_of(progress: StatementProgress, started: Instant) -> Progress {
    match progress {
        StatementProgress::Finished(result) => Progress::Done(StatementRows {
            columns: result
                .columns
                .into_iter()
                .map(|c| Column {
                    name: c.name,
                    type_name: c.type_name,
                    type_text: c.type_text,
                })
                .collect(),
            rows: result.rows,
            truncated: result.truncated,
            statement_id: result.statement_id,
            executed_at: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            execution_time_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }),
        StatementProgress::Pending { statement_id } => Progress::Pending { statement_id },
    }
}
