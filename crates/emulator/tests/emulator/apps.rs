//! The Apps control plane (`shared/UPSTREAM-2.md` §4): apps created, read, listed, changed
//! (replaced without a mask, or masked), started, stopped and deleted over HTTP; deployments;
//! the clock behind compute, deployment and update states; scopes that reach the compute only
//! on a restart; each app's own service principal; every refusal; the caps; reset.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{ALICE, BOB, TestEmulator, send, spawn};

const API: &str = "/api/2.0/apps";
const DEFAULT_SCOPES: [&str; 2] = ["iam.access-control:read", "iam.current-user:read"];

impl TestEmulator {
    async fn apps(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let request = self.request(method, &format!("{API}{path}"), ALICE);
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        send(request).await
    }

    async fn apps_post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.apps(Method::POST, path, Some(body)).await
    }

    /// Creates an app as alice, asserting success.
    async fn create_app(&self, body: Value) -> Value {
        let (status, app) = self.apps(Method::POST, "", Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{app}");
        app
    }

    async fn app(&self, name: &str) -> Value {
        let (status, app) = self.apps(Method::GET, &format!("/{name}"), None).await;
        assert_eq!(status, StatusCode::OK, "{app}");
        app
    }

    /// Reads `path` until `done` holds; states follow a clock, so there is no signal to wait on.
    async fn poll_until(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let (_, body) = self.apps(Method::GET, path, None).await;
            if done(&body) {
                return body;
            }
            assert!(tokio::time::Instant::now() < deadline, "{path}: {body}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn slow_transitions(&self) {
        self.handle
            .update_settings(|s| s.apps_transition_ms = 300)
            .unwrap();
    }
}

fn compute(app: &Value) -> &str {
    app["compute_status"]["state"].as_str().unwrap_or_default()
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("a list: {value}"))
        .iter()
        .map(|v| v.as_str().expect("a string"))
        .collect()
}

