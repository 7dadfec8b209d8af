//! Unity Catalog volumes and their files, as the user: the volumes of a schema, the entries of
//! a directory in pages, and a file's content downloaded, uploaded (both streamed: bytes pass
//! through as they arrive, never held whole) and deleted.
//!
//! Catalog, schema and volume names are [`Name`]s (`INVALID_IDENTIFIER`); a file or directory
//! is named by the `path` query parameter, relative to the volume root and checked by
//! [`parse_path`] (`INVALID_REQUEST` on `path`). Uploads are capped by
//! `DBAPP_VOLUME_UPLOAD_MAX_BYTES` (`PAYLOAD_TOO_LARGE`), checked from `Content-Length` before
//! any byte is sent upstream and counted while streaming; the global 1 MiB body limit does not
//! apply to that route (the `body_limit` module). A transfer must end within the request
//! deadline (`DBAPP_REQUEST_TIMEOUT_SECS`), the timeout of its upstream call.
//!
//! A `404` from the Files API does not say whether the volume or the file is missing, so the
//! volume is then looked up to answer `VOLUME_NOT_FOUND` or `FILE_NOT_FOUND`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dbapp_databricks::api::{DirectoryEntry, DirectoryPageRequest};
use dbapp_databricks::{DatabricksError, ErrorKind, Workspace};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ItemsPage, PageSpec, Pagination, Uncompressed, page_upstream, rfc3339_ms};
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{ApiQuery, Catalog, Name, Schema, Volume};
use crate::limits::VOLUME_PATH_MAX_BYTES;
use crate::state::AppState;

/// A volume.
#[derive(Debug, Serialize, ToSchema)]
pub struct VolumeItem {
    /// Name.
    pub name: String,
    /// `catalog.schema.volume`.
    pub full_name: String,
    /// `MANAGED` or `EXTERNAL`.
    #[schema(required)]
    pub volume_type: Option<String>,
    /// Comment.
    #[schema(required)]
    pub comment: Option<String>,
    /// Owner.
    #[schema(required)]
    pub owner: Option<String>,
}

/// A file or directory of a volume.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileItem {
    /// The last segment of the path.
    pub name: String,
    /// Path relative to the volume root, e.g. `data/regions.csv`.
    pub path: String,
    /// Whether it is a directory.
    pub is_directory: bool,
    /// Size in bytes; `null` for directories.
    #[schema(required)]
    pub size: Option<u64>,
    /// Last modification (RFC 3339); `null` when the workspace does not say (directories).
    #[schema(required)]
    pub last_modified: Option<String>,
}

/// A file's raw bytes, as the OpenAPI document describes a download or upload body: a binary
/// string, not JSON.
#[derive(Debug)]
pub struct FileContent;

impl utoipa::PartialSchema for FileContent {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl ToSchema for FileContent {}

/// The directory to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DirectoryQuery {
    /// Directory relative to the volume root (at most 1 024 bytes); the root when absent or
    /// empty.
    pub path: Option<String>,
}

/// The file to read or delete.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FileQuery {
    /// File path relative to the volume root, e.g. `data/regions.csv` (required; at most
    /// 1 024 bytes).
    #[param(required = true)]
    pub path: Option<String>,
}

/// The file to write, and whether it may replace one.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// File path relative to the volume root (required; at most 1 024 bytes).
    #[param(required = true)]
    pub path: Option<String>,
    /// Replace an existing file (default false: an existing file is `FILE_ALREADY_EXISTS`).
    pub overwrite: Option<bool>,
}

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_volumes))
        .routes(routes!(list_files))
        .routes(routes!(download_file, upload_file, delete_file))
}

