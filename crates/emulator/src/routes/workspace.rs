//! The Workspace API over HTTP (PY `service/workspace.py` `WorkspaceAPI`, `mixins/workspace.py`
//! `WorkspaceExt`), on the tree of [`crate::workspace`]:
//!
//! - `POST /api/2.0/workspace/import`: a JSON body (`path`, base64 `content`, `format`,
//!   `language`, `overwrite`), or the `multipart/form-data` form of `w.workspace.upload` (the
//!   same fields, `content` as a file part);
//! - `GET /api/2.0/workspace/export` (`path`, `format`, `direct_download=true` for raw bytes);
//! - `GET /api/2.0/workspace/list`, `GET /api/2.0/workspace/get-status` (`path`);
//! - `POST /api/2.0/workspace/mkdirs` (`path`), `POST /api/2.0/workspace/delete` (`path`,
//!   `recursive`).
//!
//! Formats: `SOURCE` (the default) imports a notebook and needs `language`; `AUTO` imports a
//! notebook when the extension and header say so (`workspace::auto_kind`), else a file; `RAW`
//! always a file. `HTML`, `JUPYTER`, `DBC` and `R_MARKDOWN` are refused with
//! `400 INVALID_PARAMETER_VALUE`, as is exporting a directory. Any principal may use every route.
//! The import body is read in full, within the caps, before the tree is touched, so a refused
//! import stores nothing.

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::files::Caps;
use crate::routes::{JsonBody, QueryParams, flag, read_capped};
use crate::state::{Emulator, lock};
use crate::workspace::{Kind, WorkspaceError, WorkspacePath, auto_kind, language};

/// Most bytes an import may carry besides the content itself: the other form fields, or the
/// JSON around the base64 content. A larger field or body is refused unread.
const FIELD_MAX_BYTES: usize = 64 * 1024;

pub(super) fn router() -> Router<Emulator> {
    Router::new()
        .route(
            "/api/2.0/workspace/import",
            // The body is read in `read_capped` against the run-time caps instead.
            post(import_object).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/2.0/workspace/export", get(export_object))
        .route("/api/2.0/workspace/list", get(list_objects))
        .route("/api/2.0/workspace/get-status", get(get_status))
        .route("/api/2.0/workspace/mkdirs", post(mkdirs))
        .route("/api/2.0/workspace/delete", post(delete_object))
}

/// A required `path`, parsed.
fn parse_path(raw: Option<&str>) -> Result<WorkspacePath, ApiError> {
    let raw = raw
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::bad_request("Missing required field: path"))?;
    WorkspacePath::parse(raw).ok_or_else(|| {
        ApiError::bad_request(format!(
            "Invalid path '{raw}': expected an absolute path without empty, '.' or '..' segments."
        ))
    })
}

/// The answer for a refused change or lookup.
fn refused(error: WorkspaceError) -> ApiError {
    let code = |status, code: &str, message: String| ApiError::new(status, code, message);
    match error {
        WorkspaceError::NotFound(p) => ApiError::not_found(
            "RESOURCE_DOES_NOT_EXIST",
            format!("Path ({}) doesn't exist.", p.as_str()),
        ),
        WorkspaceError::NoParent(p) => ApiError::not_found(
            "RESOURCE_DOES_NOT_EXIST",
            format!("The parent folder ({}) does not exist.", p.as_str()),
        ),
        WorkspaceError::AlreadyExists(p) => code(
            StatusCode::BAD_REQUEST,
            "RESOURCE_ALREADY_EXISTS",
            format!("Path ({}) already exists.", p.as_str()),
        ),
        WorkspaceError::NotEmpty(p) => code(
            StatusCode::BAD_REQUEST,
            "DIRECTORY_NOT_EMPTY",
            format!(
                "Folder ({}) is not empty: delete it with recursive=true.",
                p.as_str()
            ),
        ),
        WorkspaceError::Protected(p) => ApiError::permission_denied(format!(
            "Folder ({}) is a system folder and cannot be deleted.",
            p.as_str()
        )),
        WorkspaceError::FileTooLarge(limit) => code(
            StatusCode::BAD_REQUEST,
            "MAX_NOTEBOOK_SIZE_EXCEEDED",
            format!("A workspace file may hold at most {limit} bytes."),
        ),
        WorkspaceError::WorkspaceFull(limit) => ApiError::limit_exceeded(format!(
            "The emulator's workspace files may hold at most {limit} bytes together."
        )),
    }
}

