//! The caller's identity: `/api/user/me`, auth status, token checks, and SCIM lookups retried,
//! cached and rate limited.

use std::time::Duration;

use dbapp_emulator::FaultRule;
use serde_json::json;

use crate::app::{ADMIN, ALICE, BOB, Options, assert_error, spawn_app, spawn_app_with};

#[tokio::test]
async fn me_returns_the_caller_with_auth_method_obo() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let (status, body) = app.me(ALICE).json().await;

    // Assert
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user_id"], "alice@example.com");
    assert_eq!(body["email"], "alice@example.com");
    assert_eq!(body["username"], "alice@example.com");
    assert_eq!(body["auth_method"], "obo");
    assert_eq!(body["active"], true);
    assert_eq!(body["is_admin"], false);
    assert!(body["groups"].is_array());
    assert!(body["display_name"].is_string());
}

#[tokio::test]
async fn admins_are_members_of_the_admin_groups() {
    let app = spawn_app().await;
    let (_, admin) = app.me(ADMIN).json().await;
    assert_eq!(admin["is_admin"], true, "{admin}");
    let (_, bob) = app.me(BOB).json().await;
    assert_eq!(bob["is_admin"], false);
}

#[tokio::test]
async fn admin_groups_are_configurable() {
    let app = spawn_app_with(Options {
        env: vec![("DBAPP_ADMIN_GROUPS", "nobody")],
        ..Options::default()
    })
    .await;
    let (_, admin) = app.me(ADMIN).json().await;
    assert_eq!(admin["is_admin"], false);
}

#[tokio::test]
async fn me_workspace_names_the_workspace() {
    let app = spawn_app().await;
    let (status, body) = app.get_json("/api/user/me/workspace", Some(BOB)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["user_id"], "bob@example.com");
    assert_eq!(body["workspace"]["host"], app.emulator.base_url());
    assert!(body["workspace"]["workspace_id"].is_string(), "{body}");
    // The host's whole name with its port (`127.0.0.1:…`), never its first label (`127`).
    let host = app
        .emulator
        .base_url()
        .trim_start_matches("http://")
        .trim_end_matches('/');
    assert_eq!(body["workspace"]["name"], host, "{body}");
}

#[tokio::test]
async fn me_workspace_names_the_store_and_whom_it_runs_as() {
    // Arrange: the default test app keeps its data in a SQLite file.
    let app = spawn_app().await;

    // Act
    let (status, body) = app.get_json("/api/user/me/workspace", Some(ALICE)).await;

    // Assert
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["store"],
        json!({"kind": "sqlite", "runs_as": "app"}),
        "{body}"
    );
}

#[tokio::test]
async fn me_workspace_says_when_there_is_no_store() {
    // Arrange: as inside Databricks Apps without a database.
    let app = spawn_app_with(Options {
        store: false,
        ..Options::default()
    })
    .await;

    // Act
    let (status, body) = app.get_json("/api/user/me/workspace", Some(ALICE)).await;

    // Assert
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["store"]["kind"], "none", "{body}");
}

#[tokio::test]
async fn auth_status_is_never_an_error() {
    let app = spawn_app().await;
    let (status, none) = app.get_json("/api/user/auth/status", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        none,
        json!({"authenticated": false, "auth_method": "obo", "has_user_identity": false, "user_id": null})
    );
    let (status, bad) = app.auth_status("nope").json().await;
    assert_eq!(status, 200);
    assert_eq!(bad["authenticated"], false);
    assert_eq!(bad["has_user_identity"], true);
    let (_, good) = app.auth_status(ALICE).json().await;
    assert_eq!(good["authenticated"], true);
    assert_eq!(good["user_id"], "alice@example.com");
}

#[tokio::test]
async fn missing_empty_and_malformed_tokens_are_refused_before_any_call() {
    // Arrange
    let app = spawn_app().await;

    // Act / Assert
    assert_error(
        app.get("/api/user/me", None).send().await.unwrap(),
        401,
        "AUTH_MISSING",
    )
    .await;
    assert_error(app.me("   ").send().await, 401, "AUTH_MISSING").await;
    let long = "x".repeat(8 * 1024 + 1);
    assert_error(app.me(&long).send().await, 401, "AUTH_INVALID").await;
    assert_error(app.me("a\tb").send().await, 401, "AUTH_INVALID").await;
    assert!(app.emulator.requests("/api/2.0/preview/scim").is_empty());
}

