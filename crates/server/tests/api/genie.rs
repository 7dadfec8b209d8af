//! Genie as the user (`/api/genie/...`) against the emulator's Genie: who sees which space, the
//! streamed progress and answer, Genie's failures (bob cannot read `main.sales.orders`, the
//! fixture's fault rules), result pages (an expired one is run again), feedback, a client
//! that goes away, and a conversation's history and deletion (only the caller's own).

use std::time::{Duration, Instant};

use dbapp_emulator::WarehouseState;
use serde_json::{Value, json};

use crate::app::{
    ADMIN, ALICE, BOB, Options, TestApp, assert_error, captured_logs, spawn_app, spawn_app_with,
};

const SALES: &str = "01f0c0ffee5a1e5000000000000000a1";
const TAXI: &str = "01f0c0ffee5a1e5000000000000000b2";

/// The order Genie's statuses come in.
const ORDER: [&str; 9] = [
    "SUBMITTED",
    "FETCHING_METADATA",
    "FILTERING_CONTEXT",
    "ASKING_AI",
    "PENDING_WAREHOUSE",
    "EXECUTING_QUERY",
    "COMPLETED",
    "FAILED",
    "QUERY_RESULT_EXPIRED",
];

/// One event of a stream: its name (`None` for `data:` alone) and data.
#[derive(Debug)]
struct Event {
    name: Option<String>,
    data: String,
}

impl Event {
    fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or(Value::Null)
    }
}

/// The events of an SSE body (comments left out).
fn events(text: &str) -> Vec<Event> {
    text.split("\n\n")
        .filter(|block| !block.is_empty() && !block.starts_with(':'))
        .map(|block| {
            let mut event = Event {
                name: None,
                data: String::new(),
            };
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event: ") {
                    event.name = Some(name.to_owned());
                } else if let Some(data) = line.strip_prefix("data: ") {
                    event.data.push_str(data);
                }
            }
            event
        })
        .collect()
}

/// A test app whose Genie takes `step_ms` per status.
async fn genie_app(step_ms: u64) -> TestApp {
    let app = spawn_app().await;
    app.emulator
        .update_settings(|s| s.genie_step_ms = step_ms)
        .unwrap();
    app
}

fn ask(app: &TestApp, token: &str, space: &str, body: &Value) -> reqwest::RequestBuilder {
    app.request(
        reqwest::Method::POST,
        &format!("/api/genie/spaces/{space}/messages"),
        token,
    )
    .json(body)
}

/// Asks and reads the whole stream.
async fn ask_all(app: &TestApp, token: &str, space: &str, body: &Value) -> (String, Vec<Event>) {
    let response = ask(app, token, space, body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()[reqwest::header::CONTENT_TYPE],
        "text/event-stream"
    );
    let text = response.text().await.unwrap();
    let events = events(&text);
    (text, events)
}

fn statuses(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.name.as_deref() == Some("status"))
        .map(|e| e.json()["status"].as_str().unwrap().to_owned())
        .collect()
}

fn named<'a>(events: &'a [Event], name: &str) -> Option<&'a Event> {
    events.iter().find(|e| e.name.as_deref() == Some(name))
}

fn result_path(answer: &Value) -> String {
    format!(
        "/api/genie/spaces/{}/conversations/{}/messages/{}/attachments/{}/result",
        answer["space_id"].as_str().unwrap(),
        answer["conversation_id"].as_str().unwrap(),
        answer["message_id"].as_str().unwrap(),
        answer["query"]["attachment_id"].as_str().unwrap(),
    )
}

/// The error envelope of a stream's last event, which must be an `error` event.
fn last_error(events: &[Event]) -> Value {
    let last = events.last().expect("an event");
    assert_eq!(last.name.as_deref(), Some("error"), "{events:?}");
    last.json()["error"].clone()
}

