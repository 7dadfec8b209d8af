//! Isolation enforced by Postgres (migration 0008): on a private cluster, the store logs in as an
//! ordinary role that owns its tables, as the app's role does on Lakebase (a superuser would
//! bypass the policies). Statements that forget their `user_id` filter, run on the store's own
//! connections, still see and change only the caller's rows; the admin bypass sees everyone's;
//! a pooled connection handed to another user carries no trace of the previous one; and a pooled
//! connection the server has cut is replaced when the store hands it out (the scope statement is
//! the pool's liveness check).

use chrono::Utc;
use dbapp_emulator::postgres::{ClusterOptions, PrivateCluster};
use dbapp_store::postgres::{PgStore, Scope};
use dbapp_store::{
    InferenceLog, InferenceStatus, NewConversation, NewMessage, NewUsageEvent, PoolSettings, Store,
    TimeRange, UserId,
};
use serde_json::json;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Executor};
use uuid::Uuid;

use crate::helpers::user;

const APP_ROLE: &str = "app_role";
const APP_PASSWORD: &str = "app-password";

/// A private cluster with a database owned by an ordinary login role, and the store on it as
/// that role, migrated; one connection, so every statement reuses the same session.
async fn store_as_app_role() -> (PrivateCluster, PgStore) {
    let cluster = PrivateCluster::start(ClusterOptions::default())
        .await
        .expect("a private cluster from the machine's Postgres binaries");
    let mut admin = cluster.admin_connect_options().connect().await.unwrap();
    admin
        .execute(AssertSqlSafe(format!(
            "CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{APP_PASSWORD}'"
        )))
        .await
        .unwrap();
    admin
        .execute(AssertSqlSafe(format!(
            "CREATE DATABASE app OWNER {APP_ROLE}"
        )))
        .await
        .unwrap();
    admin.close().await.ok();
    let options = cluster
        .admin_connect_options()
        .username(APP_ROLE)
        .password(APP_PASSWORD)
        .database("app");
    let settings = PoolSettings {
        max_connections: 1,
        ..PoolSettings::default()
    };
    let store = PgStore::connect_lazy(options, &settings);
    store
        .migrate()
        .await
        .expect("the app's role can run the migrations");
    (cluster, store)
}

fn log(endpoint: &str) -> InferenceLog {
    InferenceLog {
        request_id: Uuid::new_v4(),
        endpoint_name: endpoint.to_owned(),
        status: InferenceStatus::Success,
        inputs: json!({"inputs": [1]}),
        predictions: Some(json!([2])),
        error_message: None,
        execution_time_ms: 5,
        created_at: Utc::now(),
        completed_at: Some(Utc::now()),
        inputs_truncated: false,
    }
}

async fn seed(store: &PgStore, alice: &UserId, bob: &UserId) {
    for (who, theme) in [(alice, "dark"), (bob, "light")] {
        store
            .upsert_preference(who, "theme", &json!(theme))
            .await
            .unwrap();
        store.append_inference_log(who, &log("echo")).await.unwrap();
        let event = NewUsageEvent {
            event_type: "page_view".to_owned(),
            page_name: Some("overview".to_owned()),
            element_id: None,
            success: None,
            metadata: None,
            timestamp: Utc::now(),
        };
        store.insert_usage_events(who, &[event]).await.unwrap();
        let conversation = NewConversation {
            id: Uuid::new_v4(),
            title: "hello".into(),
            endpoint_name: "echo".into(),
        };
        store.create_conversation(who, &conversation).await.unwrap();
        store
            .append_messages(
                who,
                conversation.id,
                &[NewMessage::new("user", json!("hi"))],
            )
            .await
            .unwrap();
    }
}

