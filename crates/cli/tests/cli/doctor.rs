//! `dbapp doctor` against the emulator and an emulated Lakebase, one deliberately broken
//! configuration per failure class; each test asserts the diagnosis and the fix a user reads.
//! The binary runs with a cleared environment, HOME in a temporary directory (so no
//! `~/.databrickscfg` leaks in) and only the variables the test names.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dbapp_emulator::postgres::{ClusterOptions, PrivateCluster};
use dbapp_emulator::{EmulatorConfig, EmulatorHandle};
use serde_json::Value;

/// The repository's `deploy/` directory.
pub(crate) fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// A finished `dbapp doctor --json` run.
pub(crate) struct Doctor {
    pub(crate) code: i32,
    pub(crate) report: Value,
    pub(crate) stdout: String,
}

impl Doctor {
    /// The check with this id; panics with the report when there is none.
    pub(crate) fn check(&self, id: &str) -> &Value {
        self.report["checks"]
            .as_array()
            .and_then(|checks| checks.iter().find(|c| c["id"] == id))
            .unwrap_or_else(|| panic!("no check {id} in {}", self.stdout))
    }

    /// Asserts the check's status and that its message and fix contain the given texts.
    pub(crate) fn assert(&self, id: &str, status: &str, message: &[&str], fix: &[&str]) {
        let check = self.check(id);
        assert_eq!(check["status"], status, "{id}: {check:#}");
        let text = check["message"].as_str().unwrap_or_default();
        for expected in message {
            assert!(
                text.contains(expected),
                "{id} message lacks {expected:?}: {text}"
            );
        }
        let fix_text = check["fix"].as_str().unwrap_or_default();
        for expected in fix {
            assert!(
                fix_text.contains(expected),
                "{id} fix lacks {expected:?}: {fix_text}"
            );
        }
    }
}

/// Runs `dbapp doctor --json` with exactly `vars` (plus HOME and PATH) and `args`; the
/// manifests of `dir` (an empty directory when `None`).
pub(crate) async fn doctor(vars: &[(&str, &str)], args: &[&str], dir: Option<&Path>) -> Doctor {
    let home = tempfile::tempdir().unwrap();
    let dir = dir.map_or_else(|| home.path().to_path_buf(), Path::to_path_buf);
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_dbapp"))
        .arg("doctor")
        .arg("--json")
        .arg("--dir")
        .arg(&dir)
        .args(args)
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", "/usr/bin:/bin")
        .envs(vars.iter().copied())
        .current_dir(home.path())
        .output()
        .await
        .expect("dbapp runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    Doctor {
        code: output.status.code().unwrap_or(-1),
        report,
        stdout,
    }
}

pub(crate) async fn emulator() -> EmulatorHandle {
    dbapp_emulator::start_local(EmulatorConfig::default())
        .await
        .expect("the emulator starts")
}

/// A private Postgres cluster and an emulator whose minted credentials log in to it.
pub(crate) async fn lakebase() -> (EmulatorHandle, PrivateCluster) {
    let cluster = PrivateCluster::start(ClusterOptions::default())
        .await
        .expect("a local Postgres cluster (Debian package postgresql)");
    let emulator = dbapp_emulator::start_local(EmulatorConfig {
        postgres_admin_url: Some(cluster.admin_url()),
        ..EmulatorConfig::default()
    })
    .await
    .expect("the emulator starts");
    (emulator, cluster)
}

/// A port nothing listens on.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port().to_string()
}

/// The app's identity of the default fixture, against `host`.
pub(crate) fn app_vars(host: &str) -> Vec<(&'static str, String)> {
    vec![
        ("DATABRICKS_HOST", host.to_owned()),
        ("DATABRICKS_CLIENT_ID", "dbapp-sp".to_owned()),
        ("DATABRICKS_CLIENT_SECRET", "dev-secret".to_owned()),
    ]
}