/// An import request, from either body form.
#[derive(Debug, Default, Deserialize)]
struct ImportRequest {
    path: Option<String>,
    /// Base64 in the JSON form; the multipart form's file part is decoded into it.
    content: Option<String>,
    format: Option<String>,
    language: Option<String>,
    /// A boolean in JSON, `"true"` in the multipart form.
    overwrite: Option<Value>,
}

/// Reads the multipart form of `w.workspace.upload`: the content part within the file cap,
/// every other field within [`FIELD_MAX_BYTES`].
async fn multipart_import(
    request: Request,
    max_file_bytes: usize,
) -> Result<(ImportRequest, Vec<u8>), ApiError> {
    let mut form = Multipart::from_request(request, &())
        .await
        .map_err(|e| ApiError::bad_request(e.body_text()))?;
    let mut fields = ImportRequest::default();
    let mut content = Vec::new();
    loop {
        let field = form
            .next_field()
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        let Some(field) = field else { break };
        let name = field.name().unwrap_or_default().to_owned();
        let limit = if name == "content" {
            max_file_bytes
        } else {
            FIELD_MAX_BYTES
        };
        let data = read_capped(field, limit, 0, || {
            if name == "content" {
                refused(WorkspaceError::FileTooLarge(max_file_bytes as u64))
            } else {
                ApiError::bad_request(format!(
                    "The form field '{name}' is longer than {FIELD_MAX_BYTES} bytes."
                ))
            }
        })
        .await?;
        let text = || String::from_utf8_lossy(&data).into_owned();
        match name.as_str() {
            "content" => content = data,
            "path" => fields.path = Some(text()),
            "format" => fields.format = Some(text()),
            "language" => fields.language = Some(text()),
            "overwrite" => fields.overwrite = Some(Value::String(text())),
            _ => {}
        }
    }
    Ok((fields, content))
}

/// Reads the JSON form, decoding its base64 `content`.
async fn json_import(
    request: Request,
    max_file_bytes: usize,
) -> Result<(ImportRequest, Vec<u8>), ApiError> {
    let limit = max_file_bytes.div_ceil(3) * 4 + FIELD_MAX_BYTES;
    let (parts, body) = request.into_parts();
    let bytes = read_capped(body.into_data_stream(), limit, 0, || {
        refused(WorkspaceError::FileTooLarge(max_file_bytes as u64))
    })
    .await?;
    // The parts keep the route's disabled body limit, which `JsonBody` would otherwise apply.
    let request = Request::from_parts(parts, Body::from(bytes));
    let JsonBody(mut fields) = JsonBody::<ImportRequest>::from_request(request, &()).await?;
    let content = match fields.content.take() {
        Some(text) => STANDARD.decode(text.trim()).map_err(|e| {
            ApiError::bad_request(format!("Invalid content: expected base64 ({e})."))
        })?,
        None => Vec::new(),
    };
    Ok((fields, content))
}

/// `overwrite` as JSON sends it (a boolean) or the form does (`"true"`); absent is false.
fn overwrite_of(value: Option<&Value>) -> Result<bool, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) => flag("overwrite", Some(s)),
        Some(other) => Err(ApiError::bad_request(format!(
            "Invalid overwrite {other}: expected true or false."
        ))),
    }
}

/// Where and as what an import stores its content, by `format` and `language`.
fn placement(
    path: &WorkspacePath,
    format: &str,
    language_name: Option<&str>,
    data: &[u8],
) -> Result<(WorkspacePath, Kind), ApiError> {
    let language = language_name
        .map(|name| {
            language(name).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Invalid language '{name}': expected PYTHON, SQL, SCALA or R."
                ))
            })
        })
        .transpose()?;
    match (format, language) {
        ("AUTO", _) => Ok(auto_kind(path, data)),
        ("RAW", _) => Ok((path.clone(), Kind::File)),
        ("SOURCE", Some(language)) => Ok((path.clone(), Kind::Notebook(language))),
        ("SOURCE", None) => Err(ApiError::bad_request(
            "The language field is required to import a notebook as SOURCE; import files \
             with format AUTO or RAW.",
        )),
        ("HTML" | "JUPYTER" | "DBC" | "R_MARKDOWN", _) => Err(ApiError::bad_request(format!(
            "Format {format} is not supported by this emulator: use SOURCE, AUTO or RAW."
        ))),
        (other, _) => Err(ApiError::bad_request(format!(
            "Invalid format '{other}': expected SOURCE, AUTO, RAW, HTML, JUPYTER, DBC or R_MARKDOWN."
        ))),
    }
}

