//! The retention task: started with the server, it purges each table by its configured age at
//! once, keeps what is younger, and counts what it deleted.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use dbapp_databricks::api::CurrentUser;
use dbapp_emulator::EmulatorConfig;
use dbapp_store::sqlite::SqliteStore;
use dbapp_store::{
    InferenceLog, InferenceStatus, NewRequestRecord, NewUsageEvent, PoolSettings, Store, TimeRange,
    UserId,
};
use tempfile::TempDir;

use crate::app::{settings_for, start_server};
use crate::health::parse_prometheus;

fn request(recorded_at: DateTime<Utc>) -> NewRequestRecord {
    NewRequestRecord {
        route: "/api/preferences".into(),
        method: "GET".into(),
        status: 200,
        duration_ms: 2.0,
        recorded_at,
    }
}

fn inference(created_at: DateTime<Utc>) -> InferenceLog {
    InferenceLog {
        request_id: uuid::Uuid::new_v4(),
        endpoint_name: "echo".into(),
        status: InferenceStatus::Success,
        inputs: serde_json::json!({}),
        inputs_truncated: false,
        predictions: None,
        error_message: None,
        execution_time_ms: 1,
        created_at,
        completed_at: None,
    }
}

/// `retention_deleted_rows_total` per table, once the run has counted all four tables.
async fn deleted_rows_after_first_run(
    metrics: &dbapp_server::metrics::Metrics,
) -> Vec<(String, f64)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let counts: Vec<(String, f64)> = parse_prometheus(&metrics.render())
            .into_iter()
            .filter(|(name, _, _)| name == "retention_deleted_rows_total")
            .map(|(_, labels, value)| (labels["table"].clone(), value))
            .collect();
        if counts.len() == 4 {
            return counts;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no retention run within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_retention_task_purges_old_rows_at_start_and_keeps_younger_ones() {
    // Arrange: a store holding rows of several ages before the server starts
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("dbapp.db");
    let store = SqliteStore::open(&path, &PoolSettings::default());
    store.migrate().await.unwrap();
    let now = Utc::now();
    let days = |n: i64| now - TimeDelta::days(n);
    store
        .insert_request_records(&[request(days(10)), request(days(3)), request(now)])
        .await
        .unwrap();
    let me: CurrentUser =
        serde_json::from_value(serde_json::json!({ "userName": "alice@example.com" })).unwrap();
    let alice = UserId::from_authenticated_identity(&me);
    for created_at in [days(40), days(1)] {
        store
            .append_inference_log(&alice, &inference(created_at))
            .await
            .unwrap();
    }
    let event = NewUsageEvent {
        event_type: "page_view".into(),
        page_name: None,
        element_id: None,
        success: None,
        metadata: None,
        timestamp: now,
    };
    store
        .insert_usage_events(&alice, &[event.clone(), event])
        .await
        .unwrap();
    // One event arrived 31 days ago (the store stamps arrival itself).
    sqlx::query("UPDATE usage_events SET received_at = ?1 WHERE id = 1")
        .bind(days(31).timestamp_micros())
        .execute(store.pool())
        .await
        .unwrap();
    let emulator = dbapp_emulator::start_local(EmulatorConfig::default())
        .await
        .unwrap();
    let settings = settings_for(
        &emulator,
        vec![
            ("DBAPP_SQLITE_PATH", path.display().to_string()),
            ("DBAPP_RETENTION_USAGE_DAYS", "30".to_owned()),
            ("DBAPP_RETENTION_HISTORY_DAYS", "30".to_owned()),
            ("DBAPP_RETENTION_REQUEST_RECORDS_DAYS", "2".to_owned()),
            ("DBAPP_RETENTION_ROLLUP_DAYS", "5".to_owned()),
        ],
    );

    // Act
    let mut app = start_server(emulator, settings, Some(dir)).await;
    let deleted = deleted_rows_after_first_run(&app.state.metrics).await;

    // Assert: counted per table, and only the old rows are gone
    let count = |table: &str| {
        deleted
            .iter()
            .find(|(t, _)| t == table)
            .map(|(_, v)| *v)
            .unwrap()
    };
    assert_eq!(count("performance_metrics"), 2.0, "{deleted:?}");
    assert_eq!(
        count("performance_rollups"),
        2.0,
        "one minute row, one hour row"
    );
    assert_eq!(count("model_inference_logs"), 1.0, "{deleted:?}");
    assert_eq!(count("usage_events"), 1.0, "{deleted:?}");
    let raw: i64 = sqlx::query_scalar("SELECT count(*) FROM performance_metrics")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(raw, 1);
    let report = store
        .admin_performance_report(
            TimeRange::Last90Days.ending_at(now + TimeDelta::minutes(1)),
            None,
        )
        .await
        .unwrap();
    assert_eq!(report.summary.requests, 2, "the 3-day-old rollup is kept");
    let history = store
        .list_inference_logs(&alice, Default::default())
        .await
        .unwrap();
    assert_eq!(history.total_count, 1);
    app.stop().await.unwrap();
}
