//! Bearer authentication and token minting.
//!
//! Every workspace API takes `Authorization: Bearer <token>`. The answers follow
//! `shared/UPSTREAM.md` §7 item 4, which is what the real service sends:
//! - no (or a non-Bearer) `Authorization` header: `401 {"error_code":"UNAUTHENTICATED"}`;
//! - an unknown, revoked or expired personal access token, or a token of an inactive user:
//!   `403 {"error_code":403,"message":"Invalid access token."}` with `X-Databricks-Reason-Phrase`;
//! - an expired OAuth (JWT-shaped) token: `403 {"error_code":403,"message":"JWT has expired"}`, so
//!   clients can tell expiry from invalidity.
//!
//! Minted tokens (OAuth M2M, Lakebase credentials, control-API user tokens) are JWT-shaped —
//! `header.payload.signature`, base64url — with `sub`, `iat` and `exp` claims that clients may
//! decode. The signature is random: the emulator checks tokens by looking them up, not by
//! verifying them.

use std::sync::{Arc, Mutex};

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::error::ApiError;
use crate::state::{Emulator, Principal, TokenRecord, lock};

/// Filled by [`Authenticated`] so that the request log can name the principal.
#[derive(Clone, Debug, Default)]
pub(crate) struct PrincipalSlot(pub(crate) Arc<Mutex<Option<String>>>);

/// The principal a request authenticated as.
#[derive(Debug, Clone)]
pub(crate) struct Authenticated(pub(crate) Arc<Principal>);

impl FromRequestParts<Emulator> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Emulator) -> Result<Self, ApiError> {
        let token = bearer_token(&parts.headers)?;
        let principal = state.authenticate_for(token, parts.uri.path())?;
        if let Some(slot) = parts.extensions.get::<PrincipalSlot>() {
            *lock(&slot.0) = Some(principal.user_name.clone());
        }
        Ok(Self(principal))
    }
}

/// The token of an `Authorization: Bearer` header.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let missing = || {
        ApiError::unauthenticated(
            "Credential was not sent or was of an unsupported type for this API.",
        )
    };
    let value = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(missing)?;
    let (scheme, token) = value.split_once(' ').ok_or_else(missing)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(missing());
    }
    Ok(token)
}

const INVALID: &str = "Invalid access token.";
/// The `aud` claim of database credentials.
pub(crate) const DATABASE_AUDIENCE: &str = "lakebase";

/// Why the Lakebase front refused a login; the client is told only that the password failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoginRefusal {
    /// Not a token this emulator issued, or one revoked (by a reset too).
    Unknown,
    /// A personal access token: Lakebase takes OAuth tokens only.
    NotOAuth,
    Expired,
    /// Issued to another principal than the role logging in.
    OtherRole,
}
const EXPIRED: &str = "JWT has expired";

impl Emulator {
    /// Resolves a token to its principal, or the error the real service would send.
    pub(crate) fn authenticate(&self, token: &str) -> Result<Arc<Principal>, ApiError> {
        self.resolve(token, None)
    }

    /// [`Self::authenticate`] for a request to `path`, which also refuses a downscoped token on
    /// a route that needs a scope it lacks (`scopes`).
    pub(crate) fn authenticate_for(
        &self,
        token: &str,
        path: &str,
    ) -> Result<Arc<Principal>, ApiError> {
        self.resolve(token, Some(path))
    }

    /// One lookup of the token's record serves both checks.
    fn resolve(&self, token: &str, path: Option<&str>) -> Result<Arc<Principal>, ApiError> {
        let record = lock(&self.tokens).get(token).cloned();
        let record = record.ok_or_else(|| ApiError::token_rejected(INVALID))?;
        if record.revoked {
            return Err(ApiError::token_rejected(INVALID));
        }
        if record.expires_at.is_some_and(|at| at <= Utc::now()) {
            let message = if record.is_jwt { EXPIRED } else { INVALID };
            return Err(ApiError::token_rejected(message));
        }
        // An app's service principal goes with its app: its tokens then stop working.
        let principal = self
            .principal(&record.principal)
            .ok_or_else(|| ApiError::token_rejected(INVALID))?;
        if !principal.active {
            return Err(ApiError::token_rejected(INVALID));
        }
        if let (Some(path), Some(granted)) = (path, &record.scopes) {
            crate::scopes::check(path, granted)?;
        }
        Ok(principal)
    }

    /// Mints a JWT-shaped token for `principal` that expires after `ttl`, and records it.
    pub(crate) fn mint_token(
        &self,
        principal: &Principal,
        ttl: Duration,
        audience: &str,
    ) -> (String, DateTime<Utc>) {
        self.mint(principal, ttl, audience, None)
    }

    /// Mints a user token limited to `scopes`, as the Apps proxy forwards in
    /// `X-Forwarded-Access-Token` (`shared/UPSTREAM.md` §1.2 and §1.6): the workspace APIs refuse
    /// it for a route that needs a scope it lacks. The scopes are in its `scope` claim,
    /// space-separated as OAuth writes them.
    pub(crate) fn mint_downscoped_token(
        &self,
        principal: &Principal,
        ttl: Duration,
        scopes: &[String],
    ) -> (String, DateTime<Utc>) {
        self.mint(principal, ttl, "workspace", Some(scopes.into()))
    }