/// `user_id` of every row of `table`, with no filter at all.
async fn owners(store: &PgStore, scope: Scope<'_>, table: &str) -> Vec<String> {
    let mut conn = store.connection(scope).await.unwrap();
    sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT user_id FROM {table} ORDER BY user_id"
    )))
    .fetch_all(&mut *conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_statement_without_its_user_filter_sees_and_changes_only_the_callers_rows() {
    // Arrange
    let (_cluster, store) = store_as_app_role().await;
    let (alice, bob) = (user("alice@example.com"), user("bob@example.com"));
    seed(&store, &alice, &bob).await;

    // Act: unfiltered reads and an unfiltered update, as alice, on the store's connection.
    let preferences = owners(&store, Scope::User(&alice), "user_preferences").await;
    let history = owners(&store, Scope::User(&alice), "model_inference_logs").await;
    let events = owners(&store, Scope::User(&alice), "usage_events").await;
    let conversations = owners(&store, Scope::User(&alice), "conversations").await;
    let messages = owners(&store, Scope::User(&alice), "conversation_messages").await;
    let updated = {
        let mut conn = store.connection(Scope::User(&alice)).await.unwrap();
        sqlx::query("UPDATE user_preferences SET value = '\"hacked\"'")
            .execute(&mut *conn)
            .await
            .unwrap()
            .rows_affected()
    };
    let forged = {
        let mut conn = store.connection(Scope::User(&alice)).await.unwrap();
        sqlx::query(
            "INSERT INTO user_preferences (user_id, key, value, revision, created_at, updated_at) \
             VALUES ($1, 'forged', '1', 1, now(), now())",
        )
        .bind(bob.as_str())
        .execute(&mut *conn)
        .await
    };
    // The same pooled connection, now handed out for bob.
    let bobs = owners(&store, Scope::User(&bob), "user_preferences").await;

    // Assert
    assert_eq!(preferences, [alice.as_str()]);
    assert_eq!(history, [alice.as_str()]);
    assert_eq!(events, [alice.as_str()]);
    assert_eq!(conversations, [alice.as_str()]);
    assert_eq!(messages, [alice.as_str()]);
    assert_eq!(updated, 1, "only alice's preference is updated");
    let bob_theme = store.get_preference(&bob, "theme").await.unwrap();
    assert_eq!(bob_theme.value, json!("light"));
    let error = forged.expect_err("a row for another user is refused");
    assert!(
        error.to_string().contains("row-level security"),
        "the policy refused it: {error}"
    );
    assert_eq!(bobs, [bob.as_str()]);
}

#[tokio::test]
async fn the_admin_bypass_sees_every_user_and_the_aggregates_count_them() {
    // Arrange
    let (_cluster, store) = store_as_app_role().await;
    let (alice, bob) = (user("alice@example.com"), user("bob@example.com"));
    seed(&store, &alice, &bob).await;

    // Act
    let everyone = owners(&store, Scope::Admin("test"), "user_preferences").await;
    let summary = store
        .admin_usage_summary(TimeRange::Last24Hours.ending_at(Utc::now()))
        .await
        .unwrap();
    // The same pooled connection, handed to alice after the bypass.
    let after_bypass = owners(&store, Scope::User(&alice), "user_preferences").await;

    // Assert
    assert_eq!(everyone, [alice.as_str(), bob.as_str()]);
    assert_eq!(summary.total_events, 2);
    assert_eq!(summary.unique_users, 2);
    assert_eq!(
        after_bypass,
        [alice.as_str()],
        "the bypass does not stay on the connection"
    );
}

#[tokio::test]
async fn a_pooled_connection_the_server_cut_is_replaced_when_handed_out() {
    // Arrange: the store's one connection sits idle in the pool, then its session is ended.
    let (cluster, store) = store_as_app_role().await;
    let alice = user("alice@example.com");
    store
        .upsert_preference(&alice, "theme", &json!("dark"))
        .await
        .unwrap();
    let mut admin = cluster.admin_connect_options().connect().await.unwrap();
    let cut: Vec<bool> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity \
         WHERE usename = '{APP_ROLE}'"
    )))
    .fetch_all(&mut admin)
    .await
    .unwrap();

    // Act
    let read = store.get_preference(&alice, "theme").await;

    // Assert
    assert_eq!(cut, [true], "the idle session was ended");
    assert_eq!(read.unwrap().value, json!("dark"));
}

#[tokio::test]
async fn the_upsert_names_its_caller_in_its_own_statement_and_leaves_the_session_as_it_was() {
    // Arrange: the store's one connection last acted for bob, so its session names bob.
    let (cluster, store) = store_as_app_role().await;
    let (alice, bob) = (user("alice@example.com"), user("bob@example.com"));
    seed(&store, &alice, &bob).await;
    drop(store.connection(Scope::User(&bob)).await.unwrap());

    // Act: alice's upsert on that connection (the policies would refuse her row under bob's
    // name), then the session's settings read raw.
    let upserted = store
        .upsert_preference(&alice, "theme", &json!("solarized"))
        .await;
    let session: (String, String) = sqlx::query_as(
        "SELECT current_setting('dbapp.user_id', true), current_setting('dbapp.scope', true)",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    // A cut connection is replaced for this write too.
    let mut admin = cluster.admin_connect_options().connect().await.unwrap();
    sqlx::query(AssertSqlSafe(format!(
        "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE usename = '{APP_ROLE}'"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    let after_cut = store
        .upsert_preference(&alice, "theme", &json!("dark"))
        .await;

    // Assert: alice's row changed, bob's did not, and the naming was local to the statement.
    let upserted = upserted.expect("the statement names alice before her row is checked");
    assert_eq!(upserted.preference.value, json!("solarized"));
    assert!(!upserted.created);
    let bob_theme = store.get_preference(&bob, "theme").await.unwrap();
    assert_eq!(bob_theme.value, json!("light"));
    assert_eq!(session, (bob.as_str().to_owned(), String::new()));
    assert_eq!(after_cut.unwrap().preference.value, json!("dark"));
}
