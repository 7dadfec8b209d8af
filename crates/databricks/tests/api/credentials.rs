//! Credential strategies against the emulator: OAuth M2M (discovery, single flight, refresh
//! ahead of expiry, refresh after the workspace refuses the token), the Databricks CLI through a
//! fake `databricks` executable, and the Model Serving token file.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use dbapp_databricks::credentials::CacheOptions;
use dbapp_databricks::{AuthType, Client, Config, ConfigSettings, ErrorKind, SecretString};
use dbapp_emulator::FaultRule;
use secrecy::ExposeSecret;

use crate::support::{TestWorkspace, no_env};

const TOKEN: &str = "/oidc/v1/token";
const ME: &str = "/api/2.0/preview/scim/v2/Me";

#[tokio::test]
async fn m2m_discovers_the_token_endpoint_and_sends_basic_credentials() {
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    client.as_app().me().await.unwrap();
    assert_eq!(
        workspace
            .emulator
            .requests("/.well-known/databricks-config")
            .len(),
        1
    );
    assert_eq!(
        workspace
            .emulator
            .requests("/oidc/.well-known/oauth-authorization-server")
            .len(),
        1
    );
    let tokens = workspace.emulator.requests(TOKEN);
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].status, 200);
    assert_eq!(
        workspace.emulator.requests(ME)[0].principal.as_deref(),
        Some("dbapp-sp")
    );
}

#[tokio::test]
async fn m2m_falls_back_to_oidc_discovery_without_host_metadata() {
    let workspace = TestWorkspace::start().await;
    workspace
        .emulator
        .inject_fault(FaultRule::new("/.well-known/databricks-config").status(404))
        .unwrap();
    let me = workspace.client().as_app().me().await.unwrap();
    assert_eq!(me.user_name, "dbapp-sp");
    assert_eq!(
        workspace
            .emulator
            .requests("/oidc/.well-known/oauth-authorization-server")
            .len(),
        1
    );
}

#[tokio::test]
async fn many_concurrent_callers_cause_one_token_request() {
    // Arrange
    let workspace = TestWorkspace::start().await;
    // A slow token endpoint makes every caller arrive while the fetch is in flight.
    workspace
        .emulator
        .inject_fault(
            FaultRule::new(TOKEN)
                .latency(Duration::from_millis(200))
                .times(1),
        )
        .unwrap();
    let client = workspace.client();
    let callers = 64;

    // Act
    let results = futures_util::future::join_all((0..callers).map(|_| {
        let client = client.clone();
        async move { client.as_app().me().await }
    }))
    .await;

    // Assert
    assert!(results.iter().all(Result::is_ok));
    let token_requests = workspace.emulator.requests(TOKEN).len();
    eprintln!("{callers} concurrent callers -> {token_requests} token request(s)");
    assert_eq!(token_requests, 1);
    assert_eq!(workspace.emulator.requests(ME).len(), callers);
}

#[tokio::test]
async fn m2m_refreshes_ahead_of_expiry_without_blocking_callers() {
    // Arrange: 4 s tokens; with a 1 s skew the token is stale after 2 s, expired after 3 s.
    let workspace = TestWorkspace::start().await;
    workspace
        .emulator
        .update_settings(|s| s.oauth_token_ttl_secs = 4)
        .unwrap();
    let config = Config::resolve(workspace.m2m_settings(), &no_env).unwrap();
    let options = CacheOptions::default().expiry_skew(Duration::from_secs(1));
    let client = Client::with_app_credentials(config, |c| {
        c.oauth_m2m("dbapp-sp", SecretString::from("dev-secret"), options)
    })
    .unwrap();
    client.as_app().me().await.unwrap();
    let first = client.app_credentials().token().await.unwrap();
    assert_eq!(workspace.emulator.requests(TOKEN).len(), 1);

    // Act: once stale, a call returns at once although the token endpoint now takes 1 s.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    workspace
        .emulator
        .inject_fault(
            FaultRule::new(TOKEN)
                .latency(Duration::from_millis(1000))
                .times(1),
        )
        .unwrap();
    let started = Instant::now();
    client.as_app().me().await.unwrap();
    let stale_call = started.elapsed();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let second = client.app_credentials().token().await.unwrap();

    // Assert
    eprintln!("call with a stale token took {stale_call:?} while the refresh took ~1 s");
    assert!(stale_call < Duration::from_millis(500), "{stale_call:?}");
    assert_eq!(workspace.emulator.requests(TOKEN).len(), 2);
    assert_ne!(first.expose_secret(), second.expose_secret());
    // Both calls used the service principal.
    assert!(
        workspace
            .emulator
            .requests(ME)
            .iter()
            .all(|r| r.principal.as_deref() == Some("dbapp-sp"))
    );
}

