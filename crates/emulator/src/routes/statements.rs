//! SQL Statement Execution (`shared/UPSTREAM.md` §4.4): submit a statement, poll it, fetch its
//! result chunks, cancel it.
//!
//! This module owns the HTTP side: validating the execute request, waiting up to `wait_timeout`,
//! `on_wait_timeout`, and the rule that only the principal that submitted a statement can see or
//! cancel it (anyone else gets the same 404 as for an unknown id, so ids leak nothing). The SQL
//! engine lives in `crate::engine`, whose header documents what SQL the emulator understands; the
//! state clock and the response shapes live in `crate::sql`.
//!
//! Request fields and what the emulator does with them:
//!
//! | field | handling |
//! |---|---|
//! | `statement` | required; evaluated once, at submission, as the caller (see `crate::engine`), on a blocking thread |
//! | `warehouse_id` | required; must be a fixture warehouse, else `404 RESOURCE_DOES_NOT_EXIST` |
//! | `catalog`, `schema` | default namespace; `main` and `default` when absent or empty |
//! | `wait_timeout` | `0s` or `5s`..`50s` (default `10s`), else `400 INVALID_PARAMETER_VALUE` |
//! | `on_wait_timeout` | `CONTINUE` (default) or `CANCEL`; applies only when `wait_timeout` is not `0s` |
//! | `disposition` | `INLINE` only; `EXTERNAL_LINKS` is refused with `400` (not emulated) |
//! | `format` | `JSON_ARRAY` only; `ARROW_STREAM` and `CSV` are refused with `400`, as the real service refuses them with `INLINE` |
//! | `row_limit` | applied; sets `manifest.truncated`; negative is `400` |
//! | `byte_limit` | checked to be non-negative, otherwise ignored |
//! | `parameters` | `[{"name", "value"?, "type"?}]`: `name` a non-empty string, unique ignoring case; `value` a string or absent/null (NULL); `type` absent (`STRING`) or one of `STRING`, `BOOLEAN`, `TINYINT`, `SMALLINT`, `INT`/`INTEGER`, `BIGINT`, `FLOAT`, `DOUBLE`, `DECIMAL(p,s)`, `DATE`, `TIMESTAMP`; anything else (`ARRAY`, `MAP`, `STRUCT` included) is `400 INVALID_PARAMETER_VALUE`. A value that does not convert to its type fails the statement, not the request (see `crate::engine`) |
//! | `query_tags` | checked to be at most 20, otherwise ignored |
//!
//! The execute call also answers at `/api/2.0/sql/statements/` (trailing slash), the path the
//! official SDKs post to.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::auth::Authenticated;
use crate::engine::{self, Context, Parameter, SqlType};
use crate::error::ApiError;
use crate::routes::JsonBody;
use crate::sql::{
    self, ChunkError, ResultChunk, Statement, StatementResponse, StatementState, Timing,
};
use crate::state::{Emulator, Principal, lock};

const DEFAULT_WAIT: Duration = Duration::from_secs(10);

pub(super) fn router() -> Router<Emulator> {
    Router::new()
        .route("/api/2.0/sql/statements", post(execute_statement))
        .route("/api/2.0/sql/statements/", post(execute_statement))
        .route("/api/2.0/sql/statements/{id}", get(get_statement))
        .route(
            "/api/2.0/sql/statements/{id}/result/chunks/{chunk_index}",
            get(get_statement_result_chunk_n),
        )
        .route(
            "/api/2.0/sql/statements/{id}/cancel",
            post(cancel_execution),
        )
}

/// The body of `POST /api/2.0/sql/statements`. Every field is optional here so that a missing
/// one gets a Databricks `400 INVALID_PARAMETER_VALUE` naming it, not a serde message.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ExecuteRequest {
    statement: Option<String>,
    warehouse_id: Option<String>,
    catalog: Option<String>,
    schema: Option<String>,
    parameters: Option<Vec<Value>>,
    wait_timeout: Option<String>,
    on_wait_timeout: Option<String>,
    disposition: Option<String>,
    format: Option<String>,
    row_limit: Option<i64>,
    byte_limit: Option<i64>,
    query_tags: Option<Vec<Value>>,
}

