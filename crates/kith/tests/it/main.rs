//! End-to-end tests: the real `kith` binary on a generated multi-source business.

mod api;
mod browser;
mod cli;
mod console;
mod feed;
mod harness;
mod ingest;
mod portal;
mod serve;
mod servers;
// This machine's PostgreSQL and MariaDB, shared with the connector tests.
#[path = "../../../connect/tests/it/services.rs"]
#[allow(dead_code)]
mod services;
