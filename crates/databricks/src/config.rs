//! [`Config`]: which workspace to talk to and with which credentials, resolved once at start the
//! way the Databricks SDKs resolve it (`shared/UPSTREAM.md` §2.1–2.5), and validated so that a
//! bad configuration fails at construction, naming what is wrong, rather than at the first call.
//!
//! Resolution order, for each attribute still unset: explicit [`ConfigSettings`] → environment
//! variables → a profile of `~/.databrickscfg`. The profile file is skipped entirely when no
//! profile is named and the host or any credential is already set, as the SDKs do. Then the host
//! is normalised ([`WorkspaceHost`]) and the auth type fixed: the explicit `auth_type` when given
//! (no conflict check: that is the documented fix for the dual-auth trap), else the single
//! credential group present, else Model Serving when its environment says so, else the Databricks
//! CLI. Two credential groups and no `auth_type` fail with the SDKs' own message, groups sorted.
//!
//! Variables read (an empty value counts as unset):
//!
//! | variable | attribute | meaning |
//! |---|---|---|
//! | `DATABRICKS_HOST` | `host` | workspace URL; a bare host name gets `https://` |
//! | `DATABRICKS_TOKEN` | `token` | personal access token (`pat`) |
//! | `DATABRICKS_CLIENT_ID`, `DATABRICKS_CLIENT_SECRET` | `client_id`, `client_secret` | service principal (`oauth-m2m`) |
//! | `DATABRICKS_AUTH_TYPE` | `auth_type` | pins one strategy: `pat`, `oauth-m2m`, `databricks-cli`, `model-serving` |
//! | `DATABRICKS_CONFIG_PROFILE` | `profile` | profile of the config file to read |
//! | `DATABRICKS_CONFIG_FILE` | `config_file` | config file; default `$HOME/.databrickscfg` |
//! | `DATABRICKS_WORKSPACE_ID` | `workspace_id` | sent as `X-Databricks-Workspace-Id` |
//! | `DATABRICKS_WAREHOUSE_ID` | `warehouse_id` | SQL warehouse for statements |
//! | `DATABRICKS_USERNAME`, `DATABRICKS_PASSWORD` | basic | only detected, to report conflicts |
//! | `ARM_*`, `DATABRICKS_AZURE_RESOURCE_ID`, `GOOGLE_CREDENTIALS`, `DATABRICKS_GOOGLE_SERVICE_ACCOUNT`, `DATABRICKS_METADATA_SERVICE_URL` | azure, google, metadata-service | only detected, to report conflicts |
//! | `DATABRICKS_MODEL_SERVING_HOST_URL`, `DB_MODEL_SERVING_HOST_URL` | `host` | host inside Model Serving, when `host` is unset |
//! | `IS_IN_DB_MODEL_SERVING_ENV`, `IS_IN_DATABRICKS_MODEL_SERVING_ENV`, `DATABRICKS_SERVING_ENDPOINT`, `MLFLOW_DEPLOYMENT_FLAVOR_NAME`, `SERVING_CREDENTIALS_DIR` | – | Model Serving detection (see `context`) and its token file (see `credentials::model_serving`) |
//! | `HOME` | – | where `~/.databrickscfg` is |
//! | `PATH` | – | where the `databricks` CLI is looked up |
//!
//! Every lookup goes through an environment function (usually an [`Environment`] snapshot's
//! [`Environment::lookup`]), so tests never touch the process environment (which is not
//! thread-safe to change). [`ConfigError::variables`] names the variables behind a refusal.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::environment::Environment;
use crate::error::{DatabricksError, ErrorKind};
use crate::http::RetryPolicy;

/// Looks up an environment variable; `None` when unset.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A workspace URL, normalised once: a scheme (`https://` when none is given), no trailing `/`,
/// no explicit `:443` on `https`. Other schemes than `http`/`https`, user info, queries and
/// fragments are refused. `http://127.0.0.1:8089` stays as it is, for emulators.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkspaceHost(String);

impl WorkspaceHost {
    /// Normalises and validates a host as given in `DATABRICKS_HOST` or a profile.
    ///
    /// # Errors
    /// [`ConfigError::InvalidHost`] when the value is not a usable URL.
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: &str| ConfigError::InvalidHost {
            value: raw.to_owned(),
            reason: reason.to_owned(),
        };
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(invalid("it is empty"));
        }
        let with_scheme = if trimmed.contains("://") {
            trimmed.to_owned()
        } else {
            format!("https://{trimmed}")
        };
        let url = url::Url::parse(&with_scheme).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
            return Err(invalid("it names no host"));
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("it must not contain user info"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("it must not contain a query or fragment"));
        }
        // `Url` already drops a port that is the scheme's default (443 for https).
        let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        let path = url.path().trim_end_matches('/');
        Ok(Self(format!("{}://{host}{port}{path}", url.scheme())))
    }

    /// The normalised URL, without a trailing `/`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL of an API path such as `/api/2.0/preview/scim/v2/Me`.
    #[must_use]
    pub fn join(&self, path: &str) -> String {
        if path.starts_with('/') {
            format!("{}{path}", self.0)
        } else {
            format!("{}/{path}", self.0)
        }
    }
}

