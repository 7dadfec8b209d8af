//! The retry policy of DESIGN.md, counted in the emulator's request log.

use std::time::{Duration, Instant};

use dbapp_databricks::{ErrorKind, Method, RetryPolicy};
use dbapp_emulator::FaultRule;
use serde_json::json;

use crate::support::{Recorder, TestWorkspace, gaps_ms, user};

const ME: &str = "/api/2.0/preview/scim/v2/Me";

#[tokio::test]
async fn two_503s_then_success_takes_three_attempts_with_100_and_200_ms_waits() {
    // Arrange
    let workspace = TestWorkspace::start().await;
    workspace
        .emulator
        .inject_fault(FaultRule::new(ME).status(503).times(2))
        .unwrap();
    let recorder = Recorder::new();
    let client = workspace.client();
    let alice = user("dev-token-alice");

    // Act
    let started = Instant::now();
    let me = client
        .as_user(&alice)
        .with_observer(recorder.clone())
        .me()
        .await
        .unwrap();
    let elapsed = started.elapsed();

    // Assert
    assert_eq!(me.user_name, "alice@example.com");
    let logged = workspace.emulator.requests(ME);
    let statuses: Vec<_> = logged.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 503, 200]);
    let recorded = recorder.recorded();
    assert_eq!(
        recorded.iter().map(|a| a.number).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(
        recorded.iter().map(|a| a.status).collect::<Vec<_>>(),
        [Some(503), Some(503), Some(200)]
    );
    let waits: Vec<_> = recorded.iter().map(|a| a.retry_in).collect();
    assert!(
        waits[0].unwrap() >= Duration::from_millis(100)
            && waits[0].unwrap() <= Duration::from_millis(110)
    );
    assert!(
        waits[1].unwrap() >= Duration::from_millis(200)
            && waits[1].unwrap() <= Duration::from_millis(220)
    );
    assert_eq!(waits[2], None);
    let gaps = gaps_ms(&logged);
    assert!(gaps[0] >= 100 && gaps[1] >= 200, "gaps {gaps:?}");
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn persistent_503_gives_four_attempts_then_unavailable() {
    let workspace = TestWorkspace::start().await;
    workspace
        .emulator
        .inject_fault(FaultRule::new(ME).status(503))
        .unwrap();
    let started = Instant::now();
    let error = workspace
        .client()
        .as_user(&user("dev-token-alice"))
        .me()
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert_eq!(error.attempts(), 4);
    let logged = workspace.emulator.requests(ME);
    assert_eq!(logged.len(), 4);
    let gaps = gaps_ms(&logged);
    eprintln!("persistent 503: gaps between attempts {gaps:?} ms, total {elapsed:?}");
    assert!(
        gaps[0] >= 100 && gaps[1] >= 200 && gaps[2] >= 400,
        "gaps {gaps:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(700) && elapsed < Duration::from_millis(1500),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn bad_gateway_and_gateway_timeout_are_retried() {
    for status in [502u16, 504] {
        let workspace = TestWorkspace::start().await;
        workspace
            .emulator
            .inject_fault(FaultRule::new(ME).status(status).times(1))
            .unwrap();
        workspace
            .client()
            .as_user(&user("dev-token-alice"))
            .me()
            .await
            .unwrap();
        assert_eq!(workspace.emulator.requests(ME).len(), 2, "{status}");
    }
}

#[tokio::test]
async fn rate_limit_500_and_other_4xx_are_never_retried() {
    for status in [429u16, 500, 400, 401, 403, 404, 409] {
        let workspace = TestWorkspace::start().await;
        workspace
            .emulator
            .inject_fault(
                FaultRule::new(ME)
                    .status(status)
                    .times(3)
                    .retry_after_secs(1),
            )
            .unwrap();
        let error = workspace
            .client()
            .as_user(&user("dev-token-alice"))
            .me()
            .await
            .unwrap_err();
        assert_eq!(error.status(), Some(status));
        assert_eq!(error.attempts(), 1, "{status}");
        assert_eq!(workspace.emulator.requests(ME).len(), 1, "{status}");
    }
}

#[tokio::test]
async fn dropped_connection_is_retried() {
    let workspace = TestWorkspace::start().await;
    workspace
        .emulator
        .inject_fault(FaultRule::new(ME).drop_connection().times(1))
        .unwrap();
    let recorder = Recorder::new();
    let me = workspace
        .client()
        .as_user(&user("dev-token-alice"))
        .with_observer(recorder.clone())
        .me()
        .await
        .unwrap();
    assert_eq!(me.user_name, "alice@example.com");
    let recorded = recorder.recorded();
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0].status, None);
    assert_eq!(workspace.emulator.requests(ME).len(), 2);
}

