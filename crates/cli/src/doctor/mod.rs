//! `dbapp doctor`'s engine: detect where the process runs, show the effective configuration with
//! where each value came from (secrets masked), and run checks that each end in pass, warn, fail
//! or skip, with a one-line fix for anything that is not a pass.
//!
//! - this module: the report types, masking, and [`diagnose`], which
//!   runs every check in order;
//! - `workspace`: authentication conflicts, host reachability and discovery, the user token, the
//!   app's own login, the SQL warehouse (set, exists, usable by the app and the user, running),
//!   and the Genie spaces of the app's `genie_space` resources (reachable as the user);
//! - `lakebase`: the `PG*`/`LAKEBASE_*` settings, credential minting, the role name, the token's
//!   lifetime and a real Postgres login;
//! - `manifest`: `app.yaml` and `databricks.yml` against what the server's routes need (the scope
//!   table lives there);
//! - `sync`: which files `databricks bundle deploy` would upload (the CLI's `.gitignore` and
//!   `sync` rules), checked against the files app.yaml's start command needs.
//!
//! The JSON shape (`--json`) is stable: `version` (1), `context`, `config[]`, `checks[]` (each with
//! a stable `id`), `summary` and `ok`. Adding checks is compatible; renaming an id is not. Network
//! probes use a short timeout (`--timeout`, default 5 s) and no retries, so an unreachable host is
//! reported in seconds rather than after the SDKs' five-minute retry budget.

pub(crate) mod lakebase;
pub(crate) mod manifest;
pub(crate) mod sync;
pub(crate) mod workspace;

use crate::terminal::{Paint, Tone};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use dbapp_databricks::config::Source;
use dbapp_databricks::{Config, Context, ContextKind, Environment, UserIdentity};
use serde::Serialize;

/// The version of the JSON shape.
pub(crate) const REPORT_VERSION: u32 = 1;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    /// Works as it should.
    Pass,
    /// Works, but something will bite later or a feature is off.
    Warn,
    /// Broken: `dbapp serve` fails, or a feature fails for every user.
    Fail,
    /// Not applicable to this configuration, or not possible after an earlier failure.
    Skip,
}

impl Status {
    pub(crate) fn tone(self) -> Tone {
        match self {
            Self::Pass => Tone::Good,
            Self::Warn => Tone::Attention,
            Self::Fail => Tone::Bad,
            Self::Skip => Tone::Quiet,
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Warn => "WARN",
            Self::Fail => "FAIL",
            Self::Skip => "SKIP",
        }
    }
}

/// One diagnosis.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Check {
    /// Stable identifier, e.g. `lakebase.sslmode`.
    pub(crate) id: &'static str,
    pub(crate) status: Status,
    /// What was found, in one sentence.
    pub(crate) message: String,
    /// What to do about it (for warn and fail).
    pub(crate) fix: Option<String>,
}

impl Check {
    pub(crate) fn pass(id: &'static str, message: impl Into<String>) -> Self {
        Self {
            id,
            status: Status::Pass,
            message: message.into(),
            fix: None,
        }
    }

    pub(crate) fn skip(id: &'static str, message: impl Into<String>) -> Self {
        Self {
            id,
            status: Status::Skip,
            message: message.into(),
            fix: None,
        }
    }

    pub(crate) fn warn(
        id: &'static str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            id,
            status: Status::Warn,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }

    pub(crate) fn fail(
        id: &'static str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            id,
            status: Status::Fail,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }
}

/// One effective setting and where it came from.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ConfigEntry {
    /// The variable, e.g. `PGHOST`.
    pub(crate) name: String,
    /// The value in effect (masked when secret); `None` when unset.
    pub(crate) value: Option<String>,
    /// Where it came from: `environment variable X`, `profile [p] of FILE`, `default`, `flag
    /// --x`, `derived`, or `unset`.
    pub(crate) source: String,
    pub(crate) secret: bool,
}

