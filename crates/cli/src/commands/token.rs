//! `dbapp token`: credentials for local work, printed for people or for `eval`.
//!
//! - Without `--lakebase`: a **user** token for local calls (`DATABRICKS_USER_TOKEN` of
//!   `dbapp dev --workspace` and `dbapp doctor`): a profile's personal access token when the
//!   profile has one, else the Databricks CLI's login (`databricks auth token`, through
//!   dbapp-databricks' `databricks-cli` strategy). The app's own credentials
//!   (`DATABRICKS_CLIENT_ID/SECRET`) and `DATABRICKS_TOKEN` are ignored: they are not a user's.
//!   Printed bare, or with `--export` as `export DATABRICKS_USER_TOKEN=…`.
//! - With `--lakebase`: the `PG*` variables for psql with a freshly minted Lakebase credential,
//!   minted by whoever the configuration names (the app's service principal when
//!   `DATABRICKS_CLIENT_ID/SECRET` are set, else the profile or the CLI's user) from
//!   `LAKEBASE_INSTANCE_NAME` or `LAKEBASE_ENDPOINT`. `PGHOST` is looked up from the instance or
//!   endpoint unless set; `PGUSER` is `PGUSER`, else the identity's SCIM `userName` (the e-mail of
//!   a person, the application id of a service principal), else the token's `sub`.

use anyhow::{Context, bail};
use dbapp_databricks::{AuthType, Client, Config, ConfigSettings, Environment};
use dbapp_server::config::Settings;
use dbapp_server::startup::workspace_client;
use dbapp_store::lakebase::{DEFAULT_DATABASE, DEFAULT_PORT, token_subject};
use dbapp_store::workspace::CredentialTarget;
use secrecy::ExposeSecret;

#[derive(Debug, clap::Args)]
pub(crate) struct TokenArgs {
    /// Profile of ~/.databrickscfg (default: DATABRICKS_CONFIG_PROFILE, else the default profile).
    #[arg(long)]
    profile: Option<String>,
    /// Workspace URL (default: DATABRICKS_HOST, else the profile's host).
    #[arg(long)]
    host: Option<String>,
    /// Print `export NAME=value` lines, for `eval "$(dbapp token --export)"`.
    #[arg(long)]
    export: bool,
    /// Print PGHOST, PGPORT, PGDATABASE, PGUSER, PGSSLMODE and PGPASSWORD (a freshly minted
    /// Lakebase credential) for psql.
    #[arg(long)]
    lakebase: bool,
}

pub(crate) async fn run(args: TokenArgs, env: &Environment) -> anyhow::Result<()> {
    if args.lakebase {
        return lakebase(&args, env).await;
    }
    let token = user_token(&args, env).await?;
    println!(
        "{}",
        line("DATABRICKS_USER_TOKEN", &token, args.export, true)
    );
    Ok(())
}

fn settings(args: &TokenArgs) -> ConfigSettings {
    let mut settings = ConfigSettings::default();
    settings.host.clone_from(&args.host);
    settings.profile.clone_from(&args.profile);
    settings
}

/// A user's token: a profile's PAT, else the Databricks CLI's.
async fn user_token(args: &TokenArgs, env: &Environment) -> anyhow::Result<String> {
    // Credentials of the app's own identity are not a user's; hiding them also keeps a stray
    // service principal in the environment from causing a dual-auth conflict here.
    let user_env = |name: &str| match name {
        "DATABRICKS_CLIENT_ID"
        | "DATABRICKS_CLIENT_SECRET"
        | "DATABRICKS_TOKEN"
        | "DATABRICKS_AUTH_TYPE" => None,
        _ => env.get(name),
    };
    let config = Config::resolve(settings(args), &user_env)
        .context("cannot tell which workspace to get a token for")?;
    match config.auth_type() {
        AuthType::Pat => Ok(config
            .token()
            .context("the profile has no token")?
            .expose_secret()
            .to_owned()),
        AuthType::DatabricksCli => {
            let host = config.host().as_str().to_owned();
            let client = Client::new(config)?;
            let token = client.app_credentials().token().await.with_context(|| {
                format!(
                    "the Databricks CLI gave no token for {host}: sign in with `databricks auth \
                     login --host {host}`, or name a profile with a token (--profile)"
                )
            })?;
            Ok(token.expose_secret().to_owned())
        }
        AuthType::OAuthM2m => bail!(
            "{} uses a service principal's client credentials (M2M): that is not a user's token. \
             Sign in as yourself with `databricks auth login` and name that profile, or pass --host",
            config.profile().map_or_else(
                || "the configuration".to_owned(),
                |p| format!("profile {p}")
            )
        ),
        other => bail!("auth type {other} gives no user token; use `databricks auth login`"),
    }
}

