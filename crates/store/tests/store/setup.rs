//! `setup`: the plan read as a non-superuser app role on a private cluster (TLS, SCRAM), with
//! only what Lakebase's Apps database resource grants (`CONNECT, CREATE` on the database), and
//! other roles owning what the app must use. Each test applies the plan and reads the result back
//! through the superuser.

use dbapp_emulator::postgres::{ClusterOptions, PrivateCluster};
use dbapp_store::postgres::{MIGRATOR, PgStore};
use dbapp_store::setup::{self, Action, Plan, Topic};
use dbapp_store::{Store, StoreError};
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Executor, PgConnection, PgPool};

/// A cluster with database `appdb` and the login role `app` (password `app-password`), which
/// has `CONNECT, CREATE` on `appdb` and nothing on its schema public beyond what PUBLIC has.
struct AppDatabase {
    cluster: PrivateCluster,
    app: PgPool,
}

impl AppDatabase {
    async fn start() -> Self {
        let cluster = PrivateCluster::start(ClusterOptions::default())
            .await
            .expect("a private Postgres cluster starts");
        let mut admin = cluster.admin_connect_options().connect().await.unwrap();
        for statement in [
            "CREATE ROLE app LOGIN PASSWORD 'app-password'",
            "CREATE DATABASE appdb",
            "GRANT CONNECT, CREATE ON DATABASE appdb TO app",
        ] {
            admin.execute(statement).await.unwrap();
        }
        admin.close().await.unwrap();
        // Postgres 15 and later give PUBLIC no CREATE on schema public; earlier ones do.
        let mut admin = Self::admin_of(&cluster).await;
        admin
            .execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
            .await
            .unwrap();
        admin.close().await.unwrap();
        let app = PgPoolOptions::new().max_connections(2).connect_lazy_with(
            cluster
                .admin_connect_options()
                .username("app")
                .password("app-password")
                .database("appdb"),
        );
        Self { cluster, app }
    }

    async fn admin_of(cluster: &PrivateCluster) -> PgConnection {
        cluster
            .admin_connect_options()
            .database("appdb")
            .connect()
            .await
            .unwrap()
    }

    async fn admin(&self) -> PgConnection {
        Self::admin_of(&self.cluster).await
    }

    async fn plan(&self) -> Plan {
        let mut conn = self.app.acquire().await.unwrap();
        setup::plan(&mut conn, &[]).await.unwrap()
    }

    /// Applies every step, as `dbapp lakebase setup` does once no step needs a person.
    async fn apply(&self, plan: &Plan) {
        for step in &plan.steps {
            setup::apply_step(&self.app, step)
                .await
                .unwrap_or_else(|e| panic!("{}: {e:?}", step.statement));
        }
    }

    async fn owner(&self, table: &str) -> String {
        sqlx::query_scalar(
            "SELECT pg_get_userbyid(relowner)::text FROM pg_class
             WHERE relname = $1 AND relnamespace = 'public'::regnamespace",
        )
        .bind(table)
        .fetch_one(&mut self.admin().await)
        .await
        .unwrap()
    }
}

#[tokio::test]
async fn a_role_without_create_on_the_schema_gets_the_exact_grant_for_a_person() {
    // Arrange
    let db = AppDatabase::start().await;

    // Act
    let before = db.plan().await;
    let refused = setup::apply_step(&db.app, before.human_steps().next().unwrap()).await;
    db.admin()
        .await
        .execute(AssertSqlSafe(
            before.human_steps().next().unwrap().statement.clone(),
        ))
        .await
        .expect("the statement runs as printed");
    let after_grant = db.plan().await;
    db.apply(&after_grant).await;
    let after_setup = db.plan().await;

    // Assert
    let human: Vec<_> = before.human_steps().collect();
    assert_eq!(human.len(), 1, "{before:#?}");
    assert_eq!(human[0].topic, Topic::Privileges);
    assert_eq!(
        human[0].statement,
        "GRANT USAGE, CREATE ON SCHEMA public TO \"app\";"
    );
    assert!(matches!(refused, Err(StoreError::InvalidInput(_))));
    assert_eq!(before.role, "app");
    assert_eq!(
        before.steps_about(Topic::Migrations).count(),
        MIGRATOR.iter().count()
    );
    assert_eq!(after_grant.human_steps().count(), 0, "{after_grant:#?}");
    assert!(
        after_grant
            .steps
            .iter()
            .all(|s| matches!(s.action, Action::Migrate { .. })),
        "{after_grant:#?}"
    );
    for table in setup::store_tables() {
        assert_eq!(db.owner(&table).await, "app", "{table}");
    }
    assert_eq!(after_setup.steps, []);
    // The real store works on what setup made, as the app's role.
    let store = PgStore::new(db.app.clone());
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
    db.cluster.stop().await.ok();
}

