//! Lakebase logins for real: the emulator's Lakebase front (TLS, only unexpired minted tokens)
//! before a private Postgres cluster, the real `WorkspaceTokenSource` minting through
//! `dbapp-databricks` over HTTP as the app's service principal, and the store under continuous
//! load while the tokens rotate every few seconds.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use dbapp_databricks::{AuthType, Client, Config, ConfigSettings};
use dbapp_emulator::EmulatorConfig;
use dbapp_emulator::postgres::{ClusterOptions, PrivateCluster};
use dbapp_store::lakebase::{
    self, LakebaseSettings, LakebaseToken, RefreshPolicy, SslMode, TokenError, TokenSource,
};
use dbapp_store::workspace::{CredentialTarget, WorkspaceTokenSource};
use dbapp_store::{NewUsageEvent, PoolSettings, Store, TimeWindow};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::helpers::user;

/// The real source — `dbapp-databricks` minting as `dbapp-sp` over OAuth M2M — recording every
/// token it hands out, to check afterwards which ones Postgres accepts.
#[derive(Debug)]
struct RecordingTokenSource {
    real: WorkspaceTokenSource,
    minted: std::sync::Mutex<Vec<LakebaseToken>>,
}

/// A client of the emulator at `base_url` whose app identity is `dbapp-sp` (OAuth M2M).
fn app_client(base_url: &str) -> Client {
    let mut settings = ConfigSettings::new(base_url, AuthType::OAuthM2m);
    settings.client_id = Some("dbapp-sp".into());
    settings.client_secret = Some(SecretString::from("dev-secret"));
    let config = Config::resolve(settings, &|_| None).expect("an M2M configuration");
    Client::new(config).expect("a workspace client")
}

impl RecordingTokenSource {
    fn new(base_url: &str) -> Self {
        Self {
            real: WorkspaceTokenSource::new(
                app_client(base_url),
                CredentialTarget::Instance("dev-lakebase".into()),
            ),
            minted: Default::default(),
        }
    }

    fn minted(&self) -> Vec<LakebaseToken> {
        self.minted.lock().unwrap().clone()
    }
}

#[async_trait]
impl TokenSource for RecordingTokenSource {
    async fn fetch_token(&self) -> Result<LakebaseToken, TokenError> {
        let token = self.real.fetch_token().await?;
        self.minted.lock().unwrap().push(token.clone());
        Ok(token)
    }
}

/// A login as `dbapp-sp` with `password` through the front at `front`, TLS required, outside any
/// pool.
async fn login(front: SocketAddr, password: &str) -> Result<(), sqlx::Error> {
    let conn = PgConnectOptions::new_without_pgpass()
        .host(&front.ip().to_string())
        .port(front.port())
        .username("dbapp-sp")
        .password(password)
        .database("databricks_postgres")
        .ssl_mode(PgSslMode::Require)
        .connect()
        .await?;
    sqlx::Connection::close(conn).await
}

fn is_login_refused(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.code().as_deref() == Some("28P01"))
}

