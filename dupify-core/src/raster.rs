//! Plain pixel containers shared by the CPU stages (colours, silhouette, quality).
//!
//! They hold owned, tightly packed buffers instead of `image` crate types so that every stage
//! (and every binding) can build, inspect and test them without knowing how the image was
//! decoded. The working image is small (its long side is a few hundred pixels): all
//! whole-image statistics run on it, never on the full-resolution decode.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A small sRGB working copy of the decoded image. `alpha`, when the source had an alpha
/// channel, is kept as a foreground hint: transparent pixels are background for colours and
/// silhouette, never flattened to black.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkingImage {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
    alpha: Option<Vec<u8>>,
}

impl WorkingImage {
    /// Builds a working image from packed RGB (`width * height * 3` bytes) and an optional
    /// alpha plane (`width * height` bytes).
    pub fn new(width: u32, height: u32, rgb: Vec<u8>, alpha: Option<Vec<u8>>) -> Result<Self> {
        if width == 0 || height == 0 {
            return Err(Error::EmptyImage {
                reason: format!("working image is {width}x{height}"),
            });
        }
        let n = width as usize * height as usize;
        if rgb.len() != n * 3 {
            return Err(Error::invalid(
                "rgb",
                format!(
                    "expected {} bytes for {width}x{height} RGB, got {}",
                    n * 3,
                    rgb.len()
                ),
            ));
        }
        if let Some(a) = &alpha {
            if a.len() != n {
                return Err(Error::invalid(
                    "alpha",
                    format!("expected {n} bytes for {width}x{height}, got {}", a.len()),
                ));
            }
        }
        Ok(Self {
            width,
            height,
            rgb,
            alpha,
        })
    }

    /// Builds a working image from an RGBA buffer; the alpha plane is kept only if some pixel
    /// is not fully opaque.
    pub fn from_rgba(width: u32, height: u32, rgba: &[u8]) -> Result<Self> {
        let n = width as usize * height as usize;
        if rgba.len() != n * 4 {
            return Err(Error::invalid(
                "rgba",
                format!(
                    "expected {} bytes for {width}x{height} RGBA, got {}",
                    n * 4,
                    rgba.len()
                ),
            ));
        }
        let mut rgb = Vec::with_capacity(n * 3);
        let mut alpha = Vec::with_capacity(n);
        for px in rgba.chunks_exact(4) {
            rgb.extend_from_slice(&px[..3]);
            alpha.push(px[3]);
        }
        let alpha = alpha.iter().any(|&a| a != 255).then_some(alpha);
        Self::new(width, height, rgb, alpha)
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }
    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }
    /// Packed RGB bytes, row-major.
    pub fn rgb(&self) -> &[u8] {
        &self.rgb
    }
    /// The alpha plane, if the source had transparency.
    pub fn alpha(&self) -> Option<&[u8]> {
        self.alpha.as_deref()
    }
    /// Number of pixels.
    pub fn len(&self) -> usize {
        self.width as usize * self.height as usize
    }
    /// Always false: a working image has at least one pixel.
    pub fn is_empty(&self) -> bool {
        false
    }
    /// The RGB triple at (x, y). Panics if out of bounds (internal callers iterate in range).
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }
}

/// A foreground mask: 255 = product, 0 = background (intermediate values are soft edges).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mask {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Row-major coverage values, `width * height` bytes.
    pub data: Vec<u8>,
}

impl Mask {
    /// Builds a mask, checking the buffer length.
    pub fn new(width: u32, height: u32, data: Vec<u8>) -> Result<Self> {
        if data.len() != width as usize * height as usize {
            return Err(Error::invalid(
                "mask",
                format!(
                    "expected {} bytes for {width}x{height}, got {}",
                    width as usize * height as usize,
                    data.len()
                ),
            ));
        }
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// Whether pixel index `i` is foreground (coverage ≥ 50%).
    pub fn is_foreground(&self, i: usize) -> bool {
        self.data[i] >= 128
    }

    /// Fraction of pixels that are foreground.
    pub fn foreground_fraction(&self) -> f32 {
        if self.data.is_empty() {
            return 0.0;
        }
        self.data.iter().filter(|&&v| v >= 128).count() as f32 / self.data.len() as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_checked() {
        assert!(WorkingImage::new(2, 2, vec![0; 12], None).is_ok());
        assert_eq!(
            WorkingImage::new(2, 2, vec![0; 11], None)
                .unwrap_err()
                .code(),
            "invalid_parameter"
        );
        assert!(WorkingImage::new(2, 2, vec![0; 12], Some(vec![0; 3])).is_err());
        assert!(WorkingImage::new(0, 2, vec![], None).is_err());
        assert!(Mask::new(3, 1, vec![0, 255]).is_err());
    }

    #[test]
    fn opaque_rgba_drops_alpha_and_transparent_keeps_it() {
        let opaque = WorkingImage::from_rgba(1, 2, &[1, 2, 3, 255, 4, 5, 6, 255]).unwrap();
        assert!(opaque.alpha().is_none());
        assert_eq!(opaque.pixel(0, 1), [4, 5, 6]);
        let t = WorkingImage::from_rgba(1, 2, &[1, 2, 3, 0, 4, 5, 6, 255]).unwrap();
        assert_eq!(t.alpha(), Some(&[0u8, 255][..]));
    }

    #[test]
    fn foreground_fraction_counts_half_coverage_and_up() {
        let m = Mask::new(2, 2, vec![0, 127, 128, 255]).unwrap();
        assert_eq!(m.foreground_fraction(), 0.5);
        assert!(!m.is_foreground(1) && m.is_foreground(2));
    }
}
