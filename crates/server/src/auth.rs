//! Who is calling: the [`Caller`] and [`Admin`] extractors, over the
//! [`crate::identity::IdentityCache`].
//!
//! `Caller` is the only code that reads `X-Forwarded-Access-Token`. It
//! 1. refuses a missing or empty token (`AUTH_MISSING`) and a malformed one — control
//!    characters, whitespace, over 8 KiB — (`AUTH_INVALID`) before any call;
//! 2. resolves the token to an identity with SCIM Me *as the user*, through a cache keyed by the
//!    token's SHA-256 (60 s TTL, capped by a JWT's own `exp`; 10 000 entries, `0` disables it). A
//!    revoked token keeps working until its entry's TTL ends. The cache never holds the token,
//!    only its hash, so a heap dump or a log of the cache reveals no credential;
//! 3. maps a failed lookup to an `AUTH_*` code (`ApiError::from_identity`), counting retries,
//!    failures and latency per route;
//! 4. compares a forwarded `X-Forwarded-Email` with the identity (`IDENTITY_MISMATCH`);
//! 5. records `user_id` and `auth_method` in the request span, and marks the request as
//!    identified for the HTTP metrics layer (only such requests get a performance record).
//!
//! Handlers then call `caller.workspace(&app)`: a borrowed view of the client carrying the user's
//! token, so no call can fall back to the app's identity, and `caller.user_id()`: the store's
//! [`UserId`], made from the SCIM Me answer for that token (a `UserId` cannot be made from a
//! string, so no handler can build one from request input). Nothing here is kept between requests except the
//! identity cache, so two tabs of one user are independent and replicas need no shared state.

use std::sync::Arc;

use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use dbapp_databricks::{CorrelationId, UserToken, Workspace};
use dbapp_store::UserId;

use crate::error::ApiError;
use crate::http_metrics::IdentifiedSlot;
use crate::identity::{Identity, token_hash};
use crate::metrics::{
    AUTH_FAILURE_TOTAL, AUTH_REQUEST_DURATION_SECONDS, AUTH_SUCCESS_TOTAL,
    IDENTITY_CACHE_HITS_TOTAL, IDENTITY_CACHE_MISSES_TOTAL,
};
use crate::state::AppState;

/// The header the Apps proxy forwards the user's token in.
pub const ACCESS_TOKEN_HEADER: &str = "x-forwarded-access-token";
/// The header the Apps proxy forwards the user's e-mail in.
pub const EMAIL_HEADER: &str = "x-forwarded-email";
/// The only authentication method of the API: on-behalf-of the user.
pub const AUTH_METHOD: &str = "obo";

/// The authenticated caller of a request. Shared: the request's extensions keep a copy for
/// any later extractor of the same request.
#[derive(Debug, Clone)]
pub struct Caller(Arc<CallerInner>);

#[derive(Debug)]
struct CallerInner {
    token: UserToken,
    key: [u8; 32],
    identity: Arc<Identity>,
    correlation_id: CorrelationId,
    route: String,
}

impl Caller {
    /// The caller's identity.
    #[must_use]
    pub fn identity(&self) -> &Identity {
        &self.0.identity
    }

    /// The store's key for the caller's rows.
    #[must_use]
    pub fn user_id(&self) -> &UserId {
        &self.0.identity.user_id
    }

    /// Whether the caller is in one of the admin groups.
    #[must_use]
    pub fn is_admin(&self, admin_groups: &[String]) -> bool {
        self.0
            .identity
            .groups
            .iter()
            .any(|g| admin_groups.iter().any(|a| a == g))
    }

    /// The workspace as the caller: the user's token, the request's correlation id and the
    /// upstream metrics observer.
    #[must_use]
    pub fn workspace<'a>(&'a self, app: &'a AppState) -> Workspace<'a> {
        app.databricks
            .as_user(&self.0.token)
            .with_correlation_id(self.0.correlation_id.clone())
            .with_observer(app.metrics.upstream_observer(&self.0.route))
    }

    /// The workspace as the app's own identity (its service principal), for the governed
    /// queries that declare `run_as: app` and for nothing else: it carries this request's
    /// correlation id and upstream metrics, never the caller's token. `None` when the server
    /// has no credentials of its own (the auth type was only inferred as the Databricks CLI
    /// because nothing was configured).
    #[must_use]
    pub fn app_workspace<'a>(&'a self, app: &'a AppState) -> Option<Workspace<'a>> {
        let config = app.databricks.config();
        let inferred_cli = config.auth_type() == dbapp_databricks::AuthType::DatabricksCli
            && matches!(
                config.source_of("auth_type"),
                Some(dbapp_databricks::config::Source::Derived) | None
            );
        (!inferred_cli).then(|| {
            app.databricks
                .as_app()
                .with_correlation_id(self.0.correlation_id.clone())
                .with_observer(app.metrics.upstream_observer(&self.0.route))
        })
    }

    /// Maps a failed resource call made as the caller; forgets the cached identity when the
    /// workspace refused the token, so the next request re-checks it at once.
    #[must_use]
    pub fn upstream_error(
        &self,
        app: &AppState,
        error: dbapp_databricks::DatabricksError,
        not_found: crate::error::ErrorCode,
    ) -> ApiError {
        if error.kind().is_auth_failure() {
            app.identities.remove(&self.0.key);
        }
        ApiError::from_upstream(error, not_found)
    }
}

