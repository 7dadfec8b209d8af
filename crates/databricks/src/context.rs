//! [`Context`]: where this process runs (Databricks Apps, Model Serving, a notebook or job, or a
//! developer's machine), which strategy the app's own identity uses there, and why — what
//! `dbapp doctor` prints. Detection reads environment variables only (through an [`Env`]
//! function, so tests need not touch the process environment), plus the existence of the Model
//! Serving token file, in this order:
//!
//! 1. `DATABRICKS_APP_NAME` set: Databricks Apps; the app is its service principal (`oauth-m2m`).
//! 2. `IS_IN_DB_MODEL_SERVING_ENV` or `IS_IN_DATABRICKS_MODEL_SERVING_ENV` = `true` and the token
//!    file exists: Model Serving (`model-serving`).
//! 3. `DATABRICKS_RUNTIME_VERSION` set: a notebook or job on a cluster.
//! 4. Otherwise local: `DATABRICKS_AUTH_TYPE`, else the one kind of credential in the
//!    environment, else a `~/.databrickscfg` profile or the Databricks CLI (decided by
//!    [`crate::Config`]).

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

/// The detected context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    kind: ContextKind,
    app_auth_type: Option<AuthType>,
    reason: String,
}

/// Whether the Model Serving flag variable says `true`.
pub(crate) fn model_serving_flag(env: Env<'_>) -> bool {
    [
        "IS_IN_DB_MODEL_SERVING_ENV",
        "IS_IN_DATABRICKS_MODEL_SERVING_ENV",
    ]
    .iter()
    .any(|var| env(var).is_some_and(|v| v.trim() == "true"))
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
                app_auth_type: Some(AuthType::OAuthM2m),
                reason: format!(
                    "DATABRICKS_APP_NAME={app} is set: running in Databricks Apps, where the app's identity is its service principal (oauth-m2m; {credentials}); calls for a user use the forwarded user token"
                ),
            };
        }
        let serving_note = if model_serving_flag(env) {
            let file = token_file_path(env);
            if file.exists() {
                return Self {
                    kind: ContextKind::ModelServing,
                    app_auth_type: Some(AuthType::ModelServing),
                    reason: format!(
                        "the Model Serving flag is true and the token file {} exists: running in Model Serving (model-serving)",
                        file.display()
                    ),
                };
            }
            format!(
                " (the Model Serving flag is true, but the token file {} does not exist, so Model Serving was not detected)",
                file.display()
            )
        } else {
            String::new()
        };
        if let Some(version) = set("DATABRICKS_RUNTIME_VERSION") {
            let (auth, how) = local_choice(&set);
            return Self {
                kind: ContextKind::Notebook,
                app_auth_type: auth,
                reason: format!(
                    "DATABRICKS_RUNTIME_VERSION={version} is set: running in a notebook or job; the runtime's own credentials are reachable only from Python, so {how}{serving_note}"
                ),
            };
        }
        let (auth, how) = local_choice(&set);
        Self {
            kind: ContextKind::Local,
            app_auth_type: auth,
            reason: format!(
                "no Databricks runtime variables are set: running locally; {how}{serving_note}"
            ),
        }
    }

    /// Where the process runs.
    #[must_use]
    pub fn kind(&self) -> ContextKind {
        self.kind
    }

    /// The strategy for the app's own identity; `None` when the configuration file or the CLI
    /// decides it (see [`crate::Config::resolve`]).
    #[must_use]
    pub fn app_auth_type(&self) -> Option<AuthType> {
        self.app_auth_type
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

    #[test]
    fn context_detection_matrix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("model-dependencies-oauth-token"), "{}").unwrap();
        let creds_dir = dir.path().to_str().unwrap();
        let apps = [
            ("DATABRICKS_APP_NAME", "my-app"),
            ("DATABRICKS_CLIENT_ID", "sp"),
            ("DATABRICKS_CLIENT_SECRET", "s"),
            ("DATABRICKS_TOKEN", "t"),
        ];
        type Case<'a> = (Vec<(&'a str, &'a str)>, ContextKind, Option<AuthType>);
        let cases: Vec<Case<'_>> = vec![
            (
                apps.to_vec(),
                ContextKind::DatabricksApps,
                Some(AuthType::OAuthM2m),
            ),
            (
                vec![
                    ("IS_IN_DB_MODEL_SERVING_ENV", "true"),
                    ("SERVING_CREDENTIALS_DIR", creds_dir),
                ],
                ContextKind::ModelServing,
                Some(AuthType::ModelServing),
            ),
            (
                vec![
                    ("IS_IN_DATABRICKS_MODEL_SERVING_ENV", "true"),
                    ("SERVING_CREDENTIALS_DIR", creds_dir),
                ],
                ContextKind::ModelServing,
                Some(AuthType::ModelServing),
            ),
            // The flag without the token file is not Model Serving.
            (
                vec![
                    ("IS_IN_DB_MODEL_SERVING_ENV", "true"),
                    ("SERVING_CREDENTIALS_DIR", "/nonexistent-dbapp"),
                ],
                ContextKind::Local,
                None,
            ),
            (
                vec![
                    ("IS_IN_DB_MODEL_SERVING_ENV", "false"),
                    ("SERVING_CREDENTIALS_DIR", creds_dir),
                ],
                ContextKind::Local,
                None,
            ),
            (
                vec![
                    ("DATABRICKS_RUNTIME_VERSION", "15.4"),
                    ("DATABRICKS_TOKEN", "t"),
                ],
                ContextKind::Notebook,
                Some(AuthType::Pat),
            ),
            (
                vec![("DATABRICKS_TOKEN", "t")],
                ContextKind::Local,
                Some(AuthType::Pat),
            ),
            (
                vec![
                    ("DATABRICKS_CLIENT_ID", "c"),
                    ("DATABRICKS_CLIENT_SECRET", "s"),
                ],
                ContextKind::Local,
                Some(AuthType::OAuthM2m),
            ),
            (
                vec![
                    ("DATABRICKS_TOKEN", "t"),
                    ("DATABRICKS_CLIENT_ID", "c"),
                    ("DATABRICKS_CLIENT_SECRET", "s"),
                ],
                ContextKind::Local,
                None,
            ),
            (
                vec![
                    ("DATABRICKS_AUTH_TYPE", "databricks-cli"),
                    ("DATABRICKS_TOKEN", "t"),
                ],
                ContextKind::Local,
                Some(AuthType::DatabricksCli),
            ),
            (vec![], ContextKind::Local, None),
        ];
        for (env, kind, auth) in cases {
            let context = detect(&env);
            assert_eq!(
                (context.kind(), context.app_auth_type()),
                (kind, auth),
                "{env:?}: {}",
                context.reason()
            );
            assert!(!context.reason().is_empty());
            // The reason names variables, never their secret values.
            assert!(!context.reason().contains("=s ") && !context.reason().contains("=t "));
        }
    }

    #[test]
    fn reason_says_why_model_serving_was_not_detected() {
        let context = detect(&[
            ("IS_IN_DB_MODEL_SERVING_ENV", "true"),
            ("SERVING_CREDENTIALS_DIR", "/nonexistent-dbapp"),
        ]);
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
