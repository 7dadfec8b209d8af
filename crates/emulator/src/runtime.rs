//! The Apps runtime: the processes of deployed apps, when the emulator runs them
//! (`EmulatorConfig::run_apps`).
//!
//! This module owns, per app, the replicas (one child process and port each), their captured
//! output (a bounded ring of lines), the launch of a deployment or of a restart, and stopping.
//! The control-plane model ([`crate::apps`]) keeps the states clients read; this module settles
//! its held transitions (`apps::HELD`) when the processes say so: a deployment `SUCCEEDED` once
//! every replica accepts TCP connections (`FAILED` when one cannot start, exits first or misses
//! the startup timeout; the replicas already serving keep serving), compute `ACTIVE` or
//! `STOPPED` once a start or a stop is done, `CRASHED` when a serving replica dies. The per-app
//! proxy that users reach is [`crate::proxy`].
//!
//! A deployment copies the workspace directory into
//! `<temporary dir>/<app>-<n>/<deployment id>`, reads `app.yaml` there and starts
//! `compute_max_instances` replicas, each with a clean environment (`shared/UPSTREAM.md`
//! §1.1–1.3) and its own free port. Each child leads its own process group, so `SIGTERM` (then
//! `SIGKILL` after the grace period) reaches what it started too. Nothing is installed: the
//! command runs with what the machine has.
//!
//! Locks: the runtime's map is a `std::sync::Mutex`, held for map operations only, never across
//! an `.await` and never together with the model's lock (each is taken and released in turn).

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use chrono::Utc;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use yaml_rust2::{Yaml, YamlLoader};

use crate::apps::LaunchView;
use crate::proxy::ProxyShared;
use crate::state::{Emulator, lock};

/// Lines of output kept per app (all replicas together); older lines are dropped first.
const LOG_LINES: usize = 2_000;
/// Longest line kept, in bytes; the rest of a longer line is cut.
const LOG_LINE_BYTES: usize = 8_192;
/// Lines of output a failed deployment's message quotes.
const FAILURE_LOG_LINES: usize = 10;
/// How often a starting replica's port is tried: nothing signals that a process listens.
const READY_POLL: Duration = Duration::from_millis(25);
/// How long the output of an exited process is still read: a grandchild may hold the pipe.
const OUTPUT_DRAIN: Duration = Duration::from_secs(1);
/// Variables of the emulator's own environment every app process gets.
const INHERITED_ENV: [&str; 3] = ["PATH", "HOME", "LANG"];

/// Timeouts of the runtime and its proxies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RuntimeConfig {
    /// Between `SIGTERM` and `SIGKILL`.
    pub(crate) stop_grace: Duration,
    /// How long the proxy waits for an app's response headers.
    pub(crate) proxy_timeout: Duration,
    /// How long every replica of a launch has to accept connections.
    pub(crate) startup_timeout: Duration,
}

/// The apps the emulator runs.
#[derive(Debug)]
pub(crate) struct Runtime {
    pub(crate) config: RuntimeConfig,
    /// Where deployments are copied; `dir`'s path, kept after `dir` is taken at shutdown.
    root: PathBuf,
    /// The temporary directory itself, removed at shutdown (or when the emulator is dropped).
    dir: Mutex<Option<tempfile::TempDir>>,
    apps: Mutex<HashMap<String, AppRun>>,
    /// Ids of launches and of app registrations, so a task of an older one cannot touch a
    /// newer one (an app deleted and created again under the same name, say).
    ids: AtomicU64,
    /// The proxies' HTTP client, token cache and sign-in sessions.
    pub(crate) proxy: ProxyShared,
}

/// One app's processes and proxy.
#[derive(Debug)]
struct AppRun {
    /// Which registration of the name this is.
    id: u64,
    logs: Arc<LogRing>,
    /// The replicas the proxy sends requests to.
    serving: Vec<Arc<Replica>>,
    /// Replicas of a launch that is not done yet.
    candidates: Vec<Arc<Replica>>,
    /// The launch in progress: its id, its task, and the deployment it settles (none for a
    /// restart).
    launching: Option<Launching>,
    /// What the active deployment runs, for `start`.
    active_plan: Option<Plan>,
    /// The proxy's accept loop, aborted when the app goes.
    proxy_task: JoinHandle<()>,
    /// Round-robin position of the proxy.
    next: usize,
}

#[derive(Debug)]
struct Launching {
    id: u64,
    task: Option<JoinHandle<()>>,
    deployment: Option<String>,
}

impl Drop for AppRun {
    fn drop(&mut self) {
        self.proxy_task.abort();
        if let Some(launching) = &self.launching
            && let Some(task) = &launching.task
        {
            task.abort();
        }
    }
}

/// What a deployment runs: its copied directory and the request's own `command` and
/// `env_vars`, which come before `app.yaml`'s.
#[derive(Clone)]
struct Plan {
    dir: PathBuf,
    command: Option<Vec<String>>,
    env_vars: Vec<Value>,
}