/// Checks a path relative to a volume root: at most [`VOLUME_PATH_MAX_BYTES`] bytes of
/// `/`-separated segments, none empty, `.` or `..`, and no control characters. The empty path
/// is the root, accepted only where `root_ok`.
///
/// # Errors
/// `INVALID_REQUEST` on `path`.
pub fn parse_path(path: Option<&str>, root_ok: bool) -> Result<String, ApiError> {
    let path = path.unwrap_or("");
    let refuse = |reason: String| Err(ApiError::invalid("path", reason));
    if path.is_empty() {
        return if root_ok {
            Ok(String::new())
        } else {
            refuse("is required".into())
        };
    }
    if path.len() > VOLUME_PATH_MAX_BYTES {
        return refuse(format!("must be at most {VOLUME_PATH_MAX_BYTES} bytes"));
    }
    if path.chars().any(char::is_control) {
        return refuse("must not contain control characters".into());
    }
    if path
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return refuse(
            "must be relative to the volume root, without empty, '.' or '..' segments".into(),
        );
    }
    Ok(path.to_owned())
}

/// The volume a route names: its three path parameters, each checked as a [`Name`].
struct VolumeRef {
    catalog: Name<Catalog>,
    schema: Name<Schema>,
    volume: Name<Volume>,
}

impl<S: Send + Sync> FromRequestParts<S> for VolumeRef {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Ok(Self {
            catalog: Name::from_request_parts(parts, state).await?,
            schema: Name::from_request_parts(parts, state).await?,
            volume: Name::from_request_parts(parts, state).await?,
        })
    }
}

impl VolumeRef {
    fn full_name(&self) -> String {
        format!("{}.{}.{}", self.catalog, self.schema, self.volume)
    }

    /// The absolute Files API path of `relative` (the root when empty).
    fn absolute(&self, relative: &str) -> String {
        let root = format!("/Volumes/{}/{}/{}", self.catalog, self.schema, self.volume);
        if relative.is_empty() {
            root
        } else {
            format!("{root}/{relative}")
        }
    }
}

/// Maps a failed Files API call: a `404` becomes `VOLUME_NOT_FOUND` or `FILE_NOT_FOUND`
/// after looking the volume up; everything else maps as any upstream failure.
async fn file_error(
    app: &AppState,
    caller: &Caller,
    workspace: &Workspace<'_>,
    volume: &VolumeRef,
    error: DatabricksError,
) -> ApiError {
    if error.kind() != ErrorKind::NotFound {
        return caller.upstream_error(app, error, ErrorCode::FileNotFound);
    }
    match workspace.get_volume(&volume.full_name()).await {
        Ok(_) => ApiError::not_found(
            ErrorCode::FileNotFound,
            "The file or directory does not exist.",
        ),
        Err(lookup) => caller.upstream_error(app, lookup, ErrorCode::VolumeNotFound),
    }
}

/// The volumes of a schema that the user can see.
#[utoipa::path(get, path = "/api/unity-catalog/catalogs/{catalog}/schemas/{schema}/volumes", tag = "unity-catalog",
    security(("user_token" = [])),
    params(("catalog" = String, Path), ("schema" = String, Path), Pagination),
    responses(
    (status = 200, body = ItemsPage<VolumeItem>),
    (status = 400, body = ErrorBody, description = "INVALID_IDENTIFIER, INVALID_REQUEST"),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "PERMISSION_DENIED"),
    (status = 404, body = ErrorBody, description = "CATALOG_NOT_FOUND, SCHEMA_NOT_FOUND"),
    (status = 429, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody),
))]
async fn list_volumes(
    State(app): State<AppState>,
    caller: Caller,
    catalog: Name<Catalog>,
    schema: Name<Schema>,
    spec: PageSpec,
) -> Result<Json<ItemsPage<VolumeItem>>, ApiError> {
    let workspace = caller.workspace(&app);
    let (items, next) = page_upstream(&spec, |token, limit| {
        let (workspace, catalog, schema) = (&workspace, &catalog, &schema);
        async move {
            let page = workspace
                .list_volumes(catalog, schema, &super::upstream_page(token, limit))
                .await?;
            Ok::<_, DatabricksError>((page.items, page.next_page_token))
        }
    })
    .await
    .map_err(|e| caller.upstream_error(&app, e, ErrorCode::SchemaNotFound))?;
    Ok(Json(ItemsPage {
        items: items
            .into_iter()
            .map(|v| VolumeItem {
                full_name: v
                    .full_name
                    .clone()
                    .unwrap_or_else(|| format!("{catalog}.{schema}.{}", v.name)),
                name: v.name,
                volume_type: v.volume_type,
                comment: v.comment,
                owner: v.owner,
            })
            .collect(),
        next_page_token: next.map(|c| c.encode()),
    }))
}

