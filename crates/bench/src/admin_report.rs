//! The `admin-report` scenario: the admin performance report over many raw request records on
//! Postgres, in this process, against the query it replaced.
//!
//! A database of its own (`bench_report_<uuid>`, dropped at the end, pass or fail) is migrated
//! and loaded through `PgStore::insert_request_records` in batches of
//! `dbapp_store::MAX_REQUEST_RECORD_BATCH`, oldest first as a server writes them, so the
//! rollups are exactly what the store writes. The records spread evenly over the 24 hours
//! before a minute boundary, over ten routes, with log-uniform durations from 0.5 ms to 2 s and
//! 1 % server errors. Then the 24 h report is timed [`REPORT_RUNS`] times, noting how much this
//! process's resident memory grows, and the baseline — the report as it was computed before the
//! rollups, `percentile_cont` over the raw rows of the window — [`RAW_RUNS`] times. The ratio is
//! the baseline's p95 over the report's.

use std::str::FromStr;
use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, TimeDelta, Utc};
use dbapp_store::postgres::PgStore;
use dbapp_store::{MAX_REQUEST_RECORD_BATCH, NewRequestRecord, PoolSettings, Store, TimeRange};
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Executor};

use crate::cli::Cli;
use crate::load::Recording;
use crate::report::{Row, Side};
use crate::scenarios::mb;

/// Timed reports from the rollups (a smoke run: 5).
const REPORT_RUNS: usize = 50;
/// Timed baseline reports over the raw rows, which take seconds each at 10 M rows (smoke: 2).
const RAW_RUNS: usize = 5;
/// The routes and methods the records are spread over.
const ROUTES: [(&str, &str); 10] = [
    ("/api/preferences", "GET"),
    ("/api/preferences/{key}", "GET"),
    ("/api/preferences/{key}", "PUT"),
    ("/api/preferences/{key}", "DELETE"),
    ("/api/user/me", "GET"),
    ("/api/unity-catalog/catalogs", "GET"),
    ("/api/unity-catalog/tables/{full_name}", "GET"),
    ("/api/model-serving/endpoints/{name}/invoke", "POST"),
    ("/api/model-serving/history", "GET"),
    ("/api/usage/events", "POST"),
];

// The report as the stores computed it before the rollups: exact percentiles over the raw rows.
const RAW_SUMMARY: &str = "SELECT count(*), count(*) FILTER (WHERE status_code >= 500), \
         percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms), \
         percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms), \
         percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ms) \
     FROM performance_metrics WHERE recorded_at >= $1 AND recorded_at < $2";
const RAW_BY_ROUTE: &str = "SELECT route, method, count(*), \
         count(*) FILTER (WHERE status_code >= 500), \
         percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms), \
         percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms), \
         percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ms) \
     FROM performance_metrics WHERE recorded_at >= $1 AND recorded_at < $2 \
     GROUP BY route, method";

/// A row of [`RAW_BY_ROUTE`]: route, method, requests, errors, p50, p95, p99.
type RawRouteRow = (
    String,
    String,
    i64,
    i64,
    Option<f64>,
    Option<f64>,
    Option<f64>,
);

