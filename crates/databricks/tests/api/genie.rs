//! Genie against the emulator's scripted spaces (`crates/emulator/fixture/default.json`,
//! `genie_spaces`): a query answer waited for and its rows read, a failed message, paging and
//! who sees which space, the waiter's deadline, crafted ids, and the conversation calls.

use std::time::Duration;

use dbapp_databricks::ErrorKind;
use dbapp_databricks::api::{GenieFeedbackRating, GenieMessageStatus, GenieWait, PageRequest};

use crate::support::{TestWorkspace, user};

/// "Sales": alice, bob and admins; orders (`main.sales`, hidden from bob) and products.
const SALES: &str = "01f0c0ffee5a1e5000000000000000a1";
/// "Taxi trips": alice only.
const TAXI: &str = "01f0c0ffee5a1e5000000000000000b2";

/// Quick polls: the emulator moves a message on every 100 ms.
fn quick() -> GenieWait {
    GenieWait::with_deadline(Duration::from_secs(30))
        .delays(Duration::from_millis(20), Duration::from_millis(100))
}

#[tokio::test]
async fn a_question_is_waited_for_until_completed_and_its_query_rows_are_read() {
    // Arrange
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    let alice = user("dev-token-alice");
    let genie = client.as_user(&alice);
    let mut seen = Vec::new();

    // Act
    let started = genie
        .start_genie_conversation(SALES, "What is the Revenue by product?")
        .await
        .unwrap();
    let (conversation, message_id) = (&started.conversation_id, &started.message_id);
    let answer = genie
        .wait_for_genie_message(SALES, conversation, message_id, &quick(), |m| {
            seen.push(m.status());
        })
        .await
        .unwrap();
    let attachment = answer.query_attachment().expect("a query attachment");
    let attachment_id = attachment.attachment_id.as_deref().unwrap();
    let result = genie
        .get_genie_query_result(SALES, conversation, message_id, attachment_id)
        .await
        .unwrap();

    // Assert
    assert_eq!(
        started.message.as_ref().map(|m| m.status()),
        Some(GenieMessageStatus::Submitted)
    );
    assert_eq!(answer.status(), GenieMessageStatus::Completed);
    assert_eq!(seen.first(), Some(&GenieMessageStatus::Submitted));
    assert!(
        seen.contains(&GenieMessageStatus::ExecutingQuery),
        "{seen:?}"
    );
    assert_eq!(seen.last(), Some(&GenieMessageStatus::Completed));
    // Each change is reported once.
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!(unique, seen);
    assert_eq!(answer.content, "What is the Revenue by product?");
    assert_eq!(
        answer.texts().collect::<Vec<_>>(),
        ["Revenue per product, highest first."]
    );
    let query = attachment.query.as_ref().unwrap();
    assert_eq!(query.title.as_deref(), Some("Revenue by product"));
    assert_eq!(
        query.statement_id.as_deref(),
        Some(result.statement_id.as_str())
    );
    assert_eq!(result.status.state, "SUCCEEDED");
    let columns: Vec<&str> = result
        .manifest
        .as_ref()
        .and_then(|m| m.schema.as_ref())
        .map(|s| s.columns.iter().map(|c| c.name.as_str()).collect())
        .unwrap_or_default();
    assert_eq!(columns, ["product", "revenue"]);
    let rows = &result.result.as_ref().unwrap().data_array;
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|row| row.len() == 2 && row[0].is_some()));
}

#[tokio::test]
async fn a_failed_message_is_returned_with_its_error_and_not_asked_again() {
    // Arrange
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    let alice = user("dev-token-alice");
    let genie = client.as_user(&alice);
    let started = genie
        .start_genie_conversation(SALES, "please [fail message]")
        .await
        .unwrap();
    let path = format!(
        "/api/2.0/genie/spaces/{SALES}/conversations/{}/messages/{}",
        started.conversation_id, started.message_id
    );

    // Act
    let failed = genie
        .wait_for_genie_message(
            SALES,
            &started.conversation_id,
            &started.message_id,
            &quick(),
            |_| {},
        )
        .await
        .unwrap();
    let polls = workspace.emulator.requests(&path).len();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Assert
    assert_eq!(failed.status(), GenieMessageStatus::Failed);
    let error = failed.error.as_ref().expect("an error");
    assert_eq!(
        error.error_type.as_deref(),
        Some("GENERIC_CHAT_COMPLETION_EXCEPTION")
    );
    assert!(failed.attachments.is_empty());
    assert_eq!(workspace.emulator.requests(&path).len(), polls);
}

