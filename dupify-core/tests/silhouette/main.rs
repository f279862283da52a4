//! Silhouettes: segmentation on composited and real photos, the shape embedding, and photos
//! without a clear foreground.

mod common;
mod no_foreground;
mod segment;
mod shape;
