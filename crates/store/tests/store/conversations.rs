//! Conversations: create, append (positions, atomicity, the cap), read, list, rename, delete
//! with its messages, and other users' conversations out of reach.

use dbapp_store::{
    MAX_CONVERSATION_MESSAGES, MAX_MESSAGE_BYTES, MAX_TITLE_CHARS, MessageOutcome, NewConversation,
    NewMessage, PageRequest, Resource, StoreError,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{RawPool, TestDb, conformance, user};

fn new_conversation(title: &str) -> NewConversation {
    NewConversation {
        id: Uuid::new_v4(),
        title: title.into(),
        endpoint_name: "chat-model".into(),
    }
}

/// An assistant turn with every optional field set.
fn assistant_turn() -> NewMessage {
    NewMessage {
        tool_calls: Some(json!([{"id": "call_1", "type": "function",
            "function": {"name": "lookup", "arguments": "{\"q\": \"ü\"}"}}])),
        endpoint_name: Some("chat-model".into()),
        finish_reason: Some("tool_calls".into()),
        outcome: Some(MessageOutcome::Completed),
        prompt_tokens: Some(12),
        completion_tokens: Some(7),
        latency_ms: Some(830),
        first_token_ms: Some(120),
        ..NewMessage::new("assistant", Value::Null)
    }
}

fn is_not_found<T: std::fmt::Debug>(result: &Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::NotFound(Resource::Conversation)))
}

fn is_invalid<T: std::fmt::Debug>(result: &Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::InvalidInput(_)))
}

/// Messages of every conversation, whoever owns it, read behind the store's back.
async fn all_messages(raw: &RawPool) -> i64 {
    let sql = "SELECT count(*) FROM conversation_messages";
    match raw {
        RawPool::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        RawPool::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
    }
}

async fn appended_messages_come_back_whole_at_the_next_positions(db: &TestDb) {
    // Arrange
    let alice = user("alice@example.com");
    let created = db
        .store
        .create_conversation(&alice, &new_conversation("Trip to Lyon"))
        .await
        .unwrap();
    let first = vec![
        NewMessage::new("system", json!("be brief")),
        NewMessage::new("user", json!([{"type": "text", "text": "weather? ☀"}])),
    ];
    let failed = NewMessage {
        outcome: Some(MessageOutcome::Failed),
        error_code: Some("MODEL_ERROR".into()),
        error_message: Some("the endpoint failed".into()),
        content_truncated: true,
        ..NewMessage::new("assistant", json!("partial answ"))
    };
    let second = vec![
        assistant_turn(),
        NewMessage {
            tool_call_id: Some("call_1".into()),
            ..NewMessage::new("tool", json!("{\"temp\": 21}"))
        },
        failed,
    ];

    // Act
    db.store
        .append_messages(&alice, created.id, &first)
        .await
        .unwrap();
    db.store
        .append_messages(&alice, created.id, &second)
        .await
        .unwrap();
    db.store
        .append_messages(&alice, created.id, &[])
        .await
        .unwrap();
    let detail = db.store.get_conversation(&alice, created.id).await.unwrap();

    // Assert
    let positions: Vec<u32> = detail.messages.iter().map(|m| m.position).collect();
    assert_eq!(positions, [0, 1, 2, 3, 4]);
    let stored: Vec<NewMessage> = detail.messages.into_iter().map(|m| m.message).collect();
    assert_eq!(stored, [first, second].concat());
    assert_eq!(detail.conversation.message_count, 5);
    assert_eq!(detail.conversation.title, "Trip to Lyon");
    assert_eq!(detail.conversation.created_at, created.created_at);
    assert!(detail.conversation.updated_at >= created.updated_at);
    assert_eq!(created.message_count, 0);
}
conformance!(appended_messages_come_back_whole_at_the_next_positions);

