//! Minted database credentials as real Postgres logins: the part of the emulated Lakebase that
//! talks to Postgres.
//!
//! With `--postgres-admin-url` (a superuser URL), the emulator keeps a small admin pool on that
//! server, makes sure the database `databricks_postgres` exists, and turns every credential minted
//! by `POST /api/2.0/database/credentials` or `POST /api/2.0/postgres/credentials` into the login
//! password of the caller's role (named after the token's `sub`: the user name, or a service
//! principal's application id), valid until the credential expires. A role is created on first
//! use with `LOGIN`, `CONNECT, CREATE` on the database and `USAGE, CREATE` on its schema `public`,
//! which is what the Apps database resource grants. Postgres then accepts exactly what Lakebase
//! would: a current, unexpired minted token, for its own role, checked only at login.
//!
//! Secrets: the token never reaches Postgres in clear. The emulator sends a SCRAM-SHA-256 verifier
//! computed here (as `psql`'s `\password` does), so neither the server log nor a failed statement
//! can reveal it, and statement logging is off on the admin connections.
//!
//! Divergences from the real Lakebase, which accepts every unexpired token it issued:
//! - Postgres keeps one password per role, so minting a new credential for a principal makes its
//!   older, still unexpired credentials fail for *new* logins (open connections are unaffected,
//!   as in Lakebase). Clients that share one principal must share its latest credential.
//! - Only credentials from the two credential endpoints are passwords; a workspace OAuth token
//!   (which some public code uses as a password) is not.
//! - Claims (`claims`, per-table permission sets) are accepted but not enforced: a role gets the
//!   database-level grants above, whatever the claims say.
//!
//! The routes that mint credentials live in `routes::database`; this module only manages roles.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use aws_lc_rs::{digest, hmac, pbkdf2};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};
use tokio::sync::{Mutex, MutexGuard};

use crate::error::ApiError;

/// The database every Lakebase instance and project has.
pub(crate) const DATABASE: &str = "databricks_postgres";

/// PBKDF2 iterations of the SCRAM verifier; Postgres' own default (`scram_iterations`).
const SCRAM_ITERATIONS: u32 = 4096;

/// Longest identifier Postgres keeps (`NAMEDATALEN - 1`); longer names would be truncated, and
/// the role would not be the one clients log in as.
const MAX_IDENTIFIER_BYTES: usize = 63;

/// Postgres `duplicate_object`: a concurrent `CREATE ROLE` of the same role won.
const DUPLICATE_OBJECT: &str = "42710";
/// Postgres `duplicate_database`: a concurrent `CREATE DATABASE` won.
const DUPLICATE_DATABASE: &str = "42P04";

/// The admin side of the Postgres server whose roles the emulator manages.
pub(crate) struct LakebaseAdmin {
    /// Host of the admin URL: what clients are told to connect to.
    host: String,
    port: u16,
    /// On the admin URL's database: roles and `CREATE DATABASE`.
    server: PgPool,
    /// On `databricks_postgres`: grants on its schema `public`.
    database: PgPool,
    /// A tokio mutex, because it is held across the statements of one update: updates are
    /// serialised, so the credential minted last is the password that stays.
    logins: Mutex<LoginState>,
}

// Written by hand: the pools' connect options hold the superuser password, and the state holds
// tokens; neither may appear in a debug print of the emulator.
impl fmt::Debug for LakebaseAdmin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LakebaseAdmin")
            .field("host", &self.host)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct LoginState {
    /// Role name to the token that is its password now, so that expiring that token can make
    /// Postgres refuse it.
    current: HashMap<String, String>,
    /// Roles this emulator has created or checked and granted to.
    prepared: HashSet<String>,
}

