//! `dbapp token`: a user token from a fake `databricks` CLI on PATH or a profile's PAT, and
//! `--lakebase` PG* variables that psql logs in with.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::doctor::lakebase;

/// A temporary HOME, with a fake `databricks` in its `bin/` that answers `auth token` with
/// `script_body` and records its arguments in `args.txt`.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn fake_cli(&self, body: &str) -> &Self {
        let bin = self.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let script = bin.join("databricks");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$@\" >> '{}'\n{body}\n",
                self.path().join("args.txt").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        self
    }

    fn profile_file(&self, text: &str) -> &Self {
        std::fs::write(self.path().join(".databrickscfg"), text).unwrap();
        self
    }

    fn cli_args(&self) -> String {
        std::fs::read_to_string(self.path().join("args.txt")).unwrap_or_default()
    }

    async fn run(&self, args: &[&str], vars: &[(&str, &str)]) -> Output {
        let path = format!("{}:/usr/bin:/bin", self.path().join("bin").display());
        tokio::process::Command::new(env!("CARGO_BIN_EXE_dbapp"))
            .arg("token")
            .args(args)
            .env_clear()
            .env("HOME", self.path())
            .env("PATH", path)
            .envs(vars.iter().copied())
            .output()
            .await
            .expect("dbapp runs")
    }
}

const CLI_TOKEN: &str = r#"echo '{"access_token":"cli-user-token","token_type":"Bearer","expiry":"2999-01-01T00:00:00.000+02:00"}'"#;

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn token_prints_the_cli_login_bare_or_as_an_export() {
    // Arrange
    let home = Home::new();
    home.fake_cli(CLI_TOKEN);
    let host = [("DATABRICKS_HOST", "https://dbc-1.cloud.databricks.com")];

    // Act
    let bare = home.run(&[], &host).await;
    let export = home.run(&["--export"], &host).await;

    // Assert
    assert!(bare.status.success(), "{}", stderr(&bare));
    assert_eq!(stdout(&bare), "cli-user-token\n");
    assert_eq!(
        stdout(&export),
        "export DATABRICKS_USER_TOKEN=cli-user-token\n"
    );
    assert!(
        home.cli_args()
            .contains("auth token --host https://dbc-1.cloud.databricks.com"),
        "{}",
        home.cli_args()
    );
}

#[tokio::test]
async fn token_ignores_the_apps_credentials_and_passes_a_profile_to_the_cli() {
    // Arrange: a U2M profile, and a service principal in the environment that is not a user.
    let home = Home::new();
    home.fake_cli(CLI_TOKEN)
        .profile_file("[u2m]\nhost = https://dbc-2.cloud.databricks.com\n");

    // Act
    let output = home
        .run(
            &["--profile", "u2m"],
            &[
                ("DATABRICKS_CLIENT_ID", "dbapp-sp"),
                ("DATABRICKS_CLIENT_SECRET", "dev-secret"),
            ],
        )
        .await;

    // Assert
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "cli-user-token\n");
    assert!(
        home.cli_args().contains("auth token --profile u2m"),
        "{}",
        home.cli_args()
    );
}

#[tokio::test]
async fn token_prints_a_profiles_personal_access_token() {
    // Arrange: no CLI at all.
    let home = Home::new();
    home.profile_file(
        "[dev]\nhost = https://dbc-3.cloud.databricks.com\ntoken = dapi-profile-token\n",
    );

    // Act
    let output = home.run(&["--profile", "dev", "--export"], &[]).await;

    // Assert
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "export DATABRICKS_USER_TOKEN=dapi-profile-token\n"
    );
}

#[tokio::test]
async fn token_explains_a_cli_that_is_not_logged_in() {
    // Arrange
    let home = Home::new();
    home.fake_cli("echo 'Error: databricks OAuth is not configured for this host' >&2; exit 1");

    // Act
    let output = home
        .run(&["--host", "https://dbc-4.cloud.databricks.com"], &[])
        .await;

    // Assert
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(
        text.contains("databricks auth login --host https://dbc-4.cloud.databricks.com"),
        "{text}"
    );
    assert!(
        text.contains("databricks OAuth is not configured for this host"),
        "{text}"
    );
}

#[tokio::test]
async fn token_refuses_a_service_principal_profile() {
    // Arrange
    let home = Home::new();
    home.profile_file(
        "[sp]\nhost = https://dbc-5.cloud.databricks.com\nclient_id = x\nclient_secret = y\n",
    );

    // Act
    let output = home.run(&["--profile", "sp"], &[]).await;

    // Assert
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("not a user's token"),
        "{}",
        stderr(&output)
    );
}

/// psql from the machine's PostgreSQL (the same installation the private cluster runs from).
pub(crate) fn psql() -> PathBuf {
    let from_pg_config = std::process::Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).join("psql"));
    let candidates = from_pg_config.into_iter().chain(
        std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin/psql")),
    );
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("psql"))
}

#[tokio::test]
async fn token_lakebase_prints_pg_variables_that_psql_logs_in_with() {
    // Arrange
    let (emulator, cluster) = lakebase().await;
    let home = Home::new();
    let port = emulator
        .lakebase_addr()
        .expect("a Lakebase front")
        .port()
        .to_string();

    // Act
    let output = home
        .run(
            &["--lakebase"],
            &[
                ("DATABRICKS_HOST", emulator.base_url()),
                ("DATABRICKS_CLIENT_ID", "dbapp-sp"),
                ("DATABRICKS_CLIENT_SECRET", "dev-secret"),
                ("LAKEBASE_INSTANCE_NAME", "dev-lakebase"),
                ("PGHOST", cluster.host()),
                ("PGPORT", &port),
            ],
        )
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let vars: Vec<(String, String)> = text
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('=').expect("NAME=value");
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let login = tokio::process::Command::new(psql())
        .args(["-X", "-tAc", "select current_user"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .await
        .expect("psql runs");

    // Assert
    let names: Vec<&str> = vars.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "PGHOST",
            "PGPORT",
            "PGDATABASE",
            "PGUSER",
            "PGSSLMODE",
            "PGPASSWORD"
        ]
    );
    assert!(text.contains("PGDATABASE=databricks_postgres"), "{text}");
    assert!(text.contains("PGUSER=dbapp-sp"), "{text}");
    assert!(text.contains("PGSSLMODE=require"), "{text}");
    assert!(stderr(&output).contains("valid for new logins until"));
    assert!(
        login.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&login.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&login.stdout).trim(), "dbapp-sp");
    drop(emulator);
    cluster.stop().await.ok();
}
