//! The caller's preferences, in the store under their `UserId`: no request can reach another
//! user's keys, whatever it sends. Keys match `^[a-z][a-z0-9_.-]{0,99}$` (a [`Name`] of
//! [`PreferenceKey`]); values are any JSON up to 100 KiB. `PUT` is an atomic upsert: 201 when created, 200 when replaced.
//!
//! Numbers are kept exactly: integers in the 64-bit range (signed or unsigned) as integers,
//! others as doubles, and both stores keep those exactly (the store's conformance tests). A
//! number a double cannot hold without changing its value — an integer past 2^64, a decimal
//! with more than 17 significant digits such as `0.1000000000000000000001`, `1e-400` — would
//! come back different, so it is refused (`400 INVALID_REQUEST`) rather than silently rounded;
//! `1e400` is refused by the JSON parser already. `-0` counts as `0` (Postgres keeps no sign on
//! zero). A JavaScript client reads integers past 2^53 rounded; one that needs them exactly
//! should send them as strings.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use dbapp_store::Preference;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{Name, PreferenceKey};
use crate::limits::PREFERENCE_VALUE_BYTES;
use crate::state::AppState;

/// One preference.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreferenceItem {
    /// The key.
    pub key: String,
    /// Any JSON.
    pub value: Value,
    /// First written.
    pub created_at: DateTime<Utc>,
    /// Last written.
    pub updated_at: DateTime<Utc>,
}

/// All of the caller's preferences.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreferenceList {
    /// By key.
    pub items: Vec<PreferenceItem>,
}

impl From<Preference> for PreferenceItem {
    fn from(p: Preference) -> Self {
        Self {
            key: p.key,
            value: p.value,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_preferences))
        .routes(routes!(get_preference, put_preference, delete_preference))
}

fn not_found(key: &str) -> ApiError {
    ApiError::not_found(
        ErrorCode::PreferenceNotFound,
        format!("You have no preference '{key}'."),
    )
}

/// The caller's preferences.
#[utoipa::path(get, path = "/api/preferences", tag = "preferences", security(("user_token" = [])), responses(
    (status = 200, body = PreferenceList),
    (status = 401, body = ErrorBody),
    (status = 503, body = ErrorBody, description = "DATABASE_UNAVAILABLE, STORAGE_NOT_CONFIGURED"),
))]
async fn list_preferences(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<Json<PreferenceList>, ApiError> {
    let items = app.store()?.list_preferences(caller.user_id()).await?;
    Ok(Json(PreferenceList {
        items: items.into_iter().map(PreferenceItem::from).collect(),
    }))
}

/// One of the caller's preferences.
#[utoipa::path(get, path = "/api/preferences/{key}", tag = "preferences", security(("user_token" = [])),
    params(("key" = String, Path, pattern = "^[a-z][a-z0-9_.-]{0,99}$")), responses(
    (status = 200, body = PreferenceItem),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "PREFERENCE_NOT_FOUND"),
    (status = 503, body = ErrorBody),
))]
async fn get_preference(
    State(app): State<AppState>,
    caller: Caller,
    key: Name<PreferenceKey>,
) -> Result<Json<PreferenceItem>, ApiError> {
    match app.store()?.get_preference(caller.user_id(), &key).await {
        Ok(p) => Ok(Json(p.into())),
        Err(dbapp_store::StoreError::NotFound(_)) => Err(not_found(&key)),
        Err(e) => Err(e.into()),
    }
}

/// Sets one of the caller's preferences; the body is the value (any JSON, ≤ 100 KiB).
#[utoipa::path(put, path = "/api/preferences/{key}", tag = "preferences", security(("user_token" = [])),
    params(("key" = String, Path, pattern = "^[a-z][a-z0-9_.-]{0,99}$")),
    request_body(content = Value, content_type = "application/json", description = "The value: any JSON up to 100 KiB"),
    responses(
    (status = 200, body = PreferenceItem, description = "Replaced"),
    (status = 201, body = PreferenceItem, description = "Created"),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 503, body = ErrorBody),
))]
async fn put_preference(
    State(app): State<AppState>,
    caller: Caller,
    key: Name<PreferenceKey>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return Err(ApiError::UnsupportedMediaType {
            expected: "application/json",
        });
    }
    if body.len() > PREFERENCE_VALUE_BYTES {
        return Err(ApiError::PayloadTooLarge {
            limit_bytes: PREFERENCE_VALUE_BYTES,
        });
    }
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid("body", format!("not valid JSON: {e}")))?;
    if let Some(number) = inexact_number(&body) {
        return Err(ApiError::invalid(
            "body",
            format!(
                "the number {} cannot be kept exactly (at most 17 significant digits, or an \
                 integer of 64 bits); send it as a string",
                number.chars().take(40).collect::<String>()
            ),
        ));
    }
    let upserted = app
        .store()?
        .upsert_preference(caller.user_id(), &key, &value)
        .await?;
    let status = if upserted.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(PreferenceItem::from(upserted.preference))).into_response())
}

