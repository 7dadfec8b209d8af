//! Lakebase Autoscaling's control plane (`shared/UPSTREAM-2.md` §6): projects, branches and
//! endpoints created, listed, read, changed and deleted over HTTP, their operations, the
//! fixture's endpoint as a resource of its project, credentials for API-made endpoints, and
//! every refusal.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{ALICE, BOB, TestEmulator, send, spawn};

const API: &str = "/api/2.0/postgres";

impl TestEmulator {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let request = self.request(method, &format!("{API}/{path}"), ALICE);
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        send(request).await
    }

    async fn pg_get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    async fn pg_post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    /// Creates and returns the finished operation, asserting success.
    async fn created(&self, path: &str, body: Value) -> Value {
        let (status, operation) = self.pg_post(path, body).await;
        assert_eq!(status, StatusCode::OK, "{path}: {operation}");
        assert_eq!(operation["done"], true, "{operation}");
        operation
    }

    async fn credential_status(&self, endpoint: &str) -> StatusCode {
        self.post(
            &format!("{API}/credentials"),
            BOB,
            json!({"endpoint": endpoint}),
        )
        .await
        .0
    }
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} in {list}"))
        .iter()
        .map(|item| item["name"].as_str().expect("name").to_owned())
        .collect()
}

#[tokio::test]
async fn the_fixture_endpoint_is_a_resource_of_its_project_and_branch() {
    // Arrange
    let te = spawn().await;

    // Act
    let (_, projects) = te.pg_get("projects").await;
    let (_, project) = te.pg_get("projects/dev").await;
    let (_, branches) = te.pg_get("projects/dev/branches").await;
    let (_, endpoints) = te
        .pg_get("projects/dev/branches/production/endpoints")
        .await;
    let (_, databases) = te
        .pg_get("projects/dev/branches/production/databases")
        .await;
    let (_, roles) = te.pg_get("projects/dev/branches/production/roles").await;
    let database_name = databases["databases"][0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let role_name = roles["roles"][0]["name"].as_str().unwrap().to_owned();
    let (database_status, database) = te.pg_get(&database_name).await;
    let (role_status, _) = te.pg_get(&role_name).await;

    // Assert
    assert_eq!(names(&projects, "projects"), ["projects/dev"]);
    assert_eq!(project["project_id"], "dev");
    assert_eq!(
        project["status"]["default_branch"],
        "projects/dev/branches/production"
    );
    assert_eq!(project["status"]["owner"], "admin@example.com");
    assert_eq!(
        names(&branches, "branches"),
        ["projects/dev/branches/production"]
    );
    let branch = &branches["branches"][0];
    assert_eq!(branch["parent"], "projects/dev");
    assert_eq!(branch["status"]["default"], true);
    assert_eq!(branch["status"]["current_state"], "READY");
    let endpoint = &endpoints["endpoints"][0];
    assert_eq!(
        endpoint["name"],
        "projects/dev/branches/production/endpoints/primary"
    );
    assert_eq!(endpoint["endpoint_id"], "primary");
    assert_eq!(
        endpoint["status"]["endpoint_type"],
        "ENDPOINT_TYPE_READ_WRITE"
    );
    assert_eq!(
        endpoint["status"]["hosts"]["host"],
        "ep-primary.database.us-west-2.cloud.databricks.com"
    );
    assert_eq!(database_status, StatusCode::OK);
    assert_eq!(
        database["status"]["postgres_database"],
        "databricks_postgres"
    );
    assert_eq!(role_status, StatusCode::OK);
    assert_eq!(
        roles["roles"][0]["status"]["postgres_role"],
        "admin@example.com"
    );
}

#[tokio::test]
async fn a_new_project_has_a_production_branch_with_a_primary_endpoint_and_a_done_operation() {
    // Arrange
    let te = spawn().await;

    // Act
    let operation = te
        .created(
            "projects?project_id=my-app",
            json!({"spec": {"display_name": "My app", "pg_version": 16}}),
        )
        .await;
    let (polled_status, polled) = te.pg_get(operation["name"].as_str().unwrap()).await;
    let (_, branches) = te.pg_get("projects/my-app/branches").await;
    let (_, endpoints) = te
        .pg_get("projects/my-app/branches/production/endpoints")
        .await;
    let primary = "projects/my-app/branches/production/endpoints/primary";
    let credential = te.credential_status(primary).await;

    // Assert
    let name = operation["name"].as_str().unwrap();
    assert!(name.starts_with("projects/my-app/operations/"), "{name}");
    assert_eq!(
        operation["metadata"]["@type"],
        "type.googleapis.com/databricks.postgres.v1.ProjectOperationMetadata"
    );
    let project = &operation["response"];
    assert_eq!(project["name"], "projects/my-app");
    assert_eq!(project["status"]["display_name"], "My app");
    assert_eq!(project["status"]["pg_version"], 16);
    assert_eq!(project["status"]["owner"], "alice@example.com");
    assert!(project["uid"].is_string() && project["create_time"].is_string());
    assert_eq!(polled_status, StatusCode::OK);
    assert_eq!(polled, operation);
    assert_eq!(
        names(&branches, "branches"),
        ["projects/my-app/branches/production"]
    );
    assert_eq!(names(&endpoints, "endpoints"), [primary]);
    let host = endpoints["endpoints"][0]["status"]["hosts"]["host"]
        .as_str()
        .unwrap();
    assert!(
        host.starts_with("ep-") && host.ends_with(".cloud.databricks.com"),
        "{host}"
    );
    assert_eq!(credential, StatusCode::OK);
}

#[tokio::test]
async fn branches_and_endpoints_are_created_changed_and_deleted() {
    // Arrange
    let te = spawn().await;
    te.created("projects?project_id=app", json!({})).await;
    let branch = "projects/app/branches/dev";
    let endpoint = format!("{branch}/endpoints/rw");

    // Act
    let branch_op = te
        .created(
            "projects/app/branches?branch_id=dev",
            json!({"spec": {"ttl": "3600s"}}),
        )
        .await;
    let endpoint_op = te
        .created(
            &format!("{branch}/endpoints?endpoint_id=rw"),
            json!({"spec": {
                "endpoint_type": "ENDPOINT_TYPE_READ_WRITE",
                "autoscaling_limit_min_cu": 0.5,
                "autoscaling_limit_max_cu": 4
            }}),
        )
        .await;
    let minted = te.credential_status(&endpoint).await;
    let (patch_status, patched) = te
        .call(
            Method::PATCH,
            &format!("{endpoint}?update_mask=spec.autoscaling_limit_max_cu"),
            Some(json!({"spec": {"autoscaling_limit_max_cu": 8}})),
        )
        .await;
    let (delete_endpoint, deleted_endpoint) = te.call(Method::DELETE, &endpoint, None).await;
    let after_endpoint_delete = te.credential_status(&endpoint).await;
    let (delete_branch, _) = te.call(Method::DELETE, branch, None).await;
    let (_, live) = te.pg_get("projects/app/branches").await;
    let (_, with_deleted) = te.pg_get("projects/app/branches?show_deleted=true").await;
    let (soft_get, soft) = te.pg_get(branch).await;
    let (purge, _) = te
        .call(Method::DELETE, &format!("{branch}?purge=true"), None)
        .await;
    let (purged_get, _) = te.pg_get(branch).await;

    // Assert
    let created_branch = &branch_op["response"];
    assert_eq!(created_branch["name"], branch);
    assert_eq!(created_branch["status"]["default"], false);
    assert_eq!(
        created_branch["status"]["source_branch"],
        "projects/app/branches/production"
    );
    assert!(created_branch["status"]["expire_time"].is_string());
    assert_eq!(
        endpoint_op["metadata"]["@type"],
        "type.googleapis.com/databricks.postgres.v1.EndpointOperationMetadata"
    );
    assert_eq!(
        endpoint_op["response"]["status"]["autoscaling_limit_min_cu"],
        0.5
    );
    assert_eq!(minted, StatusCode::OK);
    assert_eq!(patch_status, StatusCode::OK, "{patched}");
    assert_eq!(
        patched["response"]["status"]["autoscaling_limit_max_cu"],
        8.0
    );
    assert_eq!(delete_endpoint, StatusCode::OK);
    assert_eq!(
        deleted_endpoint["response"]["@type"],
        "type.googleapis.com/google.protobuf.Empty"
    );
    assert_eq!(after_endpoint_delete, StatusCode::NOT_FOUND);
    assert_eq!(delete_branch, StatusCode::OK);
    assert_eq!(
        names(&live, "branches"),
        ["projects/app/branches/production"]
    );
    assert_eq!(names(&with_deleted, "branches").len(), 2);
    assert_eq!(soft_get, StatusCode::OK);
    assert_eq!(soft["status"]["current_state"], "DELETED");
    assert_eq!(purge, StatusCode::OK);
    assert_eq!(purged_get, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn projects_are_patched_and_deleted_softly_or_for_good() {
    // Arrange
    let te = spawn().await;
    te.created("projects?project_id=gone", json!({})).await;

    // Act
    let (patch_status, patched) = te
        .call(
            Method::PATCH,
            "projects/gone?update_mask=spec.display_name",
            Some(json!({"spec": {"display_name": "Renamed"}})),
        )
        .await;
    let (delete_status, _) = te.call(Method::DELETE, "projects/gone", None).await;
    let (_, listed) = te.pg_get("projects").await;
    let (_, listed_deleted) = te.pg_get("projects?show_deleted=true").await;
    let (children, _) = te.pg_get("projects/gone/branches").await;
    let credential = te
        .credential_status("projects/gone/branches/production/endpoints/primary")
        .await;
    let (again, again_body) = te.pg_post("projects?project_id=gone", json!({})).await;
    let (purge, _) = te
        .call(Method::DELETE, "projects/gone?purge=true", None)
        .await;
    let (recreate, _) = te.pg_post("projects?project_id=gone", json!({})).await;

    // Assert
    assert_eq!(patch_status, StatusCode::OK, "{patched}");
    assert_eq!(patched["response"]["status"]["display_name"], "Renamed");
    assert_eq!(delete_status, StatusCode::OK);
    assert_eq!(names(&listed, "projects"), ["projects/dev"]);
    assert_eq!(names(&listed_deleted, "projects").len(), 2);
    assert_eq!(children, StatusCode::NOT_FOUND);
    assert_eq!(credential, StatusCode::NOT_FOUND);
    assert_eq!(again, StatusCode::CONFLICT);
    assert_eq!(again_body["error_code"], "ALREADY_EXISTS");
    assert_eq!(purge, StatusCode::OK);
    assert_eq!(recreate, StatusCode::OK);
}

#[tokio::test]
async fn lists_are_paged() {
    // Arrange
    let te = spawn().await;
    for id in ["a", "b", "c"] {
        te.created(&format!("projects?project_id={id}"), json!({}))
            .await;
    }

    // Act
    let (_, first) = te.pg_get("projects?page_size=2").await;
    let token = first["next_page_token"].as_str().expect("a next page");
    let (_, second) = te
        .pg_get(&format!("projects?page_size=2&page_token={token}"))
        .await;
    let (bad, _) = te.pg_get("projects?page_token=garbage").await;

    // Assert
    assert_eq!(names(&first, "projects"), ["projects/dev", "projects/a"]);
    assert_eq!(names(&second, "projects"), ["projects/b", "projects/c"]);
    assert!(second.get("next_page_token").is_none());
    assert_eq!(bad, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn bad_requests_are_refused_with_the_real_error_codes() {
    // Arrange
    let te = spawn().await;
    let rw = json!({"spec": {"endpoint_type": "ENDPOINT_TYPE_READ_WRITE"}});
    let ro = |min: f64, max: f64| {
        json!({"spec": {
            "endpoint_type": "ENDPOINT_TYPE_READ_ONLY",
            "autoscaling_limit_min_cu": min,
            "autoscaling_limit_max_cu": max
        }})
    };
    let branch = "projects/dev/branches/production";

    // Act
    let cases = [
        ("missing id", te.pg_post("projects", json!({})).await),
        (
            "upper case",
            te.pg_post("projects?project_id=Bad", json!({})).await,
        ),
        (
            "digit first",
            te.pg_post("projects?project_id=1x", json!({})).await,
        ),
        (
            "64 chars",
            te.pg_post(
                &format!("projects?project_id={}", "a".repeat(64)),
                json!({}),
            )
            .await,
        ),
        (
            "duplicate project",
            te.pg_post("projects?project_id=dev", json!({})).await,
        ),
        (
            "pg_version",
            te.pg_post("projects?project_id=x", json!({"spec": {"pg_version": 9}}))
                .await,
        ),
        (
            "unknown project",
            te.pg_post("projects/nope/branches?branch_id=b", json!({}))
                .await,
        ),
        (
            "duplicate branch",
            te.pg_post("projects/dev/branches?branch_id=production", json!({}))
                .await,
        ),
        (
            "unknown source",
            te.pg_post(
                "projects/dev/branches?branch_id=b",
                json!({"spec": {"source_branch": "projects/dev/branches/nope"}}),
            )
            .await,
        ),
        (
            "two expirations",
            te.pg_post(
                "projects/dev/branches?branch_id=b",
                json!({"spec": {"ttl": "60s", "no_expiry": true}}),
            )
            .await,
        ),
        (
            "unknown branch",
            te.pg_post(
                "projects/dev/branches/nope/endpoints?endpoint_id=e",
                rw.clone(),
            )
            .await,
        ),
        (
            "no endpoint_type",
            te.pg_post(
                &format!("{branch}/endpoints?endpoint_id=e"),
                json!({"spec": {}}),
            )
            .await,
        ),
        (
            "min below 0.5",
            te.pg_post(&format!("{branch}/endpoints?endpoint_id=e"), ro(0.25, 1.0))
                .await,
        ),
        (
            "max above 64",
            te.pg_post(&format!("{branch}/endpoints?endpoint_id=e"), ro(1.0, 65.0))
                .await,
        ),
        (
            "min above max",
            te.pg_post(&format!("{branch}/endpoints?endpoint_id=e"), ro(4.0, 2.0))
                .await,
        ),
        (
            "second read-write",
            te.pg_post(&format!("{branch}/endpoints?endpoint_id=e"), rw.clone())
                .await,
        ),
        (
            "duplicate endpoint",
            te.pg_post(
                &format!("{branch}/endpoints?endpoint_id=primary"),
                rw.clone(),
            )
            .await,
        ),
        (
            "unknown mask path",
            te.call(
                Method::PATCH,
                &format!("{branch}/endpoints/primary?update_mask=spec.endpoint_type"),
                Some(rw.clone()),
            )
            .await,
        ),
        (
            "masked field missing",
            te.call(
                Method::PATCH,
                &format!("{branch}/endpoints/primary?update_mask=spec.disabled"),
                Some(json!({"spec": {}})),
            )
            .await,
        ),
        (
            "root branch delete",
            te.call(Method::DELETE, branch, None).await,
        ),
        (
            "primary delete",
            te.call(Method::DELETE, &format!("{branch}/endpoints/primary"), None)
                .await,
        ),
        (
            "unknown endpoint",
            te.pg_get(&format!("{branch}/endpoints/nope")).await,
        ),
        (
            "unknown operation",
            te.pg_get("projects/dev/operations/nope").await,
        ),
        ("unknown collection", te.pg_get("projects/dev/things").await),
    ];

    // Assert
    let expected = [
        ("missing id", 400, "INVALID_PARAMETER_VALUE"),
        ("upper case", 400, "INVALID_PARAMETER_VALUE"),
        ("digit first", 400, "INVALID_PARAMETER_VALUE"),
        ("64 chars", 400, "INVALID_PARAMETER_VALUE"),
        ("duplicate project", 409, "ALREADY_EXISTS"),
        ("pg_version", 400, "INVALID_PARAMETER_VALUE"),
        ("unknown project", 404, "NOT_FOUND"),
        ("duplicate branch", 409, "ALREADY_EXISTS"),
        ("unknown source", 404, "NOT_FOUND"),
        ("two expirations", 400, "INVALID_PARAMETER_VALUE"),
        ("unknown branch", 404, "NOT_FOUND"),
        ("no endpoint_type", 400, "INVALID_PARAMETER_VALUE"),
        ("min below 0.5", 400, "INVALID_PARAMETER_VALUE"),
        ("max above 64", 400, "INVALID_PARAMETER_VALUE"),
        ("min above max", 400, "INVALID_PARAMETER_VALUE"),
        ("second read-write", 400, "INVALID_PARAMETER_VALUE"),
        ("duplicate endpoint", 409, "ALREADY_EXISTS"),
        ("unknown mask path", 400, "INVALID_PARAMETER_VALUE"),
        ("masked field missing", 400, "INVALID_PARAMETER_VALUE"),
        ("root branch delete", 400, "BAD_REQUEST"),
        ("primary delete", 400, "BAD_REQUEST"),
        ("unknown endpoint", 404, "NOT_FOUND"),
        ("unknown operation", 404, "NOT_FOUND"),
        ("unknown collection", 404, "ENDPOINT_NOT_FOUND"),
    ];
    for ((case, (status, body)), (expected_case, code, error_code)) in cases.iter().zip(expected) {
        assert_eq!(*case, expected_case);
        assert_eq!(status.as_u16(), code, "{case}: {body}");
        assert_eq!(body["error_code"], error_code, "{case}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{case}"
        );
    }
}

#[tokio::test]
async fn operations_finish_after_the_configured_delay() {
    // Arrange
    let te = spawn().await;
    te.created("projects?project_id=slow", json!({})).await;
    te.handle
        .update_settings(|s| s.postgres_operation_ms = 300)
        .unwrap();

    // Act
    let (_, pending) = te
        .pg_post("projects/slow/branches?branch_id=next", json!({}))
        .await;
    let (_, branch_during) = te.pg_get("projects/slow/branches/next").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, finished) = te.pg_get(pending["name"].as_str().unwrap()).await;
    let (_, branch_after) = te.pg_get("projects/slow/branches/next").await;

    // Assert
    assert_eq!(pending["done"], false, "{pending}");
    assert!(pending.get("response").is_none(), "{pending}");
    assert_eq!(branch_during["status"]["current_state"], "INIT");
    assert_eq!(branch_during["status"]["pending_state"], "READY");
    assert_eq!(finished["done"], true);
    assert_eq!(finished["response"]["status"]["current_state"], "READY");
    assert_eq!(branch_after["status"]["current_state"], "READY");
}

#[tokio::test]
async fn the_endpoint_cap_is_a_clear_error_and_reset_forgets_created_projects() {
    // Arrange
    let te = spawn().await;
    let branch = "projects/dev/branches/production";
    let read_only = json!({"spec": {"endpoint_type": "ENDPOINT_TYPE_READ_ONLY"}});
    // The fixture's primary is the first of ten.
    for i in 1..10 {
        te.created(
            &format!("{branch}/endpoints?endpoint_id=ro-{i}"),
            read_only.clone(),
        )
        .await;
    }

    // Act
    let (past_cap, body) = te
        .pg_post(&format!("{branch}/endpoints?endpoint_id=ro-10"), read_only)
        .await;
    te.handle.reset().await;
    let (_, after_reset) = te.pg_get(&format!("{branch}/endpoints")).await;

    // Assert
    assert_eq!(past_cap, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_code"], "RESOURCE_LIMIT_EXCEEDED");
    assert!(
        body["message"].as_str().unwrap().contains("10 endpoints"),
        "{body}"
    );
    assert_eq!(names(&after_reset, "endpoints").len(), 1);
}
