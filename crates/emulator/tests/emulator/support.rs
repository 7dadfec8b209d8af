//! Shared setup: start an emulator, and a small client for its workspace APIs. Tests steer the
//! emulator through the typed control methods of its [`EmulatorHandle`].

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
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

    /// Uploads a tiny app (`app.yaml` and `app.py`) to the workspace directory `dir` as alice,
    /// creating it, as a deploy does before it names `dir` as the source code path.
    pub(crate) async fn upload_app(&self, dir: &str) {
        let (status, body) = self
            .post("/api/2.0/workspace/mkdirs", ALICE, json!({"path": dir}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        for (name, content) in [
            ("app.yaml", "command: [python, app.py]\n"),
            ("app.py", "print('hello')\n"),
        ] {
            let import = json!({"path": format!("{dir}/{name}"), "format": "AUTO",
                "overwrite": true, "content": STANDARD.encode(content)});
            let (status, body) = self.post("/api/2.0/workspace/import", ALICE, import).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
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
