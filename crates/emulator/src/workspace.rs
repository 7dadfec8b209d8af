//! The workspace file tree behind the Workspace API (`/api/2.0/workspace/*`): directories, files
//! and notebooks, held in memory, with the size caps of the fixture settings
//! (`workspace_max_file_bytes`, `workspace_max_total_bytes`).
//!
//! This module owns the tree, its paths and the choices of `AUTO` import (what becomes a
//! notebook); `routes::workspace` maps HTTP (JSON, multipart, raw downloads) onto it, and
//! `routes::apps` asks it whether a deployment's `source_code_path` is a directory. It knows
//! nothing of principals: any principal may read and write anywhere (`docs/emulator.md`).
//!
//! Paths are absolute and normalised once, by [`WorkspacePath::parse`]: `/Workspace/...` is the
//! same object as `/...` (the form Apps and bundles use), a trailing `/` is dropped, and an empty,
//! `.` or `..` segment is refused. The tree keeps its shape (every object's parent is a
//! directory) and every change is checked in full before anything is written, so a refused
//! change leaves the tree exactly as it was.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::files::{Caps, relative_segments};
use crate::fixture::Fixture;

/// The prefix under which the same tree is also addressed (`/Workspace/Users/...`).
const WORKSPACE_PREFIX: &str = "/Workspace";
/// First line of a notebook exported as source, by extension and language: a file imported
/// with `AUTO` whose content starts with it becomes a notebook.
const NOTEBOOK_HEADERS: [(&str, &str, &str); 4] = [
    (".py", "PYTHON", "# Databricks notebook source"),
    (".sql", "SQL", "-- Databricks notebook source"),
    (".scala", "SCALA", "// Databricks notebook source"),
    (".r", "R", "# Databricks notebook source"),
];
/// The languages a notebook may have, with the extension its source export carries.
const LANGUAGES: [(&str, &str); 4] = [
    ("PYTHON", "py"),
    ("SQL", "sql"),
    ("SCALA", "scala"),
    ("R", "r"),
];

/// An absolute, normalised workspace path: `/` or `/a/b` (never `/Workspace/...`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct WorkspacePath(String);

impl WorkspacePath {
    /// Parses a path as clients send it; `None` when it is not absolute or has an empty, `.`
    /// or `..` segment or a control character.
    pub(crate) fn parse(raw: &str) -> Option<Self> {
        let rest = raw.strip_prefix('/').filter(|r| !r.starts_with('/'))?;
        let segments = relative_segments(rest)?;
        let segments = match segments.split_first() {
            Some((first, tail)) if first == &WORKSPACE_PREFIX[1..] => tail.to_vec(),
            _ => segments,
        };
        Some(Self(format!("/{}", segments.join("/"))))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The directory above, `None` for the root.
    fn parent(&self) -> Option<Self> {
        let (parent, _) = self.0.rsplit_once('/')?;
        (self.0 != "/").then(|| Self(if parent.is_empty() { "/" } else { parent }.to_owned()))
    }

    /// This path and every directory above it, the root first.
    fn lineage(&self) -> Vec<Self> {
        let mut chain = vec![self.clone()];
        while let Some(parent) = chain.last().and_then(Self::parent) {
            chain.push(parent);
        }
        chain.reverse();
        chain
    }

    /// The prefix every path below this directory starts with.
    fn child_prefix(&self) -> String {
        if self.0 == "/" {
            "/".to_owned()
        } else {
            format!("{}/", self.0)
        }
    }
}

/// What an object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Directory,
    File,
    /// A notebook, with its language (`PYTHON`, `SQL`, `SCALA`, `R`).
    Notebook(&'static str),
}

/// One object of the tree.
#[derive(Debug, Clone)]
pub(crate) struct Object {
    pub(crate) kind: Kind,
    /// The content; empty for directories.
    pub(crate) data: Bytes,
    object_id: u64,
    created_at: DateTime<Utc>,
    modified_at: DateTime<Utc>,
}

impl Object {
    /// The `ObjectInfo` of the SDK: `language` only for notebooks, `size` not for directories.
    pub(crate) fn info(&self, path: &WorkspacePath) -> Value {
        let (object_type, language) = match self.kind {
            Kind::Directory => ("DIRECTORY", None),
            Kind::File => ("FILE", None),
            Kind::Notebook(language) => ("NOTEBOOK", Some(language)),
        };
        let mut info = json!({
            "path": path.as_str(),
            "object_type": object_type,
            "object_id": self.object_id,
            "created_at": self.created_at.timestamp_millis(),
            "modified_at": self.modified_at.timestamp_millis(),
        });
        if let Some(language) = language {
            info["language"] = language.into();
        }
        if self.kind != Kind::Directory {
            info["size"] = self.data.len().into();
        }
        info
    }