impl fmt::Display for WorkspaceHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for WorkspaceHost {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        Self::parse(s)
    }
}

/// How a client authenticates: one strategy, always named explicitly (UPSTREAM §2.3 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthType {
    /// `pat`: a static Bearer token (a personal access token, or a user's forwarded token).
    Pat,
    /// `oauth-m2m`: OAuth client credentials of a service principal.
    OAuthM2m,
    /// `databricks-cli`: `databricks auth token` of the Databricks CLI.
    DatabricksCli,
    /// `model-serving`: the token file of a Model Serving container.
    ModelServing,
}

impl AuthType {
    /// Every supported strategy.
    pub const ALL: [Self; 4] = [
        Self::Pat,
        Self::OAuthM2m,
        Self::DatabricksCli,
        Self::ModelServing,
    ];

    /// The Databricks name, e.g. `oauth-m2m`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pat => "pat",
            Self::OAuthM2m => "oauth-m2m",
            Self::DatabricksCli => "databricks-cli",
            Self::ModelServing => "model-serving",
        }
    }
}

impl fmt::Display for AuthType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuthType {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s.trim())
            .ok_or_else(|| ConfigError::UnknownAuthType(s.trim().to_owned()))
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The host is not a usable URL.
    #[error("invalid workspace host {value:?}: {reason}")]
    InvalidHost {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No host was configured.
    #[error(
        "no workspace host configured: set DATABRICKS_HOST, or `host` in a ~/.databrickscfg profile"
    )]
    MissingHost,
    /// More than one credential group is set and no `auth_type` picks one (UPSTREAM §2.5).
    #[error(
        "validate: more than one authorization method configured: {}. Config: {config}. Env: {}. Set DATABRICKS_AUTH_TYPE (or auth_type) to the one to use",
        groups.join(" and "), env.join(", ")
    )]
    MultipleAuthMethods {
        /// The credential groups found, sorted.
        groups: Vec<String>,
        /// The configuration, secrets masked.
        config: String,
        /// The environment variables that contributed.
        env: Vec<String>,
    },
    /// `auth_type` names a strategy this crate does not implement.
    #[error(
        "auth type {0:?} not found: this crate supports pat, oauth-m2m, databricks-cli and model-serving"
    )]
    UnknownAuthType(String),
    /// Only a credential group this crate cannot use is configured.
    #[error(
        "{group} credentials are configured ({attributes}), but this crate supports only pat, oauth-m2m, databricks-cli and model-serving"
    )]
    UnsupportedCredentials {
        /// The group, e.g. `azure`.
        group: String,
        /// Its attributes that are set.
        attributes: String,
    },
    /// The chosen auth type needs an attribute that is not set.
    #[error("auth type {auth_type} needs {attribute} (set {env_var})")]
    MissingCredential {
        /// The strategy.
        auth_type: AuthType,
        /// The attribute, e.g. `client_secret`.
        attribute: &'static str,
        /// Its environment variable.
        env_var: &'static str,
    },
    /// A named profile does not exist.
    #[error("resolve: {} has no {profile} profile configured", path.display())]
    ProfileNotFound {
        /// The config file.
        path: PathBuf,
        /// The profile asked for.
        profile: String,
    },
    /// The config file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    ConfigFile {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A setting has a value that cannot be used.
    #[error("invalid {attribute}: {reason}")]
    InvalidValue {
        /// The attribute.
        attribute: &'static str,
        /// Why.
        reason: String,
    },
}

impl ConfigError {
    /// The environment variables to change to fix this refusal: the ones at fault, then the one
    /// that resolves a conflict (`DATABRICKS_AUTH_TYPE` for the dual-auth trap).
    #[must_use]
    pub fn variables(&self) -> Vec<&'static str> {
        match self {
            Self::InvalidHost { .. } | Self::MissingHost => vec!["DATABRICKS_HOST"],
            Self::MultipleAuthMethods { groups, env, .. } => {
                let mut vars: Vec<&'static str> = ATTRIBUTES
                    .iter()
                    .filter(|a| a.group.is_some_and(|g| groups.iter().any(|x| x == g)))
                    .filter(|a| env.iter().any(|e| e == a.env))
                    .map(|a| a.env)
                    .collect();
                vars.push("DATABRICKS_AUTH_TYPE");
                vars
            }
            Self::UnknownAuthType(_) => vec!["DATABRICKS_AUTH_TYPE"],
            Self::UnsupportedCredentials { group, .. } => ATTRIBUTES
                .iter()
                .filter(|a| a.group == Some(group.as_str()))
                .map(|a| a.env)
                .collect(),
            Self::MissingCredential { env_var, .. } => vec![env_var],
            Self::ProfileNotFound { .. } => vec!["DATABRICKS_CONFIG_PROFILE"],
            Self::ConfigFile { .. } => vec!["DATABRICKS_CONFIG_FILE"],
            Self::InvalidValue {
                attribute: name, ..
            } => attribute(name).map(|a| vec![a.env]).unwrap_or_default(),
        }
    }
}

impl From<ConfigError> for DatabricksError {
    fn from(error: ConfigError) -> Self {
        DatabricksError::new(ErrorKind::Config, error.to_string()).with_source(error)
    }
}

