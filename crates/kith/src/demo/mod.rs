pub mod generate;
pub mod loyalty_api;
mod names;
pub mod truth;
mod write;