/// Names the variables, never their values (a deployment's `env_vars` may hold secrets).
impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self
            .env_vars
            .iter()
            .filter_map(|v| v["name"].as_str())
            .collect();
        f.debug_struct("Plan")
            .field("dir", &self.dir)
            .field("command", &self.command)
            .field("env_vars", &names)
            .finish()
    }
}

/// The state of one replica, as `GET /_emulator/apps/{name}/replicas` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ReplicaState {
    Starting,
    Running,
    Stopping,
    /// How it ended, e.g. `with code 1`.
    Exited(String),
}

impl ReplicaState {
    fn name(&self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Stopping => "stopping",
            Self::Exited(_) => "exited",
        }
    }
}

/// One process of an app.
#[derive(Debug)]
pub(crate) struct Replica {
    pub(crate) index: usize,
    pub(crate) port: u16,
    pid: Option<u32>,
    /// Written by the supervising task (and by the readiness check, `Starting` → `Running`).
    state: watch::Sender<ReplicaState>,
    /// Set to true to ask the supervising task to stop the process.
    stop: watch::Sender<bool>,
}

impl Replica {
    fn request_stop(&self) {
        self.stop.send_replace(true);
    }

    fn is_running(&self) -> bool {
        *self.state.borrow() == ReplicaState::Running
    }

    /// Resolves once the process has exited and its end is logged.
    async fn exited(&self) {
        let mut state = self.state.subscribe();
        // The sender lives in `self`, so the wait cannot fail.
        let _ = state
            .wait_for(|s| matches!(s, ReplicaState::Exited(_)))
            .await;
    }
}

/// A replica as `GET /_emulator/apps/{name}/replicas` lists it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ReplicaInfo {
    index: usize,
    port: u16,
    pid: Option<u32>,
    state: &'static str,
}

/// The captured output of an app's replicas, each line prefixed with its replica index.
#[derive(Debug, Default)]
struct LogRing(Mutex<VecDeque<String>>);

impl LogRing {
    fn push(&self, index: usize, line: &str) {
        let mut lines = lock(&self.0);
        if lines.len() == LOG_LINES {
            lines.pop_front();
        }
        lines.push_back(format!("[{index}] {line}"));
    }

    fn tail(&self, n: usize) -> Vec<String> {
        let lines = lock(&self.0);
        lines
            .iter()
            .skip(lines.len().saturating_sub(n))
            .cloned()
            .collect()
    }

    fn text(&self) -> String {
        lock(&self.0).iter().fold(String::new(), |mut text, line| {
            text.push_str(line);
            text.push('\n');
            text
        })
    }
}

/// What the proxy should do with a request.
#[derive(Debug)]
pub(crate) enum Route {
    /// Send it to this replica.
    Replica { index: usize, port: u16 },
    /// No replica is running.
    NoReplica,
}

