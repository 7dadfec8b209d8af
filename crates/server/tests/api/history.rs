//! The inference history's outbox: with the store unavailable, invocations are still answered
//! and their records reach the history once it is back, without another invocation; a full
//! outbox refuses invocations before calling the model; shutdown waits for the outbox.
//!
//! The outage is real and local: another connection holds SQLite's write lock
//! (`BEGIN EXCLUSIVE`), so the store's writes fail as unavailable (`SQLITE_BUSY`) once its 10 s
//! busy timeout has run out, while reads go on (WAL).

use std::time::Duration;

use serde_json::json;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Executor};
use tokio::time::Instant;

use crate::app::{ADMIN, ALICE, Options, TestApp, assert_error, spawn_app_with};

const ECHO_CALLS: &str = "/serving-endpoints/echo/invocations";

/// Takes the test store's write lock on a connection of its own, until the connection commits.
pub(crate) async fn lock_store(app: &TestApp) -> SqliteConnection {
    let path = app.db_path.as_ref().expect("a SQLite store");
    let mut lock = SqliteConnectOptions::new()
        .filename(path)
        .connect()
        .await
        .unwrap();
    lock.execute("BEGIN EXCLUSIVE").await.unwrap();
    lock
}

/// The value of an unlabelled series in a Prometheus exposition (0 when absent).
fn series(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_store_down_invocations_are_answered_and_recorded_once_it_is_back() {
    // Arrange: room for two records; the store is locked.
    let app = spawn_app_with(Options {
        env: vec![("DBAPP_HISTORY_OUTBOX_CAPACITY", "2")],
        ..Default::default()
    })
    .await;
    let mut lock = lock_store(&app).await;

    // Act: two invocations while the store is down, then a third past the outbox's capacity.
    let started = Instant::now();
    let (first, one) = app
        .invoke(ALICE, "echo", &json!({"inputs": {"n": 1}}))
        .json()
        .await;
    let first_took = started.elapsed();
    let (second, two) = app
        .invoke(ALICE, "echo", &json!({"inputs": {"n": 2}}))
        .json()
        .await;
    let second_took = started.elapsed() - first_took;
    let refused = app
        .invoke(ALICE, "echo", &json!({"inputs": {"n": 3}}))
        .send()
        .await;
    let (_, during) = app.list_inference_logs(ALICE, "").json().await;
    let metrics_during = app.metrics(ADMIN).text().await;
    lock.execute("COMMIT").await.unwrap();
    let flushed = app
        .state
        .history
        .flushed(Instant::now() + Duration::from_secs(30))
        .await;

    // Assert: answered, then refused before the model was called; nothing stored during the
    // outage; both records stored after it, by themselves.
    eprintln!("[figure] invocations with the store down: {first_took:?} then {second_took:?}");
    assert_eq!(first, 200, "{one}");
    assert_eq!(second, 200, "{two}");
    assert!(second_took < Duration::from_secs(5), "{second_took:?}");
    let body = assert_error(refused, 503, "DATABASE_UNAVAILABLE").await;
    assert_eq!(body["retry_after"], 5);
    assert_eq!(app.emulator.requests(ECHO_CALLS).len(), 2);
    assert_eq!(during["total_count"], 0, "{during}");
    assert_eq!(
        series(&metrics_during, "inference_history_outbox_records"),
        2.0
    );
    assert!(flushed, "the outbox emptied");
    let (_, after) = app.list_inference_logs(ALICE, "").json().await;
    assert_eq!(after["total_count"], 2, "{after}");
    let ids: Vec<&serde_json::Value> = after["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["request_id"])
        .collect();
    assert_eq!(ids, [&two["request_id"], &one["request_id"]]);
    assert_eq!(after["items"][0]["status"], "SUCCESS");
    let metrics = app.metrics(ADMIN).text().await;
    assert_eq!(series(&metrics, "inference_history_delayed_total"), 2.0);
    assert_eq!(
        series(&metrics, "inference_history_written_late_total"),
        2.0
    );
    assert_eq!(series(&metrics, "inference_history_outbox_records"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_waits_for_the_outbox_to_reach_the_store() {
    // Arrange: one invocation recorded only in the outbox, the store locked.
    let mut app = spawn_app_with(Options::default()).await;
    let mut lock = lock_store(&app).await;
    let (status, body) = app
        .invoke(ALICE, "echo", &json!({"inputs": {"n": 1}}))
        .json()
        .await;
    assert_eq!(status, 200, "{body}");
    let metrics = app.metrics(ADMIN).text().await;
    assert_eq!(series(&metrics, "inference_history_outbox_records"), 1.0);

    // Act: stop the server, and let the store come back while it stops.
    let path = app.db_path.clone().unwrap();
    let server = app.server.take().unwrap();
    app.stop().await.unwrap();
    lock.execute("COMMIT").await.unwrap();
    server.await.unwrap().unwrap();

    // Assert: the record was stored before the server returned.
    let mut db = SqliteConnectOptions::new()
        .filename(&path)
        .connect()
        .await
        .unwrap();
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM model_inference_logs WHERE request_id = ?1")
            .bind(body["request_id"].as_str().unwrap())
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert_eq!(stored, 1);
}