pub(crate) fn refs<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    vars.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn a_healthy_configuration_passes_every_check_and_exits_zero() {
    // Arrange
    let (emulator, cluster) = lakebase().await;
    let port = emulator
        .lakebase_addr()
        .expect("a Lakebase front")
        .port()
        .to_string();
    let mut vars = app_vars(emulator.base_url());
    vars.extend([
        ("DATABRICKS_USER_TOKEN", "dev-token-alice".to_owned()),
        ("DATABRICKS_WAREHOUSE_ID", "dev-warehouse".to_owned()),
        ("PGHOST", cluster.host().to_owned()),
        ("PGPORT", port),
        ("LAKEBASE_INSTANCE_NAME", "dev-lakebase".to_owned()),
    ]);

    // Act
    let run = doctor(&refs(&vars), &[], Some(&deploy_dir())).await;

    // Assert
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.report["version"], 1);
    assert_eq!(run.report["ok"], true);
    assert_eq!(run.report["context"]["kind"], "local");
    assert_eq!(run.report["context"]["signal"], Value::Null);
    assert_eq!(run.report["context"]["user_identity"], "forwarded_token");
    for check in run.report["checks"].as_array().unwrap() {
        // deploy.sync warns until deploy/build.sh has built the binary the command unpacks.
        if check["id"] == "deploy.sync" && !deploy_dir().join("app/dbapp.gz.0").is_file() {
            assert_eq!(check["status"], "warn", "{check:#}");
            assert!(check["message"].as_str().unwrap().contains("not built yet"));
            continue;
        }
        assert_eq!(check["status"], "pass", "{check:#}");
    }
    run.assert(
        "auth.user_token",
        "pass",
        &["resolves to alice@example.com"],
        &[],
    );
    run.assert("auth.app", "pass", &["oauth-m2m", "dbapp-sp"], &[]);
    run.assert(
        "lakebase.login",
        "pass",
        &["databricks_postgres as dbapp-sp"],
        &[],
    );
    run.assert("lakebase.token_lifetime", "pass", &["59 min"], &[]);
    run.assert(
        "warehouse.state",
        "pass",
        &[
            "(dev-warehouse) is RUNNING",
            "the app and alice@example.com",
        ],
        &[],
    );
    // deploy/ declares no Genie space: the check lists the ones alice may use.
    run.assert(
        "genie.access",
        "pass",
        &[
            "no genie_space resources declared",
            "alice@example.com may use 2 Genie spaces: Sales, Taxi trips",
        ],
        &[],
    );
    let entry = |name: &str| {
        run.report["config"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        entry("DATABRICKS_HOST")["source"],
        "environment variable DATABRICKS_HOST"
    );
    assert_eq!(entry("PGDATABASE")["source"], "default");
    assert_eq!(entry("DATABRICKS_CLIENT_SECRET")["secret"], true);
    for secret in ["dev-secret", "dev-token-alice"] {
        assert!(
            !run.stdout.contains(secret),
            "{secret} leaked: {}",
            run.stdout
        );
    }
    drop(emulator);
    cluster.stop().await.ok();
}

#[tokio::test]
async fn the_committed_deploy_files_pass_the_manifest_checks() {
    // Act
    let run = doctor(&[], &[], Some(&deploy_dir())).await;

    // Assert
    let manifest: Vec<&Value> = run.report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"].as_str().unwrap().starts_with("manifest."))
        .collect();
    assert!(manifest.len() >= 8, "{manifest:?}");
    for check in manifest {
        assert_eq!(check["status"], "pass", "{check:#}");
    }
}

#[tokio::test]
async fn the_dual_auth_trap_is_named_with_its_fix() {
    // Arrange: a PAT next to the service principal's credentials, as in an app whose app.yaml
    // adds DATABRICKS_TOKEN.
    let emulator = emulator().await;
    let mut vars = app_vars(emulator.base_url());
    vars.push(("DATABRICKS_TOKEN", "dev-token-alice".to_owned()));
    let mut in_apps = vars.clone();
    in_apps.push(("DATABRICKS_APP_NAME", "dbapp".to_owned()));

    // Act
    let local = doctor(&refs(&vars), &[], None).await;
    let apps = doctor(&refs(&in_apps), &[], None).await;

    // Assert
    assert_eq!(local.code, 1);
    local.assert(
        "auth.method",
        "fail",
        &[
            "the dual-auth trap",
            "more than one authorization method configured: oauth and pat",
        ],
        &["DATABRICKS_AUTH_TYPE", "DATABRICKS_USER_TOKEN"],
    );
    apps.assert(
        "auth.method",
        "fail",
        &["more than one authorization method configured: oauth and pat"],
        &["remove DATABRICKS_TOKEN", "service principal"],
    );
    assert_eq!(apps.report["context"]["kind"], "databricks_apps");
    assert_eq!(apps.report["context"]["signal"], "DATABRICKS_APP_NAME");
    assert!(!local.stdout.contains("dev-token-alice"));
}