impl Runtime {
    /// A runtime whose deployments go to a new temporary directory.
    ///
    /// # Errors
    /// When the temporary directory cannot be made.
    pub(crate) fn new(config: RuntimeConfig) -> std::io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("dbapp-apps-").tempdir()?;
        Ok(Self {
            config,
            root: dir.path().to_owned(),
            dir: Mutex::new(Some(dir)),
            apps: Mutex::default(),
            ids: AtomicU64::new(1),
            proxy: ProxyShared::new(),
        })
    }

    fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }

    /// Where the deployments of one registration of an app are copied: an app deleted and
    /// created again gets a new directory, so removing the old one cannot race a new copy.
    fn app_dir(&self, name: &str, registration: u64) -> PathBuf {
        self.root.join(format!("{name}-{registration}"))
    }

    /// Takes over a newly created app and the task serving its proxy.
    pub(crate) fn register(&self, name: &str, proxy_task: JoinHandle<()>) {
        let run = AppRun {
            id: self.next_id(),
            logs: Arc::default(),
            serving: Vec::new(),
            candidates: Vec::new(),
            launching: None,
            active_plan: None,
            proxy_task,
            next: 0,
        };
        if let Some(old) = lock(&self.apps).insert(name.to_owned(), run) {
            stop_all(old);
        }
    }

    /// Stops an app's processes and closes its proxy: the app was deleted.
    pub(crate) fn remove(&self, name: &str) {
        let Some(run) = lock(&self.apps).remove(name) else {
            return;
        };
        self.discard(name, run);
    }

    /// Stops every app, closes every proxy and forgets sign-ins and user tokens, as a reset
    /// does.
    pub(crate) fn reset(&self) {
        let runs: Vec<(String, AppRun)> = lock(&self.apps).drain().collect();
        for (name, run) in runs {
            self.discard(&name, run);
        }
        self.proxy.reset();
    }

    /// Stops what an app that goes away runs (nobody waits for it) and removes its copies.
    fn discard(&self, name: &str, run: AppRun) {
        let dir = self.app_dir(name, run.id);
        stop_all(run);
        tokio::spawn(async move {
            // Nothing to do if it is already gone or was never made.
            let _ = tokio::fs::remove_dir_all(dir).await;
        });
    }

    /// Stops every process (each within its grace period), closes every proxy and removes the
    /// temporary directory.
    pub(crate) async fn shutdown(&self) {
        let runs: Vec<AppRun> = lock(&self.apps).drain().map(|(_, run)| run).collect();
        let mut replicas = Vec::new();
        for mut run in runs {
            replicas.append(&mut run.serving);
            replicas.append(&mut run.candidates);
        }
        for replica in &replicas {
            replica.request_stop();
        }
        for replica in &replicas {
            replica.exited().await;
        }
        let dir = lock(&self.dir).take();
        if let Some(dir) = dir {
            // Removing a tree is blocking file system work.
            let _ = tokio::task::spawn_blocking(move || dir.close()).await;
        }
    }

    /// Whether the app has processes, or a launch under way, that a stop must wait for.
    pub(crate) fn is_active(&self, name: &str) -> bool {
        lock(&self.apps).get(name).is_some_and(|run| {
            !run.serving.is_empty() || !run.candidates.is_empty() || run.launching.is_some()
        })
    }

    /// Whether the app's active deployment can be run again by `start`.
    pub(crate) fn can_restart(&self, name: &str) -> bool {
        lock(&self.apps)
            .get(name)
            .is_some_and(|run| run.active_plan.is_some())
    }

    /// The captured output of an app's replicas; `None` when no app has this name.
    pub(crate) fn logs(&self, name: &str) -> Option<String> {
        lock(&self.apps).get(name).map(|run| run.logs.text())
    }

    /// The replicas serving the app, then those of a launch in progress.
    pub(crate) fn replicas(&self, name: &str) -> Option<Vec<ReplicaInfo>> {
        let apps = lock(&self.apps);
        let run = apps.get(name)?;
        Some(
            run.serving
                .iter()
                .chain(&run.candidates)
                .map(|r| ReplicaInfo {
                    index: r.index,
                    port: r.port,
                    pid: r.pid,
                    state: r.state.borrow().name(),
                })
                .collect(),
        )
    }

    /// The next running replica of the app, round robin.
    pub(crate) fn route(&self, name: &str) -> Route {
        let mut apps = lock(&self.apps);
        let Some(run) = apps.get_mut(name) else {
            return Route::NoReplica;
        };
        let running = run.serving.iter().filter(|r| r.is_running()).count();
        let Some(replica) = run
            .serving
            .iter()
            .filter(|r| r.is_running())
            .nth(run.next % running.max(1))
        else {
            return Route::NoReplica;
        };
        let route = Route::Replica {
            index: replica.index,
            port: replica.port,
        };
        run.next = run.next.wrapping_add(1);
        route
    }

    /// Runs a deployment: copies `files` (the snapshot of its source code path), starts its
    /// replicas, and settles the deployment in the model when they listen or fail.
    pub(crate) fn deploy(
        &self,
        emulator: &Emulator,
        name: &str,
        deployment: &Value,
        files: Vec<(String, Bytes)>,
    ) {
        let Some(id) = deployment["deployment_id"].as_str().map(str::to_owned) else {
            return;
        };
        let Some(registration) = lock(&self.apps).get(name).map(|run| run.id) else {
            return;
        };
        let plan = Plan {
            dir: self.app_dir(name, registration).join(&id).join("source"),
            command: deployment.get("command").and_then(strings),
            env_vars: deployment
                .get("env_vars")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        };
        let launch = self.next_id();
        let emulator_ = emulator.clone();
        let app = name.to_owned();
        let deployment_id = id.clone();
        let task = async move {
            let Some(runtime) = emulator_.runtime() else {
                return;
            };
            let outcome = match copy_files(&plan.dir, files).await {
                Ok(()) => runtime.launch(&emulator_, &app, launch, &plan).await,
                Err(e) => Err(format!(
                    "Failed to deploy: cannot copy the source code: {e}"
                )),
            };
            if !runtime.finish_launch(&app, launch, outcome.is_ok().then_some(plan)) {
                return;
            }
            let failure = outcome.err();
            lock(&emulator_.apps).settle_deployment(&app, &deployment_id, failure, Utc::now());
        };
        self.spawn_launch(name, launch, Some(id), task);
    }

    /// Runs the active deployment again (`start`), and settles the compute when its replicas
    /// listen or fail (the app is then `CRASHED`).
    pub(crate) fn restart(&self, emulator: &Emulator, name: &str) {
        let Some(plan) = lock(&self.apps)
            .get(name)
            .and_then(|run| run.active_plan.clone())
        else {
            return;
        };
        let launch = self.next_id();
        let emulator_ = emulator.clone();
        let app = name.to_owned();
        let task = async move {
            let Some(runtime) = emulator_.runtime() else {
                return;
            };
            let outcome = runtime.launch(&emulator_, &app, launch, &plan).await;
            if !runtime.finish_launch(&app, launch, outcome.is_ok().then_some(plan)) {
                return;
            }
            let crash = outcome
                .err()
                .map(|e| format!("The app failed to start. {e}"));
            let mut apps = lock(&emulator_.apps);
            apps.set_crash(&app, crash);
            apps.settle_compute(&app, Utc::now());
        };
        self.spawn_launch(name, launch, None, task);
    }

    fn spawn_launch(
        &self,
        name: &str,
        launch: u64,
        deployment: Option<String>,
        task: impl Future<Output = ()> + Send + 'static,
    ) {
        // Registered before the task may run, so `finish_launch` always finds it.
        let mut apps = lock(&self.apps);
        let Some(run) = apps.get_mut(name) else {
            return;
        };
        if let Some(previous) = run.launching.take()
            && let Some(task) = previous.task
        {
            task.abort();
        }
        run.launching = Some(Launching {
            id: launch,
            task: Some(tokio::spawn(task)),
            deployment,
        });
    }

    /// Ends launch `launch`: on success its replicas serve (and those they replace stop),
    /// on failure they stop. Returns false when the launch was superseded (a stop, a delete).
    fn finish_launch(&self, name: &str, launch: u64, success: Option<Plan>) -> bool {
        let mut apps = lock(&self.apps);
        let Some(run) = apps.get_mut(name) else {
            return false;
        };
        if run.launching.as_ref().is_none_or(|l| l.id != launch) {
            return false;
        }
        // The task is finishing by itself: dropping its handle detaches it.
        run.launching = None;
        let candidates = std::mem::take(&mut run.candidates);
        let stopping = match success {
            Some(plan) => {
                run.active_plan = Some(plan);
                std::mem::replace(&mut run.serving, candidates)
            }
            None => candidates,
        };
        for replica in stopping {
            replica.request_stop();
        }
        true
    }

    /// Starts the replicas of `plan` as candidates of launch `launch` and waits until each
    /// accepts connections.
    async fn launch(
        &self,
        emulator: &Emulator,
        name: &str,
        launch: u64,
        plan: &Plan,
    ) -> Result<(), String> {
        let view = lock(&emulator.apps)
            .launch_view(name)
            .ok_or_else(|| format!("App {name} no longer exists."))?;
        let spec = spec_of(emulator, name, &view, plan).await?;
        let Some(logs) = lock(&self.apps).get(name).map(|run| run.logs.clone()) else {
            return Err(format!("App {name} no longer exists."));
        };
        let mut replicas = Vec::with_capacity(view.replicas);
        for index in 0..view.replicas {
            // Each replica is its own container on Apps: it starts from its own copy of the
            // deployed files, so what one writes at start (an unpacked binary) races no other.
            copy_tree(&spec.dir, &spec.working_copy(launch, index))
                .await
                .map_err(|e| format!("Failed to deploy: cannot copy the source code: {e}"))?;
            let replica = self.spawn_replica(emulator, name, launch, index, &spec, &logs)?;
            replicas.push(replica);
        }
        let deadline = Instant::now() + self.config.startup_timeout;
        for replica in &replicas {
            wait_ready(replica, deadline).await.map_err(|reason| {
                let lines = logs.tail(FAILURE_LOG_LINES).join("\n");
                format!(
                    "Failed to deploy: replica {} {reason}. Last log lines:\n{lines}",
                    replica.index
                )
            })?;
        }
        Ok(())
    }

    /// Starts one replica, supervised by its own task, as a candidate of launch `launch`.
    fn spawn_replica(
        &self,
        emulator: &Emulator,
        name: &str,
        launch: u64,
        index: usize,
        spec: &Spec,
        logs: &Arc<LogRing>,
    ) -> Result<Arc<Replica>, String> {
        let dir = spec.working_copy(launch, index);
        let port = free_port().map_err(|e| format!("Failed to deploy: no free port: {e}"))?;
        let port_text = port.to_string();
        let args = spec.command[1..].iter().map(|a| {
            a.replace("${DATABRICKS_APP_PORT}", &port_text)
                .replace("$DATABRICKS_APP_PORT", &port_text)
        });
        let mut command = Command::new(&spec.command[0]);
        command
            .args(args)
            .current_dir(&dir)
            .env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .env("DATABRICKS_APP_PORT", &port_text)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        let mut child = command.spawn().map_err(|e| {
            logs.push(
                index,
                &format!("[emulator] cannot start {:?}: {e}", spec.command),
            );
            format!(
                "Failed to deploy: cannot start the command {:?}: {e}. The emulator installs no \
                 dependencies: the program must be on the emulator's PATH.",
                spec.command
            )
        })?;
        let pid = child.id();
        tracing::info!(
            event = "apps.replica_started",
            app = name,
            replica = index,
            pid,
            port
        );
        logs.push(
            index,
            &format!(
                "[emulator] started pid {} on port {port}: {:?}",
                pid.unwrap_or_default(),
                spec.command
            ),
        );
        let replica = Arc::new(Replica {
            index,
            port,
            pid,
            state: watch::Sender::new(ReplicaState::Starting),
            stop: watch::Sender::new(false),
        });
        let pumps = [
            child
                .stdout
                .take()
                .map(|out| pump(out, index, logs.clone())),
            child
                .stderr
                .take()
                .map(|err| pump(err, index, logs.clone())),
        ];
        {
            let mut apps = lock(&self.apps);
            match apps.get_mut(name) {
                Some(run) if run.launching.as_ref().is_some_and(|l| l.id == launch) => {
                    run.candidates.push(replica.clone());
                }
                // Superseded meanwhile: the supervisor below stops it at once.
                _ => replica.request_stop(),
            }
        }
        let registration = lock(&self.apps).get(name).map(|run| run.id);
        tokio::spawn(supervise(
            Supervised {
                emulator: emulator.clone(),
                app: name.to_owned(),
                registration,
                replica: replica.clone(),
                logs: logs.clone(),
                grace: self.config.stop_grace,
                dir,
            },
            child,
            pumps,
        ));
        Ok(replica)
    }

    /// A serving replica of the app ended on its own: the app is `CRASHED`.
    fn replica_died(
        &self,
        emulator: &Emulator,
        name: &str,
        registration: Option<u64>,
        replica: &Arc<Replica>,
        how: &str,
    ) {
        let serving = lock(&self.apps).get(name).is_some_and(|run| {
            Some(run.id) == registration && run.serving.iter().any(|r| Arc::ptr_eq(r, replica))
        });
        if serving {
            lock(&emulator.apps).set_crash(
                name,
                Some(format!(
                    "App crashed: replica {} exited {how}.",
                    replica.index
                )),
            );
        }
    }

    /// Stops the app's processes (`stop`): each gets `SIGTERM`, then `SIGKILL` after the grace
    /// period; the compute is `STOPPED` once all have exited. A deployment in progress fails.
    pub(crate) fn stop(&self, emulator: &Emulator, name: &str) {
        let (replicas, deployment, registration) = {
            let mut apps = lock(&self.apps);
            let Some(run) = apps.get_mut(name) else {
                return;
            };
            let mut replicas: Vec<Arc<Replica>> = run.serving.drain(..).collect();
            replicas.append(&mut run.candidates);
            let deployment = run.launching.take().and_then(|mut l| {
                if let Some(task) = l.task.take() {
                    task.abort();
                }
                l.deployment
            });
            (replicas, deployment, run.id)
        };
        if let Some(id) = deployment {
            lock(&emulator.apps).settle_deployment(
                name,
                &id,
                Some("Failed to deploy: the app was stopped during the deployment.".into()),
                Utc::now(),
            );
        }
        for replica in &replicas {
            replica.request_stop();
        }
        let emulator = emulator.clone();
        let app = name.to_owned();
        tokio::spawn(async move {
            for replica in &replicas {
                replica.exited().await;
            }
            // A start made meanwhile settles the compute itself, once its replicas listen.
            let current = emulator.runtime().is_some_and(|runtime| {
                lock(&runtime.apps)
                    .get(&app)
                    .is_some_and(|run| run.id == registration && run.launching.is_none())
            });
            if current {
                lock(&emulator.apps).settle_compute(&app, Utc::now());
            }
        });
    }
}

