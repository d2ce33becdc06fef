//! End-to-end tests: the real `kith` binary on a generated multi-source business.

mod api;
mod cli;
mod harness;
mod ingest;
mod serve;
