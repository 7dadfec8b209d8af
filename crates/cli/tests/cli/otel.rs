//! Trace export of `dbapp serve` to a real OTLP/gRPC receiver (`dbapp_emulator::otlp`), with
//! the environment Databricks Apps set when app telemetry is on (UPSTREAM §1.4): the spans, their
//! parent links across the caller's `traceparent`, the server and the workspace, their
//! attributes, and no token anywhere.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use dbapp_emulator::otlp::{OtlpReceiver, ReceivedSpan};
use dbapp_emulator::{EmulatorConfig, start_local};

/// The caller's trace and span, as a browser or gateway would send them.
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// Starts `dbapp serve` against `workspace`, exporting to `endpoint`; returns it and its URL.
fn start_serve(workspace: &str, endpoint: &str, dir: &std::path::Path) -> (crate::Running, String) {
    let child = crate::dbapp()
        .arg("serve")
        .env_clear()
        .env("HOME", dir)
        .env("PATH", "/usr/bin:/bin")
        .env("DATABRICKS_HOST", workspace)
        .env("DATABRICKS_CLIENT_ID", "dbapp-sp")
        .env("DATABRICKS_CLIENT_SECRET", "dev-secret")
        .env("DATABRICKS_APP_PORT", free_port().to_string())
        .env("DBAPP_SQLITE_PATH", dir.join("dbapp.db"))
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .env("OTEL_SERVICE_NAME", "dbapp-otel-test")
        .env(
            "OTEL_RESOURCE_ATTRIBUTES",
            "workspace.id=1234567890,app.name=dbapp-otel-test",
        )
        // Export each batch after 50 ms instead of 5 s, so the test waits less.
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("dbapp starts");
    let mut running = crate::Running(child);
    let stdout = running.0.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let port = loop {
        let line = lines
            .next()
            .expect("serve logs server.listening before it exits")
            .expect("a line");
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if value["event"] == "server.listening" {
            break value["port"].as_u64().expect("a port");
        }
    };
    // Keep reading the log, so a full pipe never blocks the server.
    std::thread::spawn(move || for _ in lines {});
    (running, format!("http://127.0.0.1:{port}"))
}

/// A port nobody listens on now (serve takes 1–65535, not 0).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

fn find<'a>(spans: &'a [ReceivedSpan], name: &str) -> Option<&'a ReceivedSpan> {
    spans
        .iter()
        .find(|s| s.trace_id == CALLER_TRACE && s.name == name)
}

/// Whether `ancestor` is `span`'s parent, or its parent's, and so on.
fn descends_from(spans: &[ReceivedSpan], span: &ReceivedSpan, ancestor: &ReceivedSpan) -> bool {
    let mut parent = span.parent_span_id.as_str();
    while !parent.is_empty() {
        if parent == ancestor.span_id {
            return true;
        }
        parent = spans
            .iter()
            .find(|s| s.span_id == parent)
            .map_or("", |s| s.parent_span_id.as_str());
    }
    false
}

/// The workspace call (a client span) named `name`.
fn client<'a>(spans: &'a [ReceivedSpan], name: &str) -> Option<&'a ReceivedSpan> {
    spans
        .iter()
        .find(|s| s.trace_id == CALLER_TRACE && s.name == name && s.kind == 3)
}

