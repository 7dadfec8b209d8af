//! Flat JSON log lines (`API.md` "Logs"): the subscriber layer behind `DBAPP_LOG_FORMAT=json`.
//!
//! Each event becomes one object on one line: `timestamp` (RFC 3339, UTC, microseconds),
//! `level`, `target`, the event's own fields, then the fields of every span the event is in,
//! flattened to the top level, so `correlation_id`, `route` and `user_id` of the request span
//! are on every line written while serving it. A name appears once: the event's own field wins,
//! then the innermost span's.
//!
//! Span fields are turned into JSON text once, when they are recorded, and a line is built in one
//! reused buffer and handed to the writer in one call. json-subscriber, which did this job before,
//! rebuilt `serde_json::Value` maps of every span for every line: 30 000 instructions for the
//! access-log line of `/api/user/me`, more than the rest of the request.

use std::cell::RefCell;
use std::fmt;
use std::io::Write;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The layer: writes each event as a JSON line to a writer made by `W`.
#[derive(Debug)]
pub struct JsonLayer<W> {
    make_writer: W,
}

impl<W> JsonLayer<W> {
    /// A layer writing to `make_writer` (`std::io::stdout`, or a capture in tests).
    pub fn new(make_writer: W) -> Self {
        Self { make_writer }
    }
}

/// A span's fields as `(name, JSON text)`, in recording order; kept in the span's extensions.
#[derive(Debug, Default)]
struct SpanFields(Vec<(&'static str, String)>);

impl SpanFields {
    fn set(&mut self, name: &'static str, json: String) {
        // The trace export's own fields (`otel.name`, `otel.kind`, …) are not log fields.
        if name.starts_with("otel.") {
            return;
        }
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = json,
            None => self.0.push((name, json)),
        }
    }
}

impl Visit for SpanFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field.name(), json_string(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field.name(), value.to_string());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field.name(), value.to_string());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field.name(), value.to_string());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.set(field.name(), json_f64(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.set(field.name(), json_string(&format!("{value:?}")));
    }
}

/// A string as JSON text.
fn json_string(value: &str) -> String {
    // Serialising a `str` cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

/// A float as JSON text: JSON has no NaN or infinities, so those are `null`.
fn json_f64(value: f64) -> String {
    serde_json::to_string(&value).unwrap_or_else(|_| "null".to_owned())
}

/// Writes the event's fields into the line, remembering their names.
struct LineVisitor<'a> {
    line: &'a mut Vec<u8>,
    names: &'a mut Vec<&'static str>,
}

impl LineVisitor<'_> {
    fn key(&mut self, name: &'static str) {
        self.names.push(name);
        self.line.push(b',');
        // Serialising a `str` into a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut *self.line, name);
        self.line.push(b':');
    }

    fn raw(&mut self, name: &'static str, json: &str) {
        self.key(name);
        self.line.extend_from_slice(json.as_bytes());
    }
}

impl Visit for LineVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field.name());
        let _ = serde_json::to_writer(&mut *self.line, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.raw(field.name(), if value { "true" } else { "false" });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field.name());
        let _ = write!(self.line, "{value}");
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field.name());
        let _ = write!(self.line, "{value}");
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.raw(field.name(), &json_f64(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field.name());
        let _ = serde_json::to_writer(&mut *self.line, &format!("{value:?}"));
    }
}

