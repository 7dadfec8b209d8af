//! What the app's Postgres role needs before the store works, as a [`Plan`] of steps: read from
//! the database as that role by [`plan`], carried out one step at a time by [`apply_step`]
//! (`dbapp lakebase setup`), and reported by `dbapp doctor`.
//!
//! The store's statements name tables without a schema, so its tables live in the role's current
//! schema: the first schema of its `search_path` that exists, which with Postgres' default
//! `search_path` (`"$user", public`) is `public`. The plan reads that schema ([`Plan::schema`])
//! rather than assuming it, and falls back to [`DEFAULT_SCHEMA`] when none on the path exists. The app's role must own
//! them: the migrations alter the tables they created (columns, row-level security), and only an
//! owner may. Lakebase's Apps database resource gives the role `CONNECT` and `CREATE` on the
//! database and nothing else, so a table some other role created first (a person who ran the
//! migrations as themselves, an earlier app) blocks every later migration. The plan therefore
//! checks, in order:
//!
//! 1. `CONNECT` on the database;
//! 2. the schema: it exists, and the role has `USAGE` and `CREATE` on it;
//! 3. every table the migrations create, and sqlx's `_sqlx_migrations`: owned by the role;
//! 4. each reader role (optional): `USAGE` on the schema, `SELECT` on the store's tables, and
//!    default privileges so that tables later migrations create are readable too;
//! 5. the pending migrations, one step each (their SQL lives in `migrations/postgres`, and the
//!    plan shows each one's description and the first sentence of its leading comment).
//!
//! Every step is either something the role can do itself ([`Action::Run`],
//! [`Action::Migrate`]) or a statement only another role can run ([`Action::Human`]: the owner
//! of the object or an admin), given exactly. Nothing here is executed by [`plan`]; a step that
//! is already true is not in the plan, so a plan of a set-up database is empty and applying it
//! changes nothing.
//!
//! What this module leaves to others: logging in (`lakebase`, with the app's minted token),
//! printing and progress (the CLI), and the migrations' SQL itself (`migrations/postgres`).

use sqlx::postgres::{PgConnection, PgPool};
use sqlx::{AssertSqlSafe, Executor};

use crate::StoreError;
use crate::postgres::MIGRATOR;

/// The schema the store's tables go to when no schema of the role's `search_path` exists yet.
pub const DEFAULT_SCHEMA: &str = "public";

/// sqlx's bookkeeping table: which migrations ran.
const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

/// Who carries a step out, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The app's role runs [`Step::statement`] itself.
    Run,
    /// The app's role applies this migration (and any before it that are pending).
    Migrate {
        /// The migration's version.
        version: i64,
    },
    /// Only the object's owner or an admin can: a person runs [`Step::statement`].
    Human,
}

/// What a step is about, so that `dbapp doctor` can report each concern as its own check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// `CONNECT` on the database; the schema, `USAGE` and `CREATE` on it.
    Privileges,
    /// Who owns the store's tables.
    Ownership,
    /// Read access for the reader roles.
    Readers,
    /// Pending migrations.
    Migrations,
}

/// One thing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Who does it.
    pub action: Action,
    /// What it is about.
    pub topic: Topic,
    /// The SQL statement (with a trailing `;` for [`Action::Human`], ready to paste), or for a
    /// migration its version and description.
    pub statement: String,
    /// Why, in one line.
    pub why: String,
}

/// Everything the role still needs, in the order to do it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The role the plan was read as (`current_user`).
    pub role: String,
    /// The database (`current_database()`).
    pub database: String,
    /// The schema of the store's tables: `current_schema()`, else [`DEFAULT_SCHEMA`].
    pub schema: String,
    /// The steps; empty when everything is in place.
    pub steps: Vec<Step>,
}

impl Plan {
    /// The steps only a person can carry out.
    pub fn human_steps(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(|s| s.action == Action::Human)
    }

    /// The steps about `topic`.
    pub fn steps_about(&self, topic: Topic) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(move |s| s.topic == topic)
    }
}

