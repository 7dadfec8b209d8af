//! SQL Statement Execution (`shared/UPSTREAM.md` §4.4, `shared/UPSTREAM-2.md` §3.2): submit a
//! statement, poll it, fetch its result chunks (inline or as external links), cancel or close it,
//! and download the bytes behind an external link.
//!
//! This module owns the HTTP side: validating the execute request, the warehouse rules (it must
//! exist, the caller needs CAN_USE, a stopped one is started), waiting up to `wait_timeout`,
//! `on_wait_timeout`, and the rule that only the principal that submitted a statement can see,
//! cancel or close it (anyone else gets the same 404 as for an unknown id, so ids leak nothing).
//! The SQL engine lives in `crate::engine` (whose header documents what SQL the emulator
//! understands), the state clock and the response shapes in `crate::sql`, the result bytes and
//! link tokens in `crate::results`.
//!
//! Request fields and what the emulator does with them:
//!
//! | field | handling |
//! |---|---|
//! | `statement` | required; evaluated once, at submission, as the caller (see `crate::engine`), on a blocking thread |
//! | `warehouse_id` | required unless `session_id` names a session (whose warehouse is then used; a different one is `400`); unknown: `404 RESOURCE_DOES_NOT_EXIST`; no CAN_USE: `403 PERMISSION_DENIED`; not running: started, and the statement stays `PENDING` until it runs |
//! | `session_id` | a session of the caller (else `404`); its `catalog`/`schema` are the defaults |
//! | `catalog`, `schema` | default namespace; the session's, else `main` and `default` |
//! | `wait_timeout` | `0s` or `5s`..`50s` (default `10s`), else `400 INVALID_PARAMETER_VALUE` |
//! | `on_wait_timeout` | `CONTINUE` (default) or `CANCEL`; applies only when `wait_timeout` is not `0s` |
//! | `disposition` | `INLINE` (default), `EXTERNAL_LINKS`, `INLINE_OR_EXTERNAL_LINKS` (inline when the result is one chunk of at most `sql_hybrid_inline_bytes`) |
//! | `format` | `JSON_ARRAY` (default), `ARROW_STREAM`, `CSV`; `INLINE` with another format is `400`, as on the real service |
//! | `row_limit` | applied; sets `manifest.truncated`; negative is `400` |
//! | `byte_limit` | rows past it (counted as each row's JSON text) are cut; sets `manifest.truncated`; negative is `400` |
//! | `result_compression` | ignored: results are never compressed, and the manifest says nothing of compression |
//! | `parameters` | `[{"name", "value"?, "type"?}]`: `name` a non-empty string, unique ignoring case; `value` a string or absent/null (NULL); `type` absent (`STRING`) or one of `STRING`, `BOOLEAN`, `TINYINT`, `SMALLINT`, `INT`/`INTEGER`, `BIGINT`, `FLOAT`, `DOUBLE`, `DECIMAL(p,s)`, `DATE`, `TIMESTAMP`; anything else (`ARRAY`, `MAP`, `STRUCT` included) is `400 INVALID_PARAMETER_VALUE`. A value that does not convert to its type fails the statement, not the request (see `crate::engine`) |
//! | `query_tags` | checked to be at most 20, otherwise ignored |
//!
//! The execute call also answers at `/api/2.0/sql/statements/` (trailing slash), the path the
//! official SDKs post to. GET, cancel and close accept (and ignore) the JSON body the SQL
//! connector sends with them.
//!
//! External links point at `GET /_emulator/results/{token}`, outside the workspace API: like a
//! presigned cloud-storage URL it needs no token and refuses one (`400`, since a presigned URL
//! plus an `Authorization` header is two authentication mechanisms), answers `403` once expired,
//! and speaks cloud storage's XML errors rather than the Databricks envelope.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::auth::Authenticated;
use crate::engine::{self, Context, Parameter, SqlType};
use crate::error::ApiError;
use crate::fixture::{Warehouse, WarehouseState};
use crate::results::Format;
use crate::routes::{JsonBody, base_url};
use crate::sql::{
    ChunkError, Delivery, Disposition, Links, ResultChunk, Statement, StatementResponse, Timing,
    insert_bounded,
};
use crate::state::{Emulator, Principal, SqlSessionInfo, lock};

