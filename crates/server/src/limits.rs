//! The numbers and patterns of the HTTP contract (`API.md`, `DESIGN.md` "Limits"), in one leaf
//! module that imports nothing from the crate, so the error type, the extractors, the routes and
//! the middleware can all name them without importing each other.

use std::time::Duration;

/// Largest request body accepted (`DESIGN.md` "Limits"); `PAYLOAD_TOO_LARGE` names it in
/// `detail.limit_bytes`.
pub const BODY_LIMIT_BYTES: usize = 1024 * 1024;

/// Longest request target (path and query, and the authority of an absolute-form target) in
/// bytes; longer is `414 URI_TOO_LONG` (the `request_head` module).
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// Most header fields in one request; more is `431 HEADERS_TOO_LARGE`.
pub const MAX_HEADERS: usize = 100;

/// Most bytes of header fields in one request (each counted as name + value + 32, as HTTP/2
/// does); more is `431 HEADERS_TOO_LARGE`. A forwarded user token is at most 8 KiB.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// How long in-flight requests may finish after a shutdown signal: Databricks Apps sends
/// SIGKILL 15 s after SIGTERM, so we stop waiting a second before that.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(14);

/// Catalog, schema and table names in Unity Catalog paths (`API.md`); anything else is
/// `INVALID_IDENTIFIER`, before any upstream call, so a name can be quoted into SQL safely.
pub const IDENTIFIER_PATTERN: &str = "^[A-Za-z0-9_][A-Za-z0-9_-]{0,254}$";

/// Longest file or directory path inside a volume (the `path` query parameter of the volume
/// routes), in bytes; longer is `INVALID_REQUEST`.
pub const VOLUME_PATH_MAX_BYTES: usize = 1024;

/// Preference keys (`API.md`).
pub const PREFERENCE_KEY_PATTERN: &str = "^[a-z][a-z0-9_.-]{0,99}$";

/// Largest preference value, in bytes of JSON.
pub const PREFERENCE_VALUE_BYTES: usize = 100 * 1024;

/// Most usage events in one batch: the store's own bound, so the API never accepts a batch the
/// store would refuse.
pub const USAGE_BATCH_EVENTS: usize = dbapp_store::MAX_USAGE_BATCH;

/// Items per page of a list, and rows of a table preview: at least this many…
pub const PAGE_LIMIT_MIN: u32 = 1;
/// …at most this many…
pub const PAGE_LIMIT_MAX: u32 = 1000;
/// …and this many when the client does not say.
pub const PAGE_LIMIT_DEFAULT: u32 = 100;