/// The tables the migrations create, in the order they appear, read from their SQL
/// (`CREATE TABLE [IF NOT EXISTS] name`), so that a new migration is covered without a list to
/// keep in step.
pub fn store_tables() -> Vec<String> {
    let mut tables = Vec::new();
    for migration in MIGRATOR.iter() {
        let code: String = migration
            .sql
            .as_str()
            .lines()
            .map(|line| line.split("--").next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n");
        let words: Vec<&str> = code.split_whitespace().collect();
        for (i, pair) in words.windows(2).enumerate() {
            if !(pair[0].eq_ignore_ascii_case("CREATE") && pair[1].eq_ignore_ascii_case("TABLE")) {
                continue;
            }
            let rest = &words[i + 2..];
            let name = match rest {
                [a, b, c, name, ..]
                    if a.eq_ignore_ascii_case("IF")
                        && b.eq_ignore_ascii_case("NOT")
                        && c.eq_ignore_ascii_case("EXISTS") =>
                {
                    name
                }
                [name, ..] => name,
                [] => continue,
            };
            let name = name
                .split('(')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            if !name.is_empty() && !tables.contains(&name) {
                tables.push(name);
            }
        }
    }
    tables
}

/// The first sentence of a migration's leading comment: what it does, in its author's words.
fn summary(sql: &str) -> String {
    let comment: Vec<&str> = sql
        .lines()
        .map_while(|line| line.trim().strip_prefix("--"))
        .map(str::trim)
        .collect();
    let text = comment.join(" ");
    match text.find(". ") {
        Some(end) => text[..=end].to_owned(),
        None if text.is_empty() => "a schema change the store's queries need".to_owned(),
        None => text,
    }
}

/// A role name as a quoted identifier (role names here are client ids with hyphens, e-mails).
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A schema, table or database name: bare when it is a plain lower-case identifier.
fn ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain { name.to_owned() } else { quoted(name) }
}

#[derive(sqlx::FromRow)]
struct Basics {
    role: String,
    database: String,
    schema: String,
    can_connect: bool,
    can_create_schema: bool,
    schema_owner: Option<String>,
    schema_usage: Option<bool>,
    schema_create: Option<bool>,
    owns_schema: Option<bool>,
}

const BASICS: &str = "\
SELECT current_user::text AS role,
       current_database()::text AS database,
       s.name AS schema,
       has_database_privilege(current_database(), 'CONNECT') AS can_connect,
       has_database_privilege(current_database(), 'CREATE') AS can_create_schema,
       pg_get_userbyid(n.nspowner)::text AS schema_owner,
       has_schema_privilege(n.oid, 'USAGE') AS schema_usage,
       has_schema_privilege(n.oid, 'CREATE') AS schema_create,
       pg_has_role(n.nspowner, 'USAGE') AS owns_schema
FROM (SELECT coalesce(current_schema()::text, $1) AS name) AS s
LEFT JOIN pg_namespace n ON n.nspname = s.name";

#[derive(sqlx::FromRow)]
struct TableRow {
    name: String,
    owner: String,
    /// The role owns the table, directly or through a role it inherits.
    owned: bool,
    readable: bool,
}

const TABLES: &str = "\
SELECT c.relname::text AS name,
       pg_get_userbyid(c.relowner)::text AS owner,
       pg_has_role(c.relowner, 'USAGE') AS owned,
       has_table_privilege(c.oid, 'SELECT') AS readable
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND c.relname = ANY($2)";

