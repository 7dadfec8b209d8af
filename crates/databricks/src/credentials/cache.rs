//! The token cache shared by every strategy that fetches tokens (M2M, CLI, Model Serving).
//!
//! A token has three ages (UPSTREAM §2.7, after the SDKs' `oauth.py` and `cache.go`):
//! - **fresh**: returned as is;
//! - **stale** — within `min(lifetime / 2, 20 min)` of expiry: still returned at once, and one
//!   background task fetches the next token, so callers never wait while the current token is
//!   good; a failed background fetch is retried no sooner than a minute later;
//! - **expired** — within the 40 s skew of expiry (the platform refuses tokens with 30 s or less
//!   left): callers wait for a new one.
//!
//! Fetches are single-flight: callers that find no usable token queue on one async mutex; the
//! first fetches, the others find the fetch's outcome (token or error) when they get the lock, so
//! N waiting callers cost one request. The state itself sits behind a `std::sync::Mutex` held for
//! a few assignments and never across an `.await`. Time is `tokio::time::Instant`, so tests can
//! pause and advance it.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use secrecy::SecretString;
use tokio::time::Instant;

use crate::error::DatabricksError;

/// Timing of a token cache.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheOptions {
    /// A token counts as expired this long before its expiry (40 s).
    pub expiry_skew: Duration,
    /// A token is stale, and refreshed in the background, within `min(lifetime / 2, max_stale)`
    /// of expiry (20 min).
    pub max_stale: Duration,
    /// After a failed background refresh, wait this long before another (1 min).
    pub async_failure_backoff: Duration,
    /// Refresh stale tokens in the background (true).
    pub async_refresh: bool,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            expiry_skew: Duration::from_secs(40),
            max_stale: Duration::from_secs(20 * 60),
            async_failure_backoff: Duration::from_secs(60),
            async_refresh: true,
        }
    }
}

impl CacheOptions {
    /// Sets the expiry skew.
    #[must_use]
    pub fn expiry_skew(mut self, skew: Duration) -> Self {
        self.expiry_skew = skew;
        self
    }

    /// Sets the largest stale window.
    #[must_use]
    pub fn max_stale(mut self, max_stale: Duration) -> Self {
        self.max_stale = max_stale;
        self
    }
}

/// A fetched token and when it expires (`None`: it does not say).
#[derive(Clone)]
pub(crate) struct Token {
    pub(crate) value: SecretString,
    pub(crate) expires_at: Option<Instant>,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("value", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Where a cache gets its tokens.
#[async_trait::async_trait]
pub(crate) trait TokenSource: Send + Sync + fmt::Debug + 'static {
    async fn fetch(&self) -> Result<Token, DatabricksError>;
}

#[derive(Debug)]
struct Cached {
    token: Token,
    fetched_at: Instant,
}

#[derive(Debug, Default)]
struct State {
    current: Option<Cached>,
    /// Bumped by every completed fetch, so a waiter can tell that one finished while it waited.
    generation: u64,
    /// The error of the fetch that completed `generation`, if it failed.
    last_error: Option<(u64, DatabricksError)>,
    background_running: bool,
    background_not_before: Option<Instant>,
}

#[derive(Debug, PartialEq, Eq)]
enum Age {
    Fresh,
    Stale,
    Expired,
}

struct Inner {
    source: Box<dyn TokenSource>,
    options: CacheOptions,
    state: Mutex<State>,
    fetch_lock: tokio::sync::Mutex<()>,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("source", &self.source)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// A refreshing, single-flight token cache.
#[derive(Clone, Debug)]
pub(crate) struct TokenCache(Arc<Inner>);

impl TokenCache {
    pub(crate) fn new(source: impl TokenSource, options: CacheOptions) -> Self {
        Self(Arc::new(Inner {
            source: Box::new(source),
            options,
            state: Mutex::default(),
            fetch_lock: tokio::sync::Mutex::new(()),
        }))
    }

