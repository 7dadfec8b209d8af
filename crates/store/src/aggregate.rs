//! Backend-independent pieces of the stores: input checks, the percentile formula SQLite needs
//! in Rust, and the merging of per-bucket figures into a dense time series.
//!
//! Percentiles: Postgres computes them in SQL with `percentile_cont`; SQLite has no ordered-set
//! aggregates, so its store selects the sorted durations and calls [`percentile_cont`], which
//! follows Postgres' own formula (`first + (second - first) * fraction` between the ranks
//! `floor(p * (n - 1))` and `ceil(p * (n - 1))`) so that both backends give the same numbers.
//! Loading the durations is fine for SQLite's role (local work and tests), not for a large
//! shared database, which is why Postgres does it in SQL.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::{
    Bucket, ERROR_STATUS_MIN, InferenceLog, MAX_CONVERSATION_MESSAGES, MAX_MESSAGE_BYTES,
    MAX_PREFERENCE_KEY_BYTES, MAX_TITLE_CHARS, NewConversation, NewMessage, NewRequestRecord,
    NewUsageEvent, PerformanceStats, StoreError, TimeSeriesPoint, TimeWindow,
};

/// The most points [`dense_series`] makes; a 90-day window in 5-minute buckets is 25 920.
const MAX_POINTS: i64 = 100_000;

/// The continuous percentile `p` (0..=1) of `sorted`, as Postgres' `percentile_cont`.
pub(crate) fn percentile_cont(sorted: &[f64], p: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let position = p * last as f64;
    let first_row = position.floor();
    let second_row = position.ceil();
    // Both are within 0..=last because 0 <= p <= 1.
    let first = sorted[first_row as usize];
    if first_row == second_row {
        return Some(first);
    }
    let second = sorted[second_row as usize];
    Some(first + (second - first) * (position - first_row))
}

/// Counts, error rate and percentiles of a set of requests whose durations are `sorted`.
pub(crate) fn stats(sorted: &[f64], errors: i64) -> PerformanceStats {
    let requests = sorted.len() as i64;
    PerformanceStats {
        requests,
        errors,
        error_rate: error_rate(errors, requests),
        p50_ms: percentile_cont(sorted, 0.5),
        p95_ms: percentile_cont(sorted, 0.95),
        p99_ms: percentile_cont(sorted, 0.99),
    }
}

pub(crate) fn error_rate(errors: i64, requests: i64) -> f64 {
    if requests == 0 {
        0.0
    } else {
        errors as f64 / requests as f64
    }
}

pub(crate) fn is_error(status: i64) -> bool {
    status >= i64::from(ERROR_STATUS_MIN)
}

/// Request figures of one bucket, keyed by the bucket's index (start / width since the epoch).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct RequestBucket {
    pub(crate) requests: i64,
    pub(crate) errors: i64,
    pub(crate) p50_ms: Option<f64>,
    pub(crate) p95_ms: Option<f64>,
    pub(crate) p99_ms: Option<f64>,
}

/// Usage figures of one bucket.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UsageBucket {
    pub(crate) events: i64,
    pub(crate) unique_users: i64,
}

/// The index range of the buckets that overlap `window` (empty when the window is).
pub(crate) fn bucket_range(
    window: TimeWindow,
    bucket: Bucket,
) -> Result<std::ops::Range<i64>, StoreError> {
    if window.end <= window.start {
        return Ok(0..0);
    }
    let width = bucket.seconds() * 1_000_000;
    let first = window.start.timestamp_micros().div_euclid(width);
    // The last instant inside the window is one microsecond before its end.
    let last = (window.end.timestamp_micros() - 1).div_euclid(width);
    if last - first + 1 > MAX_POINTS {
        return Err(StoreError::InvalidInput(format!(
            "the window needs more than {MAX_POINTS} buckets of {}",
            bucket.as_str()
        )));
    }
    Ok(first..last + 1)
}

