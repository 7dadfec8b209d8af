//! [`Settings`]: the whole configuration of a dbapp process, parsed once from one
//! [`Environment`] snapshot and validated once ([`Settings::load`]). `serve`, `dev`, `migrate`,
//! `token` and `doctor` all load it so, so doctor cannot disagree with serve.
//!
//! It composes what each crate parses for itself:
//! - the workspace (`DATABRICKS_*`): [`dbapp_databricks::Config`], resolved by
//!   [`Settings::workspace_config`] from the same snapshot (and `~/.databrickscfg`), so a
//!   command that needs no workspace (`migrate` on SQLite) never resolves it;
//! - the store (`DATABASE_URL`, `PG*`, `LAKEBASE_*`): [`StoreConfig`];
//! - the server's own (`DATABRICKS_APP_*`, `DATABRICKS_WAREHOUSE_ID`, `DBAPP_*`): this module,
//!   through figment.
//!
//! Nothing reads the process environment after the snapshot is taken. A refusal is a
//! [`ConfigError`] naming every variable at fault, and the fix. Databricks' own variables keep
//! their names (`shared/DESIGN.md` "Configuration"); dbapp's are `DBAPP_*`. An empty value counts
//! as unset.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `DATABRICKS_HOST` | – | workspace URL; a bare host name gets `https://` |
//! | `DATABRICKS_CLIENT_ID`, `DATABRICKS_CLIENT_SECRET` | – | the app's service principal (M2M) |
//! | `DATABRICKS_TOKEN`, `DATABRICKS_CONFIG_PROFILE`, `DATABRICKS_AUTH_TYPE` | – | local credentials for the app's own identity (read by `dbapp-databricks`) |
//! | `DATABRICKS_APP_NAME` | – | set by Databricks Apps; then a store must be configured explicitly |
//! | `DATABRICKS_APP_PORT` | `8000` | port bound on 0.0.0.0 |
//! | `DATABRICKS_WAREHOUSE_ID` | – | SQL warehouse for table previews (`WAREHOUSE_NOT_CONFIGURED` without) |
//! | `PGHOST`, `PGPORT`, `PGDATABASE`, `PGUSER`, `PGSSLMODE`, `PGSSLROOTCERT`, `PGAPPNAME` | –, 5432, `databricks_postgres`, token `sub`, `require`, –, – | Lakebase connection (parsed by `dbapp_store::config`) |
//! | `PGPASSWORD` | – | a static password for native Postgres; a PAT (`dapi…`) is refused |
//! | `LAKEBASE_INSTANCE_NAME` / `LAKEBASE_ENDPOINT` | – | which credential API mints the Postgres password (Provisioned / Autoscaling) |
//! | `DATABASE_URL` | – | any `postgres://` or `sqlite:` URL instead of Lakebase |
//! | `DBAPP_LOG_FORMAT` | `json` | `json` or `pretty` |
//! | `DBAPP_IDENTITY_CACHE_TTL_SECS` | `60` | identity cache TTL; `0` disables the cache |
//! | `DBAPP_IDENTITY_CACHE_CAPACITY` | `10000` | identity cache entries |
//! | `DBAPP_ADMIN_GROUPS` | `admins` | comma-separated workspace groups whose members are admins |
//! | `DBAPP_CORS_ORIGINS` | – | comma-separated origins allowed by CORS (dev UIs only); none = no CORS |
//! | `DBAPP_REQUEST_TIMEOUT_SECS` | `110` | whole-request deadline, below the Apps proxy's ~120 s; a model invocation's `timeout_seconds` may be at most this minus [`MODEL_TIMEOUT_MARGIN_SECS`] (100 by default, see [`ServerSettings::model_timeout_max_secs`]) |
//! | `DBAPP_HISTORY_INPUT_MAX_BYTES` | `65536` | serialized inputs longer than this are stored in the inference history cut to this many bytes, flagged `inputs_truncated` |
//! | `DBAPP_HISTORY_OUTBOX_CAPACITY` | `10000` | 1 to 1 000 000 inference-history records that may wait for the store (invocations in flight included); past it invocations are refused with `DATABASE_UNAVAILABLE` (see the `history` module) |
//! | `DBAPP_HEADER_READ_TIMEOUT_SECS` | `10` | a new connection's first request head, and any request head once begun, must arrive within it (see the `serve` module) |
//! | `DBAPP_IDLE_TIMEOUT_SECS` | `75` | a connection with no request in flight is closed after it; above the usual 60 s proxy idle timeout |
//! | `DBAPP_MAX_CONNECTIONS` | `512` | connections open at once; more wait in the listen backlog (half of a 1 024 descriptor limit) |
//! | `DBAPP_CHAT_TIMEOUT_SECS` | `300` | the longest a streamed chat answer may take, whole (`MODEL_TIMEOUT` event past it) |
//! | `DBAPP_ASSISTANT_ENDPOINT` | – | the chat serving endpoint the data assistant runs on (`/api/assistant/...`; `503 ASSISTANT_NOT_CONFIGURED` without; see `docs/assistant.md`) |
//! | `DBAPP_ASSISTANT_MAX_STEPS` | `6` | 1 to 50: most tool calls of one assistant answer; past it the answer ends with a `limit` event |
//! | `DBAPP_ASSISTANT_DEADLINE_SECS` | `120` | the longest one assistant answer may take, tools included; past it the answer ends with a `limit` event |
//! | `DBAPP_ASSISTANT_MAX_TOKENS` | `1024` | `max_tokens` asked of the endpoint at each step; an answer cut there ends with a `limit` event |
//! | `DBAPP_CHAT_HEARTBEAT_SECS` | `15` | a `: keep-alive` comment is sent after this long without an event from the endpoint |
//! | `DBAPP_METRICS_MAX_USERS` | `1000` | distinct `user_id` labels of `auth_requests_by_user` before `_other` |
//! | `DBAPP_METRICS_USER_LABELS` | `hash` | `hash` (a short salted hash, random salt per process) or `email`: how `auth_requests_by_user` names users |
//! | `DBAPP_METRICS_TOKEN` | – | a scrape token (at least 24 characters) that reads `/metrics` as `Authorization: Bearer …`; otherwise `/metrics` is for admins |
//! | `DBAPP_RETENTION_USAGE_DAYS` | `90` | usage events are deleted this many days after they arrived (server clock); `0` keeps them forever |
//! | `DBAPP_RETENTION_HISTORY_DAYS` | `90` | inference history is deleted this many days after the invocation started; `0` keeps it forever |
//! | `DBAPP_RETENTION_REQUEST_RECORDS_DAYS` | `7` | raw request records (`performance_metrics`) are deleted after this many days; the dashboards read the rollups, not these; `0` keeps them forever |
//! | `DBAPP_RETENTION_ROLLUP_DAYS` | `90` | per-minute and hourly request rollups are deleted after this many days; below 90 the 90-day dashboard loses its oldest days; `0` keeps them forever |
//! | `DBAPP_RETENTION_INTERVAL_SECS` | `3600` | the retention task purges at start and then this often (at least 1; see the `retention` module) |
//! | `DBAPP_MIGRATE_ON_START` | `true` | apply store migrations when the app starts (`serve`, `dev`); a failure is logged and the server still starts (see the `startup` module) |
//! | `DBAPP_SQLITE_PATH` | `.dbapp/dbapp.db` | SQLite file used outside Databricks Apps when no database is configured |
//! | `DBAPP_STATEMENT_TIMEOUT_SECS` | `30` | deadline of a table preview or governed query statement |
//! | `DBAPP_QUERIES_DIR` | – | a directory of `.sql` query files read at start *instead of* the ones embedded in the binary (see `docs/queries.md`); a bad file stops the start |
//! | `DBAPP_QUERY_ROW_LIMIT` | `10000` | 1 to 1 000 000: the `row_limit` of a governed query's statement; a result cut there says `truncated: true` |
//! | `DBAPP_QUERY_CACHE_MAX_ENTRIES` | `1000` | governed query results kept at once; `0` disables the cache |
//! | `DBAPP_QUERY_CACHE_MAX_BYTES` | `67108864` | estimated bytes of the cached query results (64 MiB); a larger result is not cached |
//! | `DBAPP_QUERY_PENDING_WAIT_MS` | `2000` | 1 to 60 000: how long a query request waits for a starting warehouse before answering `202` with a run to poll |
//! | `DBAPP_QUOTA_USAGE_EVENTS_PER_MINUTE` | `1200` | usage events per user per minute, also the burst (see the `quota` module); `0`: no quota |
//! | `DBAPP_QUOTA_INVOCATIONS_PER_MINUTE` | `120` | model invocations per user per minute, also the burst; `0`: no quota |
//! | `DBAPP_VOLUME_UPLOAD_MAX_BYTES` | `104857600` (100 MiB) | largest file uploaded to a volume (`PUT /api/volumes/…/files/content`), at least 1; that route streams its body and is exempt from the 1 MiB body limit (see the `body_limit` module) |

