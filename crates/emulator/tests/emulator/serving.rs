//! Model Serving: endpoint list and get, and the behaviour of each fixture endpoint.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{ALICE, spawn};

#[tokio::test]
async fn list_shows_the_fixture_endpoints_with_state_and_task_with_or_without_a_slash() {
    // Arrange
    let te = spawn().await;

    // Act
    let (status, body) = te.get("/api/2.0/serving-endpoints", ALICE).await;
    let (slash_status, slash_body) = te.get("/api/2.0/serving-endpoints/", ALICE).await;

    // Assert
    assert_eq!(status, StatusCode::OK);
    assert_eq!(slash_status, StatusCode::OK);
    assert_eq!(slash_body, body);
    let endpoints = body["endpoints"].as_array().unwrap();
    let names: Vec<&str> = endpoints
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "echo",
            "chat",
            "broken",
            "not-ready",
            "embed",
            "complete",
            "assistant"
        ]
    );
    assert_eq!(endpoints[1]["task"], "llm/v1/chat");
    assert_eq!(
        endpoints[3]["state"],
        json!({"ready": "NOT_READY", "config_update": "IN_PROGRESS"})
    );
    assert!(body.get("next_page_token").is_none());
}

#[tokio::test]
async fn get_returns_served_entities_and_traffic() {
    // Arrange
    let te = spawn().await;

    // Act
    let (status, chat) = te.get("/api/2.0/serving-endpoints/chat", ALICE).await;
    let (missing, missing_body) = te.get("/api/2.0/serving-endpoints/nope", ALICE).await;

    // Assert
    assert_eq!(status, StatusCode::OK);
    assert_eq!(chat["state"]["ready"], "READY");
    let entity = &chat["config"]["served_entities"][0];
    assert_eq!(
        entity["entity_name"],
        "databricks-meta-llama-3-3-70b-instruct"
    );
    assert_eq!(entity["state"]["deployment"], "DEPLOYMENT_READY");
    assert_eq!(
        chat["config"]["traffic_config"]["routes"][0]["traffic_percentage"],
        100
    );
    assert_eq!(missing, StatusCode::NOT_FOUND);
    assert_eq!(missing_body["error_code"], "RESOURCE_DOES_NOT_EXIST");
}

#[tokio::test]
async fn echo_returns_its_input_with_the_served_model_header() {
    // Arrange
    let te = spawn().await;
    let inputs = json!({"text": "hello", "n": [1, 2, null]});

    // Act
    let response = te
        .request(Method::POST, "/serving-endpoints/echo/invocations", ALICE)
        .json(&json!({"inputs": inputs}))
        .send()
        .await
        .unwrap();
    let served = response.headers()["served-model-name"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();

    // Assert
    assert_eq!(body, json!({"predictions": inputs}));
    assert_eq!(served, "echo-1");
}

#[tokio::test]
async fn chat_answers_openai_style_with_finish_reason_and_usage() {
    // Arrange
    let te = spawn().await;

    // Act
    let (status, body) = te
        .post(
            "/serving-endpoints/chat/invocations",
            ALICE,
            json!({"messages": [{"role": "user", "content": "What is Lakebase?"}]}),
        )
        .await;

    // Assert
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "You said: What is Lakebase?"
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["total_tokens"], 8);
}

#[tokio::test]
async fn openai_compatible_route_takes_the_endpoint_from_model() {
    let te = spawn().await;
    let (status, body) = te
        .post(
            "/serving-endpoints/chat/completions",
            ALICE,
            json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["choices"][0]["message"]["content"], "You said: hi");
}

#[tokio::test]
async fn broken_fails_with_500_and_not_ready_is_refused() {
    // Arrange
    let te = spawn().await;

    // Act
    let (broken, broken_body) = te
        .post(
            "/serving-endpoints/broken/invocations",
            ALICE,
            json!({"inputs": 1}),
        )
        .await;
    let (not_ready, not_ready_body) = te
        .post(
            "/serving-endpoints/not-ready/invocations",
            ALICE,
            json!({"inputs": 1}),
        )
        .await;
    let (missing, _) = te
        .post(
            "/serving-endpoints/nope/invocations",
            ALICE,
            json!({"inputs": 1}),
        )
        .await;

    // Assert
    assert_eq!(broken, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(broken_body["error_code"], "INTERNAL_ERROR");
    assert_eq!(not_ready, StatusCode::BAD_REQUEST);
    assert_eq!(not_ready_body["error_code"], "INVALID_STATE");
    assert_eq!(missing, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn malformed_invocations_are_400_with_a_databricks_body() {
    // Arrange
    let te = spawn().await;

    // Act
    let (bad_json, bad_json_body) = crate::support::send(
        te.request(Method::POST, "/serving-endpoints/echo/invocations", ALICE)
            .header("content-type", "application/json")
            .body("{not json"),
    )
    .await;
    let (no_inputs, _) = te
        .post(
            "/serving-endpoints/echo/invocations",
            ALICE,
            json!({"x": 1}),
        )
        .await;
    let (no_messages, _) = te
        .post(
            "/serving-endpoints/chat/invocations",
            ALICE,
            json!({"inputs": 1}),
        )
        .await;

    // Assert
    assert_eq!(bad_json, StatusCode::BAD_REQUEST);
    assert_eq!(bad_json_body["error_code"], "MALFORMED_REQUEST");
    assert_eq!(no_inputs, StatusCode::BAD_REQUEST);
    assert_eq!(no_messages, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn openapi_description_carries_the_input_example() {
    let te = spawn().await;
    let (status, doc) = te
        .get("/api/2.0/serving-endpoints/echo/openapi", ALICE)
        .await;
    assert_eq!(status, StatusCode::OK);
    let content = &doc["paths"]["/serving-endpoints/echo/invocations"]["post"]["requestBody"]["content"]
        ["application/json"];
    assert_eq!(content["example"], json!({"inputs": {"text": "hello"}}));
}

#[tokio::test]
async fn endpoints_hidden_by_readers_are_invisible_and_refused() {
    // Arrange
    let te = crate::support::spawn_with_fixture(|f| {
        f.serving_endpoints[0].readers = Some(vec!["admins".into()]);
    })
    .await;

    // Act
    let (_, list) = te.get("/api/2.0/serving-endpoints", ALICE).await;
    let (status, _) = te
        .post(
            "/serving-endpoints/echo/invocations",
            ALICE,
            json!({"inputs": 1}),
        )
        .await;

    // Assert
    assert!(
        list["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["name"] != "echo")
    );
    assert_eq!(status, StatusCode::FORBIDDEN);
}
