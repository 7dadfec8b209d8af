//! [`Context`]: where this process runs (Databricks Apps, Model Serving, a notebook or job, or a
//! developer's machine), which variable said so ([`Context::signal`]), which strategy the app's own
//! identity uses there, how a user's identity reaches the process ([`UserIdentity`]), and why —
//! what `dbapp doctor` prints. Detection reads environment variables only (through an [`Env`]
//! function, so tests need not touch the process environment), plus the existence of the Model
//! Serving token file, in this order:
//!
//! 1. `DATABRICKS_APP_NAME` set: Databricks Apps; the app is its service principal (`oauth-m2m`),
//!    a user is the token the Apps proxy forwards.
//! 2. Any Model Serving signal, checked in this order: `IS_IN_DB_MODEL_SERVING_ENV` or
//!    `IS_IN_DATABRICKS_MODEL_SERVING_ENV` = `true`, `DATABRICKS_SERVING_ENDPOINT` set,
//!    `MLFLOW_DEPLOYMENT_FLAVOR_NAME` = `databricks`. The app is the container's token file
//!    (`model-serving`) when that file exists, else the local choice below (the SDKs read only the
//!    first two flags, and only with the file: UPSTREAM §2.9); a user is the invoker, whose token
//!    the serving runtime hands to the model per request. Only here may on-behalf-of-user
//!    (invoker) credentials be used: see [`crate::Client::as_invoker`].
//! 3. `DATABRICKS_RUNTIME_VERSION` set: a notebook or job on a cluster.
//! 4. Otherwise local: `DATABRICKS_AUTH_TYPE`, else the one kind of credential in the
//!    environment, else a `~/.databrickscfg` profile or the Databricks CLI (decided by
//!    [`crate::Config`]).
//!
//! In the last two a user is, as in Apps, a token forwarded in `X-Forwarded-Access-Token` (by
//! `dbapp dev`'s identity layer or a proxy), never an invoker.

use std::fmt;

use crate::config::{AuthType, ConfigSettings, Env};
use crate::credentials::model_serving::token_file_path;
use crate::environment::Environment;

/// Where the process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContextKind {
    /// A Databricks App container.
    DatabricksApps,
    /// A Model Serving container.
    ModelServing,
    /// A notebook or job on a Databricks cluster.
    Notebook,
    /// Anywhere else: a developer's machine, CI, another cloud.
    Local,
}

impl fmt::Display for ContextKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DatabricksApps => "Databricks Apps",
            Self::ModelServing => "Model Serving",
            Self::Notebook => "notebook or job",
            Self::Local => "local",
        })
    }
}

/// How a signed-in user's identity reaches this process: the strategy of calls made *for* a user
/// (the app's own identity is [`Context::app_auth_type`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserIdentity {
    /// A token forwarded with each request in `X-Forwarded-Access-Token` (the Apps proxy, or
    /// `dbapp dev`'s identity layer), used through [`crate::Client::as_user`].
    ForwardedToken,
    /// The invoker of a Model Serving endpoint (on-behalf-of-user in serving): the serving runtime
    /// hands the model the invoker's token per request, used through
    /// [`crate::Client::as_invoker`].
    Invoker,
}

impl fmt::Display for UserIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ForwardedToken => "forwarded user token",
            Self::Invoker => "invoker's token (on-behalf-of-user)",
        })
    }
}

/// The detected context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    kind: ContextKind,
    signal: Option<&'static str>,
    app_auth_type: Option<AuthType>,
    reason: String,
}

/// The Model Serving signals, in the order they are checked: the variable and the value that
/// counts (`None`: any non-empty value).
const MODEL_SERVING_SIGNALS: [(&str, Option<&str>); 4] = [
    ("IS_IN_DB_MODEL_SERVING_ENV", Some("true")),
    ("IS_IN_DATABRICKS_MODEL_SERVING_ENV", Some("true")),
    ("DATABRICKS_SERVING_ENDPOINT", None),
    ("MLFLOW_DEPLOYMENT_FLAVOR_NAME", Some("databricks")),
];

