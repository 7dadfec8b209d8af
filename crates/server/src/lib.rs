//! `dbapp-server`: the dbapp HTTP API as a library (the `dbapp` binary in `crates/cli` runs it).
//!
//! Map of the crate:
//! - [`app`]: [`AppState`], [`build_app`] with the middleware stack, [`serve`];
//! - [`config`]: [`Settings`], parsed once from an environment snapshot (every variable listed there);
//! - [`error`]: [`ApiError`], [`ErrorCode`], [`ErrorBody`] — the one error envelope;
//! - [`auth`]: the `Caller` and `Admin` extractors and the identity cache;
//! - [`telemetry`]: correlation ids, the request span, the access log, the log subscriber;
//! - [`json_log`]: the flat JSON log-line layer;
//! - [`metrics`]: Prometheus names and labels, `TrackHttpLayer`, the request-record writer;
//! - [`serve`]: the connection loop — hyper, timeouts, the connection cap, graceful shutdown;
//! - [`startup`]: [`Application`], the one builder `serve`, `dev` and the tests use;
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
pub mod error;
pub mod json_log;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod serve;
pub mod startup;
pub mod storage;
pub mod telemetry;

pub use app::{AppState, build_app, serve};
pub use config::Settings;
pub use error::{ApiError, ErrorBody, ErrorCode};
pub use startup::{Application, StartupError};
