//! `spawn_app()`: the real server on 127.0.0.1:0 against the emulator and a temp SQLite store.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};

use dbapp_databricks::Environment;
use dbapp_emulator::{EmulatorConfig, EmulatorHandle};
use dbapp_server::AppState;
use dbapp_server::Application;
use dbapp_server::config::{LogFormat, Settings};
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;

pub(crate) const ALICE: &str = "dev-token-alice";
pub(crate) const BOB: &str = "dev-token-bob";
pub(crate) const ADMIN: &str = "dev-token-admin";

/// Every log line any test server wrote.
pub(crate) fn captured_logs() -> String {
    let buffer = LOGS.get_or_init(Default::default).lock().unwrap();
    String::from_utf8_lossy(&buffer).into_owned()
}

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_logs() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let buffer = Arc::clone(LOGS.get_or_init(Default::default));
        let filter = tracing_subscriber::EnvFilter::new(
            "debug,hyper=info,h2=info,reqwest=info,sqlx=warn,tower=info,hyper_util=info",
        );
        dbapp_server::telemetry::init_with_writer(
            LogFormat::Json,
            filter,
            move || Capture(Arc::clone(&buffer)),
            None,
        )
        .expect("the test subscriber installs once");
    });
}

pub(crate) struct TestApp {
    pub(crate) address: String,
    pub(crate) emulator: EmulatorHandle,
    pub(crate) http: reqwest::Client,
    pub(crate) state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    pub(crate) server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: Option<TempDir>,
    pub(crate) db_path: Option<std::path::PathBuf>,
}

/// Options of [`spawn_app_with`].
pub(crate) struct Options {
    /// A SQLite store in a temporary directory; without one the server runs as in Databricks
    /// Apps with no database (`STORAGE_NOT_CONFIGURED`).
    pub(crate) store: bool,
    pub(crate) warehouse: bool,
    /// More variables for the settings loader, e.g. `("DBAPP_IDENTITY_CACHE_TTL_SECS", "1")`.
    pub(crate) env: Vec<(&'static str, &'static str)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            store: true,
            warehouse: true,
            env: Vec::new(),
        }
    }
}

pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub(crate) async fn spawn_app_with(options: Options) -> TestApp {
    let emulator = dbapp_emulator::start_local(EmulatorConfig::default())
        .await
        .expect("emulator starts");
    let dir = TempDir::new().unwrap();
    let mut vars: Vec<(&str, String)> = Vec::new();
    if options.warehouse {
        vars.push(("DATABRICKS_WAREHOUSE_ID", "dev-warehouse".to_owned()));
    }
    if options.store {
        let path = dir.path().join("dbapp.db");
        vars.push(("DBAPP_SQLITE_PATH", path.display().to_string()));
    } else {
        vars.push(("DATABRICKS_APP_NAME", "dbapp-tests".to_owned()));
    }
    vars.extend(options.env.into_iter().map(|(k, v)| (k, v.to_owned())));
    let settings = settings_for(&emulator, vars);
    start_server(emulator, settings, options.store.then_some(dir)).await
}

/// Settings as the loader reads them for a server whose app identity is the emulator's
/// service principal, plus `vars`.
pub(crate) fn settings_for(emulator: &EmulatorHandle, vars: Vec<(&str, String)>) -> Settings {
    let mut all = vec![
        ("DATABRICKS_HOST", emulator.base_url().to_owned()),
        ("DATABRICKS_CLIENT_ID", "dbapp-sp".to_owned()),
        ("DATABRICKS_CLIENT_SECRET", "dev-secret".to_owned()),
    ];
    all.extend(vars);
    Settings::load(&Environment::from_pairs(all)).expect("valid settings")
}

