//! SQL sessions over HTTP, as `databricks-sql-connector` (`use_sea=True`) uses them: create with
//! defaults, statements in a session, ownership, the session bound, delete with a JSON body, and
//! the connector's side calls.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::statements::{STATEMENTS, WAREHOUSE};
use crate::support::{ALICE, BOB, TestEmulator, send, spawn, spawn_with_fixture};

const SESSIONS: &str = "/api/2.0/sql/sessions";

async fn create(te: &TestEmulator, token: &str, body: Value) -> (StatusCode, Value) {
    te.post(SESSIONS, token, body).await
}

async fn session_id(te: &TestEmulator, token: &str, body: Value) -> String {
    let (status, created) = create(te, token, body).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    created["session_id"]
        .as_str()
        .expect("session_id")
        .to_owned()
}

#[tokio::test]
async fn statements_in_a_session_use_its_catalog_and_schema() {
    // Arrange
    let te = spawn().await;
    let id = session_id(
        &te,
        ALICE,
        json!({"warehouse_id": WAREHOUSE, "catalog": "samples", "schema": "nyctaxi",
               "session_confs": {"ansi_mode": "true"}}),
    )
    .await;

    // Act
    let (status, body) = te
        .post(
            STATEMENTS,
            ALICE,
            json!({"session_id": id, "warehouse_id": WAREHOUSE,
                   "statement": "SELECT COUNT(*) FROM trips", "result_compression": "LZ4_FRAME"}),
        )
        .await;
    let (_, without_warehouse) = te
        .post(
            STATEMENTS,
            ALICE,
            json!({"session_id": id, "statement": "SELECT COUNT(*) FROM main.default.regions"}),
        )
        .await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["data_array"], json!([["60"]]));
    assert!(body["manifest"].get("result_compression").is_none());
    assert_eq!(without_warehouse["result"]["data_array"], json!([["3"]]));
    let sessions = te.handle.sql_sessions();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].owner, "alice@example.com");
    assert_eq!(sessions[0].catalog.as_deref(), Some("samples"));
    assert_eq!(sessions[0].session_confs["ansi_mode"], "true");
}

#[tokio::test]
async fn a_session_belongs_to_its_creator_and_delete_takes_a_json_body() {
    // Arrange
    let te = spawn().await;
    let id = session_id(&te, ALICE, json!({"warehouse_id": WAREHOUSE})).await;
    let path = format!("{SESSIONS}/{id}");
    let body = json!({"warehouse_id": WAREHOUSE, "session_id": id});

    // Act
    let (bob_uses, _) = te
        .post(
            STATEMENTS,
            BOB,
            json!({"session_id": id, "statement": "SELECT * FROM regions"}),
        )
        .await;
    let (bob_deletes, _) = send(te.request(Method::DELETE, &path, BOB).json(&body)).await;
    let (alice_deletes, deleted) = send(te.request(Method::DELETE, &path, ALICE).json(&body)).await;
    let (used_after, _) = te
        .post(
            STATEMENTS,
            ALICE,
            json!({"session_id": id, "statement": "SELECT * FROM regions"}),
        )
        .await;
    let (deleted_twice, _) = send(te.request(Method::DELETE, &path, ALICE).json(&body)).await;

    // Assert
    assert_eq!(bob_uses, StatusCode::NOT_FOUND);
    assert_eq!(bob_deletes, StatusCode::NOT_FOUND);
    assert_eq!(alice_deletes, StatusCode::OK, "{deleted}");
    assert_eq!(used_after, StatusCode::NOT_FOUND);
    assert_eq!(deleted_twice, StatusCode::NOT_FOUND);
    assert!(te.handle.sql_sessions().is_empty());
}

#[tokio::test]
async fn creating_a_session_checks_the_warehouse_and_the_bound() {
    // Arrange
    let te = spawn_with_fixture(|f| {
        f.settings.sql_max_sessions = 2;
        f.warehouses.push(
            serde_json::from_value(
                json!({"id": "private", "name": "Private", "readers": ["admins"]}),
            )
            .expect("a valid warehouse"),
        );
    })
    .await;

    // Act
    let missing = create(&te, ALICE, json!({})).await;
    let unknown = create(&te, ALICE, json!({"warehouse_id": "nope"})).await;
    let denied = create(&te, BOB, json!({"warehouse_id": "private"})).await;
    let first = create(&te, ALICE, json!({"warehouse_id": WAREHOUSE})).await;
    let second = create(&te, BOB, json!({"warehouse_id": WAREHOUSE})).await;
    let third = create(&te, ALICE, json!({"warehouse_id": WAREHOUSE})).await;
    let mismatch = te
        .post(
            STATEMENTS,
            ALICE,
            json!({"session_id": first.1["session_id"], "warehouse_id": "private",
                   "statement": "SELECT * FROM regions"}),
        )
        .await;

    // Assert
    assert_eq!(missing.0, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.0, StatusCode::NOT_FOUND);
    assert_eq!(denied.0, StatusCode::FORBIDDEN);
    assert_eq!(denied.1["error_code"], "PERMISSION_DENIED");
    assert_eq!((first.0, second.0), (StatusCode::OK, StatusCode::OK));
    assert_eq!(third.0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(third.1["error_code"], "RESOURCE_EXHAUSTED");
    assert_eq!(mismatch.0, StatusCode::BAD_REQUEST, "{}", mismatch.1);
}

#[tokio::test]
async fn the_connector_side_calls_are_answered() {
    // Arrange
    let te = spawn().await;

    // Act
    let (flags_status, flags) = te
        .get(
            "/api/2.0/connector-service/feature-flags/PYTHON/4.9.0",
            ALICE,
        )
        .await;
    let (telemetry_status, _) = te
        .post(
            "/telemetry-ext",
            ALICE,
            json!({"items": [], "protoLogs": []}),
        )
        .await;

    // Assert
    assert_eq!(flags_status, StatusCode::OK);
    assert_eq!(flags, json!({"flags": [], "ttl_seconds": 900}));
    assert_eq!(telemetry_status, StatusCode::OK);
}
