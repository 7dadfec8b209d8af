//! `dbapp dev`: one command for local work. It starts, in this process:
//! - the workspace emulator (or, with `--workspace URL`, uses a real workspace);
//! - a SQLite store under `.dbapp/`, or with `--lakebase` an emulated Lakebase: a private
//!   Postgres cluster under `.dbapp/lakebase` whose logins are tokens minted by the emulator,
//!   which the store rotates through dbapp-store's Lakebase pool, as in production;
//! - the dbapp server, built by `dbapp_server::Application` from the same settings loader as
//!   `dbapp serve` (dev replaces only the workspace and the store with the ones it starts);
//! - a dev-only identity layer in front of it that acts like the Databricks Apps proxy: it strips
//!   inbound `Authorization` and `X-Forwarded-*` headers and injects `X-Forwarded-Access-Token`,
//!   `X-Forwarded-Email`, `X-Forwarded-User` and `X-Forwarded-Preferred-Username` for the demo
//!   user chosen by the `dbapp_dev_user` cookie (alice by default), which `POST /_dev/user
//!   {"user": "bob"}` sets; `GET /_dev/user` lists the users. Against a real workspace the one
//!   user is whoever `DATABRICKS_USER_TOKEN` (or the Databricks CLI's token) belongs to;
//! - in front of that, a guard for what a browser can be made to send ([`BrowserPolicy`]): since
//!   every request acts as a signed-in user, it answers `403 PERMISSION_DENIED` to requests not
//!   addressed to a loopback name (a web page whose DNS name was rebound to 127.0.0.1) and to
//!   state-changing requests from another site (a cross-site form or `text/plain` POST).
//!
//! It refuses to run when `DATABRICKS_APP_NAME` is set: an identity-injecting proxy must never
//! run inside Databricks Apps. While it starts it prints each step with its time on stderr
//! (`crate::progress`: the Postgres cluster, the emulator, the server with its store and
//! migrations); its first line on stdout is `dbapp dev: serving on <url>`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use dbapp_databricks::{AuthType, Client, Config, ConfigSettings, Environment, UserToken};
use dbapp_emulator::EmulatorConfig;
use dbapp_emulator::postgres::{ClusterOptions, PrivateCluster};
use dbapp_server::config::{LogFormat, Settings};
use dbapp_server::startup::{WrapApp, workspace_client};
use dbapp_server::telemetry::{CORRELATION_HEADER, correlation_id_from};
use dbapp_server::{Application, ErrorBody, ErrorCode};
use dbapp_store::StoreConfig;
use dbapp_store::lakebase::{DatabaseConfig, LakebaseSettings, SslMode};
use dbapp_store::workspace::CredentialTarget;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use super::serve::shutdown_signal;
use crate::progress::{Progress, Stream};

/// The cookie naming the demo user.
const USER_COOKIE: &str = "dbapp_dev_user";
/// The emulator fixture's service principal and its secret (`shared/DESIGN.md`).
const EMULATOR_APP_ID: &str = "dbapp-sp";
const EMULATOR_APP_SECRET: &str = "dev-secret";

#[derive(Debug, clap::Args)]
pub(crate) struct DevArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Use an emulated Lakebase (a private local Postgres with token logins) instead of SQLite.
    #[arg(long, conflicts_with = "workspace")]
    lakebase: bool,
    /// A real workspace URL instead of the emulator; the user's token comes from
    /// DATABRICKS_USER_TOKEN or the Databricks CLI.
    #[arg(long)]
    workspace: Option<String>,
    /// Where local state lives (SQLite file, Lakebase cluster).
    #[arg(long, default_value = ".dbapp")]
    dir: PathBuf,
}

/// A user the identity layer can act as.
#[derive(Debug, Clone)]
struct DevUser {
    name: String,
    /// With `--workspace`, the developer's real token: a secret, so `Debug` never shows it.
    token: SecretString,
    email: Option<String>,
}

#[derive(Debug)]
struct DevUsers(Vec<DevUser>);

impl DevUsers {
    fn pick(&self, headers: &HeaderMap) -> &DevUser {
        let chosen = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == USER_COOKIE)
            .map(|(_, value)| value);
        chosen
            .and_then(|name| self.0.iter().find(|u| u.name == name))
            .unwrap_or(&self.0[0])
    }
}

