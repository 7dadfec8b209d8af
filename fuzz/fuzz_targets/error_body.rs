//! The upstream error-body parser, `dbapp_databricks::error::ErrorBody::parse`: any status,
//! content type, body and `X-Databricks-Reason-Phrase` a workspace (or a proxy in front of it)
//! could send.
//!
//! Invariants: never panics; the message is never empty (the reason phrase stands in); a code,
//! when present, is not empty.
#![no_main]

use arbitrary::Arbitrary;
use dbapp_databricks::error::ErrorBody;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    status: u16,
    content_type: Option<&'a str>,
    reason: Option<&'a str>,
    body: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    let parsed = ErrorBody::parse(input.status, input.content_type, input.body, input.reason);
    assert!(!parsed.message.trim().is_empty(), "{parsed:?}");
    if let Some(code) = &parsed.error_code {
        assert!(!code.is_empty(), "{parsed:?}");
    }
});
