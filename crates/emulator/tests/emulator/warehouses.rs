//! SQL warehouses over HTTP: the list and its pages, CAN_USE, the start and stop clock, the
//! control API, and statements submitted to a warehouse that is not running.

use dbapp_emulator::WarehouseState;
use dbapp_emulator::fixture::Warehouse;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::statements::{WAREHOUSE, execute_with, poll_until_terminal, statement_id};
use crate::support::{ADMIN, ALICE, BOB, TestEmulator, spawn, spawn_with_fixture};

const WAREHOUSES: &str = "/api/2.0/sql/warehouses";

/// A fixture warehouse with every optional field at its default, as an old fixture writes it.
fn warehouse(id: &str, extra: Value) -> Warehouse {
    let mut body = json!({"id": id, "name": format!("Warehouse {id}")});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    serde_json::from_value(body).expect("a valid warehouse")
}

/// The default fixture plus `admins-only` (CAN_USE for admins) and `slow` (stopped, 1 s start
/// and 0.5 s stop delays).
async fn spawn_with_warehouses() -> TestEmulator {
    spawn_with_fixture(|f| {
        f.warehouses.push(warehouse(
            "admins-only",
            json!({"readers": ["admins"], "cluster_size": "2X-Small"}),
        ));
        f.warehouses.push(warehouse(
            "slow",
            json!({"state": "STOPPED", "start_delay_ms": 1000, "stop_delay_ms": 500}),
        ));
    })
    .await
}

