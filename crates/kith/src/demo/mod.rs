pub mod generate;
pub mod loyalty_api;
mod names;
mod write;
