//! The Apps runtime (`run_apps`): real Python processes deployed from the workspace, their
//! environment, the emulated Apps proxy in front of them (identity headers, user tokens,
//! sign-in, round robin, 502/503/504, streaming), failed deployments, stop signals, logs and
//! replicas.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use dbapp_emulator::EmulatorConfig;
use dbapp_emulator::postgres::{ClusterOptions, PrivateCluster};
use reqwest::header::{ACCEPT, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};

use crate::support::{ALICE, TestEmulator, send, spawn_with};

/// A stdlib HTTP server that echoes its environment and request headers as JSON, streams an
/// event on `/sse` until `/release`, never answers `/slow` in time, dies on `/exit`, and exits
/// 0 on SIGTERM (unless `IGNORE_TERM=1`).
const APP_PY: &str = r#"
import json, os, signal, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

released = threading.Event()

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/sse":
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("connection", "close")
            self.end_headers()
            self.wfile.write(b"data: first\n\n")
            self.wfile.flush()
            released.wait(10)
            self.wfile.write(b"data: second\n\n")
            self.close_connection = True
            return
        if self.path == "/release":
            released.set()
        if self.path == "/slow":
            time.sleep(5)
        if self.path == "/exit":
            print("exiting on request", flush=True)
            os._exit(1)
        body = json.dumps({
            "env": dict(os.environ),
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "path": self.path,
            "argv": sys.argv,
            "cwd": os.getcwd(),
        }).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

def on_term(signum, frame):
    # os.write, not print: the signal may land while the main thread is inside print, and
    # print is not reentrant (RuntimeError: reentrant call inside BufferedWriter).
    os.write(1, b"got SIGTERM, exiting\n")
    os._exit(0)

if os.environ.get("IGNORE_TERM") == "1":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    signal.signal(signal.SIGTERM, on_term)
port = int(os.environ["DATABRICKS_APP_PORT"])
server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
server.daemon_threads = True
print(f"listening on {port}", flush=True)
server.serve_forever()
"#;

const APP_YAML: &str = "\
command: [python3, app.py, --port, $DATABRICKS_APP_PORT]
env:
  - name: GREETING
    value: hello
  - name: WAREHOUSE_ID
    valueFrom: warehouse
  - name: DB_HOST
    valueFrom: db
";

const SOURCE: &str = "/Users/alice@example.com/runtime-app";

/// An emulator that runs apps, with short timeouts so that the slow paths stay quick.
async fn spawn_runtime() -> TestEmulator {
    spawn_with(EmulatorConfig {
        run_apps: true,
        apps_stop_grace: Duration::from_millis(300),
        apps_proxy_timeout: Duration::from_millis(500),
        apps_startup_timeout: Duration::from_secs(10),
        ..EmulatorConfig::default()
    })
    .await
}

fn resources() -> Value {
    json!([
        {"name": "warehouse", "sql_warehouse": {"id": "dev-warehouse", "permission": "CAN_USE"}},
        {"name": "db", "database": {"instance_name": "dev-lakebase",
            "database_name": "databricks_postgres", "permission": "CAN_CONNECT_AND_CREATE"}},
    ])
}

