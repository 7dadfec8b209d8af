//! Governed queries over HTTP (`docs/queries.md`): the list of queries, running one with typed
//! parameters, and polling a run that waits for its warehouse. The catalog, the cache, the runs
//! and the page tokens are [`crate::queries`]'; running the statement is [`crate::sql`]'s, the
//! same path the table preview takes.
//!
//! A request checks, in order: the query exists (`QUERY_NOT_FOUND`), the body and every
//! parameter (`INVALID_REQUEST` naming `parameters.<name>`), the page token, the warehouse
//! (`WAREHOUSE_NOT_CONFIGURED`) and, for `run_as: app`, the app's credentials
//! (`APP_CREDENTIALS_NOT_CONFIGURED`). Then the cache answers, or a statement runs: as the
//! caller for `run_as: user` (their forwarded token, never the app's), as the app's service
//! principal for `run_as: app`. A statement still `PENDING` after `DBAPP_QUERY_PENDING_WAIT_MS`
//! is answered `202` with a run to poll.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dbapp_databricks::api::ExecuteStatement;
use dbapp_databricks::{DatabricksError, ErrorKind, Workspace};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::ItemsPage;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{ApiJson, ApiPath, Limit};
use crate::metrics::{QUERY_CACHE_HITS_TOTAL, QUERY_CACHE_MISSES_TOTAL};
use crate::queries::cache::{CacheKey, Scope};
use crate::queries::definition::{ParamType, QueryDefinition, RunAs};
use crate::queries::{PageToken, statement_params};
use crate::sql::{self, Column, Progress, StatementRows};
use crate::state::AppState;

/// How long a client should wait before polling a pending run again.
pub const POLL_AFTER_MS: u64 = 1_000;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_queries))
        .routes(routes!(run_query))
        .routes(routes!(get_query_run))
}

/// Whose identity a query runs with.
#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RunAsName {
    /// The caller (their forwarded token); results are cached per user.
    User,
    /// The app's service principal; results are shared by every caller.
    App,
}

/// A declared parameter.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueryParameterItem {
    /// Name, as sent in `parameters`.
    pub name: String,
    /// `STRING`, `INT`, `BIGINT`, `DOUBLE`, `DECIMAL(p,s)`, `BOOLEAN`, `DATE` or `TIMESTAMP`.
    #[serde(rename = "type")]
    pub param_type: String,
    /// The default, as a caller would send it (a number for INT, BIGINT and DOUBLE, a boolean
    /// for BOOLEAN, else a string); `null` when the parameter is required.
    #[schema(required)]
    pub default: Option<Value>,
    /// Whether a value must be sent.
    pub required: bool,
    /// What it means.
    pub description: String,
}

/// A governed query.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueryItem {
    /// Name (from the file name): `[a-z0-9_-]`.
    pub name: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Whose identity it runs with.
    pub run_as: RunAsName,
    /// How long a result is cached; 0: never.
    pub cache_ttl_secs: u64,
    /// Its parameters, in declaration order.
    pub parameters: Vec<QueryParameterItem>,
}

/// Body of `POST /api/queries/{name}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunQueryRequest {
    /// Parameter values by name; absent or `null` ones take their default.
    #[serde(default)]
    #[schema(value_type = Option<std::collections::BTreeMap<String, Value>>)]
    pub parameters: Option<Value>,
    /// Rows per page, 1–1000 (default 100).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The previous page's `next_page_token`; send the same parameters with it.
    #[serde(default)]
    pub page_token: Option<String>,
}

/// A page of a query's result.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueryResultPage {
    /// The query's name.
    pub query: String,
    /// Columns in order.
    pub columns: Vec<Column>,
    /// This page's rows: numbers as numbers, booleans as booleans, NULL as null, others as
    /// strings.
    pub rows: Vec<Vec<Value>>,
    /// Rows in this page.
    pub row_count: usize,
    /// Rows in the whole result (at most `DBAPP_QUERY_ROW_LIMIT`).
    pub total_row_count: usize,
    /// Whether the statement's row limit cut the result.
    pub truncated: bool,
    /// The token of the next page; `null` at the end.
    #[schema(required)]
    pub next_page_token: Option<String>,
    /// Whether the result came from the cache.
    pub cached: bool,
    /// When the statement finished, RFC 3339 UTC.
    pub executed_at: String,
    /// How long the statement took, as the server saw it.
    pub execution_time_ms: u64,
    /// The workspace's statement id.
    pub statement_id: String,
}