async fn a_refused_batch_stores_none_of_its_messages(db: &TestDb) {
    // Arrange
    let alice = user("alice@example.com");
    let conversation = db
        .store
        .create_conversation(&alice, &new_conversation("c"))
        .await
        .unwrap();
    let valid = NewMessage::new("user", json!("hello"));
    let batches = [
        vec![valid.clone(), NewMessage::new("user", json!("nul \u{0}"))],
        vec![
            valid.clone(),
            NewMessage::new("user", json!({"not": "content"})),
        ],
        vec![valid.clone(), NewMessage::new("", json!("no role"))],
        vec![
            valid.clone(),
            NewMessage {
                tool_calls: Some(json!({"id": "call_1"})),
                ..assistant_turn()
            },
        ],
        vec![
            valid.clone(),
            NewMessage {
                latency_ms: Some(-1),
                ..assistant_turn()
            },
        ],
        vec![
            valid.clone(),
            NewMessage {
                error_message: Some("nul \u{0}".into()),
                ..assistant_turn()
            },
        ],
    ];

    // Act
    let mut results = Vec::new();
    for batch in &batches {
        results.push(
            db.store
                .append_messages(&alice, conversation.id, batch)
                .await,
        );
    }

    // Assert
    for (result, batch) in results.iter().zip(&batches) {
        assert!(is_invalid(result), "{result:?} for {batch:?}");
    }
    let detail = db
        .store
        .get_conversation(&alice, conversation.id)
        .await
        .unwrap();
    assert!(detail.messages.is_empty());
    assert_eq!(detail.conversation.message_count, 0);
    assert_eq!(all_messages(&db.raw).await, 0);
}
conformance!(a_refused_batch_stores_none_of_its_messages);

async fn a_conversation_holds_at_most_the_cap_of_messages(db: &TestDb) {
    // Arrange
    let alice = user("alice@example.com");
    let conversation = db
        .store
        .create_conversation(&alice, &new_conversation("long"))
        .await
        .unwrap();
    let message = NewMessage::new("user", json!("x"));
    let almost = vec![message.clone(); MAX_CONVERSATION_MESSAGES - 1];
    db.store
        .append_messages(&alice, conversation.id, &almost)
        .await
        .unwrap();

    // Act
    let two_over = db
        .store
        .append_messages(&alice, conversation.id, &vec![message.clone(); 2])
        .await;
    let last = db
        .store
        .append_messages(&alice, conversation.id, std::slice::from_ref(&message))
        .await;
    let one_over = db
        .store
        .append_messages(&alice, conversation.id, std::slice::from_ref(&message))
        .await;
    let too_big_alone = db
        .store
        .create_conversation(&alice, &new_conversation("other"))
        .await
        .unwrap();
    let batch_over = db
        .store
        .append_messages(
            &alice,
            too_big_alone.id,
            &vec![message; MAX_CONVERSATION_MESSAGES + 1],
        )
        .await;

    // Assert
    assert!(is_invalid(&two_over), "{two_over:?}");
    assert!(last.is_ok(), "{last:?}");
    assert!(is_invalid(&one_over), "{one_over:?}");
    assert!(is_invalid(&batch_over), "{batch_over:?}");
    let detail = db
        .store
        .get_conversation(&alice, conversation.id)
        .await
        .unwrap();
    assert_eq!(detail.messages.len(), MAX_CONVERSATION_MESSAGES);
    assert_eq!(
        detail.messages.last().map(|m| m.position),
        u32::try_from(MAX_CONVERSATION_MESSAGES - 1).ok()
    );
    assert_eq!(all_messages(&db.raw).await, 1000);
}
conformance!(a_conversation_holds_at_most_the_cap_of_messages);

async fn a_message_over_the_size_limit_is_refused(db: &TestDb) {
    // Arrange: content of exactly the limit, as JSON (two bytes of quotes), and one byte more.
    let alice = user("alice@example.com");
    let conversation = db
        .store
        .create_conversation(&alice, &new_conversation("big"))
        .await
        .unwrap();
    let fits = NewMessage::new("user", json!("x".repeat(MAX_MESSAGE_BYTES - 2)));
    let over = NewMessage::new("user", json!("x".repeat(MAX_MESSAGE_BYTES - 1)));

    // Act
    let refused = db
        .store
        .append_messages(&alice, conversation.id, &[over])
        .await;
    let stored = db
        .store
        .append_messages(&alice, conversation.id, &[fits])
        .await;

    // Assert
    assert!(is_invalid(&refused), "{refused:?}");
    assert!(stored.is_ok(), "{stored:?}");
}
conformance!(a_message_over_the_size_limit_is_refused);