use std::time::Duration;

use dbapp_databricks::{Config, ConfigSettings, Environment};
use dbapp_store::{Retained, StoreConfig};
use figment::Figment;
use figment::providers::Serialized;
use figment::value::Value as FigmentValue;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};

/// The bounds on connections (`DBAPP_HEADER_READ_TIMEOUT_SECS`, `DBAPP_IDLE_TIMEOUT_SECS`,
/// `DBAPP_MAX_CONNECTIONS`; see the module header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// The time a new connection has to send its first request head, and any later request
    /// head from its first byte.
    pub header_read_timeout: Duration,
    /// How long a connection may stay open with no request in flight.
    pub idle_timeout: Duration,
    /// Connections open at once; more wait in the listen backlog.
    pub max_connections: usize,
}

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

/// How `auth_requests_by_user` names users (`DBAPP_METRICS_USER_LABELS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum UserLabels {
    /// A short salted hash of the user id: counts per user without e-mail addresses in the
    /// metrics store. The salt is random per process, so a label is stable for a process's life.
    #[default]
    Hash,
    /// The user id itself (an e-mail for people).
    Email,
}

/// The most `DBAPP_ASSISTANT_MAX_STEPS` may be: each step is a tool call and its result in the
/// conversation, which holds at most `dbapp_store::MAX_CONVERSATION_MESSAGES`.
pub const MAX_ASSISTANT_STEPS: u32 = 50;

