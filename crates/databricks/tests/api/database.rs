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
