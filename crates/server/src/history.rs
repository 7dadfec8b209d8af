//! The inference history's writer, [`History`]: every model invocation is recorded in its
//! caller's history, whatever its outcome, for as long as the process lives. The model-serving
//! route decides *what* a record says; this module owns *getting it stored*.
//!
//! - **A slot before the call.** [`History::reserve`] takes one of
//!   `DBAPP_HISTORY_OUTBOX_CAPACITY` slots before the model is called; with none free the
//!   invocation is refused (`503 DATABASE_UNAVAILABLE`, [`ApiError::HistoryBacklogFull`]), so no
//!   invocation is made that could not be recorded. A slot is held by the invocation in flight,
//!   then by its record until the store has it; so the capacity bounds the memory records can
//!   take during an outage.
//! - **Read-your-writes when the store is healthy.** [`PendingRecord::record`] writes the record
//!   directly, so the caller's next history read shows it. When the store refuses it as
//!   unavailable (or any error but invalid input), or while earlier records are still waiting
//!   (the store is known to be down, and the request need not wait for it again), the record
//!   goes to the **outbox**: one writer task retries the oldest record with backoff
//!   ([`RETRY_MIN`] doubling to [`RETRY_MAX`]) until the store takes it. A `Conflict` on its
//!   `request_id` means an earlier attempt did store it: done.
//! - **Nothing lost to cancellation.** A [`PendingRecord`] dropped before it was stored (the
//!   request deadline or a closed connection ended the handler, even in the middle of the direct
//!   write) puts its record in the outbox from `Drop`: `TIMEOUT` when the request deadline had
//!   passed, `ERROR` otherwise, unless the model had already answered.
//! - **What the database cannot hold is made storable.** NUL characters (U+0000, which
//!   Postgres refuses in text and JSON) in strings and object keys of the inputs and predictions
//!   and in the error message become U+FFFD; inputs whose compact JSON is longer than
//!   `DBAPP_HISTORY_INPUT_MAX_BYTES` are stored as a JSON string holding the first bytes of it
//!   (cut at a character boundary) with `inputs_truncated` set.
//! - **Shutdown.** [`History::close`] waits for the outbox to empty until a deadline (the end of
//!   the shutdown grace); what is left then is logged (request id, endpoint, status) and counted
//!   as dropped. A record is otherwise dropped only when the store refuses it as invalid input.
//!
//! Metrics: `inference_history_outbox_records` (gauge: records waiting),
//! `inference_history_delayed_total` (records that went to the outbox),
//! `inference_history_written_late_total` (written from it) and
//! `inference_history_dropped_total{reason="invalid"|"shutdown"}`.
//!
//! Without a store (Databricks Apps with no database) nothing is recorded and nothing refused.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use dbapp_store::{InferenceLog, InferenceStatus, Store, StoreError, UserId};
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use crate::error::{ApiError, cause_chain};
use crate::metrics::{
    INFERENCE_HISTORY_DELAYED_TOTAL, INFERENCE_HISTORY_DROPPED_TOTAL,
    INFERENCE_HISTORY_OUTBOX_RECORDS, INFERENCE_HISTORY_WRITTEN_LATE_TOTAL, Metrics,
};

/// First wait before the outbox writer tries the store again.
pub const RETRY_MIN: Duration = Duration::from_millis(250);
/// Longest wait between two tries: an outage ending is noticed within it.
pub const RETRY_MAX: Duration = Duration::from_secs(5);

/// The inference history's writer (see the module header); cheap to clone.
#[derive(Debug, Clone)]
pub struct History(Option<Arc<Shared>>);

#[derive(Debug)]
struct Shared {
    store: Arc<dyn Store>,
    metrics: Metrics,
    input_max_bytes: usize,
    capacity: usize,
    /// One permit per invocation in flight or record not yet stored.
    slots: Arc<Semaphore>,
    /// Unbounded, because `slots` bounds it and `Drop` must be able to send without waiting.
    outbox: mpsc::UnboundedSender<Queued>,
    /// Records in the outbox (waiting or being retried).
    waiting: watch::Sender<usize>,
    /// Tells the writer to stop retrying and log what is left.
    stop: watch::Sender<bool>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// A record in the outbox, with the slot it holds.
struct Queued {
    user: UserId,
    log: InferenceLog,
    _slot: OwnedSemaphorePermit,
}

impl History {
    /// A history that records nothing (no store configured).
    #[must_use]
    pub fn disabled() -> Self {
        Self(None)
    }