/// The server's own variables that Databricks defines, read under their own names.
const RAW_VARIABLES: &[&str] = &[
    "DATABRICKS_APP_NAME",
    "DATABRICKS_APP_PORT",
    "DATABRICKS_WAREHOUSE_ID",
];

/// Variables whose values are text whatever they look like: figment would read a warehouse id
/// `0123` as the number 123.
const TEXT_VARIABLES: &[&str] = &[
    "DBAPP_METRICS_TOKEN",
    "DATABRICKS_APP_NAME",
    "DATABRICKS_WAREHOUSE_ID",
    "DBAPP_SQLITE_PATH",
    "DBAPP_QUERIES_DIR",
    "DBAPP_ASSISTANT_ENDPOINT",
    "DBAPP_ADMIN_GROUPS",
    "DBAPP_CORS_ORIGINS",
];

/// The whole configuration (see the module header).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The snapshot everything was parsed from (the workspace is resolved against it).
    pub env: Environment,
    /// Explicit workspace settings, applied over the snapshot's `DATABRICKS_*` when resolving
    /// ([`Settings::workspace_config`]); empty unless a caller (`dev`, tests) sets them.
    pub workspace: ConfigSettings,
    /// The store's database and login.
    pub store: StoreConfig,
    /// The server's own settings.
    pub server: ServerSettings,
}

/// The server's own settings: `DATABRICKS_APP_*`, `DATABRICKS_WAREHOUSE_ID` and `DBAPP_*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerSettings {
    /// `DATABRICKS_APP_NAME`: set inside Databricks Apps.
    #[serde(default, deserialize_with = "non_empty")]
    pub databricks_app_name: Option<String>,
    /// `DATABRICKS_APP_PORT`.
    #[serde(default = "default_port")]
    pub databricks_app_port: u16,
    /// `DATABRICKS_WAREHOUSE_ID`.
    #[serde(default, deserialize_with = "non_empty")]
    pub databricks_warehouse_id: Option<String>,
    /// `DBAPP_*`.
    #[serde(default)]
    pub dbapp: DbappSettings,
    /// Which kind of store the server opened: not a variable, but derived from the store's
    /// variables by [`crate::Application::build`] ([`crate::storage::StoreKind::of`]), so the
    /// handlers can name it.
    #[serde(skip)]
    pub store_kind: crate::storage::StoreKind,
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
    /// `DBAPP_HEADER_READ_TIMEOUT_SECS`.
    pub header_read_timeout_secs: u64,
    /// `DBAPP_IDLE_TIMEOUT_SECS`.
    pub idle_timeout_secs: u64,
    /// `DBAPP_MAX_CONNECTIONS`.
    pub max_connections: usize,
    /// `DBAPP_METRICS_MAX_USERS`.
    pub metrics_max_users: usize,
    /// `DBAPP_MIGRATE_ON_START`.
    pub migrate_on_start: bool,
    /// `DBAPP_SQLITE_PATH`.
    pub sqlite_path: String,
    /// `DBAPP_STATEMENT_TIMEOUT_SECS`.
    pub statement_timeout_secs: u64,
    /// `DBAPP_QUERIES_DIR`: query files read instead of the embedded ones.
    #[serde(deserialize_with = "non_empty")]
    pub queries_dir: Option<String>,
    /// `DBAPP_QUERY_ROW_LIMIT`.
    pub query_row_limit: u64,
    /// `DBAPP_QUERY_CACHE_MAX_ENTRIES`; 0 disables the cache.
    pub query_cache_max_entries: usize,
    /// `DBAPP_QUERY_CACHE_MAX_BYTES`.
    pub query_cache_max_bytes: usize,
    /// `DBAPP_QUERY_PENDING_WAIT_MS`.
    pub query_pending_wait_ms: u64,
    /// `DBAPP_METRICS_TOKEN`: a scrape token that reads `/metrics` as `Authorization: Bearer`.
    #[serde(skip_serializing, deserialize_with = "secret")]
    pub metrics_token: Option<SecretString>,
    /// `DBAPP_METRICS_USER_LABELS`.
    pub metrics_user_labels: UserLabels,
    /// `DBAPP_CHAT_TIMEOUT_SECS`: the longest a streamed chat answer may take, whole.
    pub chat_timeout_secs: u64,
    /// `DBAPP_ASSISTANT_ENDPOINT`: the chat endpoint the assistant runs on; none: not offered.
    #[serde(deserialize_with = "non_empty")]
    pub assistant_endpoint: Option<String>,
    /// `DBAPP_ASSISTANT_MAX_STEPS`: most tool calls of one assistant answer.
    pub assistant_max_steps: u32,
    /// `DBAPP_ASSISTANT_DEADLINE_SECS`: the longest one assistant answer may take.
    pub assistant_deadline_secs: u64,
    /// `DBAPP_ASSISTANT_MAX_TOKENS`: `max_tokens` of each call to the assistant's endpoint.
    pub assistant_max_tokens: u32,
    /// `DBAPP_CHAT_HEARTBEAT_SECS`: the keep-alive comment's period while an endpoint is silent.
    pub chat_heartbeat_secs: u64,
    /// `DBAPP_HISTORY_INPUT_MAX_BYTES`.
    pub history_input_max_bytes: usize,
    /// `DBAPP_HISTORY_OUTBOX_CAPACITY`.
    pub history_outbox_capacity: usize,
    /// `DBAPP_QUOTA_USAGE_EVENTS_PER_MINUTE`; 0: no quota.
    pub quota_usage_events_per_minute: u32,
    /// `DBAPP_QUOTA_INVOCATIONS_PER_MINUTE`; 0: no quota.
    pub quota_invocations_per_minute: u32,
    /// `DBAPP_RETENTION_USAGE_DAYS`; 0 keeps usage events forever.
    pub retention_usage_days: u32,
    /// `DBAPP_RETENTION_HISTORY_DAYS`; 0 keeps the inference history forever.
    pub retention_history_days: u32,
    /// `DBAPP_RETENTION_REQUEST_RECORDS_DAYS`; 0 keeps raw request records forever.
    pub retention_request_records_days: u32,
    /// `DBAPP_RETENTION_ROLLUP_DAYS`; 0 keeps the request rollups forever.
    pub retention_rollup_days: u32,
    /// `DBAPP_RETENTION_INTERVAL_SECS`.
    pub retention_interval_secs: u64,
    /// `DBAPP_VOLUME_UPLOAD_MAX_BYTES`: the upload route's own body cap.
    pub volume_upload_max_bytes: u64,
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
            header_read_timeout_secs: 10,
            idle_timeout_secs: 75,
            max_connections: 512,
            metrics_max_users: 1_000,
            migrate_on_start: true,
            sqlite_path: ".dbapp/dbapp.db".to_owned(),
            statement_timeout_secs: 30,
            queries_dir: None,
            query_row_limit: 10_000,
            query_cache_max_entries: 1_000,
            query_cache_max_bytes: 64 * 1024 * 1024,
            query_pending_wait_ms: 2_000,
            metrics_token: None,
            metrics_user_labels: UserLabels::Hash,
            chat_timeout_secs: 300,
            chat_heartbeat_secs: 15,
            assistant_endpoint: None,
            assistant_max_steps: 6,
            assistant_deadline_secs: 120,
            assistant_max_tokens: 1024,
            history_input_max_bytes: 64 * 1024,
            history_outbox_capacity: 10_000,
            quota_usage_events_per_minute: 1_200,
            quota_invocations_per_minute: 120,
            retention_usage_days: 90,
            retention_history_days: 90,
            retention_request_records_days: 7,
            retention_rollup_days: 90,
            retention_interval_secs: 3_600,
            volume_upload_max_bytes: 100 * 1024 * 1024,
        }
    }
}