#[tokio::test]
async fn app_token_refused_by_the_workspace_is_refreshed_once() {
    // Arrange
    let workspace = TestWorkspace::start().await;
    let client = workspace.client();
    client.as_app().me().await.unwrap();
    let token = client.app_credentials().token().await.unwrap();
    workspace
        .emulator
        .expire_token(token.expose_secret())
        .await
        .unwrap();
    workspace.emulator.clear_requests();

    // Act
    let me = client.as_app().me().await.unwrap();

    // Assert: 403 "JWT has expired", one new token, one successful retry.
    assert_eq!(me.user_name, "dbapp-sp");
    let statuses: Vec<_> = workspace
        .emulator
        .requests(ME)
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [403, 200]);
    assert_eq!(workspace.emulator.requests(TOKEN).len(), 1);
}

#[tokio::test]
async fn wrong_client_secret_is_a_credentials_error_without_the_secret() {
    let workspace = TestWorkspace::start().await;
    let settings = ConfigSettings::new(workspace.base_url(), AuthType::OAuthM2m)
        .client_credentials("dbapp-sp", SecretString::from("wrong-secret-value"));
    let error = workspace
        .client_with(settings)
        .as_app()
        .me()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Credentials);
    assert_eq!(error.error_code(), Some("invalid_client"));
    let text = format!("{error} {error:?}");
    assert!(!text.contains("wrong-secret-value"), "{text}");
    assert_eq!(workspace.emulator.requests(ME).len(), 0);
}

/// Writes a fake `databricks` that logs its arguments and prints `output`, and returns an
/// environment whose PATH finds it first.
fn fake_cli(dir: &Path, output: &str, exit_code: i32) -> HashMap<String, String> {
    let script = format!(
        "#!/bin/sh\necho \"$@\" >> '{}/calls.log'\ncat <<'JSON'\n{output}\nJSON\nexit {exit_code}\n",
        dir.display()
    );
    let path = dir.join("databricks");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let search_path = format!("{}:/usr/bin:/bin", dir.display());
    HashMap::from([("PATH".to_owned(), search_path)])
}

fn cli_calls(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("calls.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn databricks_cli_token_is_used_with_the_profile_and_cached() {
    // Arrange: the CLI hands out alice's token, valid for an hour (offset and fraction kept).
    let workspace = TestWorkspace::start().await;
    let dir = tempfile::tempdir().unwrap();
    let expiry = (chrono::Utc::now() + chrono::Duration::hours(1))
        .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap())
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
    let output = format!(
        r#"{{"access_token":"dev-token-alice","token_type":"Bearer","expiry":"{expiry}"}}"#
    );
    let env = fake_cli(dir.path(), &output, 0);
    let lookup = move |name: &str| env.get(name).cloned();
    let mut settings =
        ConfigSettings::new(workspace.base_url(), AuthType::DatabricksCli).profile("dev");
    settings.config_file = Some(dir.path().join("no-such-config"));
    // A named profile must exist: write one.
    std::fs::write(
        dir.path().join("no-such-config"),
        format!("[dev]\nhost = {}\n", workspace.base_url()),
    )
    .unwrap();
    let client = Client::new(Config::resolve(settings, &lookup).unwrap()).unwrap();

    // Act
    let first = client.as_app().me().await.unwrap();
    let second = client.as_app().me().await.unwrap();

    // Assert
    assert_eq!(first.user_name, "alice@example.com");
    assert_eq!(second.user_name, "alice@example.com");
    assert_eq!(cli_calls(dir.path()), ["auth token --profile dev"]);
    let agent = workspace.emulator.requests(ME)[0]
        .user_agent
        .as_deref()
        .unwrap()
        .to_owned();
    assert!(agent.ends_with("auth/databricks-cli"), "{agent}");
}

