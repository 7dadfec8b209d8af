//! The retention task: deletes the rows of every append-only table (usage events, inference
//! history, raw request records, request rollups) older than its configured age
//! (`DBAPP_RETENTION_*_DAYS`; 0 keeps a table forever), once when the server starts and then
//! every `DBAPP_RETENTION_INTERVAL_SECS`.
//!
//! Each purge goes through [`Store::purge_older_than`], whose statements delete at most
//! `dbapp_store::PURGE_BATCH` rows each, so the task never holds a long lock, and a stop between
//! or during statements leaves every committed deletion in place. A run logs one
//! `retention.purged` line with the rows deleted per table, and adds them to
//! `retention_deleted_rows_total{table}`; a table whose purge fails is logged
//! (`retention.failed`) and retried at the next run, the others still purged.
//!
//! Several replicas may run it at once: the purges are idempotent deletes by a cutoff, so they
//! only share the work.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use dbapp_store::{Retained, Store};

use crate::config::ServerSettings;
use crate::error::cause_chain;
use crate::metrics::{Metrics, RETENTION_DELETED_ROWS_TOTAL};

/// What one run deletes: the age of each table's rows, `None` to keep them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    ages: [(Retained, Option<Duration>); 4],
    interval: Duration,
}

impl RetentionPolicy {
    /// The policy the settings describe.
    #[must_use]
    pub fn from_settings(settings: &ServerSettings) -> Self {
        Self {
            ages: Retained::ALL.map(|table| (table, settings.retention(table))),
            interval: settings.retention_interval(),
        }
    }
}

/// Starts the task on the current runtime: a purge now, then one every interval of `policy`,
/// until the handle is aborted (the server does it when it stops).
#[must_use]
pub fn spawn_retention(
    store: Arc<dyn Store>,
    policy: RetentionPolicy,
    metrics: Metrics,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(policy.interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            purge_once(store.as_ref(), &policy, &metrics).await;
        }
    })
}

/// One run: each table with an age loses its rows older than now minus that age.
async fn purge_once(store: &dyn Store, policy: &RetentionPolicy, metrics: &Metrics) {
    let now = Utc::now();
    let mut deleted = [0_u64; 4];
    for (slot, (table, age)) in deleted.iter_mut().zip(policy.ages) {
        let Some(age) = age else { continue };
        // An age past the year-1 limit (millions of days) purges nothing rather than failing.
        let Some(cutoff) = chrono::TimeDelta::from_std(age)
            .ok()
            .and_then(|age| now.checked_sub_signed(age))
        else {
            continue;
        };
        match store.purge_older_than(table, cutoff).await {
            Ok(rows) => {
                *slot = rows;
                metrics.count(
                    RETENTION_DELETED_ROWS_TOTAL,
                    &[("table", table.as_str())],
                    rows,
                );
            }
            Err(error) => tracing::warn!(
                event = "retention.failed",
                table = table.as_str(),
                error = %cause_chain(&error),
            ),
        }
    }
    let [
        usage_events,
        model_inference_logs,
        performance_metrics,
        performance_rollups,
    ] = deleted;
    tracing::info!(
        event = "retention.purged",
        usage_events,
        model_inference_logs,
        performance_metrics,
        performance_rollups,
    );
}