/// Why a Postgres operation of the emulated Lakebase failed. Messages never contain a token or a
/// password.
#[derive(Debug, thiserror::Error)]
pub enum LakebaseError {
    /// The admin URL could not be parsed.
    #[error("the Postgres admin URL is not valid: {0}")]
    InvalidUrl(String),
    /// The admin connection failed.
    #[error("cannot connect to the Postgres admin URL ({host}:{port}): {source}")]
    Connect {
        /// Host of the URL.
        host: String,
        /// Port of the URL.
        port: u16,
        /// What sqlx reported.
        #[source]
        source: sqlx::Error,
    },
    /// `databricks_postgres` could not be created or checked.
    #[error("cannot create the database {DATABASE}: {0}")]
    Database(#[source] sqlx::Error),
    /// A principal's name cannot be a Postgres role name.
    #[error("{name:?} cannot be a Postgres role name: {reason}")]
    RoleName {
        /// The principal's name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// The role exists and is a superuser; the emulator will not change such a role's password.
    #[error("role {0:?} is a superuser: the emulator does not manage its password")]
    Superuser(String),
    /// A statement on a role failed.
    #[error("cannot update the Postgres role {role:?}: {source}")]
    Role {
        /// The role.
        role: String,
        /// What Postgres said (the statement text, which holds a verifier, is not included).
        #[source]
        source: sqlx::Error,
    },
}

impl From<LakebaseError> for ApiError {
    fn from(error: LakebaseError) -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            format!("Lakebase login update failed: {error}"),
        )
    }
}

impl LakebaseAdmin {
    /// Connects to the server of a superuser URL and makes sure `databricks_postgres` exists.
    ///
    /// # Errors
    /// [`LakebaseError::InvalidUrl`], [`LakebaseError::Connect`] or [`LakebaseError::Database`].
    #[tracing::instrument(skip_all)]
    pub(crate) async fn connect(url: &str) -> Result<Self, LakebaseError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| LakebaseError::InvalidUrl(e.to_string()))?
            // sqlx logs statements at info/debug; role statements carry password verifiers.
            .disable_statement_logging();
        let host = options.get_host().to_owned();
        let port = options.get_port();
        // One plain connection first: a pool would retry a refused connection until its timeout
        // and then report only that it timed out, hiding the cause from the user.
        let mut first = options
            .connect()
            .await
            .map_err(|source| LakebaseError::Connect {
                host: host.clone(),
                port,
                source,
            })?;
        ensure_database(&mut first).await?;
        // Closing is a courtesy to the server; the pools below are what the emulator uses.
        let _ = first.close().await;
        let server = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(options.clone());
        let database = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(options.database(DATABASE));
        tracing::info!(event = "lakebase.admin_connected", host = %host, port);
        Ok(Self {
            host,
            port,
            server,
            database,
            logins: Mutex::default(),
        })
    }

    /// The host clients should connect to: the admin URL's.
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// Exclusive access to the logins, for as long as the returned guard lives. Mint the token
    /// while holding it, so that the token minted last is the one Postgres keeps.
    pub(crate) async fn logins(&self) -> Logins<'_> {
        Logins {
            admin: self,
            state: self.logins.lock().await,
        }
    }
}

async fn ensure_database(server: &mut PgConnection) -> Result<(), LakebaseError> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(DATABASE)
            .fetch_one(&mut *server)
            .await
            .map_err(LakebaseError::Database)?;
    if exists {
        return Ok(());
    }
    match sqlx::raw_sql("CREATE DATABASE databricks_postgres")
        .execute(&mut *server)
        .await
    {
        Ok(_) => Ok(()),
        // Another emulator on the same server created it in between.
        Err(e) if has_sql_state(&e, DUPLICATE_DATABASE) => Ok(()),
        Err(e) => Err(LakebaseError::Database(e)),
    }
}

/// Exclusive access to the roles' passwords (see [`LakebaseAdmin::logins`]).
pub(crate) struct Logins<'a> {
    admin: &'a LakebaseAdmin,
    state: MutexGuard<'a, LoginState>,
}

