//! Lakebase control plane: Provisioned and Autoscaling credentials, instance and endpoint get.

use chrono::Utc;
use dbapp_databricks::ErrorKind;
use secrecy::ExposeSecret;

use crate::support::TestWorkspace;

const ENDPOINT: &str = "projects/dev/branches/production/endpoints/primary";

#[tokio::test]
async fn provisioned_credential_is_minted_for_the_app() {
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    let credential = client
        .as_app()
        .generate_database_credential(&["dev-lakebase"])
        .await
        .unwrap();
    assert_eq!(credential.token.expose_secret().split('.').count(), 3);
    let life = credential.expires_at - Utc::now();
    assert!(
        life > chrono::Duration::minutes(55) && life <= chrono::Duration::minutes(61),
        "{life}"
    );
    assert!(!format!("{credential:?}").contains(credential.token.expose_secret()));
}

#[tokio::test]
async fn autoscaling_credential_honours_ttl() {
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    let credential = client
        .as_app()
        .generate_postgres_credential(ENDPOINT, Some(600))
        .await
        .unwrap();
    let life = credential.expires_at - Utc::now();
    assert!(
        life > chrono::Duration::minutes(9) && life <= chrono::Duration::minutes(11),
        "{life}"
    );
    let too_short = client
        .as_app()
        .generate_postgres_credential(ENDPOINT, Some(10))
        .await
        .unwrap_err();
    assert_eq!(too_short.kind(), ErrorKind::BadRequest);
}

#[tokio::test]
async fn unknown_instance_and_endpoint_are_not_found() {
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    let error = client
        .as_app()
        .generate_database_credential(&["nope"])
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    let error = client
        .as_app()
        .get_postgres_endpoint("projects/x/branches/y/endpoints/z")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    let malformed = client
        .as_app()
        .get_postgres_endpoint("primary")
        .await
        .unwrap_err();
    assert_eq!(malformed.kind(), ErrorKind::BadRequest);
}

#[tokio::test]
async fn instance_and_endpoint_report_their_hosts() {
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    let instance = client
        .as_app()
        .get_database_instance("dev-lakebase")
        .await
        .unwrap();
    assert_eq!(instance.state.as_deref(), Some("AVAILABLE"));
    assert!(instance.read_write_dns.is_some());
    let endpoint = client
        .as_app()
        .get_postgres_endpoint(ENDPOINT)
        .await
        .unwrap();
    assert_eq!(endpoint.name, ENDPOINT);
    assert!(endpoint.host().is_some_and(|h| h.starts_with("ep-primary")));
}

#[tokio::test]
async fn a_branch_stands_for_its_read_write_endpoint() {
    // Arrange: a second branch with a read-only endpoint only.
    let workspace = TestWorkspace::start().await;
    let http = reqwest::Client::new();
    let create = |path: String, body: serde_json::Value| {
        http.post(format!("{}{path}", workspace.base_url()))
            .bearer_auth("dev-token-alice")
            .json(&body)
            .send()
    };
    let branch = create(
        "/api/2.0/postgres/projects/dev/branches?branch_id=readers".to_owned(),
        serde_json::json!({"spec": {"source_branch": "projects/dev/branches/production", "no_expiry": true}}),
    )
    .await
    .unwrap();
    assert!(
        branch.status().is_success(),
        "{}",
        branch.text().await.unwrap()
    );
    let endpoint = create(
        "/api/2.0/postgres/projects/dev/branches/readers/endpoints?endpoint_id=ro".to_owned(),
        serde_json::json!({"spec": {"endpoint_type": "ENDPOINT_TYPE_READ_ONLY"}}),
    )
    .await
    .unwrap();
    assert!(
        endpoint.status().is_success(),
        "{}",
        endpoint.text().await.unwrap()
    );
    let client = workspace.client();
    let app = client.as_app();

    // Act
    let listed = app
        .list_postgres_endpoints("projects/dev/branches/production")
        .await
        .unwrap();
    let found = app
        .find_postgres_endpoint("projects/dev/branches/production")
        .await
        .unwrap();
    let as_is = app.find_postgres_endpoint(ENDPOINT).await.unwrap();
    let read_only = app
        .find_postgres_endpoint("projects/dev/branches/readers")
        .await
        .unwrap_err();
    let malformed = app
        .list_postgres_endpoints("projects/dev")
        .await
        .unwrap_err();

    // Assert
    assert_eq!(listed.len(), 1);
    assert!(listed[0].is_read_write());
    assert_eq!(found.name, ENDPOINT);
    assert!(found.host().is_some_and(|h| h.starts_with("ep-primary")));
    assert_eq!(as_is, found);
    assert_eq!(read_only.kind(), ErrorKind::NotFound);
    assert!(read_only.to_string().contains("no read-write endpoint"));
    assert_eq!(malformed.kind(), ErrorKind::BadRequest);
}
