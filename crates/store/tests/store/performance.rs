//! Request performance records: batches and their rollups written together, per-route
//! percentiles (within the documented error of the exact `percentile_cont`) and exact error
//! rates, minute resolution, the summary, the dense time series, aggregates that read the
//! rollups and never the raw rows, and agreement of both backends to the last bit.

use chrono::{DateTime, Duration, Utc};
use dbapp_store::{
    Bucket, LATENCY_BUCKETS, MAX_REQUEST_RECORD_BATCH, NewRequestRecord, NewUsageEvent,
    PERCENTILE_MAX_RELATIVE_ERROR, PerformanceReport, StoreError, TimeRange, TimeWindow,
};

use crate::helpers::{Backend, RawPool, TestDb, at, conformance, user};

fn record(
    route: &str,
    method: &str,
    status: u16,
    duration_ms: f64,
    recorded_at: DateTime<Utc>,
) -> NewRequestRecord {
    NewRequestRecord {
        route: route.into(),
        method: method.into(),
        status,
        duration_ms,
        recorded_at,
    }
}

/// Postgres' `percentile_cont`, written out independently of the crate's copy.
fn expected_percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let position = p * (sorted.len() - 1) as f64;
    let (lo, hi) = (position.floor() as usize, position.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (position - lo as f64)
}

/// Within the documented error of the exact figure.
fn close(actual: Option<f64>, expected: f64) -> bool {
    actual.is_some_and(|a| (a - expected).abs() <= expected * PERCENTILE_MAX_RELATIVE_ERROR)
}

/// Rows of a table, read directly.
async fn count_rows(raw: &RawPool, table: &str) -> i64 {
    let sql = sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}"));
    match raw {
        RawPool::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        RawPool::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
    }
}

const PREFS: &str = "/api/preferences/{key}";

fn sample(now: DateTime<Utc>) -> Vec<NewRequestRecord> {
    let mut records = Vec::new();
    for i in 1..=100 {
        let status = if i % 10 == 0 { 500 } else { 200 };
        records.push(record(
            PREFS,
            "GET",
            status,
            f64::from(i),
            now - Duration::minutes(i.into()),
        ));
    }
    for (d, status) in [(2.5, 200), (3.5, 404), (10.0, 201)] {
        records.push(record(PREFS, "PUT", status, d, now - Duration::hours(2)));
    }
    records.push(record(
        "/api/health",
        "GET",
        200,
        5.0,
        now - Duration::hours(3),
    ));
    records.push(record(
        "/api/health",
        "GET",
        503,
        7.0,
        now - Duration::hours(3),
    ));
    // Outside the 24 h window.
    records.push(record(
        "/api/health",
        "GET",
        500,
        1000.0,
        now - Duration::hours(25),
    ));
    records
}

async fn report_gives_percentiles_and_error_rates_per_route(db: &TestDb) {
    // Arrange
    let now = at("2026-11-10T12:00:00Z");
    db.store.insert_request_records(&sample(now)).await.unwrap();
    let window = TimeRange::Last24Hours.ending_at(now);

    // Act
    let report = db
        .store
        .admin_performance_report(window, None)
        .await
        .unwrap();

    // Assert
    let names: Vec<(&str, &str)> = report
        .routes
        .iter()
        .map(|r| (r.route.as_str(), r.method.as_str()))
        .collect();
    assert_eq!(
        names,
        [(PREFS, "GET"), (PREFS, "PUT"), ("/api/health", "GET")]
    );
    let get = &report.routes[0].stats;
    assert_eq!((get.requests, get.errors), (100, 10));
    assert!((get.error_rate - 0.1).abs() < 1e-12);
    assert!(
        close(get.p50_ms, 50.5) && close(get.p95_ms, 95.05) && close(get.p99_ms, 99.01),
        "{get:?}"
    );
    let put = &report.routes[1].stats;
    assert_eq!(
        (put.requests, put.errors, put.error_rate),
        (3, 0, 0.0),
        "404 is not an error"
    );
    assert!(
        close(put.p50_ms, 3.5) && close(put.p95_ms, 9.35) && close(put.p99_ms, 9.87),
        "{put:?}"
    );
    let health = &report.routes[2].stats;
    assert_eq!(
        (health.requests, health.errors, health.error_rate),
        (2, 1, 0.5)
    );
    let all: Vec<f64> = sample(now)
        .iter()
        .filter(|r| r.recorded_at >= now - Duration::hours(24))
        .map(|r| r.duration_ms)
        .collect();
    let summary = &report.summary;
    assert_eq!((summary.requests, summary.errors), (105, 11));
    assert!(close(summary.p50_ms, expected_percentile(&all, 0.5)));
    assert!(close(summary.p95_ms, expected_percentile(&all, 0.95)));
    assert!(close(summary.p99_ms, expected_percentile(&all, 0.99)));
}
conformance!(report_gives_percentiles_and_error_rates_per_route);