#[tokio::test]
async fn spaces_come_a_page_at_a_time_and_only_those_the_caller_may_use() {
    // Arrange
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    let (alice, bob) = (user("dev-token-alice"), user("dev-token-bob"));

    // Act
    let first = client
        .as_user(&alice)
        .list_genie_spaces(&PageRequest::first(1))
        .await
        .unwrap();
    let token = first.next_page_token.clone().expect("a second page");
    let second = client
        .as_user(&alice)
        .list_genie_spaces(&PageRequest::after(1, token))
        .await
        .unwrap();
    let bobs = client
        .as_user(&bob)
        .list_genie_spaces(&PageRequest::default())
        .await
        .unwrap();
    let sales = client.as_user(&bob).get_genie_space(SALES).await.unwrap();

    // Assert
    let ids = |page: &dbapp_databricks::api::Page<dbapp_databricks::api::GenieSpace>| {
        page.items
            .iter()
            .map(|s| s.space_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(first.items.len(), 1);
    let mut all = [ids(&first), ids(&second)].concat();
    all.sort();
    assert_eq!(all, [SALES, TAXI]);
    assert!(second.next_page_token.is_none_or(|t| t.is_empty()));
    assert_eq!(ids(&bobs), [SALES]);
    assert_eq!(sales.title, "Sales");
    assert_eq!(sales.warehouse_id.as_deref(), Some("dev-warehouse"));
}

#[tokio::test]
async fn bob_cannot_use_alices_space_or_see_her_messages_and_his_orders_query_fails() {
    // Arrange
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    let (alice, bob) = (user("dev-token-alice"), user("dev-token-bob"));
    let alices = client
        .as_user(&alice)
        .start_genie_conversation(SALES, "What can you do?")
        .await
        .unwrap();

    // Act
    let taxi = client
        .as_user(&bob)
        .get_genie_space(TAXI)
        .await
        .unwrap_err();
    let taxi_start = client
        .as_user(&bob)
        .start_genie_conversation(TAXI, "average fare")
        .await
        .unwrap_err();
    let hers = client
        .as_user(&bob)
        .get_genie_message(SALES, &alices.conversation_id, &alices.message_id)
        .await
        .unwrap_err();
    let genie = client.as_user(&bob);
    let orders = genie
        .start_genie_conversation(SALES, "How many orders are there?")
        .await
        .unwrap();
    let answer = genie
        .wait_for_genie_message(
            SALES,
            &orders.conversation_id,
            &orders.message_id,
            &quick(),
            |_| {},
        )
        .await
        .unwrap();

    // Assert
    assert_eq!(taxi.kind(), ErrorKind::PermissionDenied, "{taxi}");
    assert_eq!(taxi_start.kind(), ErrorKind::PermissionDenied);
    assert_eq!(hers.kind(), ErrorKind::NotFound, "{hers}");
    // The query runs as bob, who may not read main.sales.
    assert_eq!(answer.status(), GenieMessageStatus::Failed);
    let error = answer.error.unwrap();
    assert_eq!(error.error_type.as_deref(), Some("SQL_EXECUTION_EXCEPTION"));
    assert!(
        error
            .error
            .unwrap_or_default()
            .contains("INSUFFICIENT_PERMISSIONS")
    );
}

#[tokio::test]
async fn the_waiter_gives_up_at_its_deadline() {
    // Arrange: a message that takes a second per status.
    let workspace = TestWorkspace::start().await;
    workspace
        .emulator
        .update_settings(|s| s.genie_step_ms = 1_000)
        .unwrap();
    let client = workspace.client();
    let alice = user("dev-token-alice");
    let genie = client.as_user(&alice);
    let started = genie
        .start_genie_conversation(SALES, "List the products")
        .await
        .unwrap();
    let wait = GenieWait::with_deadline(Duration::from_millis(600))
        .delays(Duration::from_millis(50), Duration::from_millis(100));
    let begun = std::time::Instant::now();

    // Act
    let error = genie
        .wait_for_genie_message(
            SALES,
            &started.conversation_id,
            &started.message_id,
            &wait,
            |_| {},
        )
        .await
        .unwrap_err();

    // Assert
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert!(error.to_string().contains("SUBMITTED"), "{error}");
    assert!(begun.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn crafted_ids_never_change_the_path() {
    // Arrange
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    let alice = user("dev-token-alice");
    let genie = client.as_user(&alice);

    // Act
    let dots = genie.get_genie_space("..").await.unwrap_err();
    let empty = genie.get_genie_message(SALES, "", "m").await.unwrap_err();
    let slash = genie
        .get_genie_space(&format!("{SALES}/conversations"))
        .await
        .unwrap_err();

    // Assert: the first two never left the client; the third reached one (unknown) space.
    assert_eq!(dots.kind(), ErrorKind::BadRequest);
    assert_eq!(empty.kind(), ErrorKind::BadRequest);
    assert_eq!(slash.kind(), ErrorKind::NotFound, "{slash}");
    let sent = workspace.emulator.requests("/api/2.0/genie");
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].path.contains("%2Fconversations"),
        "{}",
        sent[0].path
    );
}

#[tokio::test]
async fn conversations_are_listed_followed_up_rated_and_deleted() {
    // Arrange
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    let alice = user("dev-token-alice");
    let genie = client.as_user(&alice);
    let started = genie
        .start_genie_conversation(SALES, "What can you do?")
        .await
        .unwrap();
    let conversation = started.conversation_id.as_str();

    // Act
    let follow_up = genie
        .create_genie_message(SALES, conversation, "List the products")
        .await
        .unwrap();
    let answered = genie
        .wait_for_genie_message(SALES, conversation, &follow_up.message_id, &quick(), |_| {})
        .await
        .unwrap();
    genie
        .genie_feedback(
            SALES,
            conversation,
            &follow_up.message_id,
            GenieFeedbackRating::Positive,
            Some("right list"),
        )
        .await
        .unwrap();
    let messages = genie
        .list_genie_messages(SALES, conversation, &PageRequest::default())
        .await
        .unwrap();
    let conversations = genie
        .list_genie_conversations(SALES, false, &PageRequest::default())
        .await
        .unwrap();
    genie
        .delete_genie_conversation(SALES, conversation)
        .await
        .unwrap();
    let gone = genie
        .get_genie_message(SALES, conversation, &started.message_id)
        .await
        .unwrap_err();

    // Assert
    assert_eq!(follow_up.conversation_id, conversation);
    assert_eq!(answered.status(), GenieMessageStatus::Completed);
    assert_eq!(messages.items.len(), 2);
    let rated = messages
        .items
        .iter()
        .find(|m| m.message_id == follow_up.message_id)
        .unwrap();
    assert_eq!(
        rated.feedback.as_ref().and_then(|f| f.rating.as_deref()),
        Some("POSITIVE")
    );
    assert!(
        conversations
            .items
            .iter()
            .any(|c| c.conversation_id == conversation)
    );
    assert_eq!(gone.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn an_expired_result_is_terminal_and_runs_again_through_execute_query() {
    // Arrange
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    let alice = user("dev-token-alice");
    let genie = client.as_user(&alice);
    let started = genie
        .start_genie_conversation(SALES, "[expire result] products")
        .await
        .unwrap();
    let (conversation, message) = (&started.conversation_id, &started.message_id);
    let completed = genie
        .wait_for_genie_message(SALES, conversation, message, &quick(), |_| {})
        .await
        .unwrap();
    let attachment = completed
        .query_attachment()
        .and_then(|a| a.attachment_id.clone())
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;

    // Act
    let expired = genie
        .wait_for_genie_message(SALES, conversation, message, &quick(), |_| {})
        .await
        .unwrap();
    let rerun = genie
        .execute_genie_query(SALES, conversation, message, &attachment)
        .await
        .unwrap();
    let again = genie
        .wait_for_genie_message(SALES, conversation, message, &quick(), |_| {})
        .await
        .unwrap();
    let result = genie
        .get_genie_query_result(SALES, conversation, message, &attachment)
        .await
        .unwrap();

    // Assert
    assert_eq!(completed.status(), GenieMessageStatus::Completed);
    assert_eq!(expired.status(), GenieMessageStatus::QueryResultExpired);
    assert_eq!(again.status(), GenieMessageStatus::Completed);
    assert_eq!(result.status.state, "SUCCEEDED");
    assert_eq!(result.statement_id, rerun.statement_id);
}
