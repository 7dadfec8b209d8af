//! SQL Statement Execution over HTTP: results, chunks, the state clock, cancel, failures as
//! `FAILED` statements, request validation and per-user visibility.

use std::time::Duration;

use dbapp_emulator::fixture::{Column, Table};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{ALICE, BOB, TestEmulator, spawn, spawn_with_fixture};

pub(crate) const STATEMENTS: &str = "/api/2.0/sql/statements";
pub(crate) const WAREHOUSE: &str = "dev-warehouse";

/// Executes `sql` as `token` with extra request fields merged in.
pub(crate) async fn execute_with(
    te: &TestEmulator,
    token: &str,
    sql: &str,
    extra: Value,
) -> (StatusCode, Value) {
    let mut body = json!({"statement": sql, "warehouse_id": WAREHOUSE});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    te.post(STATEMENTS, token, body).await
}

/// Executes `sql` as `token` with the default options and expects HTTP 200.
pub(crate) async fn execute(te: &TestEmulator, token: &str, sql: &str) -> Value {
    let (status, body) = execute_with(te, token, sql, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

pub(crate) fn statement_id(body: &Value) -> String {
    body["statement_id"]
        .as_str()
        .expect("statement_id")
        .to_owned()
}

/// Polls `GET /statements/{id}` until a terminal state, returning every state seen and the last
/// body. Polling is what a client does; the bound keeps a broken emulator from hanging the test.
pub(crate) async fn poll_until_terminal(
    te: &TestEmulator,
    token: &str,
    id: &str,
) -> (Vec<String>, Value) {
    let mut states = Vec::new();
    for _ in 0..500 {
        let (status, body) = te.get(&format!("{STATEMENTS}/{id}"), token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let state = body["status"]["state"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if states.last() != Some(&state) {
            states.push(state.clone());
        }
        if !matches!(state.as_str(), "PENDING" | "RUNNING") {
            return (states, body);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("statement {id} did not finish; states seen: {states:?}");
}

pub(crate) fn rows(result: &Value) -> Vec<Vec<Value>> {
    serde_json::from_value(result["data_array"].clone()).expect("data_array")
}

#[tokio::test]
async fn select_star_returns_typed_values_as_strings_and_nulls() {
    // Arrange
    let te = spawn().await;

    // Act
    let body = execute(&te, ALICE, "SELECT * FROM main.default.products").await;

    // Assert
    assert_eq!(body["status"], json!({"state": "SUCCEEDED"}));
    let manifest = &body["manifest"];
    assert_eq!(manifest["format"], "JSON_ARRAY");
    assert_eq!(manifest["truncated"], false);
    assert_eq!(manifest["total_row_count"], 8);
    assert_eq!(manifest["total_chunk_count"], 1);
    assert_eq!(manifest["schema"]["column_count"], 4);
    assert_eq!(
        manifest["schema"]["columns"][2],
        json!({"name": "price", "position": 2, "type_name": "DECIMAL", "type_text": "DECIMAL(10,2)",
               "type_precision": 10, "type_scale": 2})
    );
    let data = rows(&body["result"]);
    assert_eq!(
        data[0],
        [
            json!("1"),
            json!("Notebook"),
            json!("12.50"),
            json!("stationery")
        ]
    );
    assert_eq!(
        data[7],
        [
            json!("8"),
            json!("Cable"),
            Value::Null,
            json!("electronics")
        ]
    );
    assert!(body["result"].get("next_chunk_index").is_none());
    let every_value_is_text = data.iter().flatten().all(|v| v.is_string() || v.is_null());
    assert!(every_value_is_text, "{data:?}");
}

#[tokio::test]
async fn booleans_and_doubles_are_rendered_as_text() {
    // Arrange
    let te = spawn().await;

    // Act
    let body = execute(
        &te,
        ALICE,
        "SELECT * FROM main.default.customers LIMIT 3 OFFSET 5",
    )
    .await;

    // Assert
    let data = rows(&body["result"]);
    let ids: Vec<_> = data.iter().map(|r| r[0].clone()).collect();
    assert_eq!(ids, [json!("6"), json!("7"), json!("8")]);
    assert_eq!(data[0][4], "true");
    assert_eq!(data[0][5], "1860.16");
    assert_eq!(data[1][5], Value::Null);
    assert_eq!(body["manifest"]["total_row_count"], 3);
    assert_eq!(
        body["manifest"]["schema"]["columns"][3]["type_text"],
        "DATE"
    );
}

#[tokio::test]
async fn count_star_returns_one_bigint_column_named_count_1() {
    // Arrange
    let te = spawn().await;

    // Act
    let body = execute(&te, ALICE, "select count(*) from main.sales.orders;").await;

    // Assert
    assert_eq!(
        body["manifest"]["schema"],
        json!({"column_count": 1, "columns": [
            {"name": "count(1)", "position": 0, "type_name": "LONG", "type_text": "BIGINT"}]})
    );
    assert_eq!(body["result"]["data_array"], json!([["120"]]));
}

#[tokio::test]
async fn multi_chunk_results_link_every_chunk_and_deliver_each_row_once_in_order() {
    // Arrange
    let te = spawn().await;
    te.handle
        .update_settings(|s| s.sql_chunk_rows = 10)
        .expect("valid settings");

    // Act
    let body = execute(&te, ALICE, "SELECT * FROM main.sales.orders").await;
    let id = statement_id(&body);
    let mut order_ids = Vec::new();
    let mut chunk = body["result"].clone();
    let mut visited = Vec::new();
    loop {
        visited.push(chunk["chunk_index"].as_u64().expect("chunk_index"));
        order_ids.extend(rows(&chunk).into_iter().map(|r| r[0].clone()));
        let Some(link) = chunk["next_chunk_internal_link"].as_str() else {
            assert!(chunk.get("next_chunk_index").is_none(), "{chunk}");
            break;
        };
        assert_eq!(
            link,
            format!(
                "{STATEMENTS}/{id}/result/chunks/{}?row_offset={}",
                chunk["next_chunk_index"],
                chunk["row_offset"].as_u64().unwrap() + chunk["row_count"].as_u64().unwrap()
            )
        );
        let (status, next) = te.get(link, ALICE).await;
        assert_eq!(status, StatusCode::OK, "{next}");
        chunk = next;
    }

    // Assert
    let manifest = &body["manifest"];
    assert_eq!(manifest["total_row_count"], 120);
    assert_eq!(manifest["total_chunk_count"], 12);
    assert_eq!(
        manifest["chunks"][11],
        json!({"chunk_index": 11, "row_offset": 110, "row_count": 10})
    );
    assert_eq!(visited, (0..12).collect::<Vec<u64>>());
    let expected: Vec<Value> = (1001..=1120).map(|i: u32| json!(i.to_string())).collect();
    assert_eq!(order_ids, expected);
}

#[tokio::test]
async fn chunks_can_be_fetched_in_any_order_and_out_of_range_is_rejected() {
    // Arrange
    let te = spawn().await;
    te.handle
        .update_settings(|s| s.sql_chunk_rows = 7)
        .expect("valid settings");
    let body = execute(&te, ALICE, "SELECT * FROM main.default.customers").await;
    let id = statement_id(&body);
    let chunk = |n: &str| format!("{STATEMENTS}/{id}/result/chunks/{n}");

    // Act
    let (last_status, last) = te.get(&chunk("3"), ALICE).await;
    let (first_status, first) = te.get(&chunk("0"), ALICE).await;
    let (past_status, past) = te.get(&chunk("4"), ALICE).await;
    let (junk_status, _) = te.get(&chunk("one"), ALICE).await;

    // Assert
    assert_eq!(last_status, StatusCode::OK);
    assert_eq!(last["row_offset"], 21);
    assert_eq!(last["row_count"], 4);
    assert_eq!(rows(&last)[3][0], "25");
    assert_eq!(first_status, StatusCode::OK);
    assert_eq!(first, body["result"]);
    assert_eq!(past_status, StatusCode::BAD_REQUEST);
    assert_eq!(past["error_code"], "INVALID_PARAMETER_VALUE");
    assert_eq!(junk_status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_empty_result_is_one_chunk_without_data_array() {
    // Arrange
    let te = spawn().await;

    // Act
    let body = execute(&te, ALICE, "SELECT * FROM main.default.regions OFFSET 3").await;

    // Assert
    assert_eq!(body["status"]["state"], "SUCCEEDED");
    assert_eq!(body["manifest"]["total_row_count"], 0);
    assert_eq!(body["manifest"]["total_chunk_count"], 1);
    assert_eq!(
        body["result"],
        json!({"chunk_index": 0, "row_offset": 0, "row_count": 0})
    );
}

#[tokio::test]
async fn row_limit_truncates_the_result_and_says_so() {
    // Arrange
    let te = spawn().await;

    // Act
    let (status, body) = execute_with(
        &te,
        ALICE,
        "SELECT * FROM main.default.customers",
        json!({"row_limit": 4}),
    )
    .await;

    // Assert
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["manifest"]["truncated"], true);
    assert_eq!(body["manifest"]["total_row_count"], 4);
    assert_eq!(rows(&body["result"]).len(), 4);
}

#[tokio::test]
async fn statements_go_pending_then_running_then_succeeded_when_polled() {
    // Arrange
    let te = spawn().await;
    te.handle
        .update_settings(|s| {
            s.sql_pending_ms = 300;
            s.sql_running_ms = 300;
        })
        .expect("valid settings");

    // Act
    let (status, submitted) = execute_with(
        &te,
        ALICE,
        "SELECT COUNT(*) FROM main.default.customers",
        json!({"wait_timeout": "0s"}),
    )
    .await;
    let id = statement_id(&submitted);
    let (too_early, _) = te
        .get(&format!("{STATEMENTS}/{id}/result/chunks/0"), ALICE)
        .await;
    let (states, last) = poll_until_terminal(&te, ALICE, &id).await;

    // Assert
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        submitted,
        json!({"statement_id": id, "status": {"state": "PENDING"}})
    );
    assert_eq!(too_early, StatusCode::BAD_REQUEST);
    assert_eq!(states, ["PENDING", "RUNNING", "SUCCEEDED"]);
    assert_eq!(last["result"]["data_array"], json!([["25"]]));
}

#[tokio::test]
async fn execute_waits_for_a_statement_that_finishes_within_wait_timeout() {
    // Arrange
    let te = spawn().await;
    te.handle
        .update_settings(|s| {
            s.sql_pending_ms = 100;
            s.sql_running_ms = 100;
        })
        .expect("valid settings");

    // Act
    let (status, body) = execute_with(
        &te,
        ALICE,
        "SELECT * FROM main.default.regions",
        json!({"wait_timeout": "5s"}),
    )
    .await;

    // Assert
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"]["state"], "SUCCEEDED");
    assert_eq!(body["result"]["row_count"], 3);
}

#[tokio::test]
async fn on_wait_timeout_cancel_cancels_a_statement_that_outlives_the_wait() {
    // Arrange
    let te = spawn().await;
    te.handle
        .update_settings(|s| s.sql_pending_ms = 60_000)
        .expect("valid settings");

    // Act
    let (status, body) = execute_with(
        &te,
        ALICE,
        "SELECT * FROM main.default.regions",
        json!({"wait_timeout": "5s", "on_wait_timeout": "CANCEL"}),
    )
    .await;
    let id = statement_id(&body);
    let (_, later) = te.get(&format!("{STATEMENTS}/{id}"), ALICE).await;

    // Assert
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"statement_id": id, "status": {"state": "CANCELED"}})
    );
    assert_eq!(later["status"]["state"], "CANCELED");
}

#[tokio::test]
async fn cancel_makes_an_unfinished_statement_canceled_for_good() {
    // Arrange
    let te = spawn().await;
    te.handle
        .update_settings(|s| s.sql_pending_ms = 60_000)
        .expect("valid settings");
    let (_, body) = execute_with(
        &te,
        ALICE,
        "SELECT * FROM main.default.regions",
        json!({"wait_timeout": "0s"}),
    )
    .await;
    let id = statement_id(&body);

    // Act
    let (status, answer) = te
        .post(&format!("{STATEMENTS}/{id}/cancel"), ALICE, json!({}))
        .await;
    let (again, _) = te
        .post(&format!("{STATEMENTS}/{id}/cancel"), ALICE, json!({}))
        .await;
    let (_, after) = te.get(&format!("{STATEMENTS}/{id}"), ALICE).await;
    let (chunk_status, chunk) = te
        .get(&format!("{STATEMENTS}/{id}/result/chunks/0"), ALICE)
        .await;

    // Assert
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer, json!({}));
    assert_eq!(again, StatusCode::OK);
    assert_eq!(
        after,
        json!({"statement_id": id, "status": {"state": "CANCELED"}})
    );
    assert_eq!(chunk_status, StatusCode::BAD_REQUEST);
    assert_eq!(chunk["error_code"], "INVALID_STATE");
}

#[tokio::test]
async fn cancel_after_success_changes_nothing() {
    // Arrange
    let te = spawn().await;
    let body = execute(&te, ALICE, "SELECT * FROM main.default.regions").await;
    let id = statement_id(&body);

    // Act
    let (status, _) = te
        .post(&format!("{STATEMENTS}/{id}/cancel"), ALICE, json!({}))
        .await;
    let (_, after) = te.get(&format!("{STATEMENTS}/{id}"), ALICE).await;

    // Assert
    assert_eq!(status, StatusCode::OK);
    assert_eq!(after, body);
}

#[tokio::test]
async fn failed_statements_are_http_200_with_spark_error_classes() {
    // Arrange
    let te = spawn().await;
    let cases = [
        (
            ALICE,
            "SELECT name FROM main.default.customers WHERE",
            "[PARSE_SYNTAX_ERROR] Syntax error at or near end of input.",
            "42601",
        ),
        (
            ALICE,
            "DROP TABLE main.default.customers",
            "[UNSUPPORTED_FEATURE] The feature is not supported: DROP statements.",
            "0A000",
        ),
        (
            ALICE,
            "SELECT * FROM main.default.nope",
            "[TABLE_OR_VIEW_NOT_FOUND] The table or view `main`.`default`.`nope` cannot be found.",
            "42P01",
        ),
        (
            BOB,
            "SELECT * FROM main.sales.orders",
            "[INSUFFICIENT_PERMISSIONS] Insufficient privileges: User does not have SELECT on Table 'main.sales.orders'.",
            "42501",
        ),
        (ALICE, "", "[PARSE_EMPTY_STATEMENT]", "42617"),
    ];

    for (token, sql, prefix, sql_state) in cases {
        // Act
        let body = execute(&te, token, sql).await;

        // Assert
        let status = &body["status"];
        assert_eq!(status["state"], "FAILED", "{sql}: {body}");
        assert_eq!(status["error"]["error_code"], "BAD_REQUEST", "{sql}");
        assert_eq!(status["sql_state"], sql_state, "{sql}");
        let message = status["error"]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(prefix), "{sql}: {message}");
        assert!(
            body.get("manifest").is_none() && body.get("result").is_none(),
            "{body}"
        );
    }
}

#[tokio::test]
async fn failures_surface_only_when_the_statement_finishes() {
    // Arrange
    let te = spawn().await;
    te.handle
        .update_settings(|s| {
            s.sql_pending_ms = 100;
            s.sql_running_ms = 100;
        })
        .expect("valid settings");

    // Act
    let (_, submitted) = execute_with(
        &te,
        BOB,
        "SELECT * FROM samples.nyctaxi.trips",
        json!({"wait_timeout": "0s"}),
    )
    .await;
    let (states, last) = poll_until_terminal(&te, BOB, &statement_id(&submitted)).await;

    // Assert
    assert_eq!(submitted["status"], json!({"state": "PENDING"}));
    assert_eq!(states.last().map(String::as_str), Some("FAILED"));
    assert_eq!(last["status"]["sql_state"], "42501");
}

#[tokio::test]
async fn an_unknown_warehouse_is_not_found() {
    // Arrange
    let te = spawn().await;

    // Act
    let (status, body) = te
        .post(
            STATEMENTS,
            ALICE,
            json!({"statement": "SELECT * FROM t", "warehouse_id": "nope"}),
        )
        .await;

    // Assert
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error_code"], "RESOURCE_DOES_NOT_EXIST");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("nope"),
        "{body}"
    );
}