fn ids(body: &Value) -> Vec<String> {
    body["warehouses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w["id"].as_str().map(str::to_owned))
        .collect()
}

async fn state_of(te: &TestEmulator, id: &str) -> String {
    let (status, body) = te.get(&format!("{WAREHOUSES}/{id}"), ADMIN).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["state"].as_str().unwrap_or_default().to_owned()
}

/// Polls the warehouse as the SDK's waiter does until it leaves `transitional`; returns every
/// state seen. The bound keeps a broken clock from hanging the test.
async fn poll_while(te: &TestEmulator, id: &str, transitional: &str) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..500 {
        let state = state_of(te, id).await;
        if seen.last() != Some(&state) {
            seen.push(state.clone());
        }
        if state != transitional {
            return seen;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("warehouse {id} stayed {transitional}; saw {seen:?}");
}

#[tokio::test]
async fn the_list_shows_only_warehouses_the_caller_can_use_with_endpoint_info() {
    // Arrange
    let te = spawn_with_warehouses().await;

    // Act
    let (alice_status, alice) = te.get(WAREHOUSES, ALICE).await;
    let (_, admin) = te.get(WAREHOUSES, ADMIN).await;

    // Assert
    assert_eq!(alice_status, StatusCode::OK);
    assert_eq!(ids(&alice), ["dev-warehouse", "slow"]);
    assert_eq!(ids(&admin), ["dev-warehouse", "admins-only", "slow"]);
    assert!(alice.get("next_page_token").is_none(), "{alice}");
    let dev = &alice["warehouses"][0];
    assert_eq!(dev["state"], "RUNNING");
    assert_eq!(dev["cluster_size"], "Small");
    assert_eq!(dev["auto_stop_mins"], 120);
    assert_eq!(dev["warehouse_type"], "PRO");
    assert_eq!(dev["enable_serverless_compute"], true);
    assert_eq!(dev["num_clusters"], 1);
    assert_eq!(dev["health"]["status"], "HEALTHY");
    assert_eq!(
        dev["odbc_params"]["path"],
        "/sql/1.0/warehouses/dev-warehouse"
    );
    assert_eq!(
        dev["odbc_params"]["port"],
        u64::from(te.handle.addr().port())
    );
    assert_eq!(alice["warehouses"][1]["state"], "STOPPED");
    assert_eq!(alice["warehouses"][1]["num_clusters"], 0);
    assert_eq!(admin["warehouses"][1]["cluster_size"], "2X-Small");
}

#[tokio::test]
async fn pages_follow_next_page_token_and_bad_tokens_are_refused() {
    // Arrange
    let te = spawn_with_warehouses().await;

    // Act
    let mut seen = Vec::new();
    let mut path = format!("{WAREHOUSES}?page_size=1");
    let mut pages = 0;
    loop {
        let (status, body) = te.get(&path, ADMIN).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        pages += 1;
        seen.extend(ids(&body));
        let Some(token) = body["next_page_token"].as_str() else {
            break;
        };
        path = format!("{WAREHOUSES}?page_size=1&page_token={token}");
    }
    let (bad_token, _) = te.get(&format!("{WAREHOUSES}?page_token=zz"), ADMIN).await;
    let (negative, _) = te.get(&format!("{WAREHOUSES}?page_size=-1"), ADMIN).await;

    // Assert
    assert_eq!(seen, ["dev-warehouse", "admins-only", "slow"]);
    assert_eq!(pages, 3);
    assert_eq!(bad_token, StatusCode::BAD_REQUEST);
    assert_eq!(negative, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn without_can_use_get_start_and_stop_are_permission_denied() {
    // Arrange
    let te = spawn_with_warehouses().await;
    let path = format!("{WAREHOUSES}/admins-only");

    // Act
    let get = te.get(&path, BOB).await;
    let start = te.post(&format!("{path}/start"), BOB, json!({})).await;
    let stop = te.post(&format!("{path}/stop"), BOB, json!({})).await;
    let unknown = te.get(&format!("{WAREHOUSES}/nope"), BOB).await;

    // Assert
    for (status, body) in [&get, &start, &stop] {
        assert_eq!(*status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["error_code"], "PERMISSION_DENIED");
    }
    assert_eq!(state_of(&te, "admins-only").await, "RUNNING");
    assert_eq!(unknown.0, StatusCode::NOT_FOUND);
    assert_eq!(unknown.1["error_code"], "RESOURCE_DOES_NOT_EXIST");
}

#[tokio::test]
async fn start_answers_starting_then_the_warehouse_runs_after_its_delay() {
    // Arrange
    let te = spawn_with_warehouses().await;

    // Act
    let (status, body) = te
        .post(&format!("{WAREHOUSES}/slow/start"), ALICE, json!({}))
        .await;
    let seen = poll_while(&te, "slow", "STARTING").await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(seen, ["STARTING", "RUNNING"]);
}

#[tokio::test]
async fn stop_goes_through_stopping_to_stopped() {
    // Arrange
    let te = spawn_with_warehouses().await;
    te.handle
        .set_warehouse_state("slow", WarehouseState::Running)
        .expect("known warehouse");

    // Act
    let (status, _) = te
        .post(&format!("{WAREHOUSES}/slow/stop"), ALICE, json!({}))
        .await;
    let seen = poll_while(&te, "slow", "STOPPING").await;
    let (_, again) = te
        .post(&format!("{WAREHOUSES}/slow/stop"), ALICE, json!({}))
        .await;

    // Assert
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen, ["STOPPING", "STOPPED"]);
    assert_eq!(again, json!({}));
    assert_eq!(state_of(&te, "slow").await, "STOPPED");
}

#[tokio::test]
async fn the_control_api_sets_states_and_reset_restores_the_fixture() {
    // Arrange
    let te = spawn().await;
    te.handle
        .update_settings(|s| s.warehouse_stop_ms = 60_000)
        .expect("valid settings");

    // Act
    te.handle
        .set_warehouse_state(WAREHOUSE, WarehouseState::Stopped)
        .expect("known warehouse");
    let stopped = state_of(&te, WAREHOUSE).await;
    te.handle
        .set_warehouse_state(WAREHOUSE, WarehouseState::Stopping)
        .expect("known warehouse");
    let stopping = state_of(&te, WAREHOUSE).await;
    let unknown = te
        .handle
        .set_warehouse_state("nope", WarehouseState::Running);
    te.handle.reset().await;

    // Assert
    assert_eq!(stopped, "STOPPED");
    assert_eq!(stopping, "STOPPING", "for the 60 s stop delay");
    assert!(unknown.is_err());
    assert_eq!(state_of(&te, WAREHOUSE).await, "RUNNING");
}

#[tokio::test]
async fn a_statement_on_a_stopped_warehouse_starts_it_and_stays_pending_until_it_runs() {
    // Arrange
    let te = spawn_with_warehouses().await;

    // Act
    let (status, body) = te
        .post(
            crate::statements::STATEMENTS,
            ALICE,
            json!({"statement": "SELECT * FROM main.default.regions", "warehouse_id": "slow",
                   "wait_timeout": "0s"}),
        )
        .await;
    let warehouse_after_submit = state_of(&te, "slow").await;
    let (states, last) = poll_until_terminal(&te, ALICE, &statement_id(&body)).await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"]["state"], "PENDING");
    assert_eq!(warehouse_after_submit, "STARTING");
    assert_eq!(states.first().map(String::as_str), Some("PENDING"));
    assert_eq!(states.last().map(String::as_str), Some("SUCCEEDED"));
    assert_eq!(last["manifest"]["total_row_count"], 3);
    assert_eq!(state_of(&te, "slow").await, "RUNNING");
}

#[tokio::test]
async fn execute_waits_through_the_warehouse_start_within_wait_timeout() {
    // Arrange
    let te = spawn_with_warehouses().await;

    // Act
    let (status, body) = te
        .post(
            crate::statements::STATEMENTS,
            ALICE,
            json!({"statement": "SELECT COUNT(*) FROM main.default.regions",
                   "warehouse_id": "slow", "wait_timeout": "5s"}),
        )
        .await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"]["state"], "SUCCEEDED");
    assert_eq!(body["result"]["data_array"], json!([["3"]]));
}

#[tokio::test]
async fn a_statement_on_a_warehouse_without_can_use_is_permission_denied() {
    // Arrange
    let te = spawn_with_warehouses().await;

    // Act
    let (status, body) = execute_with(
        &te,
        BOB,
        "SELECT * FROM main.default.regions",
        json!({"warehouse_id": "admins-only"}),
    )
    .await;

    // Assert
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error_code"], "PERMISSION_DENIED");
}

#[tokio::test]
async fn fixtures_refuse_an_auto_stop_below_ten_minutes() {
    // Arrange
    let mut fixture = dbapp_emulator::Fixture::default();
    fixture
        .warehouses
        .push(warehouse("short", json!({"auto_stop_mins": 5})));

    // Act
    let result = fixture.validate();

    // Assert
    let error = result.expect_err("5 minutes is refused").to_string();
    assert!(error.contains("auto_stop_mins"), "{error}");
}

#[tokio::test]
async fn the_http_control_route_sets_known_states_only() {
    // Arrange
    let te = spawn().await;
    let put = |id: &str, body: Value| {
        te.http
            .put(te.url(&format!("/_emulator/warehouses/{id}")))
            .json(&body)
    };

    // Act
    let (stopped, _) = crate::support::send(put(WAREHOUSE, json!({"state": "STOPPED"}))).await;
    let state_after = state_of(&te, WAREHOUSE).await;
    let (deleted, _) = crate::support::send(put(WAREHOUSE, json!({"state": "DELETED"}))).await;
    let (unknown, _) = crate::support::send(put("nope", json!({"state": "RUNNING"}))).await;

    // Assert
    assert_eq!(stopped, StatusCode::NO_CONTENT);
    assert_eq!(state_after, "STOPPED");
    assert_eq!(deleted, StatusCode::BAD_REQUEST);
    assert_eq!(unknown, StatusCode::NOT_FOUND);
}