/// Reads what `conn`'s role still needs. `readers` are roles to be given read access to the
/// store's tables. Executes nothing but catalog queries.
///
/// # Errors
/// [`StoreError::InvalidInput`] when a reader role does not exist; [`StoreError::Unavailable`]
/// or [`StoreError::Database`] when a catalog query fails.
#[tracing::instrument(skip_all)]
pub async fn plan(conn: &mut PgConnection, readers: &[String]) -> Result<Plan, StoreError> {
    let basics: Basics = sqlx::query_as(BASICS)
        .bind(DEFAULT_SCHEMA)
        .fetch_one(&mut *conn)
        .await?;
    let role = quoted(&basics.role);
    let name = basics.schema.as_str();
    let schema = ident(name);
    let mut steps = Vec::new();
    let mut step = |action, topic, statement: String, why: String| {
        steps.push(Step {
            action,
            topic,
            statement,
            why,
        });
    };

    if !basics.can_connect {
        step(
            Action::Human,
            Topic::Privileges,
            format!(
                "GRANT CONNECT ON DATABASE {} TO {role};",
                ident(&basics.database)
            ),
            format!(
                "{} may not connect to {}: every replica's new connection needs CONNECT",
                basics.role, basics.database
            ),
        );
    }
    match (
        &basics.schema_owner,
        basics.schema_usage,
        basics.schema_create,
    ) {
        (None, ..) if basics.can_create_schema => step(
            Action::Run,
            Topic::Privileges,
            format!("CREATE SCHEMA IF NOT EXISTS {schema}"),
            format!(
                "the store's tables live in schema {name}, which does not exist: the app's role creates it, and so owns it"
            ),
        ),
        (None, ..) => step(
            Action::Human,
            Topic::Privileges,
            format!("CREATE SCHEMA {schema} AUTHORIZATION {role};"),
            format!(
                "schema {name} does not exist and {} may not create schemas in {}",
                basics.role, basics.database
            ),
        ),
        (Some(_), Some(true), Some(true)) => {}
        (Some(owner), ..) => step(
            if basics.owns_schema == Some(true) {
                Action::Run
            } else {
                Action::Human
            },
            Topic::Privileges,
            format!(
                "GRANT USAGE, CREATE ON SCHEMA {schema} TO {role}{}",
                if basics.owns_schema == Some(true) {
                    ""
                } else {
                    ";"
                }
            ),
            format!(
                "{} lacks USAGE or CREATE on schema {name} (owned by {owner}): it cannot \
                 read its tables or create new ones",
                basics.role
            ),
        ),
    }

    let names = store_tables();
    let mut wanted: Vec<String> = names.clone();
    wanted.push(MIGRATIONS_TABLE.to_owned());
    let tables: Vec<TableRow> = if basics.schema_owner.is_some() {
        sqlx::query_as(TABLES)
            .bind(name)
            .bind(&wanted)
            .fetch_all(&mut *conn)
            .await?
    } else {
        Vec::new()
    };
    for table in tables.iter().filter(|t| t.owner != basics.role) {
        let statement = format!(
            "ALTER TABLE {schema}.{} OWNER TO {role}",
            ident(&table.name)
        );
        if table.owned {
            step(
                Action::Run,
                Topic::Ownership,
                statement,
                format!(
                    "{}.{} is owned by {}, a role {} belongs to: the app's role takes it over so \
                     that migrations can alter it",
                    name, table.name, table.owner, basics.role
                ),
            );
        } else {
            step(
                Action::Human,
                Topic::Ownership,
                format!("{statement};"),
                format!(
                    "{name}.{} is owned by {}: migrations alter the store's tables, which only \
                     their owner may, and only {} or an admin can hand it over (run it as one of them)",
                    table.name, table.owner, table.owner
                ),
            );
        }
    }

    for reader in readers {
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
                .bind(reader)
                .fetch_one(&mut *conn)
                .await?;
        if !exists {
            return Err(StoreError::InvalidInput(format!(
                "the reader role {reader:?} does not exist"
            )));
        }
        let reader_ident = quoted(reader);
        let state: (Option<bool>, Option<bool>, bool) = sqlx::query_as(
            "SELECT has_schema_privilege($1, n.oid, 'USAGE'),
                    has_schema_privilege(n.oid, 'USAGE WITH GRANT OPTION')
                        OR pg_has_role(n.nspowner, 'USAGE'),
                    EXISTS (SELECT 1 FROM pg_default_acl d, aclexplode(d.defaclacl) a
                            WHERE d.defaclrole = (SELECT oid FROM pg_roles WHERE rolname = current_user)
                              AND d.defaclnamespace = n.oid AND d.defaclobjtype = 'r'
                              AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = $1)
                              AND a.privilege_type = 'SELECT')
             FROM (SELECT 1) AS one LEFT JOIN pg_namespace n ON n.nspname = $2",
        )
        .bind(reader)
        .bind(name)
        .fetch_one(&mut *conn)
        .await?;
        let (reader_usage, can_grant_usage, has_default) = state;
        if reader_usage != Some(true) {
            let statement = format!("GRANT USAGE ON SCHEMA {schema} TO {reader_ident}");
            let why = format!("{reader} must reach schema {name} to read the store's tables");
            if can_grant_usage == Some(false) {
                step(Action::Human, Topic::Readers, format!("{statement};"), why);
            } else {
                step(Action::Run, Topic::Readers, statement, why);
            }
        }
        if !has_default {
            step(
                Action::Run,
                Topic::Readers,
                format!(
                    "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {reader_ident}"
                ),
                format!(
                    "tables that later migrations create become readable by {reader} as they are created"
                ),
            );
        }
        for table in &tables {
            if table.owner != basics.role || !names.contains(&table.name) {
                continue;
            }
            let readable: bool = sqlx::query_scalar(
                "SELECT has_table_privilege($1, format('%I.%I', $2::text, $3::text), 'SELECT')",
            )
            .bind(reader)
            .bind(name)
            .bind(&table.name)
            .fetch_one(&mut *conn)
            .await?;
            if !readable {
                step(
                    Action::Run,
                    Topic::Readers,
                    format!(
                        "GRANT SELECT ON {schema}.{} TO {reader_ident}",
                        ident(&table.name)
                    ),
                    format!("{reader} reads {name}.{}, which exists already", table.name),
                );
            }
        }
    }

    let bookkeeping = tables.iter().find(|t| t.name == MIGRATIONS_TABLE);
    let applied: Vec<i64> = match bookkeeping {
        Some(table) if table.readable => {
            sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT version FROM {schema}.{MIGRATIONS_TABLE} WHERE success"
            )))
            .fetch_all(&mut *conn)
            .await?
        }
        _ => Vec::new(),
    };
    for migration in MIGRATOR.iter() {
        if applied.contains(&migration.version) {
            continue;
        }
        step(
            Action::Migrate {
                version: migration.version,
            },
            Topic::Migrations,
            format!(
                "migration {:04} {}",
                migration.version, migration.description
            ),
            summary(migration.sql.as_str()),
        );
    }

    Ok(Plan {
        role: basics.role,
        database: basics.database,
        schema: basics.schema,
        steps,
    })
}

