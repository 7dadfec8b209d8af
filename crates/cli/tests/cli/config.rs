//! One misconfiguration per class, run through `dbapp serve` and `dbapp doctor` alike: both load
//! the configuration with the same loader, so both must name the same variable. Each run has a
//! cleared environment, HOME in a temporary directory (no `~/.databrickscfg`) and only the
//! variables the case names.

use crate::doctor::doctor;

/// A workspace host where nothing listens: connections are refused at once, offline.
const NOWHERE: &str = "http://127.0.0.1:1";

/// Runs `dbapp serve` with exactly `vars` and returns its stderr; it must fail.
fn serve_error(vars: &[(&str, &str)]) -> String {
    let home = tempfile::tempdir().unwrap();
    let output = crate::dbapp()
        .arg("serve")
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", "/usr/bin:/bin")
        .env("DATABRICKS_APP_PORT", "1")
        .envs(vars.iter().copied())
        .current_dir(home.path())
        .output()
        .expect("dbapp runs");
    assert!(!output.status.success(), "serve started with {vars:?}");
    String::from_utf8(output.stderr).unwrap()
}

#[tokio::test]
async fn the_dual_auth_trap_names_both_methods_variables() {
    // Arrange
    let vars = [
        ("DATABRICKS_HOST", NOWHERE),
        ("DATABRICKS_TOKEN", "dapi-stray-token"),
        ("DATABRICKS_CLIENT_ID", "dbapp-sp"),
        ("DATABRICKS_CLIENT_SECRET", "dev-secret"),
    ];

    // Act
    let serve = serve_error(&vars);
    let doctor = doctor(&vars, &["--timeout", "1"], None).await;

    // Assert
    assert!(
        serve.contains(
            "invalid configuration: DATABRICKS_TOKEN, DATABRICKS_CLIENT_ID, \
             DATABRICKS_CLIENT_SECRET, DATABRICKS_AUTH_TYPE:"
        ),
        "{serve}"
    );
    assert!(
        serve.contains("more than one authorization method"),
        "{serve}"
    );
    doctor.assert(
        "auth.method",
        "fail",
        &["DATABRICKS_TOKEN", "DATABRICKS_CLIENT_ID"],
        &["DATABRICKS_AUTH_TYPE"],
    );
    for secret in ["dapi-stray-token", "dev-secret"] {
        assert!(!serve.contains(secret) && !doctor.stdout.contains(secret));
    }
}

#[tokio::test]
async fn a_missing_client_secret_names_databricks_client_secret() {
    // Arrange
    let vars = [
        ("DATABRICKS_HOST", NOWHERE),
        ("DATABRICKS_CLIENT_ID", "dbapp-sp"),
    ];

    // Act
    let serve = serve_error(&vars);
    let doctor = doctor(&vars, &["--timeout", "1"], None).await;

    // Assert
    assert!(
        serve.contains("invalid configuration: DATABRICKS_CLIENT_SECRET:"),
        "{serve}"
    );
    doctor.assert("auth.method", "fail", &["DATABRICKS_CLIENT_SECRET"], &[]);
}

#[tokio::test]
async fn a_bad_pg_value_names_its_variable() {
    // Arrange
    let vars = [
        ("DATABRICKS_HOST", NOWHERE),
        ("DATABRICKS_CLIENT_ID", "dbapp-sp"),
        ("DATABRICKS_CLIENT_SECRET", "dev-secret"),
        ("PGHOST", "instance.database.example.com"),
        ("PGSSLMODE", "disable"),
        ("LAKEBASE_INSTANCE_NAME", "dev-lakebase"),
    ];

    // Act
    let serve = serve_error(&vars);
    let doctor = doctor(&vars, &["--timeout", "1"], None).await;

    // Assert
    assert!(
        serve.contains("invalid configuration: PGSSLMODE:"),
        "{serve}"
    );
    doctor.assert(
        "config.load",
        "fail",
        &["PGSSLMODE"],
        &["correct PGSSLMODE"],
    );
}

#[tokio::test]
async fn a_variable_sqlx_would_read_unseen_is_refused_by_name() {
    let vars = [
        ("DATABRICKS_HOST", NOWHERE),
        ("DATABASE_URL", "postgres://u@127.0.0.1:1/db"),
        ("PGSSLCERT", "/tmp/client.pem"),
    ];
    let serve = serve_error(&vars);
    let doctor = doctor(&vars, &["--timeout", "1"], None).await;
    assert!(
        serve.contains("invalid configuration: PGSSLCERT:"),
        "{serve}"
    );
    doctor.assert(
        "config.load",
        "fail",
        &["PGSSLCERT"],
        &["correct PGSSLCERT"],
    );
}

#[tokio::test]
async fn a_missing_host_names_databricks_host() {
    // Arrange: credentials, but no host anywhere (no profile file in this HOME).
    let vars = [
        ("DATABRICKS_CLIENT_ID", "dbapp-sp"),
        ("DATABRICKS_CLIENT_SECRET", "dev-secret"),
    ];

    // Act
    let serve = serve_error(&vars);
    let doctor = doctor(&vars, &["--timeout", "1"], None).await;

    // Assert
    assert!(
        serve.contains("invalid configuration: DATABRICKS_HOST:"),
        "{serve}"
    );
    doctor.assert("host.reachable", "fail", &[], &["DATABRICKS_HOST"]);
}

#[test]
fn migrate_with_a_sqlite_url_needs_no_workspace_settings() {
    // Arrange: no DATABRICKS_* at all.
    let home = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}?mode=rwc", home.path().join("m.db").display());

    // Act
    let output = crate::dbapp()
        .arg("migrate")
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", "/usr/bin:/bin")
        .env("DATABASE_URL", &url)
        .output()
        .expect("dbapp runs");

    // Assert
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "migrations applied (sqlite)"
    );
}
