//! Doctor checks about the workspace: the server's settings load, one authentication method (the
//! dual-auth trap of `shared/UPSTREAM.md` §2.5), the host answers its discovery documents, the
//! app's own identity logs in, a user token resolves to an identity, a warehouse is set for
//! table previews, and the user can reach the Genie spaces the app declares.

use std::time::Instant;

use dbapp_databricks::config::Source;
use dbapp_databricks::{
    AuthType, Client, Config, ConfigError, ConfigSettings, ErrorKind, RetryPolicy, UserToken,
    WorkspaceHost,
};
use secrecy::SecretString;

use super::manifest::DeclaredSpace;
use super::{Check, Input, error_chain};

/// The app's configuration as `dbapp serve` would resolve it, and the verdict on its
/// authentication method.
#[derive(Debug, Clone)]
pub(crate) struct AppAuth {
    pub(crate) check: Check,
    pub(crate) config: Option<Config>,
    /// The host, even when the credentials could not be resolved.
    pub(crate) host: Option<Result<WorkspaceHost, String>>,
}

/// `config.load`: the server's own loader ([`dbapp_server::config::Settings::load`]), on the
/// same snapshot, so this check and `dbapp serve` cannot disagree.
pub(crate) fn settings_load(input: &Input) -> Check {
    match dbapp_server::config::Settings::load(&input.vars) {
        Ok(_) => Check::pass(
            "config.load",
            "the server's settings load and validate (dbapp serve would start)",
        ),
        Err(error) => Check::fail(
            "config.load",
            format!("dbapp serve would refuse to start: {error}"),
            format!(
                "correct {} (the checks below say how)",
                error.variables.join(", ")
            ),
        ),
    }
}

fn base_settings(input: &Input) -> ConfigSettings {
    let mut settings = ConfigSettings::default();
    settings.http_timeout = Some(input.timeout);
    settings.connect_timeout = Some(input.timeout);
    settings.retry = Some(RetryPolicy::never());
    settings
}

/// `auth.method`: resolves the app's configuration from the environment (and a profile), the way
/// the server does, and names a dual-auth conflict.
pub(crate) fn resolve_app_config(input: &Input) -> AppAuth {
    let env = |name: &str| input.vars.get(name);
    let host = input
        .vars
        .get("DATABRICKS_HOST")
        .map(|raw| WorkspaceHost::parse(&raw).map_err(|e| e.to_string()));
    let resolved = Config::resolve(base_settings(input), &env);
    let in_apps = input.vars.is_set("DATABRICKS_APP_NAME");
    match resolved {
        Ok(config) => {
            let check = latent_conflict(input, &config).unwrap_or_else(|| {
                let how = match config.source_of("auth_type") {
                    Some(Source::Derived) | None => "the only kind of credential configured",
                    Some(_) => "pinned by DATABRICKS_AUTH_TYPE",
                };
                let note = if config.auth_type() == AuthType::DatabricksCli
                    && matches!(config.source_of("auth_type"), Some(Source::Derived) | None)
                {
                    " (nothing else is configured, so the Databricks CLI's login is used)"
                } else {
                    ""
                };
                Check::pass(
                    "auth.method",
                    format!(
                        "one authentication method for the app's identity: {} ({how}){note}",
                        config.auth_type()
                    ),
                )
            });
            let host = Some(Ok(config.host().clone()));
            AppAuth {
                check,
                config: Some(config),
                host,
            }
        }
        Err(error @ ConfigError::MultipleAuthMethods { .. }) => {
            let fix = if in_apps {
                "remove DATABRICKS_TOKEN (and any other credential) from the app's environment: in \
                 Databricks Apps the app's identity is its service principal \
                 (DATABRICKS_CLIENT_ID/SECRET, injected) and user calls use the forwarded user \
                 token; or pin DATABRICKS_AUTH_TYPE=oauth-m2m"
            } else {
                "keep one kind of credential in the environment (unset DATABRICKS_TOKEN or \
                 DATABRICKS_CLIENT_ID/SECRET), or pin the one to use with DATABRICKS_AUTH_TYPE \
                 (pat, oauth-m2m or databricks-cli); a user token for local calls belongs in \
                 DATABRICKS_USER_TOKEN"
            };
            AppAuth {
                check: Check::fail("auth.method", format!("the dual-auth trap: {error}"), fix),
                config: None,
                host,
            }
        }
        Err(ConfigError::MissingHost) => AppAuth {
            check: Check::skip(
                "auth.method",
                "no workspace host is configured, so no credentials were resolved (see host.reachable)",
            ),
            config: None,
            host: None,
        },
        Err(error) => {
            let fix = match &error {
                ConfigError::ProfileNotFound { .. } => {
                    "name an existing profile in DATABRICKS_CONFIG_PROFILE (`databricks auth profiles` lists them)"
                }
                ConfigError::MissingCredential { .. } => "set the variable named above",
                ConfigError::UnknownAuthType(_) => {
                    "set DATABRICKS_AUTH_TYPE to pat, oauth-m2m, databricks-cli or model-serving"
                }
                ConfigError::InvalidHost { .. } => {
                    "set DATABRICKS_HOST to the workspace URL, e.g. https://dbc-1234.cloud.databricks.com"
                }
                _ => "correct the configuration named above",
            };
            AppAuth {
                check: Check::fail(
                    "auth.method",
                    format!("the app's credentials cannot be resolved: {error}"),
                    fix,
                ),
                config: None,
                host,
            }
        }
    }
}

