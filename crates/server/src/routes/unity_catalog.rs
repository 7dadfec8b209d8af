//! Unity Catalog, as the user: catalogs, schemas, tables, one table with its columns, and a
//! preview of a table's rows through the SQL Statement Execution API on
//! `DATABRICKS_WAREHOUSE_ID`. Every name in a path is a [`Name`], checked against the identifier
//! pattern (`INVALID_IDENTIFIER`) before the handler runs, and quoted with backticks in SQL.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use dbapp_databricks::api::{ExecuteStatement, TableInfo};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ItemsPage, PageSpec, Pagination, page_upstream, rfc3339_ms, upstream_page};
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{Catalog, Limit, Name, Offset, Schema, Table};
use crate::sql::{self, Progress};
use crate::state::AppState;

/// A catalog.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogItem {
    /// Name.
    pub name: String,
    /// Comment.
    #[schema(required)]
    pub comment: Option<String>,
    /// Owner.
    #[schema(required)]
    pub owner: Option<String>,
    /// e.g. `MANAGED_CATALOG`.
    #[schema(required)]
    pub catalog_type: Option<String>,
}

/// A schema.
#[derive(Debug, Serialize, ToSchema)]
pub struct SchemaItem {
    /// Name.
    pub name: String,
    /// `catalog.schema`.
    pub full_name: String,
    /// Comment.
    #[schema(required)]
    pub comment: Option<String>,
    /// Owner.
    #[schema(required)]
    pub owner: Option<String>,
}

/// A table.
#[derive(Debug, Serialize, ToSchema)]
pub struct TableItem {
    /// Name.
    pub name: String,
    /// `catalog.schema.table`.
    pub full_name: String,
    /// e.g. `MANAGED`, `VIEW`.
    #[schema(required)]
    pub table_type: Option<String>,
    /// e.g. `DELTA`.
    #[schema(required)]
    pub data_source_format: Option<String>,
    /// Comment.
    #[schema(required)]
    pub comment: Option<String>,
    /// Owner.
    #[schema(required)]
    pub owner: Option<String>,
}

/// A column of a table.
#[derive(Debug, Serialize, ToSchema)]
pub struct ColumnItem {
    /// Name.
    pub name: String,
    /// Position, from 0.
    #[schema(required)]
    pub position: Option<u32>,
    /// SQL type as written, e.g. `decimal(10,2)`.
    #[schema(required)]
    pub type_text: Option<String>,
    /// Type name, e.g. `DECIMAL`.
    #[schema(required)]
    pub type_name: Option<String>,
    /// Whether it may be null.
    #[schema(required)]
    pub nullable: Option<bool>,
    /// Comment.
    #[schema(required)]
    pub comment: Option<String>,
}

/// A table with its columns: the list item's fields, and more.
#[derive(Debug, Serialize, ToSchema)]
pub struct TableDetail {
    /// The fields of the list item.
    #[serde(flatten)]
    pub table: TableItem,
    /// Columns, in order.
    pub columns: Vec<ColumnItem>,
    /// Creation time (RFC 3339).
    #[schema(required)]
    pub created_at: Option<String>,
    /// Last update (RFC 3339).
    #[schema(required)]
    pub updated_at: Option<String>,
}

/// A result column of a preview.
#[derive(Debug, Serialize, ToSchema)]
pub struct RowColumn {
    /// Name.
    pub name: String,
    /// Type name, e.g. `LONG`.
    #[schema(required)]
    pub type_name: Option<String>,
}

/// Rows of a table.
#[derive(Debug, Serialize, ToSchema)]
pub struct TableRows {
    /// The result's columns.
    pub columns: Vec<RowColumn>,
    /// Rows: numbers as numbers, booleans as booleans, others as strings, null as null.
    pub rows: Vec<Vec<Value>>,
    /// Rows returned.
    pub row_count: usize,
    /// More rows follow `offset + row_count`.
    pub has_more: bool,
    /// The SQL statement's id.
    pub statement_id: String,
    /// Time the statement took, end to end.
    pub execution_time_ms: u64,
}

