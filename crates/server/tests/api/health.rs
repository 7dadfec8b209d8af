//! `/health`, `/ready` and `/metrics`: what each reports, who may read the metrics, and the
//! labels they carry.

use dbapp_emulator::postgres::{ClusterOptions, PrivateCluster};
use dbapp_emulator::{EmulatorConfig, FaultRule};

use crate::app::{
    ADMIN, ALICE, Options, assert_error, settings_for, spawn_app, spawn_app_with, start_server,
};

#[tokio::test]
async fn health_is_public_and_reports_the_version() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let (status, body) = app.health().json().await;
    let (api_status, api_body) = app.get_json("/api/health", None).await;

    // Assert
    assert_eq!(status, 200);
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(api_status, 200);
    assert_eq!(api_body, body);
}

#[tokio::test]
async fn ready_checks_the_store_and_the_app_credentials() {
    let app = spawn_app().await;
    let (status, body) = app.ready().json().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["store"], "ok");
    assert_eq!(body["checks"]["credentials"], "ok");
}

#[tokio::test]
async fn ready_is_503_naming_the_failing_check() {
    // Arrange: the app's M2M token endpoint fails.
    let app = spawn_app().await;
    app.emulator
        .inject_fault(FaultRule::new("/oidc/v1/token").status(401))
        .unwrap();

    // Act
    let (status, body) = app.ready().json().await;

    // Assert
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not_ready");
    assert!(
        body["checks"]["credentials"]
            .as_str()
            .unwrap()
            .starts_with("failed")
    );
    assert_eq!(body["checks"]["store"], "ok");
}

#[tokio::test]
async fn ready_without_a_store_says_not_configured() {
    let app = spawn_app_with(Options {
        store: false,
        ..Options::default()
    })
    .await;
    let (status, body) = app.ready().json().await;
    assert_eq!(status, 200);
    assert_eq!(body["checks"]["store"], "not_configured");
}

