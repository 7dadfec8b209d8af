//! `dbapp doctor`'s checks of `app.yaml` and `databricks.yml`: the committed `deploy/` files,
//! each broken in one way, and `deploy.sync`'s model of what `databricks bundle deploy` uploads.

use crate::doctor::{Doctor, deploy_dir, doctor};

/// Copies `deploy/` to a temporary directory, applies `(file, from, to)` replacements, and runs
/// the doctor on it.
async fn doctor_on_edited(edits: &[(&str, &str, &str)]) -> Doctor {
    let dir = edited_deploy(edits);
    let run = doctor(&[], &[], Some(dir.path())).await;
    drop(dir);
    run
}

/// A copy of `deploy/`'s databricks.yml and app/app.yaml in a temporary directory, with
/// `(file, from, to)` replacements.
pub(crate) fn edited_deploy(edits: &[(&str, &str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let source = deploy_dir();
    std::fs::create_dir_all(dir.path().join("app")).unwrap();
    for file in ["databricks.yml", "app/app.yaml"] {
        let mut text = std::fs::read_to_string(source.join(file)).unwrap();
        for (target, from, to) in edits {
            if *target == file {
                assert!(text.contains(from), "{file} has no {from:?}");
                text = text.replace(from, to);
            }
        }
        std::fs::write(dir.path().join(file), text).unwrap();
    }
    dir
}

/// Where a test adds resources to the app: before the commented serving endpoint example.
pub(crate) const RESOURCES_END: &str = "        # Serving endpoints are called as the user";

/// `genie_space` resources, as `databricks.yml` lines, followed by [`RESOURCES_END`].
pub(crate) fn genie_resources(spaces: &[(&str, &str, &str)]) -> String {
    let mut text = String::new();
    for (key, space_id, permission) in spaces {
        text.push_str(&format!(
            "        - name: {key}\n          genie_space:\n            name: {key}\n            \
             space_id: \"{space_id}\"\n            permission: {permission}\n"
        ));
    }
    text + RESOURCES_END
}

/// The default fixture's Genie spaces: Sales (alice, bob, admins) and Taxi trips (alice only).
pub(crate) const SALES_SPACE: &str = "01f0c0ffee5a1e5000000000000000a1";
pub(crate) const TAXI_SPACE: &str = "01f0c0ffee5a1e5000000000000000b2";

#[tokio::test]
async fn no_genie_scope_fails_naming_the_genie_routes() {
    let run = doctor_on_edited(&[(
        "databricks.yml",
        "        - genie                   # /api/genie/... (Genie spaces, as the user)\n",
        "",
    )])
    .await;
    assert_eq!(run.code, 1);
    run.assert(
        "manifest.scopes",
        "fail",
        &["lacks genie (needed by /api/genie/spaces"],
        &["add genie", "restart the app"],
    );
}

#[tokio::test]
async fn no_model_serving_or_sql_scope_fails_naming_their_routes() {
    let run = doctor_on_edited(&[
        (
            "databricks.yml",
            "        - model-serving ",
            "        # - model-serving ",
        ),
        ("databricks.yml", "        - sql  ", "        # - sql  "),
    ])
    .await;
    run.assert(
        "manifest.scopes",
        "fail",
        &[
            "model-serving (needed by /api/model-serving/endpoints",
            "sql (needed by GET …/tables/{table}/rows, POST /api/queries/{name}",
        ],
        &["add model-serving, sql"],
    );
}

#[tokio::test]
async fn genie_spaces_that_may_only_be_viewed_fail_naming_the_resource() {
    let run = doctor_on_edited(&[(
        "databricks.yml",
        RESOURCES_END,
        &genie_resources(&[
            ("genie-sales", SALES_SPACE, "CAN_RUN"),
            ("genie-taxi", TAXI_SPACE, "CAN_VIEW"),
        ]),
    )])
    .await;
    assert_eq!(run.code, 1);
    run.assert(
        "manifest.genie",
        "fail",
        &[
            "genie_space resource genie-taxi has permission CAN_VIEW",
            "at least CAN_RUN",
        ],
        &["set permission: CAN_RUN on resource genie-taxi"],
    );
    assert!(
        !run.check("manifest.genie")["message"]
            .as_str()
            .unwrap()
            .contains("genie-sales"),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn a_malformed_genie_space_id_fails() {
    let run = doctor_on_edited(&[(
        "databricks.yml",
        RESOURCES_END,
        &genie_resources(&[("genie-sales", "sales", "CAN_RUN")]),
    )])
    .await;
    run.assert(
        "manifest.genie",
        "fail",
        &[
            "resource genie-sales has space_id \"sales\"",
            "32 hexadecimal characters",
        ],
        &["set space_id of resource genie-sales"],
    );
}

#[tokio::test]
async fn runnable_genie_spaces_and_a_space_id_from_a_variable_pass() {
    let run = doctor_on_edited(&[
        (
            "databricks.yml",
            RESOURCES_END,
            &genie_resources(&[
                ("genie-sales", SALES_SPACE, "CAN_RUN"),
                ("genie-taxi", "${var.taxi_space}", "CAN_MANAGE"),
            ]),
        ),
        (
            "databricks.yml",
            "variables:\n",
            &format!("variables:\n  taxi_space:\n    default: {TAXI_SPACE}\n"),
        ),
    ])
    .await;
    run.assert(
        "manifest.genie",
        "pass",
        &["genie-sales (CAN_RUN)", "genie-taxi (CAN_MANAGE)"],
        &[],
    );
}

#[tokio::test]
async fn an_assistant_endpoint_without_a_serving_endpoint_resource_warns() {
    // Arrange: the endpoint set literally in app.yaml; then declared with CAN_QUERY and taken
    // through valueFrom; then only in the environment.
    let literal = doctor_on_edited(&[(
        "app/app.yaml",
        "env:\n",
        "env:\n  - name: DBAPP_ASSISTANT_ENDPOINT\n    value: my-chat\n",
    )])
    .await;
    let declared = doctor_on_edited(&[
        (
            "app/app.yaml",
            "env:\n",
            "env:\n  - name: DBAPP_ASSISTANT_ENDPOINT\n    valueFrom: assistant-endpoint\n",
        ),
        (
            "databricks.yml",
            RESOURCES_END,
            &format!(
                "        - name: assistant-endpoint\n          serving_endpoint:\n            \
                 name: my-chat\n            permission: CAN_QUERY\n{RESOURCES_END}"
            ),
        ),
    ])
    .await;
    let dir = edited_deploy(&[]);
    let environment = doctor(
        &[("DBAPP_ASSISTANT_ENDPOINT", "my-chat")],
        &[],
        Some(dir.path()),
    )
    .await;

    // Assert
    literal.assert(
        "manifest.assistant",
        "warn",
        &[
            "DBAPP_ASSISTANT_ENDPOINT=my-chat in app.yaml",
            "declares no serving_endpoint resource",
        ],
        &[
            "name: my-chat, permission: CAN_QUERY",
            "valueFrom: assistant-endpoint",
        ],
    );
    declared.assert(
        "manifest.assistant",
        "pass",
        &["serving_endpoint resource assistant-endpoint (CAN_QUERY)"],
        &[],
    );
    declared.assert("manifest.env", "pass", &[], &[]);
    environment.assert(
        "manifest.assistant",
        "warn",
        &["DBAPP_ASSISTANT_ENDPOINT=my-chat in the environment"],
        &["CAN_QUERY"],
    );
}

#[tokio::test]
async fn missing_scopes_are_named_with_the_routes_that_need_them() {
    let run = doctor_on_edited(&[(
        "databricks.yml",
        "        - catalog.tables:read     # ... /tables, /tables/{table}\n",
        "",
    )])
    .await;
    assert_eq!(run.code, 1);
    run.assert(
        "manifest.scopes",
        "fail",
        &[
            "lacks catalog.tables:read",
            "/api/unity-catalog/catalogs/{catalog}/schemas/{schema}/tables",
        ],
        &[
            "add catalog.tables:read",
            "restart the app",
            "clear the app's cookie",
        ],
    );
}

#[tokio::test]
async fn no_user_api_scopes_means_no_forwarded_token() {
    let run =
        doctor_on_edited(&[("databricks.yml", "user_api_scopes:", "user_api_scopes_off:")]).await;
    run.assert(
        "manifest.scopes",
        "fail",
        &["not set", "X-Forwarded-Access-Token", "AUTH_MISSING"],
        &["catalog.catalogs:read", "model-serving"],
    );
}

#[tokio::test]
async fn a_jobs_scope_is_refused_because_none_exists() {
    let run = doctor_on_edited(&[(
        "databricks.yml",
        "        - model-serving ",
        "        - jobs.jobs\n        - model-serving ",
    )])
    .await;
    run.assert(
        "manifest.scopes",
        "fail",
        &["jobs.jobs does not exist"],
        &["remove jobs.jobs"],
    );
}

#[tokio::test]
async fn a_deprecated_scope_alias_warns() {
    let run = doctor_on_edited(&[(
        "databricks.yml",
        "        - model-serving ",
        "        - serving.serving-endpoints ",
    )])
    .await;
    run.assert(
        "manifest.scopes",
        "warn",
        &["serving.serving-endpoints is a deprecated alias of model-serving"],
        &["model-serving"],
    );
}

#[tokio::test]
async fn a_command_that_is_a_string_or_not_serve_fails() {
    let string = doctor_on_edited(&[(
        "app/app.yaml",
        "command:\n  - /bin/sh\n  - -c\n  - cat dbapp.gz.0 dbapp.gz.1 | gzip -dc > dbapp && chmod 0755 dbapp && exec ./dbapp serve\n",
        "command: ./dbapp serve\n",
    )])
    .await;
    let dev = doctor_on_edited(&[("app/app.yaml", "exec ./dbapp serve", "exec ./dbapp dev")]).await;
    string.assert(
        "manifest.command",
        "fail",
        &["expects a list of arguments", "not run it in a shell"],
        &["command: [\"./dbapp\", \"serve\"]"],
    );
    dev.assert(
        "manifest.command",
        "fail",
        &["`dbapp dev` injects demo identities"],
        &["serve"],
    );
}

#[tokio::test]
async fn value_from_must_name_a_declared_resource_of_the_right_kind() {
    let undeclared = doctor_on_edited(&[(
        "app/app.yaml",
        "valueFrom: sql-warehouse",
        "valueFrom: warehouse",
    )])
    .await;
    let instance_from_host = doctor_on_edited(&[(
        "app/app.yaml",
        "value: dbapp-lakebase",
        "valueFrom: database",
    )])
    .await;
    undeclared.assert(
        "manifest.env",
        "fail",
        &["valueFrom: warehouse", "no resource named warehouse"],
        &["add a resource named warehouse"],
    );
    instance_from_host.assert(
        "manifest.env",
        "fail",
        &["LAKEBASE_INSTANCE_NAME", "gives its host, not its name"],
        &["value: <instance_name>"],
    );
}

#[tokio::test]
async fn credentials_in_app_yaml_fail() {
    let run = doctor_on_edited(&[(
        "app/app.yaml",
        "env:\n",
        "env:\n  - name: DATABRICKS_TOKEN\n    value: dapi-in-the-manifest\n",
    )])
    .await;
    run.assert(
        "manifest.env",
        "fail",
        &[
            "DATABRICKS_TOKEN is set",
            "more than one authorization method configured",
        ],
        &["remove DATABRICKS_TOKEN"],
    );
}

#[tokio::test]
async fn a_database_resource_without_an_instance_to_mint_from_fails() {
    let run = doctor_on_edited(&[(
        "app/app.yaml",
        "  - name: LAKEBASE_INSTANCE_NAME\n    value: dbapp-lakebase\n",
        "",
    )])
    .await;
    run.assert(
        "manifest.database",
        "fail",
        &["does not set LAKEBASE_INSTANCE_NAME"],
        &["- name: LAKEBASE_INSTANCE_NAME"],
    );
}

/// The `sync` block of the committed databricks.yml, which uploads the gitignored binary.
const SYNC_INCLUDE: &str = "sync:\n  include:\n    - app/dbapp.gz.0\n    - app/dbapp.gz.1\n";

/// A copy of all of `deploy/` (its .gitignore files included, its build outputs not) in a
/// directory outside any git repository, with `(file, from, to)` replacements and a fake
/// binary in two parts (`app/dbapp.gz.0`, `.1`) of `binary_len` bytes each.
fn deploy_copy(edits: &[(&str, &str, &str)], binary_len: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let source = deploy_dir();
    let mut stack = vec![std::path::PathBuf::new()];
    while let Some(rel) = stack.pop() {
        std::fs::create_dir_all(dir.path().join(&rel)).unwrap();
        for entry in std::fs::read_dir(source.join(&rel)).unwrap() {
            let entry = entry.unwrap();
            let path = rel.join(entry.file_name());
            let name = path.to_str().unwrap().to_owned();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else if !name.starts_with("app/dbapp") {
                let mut text = std::fs::read_to_string(entry.path()).unwrap();
                for (target, from, to) in edits {
                    if *target == name {
                        assert!(text.contains(from), "{name} has no {from:?}");
                        text = text.replace(from, to);
                    }
                }
                std::fs::write(dir.path().join(&path), text).unwrap();
            }
        }
    }
    for part in ["app/dbapp.gz.0", "app/dbapp.gz.1"] {
        let binary = std::fs::File::create(dir.path().join(part)).unwrap();
        binary.set_len(binary_len).unwrap();
    }
    dir
}

#[tokio::test]
async fn the_committed_deploy_files_upload_the_binary_the_command_unpacks() {
    // Arrange: the binary is a build output, so a stand-in takes its place.
    let dir = deploy_copy(&[], 1024);

    // Act
    let run = doctor(&[], &[], Some(dir.path())).await;

    // Assert
    run.assert(
        "deploy.sync",
        "pass",
        &[
            "app/dbapp.gz.0 (ignored by",
            "app/dbapp.gz.1 (ignored by",
            "app/.gitignore line 6: dbapp.gz.*; uploaded by sync.include)",
        ],
        &[],
    );
}

#[tokio::test]
async fn a_gitignored_binary_without_sync_include_is_never_uploaded() {
    // Arrange: deploy/ as it was before sync.include: app/.gitignore lists the binary.
    let dir = deploy_copy(
        &[
            ("databricks.yml", SYNC_INCLUDE, ""),
            (
                "app/.gitignore",
                "# Build outputs stay out of git. The binary's parts (dbapp.gz.0, .1) are uploaded all the same:\n\
                 # databricks.yml lists them under sync.include, which wins over this file when\n\
                 # `databricks bundle deploy` syncs.\n",
                "",
            ),
        ],
        1024,
    );

    // Act
    let run = doctor(&[], &[], Some(dir.path())).await;

    // Assert
    assert_eq!(run.code, 1, "{}", run.stdout);
    run.assert(
        "deploy.sync",
        "fail",
        &[
            "app/dbapp.gz.0, which app.yaml's command needs, would not be uploaded",
            "app/.gitignore line 3: dbapp.gz.*",
        ],
        &["sync: {include: [app/dbapp.gz.0]}", "stay out of git"],
    );
}

#[tokio::test]
async fn a_start_file_removed_by_sync_exclude_fails() {
    // Arrange
    let dir = deploy_copy(
        &[(
            "databricks.yml",
            SYNC_INCLUDE,
            "sync:\n  include:\n    - app/dbapp.gz.0\n    - app/dbapp.gz.1\n  exclude:\n    - \"*.gz.1\"\n",
        )],
        1024,
    );

    // Act
    let run = doctor(&[], &[], Some(dir.path())).await;

    // Assert
    run.assert(
        "deploy.sync",
        "fail",
        &["app/dbapp.gz.1", "databricks.yml sync.exclude: *.gz.1"],
        &["narrow sync.exclude"],
    );
}

#[tokio::test]
async fn an_uploaded_file_over_the_apps_limit_fails_and_an_ignored_one_does_not() {
    // Arrange: an oversized binary that is uploaded, and an oversized raw build that
    // app/.gitignore keeps out of the upload.
    let big = deploy_copy(&[], 10 * 1024 * 1024 + 1);
    let ignored = deploy_copy(&[], 1024);
    let raw = std::fs::File::create(ignored.path().join("app/dbapp")).unwrap();
    raw.set_len(20 * 1024 * 1024).unwrap();

    // Act
    let big_run = doctor(&[], &[], Some(big.path())).await;
    let ignored_run = doctor(&[], &[], Some(ignored.path())).await;

    // Assert
    big_run.assert(
        "deploy.sync",
        "fail",
        &["10485760-byte limit", "app/dbapp.gz.0 (10485761 bytes)"],
        &["compress the binary"],
    );
    ignored_run.assert("deploy.sync", "pass", &["app/dbapp.gz.0"], &[]);
    // Only uploaded files count: no other check fails on the ignored raw build either.
    let failing: Vec<&serde_json::Value> = ignored_run.report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["status"] == "fail" && c["message"].as_str().unwrap_or("").contains("app/dbapp ")
        })
        .collect();
    assert!(failing.is_empty(), "{failing:#?}");
}
