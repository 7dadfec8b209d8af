//! `model-serving`: the OAuth token a Model Serving container finds in a file (UPSTREAM §2.9).
//!
//! The file is `$SERVING_CREDENTIALS_DIR/model-dependencies-oauth-token` when that variable is
//! set and non-empty, else `/var/credentials-secret/model-dependencies-oauth-token`, holding
//! `{"OAUTH_TOKEN":[{"oauthTokenValue":"<token>"}]}`. The platform rewrites it; like the Python
//! SDK we re-read it at most every 300 s and retry a failed read once after 0.5 s. This file is
//! the *app's* identity. The invoker's own token (on-behalf-of user in serving) is a per-request
//! value that no file or variable carries: pass it to [`crate::Client::as_invoker`], which
//! refuses it outside Model Serving.

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use tokio::time::Instant;

use super::CredentialsProvider;
use super::cache::{CacheOptions, Token, TokenCache, TokenSource};
use crate::config::{AuthType, Env};
use crate::error::{DatabricksError, ErrorKind};

const FILE_NAME: &str = "model-dependencies-oauth-token";
const DEFAULT_DIR: &str = "/var/credentials-secret";
/// How long a token read from the file is used before the file is read again.
const REREAD_AFTER: Duration = Duration::from_secs(300);

/// The token file path the environment points to.
pub(crate) fn token_file_path(env: Env<'_>) -> PathBuf {
    let dir = env("SERVING_CREDENTIALS_DIR")
        .filter(|d| !d.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_DIR.to_owned());
    Path::new(&dir).join(FILE_NAME)
}

/// Model Serving's token file.
#[derive(Debug, Clone)]
pub struct ModelServing {
    cache: TokenCache,
}

impl ModelServing {
    /// Reads tokens from `path`.
    #[must_use]
    pub fn new(path: PathBuf) -> Self {
        // The file's token carries no expiry: treat each read as valid for the re-read period,
        // with no skew (the platform keeps the file ahead of expiry) and no background refresh.
        let options = CacheOptions {
            expiry_skew: Duration::ZERO,
            async_refresh: false,
            ..CacheOptions::default()
        };
        Self {
            cache: TokenCache::new(TokenFile { path }, options),
        }
    }
}

#[async_trait::async_trait]
impl CredentialsProvider for ModelServing {
    fn auth_type(&self) -> AuthType {
        AuthType::ModelServing
    }

    async fn token(&self) -> Result<SecretString, DatabricksError> {
        self.cache.token().await
    }

    fn refreshable(&self) -> bool {
        true
    }

    fn invalidate(&self) {
        self.cache.invalidate();
    }
}

#[derive(Debug)]
struct TokenFile {
    path: PathBuf,
}

#[derive(Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct FileContents {
    oauth_token: Vec<FileToken>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileToken {
    oauth_token_value: SecretString,
}

impl TokenFile {
    async fn read(&self) -> Result<SecretString, DatabricksError> {
        let text = tokio::fs::read(&self.path).await.map_err(|e| {
            DatabricksError::new(
                ErrorKind::Credentials,
                format!("model-serving: cannot read {}: {e}", self.path.display()),
            )
        })?;
        let contents: FileContents = serde_json::from_slice(&text).map_err(|e| {
            DatabricksError::new(
                ErrorKind::Credentials,
                format!(
                    "model-serving: {} is not a token file: {e}",
                    self.path.display()
                ),
            )
        })?;
        contents
            .oauth_token
            .into_iter()
            .next()
            .map(|t| t.oauth_token_value)
            .ok_or_else(|| {
                DatabricksError::new(
                    ErrorKind::Credentials,
                    format!("model-serving: {} holds no token", self.path.display()),
                )
            })
    }
}

#[async_trait::async_trait]
impl TokenSource for TokenFile {
    async fn fetch(&self) -> Result<Token, DatabricksError> {
        let value = match self.read().await {
            Ok(value) => value,
            Err(_) => {
                // The platform may be rewriting the file right now.
                tokio::time::sleep(Duration::from_millis(500)).await;
                self.read().await?
            }
        };
        Ok(Token {
            value,
            expires_at: Some(Instant::now() + REREAD_AFTER),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn token_file_path_follows_serving_credentials_dir() {
        let env = |name: &str| (name == "SERVING_CREDENTIALS_DIR").then(|| "/tmp/creds".to_owned());
        assert_eq!(
            token_file_path(&env),
            PathBuf::from("/tmp/creds/model-dependencies-oauth-token")
        );
        let empty = |name: &str| (name == "SERVING_CREDENTIALS_DIR").then(String::new);
        assert_eq!(
            token_file_path(&empty),
            PathBuf::from("/var/credentials-secret/model-dependencies-oauth-token")
        );
    }

    #[tokio::test]
    async fn token_is_read_from_the_file_and_reread_after_300_s() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(
            &path,
            r#"{"OAUTH_TOKEN":[{"oauthTokenValue":"serving-token-1"}]}"#,
        )
        .unwrap();
        let provider = ModelServing::new(path.clone());

        // Act
        let first = provider.token().await.unwrap();
        std::fs::write(
            &path,
            r#"{"OAUTH_TOKEN":[{"oauthTokenValue":"serving-token-2"}]}"#,
        )
        .unwrap();
        let cached = provider.token().await.unwrap();
        provider.invalidate();
        let reread = provider.token().await.unwrap();

        // Assert
        assert_eq!(first.expose_secret(), "serving-token-1");
        assert_eq!(cached.expose_secret(), "serving-token-1");
        assert_eq!(reread.expose_secret(), "serving-token-2");
    }

    #[tokio::test(start_paused = true)]
    async fn missing_file_is_a_credentials_error_after_one_retry() {
        let provider = ModelServing::new(PathBuf::from("/nonexistent/dbapp/token"));
        let started = Instant::now();
        let error = provider.token().await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Credentials);
        assert!(started.elapsed() >= Duration::from_millis(500));
    }
}
