//! Unity Catalog: pages, streams over empty pages, visibility, table get and 404s.

use dbapp_databricks::ErrorKind;
use dbapp_databricks::api::PageRequest;
use dbapp_emulator::FaultRule;
use futures_util::TryStreamExt;

use crate::support::{TestWorkspace, user};

const CATALOGS: &str = "/api/2.1/unity-catalog/catalogs";

#[tokio::test]
async fn catalogs_schemas_and_tables_follow_visibility() {
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    let (alice, bob) = (user("dev-token-alice"), user("dev-token-bob"));

    let alice_catalogs: Vec<String> = client
        .as_user(&alice)
        .list_all_catalogs()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert!(
        alice_catalogs.contains(&"main".to_owned())
            && alice_catalogs.contains(&"samples".to_owned()),
        "{alice_catalogs:?}"
    );

    let bob_schemas: Vec<String> = client
        .as_user(&bob)
        .list_all_schemas("main")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert!(bob_schemas.contains(&"default".to_owned()));
    assert!(
        !bob_schemas.contains(&"sales".to_owned()),
        "{bob_schemas:?}"
    );

    let tables = client
        .as_user(&alice)
        .list_all_tables("main", "default")
        .await
        .unwrap();
    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["customers", "products", "regions"]);
    assert_eq!(
        tables[0].full_name.as_deref(),
        Some("main.default.customers")
    );
}

#[tokio::test]
async fn pages_carry_tokens_until_the_end() {
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    let alice = user("dev-token-alice");
    let view = client.as_user(&alice);

    let first = view
        .list_tables("main", "default", &PageRequest::first(2))
        .await
        .unwrap();
    assert_eq!(first.items.len(), 2);
    let token = first.next_page_token.clone().expect("a second page");
    let second = view
        .list_tables("main", "default", &PageRequest::after(2, token))
        .await
        .unwrap();
    assert_eq!(second.items.len(), 1);
    assert!(second.next_page_token.is_none());
}

#[tokio::test]
async fn streams_continue_over_empty_pages_that_carry_a_token() {
    // Arrange: the emulator starts lists with an empty page and ends them with one.
    let workspace = TestWorkspace::start().await;
    workspace
        .emulator
        .update_settings(|s| s.empty_pages = true)
        .unwrap();
    let client = workspace.client();
    let alice = user("dev-token-alice");
    let view = client.as_user(&alice);

    // Act
    let tables: Vec<_> = view
        .tables("main", "default", 1)
        .try_collect()
        .await
        .unwrap();
    let catalogs = view.list_all_catalogs().await.unwrap();

    // Assert: 3 tables, one per page, plus the two empty pages.
    assert_eq!(tables.len(), 3);
    assert!(catalogs.len() >= 2);
    let table_pages = workspace
        .emulator
        .requests("/api/2.1/unity-catalog/tables")
        .len();
    assert_eq!(table_pages, 5);
    let first = view.list_catalogs(&PageRequest::first(0)).await.unwrap();
    assert!(first.items.is_empty() && first.next_page_token.is_some());
}

#[tokio::test]
async fn get_table_returns_columns() {
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    let alice = user("dev-token-alice");
    let table = client
        .as_user(&alice)
        .get_table("main.default.customers")
        .await
        .unwrap();
    assert_eq!(table.name, "customers");
    let columns: Vec<(&str, Option<&str>)> = table
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.type_name.as_deref()))
        .collect();
    assert_eq!(columns[0], ("id", Some("LONG")));
    assert_eq!(columns.len(), 6);
    assert!(table.created_at.is_some());
}

#[tokio::test]
async fn missing_and_forbidden_objects_are_classified() {
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    let missing = client
        .as_user(&user("dev-token-alice"))
        .get_table("main.default.nope")
        .await
        .unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    assert_eq!(missing.error_code(), Some("TABLE_DOES_NOT_EXIST"));
    let no_catalog = client
        .as_user(&user("dev-token-alice"))
        .list_all_schemas("nope")
        .await
        .unwrap_err();
    assert_eq!(no_catalog.kind(), ErrorKind::NotFound);
    let forbidden = client
        .as_user(&user("dev-token-bob"))
        .get_table("main.sales.orders")
        .await
        .unwrap_err();
    assert_eq!(forbidden.kind(), ErrorKind::PermissionDenied);
}

#[tokio::test]
async fn list_pages_are_retried_on_503() {
    let workspace = TestWorkspace::start().await;
    workspace
        .emulator
        .inject_fault(FaultRule::new(CATALOGS).status(503).times(1))
        .unwrap();
    let client = workspace.client();
    let catalogs = client
        .as_user(&user("dev-token-alice"))
        .list_all_catalogs()
        .await
        .unwrap();
    assert!(!catalogs.is_empty());
    assert_eq!(workspace.emulator.requests(CATALOGS).len(), 2);
}