pub(crate) async fn run(args: DevArgs, env: &Environment) -> anyhow::Result<()> {
    if env.is_set("DATABRICKS_APP_NAME") {
        bail!(
            "`dbapp dev` refuses to run because DATABRICKS_APP_NAME is set: this looks like \
             Databricks Apps, and dev injects user identities, which must never happen there. \
             Use `dbapp serve`."
        );
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    // The same loader as `serve`, minus the database variables: dev brings its own store.
    let mut settings = Settings::load(&env.without(&[
        "DATABASE_URL",
        "PGHOST",
        "PGPASSWORD",
        "LAKEBASE_INSTANCE_NAME",
        "LAKEBASE_ENDPOINT",
        "LAKEBASE_PROJECT",
        "LAKEBASE_BRANCH",
    ]))?;
    settings.server.dbapp.log_format = LogFormat::Pretty;
    settings.server.dbapp.sqlite_path = args.dir.join("dbapp.db").display().to_string();

    let mut cluster = None;
    let mut emulator = None;
    let mut lakebase_banner = None;
    // On stderr: stdout's first line is the URL that scripts and tests wait for.
    let steps = if args.lakebase { 3 } else { 2 };
    let mut progress = Progress::new(env, Stream::Stderr, steps);
    let users = match &args.workspace {
        None => {
            let postgres_admin_url = if args.lakebase {
                let dir = std::fs::canonicalize(&args.dir)?.join("lakebase");
                progress.start(&format!(
                    "postgres: the private cluster under {} (created on first use)",
                    dir.display()
                ));
                let started = PrivateCluster::start(ClusterOptions {
                    dir: Some(dir),
                    ..ClusterOptions::default()
                })
                .await
                .context("cannot start the local Postgres cluster for --lakebase")?;
                progress.done("started");
                let url = started.admin_url();
                cluster = Some(started);
                Some(url)
            } else {
                None
            };
            progress.start(if args.lakebase {
                "emulator: the workspace and its Lakebase front"
            } else {
                "emulator: the workspace"
            });
            let handle = dbapp_emulator::start_local(EmulatorConfig {
                postgres_admin_url,
                ..EmulatorConfig::default()
            })
            .await
            .context("cannot start the workspace emulator")?;
            progress.done(&match handle.lakebase_addr() {
                Some(front) => format!("{}, Lakebase front on {front}", handle.base_url()),
                None => handle.base_url().to_string(),
            });
            // The store reaches the emulated Lakebase as an app reaches Lakebase: through its
            // front, with tokens minted for the app's service principal, over TLS.
            if let Some(front) = handle.lakebase_addr() {
                let mut lakebase = LakebaseSettings::new(front.ip().to_string());
                lakebase.port = front.port();
                lakebase.user = Some(EMULATOR_APP_ID.to_owned());
                lakebase.ssl_mode = SslMode::Require;
                settings.store = StoreConfig {
                    database: Some(DatabaseConfig::Lakebase(lakebase)),
                    credentials: Some(CredentialTarget::Instance("dev-lakebase".to_owned())),
                };
                let pg = format!(
                    "PGHOST={} PGPORT={} PGDATABASE=databricks_postgres PGSSLMODE=require",
                    front.ip(),
                    front.port()
                );
                lakebase_banner = Some(format!(
                    "  lakebase: {pg}\n  psql as the app: eval \"$(DATABRICKS_HOST={} \
                     DATABRICKS_CLIENT_ID={EMULATOR_APP_ID} DATABRICKS_CLIENT_SECRET={EMULATOR_APP_SECRET} \
                     LAKEBASE_INSTANCE_NAME=dev-lakebase {pg} dbapp token --lakebase --export)\"; psql",
                    handle.base_url()
                ));
            }
            settings.workspace = ConfigSettings::new(handle.base_url(), AuthType::OAuthM2m)
                .client_credentials(
                    EMULATOR_APP_ID,
                    SecretString::from(EMULATOR_APP_SECRET.to_owned()),
                );
            settings
                .server
                .databricks_warehouse_id
                .get_or_insert_with(|| "dev-warehouse".to_owned());
            // The emulator's scripted tool-calling endpoint, so the assistant works out of the box.
            settings
                .server
                .dbapp
                .assistant_endpoint
                .get_or_insert_with(|| "assistant".to_owned());
            emulator = Some(handle);
            ["alice", "bob", "admin"]
                .iter()
                .map(|name| DevUser {
                    name: (*name).to_owned(),
                    token: SecretString::from(format!("dev-token-{name}")),
                    email: Some(format!("{name}@example.com")),
                })
                .collect()
        }
        Some(url) => {
            progress.start(&format!("sign-in: {url}, as the user of your token"));
            settings.workspace.host = Some(url.clone());
            let client = workspace_client(&settings)?;
            let token = user_token(url, env).await?;
            let user_token = UserToken::parse(&token).context("the user token is malformed")?;
            let me = client
                .as_user(&user_token)
                .me()
                .await
                .context("the workspace refused the user token")?;
            progress.done(&format!("signed in as {}", me.user_name));
            vec![DevUser {
                name: "me".to_owned(),
                email: me.email().map(str::to_owned),
                token: SecretString::from(token),
            }]
        }
    };

    let policy = Arc::new(BrowserPolicy {
        cors_origins: settings.server.dbapp.cors_origins.clone(),
    });
    progress.start("server: the store, its migrations, the listener");
    let app = Application::build(settings, SocketAddr::from((Ipv4Addr::LOCALHOST, args.port)))
        .await
        .context("cannot start the server")
        .map_err(super::suggest_free_port)?;
    let backend = app
        .state()
        .store
        .as_ref()
        .map_or("none", |store| store.backend());
    progress.done(&format!("{backend} store ready"));
    let users = Arc::new(DevUsers(users));
    let url = format!("http://{}", app.local_addr()?);
    println!("dbapp dev: serving on {url}");
    // Only the emulator has other users to switch to; a real workspace has the one whose token
    // this is.
    let (workspace, switch) = match &args.workspace {
        Some(host) => (host.as_str(), String::new()),
        None => (
            "emulator",
            format!(
                " (switch in the UI's user menu, or POST {url}/_dev/user {{\"user\": \"bob\"}})"
            ),
        ),
    };
    eprintln!(
        "  workspace: {workspace}  store: {backend}  user: {}{switch}  API docs: {url}/docs",
        users.0[0].name,
    );
    if let Some(banner) = lakebase_banner {
        eprintln!("{banner}");
    }
    app.run_until_stopped_with(DevIdentity { users, policy }, shutdown_signal())
        .await?;
    if let Some(emulator) = emulator {
        emulator.shutdown().await;
    }
    if let Some(cluster) = cluster {
        cluster.stop().await.ok();
    }
    Ok(())
}

/// The user's token for a real workspace: `DATABRICKS_USER_TOKEN`, else the Databricks CLI's.
async fn user_token(host: &str, env: &Environment) -> anyhow::Result<String> {
    if let Some(token) = env.get("DATABRICKS_USER_TOKEN") {
        return Ok(token);
    }
    let config = Config::resolve(
        ConfigSettings::new(host, AuthType::DatabricksCli),
        &env.lookup(),
    )?;
    let client = Client::new(config)?;
    let token = client.app_credentials().token().await.context(
        "no user token: set DATABRICKS_USER_TOKEN or sign in with `databricks auth login`",
    )?;
    Ok(token.expose_secret().to_owned())
}

/// `dbapp dev`'s identity layer and its guard, as the application's outermost wrapper.
struct DevIdentity {
    users: Arc<DevUsers>,
    policy: Arc<BrowserPolicy>,
}

impl WrapApp for DevIdentity {
    fn wrap<S>(self, app: S) -> Router
    where
        S: tower::Service<Request, Response = Response, Error = std::convert::Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        // The app behind the identity layer, with `/_dev/user`, all behind the guard.
        let Self { users, policy } = self;
        Router::new()
            .route("/_dev/user", get(current_user).post(choose_user))
            .with_state(Arc::clone(&users))
            .fallback_service(app)
            .layer(from_fn_with_state(users, inject_identity))
            // Outermost, so nothing refused ever carries an identity or sets the user cookie.
            .layer(from_fn_with_state(policy, guard_browser))
    }
}

