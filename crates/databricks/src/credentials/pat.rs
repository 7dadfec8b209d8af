//! `pat`: a static personal access token, sent as Bearer.

use secrecy::SecretString;

use super::CredentialsProvider;
use crate::config::AuthType;
use crate::error::DatabricksError;

/// A personal access token (`DATABRICKS_TOKEN`, or `token` of a profile).
#[derive(Debug, Clone)]
pub struct Pat {
    token: SecretString,
}

impl Pat {
    /// Wraps a token.
    #[must_use]
    pub fn new(token: SecretString) -> Self {
        Self { token }
    }
}

#[async_trait::async_trait]
impl CredentialsProvider for Pat {
    fn auth_type(&self) -> AuthType {
        AuthType::Pat
    }

    async fn token(&self) -> Result<SecretString, DatabricksError> {
        Ok(self.token.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_token() {
        let pat = Pat::new(SecretString::from("dapi-very-secret"));
        assert!(!format!("{pat:?}").contains("very-secret"));
    }
}
