//! The correlation id of the request being served (`API.md` "Correlation"): which header it is
//! taken from, and the task-local that holds it while the request runs. A leaf, so that the error
//! envelope (which carries the id) does not depend on the middleware that sets it
//! (`telemetry::CorrelateLayer`).

use axum::http::HeaderMap;
use dbapp_databricks::CorrelationId;

/// The response (and request) header carrying the correlation id.
pub const CORRELATION_HEADER: &str = "x-correlation-id";
/// The Apps proxy's per-request id, used when no correlation id was sent.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

tokio::task_local! {
    /// Set by `telemetry::CorrelateLayer` around each request.
    pub(crate) static CORRELATION_ID: CorrelationId;
}

/// The correlation id of the request being served, or a fresh one outside any request.
#[must_use]
pub fn current_correlation_id() -> CorrelationId {
    CORRELATION_ID
        .try_with(CorrelationId::clone)
        .unwrap_or_else(|_| CorrelationId::new_random())
}

/// The correlation id for a request's headers (`API.md` "Correlation").
#[must_use]
pub fn correlation_id_from(headers: &HeaderMap) -> CorrelationId {
    [CORRELATION_HEADER, REQUEST_ID_HEADER]
        .iter()
        .filter_map(|name| headers.get(*name)?.to_str().ok())
        .find_map(CorrelationId::parse)
        .unwrap_or_else(CorrelationId::new_random)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use proptest::prelude::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn correlation_header_wins_over_request_id() {
        let id = correlation_id_from(&headers(&[
            ("x-correlation-id", "abc-1"),
            ("x-request-id", "req-2"),
        ]));
        assert_eq!(id.as_str(), "abc-1");
    }

    #[test]
    fn a_bad_correlation_header_falls_back_to_request_id() {
        let id = correlation_id_from(&headers(&[
            ("x-correlation-id", "has space"),
            ("x-request-id", "req-2"),
        ]));
        assert_eq!(id.as_str(), "req-2");
    }

    #[test]
    fn no_usable_header_gives_a_uuid_v4() {
        let id = correlation_id_from(&headers(&[("x-request-id", &"a".repeat(129))]));
        let uuid = uuid::Uuid::parse_str(id.as_str()).unwrap();
        assert_eq!(uuid.get_version_num(), 4);
    }

    proptest! {
        #[test]
        fn sane_ids_are_kept_verbatim(id in "[A-Za-z0-9._:-]{1,128}") {
            let got = correlation_id_from(&headers(&[("x-correlation-id", &id)]));
            prop_assert_eq!(got.as_str(), id.as_str());
        }

        #[test]
        fn ids_with_other_characters_are_replaced(
            prefix in "[A-Za-z0-9]{0,10}",
            bad in "[ !\"#$%&'()*+,/;<=>?@\\[\\]^`{|}~]",
            suffix in "[A-Za-z0-9]{0,10}",
        ) {
            let id = format!("{prefix}{bad}{suffix}");
            let got = correlation_id_from(&headers(&[("x-correlation-id", &id)]));
            prop_assert_ne!(got.as_str(), id.as_str());
            prop_assert!(uuid::Uuid::parse_str(got.as_str()).is_ok());
        }

        #[test]
        fn too_long_ids_are_replaced(id in "[a-z]{129,300}") {
            let got = correlation_id_from(&headers(&[("x-correlation-id", &id)]));
            prop_assert!(uuid::Uuid::parse_str(got.as_str()).is_ok());
        }
    }
}
