//! Volumes, the Files API over them, and table exists: shapes, paging, ranges, permissions per
//! user, size caps, and the presigned-URL calls the SDK must walk past.

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::support::{ADMIN, ALICE, BOB, TestEmulator, send, spawn};

const ROOT: &str = "/Volumes/main/default/files";

fn files(path: &str) -> String {
    format!("/api/2.0/fs/files{path}")
}

fn dirs(path: &str) -> String {
    format!("/api/2.0/fs/directories{path}")
}

async fn put(
    te: &TestEmulator,
    path: &str,
    token: &str,
    body: &'static [u8],
) -> (StatusCode, Value) {
    send(te.request(Method::PUT, &files(path), token).body(body)).await
}

#[tokio::test]
async fn volumes_are_listed_and_read_as_each_user_may_see_them() {
    // Arrange
    let te = spawn().await;
    let list = "/api/2.1/unity-catalog/volumes?catalog_name=main&schema_name=default";

    // Act
    let (status, alice) = te.get(list, ALICE).await;
    let (_, one) = te
        .get("/api/2.1/unity-catalog/volumes/main.default.files", BOB)
        .await;
    let (bob_sales, denied) = te
        .get(
            "/api/2.1/unity-catalog/volumes?catalog_name=main&schema_name=sales",
            BOB,
        )
        .await;
    let (missing, _) = te
        .get("/api/2.1/unity-catalog/volumes/main.default.nope", ALICE)
        .await;

    // Assert
    assert_eq!(status, StatusCode::OK);
    let volume = &alice["volumes"][0];
    assert_eq!(volume["full_name"], "main.default.files");
    assert_eq!(volume["volume_type"], "MANAGED");
    assert_eq!(volume["catalog_name"], "main");
    assert!(volume["volume_id"].is_string() && volume["created_at"].is_i64());
    assert_eq!(one["name"], "files");
    assert_eq!(bob_sales, StatusCode::FORBIDDEN, "{denied}");
    assert_eq!(denied["error_code"], "PERMISSION_DENIED");
    assert_eq!(missing, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_file_round_trips_with_its_headers_and_ranges() {
    // Arrange
    let te = spawn().await;
    let path = format!("{ROOT}/new dir/hello world.txt");
    let encoded = path.replace(' ', "%20");

    // Act
    let (created, _) = put(&te, &encoded, ALICE, b"hello, volumes").await;
    let whole = te
        .request(Method::GET, &files(&encoded), BOB)
        .send()
        .await
        .unwrap();
    let head = te
        .request(Method::HEAD, &files(&encoded), BOB)
        .send()
        .await
        .unwrap();
    let part = te
        .request(Method::GET, &files(&encoded), BOB)
        .header(header::RANGE, "bytes=7-13")
        .send()
        .await
        .unwrap();
    let beyond = te
        .request(Method::GET, &files(&encoded), BOB)
        .header(header::RANGE, "bytes=100-")
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(created, StatusCode::NO_CONTENT);
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.headers()[header::CONTENT_LENGTH], "14");
    assert_eq!(
        whole.headers()[header::CONTENT_TYPE],
        "application/octet-stream"
    );
    assert!(
        whole.headers()[header::LAST_MODIFIED]
            .to_str()
            .unwrap()
            .ends_with(" GMT")
    );
    assert_eq!(whole.bytes().await.unwrap(), "hello, volumes");
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()[header::CONTENT_LENGTH], "14");
    assert!(head.bytes().await.unwrap().is_empty());
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.headers()[header::CONTENT_RANGE], "bytes 7-13/14");
    assert_eq!(part.bytes().await.unwrap(), "volumes");
    assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);
}

#[tokio::test]
async fn overwrite_false_refuses_an_existing_file_and_keeps_it() {
    // Arrange
    let te = spawn().await;
    let path = format!("{ROOT}/README.md");

    // Act
    let (status, body) = send(
        te.request(
            Method::PUT,
            &format!("{}?overwrite=false", files(&path)),
            ALICE,
        )
        .body("replaced"),
    )
    .await;
    let (replaced, _) = send(
        te.request(
            Method::PUT,
            &format!("{}?overwrite=true", files(&path)),
            ALICE,
        )
        .body("replaced"),
    )
    .await;
    let after = te
        .request(Method::GET, &files(&path), ALICE)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    // Assert
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error_code"], "ALREADY_EXISTS");
    assert_eq!(replaced, StatusCode::NO_CONTENT);
    assert_eq!(after, "replaced");
}

