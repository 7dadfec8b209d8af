//! Postgres stopped and restarted under load: every failure during the outage is one the server
//! answers with `DATABASE_UNAVAILABLE`, writes resume by themselves afterwards, and no
//! acknowledged write is lost.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use dbapp_emulator::postgres::{ClusterOptions, PrivateCluster};
use dbapp_store::postgres::PgStore;
use dbapp_store::{NewUsageEvent, PoolSettings, Store, TimeWindow};
use sqlx::{ConnectOptions, Connection, Executor};

use crate::helpers::user;

/// `pg_ctl`, found as the cluster module finds it.
fn pg_ctl() -> PathBuf {
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).join("pg_ctl"))
        .filter(|p| p.is_file());
    from_pg_config
        .or_else(|| {
            let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
                .ok()?
                .filter_map(Result::ok)
                .map(|e| e.path().join("bin/pg_ctl"))
                .filter(|p| p.is_file())
                .collect();
            found.sort();
            found.pop()
        })
        .expect("pg_ctl is installed")
}

/// Runs `pg_ctl <action>` on the cluster's data directory, keeping its port (its settings file
/// is only rewritten by `PrivateCluster::start`), as the `postgres` user when we are root.
fn control(cluster: &PrivateCluster, action: &str) {
    let home = cluster.data_dir().parent().expect("the cluster directory");
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    let mut command = if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(pg_ctl());
        command
    } else {
        Command::new(pg_ctl())
    };
    command
        .current_dir(home)
        .arg(action)
        .arg("-D")
        .arg(cluster.data_dir())
        .args(["-w", "-t", "60"]);
    if action == "start" {
        command.arg("-l").arg(home.join("postgres.log"));
    } else {
        command.args(["-m", "fast"]);
    }
    let output = command.output().expect("pg_ctl runs");
    assert!(output.status.success(), "pg_ctl {action}: {output:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_is_unavailable_then_recovers_without_losing_writes() {
    // Arrange
    let cluster = PrivateCluster::start(ClusterOptions::default())
        .await
        .expect("a private Postgres cluster starts");
    let mut admin = cluster.admin_connect_options().connect().await.unwrap();
    admin.execute("CREATE DATABASE outage").await.unwrap();
    admin.close().await.unwrap();
    let settings = PoolSettings {
        max_connections: 4,
        // Short, so that requests during the outage fail fast instead of queueing.
        acquire_timeout: Duration::from_secs(1),
        ..PoolSettings::default()
    };
    let store = PgStore::connect_lazy(
        cluster.admin_connect_options().database("outage"),
        &settings,
    );
    store.migrate().await.unwrap();
    let started = Utc::now();
    let restarted = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));

    // Act: writers append events without pause while the server stops and starts again
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let store = store.clone();
            let (restarted, stop) = (Arc::clone(&restarted), Arc::clone(&stop));
            tokio::spawn(async move {
                let me = user(&format!("writer-{w}@example.com"));
                let (mut acknowledged, mut unavailable, mut after_restart) = (0_i64, 0_i64, 0_i64);
                let mut unexpected = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let event = NewUsageEvent {
                        event_type: "write".into(),
                        page_name: None,
                        element_id: None,
                        success: None,
                        metadata: None,
                        timestamp: Utc::now(),
                    };
                    match store.insert_usage_events(&me, &[event]).await {
                        Ok(n) => {
                            acknowledged += n as i64;
                            if restarted.load(Ordering::SeqCst) {
                                after_restart += 1;
                            }
                        }
                        Err(e) if e.is_unavailable() => {
                            unavailable += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Err(e) => unexpected.push(format!("{e:?}")),
                    }
                }
                (me, acknowledged, unavailable, after_restart, unexpected)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::block_in_place(|| control(&cluster, "stop"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    tokio::task::block_in_place(|| control(&cluster, "start"));
    restarted.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::SeqCst);
    let mut results = Vec::new();
    for writer in writers {
        results.push(writer.await.unwrap());
    }

    // Assert
    let window = TimeWindow::new(started, Utc::now() + chrono::Duration::seconds(1)).unwrap();
    let mut totals = (0, 0, 0);
    for (me, acknowledged, unavailable, after_restart, unexpected) in &results {
        assert!(
            unexpected.is_empty(),
            "errors other than unavailable: {unexpected:#?}"
        );
        assert!(*after_restart > 0, "{me} wrote again after the restart");
        let stored = store.count_usage_events(me, window).await.unwrap();
        // A write whose commit reached the server just as it stopped may be stored without
        // having been acknowledged, never the other way round.
        assert!(
            stored >= *acknowledged && stored <= acknowledged + unavailable,
            "{me}: {stored} stored, {acknowledged} acknowledged"
        );
        totals = (
            totals.0 + acknowledged,
            totals.1 + unavailable,
            totals.2 + after_restart,
        );
    }
    assert!(totals.1 > 0, "the outage was noticed");
    eprintln!(
        "outage: {} writes acknowledged ({} after the restart), {} answered unavailable, none lost",
        totals.0, totals.2, totals.1
    );
}
