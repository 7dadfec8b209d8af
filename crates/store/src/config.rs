//! [`StoreConfig`]: which database the store opens and how it logs in, parsed once from the
//! environment snapshot (`DATABASE_URL`, the `PG*` variables of [`crate::lakebase`], and
//! `LAKEBASE_INSTANCE_NAME`/`LAKEBASE_ENDPOINT`) and validated there, so a server refuses to start
//! rather than failing at its first query.
//!
//! | variable | meaning |
//! |---|---|
//! | `DATABASE_URL` | any `postgres://` or `sqlite:` URL; when set, the Lakebase variables are not used |
//! | `PGHOST`, `PGPORT`, `PGDATABASE`, `PGUSER`, `PGSSLMODE`, `PGSSLROOTCERT`, `PGAPPNAME`, `PGPASSWORD` | Lakebase (see [`crate::lakebase`]); for a `postgres://` `DATABASE_URL` they fill the parts the URL leaves out, as libpq does |
//! | `LAKEBASE_INSTANCE_NAME` / `LAKEBASE_ENDPOINT` (an endpoint or a branch) / `LAKEBASE_PROJECT` + `LAKEBASE_BRANCH` | which credential API mints the Postgres password (Provisioned / Autoscaling) |
//! | `PGHOSTADDR`, `PGSSLCERT`, `PGSSLKEY`, `PGOPTIONS` | refused when a Postgres store is configured: dbapp does not use them, and sqlx would otherwise apply them unseen |
//!
//! Nothing reads the environment after this parse. sqlx's `PgConnectOptions` constructors do
//! read the `PG*` variables themselves, so every option the store uses is set explicitly from
//! this configuration (a `postgres://` URL is completed here with the values it leaves out), and
//! the four variables sqlx would read but dbapp does not model are refused above.

use secrecy::{ExposeSecret, SecretString};

use crate::lakebase::{DatabaseConfig, LakebaseError};
use crate::workspace::CredentialTarget;

/// Variables sqlx reads behind its callers' backs that dbapp has no setting for.
const UNMODELLED: &[(&str, &str)] = &[
    (
        "PGHOSTADDR",
        "set PGHOST (or the host of DATABASE_URL) instead",
    ),
    (
        "PGSSLCERT",
        "client certificates are not used: Lakebase logs in with OAuth tokens",
    ),
    (
        "PGSSLKEY",
        "client certificates are not used: Lakebase logs in with OAuth tokens",
    ),
    (
        "PGOPTIONS",
        "server options per connection are not supported; set them on the role or database",
    ),
];

/// URL query parameters of a `postgres://` URL and the variables that fill them when absent.
const URL_FALLBACKS: &[(&str, &str)] = &[
    ("host", "PGHOST"),
    ("port", "PGPORT"),
    ("user", "PGUSER"),
    ("password", "PGPASSWORD"),
    ("dbname", "PGDATABASE"),
    ("sslmode", "PGSSLMODE"),
    ("sslrootcert", "PGSSLROOTCERT"),
    ("application_name", "PGAPPNAME"),
];

/// The store's whole configuration.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The database; `None` when neither `DATABASE_URL` nor `PGHOST` is set.
    pub database: Option<DatabaseConfig>,
    /// Which credential API mints Lakebase passwords; `None` with a URL or a static password.
    pub credentials: Option<CredentialTarget>,
}

impl StoreConfig {
    /// Parses and validates the variables of the module header through `lookup`.
    ///
    /// # Errors
    /// [`LakebaseError::InvalidVariable`] or [`LakebaseError::Conflict`] naming the variables,
    /// or [`LakebaseError::PersonalAccessToken`] for a `dapi…` password.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, LakebaseError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let database = DatabaseConfig::from_env(get)?;
        let postgres = match &database {
            Some(DatabaseConfig::Url(url)) => is_postgres_url(url.expose_secret()),
            Some(DatabaseConfig::Lakebase(_)) => true,
            None => false,
        };
        if postgres {
            for (variable, reason) in UNMODELLED {
                if get(variable).is_some() {
                    return Err(LakebaseError::InvalidVariable {
                        variable,
                        reason: format!("dbapp does not use it ({reason}); unset it"),
                    });
                }
            }
        }
        let database = match database {
            Some(DatabaseConfig::Url(url)) if is_postgres_url(url.expose_secret()) => {
                Some(DatabaseConfig::Url(complete_url(&url, &get)?))
            }
            other => other,
        };
        let credentials = CredentialTarget::from_env(get)?;
        if let Some(DatabaseConfig::Lakebase(settings)) = &database
            && settings.static_password.is_none()
            && credentials.is_none()
        {
            return Err(LakebaseError::Conflict {
                variables: &["LAKEBASE_INSTANCE_NAME", "LAKEBASE_ENDPOINT", "PGPASSWORD"],
                reason: "PGHOST is set, so set LAKEBASE_INSTANCE_NAME (Provisioned) or \
                         LAKEBASE_ENDPOINT (Autoscaling) to mint the Postgres password, or \
                         PGPASSWORD for a native Postgres login"
                    .to_owned(),
            });
        }
        let credentials = match &database {
            Some(DatabaseConfig::Lakebase(settings)) if settings.static_password.is_none() => {
                credentials
            }
            _ => None,
        };
        Ok(Self {
            database,
            credentials,
        })
    }

    /// Whether opening the store mints a token through the workspace (so needs the app's
    /// workspace credentials).
    #[must_use]
    pub fn mints_tokens(&self) -> bool {
        self.credentials.is_some()
    }
}

fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The URL with every connection parameter it leaves out taken from its `PG*` variable, so that
/// sqlx finds each value in the URL and none in the process environment.
fn complete_url(
    url: &SecretString,
    get: &impl Fn(&str) -> Option<String>,
) -> Result<SecretString, LakebaseError> {
    // The parse error may quote the URL, password included: not passed on.
    let mut parsed =
        url::Url::parse(url.expose_secret()).map_err(|_| LakebaseError::InvalidVariable {
            variable: "DATABASE_URL",
            reason: "not a valid Postgres URL".into(),
        })?;
    let present: Vec<String> = parsed.query_pairs().map(|(k, _)| k.into_owned()).collect();
    let has = |param: &str| match param {
        "host" => parsed.host_str().is_some_and(|h| !h.is_empty()),
        "port" => parsed.port().is_some(),
        "user" => !parsed.username().is_empty(),
        "password" => parsed.password().is_some(),
        "dbname" => !parsed.path().trim_start_matches('/').is_empty(),
        _ => false,
    } || present.iter().any(|p| p == param);
    let missing: Vec<(&str, String)> = URL_FALLBACKS
        .iter()
        .filter(|(param, _)| !has(param))
        .filter_map(|(param, variable)| Some((*param, get(variable)?)))
        .collect();
    if missing.is_empty() {
        return Ok(url.clone());
    }
    if let Some((_, password)) = missing.iter().find(|(param, _)| *param == "password")
        && crate::lakebase::looks_like_pat(password)
    {
        return Err(LakebaseError::PersonalAccessToken {
            origin: "PGPASSWORD",
        });
    }
    parsed.query_pairs_mut().extend_pairs(missing);
    Ok(SecretString::from(String::from(parsed)))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use sqlx::postgres::{PgConnectOptions, PgSslMode};

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn url_of(config: &StoreConfig) -> String {
        match &config.database {
            Some(DatabaseConfig::Url(url)) => url.expose_secret().to_owned(),
            other => panic!("expected a URL, got {other:?}"),
        }
    }

    #[test]
    fn a_postgres_url_is_completed_from_the_pg_variables_it_leaves_out() {
        // Arrange: the URL names host, user and database; the environment adds TLS and a name.
        let lookup = env(&[
            ("DATABASE_URL", "postgres://me@db.example.com/app"),
            ("PGHOST", "ignored.example.com"),
            ("PGSSLMODE", "verify-full"),
            ("PGSSLROOTCERT", "/etc/ca.pem"),
            ("PGAPPNAME", "dbapp"),
        ]);

        // Act
        let config = StoreConfig::from_env(lookup).unwrap();
        let options: PgConnectOptions = url_of(&config).parse().unwrap();

        // Assert: what the URL says wins; what it omits comes from the snapshot, explicitly.
        assert_eq!(options.get_host(), "db.example.com");
        assert_eq!(options.get_username(), "me");
        assert_eq!(options.get_database(), Some("app"));
        assert!(matches!(options.get_ssl_mode(), PgSslMode::VerifyFull));
        assert_eq!(options.get_application_name(), Some("dbapp"));
        assert!(url_of(&config).contains("sslrootcert=%2Fetc%2Fca.pem"));
        assert!(config.credentials.is_none());
    }

    #[test]
    fn sqlite_urls_are_left_alone_and_need_no_workspace() {
        let config = StoreConfig::from_env(env(&[
            ("DATABASE_URL", "sqlite:/tmp/x.db"),
            ("PGSSLCERT", "/ignored"),
            ("LAKEBASE_INSTANCE_NAME", "inst"),
        ]))
        .unwrap();
        assert_eq!(url_of(&config), "sqlite:/tmp/x.db");
        assert!(!config.mints_tokens());
    }

    #[test]
    fn variables_sqlx_would_apply_unseen_are_refused_by_name() {
        for variable in ["PGHOSTADDR", "PGSSLCERT", "PGSSLKEY", "PGOPTIONS"] {
            let error = StoreConfig::from_env(env(&[
                ("PGHOST", "h"),
                ("PGPASSWORD", "p"),
                (variable, "x"),
            ]))
            .unwrap_err();
            assert_eq!(error.variables(), [variable], "{error}");
        }
    }

    #[test]
    fn a_lakebase_host_needs_a_way_to_log_in() {
        // Arrange
        let nothing = env(&[("PGHOST", "h")]);
        let minted = env(&[
            ("PGHOST", "h"),
            ("LAKEBASE_ENDPOINT", "projects/p/branches/b/endpoints/e"),
        ]);

        // Act
        let nothing = StoreConfig::from_env(nothing).unwrap_err();
        let minted = StoreConfig::from_env(minted).unwrap();

        // Assert
        assert_eq!(
            nothing.variables(),
            ["LAKEBASE_INSTANCE_NAME", "LAKEBASE_ENDPOINT", "PGPASSWORD"]
        );
        assert!(minted.mints_tokens());
    }

    #[test]
    fn a_pat_in_pgpassword_is_refused_even_as_a_url_fallback() {
        let error = StoreConfig::from_env(env(&[
            ("DATABASE_URL", "postgres://u@h/db"),
            ("PGPASSWORD", "dapi0123"),
        ]))
        .unwrap_err();
        assert_eq!(error.variables(), ["PGPASSWORD"]);
    }
}