/// The first Model Serving signal present in `env`, named by its variable. [`crate::Config`]
/// uses the same test, so the context and the app's auth type cannot disagree.
pub(crate) fn model_serving_signal(env: Env<'_>) -> Option<&'static str> {
    MODEL_SERVING_SIGNALS.iter().find_map(|(var, wanted)| {
        let value = env(var)?;
        let value = value.trim();
        let matched = match wanted {
            Some(wanted) => value == *wanted,
            None => !value.is_empty(),
        };
        matched.then_some(*var)
    })
}

impl Context {
    /// Detects the context of this process.
    #[must_use]
    pub fn from_process_env() -> Self {
        Self::detect(&Environment::capture().lookup())
    }

    /// Detects the context from `env`.
    ///
    /// ```
    /// use dbapp_databricks::{AuthType, Context, ContextKind};
    ///
    /// let env = |name: &str| (name == "DATABRICKS_APP_NAME").then(|| "my-app".to_owned());
    /// let context = Context::detect(&env);
    /// assert_eq!(context.kind(), ContextKind::DatabricksApps);
    /// assert_eq!(context.signal(), Some("DATABRICKS_APP_NAME"));
    /// assert_eq!(context.app_auth_type(), Some(AuthType::OAuthM2m));
    /// ```
    #[must_use]
    pub fn detect(env: Env<'_>) -> Self {
        let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        if let Some(app) = set("DATABRICKS_APP_NAME") {
            let credentials = if set("DATABRICKS_CLIENT_ID").is_some()
                && set("DATABRICKS_CLIENT_SECRET").is_some()
            {
                "DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET are set"
            } else {
                "but DATABRICKS_CLIENT_ID or DATABRICKS_CLIENT_SECRET is missing, so the app identity cannot log in"
            };
            return Self {
                kind: ContextKind::DatabricksApps,
                signal: Some("DATABRICKS_APP_NAME"),
                app_auth_type: Some(AuthType::OAuthM2m),
                reason: format!(
                    "DATABRICKS_APP_NAME={app} is set: running in Databricks Apps, where the app's identity is its service principal (oauth-m2m; {credentials}); calls for a user use the forwarded user token"
                ),
            };
        }
        if let Some(signal) = model_serving_signal(env) {
            let file = token_file_path(env);
            let user = "calls for a user use the invoker's token (on-behalf-of-user), never the app's identity";
            let (app_auth_type, app) = if file.exists() {
                (
                    Some(AuthType::ModelServing),
                    format!(
                        "the app's identity is the token file {} (model-serving)",
                        file.display()
                    ),
                )
            } else {
                let (auth, how) = local_choice(&set);
                (
                    auth,
                    format!(
                        "the token file {} does not exist, so the app's identity is not model-serving: {how}",
                        file.display()
                    ),
                )
            };
            return Self {
                kind: ContextKind::ModelServing,
                signal: Some(signal),
                app_auth_type,
                reason: format!("{signal} is set: running in Model Serving; {app}; {user}"),
            };
        }
        if let Some(version) = set("DATABRICKS_RUNTIME_VERSION") {
            let (auth, how) = local_choice(&set);
            return Self {
                kind: ContextKind::Notebook,
                signal: Some("DATABRICKS_RUNTIME_VERSION"),
                app_auth_type: auth,
                reason: format!(
                    "DATABRICKS_RUNTIME_VERSION={version} is set: running in a notebook or job; the runtime's own credentials are reachable only from Python, so {how}; no on-behalf-of-user (invoker) credentials outside Model Serving"
                ),
            };
        }
        let (auth, how) = local_choice(&set);
        Self {
            kind: ContextKind::Local,
            signal: None,
            app_auth_type: auth,
            reason: format!(
                "no Databricks runtime variables are set: running locally; {how}; no on-behalf-of-user (invoker) credentials outside Model Serving"
            ),
        }
    }

    /// Where the process runs.
    #[must_use]
    pub fn kind(&self) -> ContextKind {
        self.kind
    }

    /// The environment variable that decided [`Context::kind`] (e.g. `DATABRICKS_APP_NAME`,
    /// `DATABRICKS_SERVING_ENDPOINT`); `None` when running locally, where no variable does.
    #[must_use]
    pub fn signal(&self) -> Option<&'static str> {
        self.signal
    }

    /// The strategy for the app's own identity; `None` when the configuration file or the CLI
    /// decides it (see [`crate::Config::resolve`]).
    #[must_use]
    pub fn app_auth_type(&self) -> Option<AuthType> {
        self.app_auth_type
    }

    /// How a signed-in user's identity reaches the process: the invoker's token in Model
    /// Serving, a forwarded token everywhere else.
    #[must_use]
    pub fn user_identity(&self) -> UserIdentity {
        if self.kind == ContextKind::ModelServing {
            UserIdentity::Invoker
        } else {
            UserIdentity::ForwardedToken
        }
    }

    /// Whether on-behalf-of-user (invoker) credentials may be used: only in Model Serving.
    #[must_use]
    pub fn allows_invoker_credentials(&self) -> bool {
        self.user_identity() == UserIdentity::Invoker
    }

    /// Why, in one sentence for people.
    #[must_use]
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Settings for the app's identity with the auth type pinned, so stray credentials in the
    /// environment (a `DATABRICKS_TOKEN` next to the SP's client id) cannot cause a dual-auth
    /// conflict.
    #[must_use]
    pub fn app_settings(&self) -> ConfigSettings {
        ConfigSettings {
            auth_type: self.app_auth_type,
            ..ConfigSettings::default()
        }
    }
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.app_auth_type {
            Some(auth) => write!(f, "{} ({auth}): {}", self.kind, self.reason),
            None => write!(f, "{}: {}", self.kind, self.reason),
        }
    }
}

