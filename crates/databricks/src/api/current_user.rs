//! SCIM Me: `GET /api/2.0/preview/scim/v2/Me` (UPSTREAM §4.1), the identity behind a token.

use reqwest::Method;
use serde::Deserialize;

use crate::client::Workspace;
use crate::error::{DatabricksError, ErrorKind};
use crate::http::Operation;

// The `api`/`operation` names of this module's calls (see [`Operation`]).
const ME: Operation = Operation::new("scim", "me");

/// The principal a token belongs to (user or service principal).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CurrentUser {
    /// SCIM id.
    #[serde(default)]
    pub id: String,
    /// User name: an e-mail for people, the application id for service principals.
    pub user_name: String,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Whether the principal is active.
    #[serde(default = "yes")]
    pub active: bool,
    /// E-mail addresses.
    #[serde(default)]
    pub emails: Vec<Email>,
    /// Groups the principal belongs to.
    #[serde(default)]
    pub groups: Vec<Group>,
    /// Entitlements such as `workspace-access`.
    #[serde(default)]
    pub entitlements: Vec<Entitlement>,
    /// Application id, for service principals.
    #[serde(default)]
    pub application_id: Option<String>,
    /// The workspace id, from the `X-Databricks-Org-Id` response header.
    #[serde(skip)]
    pub workspace_id: Option<String>,
}

fn yes() -> bool {
    true
}

/// A SCIM e-mail entry.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct Email {
    /// The address.
    pub value: String,
    /// Whether it is the primary address.
    #[serde(default)]
    pub primary: bool,
}

/// A SCIM group membership.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct Group {
    /// Group name.
    pub display: String,
    /// Group id.
    #[serde(default)]
    pub value: String,
}

/// A SCIM entitlement.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct Entitlement {
    /// e.g. `workspace-access`.
    pub value: String,
}

impl CurrentUser {
    /// The primary e-mail, else the first one, else the user name when it looks like one.
    #[must_use]
    pub fn email(&self) -> Option<&str> {
        self.emails
            .iter()
            .find(|e| e.primary)
            .or_else(|| self.emails.first())
            .map(|e| e.value.as_str())
            .or_else(|| {
                self.user_name
                    .contains('@')
                    .then_some(self.user_name.as_str())
            })
    }

    /// Whether the principal is in a group of this name.
    #[must_use]
    pub fn in_group(&self, name: &str) -> bool {
        self.groups.iter().any(|g| g.display == name)
    }

    /// Whether this is a service principal.
    #[must_use]
    pub fn is_service_principal(&self) -> bool {
        self.application_id.is_some()
    }
}

impl Workspace<'_> {
    /// The identity behind this view's token (SCIM Me).
    ///
    /// # Errors
    /// [`crate::ErrorKind::Unauthenticated`], [`crate::ErrorKind::InvalidToken`] or
    /// [`crate::ErrorKind::TokenExpired`] when the token is refused; transport and 5xx kinds
    /// after retries.
    #[tracing::instrument(skip_all, fields(auth_type = %self.auth_type()))]
    pub async fn me(&self) -> Result<CurrentUser, DatabricksError> {
        let call = self.call(ME, Method::GET, "/api/2.0/preview/scim/v2/Me");
        let response = self.send(call).await?;
        let mut user: CurrentUser = response.json("SCIM Me")?;
        // The user name is the identity everything else keys on; an answer without one names
        // nobody, and must not become an identity.
        if user.user_name.trim().is_empty() {
            return Err(DatabricksError::new(
                ErrorKind::Decode,
                "SCIM Me answered without a userName",
            ));
        }
        user.workspace_id = response
            .headers
            .get("x-databricks-org-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(user)
    }
}
