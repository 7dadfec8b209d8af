//! The OpenAPI document (an insta snapshot) and the embedded API docs.

use crate::app::spawn_app;

#[tokio::test]
async fn the_openapi_document_is_served_and_matches_the_snapshot() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let (status, served) = app.get_json("/api/openapi.json", None).await;

    // Assert
    assert_eq!(status, 200);
    assert_eq!(
        served,
        serde_json::to_value(dbapp_server::openapi::openapi()).unwrap()
    );
    assert!(served["openapi"].as_str().unwrap().starts_with("3.1"));
    insta::assert_json_snapshot!("openapi", served);
}

#[test]
fn the_document_lists_every_route_and_error_code_of_the_contract() {
    let doc = serde_json::to_value(dbapp_server::openapi::openapi()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/health",
        "/api/health",
        "/ready",
        "/metrics",
        "/api/user/auth/status",
        "/api/user/me",
        "/api/user/me/workspace",
        "/api/unity-catalog/catalogs",
        "/api/unity-catalog/catalogs/{catalog}/schemas",
        "/api/unity-catalog/catalogs/{catalog}/schemas/{schema}/tables",
        "/api/unity-catalog/catalogs/{catalog}/schemas/{schema}/tables/{table}",
        "/api/unity-catalog/catalogs/{catalog}/schemas/{schema}/tables/{table}/rows",
        "/api/model-serving/endpoints",
        "/api/model-serving/endpoints/{name}",
        "/api/model-serving/endpoints/{name}/schema",
        "/api/model-serving/endpoints/{name}/invocations",
        "/api/model-serving/logs",
        "/api/preferences",
        "/api/preferences/{key}",
        "/api/v1/metrics/usage-events",
        "/api/v1/metrics/usage/count",
        "/api/v1/metrics/performance",
        "/api/v1/metrics/usage",
        "/api/v1/metrics/time-series",
    ] {
        assert!(paths.contains_key(path), "{path} missing");
    }
    let codes = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap();
    assert_eq!(codes.len(), dbapp_server::ErrorCode::ALL.len());
    // Every $ref resolves.
    let text = doc.to_string();
    for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = part.split('"').next().unwrap();
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "dangling $ref {name}"
        );
    }
}

#[tokio::test]
async fn docs_are_served_from_embedded_assets() {
    let app = spawn_app().await;
    let response = app.get("/docs/", None).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.to_lowercase().contains("swagger"), "{html}");
    assert!(!html.contains("cdn."), "no CDN");
    let css = app.get("/docs/swagger-ui.css", None).send().await.unwrap();
    assert_eq!(css.status(), 200);
}