/// How long the load runs, and the lifetime of minted tokens.
const LOAD: Duration = Duration::from_secs(20);
const TOKEN_TTL_SECS: u64 = 6;
const WRITERS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_tokens_under_continuous_writes_fail_no_operation() {
    // Arrange: the cluster, the emulator whose front takes minted tokens as passwords, the store
    let cluster = PrivateCluster::start(ClusterOptions::default())
        .await
        .expect("a private Postgres cluster starts from the machine's binaries");
    let emulator = dbapp_emulator::start_local(EmulatorConfig {
        postgres_admin_url: Some(cluster.admin_url()),
        db_token_ttl_secs: Some(TOKEN_TTL_SECS),
        ..EmulatorConfig::default()
    })
    .await
    .expect("the emulator starts");
    let source = Arc::new(RecordingTokenSource::new(emulator.base_url()));
    let front = emulator.lakebase_addr().expect("a Lakebase front");
    let mut settings = LakebaseSettings::new(front.ip().to_string());
    settings.port = front.port();
    settings.ssl_mode = SslMode::Require;
    settings.application_name = Some("dbapp-store-test".into());
    let pool = PoolSettings {
        max_connections: 4,
        acquire_timeout: Duration::from_secs(10),
        // Short, so that connections are replaced all the time and new logins happen
        // throughout, each with whatever token is current.
        max_lifetime: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(1),
    };
    let policy = RefreshPolicy {
        retry_interval: Duration::from_millis(500),
        metrics_interval: Duration::from_millis(500),
        ..RefreshPolicy::default()
    };
    let token_source: Arc<dyn TokenSource> = source.clone();
    let store = lakebase::connect(&settings, token_source, &pool, policy)
        .await
        .expect("the first token is minted");
    assert_eq!(store.pool().connect_options().get_username(), "dbapp-sp");
    store.migrate().await.expect("migrations apply as dbapp-sp");
    let refresher = Arc::clone(store.token_refresher().expect("a Lakebase store"));
    let started = Utc::now();

    // Act: writers that upsert and append usage events without pause, and a watcher that
    // notes which server processes (logins) serve the pool.
    let operations = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + LOAD;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            let operations = Arc::clone(&operations);
            tokio::spawn(async move {
                let me = user(&format!("writer-{w}@example.com"));
                let mut acknowledged = 0_i64;
                let mut failures = Vec::new();
                let mut n = 0_u64;
                while Instant::now() < deadline {
                    n += 1;
                    match store.upsert_preference(&me, "n", &json!(n)).await {
                        Ok(_) => {}
                        Err(e) => failures.push(format!("upsert: {e:?}")),
                    }
                    let event = NewUsageEvent {
                        event_type: "write".into(),
                        page_name: None,
                        element_id: None,
                        success: Some(true),
                        metadata: None,
                        timestamp: Utc::now(),
                    };
                    match store.insert_usage_events(&me, &[event]).await {
                        Ok(stored) => acknowledged += stored as i64,
                        Err(e) => failures.push(format!("insert: {e:?}")),
                    }
                    operations.fetch_add(2, Ordering::Relaxed);
                }
                (me, acknowledged, failures)
            })
        })
        .collect();
    let watcher = {
        let pool = store.pool().clone();
        tokio::spawn(async move {
            let mut logins = BTreeSet::new();
            let mut failures = Vec::new();
            while Instant::now() < deadline {
                match sqlx::query_as::<_, (i32, DateTime<Utc>)>(
                    "SELECT pid, backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()",
                )
                .fetch_one(&pool)
                .await
                {
                    Ok(login) => {
                        logins.insert(login);
                    }
                    Err(e) => failures.push(format!("watcher: {e:?}")),
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            (logins, failures)
        })
    };
    let mut failures = Vec::new();
    let mut acknowledged = Vec::new();
    for writer in writers {
        let (me, count, mut errors) = writer.await.unwrap();
        acknowledged.push((me, count));
        failures.append(&mut errors);
    }
    let (logins, mut watcher_failures) = watcher.await.unwrap();
    failures.append(&mut watcher_failures);

    // Assert: no operation failed, the token rotated several times (each token lived 6 s of a
    // 20 s run, so logins late in the run cannot have used the first ones), and new logins kept
    // happening after rotations.
    let operations = operations.load(Ordering::Relaxed);
    let refreshes = refresher.refreshes();
    let minted = source.minted();
    let distinct: BTreeSet<&str> = minted.iter().map(|t| t.token.expose_secret()).collect();
    let last_rotation_start = minted
        .iter()
        .rev()
        .nth(1)
        .map(|t| t.expires_at - chrono::Duration::seconds(TOKEN_TTL_SECS as i64))
        .expect("at least two tokens");
    let late_logins = logins
        .iter()
        .filter(|(_, start)| *start > last_rotation_start)
        .count();
    eprintln!(
        "rotation: {operations} operations by {WRITERS} writers in {LOAD:?}, {} failed; \
         {refreshes} refreshes ({} failed), {} distinct tokens, \
         {} distinct logins seen ({late_logins} after the last-but-one token was minted)",
        failures.len(),
        refresher.failures(),
        distinct.len(),
        logins.len(),
    );
    assert!(failures.is_empty(), "failed operations: {failures:#?}");
    assert!(refreshes >= 4, "only {refreshes} refreshes");
    assert_eq!(distinct.len(), minted.len(), "every mint gave a new token");
    assert!(logins.len() >= 4, "{logins:?}");
    assert!(
        late_logins >= 1,
        "new logins after the last rotations: {logins:?}"
    );
    let window = TimeWindow::new(started, Utc::now() + chrono::Duration::seconds(1)).unwrap();
    for (me, count) in &acknowledged {
        let stored = store.count_usage_events(me, window).await.unwrap();
        assert_eq!(stored, *count, "acknowledged writes of {me} are all stored");
    }

    // Assert: the front refuses the first token, long expired, and accepts the last one until
    // it expires.
    drop(store);
    let last = minted.last().unwrap().clone();
    let first = minted.first().unwrap().clone();
    let expired_first = login(front, first.token.expose_secret()).await;
    assert!(
        expired_first.as_ref().is_err_and(is_login_refused),
        "{expired_first:?}"
    );
    let before_expiry = login(front, last.token.expose_secret()).await;
    assert!(before_expiry.is_ok(), "{before_expiry:?}");
    emulator
        .expire_token(last.token.expose_secret())
        .await
        .expect("the emulator issued it");
    let expired = login(front, last.token.expose_secret()).await;
    assert!(expired.as_ref().is_err_and(is_login_refused), "{expired:?}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn an_autoscaling_branch_mints_through_its_read_write_endpoint() {
    // Arrange: LAKEBASE_PROJECT=dev and LAKEBASE_BRANCH=production.
    let emulator = dbapp_emulator::start_local(EmulatorConfig::default())
        .await
        .expect("the emulator starts");
    let target = CredentialTarget::from_env(|name| match name {
        "LAKEBASE_PROJECT" => Some("dev".to_owned()),
        "LAKEBASE_BRANCH" => Some("production".to_owned()),
        _ => None,
    })
    .unwrap()
    .expect("a target");
    let source = WorkspaceTokenSource::new(app_client(emulator.base_url()), target.clone());

    // Act
    let token = source.fetch_token().await.unwrap();

    // Assert: the branch's endpoints were listed, then the credential minted for the app.
    assert_eq!(
        target.to_string(),
        "the read-write endpoint of branch projects/dev/branches/production"
    );
    assert_eq!(
        lakebase::token_subject(token.token.expose_secret()).as_deref(),
        Some("dbapp-sp")
    );
    let calls: Vec<String> = emulator
        .requests("/api/2.0/postgres/")
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        calls,
        [
            "GET /api/2.0/postgres/projects/dev/branches/production/endpoints",
            "POST /api/2.0/postgres/credentials"
        ]
    );
    emulator.shutdown().await;
}
