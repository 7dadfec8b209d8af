//! `dbapp-databricks`: talk to a Databricks workspace from Rust.
//!
//! The crate owns everything between an application and the workspace's REST APIs:
//! - [`config`]: host normalisation ([`WorkspaceHost`]), resolution of settings from explicit
//!   values, `DATABRICKS_*` variables and `~/.databrickscfg` profiles, an explicit [`AuthType`]
//!   and the dual-auth conflict reported at construction;
//! - [`environment`]: the [`Environment`] snapshot every configuration is parsed from;
//! - [`context`]: where the process runs (Databricks Apps, Model Serving, notebook, local), the
//!   variable that said so, whether on-behalf-of-user (invoker) credentials may be used, and
//!   which strategy the app's identity uses there;
//! - [`credentials`]: the user's forwarded token, PAT, OAuth M2M, the Databricks CLI and Model
//!   Serving, with a refreshing single-flight token cache;
//! - [`http`]: one connection pool, timeouts, correlation ids, and the retry policy;
//! - [`sse`]: the server-sent events parser of streamed invocations;
//! - [`error`]: [`DatabricksError`] and the parser for every error body shape;
//! - [`api`]: typed calls (SCIM Me, Unity Catalog, Model Serving, SQL statements, Genie, Lakebase,
//!   Apps and workspace files),
//!   methods of the [`Workspace`] view that [`Client::as_user`] and [`Client::as_app`] return.
//!
//! It knows nothing of web frameworks or databases: the server maps [`ErrorKind`] to its own
//! error codes, and the store asks [`Workspace::generate_database_credential`] for passwords.
//!
//! ```no_run
//! use dbapp_databricks::{Client, Config, Context};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let context = Context::from_process_env();
//! let client = Client::new(Config::from_env(context.app_settings())?)?;
//! let me = client.as_app().me().await?;
//! println!("{context}: the app is {}", me.user_name);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod api;
mod client;
pub mod config;
pub mod context;
pub mod credentials;
pub mod environment;
pub mod error;
pub mod http;
pub mod sse;

pub use client::{Client, Workspace};
pub use config::{AuthType, Config, ConfigError, ConfigSettings, WorkspaceHost};
pub use context::{Context, ContextKind, UserIdentity};
pub use credentials::{CredentialsProvider, UserToken};
pub use environment::Environment;
pub use error::{DatabricksError, ErrorKind};
pub use http::{Attempt, AttemptObserver, CorrelationId, RetryPolicy};
pub use reqwest::Method;
pub use secrecy::SecretString;
