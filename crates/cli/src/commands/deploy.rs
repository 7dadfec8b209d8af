//! `dbapp deploy`: builds, checks, uploads and deploys the app of a bundle (`deploy/` by
//! default), then proves it answers. Seven steps, each printed with its time:
//!
//! 1. **build**: `<dir>/build.sh` (dbapp's builds the shipped binary: see that script);
//! 2. **doctor**: the deployment-file checks of `dbapp doctor` (manifest and sync), in process;
//!    any failure stops the deploy before anything is uploaded;
//! 3. **upload**: exactly the files `bundle deploy` would upload (`doctor::sync`), to the folder
//!    it uses, `/Workspace/Users/<you>/.bundle/<bundle>/<target>/files`; remote files no longer
//!    uploaded are deleted;
//! 4. **app**: created when missing, else changed by a masked update naming exactly the fields
//!    dbapp manages (never `PATCH`, which resets the scopes); when `user_api_scopes` or
//!    `resources` changed on running compute, the compute is stopped and started so that new
//!    user tokens carry the new scopes;
//! 5. **deploy**: a `SNAPSHOT` deployment of the uploaded source folder, followed to its end;
//! 6. **ready**: `GET <app url>/ready` through the Apps proxy with your token, until it answers;
//! 7. **smoke**: `GET <app url>/api/user/me` as you, which must answer for you.
//!
//! When 5–7 fail it prints the app's last log lines (from the emulator's control API, or how to
//! get them from a real workspace) and exits non-zero. `--dry-run` changes nothing: it reads
//! with GETs only and prints every call that would change something, with its body.
//!
//! Credentials are the deploying user's, from the unified configuration every command uses
//! (`DATABRICKS_HOST` and `DATABRICKS_TOKEN`, a profile, the Databricks CLI), with an explicit
//! auth type; the bundle's rules are `crate::bundle`'s.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use dbapp_databricks::api::{App, AppReply, CreateDeployment, UpdateApp};
use dbapp_databricks::{
    Client, Config, ConfigSettings, DatabricksError, Environment, ErrorKind, Method, Workspace,
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::bundle::{self, Bundle};
use crate::doctor::Status;
use crate::doctor::manifest;
use crate::doctor::sync::SyncRules;
use crate::progress::{Progress, Stream};
use crate::terminal::{Paint, Tone};

#[derive(Debug, clap::Args)]
pub(crate) struct DeployArgs {
    /// The bundle directory, with databricks.yml (default: the current directory when it has
    /// one, else ./deploy).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The bundle target (default: the one with `default: true`).
    #[arg(short = 't', long)]
    target: Option<String>,
    /// A bundle variable, `name=value`, for `${var.name}`. Repeatable.
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = bundle::parse_var)]
    vars: Vec<(String, String)>,
    /// Change nothing: print each call that would change something, reading state with GETs.
    #[arg(long)]
    dry_run: bool,
    /// Do not run build.sh (the built files must already be there).
    #[arg(long)]
    no_build: bool,
    /// Seconds each wait may take (compute, update, deployment, readiness).
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=7200))]
    timeout: u64,
    /// Profile of ~/.databrickscfg (default: DATABRICKS_CONFIG_PROFILE, else the environment).
    #[arg(long)]
    profile: Option<String>,
    /// Workspace URL (default: DATABRICKS_HOST, else the profile's host).
    #[arg(long)]
    host: Option<String>,
}

const STEPS: usize = 7;

/// A call `--dry-run` would make, noted under the current step.
fn would(progress: &Progress, method: &str, path: &str, body: Option<&Value>) {
    let body = body.map(|b| format!(" {b}")).unwrap_or_default();
    progress.note(
        &progress
            .paint()
            .paint(Tone::Attention, &format!("would {method} {path}{body}")),
    );
}

