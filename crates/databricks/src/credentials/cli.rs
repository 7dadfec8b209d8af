//! `databricks-cli`: tokens from `databricks auth token` (UPSTREAM §2.8).
//!
//! The CLI is run as `databricks auth token --profile <p>` when a profile is configured, else
//! `--host <host>`. It prints `{"access_token","token_type","expiry"}` with `expiry` in full
//! RFC 3339 (fraction and offset kept, unlike the Python SDK). The CLI refreshes its own cached
//! token when near expiry, so our cache simply asks again once the token is stale.
//! The executable is looked up on the `PATH` the configuration's environment function gave, so
//! tests can put a fake `databricks` first without changing the process environment.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::Deserialize;
use tokio::time::Instant;

use super::CredentialsProvider;
use super::cache::{CacheOptions, Token, TokenCache, TokenSource};
use crate::config::{AuthType, Config};
use crate::error::{DatabricksError, ErrorKind};

/// How long the CLI may take (it may refresh its token over the network).
const CLI_TIMEOUT: Duration = Duration::from_secs(30);

/// Tokens from the Databricks CLI.
#[derive(Debug, Clone)]
pub struct DatabricksCli {
    cache: TokenCache,
}

impl DatabricksCli {
    /// Runs `program auth token --profile <profile>` (or `--host <host>` when `profile` is
    /// `None`), looking `program` up on `search_path` when given.
    #[must_use]
    pub fn new(
        program: PathBuf,
        profile: Option<&str>,
        host: &str,
        search_path: Option<OsString>,
    ) -> Self {
        let mut args = vec!["auth".to_owned(), "token".to_owned()];
        match profile {
            Some(profile) => args.extend(["--profile".to_owned(), profile.to_owned()]),
            None => args.extend(["--host".to_owned(), host.to_owned()]),
        }
        let source = CliSource {
            program,
            args,
            search_path,
        };
        Self {
            cache: TokenCache::new(source, CacheOptions::default()),
        }
    }

    pub(crate) fn for_config(config: &Config) -> Self {
        Self::new(
            config.cli_path().to_owned(),
            config.profile(),
            config.host().as_str(),
            config.search_path().cloned(),
        )
    }
}

#[async_trait::async_trait]
impl CredentialsProvider for DatabricksCli {
    fn auth_type(&self) -> AuthType {
        AuthType::DatabricksCli
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
struct CliSource {
    program: PathBuf,
    args: Vec<String>,
    search_path: Option<OsString>,
}

#[derive(Deserialize)]
struct CliToken {
    access_token: SecretString,
    #[serde(default)]
    token_type: Option<String>,
    expiry: Option<String>,
}

#[async_trait::async_trait]
impl TokenSource for CliSource {
    #[tracing::instrument(skip_all, fields(args = ?self.args))]
    async fn fetch(&self) -> Result<Token, DatabricksError> {
        let mut command = tokio::process::Command::new(&self.program);
        command.args(&self.args).kill_on_drop(true);
        if let Some(path) = &self.search_path {
            // On Unix, a PATH set for the child is also where the program is looked up.
            command.env("PATH", path);
        }
        let failed = |message: String| DatabricksError::new(ErrorKind::Credentials, message);
        let output = tokio::time::timeout(CLI_TIMEOUT, command.output())
            .await
            .map_err(|_| failed(format!("databricks-cli: `databricks {}` took longer than 30 s", self.args.join(" "))))?
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    failed(format!(
                        "databricks-cli: {} not found on PATH; install the Databricks CLI or configure another auth type",
                        self.program.display()
                    ))
                } else {
                    failed(format!("databricks-cli: cannot run {}: {e}", self.program.display()))
                }
            })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let stderr = stderr.trim();
            let hint = if stderr.contains("databricks OAuth is not configured for this host") {
                " (run `databricks auth login` first)"
            } else {
                ""
            };
            return Err(failed(format!(
                "databricks-cli: `databricks {}` failed ({}): {stderr}{hint}",
                self.args.join(" "),
                output.status
            )));
        }
        parse_output(&output.stdout, Utc::now())
    }
}

/// Parses the CLI's JSON; `now` converts the wall-clock expiry into an [`Instant`].
fn parse_output(stdout: &[u8], now: DateTime<Utc>) -> Result<Token, DatabricksError> {
    let text = String::from_utf8_lossy(stdout);
    // Tolerate anything printed before the JSON object (update notices and the like).
    let json = text.find('{').map_or(&*text, |at| &text[at..]);
    let parsed: CliToken = serde_json::from_str(json).map_err(|e| {
        DatabricksError::new(
            ErrorKind::Credentials,
            format!("databricks-cli: unexpected output of `databricks auth token`: {e}"),
        )
    })?;
    if parsed
        .token_type
        .as_deref()
        .is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
    {
        return Err(DatabricksError::new(
            ErrorKind::Credentials,
            "databricks-cli: the token is not a Bearer token",
        ));
    }
    let expires_at = match parsed.expiry.as_deref().filter(|e| !e.is_empty()) {
        None => None,
        Some(expiry) => {
            let at = DateTime::parse_from_rfc3339(expiry).map_err(|e| {
                DatabricksError::new(
                    ErrorKind::Credentials,
                    format!("databricks-cli: expiry {expiry:?} is not RFC 3339: {e}"),
                )
            })?;
            let remaining = (at.with_timezone(&Utc) - now).to_std().unwrap_or_default();
            Some(Instant::now() + remaining)
        }
    };
    Ok(Token {
        value: parsed.access_token,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[tokio::test(start_paused = true)]
    async fn full_rfc3339_expiry_with_fraction_and_offset_is_parsed() {
        // Arrange: 12:34:56.789+02:00 is 10:34:56.789Z, 30 min after `now`.
        let now = DateTime::parse_from_rfc3339("2026-05-01T10:04:56.789Z")
            .unwrap()
            .with_timezone(&Utc);
        let stdout = br#"{"access_token":"eyJcli","token_type":"Bearer","expiry":"2026-05-01T12:34:56.789+02:00"}"#;

        // Act
        let token = parse_output(stdout, now).unwrap();

        // Assert
        assert_eq!(token.value.expose_secret(), "eyJcli");
        assert_eq!(
            token.expires_at.unwrap() - Instant::now(),
            Duration::from_secs(30 * 60)
        );
    }

    #[tokio::test]
    async fn garbage_output_is_a_credentials_error() {
        let error = parse_output(b"not json", Utc::now()).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Credentials);
    }
}