/// The state of a run that is not finished.
#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunState {
    /// Waiting for the SQL warehouse to start.
    Pending,
}

/// `202`: the query's warehouse is starting; poll `Location` after `poll_after_ms`.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueryRunPending {
    /// Always `PENDING`.
    pub state: RunState,
    /// The run to poll at `/api/queries/{name}/runs/{run_id}`.
    pub run_id: Uuid,
    /// The warehouse's state as the workspace reports it (e.g. `STARTING`); `null` when it
    /// could not be read.
    #[schema(required)]
    pub warehouse_state: Option<String>,
    /// How long to wait before polling.
    pub poll_after_ms: u64,
}

fn query_item(query: &QueryDefinition) -> QueryItem {
    QueryItem {
        name: query.name.clone(),
        title: query.title.clone(),
        description: query.description.clone(),
        run_as: match query.run_as {
            RunAs::User => RunAsName::User,
            RunAs::App => RunAsName::App,
        },
        cache_ttl_secs: query.cache_ttl_secs,
        parameters: query
            .params
            .iter()
            .map(|p| QueryParameterItem {
                name: p.name.clone(),
                param_type: p.param_type.to_string(),
                default: p.default.as_deref().map(|d| default_json(p.param_type, d)),
                required: p.default.is_none(),
                description: p.description.clone(),
            })
            .collect(),
    }
}

/// A normalised default as the JSON a caller sends.
fn default_json(param_type: ParamType, value: &str) -> Value {
    match param_type {
        ParamType::Int | ParamType::Bigint | ParamType::Double => value
            .parse::<serde_json::Number>()
            .map_or_else(|_| Value::String(value.to_owned()), Value::Number),
        ParamType::Boolean => Value::Bool(value == "true"),
        _ => Value::String(value.to_owned()),
    }
}

/// The governed queries the server offers.
#[utoipa::path(get, path = "/api/queries", tag = "queries", security(("user_token" = [])), responses(
    (status = 200, body = ItemsPage<QueryItem>),
    (status = 401, body = ErrorBody),
))]
async fn list_queries(State(app): State<AppState>, _caller: Caller) -> Json<ItemsPage<QueryItem>> {
    Json(ItemsPage {
        items: app.queries.catalog.iter().map(|q| query_item(q)).collect(),
        next_page_token: None,
    })
}

fn query_not_found(name: &str) -> ApiError {
    ApiError::not_found(
        ErrorCode::QueryNotFound,
        format!("There is no query '{name}'."),
    )
}

fn run_not_found() -> ApiError {
    ApiError::not_found(
        ErrorCode::QueryRunNotFound,
        "There is no such run of this query for you (it may have expired or been answered).",
    )
}

/// The workspace view a query runs with: the caller's for `user`, the app's for `app`.
fn workspace_for<'a>(
    app: &'a AppState,
    caller: &'a Caller,
    run_as: RunAs,
) -> Result<Workspace<'a>, ApiError> {
    match run_as {
        RunAs::User => Ok(caller.workspace(app)),
        RunAs::App => caller
            .app_workspace(app)
            .ok_or(ApiError::AppCredentialsNotConfigured),
    }
}

/// Maps a failed statement. The parameters were checked here, so a statement the warehouse
/// refuses is the query file's fault (`UPSTREAM_ERROR`, logged), except a missing privilege,
/// which is the caller's (`PERMISSION_DENIED`). A refused app credential is ours, never the
/// caller's `AUTH_*`. "Not found" is the run's statement when resuming one
/// (`QUERY_RUN_NOT_FOUND`), and otherwise the warehouse: a deployment fault (`UPSTREAM_ERROR`).
fn statement_error(
    app: &AppState,
    caller: &Caller,
    run_as: RunAs,
    error: DatabricksError,
    resuming: bool,
) -> ApiError {
    match (error.kind(), run_as) {
        (ErrorKind::BadRequest, _) if error.to_string().contains("INSUFFICIENT_PERMISSIONS") => {
            ApiError::PermissionDenied(error)
        }
        (ErrorKind::NotFound, _) if resuming => run_not_found(),
        (ErrorKind::BadRequest | ErrorKind::NotFound, _) => ApiError::Upstream(error),
        (kind, RunAs::App) if kind.is_auth_failure() => ApiError::Upstream(error),
        (_, RunAs::App) => ApiError::from_upstream(error, ErrorCode::QueryNotFound),
        (_, RunAs::User) => caller.upstream_error(app, error, ErrorCode::QueryNotFound),
    }
}

