//! The files of every volume, held in memory: a tree of directories and files keyed by path,
//! with the size caps of the fixture settings (`files_max_file_bytes`, `files_max_total_bytes`).
//!
//! This module knows nothing of HTTP, principals or Unity Catalog: `routes::files` resolves a
//! `/Volumes/...` path to a volume the caller may use and hands the tree a [`VolumePath`]; the
//! tree only keeps the shape consistent (a file never has children, every file's parents exist,
//! a volume's root always exists). Every change is checked in full before anything is written,
//! so a refused change leaves the tree exactly as it was.

use std::collections::BTreeMap;

use axum::body::Bytes;
use chrono::{DateTime, Utc};

use crate::fixture::Fixture;

/// A path inside one volume: the volume's canonical `catalog/schema/volume` and the relative
/// segments below its root (none for the root itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VolumePath {
    pub(crate) volume: String,
    pub(crate) segments: Vec<String>,
}

impl VolumePath {
    /// The key of this path in the tree, `catalog/schema/volume[/segment...]`.
    fn key(&self) -> String {
        let mut key = self.volume.clone();
        for segment in &self.segments {
            key.push('/');
            key.push_str(segment);
        }
        key
    }

    /// The keys of the directories above this path, inside the volume, nearest the root first
    /// (the root itself excluded).
    fn ancestor_keys(&self) -> Vec<String> {
        (1..self.segments.len())
            .map(|n| {
                VolumePath {
                    volume: self.volume.clone(),
                    segments: self.segments[..n].to_vec(),
                }
                .key()
            })
            .collect()
    }
}

/// Splits a path relative to a volume root into its segments; `None` when a segment is empty,
/// `.` or `..`, or contains a control character.
pub(crate) fn relative_segments(path: &str) -> Option<Vec<String>> {
    let path = path.strip_suffix('/').unwrap_or(path);
    if path.is_empty() {
        return Some(Vec::new());
    }
    path.split('/')
        .map(|s| {
            let bad = s.is_empty() || s == "." || s == ".." || s.chars().any(char::is_control);
            (!bad).then(|| s.to_owned())
        })
        .collect()
}

/// A file or directory of the tree.
#[derive(Debug, Clone)]
pub(crate) enum Entry {
    File {
        data: Bytes,
        modified: DateTime<Utc>,
    },
    Directory,
}

/// One child of a directory, as listed.
#[derive(Debug, Clone)]
pub(crate) struct Child {
    pub(crate) name: String,
    /// `None` for directories.
    pub(crate) file: Option<(u64, DateTime<Utc>)>,
}

/// Why the tree refused a change or a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FileError {
    NotFound,
    /// `overwrite=false` and the file exists.
    AlreadyExists,
    /// The path names a directory where a file was expected.
    IsADirectory,
    /// A parent (or the path itself, for a directory) is a file.
    NotADirectory,
    /// A directory that still has children.
    NotEmpty,
    /// The volume root cannot be deleted.
    Root,
    /// The file is larger than the per-file cap (given).
    FileTooLarge(u64),
    /// The volumes would hold more than the total cap (given).
    VolumesFull(u64),
}

/// Size caps, read from the settings at the time of the change.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caps {
    pub(crate) max_file_bytes: u64,
    pub(crate) max_total_bytes: u64,
}

/// Every volume's files.
#[derive(Debug, Default)]
pub(crate) struct FileTree {
    entries: BTreeMap<String, Entry>,
    total_bytes: u64,
}

impl FileTree {
    /// The tree a fixture starts with: each volume's root and its initial files (paths the
    /// fixture validation accepted; a path that would break the tree is skipped).
    pub(crate) fn from_fixture(fixture: &Fixture, now: DateTime<Utc>) -> Self {
        let mut tree = Self::default();
        let unlimited = Caps {
            max_file_bytes: u64::MAX,
            max_total_bytes: u64::MAX,
        };
        for catalog in &fixture.catalogs {
            for schema in &catalog.schemas {
                for volume in &schema.volumes {
                    let name = format!("{}/{}/{}", catalog.name, schema.name, volume.name);
                    tree.entries.insert(name.clone(), Entry::Directory);
                    for file in &volume.files {
                        let Some(segments) = relative_segments(&file.path) else {
                            continue;
                        };
                        let path = VolumePath {
                            volume: name.clone(),
                            segments,
                        };
                        let data = Bytes::from(file.content.clone().into_bytes());
                        // Fixture files are few and small; the caps are for uploads.
                        let _ = tree.put_file(&path, data, true, unlimited, now);
                    }
                }
            }
        }
        tree
    }

