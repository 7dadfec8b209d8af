//! Doctor checks about Lakebase (`shared/UPSTREAM.md` §1.3, §5): the host is set, the database
//! name, TLS, no personal access token as the password, which credential API mints the password,
//! that minting works, the role name, the token's remaining lifetime, a real login, and then, on
//! that login, what the app's role may do: its privileges on the database and the store's schema
//! (`lakebase.privileges`), who owns the store's tables (`lakebase.ownership`) and the pending
//! migrations (`lakebase.migrations`). Those three read the plan `dbapp lakebase setup` would
//! carry out (`dbapp_store::setup`), so doctor and setup cannot disagree; for what the role
//! cannot fix itself, the fix is the exact `GRANT`/`ALTER … OWNER TO` statement for a person.
//!
//! The rules are the store's (`dbapp_store::lakebase`): its defaults, its refusal of `dapi…`
//! passwords and of non-TLS modes, the token's `sub` as the role when `PGUSER` is unset.

use std::time::Duration;

use chrono::Utc;
use dbapp_databricks::{Client, Environment, ErrorKind};
use dbapp_store::lakebase::{
    DEFAULT_DATABASE, DEFAULT_PORT, DatabaseConfig, LakebaseError, LakebaseSettings,
    looks_like_pat, token_subject,
};
use dbapp_store::setup::{self, Action, Plan, Topic};
use dbapp_store::workspace::CredentialTarget;
use secrecy::{ExposeSecret, SecretString};
use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnection, PgSslMode};

use super::{Check, Input, Status, error_chain};

