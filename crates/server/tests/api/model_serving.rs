//! Model Serving: listing endpoints as the user, schemas, invocations and their inference log,
//! timeouts and the deadline policy, what the history stores of awkward inputs, and envelope
//! checks. The history's outbox (a store outage) is `history.rs`.

use dbapp_emulator::FaultRule;
use serde_json::json;

use crate::app::{ADMIN, ALICE, BOB, Options, assert_error, spawn_app, spawn_app_with};

#[tokio::test]
async fn serving_endpoints_are_listed_as_the_user() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let (status, body) = app
        .get_json("/api/model-serving/endpoints", Some(ALICE))
        .await;

    // Assert
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().unwrap();
    let echo = items.iter().find(|e| e["name"] == "echo").expect("echo");
    assert_eq!(echo["state"], "READY");
    assert_eq!(echo["model_name"], "main.default.echo_model");
    let not_ready = items.iter().find(|e| e["name"] == "not-ready").unwrap();
    assert_eq!(not_ready["state"], "NOT_READY");
    let calls = app.emulator.requests("/api/2.0/serving-endpoints");
    assert!(
        calls
            .iter()
            .all(|c| c.principal.as_deref() == Some("alice@example.com"))
    );
}

#[tokio::test]
async fn an_endpoint_has_served_entities_and_a_schema_from_its_task() {
    let app = spawn_app().await;
    let (status, chat) = app
        .get_json("/api/model-serving/endpoints/chat", Some(ALICE))
        .await;
    assert_eq!(status, 200, "{chat}");
    assert_eq!(chat["task"], "llm/v1/chat");
    assert_eq!(chat["served_entities"][0]["entity_version"], "3");
    assert!(chat.get("last_updated_timestamp").is_some());
    let (_, chat_schema) = app
        .get_json("/api/model-serving/endpoints/chat/schema", Some(ALICE))
        .await;
    assert_eq!(chat_schema["kind"], "chat");
    assert!(
        chat_schema["example"]["messages"].is_array(),
        "{chat_schema}"
    );
    let (_, echo_schema) = app
        .get_json("/api/model-serving/endpoints/echo/schema", Some(ALICE))
        .await;
    assert_eq!(echo_schema["kind"], "custom");
    assert_eq!(echo_schema["example"], json!({"inputs": {"text": "hello"}}));
    assert!(echo_schema["input_schema"].is_object(), "{echo_schema}");
    assert_error(
        app.get("/api/model-serving/endpoints/nope", Some(ALICE))
            .send()
            .await
            .unwrap(),
        404,
        "ENDPOINT_NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn every_invocation_outcome_is_recorded_for_its_caller_only() {
    // Arrange
    let app = spawn_app().await;
    let invoke = |name: &str, body: serde_json::Value| app.invoke(ALICE, name, &body).send();

    // Act
    let ok = invoke("echo", json!({"inputs": {"text": "hi"}})).await;
    assert_eq!(ok.status(), 200);
    let ok: serde_json::Value = ok.json().await.unwrap();
    let broken = invoke("broken", json!({"inputs": {"x": 1}})).await;
    let not_ready = invoke("not-ready", json!({"inputs": {"x": 1}})).await;
    let missing = invoke("nope", json!({"inputs": 1})).await;
    let bad = invoke("echo", json!({"inputs": 1, "timeout_seconds": 0})).await;

    // Assert
    assert_eq!(ok["predictions"], json!({"text": "hi"}));
    assert_eq!(ok["endpoint_name"], "echo");
    assert!(ok["execution_time_ms"].is_i64());
    let body = assert_error(broken, 502, "MODEL_ERROR").await;
    assert_eq!(body["detail"]["status"], 500);
    assert_error(not_ready, 409, "ENDPOINT_NOT_READY").await;
    assert_error(missing, 404, "ENDPOINT_NOT_FOUND").await;
    assert_error(bad, 400, "INVALID_REQUEST").await;
    assert!(
        app.emulator
            .requests("/serving-endpoints/not-ready/invocations")
            .is_empty()
    );
    let (_, logs) = app.list_inference_logs(ALICE, "").json().await;
    assert_eq!(logs["total_count"], 4, "{logs}");
    assert_eq!(logs["items"][3]["request_id"], ok["request_id"]);
    assert_eq!(logs["items"][3]["status"], "SUCCESS");
    assert_eq!(logs["items"][2]["status"], "ERROR");
    let (_, bob_logs) = app.list_inference_logs(BOB, "").json().await;
    assert_eq!(bob_logs["total_count"], 0);
    let (_, page) = app.list_inference_logs(ALICE, "?limit=3").json().await;
    let token = page["next_page_token"].as_str().unwrap();
    let (_, rest) = app
        .get_json(
            &format!("/api/model-serving/logs?limit=3&page_token={token}"),
            Some(ALICE),
        )
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["next_page_token"], serde_json::Value::Null);
}

