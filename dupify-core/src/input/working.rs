//! The small working copy every CPU stage (colours, silhouette, quality) runs on, derived from
//! the one full-resolution decode with `fast_image_resize`.

use std::cell::RefCell;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use super::decode::{interleave_rgba, DecodedImage};
use crate::error::{Error, Result};
use crate::raster::WorkingImage;

/// Default long side of the working image: enough for dominant colours, a silhouette mask
/// and quality statistics, small enough that whole-image passes cost microseconds.
pub const DEFAULT_WORKING_SIDE: u32 = 256;

thread_local! {
    // One resizer per thread keeps its scratch buffers warm across images.
    static RESIZER: RefCell<Resizer> = RefCell::new(Resizer::new());
}

pub(super) fn resize_err(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("resize failed: {e}"))
}

/// Resizes packed pixels (`U8x3` or straight-alpha `U8x4`; alpha-weighted so transparent
/// pixels' colours never bleed into their neighbours) to `dst_w × dst_h`, optionally from a
/// fractional source crop box `(left, top, width, height)`.
pub(super) fn resize_packed(
    (src, src_w, src_h): (&[u8], u32, u32),
    pixel_type: PixelType,
    (dst_w, dst_h): (u32, u32),
    filter: FilterType,
    crop: Option<(f64, f64, f64, f64)>,
) -> Result<Vec<u8>> {
    let src_view = ImageRef::new(src_w, src_h, src, pixel_type).map_err(resize_err)?;
    let mut dst = Image::new(dst_w, dst_h, pixel_type);
    let mut opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(filter));
    if let Some((l, t, w, h)) = crop {
        opts = opts.crop(l, t, w, h);
    }
    RESIZER
        .with(|r| r.borrow_mut().resize(&src_view, &mut dst, &opts))
        .map_err(resize_err)?;
    Ok(dst.into_vec())
}

/// Output size that fits `w × h` into a `max_side` long side, keeping the aspect ratio (never
/// upscaling, never below one pixel).
pub(super) fn fit_long_side(w: u32, h: u32, max_side: u32) -> (u32, u32) {
    let long = w.max(h);
    if long <= max_side {
        return (w, h);
    }
    let scale = f64::from(max_side) / f64::from(long);
    let fit = |v: u32| ((f64::from(v) * scale).round() as u32).clamp(1, max_side);
    if w >= h {
        (max_side, fit(h))
    } else {
        (fit(w), max_side)
    }
}

impl DecodedImage {
    /// A working copy whose long side is at most `max_side` (see [`DEFAULT_WORKING_SIDE`]),
    /// resized with an antialiasing bilinear filter. The alpha plane, if any, is resized with
    /// the colours (alpha-weighted) and kept as the foreground hint.
    pub fn working(&self, max_side: u32) -> Result<WorkingImage> {
        if max_side == 0 {
            return Err(Error::invalid("max_side", "must be greater than 0"));
        }
        let (w, h) = fit_long_side(self.width, self.height, max_side);
        if (w, h) == (self.width, self.height) {
            return WorkingImage::new(w, h, self.rgb.clone(), self.alpha.clone());
        }
        match &self.alpha {
            None => {
                let rgb = resize_packed(
                    (&self.rgb, self.width, self.height),
                    PixelType::U8x3,
                    (w, h),
                    FilterType::Bilinear,
                    None,
                )?;
                WorkingImage::new(w, h, rgb, None)
            }
            Some(a) => {
                let rgba = interleave_rgba(&self.rgb, Some(a));
                let out = resize_packed(
                    (&rgba, self.width, self.height),
                    PixelType::U8x4,
                    (w, h),
                    FilterType::Bilinear,
                    None,
                )?;
                // Keep the plane even if resizing made it fully opaque at this scale: the
                // source had transparency and consumers may rely on that.
                let mut rgb = Vec::with_capacity(out.len() / 4 * 3);
                let mut alpha = Vec::with_capacity(out.len() / 4);
                for px in out.chunks_exact(4) {
                    rgb.extend_from_slice(&px[..3]);
                    alpha.push(px[3]);
                }
                WorkingImage::new(w, h, rgb, Some(alpha))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_aspect_and_never_upscales() {
        assert_eq!(fit_long_side(400, 711, 256), (144, 256));
        assert_eq!(fit_long_side(711, 400, 256), (256, 144));
        assert_eq!(fit_long_side(100, 50, 256), (100, 50));
        assert_eq!(fit_long_side(10_000, 1, 256), (256, 1));
    }
}