fn default_port() -> u16 {
    8000
}

/// What a model invocation's `timeout_seconds` leaves of the request deadline, at most: time to
/// establish the caller's identity, read the endpoint and record the invocation, so that a
/// model timeout is answered `MODEL_TIMEOUT` and recorded rather than cut by the deadline.
/// A deadline under 20 s keeps half of itself instead.
pub const MODEL_TIMEOUT_MARGIN_SECS: u64 = 10;

/// Largest `DBAPP_HISTORY_OUTBOX_CAPACITY`: far above any useful setting (a million records of
/// up to 64 KiB of inputs each), and well within what the outbox's semaphore can count.
pub const MAX_HISTORY_OUTBOX_CAPACITY: usize = 1_000_000;

/// Largest `DBAPP_QUERY_ROW_LIMIT`: a result is held whole in memory to page and cache it.
pub const MAX_QUERY_ROW_LIMIT: u64 = 1_000_000;

/// Largest `DBAPP_QUERY_PENDING_WAIT_MS`: the wait must stay well inside the request deadline.
pub const MAX_QUERY_PENDING_WAIT_MS: u64 = 60_000;

/// Shortest scrape token accepted: it is a password.
pub const MIN_METRICS_TOKEN_CHARS: usize = 24;

/// A configuration that cannot be used; the message names the variables and the fix.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid configuration: {}: {reason}", variables.join(", "))]
pub struct ConfigError {
    /// The environment variables at fault, e.g. `["DATABRICKS_APP_PORT"]`; for a conflict,
    /// every variable involved.
    pub variables: Vec<String>,
    /// Why, and what to do.
    pub reason: String,
}

impl ConfigError {
    /// An error about `variable`.
    pub fn new(variable: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            variables: vec![variable.into()],
            reason: reason.into(),
        }
    }
}

