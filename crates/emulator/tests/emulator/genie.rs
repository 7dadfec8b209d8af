//! Genie over HTTP: spaces and who may use them, every status path of a message, query results
//! as the statements API shapes them, conversations that belong to their starter, paging,
//! feedback, deletes, and the scripted faults (failed message, failed query, expired result,
//! slow warehouse).

use dbapp_emulator::WarehouseState;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{ADMIN, ALICE, BOB, TestEmulator, send, spawn};

const SPACES: &str = "/api/2.0/genie/spaces";
/// The default fixture's "Sales" space (alice, bob and admins).
const SALES: &str = "01f0c0ffee5a1e5000000000000000a1";
/// The default fixture's "Taxi trips" space (alice only).
const TAXI: &str = "01f0c0ffee5a1e5000000000000000b2";

/// A started (or continued) message: where it lives.
#[derive(Debug, Clone)]
struct Asked {
    space: String,
    conversation: String,
    message: String,
}

impl Asked {
    fn path(&self) -> String {
        format!(
            "{SPACES}/{}/conversations/{}/messages/{}",
            self.space, self.conversation, self.message
        )
    }

    fn conversation_path(&self) -> String {
        format!(
            "{SPACES}/{}/conversations/{}",
            self.space, self.conversation
        )
    }
}

