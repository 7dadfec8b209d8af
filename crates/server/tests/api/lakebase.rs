//! The preferences store on Lakebase: the emulator's Lakebase front, which takes its minted
//! credentials as passwords, before a private Postgres cluster, reached with the app's identity.

use dbapp_emulator::EmulatorConfig;
use dbapp_emulator::postgres::{ClusterOptions, PrivateCluster};
use serde_json::json;

use crate::app::{ALICE, BOB, assert_error, settings_for, start_server};

#[tokio::test]
async fn preferences_are_isolated_on_lakebase_reached_with_the_apps_identity() {
    // Arrange: a private Postgres behind the front, whose logins are tokens the emulator mints, and the server's
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
    let front = emulator.lakebase_addr().expect("a Lakebase front");
    let settings = settings_for(
        &emulator,
        vec![
            ("PGHOST", front.ip().to_string()),
            ("PGPORT", front.port().to_string()),
            ("PGDATABASE", "databricks_postgres".to_owned()),
            ("PGUSER", "dbapp-sp".to_owned()),
            ("PGSSLMODE", "require".to_owned()),
            ("LAKEBASE_INSTANCE_NAME", "dev-lakebase".to_owned()),
        ],
    );
    let app = start_server(emulator, settings, None).await;
    let backend = app.state.store.as_ref().expect("a store").backend();
    assert_eq!(backend, "postgres");

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