const DEFAULT_WAIT: Duration = Duration::from_secs(10);

pub(super) fn router() -> Router<Emulator> {
    Router::new()
        .route("/api/2.0/sql/statements", post(execute_statement))
        .route("/api/2.0/sql/statements/", post(execute_statement))
        .route(
            "/api/2.0/sql/statements/{id}",
            get(get_statement).delete(close_statement),
        )
        .route(
            "/api/2.0/sql/statements/{id}/result/chunks/{chunk_index}",
            get(get_statement_result_chunk_n),
        )
        .route(
            "/api/2.0/sql/statements/{id}/cancel",
            post(cancel_execution),
        )
}

/// The stand-in for cloud storage: the route external links point at, outside the workspace API.
pub(super) fn download_router() -> Router<Emulator> {
    Router::new().route("/_emulator/results/{token}", get(download_result))
}

/// The body of `POST /api/2.0/sql/statements`. Every field is optional here so that a missing
/// one gets a Databricks `400 INVALID_PARAMETER_VALUE` naming it, not a serde message.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ExecuteRequest {
    statement: Option<String>,
    warehouse_id: Option<String>,
    session_id: Option<String>,
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
    warehouse: Warehouse,
    catalog: String,
    schema: String,
    wait: Duration,
    cancel_on_timeout: bool,
    row_limit: Option<usize>,
    format: Format,
    disposition: Disposition,
    byte_limit: Option<u64>,
    parameters: Vec<Parameter>,
}

/// The warehouse `id` if `principal` may use it: `404` when unknown, `403` without CAN_USE.
pub(crate) fn usable_warehouse<'a>(
    emulator: &'a Emulator,
    principal: &Principal,
    id: &str,
) -> Result<&'a Warehouse, ApiError> {
    let warehouse = emulator
        .fixture
        .warehouses
        .iter()
        .find(|w| w.id == id)
        .ok_or_else(|| {
            ApiError::not_found(
                "RESOURCE_DOES_NOT_EXIST",
                format!("Warehouse {id} does not exist."),
            )
        })?;
    if !principal.admitted_by(warehouse.readers.as_ref()) {
        return Err(ApiError::permission_denied(format!(
            "User {} does not have CAN_USE permission on warehouse {id}.",
            principal.user_name
        )));
    }
    Ok(warehouse)
}

