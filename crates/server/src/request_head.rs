//! The request-head limits, [`RequestHeadLayer`]: a request whose target is longer than
//! [`MAX_URI_BYTES`] is `414 URI_TOO_LONG`, one with more than [`MAX_HEADERS`] header fields or
//! more than [`MAX_HEADER_BYTES`] of them is `431 HEADERS_TOO_LARGE`, before anything else
//! reads it.
//!
//! hyper enforces limits of its own while it parses a request head, and answers a request over
//! them itself, with a bare status line (no envelope, no security headers, no correlation id),
//! because no request has been made yet that a service could answer. The `serve` module sets
//! hyper's limits well above these ones (twice the header count; hyper's read buffer of about
//! 400 KiB and its 65 534-byte request-target limit are already far above), so every request a
//! client can reasonably send is refused here, inside the middleware that adds the envelope,
//! the security headers and the correlation id. What hyper still answers itself: a head larger
//! than its read buffer or with more than twice [`MAX_HEADERS`] fields (`431`), a request
//! target over 65 534 bytes (`414`), and a head it cannot parse at all, such as a byte that is
//! not allowed in a request target (a raw `0xFF`: `400`) — hyper and the `http` crate have no
//! hook to answer those differently short of replacing the HTTP/1 parser.

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::http::Request;
use axum::response::{IntoResponse, Response};
use futures_util::future::{Either, Ready, ready};
use tower::{Layer, Service};

use crate::error::ApiError;
use crate::limits::{MAX_HEADER_BYTES, MAX_HEADERS, MAX_URI_BYTES};

/// The layer (see the module header).
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestHeadLayer;

impl<S> Layer<S> for RequestHeadLayer {
    type Service = RequestHead<S>;

    fn layer(&self, inner: S) -> RequestHead<S> {
        RequestHead { inner }
    }
}

/// The service of [`RequestHeadLayer`].
#[derive(Debug, Clone)]
pub struct RequestHead<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for RequestHead<S>
where
    S: Service<Request<B>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        match check(&request) {
            Ok(()) => Either::Right(self.inner.call(request)),
            Err(error) => Either::Left(ready(Ok(error.into_response()))),
        }
    }
}

/// The request's head against the limits.
fn check<B>(request: &Request<B>) -> Result<(), ApiError> {
    let uri = request.uri();
    let target = uri.authority().map_or(0, |a| a.as_str().len())
        + uri.path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_URI_BYTES {
        return Err(ApiError::UriTooLong {
            limit_bytes: MAX_URI_BYTES,
        });
    }
    let headers = request.headers();
    // As HTTP/2 counts a header list's size: name and value, plus 32 bytes of overhead each.
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 32)
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return Err(ApiError::HeadersTooLarge {
            limit_headers: MAX_HEADERS,
            limit_bytes: MAX_HEADER_BYTES,
        });
    }
    Ok(())
}
