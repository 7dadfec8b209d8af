//! Which user authorization scope each workspace API needs (`shared/UPSTREAM.md` §1.6), and the
//! refusal a downscoped token gets on a route its scopes do not cover.
//!
//! Only tokens minted with scopes are checked: the Apps proxy's `X-Forwarded-Access-Token`
//! ([`Emulator::mint_downscoped_token`](crate::state::Emulator)). Personal access tokens, OAuth
//! M2M tokens and the fixture's tokens carry every scope, as `all-apis` tokens do.
//!
//! The table is read from the scope names the Apps UI offers and the routes each one is
//! documented for; the exact route-to-scope mapping of the real service is not published
//! (docs/emulator.md lists it as an assumption). Deprecated aliases count as their current
//! name.

use crate::error::ApiError;

/// Path prefixes and the scope they need, first match wins. Routes absent from the table (OIDC
/// discovery, the token endpoint, the emulator's own `/_emulator` API) need none.
const ROUTE_SCOPES: &[(&str, &str)] = &[
    ("/api/2.0/preview/scim/v2/Me", "iam.current-user:read"),
    ("/api/2.1/unity-catalog/catalogs", "catalog.catalogs:read"),
    ("/api/2.1/unity-catalog/schemas", "catalog.schemas:read"),
    ("/api/2.1/unity-catalog/tables", "catalog.tables:read"),
    // A volume is read to reach its files, which is what the `files` scope is for.
    ("/api/2.1/unity-catalog/volumes", "files"),
    ("/api/2.0/fs/", "files"),
    ("/api/2.0/serving-endpoints", "model-serving"),
    ("/serving-endpoints/", "model-serving"),
    ("/api/2.0/sql/", "sql"),
    ("/api/2.0/genie/", "genie"),
    ("/api/2.0/database/", "postgres"),
    ("/api/2.0/postgres/", "postgres"),
    ("/api/2.0/workspace/", "workspace.workspace"),
    ("/api/2.0/apps", "apps"),
];

/// Deprecated scope names and the current name each stands for.
const ALIASES: &[(&str, &str)] = &[
    ("dashboards.genie", "genie"),
    ("serving.serving-endpoints", "model-serving"),
    ("files.files", "files"),
];

/// The scope a request to `path` needs, if any.
pub(crate) fn required(path: &str) -> Option<&'static str> {
    ROUTE_SCOPES
        .iter()
        .find(|(prefix, _)| {
            path.strip_prefix(prefix).is_some_and(|rest| {
                rest.is_empty() || rest.starts_with('/') || prefix.ends_with('/')
            })
        })
        .map(|(_, scope)| *scope)
}

/// Refuses a request to `path` made with a token limited to `granted` when the route needs a
/// scope outside them, with the message the real service sends.
pub(crate) fn check(path: &str, granted: &[String]) -> Result<(), ApiError> {
    let Some(needed) = required(path) else {
        return Ok(());
    };
    let covers = |scope: &String| {
        let current = ALIASES
            .iter()
            .find(|(alias, _)| alias == scope)
            .map_or(scope.as_str(), |(_, name)| name);
        current == needed || current == "all-apis"
    };
    if granted.iter().any(covers) {
        Ok(())
    } else {
        Err(ApiError::permission_denied(format!(
            "Provided OAuth token does not have required scopes: {needed}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn routes_map_to_their_scope_and_prefixes_match_whole_segments() {
        assert_eq!(
            required("/api/2.0/preview/scim/v2/Me"),
            Some("iam.current-user:read")
        );
        assert_eq!(
            required("/api/2.1/unity-catalog/tables/a.b.c/exists"),
            Some("catalog.tables:read")
        );
        assert_eq!(
            required("/serving-endpoints/chat/completions"),
            Some("model-serving")
        );
        assert_eq!(
            required("/api/2.0/serving-endpoints"),
            Some("model-serving")
        );
        assert_eq!(required("/api/2.0/apps/x/deployments"), Some("apps"));
        assert_eq!(required("/api/2.0/appsfoo"), None);
        assert_eq!(required("/oidc/v1/token"), None);
        assert_eq!(required("/_emulator/info"), None);
    }

    #[test]
    fn a_missing_scope_is_refused_with_the_real_text_and_aliases_count() {
        let granted = scopes(&["iam.current-user:read", "dashboards.genie"]);
        assert!(check("/api/2.0/preview/scim/v2/Me", &granted).is_ok());
        assert!(check("/api/2.0/genie/spaces", &granted).is_ok());
        let refused = check("/api/2.0/sql/statements", &granted).unwrap_err();
        let text = format!("{refused:?}");
        assert!(
            text.contains("Provided OAuth token does not have required scopes: sql"),
            "{text}"
        );
        assert!(check("/oidc/v1/token", &[]).is_ok());
        assert!(check("/api/2.0/sql/statements", &scopes(&["all-apis"])).is_ok());
    }
}
