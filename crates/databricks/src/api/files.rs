//! Volumes and the Files API (UPSTREAM-2 §5.1 and §5.3): the volumes of a schema, the
//! contents of a directory in pages, a file's metadata, downloads and uploads as byte streams,
//! deleting a file and creating a directory.
//!
//! Paths are absolute, `/Volumes/<catalog>/<schema>/<volume>/...`; each segment is
//! percent-encoded here (a space is `%20`), so callers pass them as they read.
//!
//! Retries follow `http`'s policy, with two exceptions: a download is sent once
//! ([`Workspace::download_file`] returns as soon as the headers arrive, and its bytes may already
//! be on their way to the caller when it fails), and an upload is sent once
//! ([`Workspace::upload_file`] streams its body, which cannot be replayed). The caller decides
//! whether to try either again. Neither buffers the file: bytes pass through as they arrive,
//! and the call's timeout (the view's, see [`Workspace::with_timeout`]) covers the whole
//! transfer.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::stream::{Stream, TryStream, TryStreamExt};
use reqwest::Method;
use reqwest::header::{
    ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue, LAST_MODIFIED,
};
use serde::Deserialize;
use serde_json::Value;

use super::{Page, PageRequest, encode_segment};
use crate::client::Workspace;
use crate::error::DatabricksError;
use crate::http::Operation;

// The `api`/`operation` names of this module's calls (see [`Operation`]).
const LIST_VOLUMES: Operation = Operation::new("unity_catalog", "list_volumes");
const GET_VOLUME: Operation = Operation::new("unity_catalog", "get_volume");
const LIST_DIRECTORY: Operation = Operation::new("files", "list_directory_contents");
const GET_METADATA: Operation = Operation::new("files", "get_metadata");
const DOWNLOAD: Operation = Operation::new("files", "download");
const UPLOAD: Operation = Operation::new("files", "upload");
const DELETE_FILE: Operation = Operation::new("files", "delete");
const CREATE_DIRECTORY: Operation = Operation::new("files", "create_directory");

/// The content type of uploads, as the SDKs send it.
const OCTET_STREAM: &str = "application/octet-stream";

/// A volume (`VolumeInfo`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct VolumeInfo {
    /// Name.
    pub name: String,
    /// Catalog name.
    #[serde(default)]
    pub catalog_name: Option<String>,
    /// Schema name.
    #[serde(default)]
    pub schema_name: Option<String>,
    /// `catalog.schema.volume`.
    #[serde(default)]
    pub full_name: Option<String>,
    /// `MANAGED` or `EXTERNAL`.
    #[serde(default)]
    pub volume_type: Option<String>,
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

/// One entry of a directory listing (`DirectoryEntry`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct DirectoryEntry {
    /// Absolute path, `/Volumes/...`.
    pub path: String,
    /// The last segment of the path.
    #[serde(default)]
    pub name: Option<String>,
    /// Whether the entry is a directory.
    #[serde(default)]
    pub is_directory: bool,
    /// Size in bytes (files only).
    #[serde(default)]
    pub file_size: Option<u64>,
    /// Last modification, epoch milliseconds (files only).
    #[serde(default)]
    pub last_modified: Option<i64>,
}

/// Which page of a directory listing to ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DirectoryPageRequest {
    /// Entries per page, at most 1 000; `None` lets the server choose (1 000).
    pub page_size: Option<u32>,
    /// The previous page's `next_page_token`.
    pub page_token: Option<String>,
}

impl DirectoryPageRequest {
    /// The page of at most `page_size` entries after `page_token` (the first page when `None`).
    #[must_use]
    pub fn new(page_size: Option<u32>, page_token: Option<String>) -> Self {
        Self {
            page_size,
            page_token,
        }
    }
}