impl Logins<'_> {
    /// Makes `token` the password of `role` until `expires_at`, creating the role if needed.
    ///
    /// # Errors
    /// [`LakebaseError::RoleName`] for names Postgres cannot hold, [`LakebaseError::Superuser`]
    /// for superuser roles, [`LakebaseError::Role`] when a statement fails.
    #[tracing::instrument(skip_all, fields(role = %role))]
    pub(crate) async fn set_password(
        &mut self,
        role: &str,
        token: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), LakebaseError> {
        let ident = quote_ident(role)?;
        let failed = |source| LakebaseError::Role {
            role: role.to_owned(),
            source,
        };
        if !self.state.prepared.contains(role) {
            self.prepare(role, &ident).await?;
            self.state.prepared.insert(role.to_owned());
        }
        let verifier = scram_verifier(token, &rand::random::<[u8; 16]>());
        let statement = format!(
            "ALTER ROLE {ident} WITH LOGIN PASSWORD {} VALID UNTIL {}",
            quote_literal(&verifier),
            quote_literal(&timestamp(expires_at)),
        );
        sqlx::raw_sql(AssertSqlSafe(statement))
            .execute(&self.admin.server)
            .await
            .map_err(failed)?;
        self.state.current.insert(role.to_owned(), token.to_owned());
        tracing::debug!(event = "lakebase.password_set", role, expires_at = %expires_at);
        Ok(())
    }

    /// If `token` is some role's password, makes Postgres refuse it for new logins from now on.
    /// Returns whether it was.
    ///
    /// # Errors
    /// [`LakebaseError::Role`] when the statement fails.
    #[tracing::instrument(skip_all)]
    pub(crate) async fn expire(&mut self, token: &str) -> Result<bool, LakebaseError> {
        let Some(role) = self
            .state
            .current
            .iter()
            .find(|(_, current)| current.as_str() == token)
            .map(|(role, _)| role.clone())
        else {
            return Ok(false);
        };
        self.expire_role(&role).await?;
        self.state.current.remove(&role);
        Ok(true)
    }

    /// Makes Postgres refuse every password this emulator set, as after a reset every minted
    /// token is unknown.
    ///
    /// # Errors
    /// [`LakebaseError::Role`] for the first statement that fails.
    #[tracing::instrument(skip_all)]
    pub(crate) async fn expire_all(&mut self) -> Result<(), LakebaseError> {
        let roles: Vec<String> = self.state.current.keys().cloned().collect();
        for role in roles {
            self.expire_role(&role).await?;
            self.state.current.remove(&role);
        }
        Ok(())
    }

    async fn expire_role(&self, role: &str) -> Result<(), LakebaseError> {
        let ident = quote_ident(role)?;
        // In the past, so the very next login is refused whatever the clocks' rounding.
        let past = Utc::now() - chrono::Duration::seconds(1);
        let statement = format!(
            "ALTER ROLE {ident} VALID UNTIL {}",
            quote_literal(&timestamp(past))
        );
        sqlx::raw_sql(AssertSqlSafe(statement))
            .execute(&self.admin.server)
            .await
            .map_err(|source| LakebaseError::Role {
                role: role.to_owned(),
                source,
            })?;
        tracing::debug!(event = "lakebase.password_expired", role);
        Ok(())
    }

    /// Creates the role when missing and grants what the Apps database resource grants. The
    /// grants are repeated for roles that already exist, which is harmless (they are idempotent)
    /// and repairs a role whose first preparation failed half way.
    async fn prepare(&self, role: &str, ident: &str) -> Result<(), LakebaseError> {
        let failed = |source| LakebaseError::Role {
            role: role.to_owned(),
            source,
        };
        let superuser: Option<bool> =
            sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = $1")
                .bind(role)
                .fetch_optional(&self.admin.server)
                .await
                .map_err(failed)?;
        match superuser {
            Some(true) => return Err(LakebaseError::Superuser(role.to_owned())),
            Some(false) => {}
            None => {
                let create = format!("CREATE ROLE {ident} LOGIN");
                match sqlx::raw_sql(AssertSqlSafe(create))
                    .execute(&self.admin.server)
                    .await
                {
                    Ok(_) => tracing::info!(event = "lakebase.role_created", role),
                    // Another emulator on the same server created it in between.
                    Err(e) if has_sql_state(&e, DUPLICATE_OBJECT) => {}
                    Err(e) => return Err(failed(e)),
                }
            }
        }
        let grant_database = format!("GRANT CONNECT, CREATE ON DATABASE {DATABASE} TO {ident}");
        sqlx::raw_sql(AssertSqlSafe(grant_database))
            .execute(&self.admin.server)
            .await
            .map_err(failed)?;
        let grant_schema = format!("GRANT USAGE, CREATE ON SCHEMA public TO {ident}");
        sqlx::raw_sql(AssertSqlSafe(grant_schema))
            .execute(&self.admin.database)
            .await
            .map_err(failed)?;
        Ok(())
    }
}

/// Whether `error` is a Postgres error with SQLSTATE `code`.
fn has_sql_state(error: &sqlx::Error, code: &str) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.code().as_deref() == Some(code))
}

/// A timestamp literal Postgres reads unambiguously whatever its `DateStyle` and `TimeZone`.
fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string()
}

