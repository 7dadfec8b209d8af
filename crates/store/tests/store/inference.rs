//! Inference history: append, newest-first pages with a total count, conflicts, and the flag
//! of truncated inputs.

use chrono::{Duration, Utc};
use dbapp_store::{InferenceLog, InferenceStatus, PageRequest, StoreError};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{TestDb, at, conformance, user};

fn log(minute: i64, status: InferenceStatus) -> InferenceLog {
    let created_at = at("2026-11-01T10:00:00Z") + Duration::minutes(minute);
    InferenceLog {
        request_id: Uuid::new_v4(),
        endpoint_name: "echo".into(),
        status,
        inputs: json!({"messages": [{"role": "user", "content": format!("n{minute}")}]}),
        inputs_truncated: false,
        predictions: (status == InferenceStatus::Success).then(|| json!({"echo": minute})),
        error_message: (status != InferenceStatus::Success).then(|| "boom ✗".to_owned()),
        execution_time_ms: minute * 10,
        created_at,
        completed_at: Some(created_at + Duration::milliseconds(minute * 10)),
    }
}

async fn logs_are_listed_newest_first_with_the_total_count(db: &TestDb) {
    // Arrange
    let alice = user("alice@example.com");
    let statuses = [
        InferenceStatus::Success,
        InferenceStatus::Error,
        InferenceStatus::Timeout,
    ];
    let logs: Vec<InferenceLog> = (0..7).map(|m| log(m, statuses[m as usize % 3])).collect();
    // Appended out of order: the order comes from created_at, not from insertion.
    for i in [3, 0, 6, 1, 5, 2, 4] {
        db.store
            .append_inference_log(&alice, &logs[i])
            .await
            .unwrap();
    }

    // Act
    let first = db
        .store
        .list_inference_logs(&alice, PageRequest::new(3, 0).unwrap())
        .await
        .unwrap();
    let last = db
        .store
        .list_inference_logs(&alice, PageRequest::new(3, 6).unwrap())
        .await
        .unwrap();
    let past = db
        .store
        .list_inference_logs(&alice, PageRequest::new(3, 7).unwrap())
        .await
        .unwrap();

    // Assert
    assert_eq!(first.total_count, 7);
    assert_eq!(
        first.items,
        vec![logs[6].clone(), logs[5].clone(), logs[4].clone()]
    );
    assert_eq!(last.items, vec![logs[0].clone()]);
    assert!(past.items.is_empty());
    assert_eq!(past.total_count, 7);
}
conformance!(logs_are_listed_newest_first_with_the_total_count);

async fn equal_timestamps_list_the_later_append_first(db: &TestDb) {
    // Arrange
    let alice = user("alice@example.com");
    let mut a = log(1, InferenceStatus::Success);
    let mut b = log(1, InferenceStatus::Error);
    a.completed_at = None;
    b.completed_at = None;
    db.store.append_inference_log(&alice, &a).await.unwrap();
    db.store.append_inference_log(&alice, &b).await.unwrap();

    // Act
    let page = db
        .store
        .list_inference_logs(&alice, PageRequest::default())
        .await
        .unwrap();

    // Assert
    let ids: Vec<Uuid> = page.items.iter().map(|l| l.request_id).collect();
    assert_eq!(ids, [b.request_id, a.request_id]);
}
conformance!(equal_timestamps_list_the_later_append_first);

async fn an_empty_history_has_no_items_and_a_zero_total(db: &TestDb) {
    // Arrange
    let nobody = user("nobody@example.com");

    // Act
    let page = db
        .store
        .list_inference_logs(&nobody, PageRequest::default())
        .await
        .unwrap();

    // Assert
    assert!(page.items.is_empty());
    assert_eq!(page.total_count, 0);
}
conformance!(an_empty_history_has_no_items_and_a_zero_total);

async fn a_repeated_request_id_is_a_conflict(db: &TestDb) {
    // Arrange
    let alice = user("alice@example.com");
    let bob = user("bob@example.com");
    let entry = log(0, InferenceStatus::Success);
    db.store.append_inference_log(&alice, &entry).await.unwrap();

    // Act
    let again = db.store.append_inference_log(&alice, &entry).await;
    let by_bob = db.store.append_inference_log(&bob, &entry).await;

    // Assert
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert!(matches!(by_bob, Err(StoreError::Conflict(_))), "{by_bob:?}");
    let bobs = db
        .store
        .list_inference_logs(&bob, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(bobs.total_count, 0);
}
conformance!(a_repeated_request_id_is_a_conflict);

async fn timestamps_are_kept_to_the_microsecond(db: &TestDb) {
    // Arrange
    let alice = user("alice@example.com");
    let mut entry = log(0, InferenceStatus::Success);
    entry.created_at = Utc::now();
    entry.completed_at = None;

    // Act
    db.store.append_inference_log(&alice, &entry).await.unwrap();
    let page = db
        .store
        .list_inference_logs(&alice, PageRequest::default())
        .await
        .unwrap();

    // Assert
    let stored = page.items[0].created_at;
    assert_eq!(
        stored.timestamp_micros(),
        entry.created_at.timestamp_micros()
    );
    assert_eq!(stored.timestamp_subsec_nanos() % 1000, 0);
}
conformance!(timestamps_are_kept_to_the_microsecond);

async fn the_truncated_inputs_flag_is_kept_per_log(db: &TestDb) {
    // Arrange: one log with truncated inputs (a string prefix, as the server stores them), one
    // without.
    let alice = user("alice@example.com");
    let mut cut = log(1, InferenceStatus::Success);
    cut.inputs = json!("{\"inputs\": \"xxxx");
    cut.inputs_truncated = true;
    let whole = log(0, InferenceStatus::Error);

    // Act
    db.store.append_inference_log(&alice, &cut).await.unwrap();
    db.store.append_inference_log(&alice, &whole).await.unwrap();
    let page = db
        .store
        .list_inference_logs(&alice, PageRequest::default())
        .await
        .unwrap();

    // Assert
    assert_eq!(page.items, vec![cut, whole]);
    assert!(page.items[0].inputs_truncated);
    assert!(!page.items[1].inputs_truncated);
}
conformance!(the_truncated_inputs_flag_is_kept_per_log);
