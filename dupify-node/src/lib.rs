//! Node.js bindings for Dupify: conversions only, every piece of logic lives in the Rust crates.
use napi_derive::napi;

/// The device `auto` resolves to in this process (`cpu` or `cuda:N`).
#[napi]
pub fn auto_device() -> String {
    dupify_core::device_report().auto_device
}