/// Stops everything of an app that is going away; nobody waits for it.
fn stop_all(mut run: AppRun) {
    for replica in run.serving.drain(..).chain(run.candidates.drain(..)) {
        replica.request_stop();
    }
    // Dropping `run` aborts its proxy and its launch.
}

/// What the supervising task of a replica needs besides the child.
struct Supervised {
    emulator: Emulator,
    app: String,
    registration: Option<u64>,
    replica: Arc<Replica>,
    logs: Arc<LogRing>,
    grace: Duration,
    /// The replica's working copy, removed once its process has exited.
    dir: PathBuf,
}

/// Owns a replica's process: waits for it to exit or for a stop request, then stops it with
/// `SIGTERM` and, after the grace period, `SIGKILL`, and logs how it ended.
async fn supervise(job: Supervised, mut child: Child, pumps: [Option<JoinHandle<()>>; 2]) {
    let Supervised {
        emulator,
        app,
        registration,
        replica,
        logs,
        grace,
        dir,
    } = job;
    let _working_copy = RemoveOnDrop(dir);
    let mut stop = replica.stop.subscribe();
    let index = replica.index;
    let status = tokio::select! {
        status = child.wait() => Some(status),
        _ = stop.wait_for(|s| *s) => None,
    };
    let how = match status {
        Some(status) => {
            let how = describe(status);
            drain(pumps).await;
            tracing::warn!(event = "apps.replica_exited", app, replica = index, how);
            logs.push(index, &format!("[emulator] exited {how}"));
            replica
                .state
                .send_replace(ReplicaState::Exited(how.clone()));
            if let Some(runtime) = emulator.runtime() {
                runtime.replica_died(&emulator, &app, registration, &replica, &how);
            }
            return;
        }
        None => {
            replica.state.send_replace(ReplicaState::Stopping);
            let started = Instant::now();
            signal(replica.pid, Signal::SIGTERM);
            match tokio::time::timeout(grace, child.wait()).await {
                Ok(status) => format!(
                    "exited after SIGTERM in {} ms ({})",
                    started.elapsed().as_millis(),
                    describe(status)
                ),
                Err(_) => {
                    signal(replica.pid, Signal::SIGKILL);
                    // Only fails if the child was already reaped, which `wait` did not do.
                    let _ = child.kill().await;
                    format!("killed with SIGKILL after {}", human(grace))
                }
            }
        }
    };
    drain(pumps).await;
    tracing::info!(event = "apps.replica_stopped", app, replica = index, how);
    logs.push(index, &format!("[emulator] {how}"));
    replica.state.send_replace(ReplicaState::Exited(how));
}

