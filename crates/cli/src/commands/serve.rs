//! `dbapp serve`: the production server, configured from the environment (see
//! `dbapp_server::config` for every variable). It refuses to start, naming the variables, when
//! the configuration is invalid; binds `0.0.0.0:$DATABRICKS_APP_PORT` (HTTP/1.1 and h2c); is
//! assembled by `dbapp_server::Application` (store, migrations per `DBAPP_MIGRATE_ON_START`,
//! workspace client, router); and on SIGTERM or Ctrl-C stops accepting, lets in-flight requests
//! finish and exits within 15 s. It never injects identities: every user comes from the Apps
//! proxy's `X-Forwarded-Access-Token`.

use std::net::{Ipv4Addr, SocketAddr};

use dbapp_databricks::Environment;
use dbapp_server::Application;
use dbapp_server::config::Settings;
use dbapp_server::metrics::Metrics;

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {}

pub(crate) async fn run(_args: ServeArgs, env: &Environment) -> anyhow::Result<()> {
    let settings = Settings::load(env)?;
    let otel = dbapp_server::otel::Exporter::from_env(env);
    // Held to the end of `run`: dropping it exports the queued spans and writes out the queued
    // log lines.
    let _logs = dbapp_server::telemetry::init(
        settings.server.dbapp.log_format,
        env.get("RUST_LOG").as_deref(),
        otel.clone().ok(),
    )
    .map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))?;
    dbapp_server::otel::log_decision(&otel);
    let metrics = Metrics::new(
        settings.server.dbapp.metrics_max_users,
        settings.server.dbapp.metrics_user_labels,
    );
    metrics
        .install_global()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let address = SocketAddr::from((Ipv4Addr::UNSPECIFIED, settings.server.databricks_app_port));
    let app = Application::build_with_metrics(settings, address, metrics).await?;
    tracing::info!(event = "server.listening", port = app.local_addr()?.port());
    app.run_until_stopped(shutdown_signal()).await?;
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