/// Where a resolved attribute came from, for `dbapp doctor`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// Given to [`Config::resolve`] in [`ConfigSettings`].
    Explicit,
    /// An environment variable.
    Env(&'static str),
    /// A profile of a config file.
    Profile {
        /// The config file.
        path: PathBuf,
        /// The profile (section) name.
        profile: String,
    },
    /// Derived by this crate (e.g. the auth type inferred from the one credential group).
    Derived,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Explicit => f.write_str("explicit setting"),
            Self::Env(var) => write!(f, "environment variable {var}"),
            Self::Profile { path, profile } => {
                write!(f, "profile [{profile}] of {}", path.display())
            }
            Self::Derived => f.write_str("derived"),
        }
    }
}

/// Explicit settings, the first source of [`Config::resolve`]. Anything left `None` may come
/// from the environment or a profile.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ConfigSettings {
    /// Workspace URL.
    pub host: Option<String>,
    /// Personal access token.
    pub token: Option<SecretString>,
    /// OAuth client id of a service principal.
    pub client_id: Option<String>,
    /// OAuth client secret of a service principal.
    pub client_secret: Option<SecretString>,
    /// The strategy; set it to make the configuration immune to stray credentials.
    pub auth_type: Option<AuthType>,
    /// Profile of the config file.
    pub profile: Option<String>,
    /// Config file path (default `$HOME/.databrickscfg`).
    pub config_file: Option<PathBuf>,
    /// Workspace id, sent as `X-Databricks-Workspace-Id`.
    pub workspace_id: Option<String>,
    /// SQL warehouse id.
    pub warehouse_id: Option<String>,
    /// Per-call timeout (default 30 s).
    pub http_timeout: Option<Duration>,
    /// Connect timeout (default 10 s).
    pub connect_timeout: Option<Duration>,
    /// Retry policy (default [`RetryPolicy::default`]).
    pub retry: Option<RetryPolicy>,
    /// The `databricks` executable (default: `databricks` looked up on `PATH`).
    pub cli_path: Option<PathBuf>,
}

impl ConfigSettings {
    /// Settings with a host and an explicit auth type.
    #[must_use]
    pub fn new(host: impl Into<String>, auth_type: AuthType) -> Self {
        Self {
            host: Some(host.into()),
            auth_type: Some(auth_type),
            ..Self::default()
        }
    }

    /// Sets the personal access token.
    #[must_use]
    pub fn token(mut self, token: SecretString) -> Self {
        self.token = Some(token);
        self
    }

    /// Sets the service principal's client id and secret.
    #[must_use]
    pub fn client_credentials(
        mut self,
        client_id: impl Into<String>,
        secret: SecretString,
    ) -> Self {
        self.client_id = Some(client_id.into());
        self.client_secret = Some(secret);
        self
    }

    /// Sets the profile.
    #[must_use]
    pub fn profile(mut self, profile: impl Into<String>) -> Self {
        self.profile = Some(profile.into());
        self
    }

    /// Sets the per-call timeout.
    #[must_use]
    pub fn http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = Some(timeout);
        self
    }

    /// Sets the retry policy.
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = Some(retry);
        self
    }
}

/// A resolved, validated configuration. Secrets are [`SecretString`]s, so `{:?}` never shows
/// them.
#[derive(Debug, Clone)]
pub struct Config {
    host: WorkspaceHost,
    auth_type: AuthType,
    token: Option<SecretString>,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    profile: Option<String>,
    workspace_id: Option<String>,
    warehouse_id: Option<String>,
    http_timeout: Duration,
    connect_timeout: Duration,
    retry: RetryPolicy,
    cli_path: PathBuf,
    /// `PATH` as the environment function saw it: the CLI strategy looks `databricks` up there,
    /// so a test can put a fake one first without changing the process environment.
    search_path: Option<OsString>,
    serving_token_file: PathBuf,
    sources: BTreeMap<&'static str, Source>,
}

/// One attribute of UPSTREAM §2.1 that this crate reads.
struct Attribute {
    name: &'static str,
    env: &'static str,
    group: Option<&'static str>,
    sensitive: bool,
}

const fn attr(
    name: &'static str,
    env: &'static str,
    group: Option<&'static str>,
    sensitive: bool,
) -> Attribute {
    Attribute {
        name,
        env,
        group,
        sensitive,
    }
}

