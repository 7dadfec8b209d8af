//! The Host rule: on loopback the emulator answers only requests addressed to a loopback name,
//! so a DNS-rebound web page cannot reach its control API or its workspace APIs.

use dbapp_emulator::EmulatorConfig;
use reqwest::StatusCode;

use crate::support::{ALICE, TestEmulator, send, spawn};

#[tokio::test]
async fn a_request_addressed_to_another_host_is_refused_on_loopback() {
    // Arrange
    let emulator = spawn().await;

    // Act
    let info = send(
        emulator
            .http
            .get(emulator.url("/_emulator/info"))
            .header("Host", "evil.example"),
    )
    .await;
    let minted = send(
        emulator
            .http
            .post(emulator.url("/_emulator/tokens"))
            .header(
                "Host",
                format!("evil.example:{}", emulator.handle.addr().port()),
            )
            .json(&serde_json::json!({"user_name": "alice@example.com"})),
    )
    .await;
    let me = send(
        emulator
            .request(reqwest::Method::GET, "/api/2.0/preview/scim/v2/Me", ALICE)
            .header("Host", "evil.example"),
    )
    .await;

    // Assert
    for (status, body) in [info, minted, me] {
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["error_code"], "PERMISSION_DENIED", "{body}");
    }
}

#[tokio::test]
async fn loopback_names_are_answered() {
    // Arrange
    let emulator = spawn().await;
    let port = emulator.handle.addr().port();

    for host in [
        format!("localhost:{port}"),
        format!("LOCALHOST:{port}"),
        format!("127.0.0.1:{port}"),
        "localhost".to_owned(),
        format!("[::1]:{port}"),
    ] {
        // Act
        let (status, body) = send(
            emulator
                .request(reqwest::Method::GET, "/api/2.0/preview/scim/v2/Me", ALICE)
                .header("Host", &host),
        )
        .await;

        // Assert
        assert_eq!(status, StatusCode::OK, "{host}: {body}");
        assert_eq!(body["userName"], "alice@example.com", "{host}");
    }
}

#[tokio::test]
async fn an_emulator_bound_beyond_loopback_answers_any_host() {
    // Arrange: bound on every interface, it is meant to be reached by other names.
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = dbapp_emulator::start(listener, EmulatorConfig::default())
        .await
        .unwrap();
    let emulator = TestEmulator {
        handle,
        http: reqwest::Client::new(),
    };

    // Act
    let (status, body) = send(
        emulator
            .http
            .get(format!("http://127.0.0.1:{port}/_emulator/info"))
            .header("Host", format!("devbox.internal:{port}")),
    )
    .await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{body}");
}