    fn mint(
        &self,
        principal: &Principal,
        ttl: Duration,
        audience: &str,
        scopes: Option<Arc<[String]>>,
    ) -> (String, DateTime<Utc>) {
        let now = Utc::now();
        let expires_at = now + ttl;
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": "dbapp-emulator"});
        let mut claims = json!({
            "iss": format!("{}/oidc", self.base_url),
            "sub": principal.user_name,
            "aud": audience,
            "iat": now.timestamp(),
            "exp": expires_at.timestamp(),
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        if let Some(scopes) = &scopes {
            claims["scope"] = scopes.join(" ").into();
        }
        let signature: [u8; 32] = rand::random();
        let token = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            URL_SAFE_NO_PAD.encode(signature)
        );
        let record = TokenRecord {
            principal: principal.user_name.clone(),
            expires_at: Some(expires_at),
            revoked: false,
            is_jwt: true,
            branch: None,
            scopes,
        };
        let mut tokens = lock(&self.tokens);
        // Keep the map bounded under long benchmarks: forget minted tokens once long expired.
        if tokens.len() > 50_000 {
            let horizon = now - Duration::hours(1);
            tokens.retain(|_, r| r.expires_at.is_none_or(|at| at > horizon));
        }
        tokens.insert(token.clone(), record);
        (token, expires_at)
    }

    /// Mints a Lakebase database credential: a token with the `lakebase` audience that the
    /// Postgres front accepts, opening `branch`'s database when it names an Autoscaling branch.
    pub(crate) fn mint_database_credential(
        &self,
        principal: &Principal,
        ttl: Duration,
        branch: Option<String>,
    ) -> (String, DateTime<Utc>) {
        let (token, expires_at) = self.mint_token(principal, ttl, DATABASE_AUDIENCE);
        if let Some(record) = lock(&self.tokens).get_mut(&token) {
            record.branch = branch;
        }
        (token, expires_at)
    }

    /// Checks a Postgres login of the Lakebase front: `password` must be an OAuth token this
    /// emulator issued to the principal named `user`, neither revoked nor expired. Any such token
    /// works, not only database credentials, as public code uses workspace tokens too
    /// (`shared/UPSTREAM.md` §5). Returns the branch whose database the login opens, if any.
    pub(crate) fn database_login(
        &self,
        user: &str,
        password: &str,
    ) -> Result<Option<String>, LoginRefusal> {
        let record = lock(&self.tokens).get(password).cloned();
        let record = record.ok_or(LoginRefusal::Unknown)?;
        if record.revoked {
            return Err(LoginRefusal::Unknown);
        }
        if !record.is_jwt {
            return Err(LoginRefusal::NotOAuth);
        }
        if record.expires_at.is_some_and(|at| at <= Utc::now()) {
            return Err(LoginRefusal::Expired);
        }
        if record.principal != user {
            return Err(LoginRefusal::OtherRole);
        }
        match self.principal(user) {
            Some(principal) if principal.active => Ok(record.branch),
            _ => Err(LoginRefusal::Unknown),
        }
    }

    /// Changes a token's state: `expire` makes it expired now, `revoke` makes it unknown.
    /// Returns false when the token does not exist.
    pub(crate) fn update_token(&self, token: &str, revoke: bool) -> bool {
        let mut tokens = lock(&self.tokens);
        let Some(record) = tokens.get_mut(token) else {
            return false;
        };
        if revoke {
            record.revoked = true;
        } else {
            record.expires_at = Some(Utc::now() - Duration::seconds(1));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::Fixture;

    fn emulator() -> Emulator {
        let fixture = Fixture::default();
        let engine = crate::engine::Engine::load(&fixture).expect("the default fixture loads");
        Emulator::new(fixture, engine, "http://127.0.0.1:1".into(), None)
    }

    #[test]
    fn minted_tokens_are_jwt_shaped_with_sub_and_exp() {
        // Arrange
        let emulator = emulator();
        let sp = emulator.principals["dbapp-sp"].clone();

        // Act
        let (token, expires_at) = emulator.mint_token(&sp, Duration::seconds(60), "test");

        // Assert
        let parts: Vec<_> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["sub"], "dbapp-sp");
        assert_eq!(claims["exp"], expires_at.timestamp());
        assert_eq!(emulator.authenticate(&token).unwrap().user_name, "dbapp-sp");
    }

    #[test]
    fn an_apps_service_principal_authenticates_and_logs_in_until_the_app_is_deleted() {
        // Arrange
        let emulator = emulator();
        let new = crate::apps::NewApp {
            caller: "alice@example.com",
            no_compute: true,
            workspace_id: 1,
        };
        let app = lock(&emulator.apps)
            .create(
                &json!({"name": "my-app"}),
                &new,
                Utc::now(),
                Duration::zero(),
            )
            .unwrap();
        let client_id = app["service_principal_client_id"].as_str().unwrap();
        let sp = emulator.principal(client_id).expect("the app's principal");
        let (token, _) = emulator.mint_token(&sp, Duration::seconds(60), DATABASE_AUDIENCE);

        // Act
        let authenticated = emulator.authenticate(&token).map(|p| p.user_name.clone());
        let login = emulator.database_login(client_id, &token);
        lock(&emulator.apps).delete("my-app", Utc::now()).unwrap();

        // Assert
        assert_eq!(authenticated.unwrap(), client_id);
        assert_eq!(login, Ok(None));
        assert!(emulator.authenticate(&token).is_err());
        assert_eq!(
            emulator.database_login(client_id, &token),
            Err(LoginRefusal::Unknown)
        );
    }

    #[test]
    fn expired_jwt_and_expired_pat_get_different_messages() {
        // Arrange
        let emulator = emulator();
        let alice = emulator.principals["alice@example.com"].clone();
        let (jwt, _) = emulator.mint_token(&alice, Duration::seconds(60), "test");

        // Act
        emulator.update_token(&jwt, false);
        emulator.update_token("dev-token-alice", false);

        // Assert
        let message = |t: &str| format!("{:?}", emulator.authenticate(t).unwrap_err());
        assert!(message(&jwt).contains(EXPIRED));
        assert!(message("dev-token-alice").contains(INVALID));
        assert!(message("no-such-token").contains(INVALID));
    }
}
