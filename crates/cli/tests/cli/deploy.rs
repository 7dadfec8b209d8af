//! `dbapp deploy` against the in-process emulator: the calls a dry run makes (GETs only) and
//! prints, what a deploy uploads and asks of the Apps API (a masked update, never `PATCH`), the
//! compute restart a scope change needs, and the refusals of bad input. Running the deployed
//! app through the proxy is the end-to-end test's (`tests/deploy/`); here the build is skipped
//! and the app's files are the committed `deploy/` with a placeholder binary.

use std::path::Path;

use dbapp_emulator::EmulatorHandle;
use serde_json::Value;

use super::doctor::{deploy_dir, emulator};

/// A copy of `deploy/` with placeholder binary parts (`app/dbapp.gz.0`, `.1`), `edit` applied to
/// databricks.yml.
fn bundle_copy(edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let source = deploy_dir();
    std::fs::create_dir(dir.path().join("app")).unwrap();
    for file in [
        "databricks.yml",
        "build.sh",
        "app/app.yaml",
        "app/.gitignore",
    ] {
        std::fs::copy(source.join(file), dir.path().join(file)).unwrap();
    }
    for part in ["app/dbapp.gz.0", "app/dbapp.gz.1"] {
        std::fs::write(dir.path().join(part), b"placeholder").unwrap();
    }
    let yml = dir.path().join("databricks.yml");
    let text = std::fs::read_to_string(&yml).unwrap();
    std::fs::write(&yml, edit(text)).unwrap();
    dir
}

struct Run {
    code: i32,
    stdout: String,
}

/// `dbapp deploy --no-build --timeout 1` as alice, with the fixture's warehouse and instance.
async fn deploy(emulator: &EmulatorHandle, dir: &Path, extra: &[&str]) -> Run {
    let home = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_dbapp"))
        .args(["deploy", "--no-build", "--timeout", "1", "--dir"])
        .arg(dir)
        .args([
            "--var",
            "warehouse_id=dev-warehouse",
            "--var",
            "lakebase_instance=dev-lakebase",
        ])
        .args(extra)
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", "/usr/bin:/bin")
        .env("DATABRICKS_HOST", emulator.base_url())
        .env("DATABRICKS_TOKEN", "dev-token-alice")
        .output()
        .await
        .expect("dbapp runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: format!(
            "{}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

async fn app(emulator: &EmulatorHandle) -> Value {
    reqwest::Client::new()
        .get(format!("{}/api/2.0/apps/dbapp", emulator.base_url()))
        .bearer_auth("dev-token-alice")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_dry_run_reads_only_and_prints_the_calls_it_would_make() {
    // Arrange
    let emulator = emulator().await;
    let dir = bundle_copy(|text| text);

    // Act
    let run = deploy(&emulator, dir.path(), &["--dry-run"]).await;

    // Assert
    assert_eq!(run.code, 0, "{}", run.stdout);
    let methods: Vec<String> = emulator
        .requests("/api")
        .iter()
        .map(|r| r.method.clone())
        .collect();
    assert!(methods.iter().all(|m| m == "GET"), "{methods:?}");
    for expected in [
        "it does not exist, so it would be created",
        "would POST /api/2.0/apps {",
        "\"user_api_scopes\":[\"iam.current-user:read\"",
        "would POST /api/2.0/workspace/import",
        "/Workspace/Users/alice@example.com/.bundle/dbapp/dev/files/app/dbapp.gz.0",
        "/Workspace/Users/alice@example.com/.bundle/dbapp/dev/files/app/dbapp.gz.1",
        "would POST /api/2.0/apps/dbapp/deployments {\"mode\":\"SNAPSHOT\"",
    ] {
        assert!(
            run.stdout.contains(expected),
            "no {expected:?} in {}",
            run.stdout
        );
    }
}

#[tokio::test]
async fn a_deploy_creates_then_updates_with_a_mask_and_restarts_on_a_scope_change() {
    // Arrange
    let emulator = emulator().await;
    let first = bundle_copy(|text| text);
    let more_scopes = bundle_copy(|text| {
        text.replacen(
            "        - genie ",
            "        - vector-search\n        - genie ",
            1,
        )
    });

    // Act: the app does not answer (nothing runs it here), so each run ends at `ready`.
    let created = deploy(&emulator, first.path(), &[]).await;
    let before = app(&emulator).await;
    let updated = deploy(&emulator, more_scopes.path(), &[]).await;
    let after = app(&emulator).await;

    // Assert
    for run in [&created, &updated] {
        assert!(
            run.stdout.contains("[5/7] deploy") && run.stdout.contains("SUCCEEDED from"),
            "{}",
            run.stdout
        );
    }
    assert!(
        created.stdout.contains("created dbapp"),
        "{}",
        created.stdout
    );
    assert!(
        updated
            .stdout
            .contains("update_mask description,resources,user_api_scopes")
            && updated.stdout.contains("compute restarted"),
        "{}",
        updated.stdout
    );
    let has = |app: &Value, scope: &str| {
        app["effective_user_api_scopes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == scope)
    };
    assert!(!has(&before, "vector-search") && has(&after, "vector-search"));
    assert_eq!(
        after["resources"][0]["sql_warehouse"]["id"],
        "dev-warehouse"
    );
    let calls: Vec<String> = emulator
        .requests("/api/2.0/apps")
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(!calls.iter().any(|c| c.starts_with("PATCH")), "{calls:?}");
    assert!(calls.contains(&"POST /api/2.0/apps/dbapp/update".to_owned()));
    let files = reqwest::Client::new()
        .get(format!(
            "{}/api/2.0/workspace/get-status?path=/Users/alice@example.com/.bundle/dbapp/dev/files/app/dbapp.gz.1",
            emulator.base_url()
        ))
        .bearer_auth("dev-token-alice")
        .send()
        .await
        .unwrap();
    assert!(files.status().is_success());
}

#[tokio::test]
async fn bad_input_is_refused_before_anything_is_sent() {
    // Arrange
    let emulator = emulator().await;
    let dir = bundle_copy(|text| text);
    let no_default = bundle_copy(|text| text.replace("    default: true\n", ""));

    // Act
    let target = deploy(&emulator, dir.path(), &["-t", "qa"]).await;
    let var = deploy(&emulator, dir.path(), &["--var", "nope=1"]).await;
    let pick = deploy(&emulator, no_default.path(), &[]).await;

    // Assert
    assert_ne!(target.code, 0);
    assert!(
        target
            .stdout
            .contains("no target qa; the bundle has dev, prod"),
        "{}",
        target.stdout
    );
    assert!(var.stdout.contains("--var nope"), "{}", var.stdout);
    assert!(pick.stdout.contains("pick one with -t"), "{}", pick.stdout);
    assert!(emulator.requests("/api").is_empty());
}
