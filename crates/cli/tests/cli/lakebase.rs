//! `dbapp lakebase setup` against the emulator and a private Postgres cluster: the app logs in
//! as its service principal's role (`dbapp-sp`, created by the emulator with the grants of the
//! Apps database resource, not a superuser), exactly as `dbapp serve` would. The tests look at
//! the result through the cluster's superuser: owners, grants and sqlx's bookkeeping.

use std::collections::BTreeMap;

use dbapp_emulator::EmulatorHandle;
use dbapp_emulator::postgres::PrivateCluster;
use dbapp_store::postgres::MIGRATOR;
use dbapp_store::setup::store_tables;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Executor, PgConnection};

use crate::doctor::{app_vars, doctor, lakebase, refs};

/// The app's role: the default fixture's service principal.
const APP_ROLE: &str = "dbapp-sp";

/// A finished `dbapp lakebase setup` run.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// The app's configuration for the emulated Lakebase: its Postgres front (which logs the minted
/// token's role in to the cluster), minting through `emulator`.
fn vars(emulator: &EmulatorHandle) -> Vec<(&'static str, String)> {
    let front = emulator
        .lakebase_addr()
        .expect("the emulator has a Lakebase front");
    let mut vars = app_vars(emulator.base_url());
    vars.extend([
        ("PGHOST", front.ip().to_string()),
        ("PGPORT", front.port().to_string()),
        ("LAKEBASE_INSTANCE_NAME", "dev-lakebase".to_owned()),
    ]);
    vars
}

/// Runs `dbapp lakebase setup` with exactly `vars` (plus HOME and PATH) and `args`.
async fn setup(vars: &[(&'static str, String)], args: &[&str]) -> Run {
    let home = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_dbapp"))
        .args(["lakebase", "setup"])
        .args(args)
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", "/usr/bin:/bin")
        .envs(refs(vars))
        .current_dir(home.path())
        .output()
        .await
        .expect("dbapp runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The superuser on `databricks_postgres`.
async fn admin(cluster: &PrivateCluster) -> PgConnection {
    cluster
        .admin_connect_options()
        .database("databricks_postgres")
        .connect()
        .await
        .expect("the superuser logs in")
}

/// Every relation in schema public with its owner and grants, and sqlx's bookkeeping rows with
/// the time each migration was applied: what a run that changes nothing leaves as it was.
async fn snapshot(admin: &mut PgConnection) -> (BTreeMap<String, String>, Vec<String>) {
    let relations: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.relname::text, pg_get_userbyid(c.relowner)::text || ' ' || coalesce(c.relacl::text, '')
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'",
    )
    .fetch_all(&mut *admin)
    .await
    .unwrap();
    let applied: Vec<String> = sqlx::query_scalar(
        "SELECT version::text || ' ' || installed_on::text FROM _sqlx_migrations ORDER BY version",
    )
    .fetch_all(&mut *admin)
    .await
    .unwrap_or_default();
    (relations.into_iter().collect(), applied)
}

async fn public_relations(admin: &mut PgConnection) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public'",
    )
    .fetch_one(admin)
    .await
    .unwrap()
}

#[tokio::test]
async fn setup_creates_the_tables_owned_by_the_app_role_and_a_second_run_changes_nothing() {
    // Arrange
    let (emulator, cluster) = lakebase().await;
    let vars = vars(&emulator);
    let mut admin = admin(&cluster).await;
    admin.execute("CREATE ROLE analyst").await.unwrap();

    // Act
    let first = setup(&vars, &["--reader", "analyst"]).await;
    let after_first = snapshot(&mut admin).await;
    let second = setup(&vars, &["--reader", "analyst"]).await;
    let after_second = snapshot(&mut admin).await;

    // Assert
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    assert!(
        first
            .stdout
            .contains(&format!("role {APP_ROLE} on database databricks_postgres")),
        "{}",
        first.stdout
    );
    let total = MIGRATOR.iter().count();
    for migration in MIGRATOR.iter() {
        let line = format!(
            "migration {:04} {} … ok",
            migration.version, migration.description
        );
        assert!(first.stdout.contains(&line), "{line}: {}", first.stdout);
    }
    assert!(
        first.stdout.contains(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO \"analyst\" … ok"
        ),
        "{}",
        first.stdout
    );
    for table in store_tables() {
        let (owner, readable): (String, bool) = sqlx::query_as(
            "SELECT pg_get_userbyid(relowner)::text, has_table_privilege('analyst', oid, 'SELECT')
             FROM pg_class WHERE relname = $1 AND relnamespace = 'public'::regnamespace",
        )
        .bind(&table)
        .fetch_one(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("{table}: {e}"));
        assert_eq!(owner, APP_ROLE, "{table}");
        assert!(readable, "analyst reads {table}");
    }
    assert_eq!(after_first.1.len(), total, "{:?}", after_first.1);
    // stdout is a pipe here: no colour codes.
    assert!(!first.stdout.contains('\x1b'), "{}", first.stdout);

    assert_eq!(second.code, 0, "{}\n{}", second.stdout, second.stderr);
    assert!(
        second.stdout.contains(&format!(
            "nothing to do: the schema, ownership, grants and all {total} migrations are in place"
        )),
        "{}",
        second.stdout
    );
    assert!(!second.stdout.contains("… ok"), "{}", second.stdout);
    assert_eq!(after_second, after_first);
    drop(emulator);
    cluster.stop().await.ok();
}

#[tokio::test]
async fn dry_run_explains_every_step_and_executes_nothing() {
    // Arrange
    let (emulator, cluster) = lakebase().await;
    let vars = vars(&emulator);
    let mut admin = admin(&cluster).await;

    // Act
    let run = setup(&vars, &["--dry-run"]).await;
    let unknown_reader = setup(&vars, &["--dry-run", "--reader", "nobody"]).await;

    // Assert
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("(dry run: nothing is executed)"),
        "{}",
        run.stdout
    );
    let total = MIGRATOR.iter().count();
    for (i, migration) in MIGRATOR.iter().enumerate() {
        let line = format!(
            "[{}/{total}] migration {:04} {}",
            i + 1,
            migration.version,
            migration.description
        );
        assert!(run.stdout.contains(&line), "{line}: {}", run.stdout);
    }
    assert!(
        run.stdout
            .contains("why: Per-user preferences: one JSON value per (user_id, key)."),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("… ok"), "{}", run.stdout);
    assert_eq!(public_relations(&mut admin).await, 0);

    assert_ne!(unknown_reader.code, 0);
    assert!(
        unknown_reader
            .stderr
            .contains("the reader role \"nobody\" does not exist"),
        "{}",
        unknown_reader.stderr
    );
    drop(emulator);
    cluster.stop().await.ok();
}