/// With `DATABRICKS_AUTH_TYPE` pinned, dbapp is safe, but other Databricks tools in the same
/// environment are not: resolve again without the pin to find out.
fn latent_conflict(input: &Input, config: &Config) -> Option<Check> {
    input.vars.get("DATABRICKS_AUTH_TYPE")?;
    let unpinned = |name: &str| {
        if name == "DATABRICKS_AUTH_TYPE" {
            None
        } else {
            input.vars.get(name)
        }
    };
    match Config::resolve(base_settings(input), &unpinned) {
        Err(ConfigError::MultipleAuthMethods { groups, .. }) => Some(Check::warn(
            "auth.method",
            format!(
                "DATABRICKS_AUTH_TYPE={} pins dbapp's strategy, but {} credentials are all set: \
                 any Databricks SDK or CLI run in this environment without auth_type fails with \
                 \"validate: more than one authorization method configured: {}\"",
                config.auth_type(),
                groups.join(" and "),
                groups.join(" and ")
            ),
            "remove the credentials that are not used",
        )),
        _ => None,
    }
}

/// `host.reachable`: `GET /.well-known/databricks-config` and the OIDC discovery document, with
/// the short timeout and no retries.
pub(crate) async fn host_reachable(input: &Input, auth: &AppAuth) -> Check {
    const ID: &str = "host.reachable";
    let host = match &auth.host {
        None => {
            return Check::fail(
                ID,
                "no workspace host is configured",
                "set DATABRICKS_HOST to the workspace URL (https://<workspace>.cloud.databricks.com), \
                 or name a ~/.databrickscfg profile with DATABRICKS_CONFIG_PROFILE",
            );
        }
        Some(Err(reason)) => {
            return Check::fail(
                ID,
                reason.clone(),
                "set DATABRICKS_HOST to the workspace URL, e.g. https://dbc-1234.cloud.databricks.com",
            );
        }
        Some(Ok(host)) => host.clone(),
    };
    let http = match reqwest::Client::builder()
        .timeout(input.timeout)
        .connect_timeout(input.timeout)
        .build()
    {
        Ok(http) => http,
        Err(e) => return Check::fail(ID, error_chain(&e), "report this as a dbapp bug"),
    };
    let url = host.join("/.well-known/databricks-config");
    let started = Instant::now();
    let secs = input.timeout.as_secs_f64();
    let unreachable_fix = "check DATABRICKS_HOST (copy the workspace URL from the browser), the \
                           network, VPN and proxy settings; the Databricks SDKs would retry here \
                           for about 5 minutes before failing";
    let response = match http.get(&url).send().await {
        Ok(response) => response,
        Err(e) if e.is_timeout() => {
            return Check::fail(
                ID,
                format!("{url} did not answer within {secs} s"),
                unreachable_fix,
            );
        }
        Err(e) => {
            return Check::fail(
                ID,
                format!("cannot reach {}: {}", host.as_str(), error_chain(&e)),
                unreachable_fix,
            );
        }
    };
    let status = response.status();
    let elapsed = started.elapsed().as_millis();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Check::warn(
            ID,
            format!(
                "{} answers ({elapsed} ms), but has no /.well-known/databricks-config (404)",
                host.as_str()
            ),
            "make sure DATABRICKS_HOST is a workspace URL; without host metadata the Python SDK's \
             oauth-m2m fails (dbapp falls back to /oidc/.well-known/oauth-authorization-server)",
        );
    }
    let not_databricks = format!(
        "{url} answered {status}, not with Databricks host metadata: is DATABRICKS_HOST a workspace URL?"
    );
    if !status.is_success() {
        return Check::fail(
            ID,
            not_databricks,
            "set DATABRICKS_HOST to the workspace URL",
        );
    }
    let Ok(metadata) = response.json::<serde_json::Value>().await else {
        return Check::fail(
            ID,
            not_databricks,
            "set DATABRICKS_HOST to the workspace URL",
        );
    };
    let Some(oidc) = metadata["oidc_endpoint"].as_str() else {
        return Check::fail(
            ID,
            not_databricks,
            "set DATABRICKS_HOST to the workspace URL",
        );
    };
    let workspace_id = metadata["workspace_id"].as_str().unwrap_or("?");
    let cloud = metadata["cloud"].as_str().unwrap_or("?");
    let discovery = format!(
        "{}/.well-known/oauth-authorization-server",
        oidc.trim_end_matches('/')
    );
    let token_endpoint = match http.get(&discovery).send().await {
        Ok(r) if r.status().is_success() => r
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|d| d["token_endpoint"].as_str().map(str::to_owned)),
        _ => None,
    };
    let Some(token_endpoint) = token_endpoint else {
        return Check::warn(
            ID,
            format!(
                "{} answers, but its OIDC discovery document {discovery} does not name a token endpoint",
                host.as_str()
            ),
            "OAuth (M2M and CLI logins) needs it; check that DATABRICKS_HOST is the workspace URL",
        );
    };
    if let Some(configured) = input.vars.get("DATABRICKS_WORKSPACE_ID")
        && workspace_id != "?"
        && configured != workspace_id
    {
        return Check::warn(
            ID,
            format!(
                "{} is workspace {workspace_id}, but DATABRICKS_WORKSPACE_ID={configured}",
                host.as_str()
            ),
            "unset DATABRICKS_WORKSPACE_ID or correct it (it is sent on every call)",
        );
    }
    Check::pass(
        ID,
        format!(
            "{} answers in {elapsed} ms: workspace {workspace_id} ({cloud}), token endpoint {token_endpoint}",
            host.as_str()
        ),
    )
}

