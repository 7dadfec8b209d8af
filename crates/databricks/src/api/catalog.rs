//! Unity Catalog (UPSTREAM §4.2): catalogs, schemas and tables, as pages ([`Page`]) or as
//! streams that walk every page, and one table by full name.
//!
//! Lists always send `max_results` (0 = the server's page size, as the SDKs do), so the
//! deprecated unpaginated mode is never used; streams keep going over empty pages that carry a
//! token. A 404 carries a resource-specific code (`CATALOG_DOES_NOT_EXIST`, ...): branch on
//! [`crate::ErrorKind::NotFound`], not on the code.

use std::collections::BTreeMap;

use futures_util::stream::{Stream, TryStreamExt};
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;

use super::{Page, PageRequest, encode_segment, paginate};
use crate::client::Workspace;
use crate::error::DatabricksError;
use crate::http::Operation;

// The `api`/`operation` names of this module's calls (see [`Operation`]).
const LIST_CATALOGS: Operation = Operation::new("unity_catalog", "list_catalogs");
const LIST_SCHEMAS: Operation = Operation::new("unity_catalog", "list_schemas");
const LIST_TABLES: Operation = Operation::new("unity_catalog", "list_tables");
const GET_TABLE: Operation = Operation::new("unity_catalog", "get_table");

/// A catalog (`CatalogInfo`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct CatalogInfo {
    /// Name.
    pub name: String,
    /// Full name (same as the name).
    #[serde(default)]
    pub full_name: Option<String>,
    /// `MANAGED_CATALOG`, `SYSTEM_CATALOG`, ...
    #[serde(default)]
    pub catalog_type: Option<String>,
    /// Comment.
    #[serde(default)]
    pub comment: Option<String>,
    /// Owner.
    #[serde(default)]
    pub owner: Option<String>,
    /// Creation time, epoch milliseconds.
    #[serde(default)]
    pub created_at: Option<i64>,
    /// Last update, epoch milliseconds.
    #[serde(default)]
    pub updated_at: Option<i64>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// A schema (`SchemaInfo`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct SchemaInfo {
    /// Name.
    pub name: String,
    /// Catalog name.
    #[serde(default)]
    pub catalog_name: Option<String>,
    /// `catalog.schema`.
    #[serde(default)]
    pub full_name: Option<String>,
    /// Comment.
    #[serde(default)]
    pub comment: Option<String>,
    /// Owner.
    #[serde(default)]
    pub owner: Option<String>,
    /// Creation time, epoch milliseconds.
    #[serde(default)]
    pub created_at: Option<i64>,
    /// Last update, epoch milliseconds.
    #[serde(default)]
    pub updated_at: Option<i64>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// A table or view (`TableInfo`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct TableInfo {
    /// Name.
    pub name: String,
    /// Catalog name.
    #[serde(default)]
    pub catalog_name: Option<String>,
    /// Schema name.
    #[serde(default)]
    pub schema_name: Option<String>,
    /// `catalog.schema.table`.
    #[serde(default)]
    pub full_name: Option<String>,
    /// `MANAGED`, `EXTERNAL`, `VIEW`, ...
    #[serde(default)]
    pub table_type: Option<String>,
    /// `DELTA`, `PARQUET`, ...
    #[serde(default)]
    pub data_source_format: Option<String>,
    /// Columns (absent from lists that omit them).
    #[serde(default)]
    pub columns: Vec<ColumnInfo>,
    /// Comment.
    #[serde(default)]
    pub comment: Option<String>,
    /// Owner.
    #[serde(default)]
    pub owner: Option<String>,
    /// Creation time, epoch milliseconds.
    #[serde(default)]
    pub created_at: Option<i64>,
    /// Last update, epoch milliseconds.
    #[serde(default)]
    pub updated_at: Option<i64>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// A column (`ColumnInfo`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct ColumnInfo {
    /// Name.
    pub name: String,
    /// 0-based position.
    #[serde(default)]
    pub position: Option<u32>,
    /// SQL type text, e.g. `bigint`.
    #[serde(default)]
    pub type_text: Option<String>,
    /// Type name, e.g. `LONG`.
    #[serde(default)]
    pub type_name: Option<String>,
    /// Whether NULL is allowed.
    #[serde(default)]
    pub nullable: Option<bool>,
    /// Comment.
    #[serde(default)]
    pub comment: Option<String>,
}

