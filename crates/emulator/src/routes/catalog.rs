//! Unity Catalog (`shared/UPSTREAM.md` §4.2, `shared/UPSTREAM-2.md` §5.3 and §7): catalogs,
//! schemas, tables and volumes, listed in pages and fetched one by one, each seen only by the
//! principals its fixture `readers` admit; and whether a table exists.
//!
//! Table exists answers `{"table_exists": false}` for a missing table in a schema the caller
//! can use, `403` for a table it may not read, and for a missing schema or catalog the same
//! `404 SCHEMA_DOES_NOT_EXIST` / `CATALOG_DOES_NOT_EXIST` as the other table calls: what the real
//! service answers there is UNCONFIRMED (UPSTREAM-2 §8).
//!
//! Answers follow the real service: an object that does not exist is `404` with a
//! resource-specific code (`CATALOG_DOES_NOT_EXIST`, `SCHEMA_DOES_NOT_EXIST`,
//! `TABLE_DOES_NOT_EXIST`); one that exists but is not granted to the caller is
//! `403 PERMISSION_DENIED` when named, and simply absent from lists.
//!
//! Pagination: `max_results` absent returns everything (the deprecated unpaginated mode);
//! `0` means the server's page size (`default_page_size`); `n > 0` gives at most
//! `min(n, max_page_size)` items; negative is `400`. Page tokens are opaque. With the
//! `empty_pages` setting on, a list starts with an empty page that carries a token, and its last
//! page of data carries a token to one more empty page, as the real service may do: clients must
//! stop only when `next_page_token` is absent.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::fixture::{Catalog, Column, Schema, Settings, Table, Volume};
use crate::routes::{QueryParams, decode_page_token, encode_page_token};
use crate::state::{Emulator, Principal, group_id};

/// Epoch milliseconds every fixture object claims to have been created at (2025-01-01).
const CREATED_AT_MS: i64 = 1_735_689_600_000;

pub(super) fn router() -> Router<Emulator> {
    Router::new()
        .route("/api/2.1/unity-catalog/catalogs", get(list_catalogs))
        .route("/api/2.1/unity-catalog/catalogs/{name}", get(get_catalog))
        .route("/api/2.1/unity-catalog/schemas", get(list_schemas))
        .route(
            "/api/2.1/unity-catalog/schemas/{full_name}",
            get(get_schema),
        )
        .route("/api/2.1/unity-catalog/tables", get(list_tables))
        .route("/api/2.1/unity-catalog/tables/{full_name}", get(get_table))
        .route(
            "/api/2.1/unity-catalog/tables/{full_name}/exists",
            get(table_exists),
        )
        .route("/api/2.1/unity-catalog/volumes", get(list_volumes))
        .route(
            "/api/2.1/unity-catalog/volumes/{full_name}",
            get(get_volume),
        )
}

#[derive(Debug, Deserialize)]
struct ListParams {
    max_results: Option<i64>,
    page_token: Option<String>,
    catalog_name: Option<String>,
    schema_name: Option<String>,
    #[serde(default)]
    omit_columns: bool,
}

async fn list_catalogs(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let items: Vec<Value> = emulator
        .fixture
        .catalogs
        .iter()
        .filter(|c| principal.admitted_by(c.readers.as_ref()))
        .map(catalog_info)
        .collect();
    page("catalogs", items, &params, &emulator.settings())
}

async fn get_catalog(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let catalog = visible_catalog(&emulator, &principal, &name)?;
    Ok(Json(catalog_info(catalog)))
}

async fn list_schemas(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let catalog_name = required(params.catalog_name.as_deref(), "catalog_name")?;
    let catalog = visible_catalog(&emulator, &principal, catalog_name)?;
    let items: Vec<Value> = catalog
        .schemas
        .iter()
        .filter(|s| principal.admitted_by(s.readers.as_ref()))
        .map(|s| schema_info(catalog, s))
        .collect();
    page("schemas", items, &params, &emulator.settings())
}