    /// Starts the outbox writer on the current runtime. `input_max_bytes` caps stored inputs,
    /// `capacity` bounds invocations in flight plus records waiting.
    #[must_use]
    pub fn spawn(
        store: Arc<dyn Store>,
        metrics: Metrics,
        input_max_bytes: usize,
        capacity: usize,
    ) -> Self {
        let (outbox, queue) = mpsc::unbounded_channel();
        let (waiting, _) = watch::channel(0);
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            store,
            metrics,
            input_max_bytes,
            capacity,
            slots: Arc::new(Semaphore::new(capacity)),
            outbox,
            waiting,
            stop,
            writer: Mutex::new(None),
        });
        // The writer holds the shared state, and with it the sender: it ends when `close` tells
        // it to stop, not when the channel closes.
        let writer = tokio::spawn(write_outbox(Arc::clone(&shared), queue, stopped));
        *shared.writer.lock().unwrap_or_else(PoisonError::into_inner) = Some(writer);
        Self(Some(shared))
    }

    /// Takes a slot for one invocation, before the model is called, and prepares its record
    /// (inputs sanitized and capped). `deadline` is when the request deadline passes (`None`:
    /// too far away to name).
    ///
    /// # Errors
    /// [`ApiError::HistoryBacklogFull`] when every slot is taken.
    pub fn reserve(
        &self,
        user: UserId,
        request_id: Uuid,
        endpoint_name: &str,
        inputs: &Value,
        deadline: Option<Instant>,
    ) -> Result<PendingRecord, ApiError> {
        let Some(shared) = &self.0 else {
            return Ok(PendingRecord {
                history: None,
                user,
                log: None,
                answered: false,
                started: Instant::now(),
                deadline,
            });
        };
        let slot = Arc::clone(&shared.slots).try_acquire_owned().map_err(|_| {
            ApiError::HistoryBacklogFull {
                capacity: shared.capacity,
            }
        })?;
        let (inputs, inputs_truncated) = stored_inputs(inputs, shared.input_max_bytes);
        Ok(PendingRecord {
            history: Some((Arc::clone(shared), slot)),
            user,
            log: Some(InferenceLog {
                request_id,
                endpoint_name: endpoint_name.to_owned(),
                status: InferenceStatus::Error,
                inputs,
                inputs_truncated,
                predictions: None,
                error_message: None,
                execution_time_ms: 0,
                created_at: Utc::now(),
                completed_at: None,
            }),
            answered: false,
            started: Instant::now(),
            deadline,
        })
    }

    /// Waits until the outbox is empty or `deadline` passes; returns whether it is empty.
    pub async fn flushed(&self, deadline: Instant) -> bool {
        let Some(shared) = &self.0 else { return true };
        let mut waiting = shared.waiting.subscribe();
        tokio::time::timeout_at(deadline, waiting.wait_for(|n| *n == 0))
            .await
            .is_ok()
    }

    /// Waits until the outbox is empty or `deadline` passes, then stops the writer; records
    /// still waiting are logged and counted as dropped. For graceful shutdown, after the last
    /// request has finished.
    pub async fn close(&self, deadline: Instant) {
        let Some(shared) = &self.0 else { return };
        self.flushed(deadline).await;
        let _ = shared.stop.send(true);
        let writer = shared
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(writer) = writer {
            let _ = writer.await;
        }
    }
}

impl Shared {
    fn enqueue(&self, user: UserId, log: InferenceLog, slot: OwnedSemaphorePermit) {
        self.metrics.count(INFERENCE_HISTORY_DELAYED_TOTAL, &[], 1);
        // Counted before sending: the writer may store it and count it done at once.
        self.waiting.send_modify(|n| *n += 1);
        self.show_waiting();
        let queued = Queued {
            user,
            log,
            _slot: slot,
        };
        if let Err(mpsc::error::SendError(lost)) = self.outbox.send(queued) {
            // Only after `close` has stopped the writer: nothing can store it any more.
            self.dropped(&lost.log, "shutdown");
            self.done();
        }
    }

    fn done(&self) {
        self.waiting.send_modify(|n| *n = n.saturating_sub(1));
        self.show_waiting();
    }

    fn show_waiting(&self) {
        let waiting = *self.waiting.borrow();
        self.metrics
            .gauge(INFERENCE_HISTORY_OUTBOX_RECORDS, &[], waiting as f64);
    }

    fn dropped(&self, log: &InferenceLog, reason: &'static str) {
        self.metrics
            .count(INFERENCE_HISTORY_DROPPED_TOTAL, &[("reason", reason)], 1);
        tracing::error!(
            event = "model_serving.history_dropped",
            reason,
            request_id = %log.request_id,
            endpoint = %log.endpoint_name,
            status = log.status.as_str(),
        );
    }
}