/// The store refreshes its token when less than this much life remains.
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Every Lakebase check, in order; a single skip or warn when no Lakebase is configured.
pub(crate) async fn checks(input: &Input, app: Option<&Client>) -> Vec<Check> {
    let vars = &input.vars;
    if let Some(url) = vars.get("DATABASE_URL") {
        let password = url::Url::parse(&url)
            .ok()
            .and_then(|u| u.password().map(str::to_owned));
        return vec![if password.is_some_and(|p| looks_like_pat(&p)) {
            Check::fail(
                "lakebase.password",
                LakebaseError::PersonalAccessToken {
                    origin: "DATABASE_URL",
                }
                .to_string(),
                "remove the password from DATABASE_URL, or unset DATABASE_URL and use the PG* \
                 variables with LAKEBASE_INSTANCE_NAME so dbapp mints OAuth tokens",
            )
        } else {
            Check::skip(
                "lakebase.configured",
                "DATABASE_URL is set: the store uses it as it is, and the Lakebase variables are ignored",
            )
        }];
    }
    let target = CredentialTarget::from_env(|n| vars.get(n));
    let has_target = !matches!(target, Ok(None));
    let Some(host) = vars.get("PGHOST") else {
        if has_target {
            let hint = lookup_host(app, target.as_ref().ok().and_then(Option::as_ref), input).await;
            return vec![Check::fail(
                "lakebase.host",
                "LAKEBASE_INSTANCE_NAME or LAKEBASE_ENDPOINT is set, but PGHOST is not: dbapp \
                 connects to Lakebase only when PGHOST is set",
                match hint {
                    Some(dns) => format!(
                        "set PGHOST={dns}, or add the database resource to the app (it injects PGHOST)"
                    ),
                    None => {
                        "set PGHOST to the instance's read_write_dns (or the endpoint's host), \
                             or add the database resource to the app (it injects PGHOST)"
                            .to_owned()
                    }
                },
            )];
        }
        let base = if vars.is_set("DATABRICKS_APP_NAME") {
            Check::warn(
                "lakebase.configured",
                "no database is configured: the storage routes (preferences, inference history, \
                 usage) answer 503 STORAGE_NOT_CONFIGURED",
                "add a database resource to the app in databricks.yml (it injects PGHOST, PGPORT, \
                 PGDATABASE, PGUSER and PGSSLMODE) and set LAKEBASE_INSTANCE_NAME in app.yaml",
            )
        } else {
            Check::skip(
                "lakebase.configured",
                "no Lakebase configured (PGHOST unset): dbapp uses the SQLite file DBAPP_SQLITE_PATH",
            )
        };
        return without_host(vars, base);
    };

    let mut out = Vec::new();
    let port = match vars.get("PGPORT") {
        None => DEFAULT_PORT,
        Some(raw) => match raw.parse::<u16>() {
            Ok(port) => port,
            Err(_) => {
                out.push(Check::fail(
                    "lakebase.host",
                    format!("PGPORT={raw} is not a port number"),
                    "set PGPORT=5432 (Lakebase's port) or unset it",
                ));
                return out;
            }
        },
    };
    out.push(Check::pass(
        "lakebase.host",
        format!("PGHOST={host}, port {port}"),
    ));

    out.push(database_check(vars));

    let (ssl, ssl_check) = sslmode_check(vars);
    out.push(ssl_check);

    let static_password = vars.get("PGPASSWORD");
    out.push(password_check(vars));
    let password_is_pat = static_password.as_deref().is_some_and(looks_like_pat);

    // Which password to log in with, and as whom.
    let mut login: Option<(String, SecretString)> = None;
    let mut blocked = ssl.is_none() || password_is_pat;
    match (&static_password, target) {
        (Some(password), _) if !password_is_pat => {
            out.push(Check::skip(
                "lakebase.mint",
                "not needed: PGPASSWORD is a static password",
            ));
            match vars.get("PGUSER") {
                Some(user) => {
                    out.push(Check::pass("lakebase.username", format!("PGUSER={user}")));
                    login = Some((user, SecretString::from(password.clone())));
                }
                None => {
                    out.push(Check::fail(
                        "lakebase.username",
                        "PGPASSWORD is set but PGUSER is not: a static password needs a role name",
                        "set PGUSER to the native Postgres role",
                    ));
                    blocked = true;
                }
            }
        }
        (_, Err(error)) => {
            out.push(Check::fail(
                "lakebase.mint",
                error.to_string(),
                "unset one of LAKEBASE_INSTANCE_NAME (Provisioned) and LAKEBASE_ENDPOINT (Autoscaling)",
            ));
            blocked = true;
        }
        (_, Ok(None)) => {
            out.push(Check::fail(
                "lakebase.mint",
                "PGHOST is set, but neither LAKEBASE_INSTANCE_NAME nor LAKEBASE_ENDPOINT is, so \
                 dbapp cannot mint the Postgres password",
                "set LAKEBASE_INSTANCE_NAME=<instance name> (Provisioned) or \
                 LAKEBASE_ENDPOINT=projects/<p>/branches/<b>/endpoints/<e> (Autoscaling; in \
                 app.yaml `valueFrom: postgres`)",
            ));
            blocked = true;
        }
        (_, Ok(Some(target))) => match app {
            None => {
                out.push(Check::skip(
                    "lakebase.mint",
                    "not attempted: the app's identity does not log in (see auth.app)",
                ));
                blocked = true;
            }
            Some(client) => {
                let (checks, credential) = mint(input, client, &target).await;
                out.extend(checks);
                match credential {
                    Some(credential) => login = Some(credential),
                    None => blocked = true,
                }
            }
        },
    }

    // The login uses exactly the connect options the store would: the loader's settings.
    let (loaded, migrate_on_start) = match dbapp_server::config::Settings::load(&input.vars) {
        Ok(settings) => (
            match settings.store.database {
                Some(DatabaseConfig::Lakebase(lakebase)) => Some(lakebase),
                _ => None,
            },
            settings.server.dbapp.migrate_on_start,
        ),
        Err(_) => (None, true),
    };
    let (login_check, conn) = match (login, blocked, loaded) {
        (Some((user, password)), false, Some(lakebase)) => {
            real_login(input, &lakebase, &user, &password).await
        }
        (Some(_), false, None) => (
            Check::skip(
                "lakebase.login",
                "not attempted: the settings do not load (see config.load)",
            ),
            None,
        ),
        _ => (
            Check::skip(
                "lakebase.login",
                "not attempted: fix the Lakebase failures above first",
            ),
            None,
        ),
    };
    out.push(login_check);
    out.extend(access(input, conn, migrate_on_start).await);
    if out
        .iter()
        .any(|c| c.id == "lakebase.database" && c.status == Status::Warn)
        && let Some(login) = out.iter_mut().find(|c| c.id == "lakebase.login")
        && login.status == Status::Fail
    {
        login.fix = Some(
            "set PGDATABASE=databricks_postgres (or unset it): the database named in PGDATABASE \
             must exist"
                .to_owned(),
        );
    }
    out
}

