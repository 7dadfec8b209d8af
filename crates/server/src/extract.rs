//! The extractors handlers take their input through, each rejecting with the error envelope, so
//! that a handler only ever sees input that passed the contract's checks:
//!
//! - [`ApiQuery`], [`ApiJson`]: axum's, with [`ApiError`] rejections;
//! - [`Limit`] and [`Offset`]: the paging parameters with their documented bounds
//!   (`INVALID_REQUEST` naming `limit` or `offset`);
//! - [`Name`]: one path parameter checked against its kind's rule before the handler runs:
//!   [`Catalog`], [`Schema`], [`Table`], [`Volume`] (`INVALID_IDENTIFIER`), [`Endpoint`] and
//!   [`PreferenceKey`] (`INVALID_REQUEST`). A handler that takes a `Name<Table>` cannot forget
//!   the check, and a SQL statement built from one is safe to quote;
//! - [`ConversationId`]: the `{id}` of a conversation, a UUID (`INVALID_REQUEST` naming `id`).
//!
//! Extractors run in argument order, so handlers take `Caller` first: a request that is both
//! unauthenticated and malformed is answered `AUTH_*`, as before these extractors existed.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use serde::Deserialize;
use uuid::Uuid;

use crate::error::ApiError;
use crate::limits::{PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX, PAGE_LIMIT_MIN, PREFERENCE_KEY_PATTERN};

/// `Query<T>` whose rejection is the error envelope (`INVALID_REQUEST`).
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// `Path<T>` whose rejection is the error envelope (`INVALID_REQUEST`).
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// `Json<T>` whose rejections are the error envelope: `UNSUPPORTED_MEDIA_TYPE` without a JSON
/// content type, `PAYLOAD_TOO_LARGE` over the body limit, `INVALID_REQUEST` for bad JSON.
#[derive(Debug, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `?limit=`: items per page, or rows of a preview; [`PAGE_LIMIT_MIN`]–[`PAGE_LIMIT_MAX`],
/// [`PAGE_LIMIT_DEFAULT`] when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(u32);

impl Limit {
    /// Checks the parameter as sent.
    ///
    /// # Errors
    /// `INVALID_REQUEST` on `limit` outside the bounds.
    pub fn new(value: Option<i64>) -> Result<Self, ApiError> {
        let Some(value) = value else {
            return Ok(Self(PAGE_LIMIT_DEFAULT));
        };
        u32::try_from(value)
            .ok()
            .filter(|n| (PAGE_LIMIT_MIN..=PAGE_LIMIT_MAX).contains(n))
            .map(Self)
            .ok_or_else(|| {
                ApiError::invalid(
                    "limit",
                    format!("must be between {PAGE_LIMIT_MIN} and {PAGE_LIMIT_MAX}"),
                )
            })
    }

    /// The limit.
    #[must_use]
    pub fn get(self) -> u32 {
        self.0
    }
}

/// `?offset=`: items to skip, 0 or more, 0 when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offset(u64);

impl Offset {
    /// Checks the parameter as sent.
    ///
    /// # Errors
    /// `INVALID_REQUEST` on a negative `offset`.
    pub fn new(value: Option<i64>) -> Result<Self, ApiError> {
        match value {
            None => Ok(Self(0)),
            Some(n) if n >= 0 => Ok(Self(n.unsigned_abs())),
            Some(_) => Err(ApiError::invalid("offset", "must be 0 or more")),
        }
    }

    /// The offset.
    #[must_use]
    pub fn get(self) -> u64 {
        self.0
    }
}

/// The one query parameter [`Limit`] reads (others are left to their own extractors).
#[derive(Deserialize)]
struct LimitParam {
    limit: Option<i64>,
}

/// The one query parameter [`Offset`] reads.
#[derive(Deserialize)]
struct OffsetParam {
    offset: Option<i64>,
}

impl<S: Send + Sync> FromRequestParts<S> for Limit {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let ApiQuery(LimitParam { limit }) = ApiQuery::from_request_parts(parts, state).await?;
        Self::new(limit)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Offset {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let ApiQuery(OffsetParam { offset }) = ApiQuery::from_request_parts(parts, state).await?;
        Self::new(offset)
    }
}

/// A kind of name taken from the path: the route parameter it is read from and its rule.
pub trait NameKind {
    /// The route parameter, e.g. `catalog` for `/catalogs/{catalog}`.
    const PARAM: &'static str;

    /// Checks a value.
    ///
    /// # Errors
    /// The kind's error, as `API.md` gives it.
    fn check(value: &str) -> Result<(), ApiError>;
}