/// `auth.app`: the app's own identity logs in and resolves (SCIM Me). Returns the client for the
/// Lakebase checks when it does.
pub(crate) async fn app_login(input: &Input, auth: &AppAuth) -> (Check, Option<Client>) {
    const ID: &str = "auth.app";
    let Some(config) = &auth.config else {
        return (
            Check::skip(
                ID,
                "not attempted: the app's credentials cannot be resolved (see auth.method)",
            ),
            None,
        );
    };
    let client = match Client::new(config.clone()) {
        Ok(client) => client,
        Err(e) => {
            return (
                Check::fail(ID, error_chain(&e), "correct the configuration named above"),
                None,
            );
        }
    };
    let auth_type = config.auth_type();
    let implicit_cli = auth_type == AuthType::DatabricksCli
        && matches!(config.source_of("auth_type"), Some(Source::Derived) | None);
    match client.as_app().with_timeout(input.timeout).me().await {
        Ok(me) => {
            let kind = if me.is_service_principal() {
                "service principal"
            } else {
                "user"
            };
            let note = if input.vars.is_set("DATABRICKS_APP_NAME") && !me.is_service_principal() {
                " — in Databricks Apps the app should be its service principal"
            } else {
                ""
            };
            (
                Check::pass(
                    ID,
                    format!(
                        "the app's identity logs in with {auth_type}: {} ({kind}){note}",
                        me.user_name
                    ),
                ),
                Some(client),
            )
        }
        Err(error) if implicit_cli && !input.vars.is_set("DATABRICKS_APP_NAME") => (
            Check::warn(
                ID,
                format!(
                    "no app credentials are configured, and the Databricks CLI gave none: {}",
                    error_chain(&error)
                ),
                "fine for `dbapp dev` against the emulator; for a real workspace run `databricks \
                 auth login --host <workspace>`, or set DATABRICKS_CLIENT_ID/SECRET of a service \
                 principal (needed to mint Lakebase credentials)",
            ),
            None,
        ),
        Err(error) => {
            let fix = match (auth_type, error.kind()) {
                (_, ErrorKind::Transport | ErrorKind::Timeout | ErrorKind::Unavailable) => {
                    "the workspace did not answer: see host.reachable".to_owned()
                }
                (AuthType::OAuthM2m, _) => {
                    "check DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET: \
                    they must be an OAuth secret of a service principal of this workspace (in \
                    Databricks Apps they are injected for the app's own service principal: never \
                    set them in app.yaml)"
                        .to_owned()
                }
                (AuthType::Pat, _) => "DATABRICKS_TOKEN is refused: create a new personal access \
                    token, or unset it and sign in with `databricks auth login`"
                    .to_owned(),
                (AuthType::DatabricksCli, _) => format!(
                    "sign in with `databricks auth login --host {}` (or configure a service \
                     principal with DATABRICKS_CLIENT_ID/SECRET)",
                    config.host().as_str()
                ),
                _ => "check the credentials named in auth.method".to_owned(),
            };
            (
                Check::fail(
                    ID,
                    format!(
                        "the app's identity ({auth_type}) cannot log in: {}",
                        error_chain(&error)
                    ),
                    fix,
                ),
                None,
            )
        }
    }
}