/// What a browser may ask of `dbapp dev`, which answers every request as a signed-in user.
///
/// - Every request must be addressed to a loopback name (`dbapp_emulator::host`: `localhost`,
///   127.0.0.0/8 or `[::1]`, any port, in `Host` and in an HTTP/2 `:authority`); a page whose
///   DNS name was rebound to 127.0.0.1 still names its own host. The port is not checked, so a
///   dev UI proxying to us with its own `Host` (`npm run dev`) keeps working.
/// - A state-changing request (any method but GET, HEAD and OPTIONS) must not come from another
///   site: its `Origin`, when sent, must be the origin it was sent to (`http://` + its Host) or
///   one listed in `DBAPP_CORS_ORIGINS` (the developer's explicit choice for a dev UI, which
///   also exempts it from the next check), and its `Sec-Fetch-Site`, when sent, must not be
///   `cross-site`. Browsers send `Origin` on every cross-origin POST, including the
///   `text/plain` ones that need no CORS preflight; a request with neither header is not from
///   a web page (curl, tests) and passes.
#[derive(Debug)]
struct BrowserPolicy {
    /// `DBAPP_CORS_ORIGINS`, exact as configured: the CORS layer compares them the same way.
    cors_origins: Vec<String>,
}

/// Why the guard refused a request; each names the header that decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Host,
    Origin,
    FetchSite,
}

