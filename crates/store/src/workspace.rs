//! The real [`TokenSource`]: Lakebase credentials minted through `dbapp-databricks` as the app's
//! own identity (`shared/DESIGN.md`, "Who acts for whom"), from the Provisioned credential API
//! (`LAKEBASE_INSTANCE_NAME`) or the Autoscaling one (`LAKEBASE_ENDPOINT`).
//!
//! The store never mints as a user: user data is isolated by `user_id` in every statement, and
//! the Postgres login belongs to the app's service principal.

use async_trait::async_trait;
use dbapp_databricks::api::database::{DatabaseCredential, is_postgres_branch};
use dbapp_databricks::error::DatabricksError;
use dbapp_databricks::{Client, Workspace};

use crate::lakebase::{LakebaseError, LakebaseToken, TokenError, TokenSource};

/// Which Lakebase credential API to mint from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialTarget {
    /// A Provisioned instance (`POST /api/2.0/database/credentials`, `instance_names`).
    Instance(String),
    /// An Autoscaling endpoint `projects/{p}/branches/{b}/endpoints/{e}`, or a branch
    /// `projects/{p}/branches/{b}`, meaning its read-write endpoint, looked up at each mint
    /// (`POST /api/2.0/postgres/credentials`).
    Endpoint(String),
}

impl CredentialTarget {
    /// Reads `LAKEBASE_INSTANCE_NAME` (Provisioned), or `LAKEBASE_ENDPOINT` or
    /// `LAKEBASE_PROJECT` with `LAKEBASE_BRANCH` (Autoscaling: an endpoint, or a branch's
    /// read-write endpoint) through `lookup`; `None` when none is set.
    ///
    /// # Errors
    /// [`LakebaseError::Conflict`] when more than one is set (which one to mint from would be a
    /// guess), or a project without a branch or the reverse.
    pub fn from_env(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, LakebaseError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let branch = match (get("LAKEBASE_PROJECT"), get("LAKEBASE_BRANCH")) {
            (Some(project), Some(branch)) => Some(format!(
                "projects/{}/branches/{}",
                project.trim(),
                branch.trim()
            )),
            (None, None) => None,
            _ => {
                return Err(LakebaseError::Conflict {
                    variables: &["LAKEBASE_PROJECT", "LAKEBASE_BRANCH"],
                    reason: "set both (the Autoscaling project and branch whose read-write \
                             endpoint to use), or neither"
                        .into(),
                });
            }
        };
        let endpoint = match (get("LAKEBASE_ENDPOINT"), branch) {
            (Some(_), Some(_)) => {
                return Err(LakebaseError::Conflict {
                    variables: &["LAKEBASE_ENDPOINT", "LAKEBASE_PROJECT"],
                    reason: "both name an Autoscaling endpoint; set one".into(),
                });
            }
            (endpoint, branch) => endpoint.or(branch),
        };
        match (get("LAKEBASE_INSTANCE_NAME"), endpoint) {
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

impl CredentialTarget {
    /// Mints a credential for this target as `app` (the app's identity): from the instance, the
    /// endpoint, or the branch's read-write endpoint, looked up first.
    ///
    /// # Errors
    /// The workspace's: not found, permission denied, auth, transport.
    pub async fn mint(&self, app: &Workspace<'_>) -> Result<DatabaseCredential, DatabricksError> {
        match self {
            Self::Instance(name) => app.generate_database_credential(&[name.as_str()]).await,
            Self::Endpoint(endpoint) if is_postgres_branch(endpoint) => {
                let endpoint = app.find_postgres_endpoint(endpoint).await?.name;
                app.generate_postgres_credential(&endpoint, None).await
            }
            Self::Endpoint(endpoint) => app.generate_postgres_credential(endpoint, None).await,
        }
    }

    /// The read-write host to connect to: the instance's `read_write_dns`, the endpoint's (or
    /// the branch's read-write endpoint's) `status.hosts.host`; `None` while there is none yet.
    ///
    /// # Errors
    /// As [`CredentialTarget::mint`].
    pub async fn host(&self, app: &Workspace<'_>) -> Result<Option<String>, DatabricksError> {
        Ok(match self {
            Self::Instance(name) => app.get_database_instance(name).await?.read_write_dns,
            Self::Endpoint(endpoint) => app
                .find_postgres_endpoint(endpoint)
                .await?
                .host()
                .map(str::to_owned),
        })
    }
}

impl std::fmt::Display for CredentialTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Instance(name) => write!(f, "instance {name}"),
            Self::Endpoint(name) if is_postgres_branch(name) => {
                write!(f, "the read-write endpoint of branch {name}")
            }
            Self::Endpoint(name) => write!(f, "endpoint {name}"),
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
        let credential = self.target.mint(&self.client.as_app()).await?;
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

    #[test]
    fn a_project_and_branch_name_the_branch_whose_read_write_endpoint_is_used() {
        assert_eq!(
            CredentialTarget::from_env(env(&[
                ("LAKEBASE_PROJECT", "shop"),
                ("LAKEBASE_BRANCH", "dev-alice")
            ]))
            .unwrap(),
            Some(CredentialTarget::Endpoint(
                "projects/shop/branches/dev-alice".into()
            ))
        );
        for half in ["LAKEBASE_PROJECT", "LAKEBASE_BRANCH"] {
            assert!(CredentialTarget::from_env(env(&[(half, "x")])).is_err());
        }
        for other in ["LAKEBASE_ENDPOINT", "LAKEBASE_INSTANCE_NAME"] {
            assert!(
                CredentialTarget::from_env(env(&[
                    ("LAKEBASE_PROJECT", "shop"),
                    ("LAKEBASE_BRANCH", "main"),
                    (other, "x")
                ]))
                .is_err()
            );
        }
    }
}