/// An execute request after validation.
#[derive(Debug)]
struct Execution {
    statement: String,
    catalog: String,
    schema: String,
    wait: Duration,
    cancel_on_timeout: bool,
    row_limit: Option<usize>,
    parameters: Vec<Parameter>,
}

impl ExecuteRequest {
    fn validate(self, emulator: &Emulator) -> Result<Execution, ApiError> {
        let statement = self
            .statement
            .ok_or_else(|| ApiError::bad_request("statement is required"))?;
        let warehouse_id = self
            .warehouse_id
            .filter(|w| !w.is_empty())
            .ok_or_else(|| ApiError::bad_request("warehouse_id is required"))?;
        if !emulator
            .fixture
            .warehouses
            .iter()
            .any(|w| w.id == warehouse_id)
        {
            return Err(ApiError::not_found(
                "RESOURCE_DOES_NOT_EXIST",
                format!("Warehouse {warehouse_id} does not exist."),
            ));
        }
        let wait = parse_wait_timeout(self.wait_timeout.as_deref())?;
        let cancel_on_timeout = match self.on_wait_timeout.as_deref() {
            None | Some("CONTINUE") => false,
            Some("CANCEL") => true,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "on_wait_timeout must be CONTINUE or CANCEL, got '{other}'"
                )));
            }
        };
        match self.disposition.as_deref() {
            None | Some("INLINE") => {}
            Some("EXTERNAL_LINKS") => {
                return Err(ApiError::bad_request(
                    "The emulator supports only disposition INLINE; EXTERNAL_LINKS is not emulated.",
                ));
            }
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "disposition must be INLINE or EXTERNAL_LINKS, got '{other}'"
                )));
            }
        }
        match self.format.as_deref() {
            None | Some("JSON_ARRAY") => {}
            Some(other @ ("ARROW_STREAM" | "CSV")) => {
                return Err(ApiError::bad_request(format!(
                    "Disposition INLINE supports only format JSON_ARRAY, got {other}."
                )));
            }
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "format must be JSON_ARRAY, ARROW_STREAM or CSV, got '{other}'"
                )));
            }
        }
        let row_limit = self
            .row_limit
            .map(|l| {
                usize::try_from(l)
                    .map_err(|_| ApiError::bad_request("row_limit must not be negative"))
            })
            .transpose()?;
        if self.byte_limit.is_some_and(|l| l < 0) {
            return Err(ApiError::bad_request("byte_limit must not be negative"));
        }
        let parameters = parse_parameters(self.parameters.unwrap_or_default())?;
        if self.query_tags.is_some_and(|tags| tags.len() > 20) {
            return Err(ApiError::bad_request("at most 20 query_tags are allowed"));
        }
        let or_default = |value: Option<String>, default: &str| {
            value
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        Ok(Execution {
            statement,
            catalog: or_default(self.catalog, engine::DEFAULT_CATALOG),
            schema: or_default(self.schema, engine::DEFAULT_SCHEMA),
            wait,
            cancel_on_timeout,
            row_limit,
            parameters,
        })
    }
}

