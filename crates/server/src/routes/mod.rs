//! The routes of `API.md`, one module per resource, each with its `router()`; and what they
//! share: pagination ([`PageSpec`], an extractor, and [`page_upstream`]), the [`Uncompressed`]
//! marker, and the JSON fallback for unknown `/api` paths. Input checks live in the extractors
//! of [`crate::extract`].
//!
//! Response types send every field, `null` included, so each `Option` field of one says
//! `#[schema(required)]`: utoipa would otherwise document it as optional and the UI's generated
//! types would read `x?: T | null`. Only a field serde really omits
//! (`skip_serializing_if = "Option::is_none"`) stays optional; `tests/api/openapi.rs` lists those
//! and fails on any other optional response property.

pub mod assistant;
pub mod chat;
pub mod conversations;
pub mod genie;
pub mod health;
pub mod model_serving;
pub mod preferences;
pub mod queries;
pub mod sse;
pub mod unity_catalog;
pub mod usage;
pub mod user;
pub mod volumes;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::routing::any;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dbapp_store::{Page, PageRequest};
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

/// The workspace page request of an upstream page token (`None`: the first page), for
/// [`page_upstream`]'s fetches.
#[must_use]
pub fn upstream_page(token: Option<String>, limit: u32) -> dbapp_databricks::api::PageRequest {
    match token {
        Some(token) => dbapp_databricks::api::PageRequest::after(limit, token),
        None => dbapp_databricks::api::PageRequest::first(limit),
    }
}

/// A response extension a route sets to keep its response out of the compression layer (see
/// `app`): a file download keeps its `Content-Length`, and its bytes flow as they arrive.
#[derive(Debug, Clone, Copy)]
pub struct Uncompressed;

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

impl PageSpec {
    /// The page of a store list this spec names (store lists are paged by offset; the token
    /// carries it).
    ///
    /// # Errors
    /// `INVALID_REQUEST` for an offset the store cannot skip.
    pub fn store_page(&self) -> Result<PageRequest, ApiError> {
        Ok(PageRequest::new(self.limit, self.cursor.skip)?)
    }
}

impl<T: ToSchema> CountedPage<T> {
    /// The API page of `page`, read from the store at `spec`, its items made by `item`:
    /// `next_page_token` is set while items remain after this page.
    pub fn from_store<U>(spec: &PageSpec, page: Page<U>, item: impl FnMut(U) -> T) -> Self {
        let next_offset = spec.cursor.skip + page.items.len() as u64;
        let more = i64::try_from(next_offset).unwrap_or(i64::MAX) < page.total_count
            && !page.items.is_empty();
        Self {
            items: page.items.into_iter().map(item).collect(),
            next_page_token: more.then(|| {
                Cursor {
                    upstream: None,
                    skip: next_offset,
                }
                .encode()
            }),
            total_count: page.total_count,
        }
    }
}

/// Most upstream calls one API page makes. Skipping a deep `offset`, or crossing empty upstream
/// pages, stops there: the page is answered with what it holds so far (possibly nothing) and a
/// `next_page_token` that resumes exactly where the calls stopped, so one request costs the
/// workspace a bounded number of calls and "no more items" is said only by the upstream list.
pub const MAX_UPSTREAM_CALLS: usize = 10;

/// Largest upstream page asked for (Unity Catalog caps pages at its own size below this). Pages
/// are asked for as large as the items still to skip and to collect need, so skipping 1 000 items
/// costs one call, not 1 000.
pub const MAX_UPSTREAM_PAGE: u32 = 1_000;

