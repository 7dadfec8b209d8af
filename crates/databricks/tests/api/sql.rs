//! SQL statements: execute, poll to a deadline, chunks, cancel, typed values, failures.

use std::time::{Duration, Instant};

use dbapp_databricks::ErrorKind;
use dbapp_databricks::api::ExecuteStatement;

use crate::support::{TestWorkspace, user};

const WAREHOUSE: &str = "dev-warehouse";

#[tokio::test]
async fn select_returns_values_typed_from_the_manifest() {
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    let alice = user("dev-token-alice");
    let request = ExecuteStatement::new("SELECT * FROM main.default.customers LIMIT 5", WAREHOUSE);
    let result = client
        .as_user(&alice)
        .execute_statement(&request)
        .await
        .unwrap();
    assert_eq!(result.rows.len(), 5);
    let names: Vec<&str> = result.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "id",
            "name",
            "email",
            "signup_date",
            "is_active",
            "lifetime_value"
        ]
    );
    let row = &result.rows[0];
    assert!(row[0].is_i64(), "{row:?}");
    assert!(row[1].is_string());
    assert!(row[4].is_boolean() || row[4].is_null(), "{row:?}");
    assert!(
        row[5].is_f64() || row[5].is_i64() || row[5].is_null(),
        "{row:?}"
    );
}

#[tokio::test]
async fn multi_chunk_results_are_fetched_completely() {
    let workspace = TestWorkspace::start().await;
    workspace
        .emulator
        .update_settings(|s| s.sql_chunk_rows = 10)
        .unwrap();
    let client = workspace.client();
    let alice = user("dev-token-alice");
    let request = ExecuteStatement::new("SELECT * FROM main.sales.orders", WAREHOUSE);
    let result = client
        .as_user(&alice)
        .execute_statement(&request)
        .await
        .unwrap();
    assert_eq!(result.rows.len(), 120);
    assert_eq!(result.chunks, 12);
    let chunk_fetches = workspace
        .emulator
        .requests("/api/2.0/sql/statements/")
        .iter()
        .filter(|r| r.path.contains("/result/chunks/"))
        .count();
    assert_eq!(chunk_fetches, 11);
    let ids: Vec<i64> = result.rows.iter().map(|r| r[0].as_i64().unwrap()).collect();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(unique.len(), 120);
}

#[tokio::test]
async fn slow_statement_is_polled_until_it_succeeds() {
    // Arrange: PENDING 300 ms, RUNNING 300 ms, and an asynchronous submit.
    let workspace = TestWorkspace::start().await;
    workspace
        .emulator
        .update_settings(|s| {
            s.sql_pending_ms = 300;
            s.sql_running_ms = 300;
        })
        .unwrap();
    let client = workspace.client();
    let alice = user("dev-token-alice");
    let request = ExecuteStatement::new("SELECT * FROM main.default.regions", WAREHOUSE)
        .wait_timeout(Duration::ZERO);

    // Act
    let result = client
        .as_user(&alice)
        .execute_statement(&request)
        .await
        .unwrap();

    // Assert
    assert_eq!(result.rows.len(), 3);
    let polls = workspace
        .emulator
        .requests("/api/2.0/sql/statements/")
        .iter()
        .filter(|r| r.method == "GET")
        .count();
    assert!(polls >= 2, "{polls} polls");
}

#[tokio::test]
async fn statement_past_its_deadline_is_cancelled() {
    // Arrange: the statement takes 5 s; the deadline is 700 ms.
    let workspace = TestWorkspace::start().await;
    workspace
        .emulator
        .update_settings(|s| s.sql_pending_ms = 5000)
        .unwrap();
    let client = workspace.client();
    let alice = user("dev-token-alice");
    let request = ExecuteStatement::new("SELECT * FROM main.default.regions", WAREHOUSE)
        .wait_timeout(Duration::ZERO)
        .timeout(Duration::from_millis(700));

    // Act
    let started = Instant::now();
    let error = client
        .as_user(&alice)
        .execute_statement(&request)
        .await
        .unwrap_err();
    let elapsed = started.elapsed();

    // Assert
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert!(
        elapsed >= Duration::from_millis(700) && elapsed < Duration::from_millis(2000),
        "{elapsed:?}"
    );
    let cancels: Vec<_> = workspace
        .emulator
        .requests("/api/2.0/sql/statements/")
        .into_iter()
        .filter(|r| r.path.ends_with("/cancel"))
        .collect();
    assert_eq!(cancels.len(), 1);
    assert_eq!(cancels[0].status, 200);
}

#[tokio::test]
async fn failed_statement_is_a_classified_error() {
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    let alice = user("dev-token-alice");
    let request = ExecuteStatement::new("SELECT * FROM main.default.does_not_exist", WAREHOUSE);
    let error = client
        .as_user(&alice)
        .execute_statement(&request)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::BadRequest, "{error}");
}

#[tokio::test]
async fn unknown_warehouse_is_not_found() {
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    let alice = user("dev-token-alice");
    let request = ExecuteStatement::new("SELECT 1", "no-such-warehouse");
    let error = client
        .as_user(&alice)
        .execute_statement(&request)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
}
