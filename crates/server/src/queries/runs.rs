//! Runs of governed queries that were still waiting for their warehouse when the request that
//! started them answered `202`: what a later `GET /api/queries/{name}/runs/{run_id}` needs to
//! pick the statement up again, and whose it is.
//!
//! A run is bound to the user who started it (their user id), for `run_as: app` queries too:
//! anyone else asking for it, or asking under another query's name, is told it does not exist.
//! The registry is bounded: at most [`MAX_RUNS`] runs, each forgotten [`MAX_RUN_AGE`] after it
//! started (the workspace wants a statement polled at least every 15 minutes); when full,
//! expired runs go first, then the oldest. A run is removed once its result has been handed out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use super::cache::CacheKey;

/// Most runs remembered at once.
pub const MAX_RUNS: usize = 1_000;
/// How long a run is remembered after it started.
pub const MAX_RUN_AGE: Duration = Duration::from_secs(15 * 60);

/// A pending run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The user who started it.
    pub owner: String,
    /// Its query's cache key (the query's name, scope and parameters).
    pub key: CacheKey,
    /// The workspace's statement id.
    pub statement_id: String,
    /// The page the starting request asked for: rows to skip and rows per page.
    pub page: (u64, u32),
    started: Instant,
}

/// The bounded registry of pending runs.
#[derive(Debug)]
pub struct Runs {
    runs: Mutex<HashMap<Uuid, Run>>,
    max_runs: usize,
    max_age: Duration,
}

impl Default for Runs {
    fn default() -> Self {
        Self::new(MAX_RUNS, MAX_RUN_AGE)
    }
}

impl Runs {
    /// A registry of at most `max_runs` runs, each kept `max_age`.
    #[must_use]
    pub fn new(max_runs: usize, max_age: Duration) -> Self {
        Self {
            runs: Mutex::new(HashMap::new()),
            max_runs,
            max_age,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Run>> {
        // Every change is one map operation, so a poisoned map is still consistent.
        self.runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Remembers a run of `owner` (and the page it asked for) and returns its id.
    pub fn start(
        &self,
        owner: &str,
        key: CacheKey,
        statement_id: String,
        page: (u64, u32),
    ) -> Uuid {
        let now = Instant::now();
        let mut runs = self.lock();
        runs.retain(|_, run| now.duration_since(run.started) < self.max_age);
        while runs.len() >= self.max_runs.max(1) {
            let Some(oldest) = runs
                .iter()
                .min_by_key(|(_, r)| r.started)
                .map(|(id, _)| *id)
            else {
                break;
            };
            runs.remove(&oldest);
        }
        let id = Uuid::new_v4();
        runs.insert(
            id,
            Run {
                owner: owner.to_owned(),
                key,
                statement_id,
                page,
                started: now,
            },
        );
        id
    }

    /// The run `id` of query `query`, when `owner` started it and it has not expired.
    #[must_use]
    pub fn find(&self, id: Uuid, owner: &str, query: &str) -> Option<Run> {
        let now = Instant::now();
        let runs = self.lock();
        runs.get(&id)
            .filter(|run| {
                run.owner == owner
                    && run.key.query == query
                    && now.duration_since(run.started) < self.max_age
            })
            .cloned()
    }

    /// Forgets run `id`.
    pub fn finish(&self, id: Uuid) {
        self.lock().remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queries::cache::Scope;
    use crate::queries::definition::BoundParams;

    fn key(query: &str) -> CacheKey {
        CacheKey::new(query, Scope::Shared, &BoundParams::new())
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_is_found_only_by_its_owner_under_its_query_until_it_expires() {
        let runs = Runs::new(10, Duration::from_secs(60));
        let id = runs.start("alice", key("q"), "s1".to_owned(), (0, 100));
        assert!(runs.find(id, "alice", "q").is_some());
        assert!(runs.find(id, "bob", "q").is_none());
        assert!(runs.find(id, "alice", "other").is_none());
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(runs.find(id, "alice", "q").is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn the_oldest_run_goes_when_the_registry_is_full() {
        let runs = Runs::new(2, Duration::from_secs(60));
        let first = runs.start("alice", key("q"), "s1".to_owned(), (0, 100));
        tokio::time::advance(Duration::from_millis(1)).await;
        let second = runs.start("alice", key("q"), "s2".to_owned(), (0, 100));
        tokio::time::advance(Duration::from_millis(1)).await;
        let third = runs.start("alice", key("q"), "s3".to_owned(), (0, 100));
        assert!(runs.find(first, "alice", "q").is_none());
        assert!(runs.find(second, "alice", "q").is_some());
        assert!(runs.find(third, "alice", "q").is_some());
        runs.finish(third);
        assert!(runs.find(third, "alice", "q").is_none());
    }
}
