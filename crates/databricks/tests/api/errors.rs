//! Every error body shape of UPSTREAM §3.1, as the workspace (or a proxy) sends it.

use std::time::Duration;

use dbapp_databricks::ErrorKind;
use dbapp_emulator::FaultRule;
use serde_json::json;

use crate::support::{TestWorkspace, user};

const ME: &str = "/api/2.0/preview/scim/v2/Me";

#[tokio::test]
async fn unknown_token_is_invalid_token_from_integer_403() {
    let workspace = TestWorkspace::start().await;
    let error = workspace
        .client()
        .as_user(&user("no-such-token"))
        .me()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidToken);
    assert_eq!(error.status(), Some(403));
    assert_eq!(error.error_code(), Some("403"));
    assert_eq!(error.message(), "Invalid access token.");
    assert!(!error.to_string().contains("no-such-token"));
    assert_eq!(error.attempts(), 1);
}

#[tokio::test]
async fn expired_user_jwt_is_token_expired_and_not_retried() {
    // Arrange
    let workspace = TestWorkspace::start().await;
    let token = workspace
        .emulator
        .mint_token("alice@example.com", Duration::from_secs(600))
        .unwrap();
    let client = workspace.client();
    let alice = user(&token);
    client.as_user(&alice).me().await.unwrap();
    workspace.emulator.expire_token(&token).await.unwrap();
    workspace.emulator.clear_requests();

    // Act
    let error = client.as_user(&alice).me().await.unwrap_err();

    // Assert
    assert_eq!(error.kind(), ErrorKind::TokenExpired);
    assert_eq!(error.message(), "JWT has expired");
    assert_eq!(workspace.emulator.requests(ME).len(), 1);
}

#[tokio::test]
async fn short_lived_user_token_expires_on_its_own() {
    let workspace = TestWorkspace::start().await;
    let token = workspace
        .emulator
        .mint_token("bob@example.com", Duration::from_secs(1))
        .unwrap();
    let client = workspace.client();
    let bob = user(&token);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let error = client.as_user(&bob).me().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::TokenExpired);
}

/// A rule that fires once on SCIM Me.
fn once_on_me() -> FaultRule {
    FaultRule::new(ME).times(1)
}

/// Injects one faulty answer on SCIM Me and returns the error the client makes of it.
async fn error_for(rule: FaultRule) -> dbapp_databricks::DatabricksError {
    let workspace = TestWorkspace::start().await;
    workspace.emulator.inject_fault(rule).unwrap();
    workspace
        .client()
        .as_user(&user("dev-token-alice"))
        .me()
        .await
        .unwrap_err()
}

#[tokio::test]
async fn string_error_code_with_details_is_parsed() {
    let error = error_for(once_on_me().status(404).json_body(json!({
        "error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Catalog 'x' does not exist.",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "CATALOG_MISSING", "domain": "unity-catalog", "metadata": {}},
            {"@type": "type.googleapis.com/google.rpc.RequestInfo", "request_id": "r-1", "serving_data": ""}
        ]})))
    .await;
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert_eq!(error.error_code(), Some("RESOURCE_DOES_NOT_EXIST"));
    assert_eq!(error.details().reason.as_deref(), Some("CATALOG_MISSING"));
    assert_eq!(error.details().request_id.as_deref(), Some("r-1"));
}

#[tokio::test]
async fn integer_403_jwt_expired_from_a_fault_is_token_expired() {
    let error = error_for(
        once_on_me()
            .status(403)
            .json_body(json!({"error_code": 403, "message": "JWT has expired"})),
    )
    .await;
    assert_eq!(error.kind(), ErrorKind::TokenExpired);
}

#[tokio::test]
async fn permission_denied_is_not_a_token_problem() {
    let error = error_for(
        once_on_me()
            .status(403)
            .error_code("PERMISSION_DENIED")
            .message("no access"),
    )
    .await;
    assert_eq!(error.kind(), ErrorKind::PermissionDenied);
}

#[tokio::test]
async fn unauthenticated_401_is_parsed() {
    let error = error_for(once_on_me().status(401)).await;
    assert_eq!(error.kind(), ErrorKind::Unauthenticated);
    assert_eq!(error.error_code(), Some("UNAUTHENTICATED"));
}

#[tokio::test]
async fn api_1_2_error_body_is_parsed() {
    let error = error_for(
        once_on_me()
            .status(400)
            .json_body(json!({"error": "Bad request from 1.2"})),
    )
    .await;
    assert_eq!(error.kind(), ErrorKind::BadRequest);
    assert_eq!(error.message(), "Bad request from 1.2");
}

#[tokio::test]
async fn scim_error_body_is_parsed() {
    let error = error_for(once_on_me().status(404).json_body(
        json!({"detail": "User not found", "status": "404", "scimType": "invalidValue"}),
    ))
    .await;
    assert_eq!(error.error_code(), Some("SCIM_404"));
    assert_eq!(error.message(), "User not found");
}

#[tokio::test]
async fn plain_text_error_body_is_parsed() {
    let error = error_for(
        once_on_me()
            .status(500)
            .text_body("INTERNAL_ERROR: something broke", "text/plain"),
    )
    .await;
    assert_eq!(error.kind(), ErrorKind::Internal);
    assert_eq!(error.error_code(), Some("INTERNAL_ERROR"));
    assert_eq!(error.message(), "something broke");
}

#[tokio::test]
async fn html_error_body_is_parsed() {
    let error = error_for(once_on_me().status(500).text_body(
        "<html><head><title>Oops</title></head><body><pre>java.lang.Exception: proxy</pre></body></html>",
        "text/html",
    ))
    .await;
    assert_eq!(error.message(), "java.lang.Exception: proxy");
    let title = error_for(once_on_me().status(500).text_body(
        "<html><head><title>500 Internal Server Error</title></head></html>",
        "text/html",
    ))
    .await;
    assert_eq!(title.message(), "500 Internal Server Error");
}

#[tokio::test]
async fn empty_error_body_gives_the_reason_phrase() {
    let error = error_for(once_on_me().status(500).text_body("", "text/plain")).await;
    assert_eq!(error.kind(), ErrorKind::Internal);
    assert_eq!(error.message(), "Internal Server Error");
}

#[tokio::test]
async fn rate_limit_surfaces_retry_after() {
    let error = error_for(once_on_me().status(429).retry_after_secs(7)).await;
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert_eq!(error.error_code(), Some("REQUEST_LIMIT_EXCEEDED"));
    assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
    let without = error_for(once_on_me().status(429)).await;
    assert_eq!(without.retry_after(), None);
}
