//! Typed workspace APIs, one module per service, each adding methods to [`crate::Workspace`].
//! Method names follow the Databricks REST operations they wrap (`shared/UPSTREAM.md` §4); this
//! module holds what they share: [`Page`], [`PageRequest`] and path-segment encoding.

pub mod apps;
pub mod catalog;
pub mod current_user;
pub mod database;
pub mod files;
pub mod genie;
pub mod serving;
pub mod sql;
pub mod warehouses;
pub mod workspace;

pub use apps::{
    App, AppDeployment, AppReply, AppSpec, AppState, AppUpdate, CreateDeployment, UpdateApp,
};
pub use catalog::{CatalogInfo, ColumnInfo, SchemaInfo, TableInfo};
pub use current_user::CurrentUser;
pub use database::{DatabaseCredential, DatabaseInstance, PostgresEndpoint};
pub use files::{
    DirectoryEntry, DirectoryPageRequest, FileDownload, FileMetadata, FileStream, VolumeInfo,
};
pub use genie::{
    GenieAttachment, GenieConversation, GenieConversationStart, GenieError, GenieFeedbackRating,
    GenieMessage, GenieMessageStatus, GenieSpace, GenieWait,
};
pub use serving::{
    ChatMessage, ChatRequest, ChatResponse, Invocation, ServingEndpoint, ServingStream, StreamEnd,
};
pub use sql::{ExecuteStatement, StatementParameter, StatementProgress, StatementResult};
pub use warehouses::Warehouse;
pub use workspace::ObjectInfo;

use std::future::Future;

use futures_util::stream::{self, Stream, TryStreamExt};

use crate::error::{DatabricksError, ErrorKind};

/// One page of a list, with the token of the next one.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Page<T> {
    /// The items of this page; may be empty even when more follow.
    pub items: Vec<T>,
    /// The token of the next page; `None` at the end. An empty page may still carry one.
    pub next_page_token: Option<String>,
}

/// Which page to ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PageRequest {
    /// Items per page; `0` (the default) lets the server choose, as the SDKs do.
    pub max_results: u32,
    /// The previous page's `next_page_token`.
    pub page_token: Option<String>,
}

impl PageRequest {
    /// The first page, of at most `max_results` items (0: the server's page size).
    #[must_use]
    pub fn first(max_results: u32) -> Self {
        Self {
            max_results,
            page_token: None,
        }
    }

    /// The page after `token`.
    #[must_use]
    pub fn after(max_results: u32, token: impl Into<String>) -> Self {
        Self {
            max_results,
            page_token: Some(token.into()),
        }
    }
}

/// Walks every page, following `next_page_token` until it is absent or empty — **not** until a
/// page is empty, since the workspace may send empty pages that carry a token (UPSTREAM §4.2).
/// A token that repeats itself is an error rather than an endless loop.
pub(crate) fn paginate<'s, T, F, Fut>(
    max_results: u32,
    mut fetch: F,
) -> impl Stream<Item = Result<T, DatabricksError>> + 's
where
    T: 's,
    F: FnMut(PageRequest) -> Fut + 's,
    Fut: Future<Output = Result<Page<T>, DatabricksError>> + 's,
{
    // State: the token to ask with (`Some(None)` = first page), or `None` when done.
    stream::try_unfold(
        Some(None::<String>),
        move |state: Option<Option<String>>| {
            let asked_with = state.clone().flatten();
            let next = state.map(|token| {
                fetch(PageRequest {
                    max_results,
                    page_token: token,
                })
            });
            async move {
                let Some(next) = next else {
                    return Ok(None);
                };
                let page = next.await?;
                let token = page.next_page_token.filter(|t| !t.is_empty());
                if token.is_some() && token == asked_with {
                    return Err(DatabricksError::new(
                        ErrorKind::Decode,
                        "the workspace returned the same page token again",
                    ));
                }
                Ok(Some((page.items, token.map(Some))))
            }
        },
    )
    .map_ok(|items| stream::iter(items.into_iter().map(Ok)))
    .try_flatten()
}

/// An id that goes into a URL path as one segment: refused when empty, longer than 256 bytes,
/// or a dot segment (`.`, `..`, which URL parsing would resolve against the path, whatever their
/// encoding), then percent-encoded, so no id can change which path is called.
pub(crate) fn id_segment(what: &str, id: &str) -> Result<String, DatabricksError> {
    if id.is_empty() || id.len() > 256 || id == "." || id == ".." {
        return Err(DatabricksError::new(
            ErrorKind::BadRequest,
            format!("{what} {id:?} is not a valid id"),
        ));
    }
    Ok(encode_segment(id))
}

/// Percent-encodes one path segment (everything but unreserved characters).
pub(crate) fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded() {
        assert_eq!(encode_segment("main.sales.orders"), "main.sales.orders");
        assert_eq!(encode_segment("a b/c%"), "a%20b%2Fc%25");
    }

    #[test]
    fn ids_cannot_change_the_path() {
        assert_eq!(id_segment("space", "01ef-ab_c").unwrap(), "01ef-ab_c");
        assert_eq!(id_segment("space", "../x?y#z").unwrap(), "..%2Fx%3Fy%23z");
        for bad in ["", ".", "..", &"a".repeat(257)] {
            let error = id_segment("space", bad).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::BadRequest, "{bad:?}");
        }
    }

    proptest::proptest! {
        /// Whatever the id, an accepted one is a single segment that decodes back to the id.
        #[test]
        fn an_accepted_id_is_one_segment_that_decodes_to_itself(id in "\\PC{0,12}|[./%?#]{0,4}") {
            if let Ok(segment) = id_segment("id", &id) {
                proptest::prop_assert!(!segment.is_empty());
                proptest::prop_assert!(segment != "." && segment != "..");
                proptest::prop_assert!(!segment.contains(['/', '?', '#', '\\']));
                let mut decoded = Vec::new();
                let mut bytes = segment.bytes();
                while let Some(b) = bytes.next() {
                    if b == b'%' {
                        let hex: String = bytes.by_ref().take(2).map(char::from).collect();
                        decoded.push(u8::from_str_radix(&hex, 16).unwrap());
                    } else {
                        decoded.push(b);
                    }
                }
                proptest::prop_assert_eq!(String::from_utf8(decoded).unwrap(), id);
            }
        }
    }

    #[tokio::test]
    async fn pagination_continues_over_empty_pages_that_carry_a_token() {
        // Arrange: pages [], [1, 2], [], [3], [] with tokens between them.
        let pages: Vec<(Vec<u32>, Option<&str>)> = vec![
            (vec![], Some("a")),
            (vec![1, 2], Some("b")),
            (vec![], Some("c")),
            (vec![3], Some("d")),
            (vec![], None),
        ];
        let asked = std::cell::RefCell::new(Vec::new());

        // Act
        let items: Vec<u32> = paginate(0, |request| {
            asked.borrow_mut().push(request.page_token.clone());
            let index = asked.borrow().len() - 1;
            let (items, token) = pages[index].clone();
            async move {
                Ok(Page {
                    items,
                    next_page_token: token.map(str::to_owned),
                })
            }
        })
        .try_collect()
        .await
        .unwrap();

        // Assert
        assert_eq!(items, [1, 2, 3]);
        assert_eq!(asked.borrow().len(), 5);
        assert_eq!(asked.borrow()[1].as_deref(), Some("a"));
    }
}
