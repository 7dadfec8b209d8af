//! `dbapp-server`: the dbapp HTTP API as a library (the `dbapp` binary in `crates/cli` runs it).
//!
//! Map of the crate:
//! - [`app`]: [`AppState`], [`build_app`] with the middleware stack, [`serve`];
//! - [`config`]: [`Settings`] from the environment (every variable listed there);
//! - [`error`]: [`ApiError`], [`ErrorCode`], [`ErrorBody`] — the one error envelope;
//! - [`auth`]: the `Caller` and `Admin` extractors and the identity cache;
//! - [`telemetry`]: correlation ids, the request span, the access log, the log subscriber;
//! - [`json_log`]: the flat JSON log-line layer;
//! - [`metrics`]: Prometheus names and labels, `TrackHttpLayer`, the request-record writer;
//! - [`storage`]: which store to open (Lakebase, Postgres, SQLite, or none);
//! - [`openapi`]: the generated OpenAPI document and Swagger UI;
//! - [`assets`]: the embedded web UI;
//! - [`routes`]: one module per resource of `shared/API.md`.
//!
//! It never calls Databricks with the app's identity on behalf of a user: handlers reach the
//! workspace only through `Caller::workspace`, and the store only with the `Caller`'s `UserId`.

pub mod app;
pub mod assets;
pub mod auth;
pub mod config;
pub mod correlation;
pub mod error;
pub mod extract;
pub mod http_metrics;
pub mod json_log;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod records;
pub mod routes;
pub mod storage;
pub mod telemetry;

pub use app::{AppState, build_app, serve};
pub use config::Settings;
pub use error::{ApiError, ErrorBody, ErrorCode};
