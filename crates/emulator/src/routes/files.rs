//! The Files API (`shared/UPSTREAM-2.md` §5.1) over the volumes of the fixture: files
//! (`/api/2.0/fs/files{path}`: PUT, GET with `Range`, HEAD, DELETE) and directories
//! (`/api/2.0/fs/directories{path}`: PUT, HEAD, DELETE, GET listing in pages). The files
//! themselves live in memory (the `files` module, with its size caps).
//!
//! Paths are absolute, `/Volumes/<catalog>/<schema>/<volume>/...`, percent-decoded by the
//! router; a segment that is empty, `.` or `..`, or holds a control character is `400`.
//! Reading needs read access to the catalog, schema and volume (their `readers`); writing also
//! needs the volume's owner or a name in its `writers`. A missing catalog, schema or volume is
//! `404`, one the caller may not use `403 PERMISSION_DENIED`, as the Unity Catalog calls answer.
//!
//! Answers whose real status no client source pins down (UNCONFIRMED, `docs/emulator.md`):
//! `overwrite=false` on an existing file is `409 ALREADY_EXISTS`; deleting a directory that is
//! not empty is `409 DIRECTORY_NOT_EMPTY`; an upload over a size cap is
//! `413 REQUEST_ENTITY_TOO_LARGE`. The SDK's presigned-URL paths (`POST
//! /api/2.0/fs/create-download-url`, `POST /api/2.0/fs/files{path}?action=initiate-upload`)
//! answer `501 NOT_IMPLEMENTED`, an error the official SDK does not retry: it walks on to the
//! plain calls above (UPSTREAM-2 §5.2).

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::files::{Caps, Child, Entry, FileError, VolumePath, relative_segments};
use crate::routes::catalog::{visible_volume, volume_owner};
use crate::routes::{QueryParams, decode_page_token, encode_page_token, read_capped};
use crate::state::{Emulator, Principal, lock};

/// Largest page of a directory listing, and the page size when the client names none.
const MAX_PAGE_SIZE: usize = 1000;

pub(super) fn router() -> Router<Emulator> {
    Router::new()
        .route(
            "/api/2.0/fs/files/{*path}",
            get(download)
                .head(metadata)
                .put(upload)
                .delete(delete_file)
                .post(initiate_upload),
        )
        .route(
            "/api/2.0/fs/directories/{*path}",
            get(list_directory)
                .head(directory_exists)
                .put(create_directory)
                .delete(delete_directory),
        )
        .route("/api/2.0/fs/create-download-url", post(presigned_urls))
}

/// Whether a call reads or changes a volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

