//! SCIM Me as a user and as the app.

use dbapp_databricks::{AuthType, CorrelationId};

use crate::support::{TestWorkspace, user};

#[tokio::test]
async fn me_as_user_returns_the_users_identity_and_workspace_id() {
    // Arrange
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    let alice = user("dev-token-alice");

    // Act
    let me = client.as_user(&alice).me().await.unwrap();

    // Assert
    assert_eq!(me.user_name, "alice@example.com");
    assert_eq!(me.email(), Some("alice@example.com"));
    assert!(!me.is_service_principal());
    assert!(me.workspace_id.is_some());
    let admin = client.as_user(&user("dev-token-admin")).me().await.unwrap();
    assert!(admin.in_group("admins"));
}

#[tokio::test]
async fn me_as_app_is_the_service_principal() {
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    let me = client.as_app().me().await.unwrap();
    assert_eq!(me.user_name, "dbapp-sp");
    assert!(me.is_service_principal());
    assert_eq!(client.as_app().auth_type(), AuthType::OAuthM2m);
}

#[tokio::test]
async fn user_view_never_uses_the_app_identity() {
    // Arrange: the app's secret is wrong, so any use of the app identity would fail.
    let workspace = TestWorkspace::start().await;
    let settings = dbapp_databricks::ConfigSettings::new(workspace.base_url(), AuthType::OAuthM2m)
        .client_credentials("dbapp-sp", dbapp_databricks::SecretString::from("wrong"));
    let client = workspace.client_with(settings);
    let bob = user("dev-token-bob");

    // Act
    let view = client.as_user(&bob);
    let me = view.me().await.unwrap();

    // Assert
    assert_eq!(me.user_name, "bob@example.com");
    assert_eq!(view.auth_type(), AuthType::Pat);
    assert_eq!(workspace.emulator.requests("/oidc").len(), 0);
    let logged = workspace.emulator.requests("/api/2.0/preview/scim/v2/Me");
    assert_eq!(logged[0].principal.as_deref(), Some("bob@example.com"));
}

#[tokio::test]
async fn correlation_id_and_user_agent_are_sent() {
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    let alice = user("dev-token-alice");
    let id = CorrelationId::parse("req-42.a:b").unwrap();

    client
        .as_user(&alice)
        .with_correlation_id(id)
        .me()
        .await
        .unwrap();
    client.as_user(&alice).me().await.unwrap();

    let logged = workspace.emulator.requests("/api/2.0/preview/scim/v2/Me");
    assert_eq!(logged[0].correlation_id.as_deref(), Some("req-42.a:b"));
    // No state is shared between calls: the next call has no correlation id.
    assert!(logged[1].correlation_id.is_none());
    let agent = logged[0].user_agent.as_deref().unwrap();
    assert!(
        agent.starts_with("dbapp/") && agent.ends_with("auth/pat"),
        "{agent}"
    );
}

#[tokio::test]
async fn secrets_never_appear_in_debug_of_client_or_views() {
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    client.as_app().me().await.unwrap();
    let alice = user("dev-token-alice");
    let text = format!(
        "{client:?} {:?} {:?}",
        client.as_user(&alice),
        client.as_app()
    );
    assert!(!text.contains("dev-secret"), "{text}");
    assert!(!text.contains("dev-token-alice"), "{text}");
    let app_token = client.app_credentials().token().await.unwrap();
    assert!(!text.contains(secrecy::ExposeSecret::expose_secret(&app_token)));
}
