//! Volumes and their files as the user: listing volumes and directories, streamed downloads and
//! uploads, deletes, the upload cap (declared and streamed), path and name checks, each error
//! code, isolation between alice and bob, and no token anywhere it should not be.

use futures_util::stream;
use reqwest::Method;
use serde_json::Value;

use crate::app::{
    ADMIN, ALICE, BOB, Options, TestApp, assert_error, captured_logs, spawn_app, spawn_app_with,
};

const FILES: &str = "/api/volumes/main/default/files/files";
const CONTENT: &str = "/api/volumes/main/default/files/files/content";
const REPORTS: &str = "/api/volumes/main/sales/reports/files";

/// `?path=` with the value percent-encoded.
fn with_path(route: &str, path: &str) -> String {
    let mut url = reqwest::Url::parse("http://x").unwrap();
    url.query_pairs_mut().append_pair("path", path);
    format!("{route}?{}", url.query().unwrap())
}

async fn upload(
    app: &TestApp,
    token: &str,
    path: &str,
    body: &'static [u8],
    overwrite: bool,
) -> reqwest::Response {
    app.request(
        Method::PUT,
        &format!("{}&overwrite={overwrite}", with_path(CONTENT, path)),
        token,
    )
    .body(body)
    .send()
    .await
    .unwrap()
}

fn names(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("items in {body}"))
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn volumes_are_listed_as_the_user_sees_them() {
    // Arrange
    let app = spawn_app().await;
    let volumes = |catalog: &str, schema: &str| {
        format!("/api/unity-catalog/catalogs/{catalog}/schemas/{schema}/volumes")
    };

    // Act
    let (status, alice) = app.get_json(&volumes("main", "default"), Some(ALICE)).await;
    let (_, alice_sales) = app.get_json(&volumes("main", "sales"), Some(ALICE)).await;
    let bob_sales = app
        .get(&volumes("main", "sales"), Some(BOB))
        .send()
        .await
        .unwrap();
    let missing = app
        .get(&volumes("main", "nope"), Some(ALICE))
        .send()
        .await
        .unwrap();
    let bad = app
        .get(&volumes("main", "bad.name"), Some(ALICE))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(status, 200, "{alice}");
    assert_eq!(
        alice["items"][0],
        serde_json::json!({
            "name": "files",
            "full_name": "main.default.files",
            "volume_type": "MANAGED",
            "comment": alice["items"][0]["comment"].clone(),
            "owner": "admin@example.com",
        })
    );
    assert!(alice["items"][0]["comment"].is_string());
    assert_eq!(alice["next_page_token"], Value::Null);
    assert_eq!(names(&alice_sales), ["reports"]);
    assert_error(bob_sales, 403, "PERMISSION_DENIED").await;
    assert_error(missing, 404, "SCHEMA_NOT_FOUND").await;
    let body = assert_error(bad, 400, "INVALID_IDENTIFIER").await;
    assert_eq!(body["detail"]["field"], "schema");
}

#[tokio::test]
async fn directories_are_listed_with_relative_paths_in_pages() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let (status, root) = app.get_json(FILES, Some(BOB)).await;
    let (_, data) = app.get_json(&with_path(FILES, "data"), Some(BOB)).await;
    let mut paged = Vec::new();
    let mut url = format!("{FILES}?limit=1");
    for _ in 0..10 {
        let (status, page) = app.get_json(&url, Some(BOB)).await;
        assert_eq!(status, 200, "{page}");
        paged.extend(names(&page));
        match page["next_page_token"].as_str() {
            Some(token) => url = format!("{FILES}?limit=1&page_token={token}"),
            None => break,
        }
    }
    let missing = app
        .get(&with_path(FILES, "nowhere"), Some(BOB))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(status, 200, "{root}");
    assert_eq!(names(&root), ["README.md", "data"]);
    let readme = &root["items"][0];
    assert_eq!(readme["path"], "README.md");
    assert_eq!(readme["is_directory"], false);
    assert!(readme["size"].as_u64().unwrap() > 0);
    assert!(
        readme["last_modified"].as_str().unwrap().ends_with('Z'),
        "{readme}"
    );
    let dir = &root["items"][1];
    assert_eq!(dir["is_directory"], true);
    assert_eq!(dir["size"], Value::Null);
    assert_eq!(dir["last_modified"], Value::Null);
    assert_eq!(data["items"][0]["path"], "data/regions.csv");
    assert_eq!(paged, ["README.md", "data"]);
    assert_error(missing, 404, "FILE_NOT_FOUND").await;
}