    /// The extension of a notebook's source export (`py`, …); `None` for files and directories.
    pub(crate) fn source_extension(&self) -> Option<&'static str> {
        match self.kind {
            Kind::Notebook(language) => LANGUAGES
                .iter()
                .find(|(l, _)| *l == language)
                .map(|(_, ext)| *ext),
            _ => None,
        }
    }
}

/// The language named by an import's `language` field, as its `'static` spelling.
pub(crate) fn language(name: &str) -> Option<&'static str> {
    LANGUAGES.iter().map(|(l, _)| *l).find(|l| *l == name)
}

/// How an `AUTO` import stores `data` at `path`: a notebook (at `path` without its extension)
/// when the extension is `.py`, `.sql`, `.scala` or `.r`/`.R` and the content starts with that
/// language's notebook header; a file at `path` otherwise.
pub(crate) fn auto_kind(path: &WorkspacePath, data: &[u8]) -> (WorkspacePath, Kind) {
    let lower = path.as_str().to_ascii_lowercase();
    for (ext, language, header) in NOTEBOOK_HEADERS {
        if lower.ends_with(ext)
            && data.starts_with(header.as_bytes())
            && let Some(stem) = path.as_str().get(..path.as_str().len() - ext.len())
            && !stem.ends_with('/')
        {
            return (WorkspacePath(stem.to_owned()), Kind::Notebook(language));
        }
    }
    (path.clone(), Kind::File)
}

/// Why the tree refused a change or a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WorkspaceError {
    /// Nothing at the path (given).
    NotFound(WorkspacePath),
    /// The parent directory (given) does not exist, or is not a directory.
    NoParent(WorkspacePath),
    /// An object is already at the path (given), and may not be replaced.
    AlreadyExists(WorkspacePath),
    /// A directory that still has children, deleted without `recursive`.
    NotEmpty(WorkspacePath),
    /// The root, `/Users`, `/Shared` and home directories cannot be deleted.
    Protected(WorkspacePath),
    /// The content is larger than the per-file cap (given).
    FileTooLarge(u64),
    /// The workspace would hold more than the total cap (given).
    WorkspaceFull(u64),
}

/// Every workspace object, keyed by path.
#[derive(Debug)]
pub(crate) struct WorkspaceTree {
    objects: BTreeMap<WorkspacePath, Object>,
    /// Directories that exist from the start and cannot be deleted.
    protected: BTreeSet<WorkspacePath>,
    total_bytes: u64,
    /// The next `object_id`; ids are never reused until a reset.
    next_id: u64,
}

