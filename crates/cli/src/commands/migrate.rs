//! `dbapp migrate`: applies the store's migrations (the store the environment configures, as
//! `dbapp serve` would open it); a no-op when they are applied already.

use anyhow::Context;
use dbapp_server::app::databricks_client;
use dbapp_server::config::Settings;
use dbapp_server::storage::open_store;

#[derive(Debug, clap::Args)]
pub(crate) struct MigrateArgs {}

pub(crate) async fn run(_args: MigrateArgs) -> anyhow::Result<()> {
    let settings = Settings::load()?;
    let client = databricks_client(&settings)?;
    let store = open_store(&settings, &client)
        .await
        .context("cannot open the store")?
        .context("no database is configured (set DATABASE_URL or the PG* variables)")?;
    store.migrate().await.context("migrations failed")?;
    println!("migrations applied ({})", store.backend());
    Ok(())
}
