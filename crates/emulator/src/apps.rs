//! Databricks Apps' control plane (`shared/UPSTREAM-2.md` §4, `shared/UPSTREAM.md` §1.6 and
//! §4.6): apps, their compute, their deployments, their configuration updates, and the service
//! principal each app gets.
//!
//! This module owns the model, its validation, its state machines and the JSON shapes;
//! `routes::apps` maps HTTP onto it, and `state` asks it for the apps' service principals, which
//! authenticate like the fixture's (OAuth M2M at `/oidc/v1/token`, then any workspace API). The
//! whole model sits behind one `std::sync::Mutex` in the shared state: every call is a few vector
//! operations with no `.await`.
//!
//! States follow the clock, with no background task: a change records when it settles, and every
//! read computes the state at `now`. One delay, `apps_transition_ms`, separates
//! - compute `STARTING` from `ACTIVE` and `STOPPING` from `STOPPED`;
//! - a deployment's `IN_PROGRESS` from `SUCCEEDED` (the app is `DEPLOYING` meanwhile, then
//!   `RUNNING`);
//! - an update's `IN_PROGRESS` from `SUCCEEDED`.
//!
//! Choices the wire contract leaves open (each is listed in `docs/emulator.md`):
//! - `PATCH /api/2.0/apps/{name}` replaces every writable field ([`CONFIG_FIELDS`]): what the
//!   body omits is cleared, `user_api_scopes` included (`shared/UPSTREAM.md` §1.6). The masked
//!   update (`POST …/update`) changes only the fields its mask names, at once;
//! - `effective_user_api_scopes` are the IAM defaults plus `user_api_scopes` as they were when the
//!   compute last started, so a scope change shows only after a stop and a start;
//! - a deployment needs `ACTIVE` compute and no other deployment in progress; it succeeds when
//!   its `source_code_path` is a workspace directory when it is made (the caller checks, see
//!   [`Apps::deploy`]) and fails with a `status.message` that says why otherwise; a failed
//!   deployment never becomes the active one. Git deployments (no path) always succeed;
//! - `stop` keeps `active_deployment`, which `start` runs again.
//!
//! When the emulator runs apps (`runtime`), transitions that wait for real processes are
//! [`HELD`]: they last until the runtime settles them ([`Apps::settle_deployment`],
//! [`Apps::settle_compute`]), and a replica that dies marks the app `CRASHED`
//! ([`Apps::set_crash`]).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};

use crate::autoscaling::rfc3339;
use crate::error::ApiError;
use crate::state::Principal;

/// Most apps the emulator keeps, the real per-workspace limit on AWS and Azure
/// (`shared/UPSTREAM.md` §1.5); one more is refused.
const MAX_APPS: usize = 100;
/// Most deployments one app keeps; past it the oldest one that is neither active nor pending
/// is forgotten, so a long development loop never hits a wall.
const MAX_DEPLOYMENTS_PER_APP: usize = 100;
/// App names: lowercase letters, digits and `-`, of this many characters.
const NAME_LENGTH: std::ops::RangeInclusive<usize> = 2..=30;
/// The scopes every app's user token has (`shared/UPSTREAM.md` §1.6), sorted as the real
/// service lists them.
const DEFAULT_SCOPES: [&str; 2] = ["iam.access-control:read", "iam.current-user:read"];
const COMPUTE_SIZES: [&str; 3] = ["MEDIUM", "LARGE", "XLARGE"];
const DEFAULT_COMPUTE_SIZE: &str = "MEDIUM";
const DEPLOYMENT_MODES: [&str; 2] = ["SNAPSHOT", "AUTO_SYNC"];
/// The fields a client sets: what create takes, `PATCH` replaces and an update mask may name
/// (the fields of the SDK's `AppUpdate`).
const CONFIG_FIELDS: [&str; 11] = [
    "budget_policy_id",
    "compute_max_instances",
    "compute_min_instances",
    "compute_size",
    "description",
    "forward_user_access_token",
    "git_repository",
    "resources",
    "telemetry_export_destinations",
    "usage_policy_id",
    "user_api_scopes",
];
/// The resource kinds of `shared/UPSTREAM-2.md` §4.2 (plus `app`, which the SDK knows); a
/// resource carries exactly one.
const RESOURCE_KINDS: [&str; 10] = [
    "app",
    "database",
    "experiment",
    "genie_space",
    "job",
    "postgres",
    "secret",
    "serving_endpoint",
    "sql_warehouse",
    "uc_securable",
];
/// The delay of a transition that only the runtime ends: long enough never to pass on its own,
/// short enough that `now + HELD` stays representable.
pub(crate) const HELD: Duration = Duration::days(36_500);
/// First SCIM id of app service principals, far from the fixture's `7000…` ids.
const FIRST_SP_ID: u64 = 7_500_000_000_000_000;