/// Where the process runs.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ContextInfo {
    /// `databricks_apps`, `model_serving`, `notebook` or `local`.
    pub(crate) kind: &'static str,
    /// The environment variable that decided `kind` (`None` when local).
    pub(crate) signal: Option<&'static str>,
    /// The strategy for the app's own identity, when the context decides it.
    pub(crate) app_auth_type: Option<String>,
    /// How a user's identity arrives: `forwarded_token`, or `invoker` (Model Serving only).
    pub(crate) user_identity: &'static str,
    pub(crate) reason: String,
}

/// Counts per status.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Summary {
    pub(crate) pass: usize,
    pub(crate) warn: usize,
    pub(crate) fail: usize,
    pub(crate) skip: usize,
}

/// The whole diagnosis.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub(crate) version: u32,
    pub(crate) context: ContextInfo,
    pub(crate) config: Vec<ConfigEntry>,
    pub(crate) checks: Vec<Check>,
    pub(crate) summary: Summary,
    /// False when any check failed; `dbapp doctor` then exits with status 1.
    pub(crate) ok: bool,
}

/// What `dbapp doctor` was asked.
#[derive(Debug, Clone)]
pub(crate) struct Input {
    /// The environment snapshot, the same one the server's settings loader reads.
    pub(crate) vars: Environment,
    /// `--user-token`, which wins over `DATABRICKS_USER_TOKEN`.
    pub(crate) user_token_flag: Option<String>,
    /// Where `app.yaml`/`databricks.yml` are looked for.
    pub(crate) manifest_dir: PathBuf,
    /// The budget of each network probe.
    pub(crate) timeout: Duration,
}

impl Input {
    /// The user token to check and where it came from.
    pub(crate) fn user_token(&self) -> Option<(String, &'static str)> {
        if let Some(token) = self
            .user_token_flag
            .as_ref()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
        {
            return Some((token, "flag --user-token"));
        }
        self.vars
            .get("DATABRICKS_USER_TOKEN")
            .map(|t| (t, "environment variable DATABRICKS_USER_TOKEN"))
    }
}

/// Runs every check and assembles the report.
pub(crate) async fn diagnose(input: &Input) -> Report {
    let env = |name: &str| input.vars.get(name);
    let context = Context::detect(&env);
    let mut checks = Vec::new();

    checks.push(workspace::settings_load(input));
    let auth = workspace::resolve_app_config(input);
    checks.push(auth.check.clone());
    let host_check = workspace::host_reachable(input, &auth).await;
    let host_ok = host_check.status != Status::Fail;
    checks.push(host_check);
    let app_client = if host_ok {
        let (check, client) = workspace::app_login(input, &auth).await;
        checks.push(check);
        client
    } else {
        checks.push(Check::skip(
            "auth.app",
            "not attempted: the workspace host is not usable (see host.reachable)",
        ));
        None
    };
    let (user_check, user_login) = workspace::user_token(input, &auth, host_ok).await;
    checks.push(user_check);
    checks.extend(lakebase::checks(input, app_client.as_ref()).await);
    checks.push(workspace::warehouse(input));
    checks.push(workspace::warehouse_state(input, app_client.as_ref(), user_login.as_ref()).await);
    let spaces = manifest::genie_spaces(&input.manifest_dir);
    checks.push(workspace::genie_access(input, user_login.as_ref(), &spaces).await);
    let assistant = input.vars.get("DBAPP_ASSISTANT_ENDPOINT");
    checks.extend(manifest::checks(&input.manifest_dir, assistant.as_deref()));

    let config = config_entries(input, auth.config.as_ref());
    let mut summary = Summary::default();
    for check in &checks {
        match check.status {
            Status::Pass => summary.pass += 1,
            Status::Warn => summary.warn += 1,
            Status::Fail => summary.fail += 1,
            Status::Skip => summary.skip += 1,
        }
    }
    Report {
        version: REPORT_VERSION,
        context: ContextInfo {
            kind: match context.kind() {
                ContextKind::DatabricksApps => "databricks_apps",
                ContextKind::ModelServing => "model_serving",
                ContextKind::Notebook => "notebook",
                _ => "local",
            },
            signal: context.signal(),
            app_auth_type: context.app_auth_type().map(|a| a.to_string()),
            user_identity: match context.user_identity() {
                UserIdentity::Invoker => "invoker",
                _ => "forwarded_token",
            },
            reason: context.reason().to_owned(),
        },
        config,
        ok: summary.fail == 0,
        summary,
        checks,
    }
}

