//! The power state of the emulated SQL warehouses (`shared/UPSTREAM-2.md` §3.1).
//!
//! Like a statement, a warehouse's state is a function of the time, with no task running in the
//! background: each warehouse holds where it is heading (`RUNNING` or `STOPPED`) and the instant it
//! gets there. Before that instant it reports `STARTING` (heading for `RUNNING`) or `STOPPING`
//! (heading for `STOPPED`). Start and stop only move the target and the instant:
//!
//! | state now | start | stop |
//! |---|---|---|
//! | `STOPPED`, `STOPPING` | `STARTING` for the start delay, then `RUNNING` | unchanged |
//! | `STARTING`, `RUNNING` | unchanged | `STOPPING` for the stop delay, then `STOPPED` |
//!
//! A statement submitted to a warehouse that is not running starts it (as `start` does) and
//! stays `PENDING` until the warehouse is `RUNNING`; `routes::statements` asks [`Warehouses::
//! start`] for that instant. Who may use a warehouse (its fixture `readers`, CAN_USE) is checked
//! by the routes; this module owns only the clock and the `EndpointInfo` body.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use crate::fixture::{Settings, Warehouse, WarehouseState};

/// Where one warehouse is heading, and when it gets there.
#[derive(Debug, Clone, Copy)]
struct Clock {
    /// `true`: heading for (or at) `RUNNING`; `false`: for `STOPPED`.
    running: bool,
    settles_at: Instant,
}

impl Clock {
    fn state_at(self, now: Instant) -> WarehouseState {
        match (self.running, now >= self.settles_at) {
            (true, true) => WarehouseState::Running,
            (true, false) => WarehouseState::Starting,
            (false, true) => WarehouseState::Stopped,
            (false, false) => WarehouseState::Stopping,
        }
    }
}

/// The clocks of every fixture warehouse, keyed by id.
#[derive(Debug)]
pub(crate) struct Warehouses {
    clocks: HashMap<String, Clock>,
}

/// The start and stop delays of `warehouse` under `settings`.
fn delays(warehouse: &Warehouse, settings: &Settings) -> (Duration, Duration) {
    (
        Duration::from_millis(
            warehouse
                .start_delay_ms
                .unwrap_or(settings.warehouse_start_ms),
        ),
        Duration::from_millis(
            warehouse
                .stop_delay_ms
                .unwrap_or(settings.warehouse_stop_ms),
        ),
    )
}

/// The clock that shows `state` from `now` on: a transitional state lasts its full delay.
fn clock_for(state: WarehouseState, now: Instant, start: Duration, stop: Duration) -> Clock {
    match state {
        WarehouseState::Running => Clock {
            running: true,
            settles_at: now,
        },
        WarehouseState::Starting => Clock {
            running: true,
            settles_at: now + start,
        },
        WarehouseState::Stopped => Clock {
            running: false,
            settles_at: now,
        },
        WarehouseState::Stopping => Clock {
            running: false,
            settles_at: now + stop,
        },
    }
}

impl Warehouses {
    /// Every fixture warehouse in its fixture `state`, as of `now`.
    pub(crate) fn new(warehouses: &[Warehouse], settings: &Settings, now: Instant) -> Self {
        let clocks = warehouses
            .iter()
            .map(|w| {
                let (start, stop) = delays(w, settings);
                (w.id.clone(), clock_for(w.state, now, start, stop))
            })
            .collect();
        Self { clocks }
    }

    /// The state of warehouse `id` at `now`; `None` for an id the fixture does not have.
    pub(crate) fn state_at(&self, id: &str, now: Instant) -> Option<WarehouseState> {
        self.clocks.get(id).map(|c| c.state_at(now))
    }

    /// Starts `warehouse` at `now` if it is stopped or stopping, and returns when it is (or will
    /// be) `RUNNING`.
    pub(crate) fn start(
        &mut self,
        warehouse: &Warehouse,
        settings: &Settings,
        now: Instant,
    ) -> Instant {
        let (start, stop) = delays(warehouse, settings);
        let clock = self
            .clocks
            .entry(warehouse.id.clone())
            .or_insert_with(|| clock_for(warehouse.state, now, start, stop));
        if !clock.running {
            *clock = clock_for(WarehouseState::Starting, now, start, stop);
        }
        clock.settles_at
    }

    /// Stops `warehouse` at `now` if it is running or starting.
    pub(crate) fn stop(&mut self, warehouse: &Warehouse, settings: &Settings, now: Instant) {
        let (start, stop) = delays(warehouse, settings);
        let clock = self
            .clocks
            .entry(warehouse.id.clone())
            .or_insert_with(|| clock_for(warehouse.state, now, start, stop));
        if clock.running {
            *clock = clock_for(WarehouseState::Stopping, now, start, stop);
        }
    }

    /// Puts `warehouse` in `state` from `now` on (the control API); a transitional state lasts
    /// its full delay.
    pub(crate) fn set(
        &mut self,
        warehouse: &Warehouse,
        settings: &Settings,
        state: WarehouseState,
        now: Instant,
    ) {
        let (start, stop) = delays(warehouse, settings);
        self.clocks
            .insert(warehouse.id.clone(), clock_for(state, now, start, stop));
    }
}

