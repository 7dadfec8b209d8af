//! `dbapp emulate`: the local Databricks workspace emulator, until Ctrl-C or SIGTERM.
//!
//! It prints one line to stdout once it accepts connections,
//! `dbapp emulator listening on http://127.0.0.1:<port>`, so scripts can wait for it and read
//! the port (useful with `--port 0`); logs go to stderr. With `--lakebase` or
//! `--postgres-admin-url` it also serves the emulated Lakebase's Postgres front, whose address
//! `GET /_emulator/info` reports as `lakebase {host, port}`.
//!
//! Deployed apps run by default: each app gets a proxy on 127.0.0.1 (its `url`) in front of its
//! processes (`docs/emulator.md`, "Running any app locally"); `--no-run-apps` keeps deployments
//! clock-driven only, with no processes.

use std::path::PathBuf;

use anyhow::Context;
use dbapp_emulator::postgres::{ClusterOptions, PrivateCluster};
use dbapp_emulator::{EmulatorConfig, Fixture};

#[derive(Debug, clap::Args)]
pub(crate) struct EmulateArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8089, env = "DBAPP_EMULATOR_PORT")]
    port: u16,
    /// A fixture file (JSON, or TOML without NULLs) replacing the default workspace.
    #[arg(long)]
    fixture: Option<PathBuf>,
    /// Postgres superuser URL: the server behind the emulated Lakebase, whose Postgres front
    /// then takes minted tokens as passwords.
    #[arg(
        long,
        env = "DBAPP_EMULATOR_POSTGRES_ADMIN_URL",
        conflicts_with = "lakebase"
    )]
    postgres_admin_url: Option<String>,
    /// Run the emulated Lakebase on a private Postgres cluster in a temporary directory, started
    /// from the machine's PostgreSQL binaries and removed on exit.
    #[arg(long)]
    lakebase: bool,
    /// Where the Lakebase front listens (default 127.0.0.1 on a free port). Its IP is the host
    /// instances and endpoints report, so `127.0.0.2:5432` serves clients that assume port 5432.
    #[arg(long, value_name = "ADDR:PORT")]
    lakebase_listen: Option<std::net::SocketAddr>,
    /// Lifetime of minted database credentials, in seconds.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    db_token_ttl: Option<u64>,
    /// Do not run deployed apps: deployments and compute then only follow the clock
    /// (`apps_transition_ms`), and apps get no proxy.
    #[arg(long)]
    no_run_apps: bool,
    /// Print the default fixture (the fixture file format, filled in) and exit.
    #[arg(long)]
    print_fixture: bool,
}

pub(crate) async fn run(args: EmulateArgs) -> anyhow::Result<()> {
    if args.print_fixture {
        print!("{}", Fixture::default_json());
        return Ok(());
    }
    let fixture = match &args.fixture {
        Some(path) => Fixture::from_file(path)?,
        None => Fixture::default(),
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))
        .map_err(super::suggest_free_port)?;
    let cluster = if args.lakebase {
        eprintln!("dbapp emulate: starting a private Postgres cluster for --lakebase…");
        Some(
            PrivateCluster::start(ClusterOptions::default())
                .await
                .context("cannot start the private Postgres cluster for --lakebase")?,
        )
    } else {
        None
    };
    let config = EmulatorConfig {
        fixture,
        postgres_admin_url: args
            .postgres_admin_url
            .or_else(|| cluster.as_ref().map(PrivateCluster::admin_url)),
        lakebase_listen: args.lakebase_listen,
        db_token_ttl_secs: args.db_token_ttl,
        run_apps: !args.no_run_apps,
        ..EmulatorConfig::default()
    };
    let emulator = dbapp_emulator::start(listener, config)
        .await
        .context("cannot start the emulator")?;
    if let Some(front) = emulator.lakebase_addr() {
        eprintln!("dbapp emulate: Lakebase front on {front} (TLS, minted tokens as passwords)");
    }
    println!("dbapp emulator listening on {}", emulator.base_url());
    shutdown_signal().await?;
    emulator.shutdown().await;
    if let Some(cluster) = cluster {
        cluster.stop().await.ok();
    }
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("cannot listen for Ctrl-C"),
        _ = terminate.recv() => Ok(()),
    }
}