/// In the SDKs' definition order, which is the order of the dual-auth error's config dump.
const ATTRIBUTES: &[Attribute] = &[
    attr("host", "DATABRICKS_HOST", None, false),
    attr("token", "DATABRICKS_TOKEN", Some("pat"), true),
    attr("username", "DATABRICKS_USERNAME", Some("basic"), false),
    attr("password", "DATABRICKS_PASSWORD", Some("basic"), true),
    attr("client_id", "DATABRICKS_CLIENT_ID", Some("oauth"), false),
    attr(
        "client_secret",
        "DATABRICKS_CLIENT_SECRET",
        Some("oauth"),
        true,
    ),
    attr("profile", "DATABRICKS_CONFIG_PROFILE", None, false),
    attr("config_file", "DATABRICKS_CONFIG_FILE", None, false),
    attr("auth_type", "DATABRICKS_AUTH_TYPE", None, false),
    attr("workspace_id", "DATABRICKS_WORKSPACE_ID", None, false),
    attr("warehouse_id", "DATABRICKS_WAREHOUSE_ID", None, false),
    attr(
        "metadata_service_url",
        "DATABRICKS_METADATA_SERVICE_URL",
        Some("metadata-service"),
        true,
    ),
    attr("azure_client_id", "ARM_CLIENT_ID", Some("azure"), false),
    attr(
        "azure_client_secret",
        "ARM_CLIENT_SECRET",
        Some("azure"),
        true,
    ),
    attr("azure_tenant_id", "ARM_TENANT_ID", Some("azure"), false),
    attr(
        "azure_workspace_resource_id",
        "DATABRICKS_AZURE_RESOURCE_ID",
        Some("azure"),
        false,
    ),
    attr(
        "google_credentials",
        "GOOGLE_CREDENTIALS",
        Some("google"),
        true,
    ),
    attr(
        "google_service_account",
        "DATABRICKS_GOOGLE_SERVICE_ACCOUNT",
        Some("google"),
        false,
    ),
];

fn attribute(name: &str) -> Option<&'static Attribute> {
    ATTRIBUTES.iter().find(|a| a.name == name)
}

/// Raw attribute values during resolution; all held as secrets so none can leak into a log.
#[derive(Default)]
struct Raw {
    values: BTreeMap<&'static str, (SecretString, Source)>,
}

impl Raw {
    fn set_if_unset(&mut self, name: &'static str, value: Option<&str>, source: Source) {
        let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return;
        };
        self.values
            .entry(name)
            .or_insert_with(|| (SecretString::from(value.to_owned()), source));
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|(v, _)| v.expose_secret())
    }

    fn has_credentials(&self) -> bool {
        self.values
            .keys()
            .any(|name| attribute(name).is_some_and(|a| a.group.is_some()))
    }
}

impl Config {
    /// Resolves settings against the process environment and `~/.databrickscfg`.
    ///
    /// # Errors
    /// Any [`ConfigError`]: an invalid host, a missing credential, a named profile that does not
    /// exist, or credentials of more than one kind without an `auth_type`.
    pub fn from_env(settings: ConfigSettings) -> Result<Self, ConfigError> {
        Self::resolve(settings, &Environment::capture().lookup())
    }

    /// Resolves settings against the environment function `env` and the config file it points
    /// to (UPSTREAM §2.1: explicit → environment → profile).
    ///
    /// ```
    /// use dbapp_databricks::{AuthType, Config, ConfigSettings};
    /// use secrecy::SecretString;
    ///
    /// let env = |name: &str| match name {
    ///     "DATABRICKS_HOST" => Some("adb-123.azuredatabricks.net".to_owned()),
    ///     "DATABRICKS_CLIENT_ID" => Some("my-sp".to_owned()),
    ///     "DATABRICKS_CLIENT_SECRET" => Some("s3cret".to_owned()),
    ///     _ => None,
    /// };
    /// let config = Config::resolve(ConfigSettings::default(), &env).unwrap();
    /// assert_eq!(config.host().as_str(), "https://adb-123.azuredatabricks.net");
    /// assert_eq!(config.auth_type(), AuthType::OAuthM2m);
    /// ```
    ///
    /// # Errors
    /// As [`Config::from_env`].
    pub fn resolve(settings: ConfigSettings, env: Env<'_>) -> Result<Self, ConfigError> {
        let mut raw = Raw::default();
        let explicit = Source::Explicit;
        raw.set_if_unset("host", settings.host.as_deref(), explicit.clone());
        raw.set_if_unset(
            "token",
            settings.token.as_ref().map(ExposeSecret::expose_secret),
            explicit.clone(),
        );
        raw.set_if_unset("client_id", settings.client_id.as_deref(), explicit.clone());
        raw.set_if_unset(
            "client_secret",
            settings
                .client_secret
                .as_ref()
                .map(ExposeSecret::expose_secret),
            explicit.clone(),
        );
        raw.set_if_unset(
            "auth_type",
            settings.auth_type.map(AuthType::as_str),
            explicit.clone(),
        );
        raw.set_if_unset("profile", settings.profile.as_deref(), explicit.clone());
        let config_file_text = settings
            .config_file
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned());
        raw.set_if_unset("config_file", config_file_text.as_deref(), explicit.clone());
        raw.set_if_unset(
            "workspace_id",
            settings.workspace_id.as_deref(),
            explicit.clone(),
        );
        raw.set_if_unset("warehouse_id", settings.warehouse_id.as_deref(), explicit);

        for a in ATTRIBUTES {
            raw.set_if_unset(a.name, env(a.env).as_deref(), Source::Env(a.env));
        }

        let profile_named = raw.get("profile").is_some();
        if profile_named || (raw.get("host").is_none() && !raw.has_credentials()) {
            load_profile(&mut raw, env)?;
        }