impl ExecuteRequest {
    fn validate(self, emulator: &Emulator, principal: &Principal) -> Result<Execution, ApiError> {
        let statement = self
            .statement
            .ok_or_else(|| ApiError::bad_request("statement is required"))?;
        let session = match self.session_id.as_deref().filter(|s| !s.is_empty()) {
            Some(id) => Some(find_session(emulator, principal, id)?),
            None => None,
        };
        let warehouse_id = self.warehouse_id.filter(|w| !w.is_empty());
        let warehouse_id = match (warehouse_id, &session) {
            (Some(w), Some(s)) if w != s.warehouse_id => {
                return Err(ApiError::bad_request(format!(
                    "warehouse_id {w} differs from the warehouse {} of session {}",
                    s.warehouse_id, s.session_id
                )));
            }
            (Some(w), _) => w,
            (None, Some(s)) => s.warehouse_id.clone(),
            (None, None) => return Err(ApiError::bad_request("warehouse_id is required")),
        };
        let warehouse = usable_warehouse(emulator, principal, &warehouse_id)?.clone();
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
        let disposition = match self.disposition.as_deref() {
            None | Some("INLINE") => Disposition::Inline,
            Some("EXTERNAL_LINKS") => Disposition::ExternalLinks,
            Some("INLINE_OR_EXTERNAL_LINKS") => Disposition::InlineOrExternalLinks,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "disposition must be INLINE, EXTERNAL_LINKS or INLINE_OR_EXTERNAL_LINKS, \
                     got '{other}'"
                )));
            }
        };
        let format = match self.format.as_deref() {
            None => Format::JsonArray,
            Some(name) => Format::parse(name).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "format must be JSON_ARRAY, ARROW_STREAM or CSV, got '{name}'"
                ))
            })?,
        };
        if disposition == Disposition::Inline && format != Format::JsonArray {
            return Err(ApiError::bad_request(format!(
                "Disposition INLINE supports only format JSON_ARRAY, got {}.",
                format.as_str()
            )));
        }
        let row_limit = self
            .row_limit
            .map(|l| {
                usize::try_from(l)
                    .map_err(|_| ApiError::bad_request("row_limit must not be negative"))
            })
            .transpose()?;
        let byte_limit = self
            .byte_limit
            .map(|l| {
                u64::try_from(l)
                    .map_err(|_| ApiError::bad_request("byte_limit must not be negative"))
            })
            .transpose()?;
        let parameters = parse_parameters(self.parameters.unwrap_or_default())?;
        if self.query_tags.is_some_and(|tags| tags.len() > 20) {
            return Err(ApiError::bad_request("at most 20 query_tags are allowed"));
        }
        let or_default = |value: Option<String>, fallback: Option<&String>, default: &str| {
            value
                .filter(|v| !v.is_empty())
                .or_else(|| fallback.filter(|v| !v.is_empty()).cloned())
                .unwrap_or_else(|| default.to_owned())
        };
        let session_catalog = session.as_ref().and_then(|s| s.catalog.as_ref());
        let session_schema = session.as_ref().and_then(|s| s.schema.as_ref());
        Ok(Execution {
            statement,
            warehouse,
            catalog: or_default(self.catalog, session_catalog, engine::DEFAULT_CATALOG),
            schema: or_default(self.schema, session_schema, engine::DEFAULT_SCHEMA),
            wait,
            cancel_on_timeout,
            row_limit,
            format,
            disposition,
            byte_limit,
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

/// The session `id` if `principal` opened it; a 404 otherwise.
pub(crate) fn find_session(
    emulator: &Emulator,
    principal: &Principal,
    id: &str,
) -> Result<SqlSessionInfo, ApiError> {
    lock(&emulator.sessions)
        .get(id)
        .filter(|s| s.owner == principal.user_name)
        .cloned()
        .ok_or_else(|| {
            ApiError::not_found(
                "RESOURCE_DOES_NOT_EXIST",
                format!("Session {id} does not exist."),
            )
        })
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

/// The link settings for a client that reached us at `base`.
fn links<'a>(emulator: &'a Emulator, base: &'a str) -> Links<'a> {
    let ttl_secs = i64::try_from(emulator.settings().sql_link_ttl_secs).unwrap_or(i64::MAX);
    Links {
        signer: &emulator.links,
        base_url: base,
        ttl: chrono::Duration::try_seconds(ttl_secs).unwrap_or(chrono::Duration::MAX),
    }
}

fn respond(
    emulator: &Emulator,
    statement: &Statement,
    headers: &HeaderMap,
) -> Result<Json<StatementResponse>, ApiError> {
    statement_response(emulator, statement, headers).map(Json)
}

/// The `StatementResponse` of `statement` now, for a client that reached us with `headers`; also
/// what Genie's query-result routes wrap.
pub(crate) fn statement_response(
    emulator: &Emulator,
    statement: &Statement,
    headers: &HeaderMap,
) -> Result<StatementResponse, ApiError> {
    let base = base_url(headers, emulator);
    statement
        .response(Instant::now(), &links(emulator, &base))
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                e.to_string(),
            )
        })
}

