//! Fault injection (status, Retry-After, latency, dropped connections, raw bodies, principal
//! filters, counts and probabilities) and the request log.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{ALICE, BOB, send, spawn};

const ME: &str = "/api/2.0/preview/scim/v2/Me";

#[tokio::test]
async fn a_counted_503_burst_fails_then_recovers() {
    // Arrange
    let te = spawn().await;
    te.inject(json!({"path": ME, "status": 503, "count": 2}))
        .await;

    // Act
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(te.get(ME, ALICE).await.0);
    }
    let (_, body) = {
        te.inject(json!({"path": ME, "status": 503, "count": 1}))
            .await;
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
    te.inject(json!({"path": "/api/2.1/unity-catalog/*", "status": 429, "retry_after": 7}))
        .await;

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
    te.inject(json!({"path": ME, "latency_ms": 300, "count": 1}))
        .await;

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
    te.inject(json!({"path": ME, "latency_ms": 5000})).await;

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
    te.inject(json!({"path": ME, "drop_connection": true, "count": 1}))
        .await;

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
    te.inject(json!({"path": ME, "count": 1, "status": 403,
        "body": {"error_code": 403, "message": "Invalid access token."}}))
        .await;
    te.inject(json!({"path": ME, "count": 1, "status": 502,
        "body": "<html><head><title>502 Bad Gateway</title></head></html>", "content_type": "text/html"})).await;
    te.inject(json!({"path": ME, "count": 1, "status": 500, "body": ""}))
        .await;

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
    te.inject(json!({"path": ME, "principal": "bob@example.com", "method": "GET", "status": 503}))
        .await;

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
    te.inject(json!({"path": ME, "status": 503, "probability": 0.5}))
        .await;

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
async fn faults_are_listed_with_their_counts_and_can_be_removed() {
    // Arrange
    let te = spawn().await;
    let id = te.inject(json!({"path": ME, "status": 500})).await;
    te.get(ME, ALICE).await;

    // Act
    let (_, listed) = send(te.http.get(te.url("/_emulator/faults"))).await;
    let (removed, _) = send(te.http.delete(te.url(&format!("/_emulator/faults/{id}")))).await;
    let (after, _) = te.get(ME, ALICE).await;
    let (again, _) = send(te.http.delete(te.url(&format!("/_emulator/faults/{id}")))).await;

    // Assert
    assert_eq!(listed["faults"][0]["fired"], 1);
    assert_eq!(removed, StatusCode::NO_CONTENT);
    assert_eq!(after, StatusCode::OK);
    assert_eq!(again, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn invalid_fault_rules_and_settings_are_refused() {
    let te = spawn().await;
    let (probability, _) = te
        .control("/faults", json!({"path": "/x", "probability": 2.0}))
        .await;
    let (unknown_field, _) = te
        .control("/faults", json!({"path": "/x", "statuss": 500}))
        .await;
    let (unknown_setting, _) = send(
        te.http
            .put(te.url("/_emulator/config"))
            .json(&json!({"nope": 1})),
    )
    .await;
    let (zero_pages, _) = send(
        te.http
            .put(te.url("/_emulator/config"))
            .json(&json!({"max_page_size": 0})),
    )
    .await;
    assert_eq!(probability, StatusCode::BAD_REQUEST);
    assert_eq!(unknown_field, StatusCode::BAD_REQUEST);
    assert_eq!(unknown_setting, StatusCode::BAD_REQUEST);
    assert_eq!(zero_pages, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_request_log_records_principal_status_fault_and_correlation_id() {
    // Arrange
    let te = spawn().await;
    te.inject(json!({"path": ME, "status": 503, "count": 1}))
        .await;

    // Act
    te.request(Method::GET, ME, ALICE)
        .header("x-correlation-id", "corr-123")
        .send()
        .await
        .unwrap();
    te.get(ME, BOB).await;
    te.get("/api/2.1/unity-catalog/catalogs", "bad-token").await;
    let scim = te.requests(ME).await;
    let all = te.requests("/").await;

    // Assert
    assert_eq!(scim.len(), 2);
    assert_eq!(scim[0]["principal"], "alice@example.com");
    assert_eq!(scim[0]["status"], 503);
    assert_eq!(scim[0]["fault"], true);
    assert_eq!(scim[0]["correlation_id"], "corr-123");
    assert_eq!(scim[1]["principal"], "bob@example.com");
    assert_eq!(scim[1]["fault"], false);
    assert_eq!(all.len(), 3, "control calls are not logged");
    assert_eq!(all[2]["principal"], serde_json::Value::Null);
    assert_eq!(all[2]["status"], 403);
}

#[tokio::test]
async fn reset_clears_faults_settings_and_the_log() {
    // Arrange
    let te = spawn().await;
    te.inject(json!({"path": "*", "status": 500})).await;
    te.configure(json!({"empty_pages": true})).await;
    te.get(ME, ALICE).await;

    // Act
    te.control("/reset", json!({})).await;
    let (status, _) = te.get(ME, ALICE).await;
    let (_, info) = send(te.http.get(te.url("/_emulator/info"))).await;

    // Assert
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["settings"]["empty_pages"], false);
    assert_eq!(te.requests("/").await.len(), 1);
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