#[tokio::test]
async fn serve_exports_request_upstream_and_store_spans_linked_to_the_callers_trace() {
    // Arrange
    let receiver = OtlpReceiver::start().await.unwrap();
    let emulator = start_local(EmulatorConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (_serve, url) = start_serve(emulator.base_url(), &receiver.endpoint(), dir.path());
    let http = reqwest::Client::new();
    let traceparent = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let as_alice = |request: reqwest::RequestBuilder| {
        request
            .header("X-Forwarded-Access-Token", "dev-token-alice")
            .header("X-Forwarded-Email", "alice@example.com")
            .header("traceparent", &traceparent)
    };

    // Act: a call that asks the workspace (SCIM Me), and one that writes to the store.
    let me = as_alice(http.get(format!("{url}/api/user/me")))
        .send()
        .await
        .unwrap();
    let put = as_alice(http.put(format!("{url}/api/preferences/theme")))
        .json(&serde_json::json!({"value": "dark"}))
        .send()
        .await
        .unwrap();
    let spans = receiver
        .wait_for(Duration::from_secs(20), |spans| {
            client(spans, "me").is_some()
                && [
                    "GET /api/user/me",
                    "PUT /api/preferences/{key}",
                    "store.upsert_preference",
                ]
                .iter()
                .all(|name| find(spans, name).is_some())
        })
        .await;

    // Assert: both requests succeeded and their spans arrived.
    assert_eq!(me.status(), 200);
    assert!(put.status().is_success(), "{}", put.status());
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    let request = find(&spans, "GET /api/user/me").unwrap_or_else(|| panic!("{names:?}"));
    let upstream = client(&spans, "me").unwrap_or_else(|| panic!("{names:?}"));
    let put_span =
        find(&spans, "PUT /api/preferences/{key}").unwrap_or_else(|| panic!("{names:?}"));
    let store = find(&spans, "store.upsert_preference").unwrap_or_else(|| panic!("{names:?}"));

    // The request span is the server side, child of the caller's span.
    assert_eq!(request.kind, 2, "server");
    assert_eq!(request.parent_span_id, CALLER_SPAN);
    assert_eq!(request.attribute("route"), Some("/api/user/me"));
    assert_eq!(request.attribute("method"), Some("GET"));
    assert_eq!(request.attribute("http.response.status_code"), Some("200"));
    assert_eq!(request.attribute("user_id"), Some("alice@example.com"));
    assert_eq!(request.attribute("auth_method"), Some("obo"));
    assert!(request.attribute("correlation_id").is_some());
    // The workspace call is the client side, within the request, with its request id.
    assert!(descends_from(&spans, upstream, request), "{spans:#?}");
    assert_eq!(upstream.attribute("api"), Some("scim"));
    assert_eq!(upstream.attribute("http.response.status_code"), Some("200"));
    assert_eq!(upstream.attribute("attempts"), Some("1"));
    let logged = emulator.requests("/api/2.0/preview/scim/v2/Me");
    let call = logged
        .iter()
        .find(|r| r.principal.as_deref() == Some("alice@example.com"))
        .expect("the emulator saw alice's Me");
    assert_eq!(
        upstream.attribute("databricks.request_id"),
        Some(call.request_id.as_str())
    );
    // The workspace was told the trace: its parent is the client span.
    assert_eq!(
        call.traceparent.as_deref(),
        Some(format!("00-{CALLER_TRACE}-{}-01", upstream.span_id).as_str())
    );
    // The store call is within its request.
    assert!(descends_from(&spans, store, put_span), "{spans:#?}");
    assert_eq!(store.attribute("db.system.name"), Some("sqlite"));
    // The resource is what Apps set.
    assert_eq!(
        request.resource.get("service.name").map(String::as_str),
        Some("dbapp-otel-test")
    );
    assert_eq!(
        request.resource.get("workspace.id").map(String::as_str),
        Some("1234567890")
    );
    assert_eq!(
        request.resource.get("app.name").map(String::as_str),
        Some("dbapp-otel-test")
    );
    // No token or secret anywhere: user tokens, the SP's secret, or the SP's minted tokens.
    for span in &spans {
        for (key, value) in span.attributes.iter().chain(&span.resource) {
            for secret in ["dev-token-alice", "dev-secret", "Bearer", "eyJ"] {
                assert!(
                    !value.contains(secret),
                    "{secret} in {key}={value} of {}",
                    span.name
                );
            }
        }
    }
    // Health checks stay out of traces.
    assert!(spans.iter().all(|s| !s.name.contains("/health")));
}

#[tokio::test]
async fn without_a_traceparent_each_request_starts_its_own_trace() {
    // Arrange
    let receiver = OtlpReceiver::start().await.unwrap();
    let emulator = start_local(EmulatorConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (_serve, url) = start_serve(emulator.base_url(), &receiver.endpoint(), dir.path());
    let http = reqwest::Client::new();

    // Act: two calls, one with a malformed traceparent (which must be ignored).
    for traceparent in [None, Some("00-not-a-trace-01")] {
        let mut request = http
            .get(format!("{url}/api/unity-catalog/catalogs"))
            .header("X-Forwarded-Access-Token", "dev-token-bob");
        if let Some(value) = traceparent {
            request = request.header("traceparent", value);
        }
        assert_eq!(request.send().await.unwrap().status(), 200);
    }
    let roots = |spans: &[ReceivedSpan]| -> Vec<ReceivedSpan> {
        spans
            .iter()
            .filter(|s| s.name == "GET /api/unity-catalog/catalogs")
            .cloned()
            .collect()
    };
    let spans = receiver
        .wait_for(Duration::from_secs(20), |spans| roots(spans).len() == 2)
        .await;

    // Assert: two root spans in two traces, each with its own upstream child.
    let roots = roots(&spans);
    assert_eq!(roots.len(), 2, "{spans:#?}");
    assert!(roots.iter().all(|s| s.parent_span_id.is_empty()));
    assert_ne!(roots[0].trace_id, roots[1].trace_id);
    for root in &roots {
        assert!(
            spans
                .iter()
                .any(|s| s.kind == 3 && descends_from(&spans, s, root)),
            "an upstream child of {root:?}"
        );
    }
}