/// What the headers of a file say about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileMetadata {
    /// `Content-Length`: the size in bytes.
    pub content_length: Option<u64>,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Last-Modified`.
    pub last_modified: Option<DateTime<Utc>>,
}

impl FileMetadata {
    fn from_headers(headers: &HeaderMap) -> Self {
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        Self {
            content_length: text(CONTENT_LENGTH).and_then(|v| v.parse().ok()),
            content_type: text(CONTENT_TYPE).map(str::to_owned),
            last_modified: text(LAST_MODIFIED)
                .and_then(|v| DateTime::parse_from_rfc2822(v).ok())
                .map(|t| t.with_timezone(&Utc)),
        }
    }
}

/// A download in progress: the file's metadata, known from the headers, and its bytes as a
/// stream that yields them as they arrive.
#[derive(Debug)]
pub struct FileDownload {
    metadata: FileMetadata,
    response: reqwest::Response,
}

impl FileDownload {
    /// What the headers said.
    #[must_use]
    pub fn metadata(&self) -> &FileMetadata {
        &self.metadata
    }

    /// The bytes, as they arrive; a broken connection or the call's timeout ends the stream
    /// with an error.
    pub fn into_stream(self) -> FileStream {
        FileStream {
            inner: Box::pin(
                self.response
                    .bytes_stream()
                    .map_err(DatabricksError::from_reqwest),
            ),
        }
    }
}

/// The bytes of a [`FileDownload`].
pub struct FileStream {
    inner: Pin<Box<dyn Stream<Item = Result<Bytes, DatabricksError>> + Send>>,
}

impl std::fmt::Debug for FileStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStream").finish_non_exhaustive()
    }
}

impl Stream for FileStream {
    type Item = Result<Bytes, DatabricksError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

#[derive(Deserialize)]
struct Volumes {
    #[serde(default)]
    volumes: Vec<VolumeInfo>,
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct Directory {
    #[serde(default)]
    contents: Vec<DirectoryEntry>,
    next_page_token: Option<String>,
}

/// `/Volumes/a b/c` as `/Volumes/a%20b/c`: every segment encoded, the slashes kept.
fn encode_path(path: &str) -> String {
    path.split('/')
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}

fn files_path(path: &str) -> String {
    format!("/api/2.0/fs/files{}", encode_path(path))
}

fn directories_path(path: &str) -> String {
    format!("/api/2.0/fs/directories{}", encode_path(path))
}

impl Workspace<'_> {
    /// One page of the volumes of `catalog.schema` that the identity can see.
    ///
    /// # Errors
    /// [`crate::ErrorKind::NotFound`] or [`crate::ErrorKind::PermissionDenied`] for the catalog
    /// or schema; auth, transport and 5xx kinds.
    #[tracing::instrument(skip_all, fields(catalog = %catalog, schema = %schema))]
    pub async fn list_volumes(
        &self,
        catalog: &str,
        schema: &str,
        page: &PageRequest,
    ) -> Result<Page<VolumeInfo>, DatabricksError> {
        let mut call = self
            .call(LIST_VOLUMES, Method::GET, "/api/2.1/unity-catalog/volumes")
            .query("catalog_name", catalog)
            .query("schema_name", schema)
            .query("max_results", page.max_results);
        if let Some(token) = &page.page_token {
            call = call.query("page_token", token);
        }
        let body: Volumes = self.get_json(call, "volumes list").await?;
        Ok(Page {
            items: body.volumes,
            next_page_token: body.next_page_token,
        })
    }

    /// One volume by full name `catalog.schema.volume`.
    ///
    /// # Errors
    /// [`crate::ErrorKind::NotFound`], [`crate::ErrorKind::PermissionDenied`], auth, transport
    /// and 5xx kinds.
    #[tracing::instrument(skip_all, fields(volume = %full_name))]
    pub async fn get_volume(&self, full_name: &str) -> Result<VolumeInfo, DatabricksError> {
        let path = format!(
            "/api/2.1/unity-catalog/volumes/{}",
            encode_segment(full_name)
        );
        self.get_json(self.call(GET_VOLUME, Method::GET, &path), "volume")
            .await
    }

    /// One page of the entries of the directory `path`.
    ///
    /// # Errors
    /// [`crate::ErrorKind::NotFound`] when there is no such directory (or volume),
    /// [`crate::ErrorKind::PermissionDenied`], [`crate::ErrorKind::BadRequest`] for a bad page
    /// token; auth, transport and 5xx kinds.
    #[tracing::instrument(skip_all)]
    pub async fn list_directory_contents(
        &self,
        path: &str,
        page: &DirectoryPageRequest,
    ) -> Result<Page<DirectoryEntry>, DatabricksError> {
        let mut call = self.call(LIST_DIRECTORY, Method::GET, &directories_path(path));
        if let Some(size) = page.page_size {
            call = call.query("page_size", size);
        }
        if let Some(token) = &page.page_token {
            call = call.query("page_token", token);
        }
        let body: Directory = self.get_json(call, "directory listing").await?;
        Ok(Page {
            items: body.contents,
            next_page_token: body.next_page_token.filter(|t| !t.is_empty()),
        })
    }

    /// The metadata of the file `path` (a `HEAD`).
    ///
    /// # Errors
    /// [`crate::ErrorKind::NotFound`] (the status alone: a `HEAD` answer has no body),
    /// [`crate::ErrorKind::PermissionDenied`]; auth, transport and 5xx kinds.
    #[tracing::instrument(skip_all)]
    pub async fn get_file_metadata(&self, path: &str) -> Result<FileMetadata, DatabricksError> {
        let response = self
            .send(self.call(GET_METADATA, Method::HEAD, &files_path(path)))
            .await?;
        Ok(FileMetadata::from_headers(&response.headers))
    }

    /// Starts downloading the file `path`: returns once the headers have arrived, with the
    /// bytes still to come. Sent once, never retried (see the module header).
    ///
    /// ```no_run
    /// # async fn run(client: dbapp_databricks::Client, token: dbapp_databricks::UserToken) -> Result<(), dbapp_databricks::DatabricksError> {
    /// use futures_util::TryStreamExt;
    ///
    /// let view = client.as_user(&token);
    /// let download = view.download_file("/Volumes/main/default/files/README.md").await?;
    /// println!("{:?} bytes", download.metadata().content_length);
    /// let mut bytes = download.into_stream();
    /// while let Some(chunk) = bytes.try_next().await? {
    ///     println!("{} more", chunk.len());
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Workspace::get_file_metadata`].
    #[tracing::instrument(skip_all)]
    pub async fn download_file(&self, path: &str) -> Result<FileDownload, DatabricksError> {
        let call = self
            .call(DOWNLOAD, Method::GET, &files_path(path))
            .header(ACCEPT, HeaderValue::from_static(OCTET_STREAM));
        let response = self.send_streaming(call).await?;
        Ok(FileDownload {
            metadata: FileMetadata::from_headers(response.headers()),
            response,
        })
    }

    /// Uploads `body` to the file `path`, streaming it as it is produced; parent directories
    /// are created. With `content_length` the request declares the size (the workspace may
    /// need it), otherwise it is sent chunked. Sent once, never retried: the stream cannot be
    /// replayed.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Conflict`] when the file exists and `overwrite` is false,
    /// [`crate::ErrorKind::PermissionDenied`] without write access,
    /// [`crate::ErrorKind::NotFound`] for a missing volume; [`crate::ErrorKind::Transport`]
    /// when the body stream fails; auth and 5xx kinds.
    #[tracing::instrument(skip_all, fields(overwrite))]
    pub async fn upload_file<S>(
        &self,
        path: &str,
        body: S,
        content_length: Option<u64>,
        overwrite: bool,
    ) -> Result<(), DatabricksError>
    where
        S: TryStream + Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        Bytes: From<S::Ok>,
    {
        let mut call = self
            .call(UPLOAD, Method::PUT, &files_path(path))
            .query("overwrite", overwrite)
            .header(CONTENT_TYPE, HeaderValue::from_static(OCTET_STREAM))
            .stream(reqwest::Body::wrap_stream(body))
            .idempotent(false);
        if let Some(length) = content_length {
            call = call.header(CONTENT_LENGTH, HeaderValue::from(length));
        }
        self.send_streaming(call).await?;
        Ok(())
    }

    /// Deletes the file `path`.
    ///
    /// # Errors
    /// [`crate::ErrorKind::NotFound`], [`crate::ErrorKind::PermissionDenied`]; auth, transport
    /// and 5xx kinds.
    #[tracing::instrument(skip_all)]
    pub async fn delete_file(&self, path: &str) -> Result<(), DatabricksError> {
        self.send(self.call(DELETE_FILE, Method::DELETE, &files_path(path)))
            .await?;
        Ok(())
    }

    /// Creates the directory `path` and its parents; an existing directory is not an error.
    ///
    /// # Errors
    /// [`crate::ErrorKind::PermissionDenied`], [`crate::ErrorKind::NotFound`] for a missing
    /// volume; auth, transport and 5xx kinds.
    #[tracing::instrument(skip_all)]
    pub async fn create_directory(&self, path: &str) -> Result<(), DatabricksError> {
        self.send(self.call(CREATE_DIRECTORY, Method::PUT, &directories_path(path)))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_keep_their_slashes_and_encode_the_rest() {
        assert_eq!(
            files_path("/Volumes/main/default/files/my dir/a%b.txt"),
            "/api/2.0/fs/files/Volumes/main/default/files/my%20dir/a%25b.txt"
        );
        assert_eq!(
            directories_path("/Volumes/c/s/v"),
            "/api/2.0/fs/directories/Volumes/c/s/v"
        );
    }

    #[test]
    fn metadata_is_read_from_the_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("14"));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/csv"));
        headers.insert(
            LAST_MODIFIED,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        let metadata = FileMetadata::from_headers(&headers);
        assert_eq!(metadata.content_length, Some(14));
        assert_eq!(metadata.content_type.as_deref(), Some("text/csv"));
        assert_eq!(
            metadata.last_modified.unwrap().to_rfc3339(),
            "2015-10-21T07:28:00+00:00"
        );
    }
}
