//! OpenTelemetry traces over OTLP/gRPC: the exporter `dbapp serve` and `dbapp dev` install when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set (Databricks Apps set it when app telemetry is on,
//! UPSTREAM §1.4), and W3C trace context on the way in.
//!
//! - [`Exporter::from_env`] reads the standard variables from the environment snapshot:
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`),
//!   `OTEL_EXPORTER_OTLP_PROTOCOL` (only `grpc`), `OTEL_SERVICE_NAME` (else the app's name, else
//!   `dbapp`), `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_SDK_DISABLED` and `OTEL_TRACES_EXPORTER=none`.
//! - Spans leave through the SDK's batch processor, which queues finished spans without
//!   blocking (a full queue drops them) and exports from a thread of its own. The tonic client
//!   needs a Tokio reactor, which that thread lacks, so each export is handed to a one-worker
//!   runtime of its own ([`OwnRuntime`]): exporting never runs on, nor waits for, the runtime
//!   serving requests.
//! - [`accept_parent`] makes a request's span the child of the caller's `traceparent`. The
//!   Databricks client (`dbapp_databricks::http`) injects the current span into every upstream
//!   call through the global propagator set here.
//! - The tracing layer sees the spans the log filter lets through: the request span (`info`;
//!   health checks are `debug` and stay out), each upstream call, store calls and the phases of
//!   streamed answers. Span fields name routes, operations, users and ids, never a token:
//!   tokens live in `SecretString`s that no span records.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::HeaderMap;
use dbapp_databricks::Environment;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{KeyValue, global};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Whether an exporter is installed: the request path reads `traceparent` and names its span
/// only then.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether traces are exported (see [`ENABLED`]).
#[must_use]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The trace export settings read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exporter {
    /// The collector, e.g. `http://localhost:4314`.
    pub endpoint: String,
    /// `service.name`.
    pub service_name: String,
    /// `OTEL_RESOURCE_ATTRIBUTES`, decoded, in order.
    pub attributes: Vec<(String, String)>,
}

/// Why the environment asks for no export, or asks for one dbapp cannot make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disabled {
    /// No endpoint is set, or the SDK or trace export is switched off.
    NotRequested,
    /// The environment asks for something unsupported; the reason names the variable.
    Unsupported(String),
}