impl BrowserPolicy {
    fn refusal(&self, request: &Request) -> Option<Refusal> {
        let Some(authority) = dbapp_emulator::host::loopback_authority(request) else {
            return Some(Refusal::Host);
        };
        if matches!(
            *request.method(),
            Method::GET | Method::HEAD | Method::OPTIONS
        ) {
            return None;
        }
        let headers = request.headers();
        let own_origin = format!("http://{authority}");
        for origin in headers.get_all(header::ORIGIN) {
            let Ok(origin) = origin.to_str() else {
                return Some(Refusal::Origin);
            };
            if self.cors_origins.iter().any(|allowed| allowed == origin) {
                return None;
            }
            if !origin.eq_ignore_ascii_case(&own_origin) {
                return Some(Refusal::Origin);
            }
        }
        let cross_site = headers
            .get_all("sec-fetch-site")
            .iter()
            .any(|site| site.as_bytes().eq_ignore_ascii_case(b"cross-site"));
        cross_site.then_some(Refusal::FetchSite)
    }
}

impl Refusal {
    fn header(self) -> &'static str {
        match self {
            Self::Host => "Host",
            Self::Origin => "Origin",
            Self::FetchSite => "Sec-Fetch-Site",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::Host => {
                "dbapp dev only answers requests addressed to localhost, 127.0.0.1 or [::1]: it \
                 acts as a signed-in user, so a web page that points its own name at this \
                 machine (DNS rebinding) must not reach it."
            }
            Self::Origin | Self::FetchSite => {
                "dbapp dev refuses state-changing requests from other sites (cross-site request \
                 forgery); to allow a dev UI's origin, list it in DBAPP_CORS_ORIGINS."
            }
        }
    }
}