fn local_choice(set: &dyn Fn(&str) -> Option<String>) -> (Option<AuthType>, String) {
    if let Some(name) = set("DATABRICKS_AUTH_TYPE") {
        return match name.parse::<AuthType>() {
            Ok(auth) => (
                Some(auth),
                format!("DATABRICKS_AUTH_TYPE={auth} pins the strategy"),
            ),
            Err(_) => (
                None,
                format!("DATABRICKS_AUTH_TYPE={name} names a strategy this crate does not support"),
            ),
        };
    }
    let token = set("DATABRICKS_TOKEN").is_some();
    let client = set("DATABRICKS_CLIENT_ID").is_some() && set("DATABRICKS_CLIENT_SECRET").is_some();
    match (token, client) {
        (true, false) => (Some(AuthType::Pat), "DATABRICKS_TOKEN is set (pat)".to_owned()),
        (false, true) => (
            Some(AuthType::OAuthM2m),
            "DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET are set (oauth-m2m)".to_owned(),
        ),
        (true, true) => (
            None,
            "both DATABRICKS_TOKEN and DATABRICKS_CLIENT_ID/SECRET are set: set DATABRICKS_AUTH_TYPE to pick one".to_owned(),
        ),
        (false, false) => (
            None,
            "no credentials in the environment: a ~/.databrickscfg profile, else `databricks auth token` of the Databricks CLI, supplies them".to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn detect(pairs: &[(&str, &str)]) -> Context {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        Context::detect(&move |name: &str| map.get(name).cloned())
    }

    /// One row of the context × signal × strategy table of docs/library.md.
    struct Case<'a> {
        env: Vec<(&'a str, &'a str)>,
        kind: ContextKind,
        signal: Option<&'static str>,
        app: Option<AuthType>,
        user: UserIdentity,
    }

    #[test]
    fn context_detection_matrix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("model-dependencies-oauth-token"), "{}").unwrap();
        let creds = dir.path().to_str().unwrap();
        let no_file = "/nonexistent-dbapp";
        fn case<'a>(
            env: Vec<(&'a str, &'a str)>,
            kind: ContextKind,
            signal: Option<&'static str>,
            app: Option<AuthType>,
            user: UserIdentity,
        ) -> Case<'a> {
            Case {
                env,
                kind,
                signal,
                app,
                user,
            }
        }
        use AuthType::{DatabricksCli, ModelServing, OAuthM2m, Pat};
        use ContextKind as K;
        use UserIdentity::{ForwardedToken as Forwarded, Invoker};
        let mut cases: Vec<Case<'_>> = vec![
            case(
                vec![
                    ("DATABRICKS_APP_NAME", "my-app"),
                    ("DATABRICKS_CLIENT_ID", "sp"),
                    ("DATABRICKS_CLIENT_SECRET", "s"),
                    ("DATABRICKS_TOKEN", "t"),
                    // Apps wins over a stray serving variable.
                    ("DATABRICKS_SERVING_ENDPOINT", "ep"),
                ],
                K::DatabricksApps,
                Some("DATABRICKS_APP_NAME"),
                Some(OAuthM2m),
                Forwarded,
            ),
            case(
                vec![
                    ("DATABRICKS_RUNTIME_VERSION", "15.4"),
                    ("DATABRICKS_TOKEN", "t"),
                ],
                K::Notebook,
                Some("DATABRICKS_RUNTIME_VERSION"),
                Some(Pat),
                Forwarded,
            ),
            case(
                vec![("DATABRICKS_TOKEN", "t")],
                K::Local,
                None,
                Some(Pat),
                Forwarded,
            ),
            case(
                vec![
                    ("DATABRICKS_CLIENT_ID", "c"),
                    ("DATABRICKS_CLIENT_SECRET", "s"),
                ],
                K::Local,
                None,
                Some(OAuthM2m),
                Forwarded,
            ),
            case(
                vec![
                    ("DATABRICKS_TOKEN", "t"),
                    ("DATABRICKS_CLIENT_ID", "c"),
                    ("DATABRICKS_CLIENT_SECRET", "s"),
                ],
                K::Local,
                None,
                None,
                Forwarded,
            ),
            case(
                vec![
                    ("DATABRICKS_AUTH_TYPE", "databricks-cli"),
                    ("DATABRICKS_TOKEN", "t"),
                ],
                K::Local,
                None,
                Some(DatabricksCli),
                Forwarded,
            ),
            case(vec![], K::Local, None, None, Forwarded),
            // Values that are not signals.
            case(
                vec![
                    ("IS_IN_DB_MODEL_SERVING_ENV", "false"),
                    ("MLFLOW_DEPLOYMENT_FLAVOR_NAME", "sagemaker"),
                    ("DATABRICKS_SERVING_ENDPOINT", "  "),
                    ("SERVING_CREDENTIALS_DIR", creds),
                ],
                K::Local,
                None,
                None,
                Forwarded,
            ),
        ];
        // Each Model Serving signal alone, with and without the token file.
        for (var, value) in [
            ("IS_IN_DB_MODEL_SERVING_ENV", "true"),
            ("IS_IN_DATABRICKS_MODEL_SERVING_ENV", "true"),
            ("DATABRICKS_SERVING_ENDPOINT", "my-endpoint"),
            ("MLFLOW_DEPLOYMENT_FLAVOR_NAME", "databricks"),
        ] {
            cases.push(case(
                vec![(var, value), ("SERVING_CREDENTIALS_DIR", creds)],
                K::ModelServing,
                Some(var),
                Some(ModelServing),
                Invoker,
            ));
            cases.push(case(
                vec![
                    (var, value),
                    ("SERVING_CREDENTIALS_DIR", no_file),
                    ("DATABRICKS_TOKEN", "t"),
                ],
                K::ModelServing,
                Some(var),
                Some(Pat),
                Invoker,
            ));
        }
        // Model Serving wins over the notebook runtime (serving containers may set it too).
        cases.push(case(
            vec![
                ("DATABRICKS_RUNTIME_VERSION", "15.4"),
                ("MLFLOW_DEPLOYMENT_FLAVOR_NAME", "databricks"),
                ("SERVING_CREDENTIALS_DIR", creds),
            ],
            K::ModelServing,
            Some("MLFLOW_DEPLOYMENT_FLAVOR_NAME"),
            Some(ModelServing),
            Invoker,
        ));

        for case in cases {
            let context = detect(&case.env);
            let env = &case.env;
            assert_eq!(
                (
                    context.kind(),
                    context.signal(),
                    context.app_auth_type(),
                    context.user_identity()
                ),
                (case.kind, case.signal, case.app, case.user),
                "{env:?}: {}",
                context.reason()
            );
            assert_eq!(
                context.allows_invoker_credentials(),
                case.kind == K::ModelServing
            );
            // The reason names the signal, and never a secret value.
            if let Some(signal) = case.signal {
                assert!(context.reason().contains(signal), "{}", context.reason());
            }
            assert!(!context.reason().contains("=s ") && !context.reason().contains("=t "));
        }
    }

    #[test]
    fn the_reason_says_which_identity_acts_for_a_user() {
        let serving = detect(&[("DATABRICKS_SERVING_ENDPOINT", "ep")]);
        assert!(
            serving.reason().contains("invoker's token"),
            "{}",
            serving.reason()
        );
        for local in [
            detect(&[]),
            detect(&[("DATABRICKS_RUNTIME_VERSION", "15.4")]),
        ] {
            assert!(
                local
                    .reason()
                    .contains("no on-behalf-of-user (invoker) credentials"),
                "{}",
                local.reason()
            );
        }
    }

    #[test]
    fn reason_says_why_the_app_is_not_model_serving_without_the_token_file() {
        let context = detect(&[
            ("IS_IN_DB_MODEL_SERVING_ENV", "true"),
            ("SERVING_CREDENTIALS_DIR", "/nonexistent-dbapp"),
        ]);
        assert_eq!(context.kind(), ContextKind::ModelServing);
        assert!(
            context.reason().contains("does not exist"),
            "{}",
            context.reason()
        );
    }

    #[test]
    fn apps_reason_names_the_app_and_the_strategy() {
        let context = detect(&[("DATABRICKS_APP_NAME", "my-app")]);
        assert!(context.reason().contains("my-app") && context.reason().contains("oauth-m2m"));
        assert!(context.reason().contains("missing"));
    }
}
