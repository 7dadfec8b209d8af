//! The Apps API over HTTP (`shared/UPSTREAM-2.md` §4.1), on the model of [`crate::apps`]:
//!
//! - `POST /api/2.0/apps[?no_compute=true]`, `GET /api/2.0/apps` (paged, `space` filter),
//!   `GET`/`PATCH`/`DELETE /api/2.0/apps/{name}`;
//! - `POST …/{name}/start`, `POST …/{name}/stop`;
//! - `POST`/`GET …/{name}/update` (the masked update and its status);
//! - `POST`/`GET …/{name}/deployments` (paged), `GET …/{name}/deployments/{id}`.
//!
//! Any principal may use every route: app permissions (`CAN_USE`, `CAN_MANAGE`) are not
//! modelled. A deployment's `source_code_path` is looked up in the workspace tree
//! ([`crate::workspace`]) when it is made.
//!
//! When the emulator runs apps ([`crate::runtime`]), create also opens the app's proxy (its
//! `url`), a deployment runs a snapshot of its source code path, stop and start stop and run the
//! processes, delete stops them; those transitions are then held until the processes settle
//! them instead of following `apps_transition_ms`.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{Duration, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::apps::{HELD, NewApp};
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::routes::{JsonBody, QueryParams, clock_delay, flag, page_of};
use crate::state::{Emulator, lock};
use crate::workspace::{WorkspacePath, WorkspaceTree};

pub(super) fn router() -> Router<Emulator> {
    Router::new()
        .route("/api/2.0/apps", get(list_apps).post(create_app))
        .route(
            "/api/2.0/apps/{name}",
            get(get_app).patch(replace_app).delete(delete_app),
        )
        .route("/api/2.0/apps/{name}/start", post(start_app))
        .route("/api/2.0/apps/{name}/stop", post(stop_app))
        .route(
            "/api/2.0/apps/{name}/update",
            get(get_app_update).post(update_app),
        )
        .route(
            "/api/2.0/apps/{name}/deployments",
            get(list_deployments).post(deploy_app),
        )
        .route("/api/2.0/apps/{name}/deployments/{id}", get(get_deployment))
}

/// Every query parameter of the API, as text: booleans arrive as `true`/`True`.
#[derive(Debug, Default, Deserialize)]
struct AppsQuery {
    page_size: Option<i64>,
    page_token: Option<String>,
    space: Option<String>,
    no_compute: Option<String>,
}

/// How long compute, deployment and update transitions take (`apps_transition_ms`).
fn delay(emulator: &Emulator) -> Duration {
    clock_delay(emulator.settings().apps_transition_ms)
}

async fn create_app(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    QueryParams(query): QueryParams<AppsQuery>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let new = NewApp {
        caller: &principal.user_name,
        no_compute: flag("no_compute", query.no_compute.as_deref())?,
        workspace_id: emulator.fixture.workspace.workspace_id,
    };
    let delay = delay(&emulator);
    let proxy = match emulator.runtime() {
        Some(_) => Some(crate::proxy::bind().await.map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                format!("Cannot open the app's proxy: {e}"),
            )
        })?),
        None => None,
    };
    let app = lock(&emulator.apps).create(&body, &new, Utc::now(), delay)?;
    let (Some(runtime), Some(listener)) = (emulator.runtime(), proxy) else {
        return Ok(Json(app));
    };
    let name = app["name"].as_str().unwrap_or_default().to_owned();
    let url = listener
        .local_addr()
        .map(|addr| format!("http://{addr}"))
        .unwrap_or_default();
    let task = tokio::spawn(crate::proxy::serve(
        listener,
        emulator.clone(),
        name.clone(),
    ));
    runtime.register(&name, task);
    let mut apps = lock(&emulator.apps);
    apps.set_url(&name, url);
    apps.get(&name, Utc::now()).map(Json)
}

async fn list_apps(
    State(emulator): State<Emulator>,
    Authenticated(_): Authenticated,
    QueryParams(query): QueryParams<AppsQuery>,
) -> Result<Json<Value>, ApiError> {
    let apps = lock(&emulator.apps).list(query.space.as_deref(), Utc::now());
    let page = page_of(
        "apps",
        apps,
        query.page_size,
        query.page_token.as_deref(),
        &emulator.settings(),
    )?;
    Ok(Json(page))
}

async fn get_app(
    State(emulator): State<Emulator>,
    Authenticated(_): Authenticated,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    lock(&emulator.apps).get(&name, Utc::now()).map(Json)
}

async fn replace_app(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    lock(&emulator.apps)
        .replace(&name, &body, &principal.user_name, Utc::now())
        .map(Json)
}

