//! The `dbapp` binary: parses the command line and hands each subcommand to its module in
//! `commands/`. Everything testable lives in the library crates; this file is wiring.

mod commands;
mod doctor;

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = commands::Cli::parse();
    cli.command.run().await
}
