//! The report: one row per scenario (two for the scenarios also measured with one connection),
//! printed as a Markdown table and written as JSON.

use serde::Serialize;

use crate::load::LoadResult;

/// One side of a comparison: dbapp, or its baseline.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Side {
    /// What was measured (`dbapp GET /health`, `emulator SCIM Me`).
    pub(crate) label: String,
    /// The load's figures, for load scenarios.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) load: Option<LoadResult>,
    /// Highest `VmRSS` of the process during the load (or idle, where said), MB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rss_mb: Option<f64>,
    /// Start-up samples, ms (the start-up scenario).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) startup_ms: Vec<f64>,
}

impl Side {
    /// A side with a load.
    pub(crate) fn load(label: impl Into<String>, load: LoadResult, rss_mb: Option<f64>) -> Self {
        Self {
            label: label.into(),
            load: Some(load),
            rss_mb,
            startup_ms: Vec::new(),
        }
    }

    /// Median of the start-up samples.
    pub(crate) fn startup_median(&self) -> Option<f64> {
        let mut samples = self.startup_ms.clone();
        samples.sort_by(f64::total_cmp);
        samples.get(samples.len() / 2).copied()
    }
}

/// One row of the report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    /// Scenario name, with `@1` when measured with one connection.
    pub(crate) scenario: String,
    /// Connections of the load (0 for non-load scenarios).
    pub(crate) connections: usize,
    /// dbapp's side.
    pub(crate) dbapp: Side,
    /// The baseline, when the scenario has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) baseline: Option<Side>,
    /// The compared figure, as `ratio_kind` says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ratio: Option<f64>,
    /// What `ratio` is (`throughput dbapp/baseline`, `p99 overhead ms`, …).
    pub(crate) ratio_kind: &'static str,
    /// The target, in words (`≥ 0.8`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) target: Option<&'static str>,
    /// Whether the target is met.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) met: Option<bool>,
    /// Anything else a reader needs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) notes: Vec<String>,
}

/// The whole run.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    /// When the run started (UTC).
    pub(crate) started_at: String,
    /// `nproc`, CPU model, kernel: figures are only comparable within one run.
    pub(crate) machine: String,
    /// Measured seconds per load.
    pub(crate) duration_secs: f64,
    /// Warm-up seconds per load.
    pub(crate) warmup_secs: f64,
    /// Connections of the load scenarios.
    pub(crate) connections: usize,
    /// The rows.
    pub(crate) rows: Vec<Row>,
    /// Crashes, set-up failures and rotation errors: any of these fails the run.
    pub(crate) failures: Vec<String>,
}

fn num(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.decimals$}"))
}

impl Report {
    /// The report as a Markdown table plus its failures.
    pub(crate) fn markdown(&self) -> String {
        let mut out = format!(
            "{} · {} · {} s per load after {} s warm-up, {} connections\n\n",
            self.started_at, self.machine, self.duration_secs, self.warmup_secs, self.connections
        );
        out.push_str(
            "| scenario | conns | dbapp req/s | p50 ms | p95 ms | p99 ms | errors | RSS MB | \
             baseline | req/s | p50 ms | p99 ms | ratio | target | met | notes |\n\
             |---|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|---|---|---|\n",
        );
        for row in &self.rows {
            let (rps, p50, p95, p99, errors) = side_cells(&row.dbapp);
            let (b_label, b_rps, b_p50, b_p99) = match &row.baseline {
                Some(side) => {
                    let (rps, p50, _, p99, _) = side_cells(side);
                    (side.label.clone(), rps, p50, p99)
                }
                None => ("–".into(), "–".into(), "–".into(), "–".into()),
            };
            let ratio = match row.ratio {
                Some(ratio) => format!("{ratio:.2} ({})", row.ratio_kind),
                None => "–".into(),
            };
            let met = match row.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "–",
            };
            out.push_str(&format!(
                "| {} | {} | {rps} | {p50} | {p95} | {p99} | {errors} | {} | {b_label} | {b_rps} | \
                 {b_p50} | {b_p99} | {ratio} | {} | {met} | {} |\n",
                row.scenario,
                row.connections,
                num(row.dbapp.rss_mb, 1),
                row.target.unwrap_or("–"),
                row.notes.join("; "),
            ));
        }
        if self.failures.is_empty() {
            out.push_str("\nNo crashes, set-up failures or rotation errors.\n");
        } else {
            out.push_str("\nFAILURES:\n");
            for failure in &self.failures {
                out.push_str(&format!("- {failure}\n"));
            }
        }
        out
    }
}

/// req/s, p50, p95, p99, errors of a side; start-up sides show median and max as p50 and p99.
fn side_cells(side: &Side) -> (String, String, String, String, String) {
    if let Some(load) = &side.load {
        return (
            format!("{:.0}", load.rps),
            format!("{:.2}", load.p50_ms),
            format!("{:.2}", load.p95_ms),
            format!("{:.2}", load.p99_ms),
            load.errors.to_string(),
        );
    }
    if !side.startup_ms.is_empty() {
        let max = side.startup_ms.iter().copied().fold(0.0, f64::max);
        return (
            "–".into(),
            num(side.startup_median(), 1),
            "–".into(),
            format!("{max:.1}"),
            "–".into(),
        );
    }
    ("–".into(), "–".into(), "–".into(), "–".into(), "–".into())
}
