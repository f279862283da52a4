//! The catalog: CRUD, filters, search, ingest, index parameters and the backend seam on
//! SQLite, and (feature `postgres`) the same behaviour on PostgreSQL + pgvector.
//!
//! One test binary per area keeps links (each pulls in LibTorch's bindings) and disk down;
//! the tests that kill or spawn processes (`catalog_kill.rs`, `catalog_pg_processes.rs`)
//! stay binaries of their own so nothing else shares their process.

mod backend;
mod common;
mod crud;
mod ingest;
mod params;
#[cfg(feature = "postgres")]
mod pg;
#[cfg(feature = "postgres")]
#[path = "../common/pg_server.rs"]
mod pg_server;
mod search;