/// Removes a replica's working copy when its supervisor ends, however it ends.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let dir = std::mem::take(&mut self.0);
        let remove = move || {
            let _ = std::fs::remove_dir_all(dir);
        };
        // Off the async threads (a working copy may hold an unpacked binary of tens of MB),
        // unless the runtime is already gone.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(remove)),
            Err(_) => remove(),
        }
    }
}

/// Copies the directory tree `from` to `to` (regular files and directories), off the async
/// threads.
async fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    let (from, to) = (from.to_owned(), to.to_owned());
    tokio::task::spawn_blocking(move || {
        let mut pending = vec![(from, to)];
        while let Some((source, target)) = pending.pop() {
            std::fs::create_dir_all(&target)?;
            for entry in std::fs::read_dir(&source)? {
                let entry = entry?;
                let kind = entry.file_type()?;
                let destination = target.join(entry.file_name());
                if kind.is_dir() {
                    pending.push((entry.path(), destination));
                } else if kind.is_file() {
                    std::fs::copy(entry.path(), destination)?;
                }
            }
        }
        Ok(())
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Sends `signal` to a replica's process group (it leads one); a group already gone is fine.
fn signal(pid: Option<u32>, signal: Signal) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        let _ = killpg(Pid::from_raw(pid), signal);
    }
}