async fn a_route_filter_restricts_summary_and_routes(db: &TestDb) {
    // Arrange
    let now = at("2026-11-10T12:00:00Z");
    db.store.insert_request_records(&sample(now)).await.unwrap();
    let window = TimeRange::Last24Hours.ending_at(now);

    // Act
    let report = db
        .store
        .admin_performance_report(window, Some("/api/health"))
        .await
        .unwrap();
    let unknown = db
        .store
        .admin_performance_report(window, Some("/nope"))
        .await
        .unwrap();

    // Assert
    assert_eq!(report.routes.len(), 1);
    assert_eq!(report.summary.requests, 2);
    assert!(close(report.summary.p50_ms, 6.0));
    assert_eq!(unknown, PerformanceReport::default());
}
conformance!(a_route_filter_restricts_summary_and_routes);

async fn an_empty_window_has_no_requests_and_no_percentiles(db: &TestDb) {
    // Arrange
    let window = TimeRange::Last90Days.ending_at(at("2026-11-10T12:00:00Z"));

    // Act
    let report = db
        .store
        .admin_performance_report(window, None)
        .await
        .unwrap();

    // Assert
    assert_eq!(report.summary.requests, 0);
    assert_eq!(report.summary.error_rate, 0.0);
    assert_eq!(report.summary.p95_ms, None);
    assert!(report.routes.is_empty());
}
conformance!(an_empty_window_has_no_requests_and_no_percentiles);

async fn oversized_batches_and_bad_durations_are_refused(db: &TestDb) {
    // Arrange
    let now = at("2026-11-10T12:00:00Z");
    let over = vec![record("/r", "GET", 200, 1.0, now); MAX_REQUEST_RECORD_BATCH + 1];
    let negative = [record("/r", "GET", 200, -1.0, now)];
    let nan = [record("/r", "GET", 200, f64::NAN, now)];
    let year_10000 = DateTime::from_timestamp(dbapp_store::LATEST_TIMESTAMP_SECS + 1, 0).unwrap();
    let too_late = [record("/r", "GET", 200, 1.0, year_10000)];

    // Act
    let results = [
        db.store.insert_request_records(&over).await,
        db.store.insert_request_records(&negative).await,
        db.store.insert_request_records(&nan).await,
        db.store.insert_request_records(&too_late).await,
    ];

    // Assert
    for result in results {
        assert!(
            matches!(result, Err(StoreError::InvalidInput(_))),
            "{result:?}"
        );
    }
    let window = TimeRange::Last24Hours.ending_at(now + Duration::seconds(1));
    assert_eq!(
        db.store
            .admin_performance_report(window, None)
            .await
            .unwrap()
            .summary
            .requests,
        0
    );
}
conformance!(oversized_batches_and_bad_durations_are_refused);