async fn concurrent_appends_never_share_a_position(db: &TestDb) {
    // Arrange
    let alice = user("alice@example.com");
    let conversation = db
        .store
        .create_conversation(&alice, &new_conversation("busy"))
        .await
        .unwrap();
    let batch = |n: usize| vec![NewMessage::new("user", json!(format!("batch {n}"))); 5];

    // Act
    let appends = (0..4).map(|n| {
        let store = db.store.clone();
        let alice = alice.clone();
        let batch = batch(n);
        tokio::spawn(async move { store.append_messages(&alice, conversation.id, &batch).await })
    });
    for append in appends.collect::<Vec<_>>() {
        append.await.unwrap().unwrap();
    }

    // Assert: 20 messages at 0..20, each batch contiguous.
    let detail = db
        .store
        .get_conversation(&alice, conversation.id)
        .await
        .unwrap();
    let positions: Vec<u32> = detail.messages.iter().map(|m| m.position).collect();
    assert_eq!(positions, (0..20).collect::<Vec<u32>>());
    for chunk in detail.messages.chunks(5) {
        assert!(chunk.iter().all(|m| m.message == chunk[0].message));
    }
    assert_eq!(detail.conversation.message_count, 20);
}
conformance!(concurrent_appends_never_share_a_position);

async fn lists_are_most_recently_updated_first_with_the_total(db: &TestDb) {
    // Arrange: three conversations; the oldest then gets a message, the middle one a new title.
    let alice = user("alice@example.com");
    let mut ids = Vec::new();
    for title in ["one", "two", "three"] {
        let created = db
            .store
            .create_conversation(&alice, &new_conversation(title))
            .await
            .unwrap();
        ids.push(created.id);
    }
    db.store
        .append_messages(&alice, ids[0], &[NewMessage::new("user", json!("hi"))])
        .await
        .unwrap();
    let renamed = db
        .store
        .rename_conversation(&alice, ids[1], "two, renamed")
        .await
        .unwrap();

    // Act
    let all = db
        .store
        .list_conversations(&alice, PageRequest::default())
        .await
        .unwrap();
    let second_page = db
        .store
        .list_conversations(&alice, PageRequest::new(2, 2).unwrap())
        .await
        .unwrap();

    // Assert
    let order: Vec<Uuid> = all.items.iter().map(|c| c.id).collect();
    assert_eq!(order, [ids[1], ids[0], ids[2]]);
    assert_eq!(all.total_count, 3);
    assert_eq!(all.items[0], renamed);
    assert_eq!(all.items[1].message_count, 1);
    assert!(
        all.items
            .windows(2)
            .all(|w| w[0].updated_at >= w[1].updated_at)
    );
    assert_eq!(second_page.items.len(), 1);
    assert_eq!(second_page.items[0].id, ids[2]);
    assert_eq!(second_page.total_count, 3);
}
conformance!(lists_are_most_recently_updated_first_with_the_total);

async fn deleting_a_conversation_deletes_its_messages(db: &TestDb) {
    // Arrange
    let alice = user("alice@example.com");
    let kept = db
        .store
        .create_conversation(&alice, &new_conversation("kept"))
        .await
        .unwrap();
    let gone = db
        .store
        .create_conversation(&alice, &new_conversation("gone"))
        .await
        .unwrap();
    let message = NewMessage::new("user", json!("hi"));
    for id in [kept.id, gone.id] {
        db.store
            .append_messages(&alice, id, &vec![message.clone(); 3])
            .await
            .unwrap();
    }

    // Act
    let deleted = db.store.delete_conversation(&alice, gone.id).await.unwrap();
    let again = db.store.delete_conversation(&alice, gone.id).await.unwrap();
    let read = db.store.get_conversation(&alice, gone.id).await;
    let append = db.store.append_messages(&alice, gone.id, &[message]).await;

    // Assert
    assert!(deleted);
    assert!(!again);
    assert!(is_not_found(&read), "{read:?}");
    assert!(is_not_found(&append), "{append:?}");
    assert_eq!(all_messages(&db.raw).await, 3);
    let list = db
        .store
        .list_conversations(&alice, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        list.items.iter().map(|c| c.id).collect::<Vec<_>>(),
        [kept.id]
    );
}
conformance!(deleting_a_conversation_deletes_its_messages);