/// Paging of a rows preview.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RowsQuery {
    /// Rows, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Rows to skip (≥ 0).
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_catalogs))
        .routes(routes!(list_schemas))
        .routes(routes!(list_tables))
        .routes(routes!(get_table))
        .routes(routes!(preview_rows))
}

/// The catalogs the user can see.
#[utoipa::path(get, path = "/api/unity-catalog/catalogs", tag = "unity-catalog",
    security(("user_token" = [])), params(Pagination), responses(
    (status = 200, body = ItemsPage<CatalogItem>),
    (status = 400, body = ErrorBody, description = "INVALID_REQUEST"),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 429, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody),
))]
async fn list_catalogs(
    State(app): State<AppState>,
    caller: Caller,
    spec: PageSpec,
) -> Result<Json<ItemsPage<CatalogItem>>, ApiError> {
    let workspace = caller.workspace(&app);
    let (items, next) = page_upstream(&spec, |token, limit| {
        let workspace = &workspace;
        async move {
            let page = workspace
                .list_catalogs(&upstream_page(token, limit))
                .await?;
            Ok::<_, dbapp_databricks::DatabricksError>((page.items, page.next_page_token))
        }
    })
    .await
    .map_err(|e| caller.upstream_error(&app, e, ErrorCode::CatalogNotFound))?;
    Ok(Json(ItemsPage {
        items: items
            .into_iter()
            .map(|c| CatalogItem {
                name: c.name,
                comment: c.comment,
                owner: c.owner,
                catalog_type: c.catalog_type,
            })
            .collect(),
        next_page_token: next.map(|c| c.encode()),
    }))
}

/// The schemas of a catalog.
#[utoipa::path(get, path = "/api/unity-catalog/catalogs/{catalog}/schemas", tag = "unity-catalog",
    security(("user_token" = [])),
    params(("catalog" = String, Path, description = "Catalog name", pattern = "^[A-Za-z0-9_][A-Za-z0-9_-]{0,254}$"), Pagination),
    responses(
    (status = 200, body = ItemsPage<SchemaItem>),
    (status = 400, body = ErrorBody, description = "INVALID_IDENTIFIER, INVALID_REQUEST"),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "CATALOG_NOT_FOUND"),
    (status = 429, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody),
))]
async fn list_schemas(
    State(app): State<AppState>,
    caller: Caller,
    catalog: Name<Catalog>,
    spec: PageSpec,
) -> Result<Json<ItemsPage<SchemaItem>>, ApiError> {
    let workspace = caller.workspace(&app);
    let (items, next) = page_upstream(&spec, |token, limit| {
        let (workspace, catalog) = (&workspace, &catalog);
        async move {
            let page = workspace
                .list_schemas(catalog, &upstream_page(token, limit))
                .await?;
            Ok::<_, dbapp_databricks::DatabricksError>((page.items, page.next_page_token))
        }
    })
    .await
    .map_err(|e| caller.upstream_error(&app, e, ErrorCode::CatalogNotFound))?;
    Ok(Json(ItemsPage {
        items: items
            .into_iter()
            .map(|s| SchemaItem {
                full_name: s
                    .full_name
                    .clone()
                    .unwrap_or_else(|| format!("{catalog}.{}", s.name)),
                name: s.name,
                comment: s.comment,
                owner: s.owner,
            })
            .collect(),
        next_page_token: next.map(|c| c.encode()),
    }))
}

fn table_item(t: &TableInfo, catalog: &str, schema: &str) -> TableItem {
    TableItem {
        name: t.name.clone(),
        full_name: t
            .full_name
            .clone()
            .unwrap_or_else(|| format!("{catalog}.{schema}.{}", t.name)),
        table_type: t.table_type.clone(),
        data_source_format: t.data_source_format.clone(),
        comment: t.comment.clone(),
        owner: t.owner.clone(),
    }
}