/// Validates `parameters[]`: what a malformed entry gets is a `400`, as from the real API.
fn parse_parameters(raw: Vec<Value>) -> Result<Vec<Parameter>, ApiError> {
    let mut parameters: Vec<Parameter> = Vec::with_capacity(raw.len());
    for entry in raw {
        let name = match entry.get("name") {
            Some(Value::String(name)) if !name.is_empty() => name.clone(),
            _ => {
                return Err(ApiError::bad_request(
                    "every statement parameter needs a non-empty string name",
                ));
            }
        };
        let value = match entry.get("value") {
            None | Some(Value::Null) => None,
            Some(Value::String(value)) => Some(value.clone()),
            Some(_) => {
                return Err(ApiError::bad_request(format!(
                    "the value of parameter '{name}' must be a string"
                )));
            }
        };
        let sql_type = match entry.get("type") {
            None | Some(Value::Null) => SqlType::String,
            Some(Value::String(text)) => parameter_type(&name, text)?,
            Some(_) => {
                return Err(ApiError::bad_request(format!(
                    "the type of parameter '{name}' must be a string"
                )));
            }
        };
        if parameters
            .iter()
            .any(|p| p.name.eq_ignore_ascii_case(&name))
        {
            return Err(ApiError::bad_request(format!(
                "parameter '{name}' is given more than once"
            )));
        }
        parameters.push(Parameter {
            name,
            value,
            sql_type,
        });
    }
    Ok(parameters)
}

/// The type of a parameter: the scalar types of the API; collections are refused.
fn parameter_type(name: &str, text: &str) -> Result<SqlType, ApiError> {
    let head = text.trim().to_ascii_uppercase();
    if ["ARRAY", "MAP", "STRUCT"]
        .iter()
        .any(|collection| head.starts_with(collection))
    {
        return Err(ApiError::bad_request(format!(
            "parameter '{name}' has type {text}: ARRAY, MAP and STRUCT parameters are not \
             supported; pass a scalar and build the collection in SQL"
        )));
    }
    match SqlType::parse(text) {
        Some(SqlType::Binary | SqlType::Null | SqlType::Other { .. }) | None => Err(
            ApiError::bad_request(format!("parameter '{name}' has an unknown type '{text}'")),
        ),
        Some(sql_type) => Ok(sql_type),
    }
}

/// `0s`, or `5s` to `50s`; `10s` when absent.
fn parse_wait_timeout(text: Option<&str>) -> Result<Duration, ApiError> {
    let Some(text) = text else {
        return Ok(DEFAULT_WAIT);
    };
    let seconds = text
        .strip_suffix('s')
        .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|digits| digits.parse::<u64>().ok())
        .filter(|s| *s == 0 || (5..=50).contains(s));
    seconds.map(Duration::from_secs).ok_or_else(|| {
        ApiError::bad_request(format!(
            "wait_timeout must be 0s (do not wait) or between 5s and 50s, got '{text}'"
        ))
    })
}

/// Submits a statement and waits for it up to `wait_timeout`.
async fn execute_statement(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    JsonBody(request): JsonBody<ExecuteRequest>,
) -> Result<Json<StatementResponse>, ApiError> {
    let execution = request.validate(&emulator)?;
    let settings = emulator.settings();
    // SQLite blocks while it evaluates, so the evaluation runs on a blocking thread.
    let (shared, caller) = (emulator.clone(), Arc::clone(&principal));
    let (execution, outcome) = tokio::task::spawn_blocking(move || {
        let context = Context {
            engine: &shared.engine,
            fixture: &shared.fixture,
            principal: &caller,
            catalog: &execution.catalog,
            schema: &execution.schema,
            parameters: &execution.parameters,
        };
        let outcome = engine::evaluate(&execution.statement, &context, execution.row_limit);
        (execution, outcome)
    })
    .await
    .map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "the statement could not be evaluated",
        )
    })?;
    let submitted = Instant::now();
    let timing = Timing {
        pending: Duration::from_millis(settings.sql_pending_ms),
        running: Duration::from_millis(settings.sql_running_ms),
        chunk_rows: settings.sql_chunk_rows,
    };
    let id = uuid::Uuid::new_v4().to_string();
    let mut statement = Statement::new(id, &principal, submitted, timing, outcome);
    sql::insert_bounded(&mut lock(&emulator.statements), statement.clone());

    if !execution.wait.is_zero() && statement.done_at() > submitted {
        let wake = statement.wake();
        let canceled = wake.notified();
        tokio::pin!(canceled);
        // Registered before looking at the state, so a cancel from now on cannot be missed.
        canceled.as_mut().enable();
        let already_canceled = current(&emulator, &statement)
            .is_some_and(|s| s.state_at(Instant::now()) == StatementState::Canceled);
        if !already_canceled {
            let until = statement.done_at().min(submitted + execution.wait);
            tokio::select! {
                () = tokio::time::sleep_until(until) => {}
                () = &mut canceled => {}
            }
        }
    }

    let now = Instant::now();
    let cancel = execution.cancel_on_timeout && !execution.wait.is_zero();
    {
        let mut statements = lock(&emulator.statements);
        if let Some(stored) = statements.get_mut(statement.id()) {
            if cancel {
                stored.cancel(now);
            }
            statement = stored.clone();
        } else if cancel {
            // Evicted while we waited (only under a flood of statements): answer from our copy.
            statement.cancel(now);
        }
    }
    Ok(Json(statement.response(now)))
}

