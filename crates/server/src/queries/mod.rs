//! Governed queries: SQL files reviewed with the app's code, each declaring its title, whose
//! identity it runs with, its cache TTL and its typed parameters (the syntax is in
//! [`definition`]). This module owns the catalog of queries ([`QueryCatalog`]: embedded from
//! `queries/` at the repository root at build time, or read from `DBAPP_QUERIES_DIR` instead,
//! all parsed and validated once at start), the result cache ([`cache`]), the registry of runs
//! waiting for a starting warehouse ([`runs`]) and the page tokens. Running the statement is
//! [`crate::sql`]'s; the HTTP routes are `routes::queries`.

pub mod cache;
pub mod definition;
pub mod runs;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rust_embed::RustEmbed;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use self::cache::{CacheKey, ResultCache};
use self::definition::{BoundParams, DefinitionError, QueryDefinition};
use self::runs::Runs;

/// Most query files in one catalog.
pub const MAX_QUERIES: usize = 200;

/// The query files shipped in the binary.
#[derive(RustEmbed)]
#[folder = "../../queries/"]
struct EmbeddedQueries;

/// Every query the server offers, by name.
#[derive(Debug, Clone, Default)]
pub struct QueryCatalog {
    queries: BTreeMap<String, Arc<QueryDefinition>>,
}

impl QueryCatalog {
    /// The queries of `dir` when given, else the embedded ones. Only `*.sql` files directly in
    /// the directory are read; other files and subdirectories are ignored.
    ///
    /// # Errors
    /// [`DefinitionError`] for the first file that cannot be read or used.
    pub fn load(dir: Option<&Path>) -> Result<Self, DefinitionError> {
        let mut files = Vec::new();
        match dir {
            None => {
                for path in EmbeddedQueries::iter() {
                    if path.contains('/') || !path.ends_with(".sql") {
                        continue;
                    }
                    if let Some(file) = EmbeddedQueries::get(&path) {
                        let text = String::from_utf8(file.data.into_owned())
                            .map_err(|_| not_utf8(&path))?;
                        files.push((path.into_owned(), text));
                    }
                }
            }
            Some(dir) => {
                let io = |e: std::io::Error| DefinitionError {
                    file: dir.display().to_string(),
                    line: 0,
                    message: format!("the query directory cannot be read: {e}"),
                };
                for entry in std::fs::read_dir(dir).map_err(io)? {
                    let entry = entry.map_err(io)?;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if !name.ends_with(".sql") || !entry.file_type().map_err(io)?.is_file() {
                        continue;
                    }
                    let bytes = std::fs::read(entry.path()).map_err(|e| DefinitionError {
                        file: name.clone(),
                        line: 0,
                        message: format!("cannot be read: {e}"),
                    })?;
                    let text = String::from_utf8(bytes).map_err(|_| not_utf8(&name))?;
                    files.push((name, text));
                }
            }
        }
        Self::from_files(files)
    }

    /// A catalog of `(file name, contents)` pairs.
    ///
    /// # Errors
    /// [`DefinitionError`] for the first file that cannot be used, or too many files.
    pub fn from_files(files: Vec<(String, String)>) -> Result<Self, DefinitionError> {
        if files.len() > MAX_QUERIES {
            return Err(DefinitionError {
                file: "queries".to_owned(),
                line: 0,
                message: format!(
                    "at most {MAX_QUERIES} query files are allowed, not {}",
                    files.len()
                ),
            });
        }
        let mut queries = BTreeMap::new();
        for (file, text) in files {
            let query = QueryDefinition::parse(&file, &text)?;
            queries.insert(query.name.clone(), Arc::new(query));
        }
        Ok(Self { queries })
    }

    /// The query called `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Arc<QueryDefinition>> {
        self.queries.get(name)
    }

    /// Every query, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<QueryDefinition>> {
        self.queries.values()
    }
}

fn not_utf8(file: &str) -> DefinitionError {
    DefinitionError {
        file: file.to_owned(),
        line: 0,
        message: "is not UTF-8 text".to_owned(),
    }
}

/// What the query routes share: the catalog, the result cache and the pending runs.
#[derive(Debug)]
pub struct Queries {
    /// The queries offered.
    pub catalog: QueryCatalog,
    /// Results by query, scope and parameters.
    pub cache: ResultCache,
    /// Runs waiting for their warehouse.
    pub runs: Runs,
}

impl Queries {
    /// The state of `catalog` with a cache of the given bounds.
    #[must_use]
    pub fn new(catalog: QueryCatalog, cache_max_entries: usize, cache_max_bytes: usize) -> Self {
        Self {
            catalog,
            cache: ResultCache::new(cache_max_entries, cache_max_bytes),
            runs: Runs::default(),
        }
    }
}

/// Where the next page of a query's result starts, and which result it belongs to: a
/// fingerprint of the query and its parameters, so a token cannot page another result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageToken {
    /// Rows to skip.
    #[serde(rename = "o")]
    pub offset: u64,
    /// [`PageToken::fingerprint`] of the query and parameters.
    #[serde(rename = "f")]
    pub fingerprint: String,
}

impl PageToken {
    /// The fingerprint of `key`'s query and parameters (not its scope: the token is useless
    /// to another user anyway, since the cache is looked up with their own scope).
    #[must_use]
    pub fn fingerprint(key: &CacheKey) -> String {
        let mut hash = Sha256::new();
        hash.update(key.query.as_bytes());
        for (name, value) in &key.params {
            hash.update([0]);
            hash.update(name.as_bytes());
            hash.update([0]);
            hash.update(value.as_bytes());
        }
        hash.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The opaque token.
    #[must_use]
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Parses a token made by [`PageToken::encode`].
    #[must_use]
    pub fn decode(token: &str) -> Option<Self> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token).ok()?).ok()
    }
}

/// The statement parameters of `params`.
#[must_use]
pub fn statement_params(params: &BoundParams) -> Vec<dbapp_databricks::api::StatementParameter> {
    params
        .iter()
        .map(|(name, (param_type, value))| {
            crate::sql::typed_param(name, &param_type.to_string(), value.clone())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_queries_are_valid() {
        let catalog = QueryCatalog::load(None).expect("the shipped queries parse");
        assert!(catalog.iter().count() >= 3);
    }

    #[test]
    fn page_tokens_round_trip_and_refuse_garbage() {
        let token = PageToken {
            offset: 100,
            fingerprint: "ab".to_owned(),
        };
        assert_eq!(PageToken::decode(&token.encode()), Some(token));
        assert_eq!(PageToken::decode("not a token"), None);
    }
}
