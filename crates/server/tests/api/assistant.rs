//! The data assistant (`/api/assistant/...`) on the emulator's scripted `assistant` endpoint: a
//! tool call, Genie's answer and the final answer streamed in order and stored for the caller
//! only; a tool's failure reaches the model as the tool's result; the step limit; and the
//! answer when no assistant endpoint is configured.

use serde_json::{Value, json};

use crate::app::{ALICE, BOB, Options, TestApp, assert_error, spawn_app_with};

const SALES: &str = "01f0c0ffee5a1e5000000000000000a1";

/// The events of an SSE body (comments left out): name and data.
fn events(text: &str) -> Vec<(String, String)> {
    text.split("\n\n")
        .filter(|block| !block.is_empty() && !block.starts_with(':'))
        .map(|block| {
            let mut name = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    n.clone_into(&mut name);
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            (name, data)
        })
        .collect()
}

fn json_of(data: &str) -> Value {
    serde_json::from_str(data).unwrap_or(Value::Null)
}

async fn assistant_app(env: Vec<(&'static str, &'static str)>) -> TestApp {
    let mut all = vec![("DBAPP_ASSISTANT_ENDPOINT", "assistant")];
    all.extend(env);
    let app = spawn_app_with(Options {
        env: all,
        ..Options::default()
    })
    .await;
    app.emulator
        .update_settings(|s| s.genie_step_ms = 1)
        .unwrap();
    app
}

fn ask(app: &TestApp, token: &str, id: &str, content: &str) -> reqwest::RequestBuilder {
    app.request(
        reqwest::Method::POST,
        &format!("/api/assistant/conversations/{id}/messages"),
        token,
    )
    .json(&json!({ "content": content }))
}

#[tokio::test]
async fn a_tool_call_a_genie_answer_and_the_final_answer_are_streamed_and_stored_for_the_caller() {
    // Arrange
    let app = assistant_app(Vec::new()).await;

    // Act
    let response = ask(&app, ALICE, "new", "Which products do we sell?")
        .send()
        .await
        .unwrap();
    let status = response.status();
    let conversation = response
        .headers()
        .get("x-conversation-id")
        .map(|v| v.to_str().unwrap().to_owned())
        .expect("the conversation's id");
    let body = response.text().await.unwrap();
    let (alice_status, stored) = app.get_conversation(ALICE, &conversation).json().await;
    let bobs_read = app.get_conversation(BOB, &conversation).send().await;

    // Assert
    assert_eq!(status, 200);
    let events = events(&body);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["step", "step", "answer", ""], "{body}");
    let call = json_of(&events[0].1);
    assert_eq!(call["kind"], "tool_call");
    assert_eq!(call["tool"], "ask_genie");
    assert_eq!(call["arguments"]["space_id"], SALES);
    assert_eq!(call["ok"], Value::Null);
    let result = json_of(&events[1].1);
    assert_eq!(result["kind"], "tool_result");
    assert_eq!(result["call_id"], call["call_id"]);
    assert_eq!(result["ok"], true);
    assert!(
        result["summary"].as_str().unwrap().contains("rows"),
        "{result}"
    );
    assert!(result["elapsed_ms"].as_u64() >= call["elapsed_ms"].as_u64());
    let genie = json_of(result["result"].as_str().unwrap());
    assert!(
        genie["query"]["query"]
            .as_str()
            .unwrap()
            .contains("main.default.products")
    );
    assert!(genie["result"]["row_count"].as_u64().unwrap() > 0);
    let answer = json_of(&events[2].1);
    assert!(
        answer["text"]
            .as_str()
            .unwrap()
            .starts_with("Here is what I found:")
    );
    assert_eq!(answer["steps"], 1);
    assert_eq!(events[3].1, "[DONE]");

    assert_eq!(alice_status, 200);
    assert_eq!(stored["endpoint_name"], "assistant");
    assert_eq!(stored["title"], "Which products do we sell?");
    let messages = stored["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "tool", "assistant"]);
    assert_eq!(
        messages[1]["tool_calls"][0]["function"]["name"],
        "ask_genie"
    );
    assert_eq!(messages[2]["tool_call_id"], call["call_id"]);
    assert_eq!(messages[3]["content"], answer["text"]);
    assert_error(bobs_read, 404, "CONVERSATION_NOT_FOUND").await;
}

