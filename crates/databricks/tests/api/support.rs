//! Shared setup: an emulator per test (steered through its handle's typed control methods) and
//! clients built against it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dbapp_databricks::{
    Attempt, AttemptObserver, AuthType, Client, Config, ConfigSettings, RetryPolicy, SecretString,
    UserToken,
};
use dbapp_emulator::{EmulatorConfig, EmulatorHandle, LoggedRequest};

pub(crate) struct TestWorkspace {
    /// The emulator; tests steer it with its typed control methods.
    pub(crate) emulator: EmulatorHandle,
}

impl TestWorkspace {
    pub(crate) async fn start() -> Self {
        let emulator = dbapp_emulator::start_local(EmulatorConfig::default())
            .await
            .expect("emulator starts");
        Self { emulator }
    }

    pub(crate) fn base_url(&self) -> &str {
        self.emulator.base_url()
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
pub(crate) fn gaps_ms(requests: &[LoggedRequest]) -> Vec<i64> {
    requests
        .windows(2)
        .map(|w| (w[1].timestamp - w[0].timestamp).num_milliseconds())
        .collect()
}
