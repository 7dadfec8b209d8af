//! [`Client`]: the entry point. It owns the one `reqwest::Client` and the app's credentials;
//! [`Client::as_user`] and [`Client::as_app`] give cheap borrowed [`Workspace`] views that say,
//! for every call, whose identity it carries. A user view holds only the user's token, so no call
//! made through it can fall back to the app's identity.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde::de::DeserializeOwned;

use crate::config::{AuthType, Config};
use crate::context::Context;
use crate::credentials::{self, CredentialsProvider, UserToken};
use crate::error::{DatabricksError, ErrorKind};
use crate::http::{
    AttemptObserver, Auth, Call, CallOptions, CorrelationId, Http, Operation, Response,
};

/// A client for one workspace. Cheap to clone; clones share the connection pool and the app's
/// token cache.
///
/// ```no_run
/// use dbapp_databricks::{Client, Config, ConfigSettings, UserToken};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = Client::new(Config::from_env(ConfigSettings::default())?)?;
/// let token = UserToken::parse("dev-token-alice")?;
/// let me = client.as_user(&token).me().await?;
/// println!("{}", me.user_name);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    http: Http,
    app: Arc<dyn CredentialsProvider>,
}

impl Client {
    /// Builds the client and the app credentials its configuration names. No request is sent.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Config`] when the HTTP client cannot be built or a credential the
    /// auth type needs is missing.
    pub fn new(config: Config) -> Result<Self, DatabricksError> {
        let http = Http::new(&config)?;
        let app = credentials::for_config(&config, &http)?;
        Ok(Self {
            inner: Arc::new(Inner { config, http, app }),
        })
    }

    /// Builds the client with the app credentials given (e.g. an M2M provider with other cache
    /// timings, see [`Client::oauth_m2m`]).
    ///
    /// # Errors
    /// As [`Client::new`].
    pub fn with_app_credentials(
        config: Config,
        app: impl FnOnce(&Client) -> Arc<dyn CredentialsProvider>,
    ) -> Result<Self, DatabricksError> {
        let client = Self::new(config)?;
        let app = app(&client);
        let inner = Inner {
            config: client.inner.config.clone(),
            http: client.inner.http.clone(),
            app,
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// An OAuth M2M provider sharing this client's connection pool, with the given cache timings.
    #[must_use]
    pub fn oauth_m2m(
        &self,
        client_id: &str,
        client_secret: secrecy::SecretString,
        options: credentials::CacheOptions,
    ) -> Arc<dyn CredentialsProvider> {
        Arc::new(credentials::OAuthM2m::new(
            self.inner.http.clone(),
            client_id.to_owned(),
            client_secret,
            options,
        ))
    }

    /// The resolved configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The app's own credentials.
    #[must_use]
    pub fn app_credentials(&self) -> &Arc<dyn CredentialsProvider> {
        &self.inner.app
    }

    /// Calls made with the user's forwarded token (`pat` auth type), never the app's identity.
    #[must_use]
    pub fn as_user<'a>(&'a self, token: &'a UserToken) -> Workspace<'a> {
        Workspace {
            client: self,
            identity: Identity::User(token),
            options: CallOptions::default(),
        }
    }

    /// Calls made with the invoker's token of a Model Serving request (on-behalf-of-user in
    /// serving), which the serving runtime hands the model per request. The view is a user view
    /// like [`Client::as_user`]'s: no call falls back to the app's identity.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Config`] outside Model Serving ([`Context::allows_invoker_credentials`]):
    /// there is no invoker there, and a token that claims to be one must not be used as such.
    pub fn as_invoker<'a>(
        &'a self,
        context: &Context,
        token: &'a UserToken,
    ) -> Result<Workspace<'a>, DatabricksError> {
        if !context.allows_invoker_credentials() {
            return Err(DatabricksError::new(
                ErrorKind::Config,
                format!(
                    "on-behalf-of-user (invoker) credentials are used only in Model Serving; this process runs in {}",
                    context.kind()
                ),
            ));
        }
        tracing::debug!(
            event = "databricks.invoker_credentials",
            signal = context.signal().unwrap_or_default(),
            "calls use the invoker's token (Model Serving on-behalf-of-user)"
        );
        Ok(self.as_user(token))
    }

    /// Calls made with the app's own credentials.
    #[must_use]
    pub fn as_app(&self) -> Workspace<'_> {
        Workspace {
            client: self,
            identity: Identity::App,
            options: CallOptions::default(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Identity<'a> {
    User(&'a UserToken),
    App,
}

/// The workspace as one identity sees it; every typed API method lives here. Per-call options
/// (correlation id, attempt observer, timeout) are set on the view, never on the client, so
/// nothing is shared between requests.
#[derive(Debug, Clone)]
pub struct Workspace<'a> {
    client: &'a Client,
    identity: Identity<'a>,
    options: CallOptions,
}

impl<'a> Workspace<'a> {
    /// Sends `id` as `X-Correlation-ID` on every request of this view.
    #[must_use]
    pub fn with_correlation_id(mut self, id: CorrelationId) -> Self {
        self.options.correlation_id = Some(id);
        self
    }

    /// Reports every HTTP attempt to `observer`.
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn AttemptObserver>) -> Self {
        self.options.observer = Some(observer);
        self
    }

    /// Replaces the per-call timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = Some(timeout);
        self
    }

    /// The auth type of this view's requests.
    #[must_use]
    pub fn auth_type(&self) -> AuthType {
        match self.identity {
            Identity::User(_) => AuthType::Pat,
            Identity::App => self.client.inner.app.auth_type(),
        }
    }