fn scope_of(query: &QueryDefinition, caller: &Caller) -> Scope {
    match query.run_as {
        RunAs::User => Scope::User(caller.user_id().to_string()),
        RunAs::App => Scope::Shared,
    }
}

/// The page of `result` from `offset`.
fn page(
    key: &CacheKey,
    result: &StatementRows,
    offset: u64,
    limit: u32,
    cached: bool,
) -> QueryResultPage {
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(result.rows.len());
    let end = start
        .saturating_add(usize::try_from(limit).unwrap_or(usize::MAX))
        .min(result.rows.len());
    let rows = result.rows[start..end].to_vec();
    QueryResultPage {
        query: key.query.clone(),
        columns: result.columns.clone(),
        row_count: rows.len(),
        rows,
        total_row_count: result.rows.len(),
        truncated: result.truncated,
        next_page_token: (end < result.rows.len()).then(|| {
            PageToken {
                offset: end as u64,
                fingerprint: PageToken::fingerprint(key),
            }
            .encode()
        }),
        cached,
        executed_at: result.executed_at.clone(),
        execution_time_ms: result.execution_time_ms,
        statement_id: result.statement_id.clone(),
    }
}

/// Answers `202` for a run that waits for its warehouse.
async fn pending(
    workspace: &Workspace<'_>,
    query: &str,
    run_id: Uuid,
    warehouse: &str,
) -> Response {
    // Best effort: the run is real whether or not the warehouse's state can be read.
    let warehouse_state = match workspace.get_warehouse(warehouse).await {
        Ok(warehouse) => Some(warehouse.state).filter(|state| !state.is_empty()),
        Err(error) => {
            tracing::debug!(event = "queries.warehouse_state_unknown", error = %error);
            None
        }
    };
    let location = format!("/api/queries/{query}/runs/{run_id}");
    let retry_after = POLL_AFTER_MS.div_ceil(1000).max(1);
    let mut response = (
        StatusCode::ACCEPTED,
        Json(QueryRunPending {
            state: RunState::Pending,
            run_id,
            warehouse_state,
            poll_after_ms: POLL_AFTER_MS,
        }),
    )
        .into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, value);
    }
    headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

/// Runs a governed query with typed parameters: `200` with a page of the result (from the
/// cache when it holds one), or `202` while the SQL warehouse starts.
#[utoipa::path(post, path = "/api/queries/{name}", tag = "queries", security(("user_token" = [])),
    params(("name" = String, Path, description = "The query's name")),
    request_body = RunQueryRequest,
    responses(
    (status = 200, body = QueryResultPage),
    (status = 202, body = QueryRunPending, description = "The warehouse is starting; poll `Location`",
        headers(("Location" = String), ("Retry-After" = u64))),
    (status = 400, body = ErrorBody, description = "INVALID_REQUEST (`detail.field` is `parameters.<name>`, `limit`, `page_token` or `body`)"),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "PERMISSION_DENIED"),
    (status = 404, body = ErrorBody, description = "QUERY_NOT_FOUND"),
    (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
    (status = 429, body = ErrorBody), (status = 502, body = ErrorBody),
    (status = 503, body = ErrorBody, description = "WAREHOUSE_NOT_CONFIGURED, APP_CREDENTIALS_NOT_CONFIGURED"),
    (status = 504, body = ErrorBody, description = "UPSTREAM_TIMEOUT"),
))]
async fn run_query(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let query = Arc::clone(
        app.queries
            .catalog
            .get(&name)
            .ok_or_else(|| query_not_found(&name))?,
    );
    let request: RunQueryRequest = super::from_json_object("body", body)?;
    let limit = Limit::new(request.limit)?.get();
    let given = match request.parameters {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(ApiError::invalid("parameters", "must be a JSON object")),
    };
    let params = query
        .bind(&given)
        .map_err(|e| ApiError::invalid(format!("parameters.{}", e.name), e.reason))?;
    let key = CacheKey::new(&query.name, scope_of(&query, &caller), &params);
    let offset = match &request.page_token {
        None => 0,
        Some(token) => {
            PageToken::decode(token)
                .filter(|t| t.fingerprint == PageToken::fingerprint(&key))
                .ok_or_else(|| {
                    ApiError::invalid(
                        "page_token",
                        "is not a token of this query with these parameters",
                    )
                })?
                .offset
        }
    };
    let Some(warehouse) = app.settings.databricks_warehouse_id.clone() else {
        return Err(ApiError::WarehouseNotConfigured);
    };
    let labels = [("query", query.name.as_str())];
    if let Some(hit) = app.queries.cache.get(&key) {
        app.metrics.count(QUERY_CACHE_HITS_TOTAL, &labels, 1);
        return Ok(Json(page(&key, &hit, offset, limit, true)).into_response());
    }
    app.metrics.count(QUERY_CACHE_MISSES_TOTAL, &labels, 1);
    // Only a miss needs a client; an app query without app credentials has never been cached.
    let workspace = workspace_for(&app, &caller, query.run_as)?;
    let statement = ExecuteStatement::new(query.sql.clone(), warehouse.clone())
        .parameters(statement_params(&params))
        .row_limit(app.settings.dbapp.query_row_limit)
        .timeout(statement_timeout(&app));
    let progress = sql::run(&workspace, &statement, Some(pending_wait(&app)))
        .await
        .map_err(|e| statement_error(&app, &caller, query.run_as, e, false))?;
    match progress {
        Progress::Done(result) => {
            Ok(Json(finish(&app, &query, key, result, offset, limit)).into_response())
        }
        Progress::Pending { statement_id } => {
            let run_id = app.queries.runs.start(
                &caller.user_id().to_string(),
                key,
                statement_id,
                (offset, limit),
            );
            Ok(pending(&workspace, &query.name, run_id, &warehouse).await)
        }
    }
}