async fn get_schema(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path(full_name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let [catalog, schema] = split_name::<2>(&full_name)?;
    let (catalog, schema) = visible_schema(&emulator, &principal, catalog, schema)?;
    Ok(Json(schema_info(catalog, schema)))
}

async fn list_tables(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let catalog_name = required(params.catalog_name.as_deref(), "catalog_name")?;
    let schema_name = required(params.schema_name.as_deref(), "schema_name")?;
    let (catalog, schema) = visible_schema(&emulator, &principal, catalog_name, schema_name)?;
    let items: Vec<Value> = schema
        .tables
        .iter()
        .filter(|t| principal.admitted_by(t.readers.as_ref()))
        .map(|t| {
            let mut info = table_info(catalog, schema, t);
            if params.omit_columns {
                info.as_object_mut().map(|o| o.remove("columns"));
            }
            info
        })
        .collect();
    page("tables", items, &params, &emulator.settings())
}

async fn get_table(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path(full_name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let [catalog_name, schema_name, table_name] = split_name::<3>(&full_name)?;
    let (catalog, schema) = visible_schema(&emulator, &principal, catalog_name, schema_name)?;
    let table = schema
        .tables
        .iter()
        .find(|t| t.name.eq_ignore_ascii_case(table_name))
        .ok_or_else(|| {
            ApiError::not_found(
                "TABLE_DOES_NOT_EXIST",
                format!("Table '{full_name}' does not exist."),
            )
        })?;
    if !principal.admitted_by(table.readers.as_ref()) {
        return Err(ApiError::permission_denied(format!(
            "User does not have SELECT on Table '{full_name}'."
        )));
    }
    Ok(Json(table_info(catalog, schema, table)))
}

async fn table_exists(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path(full_name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let [catalog_name, schema_name, table_name] = split_name::<3>(&full_name)?;
    let (_, schema) = visible_schema(&emulator, &principal, catalog_name, schema_name)?;
    let exists = match schema
        .tables
        .iter()
        .find(|t| t.name.eq_ignore_ascii_case(table_name))
    {
        None => false,
        Some(table) if principal.admitted_by(table.readers.as_ref()) => true,
        Some(_) => {
            return Err(ApiError::permission_denied(format!(
                "User does not have SELECT on Table '{full_name}'."
            )));
        }
    };
    Ok(Json(json!({ "table_exists": exists })))
}

async fn list_volumes(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let catalog_name = required(params.catalog_name.as_deref(), "catalog_name")?;
    let schema_name = required(params.schema_name.as_deref(), "schema_name")?;
    let (catalog, schema) = visible_schema(&emulator, &principal, catalog_name, schema_name)?;
    let items: Vec<Value> = schema
        .volumes
        .iter()
        .filter(|v| principal.admitted_by(v.readers.as_ref()))
        .map(|v| volume_info(catalog, schema, v))
        .collect();
    page("volumes", items, &params, &emulator.settings())
}

async fn get_volume(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path(full_name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let [catalog, schema, volume] = split_name::<3>(&full_name)?;
    let (catalog, schema, volume) = visible_volume(&emulator, &principal, catalog, schema, volume)?;
    Ok(Json(volume_info(catalog, schema, volume)))
}

/// The volume `catalog.schema.volume` if the principal may read it: `404` when any part is
/// missing, `403` when any part is not granted to it.
pub(crate) fn visible_volume<'a>(
    emulator: &'a Emulator,
    principal: &Principal,
    catalog_name: &str,
    schema_name: &str,
    volume_name: &str,
) -> Result<(&'a Catalog, &'a Schema, &'a Volume), ApiError> {
    let (catalog, schema) = visible_schema(emulator, principal, catalog_name, schema_name)?;
    let full_name = format!("{catalog_name}.{schema_name}.{volume_name}");
    let volume = schema
        .volumes
        .iter()
        .find(|v| v.name.eq_ignore_ascii_case(volume_name))
        .ok_or_else(|| {
            ApiError::not_found(
                "RESOURCE_DOES_NOT_EXIST",
                format!("Volume '{full_name}' does not exist."),
            )
        })?;
    if !principal.admitted_by(volume.readers.as_ref()) {
        return Err(ApiError::permission_denied(format!(
            "User does not have READ VOLUME on Volume '{full_name}'."
        )));
    }
    Ok((catalog, schema, volume))
}

/// The owner of a volume: its own, else its schema's, else its catalog's.
pub(crate) fn volume_owner<'a>(
    catalog: &'a Catalog,
    schema: &'a Schema,
    volume: &'a Volume,
) -> &'a str {
    volume
        .owner
        .as_deref()
        .or(schema.owner.as_deref())
        .unwrap_or(&catalog.owner)
}

fn required<'a>(value: Option<&'a str>, name: &str) -> Result<&'a str, ApiError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("Missing required field: {name}")))
}