pub(crate) async fn run(args: DeployArgs, env: &Environment) -> anyhow::Result<()> {
    let started = Instant::now();
    let dir = args.dir.clone().unwrap_or_else(manifest::default_dir);
    let bundle = Bundle::load(&dir, args.target.as_deref(), &args.vars)?;
    let timeout = Duration::from_secs(args.timeout);
    println!(
        "dbapp deploy: app {} of bundle {} in {}, target {}{}",
        bundle.app.name,
        bundle.name,
        dir.display(),
        bundle.target,
        if args.dry_run {
            " (dry run: nothing is changed; state is read with GETs)"
        } else {
            ""
        }
    );
    // The steps are this command's output, so they go to stdout.
    let mut progress = Progress::new(env, Stream::Stdout, STEPS);

    build(&args, &bundle, &mut progress).await?;
    doctor(&args, &bundle, &mut progress)?;

    let mut settings = ConfigSettings::default();
    settings.host.clone_from(&args.host);
    settings.profile.clone_from(&args.profile);
    let config = Config::resolve(settings, &env.lookup()).context(
        "cannot tell which workspace to deploy to, or as whom: set DATABRICKS_HOST and \
         DATABRICKS_TOKEN, or name a profile with --profile",
    )?;
    let client = Client::new(config)?;
    let ws = client.as_app();
    let me = ws
        .me()
        .await
        .context("cannot sign in to the workspace with these credentials")?;
    println!(
        "      deploying as {} to {} ({} auth)",
        me.user_name,
        client.config().host().as_str(),
        ws.auth_type()
    );
    let deploy = Deploy {
        ws: &ws,
        bundle: &bundle,
        dry_run: args.dry_run,
        timeout,
        root: bundle.files_root(&me.user_name),
    };

    deploy.upload(&mut progress).await?;
    let app = deploy.app(&mut progress).await?;
    if let Err(error) = deploy.release(app, &me.user_name, &mut progress).await {
        print_logs(&ws, &bundle.app.name, progress.paint()).await;
        return Err(error);
    }
    println!(
        "{} {} in {:.1} s",
        progress.paint().paint(Tone::Good, "✓"),
        if args.dry_run {
            "dry run done: nothing was changed"
        } else {
            "deployed"
        },
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Step 1: the bundle's build script, as a child process the command waits for without
/// blocking its runtime.
async fn build(args: &DeployArgs, bundle: &Bundle, progress: &mut Progress) -> anyhow::Result<()> {
    progress.start("build");
    let script = bundle.root.join("build.sh");
    if args.no_build {
        progress.done("skipped (--no-build)");
    } else if !script.is_file() {
        progress.done(&format!("skipped: no {}", script.display()));
    } else if args.dry_run {
        progress.note(&format!("would run bash {}", script.display()));
        progress.done("skipped (dry run)");
    } else {
        let status = tokio::process::Command::new("bash")
            .arg(&script)
            .status()
            .await
            .with_context(|| format!("cannot run {}", script.display()))?;
        if !status.success() {
            bail!(
                "{} failed ({status}); its output is above, and nothing was uploaded",
                script.display()
            );
        }
        progress.done(&script.display().to_string());
    }
    Ok(())
}

/// Step 2: the deployment-file checks of `dbapp doctor`.
fn doctor(args: &DeployArgs, bundle: &Bundle, progress: &mut Progress) -> anyhow::Result<()> {
    progress.start("doctor");
    let checks = manifest::checks(&bundle.root, None);
    let paint = progress.paint();
    for check in checks
        .iter()
        .filter(|c| matches!(c.status, Status::Fail | Status::Warn))
    {
        progress.note(&format!(
            "{} {}: {}",
            paint.paint(check.status.tone(), check.status.label()),
            check.id,
            check.message
        ));
        if let Some(fix) = &check.fix {
            progress.note(&paint.paint(Tone::Quiet, &format!("  fix: {fix}")));
        }
    }
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    if failed > 0 {
        if !args.dry_run {
            bail!(
                "{failed} deployment check(s) failed (above); nothing was uploaded. \
                 `dbapp doctor --dir {}` shows every check",
                bundle.root.display()
            );
        }
        progress.note("a deploy would stop here");
    }
    let passed = checks.iter().filter(|c| c.status == Status::Pass).count();
    progress.done(&format!(
        "{passed} deployment checks passed, {failed} failed"
    ));
    Ok(())
}

/// Steps 3 to 7, which talk to the workspace.
struct Deploy<'a> {
    ws: &'a Workspace<'a>,
    bundle: &'a Bundle,
    dry_run: bool,
    timeout: Duration,
    /// The workspace folder the bundle's files go to.
    root: String,
}

/// What a poll found: still waiting, done, or failed (with why).
enum Verdict {
    Waiting,
    Done,
    Failed(String),
}

impl Deploy<'_> {
    /// Step 3: the files `bundle deploy` would upload, and nothing else.
    async fn upload(&self, progress: &mut Progress) -> anyhow::Result<()> {
        progress.start("upload");
        let mut rules = SyncRules::for_this_machine(&self.bundle.root, &self.bundle.doc)
            .map_err(anyhow::Error::msg)?;
        let files: Vec<(String, PathBuf, u64)> = rules
            .uploaded()
            .into_iter()
            .map(|(path, size)| {
                let rel = path
                    .iter()
                    .map(|p| p.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                (rel, self.bundle.root.join(path), size)
            })
            .collect();
        let remote = self.remote_files().await?;
        let mut folders = BTreeSet::from([self.root.clone()]);
        for (rel, _, _) in &files {
            if let Some((parent, _)) = rel.rsplit_once('/') {
                folders.insert(format!("{}/{parent}", self.root));
            }
        }
        for folder in &folders {
            if self.dry_run {
                would(
                    progress,
                    "POST",
                    "/api/2.0/workspace/mkdirs",
                    Some(&json!({"path": folder})),
                );
            } else {
                self.ws
                    .mkdirs(folder)
                    .await
                    .with_context(|| format!("cannot create {folder}"))?;
            }
        }
        let mut bytes = 0;
        for (rel, local, size) in &files {
            let path = format!("{}/{rel}", self.root);
            bytes += size;
            if self.dry_run {
                let body = json!({"path": path, "format": "AUTO", "overwrite": true,
                                  "content": format!("<{size} bytes, base64>")});
                would(progress, "POST", "/api/2.0/workspace/import", Some(&body));
                continue;
            }
            let content = tokio::fs::read(local)
                .await
                .with_context(|| format!("cannot read {}", local.display()))?;
            self.ws
                .import_file(&path, &content)
                .await
                .with_context(|| format!("cannot upload {} to {path}", local.display()))?;
        }
        let wanted: BTreeSet<&str> = files.iter().map(|(rel, _, _)| rel.as_str()).collect();
        let stale: Vec<&String> = remote
            .iter()
            .filter(|rel| !wanted.contains(rel.as_str()))
            .collect();
        for rel in &stale {
            let path = format!("{}/{rel}", self.root);
            if self.dry_run {
                would(
                    progress,
                    "POST",
                    "/api/2.0/workspace/delete",
                    Some(&json!({"path": path, "recursive": false})),
                );
            } else {
                self.ws
                    .delete_workspace_object(&path, false)
                    .await
                    .with_context(|| {
                        format!("cannot delete {path}, which is no longer uploaded")
                    })?;
            }
        }
        progress.done(&format!(
            "{} files, {bytes} bytes {} {}; {} stale file(s) {}",
            files.len(),
            if self.dry_run {
                "to upload to"
            } else {
                "uploaded to"
            },
            self.root,
            stale.len(),
            if self.dry_run { "to remove" } else { "removed" },
        ));
        Ok(())
    }

    /// Every file under the upload folder, relative to it; none when it does not exist yet.
    async fn remote_files(&self) -> anyhow::Result<BTreeSet<String>> {
        let mut found = BTreeSet::new();
        let mut folders = vec![self.root.clone()];
        while let Some(folder) = folders.pop() {
            let objects = match self.ws.list_workspace(&folder).await {
                Ok(objects) => objects,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("cannot list {folder}")),
            };
            for object in objects {
                let rel = relative_to(&self.root, &object.path).with_context(|| {
                    format!("the workspace listed {} under {folder}", object.path)
                })?;
                let path = format!("{}/{rel}", self.root);
                if object.is_directory() {
                    folders.push(path);
                } else {
                    found.insert(rel);
                }
            }
        }
        Ok(found)
    }

    /// Step 4: the app exists with the bundle's fields, on active compute. `None` only in a dry
    /// run, for an app that does not exist yet.
    async fn app(&self, progress: &mut Progress) -> anyhow::Result<Option<App>> {
        progress.start("app");
        let spec = &self.bundle.app;
        let name = spec.name.as_str();
        let current = match self.ws.get_app(name).await {
            Ok(app) => Some(app),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("cannot read app {name}")),
        };
        if self.dry_run {
            progress.note(&format!(
                "read GET /api/2.0/apps/{name}: {}",
                if current.is_some() {
                    "it exists, so it would be updated"
                } else {
                    "it does not exist, so it would be created"
                }
            ));
        }
        let Some(current) = current else {
            if self.dry_run {
                would(progress, "POST", "/api/2.0/apps", Some(&body_of(spec)?));
                progress.note("would wait for the compute to be ACTIVE");
                progress.done("dry run");
                return Ok(None);
            }
            self.ws
                .create_app(spec)
                .await
                .with_context(|| format!("cannot create app {name}"))?;
            let app = self.compute(name, "ACTIVE", progress).await?;
            progress.done(&format!("created {name}; compute ACTIVE"));
            return Ok(Some(app));
        };

        let mut mask = vec!["description", "resources", "user_api_scopes"];
        for (field, set) in [
            ("compute_size", spec.compute_size.is_some()),
            (
                "compute_min_instances",
                spec.compute_min_instances.is_some(),
            ),
            (
                "compute_max_instances",
                spec.compute_max_instances.is_some(),
            ),
        ] {
            if set {
                mask.push(field);
            }
        }
        let update = UpdateApp::new(spec.clone(), &mask)?;
        let wanted: BTreeSet<&String> = spec.user_api_scopes.iter().collect();
        // A scope the tokens do not carry yet needs a restart even when it was requested
        // before: an earlier deploy may have updated the app and failed before its restart.
        let scopes_changed = wanted != current.user_api_scopes.iter().collect()
            || !wanted
                .iter()
                .all(|s| current.effective_user_api_scopes.contains(s));
        let resources_changed = bundle::resources_differ(&spec.resources, &current.resources);
        let changed: Vec<&str> = [
            ("user_api_scopes", scopes_changed),
            ("resources", resources_changed),
        ]
        .into_iter()
        .filter_map(|(field, changed)| changed.then_some(field))
        .collect();
        let restart = !changed.is_empty() && current.is_active();
        if self.dry_run {
            would(
                progress,
                "POST",
                &format!("/api/2.0/apps/{name}/update"),
                Some(&body_of(&update)?),
            );
            progress.note(&format!(
                "would poll GET /api/2.0/apps/{name}/update until SUCCEEDED"
            ));
            if restart {
                progress.note(&format!(
                    "{} changed: the compute would be restarted",
                    changed.join(" and ")
                ));
                would(
                    progress,
                    "POST",
                    &format!("/api/2.0/apps/{name}/stop"),
                    Some(&json!({})),
                );
            }
            if restart || !current.is_active() {
                would(
                    progress,
                    "POST",
                    &format!("/api/2.0/apps/{name}/start"),
                    Some(&json!({})),
                );
            }
            progress.done("dry run");
            return Ok(Some(current));
        }
        self.ws
            .update_app(&update)
            .await
            .with_context(|| format!("cannot update app {name}"))?;
        self.wait(
            "the update",
            progress,
            || self.ws.get_app_update(name),
            |u| {
                (
                    u.status.state.clone(),
                    match u.status.state.as_str() {
                        "SUCCEEDED" => Verdict::Done,
                        "FAILED" => Verdict::Failed(message_of(&u.status.message)),
                        _ => Verdict::Waiting,
                    },
                )
            },
        )
        .await?;
        let mut app = self.ws.get_app(name).await?;
        let mut outcome = format!("updated {name} (update_mask {})", update.update_mask);
        if restart {
            progress.note(&format!(
                "{} changed: restarting the compute so that new user tokens carry them",
                changed.join(" and ")
            ));
            self.ws.stop_app(name).await?;
            self.compute(name, "STOPPED", progress).await?;
            self.ws.start_app(name).await?;
            app = self.compute(name, "ACTIVE", progress).await?;
            outcome.push_str(&format!(
                "; compute restarted, effective scopes now {}",
                app.effective_user_api_scopes.join(", ")
            ));
        } else if !app.is_active() {
            if app.compute_status.state != "STARTING" {
                self.ws.start_app(name).await?;
            }
            app = self.compute(name, "ACTIVE", progress).await?;
            outcome.push_str("; compute started");
        }
        progress.done(&outcome);
        Ok(Some(app))
    }

    /// Waits for the app's compute to reach `want` (`ACTIVE` or `STOPPED`).
    async fn compute(&self, name: &str, want: &str, progress: &Progress) -> anyhow::Result<App> {
        self.wait(
            "compute",
            progress,
            || self.ws.get_app(name),
            |app| {
                let state = &app.compute_status;
                let verdict = if state.state == want {
                    Verdict::Done
                } else if state.state == "ERROR" || (want == "ACTIVE" && state.state == "STOPPED") {
                    Verdict::Failed(message_of(&state.message))
                } else {
                    Verdict::Waiting
                };
                (state.state.clone(), verdict)
            },
        )
        .await
    }

    /// Steps 5 to 7: deploy, wait for `/ready`, and ask `/api/user/me` as the deploying user.
    async fn release(
        &self,
        app: Option<App>,
        user_name: &str,
        progress: &mut Progress,
    ) -> anyhow::Result<()> {
        let name = self.bundle.app.name.as_str();
        progress.start("deploy");
        let request =
            CreateDeployment::snapshot(format!("{}/{}", self.root, self.bundle.source_dir));
        let url = app.as_ref().and_then(|a| a.url.clone());
        if self.dry_run {
            let path = format!("/api/2.0/apps/{name}/deployments");
            would(progress, "POST", &path, Some(&body_of(&request)?));
            progress.note(&format!(
                "would poll GET {path}/{{deployment_id}} until SUCCEEDED"
            ));
            progress.done("dry run");
            let url = url.unwrap_or_else(|| "<the app's url>".to_owned());
            progress.start("ready");
            progress.note(&format!(
                "would GET {url}/ready with your token until it answers 200"
            ));
            progress.done("dry run");
            progress.start("smoke");
            progress.note(&format!("would GET {url}/api/user/me as {user_name}"));
            progress.done("dry run");
            return Ok(());
        }
        let deployment =
            self.ws.deploy_app(name, &request).await.with_context(|| {
                format!("cannot deploy {name} from {}", request.source_code_path)
            })?;
        let id = deployment.deployment_id.clone();
        self.wait(
            "the deployment",
            progress,
            || self.ws.get_app_deployment(name, &id),
            |d| {
                (
                    d.status.state.clone(),
                    match d.status.state.as_str() {
                        "SUCCEEDED" => Verdict::Done,
                        "FAILED" | "CANCELLED" => Verdict::Failed(message_of(&d.status.message)),
                        _ => Verdict::Waiting,
                    },
                )
            },
        )
        .await?;
        progress.done(&format!(
            "deployment {id} SUCCEEDED from {}",
            request.source_code_path
        ));

        progress.start("ready");
        let url = url.with_context(|| format!("the workspace gave app {name} no url"))?;
        let ready = self
            .wait(
                &format!("{url}/ready"),
                progress,
                || async { Ok(self.ws.get_from_app(&url, "/ready").await) },
                ready_verdict,
            )
            .await?;
        ready?;
        progress.done(&format!("{url} is ready"));

        progress.start("smoke");
        let reply = self
            .ws
            .get_from_app(&url, "/api/user/me")
            .await
            .with_context(|| format!("GET {url}/api/user/me failed"))?;
        let body = reply.json()?;
        let answered = body["user_id"].as_str().unwrap_or_default();
        if answered != user_name {
            bail!("GET {url}/api/user/me answered for {answered:?}, not for {user_name}: {body}");
        }
        progress.done(&format!(
            "GET /api/user/me answered for {answered} (auth {})",
            body["auth_method"].as_str().unwrap_or("?")
        ));
        Ok(())
    }

    /// Polls until `judge` says done or failed, printing each new state; fails after
    /// `--timeout`. Polls start fast and slow down to every 5 s.
    async fn wait<T, F, Fut>(
        &self,
        what: &str,
        progress: &Progress,
        mut poll: F,
        judge: impl Fn(&T) -> (String, Verdict),
    ) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, DatabricksError>>,
    {
        let deadline = Instant::now() + self.timeout;
        let mut delay = Duration::from_millis(200);
        let mut last = String::new();
        loop {
            let value = poll()
                .await
                .with_context(|| format!("cannot read {what}"))?;
            let (state, verdict) = judge(&value);
            if state != last {
                progress.note(&format!("{what}: {state}"));
                last = state;
            }
            match verdict {
                Verdict::Done => return Ok(value),
                Verdict::Failed(why) => bail!("{what} failed ({last}): {why}"),
                Verdict::Waiting => {}
            }
            if Instant::now() + delay > deadline {
                bail!(
                    "{what} is still {last} after {} s (--timeout)",
                    self.timeout.as_secs()
                );
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 3 / 2).min(Duration::from_secs(5));
        }
    }
}

