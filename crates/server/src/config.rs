//! [`Settings`]: everything the server reads from its environment, loaded once with figment and
//! validated once at start ([`Settings::load`]); an invalid value fails naming its variable.
//!
//! Databricks' own variables keep their names (`shared/DESIGN.md` "Configuration"); dbapp's are
//! `DBAPP_*`. An empty value counts as unset.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `DATABRICKS_HOST` | – | workspace URL; a bare host name gets `https://` |
//! | `DATABRICKS_CLIENT_ID`, `DATABRICKS_CLIENT_SECRET` | – | the app's service principal (M2M) |
//! | `DATABRICKS_TOKEN`, `DATABRICKS_CONFIG_PROFILE`, `DATABRICKS_AUTH_TYPE` | – | local credentials for the app's own identity (read by `dbapp-databricks`) |
//! | `DATABRICKS_APP_NAME` | – | set by Databricks Apps; then a store must be configured explicitly |
//! | `DATABRICKS_APP_PORT` | `8000` | port bound on 0.0.0.0 |
//! | `DATABRICKS_WAREHOUSE_ID` | – | SQL warehouse for table previews (`WAREHOUSE_NOT_CONFIGURED` without) |
//! | `PGHOST`, `PGPORT`, `PGDATABASE`, `PGUSER`, `PGSSLMODE`, `PGAPPNAME` | –, 5432, `databricks_postgres`, token `sub`, `require`, – | Lakebase connection |
//! | `PGPASSWORD` | – | a static password for native Postgres; a PAT (`dapi…`) is refused |
//! | `LAKEBASE_INSTANCE_NAME` / `LAKEBASE_ENDPOINT` | – | which credential API mints the Postgres password (Provisioned / Autoscaling) |
//! | `DATABASE_URL` | – | any `postgres://` or `sqlite:` URL instead of Lakebase |
//! | `DBAPP_LOG_FORMAT` | `json` | `json` or `pretty` |
//! | `DBAPP_IDENTITY_CACHE_TTL_SECS` | `60` | identity cache TTL; `0` disables the cache |
//! | `DBAPP_IDENTITY_CACHE_CAPACITY` | `10000` | identity cache entries |
//! | `DBAPP_ADMIN_GROUPS` | `admins` | comma-separated workspace groups whose members are admins |
//! | `DBAPP_CORS_ORIGINS` | – | comma-separated origins allowed by CORS (dev UIs only); none = no CORS |
//! | `DBAPP_REQUEST_TIMEOUT_SECS` | `110` | whole-request deadline, below the Apps proxy's ~120 s |
//! | `DBAPP_METRICS_MAX_USERS` | `1000` | distinct `user_id` labels of `auth_requests_by_user` before `_other` |
//! | `DBAPP_MIGRATE_ON_START` | `true` | apply store migrations when `dbapp serve` starts |
//! | `DBAPP_SQLITE_PATH` | `.dbapp/dbapp.db` | SQLite file used outside Databricks Apps when no database is configured |
//! | `DBAPP_STATEMENT_TIMEOUT_SECS` | `30` | deadline of a table preview statement |

use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Serialized};
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize};

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line (production).
    #[default]
    Json,
    /// Human-readable (local work).
    Pretty,
}

/// The variables Databricks defines, read under their own names.
const RAW_VARIABLES: &[&str] = &[
    "DATABRICKS_HOST",
    "DATABRICKS_CLIENT_ID",
    "DATABRICKS_CLIENT_SECRET",
    "DATABRICKS_TOKEN",
    "DATABRICKS_CONFIG_PROFILE",
    "DATABRICKS_AUTH_TYPE",
    "DATABRICKS_APP_NAME",
    "DATABRICKS_APP_PORT",
    "DATABRICKS_WAREHOUSE_ID",
    "PGHOST",
    "PGPORT",
    "PGDATABASE",
    "PGUSER",
    "PGSSLMODE",
    "PGAPPNAME",
    "PGPASSWORD",
    "LAKEBASE_INSTANCE_NAME",
    "LAKEBASE_ENDPOINT",
    "DATABASE_URL",
];

