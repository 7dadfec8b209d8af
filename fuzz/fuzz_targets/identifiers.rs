//! Names that reach SQL or the store: catalog/schema/table identifiers
//! (`validate_identifier`), preference keys (`validate_key`), and page tokens
//! (`Cursor::decode`).
//!
//! Invariants: never panics; an accepted identifier is 1–255 bytes of `[A-Za-z0-9_-]` not
//! starting with `-` (so no quote, backtick, dot, slash, whitespace, NUL or non-ASCII byte can
//! reach a quoted SQL name); an accepted key is 1–100 bytes of `[a-z0-9_.-]` starting with a
//! letter; refusals are `INVALID_IDENTIFIER` / `INVALID_REQUEST` (400); a decoded page token
//! re-encodes to a token that decodes to the same cursor.
#![no_main]

use dbapp_server::ErrorCode;
use dbapp_server::extract::{validate_identifier, validate_key};
use dbapp_server::routes::Cursor;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let bytes = text.as_bytes();
    let identifier = (1..=255).contains(&bytes.len())
        && bytes[0] != b'-'
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
    match validate_identifier("table", text) {
        Ok(()) => {
            assert!(identifier, "{text:?}");
            assert!(!bytes.iter().any(|b| b"`'\";./\\ \0%".contains(b)));
        }
        Err(error) => {
            assert!(!identifier, "{text:?}");
            assert_eq!(error.code(), ErrorCode::InvalidIdentifier);
            assert_eq!(error.code().status().as_u16(), 400);
        }
    }
    let key = (1..=100).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes.iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        });
    match validate_key(text) {
        Ok(()) => assert!(key, "{text:?}"),
        Err(error) => {
            assert!(!key, "{text:?}");
            assert_eq!(error.code(), ErrorCode::InvalidRequest);
        }
    }
    if let Some(cursor) = Cursor::decode(text) {
        let again = Cursor::decode(&cursor.encode());
        assert_eq!(again.as_ref(), Some(&cursor));
    }
});
