//! Test databases for both backends, and the `conformance!` macro that runs one test body
//! against each.

use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use dbapp_databricks::api::CurrentUser;
use dbapp_store::postgres::PgStore;
use dbapp_store::sqlite::SqliteStore;
use dbapp_store::{PoolSettings, Store, UserId};
use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::sqlite::SqlitePool;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Executor};

/// The backends under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// Direct access to the test database, for checks the trait does not offer.
#[derive(Debug, Clone)]
pub(crate) enum RawPool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A migrated store on a database of its own, removed when dropped.
#[derive(Debug)]
pub(crate) struct TestDb {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) raw: RawPool,
    _cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    Sqlite(#[allow(dead_code, reason = "held for its Drop")] tempfile::TempDir),
    Postgres(#[allow(dead_code, reason = "held for its Drop")] DropDatabase),
}

/// Drops a test database. In `Drop`, so it runs when a test panics too.
#[derive(Debug)]
struct DropDatabase {
    name: String,
}

impl Drop for DropDatabase {
    fn drop(&mut self) {
        let statement = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        // Drop cannot await, and the test's runtime may be shutting down: a thread with a
        // runtime of its own does the work.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let mut conn = admin_options().connect().await?;
                conn.execute(AssertSqlSafe(statement)).await?;
                conn.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}: {dropped:?}", self.name);
        }
    }
}

/// The admin connection of the local test server.
pub(crate) fn admin_options() -> PgConnectOptions {
    let url = std::env::var("DBAPP_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    PgConnectOptions::from_str(&url)
        .expect("DBAPP_TEST_POSTGRES_URL is a Postgres URL")
        .disable_statement_logging()
}

impl TestDb {
    /// A fresh, migrated database on `backend`.
    pub(crate) async fn new(backend: Backend) -> Self {
        let settings = PoolSettings {
            max_connections: 8,
            ..PoolSettings::default()
        };
        let db = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let store = SqliteStore::open(&dir.path().join("store.db"), &settings);
                Self {
                    raw: RawPool::Sqlite(store.pool().clone()),
                    store: Arc::new(store),
                    _cleanup: Cleanup::Sqlite(dir),
                }
            }
            Backend::Postgres => {
                let name = format!("test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = admin_options()
                    .connect()
                    .await
                    .expect("the local Postgres at 127.0.0.1:5432 (user postgres) is reachable");
                conn.execute(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                    .await
                    .expect("CREATE DATABASE");
                conn.close().await.ok();
                let cleanup = DropDatabase { name: name.clone() };
                let store = PgStore::connect_lazy(admin_options().database(&name), &settings);
                Self {
                    raw: RawPool::Postgres(store.pool().clone()),
                    store: Arc::new(store),
                    _cleanup: Cleanup::Postgres(cleanup),
                }
            }
        };
        db.store.migrate().await.expect("migrations apply");
        db
    }
}

/// A user id for tests, from a SCIM Me answer made up here: tests may name any user, which
/// production code cannot (it gets `UserId`s from the server's `Caller` extractor only).
pub(crate) fn user(name: &str) -> UserId {
    let me: CurrentUser =
        serde_json::from_value(serde_json::json!({ "userName": name })).expect("a SCIM Me answer");
    UserId::from_authenticated_identity(&me)
}

/// An RFC 3339 instant.
pub(crate) fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("an RFC 3339 timestamp")
        .with_timezone(&Utc)
}

/// Runs the test function `$name(db: &TestDb)` on each backend, with a fresh database each:
/// defines `mod $name { fn sqlite(); fn postgres(); }` beside it.
macro_rules! conformance {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::helpers::TestDb::new($crate::helpers::Backend::Sqlite).await;
                super::$name(&db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let db = $crate::helpers::TestDb::new($crate::helpers::Backend::Postgres).await;
                super::$name(&db).await;
            }
        }
    };
}
pub(crate) use conformance;
