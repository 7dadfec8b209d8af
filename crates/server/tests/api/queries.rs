//! Governed queries: the catalog, running as the user and as the app, parameter checks, the
//! result cache (per user for user queries, shared for app queries, TTL), paging, the row cap,
//! `202` while the warehouse starts, and a bad query file stopping the start.

use std::net::{Ipv4Addr, SocketAddr};

use dbapp_databricks::Environment;
use dbapp_emulator::{EmulatorConfig, WarehouseState};
use dbapp_server::Application;
use dbapp_server::config::Settings;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::app::{ALICE, BOB, TestApp, assert_error, settings_for, start_server};

const STATEMENTS: &str = "/api/2.0/sql/statements";

/// A user query both fixture users can read.
const CUSTOMERS: &str = "-- @title Customers\n-- @run_as user\n-- @cache_ttl_secs 300\nSELECT * FROM main.default.customers\n";
/// An app query.
const PRODUCTS: &str = "-- @title Products\n-- @description Shared reference data.\n-- @run_as app\n-- @cache_ttl_secs 300\nSELECT * FROM main.default.products\n";
/// A user query cached for one second.
const SHORT: &str = "-- @title Short-lived\n-- @run_as user\n-- @cache_ttl_secs 1\nSELECT * FROM main.default.regions\n";
/// A query with one parameter of each kind of check (never run here).
const PARAMS: &str = "-- @title Params\n-- @run_as user\n-- @cache_ttl_secs 0\n-- @param n INT required\n-- @param day DATE = 2026-01-01\n-- @param active BOOLEAN = true\nSELECT * FROM main.default.customers WHERE id <= :n AND signup_date >= :day AND is_active = :active\n";

struct QueryApp {
    app: TestApp,
    _queries: TempDir,
}

fn query_dir(files: &[(&str, &str)]) -> TempDir {
    let dir = TempDir::new().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

/// The server with the test query files, as the emulator's service principal, plus `vars`.
async fn spawn_with_queries(vars: Vec<(&str, String)>) -> QueryApp {
    let queries = query_dir(&[
        ("customers.sql", CUSTOMERS),
        ("products.sql", PRODUCTS),
        ("short.sql", SHORT),
        ("params.sql", PARAMS),
    ]);
    let emulator = dbapp_emulator::start_local(EmulatorConfig::default())
        .await
        .unwrap();
    let mut all = vec![
        ("DATABRICKS_WAREHOUSE_ID", "dev-warehouse".to_owned()),
        ("DATABRICKS_APP_NAME", "dbapp-tests".to_owned()),
        ("DBAPP_QUERIES_DIR", queries.path().display().to_string()),
    ];
    all.extend(vars);
    let settings = settings_for(&emulator, all);
    QueryApp {
        app: start_server(emulator, settings, None).await,
        _queries: queries,
    }
}

/// Statements the emulator received from `principal`.
fn statements_by(app: &TestApp, principal: &str) -> usize {
    app.emulator
        .requests(STATEMENTS)
        .iter()
        .filter(|r| r.method == "POST" && r.path == STATEMENTS)
        .filter(|r| r.principal.as_deref() == Some(principal))
        .count()
}

async fn run(app: &TestApp, token: &str, name: &str, body: Value) -> (u16, Value) {
    app.run_query(token, name, &body).json().await
}

#[tokio::test]
async fn the_list_shows_the_shipped_queries_with_their_parameters() {
    // Arrange
    let app = crate::app::spawn_app().await;

    // Act
    let (status, body) = app.list_queries(ALICE).json().await;

    // Assert
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["next_page_token"], Value::Null);
    let items = body["items"].as_array().unwrap();
    let names: Vec<&str> = items.iter().map(|q| q["name"].as_str().unwrap()).collect();
    for expected in [
        "orders_per_day",
        "product_price_bands",
        "revenue_by_category",
        "top_customers",
    ] {
        assert!(names.contains(&expected), "{names:?}");
    }
    let bands = items
        .iter()
        .find(|q| q["name"] == "product_price_bands")
        .unwrap();
    assert_eq!(bands["run_as"], "app");
    assert_eq!(bands["cache_ttl_secs"], 3600);
    assert_eq!(
        bands["parameters"][0],
        json!({"name": "min_price", "type": "DECIMAL(10,2)", "default": "0.00", "required": false,
               "description": "Products cheaper than this are left out."})
    );
    let per_day = items
        .iter()
        .find(|q| q["name"] == "orders_per_day")
        .unwrap();
    assert_eq!(per_day["run_as"], "user");
    assert_eq!(per_day["parameters"][0]["required"], true);
    assert_eq!(per_day["parameters"][0]["default"], Value::Null);
    let top = items.iter().find(|q| q["name"] == "top_customers").unwrap();
    assert_eq!(top["parameters"][0]["default"], 10);
}

