pub mod generate;
pub mod loyalty_api;
mod names;
pub mod staff;
pub mod truth;
mod write;
