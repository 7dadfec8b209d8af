//! `dbapp dev` against what a browser can be made to send: it answers every request as a
//! signed-in user, so it refuses requests addressed to other names (DNS rebinding) and
//! state-changing requests from other sites, and never exposes the emulator's control API.

use std::io::{Read, Write};

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::start_dev;

/// A fresh directory for one `dbapp dev`, removed when the test ends.
fn dev_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("dbapp-dev-guard-")
        .tempdir()
        .unwrap()
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn a_request_addressed_to_another_host_is_refused_without_an_identity() {
    // Arrange
    let dir = dev_dir();
    let (_running, url) = start_dev(dir.path());
    let port = port_of(&url);
    let http = reqwest::Client::new();
    let get = |path: &str, host: String| http.get(format!("{url}{path}")).header("Host", host);

    // Act: a page at evil.example, its name rebound to 127.0.0.1, names itself in Host.
    let mut refused = Vec::new();
    for (path, host) in [
        ("/api/user/me", "evil.example".to_owned()),
        ("/api/user/me", format!("evil.example:{port}")),
        ("/api/user/me", format!("localhost.evil.example:{port}")),
        ("/_dev/user", format!("evil.example:{port}")),
        ("/", format!("evil.example:{port}")),
    ] {
        refused.push((
            host.clone(),
            json_of(get(path, host).send().await.unwrap()).await,
        ));
    }
    // HTTP/1.0 without Host: no browser sends it, and whom it is for cannot be told.
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(b"GET /api/user/me HTTP/1.0\r\n\r\n")
        .unwrap();
    let mut without_host = String::new();
    stream.read_to_string(&mut without_host).unwrap();

    // Assert
    for (host, (status, body)) in refused {
        assert_eq!(status, StatusCode::FORBIDDEN, "{host}: {body}");
        assert_eq!(body["error_code"], "PERMISSION_DENIED", "{host}: {body}");
        assert_eq!(body["detail"]["header"], "Host", "{body}");
        assert!(!body.to_string().contains("alice"), "{body}");
    }
    assert!(without_host.starts_with("HTTP/1.0 403"), "{without_host}");
    assert!(!without_host.contains("alice"), "{without_host}");
}

#[tokio::test]
async fn loopback_hosts_are_served_over_http1_and_http2() {
    // Arrange
    let dir = dev_dir();
    let (_running, url) = start_dev(dir.path());
    let port = port_of(&url);
    let http = reqwest::Client::new();
    // h2c sends no Host header: the name is in `:authority`.
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();

    // Act
    let mut answers = Vec::new();
    for host in [
        format!("localhost:{port}"),
        format!("LocalHost:{port}"),
        format!("127.0.0.1:{port}"),
        "localhost".to_owned(),
    ] {
        let response = http
            .get(format!("{url}/api/user/me"))
            .header("Host", &host)
            .send()
            .await
            .unwrap();
        answers.push((host, json_of(response).await));
    }
    let over_h2 = h2
        .get(format!("http://localhost:{port}/api/user/me"))
        .send()
        .await
        .unwrap();
    let version = over_h2.version();
    answers.push((format!("h2 {version:?}"), json_of(over_h2).await));

    // Assert
    assert_eq!(version, reqwest::Version::HTTP_2);
    for (host, (status, body)) in answers {
        assert_eq!(status, StatusCode::OK, "{host}: {body}");
        assert_eq!(body["user_id"], "alice@example.com", "{host}: {body}");
    }
}

