//! Fault injection (status, Retry-After, latency, dropped connections, raw bodies, principal
//! filters, counts and probabilities), the request log and reset, through the handle's typed
//! control methods; then the same control API over HTTP (`/_emulator/`).

use std::time::{Duration, Instant};

use dbapp_emulator::fixture::Settings;
use dbapp_emulator::{ControlError, FaultRule};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{ALICE, BOB, TestEmulator, send, spawn};

const ME: &str = "/api/2.0/preview/scim/v2/Me";

/// Adds a rule the emulator must accept, and returns its id.
fn inject(te: &TestEmulator, rule: FaultRule) -> u64 {
    te.handle.inject_fault(rule).expect("a valid fault rule")
}

#[tokio::test]
async fn a_counted_503_burst_fails_then_recovers() {
    // Arrange
    let te = spawn().await;
    inject(&te, FaultRule::new(ME).status(503).times(2));

    // Act
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(te.get(ME, ALICE).await.0);
    }
    let (_, body) = {
        inject(&te, FaultRule::new(ME).status(503).times(1));
        te.get(ME, ALICE).await
    };

    // Assert
    assert_eq!(
        statuses,
        [
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::OK
        ]
    );
    assert_eq!(body["error_code"], "TEMPORARILY_UNAVAILABLE");
}

#[tokio::test]
async fn a_429_carries_retry_after_and_its_code() {
    // Arrange
    let te = spawn().await;
    inject(
        &te,
        FaultRule::new("/api/2.1/unity-catalog/*")
            .status(429)
            .retry_after_secs(7),
    );

    // Act
    let response = te
        .request(Method::GET, "/api/2.1/unity-catalog/catalogs", ALICE)
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "7");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error_code"], "REQUEST_LIMIT_EXCEEDED");
}

#[tokio::test]
async fn latency_delays_the_answer_without_changing_it() {
    // Arrange
    let te = spawn().await;
    inject(
        &te,
        FaultRule::new(ME)
            .latency(Duration::from_millis(300))
            .times(1),
    );

    // Act
    let started = Instant::now();
    let (status, body) = te.get(ME, ALICE).await;
    let elapsed = started.elapsed();

    // Assert
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["userName"], "alice@example.com");
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
}

#[tokio::test]
async fn a_client_timeout_fires_before_a_slow_answer() {
    // Arrange
    let te = spawn().await;
    inject(&te, FaultRule::new(ME).latency(Duration::from_secs(5)));

    // Act
    let result = te
        .request(Method::GET, ME, ALICE)
        .timeout(Duration::from_millis(200))
        .send()
        .await;

    // Assert
    assert!(result.unwrap_err().is_timeout());
}

#[tokio::test]
async fn a_dropped_connection_gets_no_answer_at_all() {
    // Arrange
    let te = spawn().await;
    inject(&te, FaultRule::new(ME).drop_connection().times(1));

    // Act
    let dropped = te.request(Method::GET, ME, ALICE).send().await;
    let (after, _) = te.get(ME, ALICE).await;

    // Assert
    let error = dropped.unwrap_err();
    assert!(error.is_request() || error.is_connect(), "{error:?}");
    assert!(!error.is_timeout());
    assert_eq!(after, StatusCode::OK);
}

#[tokio::test]
async fn raw_bodies_reproduce_other_error_shapes() {
    // Arrange
    let te = spawn().await;
    inject(
        &te,
        FaultRule::new(ME)
            .times(1)
            .status(403)
            .json_body(json!({"error_code": 403, "message": "Invalid access token."})),
    );
    inject(
        &te,
        FaultRule::new(ME).times(1).status(502).text_body(
            "<html><head><title>502 Bad Gateway</title></head></html>",
            "text/html",
        ),
    );
    inject(
        &te,
        FaultRule::new(ME)
            .times(1)
            .status(500)
            .text_body("", "text/plain"),
    );

    // Act
    let (integer_status, integer) = te.get(ME, ALICE).await;
    let html = te.request(Method::GET, ME, ALICE).send().await.unwrap();
    let html_type = html.headers()["content-type"].to_str().unwrap().to_owned();
    let html_text = html.text().await.unwrap();
    let (empty_status, empty) = te.get(ME, ALICE).await;

    // Assert
    assert_eq!(integer_status, StatusCode::FORBIDDEN);
    assert_eq!(integer["error_code"], 403);
    assert_eq!(html_type, "text/html");
    assert!(html_text.contains("<title>502 Bad Gateway</title>"));
    assert_eq!(empty_status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(empty, serde_json::Value::Null);
}

#[tokio::test]
async fn faults_can_target_one_principal_and_one_method() {
    // Arrange
    let te = spawn().await;
    inject(
        &te,
        FaultRule::new(ME)
            .principal("bob@example.com")
            .method("GET")
            .status(503),
    );

    // Act
    let (alice, _) = te.get(ME, ALICE).await;
    let (bob, _) = te.get(ME, BOB).await;

    // Assert
    assert_eq!(alice, StatusCode::OK);
    assert_eq!(bob, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn probabilistic_faults_fire_some_of_the_time() {
    // Arrange
    let te = spawn().await;
    inject(&te, FaultRule::new(ME).status(503).probability(0.5));

    // Act
    let mut failures = 0;
    for _ in 0..60 {
        if te.get(ME, ALICE).await.0 == StatusCode::SERVICE_UNAVAILABLE {
            failures += 1;
        }
    }

    // Assert: the generator is seeded, so this is deterministic for a fixture seed.
    assert!((10..=50).contains(&failures), "{failures} of 60");
}

#[tokio::test]
async fn faults_are_listed_with_their_counts_and_can_be_cleared() {
    // Arrange
    let te = spawn().await;
    let id = inject(&te, FaultRule::new(ME).status(500));
    te.get(ME, ALICE).await;

    // Act
    let listed = te.handle.faults();
    te.handle.clear_faults();
    let (after, _) = te.get(ME, ALICE).await;

    // Assert
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].id, listed[0].fired), (id, 1));
    assert!(te.handle.faults().is_empty());
    assert_eq!(after, StatusCode::OK);
}

