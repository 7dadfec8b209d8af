//! `dbapp-emulator`: a local Databricks workspace, served over HTTP, for development, tests and
//! benchmarks.
//!
//! It reproduces the wire contracts of `shared/UPSTREAM.md` and `shared/UPSTREAM-2.md` (discovery
//! and OAuth, SCIM Me, Unity Catalog with volumes, the Files API, Model Serving, SQL Statement
//! Execution, Genie, the Workspace API, the Lakebase and Apps control planes) closely enough that the official
//! Databricks SDKs work against it unchanged, from a [`Fixture`] that says who exists, what each principal may see,
//! and what data the tables and volumes hold. It depends on no other dbapp crate:
//! it is written from the wire contract, so a wrong shared type cannot hide the same bug on both
//! sides.
//!
//! Module map:
//! - [`fixture`]: the fixture format (JSON or TOML) and the embedded default fixture;
//! - `state`: everything that changes while the emulator runs (tokens, statements, knobs, the
//!   request log) behind one handle;
//! - `auth`: Bearer authentication and token minting;
//! - `scopes`: which user authorization scope each workspace API needs, for downscoped tokens;
//! - `error`: Databricks error bodies (`shared/UPSTREAM.md` §3.1);
//! - `faults`: fault injection rules and the middleware that applies them;
//! - `files`: the in-memory files of every volume, with their size caps;
//! - `workspace`: the in-memory workspace tree (directories, files, notebooks) behind the
//!   Workspace API, where apps' source code is uploaded;
//! - `control`: what tests use to inject faults, expire tokens and read the log, as typed
//!   methods of [`EmulatorHandle`] and as the `/_emulator/` HTTP API, one implementation for both;
//! - `engine`: the SQL the warehouses run (sqlparser's Databricks dialect over an in-memory
//!   SQLite copy of the fixture tables), and `sql`: the life of a submitted statement;
//! - `routes`: one module per Databricks service;
//! - `warehouse`: the clock-driven power state of SQL warehouses;
//! - `apps`: Databricks Apps' control plane: apps, their compute and deployments, and the
//!   service principal each app gets;
//! - `genie`: the status clock, attachments and conversations of Genie messages;
//! - `results`: statement results as JSON, CSV and Arrow bytes, and the signed external links;
//! - `lakebase`: the Postgres server behind the emulated Lakebase: roles, grants, branch databases;
//! - `pgfront`: the emulated Lakebase's Postgres front, which takes minted tokens as passwords
//!   over TLS and relays to that server;
//! - [`postgres`]: starting a private Postgres cluster from the machine's binaries;
//! - `server`: the accept loop (HTTP/1.1 and h2c), connection dropping and shutdown;
//! - [`host`]: the Host rule (on loopback, only requests addressed to a loopback name), which
//!   `dbapp dev` applies to its own port too.

mod apps;
mod auth;
mod autoscaling;
mod control;
mod engine;
mod error;
mod faults;
mod files;
pub mod fixture;
mod genie;
pub mod host;
mod lakebase;
mod pgfront;
pub mod postgres;
mod results;
mod routes;
mod scopes;
mod server;
mod sql;
mod state;
mod table_data;
mod warehouse;
mod workspace;

pub use apps::AppCredentials;
pub use control::ControlError;
pub use engine::EngineError;
pub use faults::{ActiveFault, FaultRule};
pub use fixture::{Fixture, WarehouseState};
pub use server::{EmulatorHandle, StartError};
pub use state::LoggedRequest;
pub use state::SqlSessionInfo;

/// How to start an emulator.
#[derive(Debug, Clone, Default)]
pub struct EmulatorConfig {
    /// The workspace to serve; [`Fixture::default`] when not replaced.
    pub fixture: Fixture,
    /// A Postgres superuser URL: the server behind the emulated Lakebase. When set, a Postgres
    /// front listens on `lakebase_listen` and takes minted tokens as passwords, as Lakebase does.
    pub postgres_admin_url: Option<String>,
    /// Where the Lakebase front listens; `127.0.0.1` on a free port when not set. Its IP is the
    /// host name instances and endpoints report.
    pub lakebase_listen: Option<std::net::SocketAddr>,
    /// Lifetime of minted database credentials, overriding the fixture's setting.
    pub db_token_ttl_secs: Option<u64>,
}

/// Starts an emulator on `listener` and returns a handle that knows its URL and stops it.
///
/// # Errors
/// [`StartError`] when the fixture is inconsistent or the Postgres admin connection fails.
pub async fn start(
    listener: tokio::net::TcpListener,
    config: EmulatorConfig,
) -> Result<EmulatorHandle, StartError> {
    server::start(listener, config).await
}

/// Starts an emulator on a free port of 127.0.0.1.
///
/// # Errors
/// As [`start`], plus binding failures.
pub async fn start_local(config: EmulatorConfig) -> Result<EmulatorHandle, StartError> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(StartError::Bind)?;
    start(listener, config).await
}
