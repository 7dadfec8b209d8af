//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations through
//! `OpenApiRouter` + `routes!`, so routes and document cannot drift; served at
//! `/api/openapi.json`, with Swagger UI at `/docs` from embedded (vendored) assets that work
//! offline.

use std::sync::Arc;

use axum::Router;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::{ErrorBody, ErrorCode};
use crate::routes;
use crate::routes::assistant::{AssistantAnswer, AssistantLimit, AssistantStep};
use crate::routes::genie::{GenieAnswer, GenieStatusEvent};
use crate::state::AppState;

/// The security scheme name of the forwarded user token.
pub const USER_TOKEN: &str = "user_token";
/// The security scheme name of the `/metrics` scrape token.
pub const METRICS_TOKEN: &str = "metrics_token";

/// The document's fixed parts; paths come from the routers.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "dbapp",
        description = "The dbapp HTTP API: every route acts on behalf of the signed-in user, \
                       whose token the Databricks Apps proxy forwards in `X-Forwarded-Access-Token`. \
                       Every non-2xx response carries the `ErrorBody` envelope, and every response \
                       the `X-Correlation-ID` header.",
        license(name = "Apache-2.0")
    ),
    components(schemas(
        ErrorBody,
        ErrorCode,
        GenieStatusEvent,
        GenieAnswer,
        AssistantStep,
        AssistantAnswer,
        AssistantLimit
    )),
    modifiers(&UserTokenScheme),
    tags(
        (name = "health", description = "Liveness, readiness, metrics"),
        (name = "user", description = "The signed-in user"),
        (name = "unity-catalog", description = "Unity Catalog, as the user"),
        (name = "volumes", description = "Files in Unity Catalog volumes, as the user"),
        (name = "model-serving", description = "Model Serving, as the user"),
        (name = "genie", description = "Genie spaces: questions about data, as the user"),
        (name = "assistant", description = "The data assistant: an agent with tools, as the user"),
        (name = "preferences", description = "The caller's preferences"),
        (name = "queries", description = "Governed SQL queries, as the user or as the app"),
        (name = "conversations", description = "The caller's chat conversations"),
        (name = "metrics", description = "Usage events and performance dashboards")
    )
)]
pub struct ApiDoc;

#[derive(Debug)]
struct UserTokenScheme;

impl Modify for UserTokenScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            USER_TOKEN,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Forwarded-Access-Token",
                "The user's access token, as the Databricks Apps proxy forwards it",
            ))),
        );
        components.add_security_scheme(
            METRICS_TOKEN,
            SecurityScheme::Http(
                utoipa::openapi::security::HttpBuilder::new()
                    .scheme(utoipa::openapi::security::HttpAuthScheme::Bearer)
                    .description(Some("`DBAPP_METRICS_TOKEN`, for a Prometheus scraper"))
                    .build(),
            ),
        );
    }
}

/// Every documented route, with the document being built.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::health::router())
        .merge(routes::user::router())
        .merge(routes::unity_catalog::router())
        .merge(routes::volumes::router())
        .merge(routes::model_serving::router())
        .merge(routes::chat::router())
        .merge(routes::genie::router())
        .merge(routes::assistant::router())
        .merge(routes::preferences::router())
        .merge(routes::queries::router())
        .merge(routes::conversations::router())
        .merge(routes::usage::router())
}

/// The OpenAPI document (what `dbapp openapi` prints).
#[must_use]
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().into_openapi()
}

/// `/api/openapi.json` and `/docs`.
pub fn docs_router(openapi: Arc<utoipa::openapi::OpenApi>) -> Router<AppState> {
    SwaggerUi::new("/docs")
        .url("/api/openapi.json", (*openapi).clone())
        .into()
}