/// `lakebase.database`: the database name, which needs no connection to judge.
fn database_check(vars: &Environment) -> Check {
    match vars.get("PGDATABASE").as_deref() {
        None => Check::pass(
            "lakebase.database",
            format!("{DEFAULT_DATABASE} (the default database of every Lakebase instance)"),
        ),
        Some("main") => Check::warn(
            "lakebase.database",
            "PGDATABASE=main: `main` is usually a Unity Catalog catalog, not a Lakebase database; \
             every Lakebase instance has databricks_postgres",
            "set PGDATABASE=databricks_postgres (or unset it), unless you created a database named main",
        ),
        Some(name) => Check::pass("lakebase.database", format!("PGDATABASE={name}")),
    }
}

/// `lakebase.sslmode`, and the TLS mode a login would use (`None`: refused).
fn sslmode_check(vars: &Environment) -> (Option<PgSslMode>, Check) {
    let ssl_mode = vars.get("PGSSLMODE");
    let ssl = match ssl_mode.as_deref() {
        None => Some(PgSslMode::Require),
        Some("require") => Some(PgSslMode::Require),
        Some("verify-ca") => Some(PgSslMode::VerifyCa),
        Some("verify-full") => Some(PgSslMode::VerifyFull),
        Some(_) => None,
    };
    let check = match (ssl_mode.as_deref(), ssl) {
        (None, _) => Check::pass("lakebase.sslmode", "require (the default): TLS"),
        (Some(mode), Some(_)) => Check::pass("lakebase.sslmode", format!("PGSSLMODE={mode}: TLS")),
        (Some(mode @ ("disable" | "allow" | "prefer")), None) => Check::fail(
            "lakebase.sslmode",
            format!(
                "PGSSLMODE={mode}: Lakebase accepts only TLS connections, and dbapp refuses to \
                 connect without TLS"
            ),
            "set PGSSLMODE=require (what Databricks Apps injects), or verify-full with PGSSLROOTCERT; \
             for a local Postgres without TLS use DATABASE_URL instead",
        ),
        (Some(mode), None) => Check::fail(
            "lakebase.sslmode",
            format!("PGSSLMODE={mode} is not an sslmode dbapp accepts"),
            "set PGSSLMODE=require, verify-ca or verify-full",
        ),
    };
    (ssl, check)
}

/// `lakebase.password`: no personal access token, and whether a static password replaces the
/// minted one.
fn password_check(vars: &Environment) -> Check {
    match vars.get("PGPASSWORD") {
        Some(p) if looks_like_pat(&p) => Check::fail(
            "lakebase.password",
            LakebaseError::PersonalAccessToken {
                origin: "PGPASSWORD",
            }
            .to_string(),
            "unset PGPASSWORD and set LAKEBASE_INSTANCE_NAME (or LAKEBASE_ENDPOINT): dbapp mints \
             and rotates the OAuth token that is the Postgres password",
        ),
        Some(_) => Check::warn(
            "lakebase.password",
            "PGPASSWORD is set: a static password for a native Postgres role; no OAuth token is \
             minted or rotated",
            "fine for a native login (enable_pg_native_login); for OAuth logins unset PGPASSWORD \
             and set LAKEBASE_INSTANCE_NAME",
        ),
        None => Check::pass(
            "lakebase.password",
            "no PGPASSWORD: the password is an OAuth token dbapp mints as the app",
        ),
    }
}