impl WorkspaceTree {
    /// The tree a fixture starts with: `/`, `/Shared`, `/Users` and a home directory
    /// `/Users/<user_name>` for every user and service principal.
    pub(crate) fn from_fixture(fixture: &Fixture, now: DateTime<Utc>) -> Self {
        let homes = fixture
            .users
            .iter()
            .map(|u| u.user_name.as_str())
            .chain(
                fixture
                    .service_principals
                    .iter()
                    .map(|s| s.application_id.as_str()),
            )
            .filter_map(|name| WorkspacePath::parse(&format!("/Users/{name}")));
        let protected: BTreeSet<WorkspacePath> = ["/", "/Shared", "/Users"]
            .into_iter()
            .map(|p| WorkspacePath(p.to_owned()))
            .chain(homes)
            .collect();
        let mut tree = Self {
            objects: BTreeMap::new(),
            protected: BTreeSet::new(),
            total_bytes: 0,
            next_id: 1_000_000_000_000_000,
        };
        for path in &protected {
            tree.insert(path.clone(), Kind::Directory, Bytes::new(), now);
        }
        tree.protected = protected;
        tree
    }

    fn insert(&mut self, path: WorkspacePath, kind: Kind, data: Bytes, now: DateTime<Utc>) {
        let created_at = self.objects.get(&path).map_or(now, |o| o.created_at);
        let object_id = match self.objects.get(&path) {
            Some(old) => old.object_id,
            None => {
                self.next_id += 1;
                self.next_id
            }
        };
        self.objects.insert(
            path,
            Object {
                kind,
                data,
                object_id,
                created_at,
                modified_at: now,
            },
        );
    }

    /// The object at `path`.
    pub(crate) fn get(&self, path: &WorkspacePath) -> Result<&Object, WorkspaceError> {
        self.objects
            .get(path)
            .ok_or_else(|| WorkspaceError::NotFound(path.clone()))
    }

    /// Whether `path` is a directory.
    pub(crate) fn is_directory(&self, path: &WorkspacePath) -> bool {
        self.objects
            .get(path)
            .is_some_and(|o| o.kind == Kind::Directory)
    }

    /// The children of a directory, in path order; a file or notebook lists as itself.
    pub(crate) fn list(&self, path: &WorkspacePath) -> Result<Vec<Value>, WorkspaceError> {
        let object = self.get(path)?;
        if object.kind != Kind::Directory {
            return Ok(vec![object.info(path)]);
        }
        Ok(self
            .descendants(path)
            .filter(|(p, _)| p.parent().as_ref() == Some(path))
            .map(|(p, o)| o.info(p))
            .collect())
    }

    /// Writes a file or notebook into an existing directory.
    pub(crate) fn import(
        &mut self,
        path: &WorkspacePath,
        kind: Kind,
        data: Bytes,
        overwrite: bool,
        caps: Caps,
        now: DateTime<Utc>,
    ) -> Result<(), WorkspaceError> {
        let parent = path
            .parent()
            .ok_or_else(|| WorkspaceError::AlreadyExists(path.clone()))?;
        if !self.is_directory(&parent) {
            return Err(WorkspaceError::NoParent(parent));
        }
        let replaced = match self.objects.get(path) {
            Some(o) if o.kind == Kind::Directory || !overwrite => {
                return Err(WorkspaceError::AlreadyExists(path.clone()));
            }
            Some(o) => o.data.len() as u64,
            None => 0,
        };
        let size = data.len() as u64;
        if size > caps.max_file_bytes {
            return Err(WorkspaceError::FileTooLarge(caps.max_file_bytes));
        }
        let total = self.total_bytes - replaced + size;
        if total > caps.max_total_bytes {
            return Err(WorkspaceError::WorkspaceFull(caps.max_total_bytes));
        }
        self.insert(path.clone(), kind, data, now);
        self.total_bytes = total;
        Ok(())
    }

    /// Creates a directory and its parents (`mkdir -p`); an existing directory is fine.
    pub(crate) fn mkdirs(
        &mut self,
        path: &WorkspacePath,
        now: DateTime<Utc>,
    ) -> Result<(), WorkspaceError> {
        let lineage = path.lineage();
        if let Some(blocker) = lineage.iter().find(|p| {
            self.objects
                .get(*p)
                .is_some_and(|o| o.kind != Kind::Directory)
        }) {
            return Err(WorkspaceError::AlreadyExists(blocker.clone()));
        }
        for dir in lineage {
            if !self.objects.contains_key(&dir) {
                self.insert(dir, Kind::Directory, Bytes::new(), now);
            }
        }
        Ok(())
    }