/// A user token that resolved, with a client calling as that user, for the checks that follow.
#[derive(Debug)]
pub(crate) struct UserLogin {
    client: Client,
    token: UserToken,
    user_name: String,
}

/// `auth.user_token`: a user token (flag or `DATABRICKS_USER_TOKEN`) resolves to an identity,
/// called exactly as the server calls for a user (explicit `pat` auth type, nothing else).
pub(crate) async fn user_token(
    input: &Input,
    auth: &AppAuth,
    host_ok: bool,
) -> (Check, Option<UserLogin>) {
    let mut login = None;
    let check = check_user_token(input, auth, host_ok, &mut login).await;
    (check, login)
}

async fn check_user_token(
    input: &Input,
    auth: &AppAuth,
    host_ok: bool,
    login: &mut Option<UserLogin>,
) -> Check {
    const ID: &str = "auth.user_token";
    let Some((token, source)) = input.user_token() else {
        return Check::skip(
            ID,
            "no user token given (DATABRICKS_USER_TOKEN or --user-token); in Databricks Apps the \
             proxy forwards one with every request",
        );
    };
    let (Some(Ok(host)), true) = (&auth.host, host_ok) else {
        return Check::skip(ID, "not attempted: the workspace host is not usable");
    };
    let fresh = "get a fresh token: `export DATABRICKS_USER_TOKEN=$(dbapp token)` (after \
                 `databricks auth login` if needed)";
    let user = match UserToken::parse(&token) {
        Ok(user) => user,
        Err(e) => {
            return Check::fail(
                ID,
                format!("the user token from {source} is malformed: {e}"),
                fresh,
            );
        }
    };
    let mut settings = ConfigSettings::new(host.as_str(), AuthType::Pat)
        .token(SecretString::from(token.clone()))
        .retry(RetryPolicy::never())
        .http_timeout(input.timeout);
    settings.connect_timeout = Some(input.timeout);
    let client = match Config::resolve(settings, &|_| None).map(Client::new) {
        Ok(Ok(client)) => client,
        Ok(Err(e)) => return Check::fail(ID, error_chain(&e), "report this as a dbapp bug"),
        Err(e) => return Check::fail(ID, e.to_string(), "report this as a dbapp bug"),
    };
    match client.as_user(&user).me().await {
        Ok(me) => {
            let check = Check::pass(
                ID,
                format!(
                    "the user token from {source} resolves to {}{}",
                    me.user_name,
                    if me.is_service_principal() {
                        " (a service principal, not a person)"
                    } else {
                        ""
                    }
                ),
            );
            *login = Some(UserLogin {
                client,
                token: user,
                user_name: me.user_name,
            });
            check
        }
        Err(error) => {
            let what = match error.kind() {
                ErrorKind::TokenExpired => "the workspace says the user token has expired",
                ErrorKind::InvalidToken | ErrorKind::Unauthenticated => {
                    "the workspace refused the user token"
                }
                ErrorKind::PermissionDenied => {
                    "the user token may not read its own identity (scope iam.current-user:read)"
                }
                _ => "the user token could not be checked",
            };
            Check::fail(
                ID,
                format!("{what} (from {source}): {}", error.message()),
                fresh,
            )
        }
    }
}

