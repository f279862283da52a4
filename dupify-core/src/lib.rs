//! # dupify-core
//!
//! The whole Dupify product-image pipeline, in-process: image input and preprocessing, CLIP
//! image/text embeddings (LibTorch via `tch`), dominant colours, silhouette, attributes,
//! image quality, batch extraction, and the product catalog with dupe search.
//!
//! The public API speaks plain Rust types (bytes, `Vec<f32>`, structs that derive serde);
//! model code and tensors stay private to the crate.

pub mod clip;
pub mod colors;
pub mod catalog;
pub mod device;
pub mod error;
pub mod input;

pub use clip::{ClipModel, ClipOptions, ClipTokenizer};
pub use device::{device_report, Device, DeviceReport, Precision};
pub use error::{Error, Result};
pub use input::{
    decode, ClipPreprocess, DecodedImage, ImageInput, InputLimits, PixelLayout, ResizeMode,
};
pub mod raster;
pub mod silhouette;

pub use raster::{Mask, WorkingImage};
pub mod attributes;
pub mod quality;

pub use attributes::{AttributePredictor, AttributeReport, TextEncoder};
pub use quality::{quality_score, QualityScore};