/// Reads one API page from a paginated upstream list, starting at `spec.cursor`: skips
/// `cursor.skip` items (across pages), collects up to `spec.limit`, and returns the cursor of
/// what follows. At most [`MAX_UPSTREAM_CALLS`] calls are made; when they are spent before the
/// page is full, the page is shorter than `spec.limit` and the cursor resumes the walk. The cursor
/// is `None` only when the upstream list has ended.
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
    let limit = spec.limit as usize;
    let mut items = Vec::new();
    let mut token = spec.cursor.upstream.clone();
    let mut skip = spec.cursor.skip;
    for _ in 0..MAX_UPSTREAM_CALLS {
        let wanted = ((limit - items.len()) as u64).saturating_add(skip);
        let size =
            u32::try_from(wanted.min(u64::from(MAX_UPSTREAM_PAGE))).unwrap_or(MAX_UPSTREAM_PAGE);
        let (page, next) = fetch(token.clone(), size).await?;
        let next = next.filter(|t| !t.is_empty());
        let len = page.len() as u64;
        if len <= skip {
            skip -= len;
        } else {
            let start = usize::try_from(skip).unwrap_or(usize::MAX);
            for (taken, item) in (skip..).zip(page.into_iter().skip(start)) {
                if items.len() == limit {
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
            Some(next) => token = Some(next),
        }
        if items.len() == limit {
            break;
        }
    }
    // The page is full, or the call budget is spent: the rest starts at the last upstream token.
    Ok((
        items,
        Some(Cursor {
            upstream: token,
            skip,
        }),
    ))
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

    /// One upstream page of numbers, as `page_upstream` expects it.
    type NumberPage = std::future::Ready<Result<(Vec<u64>, Option<String>), ()>>;

    /// An upstream list of `total` numbers served `cap` at a time, counting its calls.
    fn numbers(
        total: u64,
        cap: u32,
        calls: &std::cell::Cell<usize>,
    ) -> impl FnMut(Option<String>, u32) -> NumberPage + '_ {
        move |token, size| {
            calls.set(calls.get() + 1);
            let start: u64 = token.map_or(0, |t| t.parse().unwrap());
            let end = (start + u64::from(size.min(cap))).min(total);
            let next = (end < total).then(|| end.to_string());
            std::future::ready(Ok(((start..end).collect(), next)))
        }
    }

    #[tokio::test]
    async fn a_deep_offset_costs_a_bounded_number_of_calls_and_still_resumes() {
        // Arrange: 100 000 items, one per upstream page; skip 99 998 of them.
        let calls = std::cell::Cell::new(0);
        let mut spec = PageSpec {
            limit: 1,
            cursor: Cursor {
                upstream: None,
                skip: 99_998,
            },
        };

        // Act: follow the tokens until an item arrives, as a client would.
        let mut requests = 0;
        let (item, rest) = loop {
            requests += 1;
            calls.set(0);
            let (items, next) = page_upstream(&spec, numbers(100_000, 1, &calls))
                .await
                .unwrap();
            assert!(calls.get() <= MAX_UPSTREAM_CALLS, "{} calls", calls.get());
            if let Some(first) = items.first() {
                break (*first, next);
            }
            spec.cursor = next.expect("an empty page before the end carries a token");
            if requests > 20_000 {
                panic!("no progress");
            }
        };

        // Assert: the right item, and the list goes on.
        assert_eq!(item, 99_998);
        assert!(rest.is_some());
        assert_eq!(requests, 99_998 / MAX_UPSTREAM_CALLS + 1);
    }

    #[tokio::test]
    async fn an_offset_within_a_few_upstream_pages_costs_a_few_calls() {
        // Arrange: 1 500 items, upstream pages of up to 1 000.
        let calls = std::cell::Cell::new(0);
        let spec = PageSpec {
            limit: 1,
            cursor: Cursor {
                upstream: None,
                skip: 1_400,
            },
        };

        // Act
        let (items, next) = page_upstream(&spec, numbers(1_500, 1_000, &calls))
            .await
            .unwrap();

        // Assert: item 1 400 exists and is answered, with the rest behind a token.
        assert_eq!(items, [1_400]);
        assert!(next.is_some());
        assert_eq!(calls.get(), 2);
    }

    #[tokio::test]
    async fn only_the_upstream_end_ends_the_list() {
        // Arrange: endless empty pages that always promise more.
        let calls = std::cell::Cell::new(0);
        let fetch = |token: Option<String>, _size: u32| {
            calls.set(calls.get() + 1);
            let next = token.map_or(1, |t| t.parse::<u64>().unwrap() + 1);
            std::future::ready(Ok::<_, ()>((Vec::<u64>::new(), Some(next.to_string()))))
        };

        // Act
        let (items, next) = page_upstream(
            &PageSpec {
                limit: 5,
                cursor: Cursor::default(),
            },
            fetch,
        )
        .await
        .unwrap();

        // Assert
        assert!(items.is_empty());
        assert_eq!(calls.get(), MAX_UPSTREAM_CALLS);
        assert_eq!(next.unwrap().upstream.as_deref(), Some("10"));
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
