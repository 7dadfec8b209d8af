//! `dbapp lakebase setup [--dry-run] [--reader ROLE]…`: makes the store's Postgres ready for
//! the app's role, logged in exactly as `dbapp serve` logs in (the store opened from the same
//! settings: with Lakebase, an OAuth token minted for the app's service principal, database
//! `databricks_postgres`, `sslmode=require`), so that everything it creates is owned by that
//! role.
//!
//! It reads a plan (`dbapp_store::setup`: schema privileges, table ownership, reader grants and
//! default privileges, pending migrations, whose row-level security policies come with them),
//! prints each step with the reason for it, and runs the steps one by one with progress. Safe on
//! every deploy: a step already true is not planned, so a second run prints "nothing to do".
//! When a step needs another role (a table some person created, a missing schema grant), it
//! runs nothing at all and prints the exact statements for the owner or an admin, then fails;
//! `--dry-run` prints the same plan and runs nothing.
//!
//! `dbapp migrate` stays for what it is: the migrations alone, on any backend (SQLite too), with
//! no privilege checks. On Postgres `lakebase setup` is the superset.

use std::io::Write as _;
use std::time::Instant;

use anyhow::{Context, bail};
use dbapp_databricks::Environment;
use dbapp_store::setup::{self, Action, Plan};

use crate::terminal::{Paint, Tone};

#[derive(Debug, clap::Args)]
pub(crate) struct LakebaseArgs {
    #[command(subcommand)]
    command: LakebaseCommand,
}

#[derive(Debug, clap::Subcommand)]
enum LakebaseCommand {
    /// Create the store's tables owned by the app's role, with grants, default privileges and
    /// row-level security; idempotent, safe on every deploy.
    Setup(SetupArgs),
}

#[derive(Debug, clap::Args)]
struct SetupArgs {
    /// Print every statement and why it is needed; execute nothing.
    #[arg(long)]
    dry_run: bool,
    /// A role to give read access (USAGE on the schema, SELECT on the store's tables, and
    /// default privileges for tables later migrations create). Repeatable.
    #[arg(long = "reader", value_name = "ROLE", value_parser = parse_role)]
    readers: Vec<String>,
}

/// A role name as Postgres keeps it: not empty, at most 63 bytes.
fn parse_role(raw: &str) -> Result<String, String> {
    match raw.len() {
        0 => Err("a role name cannot be empty".to_owned()),
        64.. => Err(format!(
            "{raw:?} is longer than Postgres' 63-byte identifier limit"
        )),
        _ => Ok(raw.to_owned()),
    }
}

pub(crate) async fn run(args: LakebaseArgs, env: &Environment) -> anyhow::Result<()> {
    match args.command {
        LakebaseCommand::Setup(args) => setup(args, env).await,
    }
}

async fn setup(args: SetupArgs, env: &Environment) -> anyhow::Result<()> {
    let paint = Paint::stdout(env);
    let started = Instant::now();
    let store = super::migrate::open_store(env).await?;
    let Some(pg) = store.postgres() else {
        bail!(
            "`dbapp lakebase setup` needs a Postgres store (PGHOST with LAKEBASE_INSTANCE_NAME or \
             LAKEBASE_ENDPOINT, or a postgres:// DATABASE_URL); this configuration opens {}: use \
             `dbapp migrate`",
            store.backend()
        );
    };
    let plan = {
        let mut conn = pg
            .pool()
            .acquire()
            .await
            .context("cannot log in to the database as the app")?;
        setup::plan(&mut conn, &args.readers)
            .await
            .context("cannot read the database's roles and privileges")?
    };
    println!(
        "dbapp lakebase setup: role {} on database {}, schema {}{}",
        plan.role,
        plan.database,
        plan.schema,
        if args.dry_run {
            " (dry run: nothing is executed)"
        } else {
            ""
        }
    );
    if plan.steps.is_empty() {
        println!(
            "{} nothing to do: the schema, ownership, grants and all {} migrations are in place",
            paint.paint(Tone::Good, "✓"),
            dbapp_store::postgres::MIGRATOR.iter().count()
        );
        return Ok(());
    }
    let human = plan.human_steps().count();
    if args.dry_run {
        print_plan(&plan, paint);
        if human > 0 {
            println!(
                "\n{human} statement(s) need the object's owner or an admin; setup would stop \
                 before running anything until they are done"
            );
        }
        return Ok(());
    }
    if human > 0 {
        println!(
            "\n{}",
            paint.paint(
                Tone::Attention,
                "The app's role cannot do this itself. Run as the object's owner or an admin \
                 (e.g. in the Lakebase SQL editor), then run setup again:"
            )
        );
        for step in plan.human_steps() {
            println!("  {}", step.statement);
            println!(
                "    {}",
                paint.paint(Tone::Quiet, &format!("why: {}", step.why))
            );
        }
        bail!(
            "{human} statement(s) need another role; nothing was changed (see the statements above)"
        );
    }
    let total = plan.steps.len();
    for (i, step) in plan.steps.iter().enumerate() {
        print!("[{}/{total}] {} … ", i + 1, step.statement);
        std::io::stdout().flush().ok();
        let at = Instant::now();
        match setup::apply_step(pg.pool(), step).await {
            Ok(()) => println!(
                "{} ({} ms)",
                paint.paint(Tone::Good, "ok"),
                at.elapsed().as_millis()
            ),
            Err(error) => {
                println!("{}", paint.paint(Tone::Bad, "failed"));
                println!(
                    "    {}",
                    paint.paint(Tone::Quiet, &format!("why: {}", step.why))
                );
                return Err(anyhow::Error::new(error).context(format!(
                    "step {} of {total} failed: {}; run `dbapp doctor` for the statement a \
                     person must run, or `dbapp lakebase setup --dry-run` for the plan",
                    i + 1,
                    step.statement
                )));
            }
        }
    }
    println!(
        "{} {total} step(s) done in {} ms",
        paint.paint(Tone::Good, "✓"),
        started.elapsed().as_millis()
    );
    Ok(())
}

/// The plan for `--dry-run`: each statement and why.
fn print_plan(plan: &Plan, paint: Paint) {
    for (i, step) in plan.steps.iter().enumerate() {
        let who = match step.action {
            Action::Run | Action::Migrate { .. } => String::new(),
            Action::Human => paint.paint(Tone::Attention, " [needs the owner or an admin]"),
        };
        println!("[{}/{}] {}{who}", i + 1, plan.steps.len(), step.statement);
        println!(
            "    {}",
            paint.paint(Tone::Quiet, &format!("why: {}", step.why))
        );
    }
}