#[tokio::test]
async fn a_pinned_auth_type_with_extra_credentials_warns() {
    // Arrange
    let emulator = emulator().await;
    let mut vars = app_vars(emulator.base_url());
    vars.push(("DATABRICKS_TOKEN", "dev-token-alice".to_owned()));
    vars.push(("DATABRICKS_AUTH_TYPE", "oauth-m2m".to_owned()));

    // Act
    let run = doctor(&refs(&vars), &[], None).await;

    // Assert
    run.assert(
        "auth.method",
        "warn",
        &["pins dbapp's strategy", "oauth and pat"],
        &["remove the credentials"],
    );
    run.assert("auth.app", "pass", &["dbapp-sp"], &[]);
}

#[tokio::test]
async fn an_unreachable_host_fails_at_once_with_the_fix() {
    // Arrange
    let host = format!("http://127.0.0.1:{}", closed_port());
    let vars = app_vars(&host);

    // Act
    let run = doctor(&refs(&vars), &[], None).await;

    // Assert
    assert_eq!(run.code, 1);
    run.assert(
        "host.reachable",
        "fail",
        &["cannot reach http://127.0.0.1:"],
        &["check DATABRICKS_HOST", "about 5 minutes"],
    );
    run.assert("auth.app", "skip", &["host.reachable"], &[]);
}

