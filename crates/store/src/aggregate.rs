//! Backend-independent pieces of the stores: input checks, the latency histogram of the
//! request rollups (bucketing, pre-aggregation of a batch, percentiles), and the merging of
//! per-bucket figures into a dense time series.
//!
//! The histogram: bucket `i` holds durations in `[2^(i/16), 2^((i+1)/16))` ms for `i` from
//! [`FIRST_BUCKET`] (2^-10 ms) to [`LAST_BUCKET`] (just below 2^24 ms); [`ZERO_BUCKET`] holds
//! `[0, 2^-10)`, and longer durations count in the last bucket. A percentile is Postgres'
//! `percentile_cont` (linear interpolation between the ranks `floor(p·(n−1))` and
//! `ceil(p·(n−1))`), where the duration of a rank is estimated inside its bucket by spreading
//! the bucket's `c` requests evenly: the `k`-th (from 0) sits at `lower + (upper − lower) ·
//! (k + ½) / c`. Each estimate is then less than one bucket width, `lower · (2^(1/16) − 1)`,
//! from the true duration of that rank, and so is their interpolation from the exact
//! percentile: the relative error is below [`crate::PERCENTILE_MAX_RELATIVE_ERROR`]. Both
//! backends only sum integer counts in SQL and call the same code here, so they agree exactly.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::{
    Bucket, ERROR_STATUS_MIN, InferenceLog, LATENCY_BUCKETS_PER_DOUBLING, LATENCY_MAX_MS,
    LATENCY_MIN_MS, MAX_CONVERSATION_MESSAGES, MAX_MESSAGE_BYTES, MAX_PREFERENCE_KEY_BYTES,
    MAX_TITLE_CHARS, NewConversation, NewMessage, NewRequestRecord, NewUsageEvent,
    PerformanceReport, PerformanceStats, RoutePerformance, StoreError, TimeSeriesPoint, TimeWindow,
};

/// The most points [`dense_series`] makes; a 90-day window in 5-minute buckets is 25 920.
const MAX_POINTS: i64 = 100_000;

/// Buckets per doubling, as the `f64` the bounds are computed with.
const PER_DOUBLING: f64 = LATENCY_BUCKETS_PER_DOUBLING as f64;
/// The bucket starting at [`LATENCY_MIN_MS`] = 2^-10 ms.
pub(crate) const FIRST_BUCKET: i16 = -10 * LATENCY_BUCKETS_PER_DOUBLING as i16;
/// The bucket ending at [`LATENCY_MAX_MS`] = 2^24 ms.
pub(crate) const LAST_BUCKET: i16 = 24 * LATENCY_BUCKETS_PER_DOUBLING as i16 - 1;
/// The bucket of durations below [`LATENCY_MIN_MS`], zero included.
pub(crate) const ZERO_BUCKET: i16 = FIRST_BUCKET - 1;
/// One minute, the rollups' resolution.
pub(crate) const MINUTE_US: i64 = 60_000_000;
/// One hour, the coarser rollups' period.
pub(crate) const HOUR_US: i64 = 3_600_000_000;

/// The lower bound of `bucket`, in ms.
fn lower_bound(bucket: i16) -> f64 {
    if bucket <= ZERO_BUCKET {
        0.0
    } else {
        (f64::from(bucket) / PER_DOUBLING).exp2()
    }
}

/// The histogram bucket of a duration (finite and non-negative, as checked on input).
pub(crate) fn latency_bucket(duration_ms: f64) -> i16 {
    if duration_ms.is_nan() || duration_ms < LATENCY_MIN_MS {
        return ZERO_BUCKET;
    }
    if duration_ms >= LATENCY_MAX_MS {
        return LAST_BUCKET;
    }
    // Within FIRST_BUCKET..=LAST_BUCKET up to rounding of `log2`; the bounds decide the edges,
    // so a duration always lies inside the bounds its bucket is interpolated with.
    let guess =
        ((duration_ms.log2() * PER_DOUBLING).floor() as i16).clamp(FIRST_BUCKET, LAST_BUCKET);
    if lower_bound(guess) > duration_ms {
        guess - 1
    } else if guess < LAST_BUCKET && lower_bound(guess + 1) <= duration_ms {
        guess + 1
    } else {
        guess
    }
}

/// The start of the period of `period_us` holding `at`.
fn floor_to(at: DateTime<Utc>, period_us: i64) -> DateTime<Utc> {
    let us = at.timestamp_micros().div_euclid(period_us) * period_us;
    DateTime::from_timestamp_micros(us).unwrap_or(at)
}