impl From<dbapp_databricks::ConfigError> for ConfigError {
    fn from(error: dbapp_databricks::ConfigError) -> Self {
        Self {
            variables: error.variables().into_iter().map(str::to_owned).collect(),
            reason: error.to_string(),
        }
    }
}

impl From<dbapp_store::lakebase::LakebaseError> for ConfigError {
    fn from(error: dbapp_store::lakebase::LakebaseError) -> Self {
        Self {
            variables: error.variables().into_iter().map(str::to_owned).collect(),
            reason: error.to_string(),
        }
    }
}

/// The server's variables in `env` as figment sees them: the raw ones under their own
/// (lower-cased) names, `DBAPP_X` as `dbapp.x`, each value parsed as figment parses environment
/// values, over the defaults.
fn figment_of(env: &Environment) -> Figment {
    let mut figment = Figment::new().merge(Serialized::defaults(ServerDefaults::default()));
    for (name, value) in env.vars() {
        let key = if RAW_VARIABLES.contains(&name) {
            name.to_ascii_lowercase()
        } else if let Some(rest) = name.strip_prefix("DBAPP_") {
            format!("dbapp.{}", rest.to_ascii_lowercase())
        } else {
            continue;
        };
        let parsed: FigmentValue = if TEXT_VARIABLES.contains(&name) {
            FigmentValue::from(value.to_owned())
        } else {
            value.parse().unwrap_or_else(|never| match never {})
        };
        figment = figment.merge(Serialized::default(&key, parsed));
    }
    figment
}

impl Settings {
    /// Parses and validates the whole configuration from `env`. The workspace is resolved
    /// later, by [`Settings::workspace_config`], because not every command needs one.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variables at fault.
    pub fn load(env: &Environment) -> Result<Self, ConfigError> {
        let server: ServerSettings = figment_of(env)
            .extract()
            .map_err(|error| ConfigError::new(variable_of(&error.path), error.kind.to_string()))?;
        server.validate()?;
        let store = StoreConfig::from_env(env.lookup())?;
        Ok(Self {
            env: env.clone(),
            workspace: ConfigSettings::default(),
            store,
            server,
        })
    }

    /// The app's own workspace configuration: [`Settings::workspace`] over the snapshot's
    /// `DATABRICKS_*` and `~/.databrickscfg`, as the Databricks SDKs resolve it.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variables: the dual-auth trap names both methods' variables
    /// and `DATABRICKS_AUTH_TYPE`; a missing secret names `DATABRICKS_CLIENT_SECRET`.
    pub fn workspace_config(&self) -> Result<Config, ConfigError> {
        let mut workspace = self.workspace.clone();
        if workspace.warehouse_id.is_none() {
            workspace
                .warehouse_id
                .clone_from(&self.server.databricks_warehouse_id);
        }
        Ok(Config::resolve(workspace, &self.env.lookup())?)
    }

    /// Whether the process runs inside Databricks Apps.
    #[must_use]
    pub fn in_databricks_apps(&self) -> bool {
        self.server.databricks_app_name.is_some()
    }
}

