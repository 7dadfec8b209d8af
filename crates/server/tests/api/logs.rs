//! The JSON log lines: flat, one per request, and never containing a token.

use crate::app::{ADMIN, ALICE, BOB, captured_logs, spawn_app};

#[tokio::test]
async fn log_lines_are_flat_json_and_never_contain_a_token() {
    // Arrange
    let app = spawn_app().await;

    // Act: a few requests with known tokens, good and bad.
    for token in [ALICE, BOB, ADMIN, "dev-token-not-real"] {
        let _ = app
            .me(token)
            .header("X-Correlation-ID", "log-test-1")
            .send()
            .await;
    }
    let _ = app.metrics(ALICE).send().await;

    // Assert
    let logs = captured_logs();
    let mut access_lines = 0;
    for line in logs.lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(value.get("timestamp").is_some(), "{line}");
        assert!(value.get("level").is_some(), "{line}");
        if value["correlation_id"] == "log-test-1" && value["event"] == "http.request" {
            access_lines += 1;
            assert_eq!(value["route"], "/api/user/me", "{line}");
            assert!(value.get("status").is_some());
            assert!(value.get("duration_ms").is_some());
            assert_eq!(value["auth_method"], "obo", "{line}");
        }
        for token in [ALICE, BOB, ADMIN, "dev-token-not-real", "dev-secret"] {
            assert!(!line.contains(token), "a secret in a log line: {line}");
        }
    }
    assert_eq!(access_lines, 4, "one access line per request");
    assert!(logs.contains(r#""user_id":"alice@example.com""#));
}