    /// A usable token: the cached one while it is not expired, else a new one.
    pub(crate) async fn token(&self) -> Result<SecretString, DatabricksError> {
        let now = Instant::now();
        let seen_generation = {
            let mut state = self.state();
            let age = state.current.as_ref().map(|c| self.age(c, now));
            match age {
                Some(Age::Fresh) => return Ok(current_value(&state)),
                Some(Age::Stale) => {
                    let value = current_value(&state);
                    self.maybe_refresh_in_background(&mut state, now);
                    return Ok(value);
                }
                Some(Age::Expired) | None => state.generation,
            }
        };
        self.fetch_blocking(seen_generation).await
    }

    /// Forgets the current token.
    pub(crate) fn invalidate(&self) {
        self.state().current = None;
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.0
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn age(&self, cached: &Cached, now: Instant) -> Age {
        let Some(expires_at) = cached.token.expires_at else {
            return Age::Fresh;
        };
        let usable_until = expires_at
            .checked_sub(self.0.options.expiry_skew)
            .unwrap_or(cached.fetched_at);
        if now >= usable_until {
            return Age::Expired;
        }
        let lifetime = expires_at.saturating_duration_since(cached.fetched_at);
        let stale_window = (lifetime / 2).min(self.0.options.max_stale);
        let stale_at = expires_at
            .checked_sub(stale_window)
            .unwrap_or(cached.fetched_at);
        if now >= stale_at {
            Age::Stale
        } else {
            Age::Fresh
        }
    }

    async fn fetch_blocking(&self, seen_generation: u64) -> Result<SecretString, DatabricksError> {
        let _fetching = self.0.fetch_lock.lock().await;
        {
            let state = self.state();
            if state.generation != seen_generation {
                // A fetch completed while we waited: share its outcome instead of fetching again.
                let now = Instant::now();
                if state
                    .current
                    .as_ref()
                    .is_some_and(|c| self.age(c, now) != Age::Expired)
                {
                    return Ok(current_value(&state));
                }
                if let Some((generation, error)) = &state.last_error
                    && *generation == state.generation
                {
                    return Err(error.clone());
                }
            }
        }
        let fetched_at = Instant::now();
        let result = self.0.source.fetch().await;
        let mut state = self.state();
        state.generation += 1;
        match result {
            Ok(token) => {
                let value = token.value.clone();
                state.current = Some(Cached { token, fetched_at });
                state.last_error = None;
                Ok(value)
            }
            Err(error) => {
                state.last_error = Some((state.generation, error.clone()));
                Err(error)
            }
        }
    }

    fn maybe_refresh_in_background(&self, state: &mut State, now: Instant) {
        if !self.0.options.async_refresh
            || state.background_running
            || state.background_not_before.is_some_and(|t| now < t)
        {
            return;
        }
        state.background_running = true;
        let cache = self.clone();
        tokio::spawn(async move {
            let _fetching = cache.0.fetch_lock.lock().await;
            let still_stale = {
                let state = cache.state();
                state
                    .current
                    .as_ref()
                    .is_none_or(|c| cache.age(c, Instant::now()) != Age::Fresh)
            };
            let result = if still_stale {
                let fetched_at = Instant::now();
                Some(cache.0.source.fetch().await.map(|t| (t, fetched_at)))
            } else {
                None
            };
            let mut state = cache.state();
            state.background_running = false;
            match result {
                Some(Ok((token, fetched_at))) => {
                    state.generation += 1;
                    state.current = Some(Cached { token, fetched_at });
                    state.last_error = None;
                    tracing::debug!(event = "databricks.token_refreshed", mode = "background");
                }
                Some(Err(error)) => {
                    // The current token is still usable; try again later rather than at once.
                    state.background_not_before =
                        Some(Instant::now() + cache.0.options.async_failure_backoff);
                    tracing::warn!(event = "databricks.token_refresh_failed", mode = "background", error = %error);
                }
                None => {}
            }
        });
    }
}

fn current_value(state: &State) -> SecretString {
    state
        .current
        .as_ref()
        .map(|c| c.token.value.clone())
        .unwrap_or_else(|| SecretString::from(String::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use secrecy::ExposeSecret;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Debug)]
    struct Counting {
        fetches: Arc<AtomicU32>,
        ttl: Duration,
        fail: bool,
    }

    #[async_trait::async_trait]
    impl TokenSource for Counting {
        async fn fetch(&self) -> Result<Token, DatabricksError> {
            let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
            // A fetch takes time, so concurrent callers really do overlap it.
            tokio::time::sleep(Duration::from_millis(50)).await;
            if self.fail {
                return Err(DatabricksError::new(
                    ErrorKind::Credentials,
                    "no token today",
                ));
            }
            Ok(Token {
                value: SecretString::from(format!("token-{n}")),
                expires_at: Some(Instant::now() + self.ttl),
            })
        }
    }

    fn cache(ttl: Duration, fail: bool) -> (TokenCache, Arc<AtomicU32>) {
        let fetches = Arc::new(AtomicU32::new(0));
        let source = Counting {
            fetches: fetches.clone(),
            ttl,
            fail,
        };
        (TokenCache::new(source, CacheOptions::default()), fetches)
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_fetch() {
        // Arrange
        let (cache, fetches) = cache(Duration::from_secs(3600), false);

        // Act
        let tokens = futures_util::future::join_all((0..100).map(|_| cache.token())).await;

        // Assert
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert!(
            tokens
                .iter()
                .all(|t| t.as_ref().unwrap().expose_secret() == "token-1")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_fetch_is_shared_by_every_waiter() {
        let (cache, fetches) = cache(Duration::from_secs(3600), true);
        let results = futures_util::future::join_all((0..20).map(|_| cache.token())).await;
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert!(results.iter().all(Result::is_err));
    }

    #[tokio::test(start_paused = true)]
    async fn stale_token_is_returned_at_once_and_refreshed_in_the_background() {
        // Arrange: 1 h token, stale 20 min before expiry.
        let (cache, fetches) = cache(Duration::from_secs(3600), false);
        assert_eq!(cache.token().await.unwrap().expose_secret(), "token-1");

        // Act: 41 minutes later the token is stale but valid.
        tokio::time::advance(Duration::from_secs(41 * 60)).await;
        let started = Instant::now();
        let stale = cache.token().await.unwrap();
        let waited = started.elapsed();
        // Let the background task run its (50 ms) fetch.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let refreshed = cache.token().await.unwrap();

        // Assert
        assert_eq!(stale.expose_secret(), "token-1");
        assert_eq!(waited, Duration::ZERO);
        assert_eq!(refreshed.expose_secret(), "token-2");
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn many_callers_of_a_stale_token_start_one_background_refresh() {
        let (cache, fetches) = cache(Duration::from_secs(3600), false);
        cache.token().await.unwrap();
        tokio::time::advance(Duration::from_secs(45 * 60)).await;
        let tokens = futures_util::future::join_all((0..50).map(|_| cache.token())).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            tokens
                .iter()
                .all(|t| t.as_ref().unwrap().expose_secret() == "token-1")
        );
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn token_within_the_skew_is_replaced_before_use() {
        let (cache, fetches) = cache(Duration::from_secs(3600), false);
        cache.token().await.unwrap();
        // 30 s of life left: inside the 40 s skew.
        tokio::time::advance(Duration::from_secs(3570)).await;
        assert_eq!(cache.token().await.unwrap().expose_secret(), "token-2");
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn fresh_token_is_reused_without_fetching() {
        let (cache, fetches) = cache(Duration::from_secs(3600), false);
        for _ in 0..10 {
            cache.token().await.unwrap();
            tokio::time::advance(Duration::from_secs(60)).await;
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn invalidate_forces_a_new_fetch() {
        let (cache, fetches) = cache(Duration::from_secs(3600), false);
        cache.token().await.unwrap();
        cache.invalidate();
        assert_eq!(cache.token().await.unwrap().expose_secret(), "token-2");
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn token_debug_is_redacted() {
        let token = Token {
            value: SecretString::from("very-secret"),
            expires_at: None,
        };
        assert!(!format!("{token:?}").contains("very-secret"));
    }
}
