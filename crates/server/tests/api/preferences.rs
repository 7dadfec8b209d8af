//! Preferences: upsert, read, list and delete per user, validation, and a missing or
//! unreachable store.

use serde_json::json;

use crate::app::{ALICE, BOB, Options, assert_error, spawn_app, spawn_app_with};

#[tokio::test]
async fn preferences_are_upserted_read_listed_and_deleted() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let created = app
        .put_preference(ALICE, "theme", &json!({"mode": "dark"}))
        .send()
        .await;
    let replaced = app
        .put_preference(ALICE, "theme", &json!("light"))
        .send()
        .await;
    let (status, one) = app.get_preference(ALICE, "theme").json().await;
    let (_, list) = app.list_preferences(ALICE).json().await;
    let deleted = app.delete_preference(ALICE, "theme").send().await;
    let again = app.delete_preference(ALICE, "theme").send().await;

    // Assert
    assert_eq!(created.status(), 201);
    assert_eq!(replaced.status(), 200);
    let replaced: serde_json::Value = replaced.json().await.unwrap();
    assert_eq!(replaced["value"], "light");
    assert_eq!(status, 200);
    assert_eq!(one["key"], "theme");
    assert_eq!(one["value"], "light");
    assert!(one["created_at"].as_str().unwrap().ends_with('Z'), "{one}");
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(deleted.status(), 204);
    assert_error(again, 404, "PREFERENCE_NOT_FOUND").await;
}

#[tokio::test]
async fn preferences_are_isolated_between_users() {
    // Arrange
    let app = spawn_app().await;
    app.put_preference(ALICE, "secret", &json!(42)).send().await;

    // Act
    let read = app.get_preference(BOB, "secret").send().await;
    let (_, list) = app.list_preferences(BOB).json().await;
    let delete = app.delete_preference(BOB, "secret").send().await;
    let overwrite = app.put_preference(BOB, "secret", &json!(0)).send().await;

    // Assert
    assert_error(read, 404, "PREFERENCE_NOT_FOUND").await;
    assert_eq!(list["items"], json!([]));
    assert_error(delete, 404, "PREFERENCE_NOT_FOUND").await;
    assert_eq!(overwrite.status(), 201, "bob gets his own key");
    let (_, alice) = app.get_preference(ALICE, "secret").json().await;
    assert_eq!(alice["value"], 42);
}

#[tokio::test]
async fn keys_and_values_are_validated() {
    let app = spawn_app().await;
    let body = assert_error(
        app.put_preference(ALICE, "Bad", &json!(1)).send().await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(body["detail"]["field"], "key");
    let big = json!("x".repeat(100 * 1024));
    let body = assert_error(
        app.put_preference(ALICE, "big", &big).send().await,
        413,
        "PAYLOAD_TOO_LARGE",
    )
    .await;
    assert_eq!(body["detail"]["limit_bytes"], 100 * 1024);
    assert_error(
        app.request(reqwest::Method::PUT, "/api/preferences/x", ALICE)
            .body("1")
            .header("content-type", "text/plain")
            .send()
            .await
            .unwrap(),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    .await;
    assert_error(
        app.request(reqwest::Method::PUT, "/api/preferences/x", ALICE)
            .body("{nope")
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap(),
        400,
        "INVALID_REQUEST",
    )
    .await;
}

#[tokio::test]
async fn without_a_store_preferences_are_storage_not_configured() {
    let app = spawn_app_with(Options {
        store: false,
        ..Options::default()
    })
    .await;
    assert_error(
        app.list_preferences(ALICE).send().await,
        503,
        "STORAGE_NOT_CONFIGURED",
    )
    .await;
}

#[tokio::test]
async fn an_unreachable_database_is_database_unavailable_with_retry_after_5() {
    // Arrange: a Postgres URL where nothing listens.
    let app = spawn_app_with(Options {
        store: false,
        ..Options::default()
    })
    .await;
    let store = dbapp_store::lakebase::open_url(
        &secrecy::SecretString::from("postgres://u:p@127.0.0.1:1/db"),
        &dbapp_store::PoolSettings {
            acquire_timeout: std::time::Duration::from_millis(500),
            ..Default::default()
        },
    )
    .unwrap();
    let state = dbapp_server::AppState::new(
        app.state.settings.clone(),
        app.state.databricks.clone(),
        Some(store),
        dbapp_server::metrics::Metrics::new(10, dbapp_server::config::UserLabels::Hash),
        app.state.queries.catalog.clone(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(dbapp_server::serve(listener, state, std::future::pending()));

    // Act
    let response = reqwest::Client::new()
        .get(format!("http://{address}/api/preferences"))
        .header("X-Forwarded-Access-Token", ALICE)
        .send()
        .await
        .unwrap();

    // Assert
    let body = assert_error(response, 503, "DATABASE_UNAVAILABLE").await;
    assert_eq!(body["retry_after"], 5);
}

#[tokio::test]
async fn numbers_come_back_exactly_or_are_refused() {
    // Arrange
    let app = spawn_app().await;
    let put_raw = async |key: &'static str, body: &'static str| {
        app.request(
            reqwest::Method::PUT,
            &format!("/api/preferences/{key}"),
            ALICE,
        )
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
    };

    // Act
    let kept = put_raw(
        "exact",
        "[9007199254740993,9223372036854775808,18446744073709551615,0.30000000000000004]",
    )
    .await;
    let stored = app.get_preference(ALICE, "exact").text().await;
    let too_big = put_raw("big", "[18446744073709551617]").await;
    let too_long = put_raw("long", r#"{"x": 0.1000000000000000000001}"#).await;
    let too_small = put_raw("small", "1e-400").await;
    let out_of_range = put_raw("huge", "1e400").await;

    // Assert: the exact text comes back; the rest is refused and not stored.
    assert_eq!(kept.status(), 201);
    assert!(
        stored.contains(
            r#""value":[9007199254740993,9223372036854775808,18446744073709551615,0.30000000000000004]"#
        ),
        "{stored}"
    );
    for response in [too_big, too_long, too_small, out_of_range] {
        assert_error(response, 400, "INVALID_REQUEST").await;
    }
    let (_, list) = app.list_preferences(ALICE).json().await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
}
