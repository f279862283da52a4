//! Product silhouette: foreground mask, cut-out (transparent PNG) and shape embedding — the
//! hosted `silhouette` and `background-remove` operations.
//!
//! No segmentation model can be downloaded on the machines this project is built on, so the
//! default [`Segmenter`] is a classical one ([`ClassicalSegmenter`]: border colour model in
//! Lab, GrabCut-style refinement with a mean-field CRF, morphological clean-up). The
//! [`Segmenter`] trait is the seam where a learned model (U²-Net, SAM, …) can be plugged in
//! later: everything downstream ([`cutout_png`], [`shape_embedding`]) only sees a [`Mask`].
//!
//! ```
//! use dupify_core::raster::WorkingImage;
//! use dupify_core::silhouette::{shape_embedding, ClassicalSegmenter, Segmenter, SHAPE_EMBEDDING_DIM};
//!
//! // A dark square on a light grey floor.
//! let (w, h) = (64u32, 64u32);
//! let mut rgb = vec![200u8; (w * h * 3) as usize];
//! for y in 20..44 {
//!     for x in 16..48 {
//!         let i = ((y * w + x) * 3) as usize;
//!         rgb[i..i + 3].copy_from_slice(&[40, 30, 120]);
//!     }
//! }
//! let img = WorkingImage::new(w, h, rgb, None)?;
//! let seg = ClassicalSegmenter::new().segment(&img)?;
//! assert_eq!((seg.bbox.x, seg.bbox.y, seg.bbox.width, seg.bbox.height), (16, 20, 32, 24));
//! let emb = shape_embedding(&seg.mask)?;
//! assert_eq!(emb.len(), SHAPE_EMBEDDING_DIM);
//! # Ok::<(), dupify_core::Error>(())
//! ```

mod cutout;
pub(crate) mod morphology;
mod segment;
mod shape;

pub use cutout::{cutout_png, resize_mask};
pub use segment::{ClassicalSegmenter, SegmenterOptions};
pub use shape::{shape_cosine, shape_embedding, SHAPE_EMBEDDING_DIM};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::raster::{Mask, WorkingImage};

/// Foreground segmentation of a working image. Implementations must be deterministic for a
/// given input and must not panic on any valid [`WorkingImage`]; an image with no findable
/// product is an error ([`crate::Error::EmptyImage`]), not an empty mask.
pub trait Segmenter: Send + Sync {
    /// Segments the product in `img`.
    fn segment(&self, img: &WorkingImage) -> Result<Segmentation>;
}

/// An axis-aligned box in pixels: `x, y` is the top-left corner, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BoundingBox {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width (≥ 1).
    pub width: u32,
    /// Height (≥ 1).
    pub height: u32,
}

impl BoundingBox {
    /// The box around every foreground pixel (coverage ≥ 50%) of `mask`, or `None` when it
    /// has none.
    pub fn of_mask(mask: &Mask) -> Option<Self> {
        let w = mask.width as usize;
        let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0usize, 0usize);
        for (i, _) in mask.data.iter().enumerate().filter(|(_, &v)| v >= 128) {
            let (x, y) = (i % w, i / w);
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x);
            y1 = y1.max(y);
        }
        (x0 != usize::MAX).then(|| Self {
            x: x0 as u32,
            y: y0 as u32,
            width: (x1 - x0 + 1) as u32,
            height: (y1 - y0 + 1) as u32,
        })
    }

    /// This box (measured on a `from_width × from_height` image) mapped onto a
    /// `to_width × to_height` image of the same scene, e.g. from the working image to the
    /// original photo. The result covers the same region, rounded outwards, clamped to the
    /// target image.
    pub fn scaled(&self, from_width: u32, from_height: u32, to_width: u32, to_height: u32) -> Self {
        let sx = to_width as f64 / from_width.max(1) as f64;
        let sy = to_height as f64 / from_height.max(1) as f64;
        let x0 = ((self.x as f64 * sx).floor() as u32).min(to_width.saturating_sub(1));
        let y0 = ((self.y as f64 * sy).floor() as u32).min(to_height.saturating_sub(1));
        let x1 = (((self.x + self.width) as f64 * sx).ceil() as u32).clamp(x0 + 1, to_width.max(1));
        let y1 =
            (((self.y + self.height) as f64 * sy).ceil() as u32).clamp(y0 + 1, to_height.max(1));
        Self {
            x: x0,
            y: y0,
            width: x1 - x0,
            height: y1 - y0,
        }
    }
}