/// Whether `/ready` answered: the app's JSON is done, the proxy's sign-in page or a refused
/// token fail at once (waiting cannot fix either), anything else is waited out.
fn ready_verdict(answer: &Result<AppReply, DatabricksError>) -> (String, Verdict) {
    const OAUTH: &str = "the Apps proxy takes OAuth tokens and sends a personal access token to \
                         sign-in: sign in with `databricks auth login --host <workspace>` and \
                         deploy with that profile (--profile)";
    match answer {
        Ok(reply) if reply.json().is_ok() => ("200".to_owned(), Verdict::Done),
        Ok(_) => (
            "not the app".to_owned(),
            Verdict::Failed(format!(
                "the proxy answered with a page that is not the app's, most likely its sign-in \
                 page; {OAUTH}"
            )),
        ),
        Err(e) if e.kind().is_auth_failure() => (
            e.status()
                .map_or_else(|| e.kind().to_string(), |s| s.to_string()),
            Verdict::Failed(format!("the proxy refused your token ({e}); {OAUTH}")),
        ),
        Err(e) => (
            e.status()
                .map_or_else(|| e.kind().to_string(), |s| s.to_string()),
            Verdict::Waiting,
        ),
    }
}

/// `path` relative to the folder `root`; the workspace may answer either path form
/// (`/Workspace/Users/...` or `/Users/...`).
fn relative_to(root: &str, path: &str) -> Option<String> {
    let short = |p: &'_ str| p.strip_prefix("/Workspace").unwrap_or(p).to_owned();
    short(path)
        .strip_prefix(&short(root))?
        .strip_prefix('/')
        .filter(|rel| !rel.is_empty())
        .map(str::to_owned)
}