#[tokio::test]
async fn a_host_that_never_answers_is_reported_within_the_timeout() {
    // Arrange: connections are accepted by the kernel, but nothing ever answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = format!("http://{}", silent.local_addr().unwrap());
    let vars = app_vars(&host);
    let started = Instant::now();

    // Act
    let run = doctor(&refs(&vars), &["--timeout", "1"], None).await;

    // Assert
    run.assert(
        "host.reachable",
        "fail",
        &["did not answer within 1 s"],
        &["check DATABRICKS_HOST"],
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    drop(silent);
}

#[tokio::test]
async fn a_missing_host_is_named_and_a_missing_warehouse_warns() {
    // Act
    let run = doctor(&[], &[], None).await;

    // Assert
    assert_eq!(run.code, 1);
    run.assert(
        "host.reachable",
        "fail",
        &["no workspace host is configured"],
        &["set DATABRICKS_HOST"],
    );
    run.assert(
        "warehouse",
        "warn",
        &["WAREHOUSE_NOT_CONFIGURED"],
        &["DATABRICKS_WAREHOUSE_ID", "valueFrom: sql-warehouse"],
    );
    run.assert("manifest.found", "skip", &["no app.yaml"], &[]);
}

#[tokio::test]
async fn an_unknown_warehouse_fails_with_the_fix() {
    // Arrange
    let emulator = emulator().await;
    let mut vars = app_vars(emulator.base_url());
    vars.push(("DATABRICKS_WAREHOUSE_ID", "no-such-warehouse".to_owned()));

    // Act
    let run = doctor(&refs(&vars), &[], None).await;

    // Assert
    assert_eq!(run.code, 1, "{}", run.stdout);
    run.assert(
        "warehouse.state",
        "fail",
        &["warehouse no-such-warehouse does not exist (asked as the app)"],
        &["DATABRICKS_WAREHOUSE_ID"],
    );
}

const RESTRICTED_WAREHOUSE: &str = "restricted-warehouse";

#[tokio::test]
async fn a_stopped_warehouse_warns_and_a_forbidden_one_fails_naming_who() {
    // Arrange: a second warehouse only alice and the app may use.
    let mut fixture = dbapp_emulator::Fixture::default();
    let mut restricted = fixture.warehouses[0].clone();
    restricted.id = RESTRICTED_WAREHOUSE.to_owned();
    restricted.readers = Some(vec!["alice@example.com".to_owned(), "dbapp-sp".to_owned()]);
    fixture.warehouses.push(restricted);
    let emulator = dbapp_emulator::start_local(EmulatorConfig {
        fixture,
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    emulator
        .set_warehouse_state("dev-warehouse", dbapp_emulator::WarehouseState::Stopped)
        .unwrap();
    let mut stopped = app_vars(emulator.base_url());
    stopped.extend([
        ("DATABRICKS_WAREHOUSE_ID", "dev-warehouse".to_owned()),
        ("DATABRICKS_USER_TOKEN", "dev-token-alice".to_owned()),
    ]);
    let mut forbidden = app_vars(emulator.base_url());
    forbidden.extend([
        ("DATABRICKS_WAREHOUSE_ID", RESTRICTED_WAREHOUSE.to_owned()),
        ("DATABRICKS_USER_TOKEN", "dev-token-bob".to_owned()),
    ]);

    // Act
    let stopped = doctor(&refs(&stopped), &[], None).await;
    let forbidden = doctor(&refs(&forbidden), &[], None).await;

    // Assert
    stopped.assert(
        "warehouse.state",
        "warn",
        &["(dev-warehouse) is STOPPED", "the first query waits"],
        &["start it"],
    );
    forbidden.assert(
        "warehouse.state",
        "fail",
        &["bob@example.com may not use warehouse"],
        &["CAN_USE"],
    );
}

#[tokio::test]
async fn a_refused_or_expired_user_token_is_diagnosed() {
    // Arrange
    let emulator = emulator().await;
    let expired = emulator
        .mint_token("alice@example.com", Duration::from_secs(600))
        .unwrap();
    emulator.expire_token(&expired).await.unwrap();
    let vars = app_vars(emulator.base_url());

    // Act
    let unknown = doctor(&refs(&vars), &["--user-token", "dev-token-nobody"], None).await;
    let mut with_expired = vars.clone();
    with_expired.push(("DATABRICKS_USER_TOKEN", expired.clone()));
    let stale = doctor(&refs(&with_expired), &[], None).await;

    // Assert
    unknown.assert(
        "auth.user_token",
        "fail",
        &[
            "refused the user token",
            "flag --user-token",
            "Invalid access token.",
        ],
        &["dbapp token"],
    );
    stale.assert(
        "auth.user_token",
        "fail",
        &["has expired", "JWT has expired"],
        &["dbapp token", "databricks auth login"],
    );
    assert!(!stale.stdout.contains(&expired));
}

#[tokio::test]
async fn wrong_client_credentials_fail_the_app_login() {
    // Arrange
    let emulator = emulator().await;
    let vars = [
        ("DATABRICKS_HOST", emulator.base_url()),
        ("DATABRICKS_CLIENT_ID", "dbapp-sp"),
        ("DATABRICKS_CLIENT_SECRET", "not-the-secret"),
    ];

    // Act
    let run = doctor(&vars, &[], None).await;

    // Assert
    assert_eq!(run.code, 1);
    run.assert(
        "auth.app",
        "fail",
        &["oauth-m2m", "cannot log in", "invalid_client"],
        &["DATABRICKS_CLIENT_SECRET", "never set them in app.yaml"],
    );
    run.assert("lakebase.configured", "skip", &[], &[]);
}

/// The app's identity, the emulator's instance, and a PGHOST where nothing listens.
fn lakebase_vars(host: &str, extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut vars = app_vars(host);
    vars.push(("PGHOST", "127.0.0.1".to_owned()));
    vars.push(("PGPORT", closed_port()));
    vars.push(("LAKEBASE_INSTANCE_NAME", "dev-lakebase".to_owned()));
    for (name, value) in extra {
        vars.retain(|(n, _)| n != name);
        if !value.is_empty() {
            vars.push((name, (*value).to_owned()));
        }
    }
    vars
}

#[tokio::test]
async fn sslmode_without_tls_fails_and_no_login_is_tried() {
    // Arrange
    let emulator = emulator().await;
    let vars = lakebase_vars(emulator.base_url(), &[("PGSSLMODE", "disable")]);

    // Act
    let run = doctor(&refs(&vars), &[], None).await;

    // Assert
    assert_eq!(run.code, 1);
    run.assert(
        "lakebase.sslmode",
        "fail",
        &["PGSSLMODE=disable", "Lakebase accepts only TLS connections"],
        &["PGSSLMODE=require"],
    );
    run.assert("config.load", "fail", &["PGSSLMODE"], &["PGSSLMODE"]);
    run.assert("lakebase.login", "skip", &[], &[]);
}

#[tokio::test]
async fn a_personal_access_token_as_postgres_password_fails() {
    // Arrange
    let emulator = emulator().await;
    let pat = "dapi0123456789abcdef0123456789abcdef";
    let vars = lakebase_vars(emulator.base_url(), &[("PGPASSWORD", pat)]);

    // Act
    let run = doctor(&refs(&vars), &[], None).await;

    // Assert
    assert_eq!(run.code, 1);
    run.assert(
        "lakebase.password",
        "fail",
        &[
            "PGPASSWORD holds a Databricks personal access token (dapi…)",
            "Lakebase needs an OAuth token",
        ],
        &["unset PGPASSWORD", "LAKEBASE_INSTANCE_NAME"],
    );
    assert!(!run.stdout.contains(pat), "the PAT leaked");
}

#[tokio::test]
async fn a_database_named_main_warns_and_its_login_fails_with_the_fix() {
    // Arrange
    let (emulator, cluster) = lakebase().await;
    let port = emulator
        .lakebase_addr()
        .expect("a Lakebase front")
        .port()
        .to_string();
    let vars = lakebase_vars(
        emulator.base_url(),
        &[("PGPORT", &port), ("PGDATABASE", "main")],
    );

    // Act
    let run = doctor(&refs(&vars), &[], None).await;

    // Assert
    assert_eq!(run.code, 1);
    run.assert(
        "lakebase.database",
        "warn",
        &["PGDATABASE=main", "databricks_postgres"],
        &["PGDATABASE=databricks_postgres"],
    );
    run.assert(
        "lakebase.login",
        "fail",
        &["database \"main\" does not exist"],
        &["PGDATABASE=databricks_postgres"],
    );
    drop(emulator);
    cluster.stop().await.ok();
}

#[tokio::test]
async fn a_pguser_other_than_the_tokens_identity_fails() {
    // Arrange
    let emulator = emulator().await;
    let vars = lakebase_vars(emulator.base_url(), &[("PGUSER", "alice@example.com")]);

    // Act
    let run = doctor(&refs(&vars), &[], None).await;

    // Assert
    run.assert(
        "lakebase.username",
        "fail",
        &["PGUSER=alice@example.com", "belongs to dbapp-sp"],
        &["unset PGUSER", "PGUSER=dbapp-sp"],
    );
    run.assert("lakebase.login", "skip", &[], &[]);
}

#[tokio::test]
async fn an_unknown_instance_fails_minting() {
    // Arrange
    let emulator = emulator().await;
    let vars = lakebase_vars(
        emulator.base_url(),
        &[("LAKEBASE_INSTANCE_NAME", "no-such-instance")],
    );

    // Act
    let run = doctor(&refs(&vars), &[], None).await;

    // Assert
    run.assert(
        "lakebase.mint",
        "fail",
        &["cannot mint a credential for instance no-such-instance"],
        &["LAKEBASE_INSTANCE_NAME must name an existing Lakebase instance"],
    );
}

#[tokio::test]
async fn pghost_without_a_credential_api_fails_naming_the_variables() {
    // Arrange
    let emulator = emulator().await;
    let vars = lakebase_vars(emulator.base_url(), &[("LAKEBASE_INSTANCE_NAME", "")]);

    // Act
    let run = doctor(&refs(&vars), &[], None).await;

    // Assert
    run.assert(
        "lakebase.mint",
        "fail",
        &["neither LAKEBASE_INSTANCE_NAME nor LAKEBASE_ENDPOINT"],
        &["LAKEBASE_INSTANCE_NAME=", "LAKEBASE_ENDPOINT=projects/"],
    );
}

#[tokio::test]
async fn an_instance_without_pghost_fails_suggesting_its_host() {
    // Arrange
    let emulator = emulator().await;
    let vars = lakebase_vars(emulator.base_url(), &[("PGHOST", "")]);

    // Act
    let run = doctor(&refs(&vars), &[], None).await;

    // Assert
    run.assert(
        "lakebase.host",
        "fail",
        &["PGHOST is not"],
        &["PGHOST=instance-8a4d2c1e.database.cloud.databricks.com"],
    );
}

#[tokio::test]
async fn a_short_lived_credential_warns_about_its_lifetime() {
    // Arrange
    let emulator = dbapp_emulator::start_local(EmulatorConfig {
        db_token_ttl_secs: Some(120),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let vars = lakebase_vars(emulator.base_url(), &[]);

    // Act
    let run = doctor(&refs(&vars), &[], None).await;

    // Assert
    run.assert(
        "lakebase.token_lifetime",
        "warn",
        &["lives only", "5 min refresh margin"],
        &["1 h"],
    );
}

#[tokio::test]
async fn no_database_inside_databricks_apps_warns_about_storage() {
    // Arrange
    let emulator = emulator().await;
    let mut vars = app_vars(emulator.base_url());
    vars.push(("DATABRICKS_APP_NAME", "dbapp".to_owned()));

    // Act
    let run = doctor(&refs(&vars), &[], None).await;

    // Assert
    run.assert(
        "lakebase.configured",
        "warn",
        &["STORAGE_NOT_CONFIGURED"],
        &["database resource"],
    );
}

#[tokio::test]
async fn the_human_report_is_readable_and_masks_secrets() {
    // Arrange
    let emulator = emulator().await;
    let home = tempfile::tempdir().unwrap();

    // Act
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_dbapp"))
        .args(["doctor", "--dir"])
        .arg(home.path())
        .env_clear()
        .env("HOME", home.path())
        .env("DATABRICKS_HOST", emulator.base_url())
        .env("DATABRICKS_CLIENT_ID", "dbapp-sp")
        .env("DATABRICKS_CLIENT_SECRET", "dev-secret")
        .env("PGHOST", "127.0.0.1")
        .env("PGSSLMODE", "prefer")
        .output()
        .await
        .unwrap();

    // Assert
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("Context: no Databricks runtime variables are set"),
        "{text}"
    );
    assert!(text.contains("DATABRICKS_CLIENT_SECRET"), "{text}");
    assert!(
        text.contains("(environment variable DATABRICKS_HOST)"),
        "{text}"
    );
    assert!(text.contains("PASS  host.reachable"), "{text}");
    assert!(text.contains("FAIL  lakebase.sslmode"), "{text}");
    assert!(text.contains("fix: set PGSSLMODE=require"), "{text}");
    assert!(text.contains("failed"), "{text}");
    assert!(!text.contains("dev-secret"), "{text}");
}

#[tokio::test]
async fn a_model_serving_signal_is_named_with_the_invoker_as_the_user_identity() {
    // Arrange: a serving endpoint variable, no token file, the SP's credentials.
    let emulator = emulator().await;
    let mut vars = app_vars(emulator.base_url());
    vars.extend([
        ("DATABRICKS_SERVING_ENDPOINT", "my-endpoint".to_owned()),
        ("SERVING_CREDENTIALS_DIR", "/nonexistent-dbapp".to_owned()),
    ]);

    // Act
    let run = doctor(&refs(&vars), &[], None).await;

    // Assert
    let context = &run.report["context"];
    assert_eq!(context["kind"], "model_serving", "{}", run.stdout);
    assert_eq!(context["signal"], "DATABRICKS_SERVING_ENDPOINT");
    assert_eq!(context["user_identity"], "invoker");
    // Without the token file the app keeps the credentials it was given.
    assert_eq!(context["app_auth_type"], "oauth-m2m");
    let reason = context["reason"].as_str().unwrap();
    assert!(reason.contains("invoker's token"), "{reason}");
}

/// `deploy/` with `genie_space` resources for the default fixture's Sales and Taxi trips spaces
/// (CAN_RUN) and one for a space that does not exist.
fn deploy_with_genie_spaces(spaces: &[(&str, &str, &str)]) -> tempfile::TempDir {
    use crate::manifest::{RESOURCES_END, edited_deploy, genie_resources};
    edited_deploy(&[("databricks.yml", RESOURCES_END, &genie_resources(spaces))])
}

#[tokio::test]
async fn the_user_reaches_the_declared_genie_spaces_and_bob_cannot_use_taxi_trips() {
    use crate::manifest::{SALES_SPACE, TAXI_SPACE};
    // Arrange
    let emulator = emulator().await;
    let sales = deploy_with_genie_spaces(&[("genie-sales", SALES_SPACE, "CAN_RUN")]);
    let both = deploy_with_genie_spaces(&[
        ("genie-sales", SALES_SPACE, "CAN_RUN"),
        ("genie-taxi", TAXI_SPACE, "CAN_RUN"),
    ]);
    let as_user = |token: &str| {
        let mut vars = app_vars(emulator.base_url());
        vars.push(("DATABRICKS_USER_TOKEN", token.to_owned()));
        vars
    };
    let alice = as_user("dev-token-alice");
    let bob = as_user("dev-token-bob");

    // Act
    let alice_sales = doctor(&refs(&alice), &[], Some(sales.path())).await;
    let bob_sales = doctor(&refs(&bob), &[], Some(sales.path())).await;
    let alice_both = doctor(&refs(&alice), &[], Some(both.path())).await;
    let bob_both = doctor(&refs(&bob), &[], Some(both.path())).await;

    // Assert
    alice_sales.assert(
        "genie.access",
        "pass",
        &[
            "alice@example.com may use the declared Genie spaces",
            &format!("Sales ({SALES_SPACE})"),
        ],
        &[],
    );
    bob_sales.assert(
        "genie.access",
        "pass",
        &["bob@example.com may use", "Sales"],
        &[],
    );
    alice_both.assert(
        "genie.access",
        "pass",
        &["Sales", &format!("Taxi trips ({TAXI_SPACE})")],
        &[],
    );
    assert_eq!(bob_both.code, 1, "{}", bob_both.stdout);
    bob_both.assert(
        "genie.access",
        "fail",
        &[&format!(
            "bob@example.com may not use Genie space {TAXI_SPACE} of resource genie-taxi"
        )],
        &["share the space with bob@example.com with CAN RUN"],
    );
    let message = bob_both.check("genie.access")["message"].as_str().unwrap();
    assert!(!message.contains(SALES_SPACE), "{message}");
}

#[tokio::test]
async fn an_unknown_genie_space_fails_naming_its_id_and_no_user_token_skips() {
    // Arrange
    const MISSING: &str = "0123456789abcdef0123456789abcdef";
    let emulator = emulator().await;
    let dir = deploy_with_genie_spaces(&[("genie-gone", MISSING, "CAN_RUN")]);
    let mut vars = app_vars(emulator.base_url());
    let app_only = doctor(&refs(&vars), &[], Some(dir.path())).await;
    vars.push(("DATABRICKS_USER_TOKEN", "dev-token-alice".to_owned()));

    // Act
    let run = doctor(&refs(&vars), &[], Some(dir.path())).await;

    // Assert
    run.assert(
        "genie.access",
        "fail",
        &[&format!(
            "Genie space {MISSING} of resource genie-gone does not exist (asked as alice@example.com)"
        )],
        &["set space_id of resource genie-gone"],
    );
    app_only.assert("genie.access", "skip", &["no user token"], &[]);
}

#[tokio::test]
async fn pg_variables_without_pghost_are_each_diagnosed_and_what_was_not_checked_is_said() {
    // Act: a PAT as the password and a catalog as the database, but no PGHOST.
    let run = doctor(
        &[
            ("PGPASSWORD", "dapi0123456789abcdef0123456789abcdef"),
            ("PGDATABASE", "main"),
        ],
        &[],
        None,
    )
    .await;

    // Assert
    run.assert(
        "lakebase.configured",
        "warn",
        &[
            "PGDATABASE, PGPASSWORD set but PGHOST is not",
            "opens SQLite",
            "not checked: the credential, the login and the privileges",
        ],
        &["set PGHOST"],
    );
    run.assert(
        "lakebase.password",
        "fail",
        &["personal access token"],
        &["unset PGPASSWORD"],
    );
    run.assert(
        "lakebase.database",
        "warn",
        &["PGDATABASE=main"],
        &["databricks_postgres"],
    );
    assert!(
        !run.stdout.contains("dapi0123456789abcdef0123456789abcdef"),
        "the PAT leaked"
    );
}