/// Submits a statement and waits for it up to `wait_timeout`.
async fn execute_statement(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    headers: HeaderMap,
    JsonBody(request): JsonBody<ExecuteRequest>,
) -> Result<Json<StatementResponse>, ApiError> {
    let execution = request.validate(&emulator, &principal)?;
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
    // Auto-start (UNCONFIRMED on the real service): a statement starts a stopped warehouse and
    // waits in PENDING for it.
    let warehouse_ready = {
        let mut warehouses = lock(&emulator.warehouses);
        match warehouses.state_at(&execution.warehouse.id, submitted) {
            Some(WarehouseState::Running) => submitted,
            _ => warehouses.start(&execution.warehouse, &settings, submitted),
        }
    };
    let timing = Timing {
        pending: Duration::from_millis(settings.sql_pending_ms),
        running: Duration::from_millis(settings.sql_running_ms),
        chunk_rows: settings.sql_chunk_rows,
        warehouse_ready,
    };
    let delivery = Delivery {
        format: execution.format,
        disposition: execution.disposition,
        byte_limit: execution.byte_limit,
        hybrid_inline_bytes: settings.sql_hybrid_inline_bytes,
    };
    let id = uuid::Uuid::new_v4().to_string();
    let mut statement =
        Statement::new(id, &principal, submitted, timing, outcome).deliver(delivery);
    insert_bounded(&mut lock(&emulator.statements), statement.clone());

    if !execution.wait.is_zero() && statement.done_at() > submitted {
        let wake = statement.wake();
        let canceled = wake.notified();
        tokio::pin!(canceled);
        // Registered before looking at the state, so a cancel from now on cannot be missed.
        canceled.as_mut().enable();
        let already_canceled = current(&emulator, &statement)
            .is_some_and(|s| s.state_at(Instant::now()).is_terminal());
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
    respond(&emulator, &statement, &headers)
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
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<StatementResponse>, ApiError> {
    let statement = find(&emulator, &principal, &id)?;
    respond(&emulator, &statement, &headers)
}

/// One result chunk of a succeeded statement, in any order: its rows, or its external link.
async fn get_statement_result_chunk_n(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    headers: HeaderMap,
    Path((id, chunk_index)): Path<(String, String)>,
) -> Result<Json<ResultChunk>, ApiError> {
    let statement = find(&emulator, &principal, &id)?;
    let index: usize = chunk_index.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "chunk_index must be a non-negative integer, got '{chunk_index}'"
        ))
    })?;
    let base = base_url(&headers, &emulator);
    let links = links(&emulator, &base);
    match statement.chunk(index, Instant::now(), &links) {
        Ok(chunk) => Ok(Json(chunk)),
        Err(error) => Err(chunk_error(&id, index, error)),
    }
}

fn chunk_error(id: &str, index: usize, error: ChunkError) -> ApiError {
    match error {
        ChunkError::NotSucceeded(state) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_STATE",
            format!("Statement {id} is {state}; results are available only once it SUCCEEDED."),
        ),
        ChunkError::OutOfRange { count } => ApiError::bad_request(format!(
            "chunk_index {index} is out of range: statement {id} has {count} result chunk(s)."
        )),
        ChunkError::Encode(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            e.to_string(),
        ),
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

/// Closes a statement (the SQL connector's `DELETE`): canceled if running, result released, state
/// `CLOSED` from now on.
async fn close_statement(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mut statements = lock(&emulator.statements);
    let statement = statements
        .get_mut(&id)
        .filter(|s| s.owned_by(&principal))
        .ok_or_else(|| statement_not_found(&id))?;
    statement.close(Instant::now());
    Ok(Json(json!({})))
}

/// A cloud-storage style XML error.
fn storage_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
         <Message>{message}</Message></Error>"
    );
    (status, [(header::CONTENT_TYPE, "application/xml")], body).into_response()
}

/// The bytes of one result chunk, for whoever holds an unexpired link; no token.
async fn download_result(
    State(emulator): State<Emulator>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    if headers.contains_key(header::AUTHORIZATION) {
        return storage_error(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "Only one auth mechanism allowed; a presigned URL must be fetched without an \
             Authorization header.",
        );
    }
    let Some(target) = emulator.links.verify(&token) else {
        return storage_error(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        );
    };
    if target.expires_at <= chrono::Utc::now() {
        return storage_error(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired");
    }
    let statement = lock(&emulator.statements)
        .get(&target.statement_id)
        .cloned();
    let bytes = statement.map(|s| {
        let format = s.format();
        (format, s.chunk_bytes(target.chunk_index, Instant::now()))
    });
    match bytes {
        Some((format, Ok(bytes))) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, format.content_type())],
            Body::from(bytes),
        )
            .into_response(),
        Some((_, Err(ChunkError::Encode(e)))) => storage_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            &e.to_string(),
        ),
        _ => storage_error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        ),
    }
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