impl Exporter {
    /// The settings, or why there is nothing to export (see the module header).
    ///
    /// # Errors
    /// [`Disabled`] when export is off or cannot be made as asked.
    pub fn from_env(env: &Environment) -> Result<Self, Disabled> {
        let set = |name: &str| env.get(name).filter(|v| !v.trim().is_empty());
        if set("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
            || set("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim().eq_ignore_ascii_case("none"))
        {
            return Err(Disabled::NotRequested);
        }
        let Some(endpoint) = set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| set("OTEL_EXPORTER_OTLP_ENDPOINT"))
        else {
            return Err(Disabled::NotRequested);
        };
        for name in [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ] {
            if let Some(protocol) = set(name) {
                if protocol.trim() != "grpc" {
                    return Err(Disabled::Unsupported(format!(
                        "{name}={protocol}: dbapp exports traces over OTLP/gRPC only (`grpc`, \
                         what Databricks Apps set)"
                    )));
                }
                break;
            }
        }
        let endpoint = endpoint.trim().to_owned();
        if url::Url::parse(&endpoint)
            .ok()
            .is_none_or(|url| !matches!(url.scheme(), "http" | "https"))
        {
            return Err(Disabled::Unsupported(
                "OTEL_EXPORTER_OTLP_ENDPOINT: not an http:// or https:// URL (its value is not \
                 repeated: a URL may carry credentials)"
                    .to_owned(),
            ));
        }
        let attributes = set("OTEL_RESOURCE_ATTRIBUTES")
            .map(|value| resource_attributes(&value))
            .unwrap_or_default();
        let service_name = set("OTEL_SERVICE_NAME")
            .or_else(|| set("DATABRICKS_APP_NAME"))
            .unwrap_or_else(|| "dbapp".to_owned());
        Ok(Self {
            endpoint,
            service_name,
            attributes,
        })
    }

    /// The endpoint without what could be a credential (user, password, query, fragment), for
    /// log lines.
    #[must_use]
    pub fn endpoint_for_logs(&self) -> String {
        url::Url::parse(&self.endpoint).map_or_else(
            |_| "(unparsable)".to_owned(),
            |url| {
                let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
                format!(
                    "{}://{}{port}{}",
                    url.scheme(),
                    url.host_str().unwrap_or_default(),
                    url.path()
                )
            },
        )
    }

    /// Starts the export: the provider, its batch processor and the exporter's runtime, and the
    /// W3C propagator. Returns the tracing layer to install and the guard that flushes what is
    /// queued when dropped.
    ///
    /// # Errors
    /// When the exporter's runtime or client cannot be made.
    pub fn start<S>(
        self,
    ) -> Result<(TraceLayer<S>, OtelGuard), Box<dyn std::error::Error + Send + Sync + 'static>>
    where
        S: tracing::Subscriber
            + for<'span> tracing_subscriber::registry::LookupSpan<'span>
            + Send
            + Sync,
    {
        use tracing_subscriber::Layer as _;

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("dbapp-otel")
            .enable_all()
            .build()?;
        // The tonic channel spawns its connection task where it is built: on that runtime.
        let exporter = {
            let _entered = runtime.enter();
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(&self.endpoint)
                .with_timeout(EXPORT_TIMEOUT)
                .build()?
        };
        let exporter = OwnRuntime {
            inner: Arc::new(exporter),
            runtime: runtime.handle().clone(),
        };
        let resource = Resource::builder_empty()
            .with_service_name(self.service_name)
            .with_attributes(
                self.attributes
                    .into_iter()
                    .map(|(key, value)| KeyValue::new(key, value)),
            )
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(BatchSpanProcessor::builder(exporter).build())
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("dbapp");
        global::set_text_map_propagator(TraceContextPropagator::new());
        ENABLED.store(true, Ordering::Relaxed);
        let layer = tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_tracked_inactivity(false)
            .with_threads(false)
            .with_location(false)
            // A span starts when its first child does or when it closes, not when first
            // entered: the request span gets its name (`GET /api/…`) once routing has matched.
            // dbapp's own propagation reads spans, not the active OpenTelemetry context.
            .with_context_activation(false)
            .with_target(false)
            // Spans, and warnings and errors as their events (a retry, a failed stream): the
            // log lines of every request (the access log) would cost more to turn into span
            // events than the span itself, and they are in the logs already.
            .with_filter(tracing_subscriber::filter::filter_fn(|metadata| {
                metadata.is_span() || *metadata.level() <= tracing::Level::WARN
            }))
            .boxed();
        Ok((
            layer,
            OtelGuard {
                provider: Some(provider),
                runtime: Some(runtime),
            },
        ))
    }
}

/// Logs whether traces are exported, and why not when the environment asked for something
/// dbapp cannot do (a warning: telemetry settings never stop the app).
pub fn log_decision(decision: &Result<Exporter, Disabled>) {
    match decision {
        Ok(exporter) => tracing::info!(
            event = "otel.exporting",
            endpoint = %exporter.endpoint_for_logs(),
            service_name = %exporter.service_name,
            "exporting traces over OTLP/gRPC"
        ),
        Err(Disabled::NotRequested) => {}
        Err(Disabled::Unsupported(reason)) => tracing::warn!(
            event = "otel.disabled",
            reason = %reason,
            "traces are not exported"
        ),
    }
}

/// The tracing layer [`Exporter::start`] returns, for a subscriber `S`.
pub type TraceLayer<S> = Box<dyn tracing_subscriber::Layer<S> + Send + Sync + 'static>;

/// The most one export may take before it is abandoned (its spans are lost, not retried).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// Decodes `OTEL_RESOURCE_ATTRIBUTES`: comma-separated `key=value` pairs, percent-encoded;
/// pairs without `=` or with an empty key are skipped, as the specification asks.
fn resource_attributes(value: &str) -> Vec<(String, String)> {
    value
        .split(',')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            let key = key.trim();
            (!key.is_empty()).then(|| (decode(key), decode(value.trim())))
        })
        .collect()
}

/// Percent-decoding, keeping invalid escapes as they are.
fn decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map_or_else(|| text.to_owned(), |(_, value)| value.into_owned())
}