/// How a process ended: `with code 0`, `by signal 9 (SIGKILL)`, or the wait error.
fn describe(status: std::io::Result<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("with code {code}"),
            (None, Some(number)) => match Signal::try_from(number) {
                Ok(name) => format!("by signal {number} ({name})"),
                Err(_) => format!("by signal {number}"),
            },
            (None, None) => "for an unknown reason".to_owned(),
        },
        Err(e) => format!("(its status could not be read: {e})"),
    }
}

/// `15 s` for whole seconds, else milliseconds.
fn human(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{} ms", duration.as_millis())
    }
}

/// Reads a child's output line by line into the ring.
fn pump(
    stream: impl AsyncRead + Unpin + Send + 'static,
    index: usize,
    logs: Arc<LogRing>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let end = line.len().min(LOG_LINE_BYTES);
                    let text = String::from_utf8_lossy(&line[..end]);
                    logs.push(index, text.trim_end_matches(['\n', '\r']));
                }
            }
        }
    })
}

/// Waits (briefly) for the output readers to reach the end of the pipes.
async fn drain(pumps: [Option<JoinHandle<()>>; 2]) {
    for pump in pumps.into_iter().flatten() {
        let abort = pump.abort_handle();
        if tokio::time::timeout(OUTPUT_DRAIN, pump).await.is_err() {
            abort.abort();
        }
    }
}

/// Waits until the replica accepts TCP connections on its port; `Err` says why it never will.
async fn wait_ready(replica: &Replica, deadline: Instant) -> Result<(), String> {
    let mut state = replica.state.subscribe();
    loop {
        if let ReplicaState::Exited(how) = &*state.borrow_and_update() {
            return Err(format!(
                "exited {how} before it listened on port {}",
                replica.port
            ));
        }
        if *state.borrow() == ReplicaState::Stopping {
            return Err("was stopped before it listened".to_owned());
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", replica.port))
            .await
            .is_ok()
        {
            replica.state.send_if_modified(|s| {
                let starting = *s == ReplicaState::Starting;
                if starting {
                    *s = ReplicaState::Running;
                }
                starting
            });
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "did not listen on port {} within the startup timeout",
                replica.port
            ));
        }
        // The port is polled, but an exit ends the wait at once.
        let _ = tokio::time::timeout_at(deadline.min(Instant::now() + READY_POLL), state.changed())
            .await;
    }
}

/// A free port on 127.0.0.1, for a replica to listen on.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

/// Writes a deployment's files under `dir`.
async fn copy_files(dir: &Path, files: Vec<(String, Bytes)>) -> std::io::Result<()> {
    tokio::fs::create_dir_all(dir).await?;
    for (relative, data) in files {
        let path = dir.join(&relative);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::write(path, data).await?;
    }
    Ok(())
}