    /// Whether this view acts for a user.
    #[must_use]
    pub fn is_user(&self) -> bool {
        matches!(self.identity, Identity::User(_))
    }

    /// The client this view borrows.
    #[must_use]
    pub fn client(&self) -> &'a Client {
        self.client
    }

    /// Sends any workspace API call and returns the JSON answer, for APIs without a typed
    /// method. GET, PUT and DELETE are retried as the policy says; POST is not. Its attempts are
    /// reported as api and operation `other`: only typed methods name what they do.
    ///
    /// # Errors
    /// [`DatabricksError`] for any failure.
    #[tracing::instrument(skip_all, fields(method = %method, path = %path))]
    pub async fn call_json(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, DatabricksError> {
        let mut call = self.call(Operation::new("other", "other"), method, path);
        if let Some(body) = body {
            call = call.json(body);
        }
        self.send(call).await?.json(path)
    }

    /// Sends a workspace API call that answers text rather than JSON (e.g. logs), for APIs
    /// without a typed method; retried as [`Workspace::call_json`] is.
    ///
    /// # Errors
    /// [`DatabricksError`] for any failure, [`ErrorKind::Decode`] when the text is not UTF-8.
    #[tracing::instrument(skip_all, fields(method = %method, path = %path))]
    pub async fn call_text(&self, method: Method, path: &str) -> Result<String, DatabricksError> {
        let call = self.call(Operation::new("other", "other"), method, path);
        String::from_utf8(self.send(call).await?.body).map_err(|_| {
            DatabricksError::new(
                ErrorKind::Decode,
                format!("{path}: the answer is not UTF-8 text"),
            )
        })
    }

    pub(crate) fn call(&self, operation: Operation, method: Method, path: &str) -> Call<'_> {
        self.call_url(operation, method, self.client.inner.http.host().join(path))
    }

    /// A call to any URL (a deployed app behind the Apps proxy), with this view's identity.
    pub(crate) fn call_url(&self, operation: Operation, method: Method, url: String) -> Call<'_> {
        let auth = match self.identity {
            Identity::User(token) => Auth::Token(token.secret()),
            Identity::App => Auth::Provider(self.client.inner.app.as_ref()),
        };
        Call::new(operation, method, url, auth, &self.options)
    }

    pub(crate) async fn send(&self, call: Call<'_>) -> Result<Response, DatabricksError> {
        self.client.inner.http.send(call).await
    }

    pub(crate) async fn send_streaming(
        &self,
        call: Call<'_>,
    ) -> Result<reqwest::Response, DatabricksError> {
        self.client.inner.http.send_streaming(call).await
    }

    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        call: Call<'_>,
        what: &str,
    ) -> Result<T, DatabricksError> {
        self.send(call).await?.json(what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ExecuteStatement;
    use crate::config::ConfigSettings;
    use futures_util::TryStreamExt;

    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn invoker_credentials_are_refused_outside_model_serving() {
        // Arrange
        let settings = ConfigSettings::new("https://h.example.com", AuthType::Pat)
            .token(secrecy::SecretString::from("dapi"));
        let client = Client::new(Config::resolve(settings, &|_| None).unwrap()).unwrap();
        let token = UserToken::parse("invoker-token").unwrap();
        let env_of = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let outside: [&[(&str, &str)]; 3] = [
            &[("DATABRICKS_APP_NAME", "app")],
            &[("DATABRICKS_RUNTIME_VERSION", "15.4")],
            &[],
        ];

        for pairs in outside {
            // Act
            let context = Context::detect(&env_of(pairs));
            let refused = client.as_invoker(&context, &token).unwrap_err();

            // Assert
            assert_eq!(refused.kind(), ErrorKind::Config, "{pairs:?}");
            assert!(refused.to_string().contains("only in Model Serving"));
        }
        let serving = Context::detect(&env_of(&[("DATABRICKS_SERVING_ENDPOINT", "ep")]));
        let view = client.as_invoker(&serving, &token).unwrap();
        assert!(view.is_user());
        assert_eq!(view.auth_type(), AuthType::Pat);
    }

    /// axum handlers need `Send` futures: every public call must produce one.
    #[test]
    fn workspace_futures_are_send() {
        let settings = ConfigSettings::new("https://h.example.com", AuthType::Pat)
            .token(secrecy::SecretString::from("dapi"));
        let client = Client::new(Config::resolve(settings, &|_| None).unwrap()).unwrap();
        let token = UserToken::parse("t").unwrap();
        let view = client.as_user(&token);
        assert_send(&view.me());
        assert_send(&view.list_all_catalogs());
        assert_send(&view.tables("a", "b", 0).try_collect::<Vec<_>>());
        let request = ExecuteStatement::new("SELECT 1", "w");
        assert_send(&view.execute_statement(&request));
        assert_send(&view.chat("chat", &crate::api::ChatRequest::default()));
        assert_send(&view.start_genie_conversation("s", "q"));
        assert_send(&view.wait_for_genie_message(
            "s",
            "c",
            "m",
            &crate::api::GenieWait::default(),
            |_| {},
        ));
        assert_send(&client.as_app().generate_database_credential(&["x"]));
        assert_send(&client.as_app().generate_postgres_credential("p", None));
        let update = crate::api::UpdateApp::new(crate::api::AppSpec::new("a"), &["description"]);
        assert_send(&view.update_app(&update.unwrap()));
        assert_send(&view.get_from_app("http://127.0.0.1:1", "/ready"));
        assert_send(&view.import_file("/Users/a/f", b"x"));
    }
}