/// Ends the export: dropping it exports what is queued (within the export timeout) and stops
/// the exporter's runtime.
#[derive(Debug)]
pub struct OtelGuard {
    provider: Option<SdkTracerProvider>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for OtelGuard {
    fn drop(&mut self) {
        ENABLED.store(false, Ordering::Relaxed);
        if let Some(provider) = self.provider.take() {
            // Blocks until the batch thread has exported what is queued; that thread hands
            // the export to `runtime`, which is still running.
            let _ = provider.shutdown();
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The exporter, run on a runtime of its own (see the module header).
#[derive(Debug)]
struct OwnRuntime<E> {
    inner: Arc<E>,
    runtime: tokio::runtime::Handle,
}

impl<E: SpanExporter + 'static> SpanExporter for OwnRuntime<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let inner = Arc::clone(&self.inner);
        let spans = batch.len();
        let result = match self
            .runtime
            .spawn(async move { inner.export(batch).await })
            .await
        {
            Ok(result) => result,
            Err(error) => Err(opentelemetry_sdk::error::OTelSdkError::InternalFailure(
                format!("the export task ended: {error}"),
            )),
        };
        if let Err(error) = &result {
            warn_export_failed(spans, error);
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.set_resource(resource);
        }
    }
}

/// When the last `otel.export_failed` warning was logged, in seconds since the Unix epoch.
static LAST_FAILURE_WARNING: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Logs a failed export (the collector is down, or refuses), at most once a minute: the spans
/// are lost, and the app goes on.
fn warn_export_failed(spans: usize, error: &opentelemetry_sdk::error::OTelSdkError) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST_FAILURE_WARNING.load(Ordering::Relaxed);
    if now >= last + 60
        && LAST_FAILURE_WARNING
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(
            event = "otel.export_failed",
            spans,
            error = %error,
            "spans could not be exported (logged at most once a minute)"
        );
    }
}

/// Reads `traceparent`/`tracestate` from request headers.
struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(axum::http::HeaderName::as_str).collect()
    }
}

/// Makes `span` the child of the caller's W3C `traceparent`, when export is on and the header
/// is there and valid (an invalid one starts a new trace, as the specification asks).
pub fn accept_parent(span: &tracing::Span, headers: &HeaderMap) {
    if !enabled() || !headers.contains_key("traceparent") {
        return;
    }
    let context = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    let _ = span.set_parent(context);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Environment {
        Environment::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    #[test]
    fn the_apps_telemetry_environment_is_read_as_apps_set_it() {
        // Arrange: UPSTREAM §1.4.
        let env = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4314"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "workspace.id=1234,app.name=my-app",
            ),
            ("OTEL_SERVICE_NAME", "my-app"),
        ]);

        // Act
        let exporter = Exporter::from_env(&env).unwrap();

        // Assert
        assert_eq!(exporter.endpoint, "http://localhost:4314");
        assert_eq!(exporter.service_name, "my-app");
        assert_eq!(
            exporter.attributes,
            vec![
                ("workspace.id".to_owned(), "1234".to_owned()),
                ("app.name".to_owned(), "my-app".to_owned())
            ]
        );
    }

    #[test]
    fn no_endpoint_or_a_switch_turns_export_off() {
        assert_eq!(Exporter::from_env(&env(&[])), Err(Disabled::NotRequested));
        for (name, value) in [
            ("OTEL_SDK_DISABLED", "TRUE"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ] {
            let env = env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://x:4317"),
                (name, value),
            ]);
            assert_eq!(
                Exporter::from_env(&env),
                Err(Disabled::NotRequested),
                "{name}"
            );
        }
    }

    #[test]
    fn an_unsupported_protocol_or_endpoint_is_named() {
        let http = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://x:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ]);
        let Err(Disabled::Unsupported(reason)) = Exporter::from_env(&http) else {
            panic!("refused");
        };
        assert!(
            reason.contains("OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"),
            "{reason}"
        );

        let bad = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4314")]);
        assert!(matches!(
            Exporter::from_env(&bad),
            Err(Disabled::Unsupported(_))
        ));
    }

    #[test]
    fn the_logged_endpoint_and_a_refusal_never_repeat_credentials() {
        let secret = env(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "https://collector:s3cret@otel.example.com:4317/v1?token=t0ken#f",
        )]);
        let logged = Exporter::from_env(&secret).unwrap().endpoint_for_logs();
        assert_eq!(logged, "https://otel.example.com:4317/v1");

        let bad = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "user:s3cret@nowhere")]);
        let Err(Disabled::Unsupported(reason)) = Exporter::from_env(&bad) else {
            panic!("refused");
        };
        assert!(!reason.contains("s3cret"), "{reason}");
    }

    #[test]
    fn resource_attributes_are_percent_decoded_and_malformed_pairs_skipped() {
        assert_eq!(
            resource_attributes("a=1, b = x%20y ,novalue,=empty,c=p+q,d=%zz"),
            vec![
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), "x y".to_owned()),
                ("c".to_owned(), "p+q".to_owned()),
                ("d".to_owned(), "%zz".to_owned()),
            ]
        );
    }

    #[test]
    fn the_service_name_falls_back_to_the_app_name_then_dbapp() {
        let app = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://x:4317"),
            ("DATABRICKS_APP_NAME", "sales"),
        ]);
        assert_eq!(Exporter::from_env(&app).unwrap().service_name, "sales");
        let bare = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://x:4317")]);
        assert_eq!(Exporter::from_env(&bare).unwrap().service_name, "dbapp");
    }
}