/// The outbox writer: stores the oldest record, retrying with backoff, until told to stop.
async fn write_outbox(
    shared: Arc<Shared>,
    mut queue: mpsc::UnboundedReceiver<Queued>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let queued = tokio::select! {
            queued = queue.recv() => queued,
            _ = stopped.wait_for(|stop| *stop) => None,
        };
        let Some(queued) = queued else { break };
        let mut wait = RETRY_MIN;
        let mut attempt = 1_u32;
        let stored = loop {
            match shared
                .store
                .append_inference_log(&queued.user, &queued.log)
                .await
            {
                Ok(()) | Err(StoreError::Conflict(_)) => break true,
                Err(error @ StoreError::InvalidInput(_)) => {
                    tracing::error!(
                        event = "model_serving.history_refused",
                        error = %cause_chain(&error),
                    );
                    shared.dropped(&queued.log, "invalid");
                    break false;
                }
                Err(error) => {
                    tracing::warn!(
                        event = "model_serving.history_retry",
                        request_id = %queued.log.request_id,
                        attempt,
                        retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        error = %cause_chain(&error),
                    );
                    let stop = tokio::select! {
                        () = tokio::time::sleep(wait) => false,
                        _ = stopped.wait_for(|stop| *stop) => true,
                    };
                    if stop {
                        shared.dropped(&queued.log, "shutdown");
                        break false;
                    }
                    wait = (wait * 2).min(RETRY_MAX);
                    attempt = attempt.saturating_add(1);
                }
            }
        };
        if stored {
            shared
                .metrics
                .count(INFERENCE_HISTORY_WRITTEN_LATE_TOTAL, &[], 1);
        }
        shared.done();
    }
    // Stopped: whatever is still queued cannot be stored any more.
    queue.close();
    while let Ok(queued) = queue.try_recv() {
        shared.dropped(&queued.log, "shutdown");
        shared.done();
    }
}

/// How an invocation ended, as its record says.
#[derive(Debug)]
pub struct Outcome {
    /// `SUCCESS`, `ERROR` or `TIMEOUT`.
    pub status: InferenceStatus,
    /// The model's answer, on success.
    pub predictions: Option<Value>,
    /// Why it failed.
    pub error_message: Option<String>,
    /// Wall time of the invocation.
    pub execution_time_ms: i64,
}

/// The record of one invocation between [`History::reserve`] and its storage; holds its slot.
/// Dropped without [`PendingRecord::record`] having stored it, it goes to the outbox.
#[derive(Debug)]
pub struct PendingRecord {
    history: Option<(Arc<Shared>, OwnedSemaphorePermit)>,
    user: UserId,
    /// `None` once stored (or when there is no store).
    log: Option<InferenceLog>,
    /// Whether `log` holds the invocation's outcome yet.
    answered: bool,
    started: Instant,
    deadline: Option<Instant>,
}

impl PendingRecord {
    /// Records the invocation's outcome: directly when the store takes it, else through the
    /// outbox (module header).
    pub async fn record(mut self, outcome: Outcome) {
        let Some(log) = self.log.as_mut() else {
            tracing::debug!(event = "model_serving.history_not_recorded");
            return;
        };
        log.status = outcome.status;
        log.predictions = outcome.predictions.map(value_without_nul);
        log.error_message = outcome.error_message.map(without_nul);
        log.execution_time_ms = outcome.execution_time_ms;
        log.completed_at = Some(Utc::now());
        self.answered = true;
        let Some((shared, _)) = &self.history else {
            return;
        };
        // Records are waiting: the store is down, and this one queues behind them (`Drop`).
        if *shared.waiting.borrow() > 0 {
            return;
        }
        match shared.store.append_inference_log(&self.user, log).await {
            Ok(()) | Err(StoreError::Conflict(_)) => self.log = None,
            Err(error @ StoreError::InvalidInput(_)) => {
                tracing::error!(
                    event = "model_serving.history_refused",
                    error = %cause_chain(&error),
                );
                shared.dropped(log, "invalid");
                self.log = None;
            }
            Err(error) => tracing::warn!(
                event = "model_serving.history_delayed",
                request_id = %log.request_id,
                error = %cause_chain(&error),
            ),
        }
    }
}

