//! The result cache of governed queries: full results keyed by query, normalised parameters
//! and scope (the caller's user id for `run_as: user` queries, shared for `run_as: app`), each
//! kept for its query's TTL, bounded in entries and in bytes.
//!
//! A user query's key holds the user id, so one user's result can never be found under
//! another's key. When a new entry would pass a bound, expired entries go first, then the
//! oldest; an entry larger than the byte bound alone is not kept. The size of an entry is an
//! estimate (the bytes of its values' text plus a fixed cost per value), close enough to bound
//! memory. A `std` mutex guards the map: it is held for a lookup or an insert, never across an
//! await, and lookups are O(1); inserts scan the map to evict (bounded by the entry limit).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::definition::BoundParams;
use crate::sql::StatementRows as QueryResult;

/// Whose result an entry is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// A `run_as: user` query's result for this user id.
    User(String),
    /// A `run_as: app` query's result, shared by every caller.
    Shared,
}

/// The cache key: query, scope and normalised parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// The query's name.
    pub query: String,
    /// Whose result.
    pub scope: Scope,
    /// Name → (type, normalised value), sorted.
    pub params: Vec<(String, String)>,
}

impl CacheKey {
    /// The key of `query` run with `params` in `scope`.
    #[must_use]
    pub fn new(query: &str, scope: Scope, params: &BoundParams) -> Self {
        Self {
            query: query.to_owned(),
            scope,
            params: params
                .iter()
                .map(|(name, (_, value))| (name.clone(), value.clone()))
                .collect(),
        }
    }
}

#[derive(Debug)]
struct Entry {
    result: Arc<QueryResult>,
    bytes: usize,
    inserted: Instant,
    expires: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<CacheKey, Entry>,
    bytes: usize,
}

/// The bounded result cache (see the module header).
#[derive(Debug)]
pub struct ResultCache {
    inner: Mutex<Inner>,
    max_entries: usize,
    max_bytes: usize,
}

/// Fixed cost counted per value and per row, on top of the text.
const VALUE_OVERHEAD_BYTES: usize = 16;

/// The estimated size of a result.
#[must_use]
pub fn result_bytes(result: &QueryResult) -> usize {
    let value_bytes = |v: &Value| {
        VALUE_OVERHEAD_BYTES
            + match v {
                Value::String(s) => s.len(),
                Value::Null | Value::Bool(_) => 0,
                other => other.to_string().len(),
            }
    };
    result
        .rows
        .iter()
        .map(|row| VALUE_OVERHEAD_BYTES + row.iter().map(value_bytes).sum::<usize>())
        .sum::<usize>()
        + result
            .columns
            .iter()
            .map(|c| VALUE_OVERHEAD_BYTES + c.name.len())
            .sum::<usize>()
}

impl ResultCache {
    /// A cache of at most `max_entries` results and `max_bytes` estimated bytes.
    #[must_use]
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            max_entries,
            max_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves a consistent map (every change is one
        // statement), so a poisoned lock is still usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The live result under `key`.
    #[must_use]
    pub fn get(&self, key: &CacheKey) -> Option<Arc<QueryResult>> {
        let now = Instant::now();
        let mut inner = self.lock();
        match inner.entries.get(key) {
            Some(entry) if entry.expires > now => Some(Arc::clone(&entry.result)),
            Some(_) => {
                if let Some(old) = inner.entries.remove(key) {
                    inner.bytes -= old.bytes;
                }
                None
            }
            None => None,
        }
    }

    /// Keeps `result` under `key` for `ttl` (nothing is kept for a zero TTL or a result larger
    /// than the byte bound).
    pub fn insert(&self, key: CacheKey, result: Arc<QueryResult>, ttl: Duration) {
        let bytes = result_bytes(&result);
        if ttl.is_zero() || bytes > self.max_bytes || self.max_entries == 0 {
            return;
        }
        let now = Instant::now();
        let mut inner = self.lock();
        if let Some(old) = inner.entries.remove(&key) {
            inner.bytes -= old.bytes;
        }
        let full = |inner: &Inner| {
            inner.entries.len() >= self.max_entries || inner.bytes + bytes > self.max_bytes
        };
        if full(&inner) {
            let before = inner.entries.len();
            inner.entries.retain(|_, e| e.expires > now);
            if inner.entries.len() != before {
                inner.bytes = inner.entries.values().map(|e| e.bytes).sum();
            }
        }
        while full(&inner) {
            let Some(oldest) = inner
                .entries
                .iter()
                .min_by_key(|(_, e)| e.inserted)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(old) = inner.entries.remove(&oldest) {
                inner.bytes -= old.bytes;
            }
        }
        inner.bytes += bytes;
        inner.entries.insert(
            key,
            Entry {
                result,
                bytes,
                inserted: now,
                expires: now + ttl,
            },
        );
    }

    /// Entries held (expired ones included until they are evicted or looked up).
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether the cache holds nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::sql::Column;

    fn result(rows: usize) -> Arc<QueryResult> {
        Arc::new(QueryResult {
            columns: vec![Column {
                name: "a".to_owned(),
                type_name: Some("STRING".to_owned()),
                type_text: Some("STRING".to_owned()),
            }],
            rows: vec![vec![json!("0123456789")]; rows],
            truncated: false,
            statement_id: "s".to_owned(),
            executed_at: "2026-01-01T00:00:00Z".to_owned(),
            execution_time_ms: 1,
        })
    }

    fn key(query: &str, scope: Scope) -> CacheKey {
        CacheKey::new(query, scope, &BoundParams::new())
    }

    #[tokio::test(start_paused = true)]
    async fn entries_expire_after_their_ttl() {
        let cache = ResultCache::new(10, 1 << 20);
        cache.insert(key("q", Scope::Shared), result(1), Duration::from_secs(5));
        tokio::time::advance(Duration::from_secs(4)).await;
        assert!(cache.get(&key("q", Scope::Shared)).is_some());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(cache.get(&key("q", Scope::Shared)).is_none());
        assert!(cache.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn users_never_share_an_entry() {
        let cache = ResultCache::new(10, 1 << 20);
        cache.insert(
            key("q", Scope::User("alice".into())),
            result(1),
            Duration::from_secs(5),
        );
        assert!(cache.get(&key("q", Scope::User("bob".into()))).is_none());
        assert!(cache.get(&key("q", Scope::Shared)).is_none());
        assert!(cache.get(&key("q", Scope::User("alice".into()))).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn the_oldest_entry_goes_when_a_bound_is_reached() {
        let one = result_bytes(&result(10));
        let cache = ResultCache::new(2, one * 2);
        for name in ["a", "b", "c"] {
            cache.insert(
                key(name, Scope::Shared),
                result(10),
                Duration::from_secs(60),
            );
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&key("a", Scope::Shared)).is_none());
        // Bytes: one entry of twice the size pushes both others out.
        cache.insert(key("d", Scope::Shared), result(20), Duration::from_secs(60));
        assert_eq!(cache.len(), 1);
        // Larger than the whole bound: not kept at all.
        cache.insert(key("e", Scope::Shared), result(30), Duration::from_secs(60));
        assert!(cache.get(&key("e", Scope::Shared)).is_none());
        // A zero TTL is never kept.
        cache.insert(key("f", Scope::Shared), result(1), Duration::ZERO);
        assert!(cache.get(&key("f", Scope::Shared)).is_none());
    }
}