/// Deletes one of the caller's preferences.
#[utoipa::path(delete, path = "/api/preferences/{key}", tag = "preferences", security(("user_token" = [])),
    params(("key" = String, Path, pattern = "^[a-z][a-z0-9_.-]{0,99}$")), responses(
    (status = 204, description = "Deleted"),
    (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "PREFERENCE_NOT_FOUND"),
    (status = 503, body = ErrorBody),
))]
async fn delete_preference(
    State(app): State<AppState>,
    caller: Caller,
    key: Name<PreferenceKey>,
) -> Result<StatusCode, ApiError> {
    if app
        .store()?
        .delete_preference(caller.user_id(), &key)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&key))
    }
}

/// The first number of the JSON text `body` (already parsed, so valid) whose value changes
/// when parsed and written again, as it is before it is stored.
fn inexact_number(body: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(body).ok()?;
    let bytes = text.as_bytes();
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if in_string {
            match byte {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else if byte == b'"' {
            in_string = true;
        } else if byte == b'-' || byte.is_ascii_digit() {
            let start = i;
            while i < bytes.len()
                && matches!(bytes[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
            {
                i += 1;
            }
            let token = &text[start..i];
            let exact = decimal(token);
            let kept = token
                .parse::<serde_json::Number>()
                .ok()
                .and_then(|n| decimal(&n.to_string()));
            if exact.is_none() || kept != exact {
                return Some(token);
            }
            continue;
        }
        i += 1;
    }
    None
}

/// A JSON number's exact value as (negative, significant digits, exponent): `-12.50e1` is
/// `(true, "125", 0)`. Zero is `(false, "", 0)` whatever its sign or exponent. `None` when the
/// exponent does not fit an `i64` (only a zero's could, and that is handled first).
fn decimal(number: &str) -> Option<(bool, String, i64)> {
    let (negative, unsigned) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
        None => (unsigned, None),
    };
    let (integer, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{integer}{fraction}");
    let significant = digits.trim_start_matches('0');
    if significant.is_empty() {
        return Some((false, String::new(), 0));
    }
    let trimmed = significant.trim_end_matches('0');
    let exponent: i64 = match exponent {
        Some(e) => e.strip_prefix('+').unwrap_or(e).parse().ok()?,
        None => 0,
    };
    let shift = i64::try_from(fraction.len()).ok()?
        - i64::try_from(significant.len() - trimmed.len()).ok()?;
    Some((negative, trimmed.to_owned(), exponent.checked_sub(shift)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_text_is_scanned_without_panicking(text in "\\PC{0,80}") {
            let _ = inexact_number(text.as_bytes());
        }

        #[test]
        fn every_double_and_64_bit_integer_is_exact(
            double in any::<f64>().prop_filter("finite", |d| d.is_finite()),
            signed in any::<i64>(),
            unsigned in any::<u64>(),
        ) {
            let body = serde_json::json!([double, signed, unsigned]).to_string();
            prop_assert_eq!(inexact_number(body.as_bytes()), None);
        }
    }

    #[test]
    fn numbers_a_double_or_a_64_bit_integer_holds_are_exact() {
        for number in [
            "9007199254740993",
            "9223372036854775808",
            "18446744073709551615",
            "-9223372036854775808",
            "0.1",
            "0.30000000000000004",
            "1.50",
            "1e2",
            "1E+2",
            "-0",
            "-0.0e-999999999999999999999",
            "1e300",
            "5e-324",
            "1.7976931348623157e308",
        ] {
            assert_eq!(inexact_number(number.as_bytes()), None, "{number}");
        }
    }

    #[test]
    fn numbers_that_would_change_are_found_even_inside_structures() {
        for (body, number) in [
            ("18446744073709551617", "18446744073709551617"),
            ("[1, 0.1000000000000000000001]", "0.1000000000000000000001"),
            (r#"{"a\"1": {"b": [1e-400]}}"#, "1e-400"),
            (
                "-123456789012345678901234567890",
                "-123456789012345678901234567890",
            ),
            ("1e99999999999999999999", "1e99999999999999999999"),
        ] {
            assert_eq!(inexact_number(body.as_bytes()), Some(number), "{body}");
        }
        assert_eq!(inexact_number(br#"["12345678901234567890123", 1]"#), None);
    }

    #[test]
    fn decimals_compare_by_value() {
        assert_eq!(decimal("-12.50e1"), Some((true, "125".to_owned(), 0)));
        assert_eq!(decimal("100"), Some((false, "1".to_owned(), 2)));
        assert_eq!(decimal("0.0010"), Some((false, "1".to_owned(), -3)));
        assert_eq!(decimal("-0.0"), Some((false, String::new(), 0)));
    }
}
