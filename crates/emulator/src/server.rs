//! The accept loop: HTTP/1.1 and HTTP/2 cleartext on one listener, and the ability to drop a
//! connection without answering; with a Postgres backend, also the Lakebase front's listener
//! (served by `pgfront`).
//!
//! `axum::serve` cannot drop a connection on purpose (its service is infallible), so connections
//! are served with hyper-util directly: a response marked [`DropConnection`] turns into a service
//! error, and hyper then closes the socket without writing anything, which is what a client sees
//! when a proxy or a server dies mid-request.

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;

use crate::EmulatorConfig;
use crate::engine::{Engine, EngineError};
use crate::faults::DropConnection;
use crate::fixture::FixtureError;
use crate::lakebase::{LakebaseAdmin, LakebaseError};
use crate::pgfront::{self, FrontTls};
use crate::runtime::{Runtime, RuntimeConfig};
use crate::state::Emulator;

/// Why an emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listener could not be bound or inspected.
    #[error("cannot listen: {0}")]
    Bind(#[source] std::io::Error),
    /// The fixture is inconsistent.
    #[error(transparent)]
    Fixture(#[from] FixtureError),
    /// The Postgres admin connection failed.
    #[error(transparent)]
    Lakebase(#[from] LakebaseError),
    /// The Lakebase front could not listen or make its TLS certificate.
    #[error("cannot start the Lakebase front: {0}")]
    LakebaseFront(String),
    /// The fixture tables could not be loaded into the SQL engine.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The apps runtime could not make its temporary directory.
    #[error("cannot prepare the apps runtime: {0}")]
    AppsRuntime(#[source] std::io::Error),
}

/// A running emulator. Dropping the handle stops it.
///
/// Besides its address, the handle steers the emulator in process: the typed control methods
/// (faults, tokens, settings, the request log) live in `control`, next to the HTTP routes that
/// share their implementation.
#[derive(Debug)]
pub struct EmulatorHandle {
    base_url: String,
    /// The state the server runs on, shared with it: control methods act on it directly.
    pub(crate) emulator: Emulator,
    addr: SocketAddr,
    stop: watch::Sender<()>,
    task: JoinHandle<()>,
    /// The Lakebase front's accept loop, when there is a Postgres backend.
    front: Option<JoinHandle<()>>,
}

impl EmulatorHandle {
    /// The URL to use as `DATABRICKS_HOST`, e.g. `http://127.0.0.1:40123`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the emulated Lakebase's Postgres front listens, when the emulator has a Postgres
    /// backend (`postgres_admin_url`): `PGHOST` and `PGPORT` for clients.
    pub fn lakebase_addr(&self) -> Option<SocketAddr> {
        self.emulator.lakebase.as_ref().map(|l| l.front())
    }

    /// Whether the emulator runs deployed apps (`EmulatorConfig::run_apps`).
    pub fn runs_apps(&self) -> bool {
        self.emulator.runtime().is_some()
    }

    /// Stops accepting, closes every connection and waits for the accept loops to end; with
    /// `run_apps`, first stops every app's processes (each within its grace period) and removes
    /// their copied source code.
    pub async fn shutdown(self) {
        if let Some(runtime) = self.emulator.runtime() {
            runtime.shutdown().await;
        }
        let Self {
            stop, task, front, ..
        } = self;
        drop(stop);
        // The loops only end by our signal; a join error would mean one panicked, which the
        // caller cannot act on during shutdown.
        let _ = task.await;
        if let Some(front) = front {
            let _ = front.await;
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("connection dropped by an injected fault")]
struct ConnectionDropped;

pub(crate) async fn start(
    listener: TcpListener,
    config: EmulatorConfig,
) -> Result<EmulatorHandle, StartError> {
    let EmulatorConfig {
        mut fixture,
        postgres_admin_url,
        lakebase_listen,
        db_token_ttl_secs,
        run_apps,
        apps_stop_grace,
        apps_proxy_timeout,
        apps_startup_timeout,
    } = config;
    fixture.validate()?;
    if let Some(ttl) = db_token_ttl_secs {
        fixture.settings.db_token_ttl_secs = ttl;
    }
    let addr = listener.local_addr().map_err(StartError::Bind)?;
    let base_url = format!("http://{addr}");
    let (lakebase, front_listener) = match postgres_admin_url {
        Some(url) => {
            let listen = lakebase_listen.unwrap_or_else(pgfront::default_listen);
            let listener = TcpListener::bind(listen).await.map_err(|e| {
                StartError::LakebaseFront(format!("cannot listen on {listen}: {e}"))
            })?;
            let front = listener.local_addr().map_err(StartError::Bind)?;
            let tls = FrontTls::new(&front.ip().to_string()).map_err(StartError::LakebaseFront)?;
            let admin = LakebaseAdmin::connect(&url, front, tls.certificate_pem.clone()).await?;
            (Some(admin), Some((listener, tls)))
        }
        None => (None, None),
    };
    let engine = Engine::load(&fixture)?;
    let emulator = Emulator::new(fixture, engine, base_url.clone(), lakebase);
    if run_apps {
        let runtime = Runtime::new(RuntimeConfig {
            stop_grace: apps_stop_grace,
            proxy_timeout: apps_proxy_timeout,
            startup_timeout: apps_startup_timeout,
        })
        .map_err(StartError::AppsRuntime)?;
        // Only this start sets it, so it is empty.
        let _ = emulator.runtime.set(runtime);
    }
    let mut app = crate::routes::router(emulator.clone());
    // On loopback only local clients are meant to reach us, so a request naming another host
    // is a DNS-rebound web page (`host`); bound elsewhere, other names are the point.
    if addr.ip().to_canonical().is_loopback() {
        app = app.layer(axum::middleware::from_fn(crate::host::refuse_foreign_host));
    }
    let (stop, stopped) = watch::channel(());
    let front = front_listener.map(|(listener, tls)| {
        tokio::spawn(pgfront::serve(
            listener,
            emulator.clone(),
            tls,
            stopped.clone(),
        ))
    });
    let task = tokio::spawn(accept_loop(listener, app, stopped));
    tracing::info!(event = "emulator.started", url = %base_url);
    Ok(EmulatorHandle {
        base_url,
        emulator,
        addr,
        stop,
        task,
        front,
    })
}

async fn accept_loop(listener: TcpListener, app: axum::Router, mut stopped: watch::Receiver<()>) {
    // Connection tasks live in the set, so they are aborted when the loop ends.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of file descriptors or similar: back off instead of spinning.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                // Latency matters more than packet count for small JSON answers.
                let _ = stream.set_nodelay(true);
                connections.spawn(serve_connection(stream, app.clone()));
            }
            _ = stopped.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(stream: tokio::net::TcpStream, app: axum::Router) {
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let app = app.clone();
        async move {
            let response = app
                .oneshot(request.map(Body::new))
                .await
                .unwrap_or_else(|never: Infallible| match never {});
            if response.extensions().get::<DropConnection>().is_some() {
                return Err(ConnectionDropped);
            }
            Ok(response)
        }
    });
    // Errors here are client disconnects or injected drops: nothing to report.
    let _ = Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), service)
        .await;
}
