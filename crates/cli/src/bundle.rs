//! The bundle `dbapp deploy` deploys: `databricks.yml` read for one target, with its variables
//! substituted, turned into the app the Apps API is asked for ([`AppSpec`]) and the folder its
//! code comes from.
//!
//! What is modelled of the Databricks CLI's bundle rules, and what is not:
//! - the target is `-t/--target`, else the one marked `default: true`; a bundle without
//!   `targets` has one target, `default`;
//! - `${var.name}` takes `--var name=value`, else the target's `variables.name`, else the
//!   variable's `default`; `${bundle.name}` and `${bundle.target}` are known; any other
//!   reference (e.g. `${workspace.current_user.userName}`) is refused by name;
//! - substitution covers the app's definition and `sync`, which is all a deploy reads;
//! - the app is `resources.apps.<key>`, deployed under its `name` as written in every target:
//!   `mode: development` changes nothing here (the CLI may prefix development resources' names;
//!   dbapp deploys exactly the app the file names), and a target's own `resources` are refused
//!   rather than half merged;
//! - files go to the CLI's default root, `/Workspace/Users/<user>/.bundle/<bundle>/<target>`
//!   (`workspace.root_path` is not read).
//!
//! The YAML reading and `${...}` substitution are the doctor's (`doctor::manifest`), and which
//! files are uploaded is `doctor::sync`'s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use dbapp_databricks::api::AppSpec;
use serde_json::Value;

use crate::doctor::manifest::{self, interpolate, scalar};
use crate::doctor::sync;

/// A bundle resolved for one target.
#[derive(Debug)]
pub(crate) struct Bundle {
    /// The directory holding `databricks.yml` (the sync root).
    pub(crate) root: PathBuf,
    /// The document with the app and `sync` substituted.
    pub(crate) doc: Value,
    /// `bundle.name`.
    pub(crate) name: String,
    /// The target deployed to.
    pub(crate) target: String,
    /// The app as the Apps API gets it.
    pub(crate) app: AppSpec,
    /// The app's `source_code_path`, relative to the bundle root (`app`), with `/` separators.
    pub(crate) source_dir: String,
}

/// `name=value` of `--var`.
pub(crate) fn parse_var(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("{raw:?} is not name=value")),
    }
}

impl Bundle {
    /// Reads `databricks.yml` (or `.yaml`) in `dir` for `target`.
    ///
    /// # Errors
    /// When the file is missing or not YAML, or the bundle cannot be resolved (see
    /// [`Bundle::resolve`]).
    pub(crate) fn load(
        dir: &Path,
        target: Option<&str>,
        vars: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let path = manifest::find(dir, &["databricks.yml", "databricks.yaml"])
            .with_context(|| format!("no databricks.yml in {} (pass --dir)", dir.display()))?;
        let doc = manifest::load(&path)
            .map_err(anyhow::Error::msg)
            .with_context(|| path.display().to_string())?;
        Self::resolve(dir, doc, target, vars)
            .map_err(anyhow::Error::msg)
            .with_context(|| path.display().to_string())
    }

