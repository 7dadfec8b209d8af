//! Correlation ids: `CorrelationId::parse` and the header choice of `correlation_id_from`
//! (`X-Correlation-ID`, else `X-Request-Id`, else a new UUID).
//!
//! Invariants: never panics; `parse` accepts exactly 1–128 characters of `[A-Za-z0-9._:-]`
//! and keeps them unchanged; whatever the two headers hold, the id chosen is itself valid (so
//! it is safe in a response header and a log line), and is the first valid header when there
//! is one.
#![no_main]

use axum::http::{HeaderMap, HeaderValue};
use dbapp_databricks::CorrelationId;
use dbapp_server::telemetry::{CORRELATION_HEADER, REQUEST_ID_HEADER, correlation_id_from};
use libfuzzer_sys::fuzz_target;

fn valid(raw: &[u8]) -> bool {
    (1..=128).contains(&raw.len())
        && raw
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

fuzz_target!(|data: &[u8]| {
    // The first byte splits the input into the two headers.
    let (split, rest) = data.split_first().unwrap_or((&0, &[]));
    let at = usize::from(*split).min(rest.len());
    let (first, second) = rest.split_at(at);
    if let Ok(text) = std::str::from_utf8(first) {
        let parsed = CorrelationId::parse(text);
        assert_eq!(parsed.is_some(), valid(first));
        if let Some(id) = parsed {
            assert_eq!(id.as_str(), text);
        }
    }
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(first) {
        headers.insert(CORRELATION_HEADER, value);
    }
    if let Ok(value) = HeaderValue::from_bytes(second) {
        headers.insert(REQUEST_ID_HEADER, value);
    }
    let chosen = correlation_id_from(&headers);
    assert!(valid(chosen.as_str().as_bytes()), "{chosen:?}");
    assert!(HeaderValue::from_str(chosen.as_str()).is_ok());
    let expected = [CORRELATION_HEADER, REQUEST_ID_HEADER]
        .iter()
        .filter_map(|name| headers.get(*name))
        .map(HeaderValue::as_bytes)
        .find(|raw| valid(raw));
    match expected {
        Some(raw) => assert_eq!(chosen.as_str().as_bytes(), raw),
        None => assert_eq!(chosen.as_str().len(), 36, "a UUID: {chosen:?}"),
    }
});
