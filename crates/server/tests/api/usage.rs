//! Usage events (JSON and beacon text), their validation, and the admin dashboards.

use serde_json::json;

use crate::app::{ADMIN, ALICE, BOB, Options, assert_error, spawn_app, spawn_app_with};

fn events(n: usize) -> serde_json::Value {
    let now = chrono::Utc::now().to_rfc3339();
    json!({"events": (0..n).map(|i| json!({"event_type": "page_view", "page_name": format!("page-{}", i % 2), "timestamp": now})).collect::<Vec<_>>()})
}

#[tokio::test]
async fn usage_events_are_accepted_as_json_and_as_beacon_text() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let json_post = app.post_usage(ALICE, &events(3)).send().await;
    let beacon = app
        .request(reqwest::Method::POST, "/api/v1/metrics/usage-events", ALICE)
        .header("content-type", "text/plain;charset=UTF-8")
        .body(events(2).to_string())
        .send()
        .await
        .unwrap();
    let (_, alice) = app.usage_count(ALICE, "?time_range=24h").json().await;
    let (_, bob) = app.usage_count(BOB, "").json().await;

    // Assert
    assert_eq!(json_post.status(), 202);
    assert_eq!(
        json_post.json::<serde_json::Value>().await.unwrap(),
        json!({"accepted": 3})
    );
    assert_eq!(beacon.status(), 202);
    assert_eq!(alice["count"], 5, "{alice}");
    assert_eq!(alice["time_range"], "24h");
    assert!(alice["start_time"].is_string() && alice["end_time"].is_string());
    assert_eq!(bob["count"], 0);
}

