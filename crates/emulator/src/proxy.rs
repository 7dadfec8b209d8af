//! The emulated Apps reverse proxy (`shared/UPSTREAM.md` §1.2 and §1.5): one listener per app on
//! 127.0.0.1, whose address is the app's `url`, in front of the replicas [`crate::runtime`] runs.
//!
//! This module owns who a request comes from, what is forwarded and how failures answer:
//! - the user is the principal of a Bearer token the emulator issued (a PAT or an OAuth token),
//!   or of the sign-in cookie set by `POST /.emulator/sign-in`, a small form listing the
//!   fixture's users (`/.emulator/sign-out` forgets it). Without either, a browser gets that form
//!   (401) and any other client a 401 JSON error;
//! - requests go to the running replicas round robin, bodies streamed both ways as they come
//!   (server-sent events too), with `X-Forwarded-Email`, `-User`, `-Preferred-Username`,
//!   `-Host`, `X-Real-Ip`, a new `X-Request-Id`, and, only when the app's effective user API
//!   scopes go beyond the IAM defaults, `X-Forwarded-Access-Token`: a downscoped user token,
//!   cached per user and scope set until 5 minutes before it expires. Such headers sent by the
//!   client are dropped, and so are `Authorization` and the sign-in cookie;
//! - 504 when the app sends no response headers within `apps_proxy_timeout` (a body already
//!   streaming is left alone), 502 when no replica runs or the connection fails, 503 while the
//!   app is stopped, starting or being deployed with no replica. Every forwarded response
//!   carries `x-emulator-replica: <index>`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{FromRequest, Query};
use axum::http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, COOKIE, HOST, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, Uri, Version};
use axum::response::IntoResponse;
use chrono::{DateTime, Duration, Utc};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::error::ApiError;
use crate::runtime::{Route, Runtime};
use crate::state::{Emulator, Principal, lock};

/// The reserved path of the sign-in form.
const SIGN_IN: &str = "/.emulator/sign-in";
/// The reserved path that forgets the sign-in.
const SIGN_OUT: &str = "/.emulator/sign-out";
/// The sign-in cookie; cookies ignore ports, so every app's proxy shares it.
const SESSION_COOKIE: &str = "dbapp-emulator-session";
/// Headers that only the proxy may set; a client's copies are dropped.
const IDENTITY_HEADERS: [&str; 3] = ["x-real-ip", "x-request-id", "x-forwarded-access-token"];
/// Headers of one hop, never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];
/// Lifetime of a forwarded user token.
const USER_TOKEN_TTL: Duration = Duration::hours(1);
/// A cached user token is replaced when it has less than this left.
const USER_TOKEN_MARGIN: Duration = Duration::minutes(5);

/// `(user, space-separated scopes)` → a forwarded user token and its expiry.
type TokenCache = HashMap<(String, String), (String, DateTime<Utc>)>;

/// What every app's proxy shares: one HTTP client, the forwarded-token cache and the sign-in
/// sessions.
pub(crate) struct ProxyShared {
    client: Client<HttpConnector, Body>,
    tokens: Mutex<TokenCache>,
    /// Sign-in cookie value → user name.
    sessions: Mutex<HashMap<String, String>>,
}

// Tokens and session ids are credentials: a debug print shows how many there are, never them.
impl std::fmt::Debug for ProxyShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyShared")
            .field("cached_tokens", &lock(&self.tokens).len())
            .field("sessions", &lock(&self.sessions).len())
            .finish_non_exhaustive()
    }
}

impl ProxyShared {
    pub(crate) fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            tokens: Mutex::default(),
            sessions: Mutex::default(),
        }
    }

    /// Forgets cached tokens and sign-ins, as a reset does.
    pub(crate) fn reset(&self) {
        lock(&self.tokens).clear();
        lock(&self.sessions).clear();
    }

    /// A downscoped token of `user` with `scopes`, from the cache while it has more than
    /// [`USER_TOKEN_MARGIN`] left and still authenticates.
    fn user_token(&self, emulator: &Emulator, user: &Principal, scopes: &[String]) -> String {
        let key = (user.user_name.clone(), scopes.join(" "));
        let cached = lock(&self.tokens).get(&key).cloned();
        if let Some((token, expires_at)) = cached
            && expires_at - USER_TOKEN_MARGIN > Utc::now()
            && emulator.authenticate(&token).is_ok()
        {
            return token;
        }
        let (token, expires_at) = emulator.mint_downscoped_token(user, USER_TOKEN_TTL, scopes);
        lock(&self.tokens).insert(key, (token.clone(), expires_at));
        token
    }
}

