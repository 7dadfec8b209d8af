//! Lakebase: connection settings from the environment, and a Postgres pool whose logins use an
//! OAuth token that is rotated before it expires.
//!
//! Variables (read through a lookup function, so tests need not touch the process environment;
//! an empty value counts as unset):
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `DATABASE_URL` | – | any `postgres://` or `sqlite:` URL; when set it wins over the `PG*` variables |
//! | `PGHOST` | – | Lakebase host (`read_write_dns` or the endpoint host); without it and `DATABASE_URL` no store is configured |
//! | `PGPORT` | `5432` | port |
//! | `PGDATABASE` | `databricks_postgres` | database |
//! | `PGUSER` | the token's `sub` | role: the app's service principal client id in Databricks Apps |
//! | `PGSSLMODE` | `require` | `require`, `verify-ca` or `verify-full`; Lakebase accepts only TLS |
//! | `PGSSLROOTCERT` | – | CA certificate file for `verify-ca`/`verify-full` |
//! | `PGAPPNAME` | – | `application_name` of the connections |
//! | `PGPASSWORD` | – | a static password for native Postgres logins; then no token is minted |
//!
//! A Databricks personal access token (`dapi…`) is refused wherever a password could come from
//! (`PGPASSWORD`, the `DATABASE_URL`, a minted token): Lakebase accepts OAuth tokens only.
//!
//! Rotation. The password is an OAuth token with a one-hour life that Postgres checks only at
//! login, so open connections survive its expiry. sqlx has no per-connection password hook, so
//! [`connect`] mints the first token before it builds the pool, and a [`TokenRefresher`] task
//! mints the next one when less than [`RefreshPolicy::refresh_before`] of life remains (one mint
//! at a time, however many callers ask) and hands it to the pool with
//! `Pool::set_connect_options`, which only new connections use. Pooled connections are recycled
//! after 45 minutes ([`PoolSettings::max_lifetime`]). A failed refresh is logged and counted and
//! keeps the old token; it is retried every [`RefreshPolicy::retry_interval`].
//!
//! Metrics (the `metrics` facade; the server installs the recorder):
//! `lakebase_token_refresh_total{outcome="success"|"failure"}`, `lakebase_token_expiry_seconds`
//! (seconds until the current token expires). `db_pool_connections` is not written here: every
//! store reports its pool through `Store::pool_connections`, which the server reads.
//!
//! What this module leaves to others: minting tokens (a [`TokenSource`]; `crate::workspace`
//! provides the one that calls the credential API as the app's identity) and the queries
//! (`postgres`).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgPool, PgSslMode};
use tokio::task::JoinHandle;

use crate::PoolSettings;
use crate::postgres::{PgStore, pool_options};

/// The database every Lakebase instance and project has.
pub const DEFAULT_DATABASE: &str = "databricks_postgres";
/// The Postgres port.
pub const DEFAULT_PORT: u16 = 5432;

/// Shortest wait between two refreshes by the background task.
const MIN_REFRESH_GAP: Duration = Duration::from_secs(1);

/// The error a [`TokenSource`] returns: its own, boxed, since sources live in other crates.
pub type TokenError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a Lakebase configuration or connection could not be made. Messages never contain a token.
#[derive(Debug, thiserror::Error)]
pub enum LakebaseError {
    /// A variable has a value that cannot be used.
    #[error("{variable} is not valid: {reason}")]
    InvalidVariable {
        /// The variable, e.g. `PGSSLMODE`.
        variable: &'static str,
        /// Why, and what is accepted.
        reason: String,
    },
    /// A Databricks personal access token was given where Lakebase needs an OAuth token.
    #[error(
        "{origin} holds a Databricks personal access token (dapi…), which Lakebase refuses as a \
         Postgres password: Lakebase needs an OAuth token minted for the app's identity \
         (POST /api/2.0/database/credentials). Remove it; dbapp mints and rotates that token \
         itself from DATABRICKS_CLIENT_ID/DATABRICKS_CLIENT_SECRET"
    )]
    PersonalAccessToken {
        /// Where the PAT came from: `PGPASSWORD`, `DATABASE_URL` or `the token source`.
        origin: &'static str,
    },
    /// No role name: `PGUSER` is unset and the token carries no `sub` claim.
    #[error(
        "PGUSER is not set and the Lakebase token has no `sub` claim to use as the role name: \
         set PGUSER to the app's service principal client id"
    )]
    NoUser,
    /// Variables that cannot be used together, or one of which is needed.
    #[error("{}: {reason}", variables.join(", "))]
    Conflict {
        /// The variables involved.
        variables: &'static [&'static str],
        /// What to set or unset.
        reason: String,
    },
    /// Minting a token failed.
    #[error("could not mint a Lakebase token")]
    Token(#[source] TokenError),
}