#[tokio::test]
async fn usage_batches_are_validated() {
    let app = spawn_app().await;
    let post = |batch: serde_json::Value| app.post_usage(ALICE, &batch).send();
    assert_error(post(events(0)).await, 400, "INVALID_REQUEST").await;
    assert_error(post(events(1001)).await, 400, "INVALID_REQUEST").await;
    assert_error(
        post(json!({"events": [{"event_type": "x"}]})).await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_error(
        app.usage_count(ALICE, "?time_range=1y").send().await,
        400,
        "INVALID_REQUEST",
    )
    .await;
}

#[tokio::test]
async fn admin_dashboards_need_an_admin() {
    let app = spawn_app().await;
    for path in [
        "/api/v1/metrics/performance",
        "/api/v1/metrics/usage",
        "/api/v1/metrics/time-series",
    ] {
        assert_error(
            app.get(path, Some(ALICE)).send().await.unwrap(),
            403,
            "ADMIN_REQUIRED",
        )
        .await;
    }
}

#[tokio::test]
async fn admin_dashboards_report_usage_and_request_performance_by_route_template() {
    // Arrange
    let app = spawn_app().await;
    app.post_usage(ALICE, &events(4)).send().await;
    app.post_usage(BOB, &events(1)).send().await;
    for key in ["a", "b", "c"] {
        app.get(&format!("/api/preferences/{key}"), Some(ALICE))
            .send()
            .await
            .unwrap();
    }

    // Act: the batch writer runs off the request path; wait until it has written.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let performance = loop {
        let (status, body) = app
            .get_json("/api/v1/metrics/performance?time_range=24h", Some(ADMIN))
            .await;
        assert_eq!(status, 200, "{body}");
        let has = body["routes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["route"] == "/api/preferences/{key}" && r["requests"] == 3);
        if has || std::time::Instant::now() > deadline {
            break body;
        }
        tokio::task::yield_now().await;
    };
    let (_, usage) = app
        .get_json("/api/v1/metrics/usage?time_range=7d", Some(ADMIN))
        .await;
    let (_, series) = app
        .get_json(
            "/api/v1/metrics/time-series?time_range=24h&metric_type=usage",
            Some(ADMIN),
        )
        .await;
    let (_, both) = app
        .get_json("/api/v1/metrics/time-series", Some(ADMIN))
        .await;

    // Assert
    let routes = performance["routes"].as_array().unwrap();
    assert!(
        routes.iter().any(|r| r["route"] == "/api/preferences/{key}"
            && r["method"] == "GET"
            && r["requests"] == 3),
        "{performance}"
    );
    assert!(
        routes.iter().all(|r| !r["route"]
            .as_str()
            .unwrap()
            .starts_with("/api/preferences/")
            || r["route"] == "/api/preferences/{key}"),
        "templates only"
    );
    assert!(performance["summary"]["requests"].as_i64().unwrap() >= 3);
    assert_eq!(usage["total_events"], 5, "{usage}");
    assert_eq!(usage["unique_users"], 2);
    assert_eq!(usage["by_event_type"]["page_view"], 5);
    assert_eq!(usage["top_pages"][0]["page_name"], "page-0");
    assert_eq!(series["interval"], "5m");
    let point = &series["points"][0];
    assert!(
        point.get("events").is_some() && point.get("requests").is_none(),
        "{series}"
    );
    assert!(both["points"][0].get("requests").is_some());
    let busy = both["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["requests"].as_i64() > Some(0))
        .expect("a bucket with requests");
    let (p50, p95, p99) = (
        busy["p50_ms"].as_f64().unwrap(),
        busy["p95_ms"].as_f64().unwrap(),
        busy["p99_ms"].as_f64().unwrap(),
    );
    assert!(p50 <= p95 && p95 <= p99, "{busy}");
}

#[tokio::test]
async fn an_event_timestamp_outside_the_years_1_to_9999_is_invalid_request() {
    // Arrange
    let app = spawn_app().await;

    for timestamp in [
        "-5000-01-01T00:00:00Z",
        "+10000-01-01T00:00:00Z",
        "0000-12-31T23:59:59Z",
    ] {
        // Act
        let batch = json!({"events": [{"event_type": "view", "timestamp": timestamp}]});
        let response = app.post_usage(ALICE, &batch).send().await;

        // Assert
        assert_error(response, 400, "INVALID_REQUEST").await;
    }
}

#[tokio::test]
async fn only_requests_of_identified_callers_write_a_performance_record() {
    // Arrange
    let app = spawn_app().await;
    let store = app.state.store.clone().expect("a store");
    let started = chrono::Utc::now();

    // Act: refused and public requests of every kind, then one authenticated routed request, whose record
    // comes after theirs through the one writer's queue.
    for i in 0..20 {
        let unauthenticated = app.get("/api/preferences", None).send().await.unwrap();
        let bad_token = app
            .get("/api/user/me", Some("bad token"))
            .send()
            .await
            .unwrap();
        let unknown = app
            .get(&format!("/api/no-such-route-{i}"), Some(ALICE))
            .send()
            .await
            .unwrap();
        let wrong_method = app
            .request(reqwest::Method::PATCH, "/api/preferences", ALICE)
            .send()
            .await
            .unwrap();
        let public = app.get("/api/health", None).send().await.unwrap();
        assert_eq!(unauthenticated.status(), 401);
        assert_eq!(public.status(), 200);
        assert_eq!(bad_token.status(), 401);
        assert_eq!(unknown.status(), 404);
        assert_eq!(wrong_method.status(), 405);
    }
    app.list_preferences(ALICE).send().await;
    let window = dbapp_store::TimeWindow::new(
        started - chrono::TimeDelta::minutes(1),
        chrono::Utc::now() + chrono::TimeDelta::minutes(1),
    )
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let report = loop {
        let report = store.admin_performance_report(window, None).await.unwrap();
        if report.summary.requests > 0 || std::time::Instant::now() > deadline {
            break report;
        }
        tokio::task::yield_now().await;
    };

    let metrics = app.metrics(ADMIN).text().await;

    // Assert: only the identified caller's request was recorded; the others are counted in
    // Prometheus under their route template, never the raw path.
    let routes: Vec<_> = report
        .routes
        .iter()
        .map(|r| (r.route.as_str(), r.method.as_str(), r.stats.requests))
        .collect();
    assert_eq!(routes, [("/api/preferences", "GET", 1)]);
    assert_eq!(report.summary.requests, 1);
    for series in [
        r#"http_requests_total{route="/api/preferences",method="GET",status="401"} 20"#,
        r#"http_requests_total{route="/api/user/me",method="GET",status="401"} 20"#,
        r#"http_requests_total{route="/api/{*rest}",method="GET",status="404"} 20"#,
        r#"http_requests_total{route="/api/preferences",method="PATCH",status="405"} 20"#,
        r#"http_requests_total{route="/api/health",method="GET",status="200"} 20"#,
    ] {
        assert!(metrics.contains(series), "{series} in {metrics}");
    }
    assert!(!metrics.contains("no-such-route"));
}

#[tokio::test]
async fn a_batch_over_the_usage_quota_is_refused_whole_and_stores_nothing() {
    // Arrange: the default quota, 1 200 events a minute, of which a first batch uses 1 000.
    let app = spawn_app().await;
    assert_eq!(
        app.post_usage(ALICE, &events(1000)).send().await.status(),
        202
    );

    // Act
    let over = app.post_usage(ALICE, &events(1000)).send().await;
    let bob = app.post_usage(BOB, &events(1000)).send().await;

    // Assert: 800 events short at 20 a second: 40 s; nothing of the batch stored.
    let refused = assert_error(over, 429, "RATE_LIMITED").await;
    assert_eq!(refused["detail"]["quota"], "usage_events", "{refused}");
    let retry_after = refused["retry_after"].as_u64().unwrap();
    assert!((39..=40).contains(&retry_after), "{refused}");
    assert_eq!(bob.status(), 202);
    let (_, alice) = app.usage_count(ALICE, "").json().await;
    assert_eq!(alice["count"], 1000, "{alice}");
    let (_, bob) = app.usage_count(BOB, "").json().await;
    assert_eq!(bob["count"], 1000, "{bob}");
    let metrics = app.metrics(ADMIN).text().await;
    assert!(
        metrics.contains(r#"quota_rejections_total{quota="usage_events"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_batch_larger_than_the_usage_quota_is_invalid_request_not_a_retry() {
    // Arrange
    let app = spawn_app_with(Options {
        env: vec![("DBAPP_QUOTA_USAGE_EVENTS_PER_MINUTE", "10")],
        ..Options::default()
    })
    .await;

    // Act
    let too_big = app.post_usage(ALICE, &events(11)).send().await;
    let fits = app.post_usage(ALICE, &events(10)).send().await;

    // Assert
    let refused = assert_error(too_big, 400, "INVALID_REQUEST").await;
    assert_eq!(refused["detail"]["field"], "events", "{refused}");
    assert_eq!(fits.status(), 202);
}
