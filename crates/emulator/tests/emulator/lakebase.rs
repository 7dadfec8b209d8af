//! Lakebase: the credential endpoints, instances and endpoints over HTTP, and — through the
//! Postgres front, with a private cluster started for the test behind it — that minted credentials
//! are real logins with Lakebase's semantics (TLS only, any unexpired token of the role, not PATs,
//! expiry checked only at login), that branches are separate databases, and that trust auth on the
//! backend changes nothing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use dbapp_emulator::postgres::{ClusterOptions, PrivateCluster};
use dbapp_emulator::{EmulatorConfig, Fixture};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::{Connection, Executor};

use crate::support::{ALICE, BOB, TestEmulator, send, spawn, spawn_with, spawn_with_fixture};

const DATABASE_CREDENTIALS: &str = "/api/2.0/database/credentials";
const POSTGRES_CREDENTIALS: &str = "/api/2.0/postgres/credentials";
const ENDPOINT: &str = "projects/dev/branches/production/endpoints/primary";

/// The claims of a JWT-shaped token.
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON")
}

fn parse_time(value: &Value) -> DateTime<Utc> {
    let text = value.as_str().expect("a string");
    assert!(text.ends_with('Z'), "UTC with Z: {text}");
    DateTime::parse_from_rfc3339(text)
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

/// Asserts that `at` is `secs` from now, give or take the test's own run time.
fn assert_about(at: DateTime<Utc>, secs: i64) {
    let expected = Utc::now() + Duration::seconds(secs);
    let off = (at - expected).num_seconds().abs();
    assert!(off <= 5, "{at} is not about {secs}s from now ({off}s off)");
}

/// An access token of the service principal from the OAuth M2M flow, as an app would get it.
async fn m2m_token(te: &TestEmulator) -> String {
    let (status, body) = send(
        te.http
            .post(te.url("/oidc/v1/token"))
            .basic_auth("dbapp-sp", Some("dev-secret"))
            .form(&[("grant_type", "client_credentials"), ("scope", "all-apis")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().expect("token").to_owned()
}

/// A private cluster and an emulator that manages its logins.
async fn lakebase(edit: impl FnOnce(&mut Fixture)) -> (TestEmulator, PrivateCluster) {
    let cluster = PrivateCluster::start(ClusterOptions::default())
        .await
        .expect("private cluster starts");
    let mut fixture = Fixture::default();
    edit(&mut fixture);
    let te = spawn_with(EmulatorConfig {
        fixture,
        postgres_admin_url: Some(cluster.admin_url()),
        ..EmulatorConfig::default()
    })
    .await;
    (te, cluster)
}

/// Login options for the emulated Lakebase: its front, as a client is told to reach it.
fn login_options(te: &TestEmulator, user: &str, password: &str) -> PgConnectOptions {
    let front = te
        .handle
        .lakebase_addr()
        .expect("the emulator has a Lakebase front");
    PgConnectOptions::new()
        .host(&front.ip().to_string())
        .port(front.port())
        .username(user)
        .password(password)
        .database("databricks_postgres")
        .ssl_mode(PgSslMode::Require)
}

async fn login(te: &TestEmulator, user: &str, password: &str) -> Result<PgConnection, sqlx::Error> {
    PgConnection::connect_with(&login_options(te, user, password)).await
}

/// The SQLSTATE and message of a refused login.
fn refusal(result: Result<PgConnection, sqlx::Error>) -> (String, String) {
    match result {
        Ok(_) => panic!("the login was accepted"),
        Err(sqlx::Error::Database(e)) => (
            e.code().map(|c| c.into_owned()).unwrap_or_default(),
            e.message().to_owned(),
        ),
        Err(other) => panic!("not a database error: {other}"),
    }
}

/// The SQLSTATE of a refused login.
fn sql_state(result: Result<PgConnection, sqlx::Error>) -> String {
    match result {
        Ok(_) => panic!("the login was accepted"),
        Err(sqlx::Error::Database(e)) => e.code().map(|c| c.into_owned()).unwrap_or_default(),
        Err(other) => panic!("not a database error: {other}"),
    }
}

/// Postgres' `invalid_password`, which covers wrong and expired passwords alike.
const INVALID_PASSWORD: &str = "28P01";
/// Postgres' `invalid_authorization_specification`: no pg_hba.conf line admits the connection.
const INVALID_AUTHORIZATION: &str = "28000";
/// What the front says to a plain-TCP client, and to a bad password of `dbapp-sp`.
const INSECURE: &str = "connection is insecure (try using `sslmode=require`)";
const FAILED_FOR_SP: &str = "password authentication failed for user \"dbapp-sp\"";

async fn current_user(connection: &mut PgConnection) -> String {
    sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(connection)
        .await
        .expect("query")
}

async fn provisioned_credential(te: &TestEmulator, token: &str) -> String {
    let (status, body) = te
        .post(
            DATABASE_CREDENTIALS,
            token,
            json!({"instance_names": ["dev-lakebase"], "request_id": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["token"].as_str().expect("token").to_owned()
}

#[tokio::test]
async fn provisioned_credential_is_a_jwt_for_the_caller_with_an_rfc3339_expiry() {
    // Arrange
    let te = spawn().await;
    let request_id = uuid::Uuid::new_v4().to_string();

    // Act
    let (status, body) = te
        .post(
            DATABASE_CREDENTIALS,
            ALICE,
            json!({"instance_names": ["dev-lakebase"], "request_id": request_id}),
        )
        .await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["token"].as_str().expect("token");
    let claims = claims(token);
    assert_eq!(claims["sub"], "alice@example.com");
    assert_eq!(claims["aud"], "lakebase");
    let expiry = parse_time(&body["expiration_time"]);
    assert_about(expiry, 3600);
    assert_eq!(claims["exp"], expiry.timestamp());
}

#[tokio::test]
async fn provisioned_credential_needs_instance_names_or_claims() {
    // Arrange
    let te = spawn().await;
    let claims =
        json!([{"permission_set": "READ_ONLY", "resources": [{"table_name": "main.default.t"}]}]);

    // Act
    let (none_status, none_body) = te.post(DATABASE_CREDENTIALS, ALICE, json!({})).await;
    let (empty_status, _) = te
        .post(DATABASE_CREDENTIALS, ALICE, json!({"instance_names": []}))
        .await;
    let (claims_status, claims_body) = te
        .post(DATABASE_CREDENTIALS, ALICE, json!({"claims": claims}))
        .await;

    // Assert
    assert_eq!(none_status, StatusCode::BAD_REQUEST);
    assert_eq!(none_body["error_code"], "INVALID_PARAMETER_VALUE");
    assert_eq!(empty_status, StatusCode::BAD_REQUEST);
    assert_eq!(claims_status, StatusCode::OK, "{claims_body}");
}

#[tokio::test]
async fn provisioned_credential_for_an_unknown_instance_is_404() {
    // Arrange
    let te = spawn().await;

    // Act
    let (status, body) = te
        .post(
            DATABASE_CREDENTIALS,
            ALICE,
            json!({"instance_names": ["dev-lakebase", "nope"]}),
        )
        .await;

    // Assert
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error_code"], "RESOURCE_DOES_NOT_EXIST");
    assert!(
        body["message"].as_str().unwrap().contains("'nope'"),
        "{body}"
    );
}

#[tokio::test]
async fn credentials_need_a_bearer_token() {
    // Arrange
    let te = spawn().await;
    let body = json!({"instance_names": ["dev-lakebase"], "endpoint": ENDPOINT});

    // Act
    let provisioned = send(te.http.post(te.url(DATABASE_CREDENTIALS)).json(&body)).await;
    let autoscaling = send(te.http.post(te.url(POSTGRES_CREDENTIALS)).json(&body)).await;
    let bad_token = te.post(DATABASE_CREDENTIALS, "not-a-token", body).await;

    // Assert
    assert_eq!(provisioned.0, StatusCode::UNAUTHORIZED);
    assert_eq!(autoscaling.0, StatusCode::UNAUTHORIZED);
    assert_eq!(bad_token.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn autoscaling_credential_honours_ttl_and_expire_time() {
    // Arrange
    let te = spawn().await;
    let wanted = Utc::now() + Duration::seconds(1200);

    // Act
    let (ttl_status, ttl_body) = te
        .post(
            POSTGRES_CREDENTIALS,
            BOB,
            json!({"endpoint": ENDPOINT, "ttl": "600s"}),
        )
        .await;
    let (at_status, at_body) = te
        .post(
            POSTGRES_CREDENTIALS,
            BOB,
            json!({"endpoint": ENDPOINT, "expire_time": wanted.to_rfc3339()}),
        )
        .await;

    // Assert
    assert_eq!(ttl_status, StatusCode::OK, "{ttl_body}");
    assert_about(parse_time(&ttl_body["expire_time"]), 600);
    assert_eq!(
        claims(ttl_body["token"].as_str().unwrap())["sub"],
        "bob@example.com"
    );
    assert_eq!(at_status, StatusCode::OK, "{at_body}");
    let expiry = parse_time(&at_body["expire_time"]);
    assert!(
        (expiry - wanted).num_milliseconds().abs() < 1000,
        "{expiry} vs {wanted}"
    );
}

#[tokio::test]
async fn autoscaling_credential_refuses_lifetimes_outside_300_to_3600_seconds() {
    // Arrange
    let te = spawn().await;
    let soon = (Utc::now() + Duration::seconds(10)).to_rfc3339();
    let bodies = [
        json!({"endpoint": ENDPOINT, "ttl": "299s"}),
        json!({"endpoint": ENDPOINT, "ttl": "3601s"}),
        json!({"endpoint": ENDPOINT, "ttl": "an hour"}),
        json!({"endpoint": ENDPOINT, "expire_time": soon}),
        json!({"endpoint": ENDPOINT, "expire_time": "tomorrow"}),
        json!({"endpoint": ENDPOINT, "ttl": "600s", "expire_time": soon}),
    ];

    // Act
    let mut answers = Vec::new();
    for body in bodies {
        answers.push(te.post(POSTGRES_CREDENTIALS, ALICE, body).await);
    }

    // Assert
    for (status, body) in answers {
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE");
    }
}

#[tokio::test]
async fn autoscaling_credential_without_a_lifetime_lives_db_token_ttl() {
    // Arrange
    let te = spawn_with(EmulatorConfig {
        db_token_ttl_secs: Some(5),
        ..EmulatorConfig::default()
    })
    .await;

    // Act
    let (status, body) = te
        .post(POSTGRES_CREDENTIALS, ALICE, json!({"endpoint": ENDPOINT}))
        .await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_about(parse_time(&body["expire_time"]), 5);
}

#[tokio::test]
async fn autoscaling_credential_for_a_missing_unknown_or_malformed_endpoint() {
    // Arrange
    let te = spawn().await;

    // Act
    let (missing, _) = te
        .post(POSTGRES_CREDENTIALS, ALICE, json!({"ttl": "600s"}))
        .await;
    let (unknown, unknown_body) = te
        .post(
            POSTGRES_CREDENTIALS,
            ALICE,
            json!({"endpoint": "projects/dev/branches/production/endpoints/nope"}),
        )
        .await;
    let (malformed, _) = te
        .post(POSTGRES_CREDENTIALS, ALICE, json!({"endpoint": "primary"}))
        .await;

    // Assert
    assert_eq!(missing, StatusCode::BAD_REQUEST);
    assert_eq!(unknown, StatusCode::NOT_FOUND);
    assert_eq!(unknown_body["error_code"], "NOT_FOUND");
    assert_eq!(malformed, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn instance_get_describes_the_fixture_instance_and_404s_unknown_ones() {
    // Arrange
    let te = spawn().await;

    // Act
    let (status, body) = te
        .get("/api/2.0/database/instances/dev-lakebase", BOB)
        .await;
    let (missing, missing_body) = te.get("/api/2.0/database/instances/nope", BOB).await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "dev-lakebase");
    assert_eq!(body["uid"], "8a4d2c1e-0000-4000-8000-00000000beef");
    assert_eq!(body["state"], "AVAILABLE");
    assert_eq!(
        body["read_write_dns"],
        "instance-8a4d2c1e.database.cloud.databricks.com"
    );
    assert_eq!(body["capacity"], "CU_1");
    assert_eq!(body["effective_capacity"], "CU_1");
    assert_eq!(body["stopped"], false);
    assert_eq!(body["creator"], "admin@example.com");
    assert_eq!(missing, StatusCode::NOT_FOUND);
    assert_eq!(missing_body["error_code"], "RESOURCE_DOES_NOT_EXIST");
}

#[tokio::test]
async fn instances_are_listed_in_pages() {
    // Arrange
    let te = spawn_with_fixture(|f| {
        let template = f.database_instances[0].clone();
        for i in 1..=3 {
            let mut instance = template.clone();
            instance.name = format!("extra-{i}");
            instance.uid = format!("uid-{i}");
            f.database_instances.push(instance);
        }
    })
    .await;
    let path = "/api/2.0/database/instances";

    // Act
    let (status, first) = te.get(&format!("{path}?page_size=3"), ALICE).await;
    let token = first["next_page_token"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let (_, second) = te
        .get(&format!("{path}?page_size=3&page_token={token}"), ALICE)
        .await;
    let (_, all) = te.get(path, ALICE).await;
    let (negative, _) = te.get(&format!("{path}?page_size=-1"), ALICE).await;
    let (garbage, _) = te.get(&format!("{path}?page_token=garbage"), ALICE).await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{first}");
    let names = |body: &Value| -> Vec<String> {
        body["database_instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&first), ["dev-lakebase", "extra-1", "extra-2"]);
    assert_eq!(names(&second), ["extra-3"]);
    assert!(second.get("next_page_token").is_none(), "{second}");
    assert_eq!(names(&all).len(), 4);
    assert!(all.get("next_page_token").is_none());
    assert_eq!(negative, StatusCode::BAD_REQUEST);
    assert_eq!(garbage, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn endpoint_get_reports_state_and_hosts_and_404s_unknown_ones() {
    // Arrange
    let te = spawn().await;

    // Act
    let (status, body) = te
        .get(&format!("/api/2.0/postgres/{ENDPOINT}"), ALICE)
        .await;
    let (missing, missing_body) = te
        .get(
            "/api/2.0/postgres/projects/dev/branches/production/endpoints/nope",
            ALICE,
        )
        .await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], ENDPOINT);
    assert_eq!(body["status"]["current_state"], "ACTIVE");
    assert_eq!(
        body["status"]["hosts"]["host"],
        "ep-primary.database.us-west-2.cloud.databricks.com"
    );
    assert!(body["status"]["hosts"]["read_write_pooled_host"].is_string());
    assert!(
        body["status"]["autoscaling_limit_min_cu"].as_f64().unwrap()
            <= body["status"]["autoscaling_limit_max_cu"].as_f64().unwrap()
    );
    assert_eq!(missing, StatusCode::NOT_FOUND);
    assert_eq!(missing_body["error_code"], "NOT_FOUND");
}

#[tokio::test]
async fn emulator_start_fails_clearly_when_the_admin_url_does_not_connect() {
    // Arrange
    let config = EmulatorConfig {
        postgres_admin_url: Some("postgres://admin:hunter2secret@127.0.0.1:1/postgres".into()),
        ..EmulatorConfig::default()
    };

    // Act
    let result = dbapp_emulator::start_local(config).await;

    // Assert
    let message = result.expect_err("no server on port 1").to_string();
    assert!(
        message.contains("cannot connect to the Postgres admin URL"),
        "{message}"
    );
    assert!(!message.contains("hunter2secret"), "{message}");
}

#[tokio::test]
async fn service_principal_logs_in_with_a_minted_credential_and_can_create_tables() {
    // Arrange
    let (te, _cluster) = lakebase(|_| {}).await;
    let access_token = m2m_token(&te).await;

    // Act
    let credential = provisioned_credential(&te, &access_token).await;
    let mut connection = login(&te, "dbapp-sp", &credential)
        .await
        .expect("the minted credential logs in");
    let user = current_user(&mut connection).await;
    connection
        .execute("CREATE TABLE public.notes (id bigint PRIMARY KEY, body text)")
        .await
        .expect("CREATE TABLE in public");
    connection
        .execute("INSERT INTO public.notes VALUES (1, 'hello')")
        .await
        .expect("INSERT");
    let (_, instance) = te
        .get("/api/2.0/database/instances/dev-lakebase", &access_token)
        .await;

    // Assert
    assert_eq!(user, "dbapp-sp");
    assert_eq!(instance["read_write_dns"], "127.0.0.1");
}

#[tokio::test]
async fn the_front_refuses_pats_plain_tcp_and_other_principals_credentials() {
    // Arrange
    let (te, _cluster) = lakebase(|_| {}).await;
    let credential = provisioned_credential(
        &te,
        &te.handle
            .mint_token("dbapp-sp", std::time::Duration::from_secs(3600))
            .unwrap(),
    )
    .await;
    let alices = provisioned_credential(&te, ALICE).await;

    // Act
    let pat = login(&te, "dbapp-sp", "dapi0123456789abcdef0123456789abcdef").await;
    let plain = PgConnection::connect_with(
        &login_options(&te, "dbapp-sp", &credential).ssl_mode(PgSslMode::Disable),
    )
    .await;
    let wrong_role = login(&te, "dbapp-sp", &alices).await;
    let good = login(&te, "dbapp-sp", &credential).await;

    // Assert
    assert_eq!(
        refusal(pat),
        (INVALID_PASSWORD.into(), FAILED_FOR_SP.into())
    );
    assert_eq!(
        refusal(plain),
        (INVALID_AUTHORIZATION.into(), INSECURE.into())
    );
    assert_eq!(
        refusal(wrong_role),
        (INVALID_PASSWORD.into(), FAILED_FOR_SP.into())
    );
    assert!(good.is_ok(), "{:?}", good.err());
}

#[tokio::test]
async fn an_expired_credential_is_refused_at_login_but_open_connections_keep_working() {
    // Arrange
    let (te, _cluster) = lakebase(|_| {}).await;
    let credential = provisioned_credential(
        &te,
        &te.handle
            .mint_token("dbapp-sp", std::time::Duration::from_secs(3600))
            .unwrap(),
    )
    .await;
    let mut open = login(&te, "dbapp-sp", &credential).await.expect("login");

    // Act
    let expired = te.handle.expire_token(&credential).await;
    let new_login = login(&te, "dbapp-sp", &credential).await;
    let still_open = current_user(&mut open).await;

    // Assert
    assert!(expired.is_ok(), "{expired:?}");
    assert_eq!(sql_state(new_login), INVALID_PASSWORD);
    assert_eq!(still_open, "dbapp-sp");
}

#[tokio::test]
async fn every_unexpired_credential_of_a_role_logs_in_not_only_the_newest() {
    // Arrange: a client that mints during a login (node `pg` with a password callback) holds an
    // older credential while a newer one exists; Lakebase takes both.
    let (te, _cluster) = lakebase(|_| {}).await;
    let sp = te
        .handle
        .mint_token("dbapp-sp", std::time::Duration::from_secs(3600))
        .unwrap();
    let older = provisioned_credential(&te, &sp).await;
    let workspace_token = te
        .handle
        .mint_token("dbapp-sp", std::time::Duration::from_secs(3600))
        .unwrap();

    // Act
    let newer = provisioned_credential(&te, &sp).await;
    let with_older = login(&te, "dbapp-sp", &older).await;
    let with_newer = login(&te, "dbapp-sp", &newer).await;
    let with_workspace_token = login(&te, "dbapp-sp", &workspace_token).await;

    // Assert
    assert_ne!(older, newer);
    for (which, result) in [
        ("older", with_older),
        ("newer", with_newer),
        ("workspace OAuth", with_workspace_token),
    ] {
        let mut connection = result.unwrap_or_else(|e| panic!("the {which} token: {e}"));
        assert_eq!(current_user(&mut connection).await, "dbapp-sp");
    }
}

#[tokio::test]
async fn a_backend_with_trust_auth_lets_nothing_through_that_the_front_refuses() {
    // Arrange: the private cluster switched to trust auth for TCP, as a developer's own server
    // named by --postgres-admin-url often is.
    let (te, cluster) = lakebase(|_| {}).await;
    let hba = cluster.data_dir().join("pg_hba.conf");
    let trusting = std::fs::read_to_string(&hba)
        .unwrap()
        .replace("scram-sha-256", "trust");
    std::fs::write(&hba, trusting).unwrap();
    let mut admin = PgConnection::connect_with(&cluster.admin_connect_options())
        .await
        .unwrap();
    admin.execute("SELECT pg_reload_conf()").await.unwrap();
    let credential = provisioned_credential(&te, ALICE).await;
    let mut direct = PgConnection::connect_with(
        &cluster
            .admin_connect_options()
            .username("alice@example.com")
            .password("x")
            .database("databricks_postgres"),
    )
    .await
    .expect("the backend itself now trusts anyone");

    // Act
    let anything = login(&te, "alice@example.com", "x").await;
    let pat = login(&te, "alice@example.com", ALICE).await;
    let good = login(&te, "alice@example.com", &credential).await;

    // Assert
    assert_eq!(current_user(&mut direct).await, "alice@example.com");
    assert_eq!(refusal(anything).0, INVALID_PASSWORD);
    assert_eq!(refusal(pat).0, INVALID_PASSWORD);
    let mut good = good.expect("a minted credential logs in through a trusting backend too");
    assert_eq!(current_user(&mut good).await, "alice@example.com");
}

#[tokio::test]
async fn autoscaling_branches_are_separate_databases_and_a_purge_drops_one() {
    // Arrange: a second branch of the fixture project, and a credential for each branch.
    let (te, cluster) = lakebase(|_| {}).await;
    let (status, created) = te
        .post(
            "/api/2.0/postgres/projects/dev/branches?branch_id=feature",
            ALICE,
            json!({"spec": {"source_branch": "projects/dev/branches/production"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let (status, created) = te
        .post(
            "/api/2.0/postgres/projects/dev/branches/feature/endpoints?endpoint_id=rw",
            ALICE,
            json!({"spec": {"endpoint_type": "ENDPOINT_TYPE_READ_WRITE"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let credential = |endpoint: &'static str| {
        let te = &te;
        async move {
            let (_, body) = te
                .post(POSTGRES_CREDENTIALS, ALICE, json!({"endpoint": endpoint}))
                .await;
            body["token"].as_str().expect("token").to_owned()
        }
    };
    let production = credential(ENDPOINT).await;
    let feature = credential("projects/dev/branches/feature/endpoints/rw").await;
    let mut on_production = login(&te, "alice@example.com", &production).await.unwrap();
    on_production
        .execute("CREATE TABLE only_in_production (id int)")
        .await
        .unwrap();

    // Act
    let mut on_feature = login(&te, "alice@example.com", &feature).await.unwrap();
    let visible: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('only_in_production')::text")
            .fetch_one(&mut on_feature)
            .await
            .unwrap();
    let feature_database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut on_feature)
        .await
        .unwrap();
    drop(on_feature);
    let (purged, _) = send(te.request(
        Method::DELETE,
        "/api/2.0/postgres/projects/dev/branches/feature?purge=true",
        ALICE,
    ))
    .await;
    let mut admin = PgConnection::connect_with(&cluster.admin_connect_options())
        .await
        .unwrap();
    let still_there: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&feature_database)
            .fetch_one(&mut admin)
            .await
            .unwrap();

    // Assert
    assert_eq!(
        visible, None,
        "a branch does not see another branch's tables"
    );
    assert!(
        feature_database.starts_with("lakebase_branch_dev_feature_"),
        "{feature_database}"
    );
    assert_eq!(purged, StatusCode::OK);
    assert!(!still_there, "the purged branch's database is dropped");
}

#[tokio::test]
async fn alice_logs_in_as_her_own_role_with_an_autoscaling_credential() {
    // Arrange
    let (te, _cluster) = lakebase(|_| {}).await;
    let (_, endpoint) = te
        .get(&format!("/api/2.0/postgres/{ENDPOINT}"), ALICE)
        .await;
    let (_, created) = te
        .post(
            "/api/2.0/postgres/projects?project_id=mine",
            ALICE,
            json!({}),
        )
        .await;
    let (_, listed) = te
        .get(
            "/api/2.0/postgres/projects/mine/branches/production/endpoints",
            ALICE,
        )
        .await;

    // Act
    let (status, body) = te
        .post(
            POSTGRES_CREDENTIALS,
            ALICE,
            json!({"endpoint": ENDPOINT, "ttl": "900s"}),
        )
        .await;
    let credential = body["token"].as_str().expect("token");
    let mut connection = login(&te, "alice@example.com", credential)
        .await
        .expect("alice logs in");

    // Assert
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(endpoint["status"]["hosts"]["host"], "127.0.0.1");
    assert_eq!(created["done"], true, "{created}");
    // Endpoints created through the API point at the front too.
    assert_eq!(
        listed["endpoints"][0]["status"]["hosts"]["host"],
        "127.0.0.1"
    );
    assert_eq!(current_user(&mut connection).await, "alice@example.com");
}

#[tokio::test]
async fn a_credential_whose_login_cannot_be_set_is_never_handed_out() {
    // Arrange: a principal named like the cluster's superuser, and one whose name is too long
    // for a Postgres role.
    let long_name = format!("{}@example.com", "x".repeat(60));
    let (te, cluster) = lakebase(|f| {
        let mut superuser = f.service_principals[0].clone();
        superuser.application_id = "postgres".into();
        superuser.tokens = vec!["token-of-postgres".into()];
        f.service_principals.push(superuser);
        let mut long = f.users[0].clone();
        long.user_name = long_name.clone();
        long.tokens = vec!["token-of-long".into()];
        f.users.push(long);
    })
    .await;

    // Act
    let (superuser_status, superuser_body) = te
        .post(
            DATABASE_CREDENTIALS,
            "token-of-postgres",
            json!({"instance_names": ["dev-lakebase"]}),
        )
        .await;
    let (long_status, long_body) = te
        .post(
            DATABASE_CREDENTIALS,
            "token-of-long",
            json!({"instance_names": ["dev-lakebase"]}),
        )
        .await;
    let admin = PgConnection::connect_with(&cluster.admin_connect_options()).await;

    // Assert
    for (status, body) in [(superuser_status, superuser_body), (long_status, long_body)] {
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
        assert_eq!(body["error_code"], "INTERNAL_ERROR");
        assert!(body.get("token").is_none(), "{body}");
    }
    assert!(
        admin.is_ok(),
        "the superuser password is untouched: {:?}",
        admin.err()
    );
}

#[tokio::test]
async fn private_cluster_reuses_an_initialised_directory() {
    // Arrange
    let dir = tempfile::tempdir().expect("temp dir");
    let options = ClusterOptions {
        dir: Some(dir.path().join("lakebase")),
        ..ClusterOptions::default()
    };
    let first = PrivateCluster::start(options.clone())
        .await
        .expect("first start");
    let password = first.superuser_password().clone();
    let mut admin = PgConnection::connect_with(&first.admin_connect_options())
        .await
        .expect("admin login");
    admin
        .execute("CREATE TABLE kept (id int)")
        .await
        .expect("create");
    drop(admin);
    first.stop().await.expect("stop");

    // Act
    let second = PrivateCluster::start(options).await.expect("second start");
    let mut admin = PgConnection::connect_with(&second.admin_connect_options())
        .await
        .expect("admin login after restart");
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM kept")
        .fetch_one(&mut admin)
        .await
        .expect("the table survived");
    let plain =
        PgConnection::connect_with(&second.admin_connect_options().ssl_mode(PgSslMode::Disable))
            .await;

    // Assert
    assert_eq!(second.superuser_password(), &password);
    assert_eq!(kept, 0);
    assert_eq!(sql_state(plain), INVALID_AUTHORIZATION);
    assert!(!format!("{second:?}").contains(password.expose()));
}