#[tokio::test]
async fn invalid_requests_are_rejected_with_invalid_parameter_value() {
    // Arrange
    let te = spawn().await;
    let sql = "SELECT * FROM main.default.regions";
    let cases = [
        json!({"statement": sql, "warehouse_id": WAREHOUSE, "wait_timeout": "3s"}),
        json!({"statement": sql, "warehouse_id": WAREHOUSE, "wait_timeout": "51s"}),
        json!({"statement": sql, "warehouse_id": WAREHOUSE, "wait_timeout": "10"}),
        json!({"statement": sql, "warehouse_id": WAREHOUSE, "on_wait_timeout": "STOP"}),
        json!({"statement": sql, "warehouse_id": WAREHOUSE, "disposition": "ALL_AT_ONCE"}),
        json!({"statement": sql, "warehouse_id": WAREHOUSE, "format": "PARQUET"}),
        json!({"statement": sql, "warehouse_id": WAREHOUSE, "row_limit": -1}),
        json!({"statement": sql, "warehouse_id": WAREHOUSE, "byte_limit": -1}),
        json!({"warehouse_id": WAREHOUSE}),
        json!({"statement": sql}),
    ];

    for request in cases {
        // Act
        let (status, body) = te.post(STATEMENTS, ALICE, request.clone()).await;

        // Assert
        assert_eq!(status, StatusCode::BAD_REQUEST, "{request}: {body}");
        assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE", "{request}");
    }
}