impl ServerSettings {
    /// Checks what serde cannot: ports, origins, timeouts, groups.
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
        for (variable, value) in [
            (
                "DBAPP_HEADER_READ_TIMEOUT_SECS",
                self.dbapp.header_read_timeout_secs,
            ),
            ("DBAPP_IDLE_TIMEOUT_SECS", self.dbapp.idle_timeout_secs),
            ("DBAPP_CHAT_TIMEOUT_SECS", self.dbapp.chat_timeout_secs),
            ("DBAPP_CHAT_HEARTBEAT_SECS", self.dbapp.chat_heartbeat_secs),
            (
                "DBAPP_ASSISTANT_DEADLINE_SECS",
                self.dbapp.assistant_deadline_secs,
            ),
            (
                "DBAPP_ASSISTANT_MAX_TOKENS",
                u64::from(self.dbapp.assistant_max_tokens),
            ),
            (
                "DBAPP_VOLUME_UPLOAD_MAX_BYTES",
                self.dbapp.volume_upload_max_bytes,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::new(variable, "must be at least 1"));
            }
        }
        if !(1..=MAX_ASSISTANT_STEPS).contains(&self.dbapp.assistant_max_steps) {
            return Err(ConfigError::new(
                "DBAPP_ASSISTANT_MAX_STEPS",
                format!("must be from 1 to {MAX_ASSISTANT_STEPS}"),
            ));
        }
        if self.dbapp.max_connections == 0 {
            return Err(ConfigError::new(
                "DBAPP_MAX_CONNECTIONS",
                "must be at least 1",
            ));
        }
        if self.dbapp.history_input_max_bytes == 0 {
            return Err(ConfigError::new(
                "DBAPP_HISTORY_INPUT_MAX_BYTES",
                "must be at least 1",
            ));
        }
        if !(1..=MAX_HISTORY_OUTBOX_CAPACITY).contains(&self.dbapp.history_outbox_capacity) {
            return Err(ConfigError::new(
                "DBAPP_HISTORY_OUTBOX_CAPACITY",
                format!("must be from 1 to {MAX_HISTORY_OUTBOX_CAPACITY}"),
            ));
        }
        if self.dbapp.retention_interval_secs == 0 {
            return Err(ConfigError::new(
                "DBAPP_RETENTION_INTERVAL_SECS",
                "must be at least 1",
            ));
        }
        if self.dbapp.statement_timeout_secs == 0 {
            return Err(ConfigError::new(
                "DBAPP_STATEMENT_TIMEOUT_SECS",
                "must be at least 1",
            ));
        }
        if !(1..=MAX_QUERY_ROW_LIMIT).contains(&self.dbapp.query_row_limit) {
            return Err(ConfigError::new(
                "DBAPP_QUERY_ROW_LIMIT",
                format!("must be from 1 to {MAX_QUERY_ROW_LIMIT}"),
            ));
        }
        if !(1..=MAX_QUERY_PENDING_WAIT_MS).contains(&self.dbapp.query_pending_wait_ms) {
            return Err(ConfigError::new(
                "DBAPP_QUERY_PENDING_WAIT_MS",
                format!("must be from 1 to {MAX_QUERY_PENDING_WAIT_MS}"),
            ));
        }
        if let Some(token) = &self.dbapp.metrics_token
            && token.expose_secret().chars().count() < MIN_METRICS_TOKEN_CHARS
        {
            return Err(ConfigError::new(
                "DBAPP_METRICS_TOKEN",
                format!(
                    "use at least {MIN_METRICS_TOKEN_CHARS} characters (e.g. `openssl rand -hex 24`)"
                ),
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

    /// The whole-request deadline.
    #[must_use]
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.dbapp.request_timeout_secs)
    }

    /// The largest `timeout_seconds` a model invocation may ask for: the request deadline minus
    /// [`MODEL_TIMEOUT_MARGIN_SECS`], or minus half of it when it is under 20 s (at least 1).
    #[must_use]
    pub fn model_timeout_max_secs(&self) -> u64 {
        let deadline = self.dbapp.request_timeout_secs;
        let margin = MODEL_TIMEOUT_MARGIN_SECS.min(deadline / 2);
        (deadline - margin).max(1)
    }

    /// The bounds on connections of the `serve` module's `serve_app`.
    #[must_use]
    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(self.dbapp.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(self.dbapp.idle_timeout_secs),
            max_connections: self.dbapp.max_connections,
        }
    }

    /// How long each retained table keeps its rows; `None` keeps them forever (0 days).
    #[must_use]
    pub fn retention(&self, table: Retained) -> Option<Duration> {
        let days = match table {
            Retained::UsageEvents => self.dbapp.retention_usage_days,
            Retained::InferenceLogs => self.dbapp.retention_history_days,
            Retained::RequestRecords => self.dbapp.retention_request_records_days,
            Retained::Rollups => self.dbapp.retention_rollup_days,
        };
        (days > 0).then(|| Duration::from_secs(u64::from(days) * 86_400))
    }

    /// How often the retention task purges.
    #[must_use]
    pub fn retention_interval(&self) -> Duration {
        Duration::from_secs(self.dbapp.retention_interval_secs)
    }

    /// The identity cache TTL (zero: disabled).
    #[must_use]
    pub fn identity_cache_ttl(&self) -> Duration {
        Duration::from_secs(self.dbapp.identity_cache_ttl_secs)
    }
}

/// Defaults as a serialisable value, so figment reports them as the source of unset settings.
#[derive(Debug, Serialize)]
struct ServerDefaults {
    databricks_app_port: u16,
    dbapp: DbappSettings,
}