/// What separated the product from its background in a silhouette.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SilhouetteSource {
    /// The configured [`Segmenter`] found the product.
    #[default]
    Segmenter,
    /// The segmenter found no foreground (the product is the colour of its backdrop, or lies
    /// on a busy floor): a centre prior ([`center_prior`]) stands in, with a low confidence,
    /// so the operation still returns. Its shape says nothing about the product, so the
    /// catalog stores such a product without the shape channel.
    CenterPrior,
}

/// Confidence reported for a [`center_prior`] mask: it is a guess about framing, not a
/// measurement of the product.
pub const CENTER_PRIOR_CONFIDENCE: f32 = 0.05;

/// The fallback foreground when a segmenter finds none: a centred ellipse over the middle
/// 70% × 80% of the frame, where product photos put the product. A guess with
/// [`CENTER_PRIOR_CONFIDENCE`]; callers report it as [`SilhouetteSource::CenterPrior`].
pub fn center_prior(img: &WorkingImage) -> Result<Segmentation> {
    let (w, h) = (img.width(), img.height());
    let (cx, cy) = (f64::from(w) / 2.0, f64::from(h) / 2.0);
    let (rx, ry) = (f64::from(w) * 0.35, f64::from(h) * 0.40);
    let mut data = vec![0u8; w as usize * h as usize];
    for y in 0..h {
        for x in 0..w {
            let dx = (f64::from(x) + 0.5 - cx) / rx;
            let dy = (f64::from(y) + 0.5 - cy) / ry;
            if dx * dx + dy * dy <= 1.0 {
                data[(y * w + x) as usize] = 255;
            }
        }
    }
    let mask = Mask::new(w, h, data)?;
    let bbox = BoundingBox::of_mask(&mask).unwrap_or(BoundingBox {
        x: 0,
        y: 0,
        width: w.max(1),
        height: h.max(1),
    });
    let area_fraction = mask.foreground_fraction();
    Ok(Segmentation {
        mask,
        bbox,
        area_fraction,
        confidence: CENTER_PRIOR_CONFIDENCE,
    })
}

/// The result of segmenting one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segmentation {
    /// Foreground mask at working-image size (255 = product).
    pub mask: Mask,
    /// Bounding box of the mask, in working-image pixels (see [`BoundingBox::scaled`]).
    pub bbox: BoundingBox,
    /// Fraction of the image covered by the product, 0..1.
    pub area_fraction: f32,
    /// How much to trust the mask, 0..1: low when the product and background colours
    /// overlap, when the mask hugs the image border, or when its area is implausible.
    pub confidence: f32,
}

impl Segmentation {
    /// The mask resampled to `width × height` (e.g. the original photo's size) with a
    /// bilinear filter, so edges come out soft rather than blocky.
    pub fn mask_at(&self, width: u32, height: u32) -> Result<Mask> {
        resize_mask(&self.mask, width, height)
    }

    /// The bounding box in a `width × height` image of the same scene.
    pub fn bbox_at(&self, width: u32, height: u32) -> BoundingBox {
        self.bbox
            .scaled(self.mask.width, self.mask.height, width, height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bbox_of_mask_and_scaling() {
        let mut data = vec![0u8; 10 * 8];
        data[2 * 10 + 3] = 255;
        data[5 * 10 + 6] = 200;
        data[7 * 10 + 9] = 100; // below half coverage: not foreground
        let m = Mask::new(10, 8, data).unwrap();
        let b = BoundingBox::of_mask(&m).unwrap();
        assert_eq!((b.x, b.y, b.width, b.height), (3, 2, 4, 4));
        let s = b.scaled(10, 8, 40, 32);
        assert_eq!((s.x, s.y, s.width, s.height), (12, 8, 16, 16));
        assert!(BoundingBox::of_mask(&Mask::new(2, 2, vec![0; 4]).unwrap()).is_none());
    }
}
