//! Integration tests of the dbapp server: the real server on port 0, the real workspace
//! emulator over HTTP, and a temporary SQLite store.

mod app;
mod assistant;
mod chat;
mod connections;
mod conversations;
mod errors;
mod faults;
mod genie;
mod health;
mod history;
mod lakebase;
mod logs;
mod model_serving;
mod openapi;
mod preferences;
mod queries;
mod retention;
mod security;
mod serve;
mod unity_catalog;
mod usage;
mod user;
mod volumes;