#[tokio::test]
async fn an_app_is_created_read_listed_and_deleted() {
    // Arrange
    let te = spawn().await;
    let resources = json!([{"name": "warehouse",
        "sql_warehouse": {"id": "dev-warehouse", "permission": "CAN_USE"}}]);

    // Act
    let created = te
        .create_app(
            json!({"name": "my-app", "description": "Demo", "space": "team",
            "user_api_scopes": ["sql"], "resources": resources}),
        )
        .await;
    te.create_app(json!({"name": "other-app"})).await;
    let read = te.app("my-app").await;
    let (_, all) = te.apps(Method::GET, "", None).await;
    let (_, in_space) = te.apps(Method::GET, "?space=team", None).await;
    let (deleted_status, deleted) = te.apps(Method::DELETE, "/my-app", None).await;
    let (gone_status, gone) = te.apps(Method::GET, "/my-app", None).await;

    // Assert
    assert_eq!(created, read);
    assert_eq!(read["name"], "my-app");
    assert_eq!(read["description"], "Demo");
    assert_eq!(read["creator"], "alice@example.com");
    assert_eq!(read["compute_size"], "MEDIUM");
    assert_eq!(read["resources"], resources);
    assert!(read["url"].as_str().unwrap().starts_with("https://my-app-"));
    assert_eq!(compute(&read), "ACTIVE");
    assert_eq!(read["app_status"]["state"], "UNAVAILABLE");
    assert!(read.get("active_deployment").is_none());
    assert_eq!(strings(&read["user_api_scopes"]), ["sql"]);
    assert_eq!(
        strings(&read["effective_user_api_scopes"]),
        [DEFAULT_SCOPES[0], DEFAULT_SCOPES[1], "sql"]
    );
    let client_id = read["service_principal_client_id"].as_str().unwrap();
    assert_eq!(client_id.len(), 36, "a UUID: {client_id}");
    assert!(read["service_principal_id"].as_u64().is_some());
    assert!(
        read["service_principal_name"]
            .as_str()
            .unwrap()
            .ends_with(" my-app")
    );
    let names: Vec<_> = all["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["name"])
        .collect();
    assert_eq!(names, ["my-app", "other-app"]);
    assert_eq!(in_space["apps"].as_array().unwrap().len(), 1);
    assert_eq!(deleted_status, StatusCode::OK);
    assert_eq!(deleted["name"], "my-app");
    assert_eq!(gone_status, StatusCode::NOT_FOUND);
    assert_eq!(gone["error_code"], "RESOURCE_DOES_NOT_EXIST");
}

#[tokio::test]
async fn compute_starts_and_stops_on_the_clock() {
    // Arrange
    let te = spawn().await;
    te.slow_transitions().await;

    // Act
    let created = te.create_app(json!({"name": "clocked"})).await;
    let active = te.poll_until("/clocked", |a| compute(a) == "ACTIVE").await;
    let (_, stopping) = te
        .apps(Method::POST, "/clocked/stop", Some(json!({})))
        .await;
    let stopped = te.poll_until("/clocked", |a| compute(a) == "STOPPED").await;
    let (_, starting) = te
        .apps(Method::POST, "/clocked/start", Some(json!({})))
        .await;
    let restarted = te.poll_until("/clocked", |a| compute(a) == "ACTIVE").await;
    let (_, idle) = te
        .apps(
            Method::POST,
            "?no_compute=true",
            Some(json!({"name": "idle"})),
        )
        .await;

    // Assert
    assert_eq!(compute(&created), "STARTING");
    assert_eq!(created["compute_status"]["active_instances"], 0);
    assert_eq!(active["compute_status"]["active_instances"], 1);
    assert_eq!(compute(&stopping), "STOPPING");
    assert_eq!(stopped["app_status"]["state"], "UNAVAILABLE");
    assert_eq!(compute(&starting), "STARTING");
    assert_eq!(compute(&restarted), "ACTIVE");
    assert_eq!(compute(&idle), "STOPPED");
    assert!(idle.get("effective_user_api_scopes").is_none(), "{idle}");
}

#[tokio::test]
async fn a_deployment_runs_in_progress_then_succeeds_and_the_app_runs_it() {
    // Arrange
    let te = spawn().await;
    te.slow_transitions().await;
    te.create_app(json!({"name": "deployed"})).await;
    te.poll_until("/deployed", |a| compute(a) == "ACTIVE").await;
    let source = "/Workspace/Users/alice@example.com/deployed";
    te.upload_app(source).await;

    // Act
    let (status, pending) = te
        .apps(
            Method::POST,
            "/deployed/deployments",
            Some(json!({"source_code_path": source, "mode": "AUTO_SYNC"})),
        )
        .await;
    let id = pending["deployment_id"].as_str().unwrap().to_owned();
    let deploying = te.app("deployed").await;
    let (busy, busy_body) = te
        .apps(
            Method::POST,
            "/deployed/deployments",
            Some(json!({"source_code_path": source})),
        )
        .await;
    let finished = te
        .poll_until(&format!("/deployed/deployments/{id}"), |d| {
            d["status"]["state"] == "SUCCEEDED"
        })
        .await;
    let running = te.app("deployed").await;
    let (_, again) = te
        .apps(Method::POST, "/deployed/deployments", Some(json!({})))
        .await;
    let (_, list) = te.apps(Method::GET, "/deployed/deployments", None).await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{pending}");
    assert_eq!(pending["status"]["state"], "IN_PROGRESS");
    assert_eq!(pending["source_code_path"], source);
    assert_eq!(pending["mode"], "AUTO_SYNC");
    assert_eq!(pending["creator"], "alice@example.com");
    assert!(
        pending["deployment_artifacts"]["source_code_path"]
            .as_str()
            .unwrap()
            .ends_with(&id)
    );
    assert_eq!(deploying["app_status"]["state"], "DEPLOYING");
    assert_eq!(
        deploying["pending_deployment"]["deployment_id"],
        id.as_str()
    );
    assert!(deploying.get("active_deployment").is_none());
    assert_eq!(busy, StatusCode::BAD_REQUEST);
    assert_eq!(busy_body["error_code"], "INVALID_STATE");
    assert_eq!(finished["deployment_id"], id.as_str());
    assert_eq!(running["app_status"]["state"], "RUNNING");
    assert_eq!(running["active_deployment"]["deployment_id"], id.as_str());
    assert_eq!(running["default_source_code_path"], source);
    assert!(running.get("pending_deployment").is_none());
    assert_eq!(again["source_code_path"], source, "the last path is reused");
    assert_eq!(again["mode"], "SNAPSHOT");
    let ids: Vec<_> = list["app_deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["deployment_id"].clone())
        .collect();
    assert_eq!(ids, [json!(id), again["deployment_id"].clone()]);
}

#[tokio::test]
async fn stopping_keeps_the_active_deployment_and_a_stopped_app_takes_no_deployment() {
    // Arrange
    let te = spawn().await;
    te.create_app(json!({"name": "paused"})).await;
    te.upload_app("/Workspace/p").await;
    let (_, deployment) = te
        .apps(
            Method::POST,
            "/paused/deployments",
            Some(json!({"source_code_path": "/Workspace/p"})),
        )
        .await;

    // Act
    let (_, stopped) = te.apps(Method::POST, "/paused/stop", Some(json!({}))).await;
    let (refused, body) = te
        .apps(
            Method::POST,
            "/paused/deployments",
            Some(json!({"source_code_path": "/Workspace/p"})),
        )
        .await;
    let (_, started) = te
        .apps(Method::POST, "/paused/start", Some(json!({})))
        .await;

    // Assert
    assert_eq!(compute(&stopped), "STOPPED");
    assert_eq!(stopped["app_status"]["state"], "UNAVAILABLE");
    assert_eq!(
        stopped["active_deployment"]["deployment_id"],
        deployment["deployment_id"]
    );
    assert_eq!(refused, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_code"], "INVALID_STATE");
    assert_eq!(started["app_status"]["state"], "RUNNING");
}

#[tokio::test]
async fn patch_without_a_mask_clears_what_it_omits_and_a_masked_update_keeps_it() {
    // Arrange
    let te = spawn().await;
    te.create_app(json!({"name": "scoped", "description": "Before",
        "user_api_scopes": ["sql"], "compute_size": "LARGE"}))
        .await;

    // Act
    let (masked_status, masked) = te
        .apps(
            Method::POST,
            "/scoped/update",
            Some(
                json!({"app": {"description": "Masked", "user_api_scopes": []},
                "update_mask": "description"}),
            ),
        )
        .await;
    let (_, update) = te.apps(Method::GET, "/scoped/update", None).await;
    let after_mask = te.app("scoped").await;
    let (patch_status, patched) = te
        .apps(
            Method::PATCH,
            "/scoped",
            Some(json!({"name": "scoped", "description": "Replaced"})),
        )
        .await;

    // Assert
    assert_eq!(masked_status, StatusCode::OK, "{masked}");
    assert_eq!(masked["description"], "Masked");
    assert_eq!(update["status"]["state"], "SUCCEEDED");
    assert_eq!(after_mask["description"], "Masked");
    assert_eq!(strings(&after_mask["user_api_scopes"]), ["sql"]);
    assert_eq!(after_mask["compute_size"], "LARGE");
    assert_eq!(patch_status, StatusCode::OK, "{patched}");
    assert_eq!(patched["description"], "Replaced");
    assert!(patched.get("user_api_scopes").is_none(), "{patched}");
    assert_eq!(patched["compute_size"], "MEDIUM", "back to the default");
    assert_eq!(patched["updater"], "alice@example.com");
}

#[tokio::test]
async fn scope_changes_reach_the_compute_only_after_a_stop_and_a_start() {
    // Arrange
    let te = spawn().await;
    te.create_app(json!({"name": "obo", "user_api_scopes": ["sql"]}))
        .await;

    // Act
    let (_, replaced) = te
        .apps(Method::PATCH, "/obo", Some(json!({"name": "obo"})))
        .await;
    te.apps(Method::POST, "/obo/stop", Some(json!({}))).await;
    let (_, restarted) = te.apps(Method::POST, "/obo/start", Some(json!({}))).await;
    te.apps(
        Method::POST,
        "/obo/update",
        Some(json!({"app": {"user_api_scopes": ["genie"]}, "update_mask": "user_api_scopes"})),
    )
    .await;
    let (_, start_again) = te.apps(Method::POST, "/obo/start", Some(json!({}))).await;
    te.apps(Method::POST, "/obo/stop", Some(json!({}))).await;
    let (_, after_restart) = te.apps(Method::POST, "/obo/start", Some(json!({}))).await;

    // Assert
    let effective = |app: &Value| strings(&app["effective_user_api_scopes"]).join(",");
    assert_eq!(
        effective(&replaced),
        "iam.access-control:read,iam.current-user:read,sql"
    );
    assert_eq!(effective(&restarted), DEFAULT_SCOPES.join(","));
    assert_eq!(strings(&start_again["user_api_scopes"]), ["genie"]);
    assert_eq!(
        effective(&start_again),
        DEFAULT_SCOPES.join(","),
        "start on a running app restarts nothing"
    );
    assert_eq!(
        effective(&after_restart),
        "genie,iam.access-control:read,iam.current-user:read"
    );
}

#[tokio::test]
async fn an_update_is_in_progress_then_succeeded_on_the_clock() {
    // Arrange
    let te = spawn().await;
    te.create_app(json!({"name": "updated"})).await;
    let (_, before) = te.apps(Method::GET, "/updated/update", None).await;
    te.slow_transitions().await;

    // Act
    let (_, started) = te
        .apps(
            Method::POST,
            "/updated/update",
            Some(json!({"app": {"compute_size": "LARGE"}, "update_mask": "*"})),
        )
        .await;
    let finished = te
        .poll_until("/updated/update", |u| u["status"]["state"] == "SUCCEEDED")
        .await;

    // Assert
    assert_eq!(before["status"]["state"], "NOT_UPDATED");
    assert_eq!(started["status"]["state"], "IN_PROGRESS");
    assert_eq!(started["compute_size"], "LARGE");
    assert_eq!(finished["compute_size"], "LARGE");
}

#[tokio::test]
async fn each_app_has_a_service_principal_that_gets_tokens_and_goes_with_the_app() {
    // Arrange
    let te = spawn().await;
    let app = te.create_app(json!({"name": "with-sp"})).await;
    let credentials = te.handle.app_credentials("with-sp").unwrap();
    let token_request = |id: &str, secret: &str| {
        te.http
            .post(te.url("/oidc/v1/token"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials"), ("scope", "all-apis")])
    };

    // Act
    let (status, token) = send(token_request(
        &credentials.client_id,
        &credentials.client_secret,
    ))
    .await;
    let access_token = token["access_token"].as_str().unwrap().to_owned();
    let (_, me) = te.get("/api/2.0/preview/scim/v2/Me", &access_token).await;
    let (wrong, _) = send(token_request(&credentials.client_id, "not-the-secret")).await;
    let minted = te
        .handle
        .mint_token(&credentials.client_id, Duration::from_secs(60));
    te.apps(Method::DELETE, "/with-sp", None).await;
    let (after_delete, _) = te.get("/api/2.0/preview/scim/v2/Me", &access_token).await;
    let (refused, _) = send(token_request(
        &credentials.client_id,
        &credentials.client_secret,
    ))
    .await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{token}");
    assert_eq!(credentials.client_id, app["service_principal_client_id"]);
    assert_eq!(me["applicationId"], credentials.client_id.as_str());
    assert_eq!(me["displayName"], app["service_principal_name"]);
    assert_eq!(me["id"], app["service_principal_id"].to_string());
    assert_eq!(wrong, StatusCode::UNAUTHORIZED);
    assert_eq!(after_delete, StatusCode::FORBIDDEN);
    assert_eq!(refused, StatusCode::UNAUTHORIZED);
    assert!(te.handle.app_credentials("with-sp").is_err());
    assert!(
        minted.is_ok(),
        "the control API mints for app principals: {minted:?}"
    );
    assert!(
        te.handle
            .mint_token(&credentials.client_id, Duration::from_secs(60))
            .is_err()
    );
}

#[tokio::test]
async fn refusals_carry_databricks_codes() {
    // Arrange
    let te = spawn().await;
    te.create_app(json!({"name": "taken"})).await;

    // Act
    let cases = [
        (
            "uppercase name",
            te.apps_post("", json!({"name": "My-App"})).await,
        ),
        ("short name", te.apps_post("", json!({"name": "a"})).await),
        (
            "long name",
            te.apps_post("", json!({"name": "a".repeat(31)})).await,
        ),
        (
            "underscore",
            te.apps_post("", json!({"name": "my_app"})).await,
        ),
        (
            "no name",
            te.apps_post("", json!({"description": "x"})).await,
        ),
        (
            "duplicate",
            te.apps_post("", json!({"name": "taken"})).await,
        ),
        (
            "compute size",
            te.apps_post("", json!({"name": "sized", "compute_size": "HUGE"}))
                .await,
        ),
        (
            "half instances",
            te.apps_post("", json!({"name": "inst", "compute_min_instances": 1}))
                .await,
        ),
        (
            "kindless resource",
            te.apps_post("", json!({"name": "res", "resources": [{"name": "r"}]}))
                .await,
        ),
        (
            "scopes not strings",
            te.apps_post("", json!({"name": "sc", "user_api_scopes": [1]}))
                .await,
        ),
        ("unknown app", te.apps(Method::GET, "/nope", None).await),
        (
            "unknown start",
            te.apps_post("/nope/start", json!({})).await,
        ),
        (
            "unknown deploy",
            te.apps_post("/nope/deployments", json!({})).await,
        ),
        (
            "unknown deployment",
            te.apps(Method::GET, "/taken/deployments/abc", None).await,
        ),
        (
            "rename",
            te.apps(Method::PATCH, "/taken", Some(json!({"name": "other"})))
                .await,
        ),
        (
            "no mask",
            te.apps_post("/taken/update", json!({"app": {}})).await,
        ),
        (
            "unknown mask",
            te.apps_post("/taken/update", json!({"app": {}, "update_mask": "name"}))
                .await,
        ),
        (
            "no path",
            te.apps_post("/taken/deployments", json!({})).await,
        ),
        (
            "relative path",
            te.apps_post("/taken/deployments", json!({"source_code_path": "src"}))
                .await,
        ),
        (
            "bad mode",
            te.apps_post(
                "/taken/deployments",
                json!({"source_code_path": "/W", "mode": "LIVE"}),
            )
            .await,
        ),
        (
            "command not strings",
            te.apps_post(
                "/taken/deployments",
                json!({"source_code_path": "/W", "command": "run"}),
            )
            .await,
        ),
        (
            "nameless env var",
            te.apps_post(
                "/taken/deployments",
                json!({"source_code_path": "/W", "env_vars": [{}]}),
            )
            .await,
        ),
    ];

    // Assert
    let expected = [
        (400, "INVALID_PARAMETER_VALUE"),
        (400, "INVALID_PARAMETER_VALUE"),
        (400, "INVALID_PARAMETER_VALUE"),
        (400, "INVALID_PARAMETER_VALUE"),
        (400, "INVALID_PARAMETER_VALUE"),
        (409, "RESOURCE_ALREADY_EXISTS"),
        (400, "INVALID_PARAMETER_VALUE"),
        (400, "INVALID_PARAMETER_VALUE"),
        (400, "INVALID_PARAMETER_VALUE"),
        (400, "INVALID_PARAMETER_VALUE"),
        (404, "RESOURCE_DOES_NOT_EXIST"),
        (404, "RESOURCE_DOES_NOT_EXIST"),
        (404, "RESOURCE_DOES_NOT_EXIST"),
        (404, "RESOURCE_DOES_NOT_EXIST"),
        (400, "INVALID_PARAMETER_VALUE"),
        (400, "INVALID_PARAMETER_VALUE"),
        (400, "INVALID_PARAMETER_VALUE"),
        (400, "INVALID_PARAMETER_VALUE"),
        (400, "INVALID_PARAMETER_VALUE"),
        (400, "INVALID_PARAMETER_VALUE"),
        (400, "INVALID_PARAMETER_VALUE"),
        (400, "INVALID_PARAMETER_VALUE"),
    ];
    assert_eq!(cases.len(), expected.len());
    for ((case, (status, body)), (code, error_code)) in cases.iter().zip(expected) {
        assert_eq!(status.as_u16(), code, "{case}: {body}");
        assert_eq!(body["error_code"], error_code, "{case}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{case}"
        );
    }
    let (_, list) = te.apps(Method::GET, "", None).await;
    assert_eq!(
        list["apps"].as_array().unwrap().len(),
        1,
        "nothing refused was kept"
    );
}

#[tokio::test]
async fn a_git_deployment_needs_no_source_code_path_and_keeps_what_was_sent() {
    // Arrange
    let te = spawn().await;
    te.create_app(json!({"name": "from-git", "compute_min_instances": 1,
        "compute_max_instances": 2}))
        .await;
    let sent = json!({"git_source": {"branch": "main"}, "command": ["python", "app.py"],
        "env_vars": [{"name": "MODE", "value": "demo"}]});

    // Act
    let (status, deployment) = te.apps_post("/from-git/deployments", sent.clone()).await;
    let app = te.app("from-git").await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{deployment}");
    assert!(deployment.get("source_code_path").is_none(), "{deployment}");
    for field in ["git_source", "command", "env_vars"] {
        assert_eq!(deployment[field], sent[field], "{field}");
    }
    assert_eq!(app["compute_max_instances"], 2);
    assert_eq!(app["app_status"]["state"], "RUNNING");
}

#[tokio::test]
async fn any_principal_may_use_the_routes() {
    // Arrange
    let te = spawn().await;
    te.create_app(json!({"name": "shared"})).await;

    // Act
    let (status, app) = send(
        te.request(Method::POST, &format!("{API}/shared/stop"), BOB)
            .json(&json!({})),
    )
    .await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{app}");
    assert_eq!(compute(&app), "STOPPED");
}

#[tokio::test]
async fn the_app_cap_is_a_clear_error_lists_are_paged_and_reset_forgets_apps() {
    // Arrange
    let te = spawn().await;
    for i in 0..100 {
        te.create_app(json!({"name": format!("app-{i:03}")})).await;
    }

    // Act
    let (past_cap, body) = te
        .apps(Method::POST, "", Some(json!({"name": "one-too-many"})))
        .await;
    let (_, first) = te.apps(Method::GET, "?page_size=30", None).await;
    let mut pages = 1;
    let mut next = first["next_page_token"].as_str().map(str::to_owned);
    let mut seen = first["apps"].as_array().unwrap().len();
    while let Some(token) = next {
        let (_, page) = te
            .apps(
                Method::GET,
                &format!("?page_size=30&page_token={token}"),
                None,
            )
            .await;
        pages += 1;
        seen += page["apps"].as_array().unwrap().len();
        next = page["next_page_token"].as_str().map(str::to_owned);
    }
    te.handle.reset().await;
    let (_, after_reset) = te.apps(Method::GET, "", None).await;

    // Assert
    assert_eq!(past_cap, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_code"], "RESOURCE_LIMIT_EXCEEDED");
    assert!(body["message"].as_str().unwrap().contains("100"), "{body}");
    assert_eq!((pages, seen), (4, 100));
    assert_eq!(after_reset["apps"], json!([]));
}

#[tokio::test]
async fn an_app_keeps_its_last_100_deployments() {
    // Arrange
    let te = spawn().await;
    te.create_app(json!({"name": "busy"})).await;
    te.upload_app("/Workspace/b").await;
    let mut ids = Vec::new();
    for _ in 0..101 {
        let (_, deployment) = te
            .apps(
                Method::POST,
                "/busy/deployments",
                Some(json!({"source_code_path": "/Workspace/b"})),
            )
            .await;
        ids.push(deployment["deployment_id"].as_str().unwrap().to_owned());
    }

    // Act
    let (_, list) = te
        .apps(Method::GET, "/busy/deployments?page_size=1000", None)
        .await;
    let (oldest, _) = te
        .apps(Method::GET, &format!("/busy/deployments/{}", ids[0]), None)
        .await;
    let app = te.app("busy").await;

    // Assert
    let kept = list["app_deployments"].as_array().unwrap();
    assert_eq!(kept.len(), 100);
    assert_eq!(kept[0]["deployment_id"], ids[1].as_str());
    assert_eq!(oldest, StatusCode::NOT_FOUND);
    assert_eq!(app["active_deployment"]["deployment_id"], ids[100].as_str());
}

#[tokio::test]
async fn a_deployment_from_a_missing_or_non_directory_path_fails_and_the_app_keeps_its_last_good_one()
 {
    // Arrange
    let te = spawn().await;
    te.slow_transitions().await;
    te.create_app(json!({"name": "sourced"})).await;
    te.poll_until("/sourced", |a| compute(a) == "ACTIVE").await;
    let good = "/Workspace/Users/alice@example.com/sourced";
    te.upload_app(good).await;
    let (_, first) = te
        .apps_post("/sourced/deployments", json!({"source_code_path": good}))
        .await;
    let first_id = first["deployment_id"].as_str().unwrap().to_owned();
    te.poll_until("/sourced", |a| a["app_status"]["state"] == "RUNNING")
        .await;

    // Act
    let mut failed = Vec::new();
    for path in [
        "/Workspace/Users/alice@example.com/missing",
        &format!("{good}/app.py"),
    ] {
        let (status, pending) = te
            .apps_post("/sourced/deployments", json!({"source_code_path": path}))
            .await;
        assert_eq!(status, StatusCode::OK, "{pending}");
        assert_eq!(
            pending["status"]["state"], "IN_PROGRESS",
            "it fails when done"
        );
        let id = pending["deployment_id"].as_str().unwrap().to_owned();
        let done = te
            .poll_until(&format!("/sourced/deployments/{id}"), |d| {
                d["status"]["state"] != "IN_PROGRESS"
            })
            .await;
        failed.push(done);
    }
    let app = te.app("sourced").await;
    let (_, reused) = te.apps_post("/sourced/deployments", json!({})).await;

    // Assert
    assert_eq!(failed[0]["status"]["state"], "FAILED");
    let missing = failed[0]["status"]["message"].as_str().unwrap();
    assert!(missing.contains("/missing does not exist"), "{missing}");
    assert_eq!(failed[1]["status"]["state"], "FAILED");
    let file = failed[1]["status"]["message"].as_str().unwrap();
    assert!(file.contains("is not a directory"), "{file}");
    assert_eq!(app["app_status"]["state"], "RUNNING");
    assert_eq!(app["active_deployment"]["deployment_id"], first_id.as_str());
    assert_eq!(app["default_source_code_path"], good);
    assert_eq!(
        reused["source_code_path"], good,
        "the active deployment's path is reused"
    );
}

#[tokio::test]
async fn failed_deployments_never_push_out_the_active_one() {
    // Arrange
    let te = spawn().await;
    te.create_app(json!({"name": "flaky"})).await;
    te.upload_app("/Workspace/ok").await;
    let (_, active) = te
        .apps_post(
            "/flaky/deployments",
            json!({"source_code_path": "/Workspace/ok"}),
        )
        .await;
    let mut failed = Vec::new();
    for _ in 0..100 {
        let (_, deployment) = te
            .apps_post(
                "/flaky/deployments",
                json!({"source_code_path": "/Workspace/gone"}),
            )
            .await;
        failed.push(deployment["deployment_id"].clone());
    }

    // Act
    let (_, list) = te
        .apps(Method::GET, "/flaky/deployments?page_size=1000", None)
        .await;
    let app = te.app("flaky").await;

    // Assert
    let kept: Vec<_> = list["app_deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["deployment_id"].clone())
        .collect();
    assert_eq!(kept.len(), 100);
    assert_eq!(kept[0], active["deployment_id"], "the active one stays");
    assert_eq!(kept[1..], failed[1..], "the oldest failed one went");
    assert_eq!(
        app["active_deployment"]["deployment_id"],
        active["deployment_id"]
    );
}