impl Drop for PendingRecord {
    fn drop(&mut self) {
        let (Some(mut log), Some((shared, slot))) = (self.log.take(), self.history.take()) else {
            return;
        };
        if !self.answered {
            // The handler ended before the model answered: the request deadline, or the
            // client went away.
            let (status, why) = if self.deadline.is_some_and(|d| Instant::now() >= d) {
                (
                    InferenceStatus::Timeout,
                    "the request deadline passed before the model answered",
                )
            } else {
                (
                    InferenceStatus::Error,
                    "the request ended before the model answered",
                )
            };
            log.status = status;
            log.error_message = Some(why.to_owned());
            log.execution_time_ms =
                i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX);
            log.completed_at = Some(Utc::now());
        }
        let user = self.user.clone();
        shared.enqueue(user, log, slot);
    }
}

/// The inputs as stored: NUL-free, or when their compact JSON is longer than `max_bytes`, a
/// JSON string with its first bytes (at most `max_bytes`, cut at a character boundary); and
/// whether they were cut.
fn stored_inputs(inputs: &Value, max_bytes: usize) -> (Value, bool) {
    let text = inputs.to_string();
    if text.len() <= max_bytes {
        return (value_without_nul(inputs.clone()), false);
    }
    // The compact JSON has no raw NUL: serde_json escapes control characters.
    let cut = text.floor_char_boundary(max_bytes);
    (Value::String(text[..cut].to_owned()), true)
}

/// `value` with every NUL in its strings and object keys replaced by U+FFFD.
fn value_without_nul(value: Value) -> Value {
    // Recursion is bounded: serde_json parses at most 128 levels of nesting.
    match value {
        Value::String(text) => Value::String(without_nul(text)),
        Value::Array(items) => Value::Array(items.into_iter().map(value_without_nul).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, item)| (without_nul(key), value_without_nul(item)))
                .collect(),
        ),
        other @ (Value::Null | Value::Bool(_) | Value::Number(_)) => other,
    }
}

/// `text` with every NUL replaced by U+FFFD.
fn without_nul(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use dbapp_store::PageRequest;
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn a_record_dropped_before_the_model_answered_is_still_stored() {
        // Arrange: a real SQLite store and two reservations, one past its request deadline.
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(dbapp_store::sqlite::SqliteStore::open(
            &dir.path().join("history.db"),
            &dbapp_store::PoolSettings::default(),
        ));
        store.migrate().await.unwrap();
        let metrics = Metrics::new(10, crate::config::UserLabels::Hash);
        let history = History::spawn(Arc::clone(&store), metrics, 1024, 10);
        let user = UserId::from_authenticated_identity(
            &serde_json::from_value(json!({"userName": "alice@example.com"})).unwrap(),
        );
        let later = Instant::now() + Duration::from_secs(60);
        let (gone, cut) = (Uuid::new_v4(), Uuid::new_v4());
        let inputs = json!({"x": 1});

        // Act: both handlers end without recording (a closed connection, the deadline).
        drop(
            history
                .reserve(user.clone(), gone, "echo", &inputs, Some(later))
                .unwrap(),
        );
        drop(
            history
                .reserve(user.clone(), cut, "echo", &inputs, Some(Instant::now()))
                .unwrap(),
        );
        let flushed = history.flushed(later).await;

        // Assert
        assert!(flushed);
        let page = store
            .list_inference_logs(&user, PageRequest::default())
            .await
            .unwrap();
        let status = |id| {
            page.items
                .iter()
                .find(|l| l.request_id == id)
                .unwrap()
                .status
        };
        assert_eq!(page.total_count, 2);
        assert_eq!(status(gone), InferenceStatus::Error);
        assert_eq!(status(cut), InferenceStatus::Timeout);
    }

    #[test]
    fn nul_characters_become_replacement_characters_in_strings_and_keys() {
        // Arrange
        let value = json!({"a\u{0}": ["x\u{0}y", 1, null, {"k": "\u{0}"}]});

        // Act
        let clean = value_without_nul(value);

        // Assert
        assert_eq!(
            clean,
            json!({"a\u{FFFD}": ["x\u{FFFD}y", 1, null, {"k": "\u{FFFD}"}]})
        );
    }

    #[test]
    fn inputs_up_to_the_cap_are_kept_and_longer_ones_cut_at_a_character_boundary() {
        // Arrange: `{"t":"ééé"}` is 14 bytes of compact JSON; `é` is 2.
        let inputs = json!({"t": "ééé"});

        // Act
        let kept = stored_inputs(&inputs, 14);
        let cut = stored_inputs(&inputs, 12);
        let inside_a_character = stored_inputs(&inputs, 11);

        // Assert
        assert_eq!(kept, (inputs.clone(), false));
        assert_eq!(cut, (json!("{\"t\":\"ééé"), true));
        assert_eq!(inside_a_character, (json!("{\"t\":\"éé"), true));
    }
}