async fn import_object(
    State(emulator): State<Emulator>,
    Authenticated(_): Authenticated,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let settings = emulator.settings();
    let caps = Caps {
        max_file_bytes: settings.workspace_max_file_bytes,
        max_total_bytes: settings.workspace_max_total_bytes,
    };
    let max_file_bytes = usize::try_from(caps.max_file_bytes).unwrap_or(usize::MAX);
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let (fields, content) = if is_form {
        multipart_import(request, max_file_bytes).await?
    } else {
        json_import(request, max_file_bytes).await?
    };
    let path = parse_path(fields.path.as_deref())?;
    let overwrite = overwrite_of(fields.overwrite.as_ref())?;
    let format = fields.format.as_deref().unwrap_or("SOURCE");
    let (path, kind) = placement(&path, format, fields.language.as_deref(), &content)?;
    lock(&emulator.workspace)
        .import(
            &path,
            kind,
            Bytes::from(content),
            overwrite,
            caps,
            Utc::now(),
        )
        .map_err(refused)?;
    Ok(Json(json!({})))
}

#[derive(Debug, Deserialize)]
struct PathQuery {
    path: Option<String>,
    format: Option<String>,
    direct_download: Option<String>,
}

async fn export_object(
    State(emulator): State<Emulator>,
    Authenticated(_): Authenticated,
    QueryParams(query): QueryParams<PathQuery>,
) -> Result<Response, ApiError> {
    let path = parse_path(query.path.as_deref())?;
    let direct = flag("direct_download", query.direct_download.as_deref())?;
    let format = query.format.as_deref().unwrap_or("SOURCE");
    let object = lock(&emulator.workspace)
        .get(&path)
        .map_err(refused)?
        .clone();
    if object.kind == Kind::Directory {
        return Err(ApiError::bad_request(format!(
            "Path ({}) is a directory: this emulator exports files and notebooks only.",
            path.as_str()
        )));
    }
    if !matches!(format, "SOURCE" | "AUTO" | "RAW") {
        return Err(ApiError::bad_request(format!(
            "Format {format} is not supported by this emulator: use SOURCE, AUTO or RAW."
        )));
    }
    if direct {
        let headers = [(header::CONTENT_TYPE, "application/octet-stream")];
        return Ok((headers, object.data).into_response());
    }
    let mut body = json!({"content": STANDARD.encode(&object.data)});
    if let Some(extension) = object.source_extension() {
        body["file_type"] = extension.into();
    }
    Ok(Json(body).into_response())
}

async fn list_objects(
    State(emulator): State<Emulator>,
    Authenticated(_): Authenticated,
    QueryParams(query): QueryParams<PathQuery>,
) -> Result<Json<Value>, ApiError> {
    let path = parse_path(query.path.as_deref())?;
    let objects = lock(&emulator.workspace).list(&path).map_err(refused)?;
    Ok(Json(json!({"objects": objects})))
}

async fn get_status(
    State(emulator): State<Emulator>,
    Authenticated(_): Authenticated,
    QueryParams(query): QueryParams<PathQuery>,
) -> Result<Json<Value>, ApiError> {
    let path = parse_path(query.path.as_deref())?;
    let tree = lock(&emulator.workspace);
    let object = tree.get(&path).map_err(refused)?;
    Ok(Json(object.info(&path)))
}

#[derive(Debug, Deserialize)]
struct PathBody {
    path: Option<String>,
    #[serde(default)]
    recursive: bool,
}

async fn mkdirs(
    State(emulator): State<Emulator>,
    Authenticated(_): Authenticated,
    JsonBody(body): JsonBody<PathBody>,
) -> Result<Json<Value>, ApiError> {
    let path = parse_path(body.path.as_deref())?;
    lock(&emulator.workspace)
        .mkdirs(&path, Utc::now())
        .map_err(refused)?;
    Ok(Json(json!({})))
}

async fn delete_object(
    State(emulator): State<Emulator>,
    Authenticated(_): Authenticated,
    JsonBody(body): JsonBody<PathBody>,
) -> Result<Json<Value>, ApiError> {
    let path = parse_path(body.path.as_deref())?;
    lock(&emulator.workspace)
        .delete(&path, body.recursive)
        .map_err(refused)?;
    Ok(Json(json!({})))
}
