//! Which store the server uses, opened once at start from [`Settings::store`]
//! (`shared/DESIGN.md`): `DATABASE_URL` (Postgres or SQLite) first; else Lakebase from the `PG*`
//! variables, logging in with OAuth tokens minted as the app (dbapp-store's
//! `WorkspaceTokenSource`) unless `PGPASSWORD` is a native password; else, inside Databricks
//! Apps, no store at all (`STORAGE_NOT_CONFIGURED` rather than writing to the container's
//! ephemeral disk); else a local SQLite file (`DBAPP_SQLITE_PATH`). [`StoreKind`] names which of
//! these the settings chose, for people (the Overview page) rather than for the code.

use std::path::Path;
use std::sync::Arc;

use dbapp_databricks::Client;
use dbapp_store::lakebase::{self, DatabaseConfig, LakebaseSettings, RefreshPolicy};
use dbapp_store::sqlite::SqliteStore;
use dbapp_store::workspace::{CredentialTarget, WorkspaceTokenSource};
use dbapp_store::{PoolSettings, Store};

use crate::config::{ConfigError, Settings};

/// Which kind of store the settings open, as `GET /api/user/me/workspace` reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// A SQLite file: `DBAPP_SQLITE_PATH` (local work) or a `sqlite:` `DATABASE_URL`.
    #[default]
    Sqlite,
    /// A `postgres://` `DATABASE_URL`, or the `PG*` variables with a native `PGPASSWORD`.
    Postgres,
    /// Lakebase Provisioned: passwords minted for `LAKEBASE_INSTANCE_NAME`.
    LakebaseProvisioned,
    /// Lakebase Autoscaling: passwords minted for `LAKEBASE_ENDPOINT` (or project and branch).
    LakebaseAutoscaling,
    /// No store: inside Databricks Apps without a database (`STORAGE_NOT_CONFIGURED`).
    None,
}

impl StoreKind {
    /// The kind [`open_store`] opens for `settings`; it follows the same order.
    #[must_use]
    pub fn of(settings: &Settings) -> Self {
        match (&settings.store.database, &settings.store.credentials) {
            (Some(DatabaseConfig::Url(url)), _) => {
                if secrecy::ExposeSecret::expose_secret(url).starts_with("sqlite:") {
                    Self::Sqlite
                } else {
                    Self::Postgres
                }
            }
            (Some(DatabaseConfig::Lakebase(_)), Some(CredentialTarget::Instance(_))) => {
                Self::LakebaseProvisioned
            }
            (Some(DatabaseConfig::Lakebase(_)), Some(CredentialTarget::Endpoint(_))) => {
                Self::LakebaseAutoscaling
            }
            (Some(DatabaseConfig::Lakebase(_)), None) => Self::Postgres,
            (None, _) if settings.in_databricks_apps() => Self::None,
            (None, _) => Self::Sqlite,
        }
    }
}

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
/// `client` is the app's workspace client, needed only when the store mints Lakebase tokens
/// ([`dbapp_store::StoreConfig::mints_tokens`]).
///
/// # Errors
/// [`StorageError`] naming the variable, or the Lakebase failure.
pub async fn open_store(
    settings: &Settings,
    client: Option<&Client>,
) -> Result<Option<Arc<dyn Store>>, StorageError> {
    let pool = PoolSettings::default();
    match &settings.store.database {
        Some(DatabaseConfig::Url(url)) => Ok(Some(
            lakebase::open_url(url, &pool).map_err(ConfigError::from)?,
        )),
        Some(DatabaseConfig::Lakebase(lakebase_settings)) => {
            match (&settings.store.credentials, client) {
                (Some(target), Some(client)) => {
                    open_lakebase(lakebase_settings, target, client, &pool)
                        .await
                        .map(Some)
                }
                (Some(_), None) => Err(ConfigError::new(
                    "DATABRICKS_HOST",
                    "minting Lakebase tokens needs the app's workspace credentials",
                )
                .into()),
                (None, _) => Ok(Some(Arc::new(
                    lakebase::connect_with_password(lakebase_settings, &pool)
                        .map_err(ConfigError::from)?,
                ))),
            }
        }
        None if settings.in_databricks_apps() => Ok(None),
        None => {
            let path = Path::new(&settings.server.dbapp.sqlite_path);
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
    settings: &LakebaseSettings,
    target: &CredentialTarget,
    client: &Client,
    pool: &PoolSettings,
) -> Result<Arc<dyn Store>, StorageError> {
    let source = Arc::new(WorkspaceTokenSource::new(client.clone(), target.clone()));
    let store = lakebase::connect(settings, source, pool, RefreshPolicy::default())
        .await
        .map_err(StorageError::Lakebase)?;
    Ok(Arc::new(store))
}

#[cfg(test)]
mod tests {
    use dbapp_databricks::Environment;

    use super::StoreKind;
    use crate::config::Settings;

    fn kind(vars: &[(&str, &str)]) -> StoreKind {
        let settings =
            Settings::load(&Environment::from_pairs(vars.iter().copied())).expect("valid settings");
        StoreKind::of(&settings)
    }

    #[test]
    fn the_kind_follows_the_order_the_store_is_opened_in() {
        assert_eq!(kind(&[]), StoreKind::Sqlite);
        assert_eq!(kind(&[("DATABASE_URL", "sqlite:x.db")]), StoreKind::Sqlite);
        assert_eq!(
            kind(&[("DATABASE_URL", "postgres://u@db.example.com/app")]),
            StoreKind::Postgres
        );
        assert_eq!(
            kind(&[
                ("PGHOST", "instance.database.cloud.databricks.com"),
                ("LAKEBASE_INSTANCE_NAME", "dbapp")
            ]),
            StoreKind::LakebaseProvisioned
        );
        assert_eq!(
            kind(&[
                ("PGHOST", "ep.database.cloud.databricks.com"),
                ("LAKEBASE_ENDPOINT", "projects/p/branches/b/endpoints/e")
            ]),
            StoreKind::LakebaseAutoscaling
        );
        assert_eq!(kind(&[("DATABRICKS_APP_NAME", "dbapp")]), StoreKind::None);
    }
}