    /// The entry at `path`.
    pub(crate) fn get(&self, path: &VolumePath) -> Option<&Entry> {
        self.entries.get(&path.key())
    }

    /// Writes a file, creating its parent directories.
    pub(crate) fn put_file(
        &mut self,
        path: &VolumePath,
        data: Bytes,
        overwrite: bool,
        caps: Caps,
        now: DateTime<Utc>,
    ) -> Result<(), FileError> {
        if path.segments.is_empty() {
            return Err(FileError::IsADirectory);
        }
        let ancestors = path.ancestor_keys();
        self.check_directories(&ancestors)?;
        let key = path.key();
        let replaced = match self.entries.get(&key) {
            Some(Entry::Directory) => return Err(FileError::IsADirectory),
            Some(Entry::File { .. }) if !overwrite => return Err(FileError::AlreadyExists),
            Some(Entry::File { data, .. }) => data.len() as u64,
            None => 0,
        };
        let size = data.len() as u64;
        if size > caps.max_file_bytes {
            return Err(FileError::FileTooLarge(caps.max_file_bytes));
        }
        let total = self.total_bytes - replaced + size;
        if total > caps.max_total_bytes {
            return Err(FileError::VolumesFull(caps.max_total_bytes));
        }
        for ancestor in ancestors {
            self.entries.entry(ancestor).or_insert(Entry::Directory);
        }
        self.entries.insert(
            key,
            Entry::File {
                data,
                modified: now,
            },
        );
        self.total_bytes = total;
        Ok(())
    }

    /// Creates a directory and its parents; an existing directory is fine (`mkdir -p`).
    pub(crate) fn create_directory(&mut self, path: &VolumePath) -> Result<(), FileError> {
        let mut keys = path.ancestor_keys();
        keys.push(path.key());
        self.check_directories(&keys)?;
        for key in keys {
            self.entries.entry(key).or_insert(Entry::Directory);
        }
        Ok(())
    }

    /// Deletes a file.
    pub(crate) fn delete_file(&mut self, path: &VolumePath) -> Result<(), FileError> {
        let key = path.key();
        match self.entries.get(&key) {
            None => Err(FileError::NotFound),
            Some(Entry::Directory) => Err(FileError::IsADirectory),
            Some(Entry::File { data, .. }) => {
                self.total_bytes -= data.len() as u64;
                self.entries.remove(&key);
                Ok(())
            }
        }
    }

    /// Deletes an empty directory other than a volume root.
    pub(crate) fn delete_directory(&mut self, path: &VolumePath) -> Result<(), FileError> {
        match self.get(path) {
            None => return Err(FileError::NotFound),
            Some(Entry::File { .. }) => return Err(FileError::NotADirectory),
            Some(Entry::Directory) if path.segments.is_empty() => return Err(FileError::Root),
            Some(Entry::Directory) => {}
        }
        let key = path.key();
        if self.descendants(&key).next().is_some() {
            return Err(FileError::NotEmpty);
        }
        self.entries.remove(&key);
        Ok(())
    }

    /// The children of a directory, ordered by name.
    pub(crate) fn list(&self, path: &VolumePath) -> Result<Vec<Child>, FileError> {
        match self.get(path) {
            None => return Err(FileError::NotFound),
            Some(Entry::File { .. }) => return Err(FileError::NotADirectory),
            Some(Entry::Directory) => {}
        }
        Ok(self
            .descendants(&path.key())
            .filter(|(name, _)| !name.contains('/'))
            .map(|(name, entry)| Child {
                name: name.to_owned(),
                file: match entry {
                    Entry::File { data, modified } => Some((data.len() as u64, *modified)),
                    Entry::Directory => None,
                },
            })
            .collect())
    }