    /// Deletes an object; a directory with children only when `recursive`, with all of them.
    pub(crate) fn delete(
        &mut self,
        path: &WorkspacePath,
        recursive: bool,
    ) -> Result<(), WorkspaceError> {
        self.get(path)?;
        if self.protected.contains(path) {
            return Err(WorkspaceError::Protected(path.clone()));
        }
        let below: Vec<WorkspacePath> = self.descendants(path).map(|(p, _)| p.clone()).collect();
        if !below.is_empty() && !recursive {
            return Err(WorkspaceError::NotEmpty(path.clone()));
        }
        for gone in below.iter().chain([path]) {
            if let Some(object) = self.objects.remove(gone) {
                self.total_bytes -= object.data.len() as u64;
            }
        }
        Ok(())
    }

    /// Everything below the directory `path`, in path order.
    /// The files and notebooks below a directory as paths relative to it (a notebook with its
    /// source extension) and contents: what a deployment copies to run (`runtime`).
    pub(crate) fn snapshot(&self, dir: &WorkspacePath) -> Vec<(String, Bytes)> {
        let prefix = dir.child_prefix();
        self.descendants(dir)
            .filter(|(_, o)| o.kind != Kind::Directory)
            .map(|(p, o)| {
                let relative = p.0[prefix.len()..].to_owned();
                let relative = match o.source_extension() {
                    Some(extension) => format!("{relative}.{extension}"),
                    None => relative,
                };
                (relative, o.data.clone())
            })
            .collect()
    }