async fn time_series_has_one_point_per_bucket_with_both_kinds_merged(db: &TestDb) {
    // Arrange
    let start = at("2026-11-01T00:00:00Z");
    let end = at("2026-11-01T01:00:00Z");
    let mut records: Vec<NewRequestRecord> = [(10.0, 200), (20.0, 500), (30.0, 200), (40.0, 200)]
        .into_iter()
        .map(|(d, s)| record("/r", "GET", s, d, start + Duration::seconds(30)))
        .collect();
    records.push(record(
        "/r",
        "GET",
        200,
        7.25,
        at("2026-11-01T00:14:59.999999Z"),
    ));
    records.push(record("/r", "GET", 500, 99.0, end));
    records.push(record(
        "/r",
        "GET",
        500,
        99.0,
        start - Duration::microseconds(1),
    ));
    db.store.insert_request_records(&records).await.unwrap();
    let view = |t: DateTime<Utc>| NewUsageEvent {
        event_type: "page_view".into(),
        page_name: None,
        element_id: None,
        success: None,
        metadata: None,
        timestamp: t,
    };
    db.store
        .insert_usage_events(
            &user("alice@example.com"),
            &[
                view(start),
                view(start + Duration::minutes(4)),
                view(at("2026-11-01T00:59:00Z")),
            ],
        )
        .await
        .unwrap();
    db.store
        .insert_usage_events(
            &user("bob@example.com"),
            &[view(start + Duration::minutes(1)), view(end)],
        )
        .await
        .unwrap();

    // Act
    let points = db
        .store
        .admin_time_series(TimeWindow::new(start, end).unwrap(), Bucket::FiveMinutes)
        .await
        .unwrap();

    // Assert
    assert_eq!(points.len(), 12);
    assert_eq!(points[0].timestamp, start);
    assert_eq!(points[11].timestamp, at("2026-11-01T00:55:00Z"));
    assert_eq!((points[0].requests, points[0].error_rate), (4, 0.25));
    // percentile_cont over 10, 20, 30, 40 ms.
    assert!(close(points[0].p50_ms, 25.0), "{:?}", points[0]);
    assert!(close(points[0].p95_ms, 38.5), "{:?}", points[0]);
    assert!(close(points[0].p99_ms, 39.7), "{:?}", points[0]);
    assert_eq!((points[0].events, points[0].unique_users), (3, 2));
    assert_eq!(points[2].requests, 1);
    assert!(close(points[2].p50_ms, 7.25) && close(points[2].p99_ms, 7.25));
    assert_eq!(
        (
            points[11].events,
            points[11].unique_users,
            points[11].requests
        ),
        (1, 1, 0)
    );
    let empty = &points[5];
    assert_eq!(
        (empty.requests, empty.p95_ms, empty.error_rate, empty.events),
        (0, None, 0.0, 0)
    );
}
conformance!(time_series_has_one_point_per_bucket_with_both_kinds_merged);

async fn time_series_of_an_unaligned_window_starts_at_its_first_bucket(db: &TestDb) {
    // Arrange: a request counts when the minute it was recorded in starts inside the window,
    // so the one at 12:34:56 (minute 12:34) is outside a window starting at 12:34:56.
    let end = at("2026-11-10T12:34:56Z");
    let window = TimeRange::Last7Days.ending_at(end);
    db.store
        .insert_request_records(&[
            record("/r", "GET", 200, 1.0, window.start + Duration::seconds(4)),
            record("/r", "GET", 200, 2.0, window.start),
        ])
        .await
        .unwrap();

    // Act
    let points = db
        .store
        .admin_time_series(window, TimeRange::Last7Days.bucket())
        .await
        .unwrap();
    let days = db
        .store
        .admin_time_series(TimeRange::Last90Days.ending_at(end), Bucket::OneDay)
        .await
        .unwrap();

    // Assert: 7 × 24 hours, plus the partial hour at each end
    assert_eq!(points.len(), 169);
    assert_eq!(points[0].timestamp, at("2026-11-03T12:00:00Z"));
    assert_eq!(
        points[0].requests, 1,
        "the minute that starts before the window is not counted"
    );
    assert_eq!(days.len(), 91);
}
conformance!(time_series_of_an_unaligned_window_starts_at_its_first_bucket);