/// The PG* variables with a freshly minted credential.
async fn lakebase(args: &TokenArgs, env: &Environment) -> anyhow::Result<()> {
    // The same loader as `serve`: a configuration serve would refuse is refused here too.
    let mut loaded = Settings::load(env)?;
    loaded.workspace = settings(args);
    let client = workspace_client(&loaded)
        .context("cannot resolve the identity that mints the Lakebase credential")?;
    let target = CredentialTarget::from_env(env.lookup())?.context(
        "set LAKEBASE_INSTANCE_NAME (Provisioned), or LAKEBASE_ENDPOINT or LAKEBASE_PROJECT and \
         LAKEBASE_BRANCH (Autoscaling), to say which Lakebase to mint a credential for",
    )?;
    let app = client.as_app();
    let credential = target
        .mint(&app)
        .await
        .context("cannot mint a Lakebase credential (`dbapp doctor` says why)")?;
    let host = match env.get("PGHOST") {
        Some(host) => host,
        None => target
            .host(&app)
            .await?
            .with_context(|| format!("{target} has no host yet"))?,
    };
    let token = credential.token.expose_secret();
    let user = match env.get("PGUSER") {
        Some(user) => user,
        None => match app.me().await {
            Ok(me) => me.user_name,
            Err(_) => token_subject(token).context("cannot tell the role name: set PGUSER")?,
        },
    };
    let port = env
        .get("PGPORT")
        .unwrap_or_else(|| DEFAULT_PORT.to_string());
    let database = env
        .get("PGDATABASE")
        .unwrap_or_else(|| DEFAULT_DATABASE.to_owned());
    let ssl_mode = env.get("PGSSLMODE").unwrap_or_else(|| "require".to_owned());
    for (name, value, secret) in [
        ("PGHOST", host.as_str(), false),
        ("PGPORT", port.as_str(), false),
        ("PGDATABASE", database.as_str(), false),
        ("PGUSER", user.as_str(), false),
        ("PGSSLMODE", ssl_mode.as_str(), false),
        ("PGPASSWORD", token, true),
    ] {
        println!("{}", line(name, value, args.export, secret));
    }
    eprintln!(
        "# PGPASSWORD is a Lakebase credential valid for new logins until {}",
        credential.expires_at.to_rfc3339()
    );
    Ok(())
}

/// `NAME=value` (or `export NAME=value`), the value single-quoted when a shell would need it.
/// A bare token prints as it is unless `--export` (then `export DATABRICKS_USER_TOKEN=…`).
fn line(name: &str, value: &str, export: bool, bare_when_plain: bool) -> String {
    let safe = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c));
    let quoted = if safe {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    };
    match (export, bare_when_plain && name == "DATABRICKS_USER_TOKEN") {
        (true, _) => format!("export {name}={quoted}"),
        (false, true) => value.to_owned(),
        (false, false) => format!("{name}={quoted}"),
    }
}

#[cfg(test)]
mod tests {
    use super::line;

    #[test]
    fn values_are_quoted_only_when_a_shell_needs_it() {
        assert_eq!(
            line("PGUSER", "a@b.com", true, false),
            "export PGUSER=a@b.com"
        );
        assert_eq!(line("PGUSER", "it's", false, false), r"PGUSER='it'\''s'");
        assert_eq!(line("DATABRICKS_USER_TOKEN", "tok", false, true), "tok");
    }
}