    fn descendants<'a>(
        &'a self,
        path: &WorkspacePath,
    ) -> impl Iterator<Item = (&'a WorkspacePath, &'a Object)> + 'a {
        let prefix = path.child_prefix();
        self.objects
            .range(WorkspacePath(prefix.clone())..)
            .take_while(move |(p, _)| p.0.starts_with(&prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: Caps = Caps {
        max_file_bytes: 10,
        max_total_bytes: 15,
    };

    fn path(p: &str) -> WorkspacePath {
        WorkspacePath::parse(p).unwrap()
    }

    fn tree() -> WorkspaceTree {
        WorkspaceTree::from_fixture(&Fixture::default(), Utc::now())
    }

    #[test]
    fn paths_are_absolute_without_dot_segments_and_workspace_is_an_alias() {
        assert_eq!(path("/Workspace/Users/a").as_str(), "/Users/a");
        assert_eq!(path("/Workspace").as_str(), "/");
        assert_eq!(path("/Users/a/").as_str(), "/Users/a");
        assert_eq!(path("/").as_str(), "/");
        assert_eq!(path("/Workspaces/x").as_str(), "/Workspaces/x");
        for bad in ["", "Users/a", "/a//b", "/a/../b", "/a/./b", "/a\nb", "//"] {
            assert!(WorkspacePath::parse(bad).is_none(), "{bad:?}");
        }
        assert_eq!(path("/a/b").parent(), Some(path("/a")));
        assert_eq!(path("/a").parent(), Some(path("/")));
        assert_eq!(path("/").parent(), None);
    }

    #[test]
    fn auto_makes_notebooks_only_of_headed_sources_and_drops_the_extension() {
        let (p, kind) = auto_kind(&path("/d/nb.py"), b"# Databricks notebook source\n1");
        assert_eq!((p.as_str(), kind), ("/d/nb", Kind::Notebook("PYTHON")));
        let (p, kind) = auto_kind(&path("/d/q.SQL"), b"-- Databricks notebook source");
        assert_eq!((p.as_str(), kind), ("/d/q", Kind::Notebook("SQL")));
        let (p, kind) = auto_kind(&path("/d/app.py"), b"import os");
        assert_eq!((p.as_str(), kind), ("/d/app.py", Kind::File));
        let (_, kind) = auto_kind(&path("/d/notes.txt"), b"# Databricks notebook source");
        assert_eq!(kind, Kind::File);
    }

    #[test]
    fn fixture_users_have_home_directories_that_cannot_be_deleted() {
        let mut tree = tree();
        let home = path("/Users/alice@example.com");
        assert!(tree.is_directory(&home));
        assert_eq!(
            tree.delete(&home, true),
            Err(WorkspaceError::Protected(home))
        );
        assert_eq!(
            tree.delete(&path("/"), true),
            Err(WorkspaceError::Protected(path("/")))
        );
    }

    #[test]
    fn refused_changes_change_nothing() {
        let mut tree = tree();
        let now = Utc::now();
        tree.mkdirs(&path("/d"), now).unwrap();
        tree.import(
            &path("/d/f"),
            Kind::File,
            Bytes::from_static(b"123456789"),
            false,
            CAPS,
            now,
        )
        .unwrap();

        let again = tree.import(
            &path("/d/f"),
            Kind::File,
            Bytes::from_static(b"x"),
            false,
            CAPS,
            now,
        );
        assert_eq!(again, Err(WorkspaceError::AlreadyExists(path("/d/f"))));
        let big = tree.import(
            &path("/d/g"),
            Kind::File,
            Bytes::from(vec![0; 11]),
            true,
            CAPS,
            now,
        );
        assert_eq!(big, Err(WorkspaceError::FileTooLarge(10)));
        let full = tree.import(
            &path("/d/g"),
            Kind::File,
            Bytes::from(vec![0; 7]),
            true,
            CAPS,
            now,
        );
        assert_eq!(full, Err(WorkspaceError::WorkspaceFull(15)));
        let orphan = tree.import(&path("/nope/g"), Kind::File, Bytes::new(), true, CAPS, now);
        assert_eq!(orphan, Err(WorkspaceError::NoParent(path("/nope"))));
        assert_eq!(
            tree.mkdirs(&path("/d/f/sub"), now),
            Err(WorkspaceError::AlreadyExists(path("/d/f")))
        );
        assert!(tree.get(&path("/d/g")).is_err());
        assert_eq!(tree.get(&path("/d/f")).unwrap().data.as_ref(), b"123456789");
        // Replacing counts only the difference against the total, and keeps the object's id.
        let id = tree.get(&path("/d/f")).unwrap().object_id;
        tree.import(
            &path("/d/f"),
            Kind::File,
            Bytes::from(vec![0; 10]),
            true,
            CAPS,
            now,
        )
        .unwrap();
        assert_eq!(tree.total_bytes, 10);
        assert_eq!(tree.get(&path("/d/f")).unwrap().object_id, id);
    }

    #[test]
    fn delete_needs_recursive_for_a_directory_with_children_and_frees_their_bytes() {
        let mut tree = tree();
        let now = Utc::now();
        tree.mkdirs(&path("/d/sub"), now).unwrap();
        tree.mkdirs(&path("/dz"), now).unwrap();
        tree.import(
            &path("/d/sub/f"),
            Kind::File,
            Bytes::from_static(b"12"),
            true,
            CAPS,
            now,
        )
        .unwrap();

        assert_eq!(
            tree.delete(&path("/d"), false),
            Err(WorkspaceError::NotEmpty(path("/d")))
        );
        tree.delete(&path("/d"), true).unwrap();
        assert!(tree.get(&path("/d/sub/f")).is_err());
        assert!(
            tree.is_directory(&path("/dz")),
            "a sibling sharing the prefix stays"
        );
        assert_eq!(tree.total_bytes, 0);
        assert_eq!(
            tree.delete(&path("/d"), false),
            Err(WorkspaceError::NotFound(path("/d")))
        );
    }
}
