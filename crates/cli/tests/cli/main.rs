//! End-to-end tests of the `dbapp` binary: the commands as a user runs them.

mod colour;
mod config;
mod deploy;
mod dev;
mod docs_commands;
mod doctor;
mod errors;
mod lakebase;
mod manifest;
mod otel;
mod token;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

fn dbapp() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dbapp"))
}

/// Kills the child when the test ends, pass or fail.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn emulate_prints_its_url_and_serves_the_workspace() {
    // Arrange
    let child = dbapp()
        .args(["emulate", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("dbapp starts");
    let mut running = Running(child);

    // Act: the first line is the readiness signal.
    let url = emulator_url(&mut running);
    let metadata = http_get(&format!("{url}/.well-known/databricks-config"));
    let info = http_get(&format!("{url}/_emulator/info"));

    // Assert
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(
        metadata.contains("\"host_type\":\"WORKSPACE_HOST\""),
        "{metadata}"
    );
    assert!(
        info.contains("\"run_apps\":true"),
        "apps run by default: {info}"
    );
}

/// The URL a `dbapp emulate` started with piped stdout prints on its first line, once it
/// accepts connections.
fn emulator_url(emulator: &mut Running) -> String {
    let stdout = emulator.0.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("a line");
    line.trim()
        .strip_prefix("dbapp emulator listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_owned()
}

/// A minimal HTTP/1.1 GET over a raw socket, so the CLI test needs no HTTP client crate.
fn http_get(url: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http url");
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(authority).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}

#[test]
fn print_fixture_emits_the_documented_default_fixture() {
    // Act
    let output = dbapp()
        .args(["emulate", "--print-fixture"])
        .output()
        .expect("runs");

    // Assert
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("\"dev-token-alice\""));
    assert!(text.contains("\"dev-lakebase\""));
}

#[test]
fn an_invalid_fixture_is_refused_with_its_path_and_reason() {
    // Arrange
    let dir = std::env::temp_dir().join(format!("dbapp-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("broken.json");
    std::fs::write(&file, r#"{"users": [{"user_name": "x"}]}"#).unwrap();

    // Act
    let output = dbapp()
        .args(["emulate", "--port", "0", "--fixture"])
        .arg(&file)
        .output()
        .expect("runs");

    // Assert
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("broken.json"), "{stderr}");
    assert!(stderr.contains("display_name"), "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// Starts `dbapp dev --port 0` in a temporary directory and returns its URL.
fn start_dev(dir: &std::path::Path) -> (Running, String) {
    let child = dbapp()
        .args(["dev", "--port", "0"])
        .current_dir(dir)
        .env_remove("DATABRICKS_APP_NAME")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("dbapp starts");
    let mut running = Running(child);
    let stdout = running.0.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("a line");
    let url = line
        .trim()
        .strip_prefix("dbapp dev: serving on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_owned();
    (running, url)
}

#[tokio::test]
async fn dev_serves_the_app_as_a_demo_user_and_switches_users() {
    // Arrange
    let dir = std::env::temp_dir().join(format!("dbapp-dev-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (_running, url) = start_dev(&dir);
    let http = reqwest::Client::new();
    let me = |cookie: Option<String>| {
        let mut request = http
            .get(format!("{url}/api/user/me"))
            // A forged token is stripped by the identity layer.
            .header("X-Forwarded-Access-Token", "dev-token-admin")
            .header("Authorization", "Bearer dev-token-admin");
        if let Some(cookie) = cookie {
            request = request.header("Cookie", cookie);
        }
        request.send()
    };

    // Act
    let first: serde_json::Value = me(None).await.unwrap().json().await.unwrap();
    let switched = http
        .post(format!("{url}/_dev/user"))
        .json(&serde_json::json!({"user": "bob"}))
        .send()
        .await
        .unwrap();
    let cookie = switched.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let second: serde_json::Value = me(Some(cookie)).await.unwrap().json().await.unwrap();
    let index = http.get(format!("{url}/")).send().await.unwrap();
    let unknown = http
        .post(format!("{url}/_dev/user"))
        .json(&serde_json::json!({"user": "mallory"}))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(first["user_id"], "alice@example.com", "{first}");
    assert_eq!(first["auth_method"], "obo");
    assert_eq!(second["user_id"], "bob@example.com", "{second}");
    assert_eq!(index.status(), 200);
    assert!(index.text().await.unwrap().contains("<html"));
    assert_eq!(unknown.status(), 400);
    assert!(
        dir.join(".dbapp/dbapp.db").exists(),
        "SQLite store under .dbapp/"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn dev_refuses_to_run_inside_databricks_apps() {
    // Act
    let output = dbapp()
        .args(["dev", "--port", "0"])
        .env("DATABRICKS_APP_NAME", "my-app")
        .output()
        .expect("runs");

    // Assert
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("DATABRICKS_APP_NAME"), "{stderr}");
}

#[test]
fn serve_refuses_an_invalid_variable_naming_it() {
    let output = dbapp()
        .arg("serve")
        .env("DATABRICKS_APP_PORT", "eighty")
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("DATABRICKS_APP_PORT"), "{stderr}");
}

#[test]
fn openapi_prints_the_document() {
    let output = dbapp().arg("openapi").output().expect("runs");
    assert!(output.status.success());
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(document["paths"]["/api/user/me"].is_object());
}