async fn delete_app(
    State(emulator): State<Emulator>,
    Authenticated(_): Authenticated,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let app = lock(&emulator.apps).delete(&name, Utc::now())?;
    if let Some(runtime) = emulator.runtime() {
        runtime.remove(&name);
    }
    Ok(Json(app))
}

async fn start_app(
    State(emulator): State<Emulator>,
    Authenticated(_): Authenticated,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let runtime = emulator.runtime().filter(|r| r.can_restart(&name));
    let (app, restart) = {
        let mut apps = lock(&emulator.apps);
        // Running the active deployment again holds the compute in STARTING until it listens.
        let restart = runtime.is_some() && !apps.compute_running(&name)?;
        let delay = if restart { HELD } else { delay(&emulator) };
        (apps.start(&name, Utc::now(), delay)?, restart)
    };
    if let Some(runtime) = runtime.filter(|_| restart) {
        runtime.restart(&emulator, &name);
    }
    Ok(Json(app))
}

async fn stop_app(
    State(emulator): State<Emulator>,
    Authenticated(_): Authenticated,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    // Processes to stop hold the compute in STOPPING until they have exited.
    let runtime = emulator.runtime().filter(|r| r.is_active(&name));
    let delay = if runtime.is_some() {
        HELD
    } else {
        delay(&emulator)
    };
    let app = lock(&emulator.apps).stop(&name, Utc::now(), delay)?;
    if let Some(runtime) = runtime {
        runtime.stop(&emulator, &name);
    }
    Ok(Json(app))
}

async fn update_app(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let delay = delay(&emulator);
    lock(&emulator.apps)
        .update(&name, &body, &principal.user_name, Utc::now(), delay)
        .map(Json)
}

async fn get_app_update(
    State(emulator): State<Emulator>,
    Authenticated(_): Authenticated,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    lock(&emulator.apps).get_update(&name, Utc::now()).map(Json)
}

async fn deploy_app(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let runtime = emulator.runtime();
    // With a runtime, the processes end the deployment, not the clock.
    let delay = if runtime.is_some() {
        HELD
    } else {
        delay(&emulator)
    };
    let (deployment, files) = {
        // Workspace before apps, and nowhere the other way round: the two locks cannot deadlock.
        let workspace = lock(&emulator.workspace);
        let deployment = lock(&emulator.apps).deploy(
            &name,
            &body,
            &principal.user_name,
            Utc::now(),
            delay,
            |path| source_problem(&workspace, path),
        )?;
        // The snapshot is taken now: uploads after this call do not change what runs.
        let files = deployment["source_code_path"]
            .as_str()
            .and_then(WorkspacePath::parse)
            .map(|path| workspace.snapshot(&path));
        (deployment, files)
    };
    let Some(runtime) = runtime else {
        return Ok(Json(deployment));
    };
    if deployment["status"]["state"] != "IN_PROGRESS" {
        return Ok(Json(deployment));
    }
    match files {
        Some(files) => runtime.deploy(&emulator, &name, &deployment, files),
        None => {
            let id = deployment["deployment_id"].as_str().unwrap_or_default();
            lock(&emulator.apps).settle_deployment(
                &name,
                id,
                Some(
                    "Failed to deploy: the emulator runs only deployments from a workspace \
                      source_code_path, not from Git."
                        .into(),
                ),
                Utc::now(),
            );
        }
    }
    Ok(Json(deployment))
}

/// Why `path` holds no app source code, as the deployment's `status.message`; `None` when it
/// is a workspace directory.
fn source_problem(workspace: &WorkspaceTree, path: &str) -> Option<String> {
    let parsed = WorkspacePath::parse(path);
    match parsed
        .as_ref()
        .map(|p| (workspace.is_directory(p), workspace.get(p).is_ok()))
    {
        Some((true, _)) => None,
        Some((false, true)) => Some(format!(
            "Failed to deploy: source code path {path} is not a directory."
        )),
        _ => Some(format!(
            "Failed to deploy: source code path {path} does not exist. Upload the app's files \
             there (for example with the Workspace API) before deploying."
        )),
    }
}

async fn list_deployments(
    State(emulator): State<Emulator>,
    Authenticated(_): Authenticated,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<AppsQuery>,
) -> Result<Json<Value>, ApiError> {
    let deployments = lock(&emulator.apps).deployments(&name, Utc::now())?;
    let page = page_of(
        "app_deployments",
        deployments,
        query.page_size,
        query.page_token.as_deref(),
        &emulator.settings(),
    )?;
    Ok(Json(page))
}

async fn get_deployment(
    State(emulator): State<Emulator>,
    Authenticated(_): Authenticated,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    lock(&emulator.apps)
        .deployment(&name, &id, Utc::now())
        .map(Json)
}