#[tokio::test]
async fn each_caller_lists_only_the_spaces_they_may_use() {
    // Arrange
    let app = genie_app(10).await;

    // Act
    let (alice_status, alice) = app.get_json("/api/genie/spaces", Some(ALICE)).await;
    let (bob_status, bob) = app.get_json("/api/genie/spaces", Some(BOB)).await;
    let (_, first) = app.get_json("/api/genie/spaces?limit=1", Some(ALICE)).await;

    // Assert
    assert_eq!((alice_status, bob_status), (200, 200));
    let ids = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["space_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&alice), [SALES, TAXI]);
    assert_eq!(ids(&bob), [SALES]);
    assert_eq!(alice["items"][0]["title"], "Sales");
    assert_eq!(alice["items"][0]["warehouse_id"], "dev-warehouse");
    assert_eq!(ids(&first), [SALES]);
    let token = first["next_page_token"].as_str().unwrap();
    let (_, second) = app
        .get_json(
            &format!("/api/genie/spaces?limit=1&page_token={token}"),
            Some(ALICE),
        )
        .await;
    assert_eq!(ids(&second), [TAXI]);
    assert!(second["next_page_token"].is_null());
}

#[tokio::test]
async fn a_space_the_caller_may_not_use_or_that_does_not_exist_is_refused_before_the_stream() {
    // Arrange
    let app = genie_app(10).await;
    let question = json!({"content": "average fare"});

    // Act / Assert: bob may not use Taxi trips, nobody may use a space that is not there.
    let denied = ask(&app, BOB, TAXI, &question).send().await.unwrap();
    assert_error(denied, 403, "PERMISSION_DENIED").await;
    let missing = ask(&app, ALICE, &"0".repeat(32), &question)
        .send()
        .await
        .unwrap();
    assert_error(missing, 404, "GENIE_SPACE_NOT_FOUND").await;
    let unknown_conversation = ask(
        &app,
        ALICE,
        SALES,
        &json!({"content": "products", "conversation_id": "f".repeat(32)}),
    )
    .send()
    .await
    .unwrap();
    assert_error(unknown_conversation, 404, "GENIE_CONVERSATION_NOT_FOUND").await;
    // Bad input never reaches the workspace.
    for (space, body) in [
        ("a.b", json!({"content": "products"})),
        (SALES, json!({})),
        (SALES, json!({"content": "  "})),
        (SALES, json!({"content": "x", "extra": 1})),
        (SALES, json!({"content": "x", "conversation_id": "../x"})),
        (SALES, json!(["products"])),
    ] {
        let response = ask(&app, ALICE, space, &body).send().await.unwrap();
        assert_error(response, 400, "INVALID_REQUEST").await;
    }
    assert!(app.emulator.requests("/api/2.0/genie").len() <= 3);
}

#[tokio::test]
async fn an_answer_streams_its_statuses_in_order_then_the_sql_and_typed_rows() {
    // Arrange: 150 ms per step, so the waiter sees several statuses.
    let app = genie_app(150).await;

    // Act
    let (text, events) = ask_all(
        &app,
        ALICE,
        SALES,
        &json!({"content": "Revenue by product?"}),
    )
    .await;

    // Assert: statuses in Genie's order, each once, ending COMPLETED.
    let seen = statuses(&events);
    let positions: Vec<usize> = seen
        .iter()
        .map(|s| ORDER.iter().position(|o| o == s).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert!(seen.len() >= 2, "{seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some("COMPLETED"));
    let answer = named(&events, "message").expect("a message event").json();
    assert_eq!(answer["status"], "COMPLETED");
    assert_eq!(
        answer["text"],
        json!(["Revenue per product, highest first."])
    );
    assert!(
        answer["query"]["query"]
            .as_str()
            .unwrap()
            .starts_with("SELECT p.name AS product"),
        "{answer}"
    );
    assert_eq!(answer["query"]["title"], "Revenue by product");
    let result = &answer["result"];
    assert_eq!(result["columns"][0]["name"], "product");
    assert!(result["rows"][0][0].is_string(), "{result}");
    assert!(result["rows"][0][1].is_number(), "{result}");
    assert_eq!(
        result["row_count"],
        result["rows"].as_array().unwrap().len()
    );
    assert_eq!(events.last().unwrap().data, "[DONE]");
    // Every workspace call was the user's, and the token shows nowhere.
    let calls = app.emulator.requests("/api/2.0/genie");
    assert!(
        calls
            .iter()
            .all(|r| r.principal.as_deref() == Some("alice@example.com"))
    );
    assert!(!text.contains(ALICE));
    assert!(!captured_logs().contains(ALICE));

    // Act: a follow-up in the same conversation.
    let conversation = answer["conversation_id"].as_str().unwrap();
    let (_, events) = ask_all(
        &app,
        ALICE,
        SALES,
        &json!({"content": "How many orders?", "conversation_id": conversation}),
    )
    .await;

    // Assert
    let follow_up = named(&events, "message").expect("a message event").json();
    assert_eq!(follow_up["conversation_id"], conversation);
    assert_ne!(follow_up["message_id"], answer["message_id"]);
    assert!(follow_up["result"]["rows"][0][0].is_number(), "{follow_up}");
}

#[tokio::test]
async fn genie_cannot_show_bob_rows_he_cannot_read() {
    // Arrange
    let app = genie_app(10).await;

    // Act
    let (text, events) = ask_all(&app, BOB, SALES, &json!({"content": "How many orders?"})).await;

    // Assert: the stream ends with Genie's failure, and no rows were sent.
    let error = last_error(&events);
    assert_eq!(error["error_code"], "GENIE_MESSAGE_FAILED", "{error}");
    assert_eq!(error["detail"]["status"], "FAILED");
    assert_eq!(error["detail"]["type"], "SQL_EXECUTION_EXCEPTION");
    assert!(
        error["detail"]["genie_error"]
            .as_str()
            .unwrap()
            .contains("INSUFFICIENT_PERMISSIONS"),
        "{error}"
    );
    assert!(error["correlation_id"].is_string());
    assert!(named(&events, "message").is_none());
    assert!(!text.contains("[DONE]"));
    assert!(!text.contains(BOB) && !captured_logs().contains(BOB));
}

#[tokio::test]
async fn the_fixture_faults_end_the_stream_with_genies_error_type() {
    // Arrange
    let app = genie_app(10).await;

    for (question, error_type) in [
        (
            "[fail message] anything",
            "GENERIC_CHAT_COMPLETION_EXCEPTION",
        ),
        ("[fail query] orders", "SQL_EXECUTION_EXCEPTION"),
    ] {
        // Act
        let (_, events) = ask_all(&app, ALICE, SALES, &json!({ "content": question })).await;

        // Assert
        let error = last_error(&events);
        assert_eq!(error["error_code"], "GENIE_MESSAGE_FAILED", "{question}");
        assert_eq!(error["detail"]["type"], error_type, "{question}");
        assert_eq!(statuses(&events).last().map(String::as_str), Some("FAILED"));
    }
}

#[tokio::test]
async fn an_expired_result_is_run_again_by_the_result_route() {
    // Arrange: the result expires 300 ms after COMPLETED, before the waiter's second poll.
    let app = genie_app(10).await;
    let (_, events) = ask_all(
        &app,
        ALICE,
        SALES,
        &json!({"content": "[expire result] products"}),
    )
    .await;
    let answer = named(&events, "message").expect("a message event").json();
    assert_eq!(answer["status"], "QUERY_RESULT_EXPIRED");
    assert!(answer["result"].is_null());
    assert!(
        answer["query"]["query"]
            .as_str()
            .unwrap()
            .contains("products")
    );

    // Act
    let (status, page) = app.get_json(&result_path(&answer), Some(ALICE)).await;

    // Assert: one execute-query, as alice, and typed rows.
    assert_eq!(status, 200, "{page}");
    let reruns: Vec<_> = app
        .emulator
        .requests("/api/2.0/genie")
        .into_iter()
        .filter(|r| r.path.ends_with("/execute-query"))
        .collect();
    assert_eq!(reruns.len(), 1);
    assert_eq!(reruns[0].principal.as_deref(), Some("alice@example.com"));
    assert_eq!(page["columns"][0]["name"], "id");
    assert!(page["rows"][0][0].is_number(), "{page}");
    assert!(page["row_count"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn the_result_route_pages_typed_rows_and_refuses_what_is_not_there() {
    // Arrange
    let app = genie_app(10).await;
    let (_, events) = ask_all(&app, ALICE, SALES, &json!({"content": "products"})).await;
    let answer = named(&events, "message").expect("a message event").json();
    let path = result_path(&answer);

    // Act
    let (status, page) = app.get_json(&format!("{path}?limit=2"), Some(ALICE)).await;

    // Assert
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["row_count"], 2);
    assert_eq!(page["truncated"], true);
    let names: Vec<&str> = page["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["id", "name", "price", "category"]);
    assert!(
        page["rows"][0][0].is_number() && page["rows"][0][2].is_number(),
        "{page}"
    );
    assert!(page["rows"][0][1].is_string());
    // bob cannot read alice's conversation; an unknown attachment is not found; a bad id is bad.
    assert_error(
        app.get(&path, Some(BOB)).send().await.unwrap(),
        404,
        "GENIE_CONVERSATION_NOT_FOUND",
    )
    .await;
    let other = path.replace(
        answer["query"]["attachment_id"].as_str().unwrap(),
        &"e".repeat(32),
    );
    assert_error(
        app.get(&other, Some(ALICE)).send().await.unwrap(),
        404,
        "GENIE_CONVERSATION_NOT_FOUND",
    )
    .await;
    assert_error(
        app.get(&format!("{path}?limit=0"), Some(ALICE))
            .send()
            .await
            .unwrap(),
        400,
        "INVALID_REQUEST",
    )
    .await;
}

#[tokio::test]
async fn a_result_of_a_message_still_waiting_for_its_warehouse_is_not_ready() {
    // Arrange: a stopped warehouse that takes 20 s to start keeps the message PENDING_WAREHOUSE.
    let app = genie_app(10).await;
    app.emulator
        .update_settings(|s| s.warehouse_start_ms = 20_000)
        .unwrap();
    app.emulator
        .set_warehouse_state("dev-warehouse", WarehouseState::Stopped)
        .unwrap();
    let mut response = ask(&app, ALICE, SALES, &json!({"content": "products"}))
        .send()
        .await
        .unwrap();
    let mut text = String::new();
    while !text.contains("PENDING_WAREHOUSE") {
        let chunk = response.chunk().await.unwrap().expect("more events");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    drop(response);
    let status = events(&text)
        .into_iter()
        .find(|e| e.name.as_deref() == Some("status"))
        .unwrap()
        .json();
    // The attachment id, from the workspace (as alice).
    let message: Value = reqwest::Client::new()
        .get(format!(
            "{}/api/2.0/genie/spaces/{SALES}/conversations/{}/messages/{}",
            app.emulator.base_url(),
            status["conversation_id"].as_str().unwrap(),
            status["message_id"].as_str().unwrap()
        ))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let attachment = message["attachments"][0]["attachment_id"].as_str().unwrap();
    let answer = json!({
        "space_id": SALES,
        "conversation_id": status["conversation_id"],
        "message_id": status["message_id"],
        "query": {"attachment_id": attachment},
    });

    // Act
    let response = app
        .get(&result_path(&answer), Some(ALICE))
        .send()
        .await
        .unwrap();

    // Assert
    let body = assert_error(response, 409, "GENIE_RESULT_NOT_READY").await;
    assert_eq!(body["detail"]["status"], "PENDING_WAREHOUSE");
}

#[tokio::test]
async fn feedback_is_given_as_the_caller() {
    // Arrange: a text answer.
    let app = genie_app(10).await;
    let (_, events) = ask_all(&app, ALICE, SALES, &json!({"content": "What can you do?"})).await;
    let answer = named(&events, "message").expect("a message event").json();
    assert!(answer["query"].is_null() && answer["result"].is_null());
    assert!(answer["text"][0].as_str().unwrap().contains("orders"));
    let path = format!(
        "/api/genie/spaces/{SALES}/conversations/{}/messages/{}/feedback",
        answer["conversation_id"].as_str().unwrap(),
        answer["message_id"].as_str().unwrap()
    );

    // Act
    let response = app
        .request(reqwest::Method::POST, &path, ALICE)
        .json(&json!({"rating": "POSITIVE", "comment": "Clear."}))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(response.status(), 204);
    let sent = app
        .emulator
        .requests("/api/2.0/genie")
        .into_iter()
        .filter(|r| r.path.ends_with("/feedback"))
        .collect::<Vec<_>>();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].principal.as_deref(), Some("alice@example.com"));
    for body in [
        json!({"rating": "GREAT"}),
        json!({}),
        json!({"rating": "NONE", "comment": "x".repeat(2_001)}),
    ] {
        let response = app
            .request(reqwest::Method::POST, &path, ALICE)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_error(response, 400, "INVALID_REQUEST").await;
    }
    let response = app
        .request(reqwest::Method::POST, &path, BOB)
        .json(&json!({"rating": "NEGATIVE"}))
        .send()
        .await
        .unwrap();
    assert_error(response, 404, "GENIE_CONVERSATION_NOT_FOUND").await;
}

#[tokio::test]
async fn a_client_that_goes_away_stops_the_polling() {
    // Arrange: 3 s per step, so the answer is far away.
    let app = genie_app(3_000).await;
    let mut response = ask(&app, ALICE, SALES, &json!({"content": "products"}))
        .send()
        .await
        .unwrap();
    let first = response.chunk().await.unwrap().expect("a first event");
    let status = events(std::str::from_utf8(&first).unwrap())[0].json();
    let message_path = format!(
        "/api/2.0/genie/spaces/{SALES}/conversations/{}/messages/{}",
        status["conversation_id"].as_str().unwrap(),
        status["message_id"].as_str().unwrap()
    );
    let polls = || {
        app.emulator
            .requests(&message_path)
            .iter()
            .filter(|r| r.method == "GET" && r.path == message_path)
            .count()
    };

    // Act
    let hung_up = Instant::now();
    drop(response);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after_hang_up = polls();
    tokio::time::sleep(Duration::from_millis(2_500)).await;

    // Assert: the waiter would have polled at 0.5 s and 1.5 s; nothing came after the hang-up.
    assert_eq!(polls(), after_hang_up, "polled after the client went away");
    assert!(after_hang_up <= 2, "{after_hang_up}");
    assert!(hung_up.elapsed() < Duration::from_secs(5));
    let metrics = app.metrics(ADMIN).text().await;
    assert!(
        metrics.contains("genie_messages_total{outcome=\"cancelled\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn each_caller_lists_only_their_own_conversations() {
    // Arrange: alice asks twice, bob once.
    let app = genie_app(10).await;
    ask_all(&app, ALICE, SALES, &json!({"content": "products"})).await;
    ask_all(&app, ALICE, SALES, &json!({"content": "What can you do?"})).await;
    ask_all(&app, BOB, SALES, &json!({"content": "products"})).await;
    let path = format!("/api/genie/spaces/{SALES}/conversations");

    // Act
    let (status, alice) = app.get_json(&path, Some(ALICE)).await;
    let (_, bob) = app.get_json(&path, Some(BOB)).await;
    let (_, first) = app.get_json(&format!("{path}?limit=1"), Some(ALICE)).await;

    // Assert: newest first, each their own, paged.
    assert_eq!(status, 200, "{alice}");
    let titles = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["title"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(titles(&alice), ["What can you do?", "products"]);
    assert_eq!(titles(&bob), ["products"]);
    assert!(
        alice["items"][0]["created_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(titles(&first), ["What can you do?"]);
    assert!(first["next_page_token"].is_string());
    // bob may not use Taxi trips; an unknown space is not found.
    let (status, _) = app
        .get_json(
            &format!("/api/genie/spaces/{TAXI}/conversations"),
            Some(BOB),
        )
        .await;
    assert_eq!(status, 403);
    assert_error(
        app.get(
            &format!("/api/genie/spaces/{}/conversations", "0".repeat(32)),
            Some(ALICE),
        )
        .send()
        .await
        .unwrap(),
        404,
        "GENIE_SPACE_NOT_FOUND",
    )
    .await;
}

fn messages_path(conversation: &str) -> String {
    format!("/api/genie/spaces/{SALES}/conversations/{conversation}/messages")
}

fn conversation_path(conversation: &str) -> String {
    format!("/api/genie/spaces/{SALES}/conversations/{conversation}")
}

/// Asks, in `conversation` or a new one, and returns the stream's events.
async fn ask_in(
    app: &TestApp,
    token: &str,
    conversation: Option<&str>,
    content: &str,
) -> Vec<Event> {
    let body = match conversation {
        Some(id) => json!({"content": content, "conversation_id": id}),
        None => json!({ "content": content }),
    };
    ask_all(app, token, SALES, &body).await.1
}

#[tokio::test]
async fn a_conversations_messages_are_listed_oldest_first_as_the_stream_answered_them() {
    // Arrange: an answer with rows, a failed query and an expired result, in one conversation.
    let app = genie_app(10).await;
    let events = ask_in(&app, ALICE, None, "products").await;
    let streamed = named(&events, "message").expect("a message event").json();
    let conversation = streamed["conversation_id"].as_str().unwrap().to_owned();
    ask_in(&app, ALICE, Some(&conversation), "[fail query] orders").await;
    ask_in(&app, ALICE, Some(&conversation), "[expire result] products").await;
    let path = messages_path(&conversation);

    // Act
    let (status, page) = app.get_json(&path, Some(ALICE)).await;

    // Assert: oldest first, the first exactly as the stream sent it.
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    let questions: Vec<&str> = items
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        questions,
        [
            "products",
            "[fail query] orders",
            "[expire result] products"
        ]
    );
    assert!(page["next_page_token"].is_null());
    assert_eq!(items[0], streamed);
    // No `error` member: stream readers take event data that has one for the error envelope.
    assert!(streamed.get("error").is_none(), "{streamed}");
    assert_eq!(items[0]["content"], "products");
    assert!(items[0]["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(items[0]["failure"].is_null());
    assert!(items[0]["result"]["rows"][0][0].is_number(), "{}", items[0]);
    // The failed message carries Genie's account, and no rows.
    assert_eq!(items[1]["status"], "FAILED");
    assert_eq!(items[1]["failure"]["type"], "SQL_EXECUTION_EXCEPTION");
    assert!(items[1]["failure"]["message"].is_string(), "{}", items[1]);
    assert!(items[1]["result"].is_null());
    // The expired one keeps its SQL; its rows come from the result route.
    assert_eq!(items[2]["status"], "QUERY_RESULT_EXPIRED");
    assert!(
        items[2]["query"]["query"]
            .as_str()
            .unwrap()
            .contains("products")
    );
    assert!(items[2]["result"].is_null());
    let calls = app.emulator.requests("/api/2.0/genie");
    assert!(
        calls
            .iter()
            .all(|r| r.principal.as_deref() == Some("alice@example.com"))
    );

    // Act: page by page.
    let (_, first) = app.get_json(&format!("{path}?limit=2"), Some(ALICE)).await;
    let token = first["next_page_token"].as_str().expect("a next page");
    let (_, second) = app
        .get_json(&format!("{path}?limit=2&page_token={token}"), Some(ALICE))
        .await;

    // Assert
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    assert_eq!(second["items"][0]["content"], "[expire result] products");
    assert!(second["next_page_token"].is_null());
    for bad in ["limit=0", "limit=51", "offset=-1", "page_token=nope"] {
        assert_error(
            app.get(&format!("{path}?{bad}"), Some(ALICE))
                .send()
                .await
                .unwrap(),
            400,
            "INVALID_REQUEST",
        )
        .await;
    }
}

#[tokio::test]
async fn bob_can_neither_read_nor_delete_alices_conversation() {
    // Arrange
    let app = genie_app(10).await;
    let events = ask_in(&app, ALICE, None, "What can you do?").await;
    let answer = named(&events, "message").expect("a message event").json();
    let conversation = answer["conversation_id"].as_str().unwrap().to_owned();
    let delete = |token: &'static str| {
        app.request(
            reqwest::Method::DELETE,
            &conversation_path(&conversation),
            token,
        )
        .send()
    };

    // Act
    let read = app
        .get(&messages_path(&conversation), Some(BOB))
        .send()
        .await
        .unwrap();
    let deleted = delete(BOB).await.unwrap();

    // Assert: both refused as if the conversation did not exist, and it is still there.
    assert_error(read, 404, "GENIE_CONVERSATION_NOT_FOUND").await;
    assert_error(deleted, 404, "GENIE_CONVERSATION_NOT_FOUND").await;
    let (status, page) = app
        .get_json(&messages_path(&conversation), Some(ALICE))
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"][0]["content"], "What can you do?");
    assert!(page["items"][0]["query"].is_null() && page["items"][0]["result"].is_null());

    // Act: alice deletes it.
    let deleted = delete(ALICE).await.unwrap();

    // Assert: gone from her list and her reads; a second delete is not found.
    assert_eq!(deleted.status(), 204);
    assert!(deleted.bytes().await.unwrap().is_empty());
    let (_, list) = app
        .get_json(
            &format!("/api/genie/spaces/{SALES}/conversations"),
            Some(ALICE),
        )
        .await;
    assert_eq!(list["items"], json!([]));
    let read = app
        .get(&messages_path(&conversation), Some(ALICE))
        .send()
        .await
        .unwrap();
    assert_error(read, 404, "GENIE_CONVERSATION_NOT_FOUND").await;
    assert_error(
        delete(ALICE).await.unwrap(),
        404,
        "GENIE_CONVERSATION_NOT_FOUND",
    )
    .await;
    let upstream_deletes: Vec<_> = app
        .emulator
        .requests("/api/2.0/genie")
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.principal.unwrap_or_default())
        .collect();
    assert_eq!(
        upstream_deletes,
        ["bob@example.com", "alice@example.com", "alice@example.com"]
    );
    // Ids are checked before the workspace is called.
    let long = "x".repeat(65);
    assert_error(
        app.request(reqwest::Method::DELETE, &conversation_path(&long), ALICE)
            .send()
            .await
            .unwrap(),
        400,
        "INVALID_REQUEST",
    )
    .await;
    let (status, _) = app
        .get_json(
            &format!("/api/genie/spaces/{TAXI}/conversations/{conversation}/messages"),
            Some(BOB),
        )
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn questions_count_against_the_invocation_quota() {
    // Arrange: one invocation a minute.
    let app = spawn_app_with(Options {
        env: vec![("DBAPP_QUOTA_INVOCATIONS_PER_MINUTE", "1")],
        ..Options::default()
    })
    .await;
    app.emulator
        .update_settings(|s| s.genie_step_ms = 1)
        .unwrap();
    let question = json!({"content": "List the products"});
    ask_all(&app, ALICE, SALES, &question).await;
    let started = app
        .emulator
        .requests(&format!("/api/2.0/genie/spaces/{SALES}/start-conversation"))
        .len();

    // Act
    let over = ask(&app, ALICE, SALES, &question).send().await.unwrap();
    let bobs = ask(&app, BOB, SALES, &question).send().await.unwrap();

    // Assert: refused before Genie is asked; bob's quota is his own.
    let retry_after = over.headers().get("retry-after").cloned();
    let body = assert_error(over, 429, "RATE_LIMITED").await;
    assert_eq!(body["detail"]["quota"], "invocations");
    assert!(retry_after.is_some(), "Retry-After is set");
    assert_eq!(bobs.status(), 200);
    let _ = bobs.text().await;
    assert_eq!(
        app.emulator
            .requests(&format!("/api/2.0/genie/spaces/{SALES}/start-conversation"))
            .len(),
        started + 1,
        "only bob's question reached Genie"
    );
}
