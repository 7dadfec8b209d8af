//! The backend side of the emulated Lakebase: the Postgres server behind the front (`pgfront`),
//! its roles and its databases.
//!
//! With `--postgres-admin-url` (a superuser URL), the emulator keeps a small admin pool on that
//! server and makes sure the database `databricks_postgres` exists. A principal's role (named after
//! the token's `sub`: the user name, or a service principal's application id) is created when a
//! credential is first minted for it, with `LOGIN`, `CONNECT, CREATE` on the database and
//! `USAGE, CREATE` on its schema `public`, which is what the Apps database resource grants.
//!
//! Clients never log in to this server with a token. The front checks the token and then logs in
//! as the role with a password only this emulator knows: an HMAC of the role name under a key
//! drawn at start, set as a SCRAM-SHA-256 verifier the first time the role is used. So any number
//! of unexpired tokens of a role work at once, as on Lakebase, and trust auth on the server lets
//! nothing through the front that the front refused.
//!
//! Autoscaling branches are databases here: [`branch_database`] names the one a branch's
//! `databricks_postgres` opens, created on first login and dropped when the branch is purged.
//!
//! Secrets: neither tokens nor the backend password reach the server in clear; the password goes
//! as a verifier computed here (as `psql`'s `\password` does), and statement logging is off on
//! the admin connections.
//!
//! Divergences from the real Lakebase:
//! - Claims (`claims`, per-table permission sets) are accepted but not enforced: a role gets the
//!   database-level grants above, whatever the claims say.
//! - `current_database()` in a branch session names the branch's backend database.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use aws_lc_rs::{digest, hmac, pbkdf2};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};
use tokio::sync::Mutex;

use crate::error::ApiError;

/// The database every Lakebase instance and project has.
pub(crate) const DATABASE: &str = "databricks_postgres";

/// PBKDF2 iterations of the roles' SCRAM verifiers. Postgres defaults to 4096 to slow down the
/// guessing of human passwords; a backend password is 256 random bits, which no guessing reaches,
/// and every login through the front pays the iterations twice (the front as client, Postgres as
/// server), so a handful keeps logins cheap.
const SCRAM_ITERATIONS: u32 = 16;

/// Longest identifier Postgres keeps (`NAMEDATALEN - 1`); longer names would be truncated, and
/// the role would not be the one clients log in as.
const MAX_IDENTIFIER_BYTES: usize = 63;

/// Postgres `duplicate_object`: a concurrent `CREATE ROLE` of the same role won.
const DUPLICATE_OBJECT: &str = "42710";
/// Postgres `duplicate_database`: a concurrent `CREATE DATABASE` won.
const DUPLICATE_DATABASE: &str = "42P04";

/// The admin side of the Postgres server behind the front.
pub(crate) struct LakebaseAdmin {
    /// Where the front listens: its IP is the host clients are told (instances' and endpoints'
    /// host names).
    front: SocketAddr,
    front_host: String,
    /// The front's TLS certificate, PEM.
    certificate_pem: String,
    /// The backend server, as the admin URL names it.
    backend_host: String,
    backend_port: u16,
    /// Connect options of the admin URL, for one-off connections to branch databases.
    options: PgConnectOptions,
    /// On the admin URL's database: roles and `CREATE DATABASE`.
    server: PgPool,
    /// On `databricks_postgres`: grants on its schema `public`.
    database: PgPool,
    /// The key of the roles' backend passwords, drawn at start.
    key: hmac::Key,
    /// A tokio mutex, because it is held across the statements of one preparation: two first
    /// logins of one role must not both create it.
    prepared: Mutex<Prepared>,
}

// Written by hand: the pools' connect options hold the superuser password, and the key derives
// every role's password; neither may appear in a debug print of the emulator.
impl fmt::Debug for LakebaseAdmin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LakebaseAdmin")
            .field("front", &self.front)
            .field("backend_host", &self.backend_host)
            .field("backend_port", &self.backend_port)
            .finish_non_exhaustive()
    }
}

/// What this emulator has already made ready on the backend.
#[derive(Default)]
struct Prepared {
    /// Roles created or checked, with their backend password set.
    roles: HashSet<String>,
    /// `(role, database)` pairs granted to, for `databricks_postgres` and branch databases.
    grants: HashSet<(String, String)>,
}

/// How the front logs in to the backend as a role.
pub(crate) struct BackendLogin {
    pub(crate) role: String,
    pub(crate) password: String,
}