/// The server's settings (see the module header for every variable).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// `DATABRICKS_HOST`.
    #[serde(default, deserialize_with = "non_empty")]
    pub databricks_host: Option<String>,
    /// `DATABRICKS_CLIENT_ID`.
    #[serde(default, deserialize_with = "non_empty")]
    pub databricks_client_id: Option<String>,
    /// `DATABRICKS_CLIENT_SECRET`.
    #[serde(default, skip_serializing, deserialize_with = "secret")]
    pub databricks_client_secret: Option<SecretString>,
    /// `DATABRICKS_TOKEN`.
    #[serde(default, skip_serializing, deserialize_with = "secret")]
    pub databricks_token: Option<SecretString>,
    /// `DATABRICKS_CONFIG_PROFILE`.
    #[serde(default, deserialize_with = "non_empty")]
    pub databricks_config_profile: Option<String>,
    /// `DATABRICKS_AUTH_TYPE`.
    #[serde(default, deserialize_with = "non_empty")]
    pub databricks_auth_type: Option<String>,
    /// `DATABRICKS_APP_NAME`: set inside Databricks Apps.
    #[serde(default, deserialize_with = "non_empty")]
    pub databricks_app_name: Option<String>,
    /// `DATABRICKS_APP_PORT`.
    #[serde(default = "default_port")]
    pub databricks_app_port: u16,
    /// `DATABRICKS_WAREHOUSE_ID`.
    #[serde(default, deserialize_with = "non_empty")]
    pub databricks_warehouse_id: Option<String>,
    /// `PGHOST`.
    #[serde(default, deserialize_with = "non_empty")]
    pub pghost: Option<String>,
    /// `PGPORT`.
    #[serde(default)]
    pub pgport: Option<u16>,
    /// `PGDATABASE`.
    #[serde(default, deserialize_with = "non_empty")]
    pub pgdatabase: Option<String>,
    /// `PGUSER`.
    #[serde(default, deserialize_with = "non_empty")]
    pub pguser: Option<String>,
    /// `PGSSLMODE`.
    #[serde(default, deserialize_with = "non_empty")]
    pub pgsslmode: Option<String>,
    /// `PGAPPNAME`.
    #[serde(default, deserialize_with = "non_empty")]
    pub pgappname: Option<String>,
    /// `PGPASSWORD`.
    #[serde(default, skip_serializing, deserialize_with = "secret")]
    pub pgpassword: Option<SecretString>,
    /// `LAKEBASE_INSTANCE_NAME`.
    #[serde(default, deserialize_with = "non_empty")]
    pub lakebase_instance_name: Option<String>,
    /// `LAKEBASE_ENDPOINT`.
    #[serde(default, deserialize_with = "non_empty")]
    pub lakebase_endpoint: Option<String>,
    /// `DATABASE_URL` (may hold a password).
    #[serde(default, skip_serializing, deserialize_with = "secret")]
    pub database_url: Option<SecretString>,
    /// `DBAPP_*`.
    #[serde(default)]
    pub dbapp: DbappSettings,
}

/// dbapp's own settings, `DBAPP_*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DbappSettings {
    /// `DBAPP_LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `DBAPP_IDENTITY_CACHE_TTL_SECS`; 0 disables the cache.
    pub identity_cache_ttl_secs: u64,
    /// `DBAPP_IDENTITY_CACHE_CAPACITY`.
    pub identity_cache_capacity: usize,
    /// `DBAPP_ADMIN_GROUPS`, comma-separated.
    #[serde(deserialize_with = "comma_list")]
    pub admin_groups: Vec<String>,
    /// `DBAPP_CORS_ORIGINS`, comma-separated.
    #[serde(deserialize_with = "comma_list")]
    pub cors_origins: Vec<String>,
    /// `DBAPP_REQUEST_TIMEOUT_SECS`.
    pub request_timeout_secs: u64,
    /// `DBAPP_METRICS_MAX_USERS`.
    pub metrics_max_users: usize,
    /// `DBAPP_MIGRATE_ON_START`.
    pub migrate_on_start: bool,
    /// `DBAPP_SQLITE_PATH`.
    pub sqlite_path: String,
    /// `DBAPP_STATEMENT_TIMEOUT_SECS`.
    pub statement_timeout_secs: u64,
}

