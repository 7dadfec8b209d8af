//! Databricks Apps (`shared/UPSTREAM-2.md` §4.1, `shared/UPSTREAM.md` §1.6): reading an app,
//! creating one, the masked update and its status, starting and stopping its compute, snapshot
//! deployments and their state, and requests to a deployed app through the Apps proxy.
//!
//! There is deliberately no `PATCH`: it is a full replacement that clears every field the body
//! omits, `user_api_scopes` included (UPSTREAM §1.6). Changes go through [`UpdateApp`], whose
//! mask must name each field it changes; a field the mask names and the app omits is cleared.
//!
//! Waiting is left to the caller (each poll is one call here): how long a deploy may take and
//! what to print meanwhile is the deploying tool's business. States are kept as the workspace
//! writes them, so a state added later is shown rather than refused.

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::id_segment;
use crate::client::Workspace;
use crate::error::{DatabricksError, ErrorKind};
use crate::http::Operation;

// The `api`/`operation` names of this module's calls (see [`Operation`]).
const GET_APP: Operation = Operation::new("apps", "get");
const CREATE_APP: Operation = Operation::new("apps", "create");
const UPDATE_APP: Operation = Operation::new("apps", "create_update");
const GET_UPDATE: Operation = Operation::new("apps", "get_update");
const START_APP: Operation = Operation::new("apps", "start");
const STOP_APP: Operation = Operation::new("apps", "stop");
const DEPLOY_APP: Operation = Operation::new("apps", "deploy");
const GET_DEPLOYMENT: Operation = Operation::new("apps", "get_deployment");
const APP_REQUEST: Operation = Operation::new("apps", "app_request");

/// A state with its explanation: `compute_status`, `app_status`, a deployment's or an update's
/// `status`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppState {
    /// e.g. `ACTIVE`, `STOPPED`, `RUNNING`, `SUCCEEDED`, `FAILED`.
    #[serde(default)]
    pub state: String,
    /// Why, when the workspace says.
    #[serde(default)]
    pub message: Option<String>,
}

/// An app, as far as deploying it needs.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct App {
    /// The app's name (lowercase letters, digits, `-`).
    pub name: String,
    /// Where the Apps proxy serves it.
    #[serde(default)]
    pub url: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// The compute: `ACTIVE`, `STARTING`, `STOPPED`, `STOPPING`, `UPDATING`, `DELETING`, `ERROR`.
    #[serde(default)]
    pub compute_status: AppState,
    /// The app: `DEPLOYING`, `RUNNING`, `CRASHED`, `UNAVAILABLE`.
    #[serde(default)]
    pub app_status: AppState,
    /// The user authorization scopes asked for.
    #[serde(default)]
    pub user_api_scopes: Vec<String>,
    /// The scopes the running compute's user tokens carry (they change on a restart).
    #[serde(default)]
    pub effective_user_api_scopes: Vec<String>,
    /// The resources granted to the app, as the workspace wrote them.
    #[serde(default)]
    pub resources: Vec<Value>,
    /// `MEDIUM`, `LARGE` or `XLARGE`.
    #[serde(default)]
    pub compute_size: Option<String>,
    /// Fewest replicas.
    #[serde(default)]
    pub compute_min_instances: Option<u32>,
    /// Most replicas.
    #[serde(default)]
    pub compute_max_instances: Option<u32>,
    /// The deployment the app runs.
    #[serde(default)]
    pub active_deployment: Option<AppDeployment>,
}

impl App {
    /// Whether the compute is up, so that a deployment can run on it.
    #[must_use]
    pub fn is_active(&self) -> bool {
        self.compute_status.state == "ACTIVE"
    }
}

/// The writable fields of an app that a deploying tool manages; a field left `None` (or an
/// empty list) is sent as absent, which a mask naming it turns into "clear it".
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[non_exhaustive]
pub struct AppSpec {
    /// The app's name.
    pub name: String,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Resources, each `{name, <kind>: {...}}` as the bundle declares it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Value>,
    /// User authorization scopes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub user_api_scopes: Vec<String>,
    /// `MEDIUM`, `LARGE` or `XLARGE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compute_size: Option<String>,
    /// Fewest replicas (set together with the most).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compute_min_instances: Option<u32>,
    /// Most replicas (set together with the fewest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compute_max_instances: Option<u32>,
}

