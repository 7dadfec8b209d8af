//! The server loop: HTTP/2 cleartext, and graceful shutdown with requests in flight.

use dbapp_emulator::FaultRule;
use serde_json::json;

use crate::app::{ALICE, spawn_app};

#[tokio::test]
async fn http2_cleartext_is_served_with_prior_knowledge() {
    let app = spawn_app().await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = h2
        .get(app.url("/api/user/me"))
        .header("X-Forwarded-Access-Token", ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish_then_stops_accepting() {
    // Arrange: a model call that takes 500 ms upstream.
    let mut app = spawn_app().await;
    app.emulator
        .inject_fault(
            FaultRule::new("/serving-endpoints/echo/invocations")
                .latency(std::time::Duration::from_millis(500)),
        )
        .unwrap();
    let in_flight = app
        .invoke(ALICE, "echo", &json!({"inputs": {"x": 1}}))
        .send();
    let in_flight = tokio::spawn(in_flight);
    // The request has reached the emulator once the fault has fired.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while app.emulator.requests("/serving-endpoints/echo").is_empty()
        && std::time::Instant::now() < deadline
    {
        tokio::task::yield_now().await;
    }

    // Act
    let started = std::time::Instant::now();
    app.stop().await.unwrap();
    let stopped_after = started.elapsed();

    // Assert
    let response = in_flight.await.unwrap();
    assert_eq!(response.status(), 200, "the in-flight request finished");
    assert!(stopped_after < std::time::Duration::from_secs(15));
    assert!(
        reqwest::Client::new()
            .get(app.url("/health"))
            .send()
            .await
            .is_err(),
        "no longer accepting"
    );
}