    /// Everything below the directory `key`, as (path relative to it, entry).
    fn descendants<'a>(&'a self, key: &str) -> impl Iterator<Item = (&'a str, &'a Entry)> + 'a {
        let prefix = format!("{key}/");
        self.entries
            .range(prefix.clone()..)
            .map_while(move |(k, entry)| Some((k.strip_prefix(prefix.as_str())?, entry)))
    }

    /// Checks that every key that exists is a directory (missing ones will be created).
    fn check_directories(&self, keys: &[String]) -> Result<(), FileError> {
        match keys
            .iter()
            .any(|k| matches!(self.entries.get(k), Some(Entry::File { .. })))
        {
            true => Err(FileError::NotADirectory),
            false => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: Caps = Caps {
        max_file_bytes: 10,
        max_total_bytes: 15,
    };

    fn path(p: &str) -> VolumePath {
        VolumePath {
            volume: "c/s/v".into(),
            segments: relative_segments(p).unwrap(),
        }
    }

    fn tree() -> FileTree {
        let mut tree = FileTree::default();
        tree.entries.insert("c/s/v".into(), Entry::Directory);
        tree
    }

    #[test]
    fn relative_paths_refuse_empty_dot_and_control_segments() {
        assert_eq!(
            relative_segments("a/b c/d.txt").unwrap(),
            ["a", "b c", "d.txt"]
        );
        assert_eq!(relative_segments("").unwrap(), Vec::<String>::new());
        assert_eq!(relative_segments("dir/").unwrap(), ["dir"]);
        for bad in ["a//b", "../x", "a/./b", "/a", "a\nb", "a/.."] {
            assert!(relative_segments(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_file_creates_its_parents_and_lists_in_name_order() {
        let mut tree = tree();
        let now = Utc::now();
        tree.put_file(&path("d/b.txt"), Bytes::from_static(b"12"), true, CAPS, now)
            .unwrap();
        tree.put_file(&path("d/a.txt"), Bytes::from_static(b"1"), true, CAPS, now)
            .unwrap();
        tree.create_directory(&path("d/sub/deeper")).unwrap();

        let names: Vec<_> = tree
            .list(&path("d"))
            .unwrap()
            .into_iter()
            .map(|c| (c.name, c.file.map(|f| f.0)))
            .collect();
        assert_eq!(
            names,
            [
                ("a.txt".to_owned(), Some(1)),
                ("b.txt".to_owned(), Some(2)),
                ("sub".to_owned(), None)
            ]
        );
        assert_eq!(tree.list(&path("")).unwrap().len(), 1);
    }

    #[test]
    fn refused_writes_change_nothing() {
        let mut tree = tree();
        let now = Utc::now();
        tree.put_file(
            &path("f"),
            Bytes::from_static(b"123456789"),
            true,
            CAPS,
            now,
        )
        .unwrap();

        assert_eq!(
            tree.put_file(&path("f"), Bytes::from_static(b"x"), false, CAPS, now),
            Err(FileError::AlreadyExists)
        );
        assert_eq!(
            tree.put_file(&path("big"), Bytes::from(vec![0; 11]), true, CAPS, now),
            Err(FileError::FileTooLarge(10))
        );
        assert_eq!(
            tree.put_file(&path("n/g"), Bytes::from(vec![0; 7]), true, CAPS, now),
            Err(FileError::VolumesFull(15))
        );
        assert_eq!(
            tree.put_file(&path("f/child"), Bytes::from_static(b"x"), true, CAPS, now),
            Err(FileError::NotADirectory)
        );
        assert!(tree.get(&path("n")).is_none(), "no parent was created");
        // Replacing a file counts only the difference against the total.
        tree.put_file(&path("f"), Bytes::from(vec![0; 10]), true, CAPS, now)
            .unwrap();
        assert_eq!(tree.total_bytes, 10);
    }

    #[test]
    fn only_empty_directories_other_than_the_root_are_deleted() {
        let mut tree = tree();
        tree.put_file(
            &path("d/f"),
            Bytes::from_static(b"1"),
            true,
            CAPS,
            Utc::now(),
        )
        .unwrap();

        assert_eq!(tree.delete_directory(&path("d")), Err(FileError::NotEmpty));
        assert_eq!(tree.delete_directory(&path("")), Err(FileError::Root));
        tree.delete_file(&path("d/f")).unwrap();
        tree.delete_directory(&path("d")).unwrap();
        assert_eq!(tree.delete_directory(&path("d")), Err(FileError::NotFound));
        assert_eq!(tree.total_bytes, 0);
    }
}
