//! The processes a run starts — `dbapp emulate`, `dbapp serve`, the baseline server — and what
//! the harness reads from them: their URL, readiness, and memory from `/proc/<pid>/status`.
//!
//! Every child is started with `kill_on_drop`, its environment cleared (so the caller's
//! `DATABRICKS_*`, `PG*` or `RUST_LOG` cannot change what is measured), and stopped by its own
//! process id; nothing is ever stopped by name.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A child process of the harness.
#[derive(Debug)]
pub(crate) struct Proc {
    /// What it is, for messages (`dbapp serve (cache off)`).
    pub(crate) name: String,
    /// Its process id, for `/proc/<pid>/status`.
    pub(crate) pid: u32,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    /// Its stderr, kept for the crash report.
    pub(crate) stderr_path: PathBuf,
    child: Child,
}

/// Resident memory of a process, kB.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub(crate) struct Memory {
    /// `VmRSS`: resident now.
    pub(crate) rss_kb: u64,
    /// `VmHWM`: the most ever resident.
    pub(crate) hwm_kb: u64,
}

/// Reads `VmRSS` and `VmHWM` of `pid`.
pub(crate) fn memory(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line[name.len()..].split_whitespace().next()?.parse().ok()
    };
    Some(Memory {
        rss_kb: field("VmRSS:")?,
        hwm_kb: field("VmHWM:")?,
    })
}

/// A base command: `program args…` with a cleared environment (PATH kept, HOME pointed at
/// `home` so no `~/.databrickscfg` is read), stdout and stderr as given.
pub(crate) fn command(program: &Path, args: &[&str], home: &Path) -> Command {
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

impl Proc {
    /// Spawns `command`, waits for its stdout line starting with `prefix` and ending in
    /// `http://127.0.0.1:<port>` (`dbapp emulate`, the baseline server), and keeps stdout drained.
    pub(crate) async fn spawn_announced(
        name: &str,
        mut command: Command,
        prefix: &str,
        stderr_path: PathBuf,
    ) -> anyhow::Result<Self> {
        let stderr = std::fs::File::create(&stderr_path)?;
        command.stdout(Stdio::piped()).stderr(stderr);
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        let pid = child.id().context("no pid")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .with_context(|| format!("{name} did not announce itself within 30 s"))??
            .with_context(|| {
                format!(
                    "{name} exited before announcing itself: {}",
                    tail(&stderr_path)
                )
            })?;
        let url = line
            .strip_prefix(prefix)
            .with_context(|| format!("{name} printed `{line}`"))?
            .trim();
        let addr: SocketAddr = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .with_context(|| format!("{name} printed `{line}`"))?;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            name: name.to_owned(),
            pid,
            addr,
            stderr_path,
            child,
        })
    }

    /// Spawns `command`, which listens on `addr` once ready (`dbapp serve`); stdout (the JSON
    /// request log) is discarded, as a log shipper would take it away. Returns the process and
    /// the time from spawn to the first 200 on `ready_path`.
    pub(crate) async fn spawn_listening(
        name: &str,
        mut command: Command,
        addr: SocketAddr,
        ready_path: &str,
        stderr_path: PathBuf,
    ) -> anyhow::Result<(Self, Duration)> {
        let stderr = std::fs::File::create(&stderr_path)?;
        command.stdout(Stdio::null()).stderr(stderr);
        let started = Instant::now();
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        let pid = child.id().context("no pid")?;
        let mut proc = Self {
            name: name.to_owned(),
            pid,
            addr,
            stderr_path,
            child,
        };
        let ready = proc.wait_ready(ready_path, started).await?;
        Ok((proc, ready))
    }

    /// Polls `path` every millisecond until it answers 200; the time since `started`.
    pub(crate) async fn wait_ready(
        &mut self,
        path: &str,
        started: Instant,
    ) -> anyhow::Result<Duration> {
        let give_up = started + Duration::from_secs(30);
        loop {
            if get_status(self.addr, path).await == Some(200) {
                return Ok(started.elapsed());
            }
            self.check_alive()?;
            if Instant::now() > give_up {
                bail!("{} was not ready on {path} within 30 s", self.name);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Fails, with the end of its stderr, when the process has exited.
    pub(crate) fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} (pid {}) exited with {status}: {}",
                self.name,
                self.pid,
                tail(&self.stderr_path)
            );
        }
        Ok(())
    }

    /// Current memory.
    pub(crate) fn memory(&self) -> Memory {
        memory(self.pid).unwrap_or_default()
    }

    /// Stops the process (SIGKILL to its pid: nothing it holds must survive it) and reaps it.
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        let crashed = self.check_alive();
        self.child.start_kill().ok();
        self.child.wait().await.ok();
        crashed
    }
}

/// One GET on a fresh connection; the status, or `None` when nothing answered.
pub(crate) async fn get_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(connection);
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, addr.to_string())
        .body(Empty::<Bytes>::new())
        .ok()?;
    let response = sender.send_request(request).await.ok()?;
    let status = response.status().as_u16();
    response.into_body().collect().await.ok()?;
    Some(status)
}

/// A free port on 127.0.0.1 for a server that takes its port from the environment (it binds
/// 0.0.0.0 on it; the short race with other programs is acceptable for a benchmark).
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// The last lines of a log file, for error messages.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(5);
    format!("…{}", lines[start..].join(" | "))
}
