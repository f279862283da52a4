//! Shared fixtures for the Dupify benchmarks.
