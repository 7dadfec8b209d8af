//! The baseline server (`dbapp-bench --baseline-server`): the same stack as dbapp — tokio, hyper,
//! axum's `serve` — with nothing on top, started as its own process like the server it is
//! compared with.
//!
//! - `GET /health`: a hello-world JSON answer, the floor for any axum route.
//! - `PUT /prefs/{key}`, `GET /prefs`: the very statements `dbapp-store`'s `PgStore` sends for a
//!   preference upsert and list, through raw sqlx on a pool of the store's default size, with the
//!   JSON body parsed and the rows returned as JSON, so the difference to dbapp's routes is
//!   dbapp's own work (middleware, identity, store layer).
//!
//! It prints `dbapp-bench baseline listening on http://127.0.0.1:<port>` once it accepts.

use std::str::FromStr;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::types::Json as SqlJson;

/// The announcement line's prefix.
pub(crate) const ANNOUNCE: &str = "dbapp-bench baseline listening on ";

/// The user the raw side writes as: its own rows, so it never contends with dbapp's user.
const RAW_USER: &str = "raw-baseline@example.com";

// Copied from `crates/store/src/postgres.rs`: the raw side must do exactly the same work. If the
// store's SQL changes, change these with it.
const PG_UPSERT: &str = "INSERT INTO user_preferences \
         (user_id, key, value, revision, created_at, updated_at) \
     VALUES ($1, $2, $3, 1, $4, $4) \
     ON CONFLICT (user_id, key) DO UPDATE SET \
         value = EXCLUDED.value, \
         revision = user_preferences.revision + 1, \
         updated_at = GREATEST(EXCLUDED.updated_at, user_preferences.updated_at) \
     RETURNING key, value, revision, created_at, updated_at";
const PG_LIST: &str = "SELECT key, value, revision, created_at, updated_at \
     FROM user_preferences WHERE user_id = $1 ORDER BY key COLLATE \"C\"";

type PgRow = (
    String,
    SqlJson<Value>,
    i64,
    chrono::DateTime<chrono::Utc>,
    chrono::DateTime<chrono::Utc>,
);

fn row_json((key, value, _revision, created_at, updated_at): PgRow) -> Value {
    json!({"key": key, "value": value.0, "created_at": created_at, "updated_at": updated_at})
}

/// Runs the baseline server until the process is killed.
pub(crate) async fn serve(database_url: Option<String>) -> anyhow::Result<()> {
    let mut router: Router = Router::new().route("/health", get(health));
    if let Some(url) = database_url {
        // The store's defaults: 10 connections (`dbapp_store::PoolSettings::default`).
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(PgConnectOptions::from_str(&url)?);
        router = router.merge(
            Router::new()
                .route("/prefs", get(list_prefs))
                .route("/prefs/{key}", put(put_pref))
                .with_state(pool),
        );
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    println!("{ANNOUNCE}http://{}", listener.local_addr()?);
    axum::serve(listener, router).await?;
    Ok(())
}

async fn health() -> Json<Value> {
    Json(json!({"status": "healthy", "version": env!("CARGO_PKG_VERSION")}))
}

async fn put_pref(
    State(pool): State<PgPool>,
    Path(key): Path<String>,
    Json(value): Json<Value>,
) -> Response {
    let row: Result<PgRow, _> = sqlx::query_as(PG_UPSERT)
        .bind(RAW_USER)
        .bind(key)
        .bind(SqlJson(value))
        .bind(chrono::Utc::now())
        .fetch_one(&pool)
        .await;
    match row {
        Ok(row) => Json(row_json(row)).into_response(),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, error.to_string()).into_response(),
    }
}

async fn list_prefs(State(pool): State<PgPool>) -> Response {
    let rows: Result<Vec<PgRow>, _> = sqlx::query_as(PG_LIST)
        .bind(RAW_USER)
        .fetch_all(&pool)
        .await;
    match rows {
        Ok(rows) => {
            let items: Vec<Value> = rows.into_iter().map(row_json).collect();
            Json(json!({"items": items})).into_response()
        }
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, error.to_string()).into_response(),
    }
}
