//! `dbapp serve`: the production server, configured from the environment (see
//! `dbapp_server::config` for every variable). It refuses to start, naming the variable, when the
//! configuration is invalid; binds `0.0.0.0:$DATABRICKS_APP_PORT` (HTTP/1.1 and h2c); applies
//! migrations first when `DBAPP_MIGRATE_ON_START` is on; and on SIGTERM or Ctrl-C stops
//! accepting, lets in-flight requests finish and exits within 15 s. It never injects identities:
//! every user comes from the Apps proxy's `X-Forwarded-Access-Token`.

use anyhow::Context;
use dbapp_server::app::{AppState, databricks_client, serve};
use dbapp_server::config::Settings;
use dbapp_server::metrics::Metrics;
use dbapp_server::storage::open_store;

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {}

pub(crate) async fn run(_args: ServeArgs) -> anyhow::Result<()> {
    let settings = Settings::load()?;
    // Held to the end of `run`: dropping it writes out the queued log lines.
    let _logs = dbapp_server::telemetry::init(settings.dbapp.log_format)
        .map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))?;
    let metrics = Metrics::new(settings.dbapp.metrics_max_users);
    metrics
        .install_global()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let client = databricks_client(&settings)?;
    let store = open_store(&settings, &client)
        .await
        .context("cannot open the store")?;
    if settings.dbapp.migrate_on_start
        && let Some(store) = &store
    {
        // The server starts even when the database is down (it reports it on /ready).
        match store.migrate().await {
            Ok(()) => tracing::info!(event = "store.migrated", backend = store.backend()),
            Err(error) => tracing::error!(event = "store.migrate_failed", error = %error),
        }
    }
    let port = settings.databricks_app_port;
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port))
        .await
        .with_context(|| format!("cannot listen on 0.0.0.0:{port} (DATABRICKS_APP_PORT)"))?;
    tracing::info!(event = "server.listening", port);
    let state = AppState::new(settings, client, store, metrics);
    serve(listener, state, shutdown_signal()).await?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM (what Databricks Apps sends before SIGKILL 15 s later).
pub(crate) async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