#[tokio::test]
async fn another_user_can_neither_see_nor_cancel_a_statement() {
    // Arrange
    let te = spawn().await;
    te.handle
        .update_settings(|s| s.sql_pending_ms = 60_000)
        .expect("valid settings");
    let (_, body) = execute_with(
        &te,
        ALICE,
        "SELECT * FROM main.default.regions",
        json!({"wait_timeout": "0s"}),
    )
    .await;
    let id = statement_id(&body);

    // Act
    let (get_status, get_body) = te.get(&format!("{STATEMENTS}/{id}"), BOB).await;
    let (chunk_status, _) = te
        .get(&format!("{STATEMENTS}/{id}/result/chunks/0"), BOB)
        .await;
    let (cancel_status, _) = te
        .post(&format!("{STATEMENTS}/{id}/cancel"), BOB, json!({}))
        .await;
    let (_, own) = te.get(&format!("{STATEMENTS}/{id}"), ALICE).await;

    // Assert
    assert_eq!(get_status, StatusCode::NOT_FOUND);
    assert_eq!(get_body["error_code"], "RESOURCE_DOES_NOT_EXIST");
    assert_eq!(chunk_status, StatusCode::NOT_FOUND);
    assert_eq!(cancel_status, StatusCode::NOT_FOUND);
    assert_eq!(own["status"]["state"], "PENDING");
}