/// How a replica is started: program and arguments, directory and environment (without the
/// port, which differs per replica).
struct Spec {
    command: Vec<String>,
    dir: PathBuf,
    env: Vec<(String, String)>,
}

/// Names the variables, never their values (`DATABRICKS_CLIENT_SECRET` is one).
impl std::fmt::Debug for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.env.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("Spec")
            .field("command", &self.command)
            .field("dir", &self.dir)
            .field("env", &names)
            .finish()
    }
}

impl Spec {
    /// Where replica `index` of launch `launch` runs: its own copy of the deployed files.
    fn working_copy(&self, launch: u64, index: usize) -> PathBuf {
        self.dir.with_file_name(format!("replica-{launch}-{index}"))
    }
}

/// Reads `app.yaml` (or `app.yml`) and resolves the command and the environment.
async fn spec_of(
    emulator: &Emulator,
    name: &str,
    view: &LaunchView,
    plan: &Plan,
) -> Result<Spec, String> {
    let mut yaml = Yaml::Null;
    for file in ["app.yaml", "app.yml"] {
        match tokio::fs::read_to_string(plan.dir.join(file)).await {
            Ok(text) => {
                let docs = YamlLoader::load_from_str(&text)
                    .map_err(|e| format!("Failed to deploy: {file} is not valid YAML: {e}"))?;
                yaml = docs.into_iter().next().unwrap_or(Yaml::Null);
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("Failed to deploy: cannot read {file}: {e}")),
        }
    }
    let from_yaml = match &yaml["command"] {
        Yaml::BadValue | Yaml::Null => None,
        Yaml::Array(items) => Some(
            items
                .iter()
                .map(scalar)
                .collect::<Option<Vec<_>>>()
                .ok_or("Failed to deploy: app.yaml `command` must be a list of strings.")?,
        ),
        _ => return Err("Failed to deploy: app.yaml `command` must be a list of strings.".into()),
    };
    let command = match plan.command.clone().or(from_yaml) {
        Some(command) if !command.is_empty() => command,
        Some(_) => return Err("Failed to deploy: the command is empty.".into()),
        None => default_command(&plan.dir).await?,
    };
    let mut env = platform_env(emulator, name, view)?;
    let mut declared = Vec::new();
    if let Yaml::Array(items) = &yaml["env"] {
        for item in items {
            let name = scalar(&item["name"])
                .ok_or("Failed to deploy: an app.yaml `env` entry has no name.")?;
            let value = scalar(&item["value"]);
            let from = scalar(&item["valueFrom"]);
            declared.push((name, value, from));
        }
    }
    for var in &plan.env_vars {
        let name = var["name"].as_str().unwrap_or_default().to_owned();
        let value = var["value"].as_str().map(str::to_owned);
        let from = var["value_from"].as_str().map(str::to_owned);
        declared.push((name, value, from));
    }
    for (var, value, from) in declared {
        let value = match (value, from) {
            (Some(value), _) => value,
            (None, Some(resource)) => resource_value(emulator, view, &resource)
                .map_err(|e| format!("Failed to deploy: env {var}: {e}"))?,
            (None, None) => String::new(),
        };
        env.retain(|(k, _)| *k != var);
        env.push((var, value));
    }
    Ok(Spec {
        command,
        dir: plan.dir.clone(),
        env,
    })
}

/// A YAML scalar as text (`8080` and `true` too).
fn scalar(yaml: &Yaml) -> Option<String> {
    match yaml {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn strings(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// The command when `app.yaml` names none: `python app.py` (`python3` when the machine has no
/// `python`) if there is an `app.py`, else `npm run start` if there is a `package.json`.
async fn default_command(dir: &Path) -> Result<Vec<String>, String> {
    let exists = |file: &str| tokio::fs::try_exists(dir.join(file));
    if exists("app.py").await.unwrap_or(false) {
        let python = if on_path("python") {
            "python"
        } else {
            "python3"
        };
        return Ok(vec![python.into(), "app.py".into()]);
    }
    if exists("package.json").await.unwrap_or(false) {
        return Ok(vec!["npm".into(), "run".into(), "start".into()]);
    }
    Err(
        "Failed to deploy: app.yaml names no `command`, and there is neither an app.py nor a \
         package.json to pick a default one."
            .into(),
    )
}

/// Whether an executable of this name is in one of the emulator's PATH directories.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// The variables the platform sets (`shared/UPSTREAM.md` §1.1 and §1.3), except the port.
fn platform_env(
    emulator: &Emulator,
    name: &str,
    view: &LaunchView,
) -> Result<Vec<(String, String)>, String> {
    let mut env: Vec<(String, String)> = INHERITED_ENV
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v)))
        .collect();
    let credentials = &view.credentials;
    for (key, value) in [
        ("DATABRICKS_APP_NAME", name.to_owned()),
        (
            "DATABRICKS_WORKSPACE_ID",
            emulator.fixture.workspace.workspace_id.to_string(),
        ),
        ("DATABRICKS_HOST", emulator.base_url.clone()),
        ("DATABRICKS_APP_URL", view.url.clone()),
        ("DATABRICKS_CLIENT_ID", credentials.client_id.clone()),
        (
            "DATABRICKS_CLIENT_SECRET",
            credentials.client_secret.clone(),
        ),
    ] {
        env.push((key.to_owned(), value));
    }
    let database = view
        .resources
        .iter()
        .find(|r| r.get("database").is_some() || r.get("postgres").is_some());
    if let Some(resource) = database {
        let (host, database) = postgres_target(emulator, resource)?;
        let (host, port) = match &emulator.lakebase {
            Some(front) => (front.host().to_owned(), front.front().port()),
            None => (host, 5432),
        };
        for (key, value) in [
            ("PGHOST", host),
            ("PGPORT", port.to_string()),
            ("PGDATABASE", database),
            ("PGUSER", credentials.client_id.clone()),
            ("PGSSLMODE", "require".to_owned()),
            ("PGAPPNAME", name.to_owned()),
        ] {
            env.push((key.to_owned(), value));
        }
    }
    Ok(env)
}