impl fmt::Debug for BackendLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendLogin")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
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
    /// `front` is the front's bound address, where clients will be told to connect.
    ///
    /// # Errors
    /// [`LakebaseError::InvalidUrl`], [`LakebaseError::Connect`] or [`LakebaseError::Database`].
    #[tracing::instrument(skip_all)]
    pub(crate) async fn connect(
        url: &str,
        front: SocketAddr,
        certificate_pem: String,
    ) -> Result<Self, LakebaseError> {
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
        ensure_database(&mut first, DATABASE).await?;
        // Closing is a courtesy to the server; the pools below are what the emulator uses.
        let _ = first.close().await;
        let server = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(options.clone());
        let database = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(options.clone().database(DATABASE));
        tracing::info!(event = "lakebase.admin_connected", host = %host, port);
        Ok(Self {
            front,
            front_host: front.ip().to_string(),
            certificate_pem,
            backend_host: host,
            backend_port: port,
            options,
            server,
            database,
            key: hmac::Key::new(hmac::HMAC_SHA256, &rand::random::<[u8; 32]>()),
            prepared: Mutex::default(),
        })
    }

    /// The host clients should connect to: the front's.
    pub(crate) fn host(&self) -> &str {
        &self.front_host
    }

    /// The front's bound address.
    pub(crate) fn front(&self) -> SocketAddr {
        self.front
    }

    /// The front's TLS certificate, PEM.
    pub(crate) fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// The backend server the front relays to.
    pub(crate) fn backend_address(&self) -> (&str, u16) {
        (&self.backend_host, self.backend_port)
    }

    /// Makes `role` ready to log in to the backend (created, granted, its backend password set),
    /// once per emulator run.
    ///
    /// # Errors
    /// [`LakebaseError::RoleName`] for names Postgres cannot hold, [`LakebaseError::Superuser`]
    /// for superuser roles, [`LakebaseError::Role`] when a statement fails.
    #[tracing::instrument(skip_all, fields(role = %role))]
    pub(crate) async fn prepare_role(&self, role: &str) -> Result<BackendLogin, LakebaseError> {
        let mut prepared = self.prepared.lock().await;
        self.role_ready(&mut prepared, role).await
    }

    /// As [`Self::prepare_role`], and makes `database` usable by the role: for
    /// `databricks_postgres` and branch databases (`managed`), the database is created when
    /// missing and the role gets what the Apps resource grants on it; other databases are the
    /// role's own business and are left as they are.
    ///
    /// # Errors
    /// As [`Self::prepare_role`], plus [`LakebaseError::Database`].
    #[tracing::instrument(skip_all, fields(role = %role, database = %database))]
    pub(crate) async fn prepare(
        &self,
        role: &str,
        database: &str,
    ) -> Result<BackendLogin, LakebaseError> {
        let mut prepared = self.prepared.lock().await;
        let login = self.role_ready(&mut prepared, role).await?;
        let managed = database == DATABASE || database.starts_with(BRANCH_PREFIX);
        let key = (role.to_owned(), database.to_owned());
        if managed && !prepared.grants.contains(&key) {
            self.grant(role, database).await?;
            prepared.grants.insert(key);
        }
        Ok(login)
    }

    /// Drops a branch's database, closing its sessions, when the branch is purged.
    ///
    /// # Errors
    /// [`LakebaseError::Database`] when the statement fails.
    pub(crate) async fn drop_branch_database(&self, branch: &str) -> Result<(), LakebaseError> {
        let name = branch_database(branch);
        let ident = quote_ident(&name)?;
        sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {ident} WITH (FORCE)"
        )))
        .execute(&self.server)
        .await
        .map_err(LakebaseError::Database)?;
        self.prepared
            .lock()
            .await
            .grants
            .retain(|(_, database)| *database != name);
        tracing::info!(event = "lakebase.branch_database_dropped", branch, database = %name);
        Ok(())
    }

    /// The role's backend password: an HMAC of its name under this run's key.
    fn password(&self, role: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.key, role.as_bytes()).as_ref())
    }

    async fn role_ready(
        &self,
        prepared: &mut Prepared,
        role: &str,
    ) -> Result<BackendLogin, LakebaseError> {
        let login = BackendLogin {
            role: role.to_owned(),
            password: self.password(role),
        };
        if prepared.roles.contains(role) {
            return Ok(login);
        }
        let ident = quote_ident(role)?;
        let failed = |source| LakebaseError::Role {
            role: role.to_owned(),
            source,
        };
        let superuser: Option<bool> =
            sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = $1")
                .bind(role)
                .fetch_optional(&self.server)
                .await
                .map_err(failed)?;
        match superuser {
            Some(true) => return Err(LakebaseError::Superuser(role.to_owned())),
            Some(false) => {}
            None => {
                let create = format!("CREATE ROLE {ident} LOGIN");
                match sqlx::raw_sql(AssertSqlSafe(create))
                    .execute(&self.server)
                    .await
                {
                    Ok(_) => tracing::info!(event = "lakebase.role_created", role),
                    // Another emulator on the same server created it in between.
                    Err(e) if has_sql_state(&e, DUPLICATE_OBJECT) => {}
                    Err(e) => return Err(failed(e)),
                }
            }
        }
        // `VALID UNTIL 'infinity'` undoes an expiry an older emulator may have left on the role.
        let verifier = scram_verifier(
            &login.password,
            &rand::random::<[u8; 16]>(),
            SCRAM_ITERATIONS,
        );
        let statement = format!(
            "ALTER ROLE {ident} WITH LOGIN PASSWORD {} VALID UNTIL 'infinity'",
            quote_literal(&verifier),
        );
        sqlx::raw_sql(AssertSqlSafe(statement))
            .execute(&self.server)
            .await
            .map_err(failed)?;
        self.grant(role, DATABASE).await?;
        prepared
            .grants
            .insert((role.to_owned(), DATABASE.to_owned()));
        prepared.roles.insert(role.to_owned());
        Ok(login)
    }

    /// Creates `database` when missing and grants the role `CONNECT, CREATE` on it and
    /// `USAGE, CREATE` on its schema `public`. Repeating it is harmless (grants are idempotent),
    /// which repairs a preparation that failed half way.
    async fn grant(&self, role: &str, database: &str) -> Result<(), LakebaseError> {
        let ident = quote_ident(role)?;
        let failed = |source| LakebaseError::Role {
            role: role.to_owned(),
            source,
        };
        let mut server = self
            .server
            .acquire()
            .await
            .map_err(LakebaseError::Database)?;
        ensure_database(&mut server, database).await?;
        let grant_database = format!(
            "GRANT CONNECT, CREATE ON DATABASE {} TO {ident}",
            quote_ident(database)?
        );
        sqlx::raw_sql(AssertSqlSafe(grant_database))
            .execute(&mut *server)
            .await
            .map_err(failed)?;
        let grant_schema = format!("GRANT USAGE, CREATE ON SCHEMA public TO {ident}");
        if database == DATABASE {
            sqlx::raw_sql(AssertSqlSafe(grant_schema))
                .execute(&self.database)
                .await
                .map_err(failed)?;
        } else {
            let mut branch = self
                .options
                .clone()
                .database(database)
                .connect()
                .await
                .map_err(LakebaseError::Database)?;
            sqlx::raw_sql(AssertSqlSafe(grant_schema))
                .execute(&mut branch)
                .await
                .map_err(failed)?;
            let _ = branch.close().await;
        }
        Ok(())
    }
}

