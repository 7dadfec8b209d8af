//! Host metadata, OIDC discovery and the OAuth client-credentials token endpoint
//! (`shared/UPSTREAM.md` §2.6, §2.7). None of these routes takes a Bearer token.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Duration;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::routes::base_url;
use crate::state::{Emulator, lock};

pub(super) fn router() -> Router<Emulator> {
    Router::new()
        .route("/.well-known/databricks-config", get(host_metadata))
        .route(
            "/oidc/.well-known/oauth-authorization-server",
            get(discovery),
        )
        .route("/oidc/v1/token", post(token))
}

async fn host_metadata(State(emulator): State<Emulator>, headers: HeaderMap) -> Json<Value> {
    let base = base_url(&headers, &emulator);
    let workspace = &emulator.fixture.workspace;
    Json(json!({
        "oidc_endpoint": format!("{base}/oidc"),
        "account_id": workspace.account_id,
        "workspace_id": workspace.workspace_id.to_string(),
        "cloud": workspace.cloud,
        "host_type": "WORKSPACE_HOST",
    }))
}

async fn discovery(State(emulator): State<Emulator>, headers: HeaderMap) -> Json<Value> {
    let base = base_url(&headers, &emulator);
    Json(json!({
        "issuer": format!("{base}/oidc"),
        "authorization_endpoint": format!("{base}/oidc/v1/authorize"),
        "token_endpoint": format!("{base}/oidc/v1/token"),
        "jwks_uri": format!("{base}/oidc/jwks.json"),
        "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": ["all-apis", "offline_access", "sql"],
        "response_types_supported": ["code"],
    }))
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    scope: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// An OAuth error body (RFC 6749 §5.2), which is what token endpoints send instead of the
/// Databricks error body.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

async fn token(
    State(emulator): State<Emulator>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Ok(form) = serde_urlencoded_form(&body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request body must be form-encoded.",
        );
    };
    if form.grant_type.as_deref() != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Only grant_type=client_credentials is supported by the emulator.",
        );
    }
    let Some((client_id, client_secret)) = basic_credentials(&headers)
        .or_else(|| form.client_id.clone().zip(form.client_secret.clone()))
    else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed.",
        );
    };
    let known = emulator
        .fixture
        .service_principals
        .iter()
        .any(|sp| sp.application_id == client_id && sp.client_secret == client_secret);
    // An app's own service principal authenticates with the credentials its container gets.
    let principal = match emulator.principals.get(&client_id).filter(|_| known) {
        Some(principal) => Some(principal.clone()),
        None => lock(&emulator.apps).authenticate_client(&client_id, &client_secret),
    };
    let Some(principal) = principal else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed.",
        );
    };
    let ttl = emulator.settings().oauth_token_ttl_secs;
    let scope = form.scope.unwrap_or_else(|| "all-apis".into());
    let (access_token, _) =
        emulator.mint_token(&principal, Duration::seconds(ttl as i64), "workspace");
    let mut response = Json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": scope,
    }))
    .into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

fn serde_urlencoded_form(body: &[u8]) -> Result<TokenForm, ()> {
    let pairs: Vec<(String, String)> = url_decode_pairs(body).ok_or(())?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    Ok(TokenForm {
        grant_type: get("grant_type"),
        scope: get("scope"),
        client_id: get("client_id"),
        client_secret: get("client_secret"),
    })
}

/// Decodes `application/x-www-form-urlencoded` pairs.
fn url_decode_pairs(body: &[u8]) -> Option<Vec<(String, String)>> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

fn percent_decode(text: &str) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = (bytes.next()? as char).to_digit(16)?;
                let lo = (bytes.next()? as char).to_digit(16)?;
                out.push(u8::try_from(hi * 16 + lo).ok()?);
            }
            _ => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    // RFC 6749 §2.3.1: the id and secret are form-encoded inside the Basic credentials.
    Some((percent_decode(id)?, percent_decode(secret)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_decode_percent_and_plus() {
        let pairs = url_decode_pairs(b"grant_type=client_credentials&scope=all-apis+sql&x=%2Fa%3D")
            .unwrap();
        assert_eq!(pairs[1], ("scope".into(), "all-apis sql".into()));
        assert_eq!(pairs[2], ("x".into(), "/a=".into()));
        assert!(url_decode_pairs(b"a=%zz").is_none());
    }
}
