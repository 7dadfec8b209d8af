//! [`UserToken`]: the signed-in user's token, as the Databricks Apps proxy forwards it in
//! `X-Forwarded-Access-Token` (on-behalf-of user authorization).
//!
//! It is used only through [`crate::Client::as_user`], which sends it as Bearer with the explicit
//! `pat` auth type: no call made with it can fall back to the app's identity, and it is never
//! refreshed (a user whose token expired must sign in again).

use std::fmt;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};

/// Longest token accepted (8 KiB), as `API.md`'s `AUTH_INVALID` rule says.
const MAX_LEN: usize = 8 * 1024;

/// A user's forwarded access token, checked for shape (not validity: only the workspace knows).
#[derive(Clone)]
pub struct UserToken(SecretString);

/// Why a forwarded token was refused before any call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UserTokenError {
    /// The token is empty or only whitespace.
    #[error("the user access token is empty")]
    Empty,
    /// The token is longer than 8 KiB.
    #[error("the user access token is longer than 8 KiB")]
    TooLong,
    /// The token contains whitespace or control characters.
    #[error("the user access token contains whitespace or control characters")]
    InvalidCharacters,
}

impl UserToken {
    /// Accepts a forwarded token; surrounding whitespace is trimmed.
    ///
    /// # Errors
    /// [`UserTokenError`] when the token is empty, longer than 8 KiB, or contains whitespace or
    /// control characters (it could not be sent in a header).
    pub fn parse(raw: &str) -> Result<Self, UserTokenError> {
        let token = raw.trim();
        if token.is_empty() {
            return Err(UserTokenError::Empty);
        }
        if token.len() > MAX_LEN {
            return Err(UserTokenError::TooLong);
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(UserTokenError::InvalidCharacters);
        }
        Ok(Self(SecretString::from(token.to_owned())))
    }

    /// The token, as a secret.
    #[must_use]
    pub fn secret(&self) -> &SecretString {
        &self.0
    }

    /// Exposes the token, e.g. to hash it for a cache key.
    #[must_use]
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// When a JWT-shaped token says it expires (its `exp` claim), read **without** verifying
    /// the signature; `None` for an opaque token (a PAT). Good only for shortening what is
    /// derived from the token, e.g. how long an identity stays cached; never for trusting it.
    #[must_use]
    pub fn claimed_expiry(&self) -> Option<SystemTime> {
        let exp = unverified_jwt_claims(self.expose())?.get("exp")?.as_u64()?;
        SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(exp))
    }
}

/// The claims of a JWT-shaped token (`header.payload.signature`), decoded **without** checking
/// the signature; `None` when the token is not one. Callers may use a claim to decide something
/// about the token's holder's own convenience (a cache lifetime, a role name to try), never to
/// decide who the holder is: only the workspace can say that.
#[must_use]
pub fn unverified_jwt_claims(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        serde_json::Value::Object(claims) => Some(claims),
        _ => None,
    }
}

impl fmt::Debug for UserToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserToken([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_claimed_expiry_comes_from_a_jwt_and_never_from_an_opaque_token() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"alice","exp":2000000000}"#);
        let jwt = UserToken::parse(&format!("eyJhbGciOiJub25lIn0.{payload}.sig")).unwrap();
        assert_eq!(
            jwt.claimed_expiry(),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000))
        );
        for opaque in ["dapi0123456789", "a.!!!.c", "a.bm90LWpzb24.c"] {
            assert_eq!(UserToken::parse(opaque).unwrap().claimed_expiry(), None);
        }
    }

    #[test]
    fn shapes_are_checked() {
        assert_eq!(UserToken::parse("  ").unwrap_err(), UserTokenError::Empty);
        assert_eq!(
            UserToken::parse("a b").unwrap_err(),
            UserTokenError::InvalidCharacters
        );
        assert_eq!(
            UserToken::parse("a\u{7}").unwrap_err(),
            UserTokenError::InvalidCharacters
        );
        assert_eq!(
            UserToken::parse(&"x".repeat(8193)).unwrap_err(),
            UserTokenError::TooLong
        );
        assert_eq!(
            UserToken::parse(" dev-token-alice ").unwrap().expose(),
            "dev-token-alice"
        );
    }

    #[test]
    fn debug_hides_the_token() {
        let token = UserToken::parse("dev-token-alice").unwrap();
        assert_eq!(format!("{token:?}"), "UserToken([REDACTED])");
    }
}
