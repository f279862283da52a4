//! Node.js bindings for Dupify: conversions only, every piece of logic lives in the Rust crates.
//!
//! - [`extractor`]: `Extractor` (every operation, batches with progress and cancellation).
//! - [`catalog`]: `Catalog` (products, search, ingest).
//! - [`keys`]: `KeyStore`, `Principal` (authentication, scopes, rate limits, usage).
//!
//! Heavy calls return promises and run on libuv's worker pool ([`task`]); arguments are
//! converted on the JS thread ([`convert`], [`input`]); every error is a JS `Error` with the
//! hosted `.code` ([`error`]).

mod catalog;
mod convert;
mod error;
mod extractor;
mod input;
mod keys;
mod task;

use napi::Env;
use napi_derive::napi;

use crate::convert::Js;
// Exported to JS by `#[napi]`; re-exported here so the Rust side sees it used.
use crate::error::sync;
pub use crate::keys::rate_limit_header_pairs;

/// The device `auto` resolves to in this process (`cpu` or `cuda:N`).
#[napi]
pub fn auto_device() -> String {
    dupify_core::device_report().auto_device
}

/// The default model directory under `root` (default: the working directory), as the CLI and
/// server choose it: a real CLIP in `weights/real/clip-vit-base-patch32`, else the pretrained
/// EfficientNet-Lite2 the project's setup installs; `null` when neither is there.
#[napi]
pub fn default_model_dir(root: Option<String>) -> Option<String> {
    let root = root.map(std::path::PathBuf::from).unwrap_or_default();
    dupify_core::find_default_model(&[root]).map(|p| p.to_string_lossy().into_owned())
}

/// Every hosted error code with its HTTP status and meaning, from the one table of the Rust
/// crates (`dupify_core::ERROR_CODES`): `Error.code` is always one of these.
#[napi(ts_return_type = "ErrorCodeInfo[]")]
pub fn error_codes(env: Env) -> napi::Result<Js> {
    sync(&env, || Js::from_serde(&dupify_core::ERROR_CODES))
}

/// What LibTorch sees in this process: CUDA availability, device count, `auto`'s choice.
#[napi(ts_return_type = "DeviceReport")]
pub fn device_report(env: Env) -> napi::Result<Js> {
    sync(&env, || Js::from_serde(&dupify_core::device_report()))
}