/// The `PG*` variables set without `PGHOST`: the store ignores them all (it opens SQLite), which
/// is worth saying, and what can be judged without a server is judged.
fn without_host(vars: &Environment, unconfigured: Check) -> Vec<Check> {
    const IGNORED: [&str; 5] = ["PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD", "PGSSLMODE"];
    let set: Vec<&str> = IGNORED
        .into_iter()
        .filter(|name| vars.is_set(name))
        .collect();
    if set.is_empty() {
        return vec![unconfigured];
    }
    let mut out = vec![Check::warn(
        "lakebase.configured",
        format!(
            "{} set but PGHOST is not, so the store ignores them and opens SQLite; checked \
             below what needs no server; not checked: the credential, the login and the \
             privileges (they need PGHOST)",
            set.join(", ")
        ),
        "set PGHOST (and LAKEBASE_INSTANCE_NAME or LAKEBASE_ENDPOINT) to use Lakebase, or unset \
         the PG* variables",
    )];
    if vars.is_set("PGDATABASE") {
        out.push(database_check(vars));
    }
    if vars.is_set("PGSSLMODE") {
        out.push(sslmode_check(vars).1);
    }
    if vars.is_set("PGPASSWORD") {
        out.push(password_check(vars));
    }
    out
}

/// Mints a credential as the app; checks the role name and the token's lifetime.
async fn mint(
    input: &Input,
    client: &Client,
    target: &CredentialTarget,
) -> (Vec<Check>, Option<(String, SecretString)>) {
    let app = client.as_app().with_timeout(input.timeout);
    let (what, result) = (target.to_string(), target.mint(&app).await);
    let credential = match result {
        Ok(credential) => credential,
        Err(error) => {
            let fix = match (error.kind(), target) {
                (ErrorKind::NotFound, CredentialTarget::Instance(_)) => {
                    "LAKEBASE_INSTANCE_NAME must name an existing Lakebase instance (`databricks \
                     database list-database-instances` lists them)"
                }
                (ErrorKind::NotFound | ErrorKind::BadRequest, CredentialTarget::Endpoint(_)) => {
                    "LAKEBASE_ENDPOINT must be an existing projects/<p>/branches/<b>/endpoints/<e> \
                     (in app.yaml, `valueFrom: postgres` gives exactly that), or a branch \
                     projects/<p>/branches/<b> (or LAKEBASE_PROJECT and LAKEBASE_BRANCH) with a \
                     read-write endpoint"
                }
                (ErrorKind::PermissionDenied, _) => {
                    "the app's service principal needs access to the instance: add it as the \
                     app's database resource (CAN_CONNECT_AND_CREATE)"
                }
                _ => "see the error above; auth.app must pass first",
            };
            return (
                vec![Check::fail(
                    "lakebase.mint",
                    format!(
                        "cannot mint a credential for {what}: {}",
                        error_chain(&error)
                    ),
                    fix,
                )],
                None,
            );
        }
    };
    let token = credential.token.expose_secret().to_owned();
    let mut out = Vec::new();
    if looks_like_pat(&token) {
        out.push(Check::fail(
            "lakebase.mint",
            LakebaseError::PersonalAccessToken {
                origin: "the token source",
            }
            .to_string(),
            "the credential API returned a PAT: check DATABRICKS_HOST",
        ));
        return (out, None);
    }
    let subject = token_subject(&token);
    out.push(Check::pass(
        "lakebase.mint",
        format!(
            "minted a credential for {what} as {}",
            subject.as_deref().unwrap_or("the app")
        ),
    ));
    let user = match (input.vars.get("PGUSER"), subject) {
        (Some(user), Some(sub)) if user != sub => {
            out.push(Check::fail(
                "lakebase.username",
                format!(
                    "PGUSER={user}, but the minted token belongs to {sub}: Lakebase accepts a \
                     token only for its own identity's role"
                ),
                format!("unset PGUSER (dbapp then uses the token's sub) or set PGUSER={sub}"),
            ));
            None
        }
        (Some(user), _) => {
            out.push(Check::pass("lakebase.username", format!("PGUSER={user}")));
            Some(user)
        }
        (None, Some(sub)) => {
            out.push(Check::pass(
                "lakebase.username",
                format!("PGUSER unset: the role is the token's sub, {sub}"),
            ));
            Some(sub)
        }
        (None, None) => {
            out.push(Check::fail(
                "lakebase.username",
                LakebaseError::NoUser.to_string(),
                "set PGUSER to the app's service principal client id",
            ));
            None
        }
    };
    let left = credential.expires_at - Utc::now();
    let left_secs = left.num_seconds();
    let at = credential
        .expires_at
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    out.push(if left_secs <= 0 {
        Check::fail(
            "lakebase.token_lifetime",
            format!("the credential minted just now has already expired ({at})"),
            "check the clock of this machine",
        )
    } else if left_secs < REFRESH_MARGIN.as_secs() as i64 {
        Check::warn(
            "lakebase.token_lifetime",
            format!(
                "a fresh credential lives only {left_secs} s (expires {at}): less than the store's \
                 5 min refresh margin, so it would mint a new one on every check"
            ),
            "Lakebase credentials normally live 1 h: check the credential API's TTL",
        )
    } else {
        Check::pass(
            "lakebase.token_lifetime",
            format!(
                "a fresh credential lives {} min (expires {at}); the store refreshes it 5 min before expiry",
                left_secs / 60
            ),
        )
    });
    (out, user.map(|u| (u, credential.token)))
}

