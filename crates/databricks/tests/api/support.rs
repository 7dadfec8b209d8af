//! Shared setup: an emulator per test, its control API, and clients built against it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dbapp_databricks::{
    Attempt, AttemptObserver, AuthType, Client, Config, ConfigSettings, RetryPolicy, SecretString,
    UserToken,
};
use dbapp_emulator::{EmulatorConfig, EmulatorHandle};
use serde_json::{Value, json};

pub(crate) struct TestWorkspace {
    pub(crate) emulator: EmulatorHandle,
    control: reqwest::Client,
}

impl TestWorkspace {
    pub(crate) async fn start() -> Self {
        let emulator = dbapp_emulator::start_local(EmulatorConfig::default())
            .await
            .expect("emulator starts");
        Self {
            emulator,
            control: reqwest::Client::new(),
        }
    }

    pub(crate) fn base_url(&self) -> &str {
        self.emulator.base_url()
    }

    fn control_url(&self, path: &str) -> String {
        format!("{}/_emulator{path}", self.base_url())
    }

    /// Adds a fault rule and returns its id.
    pub(crate) async fn fault(&self, spec: Value) -> u64 {
        let response = self
            .control
            .post(self.control_url("/faults"))
            .json(&spec)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "fault {spec}: {}",
            response.status()
        );
        response.json::<Value>().await.unwrap()["id"]
            .as_u64()
            .unwrap()
    }

    /// The logged requests whose path starts with `prefix`.
    pub(crate) async fn requests(&self, prefix: &str) -> Vec<Value> {
        let body: Value = self
            .control
            .get(format!(
                "{}?path_prefix={prefix}",
                self.control_url("/requests")
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["requests"].as_array().cloned().unwrap_or_default()
    }

    pub(crate) async fn count(&self, prefix: &str) -> usize {
        self.requests(prefix).await.len()
    }

    pub(crate) async fn clear_requests(&self) {
        self.control
            .delete(self.control_url("/requests"))
            .send()
            .await
            .unwrap();
    }

    pub(crate) async fn set_config(&self, patch: Value) {
        let response = self
            .control
            .put(self.control_url("/config"))
            .json(&patch)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "config {patch}");
    }

    /// Mints a JWT-shaped user token that expires after `ttl_secs`.
    pub(crate) async fn mint_token(&self, principal: &str, ttl_secs: i64) -> String {
        let body: Value = self
            .control
            .post(self.control_url("/tokens"))
            .json(&json!({"principal": principal, "ttl_secs": ttl_secs}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["token"].as_str().unwrap().to_owned()
    }

    pub(crate) async fn expire_token(&self, token: &str) {
        let response = self
            .control
            .post(self.control_url("/tokens/expire"))
            .json(&json!({"token": token}))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }

    /// Settings for the app's service principal, as in Databricks Apps.
    pub(crate) fn m2m_settings(&self) -> ConfigSettings {
        ConfigSettings::new(self.base_url(), AuthType::OAuthM2m)
            .client_credentials("dbapp-sp", SecretString::from("dev-secret"))
    }

    /// A client whose app identity is `dbapp-sp`.
    pub(crate) fn client(&self) -> Client {
        self.client_with(self.m2m_settings())
    }

    pub(crate) fn client_with(&self, settings: ConfigSettings) -> Client {
        Client::new(Config::resolve(settings, &no_env).unwrap()).unwrap()
    }

    pub(crate) fn client_with_retry(&self, retry: RetryPolicy) -> Client {
        self.client_with(self.m2m_settings().retry(retry))
    }
}

/// An empty environment: tests never read the process environment.
pub(crate) fn no_env(_: &str) -> Option<String> {
    None
}

pub(crate) fn user(token: &str) -> UserToken {
    UserToken::parse(token).unwrap()
}

/// An observer that records every attempt.
#[derive(Default)]
pub(crate) struct Recorder {
    pub(crate) attempts: Mutex<Vec<Recorded>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) number: u32,
    pub(crate) status: Option<u16>,
    pub(crate) retry_in: Option<Duration>,
}

impl AttemptObserver for Recorder {
    fn on_attempt(&self, attempt: &Attempt<'_>) {
        self.attempts.lock().unwrap().push(Recorded {
            number: attempt.number,
            status: attempt.status,
            retry_in: attempt.retry_in,
        });
    }
}

impl Recorder {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub(crate) fn recorded(&self) -> Vec<Recorded> {
        self.attempts.lock().unwrap().clone()
    }
}

/// Milliseconds between consecutive logged requests.
pub(crate) fn gaps_ms(requests: &[Value]) -> Vec<i64> {
    let times: Vec<chrono::DateTime<chrono::Utc>> = requests
        .iter()
        .map(|r| r["timestamp"].as_str().unwrap().parse().unwrap())
        .collect();
    times
        .windows(2)
        .map(|w| (w[1] - w[0]).num_milliseconds())
        .collect()
}
