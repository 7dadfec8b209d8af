//! The routes of `API.md`, one module per resource, each with its `router()`; and what they
//! share: pagination ([`PageSpec`], an extractor, and [`page_upstream`]), and the JSON fallback
//! for unknown `/api` paths. Input checks live in the extractors of [`crate::extract`].
//!
//! Response types send every field, `null` included, so each `Option` field of one says
//! `#[schema(required)]`: utoipa would otherwise document it as optional and the UI's generated
//! types would read `x?: T | null`. Only a field serde really omits
//! (`skip_serializing_if = "Option::is_none"`) stays optional; `tests/api/openapi.rs` lists those
//! and fails on any other optional response property.

pub mod health;
pub mod model_serving;
pub mod preferences;
pub mod unity_catalog;
pub mod usage;
pub mod user;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::routing::any;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::{ApiQuery, Limit, Offset};
use crate::state::AppState;

/// Deserializes a body that the contract says is a JSON object. serde's derived `Deserialize`
/// also accepts a struct written as an array of its field values (`[null, 30]`), a shape the
/// OpenAPI document does not allow, so anything but an object is refused first.
///
/// # Errors
/// `INVALID_REQUEST` on `field`.
pub fn from_json_object<T: serde::de::DeserializeOwned>(
    field: &str,
    value: serde_json::Value,
) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(ApiError::invalid(field, "must be a JSON object"));
    }
    serde_json::from_value(value).map_err(|e| ApiError::invalid(field, e.to_string()))
}

/// Milliseconds since the epoch (as the workspace sends them) as RFC 3339 UTC.
#[must_use]
pub fn rfc3339_ms(ms: Option<i64>) -> Option<String> {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// Pagination query parameters of list routes.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Pagination {
    /// Items per page, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The previous page's `next_page_token` (opaque).
    pub page_token: Option<String>,
    /// Items to skip (≥ 0); not with `page_token`.
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

/// Where a page starts: an upstream page token and how many of its items to skip.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The upstream page token to fetch with (`None`: the first page).
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// Items to skip from there.
    #[serde(rename = "s", default)]
    pub skip: u64,
}

impl Cursor {
    /// The opaque token of this cursor.
    #[must_use]
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Parses a token made by [`Cursor::encode`].
    #[must_use]
    pub fn decode(token: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// Validated pagination: the page size and where to start. An extractor, reading
/// [`Pagination`] from the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageSpec {
    /// 1–1000.
    pub limit: u32,
    /// Where to start.
    pub cursor: Cursor,
}

impl Pagination {
    /// Validates the parameters.
    ///
    /// # Errors
    /// `INVALID_REQUEST` naming `limit`, `offset` or `page_token`.
    pub fn spec(&self) -> Result<PageSpec, ApiError> {
        let limit = Limit::new(self.limit)?.get();
        let cursor = match (&self.page_token, self.offset) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "offset",
                    "give either page_token or offset, not both",
                ));
            }
            (Some(token), None) => Cursor::decode(token)
                .ok_or_else(|| ApiError::invalid("page_token", "is not a token this API issued"))?,
            (None, offset) => Cursor {
                upstream: None,
                skip: Offset::new(offset)?.get(),
            },
        };
        Ok(PageSpec { limit, cursor })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PageSpec {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let ApiQuery(pagination) = ApiQuery::<Pagination>::from_request_parts(parts, state).await?;
        pagination.spec()
    }
}

/// A page of a list backed by the workspace.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemsPage<T: ToSchema> {
    /// The items.
    pub items: Vec<T>,
    /// The token of the next page; `null` at the end.
    #[schema(required)]
    pub next_page_token: Option<String>,
}

/// A page of a list backed by the store.
#[derive(Debug, Serialize, ToSchema)]
pub struct CountedPage<T: ToSchema> {
    /// The items.
    pub items: Vec<T>,
    /// The token of the next page; `null` at the end.
    #[schema(required)]
    pub next_page_token: Option<String>,
    /// Items in the whole list.
    pub total_count: i64,
}

/// Most upstream pages read for one API page (a guard against endless empty pages).
const MAX_UPSTREAM_PAGES: usize = 1_000;

