//! Shared setup: start an emulator, and a small typed client for its APIs and control API.

use dbapp_emulator::{EmulatorConfig, EmulatorHandle, Fixture};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

pub(crate) const ALICE: &str = "dev-token-alice";
pub(crate) const BOB: &str = "dev-token-bob";
pub(crate) const ADMIN: &str = "dev-token-admin";

/// A running emulator and a client for it.
pub(crate) struct TestEmulator {
    pub(crate) handle: EmulatorHandle,
    pub(crate) http: reqwest::Client,
}

/// Starts an emulator with the default fixture.
pub(crate) async fn spawn() -> TestEmulator {
    spawn_with(EmulatorConfig::default()).await
}

/// Starts an emulator with a given configuration.
pub(crate) async fn spawn_with(config: EmulatorConfig) -> TestEmulator {
    let handle = dbapp_emulator::start_local(config)
        .await
        .expect("emulator starts");
    TestEmulator {
        handle,
        http: reqwest::Client::new(),
    }
}

/// Starts an emulator with the default fixture changed by `edit`.
pub(crate) async fn spawn_with_fixture(edit: impl FnOnce(&mut Fixture)) -> TestEmulator {
    let mut fixture = Fixture::default();
    edit(&mut fixture);
    spawn_with(EmulatorConfig {
        fixture,
        ..EmulatorConfig::default()
    })
    .await
}

impl TestEmulator {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.handle.base_url())
    }

    /// A request with `Authorization: Bearer <token>`.
    pub(crate) fn request(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(token)
    }

    /// GET as `token`, returning status and JSON body (`Value::Null` for an empty body).
    pub(crate) async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        send(self.request(Method::GET, path, token)).await
    }

    /// POST a JSON body as `token`.
    pub(crate) async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        send(self.request(Method::POST, path, token).json(&body)).await
    }

    /// POST to the control API (no token).
    pub(crate) async fn control(&self, path: &str, body: Value) -> (StatusCode, Value) {
        send(
            self.http
                .post(self.url(&format!("/_emulator{path}")))
                .json(&body),
        )
        .await
    }

    /// Adds a fault rule and returns its id.
    pub(crate) async fn inject(&self, rule: Value) -> u64 {
        let (status, body) = self.control("/faults", rule).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_u64().expect("fault id")
    }

    /// Patches the run-time settings.
    pub(crate) async fn configure(&self, patch: Value) {
        let response = self
            .http
            .put(self.url("/_emulator/config"))
            .json(&patch)
            .send()
            .await
            .expect("config");
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{}",
            response.text().await.unwrap()
        );
    }

    /// The request log, optionally only paths starting with `prefix`.
    pub(crate) async fn requests(&self, prefix: &str) -> Vec<Value> {
        let url = self.url(&format!("/_emulator/requests?path_prefix={prefix}"));
        let body: Value = self
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["requests"].as_array().cloned().unwrap_or_default()
    }

    /// Mints a JWT-shaped token for a principal through the control API.
    pub(crate) async fn mint(&self, principal: &str, ttl_secs: i64) -> String {
        let (status, body) = self
            .control(
                "/tokens",
                json!({"principal": principal, "ttl_secs": ttl_secs}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }
}

/// Sends a request and decodes the answer as JSON (or a JSON string for non-JSON bodies).
pub(crate) async fn send(request: RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let text = response.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}