#[tokio::test]
async fn unknown_statement_ids_are_not_found() {
    // Arrange
    let te = spawn().await;
    let id = "01ef0000-0000-0000-0000-000000000000";

    // Act
    let (get_status, _) = te.get(&format!("{STATEMENTS}/{id}"), ALICE).await;
    let (chunk_status, _) = te
        .get(&format!("{STATEMENTS}/{id}/result/chunks/0"), ALICE)
        .await;
    let (cancel_status, _) = te
        .post(&format!("{STATEMENTS}/{id}/cancel"), ALICE, json!({}))
        .await;

    // Assert
    assert_eq!(get_status, StatusCode::NOT_FOUND);
    assert_eq!(chunk_status, StatusCode::NOT_FOUND);
    assert_eq!(cancel_status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn backquoted_identifiers_reach_tables_with_unusual_names() {
    // Arrange
    let te = spawn_with_fixture(|fixture| {
        let odd = Table {
            name: "odd-name`s".into(),
            table_type: "MANAGED".into(),
            data_source_format: "DELTA".into(),
            comment: None,
            owner: None,
            readers: None,
            columns: vec![Column {
                name: "v".into(),
                type_text: "string".into(),
                type_name: "STRING".into(),
                nullable: true,
                comment: None,
            }],
            rows: vec![vec![json!("x")], vec![Value::Null]],
            data_file: None,
        };
        fixture.catalogs[0].schemas[0].tables.push(odd);
    })
    .await;

    // Act
    let odd = execute(&te, ALICE, "SELECT * FROM `main`.`default`.`odd-name``s`").await;
    let mixed_case = execute(
        &te,
        ALICE,
        "SELECT COUNT(*) FROM `MAIN`.Default.`Customers`",
    )
    .await;

    // Assert
    assert_eq!(odd["result"]["data_array"], json!([["x"], [null]]));
    assert_eq!(mixed_case["result"]["data_array"], json!([["25"]]));
}

#[tokio::test]
async fn catalog_and_schema_set_the_namespace_of_short_names() {
    // Arrange
    let te = spawn().await;
    let cases = [
        (
            json!({"catalog": "samples", "schema": "nyctaxi"}),
            "SELECT COUNT(*) FROM trips",
            "60",
        ),
        (
            json!({"catalog": "samples"}),
            "SELECT COUNT(*) FROM nyctaxi.trips",
            "60",
        ),
        (
            json!({"schema": "sales"}),
            "SELECT COUNT(*) FROM orders",
            "120",
        ),
        (json!({}), "SELECT COUNT(*) FROM products", "8"),
        (
            json!({"catalog": "samples", "schema": "nyctaxi"}),
            "SELECT COUNT(*) FROM main.default.regions",
            "3",
        ),
    ];

    for (context, sql, count) in cases {
        // Act
        let (status, body) = execute_with(&te, ALICE, sql, context.clone()).await;

        // Assert
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body["result"]["data_array"],
            json!([[count]]),
            "{context} {sql}: {body}"
        );
    }
}

#[tokio::test]
async fn the_sdk_path_with_a_trailing_slash_executes_too() {
    // Arrange
    let te = spawn().await;

    // Act
    let (status, body) = te
        .post(
            &format!("{STATEMENTS}/"),
            ALICE,
            json!({"statement": "SELECT COUNT(*) FROM main.default.regions", "warehouse_id": WAREHOUSE}),
        )
        .await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["data_array"], json!([["3"]]));
}

