//! Conversations: list, read, rename and delete the caller's own; ids checked; other users'
//! conversations answer `CONVERSATION_NOT_FOUND`, as a property over random sequences. Nothing
//! creates conversations over HTTP yet, so the tests seed them through the server's own store.

use std::collections::BTreeMap;

use dbapp_databricks::api::CurrentUser;
use dbapp_store::{MessageOutcome, NewConversation, NewMessage, PageRequest, UserId};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::app::{ALICE, BOB, Options, TestApp, assert_error, spawn_app, spawn_app_with};

/// The test users: token and SCIM `userName`, which the store keys rows by.
const USERS: [(&str, &str); 2] = [(ALICE, "alice@example.com"), (BOB, "bob@example.com")];

/// The `UserId` the server derives from `email`'s token.
fn user(email: &str) -> UserId {
    let me: CurrentUser =
        serde_json::from_value(json!({ "userName": email })).expect("a SCIM Me answer");
    UserId::from_authenticated_identity(&me)
}

/// Creates a conversation of `email` with a user question and an assistant answer, through the
/// server's store, as the chat route's recording will.
async fn seed(app: &TestApp, email: &str, title: &str) -> Uuid {
    let store = app.state.store.as_ref().expect("a store");
    let id = Uuid::new_v4();
    let owner = user(email);
    store
        .create_conversation(
            &owner,
            &NewConversation {
                id,
                title: title.to_owned(),
                endpoint_name: "chat-model".to_owned(),
            },
        )
        .await
        .unwrap();
    let answer = NewMessage {
        endpoint_name: Some("chat-model".into()),
        finish_reason: Some("stop".into()),
        outcome: Some(MessageOutcome::Completed),
        prompt_tokens: Some(9),
        completion_tokens: Some(3),
        latency_ms: Some(250),
        first_token_ms: Some(40),
        ..NewMessage::new("assistant", json!(format!("answer for {email}")))
    };
    let question = NewMessage::new("user", json!([{"type": "text", "text": email}]));
    store
        .append_messages(&owner, id, &[question, answer])
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn conversations_are_listed_read_renamed_and_deleted() {
    // Arrange
    let app = spawn_app().await;
    let older = seed(&app, "alice@example.com", "Older").await;
    let newer = seed(&app, "alice@example.com", "Newer").await;

    // Act
    let (list_status, list) = app.list_conversations(ALICE, "").json().await;
    let (get_status, detail) = app.get_conversation(ALICE, &older.to_string()).json().await;
    let (rename_status, renamed) = app
        .rename_conversation(ALICE, &older.to_string(), &json!({"title": "Renamed ✓"}))
        .json()
        .await;
    let (_, after_rename) = app.list_conversations(ALICE, "").json().await;
    let deleted = app
        .delete_conversation(ALICE, &older.to_string())
        .send()
        .await;
    let read_deleted = app.get_conversation(ALICE, &older.to_string()).send().await;
    let delete_again = app
        .delete_conversation(ALICE, &older.to_string())
        .send()
        .await;

    // Assert
    assert_eq!(list_status, 200);
    let ids = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&list), [newer.to_string(), older.to_string()]);
    assert_eq!(list["total_count"], 2);
    assert_eq!(list["next_page_token"], Value::Null);
    assert_eq!(list["items"][1]["title"], "Older");
    assert_eq!(list["items"][1]["message_count"], 2);
    assert_eq!(get_status, 200);
    assert_eq!(detail["id"], older.to_string());
    assert_eq!(detail["endpoint_name"], "chat-model");
    let messages = detail["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["position"], 0);
    assert_eq!(messages[0]["role"], "user");
    assert_eq!(messages[0]["outcome"], Value::Null);
    assert_eq!(messages[1]["position"], 1);
    assert_eq!(messages[1]["content"], "answer for alice@example.com");
    assert_eq!(messages[1]["outcome"], "completed");
    assert_eq!(messages[1]["completion_tokens"], 3);
    assert_eq!(messages[1]["first_token_ms"], 40);
    assert_eq!(messages[1]["tool_calls"], Value::Null);
    assert_eq!(messages[1]["content_truncated"], false);
    assert!(messages[1]["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(rename_status, 200);
    assert_eq!(renamed["title"], "Renamed ✓");
    assert_eq!(ids(&after_rename), [older.to_string(), newer.to_string()]);
    assert_eq!(deleted.status(), 204);
    assert_error(read_deleted, 404, "CONVERSATION_NOT_FOUND").await;
    assert_error(delete_again, 404, "CONVERSATION_NOT_FOUND").await;
}

#[tokio::test]
async fn conversations_are_paged_like_the_inference_history() {
    // Arrange
    let app = spawn_app().await;
    let mut seeded = Vec::new();
    for title in ["a", "b", "c"] {
        seeded.push(seed(&app, "alice@example.com", title).await.to_string());
    }

    // Act
    let (_, first) = app.list_conversations(ALICE, "?limit=2").json().await;
    let token = first["next_page_token"].as_str().unwrap().to_owned();
    let (_, second) = app
        .list_conversations(ALICE, &format!("?limit=2&page_token={token}"))
        .json()
        .await;
    let (_, by_offset) = app.list_conversations(ALICE, "?offset=2").json().await;
    let both = app
        .list_conversations(ALICE, &format!("?offset=1&page_token={token}"))
        .send()
        .await;

    // Assert: newest first, across the two pages.
    let titles = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["title"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(titles(&first), ["c", "b"]);
    assert_eq!(first["total_count"], 3);
    assert_eq!(titles(&second), ["a"]);
    assert_eq!(second["next_page_token"], Value::Null);
    assert_eq!(titles(&by_offset), ["a"]);
    let body = assert_error(both, 400, "INVALID_REQUEST").await;
    assert_eq!(body["detail"]["field"], "offset");
}

#[tokio::test]
async fn an_id_that_is_not_a_uuid_is_invalid_request_naming_id() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let responses = [
        app.get_conversation(ALICE, "not-a-uuid").send().await,
        app.rename_conversation(ALICE, "123", &json!({"title": "x"}))
            .send()
            .await,
        app.delete_conversation(ALICE, "%27%3B--").send().await,
    ];

    // Assert
    for response in responses {
        let body = assert_error(response, 400, "INVALID_REQUEST").await;
        assert_eq!(body["detail"]["field"], "id", "{body}");
    }
}

#[tokio::test]
async fn titles_and_rename_bodies_are_validated() {
    // Arrange
    let app = spawn_app().await;
    let id = seed(&app, "alice@example.com", "Kept").await.to_string();
    let cases = [
        (json!({"title": ""}), "title"),
        (json!({"title": "   "}), "title"),
        (json!({"title": "x".repeat(201)}), "title"),
        (json!({"title": "x", "extra": 1}), "body"),
        (json!({}), "body"),
        (json!(["x"]), "body"),
    ];

    // Act
    let mut fields = Vec::new();
    for (body, _) in &cases {
        let response = app.rename_conversation(ALICE, &id, body).send().await;
        let error = assert_error(response, 400, "INVALID_REQUEST").await;
        fields.push(error["detail"]["field"].as_str().unwrap().to_owned());
    }
    let longest = app
        .rename_conversation(ALICE, &id, &json!({"title": "é".repeat(200)}))
        .send()
        .await;

    // Assert
    let expected: Vec<&str> = cases.iter().map(|(_, field)| *field).collect();
    assert_eq!(fields, expected);
    assert_eq!(longest.status(), 200);
}

#[tokio::test]
async fn without_a_store_conversations_are_storage_not_configured() {
    // Arrange
    let app = spawn_app_with(Options {
        store: false,
        ..Options::default()
    })
    .await;
    let id = Uuid::new_v4().to_string();

    // Act
    let list = app.list_conversations(ALICE, "").send().await;
    let get = app.get_conversation(ALICE, &id).send().await;
    let delete = app.delete_conversation(ALICE, &id).send().await;

    // Assert
    assert_error(list, 503, "STORAGE_NOT_CONFIGURED").await;
    assert_error(get, 503, "STORAGE_NOT_CONFIGURED").await;
    assert_error(delete, 503, "STORAGE_NOT_CONFIGURED").await;
}

/// Conversations each case seeds per user; ops pick among all of them, plus one id nobody has.
const PER_USER: usize = 2;

#[derive(Debug, Clone)]
enum Op {
    List {
        user: usize,
    },
    Get {
        user: usize,
        target: usize,
    },
    Rename {
        user: usize,
        target: usize,
        title: u8,
    },
    Delete {
        user: usize,
        target: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let user = 0..USERS.len();
    let target = 0..=USERS.len() * PER_USER;
    prop_oneof![
        (user.clone()).prop_map(|user| Op::List { user }),
        (user.clone(), target.clone()).prop_map(|(user, target)| Op::Get { user, target }),
        (user.clone(), target.clone(), any::<u8>()).prop_map(|(user, target, title)| Op::Rename {
            user,
            target,
            title
        }),
        (user, target).prop_map(|(user, target)| Op::Delete { user, target }),
    ]
}

/// Deletes every conversation of the test users, so each case starts from nothing.
async fn clear(app: &TestApp) {
    let store = app.state.store.as_ref().expect("a store");
    for (_, email) in USERS {
        let owner = user(email);
        let page = store
            .list_conversations(&owner, PageRequest::new(1000, 0).unwrap())
            .await
            .unwrap();
        for conversation in page.items {
            store
                .delete_conversation(&owner, conversation.id)
                .await
                .unwrap();
        }
    }
}

/// Runs `ops` against the server and a model of who owns what, checking every answer.
async fn run_case(app: &TestApp, ops: Vec<Op>) -> Result<(), TestCaseError> {
    clear(app).await;
    let mut ids = Vec::new();
    let mut model: BTreeMap<Uuid, (usize, String)> = BTreeMap::new();
    for (owner, (_, email)) in USERS.iter().enumerate() {
        for n in 0..PER_USER {
            let title = format!("{email} #{n}");
            let id = seed(app, email, &title).await;
            ids.push(id);
            model.insert(id, (owner, title));
        }
    }
    ids.push(Uuid::new_v4());
    for op in ops {
        match op {
            Op::List { user } => {
                let (status, page) = app.list_conversations(USERS[user].0, "").json().await;
                prop_assert_eq!(status, 200);
                let seen: BTreeMap<String, String> = page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| {
                        let id = c["id"].as_str().unwrap().to_owned();
                        (id, c["title"].as_str().unwrap().to_owned())
                    })
                    .collect();
                let owned: BTreeMap<String, String> = model
                    .iter()
                    .filter(|(_, (owner, _))| *owner == user)
                    .map(|(id, (_, title))| (id.to_string(), title.clone()))
                    .collect();
                prop_assert_eq!(seen, owned);
            }
            Op::Get { user, target } => {
                let id = ids[target];
                let response = app
                    .get_conversation(USERS[user].0, &id.to_string())
                    .send()
                    .await;
                match model.get(&id) {
                    Some((owner, title)) if *owner == user => {
                        prop_assert_eq!(response.status().as_u16(), 200);
                        let body: Value = response.json().await.unwrap();
                        prop_assert_eq!(body["title"].as_str(), Some(title.as_str()));
                        prop_assert_eq!(&body["messages"][0]["content"][0]["text"], USERS[user].1);
                    }
                    _ => {
                        assert_error(response, 404, "CONVERSATION_NOT_FOUND").await;
                    }
                }
            }
            Op::Rename {
                user,
                target,
                title,
            } => {
                let id = ids[target];
                let title = format!("{} renamed {title}", USERS[user].1);
                let response = app
                    .rename_conversation(USERS[user].0, &id.to_string(), &json!({"title": title}))
                    .send()
                    .await;
                match model.get_mut(&id) {
                    Some((owner, stored)) if *owner == user => {
                        prop_assert_eq!(response.status().as_u16(), 200);
                        *stored = title;
                    }
                    _ => {
                        assert_error(response, 404, "CONVERSATION_NOT_FOUND").await;
                    }
                }
            }
            Op::Delete { user, target } => {
                let id = ids[target];
                let response = app
                    .delete_conversation(USERS[user].0, &id.to_string())
                    .send()
                    .await;
                if model.get(&id).is_some_and(|(owner, _)| *owner == user) {
                    prop_assert_eq!(response.status().as_u16(), 204);
                    model.remove(&id);
                } else {
                    assert_error(response, 404, "CONVERSATION_NOT_FOUND").await;
                }
            }
        }
    }
    // Whatever happened, each user's remaining conversations still hold their own messages.
    let store = app.state.store.as_ref().expect("a store");
    for (id, (owner, title)) in &model {
        let detail = store
            .get_conversation(&user(USERS[*owner].1), *id)
            .await
            .unwrap();
        prop_assert_eq!(&detail.conversation.title, title);
        prop_assert_eq!(detail.messages.len(), 2);
    }
    Ok(())
}

#[test]
fn alices_and_bobs_conversations_never_cross() {
    // Arrange: one server for every case; each case clears and seeds its own conversations.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = runtime.block_on(spawn_app());
    let mut runner = TestRunner::new(Config {
        cases: 16,
        failure_persistence: None,
        ..Config::default()
    });

    // Act
    let result = runner.run(&proptest::collection::vec(op(), 1..25), |ops| {
        runtime.block_on(run_case(&app, ops))
    });

    // Assert
    runtime.block_on(async move { drop(app) });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
