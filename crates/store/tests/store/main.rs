//! The store's conformance suite: every behaviour of the `Store` trait, run against both backends
//! (SQLite in a temporary directory, Postgres in a fresh database per test), plus, on a private
//! Postgres cluster (TLS, SCRAM) started from the machine's binaries: the Lakebase login
//! rotation against the emulator, a Postgres stop and restart under load, `setup`'s plan as a
//! non-superuser app role next to roles that own what it needs, and row-level security with the
//! store logged in as an ordinary role that owns its tables.
//!
//! Postgres: the plain conformance tests use the machine's Postgres at 127.0.0.1:5432 as user
//! `postgres` (trust auth), or `DBAPP_TEST_POSTGRES_URL`; each test creates `test_<uuid>` and
//! drops it when done, pass or fail.

mod conversations;
mod helpers;
mod inference;
mod isolation;
mod lakebase;
mod migrations;
mod outage;
mod performance;
mod preferences;
mod retention;
mod rls;
mod setup;
mod usage;