impl LakebaseError {
    /// The environment variables to change to fix this error; empty for run-time failures.
    #[must_use]
    pub fn variables(&self) -> Vec<&'static str> {
        match self {
            Self::InvalidVariable { variable, .. } => vec![variable],
            Self::PersonalAccessToken {
                origin: origin @ ("PGPASSWORD" | "DATABASE_URL"),
            } => vec![origin],
            Self::Conflict { variables, .. } => variables.to_vec(),
            Self::NoUser => vec!["PGUSER"],
            Self::PersonalAccessToken { .. } | Self::Token(_) => Vec::new(),
        }
    }
}

/// How the TLS connection to Lakebase is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Encrypted; the certificate is not checked (Lakebase's default `sslmode`).
    Require,
    /// Encrypted, and the certificate must be signed by a trusted CA.
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host.
    VerifyFull,
}

impl FromStr for SslMode {
    type Err = LakebaseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "require" => Ok(Self::Require),
            "verify-ca" => Ok(Self::VerifyCa),
            "verify-full" => Ok(Self::VerifyFull),
            other => Err(LakebaseError::InvalidVariable {
                variable: "PGSSLMODE",
                reason: format!(
                    "{other:?}: Lakebase accepts only TLS connections, so use require, \
                     verify-ca or verify-full (for a local Postgres without TLS, set \
                     DATABASE_URL instead)"
                ),
            }),
        }
    }
}

impl From<SslMode> for PgSslMode {
    fn from(mode: SslMode) -> Self {
        match mode {
            SslMode::Require => PgSslMode::Require,
            SslMode::VerifyCa => PgSslMode::VerifyCa,
            SslMode::VerifyFull => PgSslMode::VerifyFull,
        }
    }
}

/// Where a Lakebase (or other TLS Postgres) server is and how to log in to it.
#[derive(Debug, Clone)]
pub struct LakebaseSettings {
    /// `PGHOST`.
    pub host: String,
    /// `PGPORT`.
    pub port: u16,
    /// `PGDATABASE`.
    pub database: String,
    /// `PGUSER`; when `None`, the token's `sub` claim names the role.
    pub user: Option<String>,
    /// `PGSSLMODE`.
    pub ssl_mode: SslMode,
    /// `PGSSLROOTCERT`.
    pub ssl_root_cert: Option<PathBuf>,
    /// `PGAPPNAME`.
    pub application_name: Option<String>,
    /// `PGPASSWORD`: a static password for a native Postgres login. When set, no token is minted.
    pub static_password: Option<SecretString>,
}

impl LakebaseSettings {
    /// Settings for `host` with every other value at its default.
    pub fn new(host: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port: DEFAULT_PORT,
            database: DEFAULT_DATABASE.to_owned(),
            user: None,
            ssl_mode: SslMode::Require,
            ssl_root_cert: None,
            application_name: None,
            static_password: None,
        }
    }

    /// Connect options for `user`, without a password: what the store logs in with (and what
    /// `dbapp doctor` tries its login with). Every field is set here from these
    /// settings, which were parsed from the environment snapshot: sqlx's constructor reads the
    /// `PG*` variables itself, and the ones it reads that these settings do not model are refused
    /// by [`crate::StoreConfig::from_env`].
    pub fn connect_options(&self, user: &str) -> PgConnectOptions {
        let mut options = PgConnectOptions::new_without_pgpass()
            .host(&self.host)
            .port(self.port)
            .username(user)
            .database(&self.database)
            .ssl_mode(self.ssl_mode.into());
        if let Some(cert) = &self.ssl_root_cert {
            options = options.ssl_root_cert(cert);
        }
        if let Some(name) = &self.application_name {
            options = options.application_name(name);
        }
        options
    }
}