#[derive(Deserialize)]
struct Catalogs {
    #[serde(default)]
    catalogs: Vec<CatalogInfo>,
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct Schemas {
    #[serde(default)]
    schemas: Vec<SchemaInfo>,
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct Tables {
    #[serde(default)]
    tables: Vec<TableInfo>,
    next_page_token: Option<String>,
}

impl Workspace<'_> {
    /// One page of the catalogs the identity can see.
    ///
    /// # Errors
    /// Auth kinds when the token is refused; [`crate::ErrorKind::BadRequest`] for a bad page
    /// token; transport and 5xx kinds after retries.
    #[tracing::instrument(skip_all)]
    pub async fn list_catalogs(
        &self,
        page: &PageRequest,
    ) -> Result<Page<CatalogInfo>, DatabricksError> {
        let call = paged(
            self.call(
                LIST_CATALOGS,
                Method::GET,
                "/api/2.1/unity-catalog/catalogs",
            ),
            page,
        );
        let body: Catalogs = self.get_json(call, "catalogs list").await?;
        Ok(Page {
            items: body.catalogs,
            next_page_token: body.next_page_token,
        })
    }

    /// One page of the schemas of `catalog`.
    ///
    /// # Errors
    /// As [`Workspace::list_catalogs`], plus [`crate::ErrorKind::NotFound`] or
    /// [`crate::ErrorKind::PermissionDenied`] for the catalog.
    #[tracing::instrument(skip_all, fields(catalog = %catalog))]
    pub async fn list_schemas(
        &self,
        catalog: &str,
        page: &PageRequest,
    ) -> Result<Page<SchemaInfo>, DatabricksError> {
        let call = paged(
            self.call(LIST_SCHEMAS, Method::GET, "/api/2.1/unity-catalog/schemas"),
            page,
        )
        .query("catalog_name", catalog);
        let body: Schemas = self.get_json(call, "schemas list").await?;
        Ok(Page {
            items: body.schemas,
            next_page_token: body.next_page_token,
        })
    }

    /// One page of the tables of `catalog.schema`.
    ///
    /// # Errors
    /// As [`Workspace::list_schemas`].
    #[tracing::instrument(skip_all, fields(catalog = %catalog, schema = %schema))]
    pub async fn list_tables(
        &self,
        catalog: &str,
        schema: &str,
        page: &PageRequest,
    ) -> Result<Page<TableInfo>, DatabricksError> {
        let call = paged(
            self.call(LIST_TABLES, Method::GET, "/api/2.1/unity-catalog/tables"),
            page,
        )
        .query("catalog_name", catalog)
        .query("schema_name", schema);
        let body: Tables = self.get_json(call, "tables list").await?;
        Ok(Page {
            items: body.tables,
            next_page_token: body.next_page_token,
        })
    }

    /// Every catalog, page after page (`max_results` per page, 0 = server's choice).
    ///
    /// ```no_run
    /// # async fn run(client: dbapp_databricks::Client, token: dbapp_databricks::UserToken) -> Result<(), dbapp_databricks::DatabricksError> {
    /// use futures_util::TryStreamExt;
    ///
    /// let view = client.as_user(&token);
    /// let mut catalogs = std::pin::pin!(view.catalogs(100));
    /// while let Some(catalog) = catalogs.try_next().await? {
    ///     println!("{}", catalog.name);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn catalogs(
        &self,
        max_results: u32,
    ) -> impl Stream<Item = Result<CatalogInfo, DatabricksError>> + '_ {
        paginate(max_results, move |page| async move {
            self.list_catalogs(&page).await
        })
    }

    /// Every schema of `catalog`, page after page.
    pub fn schemas<'s>(
        &'s self,
        catalog: &'s str,
        max_results: u32,
    ) -> impl Stream<Item = Result<SchemaInfo, DatabricksError>> + 's {
        paginate(max_results, move |page| async move {
            self.list_schemas(catalog, &page).await
        })
    }

    /// Every table of `catalog.schema`, page after page.
    pub fn tables<'s>(
        &'s self,
        catalog: &'s str,
        schema: &'s str,
        max_results: u32,
    ) -> impl Stream<Item = Result<TableInfo, DatabricksError>> + 's {
        paginate(max_results, move |page| async move {
            self.list_tables(catalog, schema, &page).await
        })
    }

    /// Every catalog, collected.
    ///
    /// # Errors
    /// The first page's error.
    pub async fn list_all_catalogs(&self) -> Result<Vec<CatalogInfo>, DatabricksError> {
        self.catalogs(0).try_collect().await
    }

    /// Every schema of `catalog`, collected.
    ///
    /// # Errors
    /// The first page's error.
    pub async fn list_all_schemas(
        &self,
        catalog: &str,
    ) -> Result<Vec<SchemaInfo>, DatabricksError> {
        self.schemas(catalog, 0).try_collect().await
    }

    /// Every table of `catalog.schema`, collected.
    ///
    /// # Errors
    /// The first page's error.
    pub async fn list_all_tables(
        &self,
        catalog: &str,
        schema: &str,
    ) -> Result<Vec<TableInfo>, DatabricksError> {
        self.tables(catalog, schema, 0).try_collect().await
    }

    /// One table, with its columns, by full name `catalog.schema.table`.
    ///
    /// # Errors
    /// [`crate::ErrorKind::NotFound`] (code `TABLE_DOES_NOT_EXIST` or a parent's),
    /// [`crate::ErrorKind::PermissionDenied`], auth, transport and 5xx kinds.
    #[tracing::instrument(skip_all, fields(table = %full_name))]
    pub async fn get_table(&self, full_name: &str) -> Result<TableInfo, DatabricksError> {
        let path = format!(
            "/api/2.1/unity-catalog/tables/{}",
            encode_segment(full_name)
        );
        self.get_json(self.call(GET_TABLE, Method::GET, &path), "table")
            .await
    }
}

fn paged<'c>(call: crate::http::Call<'c>, page: &PageRequest) -> crate::http::Call<'c> {
    let call = call.query("max_results", page.max_results);
    match &page.page_token {
        Some(token) => call.query("page_token", token),
        None => call,
    }
}