/// `lakebase.login`: one real Postgres login with the connect options and password the store
/// would use; the connection, when it worked, for the checks of [`access`].
async fn real_login(
    input: &Input,
    lakebase: &LakebaseSettings,
    user: &str,
    password: &SecretString,
) -> (Check, Option<PgConnection>) {
    const ID: &str = "lakebase.login";
    let options = lakebase
        .connect_options(user)
        .application_name("dbapp-doctor")
        .password(password.expose_secret());
    let (host, port, database) = (&lakebase.host, lakebase.port, &lakebase.database);
    let target = format!("{host}:{port}/{database} as {user}");
    let attempt = async {
        let mut conn = options.connect().await?;
        let row: (String,) = sqlx::query_as("SELECT current_user::text")
            .fetch_one(&mut conn)
            .await?;
        Ok::<_, sqlx::Error>((row.0, conn))
    };
    let check = match tokio::time::timeout(input.timeout * 2, attempt).await {
        Ok(Ok((role, conn))) => {
            return (
                Check::pass(
                    ID,
                    format!("logged in to {host}:{port}/{database} as {role} over TLS"),
                ),
                Some(conn),
            );
        }
        Err(_) => Check::fail(
            ID,
            format!(
                "the login to {target} did not finish within {} s",
                (input.timeout * 2).as_secs()
            ),
            "check PGHOST and PGPORT, and that the instance is running (not stopped)",
        ),
        Ok(Err(error)) => {
            let code = match &error {
                sqlx::Error::Database(e) => e.code().map(|c| c.into_owned()),
                _ => None,
            };
            let fix = match (code.as_deref(), &error) {
                (Some("28P01" | "28000"), _) => format!(
                    "the role {user} must exist and the password must be a current token for it: \
                     adding the database resource to the app creates the service principal's role; \
                     for a person, create the role with databricks_create_role"
                ),
                (Some("3D000"), _) => {
                    "set PGDATABASE to an existing database (databricks_postgres is the default)".to_owned()
                }
                (Some("42501"), _) => "grant the role CONNECT on the database".to_owned(),
                (_, sqlx::Error::Tls(_)) => {
                    "the server's TLS was refused: with verify-ca/verify-full set PGSSLROOTCERT, or use PGSSLMODE=require".to_owned()
                }
                _ => "check PGHOST and PGPORT (the instance's read_write_dns and 5432), and that the instance is running".to_owned(),
            };
            Check::fail(
                ID,
                format!("cannot log in to {target}: {}", error_chain(&error)),
                fix,
            )
        }
    };
    (check, None)
}

