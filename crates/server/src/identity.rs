//! [`Identity`], what SCIM Me says about a token's owner, and the [`IdentityCache`] that keeps it
//! for a short while keyed by the token's SHA-256 ([`token_hash`]): never by the token itself,
//! so a heap dump or a log of the cache reveals no credential. The `auth` module's `Caller`
//! fills and reads it; `AppState` owns one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use dbapp_databricks::UserToken;
use dbapp_databricks::api::CurrentUser;
use dbapp_store::UserId;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

/// A user's identity as SCIM Me gave it; no token inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// SCIM `userName`: an e-mail for people, an application id for service principals.
    pub user_name: String,
    /// The store's key for this identity's rows (its `user_name`), made here because only the
    /// SCIM answer can make one; cached with the rest, so a cache hit needs no new answer.
    pub user_id: UserId,
    /// Primary e-mail, when there is one.
    pub email: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Whether the principal is active.
    pub active: bool,
    /// Group names.
    pub groups: Vec<String>,
    /// The workspace id, from `X-Databricks-Org-Id`.
    pub workspace_id: Option<String>,
}

impl From<CurrentUser> for Identity {
    fn from(user: CurrentUser) -> Self {
        Self {
            user_id: UserId::from_authenticated_identity(&user),
            email: user.email().map(str::to_owned),
            display_name: user.display_name.clone(),
            active: user.active,
            groups: user.groups.iter().map(|g| g.display.clone()).collect(),
            workspace_id: user.workspace_id.clone(),
            user_name: user.user_name,
        }
    }
}

/// SHA-256 of a token: the cache key, and what logs may show to correlate a token.
#[must_use]
pub fn token_hash(token: &UserToken) -> [u8; 32] {
    Sha256::digest(token.expose().as_bytes()).into()
}

/// Cached entries: token SHA-256 → (expiry, identity).
type Entries = HashMap<[u8; 32], (Instant, Arc<Identity>)>;

/// Identities by token hash, with a TTL and a bound. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct IdentityCache {
    inner: Arc<Mutex<Entries>>,
    ttl: Duration,
    capacity: usize,
}

impl IdentityCache {
    /// A cache of at most `capacity` entries living `ttl` each; a zero of either disables it.
    #[must_use]
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            inner: Arc::default(),
            ttl,
            capacity,
        }
    }

    fn enabled(&self) -> bool {
        !self.ttl.is_zero() && self.capacity > 0
    }

    /// The identity cached for this hash, unless expired.
    #[must_use]
    pub fn get(&self, key: &[u8; 32]) -> Option<Arc<Identity>> {
        if !self.enabled() {
            return None;
        }
        // A std mutex: the critical sections are short and never cross an await.
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(key) {
            Some((expires, identity)) if *expires > Instant::now() => Some(Arc::clone(identity)),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    /// Caches an identity until the TTL ends or, sooner, until `not_after` (the token's own
    /// claimed expiry, [`dbapp_databricks::UserToken::claimed_expiry`]): a token must not keep
    /// working from the cache after it expired. A revoked token is still served until the TTL
    /// ends; the TTL is the bound for that. At capacity, expired entries go first, then the
    /// oldest.
    pub fn insert(&self, key: [u8; 32], identity: Arc<Identity>, not_after: Option<SystemTime>) {
        if !self.enabled() {
            return;
        }
        let lifetime = match not_after {
            Some(at) => match at.duration_since(SystemTime::now()) {
                Ok(left) => left.min(self.ttl),
                // Expired already: nothing to cache.
                Err(_) => return,
            },
            None => self.ttl,
        };
        let now = Instant::now();
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.capacity && !map.contains_key(&key) {
            map.retain(|_, (expires, _)| *expires > now);
            if map.len() >= self.capacity
                && let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, (expires, _))| *expires)
                    .map(|(k, _)| *k)
            {
                map.remove(&oldest);
            }
        }
        map.insert(key, (now + lifetime, identity));
    }

    /// Forgets a token, e.g. after the workspace refused it on a resource call.
    pub fn remove(&self, key: &[u8; 32]) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// Entries held (expired ones included until touched).
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether the cache is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(name: &str) -> Arc<Identity> {
        // As the workspace would answer SCIM Me: the one way to an `Identity` (and its `UserId`).
        let me: CurrentUser = serde_json::from_value(serde_json::json!({ "userName": name }))
            .expect("a SCIM Me answer");
        Arc::new(Identity::from(me))
    }

    #[tokio::test(start_paused = true)]
    async fn entries_expire_after_the_ttl() {
        // Arrange
        let cache = IdentityCache::new(Duration::from_secs(60), 10);
        cache.insert([1; 32], identity("a"), None);

        // Act / Assert
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(cache.get(&[1; 32]).is_some());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(cache.get(&[1; 32]).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn the_cache_is_bounded_and_evicts_the_oldest() {
        let cache = IdentityCache::new(Duration::from_secs(60), 2);
        cache.insert([1; 32], identity("a"), None);
        tokio::time::advance(Duration::from_secs(1)).await;
        cache.insert([2; 32], identity("b"), None);
        cache.insert([3; 32], identity("c"), None);
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&[1; 32]).is_none());
        assert!(cache.get(&[3; 32]).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn an_entry_ends_with_its_tokens_claimed_expiry() {
        // Arrange: a 60 s TTL, a token that says it expires in 5 s, and one already expired.
        let cache = IdentityCache::new(Duration::from_secs(60), 10);
        let soon = SystemTime::now() + Duration::from_secs(5);
        let past = SystemTime::now() - Duration::from_secs(1);
        cache.insert([1; 32], identity("a"), Some(soon));
        cache.insert([2; 32], identity("b"), Some(past));

        // Act / Assert
        assert!(cache.get(&[2; 32]).is_none());
        tokio::time::advance(Duration::from_secs(4)).await;
        assert!(cache.get(&[1; 32]).is_some());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(cache.get(&[1; 32]).is_none());
    }

    #[test]
    fn a_zero_ttl_disables_the_cache() {
        let cache = IdentityCache::new(Duration::ZERO, 10);
        cache.insert([1; 32], identity("a"), None);
        assert!(cache.get(&[1; 32]).is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn the_key_is_the_sha256_not_the_token() {
        let token = UserToken::parse("dev-token-alice").unwrap();
        let key = token_hash(&token);
        assert_ne!(&key[..], b"dev-token-alice");
        assert_eq!(key, <[u8; 32]>::from(Sha256::digest(b"dev-token-alice")));
    }
}