/// Reads and shape-checks the forwarded token.
///
/// # Errors
/// `AUTH_MISSING` or `AUTH_INVALID`.
pub fn token_from(parts: &Parts) -> Result<UserToken, ApiError> {
    let Some(value) = parts.headers.get(ACCESS_TOKEN_HEADER) else {
        return Err(ApiError::AuthMissing);
    };
    let Ok(text) = value.to_str() else {
        return Err(ApiError::AuthInvalid {
            reason: "it contains characters that are not allowed",
            source: None,
        });
    };
    UserToken::parse(text).map_err(|error| match error {
        dbapp_databricks::credentials::UserTokenError::Empty => ApiError::AuthMissing,
        dbapp_databricks::credentials::UserTokenError::TooLong => ApiError::AuthInvalid {
            reason: "it is longer than 8 KiB",
            source: None,
        },
        _ => ApiError::AuthInvalid {
            reason: "it contains characters that are not allowed",
            source: None,
        },
    })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        if let Some(caller) = parts.extensions.get::<Self>() {
            return Ok(caller.clone());
        }
        let matched = parts.extensions.get::<MatchedPath>().cloned();
        let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
        let started = std::time::Instant::now();
        let result = authenticate(parts, app, route).await;
        app.metrics.observe(
            AUTH_REQUEST_DURATION_SECONDS,
            &[("route", route)],
            started.elapsed().as_secs_f64(),
        );
        let span = tracing::Span::current();
        span.record("auth_method", AUTH_METHOD);
        match &result {
            Ok(caller) => {
                span.record("user_id", caller.user_id().as_str());
                app.metrics.count(
                    AUTH_SUCCESS_TOTAL,
                    &[("route", route), ("auth_method", AUTH_METHOD)],
                    1,
                );
                app.metrics.count_user(caller.user_id().as_str(), route);
                tracing::debug!(event = "auth.user_id_extracted", user_id = %caller.user_id());
                parts.extensions.insert(caller.clone());
                if let Some(slot) = parts.extensions.get::<IdentifiedSlot>() {
                    slot.mark();
                }
            }
            Err(error) => {
                let reason = error.code().as_str();
                app.metrics.count(
                    AUTH_FAILURE_TOTAL,
                    &[
                        ("route", route),
                        ("auth_method", AUTH_METHOD),
                        ("reason", reason),
                    ],
                    1,
                );
                tracing::info!(event = "auth.failed", reason);
            }
        }
        result
    }
}

async fn authenticate(parts: &Parts, app: &AppState, route: &str) -> Result<Caller, ApiError> {
    let token = token_from(parts)?;
    let key = token_hash(&token);
    let correlation_id = crate::correlation::current_correlation_id();
    let identity = if let Some(identity) = app.identities.get(&key) {
        app.metrics.count(IDENTITY_CACHE_HITS_TOTAL, &[], 1);
        identity
    } else {
        app.metrics.count(IDENTITY_CACHE_MISSES_TOTAL, &[], 1);
        let me = app
            .databricks
            .as_user(&token)
            .with_correlation_id(correlation_id.clone())
            .with_observer(app.metrics.upstream_observer(route))
            .me()
            .await
            .map_err(ApiError::from_identity)?;
        let identity = Arc::new(Identity::from(me));
        app.identities
            .insert(key, Arc::clone(&identity), token.claimed_expiry());
        identity
    };
    if let Some(forwarded) = parts.headers.get(EMAIL_HEADER) {
        // A header that is not readable text cannot be compared, so it cannot match.
        let forwarded = forwarded
            .to_str()
            .map_err(|_| ApiError::IdentityMismatch)?
            .trim();
        let matches =
            |candidate: Option<&str>| candidate.is_some_and(|c| c.eq_ignore_ascii_case(forwarded));
        if !forwarded.is_empty()
            && !matches(identity.email.as_deref())
            && !matches(Some(&identity.user_name))
        {
            return Err(ApiError::IdentityMismatch);
        }
    }
    Ok(Caller(Arc::new(CallerInner {
        token,
        key,
        identity,
        correlation_id,
        route: route.to_owned(),
    })))
}

/// Who may read `/metrics`: a scraper presenting `DBAPP_METRICS_TOKEN` as
/// `Authorization: Bearer …` (compared in constant time, over SHA-256 digests so the length does
/// not show either), or else an [`Admin`]. A wrong scrape token is `AUTH_INVALID`; a signed-in
/// user who is not an admin is `ADMIN_REQUIRED`.
#[derive(Debug, Clone)]
pub struct MetricsReader;

impl FromRequestParts<AppState> for MetricsReader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let bearer = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if let (Some(expected), Some(given)) = (&app.settings.dbapp.metrics_token, bearer) {
            let expected = Sha256::digest(expected.expose_secret().as_bytes());
            let given = Sha256::digest(given.trim().as_bytes());
            return if bool::from(expected.ct_eq(&given)) {
                Ok(Self)
            } else {
                Err(ApiError::AuthInvalid {
                    reason: "it is not the metrics scrape token",
                    source: None,
                })
            };
        }
        Admin::from_request_parts(parts, app).await.map(|_| Self)
    }
}

/// A caller in one of `DBAPP_ADMIN_GROUPS`; others get `ADMIN_REQUIRED`.
#[derive(Debug, Clone)]
pub struct Admin(pub Caller);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, app).await?;
        if caller.is_admin(&app.settings.dbapp.admin_groups) {
            Ok(Self(caller))
        } else {
            Err(ApiError::AdminRequired)
        }
    }
}
