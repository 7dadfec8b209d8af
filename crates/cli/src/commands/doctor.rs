//! `dbapp doctor [--json]`: diagnoses the configuration of this environment (see
//! `crate::doctor` for the checks and the JSON shape). Prints the report on stdout and exits
//! with status 1 when any check failed, so scripts and CI can gate on it.

use crate::terminal::Paint;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use dbapp_databricks::Environment;

use crate::doctor::{self, Input};

#[derive(Debug, clap::Args)]
pub(crate) struct DoctorArgs {
    /// Print the report as JSON (stable shape: version, context, config, checks, summary, ok).
    #[arg(long)]
    json: bool,
    /// A user token to check (default: DATABRICKS_USER_TOKEN).
    #[arg(long)]
    user_token: Option<String>,
    /// Directory with app.yaml and/or databricks.yml (default: the current directory, else
    /// ./deploy).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Seconds each network probe may take (no retries).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=120))]
    timeout: u64,
}

pub(crate) async fn run(args: DoctorArgs, env: Environment) -> anyhow::Result<()> {
    let paint = Paint::stdout(&env);
    let input = Input {
        vars: env,
        user_token_flag: args.user_token,
        manifest_dir: args.dir.unwrap_or_else(doctor::manifest::default_dir),
        timeout: Duration::from_secs(args.timeout),
    };
    let report = doctor::diagnose(&input).await;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("cannot serialise the report")?
        );
    } else {
        print!("{}", doctor::render_human(&report, paint));
    }
    if !report.ok {
        std::process::exit(1);
    }
    Ok(())
}
