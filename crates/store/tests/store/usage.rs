//! Usage events: batches, per-user counts over half-open windows, admin aggregates.

use chrono::Duration;
use dbapp_store::{
    MAX_USAGE_BATCH, NewUsageEvent, PageViews, StoreError, TOP_PAGES, TimeRange, TimeWindow,
};
use serde_json::json;

use crate::helpers::{TestDb, at, conformance, user};

fn event(kind: &str, page: Option<&str>, timestamp: &str) -> NewUsageEvent {
    NewUsageEvent {
        event_type: kind.into(),
        page_name: page.map(str::to_owned),
        element_id: None,
        success: Some(true),
        metadata: Some(json!({"source": "test", "ü": [1, 2]})),
        timestamp: at(timestamp),
    }
}

async fn a_batch_of_1000_is_accepted_and_1001_refused_whole(db: &TestDb) {
    // Arrange
    let alice = user("alice@example.com");
    let full = vec![event("click", None, "2026-11-01T10:00:00Z"); MAX_USAGE_BATCH];
    let over = vec![event("click", None, "2026-11-01T10:00:00Z"); MAX_USAGE_BATCH + 1];
    let window = TimeRange::Last90Days.ending_at(at("2026-11-02T00:00:00Z"));

    // Act
    let accepted = db.store.insert_usage_events(&alice, &full).await.unwrap();
    let refused = db.store.insert_usage_events(&alice, &over).await;
    let empty = db.store.insert_usage_events(&alice, &[]).await.unwrap();

    // Assert
    assert_eq!(accepted, 1000);
    assert!(
        matches!(refused, Err(StoreError::InvalidInput(_))),
        "{refused:?}"
    );
    assert_eq!(empty, 0);
    assert_eq!(
        db.store.count_usage_events(&alice, window).await.unwrap(),
        1000
    );
}
conformance!(a_batch_of_1000_is_accepted_and_1001_refused_whole);

async fn counts_include_the_window_start_and_exclude_its_end(db: &TestDb) {
    // Arrange
    let alice = user("alice@example.com");
    let end = at("2026-11-02T00:00:00Z");
    let window = TimeRange::Last24Hours.ending_at(end);
    let just_before = (window.start - Duration::microseconds(1)).to_rfc3339();
    let just_inside = (end - Duration::microseconds(1)).to_rfc3339();
    let events = [
        event("view", None, &just_before),
        event("view", None, "2026-11-01T00:00:00Z"),
        event("view", None, "2026-11-01T12:00:00Z"),
        event("view", None, &just_inside),
        event("view", None, "2026-11-02T00:00:00Z"),
    ];
    db.store.insert_usage_events(&alice, &events).await.unwrap();

    // Act
    let count = db.store.count_usage_events(&alice, window).await.unwrap();
    let empty = TimeWindow::new(end, end).unwrap();
    let none = db.store.count_usage_events(&alice, empty).await.unwrap();

    // Assert
    assert_eq!(count, 3);
    assert_eq!(none, 0);
}
conformance!(counts_include_the_window_start_and_exclude_its_end);

async fn admin_summary_counts_events_users_types_and_top_pages(db: &TestDb) {
    // Arrange
    let window = TimeRange::Last7Days.ending_at(at("2026-11-08T00:00:00Z"));
    let (alice, bob, carol) = (
        user("alice@example.com"),
        user("bob@example.com"),
        user("carol@example.com"),
    );
    let mut alices = vec![event("page_view", Some("home"), "2026-11-03T10:00:00Z"); 5];
    alices.push(event("click", Some("catalog"), "2026-11-03T10:00:00Z"));
    alices.push(event("click", None, "2026-11-03T10:00:00Z"));
    db.store.insert_usage_events(&alice, &alices).await.unwrap();
    let mut bobs = vec![event("page_view", Some("catalog"), "2026-11-04T10:00:00Z"); 4];
    // Twelve more pages with one view each: only ten pages make the top list.
    for i in 0..12 {
        bobs.push(event(
            "page_view",
            Some(&format!("p{i:02}")),
            "2026-11-04T10:00:00Z",
        ));
    }
    db.store.insert_usage_events(&bob, &bobs).await.unwrap();
    // Outside the window: not counted anywhere.
    db.store
        .insert_usage_events(
            &carol,
            &[event("page_view", Some("home"), "2026-10-01T00:00:00Z")],
        )
        .await
        .unwrap();

    // Act
    let summary = db.store.admin_usage_summary(window).await.unwrap();

    // Assert
    assert_eq!(summary.total_events, 23);
    assert_eq!(summary.unique_users, 2);
    assert_eq!(summary.by_event_type.get("page_view"), Some(&21));
    assert_eq!(summary.by_event_type.get("click"), Some(&2));
    assert_eq!(summary.top_pages.len(), TOP_PAGES);
    let view = |page_name: &str, views| PageViews {
        page_name: page_name.into(),
        views,
    };
    assert_eq!(
        summary.top_pages[..4],
        [
            view("catalog", 5),
            view("home", 5),
            view("p00", 1),
            view("p01", 1)
        ]
    );
    assert_eq!(summary.top_pages[9], view("p07", 1));
}
conformance!(admin_summary_counts_events_users_types_and_top_pages);

async fn an_empty_window_summary_is_all_zeros(db: &TestDb) {
    // Arrange
    let window = TimeRange::Last30Days.ending_at(at("2026-11-08T00:00:00Z"));

    // Act
    let summary = db.store.admin_usage_summary(window).await.unwrap();

    // Assert
    assert_eq!(summary, Default::default());
}
conformance!(an_empty_window_summary_is_all_zeros);

async fn timestamps_outside_the_years_1_to_9999_are_refused_alike(db: &TestDb) {
    // Arrange: Postgres alone would take 4713 BC, and fail at 4714 BC with a database error.
    let alice = user("alice@example.com");
    let earliest =
        chrono::DateTime::from_timestamp(dbapp_store::EARLIEST_TIMESTAMP_SECS, 0).unwrap();
    let latest = chrono::DateTime::from_timestamp(dbapp_store::LATEST_TIMESTAMP_SECS, 0).unwrap();
    let mut edges = vec![event("view", None, "2026-11-01T00:00:00Z"); 2];
    edges[0].timestamp = earliest;
    edges[1].timestamp = latest;

    for outside in [
        earliest - Duration::seconds(1),
        latest + Duration::seconds(1),
        chrono::DateTime::from_timestamp(-210_000_000_000, 0).unwrap(),
    ] {
        // Act
        let mut batch = vec![event("view", None, "2026-11-01T00:00:00Z")];
        batch.push(NewUsageEvent {
            timestamp: outside,
            ..event("view", None, "2026-11-01T00:00:00Z")
        });
        let refused = db.store.insert_usage_events(&alice, &batch).await;
        let window = TimeWindow::new(outside.min(earliest), outside.max(latest));

        // Assert: refused as input, nothing of the batch stored.
        assert!(
            matches!(refused, Err(StoreError::InvalidInput(_))),
            "{outside}: {refused:?}"
        );
        assert!(
            matches!(window, Err(StoreError::InvalidInput(_))),
            "{outside}"
        );
    }
    let window = TimeWindow::new(earliest, latest).unwrap();
    assert_eq!(
        db.store.count_usage_events(&alice, window).await.unwrap(),
        0
    );
    assert_eq!(
        db.store.insert_usage_events(&alice, &edges).await.unwrap(),
        2
    );
    assert_eq!(
        db.store.count_usage_events(&alice, window).await.unwrap(),
        1
    );
}
conformance!(timestamps_outside_the_years_1_to_9999_are_refused_alike);