/// Starts a conversation in `space` as `token`; panics unless it is accepted.
async fn start(te: &TestEmulator, token: &str, space: &str, question: &str) -> (Asked, Value) {
    let path = format!("{SPACES}/{space}/start-conversation");
    let (status, body) = te.post(&path, token, json!({ "content": question })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let asked = Asked {
        space: space.to_owned(),
        conversation: body["conversation_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        message: body["message_id"].as_str().unwrap_or_default().to_owned(),
    };
    (asked, body)
}

/// Asks a follow-up question in `asked`'s conversation.
async fn follow_up(te: &TestEmulator, token: &str, asked: &Asked, question: &str) -> Asked {
    let path = format!("{}/messages", asked.conversation_path());
    let (status, body) = te.post(&path, token, json!({ "content": question })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Asked {
        message: body["message_id"].as_str().unwrap_or_default().to_owned(),
        ..asked.clone()
    }
}

/// Polls the message until it settles; returns every status seen and the last message. The
/// bound keeps a broken clock from hanging the test.
async fn settle(te: &TestEmulator, token: &str, asked: &Asked) -> (Vec<String>, Value) {
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..2000 {
        let (status, body) = te.get(&asked.path(), token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let state = body["status"].as_str().unwrap_or_default().to_owned();
        if seen.last() != Some(&state) {
            seen.push(state.clone());
        }
        if ["COMPLETED", "FAILED", "QUERY_RESULT_EXPIRED"].contains(&state.as_str()) {
            return (seen, body);
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("message {} never settled; saw {seen:?}", asked.message);
}

/// The query attachment of a message.
fn query_attachment(message: &Value) -> (String, Value) {
    let attachment = (message["attachments"].as_array().into_iter().flatten())
        .find(|a| a.get("query").is_some())
        .cloned()
        .unwrap_or(Value::Null);
    let id = attachment["attachment_id"].as_str().unwrap_or_default();
    (id.to_owned(), attachment["query"].clone())
}

fn texts(message: &Value) -> Vec<(String, String)> {
    (message["attachments"].as_array().into_iter().flatten())
        .filter_map(|a| {
            let text = a.get("text")?;
            Some((
                text["content"].as_str()?.to_owned(),
                text["purpose"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

fn ids_of_conversations(body: &Value) -> Vec<String> {
    (body["conversations"].as_array().into_iter().flatten())
        .filter_map(|c| c["conversation_id"].as_str().map(str::to_owned))
        .collect()
}

const PROGRESS: [&str; 4] = [
    "SUBMITTED",
    "FETCHING_METADATA",
    "FILTERING_CONTEXT",
    "ASKING_AI",
];

#[tokio::test]
async fn spaces_list_only_what_the_caller_may_use_a_page_at_a_time() {
    // Arrange
    let te = spawn().await;

    // Act
    let (_, alice) = te.get(SPACES, ALICE).await;
    let (_, bob) = te.get(SPACES, BOB).await;
    let (_, first) = te.get(&format!("{SPACES}?page_size=1"), ALICE).await;
    let token = first["next_page_token"].as_str().unwrap_or_default();
    let (_, second) = te
        .get(&format!("{SPACES}?page_size=1&page_token={token}"), ALICE)
        .await;
    let (status, sales) = te
        .get(
            &format!("{SPACES}/{SALES}?include_serialized_space=true"),
            BOB,
        )
        .await;
    let (taxi_status, taxi) = te.get(&format!("{SPACES}/{TAXI}"), BOB).await;
    let (unknown_status, _) = te.get(&format!("{SPACES}/{}", "0".repeat(32)), BOB).await;

    // Assert
    let ids = |body: &Value| -> Vec<String> {
        (body["spaces"].as_array().into_iter().flatten())
            .filter_map(|s| s["space_id"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(ids(&alice), [SALES, TAXI]);
    assert_eq!(ids(&bob), [SALES]);
    assert!(alice["spaces"][0].get("serialized_space").is_none());
    assert_eq!(ids(&first), [SALES]);
    assert_eq!(ids(&second), [TAXI]);
    assert!(second.get("next_page_token").is_none());
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sales["title"], "Sales");
    assert_eq!(sales["warehouse_id"], "dev-warehouse");
    assert!(sales["description"].is_string());
    let serialized: Value =
        serde_json::from_str(sales["serialized_space"].as_str().unwrap_or("null")).unwrap();
    assert_eq!(
        serialized["data_sources"]["tables"][0]["identifier"],
        "main.sales.orders"
    );
    assert_eq!(taxi_status, StatusCode::FORBIDDEN);
    assert_eq!(taxi["error_code"], "PERMISSION_DENIED");
    assert_eq!(unknown_status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_query_answer_passes_every_status_and_its_result_is_a_statement_response() {
    // Arrange
    let te = spawn().await;

    // Act
    let (asked, started) = start(&te, ALICE, SALES, "What is the Revenue by product?").await;
    let (early_status, early) = te
        .get(&format!("{}/query-result", asked.path()), ALICE)
        .await;
    let (seen, message) = settle(&te, ALICE, &asked).await;
    let (attachment, query) = query_attachment(&message);
    let by_attachment = format!("{}/attachments/{attachment}/query-result", asked.path());
    let (status, result) = te.get(&by_attachment, ALICE).await;
    let (_, deprecated) = te
        .get(
            &format!("{}/query-result/{attachment}", asked.path()),
            ALICE,
        )
        .await;
    let (_, oldest) = te
        .get(&format!("{}/query-result", asked.path()), ALICE)
        .await;
    let statement_id = query["statement_id"].as_str().unwrap_or_default();
    let (_, statement) = te
        .get(&format!("/api/2.0/sql/statements/{statement_id}"), ALICE)
        .await;

    // Assert
    assert_eq!(started["message"]["status"], "SUBMITTED");
    assert_eq!(
        started["conversation"]["title"],
        "What is the Revenue by product?"
    );
    assert_eq!(
        started["conversation"]["conversation_id"],
        asked.conversation
    );
    assert_eq!(early_status, StatusCode::BAD_REQUEST, "{early}");
    assert_eq!(early["error_code"], "INVALID_STATE");
    let mut expected: Vec<&str> = PROGRESS.to_vec();
    expected.extend(["EXECUTING_QUERY", "COMPLETED"]);
    assert_eq!(seen, expected);
    assert_eq!(message["message_id"], asked.message);
    assert_eq!(message["id"], asked.message);
    assert_eq!(message["content"], "What is the Revenue by product?");
    assert!(message["user_id"].is_u64());
    assert!(message["last_updated_timestamp"].as_i64() >= message["created_timestamp"].as_i64());
    assert!(message.get("error").is_none());
    assert_eq!(query["title"], "Revenue by product");
    assert!(query["query"].as_str().unwrap_or_default().contains("JOIN"));
    assert_eq!(query["query_result_metadata"]["is_truncated"], false);
    assert_eq!(
        texts(&message),
        [(
            "Revenue per product, highest first.".to_owned(),
            "TEXT_ATTACHMENT_PURPOSE_ANSWER".to_owned()
        )]
    );
    assert_eq!(status, StatusCode::OK, "{result}");
    let response = &result["statement_response"];
    assert_eq!(response["status"]["state"], "SUCCEEDED");
    assert_eq!(response["statement_id"], statement_id);
    let columns = &response["manifest"]["schema"]["columns"];
    assert_eq!(columns[0]["name"], "product");
    assert_eq!(columns[1]["name"], "revenue");
    let rows = response["result"]["data_array"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!rows.is_empty());
    assert_eq!(
        query["query_result_metadata"]["row_count"],
        json!(rows.len())
    );
    assert_eq!(deprecated, result);
    assert_eq!(oldest, result);
    assert_eq!(statement, *response);
}

#[tokio::test]
async fn text_answers_and_questions_without_a_rule_complete_with_a_text_attachment() {
    // Arrange
    let te = spawn().await;

    // Act
    let (scripted, _) = start(&te, BOB, SALES, "What can you do?").await;
    let (unknown, _) = start(&te, BOB, SALES, "Tell me a joke").await;
    let (scripted_seen, scripted) = settle(&te, BOB, &scripted).await;
    let (_, unknown_message) = settle(&te, BOB, &unknown).await;
    let (status, body) = te
        .get(&format!("{}/query-result", unknown.path()), BOB)
        .await;

    // Assert
    let mut expected: Vec<&str> = PROGRESS.to_vec();
    expected.push("COMPLETED");
    assert_eq!(scripted_seen, expected);
    let scripted_texts = texts(&scripted);
    assert_eq!(scripted_texts.len(), 1);
    assert!(scripted_texts[0].0.starts_with("I can answer questions"));
    assert_eq!(scripted_texts[0].1, "TEXT_ATTACHMENT_PURPOSE_ANSWER");
    let unknown_texts = texts(&unknown_message);
    assert_eq!(unknown_texts[0].1, "FOLLOW_UP_QUESTION");
    assert!(unknown_texts[0].0.contains("Sales"));
    assert_eq!(query_attachment(&unknown_message).1, Value::Null);
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn bob_uses_the_sales_space_but_his_query_on_orders_fails_as_a_failed_message() {
    // Arrange
    let te = spawn().await;

    // Act
    let (orders, _) = start(&te, BOB, SALES, "How many orders are there?").await;
    let products = follow_up(&te, BOB, &orders, "List the products").await;
    let (orders_seen, orders_message) = settle(&te, BOB, &orders).await;
    let (_, products_message) = settle(&te, BOB, &products).await;
    let (failed_status, _) = te
        .get(&format!("{}/query-result", orders.path()), BOB)
        .await;
    let (products_status, products_result) = te
        .get(&format!("{}/query-result", products.path()), BOB)
        .await;
    let taxi_path = format!("{SPACES}/{TAXI}/start-conversation");
    let (taxi_status, taxi) = te
        .post(&taxi_path, BOB, json!({"content": "average fare"}))
        .await;

    // Assert
    let mut expected: Vec<&str> = PROGRESS.to_vec();
    expected.extend(["EXECUTING_QUERY", "FAILED"]);
    assert_eq!(orders_seen, expected);
    assert_eq!(orders_message["error"]["type"], "SQL_EXECUTION_EXCEPTION");
    let error = orders_message["error"]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("INSUFFICIENT_PERMISSIONS"), "{error}");
    assert_eq!(failed_status, StatusCode::BAD_REQUEST);
    assert_eq!(products_message["status"], "COMPLETED");
    assert_eq!(products_status, StatusCode::OK);
    let rows = &products_result["statement_response"]["result"]["data_array"];
    assert_eq!(rows.as_array().map(Vec::len), Some(8));
    assert_eq!(taxi_status, StatusCode::FORBIDDEN);
    assert_eq!(taxi["error_code"], "PERMISSION_DENIED");
}

#[tokio::test]
async fn conversations_belong_to_whoever_started_them() {
    // Arrange
    let te = spawn().await;
    let (mine, _) = start(&te, ALICE, SALES, "What can you do?").await;
    let (older, _) = start(&te, ALICE, SALES, "Tell me a joke").await;
    let (bobs, _) = start(&te, BOB, SALES, "What can you do?").await;
    let list = format!("{SPACES}/{SALES}/conversations");

    // Act
    let (bob_get, _) = te.get(&mine.path(), BOB).await;
    let (bob_post, _) = te
        .post(
            &format!("{}/messages", mine.conversation_path()),
            BOB,
            json!({"content": "hi"}),
        )
        .await;
    let bob_delete = send(te.request(Method::DELETE, &mine.conversation_path(), BOB)).await;
    let (_, bob_list) = te.get(&list, BOB).await;
    let (bob_all_status, _) = te.get(&format!("{list}?include_all=true"), BOB).await;
    let (_, admin_all) = te.get(&format!("{list}?include_all=true"), ADMIN).await;
    let (_, first) = te.get(&format!("{list}?page_size=1"), ALICE).await;
    let token = first["next_page_token"].as_str().unwrap_or_default();
    let (_, second) = te
        .get(&format!("{list}?page_size=1&page_token={token}"), ALICE)
        .await;

    // Assert
    let ids = |body: &Value| -> Vec<String> {
        (body["conversations"].as_array().into_iter().flatten())
            .filter_map(|c| c["conversation_id"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(bob_get, StatusCode::NOT_FOUND);
    assert_eq!(bob_post, StatusCode::NOT_FOUND);
    assert_eq!(bob_delete.0, StatusCode::NOT_FOUND);
    assert_eq!(ids(&bob_list), [bobs.conversation.as_str()]);
    assert_eq!(bob_all_status, StatusCode::FORBIDDEN);
    assert_eq!(ids(&admin_all).len(), 3);
    // Newest first.
    assert_eq!(ids(&first), [older.conversation.as_str()]);
    assert_eq!(ids(&second), [mine.conversation.as_str()]);
    assert_eq!(second["conversations"][0]["title"], "What can you do?");
    assert!(second.get("next_page_token").is_none());
}

#[tokio::test]
async fn messages_page_take_feedback_and_can_be_deleted() {
    // Arrange
    let te = spawn().await;
    let (first, _) = start(&te, ALICE, SALES, "What can you do?").await;
    let second = follow_up(&te, ALICE, &first, "List the products").await;
    let messages = format!("{}/messages", first.conversation_path());

    // Act
    let (_, page_one) = te.get(&format!("{messages}?page_size=1"), ALICE).await;
    let token = page_one["next_page_token"].as_str().unwrap_or_default();
    let (_, page_two) = te
        .get(&format!("{messages}?page_size=1&page_token={token}"), ALICE)
        .await;
    let feedback = format!("{}/feedback", first.path());
    let (rated, _) = te
        .post(
            &feedback,
            ALICE,
            json!({"rating": "POSITIVE", "comment": "spot on"}),
        )
        .await;
    let (bad_rating, bad) = te.post(&feedback, ALICE, json!({"rating": "GREAT"})).await;
    let (_, rated_message) = te.get(&first.path(), ALICE).await;
    let deleted = send(te.request(Method::DELETE, &second.path(), ALICE)).await;
    let (gone, _) = te.get(&second.path(), ALICE).await;
    let (_, remaining) = te.get(&messages, ALICE).await;
    let dropped = send(te.request(Method::DELETE, &first.conversation_path(), ALICE)).await;
    let (conversation_gone, _) = te.get(&first.path(), ALICE).await;
    let (_, conversations) = te
        .get(&format!("{SPACES}/{SALES}/conversations"), ALICE)
        .await;

    // Assert
    let ids = |body: &Value| -> Vec<String> {
        (body["messages"].as_array().into_iter().flatten())
            .filter_map(|m| m["message_id"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(ids(&page_one), [first.message.as_str()]);
    assert_eq!(ids(&page_two), [second.message.as_str()]);
    assert!(page_two.get("next_page_token").is_none());
    assert_eq!(rated, StatusCode::OK);
    assert_eq!(bad_rating, StatusCode::BAD_REQUEST);
    assert_eq!(bad["error_code"], "INVALID_PARAMETER_VALUE");
    assert_eq!(
        rated_message["feedback"],
        json!({"rating": "POSITIVE", "comment": "spot on"})
    );
    assert_eq!(deleted.0, StatusCode::OK);
    assert_eq!(gone, StatusCode::NOT_FOUND);
    assert_eq!(ids(&remaining), [first.message.as_str()]);
    assert_eq!(dropped.0, StatusCode::OK);
    assert_eq!(conversation_gone, StatusCode::NOT_FOUND);
    assert!(ids_of_conversations(&conversations).is_empty());
}

#[tokio::test]
async fn scripted_faults_fail_the_message_or_its_query() {
    // Arrange
    let te = spawn().await;

    // Act
    let (message_fault, _) = start(&te, ALICE, SALES, "please [fail message]").await;
    let (query_fault, _) = start(&te, ALICE, SALES, "please [FAIL QUERY]").await;
    let (message_seen, failed_message) = settle(&te, ALICE, &message_fault).await;
    let (query_seen, failed_query) = settle(&te, ALICE, &query_fault).await;

    // Assert
    let mut expected: Vec<&str> = PROGRESS.to_vec();
    expected.push("FAILED");
    assert_eq!(message_seen, expected);
    assert_eq!(
        failed_message["error"]["type"],
        "GENERIC_CHAT_COMPLETION_EXCEPTION"
    );
    assert!(failed_message.get("attachments").is_none());
    assert_eq!(query_seen.last().map(String::as_str), Some("FAILED"));
    assert!(query_seen.contains(&"EXECUTING_QUERY".to_owned()));
    assert_eq!(failed_query["error"]["type"], "SQL_EXECUTION_EXCEPTION");
    assert!(query_attachment(&failed_query).1["statement_id"].is_string());
}

#[tokio::test]
async fn an_expired_result_runs_again_through_execute_query() {
    // Arrange
    let te = spawn().await;
    let (asked, _) = start(&te, ALICE, SALES, "[expire result] products").await;
    let (seen, completed) = settle(&te, ALICE, &asked).await;
    let (attachment, query) = query_attachment(&completed);
    let (_, expired_seen) = {
        let mut seen = Vec::new();
        let mut body = Value::Null;
        for _ in 0..400 {
            let (_, b) = te.get(&asked.path(), ALICE).await;
            body = b;
            if body["status"] == "QUERY_RESULT_EXPIRED" {
                seen.push("QUERY_RESULT_EXPIRED");
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        (body, seen)
    };
    let result_path = format!("{}/attachments/{attachment}/query-result", asked.path());
    let (expired_status, _) = te.get(&result_path, ALICE).await;

    // Act
    let execute = format!("{}/attachments/{attachment}/execute-query", asked.path());
    let (executed_status, executed) = te.post(&execute, ALICE, json!({})).await;
    let (rerun_seen, rerun) = settle(&te, ALICE, &asked).await;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let (_, later) = te.get(&asked.path(), ALICE).await;
    let (result_status, result) = te.get(&result_path, ALICE).await;
    let (bob_status, _) = te.post(&execute, BOB, json!({})).await;

    // Assert
    assert_eq!(seen.last().map(String::as_str), Some("COMPLETED"));
    assert_eq!(expired_seen, ["QUERY_RESULT_EXPIRED"]);
    assert_eq!(expired_status, StatusCode::BAD_REQUEST);
    assert_eq!(executed_status, StatusCode::OK, "{executed}");
    let new_id = executed["statement_response"]["statement_id"].as_str();
    assert!(new_id.is_some());
    assert_ne!(new_id, query["statement_id"].as_str());
    assert_eq!(rerun_seen.last().map(String::as_str), Some("COMPLETED"));
    assert_eq!(query_attachment(&rerun).1["statement_id"].as_str(), new_id);
    assert_eq!(later["status"], "COMPLETED");
    assert_eq!(result_status, StatusCode::OK);
    assert_eq!(result["statement_response"]["status"]["state"], "SUCCEEDED");
    assert_eq!(bob_status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_stopped_warehouse_holds_the_message_in_pending_warehouse_until_it_runs() {
    // Arrange
    let te = spawn().await;
    te.handle
        .update_settings(|s| {
            s.warehouse_start_ms = 600;
            s.genie_step_ms = 20;
        })
        .expect("valid settings");
    te.handle
        .set_warehouse_state("dev-warehouse", WarehouseState::Stopped)
        .expect("the warehouse exists");

    // Act
    let (asked, _) = start(&te, ALICE, SALES, "List the products").await;
    let (seen, message) = settle(&te, ALICE, &asked).await;
    let (_, warehouse) = te.get("/api/2.0/sql/warehouses/dev-warehouse", ALICE).await;

    // Assert
    let mut expected: Vec<&str> = PROGRESS.to_vec();
    expected.extend(["PENDING_WAREHOUSE", "EXECUTING_QUERY", "COMPLETED"]);
    assert_eq!(seen, expected);
    assert_eq!(message["status"], "COMPLETED");
    assert_eq!(warehouse["state"], "RUNNING");
}

#[tokio::test]
async fn the_step_delay_is_a_run_time_setting() {
    // Arrange
    let te = spawn().await;
    let config = te
        .http
        .put(te.url("/_emulator/config"))
        .json(&json!({"genie_step_ms": 0}));
    let (status, settings) = send(config).await;

    // Act
    let (asked, started) = start(&te, ALICE, SALES, "List the products").await;
    let (_, message) = te.get(&asked.path(), ALICE).await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{settings}");
    assert_eq!(settings["genie_step_ms"], 0);
    assert_eq!(started["message"]["status"], "COMPLETED");
    assert_eq!(message["status"], "COMPLETED");
}

#[tokio::test]
async fn bad_requests_get_databricks_errors() {
    // Arrange
    let te = spawn().await;
    let start_path = format!("{SPACES}/{SALES}/start-conversation");

    // Act
    let (empty, empty_body) = te.post(&start_path, ALICE, json!({})).await;
    let (malformed, malformed_body) = send(
        te.request(Method::POST, &start_path, ALICE)
            .body("{not json"),
    )
    .await;
    let (bad_size, _) = te.get(&format!("{SPACES}?page_size=-1"), ALICE).await;
    let (bad_token, _) = te.get(&format!("{SPACES}?page_token=zzz"), ALICE).await;
    let (bad_flag, _) = te
        .get(
            &format!("{SPACES}/{SALES}/conversations?include_all=maybe"),
            ADMIN,
        )
        .await;
    let (anonymous, _) = send(te.http.get(te.url(SPACES))).await;

    // Assert
    assert_eq!(empty, StatusCode::BAD_REQUEST);
    assert_eq!(empty_body["error_code"], "INVALID_PARAMETER_VALUE");
    assert_eq!(malformed, StatusCode::BAD_REQUEST);
    assert_eq!(malformed_body["error_code"], "MALFORMED_REQUEST");
    assert_eq!(bad_size, StatusCode::BAD_REQUEST);
    assert_eq!(bad_token, StatusCode::BAD_REQUEST);
    assert_eq!(bad_flag, StatusCode::BAD_REQUEST);
    assert_eq!(anonymous, StatusCode::UNAUTHORIZED);
}