#[tokio::test]
async fn a_user_query_runs_with_the_callers_token_and_types_its_values() {
    // Arrange
    let q = spawn_with_queries(vec![]).await;

    // Act
    let (status, body) = run(&q.app, ALICE, "customers", json!({})).await;

    // Assert
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["query"], "customers");
    assert_eq!(body["cached"], false);
    assert_eq!(body["row_count"], 25);
    assert_eq!(body["total_row_count"], 25);
    assert_eq!(body["truncated"], false);
    assert_eq!(body["next_page_token"], Value::Null);
    assert_eq!(body["columns"][0]["name"], "id");
    assert_eq!(body["columns"][0]["type_text"], "BIGINT");
    assert_eq!(
        body["rows"][0],
        json!([
            1,
            "Ada Lovelace",
            "ada.lovelace@example.org",
            "2025-02-04",
            true,
            1652.97
        ])
    );
    assert!(body["statement_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(body["executed_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(statements_by(&q.app, "alice@example.com"), 1);
    assert_eq!(statements_by(&q.app, "dbapp-sp"), 0);
}

#[tokio::test]
async fn an_app_query_runs_as_the_service_principal_and_is_shared() {
    // Arrange
    let q = spawn_with_queries(vec![]).await;

    // Act
    let (alice_status, alice) = run(&q.app, ALICE, "products", json!({})).await;
    let (bob_status, bob) = run(&q.app, BOB, "products", json!({})).await;

    // Assert: one statement, as the app; Bob is served Alice's run from the shared cache.
    assert_eq!((alice_status, bob_status), (200, 200), "{alice} {bob}");
    assert_eq!(alice["cached"], false);
    assert_eq!(bob["cached"], true);
    assert_eq!(bob["statement_id"], alice["statement_id"]);
    assert_eq!(alice["rows"][0], json!([1, "Notebook", 12.5, "stationery"]));
    assert_eq!(statements_by(&q.app, "dbapp-sp"), 1);
    assert_eq!(statements_by(&q.app, "alice@example.com"), 0);
    let metrics = q.app.state.metrics.render();
    assert!(
        metrics.contains("query_cache_hits_total{query=\"products\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("query_cache_misses_total{query=\"products\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_user_query_result_is_never_served_to_another_user() {
    // Arrange
    let q = spawn_with_queries(vec![]).await;

    // Act
    let (_, first) = run(&q.app, ALICE, "customers", json!({})).await;
    let (_, again) = run(&q.app, ALICE, "customers", json!({})).await;
    let (_, bob) = run(&q.app, BOB, "customers", json!({})).await;

    // Assert
    assert_eq!(first["cached"], false);
    assert_eq!(again["cached"], true);
    assert_eq!(again["statement_id"], first["statement_id"]);
    assert_eq!(bob["cached"], false, "{bob}");
    assert_ne!(bob["statement_id"], first["statement_id"]);
    assert_eq!(statements_by(&q.app, "alice@example.com"), 1);
    assert_eq!(statements_by(&q.app, "bob@example.com"), 1);
}

#[tokio::test]
async fn a_cached_result_expires_after_its_ttl() {
    // Arrange
    let q = spawn_with_queries(vec![]).await;
    let (_, first) = run(&q.app, ALICE, "short", json!({})).await;
    let (_, hit) = run(&q.app, ALICE, "short", json!({})).await;
    assert_eq!(
        (first["cached"].clone(), hit["cached"].clone()),
        (json!(false), json!(true))
    );

    // Act: the query's TTL is one second; let it pass.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let (status, after) = run(&q.app, ALICE, "short", json!({})).await;

    // Assert
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["cached"], false);
    assert_eq!(statements_by(&q.app, "alice@example.com"), 2);
}

#[tokio::test]
async fn pages_are_served_from_the_cached_result() {
    // Arrange
    let q = spawn_with_queries(vec![]).await;

    // Act
    let (_, one) = run(&q.app, ALICE, "customers", json!({"limit": 10})).await;
    let token = one["next_page_token"].as_str().unwrap().to_owned();
    let (_, two) = run(
        &q.app,
        ALICE,
        "customers",
        json!({"limit": 10, "page_token": token}),
    )
    .await;
    let token = two["next_page_token"].as_str().unwrap().to_owned();
    let (_, three) = run(
        &q.app,
        ALICE,
        "customers",
        json!({"limit": 10, "page_token": token}),
    )
    .await;

    // Assert
    assert_eq!(one["row_count"], 10);
    assert_eq!(one["total_row_count"], 25);
    assert_eq!(two["rows"][0][0], 11);
    assert_eq!(two["cached"], true);
    assert_eq!(three["row_count"], 5);
    assert_eq!(three["rows"][4][0], 25);
    assert_eq!(three["next_page_token"], Value::Null);
    assert_eq!(statements_by(&q.app, "alice@example.com"), 1);
    let garbage = q
        .app
        .run_query(ALICE, "customers", &json!({"page_token": "nope"}))
        .send()
        .await;
    let body = assert_error(garbage, 400, "INVALID_REQUEST").await;
    assert_eq!(body["detail"]["field"], "page_token");
}

#[tokio::test]
async fn the_row_cap_truncates_the_result_and_says_so() {
    // Arrange
    let q = spawn_with_queries(vec![("DBAPP_QUERY_ROW_LIMIT", "5".to_owned())]).await;

    // Act
    let (status, body) = run(&q.app, ALICE, "customers", json!({})).await;

    // Assert
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total_row_count"], 5);
    assert_eq!(body["truncated"], true);
}

#[tokio::test]
async fn bad_parameters_are_refused_naming_the_parameter() {
    // Arrange
    let q = spawn_with_queries(vec![]).await;
    let cases = [
        (json!({"n": 1, "nope": 2}), "parameters.nope"),
        (json!({"day": "2026-01-02"}), "parameters.n"),
        (json!({"n": "5"}), "parameters.n"),
        (json!({"n": 2_147_483_648_i64}), "parameters.n"),
        (json!({"n": 5, "day": "2026-02-30"}), "parameters.day"),
        (json!({"n": 5, "active": "yes"}), "parameters.active"),
    ];
    for (parameters, field) in cases {
        // Act
        let response = q
            .app
            .run_query(ALICE, "params", &json!({ "parameters": parameters }))
            .send()
            .await;

        // Assert
        let body = assert_error(response, 400, "INVALID_REQUEST").await;
        assert_eq!(body["detail"]["field"], field, "{body}");
    }
    let response = q
        .app
        .run_query(ALICE, "params", &json!({"parameters": [1]}))
        .send()
        .await;
    let body = assert_error(response, 400, "INVALID_REQUEST").await;
    assert_eq!(body["detail"]["field"], "parameters");
    let response = q
        .app
        .run_query(ALICE, "customers", &json!({"limit": 0}))
        .send()
        .await;
    let body = assert_error(response, 400, "INVALID_REQUEST").await;
    assert_eq!(body["detail"]["field"], "limit");
    let response = q
        .app
        .run_query(ALICE, "nothing-here", &json!({}))
        .send()
        .await;
    assert_error(response, 404, "QUERY_NOT_FOUND").await;
    assert_eq!(statements_by(&q.app, "alice@example.com"), 0);
}

#[tokio::test]
async fn an_app_query_without_app_credentials_is_503_and_never_uses_the_user() {
    // Arrange: no DATABRICKS_CLIENT_ID/SECRET, no token: the server has no identity of its own.
    let queries = query_dir(&[("products.sql", PRODUCTS), ("customers.sql", CUSTOMERS)]);
    let emulator = dbapp_emulator::start_local(EmulatorConfig::default())
        .await
        .unwrap();
    let settings = Settings::load(&Environment::from_pairs(vec![
        ("DATABRICKS_HOST", emulator.base_url().to_owned()),
        ("DATABRICKS_WAREHOUSE_ID", "dev-warehouse".to_owned()),
        ("DATABRICKS_APP_NAME", "dbapp-tests".to_owned()),
        ("DBAPP_QUERIES_DIR", queries.path().display().to_string()),
    ]))
    .unwrap();
    let app = start_server(emulator, settings, None).await;

    // Act
    let response = app.run_query(ALICE, "products", &json!({})).send().await;
    let (user_status, _) = app.run_query(ALICE, "customers", &json!({})).json().await;

    // Assert
    assert_error(response, 503, "APP_CREDENTIALS_NOT_CONFIGURED").await;
    assert_eq!(user_status, 200);
    assert_eq!(statements_by(&app, "alice@example.com"), 1);
}

#[tokio::test]
async fn a_starting_warehouse_answers_202_with_a_run_only_its_caller_can_poll() {
    // Arrange: the warehouse is stopped, so the statement waits while it starts (1.5 s in the
    // fixture), far longer than the 50 ms the server waits before answering 202.
    let q = spawn_with_queries(vec![("DBAPP_QUERY_PENDING_WAIT_MS", "50".to_owned())]).await;
    q.app
        .emulator
        .set_warehouse_state("dev-warehouse", WarehouseState::Stopped)
        .unwrap();

    // Act
    let response = q
        .app
        .run_query(ALICE, "customers", &json!({"limit": 5}))
        .send()
        .await;

    // Assert
    assert_eq!(response.status().as_u16(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["state"], "PENDING");
    assert_eq!(body["warehouse_state"], "STARTING");
    assert_eq!(body["poll_after_ms"], 1000);
    let run_id = body["run_id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/api/queries/customers/runs/{run_id}"));

    let other = q.app.get_query_run(BOB, "customers", &run_id).send().await;
    assert_error(other, 404, "QUERY_RUN_NOT_FOUND").await;
    let wrong_query = q.app.get_query_run(ALICE, "products", &run_id).send().await;
    assert_error(wrong_query, 404, "QUERY_RUN_NOT_FOUND").await;

    // Poll as a client would, honouring poll_after_ms, until the warehouse has started.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let result = loop {
        let (status, body) = q
            .app
            .get_query_run(ALICE, "customers", &run_id)
            .json()
            .await;
        match status {
            202 => {
                assert_eq!(body["run_id"], run_id.as_str());
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the run never finished"
                );
                let wait = body["poll_after_ms"].as_u64().unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            }
            200 => break body,
            other => panic!("unexpected {other}: {body}"),
        }
    };
    assert_eq!(result["row_count"], 5);
    assert_eq!(result["total_row_count"], 25);
    assert_eq!(result["cached"], false);
    // The run was answered: it is gone, and its result is cached.
    let again = q
        .app
        .get_query_run(ALICE, "customers", &run_id)
        .send()
        .await;
    assert_error(again, 404, "QUERY_RUN_NOT_FOUND").await;
    let (_, cached) = run(&q.app, ALICE, "customers", json!({})).await;
    assert_eq!(cached["cached"], true);
    assert_eq!(statements_by(&q.app, "alice@example.com"), 1);
}

#[tokio::test]
async fn a_malformed_query_file_stops_the_start_naming_file_and_line() {
    // Arrange
    let queries = query_dir(&[
        ("customers.sql", CUSTOMERS),
        (
            "broken.sql",
            "-- @title Broken\n-- @run_as user\n-- @cache_ttl_secs 5\nSELECT * FROM t WHERE id = :id\n",
        ),
    ]);
    let settings = Settings::load(&Environment::from_pairs(vec![
        ("DATABRICKS_HOST", "http://127.0.0.1:9".to_owned()),
        ("DATABRICKS_CLIENT_ID", "dbapp-sp".to_owned()),
        ("DATABRICKS_CLIENT_SECRET", "dev-secret".to_owned()),
        ("DATABRICKS_APP_NAME", "dbapp-tests".to_owned()),
        ("DBAPP_QUERIES_DIR", queries.path().display().to_string()),
    ]))
    .unwrap();

    // Act
    let error = Application::build(settings, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .unwrap_err();

    // Assert
    let message = error.to_string();
    assert!(message.contains("broken.sql, line 4"), "{message}");
    assert!(
        message.contains(":id is used but not declared"),
        "{message}"
    );
}

#[test]
fn query_limits_outside_their_bounds_are_refused_at_start() {
    for (variable, value) in [
        ("DBAPP_QUERY_ROW_LIMIT", "0"),
        ("DBAPP_QUERY_ROW_LIMIT", "1000001"),
        ("DBAPP_QUERY_PENDING_WAIT_MS", "0"),
    ] {
        let error = Settings::load(&Environment::from_pairs(vec![(variable, value.to_owned())]))
            .unwrap_err();
        assert_eq!(error.variables, vec![variable.to_owned()], "{error}");
    }
}

#[tokio::test]
async fn the_shipped_queries_run_with_typed_parameters() {
    // Arrange
    let app = crate::app::spawn_app().await;

    // Act
    let (top_status, top) = run(
        &app,
        ALICE,
        "top_customers",
        json!({"parameters": {"n": 3}}),
    )
    .await;
    let (days_status, days) = run(
        &app,
        ALICE,
        "orders_per_day",
        json!({"parameters": {"start_date": "2026-02-01", "end_date": "2026-02-28"}}),
    )
    .await;
    let (bars_status, bars) = run(&app, ALICE, "revenue_by_category", json!({})).await;
    let (bands_status, bands) = run(
        &app,
        BOB,
        "product_price_bands",
        json!({"parameters": {"min_price": "10"}}),
    )
    .await;
    let denied = app.run_query(BOB, "top_customers", &json!({})).send().await;

    // Assert
    assert_eq!(top_status, 200, "{top}");
    assert_eq!(top["row_count"], 3);
    let amounts: Vec<f64> = top["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[3].as_f64().unwrap())
        .collect();
    assert!(amounts.windows(2).all(|w| w[0] >= w[1]), "{amounts:?}");
    assert_eq!(days_status, 200, "{days}");
    for row in days["rows"].as_array().unwrap() {
        let day = row[0].as_str().unwrap();
        assert!(day.starts_with("2026-02-"), "{day}");
    }
    assert_eq!(bars_status, 200, "{bars}");
    assert!(bars["row_count"].as_u64().unwrap() >= 2);
    assert_eq!(bands_status, 200, "{bands}");
    for row in bands["rows"].as_array().unwrap() {
        assert!(row[2].as_f64().unwrap() >= 10.0, "{row}");
    }
    assert_error(denied, 403, "PERMISSION_DENIED").await;
    assert_eq!(statements_by(&app, "dbapp-sp"), 1);
}
