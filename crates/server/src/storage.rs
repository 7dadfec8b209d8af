//! Which store the server uses, chosen once at start from [`Settings`] (`shared/DESIGN.md`):
//! `DATABASE_URL` (Postgres or SQLite) first; else Lakebase from the `PG*` variables, logging in
//! with OAuth tokens minted as the app (dbapp-store's `WorkspaceTokenSource`) unless `PGPASSWORD` is a
//! native password; else, inside Databricks Apps, no store at all (`STORAGE_NOT_CONFIGURED`
//! rather than writing to the container's ephemeral disk); else a local SQLite file.

use std::path::Path;
use std::sync::Arc;

use dbapp_databricks::Client;
use dbapp_store::lakebase::{self, DatabaseConfig, LakebaseSettings, RefreshPolicy, TokenSource};
use dbapp_store::sqlite::SqliteStore;
use dbapp_store::workspace::{CredentialTarget, WorkspaceTokenSource};
use dbapp_store::{PoolSettings, Store};

use crate::config::{ConfigError, Settings};

/// Why no store could be opened.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A variable is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Connecting to Lakebase failed (e.g. the first token could not be minted).
    #[error("cannot open the Lakebase store")]
    Lakebase(#[source] lakebase::LakebaseError),
}

/// Opens the store the settings name; `None` inside Databricks Apps without a database.
///
/// # Errors
/// [`StorageError`] naming the variable, or the Lakebase failure.
pub async fn open_store(
    settings: &Settings,
    client: &Client,
) -> Result<Option<Arc<dyn Store>>, StorageError> {
    let pool = PoolSettings::default();
    let config = DatabaseConfig::from_env(|name| settings.store_variable(name))
        .map_err(|e| ConfigError::new("PGHOST", e.to_string()))?;
    match config {
        Some(DatabaseConfig::Url(url)) => {
            Ok(Some(lakebase::open_url(&url, &pool).map_err(|e| {
                ConfigError::new("DATABASE_URL", e.to_string())
            })?))
        }
        Some(DatabaseConfig::Lakebase(lakebase_settings)) => {
            open_lakebase(settings, &lakebase_settings, client, &pool)
                .await
                .map(Some)
        }
        None if settings.in_databricks_apps() => Ok(None),
        None => {
            let path = Path::new(&settings.dbapp.sqlite_path);
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| {
                    ConfigError::new(
                        "DBAPP_SQLITE_PATH",
                        format!("cannot create {}: {e}", parent.display()),
                    )
                })?;
            }
            Ok(Some(Arc::new(SqliteStore::open(path, &pool))))
        }
    }
}

async fn open_lakebase(
    settings: &Settings,
    lakebase_settings: &LakebaseSettings,
    client: &Client,
    pool: &PoolSettings,
) -> Result<Arc<dyn Store>, StorageError> {
    let target = CredentialTarget::from_env(|name| match name {
        "LAKEBASE_INSTANCE_NAME" => settings.lakebase_instance_name.clone(),
        "LAKEBASE_ENDPOINT" => settings.lakebase_endpoint.clone(),
        _ => None,
    })
    .map_err(|e| ConfigError::new("LAKEBASE_ENDPOINT", e.to_string()))?;
    let source: Arc<dyn TokenSource> = match target {
        Some(target) => Arc::new(WorkspaceTokenSource::new(client.clone(), target)),
        None if lakebase_settings.static_password.is_some() => {
            // Not called: a static password needs no minting.
            Arc::new(WorkspaceTokenSource::new(
                client.clone(),
                CredentialTarget::Instance(String::new()),
            ))
        }
        None => {
            return Err(ConfigError::new(
                "LAKEBASE_INSTANCE_NAME",
                "PGHOST is set, so set LAKEBASE_INSTANCE_NAME (Provisioned) or LAKEBASE_ENDPOINT \
                 (Autoscaling) to mint the Postgres password, or PGPASSWORD for a native login",
            )
            .into());
        }
    };
    let store = lakebase::connect(lakebase_settings, source, pool, RefreshPolicy::default())
        .await
        .map_err(StorageError::Lakebase)?;
    Ok(Arc::new(store))
}