#[tokio::test]
async fn an_unknown_token_is_auth_invalid_and_an_expired_one_auth_expired() {
    // Arrange
    let app = spawn_app().await;
    let token = app
        .emulator
        .mint_token("alice@example.com", Duration::from_secs(600))
        .unwrap();
    app.emulator.expire_token(&token).await.unwrap();

    // Act / Assert
    assert_error(app.me("unknown").send().await, 401, "AUTH_INVALID").await;
    assert_error(app.me(&token).send().await, 401, "AUTH_EXPIRED").await;
}

#[tokio::test]
async fn a_token_that_expires_mid_session_is_refused_and_the_next_works_at_once() {
    // Arrange: a fresh token, used once (and cached), then expired.
    let app = spawn_app_with(Options {
        env: vec![("DBAPP_IDENTITY_CACHE_TTL_SECS", "0")],
        ..Options::default()
    })
    .await;
    let first = app
        .emulator
        .mint_token("alice@example.com", Duration::from_secs(600))
        .unwrap();
    let (status, _) = app.me(&first).json().await;
    assert_eq!(status, 200);
    app.emulator.expire_token(&first).await.unwrap();
    let second = app
        .emulator
        .mint_token("alice@example.com", Duration::from_secs(600))
        .unwrap();

    // Act / Assert
    assert_error(app.me(&first).send().await, 401, "AUTH_EXPIRED").await;
    let (status, body) = app.me(&second).json().await;
    assert_eq!(status, 200);
    assert_eq!(body["user_id"], "alice@example.com");
}