/// A path parameter of kind `K` that passed `K`'s rule.
pub struct Name<K> {
    value: String,
    kind: PhantomData<K>,
}

impl<K: NameKind> Name<K> {
    /// Checks `value` against `K`'s rule.
    ///
    /// # Errors
    /// `K`'s error.
    pub fn parse(value: &str) -> Result<Self, ApiError> {
        K::check(value)?;
        Ok(Self {
            value: value.to_owned(),
            kind: PhantomData,
        })
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.value
    }
}

impl<K> Deref for Name<K> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.value
    }
}

impl<K> fmt::Display for Name<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

impl<K> fmt::Debug for Name<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.value, f)
    }
}

impl<K: NameKind, S: Send + Sync> FromRequestParts<S> for Name<K> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Self::parse(&path_param(parts, state, K::PARAM).await?)
    }
}

/// The `{id}` of a conversation, parsed as a UUID before the handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversationId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for ConversationId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let value = path_param(parts, state, "id").await?;
        Uuid::try_parse(&value)
            .map(Self)
            .map_err(|_| ApiError::invalid("id", "must be a UUID"))
    }
}

/// The route parameter `param`, percent-decoded.
async fn path_param<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
    param: &str,
) -> Result<String, ApiError> {
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|rejection| match rejection {
            // Worded as axum's `Path` words it, which these extractors replaced.
            RawPathParamsRejection::InvalidUtf8InPathParam(e) => {
                ApiError::invalid("path", format!("Invalid URL: {}", e.body_text()))
            }
            other => ApiError::internal(other.body_text()),
        })?;
    params
        .iter()
        .find_map(|(name, value)| (name == param).then(|| value.to_owned()))
        // A handler asking for a parameter its route does not have: ours to fix.
        .ok_or_else(|| ApiError::internal(format!("the route has no {{{param}}}")))
}

/// Checks a catalog, schema or table name against [`crate::limits::IDENTIFIER_PATTERN`].
///
/// # Errors
/// `INVALID_IDENTIFIER` naming the field.
pub fn validate_identifier(field: &'static str, value: &str) -> Result<(), ApiError> {
    let bytes = value.as_bytes();
    let valid = (1..=255).contains(&bytes.len())
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(ApiError::InvalidIdentifier { field })
    }
}

/// Checks a preference key against [`PREFERENCE_KEY_PATTERN`].
///
/// # Errors
/// `INVALID_REQUEST` on `key`.
pub fn validate_key(key: &str) -> Result<(), ApiError> {
    let bytes = key.as_bytes();
    let valid = (1..=100).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes[1..].iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        });
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "key",
            format!("must match {PREFERENCE_KEY_PATTERN}"),
        ))
    }
}

/// Checks a serving endpoint name: 1–255 letters, digits, `-`, `_` and `.`, and not made of
/// dots alone: `.` and `..` would name another upstream path once put into the URL
/// (`/serving-endpoints/../…`).
///
/// # Errors
/// `INVALID_REQUEST` on `name`.
pub fn validate_endpoint_name(name: &str) -> Result<(), ApiError> {
    let valid = !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !name.bytes().all(|b| b == b'.');
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "name",
            "an endpoint name has letters, digits, '-', '_' and '.' only, and not dots alone",
        ))
    }
}

/// Longest Genie id accepted (real ones are 32 hex characters).
pub const GENIE_ID_MAX_BYTES: usize = 64;

/// Checks a Genie id (space, conversation, message, attachment): 1–64 ASCII letters, digits,
/// `-` and `_`, so that it is one URL path segment upstream.
///
/// # Errors
/// `INVALID_REQUEST` on `field`.
pub fn validate_genie_id(field: &str, value: &str) -> Result<(), ApiError> {
    let valid = (1..=GENIE_ID_MAX_BYTES).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!("a Genie id has 1 to {GENIE_ID_MAX_BYTES} letters, digits, '-' and '_'"),
        ))
    }
}

