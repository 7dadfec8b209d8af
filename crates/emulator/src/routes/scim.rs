//! SCIM Me (`shared/UPSTREAM.md` §4.1): the identity behind the request's token, users and
//! service principals alike, with the `X-Databricks-Org-Id` header.

use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::auth::Authenticated;
use crate::state::{Emulator, group_id};

pub(super) fn router() -> Router<Emulator> {
    Router::new().route("/api/2.0/preview/scim/v2/Me", get(me))
}

async fn me(State(emulator): State<Emulator>, Authenticated(principal): Authenticated) -> Response {
    let groups: Vec<_> = principal
        .groups
        .iter()
        .map(|g| {
            let id = group_id(g);
            json!({"display": g, "value": id, "$ref": format!("Groups/{id}"), "type": "direct"})
        })
        .collect();
    let mut body = json!({
        "id": principal.id,
        "userName": principal.user_name,
        "displayName": principal.display_name,
        "active": principal.active,
        "groups": groups,
        "entitlements": [{"value": "workspace-access"}],
    });
    if principal.is_service_principal {
        body["applicationId"] = json!(principal.user_name);
        body["schemas"] = json!(["urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal"]);
    } else {
        let (given, family) = principal
            .display_name
            .split_once(' ')
            .unwrap_or((&principal.display_name, ""));
        body["name"] = json!({"givenName": given, "familyName": family});
        body["emails"] = json!([{"value": principal.user_name, "type": "work", "primary": true}]);
        body["schemas"] = json!([
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:workspace:2.0:User"
        ]);
    }
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        "x-databricks-org-id",
        HeaderValue::from(emulator.fixture.workspace.workspace_id),
    );
    response
}