#[tokio::test]
async fn a_forwarded_email_must_match_the_identity() {
    let app = spawn_app().await;
    let ok = app
        .get("/api/user/me", Some(ALICE))
        .header("X-Forwarded-Email", "Alice@Example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    // Another address, and one that is not readable text (so cannot be compared).
    let unreadable = axum::http::HeaderValue::from_bytes(b"alice\xff@example.com").unwrap();
    for forwarded in [
        axum::http::HeaderValue::from_static("bob@example.com"),
        unreadable,
    ] {
        let mismatch = app
            .get("/api/user/me", Some(ALICE))
            .header("X-Forwarded-Email", forwarded)
            .send()
            .await
            .unwrap();
        assert_error(mismatch, 401, "IDENTITY_MISMATCH").await;
    }
}

#[tokio::test]
async fn identity_lookups_are_retried_on_503_and_then_cached() {
    // Arrange: SCIM Me fails twice with 503.
    let app = spawn_app().await;
    app.emulator
        .inject_fault(
            FaultRule::new("/api/2.0/preview/scim/v2/Me")
                .status(503)
                .times(2),
        )
        .unwrap();

    // Act
    let started = std::time::Instant::now();
    let (status, body) = app.me(ALICE).json().await;
    let elapsed = started.elapsed();
    let (again, _) = app.me(ALICE).json().await;

    // Assert: three attempts (waits of ~100 and ~200 ms), then one cache hit.
    assert_eq!(status, 200, "{body}");
    assert_eq!(again, 200);
    let calls = app.emulator.requests("/api/2.0/preview/scim/v2/Me");
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[tokio::test]
async fn identity_lookups_that_keep_failing_are_auth_user_identity_failed() {
    let app = spawn_app().await;
    app.emulator
        .inject_fault(FaultRule::new("/api/2.0/preview/scim/v2/Me").status(503))
        .unwrap();
    assert_error(app.me(ALICE).send().await, 502, "AUTH_USER_IDENTITY_FAILED").await;
    let calls = app.emulator.requests("/api/2.0/preview/scim/v2/Me");
    assert_eq!(calls.len(), 4, "one call and three retries");
}

#[tokio::test]
async fn a_rate_limited_identity_lookup_fails_at_once_with_retry_after() {
    // Arrange
    let app = spawn_app().await;
    app.emulator
        .inject_fault(
            FaultRule::new("/api/2.0/preview/scim/v2/Me")
                .status(429)
                .retry_after_secs(17),
        )
        .unwrap();

    // Act
    let response = app.me(ALICE).send().await;

    // Assert
    let body = assert_error(response, 429, "AUTH_RATE_LIMITED").await;
    assert_eq!(body["retry_after"], 17);
    assert_eq!(
        app.emulator.requests("/api/2.0/preview/scim/v2/Me").len(),
        1
    );
}

#[tokio::test]
async fn two_tabs_of_one_user_work_independently() {
    // Arrange: no server-side session; two "tabs" are two clients with the same token.
    let app = spawn_app().await;
    let tab_a = reqwest::Client::new();
    let tab_b = reqwest::Client::new();
    let get = |client: &reqwest::Client, id: &str| {
        client
            .get(app.url("/api/user/me"))
            .header("X-Forwarded-Access-Token", ALICE)
            .header("X-Correlation-ID", id)
            .send()
    };

    // Act
    let (a, b) = tokio::join!(get(&tab_a, "tab-a"), get(&tab_b, "tab-b"));

    // Assert
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.status(), 200);
    assert_eq!(b.status(), 200);
    assert_eq!(a.headers()["x-correlation-id"], "tab-a");
    assert_eq!(b.headers()["x-correlation-id"], "tab-b");
    assert!(a.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn concurrent_requests_retry_independently_with_distinct_correlation_ids() {
    // Arrange: the first two SCIM calls fail; the cache is off so each request looks up.
    let app = spawn_app_with(Options {
        env: vec![("DBAPP_IDENTITY_CACHE_TTL_SECS", "0")],
        ..Options::default()
    })
    .await;
    app.emulator
        .inject_fault(
            FaultRule::new("/api/2.0/preview/scim/v2/Me")
                .status(503)
                .times(2),
        )
        .unwrap();

    // Act
    let (a, b) = tokio::join!(
        app.get("/api/user/me", Some(ALICE))
            .header("X-Correlation-ID", "req-a")
            .send(),
        app.get("/api/user/me", Some(BOB))
            .header("X-Correlation-ID", "req-b")
            .send(),
    );

    // Assert
    assert_eq!(a.unwrap().status(), 200);
    assert_eq!(b.unwrap().status(), 200);
    let calls = app.emulator.requests("/api/2.0/preview/scim/v2/Me");
    let ids: Vec<&str> = calls
        .iter()
        .filter_map(|c| c.correlation_id.as_deref())
        .collect();
    assert_eq!(calls.len(), 4, "{calls:?}");
    assert!(
        ids.iter().all(|id| *id == "req-a" || *id == "req-b"),
        "{ids:?}"
    );
    assert!(ids.contains(&"req-a") && ids.contains(&"req-b"));
}

#[tokio::test]
async fn a_cached_identity_ends_when_the_token_says_it_expires() {
    // Arrange: a 60 s identity cache and a JWT that lives 2 s (exp has 1 s resolution).
    let app = spawn_app().await;
    let token = app
        .emulator
        .mint_token("alice@example.com", Duration::from_secs(2))
        .unwrap();
    let (status, _) = app.me(&token).json().await;
    assert_eq!(status, 200);

    // Act: wait out the token's own lifetime (time is the signal here).
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let after = app.me(&token).send().await;

    // Assert: refused by the workspace, not served from the cache.
    assert_error(after, 401, "AUTH_EXPIRED").await;
    assert_eq!(
        app.emulator.requests("/api/2.0/preview/scim/v2/Me").len(),
        2
    );
}

#[tokio::test]
async fn a_scim_answer_without_a_user_name_is_no_identity() {
    // Arrange
    let app = spawn_app().await;
    app.emulator
        .inject_fault(
            FaultRule::new("/api/2.0/preview/scim/v2/Me")
                .status(200)
                .json_body(json!({"userName": "", "active": true})),
        )
        .unwrap();

    // Act / Assert
    assert_error(app.me(ALICE).send().await, 502, "AUTH_USER_IDENTITY_FAILED").await;
}