/// The end of the period of `period_us` holding the instant just before `at` (`at` itself when
/// it starts a period).
fn ceil_to(at: DateTime<Utc>, period_us: i64) -> DateTime<Utc> {
    let floor = floor_to(at, period_us);
    if floor == at {
        at
    } else {
        DateTime::from_timestamp_micros(floor.timestamp_micros() + period_us).unwrap_or(at)
    }
}

/// How a window's minutes are read: `[start, hours.start)` and `[hours.end, end)` from the
/// minute rollups, the whole hours `hours` from the hourly ones. The union is the window's
/// minutes exactly, so the result is the one the minute rows alone would give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RollupSplit {
    pub(crate) start: DateTime<Utc>,
    pub(crate) hours_start: DateTime<Utc>,
    pub(crate) hours_end: DateTime<Utc>,
    pub(crate) end: DateTime<Utc>,
}

/// The split of `window`; `use_hours` false reads it all from the minute rows (the 5-minute
/// time series, whose buckets an hour row would straddle).
pub(crate) fn split(window: TimeWindow, use_hours: bool) -> RollupSplit {
    let (start, end) = (window.start, window.end);
    let hours_start = if use_hours {
        ceil_to(start, HOUR_US).min(end)
    } else {
        end
    };
    let hours_end = floor_to(end, HOUR_US).max(hours_start);
    RollupSplit {
        start,
        hours_start,
        hours_end,
        end,
    }
}

/// One row of `performance_rollups` (or `_hourly`), as a batch adds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rollup<'a> {
    /// The start of its minute (or hour).
    pub(crate) period: DateTime<Utc>,
    pub(crate) route: &'a str,
    pub(crate) method: &'a str,
    pub(crate) bucket: i16,
    pub(crate) requests: i64,
    pub(crate) errors: i64,
}

/// The rollup rows of a batch: one per period of `period_us` (a minute or an hour), route,
/// method and bucket, in key order (so concurrent writers lock rows in the same order and
/// cannot deadlock each other).
pub(crate) fn rollups(records: &[NewRequestRecord], period_us: i64) -> Vec<Rollup<'_>> {
    type Key<'a> = (DateTime<Utc>, &'a str, &'a str, i16);
    let mut sums: BTreeMap<Key<'_>, (i64, i64)> = BTreeMap::new();
    for record in records {
        let key = (
            floor_to(record.recorded_at, period_us),
            record.route.as_str(),
            record.method.as_str(),
            latency_bucket(record.duration_ms),
        );
        let sum = sums.entry(key).or_default();
        sum.0 += 1;
        sum.1 += i64::from(is_error(i64::from(record.status)));
    }
    sums.into_iter()
        .map(
            |((period, route, method, bucket), (requests, errors))| Rollup {
                period,
                route,
                method,
                bucket,
                requests,
                errors,
            },
        )
        .collect()
}

/// Requests and errors per latency bucket of a set of requests.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Histogram {
    /// Bucket → (requests, errors); only buckets with requests.
    counts: BTreeMap<i16, (i64, i64)>,
}

impl Histogram {
    pub(crate) fn add(&mut self, bucket: i16, requests: i64, errors: i64) {
        let counts = self.counts.entry(bucket).or_default();
        counts.0 += requests;
        counts.1 += errors;
    }

    fn totals(&self) -> (i64, i64) {
        self.counts
            .values()
            .fold((0, 0), |(r, e), &(requests, errors)| {
                (r + requests, e + errors)
            })
    }

    /// The estimated duration of the request of rank `rank` (from 0, fastest first).
    fn at_rank(&self, rank: i64) -> f64 {
        let mut below = 0;
        for (&bucket, &(count, _)) in &self.counts {
            if rank < below + count {
                let (lower, upper) = (lower_bound(bucket), lower_bound(bucket + 1));
                let fraction = ((rank - below) as f64 + 0.5) / count as f64;
                return lower + (upper - lower) * fraction;
            }
            below += count;
        }
        // Past the last request: only reachable with a rank out of range.
        self.counts
            .keys()
            .next_back()
            .map_or(0.0, |&bucket| lower_bound(bucket + 1))
    }

