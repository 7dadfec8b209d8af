//! The Lakebase Autoscaling control plane over HTTP (`shared/UPSTREAM-2.md` §6): every route
//! under `/api/2.0/postgres/` except `credentials` (in `database`). Resource names are paths, so
//! one wildcard route per method parses the name and hands it to [`crate::autoscaling`]:
//!
//! - `GET {name}`: a project, branch, endpoint, database, role or operation; or a collection
//!   (`projects`, `…/branches`, `…/endpoints`, `…/databases`, `…/roles`), paged with
//!   `page_size`/`page_token` (and `show_deleted` for projects and branches);
//! - `POST projects?project_id=`, `POST …/branches?branch_id=`, `POST …/endpoints?endpoint_id=`;
//! - `PATCH {name}?update_mask=` and `DELETE {name}[?purge=true]`.
//!
//! Creates, updates and deletes answer with an operation. Any principal may use every route.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{Duration, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::Authenticated;
use crate::autoscaling::{Change, Target, View};
use crate::error::ApiError;
use crate::routes::{JsonBody, QueryParams, clock_delay, flag, page_of};
use crate::state::{Emulator, lock};

pub(super) fn router() -> Router<Emulator> {
    Router::new().route(
        "/api/2.0/postgres/{*name}",
        get(read).post(create).patch(update).delete(remove),
    )
}

/// Every query parameter of the API, as text: booleans arrive as `true`/`True`.
#[derive(Debug, Default, Deserialize)]
struct PostgresQuery {
    page_size: Option<i64>,
    page_token: Option<String>,
    show_deleted: Option<String>,
    project_id: Option<String>,
    branch_id: Option<String>,
    endpoint_id: Option<String>,
    replace_existing: Option<String>,
    update_mask: Option<String>,
    purge: Option<String>,
}

fn target(name: &str) -> Result<Target<'_>, ApiError> {
    Target::parse(name).ok_or_else(|| {
        ApiError::not_found(
            "ENDPOINT_NOT_FOUND",
            format!("No API found for '/api/2.0/postgres/{name}'"),
        )
    })
}

fn view(emulator: &Emulator) -> View<'_> {
    View {
        now: Utc::now(),
        host_override: emulator.lakebase.as_ref().map(|l| l.host()),
    }
}

/// How long operations take to finish (`postgres_operation_ms`).
fn delay(emulator: &Emulator) -> Duration {
    clock_delay(emulator.settings().postgres_operation_ms)
}

fn is_collection(target: &Target<'_>) -> bool {
    matches!(
        target,
        Target::Projects
            | Target::Branches(_)
            | Target::Endpoints(..)
            | Target::Databases(..)
            | Target::Roles(..)
    )
}

async fn read(
    State(emulator): State<Emulator>,
    Authenticated(_): Authenticated,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<PostgresQuery>,
) -> Result<Json<Value>, ApiError> {
    let target = target(&name)?;
    let view = view(&emulator);
    if !is_collection(&target) {
        return lock(&emulator.autoscaling).get(&target, view).map(Json);
    }
    let show_deleted = flag("show_deleted", query.show_deleted.as_deref())?;
    let (key, items) = lock(&emulator.autoscaling).list(&target, show_deleted, view)?;
    let body = page_of(
        key,
        items,
        query.page_size,
        query.page_token.as_deref(),
        &emulator.settings(),
    )?;
    Ok(Json(body))
}

async fn create(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<PostgresQuery>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let target = target(&name)?;
    let id = match target {
        Target::Projects => query.project_id.as_deref(),
        Target::Branches(_) => query.branch_id.as_deref(),
        Target::Endpoints(..) => query.endpoint_id.as_deref(),
        _ => {
            return Err(ApiError::not_found(
                "ENDPOINT_NOT_FOUND",
                format!("No API found for 'POST /api/2.0/postgres/{name}'"),
            ));
        }
    };
    let change = Change {
        body,
        id,
        replace_existing: flag("replace_existing", query.replace_existing.as_deref())?,
        caller: &principal.user_name,
    };
    let delay = delay(&emulator);
    let operation = lock(&emulator.autoscaling).create(&target, &change, view(&emulator), delay)?;
    Ok(Json(operation))
}

async fn update(
    State(emulator): State<Emulator>,
    Authenticated(_): Authenticated,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<PostgresQuery>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let target = target(&name)?;
    let delay = delay(&emulator);
    let operation = lock(&emulator.autoscaling).update(
        &target,
        &body,
        query.update_mask.as_deref(),
        view(&emulator),
        delay,
    )?;
    Ok(Json(operation))
}

async fn remove(
    State(emulator): State<Emulator>,
    Authenticated(_): Authenticated,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<PostgresQuery>,
) -> Result<Json<Value>, ApiError> {
    let target = target(&name)?;
    let purge = flag("purge", query.purge.as_deref())?;
    let delay = delay(&emulator);
    let (operation, purged) = {
        let mut autoscaling = lock(&emulator.autoscaling);
        let purged = if purge {
            autoscaling.purged_branches(&target)
        } else {
            Vec::new()
        };
        let operation = autoscaling.delete(&target, purge, view(&emulator), delay)?;
        (operation, purged)
    };
    // A purged branch's data is gone on Lakebase; its backend database goes too.
    if let Some(lakebase) = &emulator.lakebase {
        for branch in purged {
            if let Err(error) = lakebase.drop_branch_database(&branch).await {
                tracing::warn!(event = "lakebase.branch_drop_failed", branch, error = %error);
            }
        }
    }
    Ok(Json(operation))
}
