//! Credential strategies: where a Bearer token comes from.
//!
//! - [`UserToken`] (`user.rs`): the signed-in user's forwarded token (on-behalf-of), used through
//!   [`crate::Client::as_user`]; never refreshed, never replaced by the app's identity.
//! - [`Pat`] (`pat.rs`): a static personal access token.
//! - [`OAuthM2m`] (`oauth_m2m.rs`): a service principal's client credentials, with discovery and
//!   a refreshing token cache.
//! - [`DatabricksCli`] (`cli.rs`): `databricks auth token`.
//! - [`ModelServing`] (`model_serving.rs`): the token file of a Model Serving container.
//!
//! Strategies that fetch tokens share `cache.rs`: a 40 s expiry skew, refresh ahead of expiry in
//! the background while the current token is still good, and single-flight refreshes (one fetch
//! however many callers wait). `for_config` builds the strategy a [`Config`] names, so the auth
//! type is always explicit.

mod cache;
mod cli;
pub(crate) mod model_serving;
mod oauth_m2m;
mod pat;
mod user;

use std::fmt;
use std::sync::Arc;

use secrecy::SecretString;

pub use cache::CacheOptions;
pub use cli::DatabricksCli;
pub use model_serving::ModelServing;
pub use oauth_m2m::OAuthM2m;
pub use pat::Pat;
pub use user::{UserToken, UserTokenError, unverified_jwt_claims};

use crate::config::{AuthType, Config};
use crate::error::DatabricksError;
use crate::http::Http;

/// A source of Bearer tokens for one identity.
#[async_trait::async_trait]
pub trait CredentialsProvider: Send + Sync + fmt::Debug {
    /// The strategy's name, sent in the user agent as `auth/<name>`.
    fn auth_type(&self) -> AuthType;

    /// A token valid for at least the expiry skew.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Credentials`] when no token can be had (and transport kinds when the
    /// token endpoint could not be reached).
    async fn token(&self) -> Result<SecretString, DatabricksError>;

    /// Whether [`CredentialsProvider::invalidate`] can lead to a different token.
    fn refreshable(&self) -> bool {
        false
    }

    /// Drops a cached token the workspace refused, so the next call fetches a new one.
    fn invalidate(&self) {}
}

/// Builds the strategy `config` names, sharing `http`'s connection pool.
pub(crate) fn for_config(
    config: &Config,
    http: &Http,
) -> Result<Arc<dyn CredentialsProvider>, DatabricksError> {
    use crate::config::ConfigError;
    let missing = |attribute, env_var| ConfigError::MissingCredential {
        auth_type: config.auth_type(),
        attribute,
        env_var,
    };
    Ok(match config.auth_type() {
        AuthType::Pat => Arc::new(Pat::new(
            config
                .token()
                .cloned()
                .ok_or_else(|| missing("token", "DATABRICKS_TOKEN"))?,
        )),
        AuthType::OAuthM2m => Arc::new(OAuthM2m::new(
            http.clone(),
            config
                .client_id()
                .ok_or_else(|| missing("client_id", "DATABRICKS_CLIENT_ID"))?
                .to_owned(),
            config
                .client_secret()
                .cloned()
                .ok_or_else(|| missing("client_secret", "DATABRICKS_CLIENT_SECRET"))?,
            CacheOptions::default(),
        )),
        AuthType::DatabricksCli => Arc::new(DatabricksCli::for_config(config)),
        AuthType::ModelServing => {
            Arc::new(ModelServing::new(config.serving_token_file().to_owned()))
        }
    })
}