/// `lakebase.privileges`, `lakebase.ownership` and `lakebase.migrations`, read on the doctor's
/// own login as the app's role.
async fn access(input: &Input, conn: Option<PgConnection>, migrate_on_start: bool) -> Vec<Check> {
    const IDS: [&str; 3] = [
        "lakebase.privileges",
        "lakebase.ownership",
        "lakebase.migrations",
    ];
    let Some(mut conn) = conn else {
        return IDS
            .map(|id| Check::skip(id, "not attempted: lakebase.login must pass first"))
            .into();
    };
    let plan = tokio::time::timeout(input.timeout, setup::plan(&mut conn, &[])).await;
    let _ = sqlx::Connection::close(conn).await;
    let failure = match plan {
        Ok(Ok(plan)) => return plan_checks(&plan, IDS, migrate_on_start),
        Ok(Err(error)) => format!("cannot read the role's privileges: {}", error_chain(&error)),
        Err(_) => format!(
            "reading the role's privileges did not finish within {} s",
            input.timeout.as_secs()
        ),
    };
    IDS.map(|id| {
        Check::fail(
            id,
            failure.clone(),
            "see lakebase.login; `dbapp lakebase setup --dry-run` reads the same catalogs",
        )
    })
    .into()
}

/// The three checks of [`access`] from the plan.
fn plan_checks(plan: &Plan, ids: [&'static str; 3], migrate_on_start: bool) -> Vec<Check> {
    let schema = &plan.schema;
    vec![
        topic_check(
            plan,
            Topic::Privileges,
            ids[0],
            format!(
                "{} has CONNECT on {}, and USAGE and CREATE on schema {schema}",
                plan.role, plan.database
            ),
        ),
        topic_check(
            plan,
            Topic::Ownership,
            ids[1],
            format!(
                "{} owns every store table that exists in schema {schema}",
                plan.role
            ),
        ),
        migrations_check(plan, ids[2], migrate_on_start),
    ]
}

/// One check from the plan's steps about `topic`: pass without steps, fail with the statements
/// for a person when any step is theirs, else warn that `dbapp lakebase setup` does it.
fn topic_check(plan: &Plan, topic: Topic, id: &'static str, pass: String) -> Check {
    let steps: Vec<_> = plan.steps_about(topic).collect();
    if steps.is_empty() {
        return Check::pass(id, pass);
    }
    let why = steps
        .iter()
        .map(|s| s.why.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let human: Vec<&str> = steps
        .iter()
        .filter(|s| s.action == Action::Human)
        .map(|s| s.statement.as_str())
        .collect();
    if human.is_empty() {
        let statements: Vec<&str> = steps.iter().map(|s| s.statement.as_str()).collect();
        Check::warn(
            id,
            why,
            format!(
                "`dbapp lakebase setup` does it as the app's role: {}",
                statements.join("; ")
            ),
        )
    } else {
        Check::fail(
            id,
            format!("the app's role cannot fix this itself: {why}"),
            format!(
                "run as the owner or an admin (e.g. in the Lakebase SQL editor): {}",
                human.join(" ")
            ),
        )
    }
}

/// `lakebase.migrations`: none pending, or which, and who applies them.
fn migrations_check(plan: &Plan, id: &'static str, migrate_on_start: bool) -> Check {
    let total = dbapp_store::postgres::MIGRATOR.iter().count();
    let pending: Vec<&str> = plan
        .steps_about(Topic::Migrations)
        .map(|s| s.statement.trim_start_matches("migration "))
        .collect();
    if pending.is_empty() {
        return Check::pass(id, format!("all {total} migrations are applied"));
    }
    let message = format!(
        "{} of {total} migrations pending: {}",
        pending.len(),
        pending.join(", ")
    );
    if migrate_on_start {
        Check::pass(
            id,
            format!(
                "{message}; `dbapp serve` applies them at start (DBAPP_MIGRATE_ON_START), or \
                 run `dbapp lakebase setup` now"
            ),
        )
    } else {
        Check::warn(
            id,
            message,
            "DBAPP_MIGRATE_ON_START=false: run `dbapp lakebase setup` before the app starts",
        )
    }
}

/// The host of the instance or endpoint, to suggest as PGHOST.
async fn lookup_host(
    app: Option<&Client>,
    target: Option<&CredentialTarget>,
    input: &Input,
) -> Option<String> {
    let app = app?.as_app().with_timeout(input.timeout);
    target?.host(&app).await.ok()?
}