#[tokio::test]
async fn a_slow_model_is_model_timeout_and_recorded_as_timeout() {
    let app = spawn_app().await;
    app.emulator
        .inject_fault(
            FaultRule::new("/serving-endpoints/echo/invocations")
                .latency(std::time::Duration::from_millis(3000)),
        )
        .unwrap();
    let response = app
        .invoke(
            ALICE,
            "echo",
            &json!({"inputs": {"a": 1}, "timeout_seconds": 1}),
        )
        .send()
        .await;
    assert_error(response, 504, "MODEL_TIMEOUT").await;
    let (_, logs) = app.list_inference_logs(ALICE, "").json().await;
    assert_eq!(logs["items"][0]["status"], "TIMEOUT");
}

#[tokio::test]
async fn invocation_bodies_are_checked_by_the_framework_in_the_envelope() {
    let app = spawn_app().await;
    let path = "/api/model-serving/endpoints/echo/invocations";
    let not_json = app
        .request(reqwest::Method::POST, path, ALICE)
        .body("{")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_error(not_json, 400, "INVALID_REQUEST").await;
    let wrong_type = app
        .request(reqwest::Method::POST, path, ALICE)
        .body("{}")
        .header("content-type", "application/xml")
        .send()
        .await
        .unwrap();
    assert_error(wrong_type, 415, "UNSUPPORTED_MEDIA_TYPE").await;
    let huge = format!("{{\"inputs\": \"{}\"}}", "x".repeat(1024 * 1024 + 10));
    let too_big = app
        .request(reqwest::Method::POST, path, ALICE)
        .body(huge)
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    let body = assert_error(too_big, 413, "PAYLOAD_TOO_LARGE").await;
    assert_eq!(body["detail"]["limit_bytes"], 1024 * 1024);
}

#[tokio::test]
async fn inputs_the_model_refuses_are_model_input_invalid_with_its_message_and_recorded() {
    // Arrange: the chat endpoint answers 400 to an empty message list.
    let app = spawn_app().await;

    // Act
    let refused = app
        .invoke(ALICE, "chat", &json!({"inputs": {"messages": []}}))
        .send()
        .await;

    // Assert: the caller's to fix (400), with the model's words, and still in the history.
    let body = assert_error(refused, 400, "MODEL_INPUT_INVALID").await;
    assert_eq!(body["detail"]["status"], 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("'messages' must be a non-empty array."),
        "{body}"
    );
    let (_, logs) = app.list_inference_logs(ALICE, "").json().await;
    assert_eq!(logs["total_count"], 1, "{logs}");
}

#[tokio::test]
async fn a_nul_in_the_inputs_is_answered_and_recorded_with_replacement_characters() {
    // Arrange: the echo model answers with its inputs, NUL included.
    let app = spawn_app().await;

    // Act
    let (status, body) = app
        .invoke(
            ALICE,
            "echo",
            &json!({"inputs": {"text": "a\u{0}b", "k\u{0}": 1}}),
        )
        .json()
        .await;
    let (_, logs) = app.list_inference_logs(ALICE, "").json().await;

    // Assert: the caller gets the model's own answer; the history holds U+FFFD instead.
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["predictions"]["text"], "a\u{0}b");
    assert_eq!(logs["total_count"], 1, "{logs}");
    let record = &logs["items"][0];
    assert_eq!(record["request_id"], body["request_id"]);
    assert_eq!(
        record["inputs"],
        json!({"text": "a\u{FFFD}b", "k\u{FFFD}": 1})
    );
    assert_eq!(record["predictions"]["text"], "a\u{FFFD}b");
    assert_eq!(record["inputs_truncated"], false);
}