/// Caches a finished result and answers its page.
fn finish(
    app: &AppState,
    query: &QueryDefinition,
    key: CacheKey,
    result: StatementRows,
    offset: u64,
    limit: u32,
) -> QueryResultPage {
    let result = Arc::new(result);
    let answer = page(&key, &result, offset, limit, false);
    app.queries
        .cache
        .insert(key, result, Duration::from_secs(query.cache_ttl_secs));
    answer
}

fn statement_timeout(app: &AppState) -> Duration {
    Duration::from_secs(app.settings.dbapp.statement_timeout_secs)
}

fn pending_wait(app: &AppState) -> Duration {
    Duration::from_millis(app.settings.dbapp.query_pending_wait_ms)
}

/// A run that waited for its warehouse: `202` while it still waits, then `200` with the page
/// the starting request asked for (later pages: `POST /api/queries/{name}` with the same
/// parameters and `page_token`). Only the user who started the run can see it.
#[utoipa::path(get, path = "/api/queries/{name}/runs/{run_id}", tag = "queries", security(("user_token" = [])),
    params(("name" = String, Path, description = "The query's name"),
           ("run_id" = String, Path, description = "From the `202` answer")),
    responses(
    (status = 200, body = QueryResultPage),
    (status = 202, body = QueryRunPending, description = "Still waiting for the warehouse",
        headers(("Location" = String), ("Retry-After" = u64))),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "QUERY_NOT_FOUND, QUERY_RUN_NOT_FOUND"),
    (status = 502, body = ErrorBody),
    (status = 503, body = ErrorBody, description = "WAREHOUSE_NOT_CONFIGURED, APP_CREDENTIALS_NOT_CONFIGURED"),
    (status = 504, body = ErrorBody, description = "UPSTREAM_TIMEOUT"),
))]
async fn get_query_run(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath((name, run_id)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let query = Arc::clone(
        app.queries
            .catalog
            .get(&name)
            .ok_or_else(|| query_not_found(&name))?,
    );
    let run_id = Uuid::parse_str(&run_id).map_err(|_| run_not_found())?;
    let run = app
        .queries
        .runs
        .find(run_id, &caller.user_id().to_string(), &query.name)
        .ok_or_else(run_not_found)?;
    let Some(warehouse) = app.settings.databricks_warehouse_id.clone() else {
        return Err(ApiError::WarehouseNotConfigured);
    };
    let workspace = workspace_for(&app, &caller, query.run_as)?;
    let progress = sql::resume(
        &workspace,
        &run.statement_id,
        pending_wait(&app),
        statement_timeout(&app),
    )
    .await;
    match progress {
        Ok(Progress::Pending { .. }) => {
            Ok(pending(&workspace, &query.name, run_id, &warehouse).await)
        }
        Ok(Progress::Done(result)) => {
            app.queries.runs.finish(run_id);
            let (offset, limit) = run.page;
            Ok(Json(finish(&app, &query, run.key, result, offset, limit)).into_response())
        }
        Err(error) => {
            app.queries.runs.finish(run_id);
            Err(statement_error(&app, &caller, query.run_as, error, true))
        }
    }
}