fn message_of(message: &Option<String>) -> String {
    message.clone().unwrap_or_else(|| "no message".to_owned())
}

fn body_of<T: Serialize>(body: &T) -> anyhow::Result<Value> {
    serde_json::to_value(body).context("cannot encode the request body")
}

/// The app's last log lines: the emulator serves them; a real workspace is pointed at.
async fn print_logs(ws: &Workspace<'_>, name: &str, paint: Paint) {
    let emulated = ws
        .call_json(Method::GET, "/_emulator/info", None)
        .await
        .is_ok();
    if !emulated {
        println!(
            "{}",
            paint.paint(
                Tone::Attention,
                &format!(
                    "The app's logs: `databricks apps logs {name}`, or the Logs tab of the app \
                     in the workspace."
                )
            )
        );
        return;
    }
    match ws
        .call_text(Method::GET, &format!("/_emulator/apps/{name}/logs"))
        .await
    {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            if lines.is_empty() {
                println!("The emulated app wrote no log lines (it did not start).");
                return;
            }
            println!("The app's last log lines (emulator):");
            for line in &lines[lines.len().saturating_sub(40)..] {
                println!("  {}", paint.paint(Tone::Quiet, line));
            }
        }
        Err(e) => println!("cannot read the emulated app's logs: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_paths_are_read_in_either_form() {
        let root = "/Workspace/Users/a@x/.bundle/dbapp/dev/files";
        assert_eq!(
            relative_to(root, "/Users/a@x/.bundle/dbapp/dev/files/app/app.yaml").as_deref(),
            Some("app/app.yaml")
        );
        assert_eq!(
            relative_to(root, "/Workspace/Users/a@x/.bundle/dbapp/dev/files/x").as_deref(),
            Some("x")
        );
        assert_eq!(
            relative_to(root, "/Users/a@x/.bundle/dbapp/dev/filesx"),
            None
        );
        assert_eq!(
            relative_to(root, "/Users/a@x/.bundle/dbapp/dev/files"),
            None
        );
    }
}
