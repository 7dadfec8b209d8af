//! Discovery, OAuth M2M, Bearer authentication and SCIM Me.

use std::time::Duration;

use dbapp_emulator::ControlError;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{ADMIN, ALICE, BOB, send, spawn};

#[tokio::test]
async fn host_metadata_and_discovery_point_at_the_token_endpoint() {
    // Arrange
    let te = spawn().await;

    // Act
    let (status, metadata) = send(te.http.get(te.url("/.well-known/databricks-config"))).await;
    let discovery_url = format!(
        "{}/.well-known/oauth-authorization-server",
        metadata["oidc_endpoint"].as_str().unwrap()
    );
    let (_, discovery) = send(te.http.get(discovery_url)).await;

    // Assert
    assert_eq!(status, StatusCode::OK);
    assert_eq!(metadata["host_type"], "WORKSPACE_HOST");
    assert_eq!(metadata["workspace_id"], "1234567890123456");
    assert_eq!(discovery["token_endpoint"], te.url("/oidc/v1/token"));
}

async fn client_credentials(
    te: &crate::support::TestEmulator,
    id: &str,
    secret: &str,
) -> (StatusCode, Value) {
    send(
        te.http
            .post(te.url("/oidc/v1/token"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials"), ("scope", "all-apis")]),
    )
    .await
}

#[tokio::test]
async fn m2m_token_authenticates_as_the_service_principal() {
    // Arrange
    let te = spawn().await;

    // Act
    let (status, token) = client_credentials(&te, "dbapp-sp", "dev-secret").await;
    let access_token = token["access_token"].as_str().unwrap();
    let (me_status, me) = te.get("/api/2.0/preview/scim/v2/Me", access_token).await;

    // Assert
    assert_eq!(status, StatusCode::OK);
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["expires_in"], 3600);
    assert_eq!(token["scope"], "all-apis");
    assert_eq!(me_status, StatusCode::OK);
    assert_eq!(me["userName"], "dbapp-sp");
    assert_eq!(me["applicationId"], "dbapp-sp");
}

#[tokio::test]
async fn m2m_refuses_wrong_secrets_and_grants_with_oauth_errors() {
    // Arrange
    let te = spawn().await;

    // Act
    let (wrong_status, wrong) = client_credentials(&te, "dbapp-sp", "nope").await;
    let (grant_status, grant) = send(
        te.http
            .post(te.url("/oidc/v1/token"))
            .basic_auth("dbapp-sp", Some("dev-secret"))
            .form(&[("grant_type", "password")]),
    )
    .await;

    // Assert
    assert_eq!(wrong_status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong["error"], "invalid_client");
    assert_eq!(grant_status, StatusCode::BAD_REQUEST);
    assert_eq!(grant["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn m2m_tokens_expire_after_the_configured_ttl() {
    // Arrange
    let te = spawn().await;
    te.handle
        .update_settings(|s| s.oauth_token_ttl_secs = 0)
        .expect("valid settings");

    // Act
    let (_, token) = client_credentials(&te, "dbapp-sp", "dev-secret").await;
    let (status, body) = te
        .get(
            "/api/2.0/preview/scim/v2/Me",
            token["access_token"].as_str().unwrap(),
        )
        .await;

    // Assert
    assert_eq!(token["expires_in"], 0);
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        json!({"error_code": 403, "message": "JWT has expired"})
    );
}

#[tokio::test]
async fn scim_me_returns_each_user_with_groups_and_org_id() {
    // Arrange
    let te = spawn().await;

    // Act
    let response = te
        .request(Method::GET, "/api/2.0/preview/scim/v2/Me", ADMIN)
        .send()
        .await
        .unwrap();
    let org_id = response.headers()["x-databricks-org-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let admin: Value = response.json().await.unwrap();
    let (_, alice) = te.get("/api/2.0/preview/scim/v2/Me", ALICE).await;
    let (_, bob) = te.get("/api/2.0/preview/scim/v2/Me", BOB).await;

    // Assert
    assert_eq!(org_id, "1234567890123456");
    assert_eq!(admin["userName"], "admin@example.com");
    let groups: Vec<&str> = admin["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["display"].as_str().unwrap())
        .collect();
    assert!(groups.contains(&"admins"));
    assert_eq!(alice["displayName"], "Alice Example");
    assert_eq!(alice["emails"][0]["value"], "alice@example.com");
    assert_eq!(bob["userName"], "bob@example.com");
    assert_ne!(alice["id"], bob["id"]);
}

#[tokio::test]
async fn missing_credentials_get_401_and_bad_tokens_get_403_with_integer_code() {
    // Arrange
    let te = spawn().await;

    // Act
    let (missing, missing_body) = send(te.http.get(te.url("/api/2.0/preview/scim/v2/Me"))).await;
    let (basic, _) = send(
        te.http
            .get(te.url("/api/2.0/preview/scim/v2/Me"))
            .basic_auth("alice", Some("pw")),
    )
    .await;
    let response = te
        .request(Method::GET, "/api/2.0/preview/scim/v2/Me", "not-a-token")
        .send()
        .await
        .unwrap();
    let reason = response.headers()["x-databricks-reason-phrase"]
        .to_str()
        .unwrap()
        .to_owned();
    let unknown_status = response.status();
    let unknown: Value = response.json().await.unwrap();

    // Assert
    assert_eq!(missing, StatusCode::UNAUTHORIZED);
    assert_eq!(missing_body["error_code"], "UNAUTHENTICATED");
    assert_eq!(basic, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown_status, StatusCode::FORBIDDEN);
    assert_eq!(
        unknown,
        json!({"error_code": 403, "message": "Invalid access token."})
    );
    assert_eq!(reason, "Invalid access token.");
}

#[tokio::test]
async fn expired_and_revoked_tokens_are_refused_until_reset() {
    // Arrange
    let te = spawn().await;
    let short_lived = te
        .handle
        .mint_token("bob@example.com", Duration::from_secs(3600))
        .expect("bob exists");

    // Act
    let (before, _) = te.get("/api/2.0/preview/scim/v2/Me", &short_lived).await;
    te.handle.expire_token(&short_lived).await.expect("expired");
    te.handle.revoke_token(ALICE).await.expect("revoked");
    let (expired, expired_body) = te.get("/api/2.0/preview/scim/v2/Me", &short_lived).await;
    let (revoked, revoked_body) = te.get("/api/2.0/preview/scim/v2/Me", ALICE).await;
    te.handle.reset().await;
    let (after_reset, _) = te.get("/api/2.0/preview/scim/v2/Me", ALICE).await;

    // Assert
    assert_eq!(before, StatusCode::OK);
    assert_eq!(expired, StatusCode::FORBIDDEN);
    assert_eq!(expired_body["message"], "JWT has expired");
    assert_eq!(revoked, StatusCode::FORBIDDEN);
    assert_eq!(revoked_body["message"], "Invalid access token.");
    assert_eq!(after_reset, StatusCode::OK);
}

#[tokio::test]
async fn minting_for_an_unknown_principal_is_refused() {
    let te = spawn().await;
    let refused = te
        .handle
        .mint_token("mallory@example.com", Duration::from_secs(3600));
    assert!(
        matches!(&refused, Err(ControlError::UnknownPrincipal(name)) if name == "mallory@example.com"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn unknown_apis_answer_with_a_databricks_error_body() {
    let te = spawn().await;
    let (status, body) = te.get("/api/2.0/no/such/thing", ALICE).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error_code"], "ENDPOINT_NOT_FOUND");
}

#[tokio::test]
async fn inactive_users_cannot_authenticate() {
    // Arrange
    let te = crate::support::spawn_with_fixture(|f| f.users[1].active = false).await;

    // Act
    let (status, body) = te.get("/api/2.0/preview/scim/v2/Me", BOB).await;

    // Assert
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["message"], "Invalid access token.");
}

#[tokio::test]
async fn a_downscoped_token_reaches_only_the_apis_its_scopes_cover() {
    // Arrange: a token limited as the Apps proxy limits X-Forwarded-Access-Token.
    let te = spawn().await;
    let (status, minted) = send(te.http.post(te.url("/_emulator/tokens")).json(&json!({
        "principal": "alice@example.com",
        "scopes": ["iam.current-user:read", "dashboards.genie"],
    })))
    .await;
    assert_eq!(status, StatusCode::OK, "{minted}");
    let token = minted["token"].as_str().unwrap();

    // Act
    let (me, _) = te.get("/api/2.0/preview/scim/v2/Me", token).await;
    let (genie, _) = te.get("/api/2.0/genie/spaces", token).await;
    let (catalogs, refusal) = te.get("/api/2.1/unity-catalog/catalogs", token).await;
    let (sql, sql_refusal) = te.get("/api/2.0/sql/warehouses", token).await;

    // Assert: the deprecated alias counts as `genie`; the rest is refused with the real text.
    assert_eq!(me, StatusCode::OK);
    assert_eq!(genie, StatusCode::OK);
    assert_eq!(catalogs, StatusCode::FORBIDDEN);
    assert_eq!(refusal["error_code"], "PERMISSION_DENIED");
    assert_eq!(
        refusal["message"],
        "Provided OAuth token does not have required scopes: catalog.catalogs:read"
    );
    assert_eq!(sql, StatusCode::FORBIDDEN);
    assert_eq!(
        sql_refusal["message"],
        "Provided OAuth token does not have required scopes: sql"
    );
}