thread_local! {
    /// The line being built, and the names already in it; reused by every event of the thread.
    static LINE: RefCell<(Vec<u8>, Vec<&'static str>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

impl<S, W> tracing_subscriber::Layer<S> for JsonLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = SpanFields::default();
        attrs.record(&mut fields);
        span.extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        match extensions.get_mut::<SpanFields>() {
            Some(fields) => values.record(fields),
            None => {
                let mut fields = SpanFields::default();
                values.record(&mut fields);
                extensions.insert(fields);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        LINE.with(|cell| {
            // A log call made while writing a line (from the writer itself) finds the buffer
            // taken; it is dropped rather than allowed to panic.
            let Ok(mut guard) = cell.try_borrow_mut() else {
                return;
            };
            let (line, names) = &mut *guard;
            line.clear();
            names.clear();
            let metadata = event.metadata();
            let timestamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            let _ = write!(
                line,
                r#"{{"timestamp":"{timestamp}","level":"{}","target":"#,
                metadata.level()
            );
            let _ = serde_json::to_writer(&mut *line, metadata.target());
            event.record(&mut LineVisitor { line, names });
            if let Some(scope) = ctx.event_scope(event) {
                for span in scope {
                    let extensions = span.extensions();
                    let Some(fields) = extensions.get::<SpanFields>() else {
                        continue;
                    };
                    for (name, json) in &fields.0 {
                        if !names.contains(name) {
                            LineVisitor { line, names }.raw(name, json);
                        }
                    }
                }
            }
            line.extend_from_slice(b"}\n");
            let _ = self.make_writer.make_writer_for(metadata).write_all(line);
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::{Value, json};
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Runs `f` under a subscriber with the layer, and returns the lines it wrote as JSON.
    fn lines(f: impl FnOnce()) -> Vec<Value> {
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber =
            tracing_subscriber::registry().with(JsonLayer::new(move || writer.clone()));
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
            })
            .collect()
    }

    #[test]
    fn span_fields_are_flattened_onto_every_line() {
        // Act
        let lines = lines(|| {
            let span = tracing::info_span!(
                "request",
                correlation_id = "c-1",
                route = tracing::field::Empty,
                user_id = tracing::field::Empty,
            );
            let _entered = span.enter();
            span.record("route", "/api/user/me");
            tracing::info!(event = "first", status = 200_u64);
            span.record("user_id", "alice@example.com");
            tracing::warn!(
                event = "second",
                duration_ms = 1.5,
                ok = true,
                delta = -3_i64
            );
        });

        // Assert
        assert_eq!(lines.len(), 2);
        let first = &lines[0];
        assert_eq!(first["level"], "INFO");
        assert_eq!(first["target"], module_path!());
        assert_eq!(first["event"], "first");
        assert_eq!(first["status"], 200);
        assert_eq!(first["correlation_id"], "c-1");
        assert_eq!(first["route"], "/api/user/me");
        assert!(first.get("user_id").is_none(), "an empty field is left out");
        let timestamp = first["timestamp"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(timestamp).is_ok(),
            "{timestamp}"
        );
        let second = &lines[1];
        assert_eq!(second["level"], "WARN");
        assert_eq!(second["user_id"], "alice@example.com");
        assert_eq!(second["duration_ms"], 1.5);
        assert_eq!(second["ok"], true);
        assert_eq!(second["delta"], -3);
    }

    #[test]
    fn each_name_appears_once_event_first_then_innermost_span() {
        // Act
        let lines = lines(|| {
            let outer = tracing::info_span!("outer", user_id = "outer", route = "/outer", a = 1);
            let _o = outer.enter();
            let inner = tracing::info_span!("inner", user_id = "inner", b = 2);
            let _i = inner.enter();
            tracing::info!(route = "/event", "hello");
        });

        // Assert
        let line = &lines[0];
        assert_eq!(line["route"], "/event");
        assert_eq!(line["user_id"], "inner");
        assert_eq!(line["a"], 1);
        assert_eq!(line["b"], 2);
        assert_eq!(line["message"], "hello");
        let raw = serde_json::to_string(line).unwrap();
        assert_eq!(raw.matches("\"user_id\"").count(), 1);
    }

    #[test]
    fn values_are_escaped_and_non_finite_floats_are_null() {
        // Act
        let lines = lines(|| {
            let span = tracing::info_span!("s", quoted = %"say \"hi\"\n\tnow");
            let _e = span.enter();
            tracing::error!(
                error = %"line one\nline \u{1} two \\ done",
                debug = ?vec!["a\"b"],
                nan = f64::NAN,
                inf = f64::INFINITY,
            );
        });

        // Assert
        let line = &lines[0];
        assert_eq!(line["quoted"], "say \"hi\"\n\tnow");
        assert_eq!(line["error"], "line one\nline \u{1} two \\ done");
        assert_eq!(line["debug"], json!("[\"a\\\"b\"]"));
        assert_eq!(line["nan"], Value::Null);
        assert_eq!(line["inf"], Value::Null);
    }

    #[test]
    fn events_outside_any_span_have_only_their_own_fields() {
        // Act
        let lines = lines(|| tracing::info!(event = "server.listening", port = 8080_u64));

        // Assert
        let line = lines[0].as_object().unwrap();
        let mut keys: Vec<&str> = line.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["event", "level", "port", "target", "timestamp"]);
    }
}