/// Many durations with awkward fractions, so that any difference in the percentile arithmetic
/// of the two backends would show in the last bits.
fn awkward_records(now: DateTime<Utc>) -> Vec<NewRequestRecord> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let routes = ["/a", "/b/{id}", "/c", "/ü"];
    (0..2_000)
        .map(|_| {
            let r = next();
            let route = routes[(r % 4) as usize];
            let status = [200, 201, 404, 500, 503][(r >> 8) as usize % 5];
            let duration = (r >> 16) as f64 / 7_919.0 % 3_000.0;
            let recorded_at = now - Duration::seconds((r >> 40) as i64 % 86_400);
            record(
                route,
                if (r >> 3) & 1 == 0 { "GET" } else { "POST" },
                status,
                duration,
                recorded_at,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_backends_compute_identical_aggregates_to_the_last_bit() {
    // Arrange
    let now = at("2026-11-10T12:00:00Z");
    let records = awkward_records(now);
    let sqlite = TestDb::new(Backend::Sqlite).await;
    let postgres = TestDb::new(Backend::Postgres).await;
    for db in [&sqlite, &postgres] {
        db.store.insert_request_records(&records).await.unwrap();
    }
    let window = TimeRange::Last24Hours.ending_at(now);

    // Act
    let reports = (
        sqlite
            .store
            .admin_performance_report(window, None)
            .await
            .unwrap(),
        postgres
            .store
            .admin_performance_report(window, None)
            .await
            .unwrap(),
    );
    let series = (
        sqlite
            .store
            .admin_time_series(window, Bucket::OneHour)
            .await
            .unwrap(),
        postgres
            .store
            .admin_time_series(window, Bucket::OneHour)
            .await
            .unwrap(),
    );

    // Assert
    assert_eq!(reports.0.routes.len(), 8);
    assert_eq!(reports.0, reports.1);
    assert_eq!(series.0, series.1);
}

async fn a_report_counts_requests_by_the_minute_they_were_recorded_in(db: &TestDb) {
    // Arrange: a window from 12:00:30 to 12:02:30 holds the minutes 12:01 and 12:02
    let records = [
        record("/r", "GET", 200, 1.0, at("2026-11-10T12:00:45Z")),
        record("/r", "GET", 200, 1.0, at("2026-11-10T12:01:00Z")),
        record("/r", "GET", 500, 1.0, at("2026-11-10T12:02:59.999999Z")),
        record("/r", "GET", 200, 1.0, at("2026-11-10T12:03:00Z")),
    ];
    db.store.insert_request_records(&records).await.unwrap();
    let window = TimeWindow::new(at("2026-11-10T12:00:30Z"), at("2026-11-10T12:02:30Z")).unwrap();

    // Act
    let report = db
        .store
        .admin_performance_report(window, None)
        .await
        .unwrap();

    // Assert
    assert_eq!((report.summary.requests, report.summary.errors), (2, 1));
}
conformance!(a_report_counts_requests_by_the_minute_they_were_recorded_in);

async fn aggregates_read_rollups_bounded_by_buckets_not_raw_rows(db: &TestDb) {
    // Arrange: 10 000 requests of one route in one minute, over a thousandfold latency range
    let minute = at("2026-11-10T12:00:00Z");
    let records: Vec<NewRequestRecord> = (0..MAX_REQUEST_RECORD_BATCH)
        .map(|i| {
            let duration = 1.0 + (i % 1000) as f64;
            let status = if i % 100 == 0 { 503 } else { 200 };
            record(
                "/r",
                "GET",
                status,
                duration,
                minute + Duration::milliseconds(i as i64),
            )
        })
        .collect();
    let durations: Vec<f64> = records.iter().map(|r| r.duration_ms).collect();
    db.store.insert_request_records(&records).await.unwrap();
    let window = TimeRange::Last24Hours.ending_at(minute + Duration::hours(1));

    // Act: the raw rows are deleted behind the store's back before reading
    let rollup_rows = count_rows(&db.raw, "performance_rollups").await;
    let sql = "DELETE FROM performance_metrics";
    match &db.raw {
        RawPool::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
        RawPool::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
    }
    .unwrap();
    let report = db
        .store
        .admin_performance_report(window, None)
        .await
        .unwrap();

    // Assert: ten doublings of 16 buckets hold them all, and the report is whole without the
    // raw rows
    assert!(rollup_rows <= 16 * 10 + 1, "{rollup_rows} rollup rows");
    assert!(rollup_rows as usize <= LATENCY_BUCKETS);
    let summary = &report.summary;
    assert_eq!((summary.requests, summary.errors), (10_000, 100));
    for p in [0.5, 0.95, 0.99] {
        let reported = match p {
            0.5 => summary.p50_ms,
            0.95 => summary.p95_ms,
            _ => summary.p99_ms,
        };
        assert!(
            close(reported, expected_percentile(&durations, p)),
            "p{p}: {summary:?}"
        );
    }
}
conformance!(aggregates_read_rollups_bounded_by_buckets_not_raw_rows);

async fn a_refused_batch_writes_neither_raw_rows_nor_rollups(db: &TestDb) {
    // Arrange: a good batch, then one whose last record is bad
    let now = at("2026-11-10T12:00:00Z");
    let good = sample(now);
    let mut bad = sample(now);
    bad.push(record("/r", "GET\0", 200, 1.0, now));

    // Act
    let written = db.store.insert_request_records(&good).await.unwrap();
    let refused = db.store.insert_request_records(&bad).await;

    // Assert: raw rows and rollups hold exactly the good batch
    assert!(
        matches!(refused, Err(StoreError::InvalidInput(_))),
        "{refused:?}"
    );
    assert_eq!(
        count_rows(&db.raw, "performance_metrics").await,
        written as i64
    );
    for table in ["performance_rollups", "performance_rollups_hourly"] {
        let sql = sqlx::AssertSqlSafe(format!("SELECT CAST(sum(requests) AS BIGINT) FROM {table}"));
        let rolled_up: i64 = match &db.raw {
            RawPool::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
            RawPool::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        };
        assert_eq!(rolled_up, written as i64, "{table}");
    }
}
conformance!(a_refused_batch_writes_neither_raw_rows_nor_rollups);

async fn batches_of_the_same_minute_add_up_in_the_rollups(db: &TestDb) {
    // Arrange
    let now = at("2026-11-10T12:00:00Z");
    let batch = [
        record("/r", "GET", 200, 3.0, now),
        record("/r", "GET", 502, 3.0, now + Duration::seconds(5)),
    ];

    // Act: the same minute and bucket, three times
    for _ in 0..3 {
        db.store.insert_request_records(&batch).await.unwrap();
    }
    let report = db
        .store
        .admin_performance_report(
            TimeRange::Last24Hours.ending_at(now + Duration::minutes(1)),
            None,
        )
        .await
        .unwrap();

    // Assert
    assert_eq!(count_rows(&db.raw, "performance_rollups").await, 1);
    assert_eq!((report.summary.requests, report.summary.errors), (6, 3));
    assert!(close(report.summary.p99_ms, 3.0));
}
conformance!(batches_of_the_same_minute_add_up_in_the_rollups);

async fn whole_hours_and_partial_ends_count_as_the_minutes_alone_would(db: &TestDb) {
    // Arrange: a window from 10:30 to 13:15 reads 11:00–13:00 from the hourly rollups and its
    // ends from the minute rollups
    let records: Vec<NewRequestRecord> = [
        "2026-11-10T10:29:59Z",
        "2026-11-10T10:30:00Z",
        "2026-11-10T11:15:00Z",
        "2026-11-10T12:59:59Z",
        "2026-11-10T13:14:59Z",
        "2026-11-10T13:15:00Z",
    ]
    .into_iter()
    .map(|t| record("/r", "GET", 200, 4.0, at(t)))
    .collect();
    db.store.insert_request_records(&records).await.unwrap();
    let window = TimeWindow::new(at("2026-11-10T10:30:00Z"), at("2026-11-10T13:15:00Z")).unwrap();

    // Act
    let report = db
        .store
        .admin_performance_report(window, Some("/r"))
        .await
        .unwrap();
    let hours = db
        .store
        .admin_time_series(window, Bucket::OneHour)
        .await
        .unwrap();
    let fives = db
        .store
        .admin_time_series(window, Bucket::FiveMinutes)
        .await
        .unwrap();

    // Assert
    assert_eq!(report.summary.requests, 4);
    let per_hour: Vec<i64> = hours.iter().map(|p| p.requests).collect();
    assert_eq!(per_hour, [1, 1, 1, 1]);
    assert_eq!(fives.iter().map(|p| p.requests).sum::<i64>(), 4);
}
conformance!(whole_hours_and_partial_ends_count_as_the_minutes_alone_would);