#[tokio::test]
async fn invalid_fault_rules_and_settings_are_refused() {
    let te = spawn().await;
    let probability = te
        .handle
        .inject_fault(FaultRule::new("/x").probability(2.0));
    let status = te.handle.inject_fault(FaultRule::new("/x").status(99));
    let zero_pages = te.handle.update_settings(|s| s.max_page_size = 0);
    assert!(matches!(probability, Err(ControlError::Invalid(_))));
    assert!(matches!(status, Err(ControlError::Invalid(_))));
    assert!(matches!(zero_pages, Err(ControlError::Invalid(_))));
    assert_eq!(
        te.handle.settings().max_page_size,
        Settings::default().max_page_size
    );
}

#[tokio::test]
async fn the_request_log_records_principal_status_fault_and_correlation_id() {
    // Arrange
    let te = spawn().await;
    inject(&te, FaultRule::new(ME).status(503).times(1));

    // Act
    te.request(Method::GET, ME, ALICE)
        .header("x-correlation-id", "corr-123")
        .send()
        .await
        .unwrap();
    te.get(ME, BOB).await;
    te.get("/api/2.1/unity-catalog/catalogs", "bad-token").await;
    let scim = te.handle.requests(ME);
    let all = te.handle.requests("/");

    // Assert
    assert_eq!(scim.len(), 2);
    assert_eq!(scim[0].principal.as_deref(), Some("alice@example.com"));
    assert_eq!(scim[0].status, 503);
    assert!(scim[0].fault);
    assert_eq!(scim[0].correlation_id.as_deref(), Some("corr-123"));
    assert_eq!(scim[1].principal.as_deref(), Some("bob@example.com"));
    assert!(!scim[1].fault);
    assert_eq!(all.len(), 3);
    assert_eq!(all[2].principal, None);
    assert_eq!(all[2].status, 403);
}

#[tokio::test]
async fn reset_clears_faults_settings_and_the_log() {
    // Arrange
    let te = spawn().await;
    inject(&te, FaultRule::new("*").status(500));
    te.handle
        .update_settings(|s| s.empty_pages = true)
        .expect("valid settings");
    te.get(ME, ALICE).await;

    // Act
    te.handle.reset().await;
    let (status, _) = te.get(ME, ALICE).await;

    // Assert
    assert_eq!(status, StatusCode::OK);
    assert!(!te.handle.settings().empty_pages);
    assert_eq!(te.handle.requests("/").len(), 1);
}

// The `/_emulator/` HTTP API, for clients outside the process (the Python SDK tests, demos): the
// same operations as the typed methods above, so these tests pin the wire format and the status
// codes, not the behaviour again.

/// Calls the control API without a token.
async fn control(
    te: &TestEmulator,
    method: Method,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    send(
        te.http
            .request(method, te.url(&format!("/_emulator{path}")))
            .json(&body),
    )
    .await
}

