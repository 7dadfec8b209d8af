//! The OpenAPI document (an insta snapshot) and the embedded API docs.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::app::spawn_app;

/// The response properties a client may not find: the fields serde omits when they are `None`
/// (`skip_serializing_if = "Option::is_none"`), as `(schema, property)`. Every other response
/// property is always sent, `null` included, and must be `required`: otherwise the UI's generated
/// types read `x?: T | null`, and TypeScript stops making the UI handle the `null` the server
/// sends.
const OMITTED_WHEN_NONE: &[(&str, &str)] = &[
    // An unnamed server-sent event has no `event:` line.
    ("SseEvent", "event"),
    ("ErrorBody", "detail"),
    ("ErrorBody", "retry_after"),
    ("TimeSeriesPointItem", "error_rate"),
    ("TimeSeriesPointItem", "events"),
    ("TimeSeriesPointItem", "p50_ms"),
    ("TimeSeriesPointItem", "p95_ms"),
    ("TimeSeriesPointItem", "p99_ms"),
    ("TimeSeriesPointItem", "requests"),
    ("TimeSeriesPointItem", "unique_users"),
];

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
        "/api/unity-catalog/catalogs/{catalog}/schemas/{schema}/volumes",
        "/api/volumes/{catalog}/{schema}/{volume}/files",
        "/api/volumes/{catalog}/{schema}/{volume}/files/content",
        "/api/model-serving/endpoints",
        "/api/model-serving/endpoints/{name}",
        "/api/model-serving/endpoints/{name}/schema",
        "/api/model-serving/endpoints/{name}/invocations",
        "/api/model-serving/logs",
        "/api/preferences",
        "/api/preferences/{key}",
        "/api/conversations",
        "/api/conversations/{id}",
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

#[test]
fn every_response_property_is_required_unless_it_is_omitted_when_none() {
    // Arrange
    let doc = serde_json::to_value(dbapp_server::openapi::openapi()).unwrap();
    let schemas = &doc["components"]["schemas"];
    let mut pending = Vec::new();
    for operation in doc["paths"].as_object().unwrap().values() {
        for operation in operation.as_object().unwrap().values() {
            schema_refs(&operation["responses"], &mut pending);
        }
    }
    let mut responses = BTreeSet::new();
    while let Some(name) = pending.pop() {
        if responses.insert(name.clone()) {
            schema_refs(&schemas[&name], &mut pending);
        }
    }

    // Act
    let mut optional = BTreeSet::new();
    for name in &responses {
        optional_properties(name, &schemas[name], &mut optional);
    }

    // Assert
    let expected: BTreeSet<(String, String)> = OMITTED_WHEN_NONE
        .iter()
        .map(|&(schema, property)| (schema.to_owned(), property.to_owned()))
        .collect();
    assert!(
        responses.contains("ErrorBody") && responses.contains("TimeSeriesPointItem"),
        "the walk must reach the response schemas: {responses:?}"
    );
    assert_eq!(
        optional.difference(&expected).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "always-sent response fields must be #[schema(required)] (or, if serde really omits \
         them, listed in OMITTED_WHEN_NONE)"
    );
    assert_eq!(
        expected.difference(&optional).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "OMITTED_WHEN_NONE names fields that are required or gone: remove them"
    );
}

/// Appends the component schema names `value` refers to, at any depth.
fn schema_refs(value: &Value, names: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(name) = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
            {
                names.push(name.to_owned());
            }
            map.values().for_each(|v| schema_refs(v, names));
        }
        Value::Array(items) => items.iter().for_each(|v| schema_refs(v, names)),
        _ => {}
    }
}

/// Adds `(name, property)` for every property of `schema` (or of a schema inlined in it, as
/// `allOf` parts for flattened fields are) that is not in the `required` list beside it.
fn optional_properties(name: &str, schema: &Value, found: &mut BTreeSet<(String, String)>) {
    match schema {
        Value::Object(map) => {
            if let Some(properties) = map.get("properties").and_then(Value::as_object) {
                let required = map.get("required").and_then(Value::as_array);
                for property in properties.keys() {
                    if !required.is_some_and(|r| r.iter().any(|p| p == property)) {
                        found.insert((name.to_owned(), property.clone()));
                    }
                }
            }
            map.values()
                .for_each(|v| optional_properties(name, v, found));
        }
        Value::Array(items) => items
            .iter()
            .for_each(|v| optional_properties(name, v, found)),
        _ => {}
    }
}
