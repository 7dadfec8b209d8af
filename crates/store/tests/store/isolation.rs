//! User isolation as a property: random operations by several users, with keys, request ids and
//! conversation ids that collide across users on purpose, never change what another user sees.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Duration;
use dbapp_store::{
    InferenceLog, InferenceStatus, NewConversation, NewMessage, NewUsageEvent, PageRequest,
    StoreError, TimeRange, UserId,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Backend, TestDb, at, user};

/// User names chosen to trip naive SQL building: quotes, wildcards, a prefix of another name.
const USERS: [&str; 4] = [
    "alice@example.com",
    "alice@example.co",
    "o'brien%_@example.com",
    "ü\"; --",
];
const KEYS: [&str; 3] = ["theme", "lang", "ui.layout"];

#[derive(Debug, Clone)]
enum Op {
    Upsert {
        user: usize,
        key: usize,
        value: i64,
    },
    Delete {
        user: usize,
        key: usize,
    },
    AppendLog {
        user: usize,
    },
    InsertEvents {
        user: usize,
        count: usize,
    },
    /// Conversation ops name a slot of [`CONVERSATIONS`] ids shared by all users.
    CreateConversation {
        user: usize,
        slot: usize,
    },
    AppendMessage {
        user: usize,
        slot: usize,
    },
    RenameConversation {
        user: usize,
        slot: usize,
        title: u8,
    },
    DeleteConversation {
        user: usize,
        slot: usize,
    },
}

/// Conversation ids per case; every user aims at the same few, so they collide.
const CONVERSATIONS: usize = 3;

fn op() -> impl Strategy<Value = Op> {
    let user = 0..USERS.len();
    let key = 0..KEYS.len();
    prop_oneof![
        4 => (user.clone(), key.clone(), any::<i64>()).prop_map(|(user, key, value)| Op::Upsert { user, key, value }),
        2 => (user.clone(), key).prop_map(|(user, key)| Op::Delete { user, key }),
        1 => user.clone().prop_map(|user| Op::AppendLog { user }),
        1 => (user.clone(), 0..4usize).prop_map(|(user, count)| Op::InsertEvents { user, count }),
        2 => (user.clone(), 0..CONVERSATIONS).prop_map(|(user, slot)| Op::CreateConversation { user, slot }),
        2 => (user.clone(), 0..CONVERSATIONS).prop_map(|(user, slot)| Op::AppendMessage { user, slot }),
        1 => (user.clone(), 0..CONVERSATIONS, any::<u8>()).prop_map(|(user, slot, title)| Op::RenameConversation { user, slot, title }),
        1 => (user, 0..CONVERSATIONS).prop_map(|(user, slot)| Op::DeleteConversation { user, slot }),
    ]
}

#[derive(Debug, Default)]
struct Model {
    preferences: BTreeMap<String, i64>,
    logs: BTreeSet<Uuid>,
    events: i64,
    /// Conversation slot -> (title, message count).
    conversations: BTreeMap<usize, (String, u32)>,
}