fn file_item(directory: &str, entry: DirectoryEntry) -> FileItem {
    let name = entry.name.unwrap_or_else(|| {
        let trimmed = entry.path.trim_end_matches('/');
        trimmed.rsplit('/').next().unwrap_or(trimmed).to_owned()
    });
    let path = if directory.is_empty() {
        name.clone()
    } else {
        format!("{directory}/{name}")
    };
    FileItem {
        name,
        path,
        is_directory: entry.is_directory,
        size: if entry.is_directory {
            None
        } else {
            entry.file_size
        },
        last_modified: rfc3339_ms(entry.last_modified),
    }
}

/// The files and directories in a directory of a volume, in pages.
#[utoipa::path(get, path = "/api/volumes/{catalog}/{schema}/{volume}/files", tag = "volumes",
    security(("user_token" = [])),
    params(("catalog" = String, Path), ("schema" = String, Path), ("volume" = String, Path), DirectoryQuery, Pagination),
    responses(
    (status = 200, body = ItemsPage<FileItem>),
    (status = 400, body = ErrorBody, description = "INVALID_IDENTIFIER, INVALID_REQUEST"),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "PERMISSION_DENIED"),
    (status = 414, body = ErrorBody, description = "URI_TOO_LONG: the path and query are over 8 KiB"),
    (status = 404, body = ErrorBody, description = "CATALOG_NOT_FOUND, SCHEMA_NOT_FOUND, VOLUME_NOT_FOUND, FILE_NOT_FOUND (no such directory)"),
    (status = 429, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody),
))]
async fn list_files(
    State(app): State<AppState>,
    caller: Caller,
    volume: VolumeRef,
    ApiQuery(query): ApiQuery<DirectoryQuery>,
    spec: PageSpec,
) -> Result<Json<ItemsPage<FileItem>>, ApiError> {
    let directory = parse_path(query.path.as_deref(), true)?;
    let absolute = volume.absolute(&directory);
    let workspace = caller.workspace(&app);
    let listed = page_upstream(&spec, |token, limit| {
        let (workspace, absolute) = (&workspace, &absolute);
        async move {
            let page = workspace
                .list_directory_contents(absolute, &DirectoryPageRequest::new(Some(limit), token))
                .await?;
            Ok::<_, DatabricksError>((page.items, page.next_page_token))
        }
    })
    .await;
    let (items, next) = match listed {
        Ok(page) => page,
        Err(error) => return Err(file_error(&app, &caller, &workspace, &volume, error).await),
    };
    Ok(Json(ItemsPage {
        items: items
            .into_iter()
            .map(|entry| file_item(&directory, entry))
            .collect(),
        next_page_token: next.map(|c| c.encode()),
    }))
}

