//! The subcommands of `dbapp` (see `shared/DESIGN.md`, "CLI"). Each lives in its own module with a
//! `run` function; this module owns the clap definitions they share.

mod deploy;
#[cfg(feature = "emulator")]
mod dev;
mod doctor;
#[cfg(feature = "emulator")]
mod emulate;
mod lakebase;
mod migrate;
mod openapi;
mod serve;
mod token;

use clap::{Parser, Subcommand};
use dbapp_databricks::Environment;

/// dbapp: Databricks Apps, done right.
#[derive(Debug, Parser)]
#[command(name = "dbapp", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

impl Cli {
    /// Runs the chosen subcommand with the environment captured at start.
    ///
    /// # Errors
    ///
    /// Whatever the subcommand fails with, as a message for the person who ran it.
    pub async fn run(self, env: Environment) -> anyhow::Result<()> {
        self.command.run(env).await
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the production server, configured from the environment.
    Serve(serve::ServeArgs),
    /// Run the app locally: emulator (or a real workspace), local store, server, demo users.
    #[cfg(feature = "emulator")]
    Dev(dev::DevArgs),
    /// Run the local Databricks workspace emulator alone.
    #[cfg(feature = "emulator")]
    Emulate(emulate::EmulateArgs),
    /// Apply the store's migrations.
    Migrate(migrate::MigrateArgs),
    /// Lakebase administration: `setup` makes the database ready for the app's role.
    Lakebase(lakebase::LakebaseArgs),
    /// Diagnose the configuration: context, effective settings, and checks with fixes.
    Doctor(doctor::DoctorArgs),
    /// Print a user token for local calls, or with --lakebase the PG* variables for psql.
    Token(token::TokenArgs),
    /// Build, check, upload and deploy the bundle's app, then prove it answers.
    Deploy(deploy::DeployArgs),
    /// Print the OpenAPI document of the server.
    Openapi(openapi::OpenapiArgs),
}

impl Command {
    pub(crate) async fn run(self, env: Environment) -> anyhow::Result<()> {
        // `serve` installs the server's own subscriber (JSON lines on stdout); the others log
        // human-readable lines on stderr.
        // `doctor`, `token`, `lakebase` and `deploy` print for people or scripts on stdout;
        // their logs stay quiet unless RUST_LOG asks.
        match self {
            Self::Serve(_) => {}
            Self::Doctor(_) | Self::Token(_) | Self::Lakebase(_) | Self::Deploy(_) => {
                init_tracing(&env, "warn");
            }
            _ => init_tracing(&env, "info"),
        }
        match self {
            Self::Serve(args) => serve::run(args, &env).await,
            #[cfg(feature = "emulator")]
            Self::Dev(args) => dev::run(args, &env).await,
            #[cfg(feature = "emulator")]
            Self::Emulate(args) => emulate::run(args).await,
            Self::Migrate(args) => migrate::run(args, &env).await,
            Self::Lakebase(args) => lakebase::run(args, &env).await,
            Self::Doctor(args) => doctor::run(args, env).await,
            Self::Token(args) => token::run(args, &env).await,
            Self::Deploy(args) => deploy::run(args, &env).await,
            Self::Openapi(args) => openapi::run(args),
        }
    }
}

/// Human-readable logs on stderr, filtered by `RUST_LOG` (else `default`); stdout is kept for
/// output other programs read.
pub(crate) fn init_tracing(env: &Environment, default: &str) {
    let filter = env
        .get("RUST_LOG")
        .and_then(|directives| tracing_subscriber::EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(crate::terminal::Paint::stderr(env).colour())
        .init();
}

/// Adds the way out to a bind error: when the port is taken, `--port 0` picks a free one.
#[cfg(feature = "emulator")]
fn suggest_free_port(error: anyhow::Error) -> anyhow::Error {
    let in_use = error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::AddrInUse)
    });
    if in_use {
        anyhow::anyhow!("{error:#}; pass --port 0 to pick a free port")
    } else {
        error
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        super::Cli::command().debug_assert();
    }
}
