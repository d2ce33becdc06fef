pub mod generate;
mod names;
mod write;