impl Default for DbappSettings {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Json,
            identity_cache_ttl_secs: 60,
            identity_cache_capacity: 10_000,
            admin_groups: vec!["admins".to_owned()],
            cors_origins: Vec::new(),
            request_timeout_secs: 110,
            metrics_max_users: 1_000,
            migrate_on_start: true,
            sqlite_path: ".dbapp/dbapp.db".to_owned(),
            statement_timeout_secs: 30,
        }
    }
}

fn default_port() -> u16 {
    8000
}

/// A setting that cannot be used; the message names the variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {variable}: {reason}")]
pub struct ConfigError {
    /// The environment variable, e.g. `DATABRICKS_APP_PORT`.
    pub variable: String,
    /// Why, and what is accepted.
    pub reason: String,
}

impl ConfigError {
    /// An error about `variable`.
    pub fn new(variable: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            variable: variable.into(),
            reason: reason.into(),
        }
    }
}

impl Settings {
    /// The figment of the process environment: defaults, the Databricks variables under their
    /// own names, then `DBAPP_*`. Callers (the CLI, tests) may merge more providers on top.
    #[must_use]
    pub fn figment() -> Figment {
        Figment::new()
            .merge(Serialized::defaults(DbappDefaults::default()))
            .merge(Env::raw().only(RAW_VARIABLES))
            .merge(Env::prefixed("DBAPP_").map(|key| format!("dbapp.{key}").into()))
    }

    /// Loads and validates the settings from the process environment.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first invalid variable.
    pub fn load() -> Result<Self, ConfigError> {
        Self::from_figment(&Self::figment())
    }

