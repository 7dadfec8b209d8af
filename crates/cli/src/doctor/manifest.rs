//! Doctor checks of the deployment files: `app.yaml` (how Databricks Apps starts the app and
//! which environment it gets) and `databricks.yml` (the Asset Bundle: the app, its resources and
//! its `user_api_scopes`), against what the server's routes need.
//!
//! [`ROUTE_SCOPES`] is the one table of which user authorization scope each group of routes
//! needs (`shared/API.md` routes, `shared/UPSTREAM.md` §1.6 scope names); docs/obo-and-scopes.md
//! prints the same table. Facts the checks rest on: `command` is not run in a shell (only
//! `$DATABRICKS_APP_PORT` is substituted); `valueFrom: <resource key>` gives a SQL warehouse's
//! id, a serving endpoint's name, a Provisioned database's **host**, an Autoscaling database's
//! endpoint path and a secret's value; the first database resource also injects `PGHOST`,
//! `PGPORT`, `PGDATABASE`, `PGUSER` and `PGSSLMODE` (never `PGPASSWORD`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

use super::{Check, sync};

/// Which scope which routes need. `sql` is needed only when table previews are on (a warehouse
/// is configured).
pub(crate) const ROUTE_SCOPES: &[(&str, &str)] = &[
    (
        "iam.current-user:read",
        "every authenticated route: the caller's identity (SCIM Me), /api/user/me",
    ),
    ("catalog.catalogs:read", "GET /api/unity-catalog/catalogs"),
    (
        "catalog.schemas:read",
        "GET /api/unity-catalog/catalogs/{catalog}/schemas",
    ),
    (
        "catalog.tables:read",
        "GET /api/unity-catalog/catalogs/{catalog}/schemas/{schema}/tables[/{table}]; the assistant's list_tables and preview_table tools",
    ),
    (
        "model-serving",
        "/api/model-serving/endpoints… and POST /api/assistant/conversations/{id}/messages (the assistant's endpoint)",
    ),
    (
        "files",
        "/api/volumes/{catalog}/{schema}/{volume}/files… (volume files)",
    ),
    (
        "genie",
        "/api/genie/spaces… (Genie spaces, questions, results, feedback) and the assistant's ask_genie tool",
    ),
    (
        "sql",
        "GET …/tables/{table}/rows, POST /api/queries/{name} and the assistant's preview_table tool (on the SQL warehouse)",
    ),
];

/// Scope names that exist (`shared/UPSTREAM.md` §1.6; the admin picker's list is not exhaustive).
const KNOWN_SCOPES: &[&str] = &[
    "iam.current-user:read",
    "iam.access-control:read",
    "sql",
    "sql:restricted-query",
    "genie",
    "postgres",
    "model-serving",
    "catalog.catalogs:read",
    "catalog.schemas:read",
    "catalog.tables:read",
    "catalog.connections",
    "files",
    "ai-gateway",
    "vector-search",
    "workspace.workspace",
    "mcp.external",
];

/// Deprecated aliases and what replaced them.
const DEPRECATED_SCOPES: &[(&str, &str)] = &[
    ("dashboards.genie", "genie"),
    ("serving.serving-endpoints", "model-serving"),
    ("files.files", "files"),
];

/// The deployment files found, parsed.
#[derive(Debug, Default)]
struct Manifests {
    app_yaml: Option<(PathBuf, Result<Value, String>)>,
    bundle: Option<(PathBuf, Result<Value, String>)>,
}

/// Where the manifests are: `dir` itself, or `dir/deploy` when `dir` has none.
pub(crate) fn default_dir() -> PathBuf {
    let here = PathBuf::from(".");
    if find(
        &here,
        &["app.yaml", "app.yml", "databricks.yml", "databricks.yaml"],
    )
    .is_none()
        && find(Path::new("deploy"), &["databricks.yml", "app.yaml"]).is_some()
    {
        return PathBuf::from("deploy");
    }
    here
}

