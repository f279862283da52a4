//! Shared by the catalog integration tests.

#[path = "../rng_common/mod.rs"]
mod rng_common;

pub use rng_common::unit_vector;