/// Resolves `Volumes/<catalog>/<schema>/<volume>[/...]` (as the router hands it, without the
/// leading slash) to a path of a volume the principal may use as `access` says.
fn resolve(
    emulator: &Emulator,
    principal: &Principal,
    raw: &str,
    access: Access,
) -> Result<VolumePath, ApiError> {
    let invalid = || {
        ApiError::bad_request(format!(
            "Invalid path '/{raw}': expected /Volumes/<catalog>/<schema>/<volume>/... without empty, '.' or '..' segments."
        ))
    };
    let rest = raw.strip_prefix("Volumes/").ok_or_else(invalid)?;
    let mut parts = rest.splitn(4, '/');
    let (Some(catalog), Some(schema), Some(volume)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    if [catalog, schema, volume].iter().any(|p| p.is_empty()) {
        return Err(invalid());
    }
    let segments = relative_segments(parts.next().unwrap_or("")).ok_or_else(invalid)?;
    let (catalog, schema, volume) = visible_volume(emulator, principal, catalog, schema, volume)?;
    if access == Access::Write {
        let owner = vec![volume_owner(catalog, schema, volume).to_owned()];
        let may_write = principal.admitted_by(Some(&owner))
            || volume
                .writers
                .as_ref()
                .is_some_and(|w| principal.admitted_by(Some(w)));
        if !may_write {
            return Err(ApiError::permission_denied(format!(
                "User does not have WRITE VOLUME on Volume '{}.{}.{}'.",
                catalog.name, schema.name, volume.name
            )));
        }
    }
    Ok(VolumePath {
        volume: format!("{}/{}/{}", catalog.name, schema.name, volume.name),
        segments,
    })
}

fn absolute(path: &VolumePath) -> String {
    let mut text = format!("/Volumes/{}", path.volume);
    for segment in &path.segments {
        text.push('/');
        text.push_str(segment);
    }
    text
}

fn not_found(what: &str, path: &VolumePath) -> ApiError {
    ApiError::not_found(
        "NOT_FOUND",
        format!("The {what} '{}' does not exist.", absolute(path)),
    )
}

/// The answer for a refused change of the tree.
fn refused(error: FileError, path: &VolumePath) -> ApiError {
    let shown = absolute(path);
    match error {
        FileError::NotFound => not_found("path", path),
        FileError::AlreadyExists | FileError::IsADirectory => ApiError::new(
            StatusCode::CONFLICT,
            "ALREADY_EXISTS",
            format!("'{shown}' already exists."),
        ),
        FileError::NotADirectory => {
            ApiError::bad_request(format!("A parent of '{shown}' is a file, not a directory."))
        }
        FileError::NotEmpty => ApiError::new(
            StatusCode::CONFLICT,
            "DIRECTORY_NOT_EMPTY",
            format!("The directory '{shown}' is not empty."),
        ),
        FileError::Root => ApiError::bad_request(format!(
            "'{shown}' is the root of a volume and cannot be deleted."
        )),
        FileError::FileTooLarge(limit) => too_large(format!(
            "A file may hold at most {limit} bytes in this emulator."
        )),
        FileError::VolumesFull(limit) => too_large(format!(
            "The emulator's volumes may hold at most {limit} bytes together."
        )),
    }
}

fn too_large(message: String) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "REQUEST_ENTITY_TOO_LARGE",
        message,
    )
}

/// `Last-Modified`, in the HTTP date format.
fn http_date(time: DateTime<Utc>) -> HeaderValue {
    HeaderValue::from_str(&time.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"))
}

/// The file at `path`, or `404` (a directory is not a file).
fn file_at(emulator: &Emulator, path: &VolumePath) -> Result<(Bytes, DateTime<Utc>), ApiError> {
    match lock(&emulator.files).get(path) {
        Some(Entry::File { data, modified }) => Ok((data.clone(), *modified)),
        _ => Err(not_found("file", path)),
    }
}

/// A byte range of a `Range: bytes=...` header, resolved against the length.
#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    /// No header, or one this emulator ignores (several ranges, other units): the whole file.
    Whole,
    /// `start..=end`.
    Part(u64, u64),
    /// No byte of the range exists: `416`.
    Unsatisfiable,
}

