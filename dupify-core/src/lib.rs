//! # dupify-core
//!
//! The whole Dupify product-image pipeline, in-process: image input and preprocessing, CLIP
//! image/text embeddings (LibTorch via `tch`), dominant colours, silhouette, attributes,
//! image quality, batch extraction, and the product catalog with dupe search.
//!
//! The public API speaks plain Rust types (bytes, `Vec<f32>`, structs that derive serde);
//! model code and tensors stay private to the crate.

pub mod catalog;
pub mod device;
pub mod error;

pub use device::{device_report, Device, DeviceReport, Precision};
pub use error::{Error, Result};
pub mod raster;

pub use raster::{Mask, WorkingImage};