impl TestEmulator {
    /// Writes `files` into the workspace directory `dir` as alice.
    async fn upload(&self, dir: &str, files: &[(&str, &str)]) {
        let (status, body) = self
            .post("/api/2.0/workspace/mkdirs", ALICE, json!({"path": dir}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        for (name, content) in files {
            let import = json!({"path": format!("{dir}/{name}"), "format": "AUTO",
                "overwrite": true, "content": STANDARD.encode(content)});
            let (status, body) = self.post("/api/2.0/workspace/import", ALICE, import).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }

    /// Creates an app as alice and returns it.
    async fn create(&self, body: Value) -> Value {
        let (status, app) = self.post("/api/2.0/apps", ALICE, body).await;
        assert_eq!(status, StatusCode::OK, "{app}");
        app
    }

    /// Reads an app as alice.
    async fn read_app(&self, name: &str) -> Value {
        let (status, app) = self.get(&format!("/api/2.0/apps/{name}"), ALICE).await;
        assert_eq!(status, StatusCode::OK, "{app}");
        app
    }

    /// Deploys `dir` and waits until the deployment is over; returns it.
    async fn deploy(&self, name: &str, dir: &str) -> Value {
        let path = format!("/api/2.0/apps/{name}/deployments");
        let (status, deployment) = self
            .post(
                &path,
                ALICE,
                json!({"source_code_path": dir, "mode": "SNAPSHOT"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{deployment}");
        let id = deployment["deployment_id"].as_str().unwrap().to_owned();
        self.poll(&format!("{path}/{id}"), |d| {
            d["status"]["state"] != "IN_PROGRESS"
        })
        .await
    }

    /// Reads `path` until `done` holds: the states follow processes this test cannot observe
    /// directly, so there is no signal to wait on.
    async fn poll(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let (_, body) = self.get(path, ALICE).await;
            if done(&body) {
                return body;
            }
            assert!(tokio::time::Instant::now() < deadline, "{path}: {body}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Creates app `name` with `config`, uploads the echo app and deploys it successfully;
    /// returns the app's URL.
    async fn running_app(&self, name: &str, config: Value, app_yaml: &str) -> String {
        let mut body = config;
        body["name"] = name.into();
        self.create(body).await;
        let dir = format!("{SOURCE}-{name}");
        self.upload(&dir, &[("app.py", APP_PY), ("app.yaml", app_yaml)])
            .await;
        let deployment = self.deploy(name, &dir).await;
        assert_eq!(
            deployment["status"]["state"],
            "SUCCEEDED",
            "{deployment}\n{}",
            self.logs(name).await
        );
        self.read_app(name).await["url"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn logs(&self, name: &str) -> String {
        let response = self
            .http
            .get(self.url(&format!("/_emulator/apps/{name}/logs")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.unwrap()
    }

    async fn action(&self, name: &str, action: &str) {
        let path = format!("/api/2.0/apps/{name}/{action}");
        let (status, body) = self.post(&path, ALICE, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

/// GET through the proxy as `token`: status, the replica header and the JSON (or text) body.
async fn through(
    http: &reqwest::Client,
    url: &str,
    token: &str,
) -> (StatusCode, Option<String>, Value) {
    let response = http.get(url).bearer_auth(token).send().await.unwrap();
    let replica = response
        .headers()
        .get("x-emulator-replica")
        .map(|v| v.to_str().unwrap().to_owned());
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, replica, body)
}

fn port_of(echo: &Value) -> &str {
    echo["env"]["DATABRICKS_APP_PORT"].as_str().unwrap()
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn a_deployed_app_runs_with_the_platform_environment_behind_the_proxy() {
    // Arrange
    let te = spawn_runtime().await;
    let url = te
        .running_app("echo", json!({"resources": resources()}), APP_YAML)
        .await;
    let credentials = te.handle.app_credentials("echo").unwrap();

    // Act
    let response = te
        .http
        .get(format!("{url}/some/path?x=1"))
        .bearer_auth(ALICE)
        .header("x-forwarded-email", "mallory@example.com")
        .header("x-forwarded-access-token", "forged")
        .header("x-real-ip", "10.9.9.9")
        .send()
        .await
        .unwrap();
    let replica = response.headers().get("x-emulator-replica").cloned();
    let echo: Value = response.json().await.unwrap();
    let app = te.read_app("echo").await;
    let logs = te.logs("echo").await;

    // Assert
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_eq!(app["app_status"]["state"], "RUNNING");
    assert_eq!(app["compute_status"]["state"], "ACTIVE");
    assert!(app["active_deployment"]["deployment_id"].is_string());
    assert_eq!(replica.unwrap(), "0");
    assert_eq!(echo["path"], "/some/path?x=1");
    assert_eq!(echo["argv"], json!(["app.py", "--port", port_of(&echo)]));
    let env = &echo["env"];
    let port = env["DATABRICKS_APP_PORT"].as_str().unwrap();
    for (key, value) in [
        ("DATABRICKS_APP_NAME", "echo"),
        ("DATABRICKS_WORKSPACE_ID", "1234567890123456"),
        ("DATABRICKS_HOST", te.handle.base_url()),
        ("DATABRICKS_APP_URL", url.as_str()),
        ("DATABRICKS_CLIENT_ID", credentials.client_id.as_str()),
        (
            "DATABRICKS_CLIENT_SECRET",
            credentials.client_secret.as_str(),
        ),
        ("GREETING", "hello"),
        ("WAREHOUSE_ID", "dev-warehouse"),
        ("DB_HOST", "instance-8a4d2c1e.database.cloud.databricks.com"),
        ("PGHOST", "instance-8a4d2c1e.database.cloud.databricks.com"),
        ("PGPORT", "5432"),
        ("PGDATABASE", "databricks_postgres"),
        ("PGUSER", credentials.client_id.as_str()),
        ("PGSSLMODE", "require"),
        ("PGAPPNAME", "echo"),
    ] {
        assert_eq!(env[key], value, "{key}");
    }
    assert!(env.get("PGPASSWORD").is_none());
    assert!(env.get("PATH").is_some());
    assert!(
        env.get("CARGO").is_none(),
        "the environment is clean: {env}"
    );
    let headers = &echo["headers"];
    assert_eq!(headers["x-forwarded-email"], "alice@example.com");
    assert_eq!(
        headers["x-forwarded-preferred-username"],
        "alice@example.com"
    );
    assert!(
        headers["x-forwarded-user"]
            .as_str()
            .unwrap()
            .ends_with("@1234567890123456"),
        "{headers}"
    );
    assert_eq!(headers["x-real-ip"], "127.0.0.1");
    assert_eq!(
        headers["x-forwarded-host"],
        url.trim_start_matches("http://")
    );
    assert_eq!(headers["x-request-id"].as_str().unwrap().len(), 36);
    assert!(headers.get("authorization").is_none(), "{headers}");
    assert!(
        headers.get("x-forwarded-access-token").is_none(),
        "no user_api_scopes, no user token: {headers}"
    );
    assert!(logs.contains(&format!("[0] listening on {port}")), "{logs}");
    assert!(logs.contains("[0] [emulator] started pid "), "{logs}");
    assert!(!logs.contains(&credentials.client_secret), "{logs}");
}

#[tokio::test]
async fn user_api_scopes_bring_a_downscoped_user_token_cached_per_user() {
    // Arrange
    let te = spawn_runtime().await;
    let url = te
        .running_app(
            "scoped",
            json!({"user_api_scopes": ["sql"]}),
            "command: [python3, app.py]\n",
        )
        .await;

    // Act
    let (_, _, first) = through(&te.http, &url, ALICE).await;
    let (_, _, second) = through(&te.http, &url, ALICE).await;

    // Assert
    let token = first["headers"]["x-forwarded-access-token"]
        .as_str()
        .unwrap_or_else(|| panic!("a user token: {first}"));
    assert_eq!(second["headers"]["x-forwarded-access-token"], token);
    let claims = claims(token);
    assert_eq!(claims["sub"], "alice@example.com");
    assert_eq!(
        claims["scope"],
        "iam.access-control:read iam.current-user:read sql"
    );
    let (status, me) = te.get("/api/2.0/preview/scim/v2/Me", token).await;
    assert_eq!(status, StatusCode::OK, "{me}");
}

#[tokio::test]
async fn without_credentials_clients_get_401_and_browsers_sign_in_with_a_cookie() {
    // Arrange
    let te = spawn_runtime().await;
    let url = te
        .running_app("signin", json!({}), "command: [python3, app.py]\n")
        .await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // Act
    let (api_status, api_body) = send(no_redirects.get(format!("{url}/data"))).await;
    let page = no_redirects
        .get(format!("{url}/page"))
        .header(ACCEPT, "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    let page_status = page.status();
    let page_html = page.text().await.unwrap();
    let signed_in = no_redirects
        .post(format!("{url}/.emulator/sign-in"))
        .form(&[("user", "bob@example.com"), ("redirect", "/page")])
        .send()
        .await
        .unwrap();
    let location = signed_in.headers()[LOCATION].to_str().unwrap().to_owned();
    let cookie = signed_in.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    let session = cookie.split(';').next().unwrap().to_owned();
    let (_, as_bob) = send(
        no_redirects
            .get(format!("{url}/page"))
            .header(COOKIE, format!("theme=dark; {session}")),
    )
    .await;
    let signed_out = no_redirects
        .get(format!("{url}/.emulator/sign-out"))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap();
    let (after, _) = send(
        no_redirects
            .get(format!("{url}/data"))
            .header(COOKIE, &session),
    )
    .await;
    // A page whose DNS name was rebound to 127.0.0.1 cannot sign in (DNS-rebinding rule).
    let rebound = no_redirects
        .post(format!("{url}/.emulator/sign-in"))
        .header(reqwest::header::HOST, "evil.example")
        .form(&[("user", "bob@example.com"), ("redirect", "/page")])
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(rebound.status(), StatusCode::FORBIDDEN);
    assert!(rebound.headers().get(SET_COOKIE).is_none());
    assert_eq!(api_status, StatusCode::UNAUTHORIZED);
    assert_eq!(api_body["error_code"], "UNAUTHENTICATED");
    assert_eq!(page_status, StatusCode::UNAUTHORIZED);
    assert!(page_html.contains("alice@example.com") && page_html.contains("bob@example.com"));
    assert!(page_html.contains("value=\"/page\""), "{page_html}");
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(location, "/page");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert_eq!(as_bob["headers"]["x-forwarded-email"], "bob@example.com");
    assert_eq!(as_bob["headers"]["cookie"], "theme=dark", "{as_bob}");
    assert_eq!(signed_out.status(), StatusCode::SEE_OTHER);
    assert!(
        signed_out.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(after, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn three_replicas_take_requests_round_robin_until_a_reset_stops_them() {
    // Arrange
    let te = spawn_runtime().await;
    let url = te
        .running_app(
            "trio",
            json!({"compute_min_instances": 1, "compute_max_instances": 3}),
            "command: [python3, app.py]\n",
        )
        .await;

    // Act
    let mut seen = Vec::new();
    let mut dirs = Vec::new();
    for _ in 0..6 {
        let (status, replica, echo) = through(&te.http, &url, ALICE).await;
        assert_eq!(status, StatusCode::OK);
        seen.push(replica.unwrap());
        dirs.push(echo["cwd"].as_str().unwrap().to_owned());
    }
    let (_, replicas) = send(te.http.get(te.url("/_emulator/apps/trio/replicas"))).await;
    te.handle.reset().await;
    let after_reset = te.http.get(&url).bearer_auth(ALICE).send().await;
    let (gone, _) = send(te.http.get(te.url("/_emulator/apps/trio/replicas"))).await;

    // Assert
    assert_eq!(seen[..3], seen[3..], "{seen:?}");
    // Each replica runs in its own copy of the deployed files, as each is its own container.
    let mut distinct = dirs[..3].to_vec();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{dirs:?}");
    let mut first = seen[..3].to_vec();
    first.sort();
    assert_eq!(first, ["0", "1", "2"]);
    let replicas = replicas.as_array().unwrap();
    assert_eq!(replicas.len(), 3, "{replicas:?}");
    assert!(
        replicas
            .iter()
            .all(|r| r["state"] == "running" && r["pid"].is_u64())
    );
    let mut ports: Vec<u64> = replicas
        .iter()
        .map(|r| r["port"].as_u64().unwrap())
        .collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 3);
    assert!(
        after_reset.is_err(),
        "a reset closes the proxy: {after_reset:?}"
    );
    assert_eq!(gone, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_deployment_whose_command_exits_fails_and_the_previous_one_keeps_serving() {
    // Arrange
    let te = spawn_runtime().await;
    let url = te
        .running_app("keeper", json!({}), "command: [python3, app.py]\n")
        .await;
    let good = te.read_app("keeper").await["active_deployment"]["deployment_id"].clone();
    let broken = format!("{SOURCE}-broken");
    let yaml =
        "command: [python3, -c, \"print('boom: no module named flask'); raise SystemExit(3)\"]\n";
    te.upload(&broken, &[("app.yaml", yaml)]).await;

    // Act
    let failed = te.deploy("keeper", &broken).await;
    let app = te.read_app("keeper").await;
    let (status, _, _) = through(&te.http, &url, ALICE).await;

    // Assert
    assert_eq!(failed["status"]["state"], "FAILED", "{failed}");
    let message = failed["status"]["message"].as_str().unwrap();
    assert!(message.contains("exited with code 3"), "{message}");
    assert!(message.contains("boom: no module named flask"), "{message}");
    assert_eq!(app["active_deployment"]["deployment_id"], good);
    assert_eq!(app["app_status"]["state"], "RUNNING");
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_slow_answer_is_a_504_a_stream_passes_as_it_comes_and_a_dead_replica_crashes_the_app() {
    // Arrange
    let te = spawn_runtime().await;
    let url = te
        .running_app("streamer", json!({}), "command: [python3, app.py]\n")
        .await;

    // Act
    let (slow, _, _) = through(&te.http, &format!("{url}/slow"), ALICE).await;
    let mut stream = te
        .http
        .get(format!("{url}/sse"))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap();
    // The first event arrives while the app still holds the response open.
    let first = stream.chunk().await.unwrap().unwrap();
    let (released, _, _) = through(&te.http, &format!("{url}/release"), ALICE).await;
    let mut rest = Vec::new();
    while let Some(chunk) = stream.chunk().await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    let (exit, _, _) = through(&te.http, &format!("{url}/exit"), ALICE).await;
    let crashed = te
        .poll("/api/2.0/apps/streamer", |a| {
            a["app_status"]["state"] == "CRASHED"
        })
        .await;
    let (after, _, _) = through(&te.http, &url, ALICE).await;

    // Assert
    assert_eq!(slow, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(&first[..], b"data: first\n\n");
    assert_eq!(released, StatusCode::OK);
    assert_eq!(String::from_utf8(rest).unwrap(), "data: second\n\n");
    assert_eq!(exit, StatusCode::BAD_GATEWAY);
    assert!(
        crashed["app_status"]["message"]
            .as_str()
            .unwrap()
            .contains("exited with code 1"),
        "{crashed}"
    );
    assert_eq!(after, StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn stop_sends_sigterm_start_runs_the_deployment_again_and_delete_closes_the_proxy() {
    // Arrange
    let te = spawn_runtime().await;
    let url = te
        .running_app("cycle", json!({}), "command: [python3, app.py]\n")
        .await;

    // Act
    te.action("cycle", "stop").await;
    let stopped = te
        .poll("/api/2.0/apps/cycle", |a| {
            a["compute_status"]["state"] == "STOPPED"
        })
        .await;
    let (while_stopped, _, _) = through(&te.http, &url, ALICE).await;
    let logs = te.logs("cycle").await;
    te.action("cycle", "start").await;
    let started = te
        .poll("/api/2.0/apps/cycle", |a| {
            a["compute_status"]["state"] == "ACTIVE"
        })
        .await;
    let (while_started, _, _) = through(&te.http, &url, ALICE).await;
    let (deleted, _) = send(te.request(Method::DELETE, "/api/2.0/apps/cycle", ALICE)).await;
    let after_delete = te.http.get(&url).bearer_auth(ALICE).send().await;

    // Assert
    assert_eq!(stopped["app_status"]["state"], "UNAVAILABLE");
    assert_eq!(while_stopped, StatusCode::SERVICE_UNAVAILABLE);
    assert!(logs.contains("[0] got SIGTERM, exiting"), "{logs}");
    assert!(
        logs.contains("[0] [emulator] exited after SIGTERM in "),
        "{logs}"
    );
    assert_eq!(started["app_status"]["state"], "RUNNING", "{started}");
    assert_eq!(while_started, StatusCode::OK);
    assert_eq!(deleted, StatusCode::OK);
    assert!(
        after_delete.is_err(),
        "the proxy is closed: {after_delete:?}"
    );
}

#[tokio::test]
async fn a_process_that_ignores_sigterm_is_killed_after_the_grace_period() {
    // Arrange
    let te = spawn_runtime().await;
    let yaml = "command: [python3, app.py]\nenv:\n  - name: IGNORE_TERM\n    value: \"1\"\n";
    te.running_app("stubborn", json!({}), yaml).await;

    // Act
    te.action("stubborn", "stop").await;
    te.poll("/api/2.0/apps/stubborn", |a| {
        a["compute_status"]["state"] == "STOPPED"
    })
    .await;
    let logs = te.logs("stubborn").await;

    // Assert
    assert!(
        logs.contains("[0] [emulator] killed with SIGKILL after 300 ms"),
        "{logs}"
    );
    assert!(!logs.contains("got SIGTERM"), "{logs}");
}

#[tokio::test]
async fn the_apps_service_principal_logs_in_to_lakebase_with_the_pg_environment_it_gets() {
    // Arrange
    let cluster = PrivateCluster::start(ClusterOptions::default())
        .await
        .expect("private cluster starts");
    let te = spawn_with(EmulatorConfig {
        postgres_admin_url: Some(cluster.admin_url()),
        run_apps: true,
        ..EmulatorConfig::default()
    })
    .await;
    let url = te
        .running_app("pg", json!({"resources": resources()}), APP_YAML)
        .await;
    let (_, _, echo) = through(&te.http, &url, ALICE).await;
    let env = &echo["env"];
    let credentials = te.handle.app_credentials("pg").unwrap();

    // Act: what the app does with its environment, as the SDK's default chain would.
    let (status, token) = send(
        te.http
            .post(te.url("/oidc/v1/token"))
            .basic_auth(
                env["DATABRICKS_CLIENT_ID"].as_str().unwrap(),
                env["DATABRICKS_CLIENT_SECRET"].as_str(),
            )
            .form(&[("grant_type", "client_credentials"), ("scope", "all-apis")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{token}");
    let (status, credential) = te
        .post(
            "/api/2.0/database/credentials",
            token["access_token"].as_str().unwrap(),
            json!({"instance_names": ["dev-lakebase"], "request_id": "r1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{credential}");
    let text = |key: &str| env[key].as_str().unwrap().to_owned();
    let options = PgConnectOptions::new()
        .host(&text("PGHOST"))
        .port(text("PGPORT").parse().unwrap())
        .username(&text("PGUSER"))
        .database(&text("PGDATABASE"))
        .password(credential["token"].as_str().unwrap())
        .ssl_mode(PgSslMode::Require);
    let mut connection = PgConnection::connect_with(&options).await.expect("login");
    let user: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut connection)
        .await
        .unwrap();

    // Assert
    let front = te.handle.lakebase_addr().unwrap();
    assert_eq!(text("PGHOST"), front.ip().to_string());
    assert_eq!(text("PGPORT"), front.port().to_string());
    assert_eq!(text("DB_HOST"), front.ip().to_string());
    assert_eq!(user, credentials.client_id);
    connection.close().await.ok();
    cluster.stop().await.ok();
}

#[tokio::test]
async fn a_command_that_cannot_start_or_never_listens_fails_the_deployment() {
    // Arrange
    let te = spawn_with(EmulatorConfig {
        run_apps: true,
        apps_stop_grace: Duration::from_millis(300),
        apps_startup_timeout: Duration::from_millis(500),
        ..EmulatorConfig::default()
    })
    .await;
    te.create(json!({"name": "never"})).await;
    let missing = format!("{SOURCE}-missing-program");
    te.upload(
        &missing,
        &[("app.yaml", "command: [no-such-program-dbapp]\n")],
    )
    .await;
    let silent = format!("{SOURCE}-silent");
    let yaml = "command: [python3, -c, \"import time; print('warming up', flush=True); time.sleep(30)\"]\n";
    te.upload(&silent, &[("app.yaml", yaml)]).await;
    let empty = format!("{SOURCE}-empty");
    te.upload(&empty, &[("README.md", "no app here")]).await;

    // Act
    let cannot_start = te.deploy("never", &missing).await;
    let never_listens = te.deploy("never", &silent).await;
    let no_command = te.deploy("never", &empty).await;
    let app = te.read_app("never").await;

    // Assert
    let message = |d: &Value| d["status"]["message"].as_str().unwrap().to_owned();
    assert_eq!(cannot_start["status"]["state"], "FAILED");
    assert!(
        message(&cannot_start).contains("cannot start the command"),
        "{cannot_start}"
    );
    assert_eq!(never_listens["status"]["state"], "FAILED");
    assert!(
        message(&never_listens).contains("within the startup timeout"),
        "{never_listens}"
    );
    assert!(
        message(&never_listens).contains("warming up"),
        "{never_listens}"
    );
    assert!(
        message(&no_command).contains("no `command`"),
        "{no_command}"
    );
    assert!(app.get("active_deployment").is_none(), "{app}");
    assert_eq!(app["app_status"]["state"], "UNAVAILABLE");
}