fn parse_range(header: Option<&str>, len: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((start, end)) = spec.split_once('-') else {
        return RangeRequest::Whole;
    };
    let (start, end) = (start.trim(), end.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    let (first, last) = match (start.is_empty(), end.is_empty()) {
        // `bytes=-n`: the last n bytes.
        (true, false) => match parse(end) {
            Some(0) => return RangeRequest::Unsatisfiable,
            Some(n) => (len.saturating_sub(n), len.saturating_sub(1)),
            None => return RangeRequest::Whole,
        },
        (false, true) => match parse(start) {
            Some(s) => (s, len.saturating_sub(1)),
            None => return RangeRequest::Whole,
        },
        (false, false) => match (parse(start), parse(end)) {
            (Some(s), Some(e)) if s <= e => (s, e.min(len.saturating_sub(1))),
            _ => return RangeRequest::Whole,
        },
        (true, true) => return RangeRequest::Whole,
    };
    if len == 0 || first >= len {
        RangeRequest::Unsatisfiable
    } else {
        RangeRequest::Part(first, last)
    }
}

/// Status, headers and body of a file read; `body` false for HEAD.
fn file_response(
    data: &Bytes,
    modified: DateTime<Utc>,
    range: RangeRequest,
    body: bool,
) -> Response {
    let len = data.len() as u64;
    let (status, bytes, content_range) = match range {
        RangeRequest::Whole => (StatusCode::OK, data.clone(), None),
        RangeRequest::Part(first, last) => {
            // Both ends are below `len`, which came from a `usize`.
            let slice = data.slice(first as usize..=last as usize);
            (
                StatusCode::PARTIAL_CONTENT,
                slice,
                Some(format!("bytes {first}-{last}/{len}")),
            )
        }
        RangeRequest::Unsatisfiable => {
            let mut response = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "INVALID_PARAMETER_VALUE",
                "The requested range is not satisfiable.",
            )
            .into_response();
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return response;
        }
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    headers.insert(header::LAST_MODIFIED, http_date(modified));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(value) = content_range.and_then(|v| HeaderValue::from_str(&v).ok()) {
        headers.insert(header::CONTENT_RANGE, value);
    }
    let body = if body {
        Body::from(bytes)
    } else {
        Body::empty()
    };
    (status, headers, body).into_response()
}

async fn download(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let path = resolve(&emulator, &principal, &raw, Access::Read)?;
    let (data, modified) = file_at(&emulator, &path)?;
    let range = parse_range(
        headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
        data.len() as u64,
    );
    Ok(file_response(&data, modified, range, true))
}

async fn metadata(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let path = resolve(&emulator, &principal, &raw, Access::Read)?;
    let (data, modified) = file_at(&emulator, &path)?;
    Ok(file_response(&data, modified, RangeRequest::Whole, false))
}

#[derive(Debug, Deserialize)]
struct UploadParams {
    /// `true` or `false` in any case (the SDKs send both spellings); absent means `true`.
    overwrite: Option<String>,
}

fn overwrite_flag(value: Option<&str>) -> Result<bool, ApiError> {
    match value {
        None => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(ApiError::bad_request(format!(
            "Invalid value for overwrite: '{v}'."
        ))),
    }
}

async fn upload(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path(raw): Path<String>,
    QueryParams(params): QueryParams<UploadParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let overwrite = overwrite_flag(params.overwrite.as_deref())?;
    let path = resolve(&emulator, &principal, &raw, Access::Write)?;
    let settings = emulator.settings();
    let caps = Caps {
        max_file_bytes: settings.files_max_file_bytes,
        max_total_bytes: settings.files_max_total_bytes,
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > caps.max_file_bytes) {
        return Err(refused(FileError::FileTooLarge(caps.max_file_bytes), &path));
    }
    // The whole body is read before the tree is touched, so a failed or oversized upload
    // stores nothing.
    let capacity = declared.map_or(0, |n| usize::try_from(n).unwrap_or(0));
    let limit = usize::try_from(caps.max_file_bytes).unwrap_or(usize::MAX);
    let data = read_capped(body.into_data_stream(), limit, capacity, || {
        refused(FileError::FileTooLarge(caps.max_file_bytes), &path)
    })
    .await?;
    lock(&emulator.files)
        .put_file(&path, Bytes::from(data), overwrite, caps, Utc::now())
        .map_err(|e| refused(e, &path))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_file(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let path = resolve(&emulator, &principal, &raw, Access::Write)?;
    match lock(&emulator.files).delete_file(&path) {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(FileError::IsADirectory | FileError::NotFound) => Err(not_found("file", &path)),
        Err(other) => Err(refused(other, &path)),
    }
}

/// `POST ...?action=initiate-upload` (multipart) and `create-download-url` (presigned URLs).
async fn initiate_upload(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    resolve(&emulator, &principal, &raw, Access::Write)?;
    Err(not_implemented())
}

async fn presigned_urls(Authenticated(_): Authenticated) -> ApiError {
    not_implemented()
}

fn not_implemented() -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "NOT_IMPLEMENTED",
        "This emulator serves files through the Files API only: no multipart uploads and no presigned URLs.",
    )
}

