//! The Host rule: a server listening on loopback answers only requests addressed to a loopback
//! name, so a web page whose DNS name an attacker rebinds to 127.0.0.1 cannot use it (its
//! requests still name the attacker's host). Without the rule such a page could mint tokens
//! through `/_emulator/tokens`, or, through `dbapp dev`, act as the developer.
//!
//! Loopback names are `localhost` (any case), IPv4 addresses in 127.0.0.0/8 and `[::1]`, with or
//! without a port. Every place a request names its target must be one: the request target's
//! authority (HTTP/2 `:authority`, or an HTTP/1.1 absolute-form target) and the `Host` header.
//! A request naming none is refused too: every browser and HTTP/1.1 client sends `Host`, so
//! only a hand-written request lacks it, and we cannot tell whom it was meant for.
//!
//! `dbapp dev` applies the same rule through [`loopback_authority`], so the app's port and the
//! emulator's port cannot drift apart.

use std::net::IpAddr;

use axum::extract::Request;
use axum::http::{Request as HttpRequest, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The authority `request` is addressed to (the target's, else `Host`), when every authority it
/// names is a loopback one; `None` when one is not, when `Host` is repeated or unreadable, or
/// when it names none.
pub fn loopback_authority<B>(request: &HttpRequest<B>) -> Option<&str> {
    let mut hosts = request.headers().get_all(header::HOST).iter();
    let host = match (hosts.next(), hosts.next()) {
        (None, _) => None,
        (Some(value), None) => Some(value.to_str().ok()?),
        // Two Host headers: proxies and servers disagree on which one counts.
        (Some(_), Some(_)) => return None,
    };
    let target = request.uri().authority().map(|a| a.as_str());
    let addressed = target.or(host)?;
    target
        .into_iter()
        .chain(host)
        .all(is_loopback_authority)
        .then_some(addressed)
}

/// Whether `authority` (`host[:port]`, as in a `Host` header) names a loopback host.
fn is_loopback_authority(authority: &str) -> bool {
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((v6, "")) => (v6, None),
            Some((v6, port)) => match port.strip_prefix(':') {
                Some(port) => (v6, Some(port)),
                None => return false,
            },
            None => return false,
        },
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    // `u16::from_str` takes a leading `+`, which no Host header carries.
    let port_ok = port.is_none_or(|p| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok()
    });
    let bracketed = authority.starts_with('[');
    let host_ok = if bracketed {
        host.parse::<std::net::Ipv6Addr>()
            .is_ok_and(|ip| IpAddr::V6(ip).to_canonical().is_loopback())
    } else {
        host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback())
    };
    port_ok && host_ok
}

/// Refuses, with `403 PERMISSION_DENIED`, a request not addressed to a loopback name. Installed
/// only when the emulator listens on loopback: bound elsewhere it is meant to be reached by
/// other names.
pub(crate) async fn refuse_foreign_host(request: Request, next: Next) -> Response {
    match foreign_host_refusal(&request) {
        Some(refusal) => refusal,
        None => next.run(request).await,
    }
}

/// The answer to a request not addressed to a loopback name, if `request` is one: the rule of
/// [`refuse_foreign_host`], for servers that are not axum routers (the Apps proxy).
pub(crate) fn foreign_host_refusal<B>(request: &HttpRequest<B>) -> Option<Response> {
    loopback_authority(request).is_none().then(|| {
        ApiError::permission_denied(
            "This emulator listens on loopback and only answers requests addressed to \
             localhost, 127.0.0.1 or [::1] (DNS-rebinding protection).",
        )
        .into_response()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(host: &[&str], uri: &str) -> HttpRequest<()> {
        let mut builder = HttpRequest::builder().uri(uri);
        for value in host {
            builder = builder.header(header::HOST, *value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn loopback_names_with_or_without_a_port_are_accepted() {
        for host in [
            "localhost",
            "LocalHost:8000",
            "127.0.0.1",
            "127.0.0.1:65535",
            "127.9.8.7:1",
            "[::1]",
            "[::1]:8000",
            "[0:0:0:0:0:0:0:1]:80",
            "[::ffff:127.0.0.1]:80",
        ] {
            assert!(
                loopback_authority(&request(&[host], "/")).is_some(),
                "{host}"
            );
        }
    }

    #[test]
    fn other_names_are_refused() {
        for host in [
            "evil.example",
            "evil.example:8000",
            "localhost.evil.example",
            "localhost.",
            "sub.localhost",
            "128.0.0.1",
            "0.0.0.0:8000",
            "2130706433",
            "0x7f.0.0.1",
            "[::2]",
            "[::1]x",
            "::1",
            "localhost:",
            "localhost:+80",
            "localhost:65536",
            "user@localhost",
            "",
        ] {
            assert!(
                loopback_authority(&request(&[host], "/")).is_none(),
                "{host}"
            );
        }
    }

    #[test]
    fn every_named_authority_must_be_loopback() {
        // HTTP/2 `:authority` and absolute-form targets arrive as the URI's authority.
        assert_eq!(
            loopback_authority(&request(&[], "http://localhost:8000/x")),
            Some("localhost:8000")
        );
        assert!(loopback_authority(&request(&[], "http://evil.example/x")).is_none());
        assert!(loopback_authority(&request(&["localhost"], "http://evil.example/x")).is_none());
        assert!(loopback_authority(&request(&["evil.example"], "http://localhost/x")).is_none());
        assert!(loopback_authority(&request(&["localhost", "localhost"], "/")).is_none());
        assert!(loopback_authority(&request(&[], "/")).is_none());
    }
}