#[tokio::test]
async fn cross_site_state_changes_are_refused_and_store_nothing() {
    // Arrange
    let dir = dev_dir();
    let (_running, url) = start_dev(dir.path());
    let http = reqwest::Client::new();
    // A text/plain POST needs no CORS preflight, so a cross-site page can send it blind.
    let beacon = || {
        http.post(format!("{url}/api/v1/metrics/usage-events"))
            .header("Content-Type", "text/plain")
            .body(
                json!({"events": [{"event_type": "click", "timestamp": chrono::Utc::now()}]})
                    .to_string(),
            )
    };
    let count = || async {
        let response = http
            .get(format!("{url}/api/v1/metrics/usage/count?time_range=30d"))
            .send()
            .await
            .unwrap();
        json_of(response).await.1["count"].clone()
    };

    // Act
    let cross_origin = json_of(
        beacon()
            .header("Origin", "http://evil.example")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let cross_site = json_of(
        beacon()
            .header("Sec-Fetch-Site", "cross-site")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let switch_user = http
        .post(format!("{url}/_dev/user"))
        .header("Origin", "http://evil.example")
        .json(&json!({"user": "admin"}))
        .send()
        .await
        .unwrap();
    let switch_status = switch_user.status();
    let switch_cookie = switch_user.headers().get("set-cookie").cloned();
    let count_after_refusals = count().await;
    let same_origin = beacon()
        .header("Origin", url.clone())
        .header("Sec-Fetch-Site", "same-origin")
        .send()
        .await
        .unwrap();
    let same_origin_status = same_origin.status();
    let count_after_same_origin = count().await;
    let own_switch = http
        .post(format!("{url}/_dev/user"))
        .header("Origin", url.clone())
        .json(&json!({"user": "bob"}))
        .send()
        .await
        .unwrap();

    // Assert
    for (status, body) in [cross_origin, cross_site] {
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["error_code"], "PERMISSION_DENIED", "{body}");
    }
    assert_eq!(switch_status, StatusCode::FORBIDDEN);
    assert!(switch_cookie.is_none(), "{switch_cookie:?}");
    assert_eq!(count_after_refusals, 0);
    assert_eq!(same_origin_status, StatusCode::ACCEPTED);
    assert_eq!(count_after_same_origin, 1);
    assert_eq!(own_switch.status(), StatusCode::OK);
    let cookie = own_switch.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
}

#[tokio::test]
async fn the_emulator_control_api_is_not_reachable_through_the_app() {
    // Arrange
    let dir = dev_dir();
    let (_running, url) = start_dev(dir.path());
    let http = reqwest::Client::new();

    // Act
    let info = http
        .get(format!("{url}/_emulator/info"))
        .send()
        .await
        .unwrap();
    let info_type = info.headers().get("content-type").cloned();
    let info_body = info.text().await.unwrap();
    let mint = http
        .post(format!("{url}/_emulator/tokens"))
        .json(&json!({"user_name": "admin@example.com"}))
        .send()
        .await
        .unwrap();
    let mint_status = mint.status();
    let mint_body = mint.text().await.unwrap();

    // Assert: the SPA's page at most, never the emulator's answer.
    assert!(!info_body.contains("workspace_id"), "{info_body}");
    assert!(
        info_type
            .as_ref()
            .is_none_or(|t| t.to_str().unwrap().starts_with("text/html")),
        "{info_type:?}"
    );
    assert!(mint_status.is_client_error(), "{mint_status}: {mint_body}");
    assert!(!mint_body.contains("access_token"), "{mint_body}");
}

#[tokio::test]
async fn dev_lakebase_stores_through_the_front_its_banner_names() {
    // Arrange: `dbapp dev --lakebase` with its banner (stderr) read until the lakebase line.
    let dir = dev_dir();
    let mut child = super::dbapp()
        .args(["dev", "--lakebase", "--port", "0"])
        .current_dir(dir.path())
        .env_remove("DATABRICKS_APP_NAME")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("dbapp starts");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let _running = super::Running(child);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("dbapp dev: serving on ")
        .unwrap()
        .to_owned();
    let banner = loop {
        let mut line = String::new();
        assert!(
            std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() > 0,
            "no banner"
        );
        if line.contains("lakebase: PGHOST=") {
            break line;
        }
    };
    let var = |name: &str| {
        banner
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} in {banner}"))
            .to_owned()
    };
    let (host, port) = (var("PGHOST"), var("PGPORT").parse::<u16>().unwrap());
    let mut psql_line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut psql_line).unwrap();
    let recipe = psql_line
        .trim()
        .strip_prefix("psql as the app: ")
        .unwrap_or_else(|| panic!("the psql recipe follows the banner: {psql_line}"))
        .replace(
            "dbapp token",
            &format!("{} token", env!("CARGO_BIN_EXE_dbapp")),
        )
        .replace(
            "; psql",
            &format!(
                "; {} -Atc 'SELECT current_user'",
                crate::token::psql().display()
            ),
        );
    let http = reqwest::Client::new();

    // Act: the app writes through its store, and a PAT is tried at the front.
    let put = http
        .put(format!("{url}/api/preferences/theme"))
        .json(&json!("dark"))
        .send()
        .await
        .unwrap();
    let got = http
        .get(format!("{url}/api/preferences/theme"))
        .send()
        .await
        .unwrap();
    let pat = sqlx::postgres::PgConnectOptions::new_without_pgpass()
        .host(&host)
        .port(port)
        .username("alice@example.com")
        .password("dev-token-alice")
        .database(&var("PGDATABASE"))
        .ssl_mode(sqlx::postgres::PgSslMode::Require);
    let refused = sqlx::ConnectOptions::connect(&pat).await;
    let psql = tokio::process::Command::new("sh")
        .args(["-c", &recipe])
        .output()
        .await
        .unwrap();

    // Assert
    assert!(put.status().is_success(), "{}", put.status());
    let (status, body) = json_of(got).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["value"], "dark");
    match refused {
        Err(sqlx::Error::Database(e)) => assert_eq!(
            e.message(),
            "password authentication failed for user \"alice@example.com\""
        ),
        other => panic!("the front took a PAT: {:?}", other.map(|_| ())),
    }
    assert!(
        psql.status.success(),
        "{}",
        String::from_utf8_lossy(&psql.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&psql.stdout).trim(), "dbapp-sp");
}