/// The tables of a schema.
#[utoipa::path(get, path = "/api/unity-catalog/catalogs/{catalog}/schemas/{schema}/tables", tag = "unity-catalog",
    security(("user_token" = [])),
    params(("catalog" = String, Path), ("schema" = String, Path), Pagination),
    responses(
    (status = 200, body = ItemsPage<TableItem>),
    (status = 400, body = ErrorBody, description = "INVALID_IDENTIFIER, INVALID_REQUEST"),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "CATALOG_NOT_FOUND, SCHEMA_NOT_FOUND"),
    (status = 429, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody),
))]
async fn list_tables(
    State(app): State<AppState>,
    caller: Caller,
    catalog: Name<Catalog>,
    schema: Name<Schema>,
    spec: PageSpec,
) -> Result<Json<ItemsPage<TableItem>>, ApiError> {
    tables_page(&app, &caller, &catalog, &schema, &spec)
        .await
        .map(Json)
}

/// A page of a schema's tables as the caller: the list route, and the assistant's
/// `list_tables` tool.
pub(crate) async fn tables_page(
    app: &AppState,
    caller: &Caller,
    catalog: &Name<Catalog>,
    schema: &Name<Schema>,
    spec: &PageSpec,
) -> Result<ItemsPage<TableItem>, ApiError> {
    let workspace = caller.workspace(app);
    let (items, next) = page_upstream(spec, |token, limit| {
        let workspace = &workspace;
        async move {
            let page = workspace
                .list_tables(catalog, schema, &upstream_page(token, limit))
                .await?;
            Ok::<_, dbapp_databricks::DatabricksError>((page.items, page.next_page_token))
        }
    })
    .await
    .map_err(|e| caller.upstream_error(app, e, ErrorCode::SchemaNotFound))?;
    Ok(ItemsPage {
        items: items
            .iter()
            .map(|t| table_item(t, catalog, schema))
            .collect(),
        next_page_token: next.map(|c| c.encode()),
    })
}

async fn fetch_table(
    app: &AppState,
    caller: &Caller,
    catalog: &Name<Catalog>,
    schema: &Name<Schema>,
    table: &Name<Table>,
) -> Result<TableInfo, ApiError> {
    caller
        .workspace(app)
        .get_table(&format!("{catalog}.{schema}.{table}"))
        .await
        .map_err(|e| caller.upstream_error(app, e, ErrorCode::TableNotFound))
}

/// One table with its columns.
#[utoipa::path(get, path = "/api/unity-catalog/catalogs/{catalog}/schemas/{schema}/tables/{table}", tag = "unity-catalog",
    security(("user_token" = [])),
    params(("catalog" = String, Path), ("schema" = String, Path), ("table" = String, Path)),
    responses(
    (status = 200, body = TableDetail),
    (status = 400, body = ErrorBody, description = "INVALID_IDENTIFIER"),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "CATALOG_NOT_FOUND, SCHEMA_NOT_FOUND, TABLE_NOT_FOUND"),
    (status = 429, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody),
))]
async fn get_table(
    State(app): State<AppState>,
    caller: Caller,
    catalog: Name<Catalog>,
    schema: Name<Schema>,
    table: Name<Table>,
) -> Result<Json<TableDetail>, ApiError> {
    let info = fetch_table(&app, &caller, &catalog, &schema, &table).await?;
    Ok(Json(TableDetail {
        table: table_item(&info, &catalog, &schema),
        columns: info
            .columns
            .iter()
            .map(|c| ColumnItem {
                name: c.name.clone(),
                position: c.position,
                type_text: c.type_text.clone(),
                type_name: c.type_name.clone(),
                nullable: c.nullable,
                comment: c.comment.clone(),
            })
            .collect(),
        created_at: rfc3339_ms(info.created_at),
        updated_at: rfc3339_ms(info.updated_at),
    }))
}

/// The largest preview `offset`: it is sent as an `INT` statement parameter.
pub const MAX_PREVIEW_OFFSET: u64 = i32::MAX as u64;

/// Quotes an identifier for Databricks SQL (already validated: no backtick can occur).
fn quote(identifier: &str) -> String {
    format!("`{}`", identifier.replace('`', "``"))
}