/// One point per bucket of `range`, figures from the maps, zeros where they have none.
pub(crate) fn dense_series(
    range: std::ops::Range<i64>,
    bucket: Bucket,
    requests: &BTreeMap<i64, RequestBucket>,
    usage: &BTreeMap<i64, UsageBucket>,
) -> Vec<TimeSeriesPoint> {
    range
        .map(|index| {
            let r = requests.get(&index).cloned().unwrap_or_default();
            let u = usage.get(&index).copied().unwrap_or_default();
            TimeSeriesPoint {
                timestamp: DateTime::<Utc>::from_timestamp(index * bucket.seconds(), 0)
                    .unwrap_or_default(),
                requests: r.requests,
                p50_ms: r.p50_ms,
                p95_ms: r.p95_ms,
                p99_ms: r.p99_ms,
                error_rate: error_rate(r.errors, r.requests),
                events: u.events,
                unique_users: u.unique_users,
            }
        })
        .collect()
}

/// Refuses a NUL character, which Postgres cannot store in text, so both backends agree.
pub(crate) fn check_text(field: &str, text: &str) -> Result<(), StoreError> {
    if text.contains('\0') {
        return Err(StoreError::InvalidInput(format!(
            "{field} cannot contain NUL characters"
        )));
    }
    Ok(())
}