#[tokio::test]
async fn per_call_timeout_is_retried_and_then_reported_as_timeout() {
    // Arrange: the first answer takes 1.5 s, longer than the 300 ms timeout.
    let workspace = TestWorkspace::start().await;
    workspace
        .emulator
        .inject_fault(
            FaultRule::new(ME)
                .latency(Duration::from_millis(1500))
                .times(1),
        )
        .unwrap();
    let client = workspace.client();
    let alice = user("dev-token-alice");

    // Act
    let started = Instant::now();
    let me = client
        .as_user(&alice)
        .with_timeout(Duration::from_millis(300))
        .me()
        .await
        .unwrap();

    // Assert: one timed-out attempt, one retry 100 ms later.
    assert_eq!(me.user_name, "alice@example.com");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(400) && elapsed < Duration::from_millis(1400),
        "{elapsed:?}"
    );

    // And when every answer is slow, the error is a timeout.
    workspace
        .emulator
        .inject_fault(FaultRule::new(ME).latency(Duration::from_millis(1000)))
        .unwrap();
    let error = client
        .as_user(&alice)
        .with_timeout(Duration::from_millis(200))
        .me()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert_eq!(error.attempts(), 4);
}

#[tokio::test]
async fn non_idempotent_post_is_not_retried() {
    let workspace = TestWorkspace::start().await;
    let path = "/serving-endpoints/echo/invocations";
    workspace
        .emulator
        .inject_fault(FaultRule::new(path).status(503).times(1))
        .unwrap();
    let error = workspace
        .client()
        .as_user(&user("dev-token-alice"))
        .call_json(Method::POST, path, Some(json!({"inputs": [1]})))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert_eq!(workspace.emulator.requests(path).len(), 1);
}

#[tokio::test]
async fn retries_stop_at_the_budget() {
    // Arrange: waits of 1 s then 2 s would end past a 2 s budget, so only one retry happens.
    let workspace = TestWorkspace::start().await;
    workspace
        .emulator
        .inject_fault(FaultRule::new(ME).status(503))
        .unwrap();
    let mut policy = RetryPolicy::default();
    policy.min_delay = Duration::from_secs(1);
    policy.budget = Duration::from_secs(2);
    let client = workspace.client_with_retry(policy);

    // Act
    let error = client
        .as_user(&user("dev-token-alice"))
        .me()
        .await
        .unwrap_err();

    // Assert
    assert_eq!(error.attempts(), 2);
    assert_eq!(workspace.emulator.requests(ME).len(), 2);
}

#[tokio::test]
async fn concurrent_calls_keep_their_own_retries_and_correlation_ids() {
    let workspace = TestWorkspace::start().await;
    // Only bob's calls fail, once.
    workspace
        .emulator
        .inject_fault(
            FaultRule::new(ME)
                .status(503)
                .times(1)
                .principal("bob@example.com"),
        )
        .unwrap();
    let client = workspace.client();
    let (alice, bob) = (user("dev-token-alice"), user("dev-token-bob"));
    let (a, b) = (Recorder::new(), Recorder::new());
    let alice_view = client
        .as_user(&alice)
        .with_observer(a.clone())
        .with_correlation_id(dbapp_databricks::CorrelationId::parse("alice-1").unwrap());
    let bob_view = client
        .as_user(&bob)
        .with_observer(b.clone())
        .with_correlation_id(dbapp_databricks::CorrelationId::parse("bob-1").unwrap());
    let (ra, rb) = tokio::join!(alice_view.me(), bob_view.me());
    assert_eq!(ra.unwrap().user_name, "alice@example.com");
    assert_eq!(rb.unwrap().user_name, "bob@example.com");
    assert_eq!(a.recorded().len(), 1);
    assert_eq!(b.recorded().len(), 2);
    let logged = workspace.emulator.requests(ME);
    let bobs = logged
        .iter()
        .filter(|r| r.correlation_id.as_deref() == Some("bob-1"))
        .count();
    let alices = logged
        .iter()
        .filter(|r| r.correlation_id.as_deref() == Some("alice-1"))
        .count();
    assert_eq!((alices, bobs), (1, 2));
}