    /// The bundle of the parsed `doc`, whose directory is `dir`.
    fn resolve(
        dir: &Path,
        mut doc: Value,
        target: Option<&str>,
        vars: &[(String, String)],
    ) -> Result<Self, String> {
        let name = doc["bundle"]["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .ok_or("bundle.name is missing")?
            .to_owned();
        let target = pick_target(&doc, target)?;
        let target_doc = doc["targets"][&target].clone();
        if !target_doc["resources"].is_null() {
            return Err(format!(
                "target {target} overrides resources, which dbapp deploy does not merge: \
                 declare the app's resources once under resources.apps"
            ));
        }
        for (var, _) in vars {
            if doc["variables"][var].is_null() {
                return Err(format!(
                    "--var {var}: the bundle declares no such variable (under variables)"
                ));
            }
        }
        let variables = doc["variables"].clone();
        let resolve = |reference: &str| -> Option<String> {
            match reference {
                "bundle.name" => Some(name.clone()),
                "bundle.target" => Some(target.clone()),
                _ => {
                    let var = reference.strip_prefix("var.")?;
                    if let Some((_, value)) = vars.iter().rev().find(|(n, _)| n == var) {
                        return Some(value.clone());
                    }
                    let overridden = &target_doc["variables"][var];
                    scalar(overridden)
                        .or_else(|| scalar(&overridden["default"]))
                        .or_else(|| scalar(&variables[var]["default"]))
                }
            }
        };
        let apps = doc["resources"]["apps"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let (key, mut app) = match apps.len() {
            1 => apps.into_iter().next().ok_or("no app")?,
            0 => return Err("no app under resources.apps".to_owned()),
            n => {
                return Err(format!(
                    "{n} apps under resources.apps; dbapp deploy deploys one"
                ));
            }
        };
        substitute(&mut app, &resolve).map_err(|e| format!("resources.apps.{key}: {e}"))?;
        let mut sync = doc["sync"].take();
        substitute(&mut sync, &resolve).map_err(|e| format!("sync: {e}"))?;
        doc["sync"] = sync;

        let source = app["source_code_path"]
            .as_str()
            .ok_or_else(|| format!("resources.apps.{key}.source_code_path is missing"))?;
        let source_dir = sync::normalize(Path::new(source))
            .ok_or_else(|| {
                format!(
                    "resources.apps.{key}.source_code_path {source:?} must be a folder inside \
                     the bundle (e.g. ./app)"
                )
            })?
            .iter()
            .map(|part| part.to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        Ok(Self {
            root: dir.to_path_buf(),
            app: app_spec(&key, &app)?,
            doc,
            name,
            target,
            source_dir,
        })
    }

    /// The workspace folder the files go to, as `bundle deploy` names it.
    pub(crate) fn files_root(&self, user_name: &str) -> String {
        format!(
            "/Workspace/Users/{user_name}/.bundle/{}/{}/files",
            self.name, self.target
        )
    }
}

/// The target asked for, else the default one.
fn pick_target(doc: &Value, asked: Option<&str>) -> Result<String, String> {
    let Some(targets) = doc["targets"].as_object() else {
        return match asked {
            None | Some("default") => Ok("default".to_owned()),
            Some(other) => Err(format!("no target {other}: the bundle declares no targets")),
        };
    };
    let names = || targets.keys().cloned().collect::<Vec<_>>().join(", ");
    match asked {
        Some(name) if targets.contains_key(name) => Ok(name.to_owned()),
        Some(name) => Err(format!("no target {name}; the bundle has {}", names())),
        None => targets
            .iter()
            .find(|(_, t)| t["default"] == Value::Bool(true))
            .map(|(name, _)| name.clone())
            .ok_or_else(|| {
                format!(
                    "no target is marked default: true; pick one with -t ({})",
                    names()
                )
            }),
    }
}

/// Replaces every `${...}` in the strings of `value`.
fn substitute(value: &mut Value, resolve: &dyn Fn(&str) -> Option<String>) -> Result<(), String> {
    match value {
        Value::String(text) => {
            *text = interpolate(text, resolve).map_err(|unknown| {
                format!(
                    "cannot resolve {unknown}: pass --var name=value, or give the variable a \
                     default (dbapp deploy knows ${{var.*}}, ${{bundle.name}} and \
                     ${{bundle.target}})"
                )
            })?;
        }
        Value::Array(items) => {
            for item in items {
                substitute(item, resolve)?;
            }
        }
        Value::Object(map) => {
            for item in map.values_mut() {
                substitute(item, resolve)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The writable fields of the app definition.
fn app_spec(key: &str, app: &Value) -> Result<AppSpec, String> {
    let field = |name: &str| format!("resources.apps.{key}.{name}");
    let name = app["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("{} is missing", field("name")))?;
    let mut spec = AppSpec::new(name);
    spec.description = app["description"].as_str().map(str::to_owned);
    spec.resources = match &app["resources"] {
        Value::Null => Vec::new(),
        Value::Array(items) => items.clone(),
        _ => return Err(format!("{} must be a list", field("resources"))),
    };
    spec.user_api_scopes = match &app["user_api_scopes"] {
        Value::Null => Vec::new(),
        Value::Array(items) => items
            .iter()
            .map(|s| s.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| format!("{} must be a list of names", field("user_api_scopes")))?,
        _ => return Err(format!("{} must be a list", field("user_api_scopes"))),
    };
    spec.compute_size = app["compute_size"].as_str().map(str::to_owned);
    let count = |name: &str| -> Result<Option<u32>, String> {
        match &app[name] {
            Value::Null => Ok(None),
            value => scalar(value)
                .and_then(|n| n.parse().ok())
                .map(Some)
                .ok_or_else(|| format!("{} must be a whole number", field(name))),
        }
    };
    spec.compute_min_instances = count("compute_min_instances")?;
    spec.compute_max_instances = count("compute_max_instances")?;
    Ok(spec)
}

/// Resources by name, for comparing what the bundle asks with what the app has: the workspace
/// may add fields of its own, so only the fields the bundle sets are compared.
pub(crate) fn resources_differ(wanted: &[Value], current: &[Value]) -> bool {
    let by_name = |items: &[Value]| -> BTreeMap<String, Value> {
        items
            .iter()
            .map(|r| (r["name"].as_str().unwrap_or_default().to_owned(), r.clone()))
            .collect()
    };
    let (wanted, current) = (by_name(wanted), by_name(current));
    wanted.len() != current.len()
        || wanted
            .iter()
            .any(|(name, w)| current.get(name).is_none_or(|c| !is_subset(w, c)))
}

/// Whether every field of `part` is in `whole` with the same value.
fn is_subset(part: &Value, whole: &Value) -> bool {
    match (part, whole) {
        (Value::Object(p), Value::Object(w)) => p
            .iter()
            .all(|(k, v)| w.get(k).is_some_and(|wv| is_subset(v, wv))),
        _ => part == whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bundle() -> Value {
        json!({
            "bundle": {"name": "dbapp"},
            "sync": {"include": ["app/dbapp.gz"]},
            "variables": {"warehouse_id": {"description": "w"},
                          "lakebase_instance": {"default": "dbapp-lakebase"}},
            "resources": {"apps": {"dbapp": {
                "name": "dbapp", "description": "d", "source_code_path": "./app",
                "user_api_scopes": ["sql"],
                "resources": [{"name": "sql-warehouse",
                               "sql_warehouse": {"id": "${var.warehouse_id}", "permission": "CAN_USE"}},
                              {"name": "database",
                               "database": {"instance_name": "${var.lakebase_instance}"}}]}}},
            "targets": {"dev": {"mode": "development", "default": true},
                        "prod": {"variables": {"lakebase_instance": "prod-lb"}}}
        })
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn variables_come_from_flags_then_the_target_then_defaults() {
        // Act
        let dev = Bundle::resolve(
            Path::new("deploy"),
            bundle(),
            None,
            &vars(&[("warehouse_id", "w1")]),
        )
        .unwrap();
        let prod = Bundle::resolve(
            Path::new("deploy"),
            bundle(),
            Some("prod"),
            &vars(&[("warehouse_id", "w2")]),
        )
        .unwrap();

        // Assert
        assert_eq!(dev.target, "dev");
        assert_eq!(dev.source_dir, "app");
        assert_eq!(dev.app.resources[0]["sql_warehouse"]["id"], "w1");
        assert_eq!(
            dev.app.resources[1]["database"]["instance_name"],
            "dbapp-lakebase"
        );
        assert_eq!(
            prod.app.resources[1]["database"]["instance_name"],
            "prod-lb"
        );
        assert_eq!(prod.app.user_api_scopes, ["sql"]);
    }

    #[test]
    fn what_cannot_be_resolved_is_refused_by_name() {
        let missing = Bundle::resolve(Path::new("."), bundle(), None, &[]).unwrap_err();
        assert!(missing.contains("${var.warehouse_id}"), "{missing}");
        let unknown =
            Bundle::resolve(Path::new("."), bundle(), None, &vars(&[("nope", "1")])).unwrap_err();
        assert!(unknown.contains("--var nope"), "{unknown}");
        let target = Bundle::resolve(Path::new("."), bundle(), Some("qa"), &[]).unwrap_err();
        assert!(target.contains("dev, prod"), "{target}");
        let mut outside = bundle();
        outside["resources"]["apps"]["dbapp"]["source_code_path"] = json!("../app");
        let error = Bundle::resolve(
            Path::new("."),
            outside,
            None,
            &vars(&[("warehouse_id", "w")]),
        )
        .unwrap_err();
        assert!(error.contains("inside the bundle"), "{error}");
        assert!(parse_var("novalue").is_err());
        assert_eq!(
            parse_var("a=b=c").unwrap(),
            ("a".to_owned(), "b=c".to_owned())
        );
    }

    #[test]
    fn resources_compare_on_the_fields_the_bundle_sets() {
        let wanted = [json!({"name": "db", "database": {"instance_name": "a"}})];
        let same = [json!({"name": "db", "database": {"instance_name": "a", "extra": 1}})];
        let other = [json!({"name": "db", "database": {"instance_name": "b"}})];
        assert!(!resources_differ(&wanted, &same));
        assert!(resources_differ(&wanted, &other));
        assert!(resources_differ(&wanted, &[]));
    }
}