impl AppSpec {
    /// An app of this name with nothing else set.
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }
}

/// The body of `POST /api/2.0/apps/{name}/update`: the app and the mask of the fields to change.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[non_exhaustive]
pub struct UpdateApp {
    /// The new values.
    pub app: AppSpec,
    /// Comma-separated field names, no spaces.
    pub update_mask: String,
}

impl UpdateApp {
    /// An update of exactly `fields` of `app`.
    ///
    /// # Errors
    /// [`ErrorKind::BadRequest`] for an empty list, `*` (every field, which would clear what
    /// the caller does not manage), or a name that is not a field name.
    pub fn new(app: AppSpec, fields: &[&str]) -> Result<Self, DatabricksError> {
        let bad = |why: String| Err(DatabricksError::new(ErrorKind::BadRequest, why));
        if fields.is_empty() {
            return bad("an update mask must name at least one field".to_owned());
        }
        if let Some(field) = fields
            .iter()
            .find(|f| f.is_empty() || !f.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        {
            return bad(format!(
                "{field:?} is not a field name an update mask may hold (`*` would reset every \
                 field this update does not mean to change)"
            ));
        }
        Ok(Self {
            app,
            update_mask: fields.join(","),
        })
    }
}

/// The answer of a masked update and of its status poll.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct AppUpdate {
    /// `NOT_UPDATED`, `IN_PROGRESS`, `SUCCEEDED` or `FAILED`.
    #[serde(default)]
    pub status: AppState,
}

/// The body of `POST /api/2.0/apps/{name}/deployments`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct CreateDeployment {
    /// The workspace folder with the app's files.
    pub source_code_path: String,
    /// Always `SNAPSHOT`: the files are copied when the deployment is made, so later uploads
    /// cannot change a running app behind its back.
    pub mode: &'static str,
}

impl CreateDeployment {
    /// A snapshot deployment of the files under `source_code_path`.
    #[must_use]
    pub fn snapshot(source_code_path: impl Into<String>) -> Self {
        Self {
            source_code_path: source_code_path.into(),
            mode: "SNAPSHOT",
        }
    }
}

/// A deployment of an app.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct AppDeployment {
    /// Its id.
    pub deployment_id: String,
    /// The folder it was made from.
    #[serde(default)]
    pub source_code_path: Option<String>,
    /// `IN_PROGRESS`, `SUCCEEDED`, `FAILED` or `CANCELLED`.
    #[serde(default)]
    pub status: AppState,
}

/// What a deployed app answered through the Apps proxy.
#[derive(Debug)]
#[non_exhaustive]
pub struct AppReply {
    /// The HTTP status (always a success: errors are [`DatabricksError`]s).
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body, read in full.
    pub body: Vec<u8>,
}

impl AppReply {
    /// The body as JSON.
    ///
    /// # Errors
    /// [`ErrorKind::Decode`] when it is not JSON, e.g. the sign-in page a proxy redirects to.
    pub fn json(&self) -> Result<Value, DatabricksError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            DatabricksError::new(
                ErrorKind::Decode,
                format!("the app answered something that is not JSON ({e}); a sign-in page?"),
            )
        })
    }
}

fn app_path(name: &str, rest: &str) -> Result<String, DatabricksError> {
    Ok(format!("/api/2.0/apps/{}{rest}", id_segment("app", name)?))
}

fn to_json<T: Serialize>(body: &T) -> Result<Value, DatabricksError> {
    serde_json::to_value(body).map_err(|e| {
        DatabricksError::new(
            ErrorKind::BadRequest,
            format!("cannot encode the body: {e}"),
        )
    })
}