/// Builds the application from `settings` with [`Application::build`], exactly as `dbapp serve`
/// does, and serves it on 127.0.0.1:0.
pub(crate) async fn start_server(
    emulator: EmulatorHandle,
    settings: Settings,
    dir: Option<TempDir>,
) -> TestApp {
    init_logs();
    let app = Application::build(settings, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .expect("the application builds");
    let address = format!("http://{}", app.local_addr().unwrap());
    let state = app.state().clone();
    let (tx, rx) = oneshot::channel::<()>();
    let db_path = dir.as_ref().map(|d| d.path().join("dbapp.db"));
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    TestApp {
        address,
        emulator,
        http: reqwest::Client::new(),
        state,
        shutdown: Some(tx),
        server: Some(server),
        _dir: dir,
        db_path,
    }
}

impl TestApp {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A raw GET, for requests the typed route methods below do not make (no token, odd paths,
    /// extra headers on purpose).
    pub(crate) fn get(&self, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let request = self.http.get(self.url(path));
        match token {
            Some(token) => request.header("X-Forwarded-Access-Token", token),
            None => request,
        }
    }

    /// A raw request as `token`, for malformed bodies and unusual methods.
    pub(crate) fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .header("X-Forwarded-Access-Token", token)
    }

    /// GET as `token`, returning the body as text.
    pub(crate) async fn get_text(&self, path: &str, token: Option<&str>) -> String {
        ApiCall(self.get(path, token)).text().await
    }

    /// GET as `token`, returning status and JSON body.
    pub(crate) async fn get_json(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        ApiCall(self.get(path, token)).json().await
    }

    fn call(&self, method: reqwest::Method, path: &str, token: &str) -> ApiCall {
        ApiCall(self.request(method, path, token))
    }

    // Typed routes, named after the handlers of `shared/API.md`. Each takes the caller's token
    // (sent as `X-Forwarded-Access-Token`, as the Apps proxy does) and returns the call unsent.

    /// `GET /health` (public).
    pub(crate) fn health(&self) -> ApiCall {
        ApiCall(self.get("/health", None))
    }

    /// `GET /ready` (public).
    pub(crate) fn ready(&self) -> ApiCall {
        ApiCall(self.get("/ready", None))
    }

    /// `GET /metrics`.
    pub(crate) fn metrics(&self, token: &str) -> ApiCall {
        self.call(reqwest::Method::GET, "/metrics", token)
    }

    /// `GET /api/user/me`.
    pub(crate) fn me(&self, token: &str) -> ApiCall {
        self.call(reqwest::Method::GET, "/api/user/me", token)
    }

    /// `GET /api/user/auth/status`.
    pub(crate) fn auth_status(&self, token: &str) -> ApiCall {
        self.call(reqwest::Method::GET, "/api/user/auth/status", token)
    }

    /// `GET /api/unity-catalog/catalogs` with a query string such as `"?limit=1"` (or `""`).
    pub(crate) fn list_catalogs(&self, token: &str, query: &str) -> ApiCall {
        let path = format!("/api/unity-catalog/catalogs{query}");
        self.call(reqwest::Method::GET, &path, token)
    }

    /// `GET /api/queries`.
    pub(crate) fn list_queries(&self, token: &str) -> ApiCall {
        self.call(reqwest::Method::GET, "/api/queries", token)
    }

    /// `POST /api/queries/{name}` with `body`.
    pub(crate) fn run_query(&self, token: &str, name: &str, body: &Value) -> ApiCall {
        let call = self.call(
            reqwest::Method::POST,
            &format!("/api/queries/{name}"),
            token,
        );
        ApiCall(call.0.json(body))
    }

    /// `GET /api/queries/{name}/runs/{run_id}`.
    pub(crate) fn get_query_run(&self, token: &str, name: &str, run_id: &str) -> ApiCall {
        let path = format!("/api/queries/{name}/runs/{run_id}");
        self.call(reqwest::Method::GET, &path, token)
    }

    /// `GET /api/preferences`.
    pub(crate) fn list_preferences(&self, token: &str) -> ApiCall {
        self.call(reqwest::Method::GET, "/api/preferences", token)
    }

    /// `GET /api/preferences/{key}`.
    pub(crate) fn get_preference(&self, token: &str, key: &str) -> ApiCall {
        self.call(
            reqwest::Method::GET,
            &format!("/api/preferences/{key}"),
            token,
        )
    }

    /// `PUT /api/preferences/{key}` with `value` as the JSON body.
    pub(crate) fn put_preference(&self, token: &str, key: &str, value: &Value) -> ApiCall {
        let path = format!("/api/preferences/{key}");
        ApiCall(self.request(reqwest::Method::PUT, &path, token).json(value))
    }

    /// `DELETE /api/preferences/{key}`.
    pub(crate) fn delete_preference(&self, token: &str, key: &str) -> ApiCall {
        self.call(
            reqwest::Method::DELETE,
            &format!("/api/preferences/{key}"),
            token,
        )
    }

    /// `POST /api/v1/metrics/usage-events` with `batch` as the JSON body.
    pub(crate) fn post_usage(&self, token: &str, batch: &Value) -> ApiCall {
        let path = "/api/v1/metrics/usage-events";
        ApiCall(self.request(reqwest::Method::POST, path, token).json(batch))
    }

    /// `GET /api/v1/metrics/usage/count` with a query string (or `""`).
    pub(crate) fn usage_count(&self, token: &str, query: &str) -> ApiCall {
        let path = format!("/api/v1/metrics/usage/count{query}");
        self.call(reqwest::Method::GET, &path, token)
    }

    /// `POST /api/model-serving/endpoints/{name}/invocations` with `body` as the JSON body.
    pub(crate) fn invoke(&self, token: &str, endpoint: &str, body: &Value) -> ApiCall {
        let path = format!("/api/model-serving/endpoints/{endpoint}/invocations");
        ApiCall(self.request(reqwest::Method::POST, &path, token).json(body))
    }

    /// `POST /api/model-serving/endpoints/{name}/chat` with `body` as the JSON body.
    pub(crate) fn chat(&self, token: &str, endpoint: &str, body: &Value) -> ApiCall {
        let path = format!("/api/model-serving/endpoints/{endpoint}/chat");
        ApiCall(self.request(reqwest::Method::POST, &path, token).json(body))
    }

    /// `GET /api/model-serving/logs` with a query string (or `""`).
    pub(crate) fn list_inference_logs(&self, token: &str, query: &str) -> ApiCall {
        let path = format!("/api/model-serving/logs{query}");
        self.call(reqwest::Method::GET, &path, token)
    }

    /// `GET /api/conversations` with a query string (or `""`).
    pub(crate) fn list_conversations(&self, token: &str, query: &str) -> ApiCall {
        let path = format!("/api/conversations{query}");
        self.call(reqwest::Method::GET, &path, token)
    }

    /// `GET /api/conversations/{id}`.
    pub(crate) fn get_conversation(&self, token: &str, id: &str) -> ApiCall {
        let path = format!("/api/conversations/{id}");
        self.call(reqwest::Method::GET, &path, token)
    }

    /// `PATCH /api/conversations/{id}` with `body` as the JSON body.
    pub(crate) fn rename_conversation(&self, token: &str, id: &str, body: &Value) -> ApiCall {
        let path = format!("/api/conversations/{id}");
        ApiCall(
            self.request(reqwest::Method::PATCH, &path, token)
                .json(body),
        )
    }

    /// `DELETE /api/conversations/{id}`.
    pub(crate) fn delete_conversation(&self, token: &str, id: &str) -> ApiCall {
        let path = format!("/api/conversations/{id}");
        self.call(reqwest::Method::DELETE, &path, token)
    }

    /// Stops the server gracefully and waits for it.
    pub(crate) async fn stop(&mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.server.take() {
            Some(handle) => handle.await.unwrap(),
            None => Ok(()),
        }
    }
}

/// A request to the test app, built by a typed route method and not yet sent.
#[must_use = "a call does nothing until sent"]
pub(crate) struct ApiCall(reqwest::RequestBuilder);

impl ApiCall {
    /// Adds a header, e.g. `X-Correlation-ID`.
    pub(crate) fn header(self, name: &str, value: &str) -> Self {
        Self(self.0.header(name, value))
    }

    /// Sends the request; panics only when the app does not answer at all.
    pub(crate) async fn send(self) -> reqwest::Response {
        self.0.send().await.expect("the app answers")
    }

    /// Sends the request and returns status and JSON body (`Value::Null` when not JSON).
    pub(crate) async fn json(self) -> (u16, Value) {
        let response = self.send().await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Sends the request and returns the body as text.
    pub(crate) async fn text(self) -> String {
        self.send().await.text().await.expect("a text body")
    }
}

/// Asserts an error envelope: status, code, and a correlation id equal to the header's.
pub(crate) async fn assert_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let header = response
        .headers()
        .get("x-correlation-id")
        .expect("x-correlation-id header")
        .to_str()
        .unwrap()
        .to_owned();
    let retry_header = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = response.json().await.expect("a JSON envelope");
    assert_eq!(body["error_code"], code, "{body}");
    assert_eq!(body["correlation_id"], header.as_str(), "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    match body.get("retry_after") {
        Some(seconds) => assert_eq!(retry_header.as_deref(), Some(seconds.to_string().as_str())),
        None => assert!(retry_header.is_none()),
    }
    body
}
