//! Workspace files (PY `service/workspace.py` `WorkspaceAPI`): the folders and files an app's
//! source code is uploaded to before a deployment names the folder. Creating folders, importing
//! a file (`format: AUTO`, overwriting), listing a folder, one object's status, and deleting.
//!
//! Paths are absolute workspace paths (`/Workspace/Users/...` or `/Users/...`, the same
//! object); they travel in JSON bodies and query strings, never in the URL path. Notebooks are
//! out of scope: `AUTO` makes a file of anything that is not a notebook source export.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use crate::client::Workspace;
use crate::error::{DatabricksError, ErrorKind};
use crate::http::Operation;

// The `api`/`operation` names of this module's calls (see [`Operation`]).
const MKDIRS: Operation = Operation::new("workspace", "mkdirs");
const IMPORT: Operation = Operation::new("workspace", "import");
const LIST: Operation = Operation::new("workspace", "list");
const DELETE: Operation = Operation::new("workspace", "delete");

/// A workspace object (`ObjectInfo`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObjectInfo {
    /// Absolute path, as the workspace writes it.
    pub path: String,
    /// `DIRECTORY`, `FILE`, `NOTEBOOK`, `LIBRARY`, `REPO`, …
    #[serde(default)]
    pub object_type: String,
    /// Bytes (files and notebooks).
    #[serde(default)]
    pub size: Option<u64>,
}

impl ObjectInfo {
    /// Whether it is a folder.
    #[must_use]
    pub fn is_directory(&self) -> bool {
        self.object_type == "DIRECTORY"
    }
}

#[derive(Deserialize)]
struct Listing {
    // An empty folder is answered with `{}`.
    #[serde(default)]
    objects: Vec<ObjectInfo>,
}

fn absolute(path: &str) -> Result<&str, DatabricksError> {
    if path.starts_with('/') && !path.contains(['\n', '\r', '\0']) {
        Ok(path)
    } else {
        Err(DatabricksError::new(
            ErrorKind::BadRequest,
            format!("{path:?} is not an absolute workspace path"),
        ))
    }
}

impl Workspace<'_> {
    /// Creates a folder and its parents (`POST /api/2.0/workspace/mkdirs`); an existing folder
    /// is fine.
    ///
    /// # Errors
    /// [`ErrorKind::BadRequest`] for a relative path or a file in the way; auth, transport and
    /// 5xx kinds.
    #[tracing::instrument(skip_all, fields(path = %path))]
    pub async fn mkdirs(&self, path: &str) -> Result<(), DatabricksError> {
        let call = self
            .call(MKDIRS, Method::POST, "/api/2.0/workspace/mkdirs")
            .json(json!({ "path": absolute(path)? }))
            .idempotent(true);
        self.send(call).await.map(drop)
    }

    /// Writes `content` as the file at `path` (`POST /api/2.0/workspace/import`, `format: AUTO`,
    /// overwriting what is there). The parent folder must exist.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when the parent folder is missing, [`ErrorKind::BadRequest`] for
    /// a file over the workspace's limit (10 MiB) or a folder in the way; auth, transport and
    /// 5xx kinds.
    #[tracing::instrument(skip_all, fields(path = %path, bytes = content.len()))]
    pub async fn import_file(&self, path: &str, content: &[u8]) -> Result<(), DatabricksError> {
        let body = json!({
            "path": absolute(path)?,
            "content": STANDARD.encode(content),
            "format": "AUTO",
            "overwrite": true,
        });
        // Overwriting with the same bytes twice leaves the same file.
        let call = self
            .call(IMPORT, Method::POST, "/api/2.0/workspace/import")
            .json(body)
            .idempotent(true);
        self.send(call).await.map(drop)
    }

    /// The objects in a folder, one level deep (`GET /api/2.0/workspace/list`).
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when the folder does not exist; auth, transport and 5xx kinds.
    #[tracing::instrument(skip_all, fields(path = %path))]
    pub async fn list_workspace(&self, path: &str) -> Result<Vec<ObjectInfo>, DatabricksError> {
        let call = self
            .call(LIST, Method::GET, "/api/2.0/workspace/list")
            .query("path", absolute(path)?);
        let listing: Listing = self.get_json(call, "workspace listing").await?;
        Ok(listing.objects)
    }

    /// Deletes an object (`POST /api/2.0/workspace/delete`); a folder with children only when
    /// `recursive`.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`], [`ErrorKind::BadRequest`] for a folder with children without
    /// `recursive`; auth, transport and 5xx kinds.
    #[tracing::instrument(skip_all, fields(path = %path, recursive))]
    pub async fn delete_workspace_object(
        &self,
        path: &str,
        recursive: bool,
    ) -> Result<(), DatabricksError> {
        let call = self
            .call(DELETE, Method::POST, "/api/2.0/workspace/delete")
            .json(json!({ "path": absolute(path)?, "recursive": recursive }));
        self.send(call).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_folder_lists_nothing_and_objects_read_their_kind() {
        let empty: Listing = serde_json::from_str("{}").unwrap();
        assert!(empty.objects.is_empty());
        let listing: Listing = serde_json::from_str(
            r#"{"objects":[{"path":"/Users/a/app","object_type":"DIRECTORY","object_id":1},
                           {"path":"/Users/a/app.yaml","object_type":"FILE","size":12}]}"#,
        )
        .unwrap();
        assert!(listing.objects[0].is_directory());
        assert_eq!(listing.objects[1].size, Some(12));
    }

    #[test]
    fn only_absolute_paths_are_sent() {
        assert!(absolute("/Workspace/Users/a").is_ok());
        for bad in ["Users/a", "", "/a\nb"] {
            assert_eq!(absolute(bad).unwrap_err().kind(), ErrorKind::BadRequest);
        }
    }
}
