//! Volumes and files: listing volumes and directories in pages, metadata, streamed downloads
//! and uploads (never retried), deletes, directories, and how failures map to error kinds.

use std::time::Duration;

use bytes::Bytes;
use dbapp_databricks::ErrorKind;
use dbapp_databricks::api::{DirectoryPageRequest, PageRequest};
use dbapp_emulator::FaultRule;
use futures_util::{StreamExt, TryStreamExt, stream};

use crate::support::{TestWorkspace, user};

const ROOT: &str = "/Volumes/main/default/files";

fn chunks(
    parts: &[&'static str],
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + use<> {
    stream::iter(parts.to_vec()).map(|p| Ok(Bytes::from_static(p.as_bytes())))
}

#[tokio::test]
async fn volumes_are_listed_as_the_user_sees_them() {
    // Arrange
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    let (alice, bob) = (user("dev-token-alice"), user("dev-token-bob"));

    // Act
    let page = client
        .as_user(&alice)
        .list_volumes("main", "default", &PageRequest::first(0))
        .await
        .unwrap();
    let one = client
        .as_user(&alice)
        .get_volume("main.default.files")
        .await
        .unwrap();
    let denied = client
        .as_user(&bob)
        .list_volumes("main", "sales", &PageRequest::first(0))
        .await
        .unwrap_err();

    // Assert
    assert_eq!(page.items.len(), 1);
    assert_eq!(
        page.items[0].full_name.as_deref(),
        Some("main.default.files")
    );
    assert_eq!(page.items[0].volume_type.as_deref(), Some("MANAGED"));
    assert_eq!(one.name, "files");
    assert_eq!(denied.kind(), ErrorKind::PermissionDenied);
}

#[tokio::test]
async fn an_upload_streams_in_and_downloads_with_its_metadata() {
    // Arrange
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    let alice = user("dev-token-alice");
    let view = client.as_user(&alice);
    let path = format!("{ROOT}/my dir/greeting.txt");

    // Act: one upload without a declared length, one with it.
    view.upload_file(&path, chunks(&["hello, ", "files"]), None, false)
        .await
        .unwrap();
    let again = view
        .upload_file(&path, chunks(&["x"]), Some(1), false)
        .await
        .unwrap_err();
    let metadata = view.get_file_metadata(&path).await.unwrap();
    let download = view.download_file(&path).await.unwrap();
    let length = download.metadata().content_length;
    let bytes: Vec<Bytes> = download.into_stream().try_collect().await.unwrap();

    // Assert
    assert_eq!(again.kind(), ErrorKind::Conflict);
    assert_eq!(metadata.content_length, Some(12));
    assert_eq!(
        metadata.content_type.as_deref(),
        Some("application/octet-stream")
    );
    assert!(metadata.last_modified.is_some());
    assert_eq!(length, Some(12));
    assert_eq!(bytes.concat(), b"hello, files");
    let logged = workspace
        .emulator
        .requests("/api/2.0/fs/files/Volumes/main/default/files/my%20dir");
    assert!(!logged.is_empty(), "the space is sent percent-encoded");
}

#[tokio::test]
async fn directories_are_listed_in_pages_and_created_and_files_deleted() {
    // Arrange
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    let admin = user("dev-token-admin");
    let view = client.as_user(&admin);
    for name in ["a", "b", "c"] {
        view.upload_file(
            &format!("{ROOT}/list/{name}"),
            chunks(&["1"]),
            Some(1),
            true,
        )
        .await
        .unwrap();
    }
    view.create_directory(&format!("{ROOT}/list/sub/deeper"))
        .await
        .unwrap();

    // Act
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let page = view
            .list_directory_contents(
                &format!("{ROOT}/list"),
                &DirectoryPageRequest::new(Some(2), token.clone()),
            )
            .await
            .unwrap();
        names.extend(
            page.items
                .into_iter()
                .map(|e| (e.name.unwrap(), e.is_directory)),
        );
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    view.delete_file(&format!("{ROOT}/list/a")).await.unwrap();
    let gone = view
        .get_file_metadata(&format!("{ROOT}/list/a"))
        .await
        .unwrap_err();
    let no_dir = view
        .list_directory_contents(&format!("{ROOT}/none"), &DirectoryPageRequest::default())
        .await
        .unwrap_err();

    // Assert
    assert_eq!(
        names,
        [
            ("a".to_owned(), false),
            ("b".to_owned(), false),
            ("c".to_owned(), false),
            ("sub".to_owned(), true)
        ]
    );
    assert_eq!(gone.kind(), ErrorKind::NotFound);
    assert_eq!(no_dir.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn writing_without_write_access_is_permission_denied() {
    // Arrange
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    let bob = user("dev-token-bob");

    // Act
    let upload = client
        .as_user(&bob)
        .upload_file(&format!("{ROOT}/bob.txt"), chunks(&["x"]), Some(1), true)
        .await
        .unwrap_err();
    let delete = client
        .as_user(&bob)
        .delete_file(&format!("{ROOT}/README.md"))
        .await
        .unwrap_err();

    // Assert
    assert_eq!(upload.kind(), ErrorKind::PermissionDenied);
    assert_eq!(delete.kind(), ErrorKind::PermissionDenied);
}

#[tokio::test]
async fn uploads_and_downloads_are_sent_once_while_metadata_is_retried() {
    // Arrange: every file call fails once with 503.
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    let alice = user("dev-token-alice");
    let view = client.as_user(&alice);
    let readme = format!("{ROOT}/README.md");
    workspace
        .emulator
        .inject_fault(
            FaultRule::new("/api/2.0/fs/files/*")
                .method("PUT")
                .status(503)
                .times(1),
        )
        .unwrap();
    workspace
        .emulator
        .inject_fault(
            FaultRule::new("/api/2.0/fs/files/*")
                .method("GET")
                .status(503)
                .times(1),
        )
        .unwrap();
    workspace
        .emulator
        .inject_fault(
            FaultRule::new("/api/2.0/fs/files/*")
                .method("HEAD")
                .status(503)
                .times(1),
        )
        .unwrap();

    // Act
    let upload = view
        .upload_file(&format!("{ROOT}/once.txt"), chunks(&["x"]), Some(1), true)
        .await
        .unwrap_err();
    let download = view.download_file(&readme).await.unwrap_err();
    let metadata = tokio::time::timeout(Duration::from_secs(5), view.get_file_metadata(&readme))
        .await
        .unwrap();

    // Assert
    assert_eq!(upload.kind(), ErrorKind::Unavailable);
    assert_eq!(upload.attempts(), 1);
    assert_eq!(download.kind(), ErrorKind::Unavailable);
    assert_eq!(download.attempts(), 1);
    assert!(metadata.is_ok(), "HEAD is retried: {metadata:?}");
    let puts = workspace
        .emulator
        .requests("/api/2.0/fs/files/")
        .into_iter()
        .filter(|r| r.method == "PUT")
        .count();
    assert_eq!(puts, 1);
}