/// `warehouse`: table previews need `DATABRICKS_WAREHOUSE_ID`.
pub(crate) fn warehouse(input: &Input) -> Check {
    match input.vars.get("DATABRICKS_WAREHOUSE_ID") {
        Some(id) => Check::pass(
            "warehouse",
            format!(
                "DATABRICKS_WAREHOUSE_ID={id}: table previews run there as the user (scope sql; the \
                 user needs CAN_USE on it)"
            ),
        ),
        None => Check::warn(
            "warehouse",
            "DATABRICKS_WAREHOUSE_ID is not set: table previews answer 503 WAREHOUSE_NOT_CONFIGURED",
            "set DATABRICKS_WAREHOUSE_ID to a SQL warehouse id (in app.yaml: `valueFrom: sql-warehouse`, \
             a sql_warehouse resource of the app)",
        ),
    }
}

/// `warehouse.state`: the warehouse of `DATABRICKS_WAREHOUSE_ID` exists, the app and the user
/// (each when it logged in) may use it, and it is running. A stopped warehouse is a warning: the
/// first statement waits while it starts.
pub(crate) async fn warehouse_state(
    input: &Input,
    app: Option<&Client>,
    user: Option<&UserLogin>,
) -> Check {
    const ID: &str = "warehouse.state";
    let Some(id) = input.vars.get("DATABRICKS_WAREHOUSE_ID") else {
        return Check::skip(ID, "not attempted: DATABRICKS_WAREHOUSE_ID is not set");
    };
    if app.is_none() && user.is_none() {
        return Check::skip(
            ID,
            "not attempted: neither the app nor a user token logged in (see auth.app, auth.user_token)",
        );
    }
    let mut seen = None;
    let mut who = Vec::new();
    let principals = [
        app.map(|client| ("the app", client.as_app().with_timeout(input.timeout))),
        user.map(|login| {
            (
                login.user_name.as_str(),
                login
                    .client
                    .as_user(&login.token)
                    .with_timeout(input.timeout),
            )
        }),
    ];
    for (name, workspace) in principals.into_iter().flatten() {
        match workspace.get_warehouse(&id).await {
            Ok(warehouse) => {
                who.push(name.to_owned());
                seen = Some(warehouse);
            }
            Err(error) => {
                let (what, fix) = match error.kind() {
                    ErrorKind::NotFound => (
                        format!("warehouse {id} does not exist (asked as {name})"),
                        "set DATABRICKS_WAREHOUSE_ID to the id of an existing SQL warehouse \
                         (SQL Warehouses → the warehouse → Connection details)"
                            .to_owned(),
                    ),
                    ErrorKind::PermissionDenied => (
                        format!("{name} may not use warehouse {id}"),
                        format!(
                            "grant {name} CAN_USE on the warehouse (for the app: a sql_warehouse \
                             resource with CAN_USE; for users: the warehouse's permissions)"
                        ),
                    ),
                    _ => (
                        format!("warehouse {id} could not be read as {name}"),
                        "see host.reachable and the auth checks".to_owned(),
                    ),
                };
                return Check::fail(ID, format!("{what}: {}", error.message()), fix);
            }
        }
    }
    let Some(warehouse) = seen else {
        return Check::skip(ID, "not attempted");
    };
    let who = who.join(" and ");
    let name = &warehouse.name;
    if warehouse.is_running() {
        Check::pass(
            ID,
            format!("warehouse {name} ({id}) is RUNNING; {who} may use it"),
        )
    } else if warehouse.is_deleted() {
        Check::fail(
            ID,
            format!("warehouse {name} ({id}) is {}", warehouse.state),
            "point DATABRICKS_WAREHOUSE_ID at a warehouse that is not deleted",
        )
    } else {
        Check::warn(
            ID,
            format!(
                "warehouse {name} ({id}) is {}; {who} may use it, but the first query waits \
                 while it starts",
                warehouse.state
            ),
            "start it before a demo (SQL Warehouses → Start), or use a serverless warehouse, \
             which starts in seconds",
        )
    }
}