/// Which database the environment configures.
#[derive(Debug, Clone)]
pub enum DatabaseConfig {
    /// `DATABASE_URL`: a Postgres or SQLite URL, used as it is.
    Url(SecretString),
    /// The `PG*` variables: Lakebase, with minted tokens unless a static password is set.
    Lakebase(LakebaseSettings),
}

impl DatabaseConfig {
    /// Reads the variables of the module header through `lookup`. `Ok(None)`: neither
    /// `DATABASE_URL` nor `PGHOST` is set, so no store is configured.
    ///
    /// # Errors
    /// [`LakebaseError::InvalidVariable`] naming the variable, or
    /// [`LakebaseError::PersonalAccessToken`] for a `dapi…` password.
    pub fn from_env(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, LakebaseError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        if let Some(url) = get("DATABASE_URL") {
            if url_password(&url).is_some_and(|p| looks_like_pat(&p)) {
                return Err(LakebaseError::PersonalAccessToken {
                    origin: "DATABASE_URL",
                });
            }
            return Ok(Some(Self::Url(SecretString::from(url))));
        }
        let Some(host) = get("PGHOST") else {
            return Ok(None);
        };
        let mut settings = LakebaseSettings::new(host);
        if let Some(port) = get("PGPORT") {
            settings.port = port
                .trim()
                .parse()
                .map_err(|_| LakebaseError::InvalidVariable {
                    variable: "PGPORT",
                    reason: format!("{port:?} is not a port number"),
                })?;
        }
        if let Some(database) = get("PGDATABASE") {
            settings.database = database;
        }
        settings.user = get("PGUSER");
        if let Some(mode) = get("PGSSLMODE") {
            settings.ssl_mode = mode.trim().parse()?;
        }
        settings.ssl_root_cert = get("PGSSLROOTCERT").map(PathBuf::from);
        settings.application_name = get("PGAPPNAME");
        if let Some(password) = get("PGPASSWORD") {
            if looks_like_pat(&password) {
                return Err(LakebaseError::PersonalAccessToken {
                    origin: "PGPASSWORD",
                });
            }
            settings.static_password = Some(SecretString::from(password));
        }
        Ok(Some(Self::Lakebase(settings)))
    }
}

/// A store on a `DATABASE_URL`: `postgres://`/`postgresql://` ([`PgStore`]) or `sqlite:`
/// ([`crate::sqlite::SqliteStore`], the file created when missing). Connects on first use.
///
/// # Errors
/// [`LakebaseError::InvalidVariable`] naming `DATABASE_URL` for another scheme or a URL sqlx
/// cannot parse, [`LakebaseError::PersonalAccessToken`] for a `dapi…` password.
pub fn open_url(
    url: &SecretString,
    pool: &PoolSettings,
) -> Result<Arc<dyn crate::Store>, LakebaseError> {
    let url = url.expose_secret();
    let invalid = |reason: String| LakebaseError::InvalidVariable {
        variable: "DATABASE_URL",
        reason,
    };
    if url_password(url).is_some_and(|p| looks_like_pat(&p)) {
        return Err(LakebaseError::PersonalAccessToken {
            origin: "DATABASE_URL",
        });
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        // The message of a parse error may quote the URL, password included: not passed on.
        let options = PgConnectOptions::from_str(url)
            .map_err(|_| invalid("not a valid Postgres URL".into()))?;
        Ok(Arc::new(PgStore::connect_lazy(options, pool)))
    } else if url.starts_with("sqlite:") {
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
            .map_err(|e| invalid(format!("not a valid SQLite URL: {e}")))?;
        Ok(Arc::new(crate::sqlite::SqliteStore::connect_lazy(
            options, pool,
        )))
    } else {
        Err(invalid(
            "expected a postgres://, postgresql:// or sqlite: URL".into(),
        ))
    }
}

/// Whether a password is a Databricks personal access token.
pub fn looks_like_pat(password: &str) -> bool {
    password.starts_with("dapi")
}

/// The password of a URL, if it has one (still percent-encoded, which leaves a `dapi` prefix
/// as it is).
fn url_password(url: &str) -> Option<String> {
    url::Url::parse(url).ok()?.password().map(str::to_owned)
}

