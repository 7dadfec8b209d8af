//! The scenarios: which processes each needs (started once, on first use), the load it drives on
//! dbapp and on its baseline, and how the two are compared.
//!
//! Processes: one `dbapp emulate`; `dbapp serve` with the identity cache on and a fresh Postgres
//! database on the machine's server (`health`, `me-cached`, `catalogs`, `prefs-*`, `rss`); a
//! second `dbapp serve` with the cache off (`me-uncached`); the baseline server
//! (`crate::baseline`) on the same database; the main server also serves two governed queries
//! written to its home directory (`query`) and answers Genie questions as the user
//! (`genie-spaces`, `genie-ask`, which sets the emulator's `genie_step_ms` for its rows and
//! puts it back); for `rotation` only, a private Postgres
//! cluster (TLS, SCRAM) with its own emulator minting 3-second Lakebase tokens and a server
//! configured like a Databricks App (`PG*`, `LAKEBASE_INSTANCE_NAME`, M2M credentials); and, for
//! `prefs-rls` only, a private cluster where one `dbapp serve` logs in as an ordinary role that
//! owns its tables (row-level security enforced, as for the app's role on Lakebase) and another
//! as the superuser (policies bypassed), with a baseline server as the superuser.
//!
//! Each comparison warms both sides up (discarded), then interleaves them with the same
//! connections: baseline, dbapp, dbapp, baseline, each for half the measured time, so that a
//! change in the machine's speed during the pair falls on both sides alike.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use dbapp_emulator::otlp::OtlpReceiver;
use dbapp_emulator::postgres::{ClusterOptions, PrivateCluster};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Executor};

use crate::admin_report;
use crate::baseline;
use crate::cli::{Cli, Scenario};
use crate::genie;
use crate::load::{self, LatencyTo, LoadResult, LoadSpec, MakeRequest};
use crate::procs::{self, Proc};
use crate::progress::{self, Outcome, Progress};
use crate::report::{Report, Row, Side};

/// The fixture user every dbapp request acts as.
const TOKEN: &str = "dev-token-alice";
/// The `/metrics` scrape token the benchmarked servers are given (`DBAPP_METRICS_TOKEN`).
const SCRAPE_TOKEN: &str = "bench-scrape-token-0123456789";
/// Lifetime of the Lakebase tokens in the rotation scenario: the server refreshes at half-life.
const ROTATION_TTL_SECS: u64 = 3;
const EMULATOR_ANNOUNCE: &str = "dbapp emulator listening on ";
/// The fixture's warehouse, which the benchmarked servers run statements on.
const WAREHOUSE: &str = "dev-warehouse";
/// The statement of the `query` scenario's governed queries: a small table every user reads.
const QUERY_SQL: &str = "SELECT * FROM main.default.regions";
/// The governed query run on every request (TTL 0).
const QUERY_UNCACHED: &str = "bench_uncached";
const QUERY_UNCACHED_PATH: &str = "/api/queries/bench_uncached";
/// The governed query answered from the cache after its first run.
const QUERY_CACHED: &str = "bench_cached";
const QUERY_CACHED_PATH: &str = "/api/queries/bench_cached";
/// The emulator's Genie step in `genie-ask@1`: the answer is ready ≈ 30 ms after the question
/// (six steps), long before dbapp's waiter polls the second time (0.5 s), so the first poll sees
/// a message still in progress and both sides wait one back-off step, and no more. The row then
/// measures the waiter's schedule and the relay, not the emulator's clock (at the default 100 ms
/// both would wait 0.5 + 1 s for an answer ready at 0.6 s).
const GENIE_STEP_MS: u64 = 5;
/// The ordinary role of `prefs-rls`: it owns the database, so its migrations make it the tables'
/// owner, as `dbapp lakebase setup` does for the app's role.
const RLS_ROLE: &str = "dbapp_app";
const RLS_PASSWORD: &str = "bench-rls-password";
const RLS_DATABASE: &str = "app";
/// What the ask route's body ends with when Genie answered (`crates/server/src/routes/sse.rs`).
const SSE_DONE: &[u8] = b"data: [DONE]\n\n";

/// Everything a run has started, each on first use.
struct Bench<'a> {
    cli: &'a Cli,
    dbapp: PathBuf,
    home: tempfile::TempDir,
    connections: usize,
    duration: Duration,
    warmup: Duration,
    emulator: Option<Proc>,
    database: Option<Database>,
    main: Option<Proc>,
    main_ready: Option<Duration>,
    main_idle_rss_mb: Option<f64>,
    uncached: Option<Proc>,
    /// The main configuration with trace export on ([`TRACED`]), and the receiver they export to.
    traced: [Option<Proc>; 2],
    otlp: Option<OtlpReceiver>,
    baseline: Option<Proc>,
    baseline_idle_rss_mb: Option<f64>,
    failures: Vec<String>,
}

/// A `bench_<uuid>` database on the machine's Postgres, dropped at the end.
struct Database {
    admin: PgConnectOptions,
    name: String,
}

impl Database {
    fn url(&self) -> String {
        let options = &self.admin;
        let user = options.get_username();
        format!(
            "postgres://{user}@{}:{}/{}",
            options.get_host(),
            options.get_port(),
            self.name
        )
    }
}

/// Runs the selected scenarios and returns the report (failures included).
pub(crate) async fn run(cli: &Cli) -> anyhow::Result<Report> {
    let dbapp = match &cli.dbapp {
        Some(path) => path.clone(),
        None => build_dbapp().await?,
    };
    let mut bench = Bench {
        cli,
        dbapp,
        home: tempfile::tempdir()?,
        connections: usize::from(cli.connections),
        duration: cli.load_duration(),
        warmup: cli.warmup(),
        emulator: None,
        database: None,
        main: None,
        main_ready: None,
        main_idle_rss_mb: None,
        uncached: None,
        traced: [None, None],
        otlp: None,
        baseline: None,
        baseline_idle_rss_mb: None,
        failures: Vec::new(),
    };
    let mut report = Report {
        started_at: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        machine: machine(),
        duration_secs: bench.duration.as_secs_f64(),
        warmup_secs: bench.warmup.as_secs_f64(),
        connections: bench.connections,
        rows: Vec::new(),
        failures: Vec::new(),
    };
    let selected = cli.selected();
    let mut progress = Progress::new(selected.len());
    for scenario in selected {
        progress.start(scenario.name());
        match bench.scenario(scenario).await {
            Ok(rows) => {
                progress.finish(scenario.name(), Outcome::Done { rows: rows.len() });
                for row in &rows {
                    eprintln!(
                        "  {}: {}",
                        row.scenario,
                        row.ratio
                            .map_or_else(|| "done".to_owned(), |r| format!("{r:.2}"))
                    );
                }
                report.rows.extend(rows);
            }
            Err(error) => {
                progress.finish(scenario.name(), Outcome::Failed);
                bench
                    .failures
                    .push(format!("{}: {error:#}", scenario.name()));
            }
        }
        bench.check_processes();
    }
    bench.shutdown().await;
    report.failures = bench.failures;
    Ok(report)
}

