//! Unity Catalog: lists, pagination (including empty pages with tokens), per-user visibility,
//! resource-specific 404s and 403s.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{ADMIN, ALICE, BOB, TestEmulator, spawn};

fn names(body: &Value, key: &str) -> Vec<String> {
    body[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} in {body}"))
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Follows `next_page_token` until it is absent, returning every name and the number of pages.
async fn collect(te: &TestEmulator, path: &str, key: &str, token: &str) -> (Vec<String>, usize) {
    let mut all = Vec::new();
    let mut page_token: Option<String> = None;
    for pages in 1..=100 {
        let separator = if path.contains('?') { '&' } else { '?' };
        let url = match &page_token {
            Some(t) => format!("{path}{separator}max_results=1&page_token={t}"),
            None => format!("{path}{separator}max_results=1"),
        };
        let (status, body) = te.get(&url, token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        all.extend(names(&body, key));
        match body.get("next_page_token").and_then(Value::as_str) {
            Some(t) => page_token = Some(t.to_owned()),
            None => return (all, pages),
        }
    }
    panic!("pagination did not end");
}

#[tokio::test]
async fn each_user_sees_only_the_catalogs_granted_to_them() {
    // Arrange
    let te = spawn().await;

    // Act
    let (_, alice) = te.get("/api/2.1/unity-catalog/catalogs", ALICE).await;
    let (_, bob) = te.get("/api/2.1/unity-catalog/catalogs", BOB).await;
    let (_, admin) = te.get("/api/2.1/unity-catalog/catalogs", ADMIN).await;

    // Assert
    assert_eq!(names(&alice, "catalogs"), ["main", "samples"]);
    assert_eq!(names(&bob, "catalogs"), ["main"]);
    assert_eq!(names(&admin, "catalogs"), ["main", "samples"]);
    assert!(alice.get("next_page_token").is_none());
}

#[tokio::test]
async fn bob_sees_main_default_but_not_main_sales() {
    // Arrange
    let te = spawn().await;

    // Act
    let (_, alice) = te
        .get("/api/2.1/unity-catalog/schemas?catalog_name=main", ALICE)
        .await;
    let (_, bob) = te
        .get("/api/2.1/unity-catalog/schemas?catalog_name=main", BOB)
        .await;
    let (tables_status, tables) = te
        .get(
            "/api/2.1/unity-catalog/tables?catalog_name=main&schema_name=sales",
            BOB,
        )
        .await;
    let (get_status, _) = te
        .get("/api/2.1/unity-catalog/tables/main.sales.orders", BOB)
        .await;

    // Assert
    assert_eq!(names(&alice, "schemas"), ["default", "sales"]);
    assert_eq!(names(&bob, "schemas"), ["default"]);
    assert_eq!(tables_status, StatusCode::FORBIDDEN);
    assert_eq!(tables["error_code"], "PERMISSION_DENIED");
    assert_eq!(get_status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_catalog_bob_cannot_use_is_403_and_a_missing_one_is_404() {
    // Arrange
    let te = spawn().await;

    // Act
    let (denied, denied_body) = te
        .get("/api/2.1/unity-catalog/schemas?catalog_name=samples", BOB)
        .await;
    let (missing, missing_body) = te
        .get("/api/2.1/unity-catalog/schemas?catalog_name=nope", BOB)
        .await;
    let (get_missing, get_body) = te.get("/api/2.1/unity-catalog/catalogs/nope", ALICE).await;

    // Assert
    assert_eq!(denied, StatusCode::FORBIDDEN);
    assert_eq!(denied_body["error_code"], "PERMISSION_DENIED");
    assert_eq!(missing, StatusCode::NOT_FOUND);
    assert_eq!(missing_body["error_code"], "CATALOG_DOES_NOT_EXIST");
    assert_eq!(get_missing, StatusCode::NOT_FOUND);
    assert_eq!(get_body["message"], "Catalog 'nope' does not exist.");
}

#[tokio::test]
async fn missing_schemas_and_tables_have_their_own_codes() {
    let te = spawn().await;
    let (s, schema) = te
        .get("/api/2.1/unity-catalog/schemas/main.nope", ALICE)
        .await;
    let (t, table) = te
        .get("/api/2.1/unity-catalog/tables/main.default.nope", ALICE)
        .await;
    let (l, list) = te
        .get(
            "/api/2.1/unity-catalog/tables?catalog_name=main&schema_name=nope",
            ALICE,
        )
        .await;
    assert_eq!(
        (s, schema["error_code"].as_str()),
        (StatusCode::NOT_FOUND, Some("SCHEMA_DOES_NOT_EXIST"))
    );
    assert_eq!(
        (t, table["error_code"].as_str()),
        (StatusCode::NOT_FOUND, Some("TABLE_DOES_NOT_EXIST"))
    );
    assert_eq!(
        (l, list["error_code"].as_str()),
        (StatusCode::NOT_FOUND, Some("SCHEMA_DOES_NOT_EXIST"))
    );
}

#[tokio::test]
async fn table_get_returns_columns_in_order_with_types() {
    // Arrange
    let te = spawn().await;

    // Act
    let (status, table) = te
        .get(
            "/api/2.1/unity-catalog/tables/main.default.customers",
            ALICE,
        )
        .await;

    // Assert
    assert_eq!(status, StatusCode::OK);
    assert_eq!(table["full_name"], "main.default.customers");
    assert_eq!(table["table_type"], "MANAGED");
    assert_eq!(table["data_source_format"], "DELTA");
    let columns = table["columns"].as_array().unwrap();
    assert_eq!(columns[0]["name"], "id");
    assert_eq!(columns[0]["position"], 0);
    assert_eq!(columns[0]["type_name"], "LONG");
    assert_eq!(columns[0]["nullable"], false);
    let type_json: Value = serde_json::from_str(columns[0]["type_json"].as_str().unwrap()).unwrap();
    assert_eq!(type_json["type"], "long");
    assert_eq!(columns[5]["name"], "lifetime_value");
}

#[tokio::test]
async fn pages_of_one_cover_every_table_once() {
    // Arrange
    let te = spawn().await;

    // Act
    let (tables, pages) = collect(
        &te,
        "/api/2.1/unity-catalog/tables?catalog_name=main&schema_name=default",
        "tables",
        ALICE,
    )
    .await;

    // Assert
    assert_eq!(tables, ["customers", "products", "regions"]);
    assert_eq!(pages, 3);
}

#[tokio::test]
async fn empty_pages_that_carry_a_token_do_not_end_the_listing() {
    // Arrange
    let te = spawn().await;
    te.handle
        .update_settings(|s| s.empty_pages = true)
        .expect("valid settings");

    // Act
    let (first_status, first) = te
        .get("/api/2.1/unity-catalog/catalogs?max_results=0", ALICE)
        .await;
    let (catalogs, pages) =
        collect(&te, "/api/2.1/unity-catalog/catalogs", "catalogs", ALICE).await;

    // Assert
    assert_eq!(first_status, StatusCode::OK);
    assert_eq!(first["catalogs"], json!([]));
    assert!(first["next_page_token"].is_string());
    assert_eq!(catalogs, ["main", "samples"]);
    assert_eq!(pages, 4, "empty, main, samples, empty");
}

#[tokio::test]
async fn max_page_size_bounds_what_a_client_asks_for() {
    // Arrange
    let te = spawn().await;
    te.handle
        .update_settings(|s| s.max_page_size = 1)
        .expect("valid settings");

    // Act
    let (_, body) = te
        .get("/api/2.1/unity-catalog/catalogs?max_results=50", ALICE)
        .await;

    // Assert
    assert_eq!(names(&body, "catalogs"), ["main"]);
    assert!(body["next_page_token"].is_string());
}

#[tokio::test]
async fn bad_list_parameters_are_400() {
    let te = spawn().await;
    let (negative, body) = te
        .get("/api/2.1/unity-catalog/catalogs?max_results=-1", ALICE)
        .await;
    let (token, _) = te
        .get(
            "/api/2.1/unity-catalog/catalogs?max_results=1&page_token=xyz",
            ALICE,
        )
        .await;
    let (missing, missing_body) = te.get("/api/2.1/unity-catalog/schemas", ALICE).await;
    let (not_number, _) = te
        .get("/api/2.1/unity-catalog/catalogs?max_results=many", ALICE)
        .await;
    assert_eq!(negative, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE");
    assert_eq!(token, StatusCode::BAD_REQUEST);
    assert_eq!(missing, StatusCode::BAD_REQUEST);
    assert!(
        missing_body["message"]
            .as_str()
            .unwrap()
            .contains("catalog_name")
    );
    assert_eq!(not_number, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn names_are_case_insensitive() {
    let te = spawn().await;
    let (status, table) = te
        .get(
            "/api/2.1/unity-catalog/tables/MAIN.Default.CUSTOMERS",
            ALICE,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(table["full_name"], "main.default.customers");
}
