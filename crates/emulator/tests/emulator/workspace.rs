//! The Workspace API (`/api/2.0/workspace/*`): imports in JSON and multipart form, the formats
//! and what `AUTO` makes a notebook, exports as JSON and raw bytes, lists, statuses, `mkdirs`,
//! deletes with and without `recursive`, every refusal, the caps, home directories, and reset.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{ALICE, BOB, TestEmulator, send, spawn};

const HOME: &str = "/Users/alice@example.com";

impl TestEmulator {
    async fn ws_post(&self, call: &str, body: Value) -> (StatusCode, Value) {
        self.post(&format!("/api/2.0/workspace/{call}"), ALICE, body)
            .await
    }

    async fn ws_get(&self, call: &str, path: &str) -> (StatusCode, Value) {
        let url = format!("/api/2.0/workspace/{call}?path={path}");
        send(self.request(Method::GET, &url, ALICE)).await
    }

    /// Imports `content` at `path` with `format` (JSON form), asserting nothing.
    async fn import(&self, path: &str, format: &str, content: &[u8]) -> (StatusCode, Value) {
        self.ws_post(
            "import",
            json!({"path": path, "format": format, "content": STANDARD.encode(content)}),
        )
        .await
    }

    /// Sends the multipart form `w.workspace.upload` sends.
    async fn upload_form(&self, fields: &[(&str, &str)], content: &[u8]) -> (StatusCode, Value) {
        let boundary = "emulator-test-boundary";
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"content\"; \
                 filename=\"content\"\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let request = self
            .request(Method::POST, "/api/2.0/workspace/import", ALICE)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body);
        send(request).await
    }

    /// The raw bytes of `w.workspace.download`.
    async fn download(&self, path: &str) -> (StatusCode, Vec<u8>) {
        let response = self
            .request(
                Method::GET,
                &format!("/api/2.0/workspace/export?path={path}&direct_download=true"),
                ALICE,
            )
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.bytes().await.unwrap().to_vec())
    }
}

