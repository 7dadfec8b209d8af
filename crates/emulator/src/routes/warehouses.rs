//! SQL warehouses (`shared/UPSTREAM-2.md` §3.1): list, get, start and stop.
//!
//! A warehouse is visible to the principals its fixture `readers` admit (CAN_USE; everyone when
//! absent): others do not find it in the list, and get `403 PERMISSION_DENIED` from get, start
//! and stop, as the real service answers a warehouse that exists but is not shared. The power
//! states and their clock live in `crate::warehouse`.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::routes::statements::usable_warehouse;
use crate::routes::{QueryParams, base_url, page_of};
use crate::state::{Emulator, lock};
use crate::warehouse::endpoint_info;

pub(super) fn router() -> Router<Emulator> {
    Router::new()
        .route("/api/2.0/sql/warehouses", get(list_warehouses))
        .route("/api/2.0/sql/warehouses/", get(list_warehouses))
        .route("/api/2.0/sql/warehouses/{id}", get(get_warehouse))
        .route("/api/2.0/sql/warehouses/{id}/start", post(start_warehouse))
        .route("/api/2.0/sql/warehouses/{id}/stop", post(stop_warehouse))
}

/// `page_size` (absent or 0: `default_page_size`; capped at `max_page_size`) and `page_token`;
/// `run_as_user_id` is accepted and ignored.
#[derive(Debug, Deserialize)]
struct ListQuery {
    page_size: Option<i64>,
    page_token: Option<String>,
}

/// The warehouses the caller may use, a page at a time.
async fn list_warehouses(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    headers: HeaderMap,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let base = base_url(&headers, &emulator);
    let now = Instant::now();
    let items: Vec<Value> = {
        let warehouses = lock(&emulator.warehouses);
        (emulator.fixture.warehouses.iter())
            .filter(|w| principal.admitted_by(w.readers.as_ref()))
            .filter_map(|w| Some(endpoint_info(w, warehouses.state_at(&w.id, now)?, &base)))
            .collect()
    };
    let body = page_of(
        "warehouses",
        items,
        query.page_size,
        query.page_token.as_deref(),
        &emulator.settings(),
    )?;
    Ok(Json(body))
}

/// One warehouse's `EndpointInfo`.
async fn get_warehouse(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let warehouse = usable_warehouse(&emulator, &principal, &id)?;
    let state = lock(&emulator.warehouses).state_at(&id, Instant::now());
    let state = state.unwrap_or(warehouse.state);
    Ok(Json(endpoint_info(
        warehouse,
        state,
        &base_url(&headers, &emulator),
    )))
}

/// Starts a stopped warehouse; it is `STARTING` before this answers, so a waiter that polls at
/// once never sees `STOPPED` (which it would count as a failure).
async fn start_warehouse(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let warehouse = usable_warehouse(&emulator, &principal, &id)?;
    let settings = emulator.settings();
    lock(&emulator.warehouses).start(warehouse, &settings, Instant::now());
    Ok(Json(json!({})))
}

/// Stops a running warehouse: `STOPPING`, then `STOPPED` after the stop delay.
async fn stop_warehouse(
    State(emulator): State<Emulator>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let warehouse = usable_warehouse(&emulator, &principal, &id)?;
    let settings = emulator.settings();
    lock(&emulator.warehouses).stop(warehouse, &settings, Instant::now());
    Ok(Json(json!({})))
}