/// Answers `403 PERMISSION_DENIED` to what [`BrowserPolicy`] refuses. It sits outside the app's
/// own middleware, so it writes the envelope, the correlation id and the security headers
/// itself. `ErrorBody` rather than `ApiError`: no `ApiError` variant is a 403 with a message of
/// our own, and the developer needs to read why.
async fn guard_browser(
    State(policy): State<Arc<BrowserPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(refusal) = policy.refusal(&request) else {
        return next.run(request).await;
    };
    let correlation_id = correlation_id_from(request.headers());
    // The developer sees why in the log; Debug escapes whatever the client put in the header.
    tracing::warn!(
        event = "dev.refused",
        header = refusal.header(),
        value = ?request.headers().get(refusal.header()),
        method = %request.method(),
        correlation_id = correlation_id.as_str(),
    );
    let body = ErrorBody {
        error_code: ErrorCode::PermissionDenied,
        message: refusal.message().to_owned(),
        detail: Some(json!({"header": refusal.header()})),
        retry_after: None,
        correlation_id: correlation_id.as_str().to_owned(),
    };
    let mut response = (StatusCode::FORBIDDEN, Json(body)).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(correlation_id.as_str()) {
        headers.insert(CORRELATION_HEADER, value);
    }
    // The app's security headers, which its own layers (inside this guard) would have added.
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Acts like the Apps proxy: drops what a browser could forge, adds the chosen user's headers.
async fn inject_identity(
    State(users): State<Arc<DevUsers>>,
    mut request: Request,
    next: Next,
) -> Response {
    let user = users.pick(request.headers()).clone();
    let headers = request.headers_mut();
    for name in [
        "authorization",
        "x-forwarded-access-token",
        "x-forwarded-email",
        "x-forwarded-user",
        "x-forwarded-preferred-username",
    ] {
        headers.remove(name);
    }
    if !request.uri().path().starts_with("/_dev/") {
        let headers = request.headers_mut();
        let mut set = |name: &'static str, value: &str| {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        };
        set("x-forwarded-access-token", user.token.expose_secret());
        set("x-forwarded-user", &user.name);
        if let Some(email) = &user.email {
            set("x-forwarded-email", email);
            set("x-forwarded-preferred-username", email);
        }
    }
    next.run(request).await
}

async fn current_user(
    State(users): State<Arc<DevUsers>>,
    headers: HeaderMap,
) -> Json<serde_json::Value> {
    let names: Vec<&str> = users.0.iter().map(|u| u.name.as_str()).collect();
    Json(json!({"user": users.pick(&headers).name, "users": names}))
}

#[derive(Deserialize)]
struct Choice {
    user: String,
}

async fn choose_user(State(users): State<Arc<DevUsers>>, Json(choice): Json<Choice>) -> Response {
    if !users.0.iter().any(|u| u.name == choice.user) {
        let names: Vec<&str> = users.0.iter().map(|u| u.name.as_str()).collect();
        return dbapp_server::ApiError::invalid("user", format!("must be one of {names:?}"))
            .into_response();
    }
    let cookie = format!(
        "{USER_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
        choice.user
    );
    (
        [(header::SET_COOKIE, cookie)],
        Json(json!({"user": choice.user})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;

    use super::*;

    #[test]
    fn a_dev_user_debug_never_shows_the_token() {
        let user = DevUser {
            name: "me".to_owned(),
            token: SecretString::from("dapi-real-token-of-the-developer".to_owned()),
            email: Some("me@example.com".to_owned()),
        };

        let printed = format!("{user:?} {:?}", DevUsers(vec![user.clone()]));

        assert!(!printed.contains("dapi-real-token"), "{printed}");
        assert!(printed.contains("me@example.com"), "{printed}");
    }

    fn refusal(method: &str, headers: &[(&str, &str)]) -> Option<Refusal> {
        let policy = BrowserPolicy {
            cors_origins: vec!["http://localhost:5173".to_owned()],
        };
        let mut request = Request::builder().method(method).uri("/api/usage");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        policy.refusal(&request.body(Body::empty()).unwrap())
    }

    #[test]
    fn hosts_are_checked_for_every_method() {
        assert_eq!(
            refusal("GET", &[("host", "evil.example:8000")]),
            Some(Refusal::Host)
        );
        assert_eq!(
            refusal("OPTIONS", &[("host", "evil.example")]),
            Some(Refusal::Host)
        );
        assert_eq!(refusal("GET", &[]), Some(Refusal::Host));
        assert_eq!(refusal("GET", &[("host", "LOCALHOST:8000")]), None);
    }

    #[test]
    fn state_changing_requests_must_come_from_their_own_origin() {
        let host = ("host", "127.0.0.1:8000");
        // Safe methods may come from anywhere: the Host check is what protects them.
        assert_eq!(
            refusal("GET", &[host, ("origin", "http://evil.example")]),
            None
        );
        for method in ["POST", "PUT", "DELETE", "PATCH"] {
            assert_eq!(
                refusal(method, &[host, ("origin", "http://evil.example")]),
                Some(Refusal::Origin)
            );
        }
        for origin in [
            "null",
            "http://localhost:8000",
            "https://127.0.0.1:8000",
            "http://127.0.0.1:3000",
        ] {
            assert_eq!(
                refusal("POST", &[host, ("origin", origin)]),
                Some(Refusal::Origin),
                "{origin}"
            );
        }
        assert_eq!(
            refusal("POST", &[host, ("origin", "http://127.0.0.1:8000")]),
            None
        );
        assert_eq!(refusal("POST", &[host]), None);
        assert_eq!(
            refusal("POST", &[host, ("sec-fetch-site", "cross-site")]),
            Some(Refusal::FetchSite)
        );
        assert_eq!(
            refusal("POST", &[host, ("sec-fetch-site", "same-site")]),
            None
        );
    }

    #[test]
    fn an_origin_listed_in_cors_origins_may_change_state() {
        let allowed = ("origin", "http://localhost:5173");
        assert_eq!(
            refusal(
                "POST",
                &[
                    ("host", "127.0.0.1:8000"),
                    allowed,
                    ("sec-fetch-site", "cross-site")
                ]
            ),
            None
        );
        assert_eq!(
            refusal("POST", &[("host", "evil.example"), allowed]),
            Some(Refusal::Host)
        );
    }
}