/// Splits `a.b` or `a.b.c` into exactly `N` non-empty parts.
fn split_name<const N: usize>(full_name: &str) -> Result<[&str; N], ApiError> {
    let parts: Vec<&str> = full_name.split('.').collect();
    parts
        .try_into()
        .ok()
        .filter(|parts: &[&str; N]| parts.iter().all(|p| !p.is_empty()))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid name '{full_name}': expected {N} dot-separated parts."
            ))
        })
}

fn visible_catalog<'a>(
    emulator: &'a Emulator,
    principal: &Principal,
    name: &str,
) -> Result<&'a Catalog, ApiError> {
    let catalog = emulator.fixture.find_catalog(name).ok_or_else(|| {
        ApiError::not_found(
            "CATALOG_DOES_NOT_EXIST",
            format!("Catalog '{name}' does not exist."),
        )
    })?;
    if !principal.admitted_by(catalog.readers.as_ref()) {
        return Err(ApiError::permission_denied(format!(
            "User does not have USE CATALOG on Catalog '{name}'."
        )));
    }
    Ok(catalog)
}

fn visible_schema<'a>(
    emulator: &'a Emulator,
    principal: &Principal,
    catalog_name: &str,
    schema_name: &str,
) -> Result<(&'a Catalog, &'a Schema), ApiError> {
    let catalog = visible_catalog(emulator, principal, catalog_name)?;
    let full_name = format!("{catalog_name}.{schema_name}");
    let schema = catalog
        .schemas
        .iter()
        .find(|s| s.name.eq_ignore_ascii_case(schema_name))
        .ok_or_else(|| {
            ApiError::not_found(
                "SCHEMA_DOES_NOT_EXIST",
                format!("Schema '{full_name}' does not exist."),
            )
        })?;
    if !principal.admitted_by(schema.readers.as_ref()) {
        return Err(ApiError::permission_denied(format!(
            "User does not have USE SCHEMA on Schema '{full_name}'."
        )));
    }
    Ok((catalog, schema))
}

fn page(
    key: &str,
    items: Vec<Value>,
    params: &ListParams,
    settings: &Settings,
) -> Result<Json<Value>, ApiError> {
    let size = match params.max_results {
        Some(n) if n < 0 => {
            return Err(ApiError::bad_request(
                "max_results must be greater than or equal to 0.",
            ));
        }
        Some(0) => settings.default_page_size,
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
        None if params.page_token.is_none() => return Ok(Json(json!({ key: items }))),
        None => settings.default_page_size,
    }
    // The server's cap applies whoever chose the size, the client or the server.
    .min(settings.max_page_size);
    let start = match params.page_token.as_deref().filter(|t| !t.is_empty()) {
        Some(token) => decode_page_token(token)?,
        None if settings.empty_pages => {
            return Ok(Json(
                json!({ key: [], "next_page_token": encode_page_token(0) }),
            ));
        }
        None => 0,
    };
    let total = items.len();
    let end = start.saturating_add(size).min(total);
    let page: Vec<Value> = items.into_iter().skip(start).take(size).collect();
    let next = if end < total {
        Some(end)
    } else if settings.empty_pages && start < total {
        // The last page of data points at one more, empty, page.
        Some(total)
    } else {
        None
    };
    let mut body = json!({ key: page });
    if let Some(offset) = next {
        body["next_page_token"] = json!(encode_page_token(offset));
    }
    Ok(Json(body))
}