#[derive(Debug, Deserialize)]
struct ListParams {
    page_size: Option<i64>,
    page_token: Option<String>,
}

async fn list_directory(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path(raw): Path<String>,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<axum::Json<Value>, ApiError> {
    let path = resolve(&emulator, &principal, &raw, Access::Read)?;
    let size = match params.page_size {
        Some(n) if n < 0 => {
            return Err(ApiError::bad_request(
                "page_size must be greater than or equal to 0.",
            ));
        }
        None | Some(0) => MAX_PAGE_SIZE,
        Some(n) => usize::try_from(n).map_or(MAX_PAGE_SIZE, |n| n.min(MAX_PAGE_SIZE)),
    };
    let start = match params.page_token.as_deref().filter(|t| !t.is_empty()) {
        Some(token) => decode_page_token(token)?,
        None => 0,
    };
    let children = lock(&emulator.files)
        .list(&path)
        .map_err(|_| not_found("directory", &path))?;
    let total = children.len();
    let base = absolute(&path);
    let contents: Vec<Value> = children
        .into_iter()
        .skip(start)
        .take(size)
        .map(|child| directory_entry(&base, child))
        .collect();
    let end = start.saturating_add(size);
    let mut body = json!({ "contents": contents });
    if end < total {
        body["next_page_token"] = json!(encode_page_token(end));
    }
    Ok(axum::Json(body))
}

fn directory_entry(base: &str, child: Child) -> Value {
    let path = format!("{base}/{}", child.name);
    match child.file {
        Some((size, modified)) => json!({
            "path": path,
            "name": child.name,
            "is_directory": false,
            "file_size": size,
            "last_modified": modified.timestamp_millis(),
        }),
        None => json!({ "path": path, "name": child.name, "is_directory": true }),
    }
}

async fn directory_exists(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let path = resolve(&emulator, &principal, &raw, Access::Read)?;
    match lock(&emulator.files).get(&path) {
        Some(Entry::Directory) => Ok(StatusCode::OK),
        _ => Err(not_found("directory", &path)),
    }
}

async fn create_directory(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let path = resolve(&emulator, &principal, &raw, Access::Write)?;
    lock(&emulator.files)
        .create_directory(&path)
        .map_err(|e| refused(e, &path))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_directory(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let path = resolve(&emulator, &principal, &raw, Access::Write)?;
    match lock(&emulator.files).delete_directory(&path) {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(FileError::NotADirectory | FileError::NotFound) => Err(not_found("directory", &path)),
        Err(other) => Err(refused(other, &path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_against_the_length() {
        assert_eq!(parse_range(None, 10), RangeRequest::Whole);
        assert_eq!(parse_range(Some("bytes=2-4"), 10), RangeRequest::Part(2, 4));
        assert_eq!(parse_range(Some("bytes=8-"), 10), RangeRequest::Part(8, 9));
        assert_eq!(parse_range(Some("bytes=-3"), 10), RangeRequest::Part(7, 9));
        assert_eq!(
            parse_range(Some("bytes=5-100"), 10),
            RangeRequest::Part(5, 9)
        );
        assert_eq!(
            parse_range(Some("bytes=10-"), 10),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(
            parse_range(Some("bytes=0-1"), 0),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(parse_range(Some("bytes=0-1,3-4"), 10), RangeRequest::Whole);
        assert_eq!(parse_range(Some("items=0-1"), 10), RangeRequest::Whole);
        assert_eq!(parse_range(Some("bytes=4-2"), 10), RangeRequest::Whole);
    }

    #[test]
    fn overwrite_accepts_both_spellings_and_defaults_to_true() {
        assert!(overwrite_flag(None).unwrap());
        assert!(!overwrite_flag(Some("False")).unwrap());
        assert!(overwrite_flag(Some("true")).unwrap());
        assert!(overwrite_flag(Some("maybe")).is_err());
    }
}