#[tokio::test]
async fn inputs_over_the_history_cap_are_stored_cut_and_flagged() {
    // Arrange: a 100-byte cap; 1 000 characters of inputs to an endpoint that does not exist.
    let app = spawn_app_with(Options {
        env: vec![("DBAPP_HISTORY_INPUT_MAX_BYTES", "100")],
        ..Default::default()
    })
    .await;
    let long = "é".repeat(1000);

    // Act
    let missing = app
        .invoke(ALICE, "nope", &json!({"inputs": {"text": long}}))
        .send()
        .await;
    let (small, _) = app
        .invoke(ALICE, "echo", &json!({"inputs": {"text": "hi"}}))
        .json()
        .await;
    let (_, logs) = app.list_inference_logs(ALICE, "").json().await;

    // Assert: the first bytes of the JSON, cut inside no character, and flagged.
    assert_error(missing, 404, "ENDPOINT_NOT_FOUND").await;
    assert_eq!(small, 200);
    assert_eq!(logs["total_count"], 2, "{logs}");
    let cut = &logs["items"][1];
    let stored = cut["inputs"].as_str().expect("a string prefix");
    assert_eq!(cut["inputs_truncated"], true);
    assert!(
        stored.len() <= 100 && stored.len() >= 98,
        "{}",
        stored.len()
    );
    assert!(stored.starts_with("{\"text\":\"éé"), "{stored}");
    assert_eq!(logs["items"][0]["inputs"], json!({"text": "hi"}));
    assert_eq!(logs["items"][0]["inputs_truncated"], false);
}

#[tokio::test]
async fn a_timeout_past_the_request_deadline_minus_its_margin_is_refused_unrecorded() {
    // Arrange: the default 110 s request deadline leaves models 100 s.
    let app = spawn_app().await;

    // Act
    let over = app
        .invoke(
            ALICE,
            "echo",
            &json!({"inputs": {"a": 1}, "timeout_seconds": 101}),
        )
        .send()
        .await;
    let (at_max, _) = app
        .invoke(
            ALICE,
            "echo",
            &json!({"inputs": {"a": 1}, "timeout_seconds": 100}),
        )
        .json()
        .await;

    // Assert: refused naming the field and the maximum, before anything is invoked.
    let body = assert_error(over, 400, "INVALID_REQUEST").await;
    assert_eq!(body["detail"]["field"], "timeout_seconds");
    let reason = body["detail"]["reason"].as_str().unwrap();
    assert!(reason.contains("between 1 and 100"), "{reason}");
    assert_eq!(at_max, 200);
    assert_eq!(
        app.emulator
            .requests("/serving-endpoints/echo/invocations")
            .len(),
        1
    );
}

#[tokio::test]
async fn invocations_over_the_quota_are_rate_limited_and_never_reach_the_model() {
    // Arrange: two invocations a minute per user.
    let app = spawn_app_with(Options {
        env: vec![("DBAPP_QUOTA_INVOCATIONS_PER_MINUTE", "2")],
        ..Options::default()
    })
    .await;
    let body = json!({"inputs": {"text": "hi"}});
    for _ in 0..2 {
        assert_eq!(app.invoke(ALICE, "echo", &body).send().await.status(), 200);
    }

    // Act
    let over = app.invoke(ALICE, "echo", &body).send().await;
    let bob = app.invoke(BOB, "echo", &body).send().await;

    // Assert: refused before any upstream call, and not recorded; another user unaffected.
    let refused = assert_error(over, 429, "RATE_LIMITED").await;
    assert_eq!(refused["detail"]["quota"], "invocations", "{refused}");
    assert_eq!(refused["detail"]["per_minute"], 2);
    let retry_after = refused["retry_after"].as_u64().unwrap();
    assert!((1..=30).contains(&retry_after), "{refused}");
    assert_eq!(bob.status(), 200);
    let alice_calls = |path: &str| {
        app.emulator
            .requests(path)
            .iter()
            .filter(|c| c.principal.as_deref() == Some("alice@example.com"))
            .count()
    };
    assert_eq!(alice_calls("/serving-endpoints/echo/invocations"), 2);
    assert_eq!(alice_calls("/api/2.0/serving-endpoints/echo"), 2);
    let (_, logs) = app.list_inference_logs(ALICE, "").json().await;
    assert_eq!(logs["total_count"], 2, "{logs}");
    let metrics = app.metrics(ADMIN).text().await;
    assert!(
        metrics.contains(r#"quota_rejections_total{quota="invocations"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_invocation_carries_a_tool_using_agents_second_turn() {
    // Arrange: what ChatDatabricks sends on the second turn: the assistant's call with
    // `content: null`, then the tool's result.
    let app = spawn_app().await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]);
    let inputs = json!({"tools": tools, "messages": [
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "19 °C"}
    ]});

    // Act
    let (status, body) = app
        .invoke(ALICE, "chat", &json!({"inputs": inputs}))
        .json()
        .await;

    // Assert: answered with the tool's result, not refused with 400.
    assert_eq!(status, 200, "{body}");
    let text = body["predictions"]["choices"][0]["message"]["content"]
        .as_str()
        .unwrap();
    assert!(text.contains("19 °C"), "{body}");
}
