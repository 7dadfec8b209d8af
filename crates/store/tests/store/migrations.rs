//! Migrations: applying them again changes nothing, and their SQL is itself safe to re-run.

use dbapp_store::{postgres, sqlite};
use serde_json::json;
use sqlx::AssertSqlSafe;

use crate::helpers::{RawPool, TestDb, conformance, user};

async fn applied(raw: &RawPool) -> Vec<i64> {
    let sql = "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";
    match raw {
        RawPool::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await.unwrap(),
        RawPool::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await.unwrap(),
    }
}

async fn migrations_run_twice_are_a_no_op(db: &TestDb) {
    // Arrange
    let alice = user("alice@example.com");
    db.store
        .upsert_preference(&alice, "kept", &json!(true))
        .await
        .unwrap();
    let before = applied(&db.raw).await;

    // Act
    db.store.migrate().await.unwrap();
    db.store.migrate().await.unwrap();

    // Assert
    assert_eq!(before, [1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(applied(&db.raw).await, before);
    assert_eq!(
        db.store.get_preference(&alice, "kept").await.unwrap().value,
        json!(true)
    );
}
conformance!(migrations_run_twice_are_a_no_op);

async fn migration_sql_is_safe_to_run_again_outside_the_bookkeeping(db: &TestDb) {
    // Arrange
    let alice = user("alice@example.com");
    db.store
        .upsert_preference(&alice, "kept", &json!(1))
        .await
        .unwrap();

    // Act
    match &db.raw {
        RawPool::Sqlite(pool) => {
            for migration in sqlite::MIGRATOR.iter() {
                sqlx::raw_sql(AssertSqlSafe(migration.sql.as_str().to_owned()))
                    .execute(pool)
                    .await
                    .unwrap();
            }
        }
        RawPool::Postgres(pool) => {
            for migration in postgres::MIGRATOR.iter() {
                sqlx::raw_sql(AssertSqlSafe(migration.sql.as_str().to_owned()))
                    .execute(pool)
                    .await
                    .unwrap();
            }
        }
    }

    // Assert
    assert_eq!(db.store.list_preferences(&alice).await.unwrap().len(), 1);
}
conformance!(migration_sql_is_safe_to_run_again_outside_the_bookkeeping);
