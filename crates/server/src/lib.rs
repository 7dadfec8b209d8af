//! `dbapp-server`: the dbapp HTTP API as a library (the `dbapp` binary in `crates/cli` runs it).
//!
//! Map of the crate, in layers: a module imports only modules of the layers above it in this
//! list, never one below, so each can be read knowing only what precedes it.
//! 1. Leaves, importing nothing of the crate: [`limits`] (the contract's numbers and patterns),
//!    [`config`] ([`Settings`], parsed once from an environment snapshot; every variable listed
//!    there), [`correlation`] (the request's correlation id), [`json_log`] (the flat JSON
//!    log-line layer).
//! 2. [`error`]: [`ApiError`], [`ErrorCode`], [`ErrorBody`] — the one error envelope.
//! 3. Telemetry and infrastructure: [`metrics`] (Prometheus names, the recorder, the upstream
//!    observer), [`records`] (the request-record writer), [`history`] (the inference history's
//!    writer and outbox), [`request_head`] (the request-head limits layer), [`body_limit`] (the
//!    body limit, with the volume upload's exemption), [`retention`] (the
//!    task that purges old rows), [`http_metrics`] (the
//!    `TrackHttpLayer` middleware), [`telemetry`] (the correlation layer, request span, access
//!    log and log subscriber), [`assets`] (the embedded web UI), [`storage`] (which store to
//!    open), [`sql`] (running a statement and typing its rows, for the table preview and the
//!    governed queries), [`queries`] (the query catalog, result cache, runs and page tokens),
//!    [`identity`] (the identity cache), [`mod@serve`] (the connection loop: hyper, the
//!    timeouts, the connection cap, graceful shutdown), [`quota`] (the per-user quotas), and
//!    [`state`] ([`AppState`], what
//!    handlers share).
//! 4. [`auth`]: the `Caller` and `Admin` extractors.
//! 5. [`extract`]: the other extractors — typed `Limit`, `Offset`, path `Name`s and the
//!    `ConversationId`, and `ApiQuery`/`ApiJson` with envelope rejections.
//! 6. [`routes`]: one module per resource of `shared/API.md` (and of `docs/api-changes.md`,
//!    for those it does not name, such as conversations).
//! 7. [`openapi`]: the generated OpenAPI document and Swagger UI.
//! 8. [`app`]: [`build_app`] with the middleware stack, [`fn@serve`].
//! 9. [`startup`]: [`Application`], the one builder `serve`, `dev` and the tests use.
//!
//! It never calls Databricks with the app's identity on behalf of a user: handlers reach the
//! workspace only through `Caller::workspace`, and the store only with the `Caller`'s `UserId`.

pub mod app;
pub mod assets;
pub mod auth;
pub mod body_limit;
pub mod config;
pub mod correlation;
pub mod error;
pub mod extract;
pub mod grants;
pub mod history;
pub mod http_metrics;
pub mod identity;
pub mod json_log;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod otel;
pub mod queries;
pub mod quota;
pub mod records;
pub mod request_head;
pub mod retention;
pub mod routes;
pub mod serve;
pub mod sql;
pub mod startup;
pub mod state;
pub mod storage;
pub mod telemetry;

pub use app::{build_app, serve};
pub use config::Settings;
pub use error::{ApiError, ErrorBody, ErrorCode};
pub use startup::{Application, StartupError};
pub use state::AppState;
