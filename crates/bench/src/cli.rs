//! The command line: which scenarios to run, for how long, with how many connections, and where
//! to write the JSON report. Parsing only; `scenarios` does the work.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// Benchmarks dbapp against its limits; every figure is a ratio against a baseline measured in
/// the same run.
///
/// Starts the workspace emulator and the server from the release build of `dbapp` (building it
/// first with `cargo build --release -p dbapp` unless `--dbapp` names a binary), drives HTTP load
/// with a fixed number of connections for a fixed time, and prints a Markdown table (and, with
/// `--json`, a JSON report). Exits non-zero when a process crashes, a scenario cannot be set up,
/// or the token rotation scenario sees an error; never for a missed speed target.
#[derive(Debug, Parser)]
#[command(name = "dbapp-bench", version)]
pub(crate) struct Cli {
    /// Scenarios to run, in the order given; none means all.
    #[arg(value_enum)]
    pub(crate) scenarios: Vec<Scenario>,
    /// Measured load per scenario and side (`10s`, `500ms`, `2m`; a bare number is seconds).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(crate) duration: Duration,
    /// Warm-up before each measured load, discarded (default: a fifth of the duration, at most 2 s).
    #[arg(long, value_parser = parse_duration)]
    pub(crate) warmup: Option<Duration>,
    /// Concurrent HTTP/1.1 connections, each with one request in flight.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) connections: u16,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
    /// The `dbapp` binary to benchmark; skips the `cargo build --release -p dbapp` step.
    #[arg(long)]
    pub(crate) dbapp: Option<PathBuf>,
    /// Superuser URL of the machine's Postgres, where a `bench_<uuid>` database is created and
    /// dropped.
    #[arg(
        long,
        env = "DBAPP_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub(crate) postgres_url: String,
    /// Raw request records the admin-report scenario loads (`--smoke`: 20 000).
    #[arg(long, default_value_t = 10_000_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub(crate) report_records: u64,
    /// CI smoke: 2-second loads, short warm-ups, two start-up samples. Fails only on crashes,
    /// set-up failures and rotation errors, like every run.
    #[arg(long)]
    pub(crate) smoke: bool,
    /// Internal: run the baseline server (hello-world and raw sqlx routes) instead.
    #[arg(long, hide = true)]
    pub(crate) baseline_server: bool,
    /// Internal: the baseline server's database.
    #[arg(long, hide = true, requires = "baseline_server")]
    pub(crate) baseline_database_url: Option<String>,
}

impl Cli {
    /// The measured duration of each load, after `--smoke`.
    pub(crate) fn load_duration(&self) -> Duration {
        if self.smoke {
            Duration::from_secs(2)
        } else {
            self.duration
        }
    }

    /// The discarded warm-up before each load.
    pub(crate) fn warmup(&self) -> Duration {
        match self.warmup {
            Some(warmup) => warmup,
            None if self.smoke => Duration::from_millis(300),
            None => (self.load_duration() / 5).min(Duration::from_secs(2)),
        }
    }

    /// The raw records of the admin-report scenario, after `--smoke`.
    pub(crate) fn report_records(&self) -> u64 {
        if self.smoke {
            SMOKE_REPORT_RECORDS.min(self.report_records)
        } else {
            self.report_records
        }
    }

    /// The scenarios to run: those named, else all, without repeats.
    pub(crate) fn selected(&self) -> Vec<Scenario> {
        let named = if self.scenarios.is_empty() {
            Scenario::value_variants().to_vec()
        } else {
            self.scenarios.clone()
        };
        let mut out = Vec::new();
        for scenario in named {
            if !out.contains(&scenario) {
                out.push(scenario);
            }
        }
        out
    }
}

/// Raw records of the admin-report scenario in a smoke run: enough for a few rollup batches.
const SMOKE_REPORT_RECORDS: u64 = 20_000;