    /// Extracts and validates settings from `figment`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first invalid variable.
    pub fn from_figment(figment: &Figment) -> Result<Self, ConfigError> {
        let settings: Self = figment.extract().map_err(|error| {
            let variable = variable_of(&error.path);
            let reason = error.kind.to_string();
            ConfigError::new(variable, reason)
        })?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what serde cannot: a PAT as a Postgres password, conflicting Lakebase variables,
    /// origins and timeouts.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.databricks_app_port == 0 {
            return Err(ConfigError::new(
                "DATABRICKS_APP_PORT",
                "must be a port number from 1 to 65535",
            ));
        }
        dbapp_store::lakebase::DatabaseConfig::from_env(|name| self.store_variable(name)).map_err(
            |error| {
                let variable = match &error {
                    dbapp_store::lakebase::LakebaseError::InvalidVariable { variable, .. } => {
                        (*variable).to_owned()
                    }
                    dbapp_store::lakebase::LakebaseError::PersonalAccessToken { origin } => {
                        (*origin).to_owned()
                    }
                    _ => "PGHOST".to_owned(),
                };
                ConfigError::new(variable, error.to_string())
            },
        )?;
        if self.lakebase_instance_name.is_some() && self.lakebase_endpoint.is_some() {
            return Err(ConfigError::new(
                "LAKEBASE_ENDPOINT",
                "set either LAKEBASE_INSTANCE_NAME (Provisioned) or LAKEBASE_ENDPOINT \
                 (Autoscaling), not both",
            ));
        }
        for origin in &self.dbapp.cors_origins {
            let valid = (origin.starts_with("http://") || origin.starts_with("https://"))
                && axum::http::HeaderValue::from_str(origin).is_ok()
                && !origin.ends_with('/');
            if !valid {
                return Err(ConfigError::new(
                    "DBAPP_CORS_ORIGINS",
                    format!("{origin:?} is not an origin like http://localhost:5173"),
                ));
            }
        }
        if self.dbapp.request_timeout_secs == 0 {
            return Err(ConfigError::new(
                "DBAPP_REQUEST_TIMEOUT_SECS",
                "must be at least 1",
            ));
        }
        if self.dbapp.statement_timeout_secs == 0 {
            return Err(ConfigError::new(
                "DBAPP_STATEMENT_TIMEOUT_SECS",
                "must be at least 1",
            ));
        }
        if self.dbapp.admin_groups.is_empty() {
            return Err(ConfigError::new(
                "DBAPP_ADMIN_GROUPS",
                "must name at least one group",
            ));
        }
        Ok(())
    }

    /// The `PG*`/`DATABASE_URL` variables as the store's config parser reads them.
    #[must_use]
    pub fn store_variable(&self, name: &str) -> Option<String> {
        use secrecy::ExposeSecret;
        match name {
            "DATABASE_URL" => self
                .database_url
                .as_ref()
                .map(|s| s.expose_secret().to_owned()),
            "PGHOST" => self.pghost.clone(),
            "PGPORT" => self.pgport.map(|p| p.to_string()),
            "PGDATABASE" => self.pgdatabase.clone(),
            "PGUSER" => self.pguser.clone(),
            "PGSSLMODE" => self.pgsslmode.clone(),
            "PGAPPNAME" => self.pgappname.clone(),
            "PGPASSWORD" => self
                .pgpassword
                .as_ref()
                .map(|s| s.expose_secret().to_owned()),
            _ => None,
        }
    }

    /// Whether the process runs inside Databricks Apps.
    #[must_use]
    pub fn in_databricks_apps(&self) -> bool {
        self.databricks_app_name.is_some()
    }

    /// The whole-request deadline.
    #[must_use]
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.dbapp.request_timeout_secs)
    }

    /// The identity cache TTL (zero: disabled).
    #[must_use]
    pub fn identity_cache_ttl(&self) -> Duration {
        Duration::from_secs(self.dbapp.identity_cache_ttl_secs)
    }
}

/// Defaults as a serialisable value, so figment reports them as the source of unset settings.
#[derive(Debug, Serialize)]
struct DbappDefaults {
    databricks_app_port: u16,
    dbapp: DbappSettings,
}

impl Default for DbappDefaults {
    fn default() -> Self {
        Self {
            databricks_app_port: default_port(),
            dbapp: DbappSettings::default(),
        }
    }
}

/// The variable behind a figment key path.
fn variable_of(path: &[String]) -> String {
    match path {
        [first, rest @ ..] if first == "dbapp" && !rest.is_empty() => {
            format!("DBAPP_{}", rest.join("__").to_ascii_uppercase())
        }
        [] => "environment".to_owned(),
        other => other.join("_").to_ascii_uppercase(),
    }
}

fn non_empty<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let value = Option::<Value>::deserialize(deserializer)?;
    Ok(value
        .map(|v| v.into_string())
        .filter(|s| !s.trim().is_empty()))
}

fn secret<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<SecretString>, D::Error> {
    Ok(non_empty(deserializer)?.map(SecretString::from))
}

fn comma_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List {
        One(Value),
        Many(Vec<String>),
    }
    Ok(match List::deserialize(deserializer)? {
        List::One(value) => value
            .into_string()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        List::Many(items) => items,
    })
}

/// A scalar from the environment: figment parses `123` as a number and `true` as a boolean, but
/// an id or a name is text whatever it looks like.
#[derive(Deserialize)]
#[serde(untagged)]
enum Value {
    Text(String),
    Integer(i128),
    Float(f64),
    Bool(bool),
}