/// The first of `names` that is a file in `dir`.
pub(crate) fn find(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    names.iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// A YAML file's first document, as JSON.
pub(crate) fn load(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    let docs = YamlLoader::load_from_str(&text).map_err(|e| format!("not valid YAML: {e}"))?;
    Ok(docs.first().map_or(Value::Null, to_json))
}

pub(crate) fn to_json(yaml: &Yaml) -> Value {
    match yaml {
        Yaml::Real(s) | Yaml::String(s) => Value::String(s.clone()),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Hash(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) | Yaml::Real(s) => s.clone(),
                        Yaml::Integer(i) => i.to_string(),
                        Yaml::Boolean(b) => b.to_string(),
                        _ => String::new(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}

fn discover(dir: &Path) -> Manifests {
    let mut found = Manifests::default();
    if let Some(bundle) = find(dir, &["databricks.yml", "databricks.yaml"]) {
        let parsed = load(&bundle);
        // The app's source directory holds its app.yaml.
        let source_dir = parsed.as_ref().ok().and_then(|b| {
            let (_, app) = first_app(b)?;
            let path = app["source_code_path"].as_str()?;
            Some(dir.join(path.trim_start_matches("./")))
        });
        found.bundle = Some((bundle, parsed));
        if let Some(source_dir) = source_dir
            && let Some(app_yaml) = find(&source_dir, &["app.yaml", "app.yml"])
        {
            let parsed = load(&app_yaml);
            found.app_yaml = Some((app_yaml, parsed));
        }
    }
    if found.app_yaml.is_none()
        && let Some(app_yaml) = find(dir, &["app.yaml", "app.yml"])
    {
        let parsed = load(&app_yaml);
        found.app_yaml = Some((app_yaml, parsed));
    }
    found
}

/// The first app of the bundle: its key and definition.
fn first_app(bundle: &Value) -> Option<(&String, &Value)> {
    bundle["resources"]["apps"].as_object()?.iter().next()
}

/// The kind of each of the app's resources, by resource key (`name`).
fn resource_kinds(app: &Value) -> BTreeMap<String, (&'static str, &Value)> {
    let mut kinds = BTreeMap::new();
    for resource in app["resources"].as_array().into_iter().flatten() {
        let Some(name) = resource["name"].as_str() else {
            continue;
        };
        for kind in [
            "sql_warehouse",
            "serving_endpoint",
            "database",
            "postgres",
            "secret",
            "job",
            "uc_securable",
            "genie_space",
        ] {
            if !resource[kind].is_null() {
                kinds.insert(name.to_owned(), (kind, &resource[kind]));
            }
        }
    }
    kinds
}

/// Every manifest check for the files in `dir`. `assistant_env` is `DBAPP_ASSISTANT_ENDPOINT` of
/// the environment, used when app.yaml does not set it.
pub(crate) fn checks(dir: &Path, assistant_env: Option<&str>) -> Vec<Check> {
    let found = discover(dir);
    if found.app_yaml.is_none() && found.bundle.is_none() {
        return vec![Check::skip(
            "manifest.found",
            format!(
                "no app.yaml or databricks.yml in {} (pass --dir to check deployment files)",
                dir.display()
            ),
        )];
    }
    let mut out = Vec::new();
    let mut parsed = |slot: &Option<(PathBuf, Result<Value, String>)>, what: &str| match slot {
        None => None,
        Some((path, Err(e))) => {
            out.push(Check::fail(
                "manifest.found",
                format!("{}: {e}", path.display()),
                format!("fix the YAML of {what}"),
            ));
            None
        }
        Some((path, Ok(value))) => Some((path.clone(), value.clone())),
    };
    let app_yaml = parsed(&found.app_yaml, "app.yaml");
    let bundle = parsed(&found.bundle, "databricks.yml");
    let names: Vec<String> = [&app_yaml, &bundle]
        .into_iter()
        .flatten()
        .map(|(p, _)| p.display().to_string())
        .collect();
    if !names.is_empty() {
        out.push(Check::pass(
            "manifest.found",
            format!("checking {}", names.join(" and ")),
        ));
    }
    let app = bundle.as_ref().and_then(|(_, b)| first_app(b));
    let kinds = app.map(|(_, a)| resource_kinds(a)).unwrap_or_default();

    match &app_yaml {
        Some((_, doc)) => {
            out.push(command(doc));
            out.push(env(doc, app.is_some().then_some(&kinds)));
        }
        None => out.push(Check::warn(
            "manifest.command",
            "no app.yaml: Databricks Apps would not know how to start dbapp",
            "add app.yaml beside the binary with `command: [\"./dbapp\", \"serve\"]` (see deploy/app/app.yaml)",
        )),
    }
    let env_vars = app_yaml
        .as_ref()
        .map(|(_, doc)| env_map(doc))
        .unwrap_or_default();
    match (&bundle, app) {
        (Some((path, _)), None) => out.push(Check::fail(
            "manifest.bundle",
            format!("{} declares no app under resources.apps", path.display()),
            "declare the app: resources.apps.dbapp with name, source_code_path, resources and user_api_scopes",
        )),
        (Some((path, doc)), Some((key, app))) => {
            out.push(bundle_shape(doc, key, app));
            let command = app_yaml.as_ref().map_or(&Value::Null, |(_, d)| &d["command"]);
            out.push(sync::check(
                path.parent().unwrap_or(Path::new(".")),
                doc,
                app,
                command,
            ));
            out.push(database(app, &kinds, &env_vars));
            out.push(warehouse(&kinds, &env_vars));
            out.push(scopes(key, app, env_vars.contains_key("DATABRICKS_WAREHOUSE_ID")));
            out.push(genie(doc, &kinds));
            out.push(assistant(&kinds, &env_vars, assistant_env));
        }
        (None, _) => out.push(Check::warn(
            "manifest.scopes",
            "no databricks.yml: the app's resources and user_api_scopes cannot be checked (they \
             belong to the app, not to app.yaml)",
            "deploy with the bundle in deploy/databricks.yml, or check the app's user authorization \
             scopes in the workspace UI against docs/obo-and-scopes.md",
        )),
    }
    out
}

/// `manifest.command`: the app runs `dbapp serve`, as an argument list.
fn command(doc: &Value) -> Check {
    const ID: &str = "manifest.command";
    let fix = "command: [\"./dbapp\", \"serve\"]";
    match &doc["command"] {
        Value::Null => Check::fail(
            ID,
            "app.yaml has no command: Databricks Apps would not know how to start dbapp",
            fix,
        ),
        Value::String(s) => Check::fail(
            ID,
            format!(
                "command is the string {s:?}: Databricks Apps expects a list of arguments and does \
                 not run it in a shell"
            ),
            fix,
        ),
        Value::Array(items) => {
            let mut args: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            let shown = args.join(" ");
            // `sh -c "…"`: a shell the manifest asks for explicitly (e.g. to unpack a compressed
            // binary); the command it finally runs is the last `dbapp …` of the script.
            if matches!(
                args.first(),
                Some(&("sh" | "/bin/sh" | "bash" | "/bin/bash"))
            ) && args.get(1) == Some(&"-c")
                && let Some(script) = args.get(2)
            {
                let words: Vec<&str> = script.split_whitespace().collect();
                if let Some(at) = words.iter().rposition(|w| w.ends_with("dbapp")) {
                    args = words[at..].to_vec();
                }
            }
            match args.get(1).copied() {
                Some("serve") => {
                    let unexpanded: Vec<&str> = args
                        .iter()
                        .copied()
                        .filter(|a| a.contains('$') && !a.contains("DATABRICKS_APP_PORT"))
                        .collect();
                    if unexpanded.is_empty() {
                        Check::pass(ID, format!("runs `{shown}`"))
                    } else {
                        Check::warn(
                            ID,
                            format!(
                                "command passes {unexpanded:?}: no shell runs it, so only \
                                 $DATABRICKS_APP_PORT is substituted"
                            ),
                            "pass settings through `env` instead",
                        )
                    }
                }
                Some("dev") => Check::fail(
                    ID,
                    format!(
                        "command runs `{shown}`: `dbapp dev` injects demo identities and refuses to run in Databricks Apps"
                    ),
                    fix,
                ),
                other => Check::fail(
                    ID,
                    format!(
                        "command runs `{shown}`, not `serve`{}",
                        other.map(|_| "").unwrap_or(" (no subcommand)")
                    ),
                    fix,
                ),
            }
        }
        _ => Check::fail(ID, "command is neither a list nor a string", fix),
    }
}

/// The `env` entries of app.yaml: name → (literal value, valueFrom key).
fn env_map(doc: &Value) -> BTreeMap<String, (Option<String>, Option<String>)> {
    doc["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let name = e["name"].as_str()?.to_owned();
            let text = |v: &Value| match v {
                Value::String(s) => Some(s.clone()),
                Value::Null => None,
                other => Some(other.to_string()),
            };
            Some((name, (text(&e["value"]), text(&e["valueFrom"]))))
        })
        .collect()
}

/// `manifest.env`: well-formed entries, no credentials, `valueFrom` keys that exist and give
/// what the variable needs.
fn env(doc: &Value, kinds: Option<&BTreeMap<String, (&'static str, &Value)>>) -> Check {
    const ID: &str = "manifest.env";
    let entries = match &doc["env"] {
        Value::Null => return Check::pass(ID, "no env entries"),
        Value::Array(entries) => entries,
        _ => {
            return Check::fail(
                ID,
                "env is not a list",
                "write env as a list of {name, value} or {name, valueFrom} entries",
            );
        }
    };
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    for entry in entries {
        let Some(name) = entry["name"].as_str() else {
            problems.push("an entry has no name".to_owned());
            fixes.push("give every env entry a name".to_owned());
            continue;
        };
        let value = !entry["value"].is_null();
        let value_from = entry["valueFrom"].as_str();
        if value == value_from.is_some() {
            problems.push(format!("{name} needs exactly one of value and valueFrom"));
            fixes.push(format!("keep one of value/valueFrom for {name}"));
        }
        match name {
            "DATABRICKS_CLIENT_ID" | "DATABRICKS_CLIENT_SECRET" | "DATABRICKS_TOKEN" => {
                problems.push(format!(
                    "{name} is set: Databricks Apps injects the app's own credentials, and an \
                     extra credential causes \"more than one authorization method configured\""
                ));
                fixes.push(format!("remove {name} from env"));
            }
            "PGPASSWORD" => {
                problems.push(
                    "PGPASSWORD is set: Lakebase needs an OAuth token, which dbapp mints"
                        .to_owned(),
                );
                fixes.push("remove PGPASSWORD from env".to_owned());
            }
            _ => {}
        }
        let (Some(key), Some(kinds)) = (value_from, kinds) else {
            continue;
        };
        let Some((kind, _)) = kinds.get(key) else {
            problems.push(format!(
                "{name} has valueFrom: {key}, but the app declares no resource named {key}"
            ));
            fixes.push(format!(
                "add a resource named {key} to the app in databricks.yml, or correct the key"
            ));
            continue;
        };
        let wrong = match (name, *kind) {
            ("DATABRICKS_WAREHOUSE_ID", k) if k != "sql_warehouse" => {
                Some("a SQL warehouse resource (valueFrom gives its id)")
            }
            ("LAKEBASE_INSTANCE_NAME", "database") => Some(
                "the instance name as a literal value: valueFrom of a Provisioned database \
                 resource gives its host, not its name",
            ),
            ("LAKEBASE_INSTANCE_NAME", _) => Some("the instance name as a literal value"),
            ("LAKEBASE_ENDPOINT", k) if k != "postgres" => {
                Some("a postgres (Autoscaling) resource: its valueFrom is the endpoint path")
            }
            ("PGHOST", k) if k != "database" => {
                Some("a database resource (valueFrom gives its host)")
            }
            ("DBAPP_ASSISTANT_ENDPOINT", k) if k != "serving_endpoint" => {
                Some("a serving_endpoint resource (valueFrom gives its name)")
            }
            _ => None,
        };
        if let Some(needs) = wrong {
            problems.push(format!(
                "{name} has valueFrom: {key} (a {kind} resource) but needs {needs}"
            ));
            fixes.push(match name {
                "LAKEBASE_INSTANCE_NAME" => {
                    "write `value: <instance_name>` for LAKEBASE_INSTANCE_NAME".to_owned()
                }
                _ => format!("point {name}'s valueFrom at the right resource"),
            });
        }
    }
    if problems.is_empty() {
        Check::pass(
            ID,
            format!(
                "{} variables, no credentials, every valueFrom names a resource of the right kind{}",
                entries.len(),
                if kinds.is_none() {
                    " (not cross-checked: no databricks.yml)"
                } else {
                    ""
                }
            ),
        )
    } else {
        Check::fail(ID, problems.join("; "), fixes.join("; "))
    }
}

/// `manifest.bundle`: the bundle names an app with a source path and has dev and prod targets.
fn bundle_shape(doc: &Value, key: &str, app: &Value) -> Check {
    const ID: &str = "manifest.bundle";
    if app["source_code_path"].as_str().is_none() {
        return Check::fail(
            ID,
            format!("resources.apps.{key} has no source_code_path"),
            "set source_code_path to the directory holding app.yaml and the dbapp binary",
        );
    }
    let targets: Vec<&String> = doc["targets"]
        .as_object()
        .map(|t| t.keys().collect())
        .unwrap_or_default();
    let missing: Vec<&str> = ["dev", "prod"]
        .into_iter()
        .filter(|t| !targets.iter().any(|k| k.as_str() == *t))
        .collect();
    if missing.is_empty() {
        Check::pass(
            ID,
            format!(
                "app {key}, targets {}",
                targets
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    } else {
        Check::warn(
            ID,
            format!("app {key}: no {} target", missing.join(" or ")),
            "add targets dev (mode: development) and prod (mode: production)",
        )
    }
}

/// `manifest.database`: a database resource, its permission and database name, and a credential
/// API for dbapp to mint from.
fn database(
    app: &Value,
    kinds: &BTreeMap<String, (&'static str, &Value)>,
    env: &BTreeMap<String, (Option<String>, Option<String>)>,
) -> Check {
    const ID: &str = "manifest.database";
    let _ = app;
    let Some((key, (kind, resource))) = kinds
        .iter()
        .find(|(_, (k, _))| *k == "database" || *k == "postgres")
    else {
        if env.contains_key("DATABASE_URL") {
            return Check::pass(ID, "no database resource; DATABASE_URL is set in app.yaml");
        }
        return Check::warn(
            ID,
            "the app declares no database resource: in Databricks Apps the storage routes answer 503 \
             STORAGE_NOT_CONFIGURED",
            "add a database resource (instance_name, database_name: databricks_postgres, \
             permission: CAN_CONNECT_AND_CREATE) and LAKEBASE_INSTANCE_NAME in app.yaml",
        );
    };
    if *kind == "database" {
        let permission = resource["permission"].as_str().unwrap_or("");
        if permission != "CAN_CONNECT_AND_CREATE" {
            return Check::fail(
                ID,
                format!(
                    "database resource {key} has permission {permission:?}: dbapp creates its tables"
                ),
                "set permission: CAN_CONNECT_AND_CREATE",
            );
        }
        if resource["database_name"].as_str() == Some("main") {
            return Check::warn(
                ID,
                format!("database resource {key} names database `main`"),
                "use database_name: databricks_postgres unless you created `main`",
            );
        }
        let instance = resource["instance_name"].as_str();
        match env.get("LAKEBASE_INSTANCE_NAME") {
            Some((Some(value), _)) => {
                if let Some(instance) = instance
                    && !instance.contains("${")
                    && !value.contains("${")
                    && instance != value
                {
                    return Check::fail(
                        ID,
                        format!(
                            "LAKEBASE_INSTANCE_NAME={value} in app.yaml, but the database resource is instance {instance}"
                        ),
                        format!("set LAKEBASE_INSTANCE_NAME to {instance}"),
                    );
                }
                Check::pass(
                    ID,
                    format!(
                        "database resource {key} (CAN_CONNECT_AND_CREATE) injects PG*; dbapp mints \
                         from LAKEBASE_INSTANCE_NAME={value}"
                    ),
                )
            }
            _ => Check::fail(
                ID,
                format!(
                    "database resource {key} injects PG*, but app.yaml does not set \
                     LAKEBASE_INSTANCE_NAME, so dbapp cannot mint the Postgres password"
                ),
                format!(
                    "add to app.yaml env: `- name: LAKEBASE_INSTANCE_NAME` with `value: {}`",
                    instance.unwrap_or("<instance_name>")
                ),
            ),
        }
    } else if env
        .get("LAKEBASE_ENDPOINT")
        .is_some_and(|(_, from)| from.as_deref() == Some(key.as_str()))
    {
        Check::pass(
            ID,
            format!("postgres resource {key}; LAKEBASE_ENDPOINT comes from valueFrom: {key}"),
        )
    } else {
        Check::fail(
            ID,
            format!("postgres resource {key}, but app.yaml does not set LAKEBASE_ENDPOINT from it"),
            format!("add to app.yaml env: `- name: LAKEBASE_ENDPOINT` with `valueFrom: {key}`"),
        )
    }
}

/// `manifest.warehouse`: previews need `DATABRICKS_WAREHOUSE_ID`, best from a warehouse resource.
fn warehouse(
    kinds: &BTreeMap<String, (&'static str, &Value)>,
    env: &BTreeMap<String, (Option<String>, Option<String>)>,
) -> Check {
    const ID: &str = "manifest.warehouse";
    match env.get("DATABRICKS_WAREHOUSE_ID") {
        Some((_, Some(key))) => Check::pass(
            ID,
            format!("DATABRICKS_WAREHOUSE_ID comes from the warehouse resource {key}"),
        ),
        Some((Some(value), _)) => Check::pass(ID, format!("DATABRICKS_WAREHOUSE_ID={value}")),
        _ => {
            let hint = kinds
                .iter()
                .find(|(_, (k, _))| *k == "sql_warehouse")
                .map_or_else(
                    || "add a sql_warehouse resource (CAN_USE) and".to_owned(),
                    |(key, _)| format!("the app has warehouse resource {key}:"),
                );
            Check::warn(
                ID,
                "app.yaml does not set DATABRICKS_WAREHOUSE_ID: table previews answer 503 \
                 WAREHOUSE_NOT_CONFIGURED",
                format!(
                    "{hint} add `- name: DATABRICKS_WAREHOUSE_ID` with `valueFrom: <its key>` to app.yaml env"
                ),
            )
        }
    }
}

/// Genie permissions that let an identity ask a space (CAN_VIEW only shows it).
const GENIE_ASK_PERMISSIONS: &[&str] = &["CAN_RUN", "CAN_EDIT", "CAN_MANAGE"];

/// A bundle value with `${var.name}` replaced by the variable's default; `None` when it refers
/// to anything that is only known at deploy time (`--var`, a target override, another
/// substitution).
fn resolve_var(bundle: &Value, value: &str) -> Option<String> {
    interpolate(value, &|reference| {
        let name = reference.strip_prefix("var.")?;
        scalar(&bundle["variables"][name]["default"])
    })
    .ok()
}

/// A YAML scalar as the text a substitution puts in its place.
pub(crate) fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `value` with every `${reference}` replaced by what `resolve` gives for `reference` (e.g.
/// `var.warehouse_id`); a replacement may itself hold references, followed a few levels deep.
/// The error names the first reference `resolve` does not know.
pub(crate) fn interpolate(
    value: &str,
    resolve: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut text = value.to_owned();
    // Deep enough for any sane bundle, and a variable whose default names itself ends here.
    for _ in 0..16 {
        let Some(start) = text.find("${") else {
            return Ok(text);
        };
        let end = text[start..]
            .find('}')
            .map(|at| at + start)
            .ok_or_else(|| format!("{value:?} has an unclosed ${{"))?;
        let reference = &text[start + 2..end];
        let replacement = resolve(reference).ok_or_else(|| format!("${{{reference}}}"))?;
        text = format!("{}{replacement}{}", &text[..start], &text[end + 1..]);
    }
    Err(format!("{value:?} refers to itself"))
}

/// A Genie space id: 32 hexadecimal characters.
fn is_space_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A Genie space the app declares as a `genie_space` resource, with a usable id.
#[derive(Debug, Clone)]
pub(crate) struct DeclaredSpace {
    /// The resource key (`name`).
    pub(crate) resource: String,
    pub(crate) space_id: String,
}

/// The Genie spaces of the app's `genie_space` resources in `dir`'s databricks.yml whose
/// `space_id` is well formed (literal, or a bundle variable with a default): the spaces the
/// live check `genie.access` asks for as the user. `manifest.genie` reports the others.
pub(crate) fn genie_spaces(dir: &Path) -> Vec<DeclaredSpace> {
    let found = discover(dir);
    let Some((_, Ok(bundle))) = &found.bundle else {
        return Vec::new();
    };
    let Some((_, app)) = first_app(bundle) else {
        return Vec::new();
    };
    resource_kinds(app)
        .into_iter()
        .filter(|(_, (kind, _))| *kind == "genie_space")
        .filter_map(|(resource, (_, space))| {
            let id = resolve_var(bundle, space["space_id"].as_str()?)?;
            is_space_id(&id).then_some(DeclaredSpace {
                resource,
                space_id: id,
            })
        })
        .collect()
}

/// `manifest.genie`: each `genie_space` resource has a well-formed `space_id` and a permission
/// that may ask questions (at least `CAN_RUN`).
fn genie(bundle: &Value, kinds: &BTreeMap<String, (&'static str, &Value)>) -> Check {
    const ID: &str = "manifest.genie";
    let spaces: Vec<(&String, &Value)> = kinds
        .iter()
        .filter(|(_, (kind, _))| *kind == "genie_space")
        .map(|(key, (_, space))| (key, *space))
        .collect();
    if spaces.is_empty() {
        return Check::pass(
            ID,
            "no genie_space resources: the Genie routes ask, as each user (scope genie), the \
             spaces that user may run",
        );
    }
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    let mut fine = Vec::new();
    for (key, space) in spaces {
        let raw = space["space_id"].as_str().unwrap_or("");
        match (raw, resolve_var(bundle, raw)) {
            ("", _) => {
                problems.push(format!("genie_space resource {key} has no space_id"));
                fixes.push(format!(
                    "set space_id of resource {key} to the space's id (the 32 hexadecimal \
                     characters after /genie/rooms/ in the space's URL)"
                ));
                continue;
            }
            (_, Some(id)) if !is_space_id(&id) => {
                problems.push(format!(
                    "genie_space resource {key} has space_id {id:?}, which is not a Genie space \
                     id (32 hexadecimal characters)"
                ));
                fixes.push(format!(
                    "set space_id of resource {key} to the space's id (the 32 hexadecimal \
                     characters after /genie/rooms/ in the space's URL)"
                ));
                continue;
            }
            _ => {}
        }
        match space["permission"].as_str() {
            Some(p) if GENIE_ASK_PERMISSIONS.contains(&p) => fine.push(format!("{key} ({p})")),
            Some("CAN_VIEW") => {
                problems.push(format!(
                    "genie_space resource {key} has permission CAN_VIEW: asking Genie needs at \
                     least CAN_RUN"
                ));
                fixes.push(format!("set permission: CAN_RUN on resource {key}"));
            }
            other => {
                problems.push(format!(
                    "genie_space resource {key} has permission {:?}: it must be one of CAN_VIEW, \
                     CAN_RUN, CAN_EDIT, CAN_MANAGE, and asking needs at least CAN_RUN",
                    other.unwrap_or("")
                ));
                fixes.push(format!("set permission: CAN_RUN on resource {key}"));
            }
        }
    }
    if problems.is_empty() {
        Check::pass(
            ID,
            format!(
                "genie_space resources {} may ask their spaces",
                fine.join(", ")
            ),
        )
    } else {
        Check::fail(ID, problems.join("; "), fixes.join("; "))
    }
}

/// `manifest.assistant`: when `DBAPP_ASSISTANT_ENDPOINT` is set (app.yaml's env, else the
/// environment), the app declares a `serving_endpoint` resource for it with `CAN_QUERY`.
fn assistant(
    kinds: &BTreeMap<String, (&'static str, &Value)>,
    env: &BTreeMap<String, (Option<String>, Option<String>)>,
    from_environment: Option<&str>,
) -> Check {
    const ID: &str = "manifest.assistant";
    const NAME: &str = "DBAPP_ASSISTANT_ENDPOINT";
    let endpoints = || {
        kinds
            .iter()
            .filter(|(_, (kind, _))| *kind == "serving_endpoint")
            .map(|(key, (_, resource))| (key.as_str(), *resource))
    };
    // The resource the endpoint comes from, and how the setting names it.
    let (resource, shown) = match (env.get(NAME), from_environment) {
        (Some((_, Some(key))), _) => (
            endpoints().find(|(k, _)| k == key),
            format!("{NAME} comes from valueFrom: {key}"),
        ),
        (Some((Some(value), _)), _) => (
            endpoints().find(|(_, r)| r["name"].as_str() == Some(value)),
            format!("{NAME}={value} in app.yaml"),
        ),
        (_, Some(value)) => (
            endpoints().find(|(_, r)| r["name"].as_str() == Some(value)),
            format!("{NAME}={value} in the environment"),
        ),
        (_, None) => {
            return Check::pass(
                ID,
                format!(
                    "{NAME} is not set: the assistant is off, so it needs no serving_endpoint resource"
                ),
            );
        }
    };
    let endpoint = env
        .get(NAME)
        .and_then(|(value, _)| value.clone())
        .or_else(|| from_environment.map(str::to_owned))
        .or_else(|| resource.and_then(|(_, r)| r["name"].as_str().map(str::to_owned)))
        .unwrap_or_else(|| "<endpoint>".to_owned());
    let Some((key, resource)) = resource else {
        return Check::warn(
            ID,
            format!(
                "{shown}, but the app declares no serving_endpoint resource for it: the app is \
                 not granted CAN_QUERY on the assistant's endpoint"
            ),
            format!(
                "add to the app's resources `- name: assistant-endpoint` with `serving_endpoint: \
                 {{name: {endpoint}, permission: CAN_QUERY}}`, and set {NAME} with \
                 `valueFrom: assistant-endpoint` in app.yaml"
            ),
        );
    };
    match resource["permission"].as_str() {
        Some(p @ ("CAN_QUERY" | "CAN_MANAGE")) => Check::pass(
            ID,
            format!("{shown}: serving_endpoint resource {key} ({p})"),
        ),
        other => Check::warn(
            ID,
            format!(
                "{shown}: serving_endpoint resource {key} has permission {:?}, not CAN_QUERY",
                other.unwrap_or("")
            ),
            format!("set permission: CAN_QUERY on resource {key}"),
        ),
    }
}

/// `manifest.scopes`: `user_api_scopes` against [`ROUTE_SCOPES`]; jobs scopes do not exist;
/// deprecated aliases.
fn scopes(key: &str, app: &Value, previews: bool) -> Check {
    const ID: &str = "manifest.scopes";
    let where_ = format!("resources.apps.{key}.user_api_scopes");
    let Some(list) = app["user_api_scopes"].as_array() else {
        return Check::fail(
            ID,
            format!(
                "{where_} is not set: without user authorization the Apps proxy sends no \
                 X-Forwarded-Access-Token, and every API route answers 401 AUTH_MISSING"
            ),
            format!("set {where_} to {}", required(previews).join(", ")),
        );
    };
    let declared: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
    let mut failures = Vec::new();
    let mut fixes = Vec::new();
    let mut warnings = Vec::new();
    let satisfied = |scope: &str| {
        declared.contains(&scope)
            || DEPRECATED_SCOPES
                .iter()
                .any(|(old, new)| *new == scope && declared.contains(old))
    };
    let missing: Vec<&str> = required(previews)
        .into_iter()
        .filter(|s| !satisfied(s))
        .collect();
    if !missing.is_empty() {
        let needs: Vec<String> = missing
            .iter()
            .map(|s| {
                let routes = ROUTE_SCOPES
                    .iter()
                    .find(|(n, _)| n == s)
                    .map_or("", |(_, r)| r);
                format!("{s} (needed by {routes})")
            })
            .collect();
        failures.push(format!("{where_} lacks {}", needs.join(", ")));
        fixes.push(format!(
            "add {} to {where_}, deploy, then restart the app (tokens get the new scopes only then) \
             and have users clear the app's cookie",
            missing.join(", ")
        ));
    }
    for scope in &declared {
        if scope.to_ascii_lowercase().contains("jobs") {
            failures.push(format!("{scope} does not exist: there is no jobs scope"));
            fixes.push(format!("remove {scope}"));
        } else if let Some((_, new)) = DEPRECATED_SCOPES.iter().find(|(old, _)| old == scope) {
            warnings.push(format!("{scope} is a deprecated alias of {new}"));
        } else if !KNOWN_SCOPES.contains(scope) {
            warnings.push(format!("{scope} is not a scope dbapp knows"));
        }
    }
    if !failures.is_empty() {
        failures.extend(warnings);
        return Check::fail(ID, failures.join("; "), fixes.join("; "));
    }
    if !warnings.is_empty() {
        return Check::warn(
            ID,
            warnings.join("; "),
            "use the current names: genie, model-serving, files",
        );
    }
    Check::pass(
        ID,
        format!(
            "{where_} covers every enabled route: {}{}",
            declared.join(", "),
            if previews {
                ""
            } else {
                " (table previews are off: no warehouse, so sql is not required)"
            }
        ),
    )
}

fn required(previews: bool) -> Vec<&'static str> {
    ROUTE_SCOPES
        .iter()
        .map(|(s, _)| *s)
        .filter(|s| previews || *s != "sql")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(scopes: &str) -> Value {
        let doc = format!(
            "resources:\n  apps:\n    dbapp:\n      source_code_path: ./app\n      user_api_scopes: {scopes}\n"
        );
        let bundle = to_json(&YamlLoader::load_from_str(&doc).unwrap()[0]);
        bundle["resources"]["apps"]["dbapp"].clone()
    }

    #[test]
    fn missing_scopes_are_named_with_their_routes() {
        let check = scopes(
            "dbapp",
            &app("[iam.current-user:read, catalog.catalogs:read, model-serving, sql]"),
            true,
        );
        assert_eq!(check.status, super::super::Status::Fail);
        assert!(
            check.message.contains("catalog.tables:read"),
            "{}",
            check.message
        );
        assert!(check.fix.unwrap().contains("restart the app"));
    }

    #[test]
    fn jobs_scopes_fail_and_aliases_warn() {
        let all = "[iam.current-user:read, catalog.catalogs:read, catalog.schemas:read, catalog.tables:read, sql, files, genie";
        let jobs = scopes(
            "dbapp",
            &app(&format!("{all}, model-serving, jobs.jobs]")),
            true,
        );
        assert_eq!(jobs.status, super::super::Status::Fail);
        assert!(jobs.message.contains("jobs.jobs does not exist"));
        let alias = scopes(
            "dbapp",
            &app(&format!("{all}, serving.serving-endpoints]")),
            true,
        );
        assert_eq!(
            alias.status,
            super::super::Status::Warn,
            "{}",
            alias.message
        );
        assert!(alias.message.contains("deprecated alias of model-serving"));
    }

    #[test]
    fn a_shell_launcher_must_end_in_dbapp_serve() {
        let launcher = |script: &str| {
            let text = format!("command: [\"/bin/sh\", \"-c\", \"{script}\"]");
            command(&to_json(&YamlLoader::load_from_str(&text).unwrap()[0]))
        };
        let ok = launcher("gzip -dc dbapp.gz > /tmp/dbapp && exec /tmp/dbapp serve");
        assert_eq!(ok.status, super::super::Status::Pass, "{}", ok.message);
        let dev = launcher("exec /tmp/dbapp dev");
        assert_eq!(dev.status, super::super::Status::Fail);
    }

    #[test]
    fn bundle_variables_resolve_to_their_defaults_only() {
        let doc = "variables:\n  space:\n    default: 01f0c0ffee5a1e5000000000000000a1\n  bare:\n    description: x\n";
        let bundle = to_json(&YamlLoader::load_from_str(doc).unwrap()[0]);
        let id = resolve_var(&bundle, "${var.space}").unwrap();
        assert!(is_space_id(&id), "{id}");
        assert_eq!(
            resolve_var(&bundle, "a-${var.space}-b").unwrap(),
            format!("a-{id}-b")
        );
        assert_eq!(resolve_var(&bundle, "${var.bare}"), None);
        assert_eq!(resolve_var(&bundle, "${bundle.target}"), None);
        assert!(!is_space_id("sales"));
        assert!(!is_space_id("01f0c0ffee5a1e5000000000000000z1"));
    }

    #[test]
    fn a_string_command_is_refused() {
        let doc = to_json(&YamlLoader::load_from_str("command: ./dbapp serve").unwrap()[0]);
        let check = command(&doc);
        assert_eq!(check.status, super::super::Status::Fail);
        assert!(check.message.contains("not run it in a shell"));
    }
}