/// The preview statement: `limit + 1` rows (one more than asked tells whether more follow)
/// from `offset`. The numbers travel as `INT` statement parameters; only the validated, quoted
/// identifiers are part of the SQL text.
fn preview_statement(
    catalog: &str,
    schema: &str,
    table: &str,
    limit: u32,
    offset: u64,
    warehouse: String,
) -> ExecuteStatement {
    let statement = format!(
        "SELECT * FROM {}.{}.{} LIMIT :limit OFFSET :offset",
        quote(catalog),
        quote(schema),
        quote(table),
    );
    ExecuteStatement::new(statement, warehouse).parameters(vec![
        sql::int_param("limit", u64::from(limit) + 1),
        sql::int_param("offset", offset),
    ])
}

/// A page of the table's rows, read as the user on the SQL warehouse.
#[utoipa::path(get, path = "/api/unity-catalog/catalogs/{catalog}/schemas/{schema}/tables/{table}/rows", tag = "unity-catalog",
    security(("user_token" = [])),
    params(("catalog" = String, Path), ("schema" = String, Path), ("table" = String, Path), RowsQuery),
    responses(
    (status = 200, body = TableRows),
    (status = 400, body = ErrorBody, description = "INVALID_IDENTIFIER, INVALID_REQUEST"),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "TABLE_NOT_FOUND"),
    (status = 503, body = ErrorBody, description = "WAREHOUSE_NOT_CONFIGURED"),
    (status = 504, body = ErrorBody, description = "UPSTREAM_TIMEOUT"),
))]
async fn preview_rows(
    State(app): State<AppState>,
    caller: Caller,
    limit: Limit,
    offset: Offset,
    catalog: Name<Catalog>,
    schema: Name<Schema>,
    table: Name<Table>,
) -> Result<Json<TableRows>, ApiError> {
    preview(
        &app,
        &caller,
        &catalog,
        &schema,
        &table,
        limit.get(),
        offset.get(),
    )
    .await
    .map(Json)
}

/// Up to `limit` rows of a table from `offset`, read as the caller on the SQL warehouse: the
/// preview route, and the assistant's `preview_table` tool.
pub(crate) async fn preview(
    app: &AppState,
    caller: &Caller,
    catalog: &Name<Catalog>,
    schema: &Name<Schema>,
    table: &Name<Table>,
    limit: u32,
    offset: u64,
) -> Result<TableRows, ApiError> {
    if offset > MAX_PREVIEW_OFFSET {
        return Err(ApiError::invalid(
            "offset",
            format!("must be at most {MAX_PREVIEW_OFFSET} (an INT statement parameter)"),
        ));
    }
    let Some(warehouse) = app.settings.databricks_warehouse_id.clone() else {
        return Err(ApiError::WarehouseNotConfigured);
    };
    // Existence and permission first, so the answer is TABLE_NOT_FOUND or PERMISSION_DENIED
    // rather than a SQL error.
    fetch_table(app, caller, catalog, schema, table).await?;
    let request = preview_statement(catalog, schema, table, limit, offset, warehouse).timeout(
        Duration::from_secs(app.settings.dbapp.statement_timeout_secs),
    );
    let result = match sql::run(&caller.workspace(app), &request, None)
        .await
        .map_err(|e| caller.upstream_error(app, e, ErrorCode::TableNotFound))?
    {
        Progress::Done(result) => result,
        // Without a pending wait the statement is driven to its end or to the deadline.
        Progress::Pending { .. } => return Err(ApiError::UpstreamTimeout(None)),
    };
    let execution_time_ms = result.execution_time_ms;
    let mut rows = result.rows;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    Ok(TableRows {
        columns: result
            .columns
            .into_iter()
            .map(|c| RowColumn {
                name: c.name,
                type_name: c.type_name,
            })
            .collect(),
        row_count: rows.len(),
        rows,
        has_more,
        statement_id: result.statement_id,
        execution_time_ms,
    })
}