/// The OAuth client credentials of an app's own service principal, as
/// [`EmulatorHandle::app_credentials`](crate::EmulatorHandle::app_credentials) and
/// `GET /_emulator/apps/{name}/credentials` report them: what the app's container gets as
/// `DATABRICKS_CLIENT_ID` and `DATABRICKS_CLIENT_SECRET`.
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct AppCredentials {
    /// The service principal's application id (`service_principal_client_id`).
    pub client_id: String,
    /// Its OAuth secret, which the Apps API never returns.
    pub client_secret: String,
}

impl std::fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .finish()
    }
}

/// Every app, in creation order.
#[derive(Debug, Default)]
pub(crate) struct Apps {
    apps: Vec<App>,
    /// Service principals made so far, for their SCIM ids (never reused until a reset).
    principals_made: u64,
}

#[derive(Debug)]
struct App {
    name: String,
    id: String,
    url: String,
    creator: String,
    updater: String,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    space: Option<String>,
    /// The [`CONFIG_FIELDS`] the client set, as it sent them.
    config: Map<String, Value>,
    service_principal: Arc<Principal>,
    /// The OAuth secret of the service principal, which the Apps API never returns: the app's
    /// container gets it as `DATABRICKS_CLIENT_SECRET`, tests through the control API.
    client_secret: String,
    oauth2_app_client_id: String,
    oauth2_app_integration_id: String,
    compute: Compute,
    /// What the compute got when it last started; `None` until it first starts.
    effective_scopes: Option<Vec<String>>,
    deployments: Vec<Deployment>,
    update: Option<Update>,
    /// Why the app's processes are down when they should run (the runtime's report); cleared
    /// when they run again.
    crash: Option<String>,
}

/// Where the compute is heading and when it gets there.
#[derive(Debug, Clone, Copy)]
struct Compute {
    running: bool,
    settles_at: DateTime<Utc>,
}

impl Compute {
    fn state(self, now: DateTime<Utc>) -> (&'static str, &'static str) {
        match (self.running, now < self.settles_at) {
            (true, true) => ("STARTING", "App compute is starting."),
            (true, false) => ("ACTIVE", "App compute is running."),
            (false, true) => ("STOPPING", "App compute is stopping."),
            (false, false) => ("STOPPED", "App compute is stopped."),
        }
    }

    fn active(self, now: DateTime<Utc>) -> bool {
        self.running && now >= self.settles_at
    }
}

#[derive(Debug, Clone)]
struct Deployment {
    id: String,
    /// The request's fields that are kept as sent: `source_code_path`, `mode`, `command`,
    /// `env_vars`, `git_source`.
    spec: Map<String, Value>,
    artifacts_path: String,
    creator: String,
    create_time: DateTime<Utc>,
    done_at: DateTime<Utc>,
    /// Why the deployment fails once done; `None` when it succeeds.
    failure: Option<String>,
}

impl Deployment {
    fn done(&self, now: DateTime<Utc>) -> bool {
        now >= self.done_at
    }

    /// Done and succeeded: a deployment the app may run.
    fn succeeded(&self, now: DateTime<Utc>) -> bool {
        self.done(now) && self.failure.is_none()
    }

    fn json(&self, now: DateTime<Utc>) -> Value {
        let (state, message, update_time) = if self.done(now) {
            match &self.failure {
                Some(reason) => ("FAILED", reason.as_str(), self.done_at),
                None => ("SUCCEEDED", "App started successfully", self.done_at),
            }
        } else {
            (
                "IN_PROGRESS",
                "Deployment is in progress.",
                self.create_time,
            )
        };
        let mut body = Value::Object(self.spec.clone());
        body["deployment_id"] = self.id.clone().into();
        body["status"] = json!({"state": state, "message": message});
        body["deployment_artifacts"] = json!({"source_code_path": self.artifacts_path});
        body["creator"] = self.creator.clone().into();
        body["create_time"] = rfc3339(self.create_time).into();
        body["update_time"] = rfc3339(update_time).into();
        body
    }
}