/// As [`check_text`], for every string and object key inside a JSON value.
pub(crate) fn check_json(field: &str, value: &Value) -> Result<(), StoreError> {
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::String(s) => check_text(field, s)?,
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => {
                for (key, item) in map {
                    check_text(field, key)?;
                    stack.push(item);
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
    Ok(())
}

/// Refuses an instant outside the years 1 to 9999, which one backend could not store and the
/// other could not read back in order.
pub(crate) fn check_timestamp(field: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
    let secs = at.timestamp();
    if !(crate::EARLIEST_TIMESTAMP_SECS..=crate::LATEST_TIMESTAMP_SECS).contains(&secs) {
        return Err(StoreError::InvalidInput(format!(
            "{field} must be between the years 1 and 9999"
        )));
    }
    Ok(())
}

pub(crate) fn check_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() {
        return Err(StoreError::InvalidInput(
            "a preference key cannot be empty".into(),
        ));
    }
    if key.len() > MAX_PREFERENCE_KEY_BYTES {
        return Err(StoreError::InvalidInput(format!(
            "a preference key is at most {MAX_PREFERENCE_KEY_BYTES} bytes"
        )));
    }
    check_text("key", key)
}

pub(crate) fn check_inference_log(log: &InferenceLog) -> Result<(), StoreError> {
    check_text("endpoint_name", &log.endpoint_name)?;
    check_json("inputs", &log.inputs)?;
    if let Some(predictions) = &log.predictions {
        check_json("predictions", predictions)?;
    }
    if let Some(message) = &log.error_message {
        check_text("error_message", message)?;
    }
    if log.execution_time_ms < 0 {
        return Err(StoreError::InvalidInput(
            "execution_time_ms cannot be negative".into(),
        ));
    }
    Ok(())
}

/// Refuses a title that is empty, all whitespace, over [`MAX_TITLE_CHARS`] characters, or holds a
/// NUL.
pub(crate) fn check_title(title: &str) -> Result<(), StoreError> {
    if title.trim().is_empty() || title.chars().count() > MAX_TITLE_CHARS {
        return Err(StoreError::InvalidInput(format!(
            "a title has 1 to {MAX_TITLE_CHARS} characters, not all whitespace"
        )));
    }
    check_text("title", title)
}

pub(crate) fn check_new_conversation(conversation: &NewConversation) -> Result<(), StoreError> {
    check_title(&conversation.title)?;
    check_text("endpoint_name", &conversation.endpoint_name)
}

/// Refuses any message the store does not keep (see [`crate::Store::append_messages`]).
pub(crate) fn check_messages(messages: &[NewMessage]) -> Result<(), StoreError> {
    check_room(0, messages.len())?;
    messages.iter().try_for_each(check_message)
}

/// Refuses `adding` messages to a conversation that holds `held`, when they would not fit under
/// [`MAX_CONVERSATION_MESSAGES`].
pub(crate) fn check_room(held: i64, adding: usize) -> Result<(), StoreError> {
    let room = i64::try_from(MAX_CONVERSATION_MESSAGES).unwrap_or(i64::MAX) - held;
    if i64::try_from(adding).map_or(true, |adding| adding > room) {
        return Err(StoreError::InvalidInput(format!(
            "a conversation holds at most {MAX_CONVERSATION_MESSAGES} messages; it has {held}, \
             and {adding} more do not fit"
        )));
    }
    Ok(())
}

fn check_message(message: &NewMessage) -> Result<(), StoreError> {
    if message.role.is_empty() {
        return Err(StoreError::InvalidInput("a message needs a role".into()));
    }
    check_text("role", &message.role)?;
    if !matches!(
        message.content,
        Value::String(_) | Value::Array(_) | Value::Null
    ) {
        return Err(StoreError::InvalidInput(
            "content must be a string, a list of parts, or null".into(),
        ));
    }
    check_json("content", &message.content)?;
    let mut bytes = message.content.to_string().len();
    if let Some(calls) = &message.tool_calls {
        if !calls.is_array() {
            return Err(StoreError::InvalidInput("tool_calls must be a list".into()));
        }
        check_json("tool_calls", calls)?;
        bytes += calls.to_string().len();
    }
    if bytes > MAX_MESSAGE_BYTES {
        return Err(StoreError::InvalidInput(format!(
            "a message's content and tool calls are at most {MAX_MESSAGE_BYTES} bytes of JSON"
        )));
    }
    let texts = [
        &message.tool_call_id,
        &message.endpoint_name,
        &message.finish_reason,
        &message.error_code,
        &message.error_message,
    ];
    for text in texts.into_iter().flatten() {
        check_text("message", text)?;
    }
    let figures = [
        message.prompt_tokens,
        message.completion_tokens,
        message.latency_ms,
        message.first_token_ms,
    ];
    if figures.into_iter().flatten().any(|n| n < 0) {
        return Err(StoreError::InvalidInput(
            "token counts and durations cannot be negative".into(),
        ));
    }
    Ok(())
}

pub(crate) fn check_usage_events(events: &[NewUsageEvent]) -> Result<(), StoreError> {
    if events.len() > crate::MAX_USAGE_BATCH {
        return Err(StoreError::InvalidInput(format!(
            "at most {} usage events per batch, got {}",
            crate::MAX_USAGE_BATCH,
            events.len()
        )));
    }
    for event in events {
        check_timestamp("timestamp", event.timestamp)?;
        check_text("event_type", &event.event_type)?;
        for text in [&event.page_name, &event.element_id].into_iter().flatten() {
            check_text("usage event", text)?;
        }
        if let Some(metadata) = &event.metadata {
            check_json("metadata", metadata)?;
        }
    }
    Ok(())
}

pub(crate) fn check_request_records(records: &[NewRequestRecord]) -> Result<(), StoreError> {
    if records.len() > crate::MAX_REQUEST_RECORD_BATCH {
        return Err(StoreError::InvalidInput(format!(
            "at most {} request records per batch, got {}",
            crate::MAX_REQUEST_RECORD_BATCH,
            records.len()
        )));
    }
    for record in records {
        check_text("route", &record.route)?;
        check_text("method", &record.method)?;
        if !record.duration_ms.is_finite() || record.duration_ms < 0.0 {
            return Err(StoreError::InvalidInput(
                "duration_ms must be a finite, non-negative number".into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_cont_interpolates_like_postgres() {
        // Arrange
        let sorted = [10.0, 20.0, 30.0, 40.0];

        // Act
        let p50 = percentile_cont(&sorted, 0.5);
        let p95 = percentile_cont(&sorted, 0.95);

        // Assert: positions 1.5 and 2.85
        assert_eq!(p50, Some(25.0));
        assert!((p95.unwrap() - 38.5).abs() < 1e-9);
        assert_eq!(percentile_cont(&[7.0], 0.99), Some(7.0));
        assert_eq!(percentile_cont(&[], 0.5), None);
    }

    #[test]
    fn bucket_ranges_cover_every_bucket_the_window_overlaps() {
        // Arrange
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let window = TimeWindow {
            start: at("2026-01-01T00:03:00Z"),
            end: at("2026-01-01T00:10:00Z"),
        };

        // Act
        let range = bucket_range(window, Bucket::FiveMinutes).unwrap();

        // Assert: 00:00 and 00:05; the bucket starting at 00:10 is outside
        assert_eq!(range.end - range.start, 2);
    }

    #[test]
    fn nul_characters_are_found_deep_inside_json() {
        // Arrange
        let value = serde_json::json!({"a": [1, {"b\u{0}": 2}]});

        // Act
        let checked = check_json("value", &value);

        // Assert
        assert!(checked.is_err());
        assert!(check_json("value", &serde_json::json!({"ü": "✓"})).is_ok());
    }
}
