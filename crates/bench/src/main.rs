//! `dbapp-bench`: dbapp against its performance targets, every figure a ratio against a baseline
//! measured in the same run (issue 8; `docs/performance.md` has the commands, the targets and the
//! latest table).
//!
//! - `cli`: arguments. `scenarios`: what each scenario starts, loads and compares. `load`: the
//!   closed-loop HTTP load generator. `procs`: child processes, readiness, `/proc` memory.
//!   `baseline`: the hello-world and raw-sqlx server the harness runs as its own process
//!   (`--baseline-server`). `report`: the Markdown table and the JSON document. `admin_report`:
//!   the in-process scenario of the admin performance report over many raw records. `genie`:
//!   the direct Genie client the `genie-ask` scenario compares dbapp's ask route with.
//!   `progress`: the start and end line of each scenario on stderr, with its time.
//!
//! Exit status: 0 when every process survived, every scenario could be set up and the rotation
//! scenario saw no error; 1 otherwise. Missed speed targets never fail a run: on a shared
//! two-core machine they are figures for the report, not a gate.

mod admin_report;
mod baseline;
mod cli;
mod genie;
mod load;
mod procs;
mod progress;
mod report;
mod scenarios;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

/// The allocator dbapp's binary uses, so the baseline server runs on the same stack (and the
/// load generator in this process pays the same per-allocation price).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("dbapp-bench: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = if cli.baseline_server {
        runtime.block_on(baseline::serve(cli.baseline_database_url.clone()))
    } else {
        runtime.block_on(bench(&cli))
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("dbapp-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn bench(cli: &cli::Cli) -> anyhow::Result<()> {
    let report = scenarios::run(cli).await?;
    println!("{}", report.markdown());
    if let Some(path) = &cli.json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if report.failures.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{} failure(s), listed above", report.failures.len())
    }
}