/// Binds a new proxy listener on a free port of 127.0.0.1.
///
/// # Errors
/// When no port can be bound.
pub(crate) async fn bind() -> std::io::Result<TcpListener> {
    TcpListener::bind(("127.0.0.1", 0)).await
}

/// Serves app `app`'s proxy on `listener` until the task is aborted (the app goes).
pub(crate) async fn serve(listener: TcpListener, emulator: Emulator, app: String) {
    let app: Arc<str> = app.into();
    // Connection tasks live in the set, so they are aborted with the loop.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else {
                    // Out of file descriptors or similar: back off instead of spinning.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (emulator, app) = (emulator.clone(), app.clone());
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let (emulator, app) = (emulator.clone(), app.clone());
                        async move {
                            Ok::<_, Infallible>(handle(&emulator, &app, peer, request).await)
                        }
                    });
                    // Errors here are client disconnects: nothing to report.
                    let _ = Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn handle(
    emulator: &Emulator,
    app: &str,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Response<Body> {
    let request = request.map(Body::new);
    // A page whose DNS name was rebound to 127.0.0.1 could otherwise sign in as any fixture
    // user and drive the app with that user's forwarded token.
    if let Some(refusal) = crate::host::foreign_host_refusal(&request) {
        return refusal;
    }
    let Some(runtime) = emulator.runtime() else {
        return plain(StatusCode::BAD_GATEWAY, "The emulator runs no apps.".into());
    };
    let path = request.uri().path();
    if path == SIGN_IN {
        return match *request.method() {
            axum::http::Method::POST => sign_in(emulator, &runtime.proxy, request).await,
            _ => {
                let redirect = Query::<SignInQuery>::try_from_uri(request.uri())
                    .map(|q| q.0.redirect)
                    .unwrap_or_default();
                sign_in_page(emulator, &redirect, StatusCode::OK)
            }
        };
    }
    if path == SIGN_OUT {
        return sign_out(&runtime.proxy, request.headers());
    }
    forward(emulator, runtime, app, peer, request).await
}

#[derive(Debug, Default, Deserialize)]
struct SignInQuery {
    #[serde(default)]
    redirect: String,
}

#[derive(Debug, Deserialize)]
struct SignInForm {
    user: String,
    #[serde(default)]
    redirect: String,
}

/// Where to go after signing in: a path of this proxy, never another site.
fn safe_redirect(redirect: &str) -> &str {
    if redirect.starts_with('/') && !redirect.starts_with("//") && !redirect.contains('\\') {
        redirect
    } else {
        "/"
    }
}

fn escape_html(text: &str) -> String {
    text.chars()
        .fold(String::with_capacity(text.len()), |mut out, c| {
            match c {
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '&' => out.push_str("&amp;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&#39;"),
                c => out.push(c),
            }
            out
        })
}

/// The sign-in form: one button per active fixture user.
fn sign_in_page(emulator: &Emulator, redirect: &str, status: StatusCode) -> Response<Body> {
    let buttons: String = emulator
        .fixture
        .users
        .iter()
        .filter(|u| u.active)
        .map(|u| {
            format!(
                "<li><button name=\"user\" value=\"{}\">{} &lt;{}&gt;</button></li>\n",
                escape_html(&u.user_name),
                escape_html(&u.display_name),
                escape_html(&u.user_name)
            )
        })
        .collect();
    let html = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Sign in</title></head>\n\
         <body><h1>Sign in to the app</h1>\n<p>dbapp emulator: pick a user of the workspace \
         fixture.</p>\n<form method=\"post\" action=\"{SIGN_IN}\">\n\
         <input type=\"hidden\" name=\"redirect\" value=\"{}\">\n<ul>\n{buttons}</ul>\n</form>\
         </body></html>\n",
        escape_html(safe_redirect(redirect))
    );
    let mut response = (status, html).into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

async fn sign_in(
    emulator: &Emulator,
    shared: &ProxyShared,
    request: Request<Body>,
) -> Response<Body> {
    // axum's body extractors stop at 2 MiB: plenty for two fields.
    let Ok(axum::Form(form)) = axum::Form::<SignInForm>::from_request(request, &()).await else {
        return ApiError::bad_request("Expected a form with a `user` field.").into_response();
    };
    let known = emulator
        .principals
        .get(&form.user)
        .is_some_and(|p| p.active && !p.is_service_principal);
    if !known {
        return ApiError::bad_request(format!("No active user {:?} in the fixture.", form.user))
            .into_response();
    }
    let session = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    lock(&shared.sessions).insert(session.clone(), form.user);
    let cookie = format!("{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Lax");
    redirect_with_cookie(safe_redirect(&form.redirect), &cookie)
}

fn sign_out(shared: &ProxyShared, headers: &HeaderMap) -> Response<Body> {
    if let Some(session) = session_cookie(headers) {
        lock(&shared.sessions).remove(&session);
    }
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
    redirect_with_cookie(SIGN_IN, &cookie)
}

fn redirect_with_cookie(location: &str, cookie: &str) -> Response<Body> {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(location) {
        headers.insert(LOCATION, location);
    }
    if let Ok(cookie) = HeaderValue::from_str(cookie) {
        headers.insert(SET_COOKIE, cookie);
    }
    response
}

/// The pairs of every `Cookie` header.
fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(COOKIE)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    cookies(headers)
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// The user a request comes from: `Ok(None)` without credentials, `Err` with the answer to a
/// token that is refused.
fn identify(
    emulator: &Emulator,
    shared: &ProxyShared,
    headers: &HeaderMap,
) -> Result<Option<Arc<Principal>>, ApiError> {
    if headers.contains_key(AUTHORIZATION) {
        // Not a Bearer token: as if no credential was sent (sign-in page or 401).
        let Ok(token) = crate::auth::bearer_token(headers) else {
            return Ok(None);
        };
        return emulator.authenticate(token).map(Some);
    }
    let user =
        session_cookie(headers).and_then(|session| lock(&shared.sessions).get(&session).cloned());
    Ok(user
        .and_then(|name| emulator.principal(&name))
        .filter(|p| p.active))
}

fn plain(status: StatusCode, message: String) -> Response<Body> {
    (status, message).into_response()
}

/// Forwards a request of an identified user to a replica of the app.
async fn forward(
    emulator: &Emulator,
    runtime: &Runtime,
    app: &str,
    peer: SocketAddr,
    request: Request<Body>,
) -> Response<Body> {
    let user = match identify(emulator, &runtime.proxy, request.headers()) {
        Ok(Some(user)) => user,
        Ok(None) => return unauthenticated(emulator, &request),
        Err(refused) => return refused.into_response(),
    };
    let Some(view) = lock(&emulator.apps).proxy_view(app, Utc::now()) else {
        return plain(StatusCode::NOT_FOUND, format!("App {app} does not exist."));
    };
    let (index, port) = match runtime.route(app) {
        Route::Replica { index, port } => (index, port),
        Route::NoReplica if view.should_serve => {
            return plain(
                StatusCode::BAD_GATEWAY,
                format!("App {app} has no running replica; see /_emulator/apps/{app}/logs."),
            );
        }
        Route::NoReplica => {
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("App {app} is not available: it is stopped, starting or being deployed."),
            );
        }
    };
    let (mut parts, body) = request.into_parts();
    let forwarded_host = parts.headers.get(HOST).cloned().or_else(|| {
        let authority = parts.uri.authority()?;
        HeaderValue::from_str(authority.as_str()).ok()
    });
    clean_request_headers(&mut parts.headers);
    let workspace_id = emulator.fixture.workspace.workspace_id;
    let mut identity: Vec<(&str, String)> = vec![
        ("x-forwarded-email", user.user_name.clone()),
        ("x-forwarded-user", format!("{}@{workspace_id}", user.id)),
        ("x-forwarded-preferred-username", user.user_name.clone()),
        ("x-real-ip", peer.ip().to_string()),
        ("x-request-id", uuid::Uuid::new_v4().to_string()),
    ];
    if let Some(scopes) = &view.user_scopes {
        let token = runtime.proxy.user_token(emulator, &user, scopes);
        identity.push(("x-forwarded-access-token", token));
    }
    for (name, value) in identity {
        if let Ok(value) = HeaderValue::from_str(&value) {
            parts.headers.insert(HeaderName::from_static(name), value);
        }
    }
    if let Some(host) = forwarded_host {
        parts
            .headers
            .insert(HeaderName::from_static("x-forwarded-host"), host.clone());
        if !parts.headers.contains_key(HOST) {
            parts.headers.insert(HOST, host);
        }
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let Ok(uri) = format!("http://127.0.0.1:{port}{path}").parse::<Uri>() else {
        return plain(StatusCode::BAD_REQUEST, "Invalid request path.".into());
    };
    parts.uri = uri;
    // The replicas speak HTTP/1.1 to us, whatever the client spoke to the proxy.
    parts.version = Version::HTTP_11;
    let upstream = Request::from_parts(parts, body);
    let timeout = runtime.config.proxy_timeout;
    let response = match tokio::time::timeout(timeout, runtime.proxy.client.request(upstream)).await
    {
        Err(_) => {
            return plain(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "App {app} did not answer within {} ms.",
                    timeout.as_millis()
                ),
            );
        }
        Ok(Err(error)) => {
            return plain(
                StatusCode::BAD_GATEWAY,
                format!("App {app} could not be reached on replica {index}: {error}"),
            );
        }
        Ok(Ok(response)) => response,
    };
    let (mut parts, body) = response.into_parts();
    for name in HOP_BY_HOP {
        parts.headers.remove(name);
    }
    parts
        .headers
        .insert("x-emulator-replica", HeaderValue::from(index));
    Response::from_parts(parts, Body::new(body))
}

