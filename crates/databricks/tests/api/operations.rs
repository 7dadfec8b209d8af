//! Every call names its operation: the `api` and `operation` an [`AttemptObserver`] sees are the
//! labels of the server's `upstream_requests_total`, so these values are part of the metrics API.

use std::sync::{Arc, Mutex};

use dbapp_databricks::api::{ExecuteStatement, PageRequest};
use dbapp_databricks::{Attempt, Method};
use serde_json::json;

use crate::support::{TestWorkspace, user};

/// The `(api, operation)` of every attempt, in order.
type Seen = Arc<Mutex<Vec<(&'static str, &'static str)>>>;

#[tokio::test]
async fn each_call_reports_the_operation_it_makes() {
    // Arrange
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    let alice = user("dev-token-alice");
    let seen: Seen = Arc::default();
    let sink = Arc::clone(&seen);
    let view = client
        .as_user(&alice)
        .with_observer(Arc::new(move |attempt: &Attempt<'_>| {
            sink.lock().unwrap().push((attempt.api, attempt.operation));
        }));

    // Act: one call of each kind.
    view.me().await.unwrap();
    view.list_catalogs(&PageRequest::first(10)).await.unwrap();
    view.list_schemas("main", &PageRequest::first(10))
        .await
        .unwrap();
    view.list_tables("main", "default", &PageRequest::first(10))
        .await
        .unwrap();
    view.get_table("main.default.customers").await.unwrap();
    view.list_serving_endpoints().await.unwrap();
    view.get_serving_endpoint("echo").await.unwrap();
    view.get_open_api("echo").await.unwrap();
    view.invoke_serving_endpoint("echo", json!({"inputs": [1]}))
        .await
        .unwrap();
    view.execute_statement(&ExecuteStatement::new(
        "SELECT * FROM main.default.customers LIMIT 1",
        "dev-warehouse",
    ))
    .await
    .unwrap();
    view.call_json(Method::GET, "/api/2.0/serving-endpoints", None)
        .await
        .unwrap();

    // Assert: the vocabulary the metrics have always used; `call_json` cannot know its name.
    assert_eq!(
        *seen.lock().unwrap(),
        [
            ("scim", "me"),
            ("unity_catalog", "list_catalogs"),
            ("unity_catalog", "list_schemas"),
            ("unity_catalog", "list_tables"),
            ("unity_catalog", "get_table"),
            ("serving", "list_serving_endpoints"),
            ("serving", "get_serving_endpoint"),
            ("serving", "get_open_api"),
            ("serving", "query"),
            ("sql", "execute_statement"),
            ("other", "other"),
        ]
    );
}