impl Workspace<'_> {
    /// One app (`GET /api/2.0/apps/{name}`).
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when there is no such app; auth, transport and 5xx kinds.
    #[tracing::instrument(skip_all, fields(app = %name))]
    pub async fn get_app(&self, name: &str) -> Result<App, DatabricksError> {
        let path = app_path(name, "")?;
        self.get_json(self.call(GET_APP, Method::GET, &path), "app")
            .await
    }

    /// Creates an app (`POST /api/2.0/apps`); its compute starts.
    ///
    /// # Errors
    /// [`ErrorKind::Conflict`] for a name in use, [`ErrorKind::BadRequest`] for a field the
    /// workspace refuses; auth, transport and 5xx kinds.
    #[tracing::instrument(skip_all, fields(app = %app.name))]
    pub async fn create_app(&self, app: &AppSpec) -> Result<App, DatabricksError> {
        let call = self
            .call(CREATE_APP, Method::POST, "/api/2.0/apps")
            .json(to_json(app)?);
        self.get_json(call, "app").await
    }

    /// Changes the fields of `update.app` that its mask names (`POST …/{name}/update`); poll
    /// [`Workspace::get_app_update`] until it settles.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`], [`ErrorKind::BadRequest`]; auth, transport and 5xx kinds.
    #[tracing::instrument(skip_all, fields(app = %update.app.name, mask = %update.update_mask))]
    pub async fn update_app(&self, update: &UpdateApp) -> Result<AppUpdate, DatabricksError> {
        let path = app_path(&update.app.name, "/update")?;
        // The same update twice leaves the same app, so a lost answer may be asked again.
        let call = self
            .call(UPDATE_APP, Method::POST, &path)
            .json(to_json(update)?)
            .idempotent(true);
        self.get_json(call, "app update").await
    }

    /// The state of the app's last update (`GET …/{name}/update`).
    ///
    /// # Errors
    /// As [`Workspace::get_app`].
    #[tracing::instrument(skip_all, fields(app = %name))]
    pub async fn get_app_update(&self, name: &str) -> Result<AppUpdate, DatabricksError> {
        let path = app_path(name, "/update")?;
        self.get_json(self.call(GET_UPDATE, Method::GET, &path), "app update")
            .await
    }

    /// Starts the app's compute (`POST …/{name}/start`); it runs the last active deployment.
    ///
    /// # Errors
    /// As [`Workspace::get_app`].
    #[tracing::instrument(skip_all, fields(app = %name))]
    pub async fn start_app(&self, name: &str) -> Result<App, DatabricksError> {
        self.compute_call(START_APP, name, "/start").await
    }

    /// Stops the app's compute (`POST …/{name}/stop`); the app gets SIGTERM.
    ///
    /// # Errors
    /// As [`Workspace::get_app`].
    #[tracing::instrument(skip_all, fields(app = %name))]
    pub async fn stop_app(&self, name: &str) -> Result<App, DatabricksError> {
        self.compute_call(STOP_APP, name, "/stop").await
    }

    async fn compute_call(
        &self,
        operation: Operation,
        name: &str,
        rest: &str,
    ) -> Result<App, DatabricksError> {
        let path = app_path(name, rest)?;
        // Starting a started app (stopping a stopped one) changes nothing: safe to repeat.
        let call = self
            .call(operation, Method::POST, &path)
            .json(Value::Object(serde_json::Map::new()))
            .idempotent(true);
        self.get_json(call, "app").await
    }

    /// Deploys the app from a workspace folder (`POST …/{name}/deployments`); poll
    /// [`Workspace::get_app_deployment`] until it settles.
    ///
    /// # Errors
    /// [`ErrorKind::BadRequest`] when the compute is not active or another deployment is in
    /// progress; as [`Workspace::get_app`] otherwise.
    #[tracing::instrument(skip_all, fields(app = %name))]
    pub async fn deploy_app(
        &self,
        name: &str,
        deployment: &CreateDeployment,
    ) -> Result<AppDeployment, DatabricksError> {
        let path = app_path(name, "/deployments")?;
        let call = self
            .call(DEPLOY_APP, Method::POST, &path)
            .json(to_json(deployment)?);
        self.get_json(call, "app deployment").await
    }

    /// One deployment (`GET …/{name}/deployments/{id}`).
    ///
    /// # Errors
    /// As [`Workspace::get_app`].
    #[tracing::instrument(skip_all, fields(app = %name, deployment = %id))]
    pub async fn get_app_deployment(
        &self,
        name: &str,
        id: &str,
    ) -> Result<AppDeployment, DatabricksError> {
        let path = app_path(
            name,
            &format!("/deployments/{}", id_segment("deployment", id)?),
        )?;
        self.get_json(
            self.call(GET_DEPLOYMENT, Method::GET, &path),
            "app deployment",
        )
        .await
    }

    /// `GET <app url><path>` through the Apps proxy, with this view's token. A real workspace's
    /// proxy takes OAuth tokens only: a personal access token gets a redirect to the sign-in
    /// page, whose HTML [`AppReply::json`] refuses.
    ///
    /// # Errors
    /// [`ErrorKind::BadRequest`] for a URL that is not `http(s)://` or a path without a leading
    /// `/`; the app's or the proxy's error answers as for any call.
    #[tracing::instrument(skip_all, fields(path = %path))]
    pub async fn get_from_app(
        &self,
        app_url: &str,
        path: &str,
    ) -> Result<AppReply, DatabricksError> {
        let base = app_url.trim_end_matches('/');
        // The token goes along: plain HTTP only when the workspace itself is reached that way
        // (an emulator on loopback), never to an app of a real, HTTPS workspace.
        let plain_allowed = self
            .client()
            .config()
            .host()
            .as_str()
            .starts_with("http://");
        let secure = base.starts_with("https://") || (plain_allowed && base.starts_with("http://"));
        if !secure || !path.starts_with('/') {
            return Err(DatabricksError::new(
                ErrorKind::BadRequest,
                format!(
                    "cannot call {path:?} of an app at {app_url:?}: it needs an https:// URL \
                     (http:// only for a workspace reached over http://) and an absolute path"
                ),
            ));
        }
        let call = self.call_url(APP_REQUEST, Method::GET, format!("{base}{path}"));
        let response = self.send(call).await?;
        Ok(AppReply {
            status: response.status,
            headers: response.headers,
            body: response.body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_update_names_exactly_its_fields_and_never_everything() {
        // Arrange
        let mut app = AppSpec::new("dbapp");
        app.user_api_scopes = vec!["sql".to_owned()];

        // Act
        let update = UpdateApp::new(app, &["description", "user_api_scopes"]).unwrap();

        // Assert: the description is absent from the body, so the mask clears it.
        assert_eq!(
            serde_json::to_value(&update).unwrap(),
            json!({"app": {"name": "dbapp", "user_api_scopes": ["sql"]},
                   "update_mask": "description,user_api_scopes"})
        );
        for bad in [&[][..], &["*"], &["a, b"], &[""]] {
            let error = UpdateApp::new(AppSpec::new("x"), bad).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::BadRequest, "{bad:?}");
        }
    }

    #[test]
    fn an_app_reads_with_missing_fields_and_unknown_states() {
        let app: App = serde_json::from_value(json!({
            "name": "dbapp",
            "compute_status": {"state": "ACTIVE"},
            "app_status": {"state": "SOMETHING_NEW", "message": "m"},
            "active_deployment": {"deployment_id": "d1", "status": {"state": "SUCCEEDED"}}
        }))
        .unwrap();
        assert!(app.is_active());
        assert_eq!(app.app_status.state, "SOMETHING_NEW");
        assert_eq!(app.active_deployment.unwrap().deployment_id, "d1");
        let bare: App = serde_json::from_value(json!({"name": "x"})).unwrap();
        assert!(!bare.is_active());
        assert!(bare.user_api_scopes.is_empty());
    }

    #[test]
    fn deployments_are_snapshots() {
        assert_eq!(
            serde_json::to_value(CreateDeployment::snapshot("/Workspace/Users/a/app")).unwrap(),
            json!({"source_code_path": "/Workspace/Users/a/app", "mode": "SNAPSHOT"})
        );
    }
}