/// Runs the scenario on a database of its own, dropped afterwards whatever happened.
pub(crate) async fn run(cli: &Cli) -> anyhow::Result<Row> {
    let admin = PgConnectOptions::from_str(&cli.postgres_url)
        .context("--postgres-url")?
        .disable_statement_logging();
    let name = format!("bench_report_{}", uuid::Uuid::new_v4().simple());
    let mut conn = admin
        .connect()
        .await
        .with_context(|| format!("cannot connect to {}", cli.postgres_url))?;
    conn.execute(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .await?;
    let outcome = measure(cli, admin.clone().database(&name)).await;
    conn.execute(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .await?;
    conn.close().await.ok();
    outcome
}

async fn measure(cli: &Cli, options: PgConnectOptions) -> anyhow::Result<Row> {
    let records = cli.report_records();
    let store = PgStore::connect_lazy(options, &PoolSettings::default());
    store.migrate().await?;
    let end = DateTime::from_timestamp(Utc::now().timestamp() / 60 * 60, 0).context("now")?;
    let window = TimeRange::Last24Hours.ending_at(end);

    let started = Instant::now();
    load(&store, records, window.start).await?;
    let load_secs = started.elapsed().as_secs_f64();
    let (minute_rows, hour_rows): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM performance_rollups), \
                (SELECT count(*) FROM performance_rollups_hourly)",
    )
    .fetch_one(store.pool())
    .await?;
    sqlx::query("VACUUM ANALYZE").execute(store.pool()).await?;

    let (report_runs, raw_runs) = if cli.smoke {
        (5, 2)
    } else {
        (REPORT_RUNS, RAW_RUNS)
    };
    let rss_before = rss_kb();
    let mut rss_peak = rss_before;
    let mut timings = Vec::with_capacity(report_runs);
    let mut summary = None;
    for _ in 0..report_runs {
        let start = Instant::now();
        let report = store.admin_performance_report(window, None).await?;
        timings.push(start.elapsed());
        rss_peak = rss_peak.max(rss_kb());
        summary = Some(report.summary);
    }
    let summary = summary.context("no report")?;
    anyhow::ensure!(
        u64::try_from(summary.requests)? == records,
        "the report counted {} of {records} records",
        summary.requests
    );
    let report = Recording::of_timings(&timings, timings.iter().sum()).result();

    let mut raw_timings = Vec::with_capacity(raw_runs);
    let mut exact_p95 = None;
    for _ in 0..raw_runs {
        let start = Instant::now();
        let (_, _, _, p95, _): (i64, i64, Option<f64>, Option<f64>, Option<f64>) =
            sqlx::query_as(RAW_SUMMARY)
                .bind(window.start)
                .bind(window.end)
                .fetch_one(store.pool())
                .await?;
        let routes: Vec<RawRouteRow> = sqlx::query_as(RAW_BY_ROUTE)
            .bind(window.start)
            .bind(window.end)
            .fetch_all(store.pool())
            .await?;
        raw_timings.push(start.elapsed());
        anyhow::ensure!(routes.len() == ROUTES.len(), "raw report routes");
        exact_p95 = p95;
    }
    let raw = Recording::of_timings(&raw_timings, raw_timings.iter().sum()).result();
    let p95_error = match (summary.p95_ms, exact_p95) {
        (Some(estimate), Some(exact)) => (estimate - exact).abs() / exact,
        _ => f64::NAN,
    };

    Ok(Row {
        scenario: "admin-report".into(),
        connections: 1,
        ratio: Some(raw.p95_ms / report.p95_ms),
        dbapp: Side::load(
            "report 24h from rollups",
            report,
            Some(mb(rss_peak.saturating_sub(rss_before))),
        ),
        baseline: Some(Side::load("percentile_cont over raw rows", raw, None)),
        ratio_kind: "p95 raw/rollups",
        target: None,
        met: None,
        notes: vec![
            format!(
                "{records} raw records loaded through the store in {load_secs:.0} s \
                 ({minute_rows} minute and {hour_rows} hourly rollup rows)"
            ),
            "RSS MB = growth of this process's VmRSS while reporting".into(),
            format!(
                "summary p95 {:.2} ms vs exact {:.2} ms ({:.2} % off)",
                summary.p95_ms.unwrap_or(f64::NAN),
                exact_p95.unwrap_or(f64::NAN),
                p95_error * 100.0
            ),
        ],
    })
}

/// Loads `records` records spread evenly over the 24 hours from `start`, oldest first, in full
/// batches through the store.
async fn load(store: &PgStore, records: u64, start: DateTime<Utc>) -> anyhow::Result<()> {
    let step_us = 86_400_000_000 / records.max(1);
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut batch = Vec::with_capacity(MAX_REQUEST_RECORD_BATCH);
    for i in 0..records {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let (route, method) = ROUTES[(state % ROUTES.len() as u64) as usize];
        // Log-uniform between 0.5 ms and 2 s: 0.5 · 4000^u.
        let u = (state >> 11) as f64 / (1_u64 << 53) as f64;
        let offset = i64::try_from(i * step_us)?;
        batch.push(NewRequestRecord {
            route: route.to_owned(),
            method: method.to_owned(),
            status: if state.is_multiple_of(100) { 500 } else { 200 },
            duration_ms: 0.5 * 4000_f64.powf(u),
            recorded_at: start + TimeDelta::microseconds(offset),
        });
        if batch.len() == MAX_REQUEST_RECORD_BATCH {
            store.insert_request_records(&batch).await?;
            batch.clear();
        }
    }
    store.insert_request_records(&batch).await?;
    Ok(())
}

/// This process's resident memory, kB (0 where `/proc` is missing).
fn rss_kb() -> u64 {
    crate::procs::memory(std::process::id()).map_or(0, |m| m.rss_kb)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Duration;

    #[test]
    fn timings_become_percentiles_in_milliseconds() {
        // Arrange
        let timings: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();

        // Act
        let result = Recording::of_timings(&timings, Duration::from_secs(5)).result();

        // Assert
        assert_eq!(
            (result.p50_ms, result.p95_ms, result.max_ms),
            (50.0, 95.0, 100.0)
        );
        assert_eq!((result.responses, result.errors), (100, 0));
        assert!((result.rps - 20.0).abs() < 1e-9);
    }
}