/// A minted Lakebase credential: the password and when Postgres stops accepting it for logins.
#[derive(Clone)]
pub struct LakebaseToken {
    /// The OAuth token, used as the Postgres password.
    pub token: SecretString,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for LakebaseToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LakebaseToken")
            .field("token", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Mints Lakebase credentials as the app's identity. [`crate::workspace::WorkspaceTokenSource`]
/// is the real one, calling through `dbapp-databricks`
/// (the credential API of a Provisioned instance or an Autoscaling endpoint).
#[async_trait]
pub trait TokenSource: Send + Sync + fmt::Debug {
    /// A new credential.
    ///
    /// # Errors
    /// The source's own error, boxed.
    async fn fetch_token(&self) -> Result<LakebaseToken, TokenError>;
}

/// The `sub` claim of a JWT-shaped token, read without verifying the signature (the server
/// verifies the token at login; this only names the role to log in as).
pub fn token_subject(token: &str) -> Option<String> {
    dbapp_databricks::credentials::unverified_jwt_claims(token)?
        .get("sub")?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// When to refresh the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshPolicy {
    /// Mint a new token once less than this much of the current one's life remains (5 minutes),
    /// or less than half of it for a token that lives under twice this long.
    pub refresh_before: Duration,
    /// Wait this long after a failed refresh before trying again (15 seconds).
    pub retry_interval: Duration,
    /// Update the gauges at least this often (15 seconds).
    pub metrics_interval: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            refresh_before: Duration::from_secs(5 * 60),
            retry_interval: Duration::from_secs(15),
            metrics_interval: Duration::from_secs(15),
        }
    }
}

/// Keeps the pool's password a valid token: mints a new one when the current one is close to
/// expiry, one mint at a time.
pub struct TokenRefresher {
    source: Arc<dyn TokenSource>,
    pool: PgPool,
    /// The pool's connect options without a password; each token is added to a copy.
    base_options: PgConnectOptions,
    policy: RefreshPolicy,
    /// A tokio mutex, held across the mint: callers that arrive during a refresh wait for it
    /// and then find the new token, so there is one mint however many ask (single flight).
    current: tokio::sync::Mutex<LakebaseToken>,
    /// A copy for cheap reads (gauges, `doctor`), updated under `current`'s lock.
    snapshot: std::sync::RwLock<(DateTime<Utc>, DateTime<Utc>)>,
    successes: std::sync::atomic::AtomicU64,
    failures: std::sync::atomic::AtomicU64,
}

impl fmt::Debug for TokenRefresher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRefresher")
            .field("source", &self.source)
            .field("policy", &self.policy)
            .field("expires_at", &self.expires_at())
            .finish_non_exhaustive()
    }
}

