//! The request-record writer, [`RequestRecorder`]: performance records of `/api` requests for
//! the admin dashboard, written to the store off the request path.
//!
//! Records go through a bounded channel to one batch writer task, so no request waits on the
//! database for them; when the channel is full a record is dropped and counted
//! (`request_records_dropped_total`) rather than blocking. The writer gathers records for up to
//! [`RECORD_FLUSH_INTERVAL`] (or [`RECORD_BATCH`] of them) per insert, so a busy server spends one
//! statement a second on them, not one per request.

use std::sync::Arc;
use std::time::Duration;

use dbapp_store::{NewRequestRecord, Store};
use tokio::sync::mpsc;

use crate::error::cause_chain;
use crate::metrics::{Metrics, REQUEST_RECORDS_DROPPED_TOTAL};

/// The sending side of the request-record channel; cheap to clone.
#[derive(Debug, Clone)]
pub struct RequestRecorder {
    sender: Option<mpsc::Sender<NewRequestRecord>>,
    metrics: Option<Metrics>,
}

/// Records buffered before new ones are dropped.
pub const RECORD_CHANNEL_CAPACITY: usize = 10_000;
/// Most records written in one batch.
pub const RECORD_BATCH: usize = 500;
/// Longest a record waits for others to share its insert.
pub const RECORD_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

impl RequestRecorder {
    /// A recorder that records nothing (no store configured).
    #[must_use]
    pub fn disabled() -> Self {
        Self {
            sender: None,
            metrics: None,
        }
    }

    /// Starts the batch writer on the current runtime. It ends, after writing what is queued,
    /// when every clone of the returned recorder has been dropped.
    #[must_use]
    pub fn spawn(store: Arc<dyn Store>, metrics: Metrics) -> (Self, tokio::task::JoinHandle<()>) {
        let (sender, mut receiver) = mpsc::channel::<NewRequestRecord>(RECORD_CHANNEL_CAPACITY);
        let handle = tokio::spawn(async move {
            let mut batch = Vec::with_capacity(RECORD_BATCH);
            // Wait for a first record; the loop ends once every sender is gone and the queue
            // is drained.
            while receiver.recv_many(&mut batch, RECORD_BATCH).await > 0 {
                let deadline = tokio::time::Instant::now() + RECORD_FLUSH_INTERVAL;
                while batch.len() < RECORD_BATCH {
                    let room = RECORD_BATCH - batch.len();
                    match tokio::time::timeout_at(deadline, receiver.recv_many(&mut batch, room))
                        .await
                    {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
                if let Err(error) = store.insert_request_records(&batch).await {
                    tracing::warn!(
                        event = "metrics.request_records_failed",
                        records = batch.len(),
                        error = %cause_chain(&error),
                    );
                }
                batch.clear();
            }
        });
        (
            Self {
                sender: Some(sender),
                metrics: Some(metrics),
            },
            handle,
        )
    }

    /// Queues one record without waiting; drops (and counts) it when the queue is full.
    pub fn record(&self, record: NewRequestRecord) {
        let Some(sender) = &self.sender else { return };
        if sender.try_send(record).is_err()
            && let Some(metrics) = &self.metrics
        {
            metrics.count(REQUEST_RECORDS_DROPPED_TOTAL, &[], 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_record_writer_flushes_everything_queued_when_the_server_stops() {
        // Arrange: a real SQLite store.
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(dbapp_store::sqlite::SqliteStore::open(
            &dir.path().join("records.db"),
            &dbapp_store::PoolSettings::default(),
        ));
        store.migrate().await.unwrap();
        let (recorder, writer) = RequestRecorder::spawn(
            Arc::clone(&store),
            Metrics::new(10, crate::config::UserLabels::Hash),
        );
        let now = chrono::Utc::now();

        // Act: fewer records than a batch, then every sender goes away.
        for status in [200, 201, 500] {
            recorder.record(NewRequestRecord {
                route: "/api/preferences".to_owned(),
                method: "GET".to_owned(),
                status,
                duration_ms: 1.5,
                recorded_at: now,
            });
        }
        drop(recorder);
        writer.await.unwrap();

        // Assert: written at once, without waiting out the flush interval.
        let window = dbapp_store::TimeWindow::new(
            now - chrono::TimeDelta::minutes(1),
            now + chrono::TimeDelta::minutes(1),
        )
        .unwrap();
        let report = store.admin_performance_report(window, None).await.unwrap();
        assert_eq!(report.summary.requests, 3);
        assert_eq!(report.summary.errors, 1);
    }
}