        let serving_token_file = crate::credentials::model_serving::token_file_path(env);
        let in_model_serving = crate::context::model_serving_signal(env).is_some()
            && serving_token_file.exists()
            && raw.get("auth_type").is_none()
            && !raw.has_credentials();
        if raw.get("host").is_none()
            && (in_model_serving || raw.get("auth_type") == Some("model-serving"))
        {
            for var in [
                "DATABRICKS_MODEL_SERVING_HOST_URL",
                "DB_MODEL_SERVING_HOST_URL",
            ] {
                raw.set_if_unset("host", env(var).as_deref(), Source::Env(var));
            }
        }

        // Normalised before validation, so the dual-auth message shows the host in use.
        let host = raw.get("host").map(WorkspaceHost::parse).transpose()?;
        if let (Some(host), Some((value, _))) = (&host, raw.values.get_mut("host")) {
            *value = SecretString::from(host.as_str().to_owned());
        }
        let auth_type = decide_auth_type(&mut raw, in_model_serving)?;
        let host = host.ok_or(ConfigError::MissingHost)?;
        require_credentials(&raw, auth_type)?;

        let secret = |name: &str| raw.get(name).map(|v| SecretString::from(v.to_owned()));
        let text = |name: &str| raw.get(name).map(str::to_owned);
        let sources = raw
            .values
            .iter()
            .map(|(name, (_, source))| (*name, source.clone()))
            .collect();
        Ok(Self {
            host,
            auth_type,
            token: secret("token"),
            client_id: text("client_id"),
            client_secret: secret("client_secret"),
            profile: text("profile"),
            workspace_id: text("workspace_id"),
            warehouse_id: text("warehouse_id"),
            http_timeout: settings.http_timeout.unwrap_or(Duration::from_secs(30)),
            connect_timeout: settings.connect_timeout.unwrap_or(Duration::from_secs(10)),
            retry: settings.retry.unwrap_or_default(),
            cli_path: settings
                .cli_path
                .unwrap_or_else(|| PathBuf::from("databricks")),
            search_path: env("PATH").map(OsString::from),
            serving_token_file,
            sources,
        })
    }

    /// The normalised workspace URL.
    #[must_use]
    pub fn host(&self) -> &WorkspaceHost {
        &self.host
    }

    /// The one strategy this configuration authenticates with.
    #[must_use]
    pub fn auth_type(&self) -> AuthType {
        self.auth_type
    }

    /// The personal access token, for `pat`.
    #[must_use]
    pub fn token(&self) -> Option<&SecretString> {
        self.token.as_ref()
    }

    /// The service principal's client id.
    #[must_use]
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }

    /// The service principal's client secret.
    #[must_use]
    pub fn client_secret(&self) -> Option<&SecretString> {
        self.client_secret.as_ref()
    }

    /// The config-file profile in use, if any.
    #[must_use]
    pub fn profile(&self) -> Option<&str> {
        self.profile.as_deref()
    }

    /// The workspace id, if known.
    #[must_use]
    pub fn workspace_id(&self) -> Option<&str> {
        self.workspace_id.as_deref()
    }

    /// The SQL warehouse id, if configured.
    #[must_use]
    pub fn warehouse_id(&self) -> Option<&str> {
        self.warehouse_id.as_deref()
    }

    /// Per-call timeout.
    #[must_use]
    pub fn http_timeout(&self) -> Duration {
        self.http_timeout
    }

    /// Connect timeout.
    #[must_use]
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The retry policy.
    #[must_use]
    pub fn retry(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The `databricks` executable the CLI strategy runs.
    #[must_use]
    pub fn cli_path(&self) -> &Path {
        &self.cli_path
    }

    /// `PATH` as seen at resolution.
    #[must_use]
    pub fn search_path(&self) -> Option<&OsString> {
        self.search_path.as_ref()
    }

    /// The Model Serving token file (UPSTREAM §2.9).
    #[must_use]
    pub fn serving_token_file(&self) -> &Path {
        &self.serving_token_file
    }

    /// Where each attribute came from, for diagnostics (`dbapp doctor`).
    #[must_use]
    pub fn source_of(&self, attribute: &str) -> Option<&Source> {
        self.sources.get(attribute)
    }
}

/// Applies a profile of the config file to every attribute still unset.
fn load_profile(raw: &mut Raw, env: Env<'_>) -> Result<(), ConfigError> {
    let path = match raw.get("config_file") {
        Some(path) => expand_home(path, env),
        None => match env("HOME") {
            Some(home) => Path::new(&home).join(".databrickscfg"),
            // Without a home there is no default file; a named profile still has to exist.
            None => PathBuf::from("~/.databrickscfg"),
        },
    };
    let named = raw.get("profile").map(str::to_owned);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return match named {
                Some(profile) => Err(ConfigError::ProfileNotFound { path, profile }),
                None => Ok(()),
            };
        }
        Err(source) => return Err(ConfigError::ConfigFile { path, source }),
    };
    let ini = parse_ini(&text);
    let profile = named.clone().unwrap_or_else(|| {
        ini.get("__settings__")
            .and_then(|s| s.get("default_profile"))
            .cloned()
            .unwrap_or_else(|| "DEFAULT".to_owned())
    });
    let Some(section) = ini.get(&profile).filter(|_| profile != "__settings__") else {
        return match named {
            Some(profile) => Err(ConfigError::ProfileNotFound { path, profile }),
            None => Ok(()),
        };
    };
    let source = Source::Profile {
        path: path.clone(),
        profile: profile.clone(),
    };
    for (key, value) in section {
        if let Some(a) = attribute(key) {
            raw.set_if_unset(a.name, Some(value), source.clone());
        }
    }
    if named.is_none() {
        // Record which profile was used, for `source_of` and the CLI strategy.
        raw.set_if_unset("profile", Some(&profile), source);
    }
    Ok(())
}