async fn another_users_conversation_is_not_found_and_left_untouched(db: &TestDb) {
    // Arrange
    let alice = user("alice@example.com");
    let bob = user("bob@example.com");
    let conversation = db
        .store
        .create_conversation(&alice, &new_conversation("private"))
        .await
        .unwrap();
    db.store
        .append_messages(
            &alice,
            conversation.id,
            &[NewMessage::new("user", json!("secret"))],
        )
        .await
        .unwrap();
    let before = db
        .store
        .get_conversation(&alice, conversation.id)
        .await
        .unwrap();

    // Act
    let read = db.store.get_conversation(&bob, conversation.id).await;
    let append = db
        .store
        .append_messages(
            &bob,
            conversation.id,
            &[NewMessage::new("user", json!("mine"))],
        )
        .await;
    let rename = db
        .store
        .rename_conversation(&bob, conversation.id, "taken")
        .await;
    let delete = db
        .store
        .delete_conversation(&bob, conversation.id)
        .await
        .unwrap();
    let list = db
        .store
        .list_conversations(&bob, PageRequest::default())
        .await
        .unwrap();
    let missing = db.store.get_conversation(&alice, Uuid::new_v4()).await;

    // Assert
    assert!(is_not_found(&read), "{read:?}");
    assert!(is_not_found(&append), "{append:?}");
    assert!(is_not_found(&rename), "{rename:?}");
    assert!(!delete);
    assert!(list.items.is_empty());
    assert_eq!(list.total_count, 0);
    assert!(is_not_found(&missing), "{missing:?}");
    let after = db
        .store
        .get_conversation(&alice, conversation.id)
        .await
        .unwrap();
    assert_eq!(after, before);
}
conformance!(another_users_conversation_is_not_found_and_left_untouched);

async fn a_reused_id_is_a_conflict_for_any_user(db: &TestDb) {
    // Arrange
    let alice = user("alice@example.com");
    let bob = user("bob@example.com");
    let conversation = new_conversation("first");
    db.store
        .create_conversation(&alice, &conversation)
        .await
        .unwrap();

    // Act
    let again = db.store.create_conversation(&alice, &conversation).await;
    let by_bob = db.store.create_conversation(&bob, &conversation).await;

    // Assert
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert!(matches!(by_bob, Err(StoreError::Conflict(_))), "{by_bob:?}");
    let bobs = db
        .store
        .list_conversations(&bob, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(bobs.total_count, 0);
}
conformance!(a_reused_id_is_a_conflict_for_any_user);

async fn titles_have_1_to_200_characters_not_all_whitespace(db: &TestDb) {
    // Arrange: 200 characters of two bytes each pass; the bound is in characters.
    let alice = user("alice@example.com");
    let longest = "é".repeat(MAX_TITLE_CHARS);
    let too_long = "é".repeat(MAX_TITLE_CHARS + 1);
    let conversation = db
        .store
        .create_conversation(&alice, &new_conversation(&longest))
        .await
        .unwrap();

    // Act
    let refused_creates = [
        db.store
            .create_conversation(&alice, &new_conversation(""))
            .await,
        db.store
            .create_conversation(&alice, &new_conversation(" \t\n"))
            .await,
        db.store
            .create_conversation(&alice, &new_conversation(&too_long))
            .await,
        db.store
            .create_conversation(&alice, &new_conversation("nul\u{0}"))
            .await,
    ];
    let refused_rename = db
        .store
        .rename_conversation(&alice, conversation.id, &too_long)
        .await;
    let renamed = db
        .store
        .rename_conversation(&alice, conversation.id, "x")
        .await
        .unwrap();

    // Assert
    for result in &refused_creates {
        assert!(is_invalid(result), "{result:?}");
    }
    assert!(is_invalid(&refused_rename), "{refused_rename:?}");
    assert_eq!(conversation.title, longest);
    assert_eq!(renamed.title, "x");
    assert!(renamed.updated_at >= conversation.updated_at);
    let list = db
        .store
        .list_conversations(&alice, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(list.total_count, 1);
}
conformance!(titles_have_1_to_200_characters_not_all_whitespace);
