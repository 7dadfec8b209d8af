//! [`Application`]: the one way a dbapp server is assembled from loaded [`Settings`] (the shape
//! of zero2prod's `Application::build`). `dbapp serve`, `dbapp dev`, the API tests and, through
//! those commands, the benchmark all start their server here, so they cannot differ in how the
//! workspace client, the store, the migrations or the router are set up.
//!
//! [`Application::build`], in order:
//! 0. loads and validates the governed query files ([`QueryCatalog::load`]); a bad file stops
//!    the start, naming the file, the line and the problem;
//! 1. resolves the app's workspace configuration ([`Settings::workspace_config`]) and builds the
//!    one [`Client`] (its connection pool is the process's);
//! 2. opens the store the settings name ([`open_store`]); a Lakebase store mints its first token
//!    here, so a wrong credential setup fails at start;
//! 3. applies the migrations when `DBAPP_MIGRATE_ON_START` is on (the default). **A failed
//!    migration is logged (`store.migrate_failed`) and the server starts anyway**, in every
//!    command alike: the database may be down for a moment at start, `/ready` reports whether
//!    it answers (503 while it does not) and `/health` stays up, which is what the Apps platform
//!    and load balancers need to see; `dbapp migrate` is the command that fails on it;
//! 4. binds the listener and assembles the state; the router and middleware are [`build_app`].
//!
//! [`Application::run_until_stopped`] serves it until the shutdown future resolves;
//! [`Application::run_until_stopped_with`] first wraps it (`dbapp dev`'s identity layer). While
//! it serves, two background tasks run beside it and stop with it: the metrics upkeep and, when
//! there is a store, the retention task ([`crate::retention`]).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::Request;
use axum::response::Response;
use dbapp_databricks::{Client, DatabricksError};
use dbapp_store::Store;
use tokio::net::TcpListener;
use tower::Service;

use crate::app::{build_app, serve_service};
use crate::config::{ConfigError, Settings};
use crate::metrics::Metrics;
use crate::queries::QueryCatalog;
use crate::queries::definition::DefinitionError;
use crate::retention::{RetentionPolicy, spawn_retention};
use crate::state::AppState;
use crate::storage::{StorageError, StoreKind, open_store};

/// Why the application could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The configuration is invalid; the message names the variables.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The workspace client could not be built from a valid configuration.
    #[error("cannot build the workspace client")]
    Client(#[source] DatabricksError),
    /// The store could not be opened.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A query file cannot be used; the message names the file, the line and the problem.
    #[error(transparent)]
    Queries(#[from] DefinitionError),
    /// The address could not be bound.
    #[error("cannot listen on {address}{hint}")]
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// Which setting chose it, when one did.
        hint: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// A built application: bound, store opened, state assembled; not yet serving.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

/// Wraps the built application in something of the caller's (`dbapp dev`'s identity layer).
/// A trait rather than a closure because the application's service type is not nameable.
pub trait WrapApp {
    /// The wrapped service.
    fn wrap<S>(self, app: S) -> axum::Router
    where
        S: Service<Request, Response = Response, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static;
}

impl Application {
    /// Builds the application the settings describe, listening on `address` (see the module
    /// header for the steps). Needs a tokio runtime.
    ///
    /// # Errors
    /// [`StartupError`]: an invalid configuration naming its variables, a store that cannot be
    /// opened, or an address that cannot be bound.
    pub async fn build(settings: Settings, address: SocketAddr) -> Result<Self, StartupError> {
        let metrics = Metrics::new(
            settings.server.dbapp.metrics_max_users,
            settings.server.dbapp.metrics_user_labels,
        );
        Self::build_with_metrics(settings, address, metrics).await
    }

    /// As [`Application::build`], counting into `metrics` (`dbapp serve` installs them as the
    /// global recorder first, so the store's Lakebase series land in the same exposition).
    ///
    /// # Errors
    /// As [`Application::build`].
    pub async fn build_with_metrics(
        settings: Settings,
        address: SocketAddr,
        metrics: Metrics,
    ) -> Result<Self, StartupError> {
        // Query files first: a bad one should stop the start before anything is opened.
        let queries = QueryCatalog::load(
            settings
                .server
                .dbapp
                .queries_dir
                .as_deref()
                .map(std::path::Path::new),
        )?;
        let client = workspace_client(&settings)?;
        let store = open_store(&settings, Some(&client)).await?;
        if settings.server.dbapp.migrate_on_start
            && let Some(store) = &store
        {
            migrate_on_start(store.as_ref()).await;
        }
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| StartupError::Bind {
                address,
                hint: if address.port() == settings.server.databricks_app_port {
                    " (DATABRICKS_APP_PORT)"
                } else {
                    ""
                },
                source,
            })?;
        let store_kind = StoreKind::of(&settings);
        let mut server = settings.server;
        server.store_kind = store_kind;
        let state = AppState::new(server, client, store, metrics, queries);
        Ok(Self { listener, state })
    }

    /// The address the server listens on (the real port when 0 was asked for).
    ///
    /// # Errors
    /// The listener's I/O error.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The shared state the handlers see.
    #[must_use]
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then drains the requests in flight (see
    /// [`crate::serve::serve_app`]) and the inference history's outbox.
    ///
    /// # Errors
    /// An I/O error of the listener.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let tasks = BackgroundTasks::spawn(&self.state);
        let app = build_app(self.state.clone());
        let result = serve_service(self.listener, app, &self.state, shutdown).await;
        tasks.stop();
        result
    }

    /// As [`Application::run_until_stopped`], with the application wrapped by `wrap`.
    ///
    /// # Errors
    /// An I/O error of the listener.
    pub async fn run_until_stopped_with(
        self,
        wrap: impl WrapApp,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let tasks = BackgroundTasks::spawn(&self.state);
        let app = wrap.wrap(build_app(self.state.clone()));
        let result = serve_service(self.listener, app, &self.state, shutdown).await;
        tasks.stop();
        result
    }
}

/// The tasks that run while the server serves, stopped when it has drained.
struct BackgroundTasks(Vec<tokio::task::JoinHandle<()>>);

impl BackgroundTasks {
    fn spawn(state: &AppState) -> Self {
        let mut tasks = Vec::new();
        if let Some(store) = &state.store {
            tasks.push(spawn_retention(
                Arc::clone(store),
                RetentionPolicy::from_settings(&state.settings),
                state.metrics.clone(),
            ));
        }
        Self(tasks)
    }

    fn stop(self) {
        for task in self.0 {
            task.abort();
        }
    }
}

/// The app's own workspace client from the settings.
///
/// # Errors
/// [`StartupError::Config`] naming the variables, or [`StartupError::Client`].
pub fn workspace_client(settings: &Settings) -> Result<Client, StartupError> {
    let config = settings.workspace_config()?;
    Client::new(config).map_err(StartupError::Client)
}

/// Applies the migrations, logging rather than failing (the policy of the module header).
async fn migrate_on_start(store: &dyn Store) {
    match store.migrate().await {
        Ok(()) => tracing::info!(event = "store.migrated", backend = store.backend()),
        Err(error) => tracing::error!(
            event = "store.migrate_failed",
            backend = store.backend(),
            error = %error,
        ),
    }
}