/// The last masked update of an app.
#[derive(Debug, Clone)]
struct Update {
    /// The configuration it produced.
    config: Map<String, Value>,
    done_at: DateTime<Utc>,
}

/// What a create carries besides the body.
#[derive(Debug)]
pub(crate) struct NewApp<'a> {
    pub(crate) caller: &'a str,
    pub(crate) no_compute: bool,
    /// The workspace id, part of the app's URL.
    pub(crate) workspace_id: u64,
}

/// What the runtime needs to run an app's deployment, read in one lock.
#[derive(Debug, Clone)]
pub(crate) struct LaunchView {
    pub(crate) credentials: AppCredentials,
    pub(crate) resources: Vec<Value>,
    /// `compute_max_instances`: how many replicas run.
    pub(crate) replicas: usize,
    pub(crate) url: String,
}

/// What the Apps proxy needs to know about an app, read in one lock.
#[derive(Debug, Clone)]
pub(crate) struct ProxyView {
    /// Compute `ACTIVE` with no deployment in progress: the app should be serving.
    pub(crate) should_serve: bool,
    /// The scopes the app's user tokens carry, when beyond the IAM defaults; `None` when the
    /// proxy forwards no user token.
    pub(crate) user_scopes: Option<Vec<String>>,
}

fn not_found(name: &str) -> ApiError {
    ApiError::not_found(
        "RESOURCE_DOES_NOT_EXIST",
        format!("App with name {name} does not exist or is deleted."),
    )
}

fn invalid_state(message: String) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::BAD_REQUEST,
        "INVALID_STATE",
        message,
    )
}

/// Checks an app name: lowercase letters, digits and `-`, 2 to 30 characters.
fn validate_name(name: Option<&Value>) -> Result<String, ApiError> {
    let name = match name {
        Some(Value::String(n)) if !n.is_empty() => n,
        _ => return Err(ApiError::bad_request("Missing required field: name")),
    };
    let chars_ok = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !chars_ok || !NAME_LENGTH.contains(&name.len()) {
        return Err(ApiError::bad_request(format!(
            "Invalid app name {name:?}: it must be {} to {} characters of lowercase letters, \
             digits and hyphens.",
            NAME_LENGTH.start(),
            NAME_LENGTH.end()
        )));
    }
    Ok(name.clone())
}

fn string_list(field: &str, value: &Value) -> Result<(), ApiError> {
    let ok = value
        .as_array()
        .is_some_and(|items| items.iter().all(Value::is_string));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "Invalid {field} {value}: expected a list of strings."
        )))
    }
}

/// The writable fields of a request body, checked; other fields (output-only ones a client
/// echoes back from a `GET`, unknown ones) are ignored, as the real service does.
fn config_of(body: &Value) -> Result<Map<String, Value>, ApiError> {
    let mut config = Map::new();
    for field in CONFIG_FIELDS {
        if let Some(value) = body.get(field).filter(|v| !v.is_null()) {
            config.insert(field.to_owned(), value.clone());
        }
    }
    validate_config(&config)?;
    Ok(config)
}

fn validate_config(config: &Map<String, Value>) -> Result<(), ApiError> {
    if let Some(size) = config.get("compute_size")
        && !size.as_str().is_some_and(|s| COMPUTE_SIZES.contains(&s))
    {
        return Err(ApiError::bad_request(format!(
            "Invalid compute_size {size}: expected one of {COMPUTE_SIZES:?}."
        )));
    }
    if let Some(description) = config.get("description").filter(|d| !d.is_string()) {
        return Err(ApiError::bad_request(format!(
            "Invalid description {description}: expected a string."
        )));
    }
    if let Some(scopes) = config.get("user_api_scopes") {
        string_list("user_api_scopes", scopes)?;
    }
    let min = config.get("compute_min_instances");
    let max = config.get("compute_max_instances");
    if min.is_some() != max.is_some() {
        return Err(ApiError::bad_request(
            "compute_min_instances and compute_max_instances must be set together.",
        ));
    }
    if let (Some(min), Some(max)) = (min, max) {
        match (min.as_u64(), max.as_u64()) {
            (Some(lo), Some(hi)) if 1 <= lo && lo <= hi => {}
            _ => {
                return Err(ApiError::bad_request(format!(
                    "Invalid compute instances {min}..{max}: expected whole numbers with \
                     1 <= compute_min_instances <= compute_max_instances."
                )));
            }
        }
    }
    if let Some(resources) = config.get("resources") {
        let items = resources.as_array().ok_or_else(|| {
            ApiError::bad_request(format!("Invalid resources {resources}: expected a list."))
        })?;
        for resource in items {
            validate_resource(resource)?;
        }
    }
    Ok(())
}

