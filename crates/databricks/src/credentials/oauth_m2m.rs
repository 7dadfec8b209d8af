//! `oauth-m2m`: a service principal's client credentials exchanged for workspace OAuth tokens
//! (UPSTREAM §2.6–2.7).
//!
//! The token endpoint is discovered once: `GET /.well-known/databricks-config` gives the
//! `oidc_endpoint`; when that document is missing or unreadable (older workspaces, and the Go
//! SDK's behaviour) the fallback is `/oidc/.well-known/oauth-authorization-server` on the host.
//! Tokens come from `POST <token_endpoint>` with HTTP Basic `client_id:client_secret` and the
//! form `grant_type=client_credentials&scope=all-apis`, and live in the shared token cache
//! (40 s skew, background refresh when stale, single-flight).

use std::fmt;
use std::time::Duration;

use reqwest::Method;
use secrecy::SecretString;
use serde::Deserialize;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::CredentialsProvider;
use super::cache::{CacheOptions, Token, TokenCache, TokenSource};
use crate::config::AuthType;
use crate::error::{DatabricksError, ErrorKind};
use crate::http::{Auth, Call, CallOptions, Http, Operation};

/// `GET /.well-known/databricks-config`.
const OAUTH_METADATA: Operation = Operation::new("oauth", "host_metadata");
/// `GET` of the OIDC discovery document.
const OAUTH_DISCOVERY: Operation = Operation::new("oauth", "discovery");
/// `POST <token_endpoint>`.
const OAUTH_TOKEN: Operation = Operation::new("oauth", "token");

/// OAuth machine-to-machine credentials of a service principal.
#[derive(Debug, Clone)]
pub struct OAuthM2m {
    cache: TokenCache,
}

impl OAuthM2m {
    pub(crate) fn new(
        http: Http,
        client_id: String,
        client_secret: SecretString,
        options: CacheOptions,
    ) -> Self {
        let source = M2mSource {
            http,
            client_id,
            client_secret,
            scopes: "all-apis".to_owned(),
            token_endpoint: OnceCell::new(),
        };
        Self {
            cache: TokenCache::new(source, options),
        }
    }
}

#[async_trait::async_trait]
impl CredentialsProvider for OAuthM2m {
    fn auth_type(&self) -> AuthType {
        AuthType::OAuthM2m
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

struct M2mSource {
    http: Http,
    client_id: String,
    client_secret: SecretString,
    scopes: String,
    token_endpoint: OnceCell<String>,
}

impl fmt::Debug for M2mSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("M2mSource")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("scopes", &self.scopes)
            .field("token_endpoint", &self.token_endpoint.get())
            .finish()
    }
}

#[derive(Deserialize)]
struct HostMetadata {
    oidc_endpoint: Option<String>,
    account_id: Option<String>,
}

#[derive(Deserialize)]
struct Discovery {
    token_endpoint: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: SecretString,
    #[serde(default)]
    token_type: Option<String>,
    expires_in: serde_json::Value,
}

impl M2mSource {
    async fn token_endpoint(&self) -> Result<&str, DatabricksError> {
        self.token_endpoint
            .get_or_try_init(|| self.discover())
            .await
            .map(String::as_str)
    }

    #[tracing::instrument(skip_all, fields(host = %self.http.host()))]
    async fn discover(&self) -> Result<String, DatabricksError> {
        let options = CallOptions::default();
        let host = self.http.host();
        let metadata = Call::new(
            OAUTH_METADATA,
            Method::GET,
            host.join("/.well-known/databricks-config"),
            Auth::None,
            &options,
        );
        let from_metadata = match self.http.send(metadata).await {
            Ok(response) => response
                .json::<HostMetadata>("host metadata")
                .ok()
                .and_then(|m| {
                    let endpoint = m.oidc_endpoint?;
                    let endpoint = match m.account_id {
                        Some(account) => endpoint.replace("{account_id}", &account),
                        None => endpoint,
                    };
                    Some(format!(
                        "{}/.well-known/oauth-authorization-server",
                        endpoint.trim_end_matches('/')
                    ))
                }),
            Err(error) => {
                tracing::debug!(event = "databricks.host_metadata_unavailable", error = %error);
                None
            }
        };
        let discovery_url = from_metadata
            .unwrap_or_else(|| host.join("/oidc/.well-known/oauth-authorization-server"));
        let discovery = Call::new(
            OAUTH_DISCOVERY,
            Method::GET,
            discovery_url.clone(),
            Auth::None,
            &options,
        );
        let response = self.http.send(discovery).await.map_err(|e| {
            credentials_error(e, &format!("oauth-m2m: discovery at {discovery_url}"))
        })?;
        let document: Discovery = response
            .json("OIDC discovery document")
            .map_err(|e| e.with_kind(ErrorKind::Credentials))?;
        Ok(document.token_endpoint)
    }
}

#[async_trait::async_trait]
impl TokenSource for M2mSource {
    #[tracing::instrument(skip_all, fields(client_id = %self.client_id))]
    async fn fetch(&self) -> Result<Token, DatabricksError> {
        let endpoint = self.token_endpoint().await?;
        let options = CallOptions::default();
        let started = Instant::now();
        let call = Call::new(
            OAUTH_TOKEN,
            Method::POST,
            endpoint.to_owned(),
            Auth::Basic(&self.client_id, &self.client_secret),
            &options,
        )
        .form(vec![
            ("grant_type", "client_credentials".to_owned()),
            ("scope", self.scopes.clone()),
        ])
        // Asking twice for a token is harmless.
        .idempotent(true);
        let response = self
            .http
            .send(call)
            .await
            .map_err(|e| credentials_error(e, "oauth-m2m: token request"))?;
        let body: TokenResponse = response
            .json("oauth-m2m token")
            .map_err(|e| e.with_kind(ErrorKind::Credentials))?;
        if body
            .token_type
            .as_deref()
            .is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
        {
            return Err(DatabricksError::new(
                ErrorKind::Credentials,
                "oauth-m2m: the token endpoint returned a token that is not a Bearer token",
            ));
        }
        let expires_in = match &body.expires_in {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        }
        .ok_or_else(|| {
            DatabricksError::new(
                ErrorKind::Credentials,
                "oauth-m2m: expires_in is not a number",
            )
        })?;
        tracing::debug!(event = "databricks.token_fetched", expires_in);
        Ok(Token {
            value: body.access_token,
            // Measured from before the request, so the cache never overestimates the lifetime.
            expires_at: Some(started + Duration::from_secs(expires_in)),
        })
    }
}

/// A failure to get credentials: client errors become [`ErrorKind::Credentials`] (the app's
/// configuration is wrong); transient kinds stay, so callers can tell an outage from a bad secret.
pub(crate) fn credentials_error(error: DatabricksError, what: &str) -> DatabricksError {
    let error = error.context(what);
    if error.kind().is_transient() || error.kind() == ErrorKind::RateLimited {
        error
    } else {
        error.with_kind(ErrorKind::Credentials)
    }
}