impl Value {
    fn into_string(self) -> String {
        match self {
            Self::Text(s) => s,
            Self::Integer(n) => n.to_string(),
            Self::Float(n) => n.to_string(),
            Self::Bool(b) => b.to_string(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn defaults_apply_without_variables() {
        Jail::expect_with(|_| {
            let settings = Settings::load().unwrap();
            assert_eq!(settings.databricks_app_port, 8000);
            assert_eq!(settings.dbapp.admin_groups, ["admins"]);
            assert_eq!(settings.dbapp.identity_cache_ttl_secs, 60);
            assert_eq!(settings.dbapp.identity_cache_capacity, 10_000);
            assert_eq!(settings.dbapp.log_format, LogFormat::Json);
            Ok(())
        });
    }

    #[test]
    fn variables_are_read_under_their_names() {
        Jail::expect_with(|jail| {
            jail.set_env("DATABRICKS_APP_PORT", "8123");
            jail.set_env("DATABRICKS_WAREHOUSE_ID", "12345");
            jail.set_env("DBAPP_ADMIN_GROUPS", "admins, ops");
            jail.set_env("DBAPP_LOG_FORMAT", "pretty");
            jail.set_env("DBAPP_IDENTITY_CACHE_TTL_SECS", "0");
            let settings = Settings::load().unwrap();
            assert_eq!(settings.databricks_app_port, 8123);
            assert_eq!(settings.databricks_warehouse_id.as_deref(), Some("12345"));
            assert_eq!(settings.dbapp.admin_groups, ["admins", "ops"]);
            assert_eq!(settings.dbapp.log_format, LogFormat::Pretty);
            assert_eq!(settings.identity_cache_ttl(), Duration::ZERO);
            Ok(())
        });
    }

    #[test]
    fn an_invalid_port_names_its_variable() {
        Jail::expect_with(|jail| {
            jail.set_env("DATABRICKS_APP_PORT", "eighty");
            let error = Settings::load().unwrap_err();
            assert_eq!(error.variable, "DATABRICKS_APP_PORT");
            assert!(error.to_string().contains("DATABRICKS_APP_PORT"));
            Ok(())
        });
    }

    #[test]
    fn an_invalid_dbapp_variable_names_itself() {
        Jail::expect_with(|jail| {
            jail.set_env("DBAPP_IDENTITY_CACHE_TTL_SECS", "-3");
            let error = Settings::load().unwrap_err();
            assert_eq!(error.variable, "DBAPP_IDENTITY_CACHE_TTL_SECS");
            jail.set_env("DBAPP_IDENTITY_CACHE_TTL_SECS", "5");
            jail.set_env("DBAPP_LOG_FORMAT", "xml");
            let error = Settings::load().unwrap_err();
            assert_eq!(error.variable, "DBAPP_LOG_FORMAT");
            Ok(())
        });
    }

    #[test]
    fn a_pat_as_postgres_password_is_refused() {
        Jail::expect_with(|jail| {
            jail.set_env("PGHOST", "instance.database.example.com");
            jail.set_env("PGPASSWORD", "dapi0123456789");
            let error = Settings::load().unwrap_err();
            assert_eq!(error.variable, "PGPASSWORD");
            assert!(!error.to_string().contains("dapi0123456789"));
            Ok(())
        });
    }

    #[test]
    fn bad_cors_origins_and_sslmode_are_refused() {
        Jail::expect_with(|jail| {
            jail.set_env("DBAPP_CORS_ORIGINS", "localhost:5173");
            assert_eq!(Settings::load().unwrap_err().variable, "DBAPP_CORS_ORIGINS");
            jail.set_env("DBAPP_CORS_ORIGINS", "http://localhost:5173");
            jail.set_env("PGHOST", "h");
            jail.set_env("PGSSLMODE", "sometimes");
            assert_eq!(Settings::load().unwrap_err().variable, "PGSSLMODE");
            Ok(())
        });
    }

    #[test]
    fn debug_never_shows_secrets() {
        Jail::expect_with(|jail| {
            jail.set_env("DATABRICKS_CLIENT_SECRET", "very-secret-value");
            let settings = Settings::load().unwrap();
            assert!(!format!("{settings:?}").contains("very-secret-value"));
            Ok(())
        });
    }
}
