//! API keys for the Dupify API (see the hosted key documentation): `fe_live_`/`fe_test_`
//! keys, request authentication from headers, scopes, hashed storage, usage and rate limits.
//! No LibTorch dependency: this crate builds and tests in seconds.

/// Prefix shared by every Dupify key.
pub const KEY_PREFIX: &str = "fe_";