#[tokio::test]
async fn parameters_bind_typed_values_including_limit_and_offset() {
    // Arrange
    let te = spawn().await;
    let parameters = json!([
        {"name": "active", "value": "true", "type": "BOOLEAN"},
        {"name": "n", "value": "2", "type": "INT"},
        {"name": "m", "value": "1", "type": "INT"},
        {"name": "unused"}
    ]);

    // Act
    let (status, body) = execute_with(
        &te,
        ALICE,
        "SELECT id, name FROM main.default.customers WHERE is_active = :active \
         ORDER BY id LIMIT :n OFFSET :m",
        json!({"parameters": parameters}),
    )
    .await;

    // Assert
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"]["state"], "SUCCEEDED", "{body}");
    assert_eq!(
        body["result"]["data_array"],
        json!([["2", "Grace Hopper"], ["3", "Alan Turing"]])
    );
    assert_eq!(
        body["manifest"]["schema"]["columns"][0],
        json!({"name": "id", "position": 0, "type_name": "LONG", "type_text": "BIGINT"})
    );
}

#[tokio::test]
async fn a_marker_without_a_parameter_fails_as_unbound() {
    // Arrange
    let te = spawn().await;

    // Act
    let body = execute(
        &te,
        ALICE,
        "SELECT * FROM main.default.customers WHERE id = :id",
    )
    .await;

    // Assert
    assert_eq!(body["status"]["state"], "FAILED");
    assert_eq!(body["status"]["sql_state"], "42P02");
    let message = body["status"]["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.starts_with("[UNBOUND_SQL_PARAMETER] Found the unbound parameter: id."),
        "{message}"
    );
}

