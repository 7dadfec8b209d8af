//! Unity Catalog: catalogs, schemas and tables as the user, pagination, identifiers, table rows
//! through the SQL warehouse, and upstream failures.

use dbapp_emulator::FaultRule;
use serde_json::json;

use crate::app::{ALICE, BOB, Options, assert_error, spawn_app, spawn_app_with};

fn names(body: &serde_json::Value) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn alice_and_bob_see_different_catalogs_and_schemas() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let (_, alice) = app.list_catalogs(ALICE, "").json().await;
    let (_, bob) = app.list_catalogs(BOB, "").json().await;
    let (_, alice_schemas) = app
        .get_json("/api/unity-catalog/catalogs/main/schemas", Some(ALICE))
        .await;
    let (_, bob_schemas) = app
        .get_json("/api/unity-catalog/catalogs/main/schemas", Some(BOB))
        .await;

    // Assert
    assert!(names(&alice).contains(&"samples".to_owned()), "{alice}");
    assert!(!names(&bob).contains(&"samples".to_owned()), "{bob}");
    assert!(names(&alice_schemas).contains(&"sales".to_owned()));
    assert!(
        !names(&bob_schemas).contains(&"sales".to_owned()),
        "{bob_schemas}"
    );
    assert_eq!(alice["next_page_token"], serde_json::Value::Null);
    let first = &alice["items"][0];
    for key in ["name", "comment", "owner", "catalog_type"] {
        assert!(first.get(key).is_some(), "{key} in {first}");
    }
    assert!(
        alice_schemas["items"][0]["full_name"]
            .as_str()
            .unwrap()
            .starts_with("main.")
    );
}

#[tokio::test]
async fn pages_follow_limit_and_tokens_across_empty_upstream_pages() {
    // Arrange: the emulator begins lists with empty pages that carry tokens.
    let app = spawn_app().await;
    app.emulator
        .update_settings(|s| {
            s.empty_pages = true;
            s.default_page_size = 1;
        })
        .unwrap();
    let (_, everything) = app.list_catalogs(ALICE, "?limit=1000").json().await;
    let all = names(&everything);
    assert!(all.len() >= 2, "{everything}");

    // Act: one item per page.
    let mut seen = Vec::new();
    let mut path = "/api/unity-catalog/catalogs?limit=1".to_owned();
    for _ in 0..10 {
        let (status, page) = app.get_json(&path, Some(ALICE)).await;
        assert_eq!(status, 200, "{page}");
        assert!(page["items"].as_array().unwrap().len() <= 1);
        seen.extend(names(&page));
        match page["next_page_token"].as_str() {
            Some(token) => path = format!("/api/unity-catalog/catalogs?limit=1&page_token={token}"),
            None => break,
        }
    }
    let (_, skipped) = app.list_catalogs(ALICE, "?offset=1&limit=1").json().await;

    // Assert
    assert_eq!(seen, all);
    assert_eq!(names(&skipped), all[1..2].to_vec());
}

