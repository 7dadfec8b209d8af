//! The load generator: a fixed number of HTTP/1.1 connections, each a hyper client connection
//! with exactly one request in flight, for a fixed time; every response's latency is recorded.
//!
//! hyper's connection-level client is used rather than reqwest because the generator shares two
//! cores with the processes it measures: the less it spends per request, the less it distorts.
//! Closed-loop load (a new request as soon as the previous answer is read) makes throughput and
//! latency two views of one figure (`latency ≈ connections / throughput`), so a ratio of either
//! between a target and its baseline says the same thing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::Serialize;

/// Builds the `n`th request of connection `connection`.
pub(crate) type MakeRequest = Arc<dyn Fn(usize, u64) -> Request<Full<Bytes>> + Send + Sync>;

/// One load: where, how many connections, how long, which requests.
#[derive(Clone)]
pub(crate) struct LoadSpec {
    /// The server under load.
    pub(crate) addr: SocketAddr,
    /// Concurrent connections.
    pub(crate) connections: usize,
    /// Measured time.
    pub(crate) duration: Duration,
    /// The requests.
    pub(crate) make: MakeRequest,
    /// `(run, pause)`: every connection stops sending for `pause` after each `run`, all at the
    /// same moments, so the server's database connections go idle (see the rotation scenario).
    pub(crate) bursts: Option<(Duration, Duration)>,
    /// When a response's latency is taken.
    pub(crate) latency_to: LatencyTo,
    /// What a 2xx body must end with to count as a success: a stream that answers `200` and
    /// then reports an error in its last event (the Genie ask route's `event: error`) is a
    /// failure, not a fast answer.
    pub(crate) body_ends_with: Option<&'static [u8]>,
}

/// When a response's latency is taken; the body is read to its end either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum LatencyTo {
    /// The whole body has arrived.
    #[default]
    WholeBody,
    /// The first piece of the body has arrived: for a stream, its first event (time to first
    /// token).
    FirstFrame,
}

impl std::fmt::Debug for LoadSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadSpec")
            .field("addr", &self.addr)
            .field("connections", &self.connections)
            .field("duration", &self.duration)
            .field("bursts", &self.bursts)
            .finish_non_exhaustive()
    }
}

/// What a load measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LoadResult {
    /// Responses read (any status).
    pub(crate) responses: u64,
    /// Non-2xx responses plus transport failures.
    pub(crate) errors: u64,
    /// Responses per second over the measured time.
    pub(crate) rps: f64,
    /// Latency percentiles, milliseconds.
    pub(crate) p50_ms: f64,
    /// 95th percentile, ms.
    pub(crate) p95_ms: f64,
    /// 99th percentile, ms.
    pub(crate) p99_ms: f64,
    /// Slowest response, ms.
    pub(crate) max_ms: f64,
    /// The first few errors, for diagnosis.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) error_samples: Vec<String>,
}

/// Per-connection tallies, merged at the end.
#[derive(Default)]
struct ConnStats {
    latencies_us: Vec<u32>,
    errors: u64,
    samples: Vec<String>,
}

impl ConnStats {
    fn error(&mut self, what: String) {
        self.errors += 1;
        if self.samples.len() < 3 {
            self.samples.push(what);
        }
    }
}

/// What one or more loads recorded: every latency, the errors, and the time measured.
#[derive(Debug, Default)]
pub(crate) struct Recording {
    latencies_us: Vec<u32>,
    errors: u64,
    samples: Vec<String>,
    elapsed: Duration,
}

impl Recording {
    /// Adds another load's recording (of the same target) to this one.
    pub(crate) fn merge(&mut self, other: Recording) {
        self.latencies_us.extend_from_slice(&other.latencies_us);
        self.errors += other.errors;
        for sample in other.samples {
            if self.samples.len() < 5 && !self.samples.contains(&sample) {
                self.samples.push(sample);
            }
        }
        self.elapsed += other.elapsed;
    }

    /// A recording of timed operations other than HTTP requests, none failed: one latency per
    /// operation, `elapsed` in all.
    pub(crate) fn of_timings(latencies: &[Duration], elapsed: Duration) -> Self {
        Self::of_operations(latencies, Vec::new(), elapsed)
    }

    /// A recording of timed operations made of several requests each (a client's poll loop):
    /// one latency per operation that succeeded, the failures as their messages (the first few
    /// are kept as samples), `elapsed` in all.
    pub(crate) fn of_operations(
        latencies: &[Duration],
        failures: Vec<String>,
        elapsed: Duration,
    ) -> Self {
        Self {
            latencies_us: latencies
                .iter()
                .map(|d| u32::try_from(d.as_micros()).unwrap_or(u32::MAX))
                .collect(),
            errors: failures.len() as u64,
            samples: failures.into_iter().take(3).collect(),
            elapsed,
        }
    }

