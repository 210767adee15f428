//! The sans-IO PBX core. Placeholder while the engine is written.
pub mod cdr;