#[test]
fn against_a_real_workspace_the_banner_names_it_and_offers_no_demo_users() {
    // Arrange: the emulator stands in for a real workspace, reached with one user's token.
    let mut emulator = crate::Running(
        crate::dbapp()
            .args(["emulate", "--port", "0"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let host = crate::emulator_url(&mut emulator);
    let dir = tempfile::tempdir().unwrap();

    // Act
    let mut dev = crate::Running(
        crate::dbapp()
            .args(["dev", "--port", "0", "--workspace", &host])
            .current_dir(dir.path())
            .env("DATABRICKS_USER_TOKEN", "dev-token-alice")
            .env("DATABRICKS_CLIENT_ID", "dbapp-sp")
            .env("DATABRICKS_CLIENT_SECRET", "dev-secret")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = dev.0.stderr.take().unwrap();
    let banner = std::io::BufRead::lines(std::io::BufReader::new(stderr))
        .map_while(Result::ok)
        .find(|line| line.contains("workspace: "))
        .expect("the banner");

    // Assert
    assert!(banner.contains(&format!("workspace: {host}")), "{banner}");
    assert!(banner.contains("user: me"), "{banner}");
    assert!(!banner.contains("bob"), "{banner}");
    assert!(!banner.contains("_dev/user"), "{banner}");
}

/// Everything `dbapp dev` with `args` prints, stdout and stderr through one pipe (so in the
/// order written), before its `serving on` line, in a terminal-like environment whose output is
/// nevertheless a pipe.
fn lines_before_serving(args: &[&str]) -> Vec<String> {
    let dir = dev_dir();
    let (reader, writer) = std::io::pipe().unwrap();
    let mut command = super::dbapp();
    command
        .arg("dev")
        .args(args)
        .current_dir(dir.path())
        .env_remove("DATABRICKS_APP_NAME")
        .env_remove("NO_COLOR")
        .env("TERM", "xterm-256color")
        .stdout(writer.try_clone().unwrap())
        .stderr(writer);
    let child = command.spawn().expect("dbapp starts");
    // The parent's copies of the write end go, so the pipe ends when dbapp does.
    drop(command);
    let _running = super::Running(child);
    let mut before = Vec::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(reader)) {
        let line = line.unwrap();
        if line.starts_with("dbapp dev: serving on ") {
            return before;
        }
        before.push(line);
    }
    panic!("dbapp dev ended before serving: {before:#?}");
}

/// The named steps appear in order in `lines`, each followed by its `✓ … (n.n s)` line, and
/// nothing is coloured.
fn assert_steps(lines: &[String], steps: &[&str]) {
    let mut from = 0;
    for step in steps {
        let at = from
            + lines[from..]
                .iter()
                .position(|l| l.starts_with(step))
                .unwrap_or_else(|| panic!("no `{step}` line, in order: {lines:#?}"));
        // Its outcome comes before the next step starts.
        let done = lines[at + 1..]
            .iter()
            .take_while(|l| !l.starts_with('['))
            .find(|l| l.trim_start().starts_with('✓'))
            .unwrap_or_else(|| panic!("no outcome after {}: {lines:#?}", lines[at]));
        assert!(done.trim_end().ends_with(" s)"), "{done}");
        from = at + 1;
    }
    assert!(lines.iter().all(|l| !l.contains('\x1b')), "{lines:#?}");
}

#[test]
fn dev_lakebase_prints_each_start_up_step_with_its_time_before_serving() {
    // Act
    let lines = lines_before_serving(&["--lakebase", "--port", "0"]);

    // Assert
    assert_steps(
        &lines,
        &["[1/3] postgres: ", "[2/3] emulator: ", "[3/3] server: "],
    );
}

#[test]
fn dev_on_sqlite_prints_its_two_steps_before_serving() {
    // Act
    let lines = lines_before_serving(&["--port", "0"]);

    // Assert
    assert_steps(&lines, &["[1/2] emulator: ", "[2/2] server: "]);
}
