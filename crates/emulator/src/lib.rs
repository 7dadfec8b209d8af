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
//! - `runtime`: with [`EmulatorConfig::run_apps`], the processes of deployed apps (copied source,
//!   `app.yaml`, environment, replicas, captured output, stop signals), which drive the
//!   deployment and compute states of `apps`;
//! - `proxy`: the emulated Apps reverse proxy each app gets with `run_apps`: sign-in, forwarded
//!   identity headers and user tokens, round robin over replicas, 502/503/504;
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
pub mod otlp;
mod pgfront;
pub mod postgres;
mod proxy;
mod results;
mod routes;
mod runtime;
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
#[derive(Debug, Clone)]
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
    /// Run deployed apps as local processes behind an emulated Apps proxy (`docs/emulator.md`,
    /// "Running any app locally"); off by default, so deployments then only follow the clock.
    pub run_apps: bool,
    /// How long a stopped app's processes have between `SIGTERM` and `SIGKILL` (15 s, as Apps).
    pub apps_stop_grace: std::time::Duration,
    /// How long the Apps proxy waits for an app's response headers before it answers 504
    /// (120 s, as Apps is said to).
    pub apps_proxy_timeout: std::time::Duration,
    /// How long every replica of a deployment has to accept connections before the deployment
    /// fails (10 minutes, as Apps is said to).
    pub apps_startup_timeout: std::time::Duration,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            fixture: Fixture::default(),
            postgres_admin_url: None,
            lakebase_listen: None,
            db_token_ttl_secs: None,
            run_apps: false,
            apps_stop_grace: std::time::Duration::from_secs(15),
            apps_proxy_timeout: std::time::Duration::from_secs(120),
            apps_startup_timeout: std::time::Duration::from_secs(600),
        }
    }
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
