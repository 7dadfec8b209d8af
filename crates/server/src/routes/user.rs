//! The signed-in user: `/api/user/auth/status` (public, never an error), `/api/user/me` and
//! `/api/user/me/workspace` (also the kind of store the app keeps its data in, for the Overview).

use axum::Json;
use axum::extract::State;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AUTH_METHOD, Caller};
use crate::error::ErrorBody;
use crate::state::AppState;
use crate::storage::StoreKind;

/// Whether the request carries a working user token.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthStatus {
    /// The token resolved to an identity.
    pub authenticated: bool,
    /// Always `obo` (on-behalf-of the user).
    #[schema(example = "obo")]
    pub auth_method: &'static str,
    /// A user token was forwarded.
    pub has_user_identity: bool,
    /// The identity's user name, when authenticated.
    #[schema(required)]
    pub user_id: Option<String>,
}

// Borrowed from the cached identity: built to be serialised, never stored.
/// The caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserInfo<'a> {
    /// SCIM `userName`: an e-mail for people, an application id for service principals.
    pub user_id: &'a str,
    /// Primary e-mail.
    #[schema(required)]
    pub email: Option<&'a str>,
    /// User name (as `user_id`).
    pub username: &'a str,
    /// Display name.
    #[schema(required)]
    pub display_name: Option<&'a str>,
    /// Whether the principal is active.
    pub active: bool,
    /// Workspace groups.
    pub groups: &'a [String],
    /// Member of an admin group (`DBAPP_ADMIN_GROUPS`).
    pub is_admin: bool,
    /// Always `obo`.
    #[schema(example = "obo")]
    pub auth_method: &'static str,
}

/// The workspace the app runs against.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceInfo {
    /// Workspace URL.
    pub host: String,
    /// Numeric workspace id, when known.
    #[schema(required)]
    pub workspace_id: Option<String>,
    /// The workspace's name: no workspace API tells it to its users, so this is the host's
    /// name (with its port when it has one), e.g. `adb-1234.5.azuredatabricks.net`.
    pub name: String,
}

/// Where the app keeps its own data (preferences, histories, metrics).
#[derive(Debug, Serialize, ToSchema)]
pub struct StoreInfo {
    /// The kind of store.
    pub kind: StoreKind,
    /// Whom the store is reached as: always `app` (the app's service principal, or the
    /// process's own file); every row is scoped to the user it belongs to.
    #[schema(example = "app")]
    pub runs_as: &'static str,
}

/// The caller and their workspace.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserWorkspace<'a> {
    /// As `/api/user/me`.
    pub user: UserInfo<'a>,
    /// The workspace.
    pub workspace: WorkspaceInfo,
    /// The app's store.
    pub store: StoreInfo,
}

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_auth_status))
        .routes(routes!(get_me))
        .routes(routes!(get_me_workspace))
}

fn user_info<'a>(app: &AppState, caller: &'a Caller) -> UserInfo<'a> {
    let identity = caller.identity();
    UserInfo {
        user_id: &identity.user_name,
        email: identity.email.as_deref(),
        username: &identity.user_name,
        display_name: identity.display_name.as_deref(),
        active: identity.active,
        groups: &identity.groups,
        is_admin: caller.is_admin(&app.settings.dbapp.admin_groups),
        auth_method: AUTH_METHOD,
    }
}

/// Whether the request is authenticated; a bad token gives `false`, never an error.
#[utoipa::path(get, path = "/api/user/auth/status", tag = "user", responses(
    (status = 200, body = AuthStatus),
))]
async fn get_auth_status(State(app): State<AppState>, mut parts: Parts) -> Json<AuthStatus> {
    let has_user_identity = crate::auth::token_from(&parts).is_ok();
    let caller = if has_user_identity {
        <Caller as axum::extract::FromRequestParts<AppState>>::from_request_parts(&mut parts, &app)
            .await
            .ok()
    } else {
        None
    };
    Json(AuthStatus {
        authenticated: caller.is_some(),
        auth_method: AUTH_METHOD,
        has_user_identity,
        user_id: caller.map(|c| c.identity().user_name.clone()),
    })
}

/// The caller's identity, from SCIM Me with their token.
#[utoipa::path(get, path = "/api/user/me", tag = "user", security(("user_token" = [])), responses(
    (status = 200, body = UserInfo<'_>),
    (status = 401, body = ErrorBody, description = "AUTH_MISSING, AUTH_INVALID, AUTH_EXPIRED, IDENTITY_MISMATCH"),
    (status = 429, body = ErrorBody, description = "AUTH_RATE_LIMITED"),
    (status = 502, body = ErrorBody, description = "AUTH_USER_IDENTITY_FAILED"),
))]
async fn get_me(State(app): State<AppState>, caller: Caller) -> Response {
    Json(user_info(&app, &caller)).into_response()
}

/// The caller and the workspace.
#[utoipa::path(get, path = "/api/user/me/workspace", tag = "user", security(("user_token" = [])), responses(
    (status = 200, body = UserWorkspace<'_>),
    (status = 401, body = ErrorBody),
))]
async fn get_me_workspace(State(app): State<AppState>, caller: Caller) -> Response {
    let host = app.databricks.config().host().as_str().to_owned();
    let name = host_name(&host);
    let workspace_id = caller
        .identity()
        .workspace_id
        .clone()
        .or_else(|| app.databricks.config().workspace_id().map(str::to_owned));
    Json(UserWorkspace {
        user: user_info(&app, &caller),
        workspace: WorkspaceInfo {
            host,
            workspace_id,
            name,
        },
        store: StoreInfo {
            kind: app.settings.store_kind,
            runs_as: "app",
        },
    })
    .into_response()
}

/// The host of a workspace URL, with its port when it has one: `https://x.cloud.databricks.com/`
/// gives `x.cloud.databricks.com`, `http://127.0.0.1:8080` gives `127.0.0.1:8080`. (Its first
/// label alone would name an IP address `127`.)
fn host_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if authority.is_empty() {
        url.to_owned()
    } else {
        authority.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::host_name;

    #[test]
    fn a_host_name_is_the_whole_host_never_its_first_label() {
        assert_eq!(
            host_name("https://adb-123.4.azuredatabricks.net/"),
            "adb-123.4.azuredatabricks.net"
        );
        assert_eq!(host_name("http://127.0.0.1:41234"), "127.0.0.1:41234");
        assert_eq!(host_name("http://[::1]:8080/path"), "[::1]:8080");
        assert_eq!(
            host_name("x.cloud.databricks.com"),
            "x.cloud.databricks.com"
        );
    }
}