/// The host (without a Lakebase front) and database name of a `database` or `postgres`
/// resource.
fn postgres_target(emulator: &Emulator, resource: &Value) -> Result<(String, String), String> {
    if let Some(database) = resource.get("database") {
        let instance = database["instance_name"].as_str().unwrap_or_default();
        let host = emulator
            .fixture
            .database_instances
            .iter()
            .find(|i| i.name == instance)
            .map(|i| i.read_write_dns.clone())
            .ok_or_else(|| format!("the database resource names no instance {instance:?}"))?;
        let name = database["database_name"]
            .as_str()
            .unwrap_or(crate::lakebase::DATABASE);
        return Ok((host, name.to_owned()));
    }
    let postgres = &resource["postgres"];
    let branch = postgres["branch"].as_str().unwrap_or_default();
    let (_, host) = lock(&emulator.autoscaling)
        .first_endpoint(branch)
        .ok_or_else(|| format!("the postgres resource's branch {branch:?} has no endpoint"))?;
    let name = postgres["database"]
        .as_str()
        .and_then(|d| d.rsplit_once("/databases/"))
        .map_or(crate::lakebase::DATABASE, |(_, name)| name);
    Ok((host, name.to_owned()))
}

/// What `valueFrom: <resource>` stands for.
fn resource_value(emulator: &Emulator, view: &LaunchView, name: &str) -> Result<String, String> {
    let resource = view
        .resources
        .iter()
        .find(|r| r["name"].as_str() == Some(name))
        .ok_or_else(|| format!("the app has no resource named {name:?}"))?;
    let field = |kind: &str, key: &str| resource[kind][key].as_str().map(str::to_owned);
    let value = if resource.get("sql_warehouse").is_some() {
        field("sql_warehouse", "id")
    } else if resource.get("serving_endpoint").is_some() {
        field("serving_endpoint", "name")
    } else if resource.get("database").is_some() {
        let (host, _) = postgres_target(emulator, resource)?;
        Some(
            emulator
                .lakebase
                .as_ref()
                .map_or(host, |l| l.host().to_owned()),
        )
    } else if resource.get("postgres").is_some() {
        let branch = resource["postgres"]["branch"].as_str().unwrap_or_default();
        lock(&emulator.autoscaling)
            .first_endpoint(branch)
            .map(|(endpoint, _)| endpoint)
    } else if resource.get("genie_space").is_some() {
        field("genie_space", "space_id")
    } else if resource.get("job").is_some() {
        field("job", "id")
    } else if resource.get("experiment").is_some() {
        field("experiment", "experiment_id")
    } else if resource.get("uc_securable").is_some() {
        field("uc_securable", "securable_full_name")
    } else if resource.get("app").is_some() {
        field("app", "name")
    } else if resource.get("secret").is_some() {
        return Err(format!(
            "resource {name:?} is a secret, and the emulator has no secrets to read it from"
        ));
    } else {
        None
    };
    value.ok_or_else(|| format!("resource {name:?} has no value to give"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_ring_keeps_the_newest_lines_with_their_replica() {
        let ring = LogRing::default();
        for i in 0..LOG_LINES + 5 {
            ring.push(i % 3, &format!("line {i}"));
        }
        let text = ring.text();
        assert_eq!(text.lines().count(), LOG_LINES);
        assert!(text.starts_with("[2] line 5\n"), "{}", &text[..40]);
        assert_eq!(ring.tail(2), ["[2] line 2003", "[0] line 2004"]);
    }

    #[test]
    fn durations_read_as_seconds_when_whole() {
        assert_eq!(human(Duration::from_secs(15)), "15 s");
        assert_eq!(human(Duration::from_millis(300)), "300 ms");
    }
}