/// `cargo build --release -p dbapp` in this workspace, so the run never measures a stale binary.
async fn build_dbapp() -> anyhow::Result<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let what = "cargo build --release -p dbapp";
    let started = progress::step_started(what);
    let status = tokio::process::Command::new(cargo)
        .args(["build", "--release", "-p", "dbapp"])
        .current_dir(&workspace)
        .status()
        .await
        .context("cannot run cargo (or pass --dbapp PATH)")?;
    if !status.success() {
        bail!("cargo build --release -p dbapp failed");
    }
    progress::step_done(what, started);
    // The target directory of this very binary (target/release), wherever CARGO_TARGET_DIR is.
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name("dbapp");
    if !path.exists() {
        bail!("{} not found after the build", path.display());
    }
    Ok(path)
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpus} CPUs, {model}, Linux {}", kernel.trim())
}

/// A load's warm-up and its measured part.
struct Specs {
    warmup: LoadSpec,
    measured: LoadSpec,
}

pub(crate) fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    auth: Auth,
    body: Option<String>,
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, addr.to_string());
    builder = match auth {
        Auth::None => builder,
        Auth::Forwarded => builder.header("x-forwarded-access-token", TOKEN),
        Auth::Bearer => builder.header(hyper::header::AUTHORIZATION, format!("Bearer {TOKEN}")),
        Auth::Scrape => builder.header(
            hyper::header::AUTHORIZATION,
            format!("Bearer {SCRAPE_TOKEN}"),
        ),
    };
    let body = match body {
        Some(body) => {
            builder = builder.header(hyper::header::CONTENT_TYPE, "application/json");
            Full::new(Bytes::from(body))
        }
        None => Full::new(Bytes::new()),
    };
    builder.body(body).expect("a valid request")
}

/// How a request authenticates.
#[derive(Debug, Clone, Copy)]
enum Auth {
    None,
    /// `X-Forwarded-Access-Token`, as the Apps proxy sends it to dbapp.
    Forwarded,
    /// `Authorization: Bearer`, as dbapp sends it to the workspace.
    Bearer,
    /// `Authorization: Bearer` with the `/metrics` scrape token, as Prometheus sends it.
    Scrape,
}

fn get(addr: SocketAddr, path: &'static str, auth: Auth) -> MakeRequest {
    Arc::new(move |_, _| request(addr, Method::GET, path, auth, None))
}

fn post(addr: SocketAddr, path: &'static str, auth: Auth, body: String) -> MakeRequest {
    Arc::new(move |_, _| request(addr, Method::POST, path, auth, Some(body.clone())))
}