#[tokio::test]
async fn databricks_cli_without_profile_is_asked_for_the_host() {
    let workspace = TestWorkspace::start().await;
    let dir = tempfile::tempdir().unwrap();
    let env = fake_cli(
        dir.path(),
        r#"{"access_token":"dev-token-bob","token_type":"Bearer","expiry":"2999-01-01T00:00:00Z"}"#,
        0,
    );
    let lookup = move |name: &str| env.get(name).cloned();
    let settings = ConfigSettings::new(workspace.base_url(), AuthType::DatabricksCli);
    let client = Client::new(Config::resolve(settings, &lookup).unwrap()).unwrap();
    assert_eq!(
        client.as_app().me().await.unwrap().user_name,
        "bob@example.com"
    );
    assert_eq!(
        cli_calls(dir.path()),
        [format!("auth token --host {}", workspace.base_url())]
    );
}

#[tokio::test]
async fn databricks_cli_failure_is_a_credentials_error_with_a_hint() {
    let workspace = TestWorkspace::start().await;
    let dir = tempfile::tempdir().unwrap();
    // The message goes to stdout here; write one to stderr too.
    let script =
        "#!/bin/sh\necho 'Error: databricks OAuth is not configured for this host' >&2\nexit 1\n";
    let path = dir.path().join("databricks");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let search_path = format!("{}:/usr/bin:/bin", dir.path().display());
    let lookup = move |name: &str| (name == "PATH").then(|| search_path.clone());
    let settings = ConfigSettings::new(workspace.base_url(), AuthType::DatabricksCli);
    let client = Client::new(Config::resolve(settings, &lookup).unwrap()).unwrap();
    let error = client.as_app().me().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Credentials);
    assert!(error.message().contains("databricks auth login"), "{error}");
    assert_eq!(workspace.emulator.requests(ME).len(), 0);
}

#[tokio::test]
async fn model_serving_token_file_and_host_come_from_the_environment() {
    // Arrange
    let workspace = TestWorkspace::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("model-dependencies-oauth-token"),
        r#"{"OAUTH_TOKEN":[{"oauthTokenValue":"dev-token-bob"}]}"#,
    )
    .unwrap();
    let env: HashMap<String, String> = HashMap::from([
        ("IS_IN_DB_MODEL_SERVING_ENV".to_owned(), "true".to_owned()),
        (
            "SERVING_CREDENTIALS_DIR".to_owned(),
            dir.path().display().to_string(),
        ),
        (
            "DATABRICKS_MODEL_SERVING_HOST_URL".to_owned(),
            workspace.base_url().to_owned(),
        ),
    ]);
    let lookup = move |name: &str| env.get(name).cloned();

    // Act
    let context = dbapp_databricks::Context::detect(&lookup);
    let config = Config::resolve(ConfigSettings::default(), &lookup).unwrap();
    let client = Client::new(config).unwrap();
    let me = client.as_app().me().await.unwrap();

    // Assert
    assert_eq!(context.kind(), dbapp_databricks::ContextKind::ModelServing);
    assert_eq!(client.config().auth_type(), AuthType::ModelServing);
    assert_eq!(me.user_name, "bob@example.com");
}

#[tokio::test]
async fn pat_from_the_environment_is_used() {
    let workspace = TestWorkspace::start().await;
    let env: HashMap<String, String> = HashMap::from([
        (
            "DATABRICKS_HOST".to_owned(),
            workspace.base_url().to_owned(),
        ),
        ("DATABRICKS_TOKEN".to_owned(), "dev-token-admin".to_owned()),
    ]);
    let lookup = move |name: &str| env.get(name).cloned();
    let client = Client::new(Config::resolve(ConfigSettings::default(), &lookup).unwrap()).unwrap();
    assert_eq!(
        client.as_app().me().await.unwrap().user_name,
        "admin@example.com"
    );
}

#[tokio::test]
async fn unavailable_token_endpoint_is_retried_by_the_token_request_alone() {
    // Arrange: the token endpoint always answers 503.
    let workspace = TestWorkspace::start().await;
    workspace
        .emulator
        .inject_fault(FaultRule::new(TOKEN).status(503))
        .unwrap();

    // Act
    let error = workspace.client().as_app().me().await.unwrap_err();

    // Assert: 1 + 3 token requests, not retries of retries; Me was never called.
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert_eq!(workspace.emulator.requests(TOKEN).len(), 4);
    assert_eq!(workspace.emulator.requests(ME).len(), 0);
}