#[tokio::test]
async fn bad_pagination_and_identifiers_are_refused() {
    let app = spawn_app().await;
    let bad = |path: &str| app.get(path, Some(ALICE)).send();
    let body = assert_error(
        bad("/api/unity-catalog/catalogs?limit=0").await.unwrap(),
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(body["detail"]["field"], "limit");
    assert_error(
        bad("/api/unity-catalog/catalogs?limit=abc").await.unwrap(),
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_error(
        bad("/api/unity-catalog/catalogs?page_token=zzz")
            .await
            .unwrap(),
        400,
        "INVALID_REQUEST",
    )
    .await;
    let body = assert_error(
        bad("/api/unity-catalog/catalogs/ma%20in/schemas")
            .await
            .unwrap(),
        400,
        "INVALID_IDENTIFIER",
    )
    .await;
    assert_eq!(body["detail"]["field"], "catalog");
    assert_error(
        bad("/api/unity-catalog/catalogs/main/schemas/a.b/tables")
            .await
            .unwrap(),
        400,
        "INVALID_IDENTIFIER",
    )
    .await;
    assert_error(
        bad("/api/unity-catalog/catalogs/main/schemas/default/tables/x%60y")
            .await
            .unwrap(),
        400,
        "INVALID_IDENTIFIER",
    )
    .await;
}

#[tokio::test]
async fn checks_run_in_a_fixed_order_authentication_first() {
    // Arrange: requests wrong in several ways at once.
    let app = spawn_app().await;
    let schemas = "/api/unity-catalog/catalogs/a.b/schemas?limit=0";
    let rows = "/api/unity-catalog/catalogs/a.b/schemas/s/tables/t/rows?limit=0&offset=-1";

    // Act / Assert: no token beats any malformed input.
    assert_error(
        app.get(schemas, None).send().await.unwrap(),
        401,
        "AUTH_MISSING",
    )
    .await;
    assert_error(
        app.get(rows, None).send().await.unwrap(),
        401,
        "AUTH_MISSING",
    )
    .await;
    // Then a list checks the path's names before its paging...
    let body = assert_error(
        app.get(schemas, Some(ALICE)).send().await.unwrap(),
        400,
        "INVALID_IDENTIFIER",
    )
    .await;
    assert_eq!(body["detail"]["field"], "catalog");
    // ...while a preview checks `limit`, then `offset`, then the names.
    let body = assert_error(
        app.get(rows, Some(ALICE)).send().await.unwrap(),
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(body["detail"]["field"], "limit");
    let rows = "/api/unity-catalog/catalogs/a.b/schemas/s/tables/t/rows?offset=-1";
    let body = assert_error(
        app.get(rows, Some(ALICE)).send().await.unwrap(),
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(body["detail"]["field"], "offset");
    // A name that is not UTF-8 once decoded is refused with the wording it always had.
    let body = assert_error(
        app.get("/api/unity-catalog/catalogs/%FF/schemas", Some(ALICE))
            .send()
            .await
            .unwrap(),
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(
        body["message"],
        "Invalid request: path: Invalid URL: Invalid UTF-8 in `catalog`"
    );
}

#[tokio::test]
async fn missing_and_forbidden_resources_have_their_codes() {
    let app = spawn_app().await;
    assert_error(
        app.get("/api/unity-catalog/catalogs/nope/schemas", Some(ALICE))
            .send()
            .await
            .unwrap(),
        404,
        "CATALOG_NOT_FOUND",
    )
    .await;
    assert_error(
        app.get(
            "/api/unity-catalog/catalogs/main/schemas/nope/tables",
            Some(ALICE),
        )
        .send()
        .await
        .unwrap(),
        404,
        "SCHEMA_NOT_FOUND",
    )
    .await;
    assert_error(
        app.get(
            "/api/unity-catalog/catalogs/main/schemas/default/tables/nope",
            Some(ALICE),
        )
        .send()
        .await
        .unwrap(),
        404,
        "TABLE_NOT_FOUND",
    )
    .await;
    let denied = app
        .get(
            "/api/unity-catalog/catalogs/main/schemas/sales/tables",
            Some(BOB),
        )
        .send()
        .await
        .unwrap();
    let status = denied.status().as_u16();
    assert!(status == 403 || status == 404, "{status}");
    if status == 403 {
        assert_error(denied, 403, "PERMISSION_DENIED").await;
    }
}

#[tokio::test]
async fn a_table_has_columns_and_timestamps() {
    let app = spawn_app().await;
    let (_, tables) = app
        .get_json(
            "/api/unity-catalog/catalogs/main/schemas/default/tables",
            Some(ALICE),
        )
        .await;
    let table = tables["items"][0]["name"].as_str().unwrap().to_owned();
    let (status, body) = app
        .get_json(
            &format!("/api/unity-catalog/catalogs/main/schemas/default/tables/{table}"),
            Some(ALICE),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["full_name"], format!("main.default.{table}"));
    let column = &body["columns"][0];
    for key in [
        "name",
        "position",
        "type_text",
        "type_name",
        "nullable",
        "comment",
    ] {
        assert!(column.get(key).is_some(), "{key} in {column}");
    }
    assert!(body.get("created_at").is_some() && body.get("updated_at").is_some());
}

#[tokio::test]
async fn rows_are_typed_paged_and_read_as_the_user() {
    // Arrange
    let app = spawn_app().await;
    let (_, tables) = app
        .get_json(
            "/api/unity-catalog/catalogs/main/schemas/default/tables",
            Some(ALICE),
        )
        .await;
    let table = tables["items"][0]["name"].as_str().unwrap().to_owned();
    let base = format!("/api/unity-catalog/catalogs/main/schemas/default/tables/{table}/rows");

    // Act
    let (status, first) = app.get_json(&format!("{base}?limit=1"), Some(ALICE)).await;
    let (_, all) = app.get_json(&base, Some(ALICE)).await;

    // Assert
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["row_count"], 1);
    assert_eq!(first["rows"].as_array().unwrap().len(), 1);
    let total = all["row_count"].as_u64().unwrap();
    assert_eq!(first["has_more"], total > 1);
    assert_eq!(all["has_more"], false);
    assert!(first["statement_id"].is_string());
    assert!(first["execution_time_ms"].is_u64());
    assert!(!first["columns"].as_array().unwrap().is_empty());
    let statements = app.emulator.requests("/api/2.0/sql/statements");
    assert!(
        statements
            .iter()
            .all(|s| s.principal.as_deref() == Some("alice@example.com")),
        "{statements:?}"
    );
    let (_, offset) = app
        .get_json(&format!("{base}?limit=1&offset=1"), Some(ALICE))
        .await;
    if total > 1 {
        assert_eq!(offset["rows"][0], all["rows"][1]);
    }
}

#[tokio::test]
async fn rows_without_a_warehouse_are_warehouse_not_configured() {
    let app = spawn_app_with(Options {
        warehouse: false,
        ..Options::default()
    })
    .await;
    let response = app
        .get(
            "/api/unity-catalog/catalogs/main/schemas/default/tables/x/rows",
            Some(ALICE),
        )
        .send()
        .await
        .unwrap();
    assert_error(response, 503, "WAREHOUSE_NOT_CONFIGURED").await;
}

#[tokio::test]
async fn a_429_fails_at_once_after_exactly_one_upstream_call() {
    // Arrange
    let app = spawn_app().await;
    app.me(ALICE).json().await; // identity cached
    app.emulator
        .inject_fault(
            FaultRule::new("/api/2.1/unity-catalog/*")
                .status(429)
                .retry_after_secs(9),
        )
        .unwrap();

    // Act
    let response = app.list_catalogs(ALICE, "").send().await;

    // Assert
    let body = assert_error(response, 429, "RATE_LIMITED").await;
    assert_eq!(body["retry_after"], 9);
    assert_eq!(app.emulator.requests("/api/2.1/unity-catalog").len(), 1);
}

#[tokio::test]
async fn upstream_failures_and_timeouts_have_their_codes() {
    let app = spawn_app().await;
    app.emulator
        .inject_fault(FaultRule::new("/api/2.1/unity-catalog/catalogs").status(500))
        .unwrap();
    assert_error(
        app.list_catalogs(ALICE, "").send().await,
        502,
        "UPSTREAM_ERROR",
    )
    .await;
    app.emulator.clear_faults();
    app.emulator
        .inject_fault(FaultRule::new("/api/2.1/unity-catalog/catalogs").status(504))
        .unwrap();
    assert_error(
        app.list_catalogs(ALICE, "").send().await,
        504,
        "UPSTREAM_TIMEOUT",
    )
    .await;
}

#[tokio::test]
async fn an_expired_token_on_a_resource_call_is_auth_expired() {
    // Arrange: the identity is cached, then the token expires.
    let app = spawn_app().await;
    let token = app
        .emulator
        .mint_token("bob@example.com", std::time::Duration::from_secs(600))
        .unwrap();
    assert_eq!(app.me(&token).json().await.0, 200);
    app.emulator.expire_token(&token).await.unwrap();

    // Act / Assert: refused on the resource call, and at once on the next identity check.
    assert_error(
        app.list_catalogs(&token, "").send().await,
        401,
        "AUTH_EXPIRED",
    )
    .await;
    assert_error(app.me(&token).send().await, 401, "AUTH_EXPIRED").await;
}

/// A server whose workspace's `main.default` schema holds `count` tables (`t0000`, `t0001`, …),
/// served by Unity Catalog in pages of at most `page_size`.
async fn app_with_tables(count: usize, page_size: usize) -> crate::app::TestApp {
    let mut fixture = dbapp_emulator::Fixture::default();
    fixture.settings.max_page_size = page_size;
    let schema = fixture
        .catalogs
        .iter_mut()
        .find(|c| c.name == "main")
        .and_then(|c| c.schemas.iter_mut().find(|s| s.name == "default"))
        .expect("the default fixture has main.default");
    let template = schema.tables[0].clone();
    schema.tables = (0..count)
        .map(|i| dbapp_emulator::fixture::Table {
            name: format!("t{i:04}"),
            ..template.clone()
        })
        .collect();
    // The Genie spaces cover tables of main.default that are gone now.
    fixture.genie_spaces.clear();
    let emulator = dbapp_emulator::start_local(dbapp_emulator::EmulatorConfig {
        fixture,
        ..Default::default()
    })
    .await
    .expect("emulator starts");
    // No store: these tests read Unity Catalog only.
    let settings = crate::app::settings_for(
        &emulator,
        vec![("DATABRICKS_APP_NAME", "dbapp-tests".to_owned())],
    );
    crate::app::start_server(emulator, settings, None).await
}

const TABLES: &str = "/api/unity-catalog/catalogs/main/schemas/default/tables";

#[tokio::test]
async fn a_deep_offset_finds_the_item_that_exists() {
    // Arrange: 1 500 tables; Unity Catalog pages hold 1 000.
    let app = app_with_tables(1_500, 1_000).await;

    // Act
    let (status, page) = app
        .get_json(&format!("{TABLES}?limit=1&offset=1400"), Some(ALICE))
        .await;

    // Assert: the 1 401st table, and more behind it.
    assert_eq!(status, 200, "{page}");
    assert_eq!(names(&page), ["t1400"]);
    assert!(page["next_page_token"].is_string(), "{page}");
    assert!(app.emulator.requests("/api/2.1/unity-catalog/tables").len() <= 2);
}

#[tokio::test]
async fn one_request_makes_a_bounded_number_of_upstream_calls_and_never_loses_the_rest() {
    // Arrange: Unity Catalog answers one table per page.
    let app = app_with_tables(40, 1).await;
    app.emulator.clear_requests();

    // Act: skip 25 tables, then follow the tokens.
    let (status, first) = app
        .get_json(&format!("{TABLES}?limit=1&offset=25"), Some(ALICE))
        .await;
    let calls = app.emulator.requests("/api/2.1/unity-catalog/tables").len();
    let mut page = first.clone();
    let mut seen = names(&first);
    while seen.is_empty() {
        let token = page["next_page_token"]
            .as_str()
            .expect("more to come")
            .to_owned();
        page = app
            .get_json(&format!("{TABLES}?limit=1&page_token={token}"), Some(ALICE))
            .await
            .1;
        seen.extend(names(&page));
    }

    // Assert: the first answer stopped at the call budget without claiming the end, and the
    // walk reached table 25.
    assert_eq!(status, 200, "{first}");
    assert_eq!(calls, 10, "the call budget per request");
    assert!(names(&first).is_empty());
    assert!(first["next_page_token"].is_string(), "{first}");
    assert_eq!(seen, ["t0025"]);
}

#[tokio::test]
async fn a_preview_offset_beyond_an_int_parameter_is_refused() {
    // Arrange
    let app = spawn_app().await;
    let path = "/api/unity-catalog/catalogs/main/schemas/default/tables/customers/rows";

    // Act
    let response = app
        .get(&format!("{path}?offset=2147483648"), Some(ALICE))
        .send()
        .await
        .unwrap();

    // Assert
    let body = assert_error(response, 400, "INVALID_REQUEST").await;
    assert_eq!(body["detail"]["field"], "offset");
    assert!(app.emulator.requests("/api/2.0/sql/statements").is_empty());
}

#[tokio::test]
async fn a_denial_names_the_missing_privilege_and_its_securable() {
    // Arrange: bob may use catalog main, but not its schema sales.
    let app = spawn_app().await;

    // Act
    let denied = app
        .get(
            "/api/unity-catalog/catalogs/main/schemas/sales/tables/orders",
            Some(BOB),
        )
        .send()
        .await
        .unwrap();

    // Assert: what is missing, in the envelope's own words.
    let body = assert_error(denied, 403, "PERMISSION_DENIED").await;
    assert_eq!(
        body["detail"],
        json!({"privilege": "USE SCHEMA", "securable_type": "schema", "securable": "main.sales"}),
        "{body}"
    );
    assert_eq!(
        body["message"],
        "You do not have the USE SCHEMA privilege on schema main.sales."
    );
}
