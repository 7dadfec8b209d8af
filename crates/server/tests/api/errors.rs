//! The HTTP edge: unknown routes and methods, security headers, correlation ids, CORS, and how
//! workspace denials and the request deadline become error envelopes.

use std::time::Duration;

use crate::app::{ALICE, assert_error, spawn_app};
use dbapp_emulator::FaultRule;
use dbapp_server::ErrorCode;

#[tokio::test]
async fn unknown_api_route_returns_route_not_found() {
    let app = spawn_app().await;
    let response = app
        .get("/api/nope", Some(ALICE))
        .header("X-Request-Id", "from-proxy")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-correlation-id"], "from-proxy");
    assert_error(response, 404, "ROUTE_NOT_FOUND").await;
}

#[tokio::test]
async fn wrong_method_returns_method_not_allowed() {
    let app = spawn_app().await;
    let response = app
        .http
        .delete(app.url("/api/user/me"))
        .send()
        .await
        .unwrap();
    assert_error(response, 405, "METHOD_NOT_ALLOWED").await;
}

#[tokio::test]
async fn non_api_paths_serve_the_ui_placeholder() {
    let app = spawn_app().await;
    let response = app.get("/some/client/route", None).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(response.headers().contains_key("x-correlation-id"));
    let text = response.text().await.unwrap();
    let index = app.get_text("/", None).await;
    assert!(text.contains("<html"), "{text}");
    assert_eq!(text, index, "client routes get index.html");
}

#[tokio::test]
async fn security_headers_are_set() {
    let app = spawn_app().await;
    let response = app.health().send().await;
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(response.headers()["x-frame-options"], "DENY");
}

#[tokio::test]
async fn a_generated_correlation_id_is_a_uuid() {
    let app = spawn_app().await;
    let response = app
        .get("/api/nope", None)
        .header("X-Correlation-ID", "bad id!")
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-correlation-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(uuid_like(&id), "{id}");
}

fn uuid_like(id: &str) -> bool {
    id.len() == 36 && id.chars().filter(|c| *c == '-').count() == 4
}

#[test]
fn every_error_code_has_a_documented_status() {
    for code in ErrorCode::ALL {
        assert!(code.status().as_u16() >= 400, "{code:?}");
    }
}

#[tokio::test]
async fn an_unreadable_stored_row_is_internal_error_without_details() {
    // Arrange: a history row whose inputs are not JSON, written behind the store's back.
    let app = spawn_app().await;
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        app.db_path.as_ref().unwrap().display()
    ))
    .await
    .unwrap();
    // Written now, so that the retention task (90 days of history) leaves it alone.
    sqlx::query("INSERT INTO model_inference_logs (request_id, user_id, endpoint_name, status, inputs, execution_time_ms, created_at) VALUES ('r1', 'alice@example.com', 'echo', 'SUCCESS', '{not json', 1, ?)")
        .bind(chrono::Utc::now().timestamp_micros())
        .execute(&pool)
        .await
        .unwrap();

    // Act
    let response = app.list_inference_logs(ALICE, "").send().await;

    // Assert
    let body = assert_error(response, 500, "INTERNAL_ERROR").await;
    assert_eq!(body["message"], "An internal error occurred.");
}

#[tokio::test]
async fn a_workspace_denial_is_permission_denied() {
    let app = spawn_app().await;
    app.emulator
        .inject_fault(
            FaultRule::new("/api/2.1/unity-catalog/catalogs")
                .status(403)
                .error_code("PERMISSION_DENIED"),
        )
        .unwrap();
    assert_error(
        app.list_catalogs(ALICE, "").send().await,
        403,
        "PERMISSION_DENIED",
    )
    .await;
}

/// Lemmy's rule: every code of the contract is produced by some test of the real server.
#[test]
fn every_error_code_is_produced_by_a_test() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api");
    let mut sources = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("errors.rs") {
            sources.push_str(&std::fs::read_to_string(path).unwrap());
        }
    }
    let own = include_str!("errors.rs");
    sources.push_str(own);
    for code in ErrorCode::ALL {
        let needle = format!("\"{}\"", code.as_str());
        assert!(
            sources.contains(&needle),
            "no test produces {}",
            code.as_str()
        );
    }
}

#[tokio::test]
async fn cors_answers_only_configured_origins() {
    // Arrange
    let open = crate::app::spawn_app_with(crate::app::Options {
        env: vec![("DBAPP_CORS_ORIGINS", "http://localhost:5173")],
        ..Default::default()
    })
    .await;
    let closed = spawn_app().await;
    let preflight = |app: &crate::app::TestApp, origin: &str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.url("/api/user/me"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "GET")
            .send()
    };

    // Act
    let allowed = preflight(&open, "http://localhost:5173").await.unwrap();
    let other = preflight(&open, "http://evil.example").await.unwrap();
    let none = preflight(&closed, "http://localhost:5173").await.unwrap();

    // Assert
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    assert!(other.headers().get("access-control-allow-origin").is_none());
    assert!(none.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn the_request_deadline_answers_upstream_timeout() {
    // Arrange: a 1 s deadline and a SCIM lookup that takes 3 s.
    let app = crate::app::spawn_app_with(crate::app::Options {
        env: vec![("DBAPP_REQUEST_TIMEOUT_SECS", "1")],
        ..Default::default()
    })
    .await;
    app.emulator
        .inject_fault(
            FaultRule::new("/api/2.0/preview/scim/v2/Me").latency(Duration::from_millis(3000)),
        )
        .unwrap();

    // Act
    let started = std::time::Instant::now();
    let response = app.me(ALICE).send().await;

    // Assert
    assert_error(response, 504, "UPSTREAM_TIMEOUT").await;
    assert!(started.elapsed() < Duration::from_millis(2500));
}
