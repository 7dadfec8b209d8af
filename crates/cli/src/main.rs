//! The `dbapp` binary: parses the command line and hands each subcommand to its module in
//! `commands/`. Everything testable lives in the library crates; this file is wiring.

mod bundle;
mod commands;
mod doctor;
mod terminal;

use clap::Parser;

/// mimalloc rather than glibc's allocator: a request allocates a few dozen small, short-lived
/// blocks across worker threads, and glibc's malloc/free was ~15 % of the server's instructions
/// on the hottest routes (callgrind; README "Performance").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = commands::Cli::parse();
    // The one read of the process environment: every command parses its configuration from
    // this snapshot (`dbapp_server::config`).
    let env = dbapp_databricks::Environment::capture();
    cli.command.run(env).await
}