fn expand_home(path: &str, env: Env<'_>) -> PathBuf {
    match (path.strip_prefix("~/"), env("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// Parses the INI dialect of `~/.databrickscfg` (Python's `configparser` defaults): `[section]`
/// headers, `key = value` or `key: value`, full-line `#`/`;` comments, keys lower-cased,
/// `[DEFAULT]` not merged into other sections (UPSTREAM §2.2).
fn parse_ini(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            let name = name.trim().to_owned();
            sections.entry(name.clone()).or_default();
            current = Some(name);
            continue;
        }
        let Some(section) = current.as_ref() else {
            continue;
        };
        let split_at = trimmed.find(['=', ':']);
        if let Some(at) = split_at {
            let key = trimmed[..at].trim().to_ascii_lowercase();
            let value = trimmed[at + 1..].trim().to_owned();
            if let Some(entries) = sections.get_mut(section) {
                entries.insert(key, value);
            }
        }
    }
    sections
}

/// Fixes the auth type: explicit, else inferred from the single credential group present.
fn decide_auth_type(raw: &mut Raw, in_model_serving: bool) -> Result<AuthType, ConfigError> {
    if let Some(name) = raw.get("auth_type") {
        return name.parse();
    }
    let groups: BTreeSet<&'static str> = raw
        .values
        .keys()
        .filter_map(|name| attribute(name).and_then(|a| a.group))
        .collect();
    if groups.len() > 1 {
        return Err(multiple_auth_error(raw, groups));
    }
    let auth_type = match groups.first().copied() {
        Some("pat") => AuthType::Pat,
        Some("oauth") => AuthType::OAuthM2m,
        Some(group) => {
            let attributes = raw
                .values
                .keys()
                .filter(|n| attribute(n).and_then(|a| a.group) == Some(group))
                .copied()
                .collect::<Vec<_>>()
                .join(", ");
            return Err(ConfigError::UnsupportedCredentials {
                group: group.to_owned(),
                attributes,
            });
        }
        None if in_model_serving => AuthType::ModelServing,
        None => AuthType::DatabricksCli,
    };
    raw.values.insert(
        "auth_type",
        (SecretString::from(auth_type.as_str()), Source::Derived),
    );
    Ok(auth_type)
}

fn multiple_auth_error(raw: &Raw, groups: BTreeSet<&'static str>) -> ConfigError {
    let mut config = Vec::new();
    let mut env = Vec::new();
    for a in ATTRIBUTES {
        let Some((value, source)) = raw.values.get(a.name) else {
            continue;
        };
        let shown = if a.sensitive {
            "***"
        } else {
            value.expose_secret()
        };
        config.push(format!("{}={shown}", a.name));
        if let Source::Env(var) = source {
            env.push((*var).to_owned());
        }
    }
    ConfigError::MultipleAuthMethods {
        groups: groups.into_iter().map(str::to_owned).collect(),
        config: config.join(", "),
        env,
    }
}

fn require_credentials(raw: &Raw, auth_type: AuthType) -> Result<(), ConfigError> {
    let needed: &[&'static str] = match auth_type {
        AuthType::Pat => &["token"],
        AuthType::OAuthM2m => &["client_id", "client_secret"],
        AuthType::DatabricksCli | AuthType::ModelServing => &[],
    };
    for name in needed {
        if raw.get(name).is_none() {
            let env_var = attribute(name).map_or("", |a| a.env);
            return Err(ConfigError::MissingCredential {
                auth_type,
                attribute: name,
                env_var,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn bare_host_gets_https_and_trailing_slash_and_443_are_dropped() {
        for (raw, expected) in [
            (
                "adb-1.azuredatabricks.net",
                "https://adb-1.azuredatabricks.net",
            ),
            (
                "https://dbc-1.cloud.databricks.com/",
                "https://dbc-1.cloud.databricks.com",
            ),
            (
                "https://dbc-1.cloud.databricks.com:443",
                "https://dbc-1.cloud.databricks.com",
            ),
            ("http://127.0.0.1:8089", "http://127.0.0.1:8089"),
            ("  HTTPS://Example.COM//  ", "https://example.com"),
        ] {
            assert_eq!(
                WorkspaceHost::parse(raw).unwrap().as_str(),
                expected,
                "{raw}"
            );
        }
    }

    #[test]
    fn unusable_hosts_are_refused() {
        for raw in [
            "",
            "   ",
            "ftp://x.com",
            "https://user:pw@x.com",
            "https://x.com/?a=1",
            "https://",
        ] {
            assert!(WorkspaceHost::parse(raw).is_err(), "{raw:?}");
        }
    }

    proptest! {
        #[test]
        fn host_normalisation_is_idempotent(
            name in "[a-z][a-z0-9-]{0,20}(\\.[a-z][a-z0-9-]{0,10}){0,3}",
            scheme in prop::option::of(prop::sample::select(vec!["http://", "https://"])),
            port in prop::option::of(1u16..65535),
            slashes in 0usize..3,
        ) {
            // A label starting `xn--` claims to be punycode, and random letters after it are
            // rightly refused as an invalid international name.
            prop_assume!(!name.split('.').any(|label| label.starts_with("xn--")));
            let raw = format!(
                "{}{name}{}{}",
                scheme.unwrap_or(""),
                port.map(|p| format!(":{p}")).unwrap_or_default(),
                "/".repeat(slashes)
            );
            let once = WorkspaceHost::parse(&raw).unwrap();
            let twice = WorkspaceHost::parse(once.as_str()).unwrap();
            prop_assert_eq!(&once, &twice);
            prop_assert!(!once.as_str().ends_with('/'));
            prop_assert!(once.as_str().starts_with("http://") || once.as_str().starts_with("https://"));
            if scheme.is_none() {
                prop_assert!(once.as_str().starts_with("https://"));
            }
            prop_assert!(!once.as_str().starts_with("https://") || !once.as_str().ends_with(":443"));
        }

        #[test]
        fn host_parse_never_panics(raw in ".{0,60}") {
            let _ = WorkspaceHost::parse(&raw);
        }
    }

    #[test]
    fn explicit_settings_win_over_environment() {
        // Arrange
        let env = env_of(&[
            ("DATABRICKS_HOST", "env.example.com"),
            ("DATABRICKS_TOKEN", "dapi-env"),
        ]);
        let settings = ConfigSettings::new("explicit.example.com", AuthType::Pat)
            .token(SecretString::from("dapi-explicit"));

        // Act
        let config = Config::resolve(settings, &env).unwrap();

        // Assert
        assert_eq!(config.host().as_str(), "https://explicit.example.com");
        assert_eq!(config.token().unwrap().expose_secret(), "dapi-explicit");
        assert_eq!(config.source_of("host"), Some(&Source::Explicit));
    }

    #[test]
    fn dual_auth_is_reported_by_name_with_groups_sorted() {
        // Arrange: the Apps container's SP credentials plus a token, no auth_type.
        let env = env_of(&[
            ("DATABRICKS_HOST", "adb-1.azuredatabricks.net"),
            ("DATABRICKS_CLIENT_ID", "sp-id"),
            ("DATABRICKS_CLIENT_SECRET", "sp-secret"),
            ("DATABRICKS_TOKEN", "dapi-secret-token"),
        ]);

        // Act
        let error = Config::resolve(ConfigSettings::default(), &env).unwrap_err();

        // Assert
        let text = error.to_string();
        assert!(
            text.starts_with("validate: more than one authorization method configured: oauth and pat. Config: host=https://adb-1.azuredatabricks.net, token=***, client_id=sp-id, client_secret=***. Env: DATABRICKS_HOST, DATABRICKS_TOKEN, DATABRICKS_CLIENT_ID, DATABRICKS_CLIENT_SECRET"),
            "{text}"
        );
        assert!(!text.contains("sp-secret") && !text.contains("dapi-secret-token"));
        assert!(
            matches!(error, ConfigError::MultipleAuthMethods { ref groups, .. } if groups == &["oauth", "pat"])
        );
    }

    #[test]
    fn explicit_auth_type_skips_the_dual_auth_check() {
        let env = env_of(&[
            ("DATABRICKS_HOST", "h.example.com"),
            ("DATABRICKS_CLIENT_ID", "sp-id"),
            ("DATABRICKS_CLIENT_SECRET", "sp-secret"),
            ("DATABRICKS_TOKEN", "dapi"),
        ]);
        let settings = ConfigSettings {
            auth_type: Some(AuthType::OAuthM2m),
            ..ConfigSettings::default()
        };
        let config = Config::resolve(settings, &env).unwrap();
        assert_eq!(config.auth_type(), AuthType::OAuthM2m);
    }

    #[test]
    fn auth_type_from_environment_is_honoured_and_validated() {
        let env = env_of(&[
            ("DATABRICKS_HOST", "h"),
            ("DATABRICKS_AUTH_TYPE", "oauth-m2m"),
            ("DATABRICKS_CLIENT_ID", "x"),
        ]);
        let error = Config::resolve(ConfigSettings::default(), &env).unwrap_err();
        assert_eq!(
            error.to_string(),
            "auth type oauth-m2m needs client_secret (set DATABRICKS_CLIENT_SECRET)"
        );
        let unknown = env_of(&[
            ("DATABRICKS_HOST", "h"),
            ("DATABRICKS_AUTH_TYPE", "azure-cli"),
        ]);
        assert!(matches!(
            Config::resolve(ConfigSettings::default(), &unknown),
            Err(ConfigError::UnknownAuthType(name)) if name == "azure-cli"
        ));
    }

    #[test]
    fn no_credentials_means_the_databricks_cli() {
        let env = env_of(&[("DATABRICKS_HOST", "h.example.com")]);
        let config = Config::resolve(ConfigSettings::default(), &env).unwrap();
        assert_eq!(config.auth_type(), AuthType::DatabricksCli);
        assert_eq!(config.source_of("auth_type"), Some(&Source::Derived));
    }

    #[test]
    fn missing_host_is_reported() {
        let env = env_of(&[("DATABRICKS_TOKEN", "dapi")]);
        assert!(matches!(
            Config::resolve(ConfigSettings::default(), &env),
            Err(ConfigError::MissingHost)
        ));
    }

    #[test]
    fn secrets_never_appear_in_debug() {
        let settings = ConfigSettings::new("h.example.com", AuthType::OAuthM2m)
            .client_credentials("sp", SecretString::from("top-secret-value"))
            .token(SecretString::from("dapi-top-secret"));
        let config = Config::resolve(settings.clone(), &env_of(&[])).unwrap();
        for text in [format!("{config:?}"), format!("{settings:?}")] {
            assert!(!text.contains("top-secret"), "{text}");
        }
    }

    const CFG: &str = "\
[__settings__]
default_profile = dev

; a comment
[DEFAULT]
host  = https://dbc-1234.cloud.databricks.com
token = dapi0123

[dev]
host          = adb-1.2.azuredatabricks.net/
client_id     = 00000000-0000-0000-0000-000000000000
client_secret = profile-secret
auth_type     = oauth-m2m

[tok]
Host = https://tok.example.com
token: dapi-tok
";

    fn with_cfg(
        pairs: &[(&str, &str)],
    ) -> (tempfile::TempDir, impl Fn(&str) -> Option<String> + use<>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".databrickscfg"), CFG).unwrap();
        let mut all: Vec<(String, String)> =
            vec![("HOME".into(), dir.path().to_string_lossy().into_owned())];
        all.extend(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let map: HashMap<String, String> = all.into_iter().collect();
        (dir, move |name: &str| map.get(name).cloned())
    }

    #[test]
    fn default_profile_from_settings_section_is_used() {
        let (_dir, env) = with_cfg(&[]);
        let config = Config::resolve(ConfigSettings::default(), &env).unwrap();
        assert_eq!(
            config.host().as_str(),
            "https://adb-1.2.azuredatabricks.net"
        );
        assert_eq!(config.auth_type(), AuthType::OAuthM2m);
        assert_eq!(
            config.client_secret().unwrap().expose_secret(),
            "profile-secret"
        );
        assert_eq!(config.profile(), Some("dev"));
        assert!(
            matches!(config.source_of("client_id"), Some(Source::Profile { profile, .. }) if profile == "dev")
        );
    }

    #[test]
    fn named_profile_keys_are_case_insensitive_and_colon_separated() {
        let (_dir, env) = with_cfg(&[("DATABRICKS_CONFIG_PROFILE", "tok")]);
        let config = Config::resolve(ConfigSettings::default(), &env).unwrap();
        assert_eq!(config.host().as_str(), "https://tok.example.com");
        assert_eq!(config.auth_type(), AuthType::Pat);
        assert_eq!(config.token().unwrap().expose_secret(), "dapi-tok");
    }

    #[test]
    fn missing_named_profile_fails_naming_file_and_profile() {
        let (dir, env) = with_cfg(&[("DATABRICKS_CONFIG_PROFILE", "nope")]);
        let error = Config::resolve(ConfigSettings::default(), &env).unwrap_err();
        let path = dir.path().join(".databrickscfg");
        assert_eq!(
            error.to_string(),
            format!("resolve: {} has no nope profile configured", path.display())
        );
    }

    #[test]
    fn profile_is_skipped_when_environment_has_host_and_no_profile_is_named() {
        let (_dir, env) = with_cfg(&[
            ("DATABRICKS_HOST", "env.example.com"),
            ("DATABRICKS_TOKEN", "t"),
        ]);
        let config = Config::resolve(ConfigSettings::default(), &env).unwrap();
        assert_eq!(config.host().as_str(), "https://env.example.com");
        assert_eq!(config.profile(), None);
        assert_eq!(config.auth_type(), AuthType::Pat);
    }

    #[test]
    fn profile_values_never_override_environment() {
        let (_dir, env) = with_cfg(&[
            ("DATABRICKS_CONFIG_PROFILE", "dev"),
            ("DATABRICKS_HOST", "env.example.com"),
        ]);
        let config = Config::resolve(ConfigSettings::default(), &env).unwrap();
        assert_eq!(config.host().as_str(), "https://env.example.com");
        assert_eq!(
            config.client_id(),
            Some("00000000-0000-0000-0000-000000000000")
        );
    }

    #[test]
    fn default_section_is_not_merged_into_named_profiles() {
        let (_dir, env) = with_cfg(&[("DATABRICKS_CONFIG_PROFILE", "dev")]);
        let config = Config::resolve(ConfigSettings::default(), &env).unwrap();
        // DEFAULT has a token; had it been merged, dev would have two credential groups.
        assert!(config.token().is_none());
    }

    #[test]
    fn ini_parser_handles_comments_and_sections() {
        let ini = parse_ini(CFG);
        assert_eq!(ini["DEFAULT"]["token"], "dapi0123");
        assert_eq!(ini["tok"]["host"], "https://tok.example.com");
        assert_eq!(ini["__settings__"]["default_profile"], "dev");
    }
}
