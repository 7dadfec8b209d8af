//! Model Serving: list, get, raw invocation, chat, and the never-retried invocation.

use dbapp_databricks::ErrorKind;
use dbapp_databricks::api::{ChatMessage, ChatRequest};
use dbapp_emulator::FaultRule;
use serde_json::json;

use crate::support::{TestWorkspace, user};

#[tokio::test]
async fn endpoints_are_listed_and_fetched() {
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    let alice = user("dev-token-alice");
    let view = client.as_user(&alice);
    let endpoints = view.list_serving_endpoints().await.unwrap();
    let names: Vec<&str> = endpoints.iter().map(|e| e.name.as_str()).collect();
    for expected in ["echo", "chat", "broken", "not-ready"] {
        assert!(names.contains(&expected), "{names:?}");
    }
    let chat = view.get_serving_endpoint("chat").await.unwrap();
    assert_eq!(chat.task.as_deref(), Some("llm/v1/chat"));
    assert!(chat.is_ready());
    assert!(!chat.served_entities().is_empty());
    assert!(
        !view
            .get_serving_endpoint("not-ready")
            .await
            .unwrap()
            .is_ready()
    );
    let missing = view.get_serving_endpoint("nope").await.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn echo_invocation_returns_raw_json() {
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    let alice = user("dev-token-alice");
    let answer = client
        .as_user(&alice)
        .invoke_serving_endpoint("echo", json!({"inputs": {"text": "hello"}}))
        .await
        .unwrap();
    assert_eq!(answer.body, json!({"predictions": {"text": "hello"}}));
    assert!(answer.served_model_name.is_some());
}

#[tokio::test]
async fn chat_helper_reads_the_completion() {
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    let alice = user("dev-token-alice");
    let request = ChatRequest::new(vec![
        ChatMessage::system("be brief"),
        ChatMessage::user("Hello there"),
    ]);
    let response = client.as_user(&alice).chat("chat", &request).await.unwrap();
    assert!(response.content().is_some_and(|c| !c.is_empty()));
    assert_eq!(response.choices[0].finish_reason.as_deref(), Some("stop"));
    assert!(response.usage.is_some());
}

#[tokio::test]
async fn failing_and_unready_endpoints_are_errors_and_not_retried() {
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    let alice = user("dev-token-alice");
    let view = client.as_user(&alice);
    let broken = view
        .invoke_serving_endpoint("broken", json!({"inputs": [1]}))
        .await
        .unwrap_err();
    assert_eq!(broken.kind(), ErrorKind::Internal);
    let not_ready = view
        .invoke_serving_endpoint("not-ready", json!({"inputs": [1]}))
        .await
        .unwrap_err();
    assert_eq!(not_ready.kind(), ErrorKind::BadRequest);
    workspace
        .emulator
        .inject_fault(
            FaultRule::new("/serving-endpoints/echo/invocations")
                .status(503)
                .times(1),
        )
        .unwrap();
    let unavailable = view
        .invoke_serving_endpoint("echo", json!({"inputs": [1]}))
        .await
        .unwrap_err();
    assert_eq!(unavailable.attempts(), 1);
    assert_eq!(
        workspace
            .emulator
            .requests("/serving-endpoints/echo/invocations")
            .len(),
        1
    );
    // Marked idempotent, the same call is retried.
    workspace
        .emulator
        .inject_fault(
            FaultRule::new("/serving-endpoints/echo/invocations")
                .status(503)
                .times(1),
        )
        .unwrap();
    view.invoke_serving_endpoint_with("echo", json!({"inputs": [1]}), true)
        .await
        .unwrap();
    assert_eq!(
        workspace
            .emulator
            .requests("/serving-endpoints/echo/invocations")
            .len(),
        3
    );
}
