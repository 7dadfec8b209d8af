//! The forwarded token, from raw header bytes to `AUTH_*`: `token_from` (the `Caller`
//! extractor's first step) and `UserToken::parse`.
//!
//! Invariants: never panics; a token is accepted exactly when, trimmed, it is 1–8192 visible
//! ASCII characters; an accepted token is the trimmed input; an empty or blank header is
//! `AUTH_MISSING`, anything else refused is `AUTH_INVALID`; `{:?}` of a token never depends on
//! (so never shows) its value.
#![no_main]

use axum::http::{HeaderValue, Request};
use dbapp_databricks::UserToken;
use dbapp_server::ErrorCode;
use dbapp_server::auth::{ACCESS_TOKEN_HEADER, token_from};
use libfuzzer_sys::fuzz_target;

/// `UserToken::parse` trims as `str::trim` does (Unicode whitespace, vertical tab included).
fn acceptable(text: &str) -> bool {
    let trimmed = text.trim();
    (1..=8 * 1024).contains(&trimmed.len()) && trimmed.bytes().all(|b| b.is_ascii_graphic())
}

fuzz_target!(|data: &[u8]| {
    let redacted = format!("{:?}", UserToken::parse("x").unwrap());
    if let Ok(text) = std::str::from_utf8(data) {
        let parsed = UserToken::parse(text);
        assert_eq!(parsed.is_ok(), acceptable(text), "{:?}", parsed.err());
        if let Ok(token) = &parsed {
            assert_eq!(token.expose(), text.trim());
            assert_eq!(format!("{token:?}"), redacted, "Debug shows the token");
        }
    }
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return; // not sendable as a header at all: hyper refuses it before the app
    };
    let request = Request::builder()
        .header(ACCESS_TOKEN_HEADER, value)
        .body(())
        .unwrap();
    let (parts, ()) = request.into_parts();
    match token_from(&parts) {
        Ok(token) => {
            // A header value that `to_str` accepts is visible ASCII, space and tab only.
            let text = std::str::from_utf8(data).unwrap();
            assert!(acceptable(text));
            assert_eq!(token.expose(), text.trim());
        }
        Err(error) => {
            let code = error.code();
            if data.trim_ascii().is_empty() {
                assert_eq!(code, ErrorCode::AuthMissing);
            } else {
                assert_eq!(code, ErrorCode::AuthInvalid, "{data:?}");
            }
            assert_eq!(code.status().as_u16(), 401);
        }
    }
});