/// The stored version of `statement`, which a cancel may have changed.
fn current(emulator: &Emulator, statement: &Statement) -> Option<Statement> {
    lock(&emulator.statements).get(statement.id()).cloned()
}

/// The statement `id` if `principal` submitted it; a 404 otherwise, whether or not it exists.
fn find(emulator: &Emulator, principal: &Principal, id: &str) -> Result<Statement, ApiError> {
    lock(&emulator.statements)
        .get(id)
        .filter(|s| s.owned_by(principal))
        .cloned()
        .ok_or_else(|| statement_not_found(id))
}

fn statement_not_found(id: &str) -> ApiError {
    ApiError::not_found(
        "RESOURCE_DOES_NOT_EXIST",
        format!("Statement {id} does not exist."),
    )
}

/// The statement's current state, with its manifest and first chunk once it succeeded.
async fn get_statement(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<StatementResponse>, ApiError> {
    let statement = find(&emulator, &principal, &id)?;
    Ok(Json(statement.response(Instant::now())))
}

/// One result chunk of a succeeded statement, in any order.
async fn get_statement_result_chunk_n(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path((id, chunk_index)): Path<(String, String)>,
) -> Result<Json<ResultChunk>, ApiError> {
    let statement = find(&emulator, &principal, &id)?;
    let index: usize = chunk_index.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "chunk_index must be a non-negative integer, got '{chunk_index}'"
        ))
    })?;
    match statement.chunk(index, Instant::now()) {
        Ok(chunk) => Ok(Json(chunk)),
        Err(ChunkError::NotSucceeded(state)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_STATE",
            format!("Statement {id} is {state}; results are available only once it SUCCEEDED."),
        )),
        Err(ChunkError::OutOfRange { count }) => Err(ApiError::bad_request(format!(
            "chunk_index {index} is out of range: statement {id} has {count} result chunk(s)."
        ))),
    }
}

/// Cancels a statement that has not finished; a finished one is left as it is.
async fn cancel_execution(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mut statements = lock(&emulator.statements);
    let statement = statements
        .get_mut(&id)
        .filter(|s| s.owned_by(&principal))
        .ok_or_else(|| statement_not_found(&id))?;
    statement.cancel(Instant::now());
    Ok(Json(json!({})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_timeout_accepts_zero_and_five_to_fifty_seconds_only() {
        // Arrange
        let cases = [
            (None, Some(10)),
            (Some("0s"), Some(0)),
            (Some("5s"), Some(5)),
            (Some("50s"), Some(50)),
            (Some("4s"), None),
            (Some("51s"), None),
            (Some("10"), None),
            (Some("s"), None),
            (Some("+5s"), None),
            (Some("10m"), None),
            (Some("99999999999999999999999s"), None),
        ];

        for (text, expected) in cases {
            // Act
            let parsed = parse_wait_timeout(text).ok().map(|d| d.as_secs());

            // Assert
            assert_eq!(parsed, expected, "{text:?}");
        }
    }
}