#[tokio::test]
async fn a_table_another_role_owns_stops_setup_and_doctor_names_the_exact_statement() {
    // Arrange: a person ran the first migration as themselves, so its table is theirs.
    let (emulator, cluster) = lakebase().await;
    let vars = vars(&emulator);
    let mut admin = admin(&cluster).await;
    let first = MIGRATOR.iter().next().unwrap();
    admin.execute("CREATE ROLE legacy_owner").await.unwrap();
    admin
        .execute(AssertSqlSafe(first.sql.as_str().to_owned()))
        .await
        .unwrap();
    admin
        .execute("ALTER TABLE public.user_preferences OWNER TO legacy_owner")
        .await
        .unwrap();
    let statement = format!("ALTER TABLE public.user_preferences OWNER TO \"{APP_ROLE}\";");

    // Act
    let refused = setup(&vars, &[]).await;
    let relations_after_refusal = public_relations(&mut admin).await;
    let report = doctor(&refs(&vars), &[], None).await;
    admin
        .execute(AssertSqlSafe(statement.clone()))
        .await
        .expect("the printed statement runs as it is");
    let fixed = setup(&vars, &[]).await;

    // Assert
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(refused.stdout.contains(&statement), "{}", refused.stdout);
    assert!(
        refused
            .stdout
            .contains("owned by legacy_owner: migrations alter the store's tables"),
        "{}",
        refused.stdout
    );
    assert!(
        refused.stderr.contains("nothing was changed"),
        "{}",
        refused.stderr
    );
    // Only the person's table (and its unique index) exist: setup ran nothing.
    assert_eq!(relations_after_refusal, 2);

    assert_eq!(report.code, 1, "{}", report.stdout);
    report.assert(
        "lakebase.ownership",
        "fail",
        &[
            "cannot fix this itself",
            "public.user_preferences is owned by legacy_owner",
        ],
        &[&statement],
    );
    report.assert(
        "lakebase.privileges",
        "pass",
        &["dbapp-sp has CONNECT on databricks_postgres, and USAGE and CREATE on schema public"],
        &[],
    );

    assert_eq!(fixed.code, 0, "{}\n{}", fixed.stdout, fixed.stderr);
    let owner: String = sqlx::query_scalar(
        "SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE relname = 'conversations'",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(owner, APP_ROLE);
    admin.close().await.ok();
    drop(emulator);
    cluster.stop().await.ok();
}