impl TokenRefresher {
    /// When the current token expires.
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.read_snapshot().1
    }

    /// When the current token was minted (`doctor` shows its age).
    pub fn minted_at(&self) -> DateTime<Utc> {
        self.read_snapshot().0
    }

    /// Successful refreshes since start (the first mint not included).
    pub fn refreshes(&self) -> u64 {
        self.successes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Failed refreshes since start.
    pub fn failures(&self) -> u64 {
        self.failures.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn read_snapshot(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        // A poisoned lock only means a writer panicked after a complete assignment of a Copy
        // pair; the value is still whole.
        *self.snapshot.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the current token should be replaced: less than `refresh_before` of its life
    /// left, or less than half of it for tokens that live shorter than twice that (so that a
    /// short-lived token is still used for a while before the next mint).
    fn due(&self) -> bool {
        let (minted_at, expires_at) = self.read_snapshot();
        let life = (expires_at - minted_at).to_std().unwrap_or_default();
        let left = (expires_at - Utc::now()).to_std().unwrap_or_default();
        left <= self.policy.refresh_before.min(life / 2)
    }

    /// Mints a new token if the current one has less than `refresh_before` left; returns
    /// whether it did. Concurrent callers share one mint.
    ///
    /// # Errors
    /// [`LakebaseError::Token`] or [`LakebaseError::PersonalAccessToken`] when minting failed;
    /// the old token stays in use.
    #[tracing::instrument(skip_all)]
    pub async fn refresh_if_due(&self) -> Result<bool, LakebaseError> {
        let mut current = self.current.lock().await;
        if !self.due() {
            return Ok(false);
        }
        match mint(self.source.as_ref()).await {
            Ok(token) => {
                self.pool.set_connect_options(
                    self.base_options
                        .clone()
                        .password(token.token.expose_secret()),
                );
                let minted_at = Utc::now();
                *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) =
                    (minted_at, token.expires_at);
                tracing::info!(
                    event = "lakebase.token_refreshed",
                    expires_at = %token.expires_at,
                );
                *current = token;
                self.successes
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                metrics::counter!("lakebase_token_refresh_total", "outcome" => "success")
                    .increment(1);
                self.record_expiry();
                Ok(true)
            }
            Err(error) => {
                self.failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                metrics::counter!("lakebase_token_refresh_total", "outcome" => "failure")
                    .increment(1);
                tracing::warn!(
                    event = "lakebase.token_refresh_failed",
                    error = %error,
                    expires_at = %current.expires_at,
                    "keeping the current token"
                );
                Err(error)
            }
        }
    }

    fn record_expiry(&self) {
        let left = (self.expires_at() - Utc::now()).num_milliseconds() as f64 / 1000.0;
        metrics::gauge!("lakebase_token_expiry_seconds").set(left);
    }

    /// The background loop: refresh when due, retry after failures, update the expiry gauge.
    async fn run(self: Arc<Self>) {
        loop {
            self.record_expiry();
            if self.pool.is_closed() {
                return;
            }
            let wait = if self.due() {
                match self.refresh_if_due().await {
                    // A floor, so that a source handing out tokens that are due at once cannot
                    // make this loop hammer the credential API.
                    Ok(_) => MIN_REFRESH_GAP,
                    Err(_) => self.policy.retry_interval,
                }
            } else {
                let (minted_at, expires_at) = self.read_snapshot();
                let life = (expires_at - minted_at).to_std().unwrap_or_default();
                let left = (expires_at - Utc::now()).to_std().unwrap_or_default();
                let until_due = left.saturating_sub(self.policy.refresh_before.min(life / 2));
                until_due.min(self.policy.metrics_interval)
            };
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// The refresher's task, stopped when the last [`PgStore`] clone that owns it is dropped.
#[derive(Debug)]
pub(crate) struct RefreshTask {
    refresher: Arc<TokenRefresher>,
    handle: JoinHandle<()>,
}

impl RefreshTask {
    pub(crate) fn refresher(&self) -> &Arc<TokenRefresher> {
        &self.refresher
    }
}

impl Drop for RefreshTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

async fn mint(source: &dyn TokenSource) -> Result<LakebaseToken, LakebaseError> {
    let token = source.fetch_token().await.map_err(LakebaseError::Token)?;
    if looks_like_pat(token.token.expose_secret()) {
        return Err(LakebaseError::PersonalAccessToken {
            origin: "the token source",
        });
    }
    Ok(token)
}

/// A [`PgStore`] on a TLS Postgres with the static password `settings.static_password` (a
/// native Postgres login; nothing is minted). Connects lazily.
///
/// # Errors
/// [`LakebaseError::NoUser`] without `PGUSER`; [`LakebaseError::InvalidVariable`] naming
/// `PGPASSWORD` when it is unset.
pub fn connect_with_password(
    settings: &LakebaseSettings,
    pool: &PoolSettings,
) -> Result<PgStore, LakebaseError> {
    let password = settings
        .static_password
        .as_ref()
        .ok_or(LakebaseError::InvalidVariable {
            variable: "PGPASSWORD",
            reason: "a static password login needs PGPASSWORD".into(),
        })?;
    let user = settings.user.clone().ok_or(LakebaseError::NoUser)?;
    let options = settings
        .connect_options(&user)
        .password(password.expose_secret());
    Ok(PgStore::new(pool_options(pool).connect_lazy_with(options)))
}

/// A [`PgStore`] on Lakebase whose password is a minted token, rotated in the background.
///
/// Mints the first token now (before the pool exists), so a wrong credential setup fails at
/// start; the pool itself connects lazily. With `settings.static_password` set, no token is
/// minted and `source` is not called. Needs a tokio runtime.
///
/// # Errors
/// [`LakebaseError::Token`] when the first mint fails, [`LakebaseError::PersonalAccessToken`],
/// [`LakebaseError::NoUser`] when neither `PGUSER` nor the token names the role.
#[tracing::instrument(skip_all, fields(host = %settings.host, database = %settings.database))]
pub async fn connect(
    settings: &LakebaseSettings,
    source: Arc<dyn TokenSource>,
    pool: &PoolSettings,
    policy: RefreshPolicy,
) -> Result<PgStore, LakebaseError> {
    if settings.static_password.is_some() {
        return connect_with_password(settings, pool);
    }
    let first = mint(source.as_ref()).await?;
    let user = match &settings.user {
        Some(user) => user.clone(),
        None => token_subject(first.token.expose_secret()).ok_or(LakebaseError::NoUser)?,
    };
    let base_options = settings.connect_options(&user);
    let pg_pool = pool_options(pool)
        .connect_lazy_with(base_options.clone().password(first.token.expose_secret()));
    let minted_at = Utc::now();
    tracing::info!(
        event = "lakebase.token_minted",
        user = %user,
        expires_at = %first.expires_at,
    );
    let refresher = Arc::new(TokenRefresher {
        source,
        pool: pg_pool.clone(),
        base_options,
        policy,
        snapshot: std::sync::RwLock::new((minted_at, first.expires_at)),
        current: tokio::sync::Mutex::new(first),
        successes: Default::default(),
        failures: Default::default(),
    });
    let handle = tokio::spawn(Arc::clone(&refresher).run());
    Ok(PgStore::with_refresher(
        pg_pool,
        RefreshTask { refresher, handle },
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn lakebase(config: Option<DatabaseConfig>) -> LakebaseSettings {
        match config {
            Some(DatabaseConfig::Lakebase(settings)) => settings,
            other => panic!("expected Lakebase settings, got {other:?}"),
        }
    }

    #[test]
    fn pg_variables_give_lakebase_settings_with_documented_defaults() {
        // Arrange
        let lookup = env(&[
            ("PGHOST", "instance-1.database.example.com"),
            ("PGPORT", ""),
        ]);

        // Act
        let settings = lakebase(DatabaseConfig::from_env(lookup).unwrap());

        // Assert
        assert_eq!(settings.host, "instance-1.database.example.com");
        assert_eq!(settings.port, 5432);
        assert_eq!(settings.database, "databricks_postgres");
        assert_eq!(settings.ssl_mode, SslMode::Require);
        assert!(settings.user.is_none() && settings.static_password.is_none());
    }

    #[test]
    fn every_pg_variable_is_honoured() {
        // Arrange
        let lookup = env(&[
            ("PGHOST", "h"),
            ("PGPORT", "6543"),
            ("PGDATABASE", "db"),
            ("PGUSER", "client-id"),
            ("PGSSLMODE", "verify-full"),
            ("PGSSLROOTCERT", "/etc/ca.pem"),
            ("PGAPPNAME", "my-app"),
        ]);

        // Act
        let settings = lakebase(DatabaseConfig::from_env(lookup).unwrap());

        // Assert
        assert_eq!(
            (
                settings.port,
                settings.database.as_str(),
                settings.user.as_deref()
            ),
            (6543, "db", Some("client-id"))
        );
        assert_eq!(settings.ssl_mode, SslMode::VerifyFull);
        assert_eq!(settings.ssl_root_cert, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(settings.application_name.as_deref(), Some("my-app"));
        let options = settings.connect_options("client-id");
        assert!(matches!(options.get_ssl_mode(), PgSslMode::VerifyFull));
        assert_eq!(options.get_application_name(), Some("my-app"));
    }

    #[test]
    fn database_url_wins_and_nothing_set_means_no_store() {
        // Arrange
        let both = env(&[("DATABASE_URL", "sqlite:/tmp/x.db"), ("PGHOST", "h")]);

        // Act
        let url = DatabaseConfig::from_env(both).unwrap();
        let none = DatabaseConfig::from_env(env(&[])).unwrap();

        // Assert
        assert!(
            matches!(url, Some(DatabaseConfig::Url(u)) if u.expose_secret() == "sqlite:/tmp/x.db")
        );
        assert!(none.is_none());
    }

    #[test]
    fn ssl_modes_without_tls_and_bad_ports_are_refused_naming_the_variable() {
        // Arrange
        let disable = env(&[("PGHOST", "h"), ("PGSSLMODE", "disable")]);
        let port = env(&[("PGHOST", "h"), ("PGPORT", "54x")]);

        // Act
        let disable = DatabaseConfig::from_env(disable).unwrap_err().to_string();
        let port = DatabaseConfig::from_env(port).unwrap_err().to_string();

        // Assert
        assert!(disable.starts_with("PGSSLMODE is not valid"), "{disable}");
        assert!(port.starts_with("PGPORT is not valid"), "{port}");
    }

    #[test]
    fn a_personal_access_token_as_password_is_refused_with_an_explanation() {
        // Arrange
        let pgpassword = env(&[("PGHOST", "h"), ("PGPASSWORD", "dapi0123456789abcdef")]);
        let url = env(&[("DATABASE_URL", "postgres://u:dapi0123abc@h:5432/db")]);

        // Act
        let pgpassword = DatabaseConfig::from_env(pgpassword).unwrap_err();
        let url = DatabaseConfig::from_env(url).unwrap_err();

        // Assert
        let message = pgpassword.to_string();
        assert!(message.starts_with("PGPASSWORD holds a Databricks personal access token"));
        assert!(message.contains("OAuth token"), "{message}");
        assert!(
            !message.contains("0123456789abcdef"),
            "the token is not repeated"
        );
        assert!(matches!(
            url,
            LakebaseError::PersonalAccessToken {
                origin: "DATABASE_URL"
            }
        ));
    }

    #[tokio::test]
    async fn database_urls_open_the_store_of_their_scheme() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let sqlite = SecretString::from(format!("sqlite:{}", dir.path().join("x.db").display()));
        let postgres = SecretString::from("postgres://u:p@127.0.0.1:1/db".to_owned());
        let other = SecretString::from("mysql://u:secret@h/db".to_owned());

        // Act
        let sqlite = open_url(&sqlite, &PoolSettings::default()).unwrap();
        let quick = PoolSettings {
            acquire_timeout: Duration::from_millis(300),
            ..PoolSettings::default()
        };
        let postgres = open_url(&postgres, &quick).unwrap();
        let other = open_url(&other, &PoolSettings::default())
            .unwrap_err()
            .to_string();

        // Assert
        assert_eq!(
            (sqlite.backend(), postgres.backend()),
            ("sqlite", "postgres")
        );
        sqlite.migrate().await.unwrap();
        assert!(dir.path().join("x.db").is_file());
        let down = postgres.ping().await.unwrap_err();
        assert!(down.is_unavailable(), "nothing listens on port 1: {down:?}");
        assert!(other.starts_with("DATABASE_URL is not valid"), "{other}");
        assert!(!other.contains("secret"), "{other}");
    }

    #[test]
    fn the_subject_comes_from_the_jwt_payload_without_verification() {
        // Arrange
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"dbapp-sp","aud":"lakebase"}"#);
        let token = format!("eyJhbGciOiJSUzI1NiJ9.{payload}.c2lnbmF0dXJl");

        // Act
        let subject = token_subject(&token);

        // Assert
        assert_eq!(subject.as_deref(), Some("dbapp-sp"));
        assert_eq!(token_subject("not-a-jwt"), None);
        assert_eq!(token_subject("a.!!!.c"), None);
    }

    #[test]
    fn tokens_are_redacted_in_debug_output() {
        // Arrange
        let token = LakebaseToken {
            token: SecretString::from("eyJsecret"),
            expires_at: Utc::now(),
        };

        // Act
        let shown = format!("{token:?}");

        // Assert
        assert!(!shown.contains("eyJsecret"), "{shown}");
    }

    /// Counts mints; each takes 50 ms and lives `ttl` (the first one `first_ttl`); fails while
    /// `fail` is set.
    #[derive(Debug)]
    struct CountingSource {
        mints: std::sync::atomic::AtomicU32,
        first_ttl: chrono::Duration,
        ttl: chrono::Duration,
        fail: std::sync::atomic::AtomicBool,
    }

    impl CountingSource {
        fn new(first_ttl: chrono::Duration, ttl: chrono::Duration) -> Arc<Self> {
            Arc::new(Self {
                mints: Default::default(),
                first_ttl,
                ttl,
                fail: Default::default(),
            })
        }

        fn mints(&self) -> u32 {
            self.mints.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    #[async_trait]
    impl TokenSource for CountingSource {
        async fn fetch_token(&self) -> Result<LakebaseToken, TokenError> {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
                return Err("credential API unavailable".into());
            }
            let n = self.mints.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"dbapp-sp"}"#);
            Ok(LakebaseToken {
                token: SecretString::from(format!("h.{payload}.{n}")),
                expires_at: Utc::now() + if n == 0 { self.first_ttl } else { self.ttl },
            })
        }
    }

    async fn refresher_with(source: &Arc<CountingSource>) -> PgStore {
        let policy = RefreshPolicy {
            refresh_before: Duration::from_secs(300),
            // Long, so that only the test's own calls refresh.
            retry_interval: Duration::from_secs(3600),
            metrics_interval: Duration::from_secs(3600),
        };
        let source: Arc<dyn TokenSource> = source.clone();
        connect(
            &LakebaseSettings::new("127.0.0.1"),
            source,
            &PoolSettings::default(),
            policy,
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn concurrent_refreshes_share_one_mint() {
        // Arrange: the first token is expired already (due), the next lives an hour
        let source = CountingSource::new(chrono::Duration::minutes(-1), chrono::Duration::hours(1));
        let store = refresher_with(&source).await;
        let refresher = Arc::clone(store.token_refresher().unwrap());

        // Act: ten callers at once, racing the background task too
        let calls: Vec<_> = (0..10)
            .map(|_| {
                let refresher = Arc::clone(&refresher);
                tokio::spawn(async move { refresher.refresh_if_due().await })
            })
            .collect();
        for call in calls {
            call.await.unwrap().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;

        // Assert: the first mint, then exactly one refresh
        assert_eq!(source.mints(), 2);
        assert_eq!(refresher.refreshes(), 1);
        assert!(refresher.expires_at() > Utc::now() + chrono::Duration::minutes(55));
    }

    #[tokio::test]
    async fn a_fresh_token_is_not_replaced() {
        // Arrange
        let source = CountingSource::new(chrono::Duration::hours(1), chrono::Duration::hours(1));
        let store = refresher_with(&source).await;
        let refresher = Arc::clone(store.token_refresher().unwrap());

        // Act
        let refreshed = refresher.refresh_if_due().await.unwrap();

        // Assert
        assert!(!refreshed);
        assert_eq!(source.mints(), 1, "only the first mint");
    }

    #[tokio::test]
    async fn a_failed_refresh_keeps_the_old_token_and_is_counted() {
        // Arrange
        let source =
            CountingSource::new(chrono::Duration::minutes(-1), chrono::Duration::minutes(-1));
        let store = refresher_with(&source).await;
        let refresher = Arc::clone(store.token_refresher().unwrap());
        tokio::time::sleep(Duration::from_millis(200)).await;
        let expires_at = refresher.expires_at();
        let password_before = store.pool().connect_options();
        source.fail.store(true, std::sync::atomic::Ordering::SeqCst);

        // Act
        let result = refresher.refresh_if_due().await;

        // Assert
        assert!(matches!(result, Err(LakebaseError::Token(_))), "{result:?}");
        assert!(refresher.failures() >= 1);
        assert_eq!(refresher.expires_at(), expires_at);
        assert_eq!(
            format!("{:?}", store.pool().connect_options()),
            format!("{password_before:?}")
        );
    }

    #[tokio::test]
    async fn the_role_is_the_token_subject_unless_pguser_is_set() {
        // Arrange
        let source = CountingSource::new(chrono::Duration::hours(1), chrono::Duration::hours(1));

        // Act
        let from_token = refresher_with(&source).await;

        // Assert
        assert_eq!(
            from_token.pool().connect_options().get_username(),
            "dbapp-sp"
        );
    }
}