    /// The continuous percentile `p` (0..=1), as `percentile_cont` over the estimated ranks.
    fn percentile(&self, requests: i64, p: f64) -> Option<f64> {
        let last = requests.checked_sub(1).filter(|last| *last >= 0)?;
        let position = p * last as f64;
        let (first_rank, second_rank) = (position.floor(), position.ceil());
        let first = self.at_rank(first_rank as i64);
        if first_rank == second_rank {
            return Some(first);
        }
        let second = self.at_rank(second_rank as i64);
        Some(first + (second - first) * (position - first_rank))
    }

    pub(crate) fn stats(&self) -> PerformanceStats {
        let (requests, errors) = self.totals();
        PerformanceStats {
            requests,
            errors,
            error_rate: error_rate(errors, requests),
            p50_ms: self.percentile(requests, 0.5),
            p95_ms: self.percentile(requests, 0.95),
            p99_ms: self.percentile(requests, 0.99),
        }
    }
}

/// One row of the report query: a (route, method, bucket) with its summed counts.
pub(crate) type RouteBucketRow = (String, String, i16, i64, i64);

/// The report from the per-(route, method, bucket) sums of the window, in any order.
pub(crate) fn report(rows: Vec<RouteBucketRow>) -> PerformanceReport {
    let mut all = Histogram::default();
    let mut groups: BTreeMap<(String, String), Histogram> = BTreeMap::new();
    for (route, method, bucket, requests, errors) in rows {
        all.add(bucket, requests, errors);
        groups
            .entry((route, method))
            .or_default()
            .add(bucket, requests, errors);
    }
    let mut routes: Vec<RoutePerformance> = groups
        .into_iter()
        .map(|((route, method), histogram)| RoutePerformance {
            route,
            method,
            stats: histogram.stats(),
        })
        .collect();
    // Stable: equal counts keep the (route, method) byte order of the map.
    routes.sort_by_key(|r| std::cmp::Reverse(r.stats.requests));
    PerformanceReport {
        summary: all.stats(),
        routes,
    }
}

/// One row of the time series query: a (time bucket index, latency bucket) with its counts.
pub(crate) type TimeBucketRow = (i64, i16, i64, i64);

/// Request figures per time bucket index from the per-(time bucket, latency bucket) sums.
pub(crate) fn request_buckets(rows: Vec<TimeBucketRow>) -> BTreeMap<i64, RequestBucket> {
    let mut histograms: BTreeMap<i64, Histogram> = BTreeMap::new();
    for (index, bucket, requests, errors) in rows {
        histograms
            .entry(index)
            .or_default()
            .add(bucket, requests, errors);
    }
    histograms
        .into_iter()
        .map(|(index, histogram)| {
            let stats = histogram.stats();
            let figures = RequestBucket {
                requests: stats.requests,
                errors: stats.errors,
                p50_ms: stats.p50_ms,
                p95_ms: stats.p95_ms,
                p99_ms: stats.p99_ms,
            };
            (index, figures)
        })
        .collect()
}