/// Carries out one step of a plan on `pool` (a pool logged in as the plan's role).
///
/// # Errors
/// [`StoreError::InvalidInput`] for an [`Action::Human`] step, which the role cannot do; the
/// database's own error (permission denied, …) as [`StoreError::Database`] or
/// [`StoreError::Migrate`].
#[tracing::instrument(skip_all, fields(statement = %step.statement))]
pub async fn apply_step(pool: &PgPool, step: &Step) -> Result<(), StoreError> {
    match step.action {
        Action::Run => {
            pool.execute(AssertSqlSafe(step.statement.clone())).await?;
        }
        Action::Migrate { version } => MIGRATOR.run_to(version, pool).await?,
        Action::Human => {
            return Err(StoreError::InvalidInput(format!(
                "a person must run this as the object's owner or an admin: {}",
                step.statement
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_are_read_from_the_migrations() {
        let tables = store_tables();
        for table in [
            "user_preferences",
            "model_inference_logs",
            "usage_events",
            "performance_metrics",
            "performance_rollups",
            "performance_rollups_hourly",
            "conversations",
            "conversation_messages",
        ] {
            assert!(tables.iter().any(|t| t == table), "{table} in {tables:?}");
        }
        assert!(!tables.iter().any(|t| t.contains('(')), "{tables:?}");
    }

    #[test]
    fn a_summary_is_the_first_sentence_of_the_leading_comment() {
        let sql =
            "-- Per-user preferences: one value. `revision` counts\n-- writes.\nCREATE TABLE x ();";
        assert_eq!(summary(sql), "Per-user preferences: one value.");
        assert_eq!(summary("-- Only one\n-- line\nSELECT 1"), "Only one line");
        assert_eq!(
            summary("SELECT 1"),
            "a schema change the store's queries need"
        );
    }

    #[test]
    fn roles_are_quoted_and_plain_names_are_not() {
        assert_eq!(quoted("6f1c-9a"), "\"6f1c-9a\"");
        assert_eq!(quoted("a\"b"), "\"a\"\"b\"");
        assert_eq!(ident("public"), "public");
        assert_eq!(ident("_sqlx_migrations"), "_sqlx_migrations");
        assert_eq!(ident("My-DB"), "\"My-DB\"");
    }
}
