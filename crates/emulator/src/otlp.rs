//! An OTLP/gRPC trace receiver, standing in for the telemetry collector Databricks Apps run
//! beside an app (UPSTREAM §1.4): what the trace-export tests and `dbapp-bench` send spans to.
//! It serves the collector's `TraceService/Export` with tonic, decodes each protobuf request,
//! keeps every span flattened with its resource's attributes, and wakes whoever waits for spans.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use tokio::sync::{oneshot, watch};

/// One received span, with ids in lowercase hex as W3C `traceparent` writes them.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedSpan {
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    /// 16 hex digits; empty for a root span.
    pub parent_span_id: String,
    /// The span's name.
    pub name: String,
    /// OTLP `SpanKind`: 1 internal, 2 server, 3 client.
    pub kind: i32,
    /// The span's attributes, values as text (strings unquoted).
    pub attributes: BTreeMap<String, String>,
    /// The names of the span's events.
    pub events: Vec<String>,
    /// OTLP status code: 0 unset, 1 ok, 2 error.
    pub status_code: i32,
    /// The attributes of the resource that sent it (`service.name`, …).
    pub resource: BTreeMap<String, String>,
}

impl ReceivedSpan {
    /// An attribute's value as text.
    #[must_use]
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

#[derive(Debug, Default)]
struct Received {
    /// Whether spans are kept, or only counted (a benchmark's millions would fill memory).
    keep: bool,
    spans: Mutex<Vec<ReceivedSpan>>,
    counted: std::sync::atomic::AtomicUsize,
}

/// A running receiver; stops when dropped.
#[derive(Debug)]
pub struct OtlpReceiver {
    address: SocketAddr,
    received: Arc<Received>,
    count: watch::Receiver<usize>,
    _stop: oneshot::Sender<()>,
}

impl OtlpReceiver {
    /// Starts a receiver on a free port of 127.0.0.1 that keeps every span.
    ///
    /// # Errors
    /// When no port can be bound.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(true).await
    }

    /// Starts a receiver that decodes and counts spans without keeping them.
    ///
    /// # Errors
    /// When no port can be bound.
    pub async fn start_counting() -> std::io::Result<Self> {
        Self::start_with(false).await
    }

    async fn start_with(keep: bool) -> std::io::Result<Self> {
        let incoming =
            tonic::transport::server::TcpIncoming::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let address = incoming.local_addr()?;
        let received = Arc::new(Received {
            keep,
            ..Received::default()
        });
        let (counter, count) = watch::channel(0);
        let service = Collector {
            received: Arc::clone(&received),
            counter,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(service))
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self {
            address,
            received,
            count,
            _stop: stop,
        })
    }

    /// The value for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// How many spans were received so far, kept or not.
    #[must_use]
    pub fn count(&self) -> usize {
        self.received
            .counted
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Every span received so far (none when only counting).
    #[must_use]
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.received
            .spans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Waits until `done` holds for the spans received, or `timeout` passes; returns the spans
    /// either way (the caller's assertions say what was missing).
    pub async fn wait_for(
        &self,
        timeout: Duration,
        done: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> Vec<ReceivedSpan> {
        let mut count = self.count.clone();
        let _ = tokio::time::timeout(timeout, async {
            loop {
                if done(&self.spans()) {
                    return;
                }
                if count.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        self.spans()
    }
}

/// The gRPC service.
#[derive(Debug)]
struct Collector {
    received: Arc<Received>,
    counter: watch::Sender<usize>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = Vec::new();
        for resource_spans in request.into_inner().resource_spans {
            let resource = resource_spans
                .resource
                .map(|r| attributes(&r.attributes))
                .unwrap_or_default();
            for span in resource_spans
                .scope_spans
                .into_iter()
                .flat_map(|scope| scope.spans)
            {
                spans.push(ReceivedSpan {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    name: span.name,
                    kind: span.kind,
                    attributes: attributes(&span.attributes),
                    events: span.events.into_iter().map(|e| e.name).collect(),
                    status_code: span.status.map_or(0, |s| s.code),
                    resource: resource.clone(),
                });
            }
        }
        let total = self
            .received
            .counted
            .fetch_add(spans.len(), std::sync::atomic::Ordering::Relaxed)
            + spans.len();
        if self.received.keep {
            self.received
                .spans
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend(spans);
        }
        self.counter.send_replace(total);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attributes(pairs: &[KeyValue]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|pair| (pair.key.clone(), text(pair.value.as_ref())))
        .collect()
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}