/// Runs `ops` for users unique to this case, checking every user's view after each step.
async fn run_case(db: &TestDb, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let case = Uuid::new_v4().simple().to_string();
    let users: Vec<UserId> = USERS.iter().map(|u| user(&format!("{u}#{case}"))).collect();
    let mut models: Vec<Model> = USERS.iter().map(|_| Model::default()).collect();
    let window = TimeRange::Last24Hours.ending_at(at("2026-11-02T00:00:00Z"));
    let slots: Vec<Uuid> = (0..CONVERSATIONS).map(|_| Uuid::new_v4()).collect();
    // Who holds each slot's id: ids are unique across users, so only the first creator does.
    let owner = |models: &[Model], slot: usize| {
        models
            .iter()
            .position(|m| m.conversations.contains_key(&slot))
    };
    for op in ops {
        match op {
            Op::Upsert { user, key, value } => {
                let done = db
                    .store
                    .upsert_preference(&users[user], KEYS[key], &json!(value))
                    .await
                    .unwrap();
                let existed = models[user]
                    .preferences
                    .insert(KEYS[key].to_owned(), value)
                    .is_some();
                prop_assert_eq!(done.created, !existed);
            }
            Op::Delete { user, key } => {
                let existed = db
                    .store
                    .delete_preference(&users[user], KEYS[key])
                    .await
                    .unwrap();
                prop_assert_eq!(
                    existed,
                    models[user].preferences.remove(KEYS[key]).is_some()
                );
            }
            Op::AppendLog { user } => {
                let log = InferenceLog {
                    request_id: Uuid::new_v4(),
                    endpoint_name: "echo".into(),
                    status: InferenceStatus::Success,
                    inputs: json!({}),
                    inputs_truncated: false,
                    predictions: None,
                    error_message: None,
                    execution_time_ms: 1,
                    created_at: at("2026-11-01T00:00:00Z"),
                    completed_at: None,
                };
                db.store
                    .append_inference_log(&users[user], &log)
                    .await
                    .unwrap();
                models[user].logs.insert(log.request_id);
                // The same request id under another user is refused, not stored for them.
                let other = (user + 1) % USERS.len();
                let again = db.store.append_inference_log(&users[other], &log).await;
                prop_assert!(matches!(again, Err(StoreError::Conflict(_))));
            }
            Op::InsertEvents { user, count } => {
                let event = NewUsageEvent {
                    event_type: "click".into(),
                    page_name: Some("home".into()),
                    element_id: None,
                    success: None,
                    metadata: None,
                    timestamp: window.start + Duration::hours(1),
                };
                let stored = db
                    .store
                    .insert_usage_events(&users[user], &vec![event; count])
                    .await
                    .unwrap();
                prop_assert_eq!(stored, count as u64);
                models[user].events += count as i64;
            }
            Op::CreateConversation { user, slot } => {
                let title = format!("{} #{slot}", USERS[user]);
                let new = NewConversation {
                    id: slots[slot],
                    title: title.clone(),
                    endpoint_name: "chat".into(),
                };
                let created = db.store.create_conversation(&users[user], &new).await;
                if owner(&models, slot).is_some() {
                    prop_assert!(matches!(created, Err(StoreError::Conflict(_))));
                } else {
                    prop_assert!(created.is_ok());
                    models[user].conversations.insert(slot, (title, 0));
                }
            }
            Op::AppendMessage { user, slot } => {
                let message = NewMessage::new("user", json!(USERS[user]));
                let appended = db
                    .store
                    .append_messages(&users[user], slots[slot], &[message])
                    .await;
                match models[user].conversations.get_mut(&slot) {
                    Some((_, count)) => {
                        prop_assert!(appended.is_ok());
                        *count += 1;
                    }
                    None => prop_assert!(matches!(appended, Err(StoreError::NotFound(_)))),
                }
            }
            Op::RenameConversation { user, slot, title } => {
                let title = format!("{} renamed {title}", USERS[user]);
                let renamed = db
                    .store
                    .rename_conversation(&users[user], slots[slot], &title)
                    .await;
                match models[user].conversations.get_mut(&slot) {
                    Some((stored, _)) => {
                        prop_assert!(renamed.is_ok());
                        *stored = title;
                    }
                    None => prop_assert!(matches!(renamed, Err(StoreError::NotFound(_)))),
                }
            }
            Op::DeleteConversation { user, slot } => {
                let existed = db
                    .store
                    .delete_conversation(&users[user], slots[slot])
                    .await
                    .unwrap();
                prop_assert_eq!(existed, models[user].conversations.remove(&slot).is_some());
            }
        }
        for (user, model) in users.iter().zip(&models) {
            let listed: BTreeMap<String, i64> = db
                .store
                .list_preferences(user)
                .await
                .unwrap()
                .into_iter()
                .map(|p| (p.key, p.value.as_i64().unwrap()))
                .collect();
            prop_assert_eq!(&listed, &model.preferences);
            for key in KEYS {
                let got = db
                    .store
                    .get_preference(user, key)
                    .await
                    .ok()
                    .map(|p| p.value.as_i64().unwrap());
                prop_assert_eq!(got, model.preferences.get(key).copied());
            }
            let logs = db
                .store
                .list_inference_logs(user, PageRequest::new(1000, 0).unwrap())
                .await
                .unwrap();
            let ids: BTreeSet<Uuid> = logs.items.iter().map(|l| l.request_id).collect();
            prop_assert_eq!(&ids, &model.logs);
            prop_assert_eq!(logs.total_count, model.logs.len() as i64);
            prop_assert_eq!(
                db.store.count_usage_events(user, window).await.unwrap(),
                model.events
            );
            let listed: BTreeMap<Uuid, (String, u32)> = db
                .store
                .list_conversations(user, PageRequest::new(1000, 0).unwrap())
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|c| (c.id, (c.title, c.message_count)))
                .collect();
            let expected: BTreeMap<Uuid, (String, u32)> = model
                .conversations
                .iter()
                .map(|(slot, held)| (slots[*slot], held.clone()))
                .collect();
            prop_assert_eq!(&listed, &expected);
            for (slot, id) in slots.iter().enumerate() {
                let got = db.store.get_conversation(user, *id).await.ok();
                let messages: Option<Vec<Value>> =
                    got.map(|d| d.messages.into_iter().map(|m| m.message.content).collect());
                let expected = model.conversations.get(&slot).map(|(_, count)| {
                    vec![
                        json!(user.as_str().split('#').next().unwrap_or_default());
                        *count as usize
                    ]
                });
                prop_assert_eq!(messages, expected);
            }
        }
    }
    Ok(())
}

fn isolation_holds(backend: Backend) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // One database for all cases; each case's users are unique to it.
    let db = runtime.block_on(TestDb::new(backend));
    let mut runner = TestRunner::new(Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&proptest::collection::vec(op(), 1..30), |ops| {
        runtime.block_on(run_case(&db, ops))
    });
    drop(db);
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

#[test]
fn no_user_ever_sees_another_users_rows_sqlite() {
    isolation_holds(Backend::Sqlite);
}

#[test]
fn no_user_ever_sees_another_users_rows_postgres() {
    isolation_holds(Backend::Postgres);
}