    /// Throughput and latency percentiles over everything recorded.
    pub(crate) fn result(mut self) -> LoadResult {
        let latencies = &mut self.latencies_us;
        latencies.sort_unstable();
        let pct = |p: f64| -> f64 {
            if latencies.is_empty() {
                return 0.0;
            }
            let rank = ((p / 100.0) * latencies.len() as f64).ceil() as usize;
            f64::from(latencies[rank.clamp(1, latencies.len()) - 1]) / 1000.0
        };
        LoadResult {
            responses: latencies.len() as u64,
            errors: self.errors,
            rps: latencies.len() as f64 / self.elapsed.as_secs_f64(),
            p50_ms: pct(50.0),
            p95_ms: pct(95.0),
            p99_ms: pct(99.0),
            max_ms: pct(100.0),
            error_samples: self.samples,
        }
    }
}

/// Runs `spec` and returns what it recorded.
pub(crate) async fn record(spec: &LoadSpec) -> Recording {
    let started = Instant::now();
    let deadline = started + spec.duration;
    let tasks: Vec<_> = (0..spec.connections)
        .map(|index| {
            let spec = spec.clone();
            tokio::spawn(async move { drive(&spec, index, started, deadline).await })
        })
        .collect();
    let mut recording = Recording::default();
    for task in tasks {
        match task.await {
            Ok(stats) => recording.merge(Recording {
                latencies_us: stats.latencies_us,
                errors: stats.errors,
                samples: stats.samples,
                elapsed: Duration::ZERO,
            }),
            Err(panic) => recording.merge(Recording {
                errors: 1,
                samples: vec![format!("load task failed: {panic}")],
                ..Recording::default()
            }),
        }
    }
    recording.elapsed = started.elapsed().max(spec.duration);
    recording
}

/// A kept-alive HTTP/1.1 client connection to `addr`, with `TCP_NODELAY`.
pub(crate) async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(connection);
    Ok(sender)
}

/// One connection's closed loop until `deadline`.
async fn drive(spec: &LoadSpec, index: usize, started: Instant, deadline: Instant) -> ConnStats {
    let mut stats = ConnStats {
        latencies_us: Vec::with_capacity(4096),
        ..ConnStats::default()
    };
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    let mut n = 0u64;
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        if let Some((run, pause)) = spec.bursts {
            let period = (run + pause).as_nanos();
            let phase = (now - started).as_nanos() % period;
            if phase >= run.as_nanos() {
                let rest = Duration::from_nanos((period - phase) as u64);
                tokio::time::sleep(rest.min(deadline - now)).await;
                continue;
            }
        }
        let mut client = match sender.take() {
            Some(client) => client,
            None => match connect(spec.addr).await {
                Ok(client) => client,
                Err(error) => {
                    stats.error(error);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        if client.ready().await.is_err() {
            continue;
        }
        let request = (spec.make)(index, n);
        n += 1;
        let sent = Instant::now();
        match client.send_request(request).await {
            Ok(response) => {
                let status = response.status();
                let mut body = response.into_body();
                let mut first_frame = None;
                if spec.latency_to == LatencyTo::FirstFrame {
                    match body.frame().await {
                        Some(Ok(frame)) => {
                            first_frame = Some((sent.elapsed(), frame.into_data().ok()))
                        }
                        Some(Err(error)) => {
                            stats.error(format!("body: {error}"));
                            continue;
                        }
                        None => first_frame = Some((sent.elapsed(), None)),
                    }
                }
                match body.collect().await {
                    Ok(body) => {
                        let latency = first_frame
                            .as_ref()
                            .map_or_else(|| sent.elapsed(), |(at, _)| *at);
                        let micros = latency.as_micros().min(u128::from(u32::MAX));
                        stats.latencies_us.push(micros as u32);
                        if !status.is_success() {
                            let body = body.to_bytes();
                            let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
                            stats.error(format!("{status}: {text}"));
                        } else if let Some(end) = spec.body_ends_with {
                            let body = body.to_bytes();
                            if !body.ends_with(end) {
                                let tail = &body[body.len().saturating_sub(200)..];
                                let text = String::from_utf8_lossy(tail);
                                stats.error(format!("{status}, but the body ends …{text}"));
                            }
                        }
                        sender = Some(client);
                    }
                    Err(error) => stats.error(format!("body: {error}")),
                }
            }
            Err(error) => stats.error(format!("request: {error}")),
        }
    }
    stats
}
