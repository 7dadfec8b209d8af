//! Integration tests of `dbapp-databricks` against the real emulator over HTTP: one test binary,
//! one module per service, shared setup in `support`.

mod catalog;
mod credentials;
mod current_user;
mod database;
mod errors;
mod files;
mod genie;
mod operations;
mod retry;
mod serving;
mod sql;
mod support;