impl Default for ServerDefaults {
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
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::load(&Environment::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn defaults_apply_without_variables() {
        let settings = load(&[]).unwrap();
        let server = &settings.server;
        assert_eq!(server.databricks_app_port, 8000);
        assert_eq!(server.dbapp.admin_groups, ["admins"]);
        assert_eq!(server.dbapp.identity_cache_ttl_secs, 60);
        assert_eq!(server.dbapp.identity_cache_capacity, 10_000);
        assert_eq!(server.dbapp.log_format, LogFormat::Json);
        assert!(settings.store.database.is_none());
    }

    #[test]
    fn variables_are_read_under_their_names() {
        let settings = load(&[
            ("DATABRICKS_APP_PORT", "8123"),
            ("DATABRICKS_WAREHOUSE_ID", "12345"),
            ("DBAPP_ADMIN_GROUPS", "admins, ops"),
            ("DBAPP_LOG_FORMAT", "pretty"),
            ("DBAPP_IDENTITY_CACHE_TTL_SECS", "0"),
            ("DBAPP_MIGRATE_ON_START", "false"),
        ])
        .unwrap();
        let server = &settings.server;
        assert_eq!(server.databricks_app_port, 8123);
        assert_eq!(server.databricks_warehouse_id.as_deref(), Some("12345"));
        assert_eq!(server.dbapp.admin_groups, ["admins", "ops"]);
        assert_eq!(server.dbapp.log_format, LogFormat::Pretty);
        assert_eq!(server.identity_cache_ttl(), Duration::ZERO);
        assert!(!server.dbapp.migrate_on_start);
    }

    #[test]
    fn a_warehouse_id_that_looks_like_a_number_stays_text() {
        let settings = load(&[("DATABRICKS_WAREHOUSE_ID", "0123")]).unwrap();
        assert_eq!(
            settings.server.databricks_warehouse_id.as_deref(),
            Some("0123")
        );
    }

    #[test]
    fn an_invalid_port_names_its_variable() {
        let error = load(&[("DATABRICKS_APP_PORT", "eighty")]).unwrap_err();
        assert_eq!(error.variables, ["DATABRICKS_APP_PORT"]);
        assert!(error.to_string().contains("DATABRICKS_APP_PORT"));
    }

    #[test]
    fn an_invalid_dbapp_variable_names_itself() {
        let error = load(&[("DBAPP_IDENTITY_CACHE_TTL_SECS", "-3")]).unwrap_err();
        assert_eq!(error.variables, ["DBAPP_IDENTITY_CACHE_TTL_SECS"]);
        let error = load(&[("DBAPP_LOG_FORMAT", "xml")]).unwrap_err();
        assert_eq!(error.variables, ["DBAPP_LOG_FORMAT"]);
    }

    #[test]
    fn connection_limits_default_and_refuse_zero() {
        let limits = load(&[]).unwrap().server.connection_limits();
        assert_eq!(limits.header_read_timeout, Duration::from_secs(10));
        assert_eq!(limits.idle_timeout, Duration::from_secs(75));
        assert_eq!(limits.max_connections, 512);
        for variable in [
            "DBAPP_HEADER_READ_TIMEOUT_SECS",
            "DBAPP_IDLE_TIMEOUT_SECS",
            "DBAPP_MAX_CONNECTIONS",
        ] {
            let error = load(&[(variable, "0")]).unwrap_err();
            assert_eq!(error.variables, [variable]);
        }
    }

    #[test]
    fn the_model_timeout_fits_inside_the_request_deadline_with_its_margin() {
        // Arrange
        let deadline = |secs: &'static str| {
            load(&[("DBAPP_REQUEST_TIMEOUT_SECS", secs)])
                .unwrap()
                .server
                .model_timeout_max_secs()
        };

        // Act / Assert: 10 s of margin, half of short deadlines, never below 1.
        assert_eq!(load(&[]).unwrap().server.model_timeout_max_secs(), 100);
        assert_eq!(deadline("300"), 290);
        assert_eq!(deadline("20"), 10);
        assert_eq!(deadline("12"), 6);
        assert_eq!(deadline("3"), 2);
        assert_eq!(deadline("1"), 1);
    }

    #[test]
    fn history_limits_default_and_refuse_zero_and_a_huge_outbox() {
        // Arrange / Act
        let settings = load(&[]).unwrap();

        // Assert
        assert_eq!(settings.server.dbapp.history_input_max_bytes, 65_536);
        assert_eq!(settings.server.dbapp.history_outbox_capacity, 10_000);
        for (variable, value) in [
            ("DBAPP_HISTORY_INPUT_MAX_BYTES", "0"),
            ("DBAPP_HISTORY_OUTBOX_CAPACITY", "0"),
            ("DBAPP_HISTORY_OUTBOX_CAPACITY", "1000001"),
        ] {
            let error = load(&[(variable, value)]).unwrap_err();
            assert_eq!(error.variables, [variable]);
        }
    }

    #[test]
    fn retention_defaults_keep_90_days_of_dashboards_and_zero_keeps_forever() {
        // Arrange
        let defaults = load(&[]).unwrap().server;
        let custom = load(&[
            ("DBAPP_RETENTION_USAGE_DAYS", "0"),
            ("DBAPP_RETENTION_REQUEST_RECORDS_DAYS", "2"),
            ("DBAPP_RETENTION_INTERVAL_SECS", "60"),
        ])
        .unwrap()
        .server;

        // Act
        let days =
            |server: &ServerSettings, table| server.retention(table).map(|d| d.as_secs() / 86_400);

        // Assert
        assert_eq!(days(&defaults, Retained::Rollups), Some(90));
        assert_eq!(days(&defaults, Retained::UsageEvents), Some(90));
        assert_eq!(days(&defaults, Retained::InferenceLogs), Some(90));
        assert_eq!(days(&defaults, Retained::RequestRecords), Some(7));
        assert_eq!(defaults.retention_interval(), Duration::from_secs(3_600));
        assert_eq!(days(&custom, Retained::UsageEvents), None);
        assert_eq!(days(&custom, Retained::RequestRecords), Some(2));
        assert_eq!(custom.retention_interval(), Duration::from_secs(60));
        for (variable, value) in [
            ("DBAPP_RETENTION_INTERVAL_SECS", "0"),
            ("DBAPP_RETENTION_ROLLUP_DAYS", "-1"),
        ] {
            assert_eq!(
                load(&[(variable, value)]).unwrap_err().variables,
                [variable]
            );
        }
    }