#[tokio::test]
async fn malformed_parameters_are_rejected_with_invalid_parameter_value() {
    // Arrange
    let te = spawn().await;
    let cases = [
        json!([{"value": "1"}]),
        json!([{"name": ""}]),
        json!([{"name": "a", "value": 1}]),
        json!([{"name": "a", "type": "ARRAY<INT>"}]),
        json!([{"name": "a", "type": "MAP<STRING,INT>"}]),
        json!([{"name": "a", "type": "STRUCT<x:INT>"}]),
        json!([{"name": "a", "type": "INTERVAL"}]),
        json!([{"name": "a", "type": "DECIMAL(40,2)"}]),
        json!([{"name": "a"}, {"name": "A", "value": "2"}]),
    ];

    for parameters in cases {
        // Act
        let (status, body) = execute_with(
            &te,
            ALICE,
            "SELECT :a",
            json!({"parameters": parameters.clone()}),
        )
        .await;

        // Assert
        assert_eq!(status, StatusCode::BAD_REQUEST, "{parameters}: {body}");
        assert_eq!(
            body["error_code"], "INVALID_PARAMETER_VALUE",
            "{parameters}"
        );
    }
}

#[tokio::test]
async fn a_join_bob_cannot_fully_read_fails_whole() {
    // Arrange
    let te = spawn().await;

    // Act
    let body = execute(
        &te,
        BOB,
        "SELECT c.name, o.amount FROM main.default.customers c \
         JOIN main.sales.orders o ON o.customer_id = c.id",
    )
    .await;

    // Assert
    assert_eq!(body["status"]["state"], "FAILED");
    assert_eq!(body["status"]["sql_state"], "42501");
    assert!(body.get("result").is_none(), "{body}");
}