#[tokio::test]
async fn an_upload_is_stored_and_downloads_with_its_headers() {
    // Arrange
    let app = spawn_app().await;
    let path = "reports/naïve report.csv";

    // Act
    let created = upload(&app, ALICE, path, b"a,b\n1,2\n", false).await;
    let created_status = created.status().as_u16();
    let item: Value = created.json().await.unwrap();
    let download = app
        .get(&with_path(CONTENT, path), Some(BOB))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    let headers = download.headers().clone();
    let bytes = download.bytes().await.unwrap();
    let again = upload(&app, ALICE, path, b"other", false).await;
    let replaced = upload(&app, ALICE, path, b"other", true).await;

    // Assert
    assert_eq!(created_status, 201, "{item}");
    assert_eq!(item["name"], "naïve report.csv");
    assert_eq!(item["path"], path);
    assert_eq!(item["is_directory"], false);
    assert_eq!(item["size"], 8);
    assert!(item["last_modified"].as_str().unwrap().ends_with('Z'));
    assert_eq!(&bytes[..], b"a,b\n1,2\n");
    assert_eq!(headers["content-length"], "8");
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert!(
        headers.get("content-encoding").is_none(),
        "downloads are not compressed"
    );
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"na_ve report.csv\"; filename*=UTF-8''na%C3%AFve%20report.csv"
    );
    assert_error(again, 409, "FILE_ALREADY_EXISTS").await;
    assert_eq!(replaced.status(), 201);
}

#[tokio::test]
async fn uploads_pass_the_global_body_limit_but_not_their_own_cap() {
    // Arrange: a 2 000-byte upload cap; the 1 MiB body limit still holds elsewhere.
    let app = spawn_app_with(Options {
        env: vec![("DBAPP_VOLUME_UPLOAD_MAX_BYTES", "2000")],
        ..Options::default()
    })
    .await;
    let big = spawn_app().await;
    let body = vec![b'x'; 5_000];
    let chunked = |bytes: Vec<u8>| {
        reqwest::Body::wrap_stream(stream::iter(
            bytes
                .chunks(500)
                .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
                .collect::<Vec<_>>(),
        ))
    };

    // Act
    let declared = app
        .request(Method::PUT, &with_path(CONTENT, "declared.bin"), ALICE)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let streamed = app
        .request(Method::PUT, &with_path(CONTENT, "streamed.bin"), ALICE)
        .body(chunked(body.clone()))
        .send()
        .await
        .unwrap();
    let fits = app
        .request(Method::PUT, &with_path(CONTENT, "fits.bin"), ALICE)
        .body(chunked(vec![b'y'; 2_000]))
        .send()
        .await
        .unwrap();
    let over_a_mebibyte = big
        .request(Method::PUT, &with_path(CONTENT, "large.bin"), ALICE)
        .body(vec![b'z'; 3 * 1024 * 1024 / 2])
        .send()
        .await
        .unwrap();
    let large = big
        .get(&with_path(CONTENT, "large.bin"), Some(ALICE))
        .send()
        .await
        .unwrap();

    // Assert
    let body = assert_error(declared, 413, "PAYLOAD_TOO_LARGE").await;
    assert_eq!(body["detail"]["limit_bytes"], 2000);
    let body = assert_error(streamed, 413, "PAYLOAD_TOO_LARGE").await;
    assert_eq!(body["detail"]["limit_bytes"], 2000);
    for path in ["declared.bin", "streamed.bin"] {
        let gone = app
            .get(&with_path(CONTENT, path), Some(ALICE))
            .send()
            .await
            .unwrap();
        assert_error(gone, 404, "FILE_NOT_FOUND").await;
    }
    assert_eq!(fits.status(), 201);
    assert_eq!(over_a_mebibyte.status(), 201);
    assert_eq!(large.bytes().await.unwrap().len(), 3 * 1024 * 1024 / 2);
}

#[tokio::test]
async fn a_deleted_file_is_gone() {
    // Arrange
    let app = spawn_app().await;
    assert_eq!(
        upload(&app, ALICE, "tmp.txt", b"x", false).await.status(),
        201
    );

    // Act
    let deleted = app
        .request(Method::DELETE, &with_path(CONTENT, "tmp.txt"), ALICE)
        .send()
        .await
        .unwrap();
    let again = app
        .request(Method::DELETE, &with_path(CONTENT, "tmp.txt"), ALICE)
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(deleted.status(), 204);
    assert_error(again, 404, "FILE_NOT_FOUND").await;
}