/// `Content-Disposition: attachment` naming `name`: an ASCII fallback (`filename`, with quotes,
/// backslashes and anything outside printable ASCII replaced by `_`) and the exact name
/// percent-encoded as UTF-8 (`filename*`, RFC 6266 and 8187).
fn content_disposition(name: &str) -> HeaderValue {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// A file's content, streamed as it arrives from the workspace.
#[utoipa::path(get, path = "/api/volumes/{catalog}/{schema}/{volume}/files/content", tag = "volumes",
    security(("user_token" = [])),
    params(("catalog" = String, Path), ("schema" = String, Path), ("volume" = String, Path), FileQuery),
    responses(
    (status = 200, description = "The file's bytes, with `Content-Type`, `Content-Length` and `Content-Disposition: attachment`", content_type = "application/octet-stream", body = FileContent),
    (status = 400, body = ErrorBody, description = "INVALID_IDENTIFIER, INVALID_REQUEST"),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "PERMISSION_DENIED"),
    (status = 414, body = ErrorBody, description = "URI_TOO_LONG: the path and query are over 8 KiB"),
    (status = 404, body = ErrorBody, description = "CATALOG_NOT_FOUND, SCHEMA_NOT_FOUND, VOLUME_NOT_FOUND, FILE_NOT_FOUND"),
    (status = 429, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody),
))]
async fn download_file(
    State(app): State<AppState>,
    caller: Caller,
    volume: VolumeRef,
    ApiQuery(query): ApiQuery<FileQuery>,
) -> Result<Response, ApiError> {
    let relative = parse_path(query.path.as_deref(), false)?;
    let workspace = caller
        .workspace(&app)
        .with_timeout(app.settings.request_timeout());
    let download = match workspace.download_file(&volume.absolute(&relative)).await {
        Ok(download) => download,
        Err(error) => return Err(file_error(&app, &caller, &workspace, &volume, error).await),
    };
    let metadata = download.metadata().clone();
    let mut headers = HeaderMap::new();
    let content_type = metadata
        .content_type
        .as_deref()
        .and_then(|t| HeaderValue::from_str(t).ok())
        .unwrap_or_else(|| HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_TYPE, content_type);
    if let Some(length) = metadata.content_length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    let name = relative.rsplit('/').next().unwrap_or(&relative);
    headers.insert(header::CONTENT_DISPOSITION, content_disposition(name));
    let mut response = (headers, Body::from_stream(download.into_stream())).into_response();
    response.extensions_mut().insert(Uncompressed);
    Ok(response)
}

/// Uploads a file's content, streamed to the workspace as it arrives.
#[utoipa::path(put, path = "/api/volumes/{catalog}/{schema}/{volume}/files/content", tag = "volumes",
    security(("user_token" = [])),
    params(("catalog" = String, Path), ("schema" = String, Path), ("volume" = String, Path), UploadQuery),
    request_body(content = FileContent, content_type = "application/octet-stream", description = "The file's bytes; at most `DBAPP_VOLUME_UPLOAD_MAX_BYTES` (default 100 MiB)"),
    responses(
    (status = 201, body = FileItem),
    (status = 400, body = ErrorBody, description = "INVALID_IDENTIFIER, INVALID_REQUEST"),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "PERMISSION_DENIED"),
    (status = 414, body = ErrorBody, description = "URI_TOO_LONG: the path and query are over 8 KiB"),
    (status = 404, body = ErrorBody, description = "CATALOG_NOT_FOUND, SCHEMA_NOT_FOUND, VOLUME_NOT_FOUND"),
    (status = 409, body = ErrorBody, description = "FILE_ALREADY_EXISTS"),
    (status = 413, body = ErrorBody, description = "PAYLOAD_TOO_LARGE; `detail.limit_bytes` is the cap"),
    (status = 429, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody),
))]
async fn upload_file(
    State(app): State<AppState>,
    caller: Caller,
    volume: VolumeRef,
    ApiQuery(query): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<FileItem>), ApiError> {
    let relative = parse_path(query.path.as_deref(), false)?;
    let cap = app.settings.dbapp.volume_upload_max_bytes;
    let too_large = || ApiError::PayloadTooLarge {
        limit_bytes: usize::try_from(cap).unwrap_or(usize::MAX),
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > cap) {
        return Err(too_large());
    }
    // Counted as it streams: past the cap the stream fails, the upstream request is cut off
    // before it completes (so nothing is stored), and the flag says why it failed.
    let over_cap = Arc::new(AtomicBool::new(false));
    let mut sent = 0u64;
    let flag = Arc::clone(&over_cap);
    let counted = body.into_data_stream().map(move |chunk| {
        let chunk = chunk.map_err(std::io::Error::other)?;
        sent += chunk.len() as u64;
        if sent > cap {
            flag.store(true, Ordering::Relaxed);
            return Err(std::io::Error::other("the upload is larger than its cap"));
        }
        Ok(chunk)
    });
    let workspace = caller
        .workspace(&app)
        .with_timeout(app.settings.request_timeout());
    let absolute = volume.absolute(&relative);
    let overwrite = query.overwrite.unwrap_or(false);
    if let Err(error) = workspace
        .upload_file(&absolute, counted, declared, overwrite)
        .await
    {
        return Err(if over_cap.load(Ordering::Relaxed) {
            too_large()
        } else if error.kind() == ErrorKind::Conflict {
            ApiError::FileAlreadyExists(error)
        } else {
            file_error(&app, &caller, &workspace, &volume, error).await
        });
    }
    // The file is stored; its metadata is only decoration, so a failed look-up leaves the
    // fields the upload itself knows.
    let metadata = workspace.get_file_metadata(&absolute).await.ok();
    let name = relative.rsplit('/').next().unwrap_or(&relative).to_owned();
    Ok((
        StatusCode::CREATED,
        Json(FileItem {
            name,
            path: relative.clone(),
            is_directory: false,
            size: metadata
                .as_ref()
                .and_then(|m| m.content_length)
                .or(declared),
            last_modified: metadata
                .and_then(|m| m.last_modified)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        }),
    ))
}