/// The `state` field as the API spells it.
pub(crate) fn state_name(state: WarehouseState) -> &'static str {
    match state {
        WarehouseState::Starting => "STARTING",
        WarehouseState::Running => "RUNNING",
        WarehouseState::Stopping => "STOPPING",
        WarehouseState::Stopped => "STOPPED",
    }
}

/// The `EndpointInfo` of `warehouse` in `state`, for a client that reached us at `base_url`.
pub(crate) fn endpoint_info(warehouse: &Warehouse, state: WarehouseState, base_url: &str) -> Value {
    let authority = base_url
        .split_once("://")
        .map_or(base_url, |(_, rest)| rest);
    let (hostname, port) = match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => {
            (host, port.parse::<u16>().unwrap_or(80))
        }
        _ => (authority, 80),
    };
    let path = format!("/sql/1.0/warehouses/{}", warehouse.id);
    let running = state == WarehouseState::Running;
    let mut info = json!({
        "id": warehouse.id,
        "name": warehouse.name,
        "state": state_name(state),
        "creator_name": warehouse.creator_name,
        "cluster_size": warehouse.cluster_size,
        "num_clusters": u32::from(running),
        "num_active_sessions": 0,
        "min_num_clusters": 1,
        "max_num_clusters": 1,
        "auto_stop_mins": warehouse.auto_stop_mins,
        "warehouse_type": warehouse.warehouse_type,
        "enable_serverless_compute": warehouse.serverless,
        "enable_photon": true,
        "spot_instance_policy": "COST_OPTIMIZED",
        "channel": {"name": "CHANNEL_NAME_CURRENT"},
        "tags": {"custom_tags": []},
        "odbc_params": {"hostname": hostname, "path": path, "port": port, "protocol": "http"},
        "jdbc_url": format!(
            "jdbc:databricks://{hostname}:{port}/default;transportMode=http;ssl=0;AuthMech=3;httpPath={path};"
        ),
    });
    if running && let Some(object) = info.as_object_mut() {
        object.insert("health".into(), json!({"status": "HEALTHY"}));
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::Fixture;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn start_and_stop_pass_through_their_transitional_state() {
        // Arrange
        let fixture = Fixture::default();
        let warehouse = &fixture.warehouses[0];
        let settings = Settings {
            warehouse_start_ms: 100,
            warehouse_stop_ms: 50,
            ..Settings::default()
        };
        let t0 = Instant::now();
        let mut warehouses = Warehouses::new(&fixture.warehouses, &settings, t0);
        let id = warehouse.id.as_str();

        // Act / Assert
        assert_eq!(warehouses.state_at(id, t0), Some(WarehouseState::Running));
        warehouses.stop(warehouse, &settings, t0);
        assert_eq!(
            warehouses.state_at(id, t0 + ms(49)),
            Some(WarehouseState::Stopping)
        );
        assert_eq!(
            warehouses.state_at(id, t0 + ms(50)),
            Some(WarehouseState::Stopped)
        );
        let ready = warehouses.start(warehouse, &settings, t0 + ms(60));
        assert_eq!(ready, t0 + ms(160));
        assert_eq!(
            warehouses.state_at(id, t0 + ms(159)),
            Some(WarehouseState::Starting)
        );
        assert_eq!(
            warehouses.state_at(id, t0 + ms(160)),
            Some(WarehouseState::Running)
        );
        assert_eq!(warehouses.state_at("nope", t0), None);
    }

    #[test]
    fn starting_a_starting_warehouse_keeps_its_deadline() {
        // Arrange
        let fixture = Fixture::default();
        let warehouse = &fixture.warehouses[0];
        let settings = Settings::default();
        let t0 = Instant::now();
        let mut warehouses = Warehouses::new(&fixture.warehouses, &settings, t0);
        warehouses.set(warehouse, &settings, WarehouseState::Stopped, t0);

        // Act
        let first = warehouses.start(warehouse, &settings, t0);
        let second = warehouses.start(warehouse, &settings, t0 + ms(700));

        // Assert
        assert_eq!(first, t0 + ms(settings.warehouse_start_ms));
        assert_eq!(second, first);
    }

    #[test]
    fn endpoint_info_points_odbc_at_the_emulator() {
        // Arrange
        let fixture = Fixture::default();

        // Act
        let info = endpoint_info(
            &fixture.warehouses[0],
            WarehouseState::Stopped,
            "http://127.0.0.1:4567",
        );

        // Assert
        assert_eq!(info["state"], "STOPPED");
        assert_eq!(info["num_clusters"], 0);
        assert_eq!(
            info["odbc_params"],
            json!({"hostname": "127.0.0.1", "path": "/sql/1.0/warehouses/dev-warehouse",
                   "port": 4567, "protocol": "http"})
        );
        assert!(info.get("health").is_none());
    }
}
