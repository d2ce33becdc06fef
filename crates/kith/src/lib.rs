//! kith: a federated customer-information hub.
//!
//! The binary is thin; this library wires configuration to the hub:
//! [`config`] reads and validates `kith.toml`, [`app`] opens the store and
//! builds the hub, [`cli`] parses the command line, [`report`] renders views
//! for terminals, and [`demo`] generates a realistic business to try it on.

pub mod access;
pub mod app;
pub mod cli;
pub mod config;
pub mod demo;
pub mod progress;
pub mod report;
pub mod serve;