/// `genie.access`: the user token's user can reach each Genie space of the app's `genie_space`
/// resources (`GET /api/2.0/genie/spaces/{id}` as the user, as the Genie routes call). Without
/// declared spaces, lists the spaces the user may use, which proves the Genie API answers them.
pub(crate) async fn genie_access(
    input: &Input,
    user: Option<&UserLogin>,
    spaces: &[DeclaredSpace],
) -> Check {
    const ID: &str = "genie.access";
    let Some(login) = user else {
        return Check::skip(
            ID,
            "not attempted: no user token logged in (see auth.user_token); the Genie routes ask \
             as the user",
        );
    };
    let name = login.user_name.as_str();
    let workspace = login
        .client
        .as_user(&login.token)
        .with_timeout(input.timeout);
    if spaces.is_empty() {
        return match workspace
            .list_genie_spaces(&dbapp_databricks::api::PageRequest::first(0))
            .await
        {
            Ok(page) => {
                let titles: Vec<&str> = page.items.iter().map(|s| s.title.as_str()).collect();
                Check::pass(
                    ID,
                    format!(
                        "no genie_space resources declared; {name} may use {} Genie space{}{}",
                        titles.len(),
                        if titles.len() == 1 { "" } else { "s" },
                        if titles.is_empty() {
                            String::new()
                        } else {
                            format!(
                                ": {}{}",
                                titles.join(", "),
                                if page.next_page_token.is_some() {
                                    ", …"
                                } else {
                                    ""
                                }
                            )
                        }
                    ),
                )
            }
            Err(error) => Check::fail(
                ID,
                format!(
                    "the Genie spaces could not be listed as {name}: {}",
                    error.message()
                ),
                match error.kind() {
                    ErrorKind::PermissionDenied => {
                        "request the genie scope in user_api_scopes (docs/obo-and-scopes.md); \
                         locally, get a token with it: `dbapp token`"
                    }
                    _ => "see host.reachable and the auth checks",
                },
            ),
        };
    }
    let mut reached = Vec::new();
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    for space in spaces {
        let id = &space.space_id;
        let key = &space.resource;
        match workspace.get_genie_space(id).await {
            Ok(found) => reached.push(format!("{} ({id})", found.title)),
            Err(error) => {
                let (what, fix) = match error.kind() {
                    ErrorKind::NotFound => (
                        format!(
                            "Genie space {id} of resource {key} does not exist (asked as {name})"
                        ),
                        format!(
                            "set space_id of resource {key} to an existing space's id (the 32 \
                             hexadecimal characters after /genie/rooms/ in its URL)"
                        ),
                    ),
                    ErrorKind::PermissionDenied => (
                        format!("{name} may not use Genie space {id} of resource {key}"),
                        format!(
                            "share the space with {name} with CAN RUN (Genie → the space → \
                             Share), or check that the token carries the genie scope"
                        ),
                    ),
                    _ => (
                        format!("Genie space {id} of resource {key} could not be read as {name}"),
                        "see host.reachable and the auth checks".to_owned(),
                    ),
                };
                problems.push(format!("{what}: {}", error.message()));
                fixes.push(fix);
            }
        }
    }
    if problems.is_empty() {
        Check::pass(
            ID,
            format!(
                "{name} may use the declared Genie spaces {}",
                reached.join(", ")
            ),
        )
    } else {
        Check::fail(ID, problems.join("; "), fixes.join("; "))
    }
}
