//! The request body limit of `DESIGN.md` ([`BODY_LIMIT_BYTES`]) for every route but one: the
//! volume upload (`PUT /api/volumes/{catalog}/{schema}/{volume}/files/content`) streams its body
//! to the workspace and enforces its own, larger cap, `DBAPP_VOLUME_UPLOAD_MAX_BYTES`, in its
//! handler (`routes::volumes`), from `Content-Length` up front and while streaming.
//!
//! A body that declares more than the limit is refused here with `413 PAYLOAD_TOO_LARGE` before
//! any handler runs; any other body is wrapped in `http_body_util::Limited`, so an undeclared
//! (chunked) body fails once it passes the limit, which the body extractors answer with the
//! same 413. This is tower-http's `RequestBodyLimitLayer` with a per-request exemption, which
//! that layer cannot express.

use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::{Either, Ready, ready};
use tower::{Layer, Service};

use crate::error::ApiError;
use crate::limits::BODY_LIMIT_BYTES;

/// Applies [`BODY_LIMIT_BYTES`] to every request but the volume upload.
#[derive(Debug, Clone, Copy, Default)]
pub struct BodyLimitLayer;

impl<S> Layer<S> for BodyLimitLayer {
    type Service = BodyLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BodyLimit { inner }
    }
}

/// The service of [`BodyLimitLayer`].
#[derive(Debug, Clone)]
pub struct BodyLimit<S> {
    inner: S,
}

/// Whether the request is the volume upload, whose handler enforces its own cap.
#[must_use]
pub fn is_volume_upload(method: &Method, path: &str) -> bool {
    let segments: Vec<&str> = path.split('/').collect();
    method == Method::PUT
        && matches!(
            segments.as_slice(),
            ["", "api", "volumes", c, s, v, "files", "content"]
                if !c.is_empty() && !s.is_empty() && !v.is_empty()
        )
}

impl<S> Service<Request> for BodyLimit<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if is_volume_upload(request.method(), request.uri().path()) {
            return Either::Right(self.inner.call(request));
        }
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > BODY_LIMIT_BYTES as u64) {
            let refused = ApiError::PayloadTooLarge {
                limit_bytes: BODY_LIMIT_BYTES,
            };
            return Either::Left(ready(Ok(refused.into_response())));
        }
        let request =
            request.map(|body| Body::new(http_body_util::Limited::new(body, BODY_LIMIT_BYTES)));
        Either::Right(self.inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_volume_upload_is_exempt() {
        let upload = "/api/volumes/main/default/files/files/content";
        assert!(is_volume_upload(&Method::PUT, upload));
        assert!(!is_volume_upload(&Method::GET, upload));
        assert!(!is_volume_upload(
            &Method::PUT,
            "/api/volumes/main/default/files/files"
        ));
        assert!(!is_volume_upload(
            &Method::PUT,
            "/api/volumes//default/v/files/content"
        ));
        assert!(!is_volume_upload(&Method::PUT, "/api/preferences/content"));
        assert!(!is_volume_upload(
            &Method::PUT,
            "/api/volumes/a/b/c/files/content/more"
        ));
    }
}
