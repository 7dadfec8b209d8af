//! Integration tests of the emulator: each module drives one service over real HTTP against an
//! emulator started on a free port, as a client of the real service would.

mod support;

mod apps;
mod apps_runtime;
mod auth;
mod autoscaling;
mod catalog;
mod faults;
mod files;
mod genie;
mod host;
mod lakebase;
mod results;
mod serving;
mod sessions;
mod statements;
mod streaming;
mod warehouses;
mod workspace;