fn metastore_id() -> &'static str {
    "11111111-2222-4333-8444-555555555555"
}

/// A stable UUID-shaped id for an object name.
fn stable_id(kind: &str, name: &str) -> String {
    let a = group_id(&format!("{kind}:{name}"));
    let b = group_id(&format!("{name}:{kind}"));
    let hex = format!("{a:0>12}{b:0>20}");
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

fn catalog_info(catalog: &Catalog) -> Value {
    json!({
        "name": catalog.name,
        "full_name": catalog.name,
        "catalog_type": catalog.catalog_type,
        "comment": catalog.comment,
        "owner": catalog.owner,
        "metastore_id": metastore_id(),
        "created_at": CREATED_AT_MS,
        "created_by": catalog.owner,
        "updated_at": CREATED_AT_MS,
        "updated_by": catalog.owner,
        "isolation_mode": "OPEN",
        "securable_type": "CATALOG",
        "browse_only": false,
        "properties": {},
    })
}

fn schema_info(catalog: &Catalog, schema: &Schema) -> Value {
    let full_name = format!("{}.{}", catalog.name, schema.name);
    let owner = schema.owner.as_deref().unwrap_or(&catalog.owner);
    json!({
        "name": schema.name,
        "catalog_name": catalog.name,
        "full_name": full_name,
        "schema_id": stable_id("schema", &full_name),
        "comment": schema.comment,
        "owner": owner,
        "metastore_id": metastore_id(),
        "catalog_type": catalog.catalog_type,
        "created_at": CREATED_AT_MS,
        "created_by": owner,
        "updated_at": CREATED_AT_MS,
        "updated_by": owner,
        "browse_only": false,
        "properties": {},
    })
}

fn table_info(catalog: &Catalog, schema: &Schema, table: &Table) -> Value {
    let full_name = format!("{}.{}.{}", catalog.name, schema.name, table.name);
    let owner = table
        .owner
        .as_deref()
        .or(schema.owner.as_deref())
        .unwrap_or(&catalog.owner);
    let columns: Vec<Value> = table.columns.iter().enumerate().map(column_info).collect();
    let table_id = stable_id("table", &full_name);
    let mut info = json!({
        "name": table.name,
        "catalog_name": catalog.name,
        "schema_name": schema.name,
        "full_name": full_name,
        "table_id": table_id,
        "table_type": table.table_type,
        "data_source_format": table.data_source_format,
        "columns": columns,
        "comment": table.comment,
        "owner": owner,
        "metastore_id": metastore_id(),
        "created_at": CREATED_AT_MS,
        "created_by": owner,
        "updated_at": CREATED_AT_MS,
        "updated_by": owner,
        "securable_type": "TABLE",
        "browse_only": false,
        "properties": {},
    });
    if table.table_type == "VIEW" {
        let source = table
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        info["view_definition"] = json!(format!("SELECT {source} FROM {full_name}_source"));
    } else {
        info["storage_location"] =
            json!(format!("s3://dbapp-emulator/metastore/tables/{table_id}"));
    }
    info
}

fn volume_info(catalog: &Catalog, schema: &Schema, volume: &Volume) -> Value {
    let full_name = format!("{}.{}.{}", catalog.name, schema.name, volume.name);
    let owner = volume_owner(catalog, schema, volume);
    let volume_id = stable_id("volume", &full_name);
    let mut info = json!({
        "name": volume.name,
        "catalog_name": catalog.name,
        "schema_name": schema.name,
        "full_name": full_name,
        "volume_id": volume_id,
        "volume_type": volume.volume_type,
        "storage_location": format!("s3://dbapp-emulator/metastore/volumes/{volume_id}"),
        "owner": owner,
        "metastore_id": metastore_id(),
        "created_at": CREATED_AT_MS,
        "created_by": owner,
        "updated_at": CREATED_AT_MS,
        "updated_by": owner,
        "browse_only": false,
    });
    // Absent fields are omitted rather than sent as null (UPSTREAM-2, conventions).
    if let Some(comment) = &volume.comment {
        info["comment"] = json!(comment);
    }
    info
}

fn column_info((position, column): (usize, &Column)) -> Value {
    let spark_type = match column.type_name.as_str() {
        "LONG" => "long".to_owned(),
        "INT" => "integer".to_owned(),
        "SHORT" => "short".to_owned(),
        "BYTE" => "byte".to_owned(),
        "STRING" => "string".to_owned(),
        "DOUBLE" => "double".to_owned(),
        "FLOAT" => "float".to_owned(),
        "BOOLEAN" => "boolean".to_owned(),
        "DATE" => "date".to_owned(),
        "TIMESTAMP" => "timestamp".to_owned(),
        _ => column.type_text.to_lowercase(),
    };
    let type_json = json!({
        "name": column.name, "type": spark_type, "nullable": column.nullable, "metadata": {}
    });
    json!({
        "name": column.name,
        "type_text": column.type_text,
        "type_name": column.type_name,
        "type_json": type_json.to_string(),
        "position": position,
        "nullable": column.nullable,
        "comment": column.comment,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(max_results: Option<i64>, page_token: Option<String>) -> ListParams {
        ListParams {
            max_results,
            page_token,
            catalog_name: None,
            schema_name: None,
            omit_columns: false,
        }
    }

    /// Follows tokens from the first page and returns every page's length.
    fn walk(total: usize, max_results: i64, settings: &Settings) -> Vec<usize> {
        let items: Vec<Value> = (0..total).map(|i| json!(i)).collect();
        let mut token = None;
        let mut pages = Vec::new();
        loop {
            let Json(body) = page(
                "x",
                items.clone(),
                &params(Some(max_results), token),
                settings,
            )
            .expect("page");
            pages.push(body["x"].as_array().unwrap().len());
            match body.get("next_page_token") {
                Some(t) => token = Some(t.as_str().unwrap().to_owned()),
                None => return pages,
            }
            assert!(pages.len() < 100, "pagination must end");
        }
    }

    #[test]
    fn pages_cover_every_item_once() {
        let settings = Settings::default();
        assert_eq!(walk(5, 2, &settings), [2, 2, 1]);
        assert_eq!(walk(4, 2, &settings), [2, 2]);
        assert_eq!(walk(0, 2, &settings), [0]);
    }

    #[test]
    fn empty_pages_carry_tokens_at_both_ends() {
        let settings = Settings {
            empty_pages: true,
            ..Settings::default()
        };
        assert_eq!(walk(3, 2, &settings), [0, 2, 1, 0]);
        assert_eq!(walk(0, 2, &settings), [0, 0]);
    }

    #[test]
    fn max_page_size_caps_requests() {
        let settings = Settings {
            max_page_size: 1,
            ..Settings::default()
        };
        assert_eq!(walk(3, 50, &settings), [1, 1, 1]);
    }

    #[test]
    fn server_chosen_pages_respect_max_page_size_too() {
        let settings = Settings {
            max_page_size: 1,
            ..Settings::default()
        };
        assert_eq!(walk(3, 0, &settings), [1, 1, 1]);
    }

    #[test]
    fn bad_tokens_and_negative_sizes_are_refused() {
        let settings = Settings::default();
        let items = vec![json!(1)];
        assert!(page("x", items.clone(), &params(Some(-1), None), &settings).is_err());
        assert!(
            page(
                "x",
                items,
                &params(Some(1), Some("garbage".into())),
                &settings
            )
            .is_err()
        );
    }

    #[test]
    fn names_split_into_exact_parts() {
        assert_eq!(split_name::<3>("a.b.c").unwrap(), ["a", "b", "c"]);
        assert!(split_name::<3>("a.b").is_err());
        assert!(split_name::<2>("a..").is_err());
        assert!(split_name::<2>("a.").is_err());
    }
}
