//! `dbapp migrate`: applies the store's migrations (the store the environment configures, as
//! `dbapp serve` would open it); a no-op when they are applied already. Unlike the migrations
//! `serve` runs at start, a failure here is the command's failure. The workspace configuration
//! is resolved only when the store mints Lakebase tokens, so a `DATABASE_URL` needs none.
//! On Postgres, `dbapp lakebase setup` runs the same migrations after checking the role's
//! privileges and the tables' owners.

use std::sync::Arc;

use anyhow::Context;
use dbapp_databricks::Environment;
use dbapp_server::config::Settings;
use dbapp_server::startup::workspace_client;
use dbapp_server::storage;
use dbapp_store::Store;

#[derive(Debug, clap::Args)]
pub(crate) struct MigrateArgs {}

pub(crate) async fn run(_args: MigrateArgs, env: &Environment) -> anyhow::Result<()> {
    let store = open_store(env).await?;
    store.migrate().await.context(
        "migrations failed (on Postgres, `dbapp lakebase setup --dry-run` shows what the app's \
         role lacks)",
    )?;
    println!("migrations applied ({})", store.backend());
    Ok(())
}

/// The store the environment configures, opened as `dbapp serve` opens it (the same login).
pub(super) async fn open_store(env: &Environment) -> anyhow::Result<Arc<dyn Store>> {
    let settings = Settings::load(env)?;
    let client = if settings.store.mints_tokens() {
        Some(workspace_client(&settings)?)
    } else {
        None
    };
    storage::open_store(&settings, client.as_ref())
        .await
        .context("cannot open the store")?
        .context("no database is configured (set DATABASE_URL or the PG* variables)")
}