/// One benchmark scenario and the baseline it is paired with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Scenario {
    /// `GET /health` vs a hello-world axum server (the floor).
    Health,
    /// `GET /api/user/me`, identity cache warm, vs the hello-world server.
    MeCached,
    /// `GET /api/user/me`, identity cache off, vs the emulator's SCIM Me called directly.
    MeUncached,
    /// `GET /api/user/me`, identity cache warm, exporting its traces over OTLP/gRPC to a
    /// receiver in this process, vs the same server with export off.
    MeOtel,
    /// `GET /api/unity-catalog/catalogs` vs the emulator's catalog list called directly.
    Catalogs,
    /// `GET /api/genie/spaces` vs the emulator's Genie space list called directly.
    GenieSpaces,
    /// `PUT /api/preferences/{key}` on Postgres vs the same upsert through raw sqlx.
    PrefsPut,
    /// `GET /api/preferences` on Postgres vs the same select through raw sqlx.
    PrefsList,
    /// `PUT` and `GET /api/preferences` on a private cluster with row-level security enforced
    /// (dbapp logs in as an ordinary role that owns its tables) and bypassed (dbapp as the
    /// superuser), each vs the same statements through raw sqlx: the cost of the policies.
    PrefsRls,
    /// Time to the first event of a streamed chat answer through dbapp vs from the emulator.
    ChatStream,
    /// Asking Genie, to the end of the streamed answer, vs a client that starts the
    /// conversation, polls the message as dbapp's waiter does and fetches the result itself, at
    /// one connection.
    GenieAsk,
    /// A governed query through dbapp (cache off) vs the same statement sent to the emulator
    /// at one connection; and a cached governed query vs the hello-world server.
    Query,
    /// Preferences under load on an emulated Lakebase whose tokens live 4 s; errors must be 0.
    Rotation,
    /// Spawn to the first 200 on `/ready`, vs the hello-world server's first 200.
    Startup,
    /// Server RSS idle and under a mixed load, vs the hello-world server.
    Rss,
    /// The admin performance report (24 h) from the rollups of `--report-records` raw records
    /// on Postgres, vs `percentile_cont` over the raw rows.
    AdminReport,
}

impl Scenario {
    /// The name used on the command line and in reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Health => "health",
            Self::MeCached => "me-cached",
            Self::MeUncached => "me-uncached",
            Self::MeOtel => "me-otel",
            Self::Catalogs => "catalogs",
            Self::GenieSpaces => "genie-spaces",
            Self::PrefsPut => "prefs-put",
            Self::PrefsList => "prefs-list",
            Self::PrefsRls => "prefs-rls",
            Self::ChatStream => "chat-stream",
            Self::GenieAsk => "genie-ask",
            Self::Query => "query",
            Self::Rotation => "rotation",
            Self::Startup => "startup",
            Self::Rss => "rss",
            Self::AdminReport => "admin-report",
        }
    }
}

/// `10s`, `250ms`, `2m`, or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 10s, 500ms or 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("`{text}`: the unit must be ms, s or m")),
    };
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= 3600.0) {
        return Err(format!("`{text}` must be more than 0 and at most 1 hour"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_accept_units_and_bare_seconds() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn scenarios_default_to_all_and_keep_the_given_order() {
        let all = Cli::parse_from(["dbapp-bench"]);
        assert_eq!(all.selected().len(), Scenario::value_variants().len());
        let some = Cli::parse_from(["dbapp-bench", "rotation", "health", "rotation"]);
        assert_eq!(some.selected(), vec![Scenario::Rotation, Scenario::Health]);
    }

    /// Every `dbapp-bench` command line the docs show parses with these definitions. The docs
    /// test of the `dbapp` crate (`crates/cli/tests/cli/docs_commands.rs`) finds every command in
    /// the docs and leaves the arguments of this harness to this test, the one place its parser
    /// is reachable from. Inline code counts too: a line is taken wherever it names the package.
    #[test]
    fn documented_commands_parse() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut files = vec![root.join("README.md")];
        for entry in std::fs::read_dir(root.join("docs")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
        let mut checked = 0;
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap().replace("\\\n", " ");
            for (number, line) in text.lines().enumerate() {
                let Some(at) = line.find("-p dbapp-bench") else {
                    continue;
                };
                // The command ends at an inline-code backtick or a shell comment.
                let rest = &line[at + "-p dbapp-bench".len()..];
                let rest = rest.split('`').next().unwrap_or_default();
                let rest = rest.split(" #").next().unwrap_or_default();
                let args = rest.trim().strip_prefix("--").unwrap_or_default();
                let argv = std::iter::once("dbapp-bench").chain(args.split_whitespace());
                match Cli::try_parse_from(argv) {
                    Ok(_) => {}
                    Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => {}
                    Err(e) => panic!("{}:{}: `{}`: {e}", file.display(), number + 1, line.trim()),
                }
                checked += 1;
            }
        }
        assert!(
            checked >= 4,
            "only {checked} dbapp-bench commands found in the docs"
        );
    }

    #[test]
    fn smoke_shortens_loads() {
        let cli = Cli::parse_from(["dbapp-bench", "--smoke", "--duration", "30s"]);
        assert_eq!(cli.load_duration(), Duration::from_secs(2));
        assert_eq!(cli.warmup(), Duration::from_millis(300));
        assert_eq!(cli.report_records(), 20_000);
        let cli = Cli::parse_from(["dbapp-bench", "--connections", "8"]);
        assert_eq!(cli.connections, 8);
        assert_eq!(cli.warmup(), Duration::from_secs(2));
        assert_eq!(cli.report_records(), 10_000_000);
        assert!(Cli::try_parse_from(["dbapp-bench", "--report-records", "0"]).is_err());
    }
}