/// Reads one API page from a paginated upstream list, starting at `spec.cursor`: skips
/// `cursor.skip` items (across pages), collects `spec.limit`, and returns the cursor of what
/// follows.
///
/// # Errors
/// The upstream error.
pub async fn page_upstream<T, F, Fut, E>(
    spec: &PageSpec,
    mut fetch: F,
) -> Result<(Vec<T>, Option<Cursor>), E>
where
    F: FnMut(Option<String>, u32) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<String>), E>>,
{
    let mut items = Vec::new();
    let mut token = spec.cursor.upstream.clone();
    let mut skip = spec.cursor.skip;
    for _ in 0..MAX_UPSTREAM_PAGES {
        let (page, next) = fetch(token.clone(), spec.limit).await?;
        let next = next.filter(|t| !t.is_empty());
        let len = page.len() as u64;
        if len <= skip {
            skip -= len;
        } else {
            let start = usize::try_from(skip).unwrap_or(usize::MAX);
            for (taken, item) in (skip..).zip(page.into_iter().skip(start)) {
                if items.len() == spec.limit as usize {
                    return Ok((
                        items,
                        Some(Cursor {
                            upstream: token,
                            skip: taken,
                        }),
                    ));
                }
                items.push(item);
            }
            skip = 0;
        }
        match next {
            None => return Ok((items, None)),
            Some(next) if items.len() == spec.limit as usize => {
                return Ok((
                    items,
                    Some(Cursor {
                        upstream: Some(next),
                        skip: 0,
                    }),
                ));
            }
            Some(next) => token = Some(next),
        }
    }
    Ok((items, None))
}

async fn api_route_not_found() -> ApiError {
    ApiError::RouteNotFound
}

/// Unknown `/api` paths answer `ROUTE_NOT_FOUND`, never the UI.
pub fn fallback_router() -> Router<AppState> {
    Router::new()
        .route("/api", any(api_route_not_found))
        .route("/api/{*rest}", any(api_route_not_found))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pagination_bounds_are_checked() {
        let spec = |limit, offset, token: Option<&str>| {
            Pagination {
                limit,
                offset,
                page_token: token.map(str::to_owned),
            }
            .spec()
        };
        assert_eq!(spec(None, None, None).unwrap().limit, 100);
        assert!(spec(Some(0), None, None).is_err());
        assert!(spec(Some(1001), None, None).is_err());
        assert!(spec(None, Some(-1), None).is_err());
        assert!(spec(None, Some(1), Some("x")).is_err());
        assert!(spec(None, None, Some("not a token!")).is_err());
        assert_eq!(spec(Some(5), Some(7), None).unwrap().cursor.skip, 7);
    }

    #[tokio::test]
    async fn upstream_pages_are_cut_and_resumed() {
        // Arrange: upstream pages of 3 with an empty page in between.
        let pages: Vec<(Vec<u32>, Option<&str>)> = vec![
            (vec![1, 2, 3], Some("a")),
            (vec![], Some("b")),
            (vec![4, 5, 6], Some("c")),
            (vec![7], None),
        ];
        let fetch = |token: Option<String>, _limit: u32| {
            let index = match token.as_deref() {
                None => 0,
                Some("a") => 1,
                Some("b") => 2,
                _ => 3,
            };
            let (items, next) = pages[index].clone();
            async move { Ok::<_, ()>((items, next.map(str::to_owned))) }
        };
        let mut spec = PageSpec {
            limit: 2,
            cursor: Cursor {
                upstream: None,
                skip: 1,
            },
        };

        // Act: walk every page.
        let mut seen = Vec::new();
        loop {
            let (items, next) = page_upstream(&spec, fetch).await.unwrap();
            seen.extend(items);
            match next {
                Some(cursor) => spec.cursor = Cursor::decode(&cursor.encode()).unwrap(),
                None => break,
            }
        }

        // Assert
        assert_eq!(seen, [2, 3, 4, 5, 6, 7]);
    }

    proptest! {
        #[test]
        fn page_tokens_round_trip(upstream in proptest::option::of("\\PC{0,40}"), skip in 0u64..1_000_000) {
            let cursor = Cursor { upstream, skip };
            prop_assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        }

        #[test]
        fn arbitrary_page_tokens_never_panic(token in "\\PC{0,60}") {
            let _ = Cursor::decode(&token);
        }
    }
}