#[tokio::test]
async fn a_tool_error_reaches_the_model_as_the_tools_result() {
    // Arrange: bob may use the Sales space but cannot read main.sales.orders.
    let app = assistant_app(Vec::new()).await;

    // Act
    let response = ask(&app, BOB, "new", "How many orders do we have?")
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();

    // Assert
    assert_eq!(status, 200);
    let events = events(&body);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["step", "step", "answer", ""], "{body}");
    let result = json_of(&events[1].1);
    assert_eq!(result["ok"], false);
    assert!(
        result["summary"].as_str().unwrap().starts_with("error: "),
        "{result}"
    );
    let answer = json_of(&events[2].1);
    let text = answer["text"].as_str().unwrap();
    assert!(
        text.contains("error_code"),
        "the model saw the error: {text}"
    );
    assert!(!text.contains("\"rows\""), "{text}");
}

#[tokio::test]
async fn the_step_limit_ends_the_answer_with_the_limit_message() {
    // Arrange
    let app = assistant_app(vec![("DBAPP_ASSISTANT_MAX_STEPS", "2")]).await;

    // Act
    let response = ask(&app, ALICE, "new", "Please keep looking for tables")
        .send()
        .await
        .unwrap();
    let conversation = response
        .headers()
        .get("x-conversation-id")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap();
    let body = response.text().await.unwrap();
    let (_, stored) = app.get_conversation(ALICE, &conversation).json().await;

    // Assert
    let events = events(&body);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["step", "step", "step", "step", "limit", ""],
        "{body}"
    );
    assert_eq!(json_of(&events[0].1)["tool"], "list_tables");
    let limit = json_of(&events[4].1);
    assert_eq!(limit["limit"], "max_steps");
    assert!(
        limit["message"]
            .as_str()
            .unwrap()
            .contains("limit of 2 tool calls")
    );
    let messages = stored["messages"].as_array().unwrap();
    let last = messages.last().unwrap();
    assert_eq!(last["content"], limit["message"]);
    assert_eq!(last["finish_reason"], "max_steps");
}

#[tokio::test]
async fn without_an_assistant_endpoint_the_route_answers_503_and_the_info_says_why() {
    // Arrange
    let app = spawn_app_with(Options::default()).await;

    // Act
    let response = ask(&app, ALICE, "new", "Which products do we sell?")
        .send()
        .await
        .unwrap();
    let info: Value = app
        .request(reqwest::Method::GET, "/api/assistant", ALICE)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    // Assert
    assert_error(response, 503, "ASSISTANT_NOT_CONFIGURED").await;
    assert_eq!(info["endpoint"], Value::Null);
}

#[tokio::test]
async fn the_info_names_the_endpoint_the_limits_and_the_tools() {
    // Arrange
    let app = assistant_app(vec![("DBAPP_ASSISTANT_MAX_STEPS", "3")]).await;

    // Act
    let response = app
        .request(reqwest::Method::GET, "/api/assistant", ALICE)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let info: Value = response.json().await.unwrap();
    let anonymous = app.get("/api/assistant", None).send().await.unwrap();

    // Assert
    assert_eq!(status, 200);
    assert_eq!(info["endpoint"], "assistant");
    assert_eq!(info["max_steps"], 3);
    assert_eq!(info["deadline_secs"], 120);
    assert_eq!(info["max_tokens"], 1024);
    let tools: Vec<&str> = info["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["ask_genie", "list_tables", "preview_table"]);
    assert_error(anonymous, 401, "AUTH_MISSING").await;
}

#[tokio::test]
async fn a_conversation_of_someone_else_or_a_bad_id_is_refused() {
    // Arrange
    let app = assistant_app(Vec::new()).await;
    let response = ask(&app, ALICE, "new", "Which products do we sell?")
        .send()
        .await
        .unwrap();
    let conversation = response
        .headers()
        .get("x-conversation-id")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap();
    let _ = response.text().await.unwrap();

    // Act
    let bobs = ask(&app, BOB, &conversation, "And the orders?")
        .send()
        .await
        .unwrap();
    let bad = ask(&app, ALICE, "latest", "hi").send().await.unwrap();

    // Assert
    assert_error(bobs, 404, "CONVERSATION_NOT_FOUND").await;
    assert_error(bad, 400, "INVALID_REQUEST").await;
}
