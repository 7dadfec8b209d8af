//! The web UI, embedded in the binary from `web/dist` (rust-embed), served as the router's
//! fallback after `/api`: a known file is served with its type, anything else gets `index.html`
//! so client-side routes work on reload. Hashed `assets/*` files are immutable for a year.
//! Until the UI is built (`web/dist` missing) an embedded placeholder page stands in.

use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use crate::error::ApiError;

/// The built UI.
#[derive(RustEmbed)]
#[folder = "../../web/dist/"]
#[allow_missing = true]
struct WebAssets;

/// Shown while `web/dist` is missing.
const PLACEHOLDER: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>dbapp</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; line-height: 1.5">
<h1>dbapp</h1>
<p>The server is running. The web UI is coming: it has not been built into this binary yet.</p>
<p>Meanwhile, explore the API in the <a href="/docs">interactive API documentation</a>
(<a href="/api/openapi.json">OpenAPI document</a>), or check <a href="/api/user/me">who you are</a>.</p>
</body>
</html>
"#;

/// The SPA fallback for every non-API path.
pub async fn spa(method: Method, uri: Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return ApiError::MethodNotAllowed.into_response();
    }
    let path = uri.path().trim_start_matches('/');
    if !path.is_empty()
        && let Some(file) = WebAssets::get(path)
    {
        let mime = file.metadata.mimetype().to_owned();
        let cache = if path.starts_with("assets/") {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        return (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_str(&mime)
                        .unwrap_or(HeaderValue::from_static("application/octet-stream")),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            ],
            file.data.into_owned(),
        )
            .into_response();
    }
    let body = WebAssets::get("index.html").map_or_else(
        || PLACEHOLDER.as_bytes().to_vec(),
        |file| file.data.into_owned(),
    );
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}