#[tokio::test]
async fn http_fault_rules_use_the_wire_names_and_can_be_listed_and_removed() {
    // Arrange
    let te = spawn().await;
    let (created, rule) = control(
        &te,
        Method::POST,
        "/faults",
        json!({"path": ME, "method": "GET", "principal": "alice@example.com", "count": 1,
            "status": 502, "body": "<html>bad gateway</html>", "content_type": "text/html",
            "retry_after": 3, "latency_ms": 1}),
    )
    .await;
    let id = rule["id"].as_u64().expect("a rule id");

    // Act
    let faulted = te.request(Method::GET, ME, ALICE).send().await.unwrap();
    let (_, listed) = control(&te, Method::GET, "/faults", Value::Null).await;
    let (removed, _) = control(&te, Method::DELETE, &format!("/faults/{id}"), Value::Null).await;
    let (again, _) = control(&te, Method::DELETE, &format!("/faults/{id}"), Value::Null).await;
    control(
        &te,
        Method::POST,
        "/faults",
        json!({"path": ME, "status": 500}),
    )
    .await;
    let (cleared, _) = control(&te, Method::DELETE, "/faults", Value::Null).await;

    // Assert
    assert_eq!(created, StatusCode::CREATED);
    assert_eq!(faulted.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(faulted.headers()["retry-after"], "3");
    assert_eq!(faulted.headers()["content-type"], "text/html");
    assert_eq!(listed["faults"][0]["id"], id);
    assert_eq!(listed["faults"][0]["path"], ME);
    assert_eq!(listed["faults"][0]["fired"], 1);
    assert_eq!(removed, StatusCode::NO_CONTENT);
    assert_eq!(again, StatusCode::NOT_FOUND);
    assert_eq!(cleared, StatusCode::NO_CONTENT);
    assert!(te.handle.faults().is_empty());
}

#[tokio::test]
async fn http_invalid_fault_rules_and_settings_are_refused() {
    let te = spawn().await;
    let (probability, _) = control(
        &te,
        Method::POST,
        "/faults",
        json!({"path": "/x", "probability": 2.0}),
    )
    .await;
    let (unknown_field, _) = control(
        &te,
        Method::POST,
        "/faults",
        json!({"path": "/x", "statuss": 500}),
    )
    .await;
    let (unknown_setting, _) = control(&te, Method::PUT, "/config", json!({"nope": 1})).await;
    let (zero_pages, body) =
        control(&te, Method::PUT, "/config", json!({"max_page_size": 0})).await;
    let (unknown_principal, minted) = control(
        &te,
        Method::POST,
        "/tokens",
        json!({"principal": "mallory@example.com"}),
    )
    .await;
    let (unknown_token, _) = control(
        &te,
        Method::POST,
        "/tokens/expire",
        json!({"token": "nope"}),
    )
    .await;
    assert_eq!(probability, StatusCode::BAD_REQUEST);
    assert_eq!(unknown_field, StatusCode::BAD_REQUEST);
    assert_eq!(unknown_setting, StatusCode::BAD_REQUEST);
    assert_eq!(zero_pages, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE");
    assert_eq!(unknown_principal, StatusCode::NOT_FOUND);
    assert_eq!(minted["error_code"], "RESOURCE_DOES_NOT_EXIST");
    assert_eq!(unknown_token, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn http_tokens_settings_log_and_reset_drive_the_same_state() {
    // Arrange
    let te = spawn().await;

    // Act: mint, expire and revoke tokens; patch a setting; read and clear the log; reset.
    let (_, minted) = control(
        &te,
        Method::POST,
        "/tokens",
        json!({"principal": "bob@example.com", "ttl_secs": 600}),
    )
    .await;
    let token = minted["token"].as_str().expect("a minted token").to_owned();
    let (fresh, _) = te.get(ME, &token).await;
    let (expired, _) = control(&te, Method::POST, "/tokens/expire", json!({"token": token})).await;
    let (revoked, _) = control(&te, Method::POST, "/tokens/revoke", json!({"token": ALICE})).await;
    let (_, expired_body) = te.get(ME, &token).await;
    let (_, revoked_body) = te.get(ME, ALICE).await;
    let (patched, settings) =
        control(&te, Method::PUT, "/config", json!({"empty_pages": true})).await;
    let (_, log) = control(
        &te,
        Method::GET,
        &format!("/requests?path_prefix={ME}&since=1"),
        Value::Null,
    )
    .await;
    let (log_cleared, _) = control(&te, Method::DELETE, "/requests", Value::Null).await;
    // Nothing after the clear: the DELETE itself, like every control call, is not logged.
    let after_clear = te.handle.requests("/").len();
    let (reset, _) = control(&te, Method::POST, "/reset", Value::Null).await;
    let (_, info) = control(&te, Method::GET, "/info", Value::Null).await;
    let (after_reset, _) = te.get(ME, ALICE).await;

    // Assert
    assert_eq!(fresh, StatusCode::OK);
    assert!(minted["expires_at"].as_str().is_some(), "{minted}");
    assert_eq!(
        (expired, revoked),
        (StatusCode::NO_CONTENT, StatusCode::NO_CONTENT)
    );
    assert_eq!(expired_body["message"], "JWT has expired");
    assert_eq!(revoked_body["message"], "Invalid access token.");
    assert_eq!(patched, StatusCode::OK);
    assert_eq!(settings["empty_pages"], true);
    let logged: Vec<_> = log["requests"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| r["seq"].as_u64())
        .collect();
    assert_eq!(logged, [Some(2), Some(3)], "{log}");
    assert_eq!(log["requests"][1]["principal"], serde_json::Value::Null);
    assert_eq!(log_cleared, StatusCode::NO_CONTENT);
    assert_eq!(after_clear, 0);
    assert_eq!(reset, StatusCode::NO_CONTENT);
    assert_eq!(info["settings"]["empty_pages"], false);
    assert_eq!(after_reset, StatusCode::OK);
}

#[tokio::test]
async fn http2_cleartext_is_served_too() {
    // Arrange
    let te = spawn().await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();

    // Act
    let response = h2.get(te.url(ME)).bearer_auth(ALICE).send().await.unwrap();

    // Assert
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::OK);
}
