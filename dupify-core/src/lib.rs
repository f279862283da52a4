//! # dupify-core
//!
//! The whole Dupify product-image pipeline, in-process: image input and preprocessing, CLIP
//! image/text embeddings (LibTorch via `tch`), dominant colours, silhouette, attributes,
//! image quality, batch extraction ([`Extractor`]), and the product catalog with dupe search.
//!
//! The public API speaks plain Rust types (bytes, `Vec<f32>`, structs that derive serde);
//! model code and tensors stay private to the crate.

pub mod attributes;
pub mod catalog;
pub mod clip;
pub mod colors;
pub mod device;
pub mod efficientnet;
pub mod encoder;
pub mod error;
pub mod extractor;
pub mod input;
pub mod quality;
pub mod raster;
pub mod silhouette;

pub use attributes::{AttributePredictor, AttributeReport, TextEncoder};
pub use catalog::{Catalog, CatalogOptions, Environment};
pub use clip::{ClipModel, ClipOptions, ClipTokenizer};
pub use device::{device_report, Device, DeviceReport, Precision};
pub use efficientnet::EfficientNetModel;
pub use encoder::{
    find_default_model, resolve_model_dir, Architecture, ModelChoice, ModelInfo, ModelOptions,
    DEFAULT_MODEL_DIRS,
};
pub use error::{Error, ErrorCode, ForeignError, Result, ERROR_CODES};
pub use extractor::{BatchOptions, CancelToken, Extractor, ExtractorBuilder, Features, Ops};
pub use input::{
    decode, ClipPreprocess, CropOffset, DecodedImage, ImageInput, InputLimits, MinDecodedSize,
    PixelLayout, ResizeMode,
};
pub use quality::{quality_score, QualityScore};
pub use raster::{Mask, WorkingImage};