/// Drops what the client may not forward: hop-by-hop headers, `Authorization`, the sign-in
/// cookie, and every header the proxy sets itself.
fn clean_request_headers(headers: &mut HeaderMap) {
    let kept_cookies: Vec<String> = cookies(headers)
        .filter(|(name, _)| *name != SESSION_COOKIE)
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    headers.remove(COOKIE);
    if !kept_cookies.is_empty()
        && let Ok(value) = HeaderValue::from_str(&kept_cookies.join("; "))
    {
        headers.insert(COOKIE, value);
    }
    headers.remove(AUTHORIZATION);
    for name in HOP_BY_HOP.iter().chain(&IDENTITY_HEADERS) {
        headers.remove(*name);
    }
    let forwarded: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("x-forwarded-"))
        .cloned()
        .collect();
    for name in forwarded {
        headers.remove(name);
    }
}

/// No credentials: a browser gets the sign-in form, any other client a 401 JSON error.
fn unauthenticated(emulator: &Emulator, request: &Request<Body>) -> Response<Body> {
    let browser = request
        .headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if browser {
        let here = request.uri().path_and_query().map_or("/", |p| p.as_str());
        return sign_in_page(emulator, here, StatusCode::UNAUTHORIZED);
    }
    ApiError::unauthenticated(format!(
        "Send `Authorization: Bearer <token>` with a token of the workspace, or sign in at \
         {SIGN_IN}."
    ))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_stay_on_the_proxy() {
        assert_eq!(safe_redirect("/a?b=1"), "/a?b=1");
        for outside in ["https://evil.example", "//evil.example", "/\\evil", ""] {
            assert_eq!(safe_redirect(outside), "/", "{outside}");
        }
    }

    #[test]
    fn client_identity_headers_authorization_and_the_session_cookie_are_dropped() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("authorization", "Bearer secret"),
            ("x-forwarded-email", "mallory@example.com"),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-real-ip", "10.0.0.1"),
            ("connection", "keep-alive"),
            ("cookie", "theme=dark; dbapp-emulator-session=abc; lang=en"),
            ("accept", "application/json"),
        ] {
            headers.append(name, HeaderValue::from_static(value));
        }

        clean_request_headers(&mut headers);

        let mut names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["accept", "cookie"]);
        assert_eq!(headers[COOKIE], "theme=dark; lang=en");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