#[tokio::test]
async fn a_table_owned_by_a_role_the_app_belongs_to_is_taken_over_by_the_app() {
    // Arrange: the team role ran the first migration; the app's role is a member of it.
    let db = AppDatabase::start().await;
    let mut admin = db.admin().await;
    for statement in [
        "CREATE ROLE team",
        "GRANT team TO app",
        "GRANT USAGE, CREATE ON SCHEMA public TO app",
        MIGRATOR.iter().next().unwrap().sql.as_str(),
        "ALTER TABLE user_preferences OWNER TO team",
    ] {
        admin
            .execute(AssertSqlSafe(statement.to_owned()))
            .await
            .unwrap();
    }

    // Act
    let before = db.plan().await;
    db.apply(&before).await;
    let after = db.plan().await;

    // Assert
    let ownership: Vec<_> = before.steps_about(Topic::Ownership).collect();
    assert_eq!(ownership.len(), 1, "{before:#?}");
    assert_eq!(ownership[0].action, Action::Run);
    assert_eq!(
        ownership[0].statement,
        "ALTER TABLE public.user_preferences OWNER TO \"app\""
    );
    assert_eq!(db.owner("user_preferences").await, "app");
    assert_eq!(after.steps, []);
    admin.close().await.ok();
    db.cluster.stop().await.ok();
}

#[tokio::test]
async fn migrations_bookkeeping_another_role_owns_is_named_for_a_person() {
    // Arrange: someone ran every migration as the superuser.
    let db = AppDatabase::start().await;
    let mut admin = db.admin().await;
    admin
        .execute("GRANT USAGE, CREATE ON SCHEMA public TO app")
        .await
        .unwrap();
    MIGRATOR.run(&mut admin).await.unwrap();

    // Act
    let plan = db.plan().await;

    // Assert: one statement per table, the bookkeeping included, all for a person.
    let ownership: Vec<_> = plan.steps_about(Topic::Ownership).collect();
    assert_eq!(
        ownership.len(),
        setup::store_tables().len() + 1,
        "{plan:#?}"
    );
    assert!(ownership.iter().all(|s| s.action == Action::Human));
    assert!(
        ownership
            .iter()
            .any(|s| s.statement == "ALTER TABLE public._sqlx_migrations OWNER TO \"app\";"),
        "{plan:#?}"
    );
    admin.close().await.ok();
    db.cluster.stop().await.ok();
}

#[tokio::test]
async fn the_plan_follows_the_schema_the_store_writes_to() {
    // Arrange: the role's search_path names a schema of its own, as some teams configure.
    let db = AppDatabase::start().await;
    let mut admin = db.admin().await;
    for statement in [
        "CREATE SCHEMA app_data AUTHORIZATION app",
        "ALTER ROLE app SET search_path = app_data",
    ] {
        admin.execute(statement).await.unwrap();
    }

    // Act
    let before = db.plan().await;
    db.apply(&before).await;
    let store = PgStore::new(db.app.clone());
    store.migrate().await.unwrap();
    let after = db.plan().await;

    // Assert: no privilege step (the role owns app_data), and the tables went there.
    assert_eq!(before.schema, "app_data");
    assert_eq!(
        before.steps_about(Topic::Privileges).count(),
        0,
        "{before:#?}"
    );
    let placed: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.relname::text, pg_get_userbyid(c.relowner)::text FROM pg_class c
         WHERE c.relnamespace = 'app_data'::regnamespace AND c.relkind = 'r'",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    for table in setup::store_tables() {
        assert!(
            placed.contains(&(table.clone(), "app".to_owned())),
            "{table} in {placed:?}"
        );
    }
    assert_eq!(after.steps, []);
    admin.close().await.ok();
    db.cluster.stop().await.ok();
}