macro_rules! name_kind {
    ($(#[$doc:meta])* $kind:ident, $param:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub enum $kind {}

        impl NameKind for $kind {
            const PARAM: &'static str = $param;

            fn check(value: &str) -> Result<(), ApiError> {
                $check(value)
            }
        }
    };
}

name_kind!(
    /// `{catalog}`: a Unity Catalog identifier (`INVALID_IDENTIFIER`).
    Catalog,
    "catalog",
    |v| validate_identifier("catalog", v)
);
name_kind!(
    /// `{schema}`: a Unity Catalog identifier (`INVALID_IDENTIFIER`).
    Schema,
    "schema",
    |v| validate_identifier("schema", v)
);
name_kind!(
    /// `{table}`: a Unity Catalog identifier (`INVALID_IDENTIFIER`).
    Table,
    "table",
    |v| validate_identifier("table", v)
);
name_kind!(
    /// `{volume}`: a Unity Catalog identifier (`INVALID_IDENTIFIER`).
    Volume,
    "volume",
    |v| validate_identifier("volume", v)
);
name_kind!(
    /// `{name}` of a serving endpoint (`INVALID_REQUEST` on `name`).
    Endpoint,
    "name",
    validate_endpoint_name
);
name_kind!(
    /// `{key}` of a preference (`INVALID_REQUEST` on `key`).
    PreferenceKey,
    "key",
    validate_key
);

name_kind!(
    /// `{space_id}` of a Genie space (`INVALID_REQUEST` on `space_id`).
    GenieSpace,
    "space_id",
    |v| validate_genie_id("space_id", v)
);
name_kind!(
    /// `{conversation_id}` of a Genie conversation (`INVALID_REQUEST` on `conversation_id`).
    GenieConversation,
    "conversation_id",
    |v| validate_genie_id("conversation_id", v)
);
name_kind!(
    /// `{message_id}` of a Genie message (`INVALID_REQUEST` on `message_id`).
    GenieMessage,
    "message_id",
    |v| validate_genie_id("message_id", v)
);
name_kind!(
    /// `{attachment_id}` of a Genie attachment (`INVALID_REQUEST` on `attachment_id`).
    GenieAttachment,
    "attachment_id",
    |v| validate_genie_id("attachment_id", v)
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn identifiers_follow_the_documented_pattern() {
        for good in ["main", "_x", "a-b_c", "9lives", &"a".repeat(255)] {
            assert!(validate_identifier("catalog", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-a",
            "a.b",
            "a b",
            "a`b",
            "ä",
            &"a".repeat(256),
            "a;drop",
        ] {
            assert!(validate_identifier("catalog", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_and_offsets_keep_their_documented_bounds() {
        assert_eq!(Limit::new(None).unwrap().get(), PAGE_LIMIT_DEFAULT);
        assert_eq!(Limit::new(Some(1)).unwrap().get(), 1);
        assert_eq!(Limit::new(Some(1000)).unwrap().get(), 1000);
        for bad in [0, 1001, -1, i64::MAX] {
            let error = Limit::new(Some(bad)).unwrap_err();
            assert_eq!(
                error.to_string(),
                "Invalid request: limit: must be between 1 and 1000"
            );
        }
        assert_eq!(Offset::new(None).unwrap().get(), 0);
        assert_eq!(Offset::new(Some(7)).unwrap().get(), 7);
        assert_eq!(
            Offset::new(Some(-1)).unwrap_err().to_string(),
            "Invalid request: offset: must be 0 or more"
        );
    }

    #[test]
    fn each_name_kind_answers_with_its_documented_error() {
        let code = |e: ApiError| (e.code(), e.to_string());
        assert_eq!(
            code(Name::<Schema>::parse("a.b").unwrap_err()),
            (
                crate::error::ErrorCode::InvalidIdentifier,
                "'schema' is not a valid identifier.".to_owned()
            )
        );
        assert_eq!(
            code(Name::<Endpoint>::parse("a/b").unwrap_err()).0,
            crate::error::ErrorCode::InvalidRequest
        );
        assert_eq!(
            code(Name::<PreferenceKey>::parse("Upper").unwrap_err()).1,
            format!("Invalid request: key: must match {PREFERENCE_KEY_PATTERN}")
        );
        assert_eq!(Name::<Table>::parse("orders").unwrap().as_str(), "orders");
    }

    proptest! {
        #[test]
        fn identifier_validation_matches_the_pattern(value in "\\PC{0,20}") {
            let by_hand = {
                let mut chars = value.chars();
                match chars.next() {
                    Some(c) if c.is_ascii_alphanumeric() || c == '_' => {
                        chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    }
                    _ => false,
                }
            };
            prop_assert_eq!(validate_identifier("table", &value).is_ok(), by_hand);
        }

        #[test]
        fn keys_match_the_documented_pattern(key in "\\PC{0,110}") {
            let by_hand = {
                let mut chars = key.chars();
                matches!(chars.next(), Some('a'..='z'))
                    && key.chars().count() <= 100
                    && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '.' | '-'))
            };
            prop_assert_eq!(validate_key(&key).is_ok(), by_hand);
        }
    }
}
