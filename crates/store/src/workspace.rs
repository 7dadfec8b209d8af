//! The real [`TokenSource`]: Lakebase credentials minted through `dbapp-databricks` as the app's
//! own identity (`shared/DESIGN.md`, "Who acts for whom"), from the Provisioned credential API
//! (`LAKEBASE_INSTANCE_NAME`) or the Autoscaling one (`LAKEBASE_ENDPOINT`).
//!
//! The store never mints as a user: user data is isolated by `user_id` in every statement, and
//! the Postgres login belongs to the app's service principal.

use async_trait::async_trait;
use dbapp_databricks::Client;

use crate::lakebase::{LakebaseError, LakebaseToken, TokenError, TokenSource};

/// Which Lakebase credential API to mint from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialTarget {
    /// A Provisioned instance (`POST /api/2.0/database/credentials`, `instance_names`).
    Instance(String),
    /// An Autoscaling endpoint `projects/{p}/branches/{b}/endpoints/{e}`
    /// (`POST /api/2.0/postgres/credentials`).
    Endpoint(String),
}

impl CredentialTarget {
    /// Reads `LAKEBASE_INSTANCE_NAME` or `LAKEBASE_ENDPOINT` through `lookup`; `None` when
    /// neither is set.
    ///
    /// # Errors
    /// [`LakebaseError::InvalidVariable`] when both are set: which one to mint from would be a
    /// guess.
    pub fn from_env(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, LakebaseError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        match (get("LAKEBASE_INSTANCE_NAME"), get("LAKEBASE_ENDPOINT")) {
            (Some(_), Some(_)) => Err(LakebaseError::Conflict {
                variables: &["LAKEBASE_INSTANCE_NAME", "LAKEBASE_ENDPOINT"],
                reason: "both are set; set the instance (Provisioned) or the endpoint \
                         (Autoscaling), not both"
                    .into(),
            }),
            (Some(instance), None) => Ok(Some(Self::Instance(instance))),
            (None, Some(endpoint)) => Ok(Some(Self::Endpoint(endpoint))),
            (None, None) => Ok(None),
        }
    }
}

/// Mints credentials for `target` with the app's credentials of `client`.
#[derive(Debug, Clone)]
pub struct WorkspaceTokenSource {
    client: Client,
    target: CredentialTarget,
}

impl WorkspaceTokenSource {
    /// A source minting from `target` as `client`'s app identity.
    pub fn new(client: Client, target: CredentialTarget) -> Self {
        Self { client, target }
    }
}

#[async_trait]
impl TokenSource for WorkspaceTokenSource {
    async fn fetch_token(&self) -> Result<LakebaseToken, TokenError> {
        let app = self.client.as_app();
        let credential = match &self.target {
            CredentialTarget::Instance(name) => {
                app.generate_database_credential(&[name.as_str()]).await?
            }
            CredentialTarget::Endpoint(endpoint) => {
                app.generate_postgres_credential(endpoint, None).await?
            }
        };
        Ok(LakebaseToken {
            token: credential.token,
            expires_at: credential.expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn the_target_comes_from_one_of_two_variables() {
        assert_eq!(
            CredentialTarget::from_env(env(&[("LAKEBASE_INSTANCE_NAME", "inst")])).unwrap(),
            Some(CredentialTarget::Instance("inst".into()))
        );
        assert_eq!(
            CredentialTarget::from_env(env(&[(
                "LAKEBASE_ENDPOINT",
                "projects/p/branches/b/endpoints/e"
            )]))
            .unwrap(),
            Some(CredentialTarget::Endpoint(
                "projects/p/branches/b/endpoints/e".into()
            ))
        );
        assert_eq!(
            CredentialTarget::from_env(env(&[("LAKEBASE_ENDPOINT", " ")])).unwrap(),
            None
        );
        assert!(
            CredentialTarget::from_env(env(&[
                ("LAKEBASE_INSTANCE_NAME", "a"),
                ("LAKEBASE_ENDPOINT", "b")
            ]))
            .is_err()
        );
    }
}