fn paths(list: &Value) -> Vec<&str> {
    list["objects"]
        .as_array()
        .unwrap_or_else(|| panic!("objects: {list}"))
        .iter()
        .map(|o| o["path"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn imports_in_each_format_read_back_through_status_list_and_export() {
    // Arrange
    let te = spawn().await;
    let dir = format!("{HOME}/app");
    let (mkdirs, _) = te.ws_post("mkdirs", json!({"path": dir})).await;
    let notebook = b"# Databricks notebook source\nprint(1)\n";

    // Act
    let imports = [
        te.import(&format!("{dir}/app.py"), "AUTO", b"import os\n")
            .await,
        te.import(&format!("{dir}/nb.py"), "AUTO", notebook).await,
        te.import(&format!("{dir}/raw.py"), "RAW", notebook).await,
        te.ws_post(
            "import",
            json!({"path": format!("{dir}/query"), "language": "SQL",
                "content": STANDARD.encode("SELECT 1")}),
        )
        .await,
    ];
    let (_, file) = te.ws_get("get-status", &format!("{dir}/app.py")).await;
    let (_, nb) = te
        .ws_get("get-status", &format!("/Workspace{dir}/nb"))
        .await;
    let (_, query) = te.ws_get("get-status", &format!("{dir}/query")).await;
    let (_, folder) = te.ws_get("get-status", &dir).await;
    let (_, list) = te.ws_get("list", &dir).await;
    let (_, list_of_file) = te.ws_get("list", &format!("{dir}/raw.py")).await;
    let (_, exported) = te.ws_get("export", &format!("{dir}/nb")).await;
    let (raw_status, raw) = te.download(&format!("{dir}/app.py")).await;

    // Assert
    assert_eq!(mkdirs, StatusCode::OK);
    for (status, body) in &imports {
        assert_eq!(*status, StatusCode::OK, "{body}");
    }
    assert_eq!(file["object_type"], "FILE");
    assert_eq!(file["path"], format!("{dir}/app.py"));
    assert_eq!(file["size"], 10);
    assert!(file["object_id"].as_u64().is_some(), "{file}");
    assert!(file["created_at"].as_i64().unwrap() <= file["modified_at"].as_i64().unwrap());
    assert!(file.get("language").is_none(), "{file}");
    assert_eq!(
        nb["object_type"], "NOTEBOOK",
        "AUTO strips .py off a notebook"
    );
    assert_eq!(nb["language"], "PYTHON");
    assert_eq!(nb["path"], format!("{dir}/nb"));
    assert_eq!(query["object_type"], "NOTEBOOK");
    assert_eq!(query["language"], "SQL");
    assert_eq!(folder["object_type"], "DIRECTORY");
    assert!(folder.get("size").is_none(), "{folder}");
    assert_eq!(
        paths(&list),
        [
            format!("{dir}/app.py"),
            format!("{dir}/nb"),
            format!("{dir}/query"),
            format!("{dir}/raw.py")
        ]
    );
    assert_eq!(paths(&list_of_file), [format!("{dir}/raw.py")]);
    assert_eq!(list_of_file["objects"][0]["object_type"], "FILE", "RAW");
    assert_eq!(exported["content"], STANDARD.encode(notebook));
    assert_eq!(exported["file_type"], "py");
    assert_eq!(raw_status, StatusCode::OK);
    assert_eq!(raw, b"import os\n");
}

#[tokio::test]
async fn the_multipart_form_of_the_sdk_upload_imports_and_overwrites() {
    // Arrange
    let te = spawn().await;
    let path = format!("{HOME}/app.yaml");
    let fields = [
        ("path", path.as_str()),
        ("format", "AUTO"),
        ("overwrite", "true"),
    ];

    // Act
    let (first, body) = te.upload_form(&fields, b"command: [a]\n").await;
    let (second, _) = te.upload_form(&fields, b"command: [b]\n").await;
    let (refused, refusal) = te.upload_form(&fields[..2], b"command: [c]\n").await;
    let (_, content) = te.download(&path).await;

    // Assert
    assert_eq!(first, StatusCode::OK, "{body}");
    assert_eq!(second, StatusCode::OK);
    assert_eq!(
        refused,
        StatusCode::BAD_REQUEST,
        "overwrite defaults to false"
    );
    assert_eq!(refusal["error_code"], "RESOURCE_ALREADY_EXISTS");
    assert_eq!(content, b"command: [b]\n");
}

#[tokio::test]
async fn refusals_carry_databricks_codes() {
    // Arrange
    let te = spawn().await;
    te.ws_post("mkdirs", json!({"path": format!("{HOME}/d/sub")}))
        .await;
    te.import(&format!("{HOME}/d/f"), "AUTO", b"x").await;

    // Act
    let cases = [
        ("no path", te.ws_post("mkdirs", json!({})).await),
        (
            "relative path",
            te.ws_post("mkdirs", json!({"path": "Users/x"})).await,
        ),
        (
            "dot-dot",
            te.ws_post("mkdirs", json!({"path": "/Users/../etc"})).await,
        ),
        (
            "mkdirs through a file",
            te.ws_post("mkdirs", json!({"path": format!("{HOME}/d/f/g")}))
                .await,
        ),
        ("no parent", te.import("/Shared/none/f", "AUTO", b"x").await),
        (
            "exists",
            te.import(&format!("{HOME}/d/f"), "AUTO", b"y").await,
        ),
        (
            "over a directory",
            te.ws_post(
                "import",
                json!({"path": format!("{HOME}/d/sub"),
                "format": "AUTO", "overwrite": true}),
            )
            .await,
        ),
        (
            "source without language",
            te.import(&format!("{HOME}/s"), "SOURCE", b"x").await,
        ),
        (
            "unknown language",
            te.ws_post(
                "import",
                json!({"path": format!("{HOME}/s"), "language": "COBOL"}),
            )
            .await,
        ),
        (
            "unsupported format",
            te.import(&format!("{HOME}/s"), "JUPYTER", b"{}").await,
        ),
        (
            "bad base64",
            te.ws_post(
                "import",
                json!({"path": format!("{HOME}/s"), "format": "AUTO",
                "content": "not base64!"}),
            )
            .await,
        ),
        (
            "status of nothing",
            te.ws_get("get-status", "/Shared/none").await,
        ),
        ("list of nothing", te.ws_get("list", "/Shared/none").await),
        (
            "export of nothing",
            te.ws_get("export", "/Shared/none").await,
        ),
        ("export a directory", te.ws_get("export", HOME).await),
        (
            "delete nothing",
            te.ws_post("delete", json!({"path": "/Shared/none"})).await,
        ),
        (
            "delete non-empty",
            te.ws_post("delete", json!({"path": format!("{HOME}/d")}))
                .await,
        ),
        (
            "delete a home",
            te.ws_post("delete", json!({"path": HOME, "recursive": true}))
                .await,
        ),
    ];
    let (_, export_html) = te
        .ws_get("export", &format!("{HOME}/d/f&format=HTML"))
        .await;
    let (_, still) = te.download(&format!("{HOME}/d/f")).await;

    // Assert
    let expected = [
        (StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE"),
        (StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE"),
        (StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE"),
        (StatusCode::BAD_REQUEST, "RESOURCE_ALREADY_EXISTS"),
        (StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST"),
        (StatusCode::BAD_REQUEST, "RESOURCE_ALREADY_EXISTS"),
        (StatusCode::BAD_REQUEST, "RESOURCE_ALREADY_EXISTS"),
        (StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE"),
        (StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE"),
        (StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE"),
        (StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE"),
        (StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST"),
        (StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST"),
        (StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST"),
        (StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE"),
        (StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST"),
        (StatusCode::BAD_REQUEST, "DIRECTORY_NOT_EMPTY"),
        (StatusCode::FORBIDDEN, "PERMISSION_DENIED"),
    ];
    for ((case, (status, body)), (want_status, want_code)) in cases.iter().zip(expected) {
        assert_eq!(
            (*status, body["error_code"].as_str()),
            (want_status, Some(want_code)),
            "{case}: {body}"
        );
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{case}"
        );
    }
    assert_eq!(export_html["error_code"], "INVALID_PARAMETER_VALUE");
    assert_eq!(still, b"x", "the refused overwrite kept the file");
}

#[tokio::test]
async fn delete_removes_a_file_an_empty_directory_or_a_tree_with_recursive() {
    // Arrange
    let te = spawn().await;
    let root = format!("{HOME}/tree");
    te.ws_post("mkdirs", json!({"path": format!("{root}/a/b")}))
        .await;
    te.ws_post("mkdirs", json!({"path": format!("{root}/empty")}))
        .await;
    te.import(&format!("{root}/a/b/f"), "AUTO", b"1").await;
    te.import(&format!("{root}/g"), "AUTO", b"2").await;

    // Act
    let (file, _) = te
        .ws_post("delete", json!({"path": format!("{root}/g")}))
        .await;
    let (empty, _) = te
        .ws_post("delete", json!({"path": format!("{root}/empty")}))
        .await;
    let (tree, _) = te
        .ws_post("delete", json!({"path": root, "recursive": true}))
        .await;
    let (gone, _) = te.ws_get("get-status", &format!("{root}/a/b/f")).await;
    let (_, home) = te.ws_get("list", HOME).await;

    // Assert
    assert_eq!(
        (file, empty, tree),
        (StatusCode::OK, StatusCode::OK, StatusCode::OK)
    );
    assert_eq!(gone, StatusCode::NOT_FOUND);
    assert!(paths(&home).is_empty(), "{home}");
}

#[tokio::test]
async fn caps_refuse_a_large_file_and_a_full_workspace_and_store_nothing() {
    // Arrange
    let te = spawn().await;
    let ten_mib = 10 * 1024 * 1024;

    // Act: the default per-file cap is the real service's 10 MB, far past axum's 2 MB body limit.
    let (at_cap, at_cap_body) = te
        .import(&format!("{HOME}/big"), "RAW", &vec![b'a'; ten_mib])
        .await;
    let (past_cap, past_cap_body) = te
        .import(&format!("{HOME}/bigger"), "RAW", &vec![b'a'; ten_mib + 1])
        .await;
    te.handle
        .update_settings(|s| {
            s.workspace_max_file_bytes = 10;
            s.workspace_max_total_bytes = ten_mib as u64 + 15;
        })
        .unwrap();
    let (form_past_cap, form_body) = te
        .upload_form(
            &[("path", &format!("{HOME}/form")), ("format", "AUTO")],
            &[b'b'; 11],
        )
        .await;
    let (fits, _) = te
        .import(&format!("{HOME}/small"), "RAW", &[b'c'; 10])
        .await;
    let (full, full_body) = te.import(&format!("{HOME}/more"), "RAW", &[b'd'; 6]).await;
    let (_, home) = te.ws_get("list", HOME).await;

    // Assert
    assert_eq!(at_cap, StatusCode::OK, "{at_cap_body}");
    assert_eq!(past_cap, StatusCode::BAD_REQUEST);
    assert_eq!(past_cap_body["error_code"], "MAX_NOTEBOOK_SIZE_EXCEEDED");
    assert!(
        past_cap_body["message"]
            .as_str()
            .unwrap()
            .contains("10485760"),
        "{past_cap_body}"
    );
    assert_eq!(form_past_cap, StatusCode::BAD_REQUEST);
    assert_eq!(form_body["error_code"], "MAX_NOTEBOOK_SIZE_EXCEEDED");
    assert_eq!(fits, StatusCode::OK);
    assert_eq!(full, StatusCode::BAD_REQUEST);
    assert_eq!(full_body["error_code"], "RESOURCE_LIMIT_EXCEEDED");
    assert_eq!(
        paths(&home),
        [format!("{HOME}/big"), format!("{HOME}/small")],
        "refused imports stored nothing"
    );
}

#[tokio::test]
async fn every_principal_has_a_home_any_may_write_anywhere_and_reset_forgets_files() {
    // Arrange
    let te = spawn().await;
    let (_, users) = te.ws_get("list", "/Workspace/Users").await;

    // Act
    let (bob_writes, body) = send(
        te.request(Method::POST, "/api/2.0/workspace/import", BOB)
            .json(
                &json!({"path": format!("{HOME}/from-bob"), "format": "AUTO",
                "content": STANDARD.encode("hi")}),
            ),
    )
    .await;
    let (alice_reads, _) = te.download(&format!("{HOME}/from-bob")).await;
    te.handle.reset().await;
    let (after_reset, _) = te.ws_get("get-status", &format!("{HOME}/from-bob")).await;
    let (home_after_reset, _) = te.ws_get("get-status", HOME).await;

    // Assert
    let homes = paths(&users);
    assert!(homes.contains(&HOME), "{users}");
    assert!(homes.contains(&"/Users/bob@example.com"), "{users}");
    assert_eq!(bob_writes, StatusCode::OK, "{body}");
    assert_eq!(alice_reads, StatusCode::OK);
    assert_eq!(after_reset, StatusCode::NOT_FOUND);
    assert_eq!(home_after_reset, StatusCode::OK);
}
