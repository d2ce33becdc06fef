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