/// Deletes a file.
#[utoipa::path(delete, path = "/api/volumes/{catalog}/{schema}/{volume}/files/content", tag = "volumes",
    security(("user_token" = [])),
    params(("catalog" = String, Path), ("schema" = String, Path), ("volume" = String, Path), FileQuery),
    responses(
    (status = 204, description = "Deleted"),
    (status = 400, body = ErrorBody, description = "INVALID_IDENTIFIER, INVALID_REQUEST"),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "PERMISSION_DENIED"),
    (status = 414, body = ErrorBody, description = "URI_TOO_LONG: the path and query are over 8 KiB"),
    (status = 404, body = ErrorBody, description = "CATALOG_NOT_FOUND, SCHEMA_NOT_FOUND, VOLUME_NOT_FOUND, FILE_NOT_FOUND"),
    (status = 429, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody),
))]
async fn delete_file(
    State(app): State<AppState>,
    caller: Caller,
    volume: VolumeRef,
    ApiQuery(query): ApiQuery<FileQuery>,
) -> Result<StatusCode, ApiError> {
    let relative = parse_path(query.path.as_deref(), false)?;
    let workspace = caller.workspace(&app);
    match workspace.delete_file(&volume.absolute(&relative)).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(error) => Err(file_error(&app, &caller, &workspace, &volume, error).await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn paths_are_relative_without_dot_or_empty_segments() {
        assert_eq!(parse_path(Some("a/b c.txt"), false).unwrap(), "a/b c.txt");
        assert_eq!(parse_path(None, true).unwrap(), "");
        assert!(parse_path(None, false).is_err());
        for bad in ["/a", "a//b", "a/", "../x", "a/./b", "a\u{0}b", "a\tb"] {
            assert!(parse_path(Some(bad), true).is_err(), "{bad:?}");
        }
        let long = "a".repeat(VOLUME_PATH_MAX_BYTES + 1);
        assert!(parse_path(Some(&long), true).is_err());
        assert!(parse_path(Some(&long[1..]), true).is_ok());
    }

    #[test]
    fn content_disposition_is_safe_for_any_name() {
        assert_eq!(
            content_disposition("report q1.csv"),
            "attachment; filename=\"report q1.csv\"; filename*=UTF-8''report%20q1.csv"
        );
        assert_eq!(
            content_disposition("naïve\"x\".txt"),
            "attachment; filename=\"na_ve_x_.txt\"; filename*=UTF-8''na%C3%AFve%22x%22.txt"
        );
    }

    proptest! {
        #[test]
        fn accepted_paths_never_escape_the_volume(path in "\\PC{0,40}") {
            // The empty path (the root) is the one accepted path without a segment.
            if let Ok(ok) = parse_path(Some(&path), true)
                && !ok.is_empty()
            {
                prop_assert!(!ok.starts_with('/'));
                prop_assert!(ok.split('/').all(|s| !s.is_empty() && s != "." && s != ".."));
            }
        }

        #[test]
        fn content_disposition_never_fails(name in "\\PC{0,40}") {
            let value = content_disposition(&name);
            prop_assert!(value.to_str().unwrap().starts_with("attachment; filename=\""));
        }
    }
}