/// Masks a secret, keeping what helps a diagnosis: its length and its kind.
pub(crate) fn mask(value: &str) -> String {
    let kind = if dbapp_store::lakebase::looks_like_pat(value) {
        ", a personal access token dapi…"
    } else if dbapp_store::lakebase::token_subject(value).is_some() {
        ", JWT-shaped"
    } else {
        ""
    };
    format!("**** ({} chars{kind})", value.chars().count())
}

/// A URL with its password masked.
fn mask_url(value: &str) -> String {
    match url::Url::parse(value) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("****"));
            url.to_string()
        }
        Ok(url) => url.to_string(),
        Err(_) => mask(value),
    }
}

/// The effective configuration: the Databricks attributes as the resolved [`Config`] sees them,
/// then the server's own variables with their defaults.
fn config_entries(input: &Input, config: Option<&Config>) -> Vec<ConfigEntry> {
    let mut entries = Vec::new();
    let vars = &input.vars;
    let from_env = |name: &str, secret: bool, default: Option<&str>| {
        let (value, source) = match vars.get(name) {
            Some(v) => (Some(v), format!("environment variable {name}")),
            None => match default {
                Some(d) => (Some(d.to_owned()), "default".to_owned()),
                None => (None, "unset".to_owned()),
            },
        };
        ConfigEntry {
            name: name.to_owned(),
            value: value.map(|v| if secret { mask(&v) } else { v }),
            source,
            secret,
        }
    };
    let databricks = [
        ("DATABRICKS_HOST", "host", false),
        ("DATABRICKS_AUTH_TYPE", "auth_type", false),
        ("DATABRICKS_CLIENT_ID", "client_id", false),
        ("DATABRICKS_CLIENT_SECRET", "client_secret", true),
        ("DATABRICKS_TOKEN", "token", true),
        ("DATABRICKS_CONFIG_PROFILE", "profile", false),
        ("DATABRICKS_WORKSPACE_ID", "workspace_id", false),
        ("DATABRICKS_WAREHOUSE_ID", "warehouse_id", false),
    ];
    for (name, attribute, secret) in databricks {
        let resolved = config.and_then(|c| {
            let source = c.source_of(attribute)?;
            let value = match attribute {
                "host" => Some(c.host().as_str().to_owned()),
                "auth_type" => Some(c.auth_type().to_string()),
                "client_id" => c.client_id().map(str::to_owned),
                "client_secret" => c
                    .client_secret()
                    .map(|s| secrecy::ExposeSecret::expose_secret(s).to_owned()),
                "token" => c
                    .token()
                    .map(|s| secrecy::ExposeSecret::expose_secret(s).to_owned()),
                "profile" => c.profile().map(str::to_owned),
                "workspace_id" => c.workspace_id().map(str::to_owned),
                "warehouse_id" => c.warehouse_id().map(str::to_owned),
                _ => None,
            }?;
            let source = match source {
                Source::Derived => "derived from the credentials present".to_owned(),
                other => other.to_string(),
            };
            Some((value, source))
        });
        entries.push(match resolved {
            Some((value, source)) => ConfigEntry {
                name: name.to_owned(),
                value: Some(if secret { mask(&value) } else { value }),
                source,
                secret,
            },
            None => from_env(name, secret, None),
        });
    }
    entries.push(from_env("DATABRICKS_APP_NAME", false, None));
    entries.push(from_env("DATABRICKS_APP_PORT", false, Some("8000")));
    entries.push(from_env("DBAPP_ASSISTANT_ENDPOINT", false, None));
    entries.push(match input.user_token() {
        Some((token, source)) => ConfigEntry {
            name: "DATABRICKS_USER_TOKEN".to_owned(),
            value: Some(mask(&token)),
            source: source.to_owned(),
            secret: true,
        },
        None => from_env("DATABRICKS_USER_TOKEN", true, None),
    });
    for (name, secret, default) in [
        ("PGHOST", false, None),
        ("PGPORT", false, Some("5432")),
        (
            "PGDATABASE",
            false,
            Some(dbapp_store::lakebase::DEFAULT_DATABASE),
        ),
        ("PGUSER", false, None),
        ("PGSSLMODE", false, Some("require")),
        ("PGSSLROOTCERT", false, None),
        ("PGAPPNAME", false, None),
        ("PGPASSWORD", true, None),
        ("LAKEBASE_INSTANCE_NAME", false, None),
        ("LAKEBASE_ENDPOINT", false, None),
        ("LAKEBASE_PROJECT", false, None),
        ("LAKEBASE_BRANCH", false, None),
    ] {
        let mut entry = from_env(name, secret, default);
        if name == "PGUSER" && entry.value.is_none() {
            entry.source = "unset: the minted token's sub names the role".to_owned();
        }
        entries.push(entry);
    }
    let mut database_url = from_env("DATABASE_URL", false, None);
    database_url.value = database_url.value.map(|v| mask_url(&v));
    database_url.secret = true;
    entries.push(database_url);
    // dbapp's own settings, with the server's defaults.
    let defaults =
        serde_json::to_value(dbapp_server::config::DbappSettings::default()).unwrap_or_default();
    if let Some(defaults) = defaults.as_object() {
        for (key, default) in defaults {
            let name = format!("DBAPP_{}", key.to_ascii_uppercase());
            let default = match default {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(items) => items
                    .iter()
                    .filter_map(|i| i.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            let default = (!default.is_empty()).then_some(default);
            entries.push(from_env(&name, false, default.as_deref()));
        }
    }
    entries
}

/// The report for people: context, configuration, checks, summary; the status labels in colour
/// when `paint` says so.
pub(crate) fn render_human(report: &Report, paint: Paint) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "dbapp doctor\n");
    let _ = writeln!(out, "Context: {}", report.context.reason);
    if let Some(signal) = report.context.signal {
        let _ = writeln!(out, "  detected by {signal}");
    }
    let _ = writeln!(out, "\nConfiguration (effective value, source):");
    let width = report
        .config
        .iter()
        .map(|e| e.name.len())
        .max()
        .unwrap_or(0);
    for entry in &report.config {
        let value = entry.value.as_deref().unwrap_or("-");
        let _ = writeln!(out, "  {:width$}  {value}  ({})", entry.name, entry.source);
    }
    let _ = writeln!(out, "\nChecks:");
    let width = report.checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
    for check in &report.checks {
        let _ = writeln!(
            out,
            "  {}  {:width$}  {}",
            paint.paint(check.status.tone(), check.status.label()),
            check.id,
            check.message
        );
        if let Some(fix) = &check.fix {
            let _ = writeln!(out, "        {:width$}  fix: {fix}", "");
        }
    }
    let s = &report.summary;
    let _ = writeln!(
        out,
        "\n{} passed, {} warnings, {} failed, {} skipped{}",
        s.pass,
        s.warn,
        s.fail,
        s.skip,
        if report.ok {
            ""
        } else {
            " — fix the failures above"
        }
    );
    out
}

/// The error and its sources, joined with `: ` (reqwest's and sqlx's top-level messages alone
/// say little).
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_with_their_kind_only() {
        let masked = mask("dapi0123456789abcdef");
        assert!(!masked.contains("0123"), "{masked}");
        assert!(masked.contains("personal access token"), "{masked}");
        assert_eq!(
            mask_url("postgres://u:hunter2@h:5432/db"),
            "postgres://u:****@h:5432/db"
        );
    }

    #[test]
    fn blank_variables_count_as_unset() {
        let vars = Environment::from_pairs([("PGHOST", "  "), ("PGUSER", "me")]);
        assert_eq!(vars.get("PGHOST"), None);
        assert_eq!(vars.get("PGUSER").as_deref(), Some("me"));
    }
}