#[tokio::test]
async fn directories_list_in_pages_and_only_empty_ones_are_deleted() {
    // Arrange: five files in one directory.
    let te = spawn().await;
    for name in ["a", "b", "c", "d", "e"] {
        let (status, _) = put(&te, &format!("{ROOT}/many/{name}.txt"), ADMIN, b"x").await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    let (mkdir, _) = send(te.request(Method::PUT, &dirs(&format!("{ROOT}/many/sub")), ADMIN)).await;

    // Act: walk the listing two at a time.
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10 {
        let url = match &token {
            Some(t) => format!(
                "{}?page_size=2&page_token={t}",
                dirs(&format!("{ROOT}/many"))
            ),
            None => format!("{}?page_size=2", dirs(&format!("{ROOT}/many"))),
        };
        let (status, body) = te.get(&url, ALICE).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        for entry in body["contents"].as_array().unwrap() {
            names.push(entry["name"].as_str().unwrap().to_owned());
        }
        match body.get("next_page_token").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    let (_, root) = te.get(&dirs(ROOT), ALICE).await;
    let (not_empty, refused) =
        send(te.request(Method::DELETE, &dirs(&format!("{ROOT}/many")), ADMIN)).await;
    let (removed, _) =
        send(te.request(Method::DELETE, &dirs(&format!("{ROOT}/many/sub")), ADMIN)).await;
    let (gone, _) = send(te.request(Method::HEAD, &dirs(&format!("{ROOT}/many/sub")), ADMIN)).await;
    let (no_dir, _) = te.get(&dirs(&format!("{ROOT}/nowhere")), ALICE).await;

    // Assert
    assert_eq!(mkdir, StatusCode::NO_CONTENT);
    assert_eq!(names, ["a.txt", "b.txt", "c.txt", "d.txt", "e.txt", "sub"]);
    let readme = root["contents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "README.md")
        .unwrap();
    assert_eq!(readme["path"], format!("{ROOT}/README.md"));
    assert_eq!(readme["is_directory"], false);
    assert!(readme["file_size"].as_u64().unwrap() > 0);
    assert!(readme["last_modified"].is_i64());
    let data = root["contents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "data")
        .unwrap();
    assert_eq!(
        data,
        &json!({"path": format!("{ROOT}/data"), "name": "data", "is_directory": true})
    );
    assert_eq!(not_empty, StatusCode::CONFLICT, "{refused}");
    assert_eq!(removed, StatusCode::NO_CONTENT);
    assert_eq!(gone, StatusCode::NOT_FOUND);
    assert_eq!(no_dir, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn reading_needs_readers_and_writing_needs_writers() {
    // Arrange
    let te = spawn().await;

    // Act
    let (bob_reads, _) = te.get(&files(&format!("{ROOT}/README.md")), BOB).await;
    let (bob_writes, write_body) = put(&te, &format!("{ROOT}/bob.txt"), BOB, b"x").await;
    let (bob_deletes, _) =
        send(te.request(Method::DELETE, &files(&format!("{ROOT}/README.md")), BOB)).await;
    let (bob_hidden, _) = te
        .get(&files("/Volumes/main/sales/reports/2025/q1.csv"), BOB)
        .await;
    let (alice_reads_reports, _) = te
        .get(&files("/Volumes/main/sales/reports/2025/q1.csv"), ALICE)
        .await;
    let (alice_writes_reports, _) =
        put(&te, "/Volumes/main/sales/reports/alice.csv", ALICE, b"x").await;
    let (missing_volume, missing) = te.get(&files("/Volumes/main/default/nope/x"), ALICE).await;
    // A control character; `..` cannot be sent from here, since URL parsing resolves it first
    // (the `files` module's unit tests refuse it).
    let (bad_path, _) = te
        .get(&files(&format!("{ROOT}/a%0Ab/README.md")), ALICE)
        .await;
    let (not_volumes, _) = te.get(&files("/Workspace/x"), ALICE).await;

    // Assert
    assert_eq!(bob_reads, StatusCode::OK);
    assert_eq!(bob_writes, StatusCode::FORBIDDEN);
    assert_eq!(write_body["error_code"], "PERMISSION_DENIED");
    assert_eq!(bob_deletes, StatusCode::FORBIDDEN);
    assert_eq!(bob_hidden, StatusCode::FORBIDDEN);
    assert_eq!(alice_reads_reports, StatusCode::OK);
    assert_eq!(alice_writes_reports, StatusCode::FORBIDDEN);
    assert_eq!(missing_volume, StatusCode::NOT_FOUND, "{missing}");
    assert_eq!(bad_path, StatusCode::BAD_REQUEST);
    assert_eq!(not_volumes, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn uploads_over_the_caps_store_nothing() {
    // Arrange: a 10-byte file cap and a 64-byte total.
    let te = spawn().await;
    te.handle
        .update_settings(|s| {
            s.files_max_file_bytes = 10;
            s.files_max_total_bytes = 400;
        })
        .unwrap();
    let path = format!("{ROOT}/big.bin");

    // Act
    let (too_big, body) = put(&te, &path, ALICE, b"01234567890").await;
    let (after, _) = te.get(&files(&path), ALICE).await;
    let (fits, _) = put(&te, &path, ALICE, b"0123456789").await;
    // The fixture's files already hold most of the 400 bytes: a few more files pass the total.
    let mut full = StatusCode::OK;
    for n in 0..40 {
        let (status, _) = put(&te, &format!("{ROOT}/fill/{n}"), ALICE, b"0123456789").await;
        if status != StatusCode::NO_CONTENT {
            full = status;
            break;
        }
    }

    // Assert
    assert_eq!(too_big, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(after, StatusCode::NOT_FOUND);
    assert_eq!(fits, StatusCode::NO_CONTENT);
    assert_eq!(full, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn presigned_url_calls_answer_not_implemented() {
    // Arrange
    let te = spawn().await;

    // Act
    let (download_url, _) = te
        .post(
            &format!("/api/2.0/fs/create-download-url?path={ROOT}/README.md"),
            ALICE,
            json!({}),
        )
        .await;
    let (initiate, _) = te
        .post(
            &format!("{}?action=initiate-upload", files(&format!("{ROOT}/x.bin"))),
            ALICE,
            json!({}),
        )
        .await;

    // Assert
    assert_eq!(download_url, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(initiate, StatusCode::NOT_IMPLEMENTED);
}

#[tokio::test]
async fn reset_restores_the_fixture_files() {
    // Arrange
    let te = spawn().await;
    let readme = format!("{ROOT}/README.md");
    send(te.request(Method::DELETE, &files(&readme), ALICE)).await;
    let (deleted, _) = te.get(&files(&readme), ALICE).await;

    // Act
    te.handle.reset().await;
    let (restored, _) = te.get(&files(&readme), ALICE).await;

    // Assert
    assert_eq!(deleted, StatusCode::NOT_FOUND);
    assert_eq!(restored, StatusCode::OK);
}

#[tokio::test]
async fn table_exists_answers_for_readable_schemas() {
    // Arrange
    let te = spawn().await;
    let exists = |name: &str| format!("/api/2.1/unity-catalog/tables/{name}/exists");

    // Act
    let (_, present) = te.get(&exists("main.default.customers"), BOB).await;
    let (_, absent) = te.get(&exists("main.default.nope"), BOB).await;
    let (hidden, _) = te.get(&exists("main.sales.orders"), BOB).await;
    let (no_schema, body) = te.get(&exists("main.nope.x"), ALICE).await;
    let (no_catalog, _) = te.get(&exists("nope.a.b"), ALICE).await;

    // Assert
    assert_eq!(present, json!({"table_exists": true}));
    assert_eq!(absent, json!({"table_exists": false}));
    assert_eq!(hidden, StatusCode::FORBIDDEN);
    assert_eq!(no_schema, StatusCode::NOT_FOUND);
    assert_eq!(body["error_code"], "SCHEMA_DOES_NOT_EXIST");
    assert_eq!(no_catalog, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_listing_page_holds_at_most_a_thousand_entries() {
    // Arrange: 1 001 directories in one place.
    let te = spawn().await;
    for n in 0..1001 {
        let (status, _) =
            send(te.request(Method::PUT, &dirs(&format!("{ROOT}/wide/{n:04}")), ADMIN)).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }

    // Act
    let (_, first) = te
        .get(
            &format!("{}?page_size=5000", dirs(&format!("{ROOT}/wide"))),
            ALICE,
        )
        .await;
    let token = first["next_page_token"].as_str().unwrap();
    let (_, rest) = te
        .get(
            &format!("{}?page_token={token}", dirs(&format!("{ROOT}/wide"))),
            ALICE,
        )
        .await;

    // Assert
    assert_eq!(first["contents"].as_array().unwrap().len(), 1000);
    assert_eq!(rest["contents"][0]["name"], "1000");
    assert!(rest.get("next_page_token").is_none());
}