/// `PUT {prefix}/k<NN>` with a small JSON body, cycling over 50 keys.
fn put_pref(addr: SocketAddr, prefix: &'static str, auth: Auth) -> MakeRequest {
    Arc::new(move |connection, n| {
        let key = (connection as u64 * 7 + n) % 50;
        let body = format!(r#"{{"theme":"dark","n":{n}}}"#);
        request(
            addr,
            Method::PUT,
            &format!("{prefix}/k{key:02}"),
            auth,
            Some(body),
        )
    })
}

/// The two rows of `me-otel`: every request traced, and one in ten (`OTEL_TRACES_SAMPLER`
/// `parentbased_traceidratio`, [`SAMPLED_RATIO`]): name, label, floor of the req/s ratio against
/// the same server with export off, and the target in words.
const TRACED: [(&str, &str, f64, &str); 2] = [
    (
        "me-otel",
        "dbapp GET /api/user/me, every request traced",
        0.7,
        "≥ 0.7× req/s",
    ),
    (
        "me-otel-sampled",
        "dbapp GET /api/user/me, 1 in 10 traced",
        0.9,
        "≥ 0.9× req/s",
    ),
];
/// The sampling ratio of the second `me-otel` row.
const SAMPLED_RATIO: &str = "0.1";

impl Bench<'_> {
    async fn scenario(&mut self, scenario: Scenario) -> anyhow::Result<Vec<Row>> {
        match scenario {
            Scenario::Health => {
                let main = self.main().await?;
                let base = self.baseline().await?;
                let row = self
                    .compare(
                        "health",
                        (
                            main,
                            "dbapp GET /health",
                            get(main.1, "/health", Auth::None),
                        ),
                        (base, "hello-world", get(base.1, "/health", Auth::None)),
                        self.connections,
                    )
                    .await?;
                Ok(vec![throughput(row, 0.8, "≥ 0.8× req/s")])
            }
            Scenario::MeCached => {
                let main = self.main().await?;
                let base = self.baseline().await?;
                let row = self
                    .compare(
                        "me-cached",
                        (
                            main,
                            "dbapp GET /api/user/me",
                            get(main.1, "/api/user/me", Auth::Forwarded),
                        ),
                        (base, "hello-world", get(base.1, "/health", Auth::None)),
                        self.connections,
                    )
                    .await?;
                Ok(vec![throughput(row, 0.5, "≥ 0.5× req/s")])
            }
            Scenario::MeOtel => {
                let main = self.main().await?;
                let mut rows = Vec::new();
                for (which, (name, label, floor, target)) in TRACED.into_iter().enumerate() {
                    let traced = self.traced(which).await?;
                    let before = self.otlp.as_ref().map_or(0, OtlpReceiver::count);
                    let mut row = self
                        .compare(
                            name,
                            (
                                traced,
                                label,
                                get(traced.1, "/api/user/me", Auth::Forwarded),
                            ),
                            (
                                main,
                                "dbapp GET /api/user/me, export off",
                                get(main.1, "/api/user/me", Auth::Forwarded),
                            ),
                            self.connections,
                        )
                        .await?;
                    let exported = self.otlp.as_ref().map_or(0, OtlpReceiver::count) - before;
                    row.notes
                        .push(format!("{exported} spans received over OTLP/gRPC"));
                    if exported == 0 {
                        self.failures
                            .push(format!("{name}: no span reached the OTLP receiver"));
                    }
                    rows.push(throughput(row, floor, target));
                }
                Ok(rows)
            }
            Scenario::MeUncached => {
                let server = self.uncached().await?;
                let emulator = self.emulator().await?;
                self.upstream_pair(
                    "me-uncached",
                    (server, "dbapp /api/user/me, no cache", "/api/user/me"),
                    (emulator, "emulator SCIM Me", "/api/2.0/preview/scim/v2/Me"),
                )
                .await
            }
            Scenario::Catalogs => {
                let server = self.main().await?;
                let emulator = self.emulator().await?;
                self.upstream_pair(
                    "catalogs",
                    (server, "dbapp catalogs", "/api/unity-catalog/catalogs"),
                    (
                        emulator,
                        "emulator catalogs",
                        "/api/2.1/unity-catalog/catalogs",
                    ),
                )
                .await
            }
            Scenario::GenieSpaces => {
                let server = self.main().await?;
                let emulator = self.emulator().await?;
                self.upstream_pair(
                    "genie-spaces",
                    (server, "dbapp genie spaces", "/api/genie/spaces"),
                    (emulator, "emulator genie spaces", "/api/2.0/genie/spaces"),
                )
                .await
            }
            Scenario::PrefsPut => {
                let main = self.main().await?;
                let base = self.baseline().await?;
                let row = self
                    .compare(
                        "prefs-put",
                        (
                            main,
                            "dbapp PUT pref",
                            put_pref(main.1, "/api/preferences", Auth::Forwarded),
                        ),
                        (
                            base,
                            "raw sqlx upsert",
                            put_pref(base.1, "/prefs", Auth::None),
                        ),
                        self.connections,
                    )
                    .await?;
                Ok(vec![latency(row, 1.3, "≤ 1.3× p50")])
            }
            Scenario::PrefsList => {
                let main = self.main().await?;
                let base = self.baseline().await?;
                // 50 keys on each side, whatever ran before.
                for connection in 0..50 {
                    for (addr, prefix, auth) in [
                        (main.1, "/api/preferences", Auth::Forwarded),
                        (base.1, "/prefs", Auth::None),
                    ] {
                        let make = put_pref(addr, prefix, auth);
                        one_request(addr, make(connection, 0)).await?;
                    }
                }
                let row = self
                    .compare(
                        "prefs-list",
                        (
                            main,
                            "dbapp GET prefs (50)",
                            get(main.1, "/api/preferences", Auth::Forwarded),
                        ),
                        (base, "raw sqlx select", get(base.1, "/prefs", Auth::None)),
                        self.connections,
                    )
                    .await?;
                Ok(vec![latency(row, 1.3, "≤ 1.3× p50")])
            }
            Scenario::PrefsRls => self.prefs_rls().await,
            Scenario::ChatStream => self.chat_stream().await,
            Scenario::GenieAsk => self.genie_ask().await,
            Scenario::Query => self.query().await,
            Scenario::Rotation => self.rotation().await.map(|row| vec![row]),
            Scenario::Startup => self.startup().await.map(|row| vec![row]),
            Scenario::Rss => self.rss().await.map(|row| vec![row]),
            Scenario::AdminReport => admin_report::run(self.cli).await.map(|row| vec![row]),
        }
    }

    /// The preference routes with row-level security enforced, on a private cluster (the
    /// machine's server logs the benchmark in as a superuser, which bypasses the policies):
    /// dbapp as an ordinary role that owns its tables (`-rls` rows) and dbapp as the superuser
    /// (`-rls-off` rows), each against raw sqlx as the superuser on the same database. Both
    /// dbapp servers run the same code; the rows differ by the policies' cost alone.
    async fn prefs_rls(&mut self) -> anyhow::Result<Vec<Row>> {
        let cluster = PrivateCluster::start(ClusterOptions::default())
            .await
            .context("cannot start a private Postgres cluster")?;
        let mut started = Vec::new();
        let rows = self.prefs_rls_rows(&cluster, &mut started).await;
        for proc in started {
            let name = proc.name.clone();
            if let Err(error) = proc.stop().await {
                self.failures.push(format!("crash: {name}: {error:#}"));
            }
        }
        cluster.stop().await.ok();
        rows
    }

    async fn prefs_rls_rows(
        &mut self,
        cluster: &PrivateCluster,
        started: &mut Vec<Proc>,
    ) -> anyhow::Result<Vec<Row>> {
        let mut admin = cluster.admin_connect_options().connect().await?;
        admin
            .execute(AssertSqlSafe(format!(
                "CREATE ROLE {RLS_ROLE} LOGIN PASSWORD '{RLS_PASSWORD}'"
            )))
            .await?;
        admin
            .execute(AssertSqlSafe(format!(
                "CREATE DATABASE {RLS_DATABASE} OWNER {RLS_ROLE}"
            )))
            .await?;
        admin.close().await.ok();
        let url = |user: &str, password: &str| {
            format!(
                "postgres://{user}:{password}@{}:{}/{RLS_DATABASE}?sslmode=require",
                cluster.host(),
                cluster.port()
            )
        };
        let superuser = url(cluster.superuser(), cluster.superuser_password().expose());
        // The owner first: its migrations create the tables and their policies.
        for (name, database_url) in [
            ("dbapp serve (RLS on)", url(RLS_ROLE, RLS_PASSWORD)),
            ("dbapp serve (RLS bypassed)", superuser.clone()),
        ] {
            let port = procs::free_port()?;
            let mut command = self.server_command(port).await?;
            command.env("DATABASE_URL", database_url);
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let stderr = self
                .home
                .path()
                .join(format!("server-{}.stderr", started.len()));
            let (proc, _) = Proc::spawn_listening(name, command, addr, "/ready", stderr).await?;
            started.push(proc);
        }
        let stderr = self.home.path().join("baseline-rls.stderr");
        let command = self.baseline_command(&superuser)?;
        started.push(
            Proc::spawn_announced("baseline server (RLS)", command, baseline::ANNOUNCE, stderr)
                .await?,
        );
        let [on, off, base] = [&started[0], &started[1], &started[2]].map(|p| (p.pid, p.addr));
        let mut rows = Vec::new();
        for (name, list) in [("prefs-put", false), ("prefs-list", true)] {
            if list {
                // 50 keys for dbapp's user (both servers) and for the raw side's.
                for connection in 0..50 {
                    for (addr, prefix, auth) in [
                        (on.1, "/api/preferences", Auth::Forwarded),
                        (base.1, "/prefs", Auth::None),
                    ] {
                        one_request(addr, put_pref(addr, prefix, auth)(connection, 0)).await?;
                    }
                }
            }
            let mut ratios = Vec::new();
            for (suffix, server) in [("rls", on), ("rls-off", off)] {
                let (dbapp, raw) = if list {
                    (
                        get(server.1, "/api/preferences", Auth::Forwarded),
                        get(base.1, "/prefs", Auth::None),
                    )
                } else {
                    (
                        put_pref(server.1, "/api/preferences", Auth::Forwarded),
                        put_pref(base.1, "/prefs", Auth::None),
                    )
                };
                let label = format!("dbapp {name}, {suffix}");
                let row = self
                    .compare(
                        &format!("{name}-{suffix}"),
                        (server, &label, dbapp),
                        (base, "raw sqlx, superuser", raw),
                        self.connections,
                    )
                    .await?;
                let row = latency(row, 1.3, "≤ 1.3× p50");
                ratios.push(row.ratio.unwrap_or(f64::NAN));
                rows.push(row);
            }
            let first = rows.len() - 2;
            rows[first].notes.push(format!(
                "RLS cost: {:.2}× the p50 ratio with the policies bypassed ({:.2})",
                ratios[0] / ratios[1],
                ratios[1]
            ));
        }
        Ok(rows)
    }

    /// Time to the first event of a streamed chat answer through dbapp's chat route, against
    /// the emulator's streamed invocation called directly: the relay's overhead, with the
    /// configured connections and with one.
    async fn chat_stream(&mut self) -> anyhow::Result<Vec<Row>> {
        let server = self.main().await?;
        let emulator = self.emulator().await?;
        let messages = r#"{"role": "user", "content": "stream a short answer please"}"#;
        let through: MakeRequest = {
            let (addr, body) = (server.1, format!(r#"{{"messages": [{messages}]}}"#));
            Arc::new(move |_, _| {
                request(
                    addr,
                    Method::POST,
                    "/api/model-serving/endpoints/chat/chat",
                    Auth::Forwarded,
                    Some(body.clone()),
                )
            })
        };
        let direct: MakeRequest = {
            let (addr, body) = (
                emulator.1,
                format!(
                    r#"{{"messages": [{messages}], "stream": true, "stream_options": {{"include_usage": true}}}}"#
                ),
            );
            Arc::new(move |_, _| {
                request(
                    addr,
                    Method::POST,
                    "/serving-endpoints/chat/invocations",
                    Auth::Bearer,
                    Some(body.clone()),
                )
            })
        };
        let mut rows = Vec::new();
        for connections in [self.connections, 1] {
            let name = if connections == 1 {
                "chat-stream@1"
            } else {
                "chat-stream"
            };
            let row = self
                .compare_to(
                    name,
                    (server, "dbapp chat, first event", Arc::clone(&through)),
                    (
                        emulator,
                        "emulator stream, first event",
                        Arc::clone(&direct),
                    ),
                    connections,
                    LatencyTo::FirstFrame,
                )
                .await?;
            rows.push(overhead(row));
        }
        Ok(rows)
    }

    /// Asking Genie through dbapp's ask route, to the end of the streamed answer (`[DONE]`),
    /// against [`genie`]'s direct client doing what an app without dbapp does, at one
    /// connection (one person asking; a second connection would only queue on two cores):
    ///
    /// - `genie-ask@1`, the emulator's Genie step at [`GENIE_STEP_MS`]: both sides poll, wait
    ///   one back-off step and poll again. Target ≤ 1.5× p50: both wait ≈ 0.5–0.55 s, so one
    ///   more poll round or a slower first wait (×2 at least) misses it, while the jitter (at
    ///   most 10 %, on both sides) and the relay's few milliseconds do not.
    /// - `genie-ask-immediate@1`, step 0 (Genie answers at once): no waits on either side, so
    ///   what is left is dbapp's own cost: the caller, three relayed calls (start, one poll,
    ///   the result), typing the rows and the events. Target: p99 < +3 ms, the 1 ms per
    ///   upstream call of the `*@1` rows of single-call routes.
    async fn genie_ask(&mut self) -> anyhow::Result<Vec<Row>> {
        let server = self.main().await?;
        let emulator = self.emulator().await?;
        let config = one_request(
            emulator.1,
            request(
                emulator.1,
                Method::GET,
                "/_emulator/config",
                Auth::None,
                None,
            ),
        )
        .await
        .context("cannot read the emulator's settings")?;
        let config: serde_json::Value = serde_json::from_slice(&config)?;
        let previous = config["genie_step_ms"]
            .as_u64()
            .context("the emulator's settings have no genie_step_ms")?;
        let mut rows = Vec::new();
        let outcome = async {
            for (name, step_ms) in [("genie-ask@1", GENIE_STEP_MS), ("genie-ask-immediate@1", 0)] {
                genie_step(emulator.1, step_ms).await?;
                let row = self.genie_ask_row(name, step_ms, server, emulator).await?;
                rows.push(if step_ms == 0 {
                    overhead_within(row, 3.0, "p99 < +3 ms")
                } else {
                    latency(row, 1.5, "≤ 1.5× p50")
                });
            }
            anyhow::Ok(())
        }
        .await;
        // Whatever happened: later scenarios get the emulator as they would have found it.
        let restored = genie_step(emulator.1, previous).await;
        outcome?;
        restored?;
        Ok(rows)
    }

    /// One `genie-ask` row, the emulator's Genie step set to `step_ms`: one answer checked on
    /// each side, then a warm-up of each and the interleaved loads of [`Self::compare_to`].
    async fn genie_ask_row(
        &mut self,
        name: &str,
        step_ms: u64,
        server: (u32, SocketAddr),
        emulator: (u32, SocketAddr),
    ) -> anyhow::Result<Row> {
        let path = format!("/api/genie/spaces/{}/messages", genie::SPACE);
        let body = serde_json::json!({ "content": genie::QUESTION }).to_string();
        let through: MakeRequest = {
            let addr = server.1;
            Arc::new(move |_, _| {
                request(
                    addr,
                    Method::POST,
                    &path,
                    Auth::Forwarded,
                    Some(body.clone()),
                )
            })
        };
        // A run that measured error events would be fast and meaningless: check one answer.
        let answer = one_request(server.1, through(0, 0)).await?;
        if !(answer.ends_with(SSE_DONE) && answer.windows(14).any(|w| w == b"event: message")) {
            bail!(
                "dbapp's ask route did not answer: {}",
                String::from_utf8_lossy(&answer[answer.len().saturating_sub(300)..])
            );
        }
        let rows = genie::ask_once(emulator.1, TOKEN)
            .await
            .map_err(|e| anyhow::anyhow!("the direct Genie client failed: {e}"))?;
        if rows == 0 {
            bail!(
                "the direct Genie client got an empty result for {:?}",
                genie::QUESTION
            );
        }
        let mut specs = self.spec(server.1, through, 1, None);
        specs.warmup.body_ends_with = Some(SSE_DONE);
        specs.measured.body_ends_with = Some(SSE_DONE);
        let direct = |duration| genie::asks(emulator.1, TOKEN, duration);
        let half = specs.measured.duration / 2;
        direct(self.warmup).await;
        load::record(&specs.warmup).await;
        let (mut base_load, mut base_rss) = self.sampled(emulator.0, direct(half)).await;
        let (mut load, mut rss) = self.slice(server.0, &specs, 2).await;
        let (more, peak) = self.slice(server.0, &specs, 2).await;
        load.merge(more);
        rss = rss.max(peak);
        let (more, peak) = self.sampled(emulator.0, direct(half)).await;
        base_load.merge(more);
        base_rss = base_rss.max(peak);
        Ok(Row {
            scenario: name.to_owned(),
            connections: 1,
            dbapp: Side::load("dbapp ask, to [DONE]", load.result(), Some(rss)),
            baseline: Some(Side::load(
                "direct start/poll/result",
                base_load.result(),
                Some(base_rss),
            )),
            ratio: None,
            ratio_kind: "",
            target: None,
            met: None,
            notes: vec![format!("genie_step_ms {step_ms}; {rows} result rows")],
        })
    }

    /// Governed queries: [`QUERY_UNCACHED`] through dbapp against the very statement request
    /// dbapp sends, made to the emulator directly, at one connection (the overhead of
    /// parameter binding, the run and the typing of values; the cache is off for this query),
    /// and [`QUERY_CACHED`] answered from the result cache against the hello-world server.
    async fn query(&mut self) -> anyhow::Result<Vec<Row>> {
        let server = self.main().await?;
        let emulator = self.emulator().await?;
        let base = self.baseline().await?;
        // What dbapp's statement client sends for this query (see `dbapp_databricks::api::sql`).
        let direct = serde_json::json!({
            "statement": QUERY_SQL,
            "warehouse_id": WAREHOUSE,
            "wait_timeout": "0s",
            "on_wait_timeout": "CONTINUE",
            "disposition": "INLINE",
            "format": "JSON_ARRAY",
            "row_limit": 10_000,
        })
        .to_string();
        let uncached = self
            .compare(
                "query@1",
                (
                    server,
                    "dbapp governed query, no cache",
                    post(
                        server.1,
                        QUERY_UNCACHED_PATH,
                        Auth::Forwarded,
                        "{}".to_owned(),
                    ),
                ),
                (
                    emulator,
                    "emulator statement",
                    post(emulator.1, "/api/2.0/sql/statements", Auth::Bearer, direct),
                ),
                1,
            )
            .await?;
        let cached = self
            .compare(
                "query-cached",
                (
                    server,
                    "dbapp governed query, cached",
                    post(
                        server.1,
                        QUERY_CACHED_PATH,
                        Auth::Forwarded,
                        "{}".to_owned(),
                    ),
                ),
                (base, "hello-world", get(base.1, "/health", Auth::None)),
                self.connections,
            )
            .await?;
        Ok(vec![
            overhead(uncached),
            throughput(cached, 0.5, "≥ 0.5× req/s"),
        ])
    }

    /// A dbapp route backed by one upstream call, against that call made directly: with the
    /// configured connections (throughput), and with one connection (the latency overhead, free
    /// of queueing on two shared cores).
    async fn upstream_pair(
        &mut self,
        name: &str,
        (server, server_label, server_path): ((u32, SocketAddr), &str, &'static str),
        (upstream, upstream_label, upstream_path): ((u32, SocketAddr), &str, &'static str),
    ) -> anyhow::Result<Vec<Row>> {
        let mut rows = Vec::new();
        for connections in [self.connections, 1] {
            let row = self
                .compare(
                    if connections == 1 {
                        format!("{name}@1")
                    } else {
                        name.to_owned()
                    }
                    .as_str(),
                    (
                        server,
                        server_label,
                        get(server.1, server_path, Auth::Forwarded),
                    ),
                    (
                        upstream,
                        upstream_label,
                        get(upstream.1, upstream_path, Auth::Bearer),
                    ),
                    connections,
                )
                .await?;
            rows.push(overhead(row));
        }
        Ok(rows)
    }

    /// The baseline's load and dbapp's, interleaved baseline, dbapp, dbapp, baseline, each
    /// slice half the measured time (after one warm-up of each), so that a change in the
    /// machine's speed during the pair (other tenants, frequency) weighs on both sides alike.
    async fn compare(
        &mut self,
        name: &str,
        target: ((u32, SocketAddr), &str, MakeRequest),
        base: ((u32, SocketAddr), &str, MakeRequest),
        connections: usize,
    ) -> anyhow::Result<Row> {
        self.compare_to(name, target, base, connections, LatencyTo::WholeBody)
            .await
    }

    /// [`Self::compare`], with latencies taken as `latency_to` says.
    async fn compare_to(
        &mut self,
        name: &str,
        (target, target_label, target_make): ((u32, SocketAddr), &str, MakeRequest),
        (base, base_label, base_make): ((u32, SocketAddr), &str, MakeRequest),
        connections: usize,
        latency_to: LatencyTo,
    ) -> anyhow::Result<Row> {
        let mut base_spec = self.spec(base.1, base_make, connections, None);
        let mut target_spec = self.spec(target.1, target_make, connections, None);
        for specs in [&mut base_spec, &mut target_spec] {
            specs.warmup.latency_to = latency_to;
            specs.measured.latency_to = latency_to;
        }
        load::record(&base_spec.warmup).await;
        load::record(&target_spec.warmup).await;
        let (mut base_load, mut base_rss) = self.slice(base.0, &base_spec, 2).await;
        let (mut load, mut rss) = self.slice(target.0, &target_spec, 2).await;
        let (more, peak) = self.slice(target.0, &target_spec, 2).await;
        load.merge(more);
        rss = rss.max(peak);
        let (more, peak) = self.slice(base.0, &base_spec, 2).await;
        base_load.merge(more);
        base_rss = base_rss.max(peak);
        Ok(Row {
            scenario: name.to_owned(),
            connections,
            dbapp: Side::load(target_label, load.result(), Some(rss)),
            baseline: Some(Side::load(base_label, base_load.result(), Some(base_rss))),
            ratio: None,
            ratio_kind: "",
            target: None,
            met: None,
            notes: Vec::new(),
        })
    }

    /// The warm-up and measured loads of `make` on `addr`: one connection loads for half the
    /// time (its latency tails need fewer samples than throughput does).
    fn spec(
        &self,
        addr: SocketAddr,
        make: MakeRequest,
        connections: usize,
        bursts: Option<(Duration, Duration)>,
    ) -> Specs {
        let connections = connections.max(1);
        let duration = if connections == 1 {
            self.duration / 2
        } else {
            self.duration
        };
        let measured = LoadSpec {
            addr,
            connections,
            duration,
            make,
            bursts,
            latency_to: LatencyTo::WholeBody,
            body_ends_with: None,
        };
        Specs {
            warmup: LoadSpec {
                duration: self.warmup,
                ..measured.clone()
            },
            measured,
        }
    }

    /// Warm-up, then the measured load while sampling the process' RSS; the load and the
    /// highest RSS in MB.
    async fn measure(
        &mut self,
        (pid, addr): (u32, SocketAddr),
        make: MakeRequest,
        connections: usize,
        bursts: Option<(Duration, Duration)>,
    ) -> anyhow::Result<(LoadResult, f64)> {
        let specs = self.spec(addr, make, connections, bursts);
        load::record(&specs.warmup).await;
        let (recording, rss) = self.slice(pid, &specs, 1).await;
        Ok((recording.result(), rss))
    }

    /// One `1/parts` of the measured load while sampling the process' RSS; the recording and
    /// the highest RSS in MB.
    async fn slice(&mut self, pid: u32, specs: &Specs, parts: u32) -> (load::Recording, f64) {
        let spec = LoadSpec {
            duration: specs.measured.duration / parts,
            ..specs.measured.clone()
        };
        self.sampled(pid, load::record(&spec)).await
    }

    /// Runs `work` while sampling the process' RSS every 50 ms; its output and the highest RSS
    /// in MB.
    async fn sampled<T>(&mut self, pid: u32, work: impl Future<Output = T>) -> (T, f64) {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let sampler = {
            let (stop, peak) = (stop.clone(), peak.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(memory) = procs::memory(pid) {
                        peak.fetch_max(memory.rss_kb, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        let output = work.await;
        stop.store(true, Ordering::Relaxed);
        sampler.await.ok();
        self.check_processes();
        (output, mb(peak.load(Ordering::Relaxed)))
    }

    /// Records a failure for every process that has exited.
    fn check_processes(&mut self) {
        let procs = [
            &mut self.emulator,
            &mut self.main,
            &mut self.uncached,
            &mut self.baseline,
        ];
        let mut crashed = Vec::new();
        for slot in procs {
            if let Some(proc) = slot
                && let Err(error) = proc.check_alive()
            {
                crashed.push(format!("crash: {error:#}"));
                *slot = None;
            }
        }
        self.failures.extend(crashed);
    }

    async fn emulator(&mut self) -> anyhow::Result<(u32, SocketAddr)> {
        if self.emulator.is_none() {
            let command =
                procs::command(&self.dbapp, &["emulate", "--port", "0"], self.home.path());
            let stderr = self.home.path().join("emulator.stderr");
            let proc =
                Proc::spawn_announced("dbapp emulate", command, EMULATOR_ANNOUNCE, stderr).await?;
            self.emulator = Some(proc);
        }
        let proc = self.emulator.as_ref().context("emulator")?;
        Ok((proc.pid, proc.addr))
    }

    async fn database(&mut self) -> anyhow::Result<String> {
        if self.database.is_none() {
            let admin =
                PgConnectOptions::from_str(&self.cli.postgres_url).context("--postgres-url")?;
            let name = format!("bench_{}", uuid::Uuid::new_v4().simple());
            let mut conn = admin
                .connect()
                .await
                .with_context(|| format!("cannot connect to {}", self.cli.postgres_url))?;
            conn.execute(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                .await?;
            conn.close().await.ok();
            self.database = Some(Database { admin, name });
        }
        Ok(self.database.as_ref().context("database")?.url())
    }

    /// `dbapp serve`'s environment for the main configuration.
    async fn server_command(&mut self, port: u16) -> anyhow::Result<tokio::process::Command> {
        let (_, emulator) = self.emulator().await?;
        let url = self.database().await?;
        let queries = self.home.path().join("queries");
        std::fs::create_dir_all(&queries)?;
        for (name, ttl) in [(QUERY_UNCACHED, 0), (QUERY_CACHED, 3600)] {
            std::fs::write(
                queries.join(format!("{name}.sql")),
                format!(
                    "-- @title {name}\n-- @run_as user\n-- @cache_ttl_secs {ttl}\n{QUERY_SQL}\n"
                ),
            )?;
        }
        let mut command = procs::command(&self.dbapp, &["serve"], self.home.path());
        command
            .env("DATABRICKS_WAREHOUSE_ID", WAREHOUSE)
            .env("DBAPP_QUERIES_DIR", &queries)
            .env("DATABRICKS_HOST", format!("http://{emulator}"))
            .env("DATABRICKS_APP_PORT", port.to_string())
            .env("DATABASE_URL", url)
            // The app's own identity, as in Databricks Apps: `/ready` checks it works.
            .env("DATABRICKS_CLIENT_ID", "dbapp-sp")
            .env("DATABRICKS_CLIENT_SECRET", "dev-secret")
            .env("DBAPP_SQLITE_PATH", self.home.path().join("unused.db"))
            // One simulated user sends every request: per-user quotas would measure 429s.
            .env("DBAPP_QUOTA_INVOCATIONS_PER_MINUTE", "0")
            .env("DBAPP_QUOTA_USAGE_EVENTS_PER_MINUTE", "0");
        Ok(command)
    }

    async fn main(&mut self) -> anyhow::Result<(u32, SocketAddr)> {
        if self.main.is_none() {
            let port = procs::free_port()?;
            let command = self.server_command(port).await?;
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let stderr = self.home.path().join("server.stderr");
            let (proc, ready) =
                Proc::spawn_listening("dbapp serve", command, addr, "/ready", stderr).await?;
            // Idle: ready, nothing served yet but the readiness probe.
            tokio::time::sleep(Duration::from_millis(200)).await;
            self.main_idle_rss_mb = Some(mb(proc.memory().rss_kb));
            self.main_ready = Some(ready);
            self.main = Some(proc);
        }
        let proc = self.main.as_ref().context("server")?;
        Ok((proc.pid, proc.addr))
    }

    async fn uncached(&mut self) -> anyhow::Result<(u32, SocketAddr)> {
        if self.uncached.is_none() {
            let port = procs::free_port()?;
            let mut command = self.server_command(port).await?;
            command.env("DBAPP_IDENTITY_CACHE_TTL_SECS", "0");
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let stderr = self.home.path().join("server-uncached.stderr");
            let (proc, _) =
                Proc::spawn_listening("dbapp serve (cache off)", command, addr, "/ready", stderr)
                    .await?;
            self.uncached = Some(proc);
        }
        let proc = self.uncached.as_ref().context("server")?;
        Ok((proc.pid, proc.addr))
    }

    /// The main configuration exporting traces to [`OtlpReceiver`] in this process, sampled as
    /// [`TRACED`]`[which]` says.
    async fn traced(&mut self, which: usize) -> anyhow::Result<(u32, SocketAddr)> {
        if self.otlp.is_none() {
            self.otlp = Some(OtlpReceiver::start_counting().await?);
        }
        if self.traced[which].is_none() {
            let endpoint = self.otlp.as_ref().context("receiver")?.endpoint();
            let port = procs::free_port()?;
            let mut command = self.server_command(port).await?;
            command
                .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
                .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
                .env("OTEL_SERVICE_NAME", "dbapp-bench");
            if which == 1 {
                command
                    .env("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
                    .env("OTEL_TRACES_SAMPLER_ARG", SAMPLED_RATIO);
            }
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let stderr = self
                .home
                .path()
                .join(format!("server-traced-{which}.stderr"));
            let (proc, _) =
                Proc::spawn_listening("dbapp serve (traces)", command, addr, "/ready", stderr)
                    .await?;
            self.traced[which] = Some(proc);
        }
        let proc = self.traced[which].as_ref().context("server")?;
        Ok((proc.pid, proc.addr))
    }

    fn baseline_command(&self, database_url: &str) -> anyhow::Result<tokio::process::Command> {
        let exe = std::env::current_exe()?;
        Ok(procs::command(
            &exe,
            &["--baseline-server", "--baseline-database-url", database_url],
            self.home.path(),
        ))
    }

    async fn baseline(&mut self) -> anyhow::Result<(u32, SocketAddr)> {
        if self.baseline.is_none() {
            // The main server first: its migrations create the table the raw side writes to.
            self.main().await?;
            let url = self.database().await?;
            let command = self.baseline_command(&url)?;
            let stderr = self.home.path().join("baseline.stderr");
            let proc =
                Proc::spawn_announced("baseline server", command, baseline::ANNOUNCE, stderr)
                    .await?;
            tokio::time::sleep(Duration::from_millis(200)).await;
            self.baseline_idle_rss_mb = Some(mb(proc.memory().rss_kb));
            self.baseline = Some(proc);
        }
        let proc = self.baseline.as_ref().context("baseline")?;
        Ok((proc.pid, proc.addr))
    }

    /// Spawn to the first 200 on `/ready` (store reachable, migrations current), several times,
    /// against the baseline's spawn to its first 200.
    async fn startup(&mut self) -> anyhow::Result<Row> {
        self.main().await?;
        let url = self.database().await?;
        let samples = if self.cli.smoke { 2 } else { 5 };
        let mut dbapp = Vec::new();
        let mut base = Vec::new();
        for i in 0..samples {
            let port = procs::free_port()?;
            let command = self.server_command(port).await?;
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let stderr = self.home.path().join(format!("startup-{i}.stderr"));
            let (proc, ready) =
                Proc::spawn_listening("dbapp serve (start-up)", command, addr, "/ready", stderr)
                    .await?;
            proc.stop().await?;
            dbapp.push(ready.as_secs_f64() * 1000.0);

            let command = self.baseline_command(&url)?;
            let stderr = self
                .home
                .path()
                .join(format!("startup-baseline-{i}.stderr"));
            let started = Instant::now();
            let mut proc =
                Proc::spawn_announced("baseline (start-up)", command, baseline::ANNOUNCE, stderr)
                    .await?;
            let ready = proc.wait_ready("/health", started).await?;
            proc.stop().await?;
            base.push(ready.as_secs_f64() * 1000.0);
        }
        let dbapp = Side {
            label: "dbapp serve → /ready 200".into(),
            load: None,
            rss_mb: None,
            startup_ms: dbapp,
        };
        let base = Side {
            label: "hello-world → 200".into(),
            load: None,
            rss_mb: None,
            startup_ms: base,
        };
        let median = dbapp.startup_median().unwrap_or(f64::NAN);
        let ratio = median / base.startup_median().unwrap_or(f64::NAN);
        let mut notes = vec![format!(
            "{samples} samples, p50 = median, p99 = slowest; ratio = medians"
        )];
        if let Some(first) = self.main_ready {
            notes.push(format!(
                "first start (migrations) {:.0} ms",
                first.as_secs_f64() * 1000.0
            ));
        }
        Ok(Row {
            scenario: "startup".into(),
            connections: 0,
            dbapp,
            baseline: Some(base),
            ratio: Some(ratio),
            ratio_kind: "time dbapp/baseline",
            target: Some("< 200 ms"),
            met: Some(median < 200.0),
            notes,
        })
    }

    /// Idle RSS, then the highest RSS under a mixed load (health, cached me, catalogs, list).
    async fn rss(&mut self) -> anyhow::Result<Row> {
        let main = self.main().await?;
        let base = self.baseline().await?;
        let addr = main.1;
        let mixed: MakeRequest = Arc::new(move |connection, n| {
            let path = match (connection as u64 + n) % 4 {
                0 => "/health",
                1 => "/api/user/me",
                2 => "/api/unity-catalog/catalogs",
                _ => "/api/preferences",
            };
            request(addr, Method::GET, path, Auth::Forwarded, None)
        });
        let (base_load, base_rss) = self
            .measure(
                base,
                get(base.1, "/health", Auth::None),
                self.connections,
                None,
            )
            .await?;
        let (load, rss) = self.measure(main, mixed, self.connections, None).await?;
        let hwm = self
            .main
            .as_ref()
            .map_or(0.0, |proc| mb(proc.memory().hwm_kb));
        let peak = rss.max(hwm);
        Ok(Row {
            scenario: "rss".into(),
            connections: self.connections,
            dbapp: Side::load("dbapp mixed GETs", load, Some(peak)),
            baseline: Some(Side::load("hello-world", base_load, Some(base_rss))),
            ratio: Some(peak / base_rss),
            ratio_kind: "RSS dbapp/baseline",
            target: Some("< 50 MB"),
            met: Some(peak < 50.0),
            notes: vec![format!(
                "idle {:.1} MB (hello-world {:.1} MB); under load = VmHWM of the whole run",
                self.main_idle_rss_mb.unwrap_or(0.0),
                self.baseline_idle_rss_mb.unwrap_or(0.0)
            )],
        })
    }

    /// Preferences under load on an emulated Lakebase whose tokens live
    /// [`ROTATION_TTL_SECS`]. Pooled connections that stay idle 100 ms are closed by Postgres
    /// (`idle_session_timeout` on the role) and the load pauses 150 ms every 400 ms, so the pool
    /// keeps logging in again — with whichever token is current — while tokens rotate.
    async fn rotation(&mut self) -> anyhow::Result<Row> {
        let cluster = PrivateCluster::start(ClusterOptions::default())
            .await
            .context("cannot start a private Postgres cluster")?;
        let ttl = ROTATION_TTL_SECS.to_string();
        let admin_url = cluster.admin_url();
        // The server logs in through the emulator's Lakebase front, as an app does on Lakebase.
        let front = SocketAddr::from(([127, 0, 0, 1], procs::free_port()?));
        let front_arg = front.to_string();
        let command = procs::command(
            &self.dbapp,
            &[
                "emulate",
                "--port",
                "0",
                "--postgres-admin-url",
                &admin_url,
                "--lakebase-listen",
                &front_arg,
                "--db-token-ttl",
                &ttl,
            ],
            self.home.path(),
        );
        let stderr = self.home.path().join("emulator-lakebase.stderr");
        let emulator = Proc::spawn_announced(
            "dbapp emulate (Lakebase)",
            command,
            EMULATOR_ANNOUNCE,
            stderr,
        )
        .await?;
        let port = procs::free_port()?;
        let queries = self.home.path().join("queries");
        std::fs::create_dir_all(&queries)?;
        for (name, ttl) in [(QUERY_UNCACHED, 0), (QUERY_CACHED, 3600)] {
            std::fs::write(
                queries.join(format!("{name}.sql")),
                format!(
                    "-- @title {name}\n-- @run_as user\n-- @cache_ttl_secs {ttl}\n{QUERY_SQL}\n"
                ),
            )?;
        }
        let mut command = procs::command(&self.dbapp, &["serve"], self.home.path());
        command
            .env("DATABRICKS_WAREHOUSE_ID", WAREHOUSE)
            .env("DBAPP_QUERIES_DIR", &queries)
            .env("DATABRICKS_HOST", format!("http://{}", emulator.addr))
            .env("DATABRICKS_APP_PORT", port.to_string())
            .env("DATABRICKS_CLIENT_ID", "dbapp-sp")
            .env("DATABRICKS_CLIENT_SECRET", "dev-secret")
            .env("LAKEBASE_INSTANCE_NAME", "dev-lakebase")
            .env("DBAPP_METRICS_TOKEN", SCRAPE_TOKEN)
            .env("PGHOST", front.ip().to_string())
            .env("PGPORT", front.port().to_string())
            .env("PGDATABASE", "databricks_postgres")
            .env("PGSSLMODE", "require");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let stderr = self.home.path().join("server-lakebase.stderr");
        let result = async {
            let (mut server, _) =
                Proc::spawn_listening("dbapp serve (Lakebase)", command, addr, "/ready", stderr)
                    .await?;
            let outcome = self.rotation_load(&cluster, &server).await;
            let alive = server.check_alive();
            server.stop().await.ok();
            alive?;
            outcome
        }
        .await;
        let alive = emulator.stop().await;
        cluster.stop().await.ok();
        alive?;
        result
    }

    async fn rotation_load(
        &mut self,
        cluster: &PrivateCluster,
        server: &Proc,
    ) -> anyhow::Result<Row> {
        let mut admin = cluster.admin_connect_options().connect().await?;
        admin
            .execute(r#"ALTER ROLE "dbapp-sp" SET idle_session_timeout = '100ms'"#)
            .await?;
        // Nothing is running yet: close the sessions opened before the setting existed.
        admin
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'dbapp-sp'",
            )
            .await?;
        let refreshes_before = refreshes(server.addr).await?;
        let sessions_before = sessions(&mut admin).await?;
        let addr = server.addr;
        let make: MakeRequest = Arc::new(move |connection, n| {
            if n % 2 == 0 {
                let key = (connection as u64 + n) % 20;
                let body = format!(r#"{{"n":{n}}}"#);
                request(
                    addr,
                    Method::PUT,
                    &format!("/api/preferences/r{key:02}"),
                    Auth::Forwarded,
                    Some(body),
                )
            } else {
                request(addr, Method::GET, "/api/preferences", Auth::Forwarded, None)
            }
        });
        let bursts = Some((Duration::from_millis(400), Duration::from_millis(150)));
        let (load, rss) = self
            .measure((server.pid, addr), make, self.connections, bursts)
            .await?;
        // Statistics reach pg_stat_database within a second.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let logins = sessions(&mut admin).await? - sessions_before;
        let (ok, failed) = refreshes(addr).await?;
        let (ok, failed) = (ok - refreshes_before.0, failed - refreshes_before.1);
        admin.close().await.ok();
        let mut notes = vec![format!(
            "token TTL {ROTATION_TTL_SECS} s: {ok} refreshes ({failed} failed), {logins} Postgres logins during warm-up + load"
        )];
        if load.errors > 0 {
            self.failures.push(format!(
                "rotation: {} errors, e.g. {:?}",
                load.errors, load.error_samples
            ));
        }
        if ok == 0 || logins == 0 {
            notes.push("no rotation happened: the scenario proved nothing".into());
            self.failures.push(format!(
                "rotation: {ok} token refreshes and {logins} logins during the load"
            ));
        }
        let met = load.errors == 0 && failed == 0;
        Ok(Row {
            scenario: "rotation".into(),
            connections: self.connections,
            dbapp: Side::load("dbapp prefs PUT+GET, Lakebase", load, Some(rss)),
            baseline: None,
            ratio: None,
            ratio_kind: "",
            target: Some("0 errors"),
            met: Some(met),
            notes,
        })
    }

    async fn shutdown(&mut self) {
        for proc in [
            self.main.take(),
            self.uncached.take(),
            self.baseline.take(),
            self.emulator.take(),
        ]
        .into_iter()
        .flatten()
        {
            let name = proc.name.clone();
            if let Err(error) = proc.stop().await {
                self.failures.push(format!("crash: {name}: {error:#}"));
            }
        }
        if let Some(database) = self.database.take() {
            let dropped = async {
                let mut conn = database.admin.connect().await?;
                conn.execute(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                    database.name
                )))
                .await?;
                conn.close().await.ok();
                anyhow::Ok(())
            }
            .await;
            if let Err(error) = dropped {
                eprintln!("dbapp-bench: could not drop {}: {error:#}", database.name);
            }
        }
    }
}

/// Throughput ratio dbapp/baseline against a floor.
fn throughput(mut row: Row, floor: f64, target: &'static str) -> Row {
    let rps = |side: &Side| side.load.as_ref().map_or(0.0, |l| l.rps);
    if let Some(base) = &row.baseline {
        let ratio = rps(&row.dbapp) / rps(base);
        row.ratio = Some(ratio);
        row.met = Some(ratio >= floor);
    }
    row.ratio_kind = "req/s dbapp/baseline";
    row.target = Some(target);
    row
}

/// p50 latency ratio dbapp/baseline against a ceiling.
fn latency(mut row: Row, ceiling: f64, target: &'static str) -> Row {
    let p50 = |side: &Side| side.load.as_ref().map_or(0.0, |l| l.p50_ms);
    if let Some(base) = &row.baseline {
        let ratio = p50(&row.dbapp) / p50(base);
        row.ratio = Some(ratio);
        row.met = Some(ratio <= ceiling);
        let p99 = |side: &Side| side.load.as_ref().map_or(0.0, |l| l.p99_ms);
        row.notes
            .push(format!("p99 ratio {:.2}", p99(&row.dbapp) / p99(base)));
    }
    row.ratio_kind = "p50 dbapp/raw";
    row.target = Some(target);
    row
}

/// p99 added over the upstream called directly; judged on the one-connection row, where no
/// queueing behind other requests inflates it.
fn overhead(row: Row) -> Row {
    overhead_within(row, 1.0, "p99 < +1 ms")
}

/// [`overhead`] against `bound_ms` (the target in words), for routes that make several
/// upstream calls.
fn overhead_within(mut row: Row, bound_ms: f64, target: &'static str) -> Row {
    let get = |side: &Side| {
        side.load
            .as_ref()
            .map_or((0.0, 0.0, 0.0), |l| (l.p50_ms, l.p99_ms, l.rps))
    };
    if let Some(base) = &row.baseline {
        let (d50, d99, drps) = get(&row.dbapp);
        let (b50, b99, brps) = get(base);
        row.ratio = Some(d99 - b99);
        row.notes.push(format!(
            "p50 +{:.2} ms; req/s ratio {:.2}",
            d50 - b50,
            drps / brps
        ));
        if row.connections == 1 {
            row.met = Some(d99 - b99 < bound_ms);
            row.target = Some(target);
        } else {
            row.notes.push("under saturation: queueing, see @1".into());
        }
    }
    row.ratio_kind = "p99 ms over upstream";
    row
}

/// Sets the emulator's Genie step (`PUT /_emulator/config`, `docs/emulator.md`).
async fn genie_step(emulator: SocketAddr, step_ms: u64) -> anyhow::Result<()> {
    let body = serde_json::json!({ "genie_step_ms": step_ms }).to_string();
    one_request(
        emulator,
        request(
            emulator,
            Method::PUT,
            "/_emulator/config",
            Auth::None,
            Some(body),
        ),
    )
    .await
    .with_context(|| format!("cannot set the emulator's genie_step_ms to {step_ms}"))?;
    Ok(())
}

/// One request on a fresh connection; fails unless 2xx.
async fn one_request(addr: SocketAddr, request: Request<Full<Bytes>>) -> anyhow::Result<Bytes> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        bail!("{status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(body)
}

/// `lakebase_token_refresh_total` by outcome (success, failure), from `/metrics`.
async fn refreshes(addr: SocketAddr) -> anyhow::Result<(u64, u64)> {
    let body = one_request(
        addr,
        request(addr, Method::GET, "/metrics", Auth::Scrape, None),
    )
    .await?;
    let text = String::from_utf8_lossy(&body);
    let mut counts = (0, 0);
    for line in text
        .lines()
        .filter(|l| l.starts_with("lakebase_token_refresh_total"))
    {
        let value = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0) as u64;
        if line.contains("outcome=\"success\"") {
            counts.0 += value;
        } else {
            counts.1 += value;
        }
    }
    Ok(counts)
}

/// Sessions established on `databricks_postgres` so far.
async fn sessions(admin: &mut PgConnection) -> anyhow::Result<i64> {
    let (sessions,): (i64,) = sqlx::query_as(
        "SELECT sessions FROM pg_stat_database WHERE datname = 'databricks_postgres'",
    )
    .fetch_one(&mut *admin)
    .await?;
    Ok(sessions)
}