    #[test]
    fn quotas_default_and_read_their_variables() {
        // Arrange
        let defaults = load(&[]).unwrap().server.dbapp;

        // Act
        let set = load(&[
            ("DBAPP_QUOTA_USAGE_EVENTS_PER_MINUTE", "0"),
            ("DBAPP_QUOTA_INVOCATIONS_PER_MINUTE", "7"),
        ])
        .unwrap()
        .server
        .dbapp;
        let negative = load(&[("DBAPP_QUOTA_INVOCATIONS_PER_MINUTE", "-1")]).unwrap_err();

        // Assert
        assert_eq!(defaults.quota_usage_events_per_minute, 1_200);
        assert_eq!(defaults.quota_invocations_per_minute, 120);
        assert_eq!(set.quota_usage_events_per_minute, 0);
        assert_eq!(set.quota_invocations_per_minute, 7);
        assert_eq!(negative.variables, ["DBAPP_QUOTA_INVOCATIONS_PER_MINUTE"]);
    }

    #[test]
    fn a_pat_as_postgres_password_is_refused() {
        let error = load(&[
            ("PGHOST", "instance.database.example.com"),
            ("PGPASSWORD", "dapi0123456789"),
        ])
        .unwrap_err();
        assert_eq!(error.variables, ["PGPASSWORD"]);
        assert!(!error.to_string().contains("dapi0123456789"));
    }

    #[test]
    fn bad_cors_origins_and_sslmode_are_refused() {
        let origins = load(&[("DBAPP_CORS_ORIGINS", "localhost:5173")]).unwrap_err();
        let sslmode = load(&[
            ("PGHOST", "h"),
            ("PGSSLMODE", "sometimes"),
            ("LAKEBASE_INSTANCE_NAME", "i"),
        ])
        .unwrap_err();
        assert_eq!(origins.variables, ["DBAPP_CORS_ORIGINS"]);
        assert_eq!(sslmode.variables, ["PGSSLMODE"]);
    }

    #[test]
    fn the_dual_auth_trap_names_both_methods_variables_and_the_fix() {
        let settings = load(&[
            ("DATABRICKS_HOST", "https://example.cloud.databricks.com"),
            ("DATABRICKS_TOKEN", "dapi-user"),
            ("DATABRICKS_CLIENT_ID", "sp"),
            ("DATABRICKS_CLIENT_SECRET", "s3cret"),
        ])
        .unwrap();
        let error = settings.workspace_config().unwrap_err();
        assert_eq!(
            error.variables,
            [
                "DATABRICKS_TOKEN",
                "DATABRICKS_CLIENT_ID",
                "DATABRICKS_CLIENT_SECRET",
                "DATABRICKS_AUTH_TYPE"
            ]
        );
        assert!(!error.to_string().contains("s3cret"), "{error}");
    }

    #[test]
    fn a_missing_client_secret_names_databricks_client_secret() {
        let settings = load(&[
            ("DATABRICKS_HOST", "https://example.cloud.databricks.com"),
            ("DATABRICKS_CLIENT_ID", "sp"),
        ])
        .unwrap();
        let error = settings.workspace_config().unwrap_err();
        assert_eq!(error.variables, ["DATABRICKS_CLIENT_SECRET"]);
    }

    #[test]
    fn the_warehouse_reaches_the_workspace_config() {
        let settings = load(&[
            ("DATABRICKS_HOST", "https://example.cloud.databricks.com"),
            ("DATABRICKS_TOKEN", "t"),
            ("DATABRICKS_WAREHOUSE_ID", "w1"),
        ])
        .unwrap();
        assert_eq!(
            settings.workspace_config().unwrap().warehouse_id(),
            Some("w1")
        );
    }

    #[test]
    fn a_short_metrics_token_is_refused_and_a_long_one_kept_secret() {
        let short = load(&[("DBAPP_METRICS_TOKEN", "0123456789")]).unwrap_err();
        let long = load(&[("DBAPP_METRICS_TOKEN", "0123456789abcdef0123456789")]).unwrap();
        assert_eq!(short.variables, ["DBAPP_METRICS_TOKEN"]);
        assert!(!short.to_string().contains("0123456789"), "{short}");
        assert!(!format!("{long:?}").contains("0123456789abcdef"));
        let labels = load(&[("DBAPP_METRICS_USER_LABELS", "email")]).unwrap();
        assert_eq!(labels.server.dbapp.metrics_user_labels, UserLabels::Email);
        assert_eq!(
            load(&[("DBAPP_METRICS_USER_LABELS", "sha")])
                .unwrap_err()
                .variables,
            ["DBAPP_METRICS_USER_LABELS"]
        );
    }

    #[test]
    fn debug_never_shows_secrets() {
        let settings = load(&[
            ("DATABRICKS_CLIENT_SECRET", "very-secret-value"),
            ("DATABASE_URL", "postgres://u:db-secret@h/db"),
        ])
        .unwrap();
        let shown = format!("{settings:?}");
        assert!(!shown.contains("very-secret-value"), "{shown}");
        assert!(!shown.contains("db-secret"), "{shown}");
    }
}