/// Quotes a role name as a Postgres identifier: `"` around it, inner `"` doubled.
///
/// # Errors
/// [`LakebaseError::RoleName`] for an empty name, a name with a NUL character, or one longer than
/// Postgres keeps.
fn quote_ident(name: &str) -> Result<String, LakebaseError> {
    let invalid = |reason| LakebaseError::RoleName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("it is empty"));
    }
    if name.contains('\0') {
        return Err(invalid("it contains a NUL character"));
    }
    if name.len() > MAX_IDENTIFIER_BYTES {
        return Err(invalid("it is longer than 63 bytes"));
    }
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

/// Quotes a string literal as Postgres' own `quote_literal` does: `'` doubled, and an `E''`
/// literal with doubled backslashes when there is a backslash, so the result means the same
/// whatever `standard_conforming_strings` says. The inputs here (verifiers, timestamps) never
/// hold a NUL.
fn quote_literal(value: &str) -> String {
    let quoted = value.replace('\'', "''");
    if quoted.contains('\\') {
        format!("E'{}'", quoted.replace('\\', "\\\\"))
    } else {
        format!("'{quoted}'")
    }
}

/// The SCRAM-SHA-256 secret Postgres stores for `password` (RFC 5802, RFC 7677), in the text form
/// `ALTER ROLE … PASSWORD` accepts: `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
/// Minted tokens are printable ASCII, which SASLprep leaves unchanged, so no normalisation is
/// needed for clients to derive the same keys.
fn scram_verifier(password: &str, salt: &[u8]) -> String {
    let iterations = NonZeroU32::new(SCRAM_ITERATIONS).unwrap_or(NonZeroU32::MIN);
    let mut salted = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        password.as_bytes(),
        &mut salted,
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, &salted);
    let client_key = hmac::sign(&key, b"Client Key");
    let stored_key = digest::digest(&digest::SHA256, client_key.as_ref());
    let server_key = hmac::sign(&key, b"Server Key");
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        STANDARD.encode(salt),
        STANDARD.encode(stored_key.as_ref()),
        STANDARD.encode(server_key.as_ref()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_are_quoted_as_identifiers() {
        // Arrange
        let names = ["alice@example.com", "dbapp-sp", "we\"ird", "a.b-c"];

        // Act
        let quoted: Vec<String> = names.iter().map(|n| quote_ident(n).unwrap()).collect();

        // Assert
        assert_eq!(
            quoted,
            [
                "\"alice@example.com\"",
                "\"dbapp-sp\"",
                "\"we\"\"ird\"",
                "\"a.b-c\""
            ]
        );
    }

    #[test]
    fn unusable_role_names_are_refused() {
        // Arrange
        let long = "x".repeat(64);

        // Act
        let results = [quote_ident(""), quote_ident("a\0b"), quote_ident(&long)];

        // Assert
        assert!(
            results
                .iter()
                .all(|r| matches!(r, Err(LakebaseError::RoleName { .. })))
        );
        assert!(quote_ident(&"x".repeat(63)).is_ok());
    }

    #[test]
    fn literals_double_quotes_and_escape_backslashes() {
        // Arrange / Act
        let plain = quote_literal("2026-01-01 00:00:00.000000+00");
        let quote = quote_literal("it's");
        let backslash = quote_literal(r"a\b'c");

        // Assert
        assert_eq!(plain, "'2026-01-01 00:00:00.000000+00'");
        assert_eq!(quote, "'it''s'");
        assert_eq!(backslash, r"E'a\\b''c'");
    }

    #[test]
    fn scram_verifier_matches_a_known_vector() {
        // Arrange: salt and expected keys computed independently (Python hashlib/hmac, 4096
        // iterations) for the password "pencil".
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();

        // Act
        let verifier = scram_verifier("pencil", &salt);

        // Assert
        assert_eq!(verifier, EXPECTED_PENCIL);
    }

    const EXPECTED_PENCIL: &str = "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$\
        WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";

    #[test]
    fn timestamps_are_utc_with_microseconds() {
        // Arrange
        let at = DateTime::parse_from_rfc3339("2026-03-04T05:06:07.5Z")
            .unwrap()
            .with_timezone(&Utc);

        // Act
        let text = timestamp(at);

        // Assert
        assert_eq!(text, "2026-03-04 05:06:07.500000+00");
    }
}