/// Prefix of branch databases on the backend.
const BRANCH_PREFIX: &str = "lakebase_branch_";

/// The backend database an Autoscaling branch's `databricks_postgres` opens: the prefix, the
/// branch's project and branch ids reduced to what needs no quoting, and a hash of the whole name,
/// so that different branches never share a database and the name stays within 63 bytes.
pub(crate) fn branch_database(branch: &str) -> String {
    let digest = digest::digest(&digest::SHA256, branch.as_bytes());
    let hash: String = digest.as_ref()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let readable: String = branch
        .trim_start_matches("projects/")
        .replace("/branches/", "_")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(MAX_IDENTIFIER_BYTES - BRANCH_PREFIX.len() - hash.len() - 1)
        .collect();
    format!("{BRANCH_PREFIX}{readable}_{hash}")
}

async fn ensure_database(server: &mut PgConnection, database: &str) -> Result<(), LakebaseError> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(database)
            .fetch_one(&mut *server)
            .await
            .map_err(LakebaseError::Database)?;
    if exists {
        return Ok(());
    }
    let create = format!("CREATE DATABASE {}", quote_ident(database)?);
    match sqlx::raw_sql(AssertSqlSafe(create))
        .execute(&mut *server)
        .await
    {
        Ok(_) => {
            tracing::info!(event = "lakebase.database_created", database);
            Ok(())
        }
        // Another emulator on the same server created it in between.
        Err(e) if has_sql_state(&e, DUPLICATE_DATABASE) => Ok(()),
        Err(e) => Err(LakebaseError::Database(e)),
    }
}

/// Whether `error` is a Postgres error with SQLSTATE `code`.
fn has_sql_state(error: &sqlx::Error, code: &str) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.code().as_deref() == Some(code))
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
/// whatever `standard_conforming_strings` says. The inputs here (verifiers) never
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
fn scram_verifier(password: &str, salt: &[u8], iterations: u32) -> String {
    let iterations = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
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
        let verifier = scram_verifier("pencil", &salt, 4096);

        // Assert
        assert_eq!(verifier, EXPECTED_PENCIL);
    }

    const EXPECTED_PENCIL: &str = "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$\
        WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";

    #[test]
    fn branch_databases_are_distinct_short_and_need_no_quoting() {
        // Arrange
        let long = format!("projects/{}/branches/dev", "p".repeat(80));

        // Act
        let main = branch_database("projects/shop/branches/production");
        let dash = branch_database("projects/shop/branches/pr-12");
        let under = branch_database("projects/shop/branches/pr_12");
        let long = branch_database(&long);

        // Assert
        assert!(
            main.starts_with("lakebase_branch_shop_production_"),
            "{main}"
        );
        assert_ne!(dash, under, "the hash tells apart names that read the same");
        assert!(long.len() <= MAX_IDENTIFIER_BYTES, "{long}");
        for name in [&main, &dash, &under, &long] {
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            );
        }
    }
}
