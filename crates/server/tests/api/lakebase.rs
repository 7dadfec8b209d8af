//! The preferences store on Lakebase: a private Postgres cluster whose logins are the
//! emulator's minted credentials, reached with the app's identity.

use dbapp_emulator::EmulatorConfig;
use dbapp_emulator::postgres::{ClusterOptions, PrivateCluster};
use dbapp_server::app::client_for;
use dbapp_server::config::Settings;
use dbapp_server::storage::open_store;
use serde_json::json;

use crate::app::{ALICE, BOB, assert_error, start_server};

#[tokio::test]
async fn preferences_are_isolated_on_lakebase_reached_with_the_apps_identity() {
    // Arrange: a private Postgres whose logins are tokens the emulator mints, and the server's
    // own store selection from the PG* / LAKEBASE_* settings.
    let cluster = PrivateCluster::start(ClusterOptions::default())
        .await
        .expect("a local Postgres cluster");
    let emulator = dbapp_emulator::start_local(EmulatorConfig {
        postgres_admin_url: Some(cluster.admin_url()),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let settings: Settings = serde_json::from_value(json!({
        "databricks_host": emulator.base_url(),
        "pghost": cluster.host(),
        "pgport": cluster.port(),
        "pgdatabase": "databricks_postgres",
        "pguser": "dbapp-sp",
        "pgsslmode": "require",
        "lakebase_instance_name": "dev-lakebase",
    }))
    .unwrap();
    settings.validate().unwrap();
    let client = client_for(emulator.base_url(), "dbapp-sp", "dev-secret").unwrap();
    let store = open_store(&settings, &client)
        .await
        .unwrap()
        .expect("a store");
    assert_eq!(store.backend(), "postgres");
    store.migrate().await.unwrap();
    let app = start_server(emulator, settings, Some(store), None).await;

    // Act
    let put = app
        .put_preference(ALICE, "theme", &json!("dark"))
        .send()
        .await;
    let bob = app.get_preference(BOB, "theme").send().await;
    let (_, alice) = app.get_preference(ALICE, "theme").json().await;

    // Assert
    assert_eq!(put.status(), 201);
    assert_error(bob, 404, "PREFERENCE_NOT_FOUND").await;
    assert_eq!(alice["value"], "dark");
    let minted = app.emulator.requests("/api/2.0/database/credentials");
    assert!(!minted.is_empty());
    assert!(
        minted
            .iter()
            .all(|r| r.principal.as_deref() == Some("dbapp-sp")),
        "{minted:?}"
    );
    drop(app);
    cluster.stop().await.ok();
}