/// A resource has a `name` and exactly one kind (`sql_warehouse`, `database`, …).
fn validate_resource(resource: &Value) -> Result<(), ApiError> {
    if !resource.get("name").is_some_and(Value::is_string) {
        return Err(ApiError::bad_request(format!(
            "Invalid resource {resource}: 'name' is required."
        )));
    }
    let kinds: Vec<&str> = RESOURCE_KINDS
        .iter()
        .copied()
        .filter(|k| resource.get(*k).is_some_and(Value::is_object))
        .collect();
    if kinds.len() != 1 {
        return Err(ApiError::bad_request(format!(
            "Invalid resource {resource}: expected exactly one of {}.",
            RESOURCE_KINDS.join(", ")
        )));
    }
    Ok(())
}

/// The IAM defaults plus the requested scopes, sorted and without repeats.
fn effective_scopes(config: &Map<String, Value>) -> Vec<String> {
    let requested = config
        .get("user_api_scopes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str);
    let mut scopes: Vec<String> = DEFAULT_SCOPES
        .into_iter()
        .chain(requested)
        .map(str::to_owned)
        .collect();
    scopes.sort();
    scopes.dedup();
    scopes
}

fn random_hex(len: usize) -> String {
    uuid::Uuid::new_v4().simple().to_string()[..len].to_owned()
}

impl App {
    /// The newest deployment that succeeded: what the app runs.
    fn active_deployment(&self, now: DateTime<Utc>) -> Option<&Deployment> {
        self.deployments.iter().rev().find(|d| d.succeeded(now))
    }

    fn json(&self, now: DateTime<Utc>) -> Value {
        let (compute_state, compute_message) = self.compute.state(now);
        let active = self.active_deployment(now);
        let pending = self.deployments.iter().find(|d| !d.done(now));
        let (app_state, app_message) = if !self.compute.active(now) {
            ("UNAVAILABLE", "App compute is not running.")
        } else if pending.is_some() {
            ("DEPLOYING", "App is being deployed.")
        } else if let Some(crash) = &self.crash {
            ("CRASHED", crash.as_str())
        } else if active.is_some() {
            ("RUNNING", "App is running.")
        } else {
            (
                "UNAVAILABLE",
                "App has not been deployed yet. Deploy source code to run it.",
            )
        };
        let mut body = Value::Object(self.config.clone());
        let sp = &self.service_principal;
        for (key, value) in [
            ("name", json!(self.name)),
            ("id", json!(self.id)),
            ("url", json!(self.url)),
            ("creator", json!(self.creator)),
            ("updater", json!(self.updater)),
            ("create_time", json!(rfc3339(self.create_time))),
            ("update_time", json!(rfc3339(self.update_time))),
            (
                "compute_status",
                json!({"state": compute_state, "message": compute_message,
                       "active_instances": u8::from(compute_state == "ACTIVE")}),
            ),
            (
                "app_status",
                json!({"state": app_state, "message": app_message}),
            ),
            ("service_principal_client_id", json!(sp.user_name)),
            (
                "service_principal_id",
                json!(sp.id.parse::<u64>().unwrap_or_default()),
            ),
            ("service_principal_name", json!(sp.display_name)),
            ("oauth2_app_client_id", json!(self.oauth2_app_client_id)),
            (
                "oauth2_app_integration_id",
                json!(self.oauth2_app_integration_id),
            ),
        ] {
            body[key] = value;
        }
        if !self.config.contains_key("compute_size") {
            body["compute_size"] = DEFAULT_COMPUTE_SIZE.into();
        }
        if let Some(space) = &self.space {
            body["space"] = space.clone().into();
        }
        if let Some(scopes) = &self.effective_scopes {
            body["effective_user_api_scopes"] = json!(scopes);
        }
        if let Some(active) = active {
            body["active_deployment"] = active.json(now);
            if let Some(path) = active.spec.get("source_code_path") {
                body["default_source_code_path"] = path.clone();
            }
        }
        if let Some(pending) = pending {
            body["pending_deployment"] = pending.json(now);
        }
        body
    }

    /// Starts the compute unless it is already running or starting; it gets the scopes
    /// configured now.
    fn start(&mut self, now: DateTime<Utc>, delay: Duration) {
        if self.compute.running {
            return;
        }
        self.compute = Compute {
            running: true,
            settles_at: now + delay,
        };
        self.effective_scopes = Some(effective_scopes(&self.config));
    }

    fn stop(&mut self, now: DateTime<Utc>, delay: Duration) {
        if self.compute.running {
            self.compute = Compute {
                running: false,
                settles_at: now + delay,
            };
        }
    }

    fn update_json(&self, now: DateTime<Utc>) -> Value {
        let Some(update) = &self.update else {
            return json!({"status": {"state": "NOT_UPDATED", "message": "The app has not been updated."}});
        };
        let mut body = Value::Object(update.config.clone());
        body["status"] = if now < update.done_at {
            json!({"state": "IN_PROGRESS", "message": "The update is in progress."})
        } else {
            json!({"state": "SUCCEEDED", "message": "The update succeeded."})
        };
        body
    }
}

impl Apps {
    fn app(&self, name: &str) -> Result<&App, ApiError> {
        self.apps
            .iter()
            .find(|a| a.name == name)
            .ok_or_else(|| not_found(name))
    }

    fn app_mut(&mut self, name: &str) -> Result<&mut App, ApiError> {
        self.apps
            .iter_mut()
            .find(|a| a.name == name)
            .ok_or_else(|| not_found(name))
    }

    /// The service principal of an app, by its client id.
    pub(crate) fn service_principal(&self, client_id: &str) -> Option<Arc<Principal>> {
        self.apps
            .iter()
            .map(|a| &a.service_principal)
            .find(|sp| sp.user_name == client_id)
            .cloned()
    }

    /// The service principal whose OAuth client credentials these are.
    pub(crate) fn authenticate_client(
        &self,
        client_id: &str,
        client_secret: &str,
    ) -> Option<Arc<Principal>> {
        self.apps
            .iter()
            .find(|a| {
                a.service_principal.user_name == client_id && a.client_secret == client_secret
            })
            .map(|a| a.service_principal.clone())
    }

    /// The OAuth client credentials an app's container would get.
    pub(crate) fn credentials(&self, name: &str) -> Option<AppCredentials> {
        let app = self.app(name).ok()?;
        Some(AppCredentials {
            client_id: app.service_principal.user_name.clone(),
            client_secret: app.client_secret.clone(),
        })
    }

    /// Creates an app with its own service principal; its compute starts unless `no_compute`.
    pub(crate) fn create(
        &mut self,
        body: &Value,
        new: &NewApp<'_>,
        now: DateTime<Utc>,
        delay: Duration,
    ) -> Result<Value, ApiError> {
        let name = validate_name(body.get("name"))?;
        let config = config_of(body)?;
        let space = match body.get("space") {
            None | Some(Value::Null) => None,
            Some(Value::String(space)) => Some(space.clone()),
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "Invalid space {other}: expected a string."
                )));
            }
        };
        if self.app(&name).is_ok() {
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "RESOURCE_ALREADY_EXISTS",
                format!("An app with name {name} already exists."),
            ));
        }
        if self.apps.len() >= MAX_APPS {
            return Err(ApiError::limit_exceeded(format!(
                "The workspace has the most apps it may have ({MAX_APPS}); delete one first."
            )));
        }
        self.principals_made += 1;
        let service_principal = Arc::new(Principal {
            id: (FIRST_SP_ID + self.principals_made).to_string(),
            user_name: uuid::Uuid::new_v4().to_string(),
            display_name: format!("app-{} {name}", random_hex(6)),
            groups: Vec::new(),
            active: true,
            is_service_principal: true,
        });
        let mut app = App {
            url: format!("https://{name}-{}.aws.databricksapps.com", new.workspace_id),
            name: name.clone(),
            id: uuid::Uuid::new_v4().to_string(),
            creator: new.caller.to_owned(),
            updater: new.caller.to_owned(),
            create_time: now,
            update_time: now,
            space,
            config,
            service_principal,
            client_secret: format!("dose{}", random_hex(32)),
            oauth2_app_client_id: uuid::Uuid::new_v4().to_string(),
            oauth2_app_integration_id: uuid::Uuid::new_v4().to_string(),
            compute: Compute {
                running: false,
                settles_at: now,
            },
            effective_scopes: None,
            deployments: Vec::new(),
            update: None,
            crash: None,
        };
        if !new.no_compute {
            app.start(now, delay);
        }
        let body = app.json(now);
        self.apps.push(app);
        Ok(body)
    }

    pub(crate) fn get(&self, name: &str, now: DateTime<Utc>) -> Result<Value, ApiError> {
        Ok(self.app(name)?.json(now))
    }

    /// Every app (of `space`, when given), in creation order.
    pub(crate) fn list(&self, space: Option<&str>, now: DateTime<Utc>) -> Vec<Value> {
        self.apps
            .iter()
            .filter(|a| space.is_none_or(|s| a.space.as_deref() == Some(s)))
            .map(|a| a.json(now))
            .collect()
    }

    /// `PATCH`: a full replacement of the writable fields; what the body omits is cleared.
    pub(crate) fn replace(
        &mut self,
        name: &str,
        body: &Value,
        caller: &str,
        now: DateTime<Utc>,
    ) -> Result<Value, ApiError> {
        if let Some(sent) = body.get("name").filter(|n| !n.is_null())
            && sent != name
        {
            return Err(ApiError::bad_request(format!(
                "The app name cannot be changed: the path names {name}, the body {sent}."
            )));
        }
        let config = config_of(body)?;
        let app = self.app_mut(name)?;
        app.config = config;
        app.updater = caller.to_owned();
        app.update_time = now;
        Ok(app.json(now))
    }

    /// `POST …/update`: changes the fields `update_mask` names (`*`: all of [`CONFIG_FIELDS`]);
    /// a named field the app object omits is cleared.
    pub(crate) fn update(
        &mut self,
        name: &str,
        body: &Value,
        caller: &str,
        now: DateTime<Utc>,
        delay: Duration,
    ) -> Result<Value, ApiError> {
        let mask = body
            .get("update_mask")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let paths: Vec<&str> = if mask == "*" {
            CONFIG_FIELDS.to_vec()
        } else {
            mask.split(',').filter(|p| !p.is_empty()).collect()
        };
        if paths.is_empty() {
            return Err(ApiError::bad_request("Field 'update_mask' is required."));
        }
        if let Some(unknown) = paths.iter().find(|p| !CONFIG_FIELDS.contains(p)) {
            return Err(ApiError::bad_request(format!(
                "Invalid update_mask path '{unknown}': expected one of {}.",
                CONFIG_FIELDS.join(", ")
            )));
        }
        let sent = config_of(body.get("app").unwrap_or(&Value::Null))?;
        let app = self.app_mut(name)?;
        let mut config = app.config.clone();
        for path in paths {
            match sent.get(path) {
                Some(value) => config.insert(path.to_owned(), value.clone()),
                None => config.remove(path),
            };
        }
        validate_config(&config)?;
        app.config = config.clone();
        app.updater = caller.to_owned();
        app.update_time = now;
        app.update = Some(Update {
            config,
            done_at: now + delay,
        });
        Ok(app.update_json(now))
    }

    pub(crate) fn get_update(&self, name: &str, now: DateTime<Utc>) -> Result<Value, ApiError> {
        Ok(self.app(name)?.update_json(now))
    }

    /// Deletes an app and its service principal, whose tokens stop working.
    pub(crate) fn delete(&mut self, name: &str, now: DateTime<Utc>) -> Result<Value, ApiError> {
        let index = self
            .apps
            .iter()
            .position(|a| a.name == name)
            .ok_or_else(|| not_found(name))?;
        Ok(self.apps.remove(index).json(now))
    }

    pub(crate) fn start(
        &mut self,
        name: &str,
        now: DateTime<Utc>,
        delay: Duration,
    ) -> Result<Value, ApiError> {
        let app = self.app_mut(name)?;
        app.start(now, delay);
        Ok(app.json(now))
    }

    pub(crate) fn stop(
        &mut self,
        name: &str,
        now: DateTime<Utc>,
        delay: Duration,
    ) -> Result<Value, ApiError> {
        let app = self.app_mut(name)?;
        app.stop(now, delay);
        Ok(app.json(now))
    }

    /// Starts a deployment from `source_code_path` (the active deployment's when absent).
    /// `check_source` says why a path holds no source code (`None`: it does); the deployment
    /// then ends `FAILED` with that message.
    pub(crate) fn deploy(
        &mut self,
        name: &str,
        body: &Value,
        caller: &str,
        now: DateTime<Utc>,
        delay: Duration,
        check_source: impl FnOnce(&str) -> Option<String>,
    ) -> Result<Value, ApiError> {
        let app = self.app_mut(name)?;
        if !app.compute.active(now) {
            return Err(invalid_state(format!(
                "Cannot deploy app {name}: its compute is {}. Start the app first.",
                app.compute.state(now).0
            )));
        }
        if let Some(pending) = app.deployments.iter().find(|d| !d.done(now)) {
            return Err(invalid_state(format!(
                "Cannot deploy app {name}: deployment {} is in progress.",
                pending.id
            )));
        }
        let mut spec = Map::new();
        for field in [
            "source_code_path",
            "mode",
            "command",
            "env_vars",
            "git_source",
        ] {
            if let Some(value) = body.get(field).filter(|v| !v.is_null()) {
                spec.insert(field.to_owned(), value.clone());
            }
        }
        let default_path = app
            .active_deployment(now)
            .and_then(|d| d.spec.get("source_code_path"))
            .cloned();
        match spec.get("source_code_path") {
            Some(Value::String(path)) if path.starts_with('/') => {}
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "Invalid source_code_path {other}: expected an absolute workspace path."
                )));
            }
            None if spec.contains_key("git_source") => {}
            None => {
                let path = default_path.ok_or_else(|| {
                    ApiError::bad_request(
                        "Missing source_code_path: the app has no earlier deployment to reuse.",
                    )
                })?;
                spec.insert("source_code_path".into(), path);
            }
        }
        let mode = spec
            .entry("mode")
            .or_insert_with(|| DEPLOYMENT_MODES[0].into());
        if !mode.as_str().is_some_and(|m| DEPLOYMENT_MODES.contains(&m)) {
            return Err(ApiError::bad_request(format!(
                "Invalid mode {mode}: expected one of {DEPLOYMENT_MODES:?}."
            )));
        }
        if let Some(command) = spec.get("command") {
            string_list("command", command)?;
        }
        if let Some(env) = spec.get("env_vars") {
            let ok = env.as_array().is_some_and(|vars| {
                vars.iter()
                    .all(|v| v.get("name").is_some_and(Value::is_string))
            });
            if !ok {
                return Err(ApiError::bad_request(format!(
                    "Invalid env_vars {env}: expected a list of objects with a name."
                )));
            }
        }
        let failure = spec
            .get("source_code_path")
            .and_then(Value::as_str)
            .and_then(check_source);
        let id = random_hex(32);
        // A deployment that fails before anything runs is over at once, even when the
        // runtime would otherwise end it.
        let done_at = if failure.is_some() && delay >= HELD {
            now
        } else {
            now + delay
        };
        let deployment = Deployment {
            artifacts_path: format!(
                "/Workspace/Users/{}/src/{id}",
                app.service_principal.user_name
            ),
            id,
            spec,
            creator: caller.to_owned(),
            create_time: now,
            done_at,
            failure,
        };
        let body = deployment.json(now);
        if app.deployments.len() >= MAX_DEPLOYMENTS_PER_APP {
            // The oldest that is not the active one goes; none is pending (checked above).
            let active = app.active_deployment(now).map(|d| d.id.clone());
            if let Some(oldest) = app
                .deployments
                .iter()
                .position(|d| Some(&d.id) != active.as_ref())
            {
                app.deployments.remove(oldest);
            }
        }
        app.deployments.push(deployment);
        app.update_time = now;
        Ok(body)
    }

    /// Replaces the made-up Apps URL with the one the emulator serves the app at (its proxy's).
    pub(crate) fn set_url(&mut self, name: &str, url: String) {
        if let Ok(app) = self.app_mut(name) {
            app.url = url;
        }
    }

    /// Whether the app's compute is running or starting.
    pub(crate) fn compute_running(&self, name: &str) -> Result<bool, ApiError> {
        Ok(self.app(name)?.compute.running)
    }

    /// Ends a [`HELD`] deployment now: `SUCCEEDED` (and active) without a failure, else
    /// `FAILED` with it as `status.message`. A success clears a crash report.
    /// Does nothing when the app or the deployment is gone (deleted, or reset, meanwhile) or
    /// the deployment is already over.
    pub(crate) fn settle_deployment(
        &mut self,
        name: &str,
        id: &str,
        failure: Option<String>,
        now: DateTime<Utc>,
    ) {
        let Ok(app) = self.app_mut(name) else {
            return;
        };
        let succeeded = failure.is_none();
        let Some(deployment) = app
            .deployments
            .iter_mut()
            .find(|d| d.id == id && !d.done(now))
        else {
            return;
        };
        deployment.done_at = now;
        deployment.failure = failure;
        if succeeded {
            app.crash = None;
        }
        app.update_time = now;
    }

    /// Ends a [`HELD`] compute transition now (`STARTING` → `ACTIVE`, `STOPPING` → `STOPPED`).
    pub(crate) fn settle_compute(&mut self, name: &str, now: DateTime<Utc>) {
        if let Ok(app) = self.app_mut(name) {
            app.compute.settles_at = app.compute.settles_at.min(now);
        }
    }

    /// Records why the app's processes are down (`Some`) or that they run again (`None`).
    pub(crate) fn set_crash(&mut self, name: &str, crash: Option<String>) {
        if let Ok(app) = self.app_mut(name) {
            app.crash = crash;
        }
    }

    /// What the runtime needs to run the app.
    pub(crate) fn launch_view(&self, name: &str) -> Option<LaunchView> {
        let app = self.app(name).ok()?;
        let replicas = app
            .config
            .get("compute_max_instances")
            .and_then(Value::as_u64)
            .unwrap_or(1);
        Some(LaunchView {
            credentials: AppCredentials {
                client_id: app.service_principal.user_name.clone(),
                client_secret: app.client_secret.clone(),
            },
            resources: app
                .config
                .get("resources")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            replicas: usize::try_from(replicas).unwrap_or(1).max(1),
            url: app.url.clone(),
        })
    }

    /// What the proxy needs to know about the app.
    pub(crate) fn proxy_view(&self, name: &str, now: DateTime<Utc>) -> Option<ProxyView> {
        let app = self.app(name).ok()?;
        let pending = app.deployments.iter().any(|d| !d.done(now));
        let user_scopes = app
            .effective_scopes
            .as_ref()
            .filter(|scopes| scopes.iter().any(|s| !DEFAULT_SCOPES.contains(&s.as_str())))
            .cloned();
        Some(ProxyView {
            should_serve: app.compute.active(now) && !pending,
            user_scopes,
        })
    }

    /// An app's deployments, in creation order.
    pub(crate) fn deployments(
        &self,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Value>, ApiError> {
        Ok(self
            .app(name)?
            .deployments
            .iter()
            .map(|d| d.json(now))
            .collect())
    }

    pub(crate) fn deployment(
        &self,
        name: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Value, ApiError> {
        self.app(name)?
            .deployments
            .iter()
            .find(|d| d.id == id)
            .map(|d| d.json(now))
            .ok_or_else(|| {
                ApiError::not_found(
                    "RESOURCE_DOES_NOT_EXIST",
                    format!("Deployment {id} of app {name} does not exist."),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercase_letters_digits_and_dashes_of_2_to_30() {
        for good in ["ab", "my-app-2", &"a".repeat(30)] {
            assert!(validate_name(Some(&json!(good))).is_ok(), "{good}");
        }
        for bad in ["a", "My-App", "my_app", "my app", &"a".repeat(31), ""] {
            assert!(validate_name(Some(&json!(bad))).is_err(), "{bad}");
        }
        assert!(validate_name(None).is_err());
    }

    #[test]
    fn effective_scopes_are_the_defaults_plus_the_requested_sorted() {
        let config =
            config_of(&json!({"user_api_scopes": ["sql", "iam.current-user:read"]})).unwrap();
        assert_eq!(
            effective_scopes(&config),
            ["iam.access-control:read", "iam.current-user:read", "sql"]
        );
        assert_eq!(effective_scopes(&Map::new()), DEFAULT_SCOPES);
    }
}