#[tokio::test]
async fn invented_http_methods_share_one_metrics_label() {
    // Arrange: every distinct method would otherwise be a new series, without bound.
    let app = spawn_app().await;
    for method in ["INVENTED1", "INVENTED2", "BREW"] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = app
            .request(method, "/api/user/me", ALICE)
            .send()
            .await
            .unwrap();
        assert_error(response, 405, "METHOD_NOT_ALLOWED").await;
    }

    // Act
    let text = app.metrics(ADMIN).text().await;

    // Assert
    let samples = parse_prometheus(&text);
    let other = samples.iter().find(|(name, labels, _)| {
        name == "http_requests_total"
            && labels.get("method").map(String::as_str) == Some("OTHER")
            && labels.get("route").map(String::as_str) == Some("/api/user/me")
    });
    assert_eq!(other.map(|(_, _, value)| *value), Some(3.0), "{text}");
    assert!(
        !text.contains("INVENTED") && !text.contains("BREW"),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_are_for_admins_and_use_route_templates() {
    // Arrange: user labels as e-mails, so the test can name alice's series.
    let app = spawn_app_with(Options {
        env: vec![("DBAPP_METRICS_USER_LABELS", "email")],
        ..Options::default()
    })
    .await;
    app.me(ALICE).send().await;
    app.me(ALICE).send().await;
    app.me("unknown-token").send().await;

    // Act
    let anonymous = app.get("/metrics", None).send().await.unwrap();
    let response = app.metrics(ADMIN).send().await;

    // Assert
    assert_error(anonymous, 401, "AUTH_MISSING").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    let samples = parse_prometheus(&text);
    let has = |name: &str, labels: &[(&str, &str)]| {
        samples.iter().any(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
    };
    assert!(
        has(
            "http_requests_total",
            &[
                ("route", "/api/user/me"),
                ("method", "GET"),
                ("status", "200")
            ]
        ),
        "{text}"
    );
    assert!(has(
        "auth_success_total",
        &[("route", "/api/user/me"), ("auth_method", "obo")]
    ));
    assert!(has(
        "auth_failure_total",
        &[("route", "/api/user/me"), ("reason", "AUTH_INVALID")]
    ));
    assert!(has(
        "auth_requests_by_user",
        &[("user_id", "alice@example.com"), ("route", "/api/user/me")]
    ));
    assert!(has(
        "auth_request_duration_seconds_bucket",
        &[("route", "/api/user/me")]
    ));
    assert!(has(
        "http_request_duration_seconds_bucket",
        &[("route", "/api/user/me")]
    ));
    assert!(has(
        "upstream_requests_total",
        &[("api", "scim"), ("operation", "me"), ("status", "200")]
    ));
    assert!(has("identity_cache_misses_total", &[]));
    assert!(has("identity_cache_hits_total", &[]), "{text}");
    assert!(!text.contains("dev-token"), "no token in metrics");
}

#[tokio::test]
async fn user_labels_are_salted_hashes_by_default() {
    // Arrange
    let app = spawn_app().await;
    app.me(ALICE).send().await;

    // Act
    let text = app.metrics(ADMIN).text().await;

    // Assert: alice's series exists under her hash; no address appears anywhere.
    let label = app.state.metrics.user_label("alice@example.com");
    assert!(
        text.contains(&format!(
            r#"auth_requests_by_user{{user_id="{label}",route="/api/user/me"}} 1"#
        )),
        "{text}"
    );
    assert!(!text.contains("@example.com"), "{text}");
}

#[tokio::test]
async fn upstream_calls_are_counted_under_their_operation_names() {
    // Arrange: calls to three services, one of them answered 404 upstream.
    let app = spawn_app().await;
    for path in [
        "/api/unity-catalog/catalogs",
        "/api/unity-catalog/catalogs/main/schemas/default/tables/customers",
        "/api/unity-catalog/catalogs/nope/schemas",
        "/api/model-serving/endpoints/echo",
    ] {
        app.get(path, Some(ALICE)).send().await.unwrap();
    }

    // Act
    let text = app.metrics(ADMIN).text().await;

    // Assert: the names each call gives itself, never a path with a catalog in it.
    let samples = parse_prometheus(&text);
    let count = |api: &str, operation: &str, status: &str| {
        samples
            .iter()
            .filter(|(n, l, _)| {
                n == "upstream_requests_total"
                    && l["api"] == api
                    && l["operation"] == operation
                    && l["status"] == status
            })
            .map(|(_, _, v)| *v)
            .sum::<f64>()
    };
    assert_eq!(
        count("unity_catalog", "list_catalogs", "200"),
        1.0,
        "{text}"
    );
    assert_eq!(count("unity_catalog", "get_table", "200"), 1.0, "{text}");
    assert_eq!(count("unity_catalog", "list_schemas", "404"), 1.0, "{text}");
    assert_eq!(
        count("serving", "get_serving_endpoint", "200"),
        1.0,
        "{text}"
    );
    assert!(
        !text.contains("customers") && !text.contains("nope"),
        "{text}"
    );
}

/// A small parser of the Prometheus text format: every sample line is `name{labels} value`,
/// `# TYPE`/`# HELP` lines name known types. Panics on a malformed line.
pub(crate) fn parse_prometheus(
    text: &str,
) -> Vec<(String, std::collections::BTreeMap<String, String>, f64)> {
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let kind = parts.next().unwrap();
            assert!(kind == "TYPE" || kind == "HELP", "{line}");
            if kind == "TYPE" {
                let t = parts.nth(1).unwrap();
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&t),
                    "{line}"
                );
            }
            continue;
        }
        let (head, value) = line.rsplit_once(' ').expect("name and value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line}"));
        let (name, labels) = match head.split_once('{') {
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("closing brace");
                let mut labels = std::collections::BTreeMap::new();
                for pair in split_labels(body) {
                    let (k, v) = pair.split_once('=').expect("label=value");
                    let v = v
                        .strip_prefix('"')
                        .and_then(|v| v.strip_suffix('"'))
                        .expect("quoted");
                    labels.insert(k.to_owned(), v.to_owned());
                }
                (name.to_owned(), labels)
            }
            None => (head.to_owned(), Default::default()),
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        samples.push((name, labels, value));
    }
    samples
}

fn split_labels(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in body.chars() {
        match c {
            '\\' if quoted && !escaped => {
                escaped = true;
                current.push(c);
                continue;
            }
            '"' if !escaped => quoted = !quoted,
            ',' if !quoted => {
                out.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        escaped = false;
        current.push(c);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[tokio::test]
async fn the_pool_gauge_is_reported_for_sqlite_and_database_url_postgres_stores() {
    // Arrange: the default SQLite store, and a Postgres store given as `DATABASE_URL`.
    let cluster = PrivateCluster::start(ClusterOptions::default())
        .await
        .expect("a local Postgres cluster");
    let sqlite = spawn_app().await;
    let emulator = dbapp_emulator::start_local(EmulatorConfig::default())
        .await
        .unwrap();
    let settings = settings_for(&emulator, vec![("DATABASE_URL", cluster.admin_url())]);
    let postgres = start_server(emulator, settings, None).await;

    for app in [&sqlite, &postgres] {
        // Act: one query through the pool, then a scrape.
        app.list_preferences(ALICE).send().await;
        let text = app.metrics(ADMIN).text().await;

        // Assert
        for state in ["idle", "in_use"] {
            let series = format!("db_pool_connections{{state=\"{state}\"}} ");
            assert!(text.contains(&series), "{series} in {text}");
        }
    }
    assert_eq!(postgres.state.store.as_ref().unwrap().backend(), "postgres");
    drop(postgres);
    cluster.stop().await.ok();
}