/// Usage figures per time bucket index from `(index, events, unique users)` rows.
pub(crate) fn usage_buckets(rows: Vec<(i64, i64, i64)>) -> BTreeMap<i64, UsageBucket> {
    rows.into_iter()
        .map(|(index, events, unique_users)| {
            let figures = UsageBucket {
                events,
                unique_users,
            };
            (index, figures)
        })
        .collect()
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
        check_timestamp("recorded_at", record.recorded_at)?;
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
    fn every_duration_lies_inside_the_bounds_of_its_bucket() {
        // Arrange: edges, values just around them, and a spread of awkward fractions
        let mut durations = vec![0.0, LATENCY_MIN_MS, 1.0, 2.0, 1e9, LATENCY_MAX_MS];
        for bucket in FIRST_BUCKET..=LAST_BUCKET {
            let edge = lower_bound(bucket);
            durations.extend([edge, edge.next_up(), edge.next_down()]);
        }
        durations.extend((1..10_000).map(|i| f64::from(i) * 0.371));

        for duration in durations {
            // Act
            let bucket = latency_bucket(duration);

            // Assert
            assert!((ZERO_BUCKET..=LAST_BUCKET).contains(&bucket), "{duration}");
            let upper = lower_bound(bucket + 1);
            let inside = lower_bound(bucket) <= duration && duration < upper;
            let clamped = bucket == LAST_BUCKET && duration >= LATENCY_MAX_MS;
            assert!(inside || clamped, "{duration} in {bucket}");
        }
        assert_eq!(
            (LAST_BUCKET - ZERO_BUCKET + 1) as usize,
            crate::LATENCY_BUCKETS
        );
    }

    #[test]
    fn the_documented_error_bound_covers_one_bucket_width() {
        // Arrange
        let width = (1.0 / PER_DOUBLING).exp2() - 1.0;

        // Act / Assert
        assert!(crate::PERCENTILE_MAX_RELATIVE_ERROR >= width);
        assert!(crate::PERCENTILE_MAX_RELATIVE_ERROR - width < 1e-6);
    }

    #[test]
    fn percentiles_interpolate_ranks_spread_evenly_inside_their_bucket() {
        // Arrange: 4 requests in the bucket [1, 2^(1/16)) ms
        let mut histogram = Histogram::default();
        histogram.add(0, 4, 1);
        let upper = (1.0 / PER_DOUBLING).exp2();

        // Act
        let stats = histogram.stats();

        // Assert: ranks sit at 1/8, 3/8, 5/8, 7/8 of the bucket; p50 is halfway between the
        // second and third
        let at = |fraction: f64| 1.0 + (upper - 1.0) * fraction;
        assert_eq!(
            (stats.requests, stats.errors, stats.error_rate),
            (4, 1, 0.25)
        );
        assert!((stats.p50_ms.unwrap() - at(0.5)).abs() < 1e-12);
        // p99: position 2.97, between the third (5/8) and the fourth (7/8)
        assert!((stats.p99_ms.unwrap() - at(0.625 + 0.97 * 0.25)).abs() < 1e-12);
        assert_eq!(Histogram::default().stats(), PerformanceStats::default());
    }

    #[test]
    fn a_batch_rolls_up_per_minute_route_method_and_bucket() {
        // Arrange
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let record = |status, duration_ms, recorded_at: &str| NewRequestRecord {
            route: "/r".into(),
            method: "GET".into(),
            status,
            duration_ms,
            recorded_at: at(recorded_at),
        };
        let records = [
            record(200, 10.0, "2026-01-01T00:00:59.999999Z"),
            record(500, 10.1, "2026-01-01T00:00:00Z"),
            record(200, 10.0, "2026-01-01T00:01:00Z"),
            record(200, 20.0, "2026-01-01T00:01:30Z"),
        ];

        // Act
        let rows = rollups(&records, MINUTE_US);
        let hours = rollups(&records, HOUR_US);

        // Assert
        let summary: Vec<(String, i64, i64)> = rows
            .iter()
            .map(|r| (r.period.to_rfc3339(), r.requests, r.errors))
            .collect();
        let hourly: Vec<(String, i64, i64)> = hours
            .iter()
            .map(|r| (r.period.to_rfc3339(), r.requests, r.errors))
            .collect();
        assert_eq!(
            hourly,
            [
                ("2026-01-01T00:00:00+00:00".to_owned(), 3, 1),
                ("2026-01-01T00:00:00+00:00".to_owned(), 1, 0),
            ]
        );
        assert_eq!(
            summary,
            [
                ("2026-01-01T00:00:00+00:00".to_owned(), 2, 1),
                ("2026-01-01T00:01:00+00:00".to_owned(), 1, 0),
                ("2026-01-01T00:01:00+00:00".to_owned(), 1, 0),
            ]
        );
        assert!(rows[1].bucket < rows[2].bucket);
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
    fn a_split_covers_the_window_with_whole_hours_between_its_partial_ends() {
        // Arrange
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let window = |start, end| TimeWindow {
            start: at(start),
            end: at(end),
        };
        let text = |s: RollupSplit| {
            [s.start, s.hours_start, s.hours_end, s.end].map(|t| t.format("%H:%M").to_string())
        };

        // Act
        let wide = split(window("2026-01-01T10:30:00Z", "2026-01-01T13:15:00Z"), true);
        let aligned = split(window("2026-01-01T10:00:00Z", "2026-01-01T12:00:00Z"), true);
        let inside = split(window("2026-01-01T10:10:00Z", "2026-01-01T10:50:00Z"), true);
        let minutes = split(
            window("2026-01-01T10:30:00Z", "2026-01-01T13:15:00Z"),
            false,
        );

        // Assert
        assert_eq!(text(wide), ["10:30", "11:00", "13:00", "13:15"]);
        assert_eq!(text(aligned), ["10:00", "10:00", "12:00", "12:00"]);
        assert_eq!(text(inside), ["10:10", "10:50", "10:50", "10:50"]);
        assert_eq!(text(minutes), ["10:30", "13:15", "13:15", "13:15"]);
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
