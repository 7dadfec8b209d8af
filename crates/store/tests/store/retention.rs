//! Retention: each append-only table loses exactly its rows older than the cutoff, by the time
//! column the store documents, in as many bounded statements as it takes.

use chrono::{DateTime, Duration, Utc};
use dbapp_store::{
    InferenceLog, InferenceStatus, MAX_REQUEST_RECORD_BATCH, NewRequestRecord, NewUsageEvent,
    PURGE_BATCH, PageRequest, Retained, StoreError, TimeRange,
};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{TestDb, at, conformance, user};

fn request(recorded_at: DateTime<Utc>, duration_ms: f64) -> NewRequestRecord {
    NewRequestRecord {
        route: "/api/r".into(),
        method: "GET".into(),
        status: 200,
        duration_ms,
        recorded_at,
    }
}

fn inference(created_at: DateTime<Utc>) -> InferenceLog {
    InferenceLog {
        request_id: Uuid::new_v4(),
        endpoint_name: "echo".into(),
        status: InferenceStatus::Success,
        inputs: json!({"n": 1}),
        inputs_truncated: false,
        predictions: None,
        error_message: None,
        execution_time_ms: 1,
        created_at,
        completed_at: None,
    }
}

async fn purges_delete_rows_older_than_the_cutoff_and_keep_the_rest(db: &TestDb) {
    // Arrange: requests and inferences on both sides of the cutoff
    let cutoff = at("2026-11-10T00:00:00Z");
    let alice = user("alice@example.com");
    let records = [
        request(cutoff - Duration::days(3), 1.0),
        request(cutoff - Duration::microseconds(1), 2.0),
        request(cutoff, 3.0),
        request(cutoff + Duration::days(1), 4.0),
    ];
    db.store.insert_request_records(&records).await.unwrap();
    for created_at in [cutoff - Duration::days(40), cutoff + Duration::hours(1)] {
        db.store
            .append_inference_log(&alice, &inference(created_at))
            .await
            .unwrap();
    }

    // Act
    let raw = db
        .store
        .purge_older_than(Retained::RequestRecords, cutoff)
        .await
        .unwrap();
    let rollups = db
        .store
        .purge_older_than(Retained::Rollups, cutoff)
        .await
        .unwrap();
    let history = db
        .store
        .purge_older_than(Retained::InferenceLogs, cutoff)
        .await
        .unwrap();
    let again = db
        .store
        .purge_older_than(Retained::RequestRecords, cutoff)
        .await
        .unwrap();

    // Assert: the minutes (and hours) 23:59 and 3 days earlier are gone, the cutoff's are kept
    assert_eq!((raw, rollups, history, again), (2, 4, 1, 0));
    let report = db
        .store
        .admin_performance_report(
            TimeRange::Last90Days.ending_at(cutoff + Duration::days(2)),
            None,
        )
        .await
        .unwrap();
    assert_eq!(report.summary.requests, 2);
    let left = db
        .store
        .list_inference_logs(&alice, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(left.total_count, 1);
    assert_eq!(left.items[0].created_at, cutoff + Duration::hours(1));
}
conformance!(purges_delete_rows_older_than_the_cutoff_and_keep_the_rest);

async fn usage_events_expire_by_arrival_not_by_the_clients_clock(db: &TestDb) {
    // Arrange: events whose client clock says 2020, received now
    let alice = user("alice@example.com");
    let event = NewUsageEvent {
        event_type: "page_view".into(),
        page_name: None,
        element_id: None,
        success: None,
        metadata: None,
        timestamp: at("2020-01-01T00:00:00Z"),
    };
    db.store
        .insert_usage_events(&alice, &[event.clone(), event])
        .await
        .unwrap();
    let window = TimeRange::Last90Days.ending_at(at("2020-01-02T00:00:00Z"));

    // Act
    let yesterday = db
        .store
        .purge_older_than(Retained::UsageEvents, Utc::now() - Duration::days(1))
        .await
        .unwrap();
    let kept = db.store.count_usage_events(&alice, window).await.unwrap();
    let later = db
        .store
        .purge_older_than(Retained::UsageEvents, Utc::now() + Duration::minutes(1))
        .await
        .unwrap();

    // Assert
    assert_eq!((yesterday, kept), (0, 2));
    assert_eq!(later, 2);
    assert_eq!(
        db.store.count_usage_events(&alice, window).await.unwrap(),
        0
    );
}
conformance!(usage_events_expire_by_arrival_not_by_the_clients_clock);

async fn a_purge_larger_than_one_batch_takes_several_statements_and_deletes_all(db: &TestDb) {
    // Arrange: one more old raw record than a purge statement deletes
    assert_eq!(MAX_REQUEST_RECORD_BATCH, PURGE_BATCH as usize);
    let old = at("2026-01-01T00:00:00Z");
    let batch = vec![request(old, 1.0); MAX_REQUEST_RECORD_BATCH];
    db.store.insert_request_records(&batch).await.unwrap();
    db.store
        .insert_request_records(&[request(old, 1.0), request(old + Duration::days(30), 1.0)])
        .await
        .unwrap();

    // Act
    let deleted = db
        .store
        .purge_older_than(Retained::RequestRecords, old + Duration::days(1))
        .await
        .unwrap();

    // Assert
    assert_eq!(deleted, u64::from(PURGE_BATCH) + 1);
}
conformance!(a_purge_larger_than_one_batch_takes_several_statements_and_deletes_all);

async fn a_cutoff_outside_the_years_1_to_9999_is_refused(db: &TestDb) {
    // Arrange
    let year_0 = DateTime::from_timestamp(dbapp_store::EARLIEST_TIMESTAMP_SECS - 1, 0).unwrap();

    // Act
    let refused = db.store.purge_older_than(Retained::Rollups, year_0).await;

    // Assert
    assert!(
        matches!(refused, Err(StoreError::InvalidInput(_))),
        "{refused:?}"
    );
}
conformance!(a_cutoff_outside_the_years_1_to_9999_is_refused);