#[tokio::test]
async fn missing_volumes_files_and_bad_input_have_their_codes() {
    // Arrange
    let app = spawn_app().await;
    let get = |path: &str| app.get(path, Some(ALICE)).send();

    // Act / Assert
    let body = assert_error(
        get(&with_path(
            "/api/volumes/main/default/nope/files/content",
            "x",
        ))
        .await
        .unwrap(),
        404,
        "VOLUME_NOT_FOUND",
    )
    .await;
    assert!(
        !body["message"]
            .as_str()
            .unwrap()
            .contains("RESOURCE_DOES_NOT_EXIST")
    );
    assert_error(
        get(&with_path("/api/volumes/nope/default/files/files", ""))
            .await
            .unwrap(),
        404,
        "CATALOG_NOT_FOUND",
    )
    .await;
    assert_error(
        get(&with_path(CONTENT, "absent.txt")).await.unwrap(),
        404,
        "FILE_NOT_FOUND",
    )
    .await;
    for bad in [
        "../README.md",
        "a//b",
        "/README.md",
        "a/./b",
        "bad\u{1}name",
        "",
    ] {
        let body = assert_error(
            get(&with_path(CONTENT, bad)).await.unwrap(),
            400,
            "INVALID_REQUEST",
        )
        .await;
        assert_eq!(body["detail"]["field"], "path", "{bad:?}");
    }
    let long = "a".repeat(1025);
    assert_error(
        get(&with_path(CONTENT, &long)).await.unwrap(),
        400,
        "INVALID_REQUEST",
    )
    .await;
    let body = assert_error(
        get(&with_path(
            "/api/volumes/main/default/bad%20volume/files",
            "",
        ))
        .await
        .unwrap(),
        400,
        "INVALID_IDENTIFIER",
    )
    .await;
    assert_eq!(body["detail"]["field"], "volume");
    let unauthenticated = app.get(FILES, None).send().await.unwrap();
    assert_error(unauthenticated, 401, "AUTH_MISSING").await;
}

#[tokio::test]
async fn alice_and_bob_are_kept_apart_and_no_token_leaks() {
    // Arrange
    let app = spawn_app().await;
    assert_eq!(
        upload(&app, ALICE, "shared.txt", b"from alice", false)
            .await
            .status(),
        201
    );

    // Act
    let bob_reads = app
        .get(&with_path(CONTENT, "shared.txt"), Some(BOB))
        .send()
        .await
        .unwrap();
    let bob_writes = upload(&app, BOB, "bob.txt", b"x", false).await;
    let bob_deletes = app
        .request(Method::DELETE, &with_path(CONTENT, "shared.txt"), BOB)
        .send()
        .await
        .unwrap();
    let bob_lists_reports = app.get(REPORTS, Some(BOB)).send().await.unwrap();
    let (alice_lists, reports) = app.get_json(REPORTS, Some(ALICE)).await;
    let alice_writes_reports = app
        .request(
            Method::PUT,
            &with_path("/api/volumes/main/sales/reports/files/content", "a.csv"),
            ALICE,
        )
        .body("x")
        .send()
        .await
        .unwrap();
    let admin_writes_reports = app
        .request(
            Method::PUT,
            &with_path("/api/volumes/main/sales/reports/files/content", "a.csv"),
            ADMIN,
        )
        .body("x")
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(bob_reads.text().await.unwrap(), "from alice");
    let mut bodies = Vec::new();
    bodies.push(assert_error(bob_writes, 403, "PERMISSION_DENIED").await);
    bodies.push(assert_error(bob_deletes, 403, "PERMISSION_DENIED").await);
    bodies.push(assert_error(bob_lists_reports, 403, "PERMISSION_DENIED").await);
    assert_eq!(alice_lists, 200);
    assert_eq!(names(&reports), ["2025"]);
    bodies.push(assert_error(alice_writes_reports, 403, "PERMISSION_DENIED").await);
    assert_eq!(admin_writes_reports.status(), 201);
    let shared = app
        .get(&with_path(CONTENT, "shared.txt"), Some(ALICE))
        .send()
        .await
        .unwrap();
    assert_eq!(shared.status(), 200, "bob's delete changed nothing");
    let logs = captured_logs();
    for token in [ALICE, BOB, ADMIN] {
        assert!(!logs.contains(token), "a token in the logs");
        for body in &bodies {
            assert!(!body.to_string().contains(token), "a token in {body}");
        }
    }
}
