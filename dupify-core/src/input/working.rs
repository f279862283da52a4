//! The small working copy every CPU stage (colours, silhouette, quality) runs on, derived from
//! the one full-resolution decode with `fast_image_resize`.

use std::cell::RefCell;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, MulDiv, PixelType, ResizeAlg, ResizeOptions, Resizer};

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
///
/// Two guards against fast_image_resize 6.1 bugs that the input fuzz tests hit (an
/// out-of-bounds SIMD read, UB in release builds; an integer overflow in its native path):
/// * the crop box is clamped to the source: computed from scale factors it can overshoot
///   the edge by an ulp (`29.000000000000004` of 29 columns), which the crate does not
///   tolerate;
/// * when upscaling on either axis, its combined two-axis pass can get convolution bounds
///   that are not in increasing order, and it shifts them assuming they are. Upscales then
///   run as two one-axis passes (vertical, then horizontal: the order and the u8
///   intermediate the crate itself uses), each of which uses the bounds as they are. Only
///   images smaller than the output take this path (CLIP's 224 px from a tiny source), so
///   its extra work on cropped-away columns does not matter.
pub(super) fn resize_packed(
    (src, src_w, src_h): (&[u8], u32, u32),
    pixel_type: PixelType,
    (dst_w, dst_h): (u32, u32),
    filter: FilterType,
    crop: Option<(f64, f64, f64, f64)>,
) -> Result<Vec<u8>> {
    let (sw, sh) = (f64::from(src_w), f64::from(src_h));
    let (l, t, w, h) = match crop {
        Some((l, t, w, h)) => (l, t, w.min(sw - l), h.min(sh - t)),
        None => (0.0, 0.0, sw, sh),
    };
    let alg = ResizeAlg::Convolution(filter);
    let src_view = ImageRef::new(src_w, src_h, src, pixel_type).map_err(resize_err)?;
    if f64::from(dst_w) > w || f64::from(dst_h) > h {
        // Alpha is premultiplied once around both passes, as the crate does around its
        // own two (a straight-alpha intermediate would lose the colours of faint pixels).
        let mul_div = MulDiv::new();
        let alpha = pixel_type == PixelType::U8x4;
        let premultiplied;
        let src_view = if alpha {
            let mut p = Image::new(src_w, src_h, pixel_type);
            mul_div
                .multiply_alpha(&src_view, &mut p)
                .map_err(resize_err)?;
            premultiplied = p;
            ImageRef::new(src_w, src_h, premultiplied.buffer(), pixel_type).map_err(resize_err)?
        } else {
            src_view
        };
        // vertical only: full width (left 0, width = source width: no horizontal pass)
        let mut tall = Image::new(src_w, dst_h, pixel_type);
        let opts = ResizeOptions::new()
            .resize_alg(alg)
            .use_alpha(false)
            .crop(0.0, t, sw, h);
        RESIZER
            .with(|r| r.borrow_mut().resize(&src_view, &mut tall, &opts))
            .map_err(resize_err)?;
        // horizontal only: top 0, height = dst_h (no vertical pass)
        let mut dst = Image::new(dst_w, dst_h, pixel_type);
        let opts =
            ResizeOptions::new()
                .resize_alg(alg)
                .use_alpha(false)
                .crop(l, 0.0, w, f64::from(dst_h));
        RESIZER
            .with(|r| r.borrow_mut().resize(&tall, &mut dst, &opts))
            .map_err(resize_err)?;
        if alpha {
            mul_div.divide_alpha_inplace(&mut dst).map_err(resize_err)?;
        }
        return Ok(dst.into_vec());
    }
    let mut dst = Image::new(dst_w, dst_h, pixel_type);
    let mut opts = ResizeOptions::new().resize_alg(alg);
    if crop.is_some() {
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
        // Sized from the photo as stored, so a reduced decode gives the same working size.
        let (w, h) = fit_long_side(self.source_width, self.source_height, max_side);
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

    fn noise(n: usize, seed: u32) -> Vec<u8> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 24) as u8
            })
            .collect()
    }

    /// What `resize_packed` did before the upscale guard: the crate's combined pass.
    fn combined(
        src: &[u8],
        (w, h): (u32, u32),
        pt: PixelType,
        (dw, dh): (u32, u32),
        crop: (f64, f64, f64, f64),
    ) -> Vec<u8> {
        let view = ImageRef::new(w, h, src, pt).unwrap();
        let mut dst = Image::new(dw, dh, pt);
        let opts = ResizeOptions::new()
            .resize_alg(ResizeAlg::Convolution(FilterType::CatmullRom))
            .crop(crop.0, crop.1, crop.2, crop.3);
        Resizer::new().resize(&view, &mut dst, &opts).unwrap();
        dst.into_vec()
    }

    #[test]
    fn upscales_as_two_passes_equal_the_crates_combined_pass() {
        // Geometries where the crate's combined pass works (its bounds happen to be in
        // order): the two one-axis passes give the same bytes, since the crate runs the
        // same vertical-then-horizontal passes through a u8 image (premultiplied for RGBA,
        // as ours).
        for (w, h, dw, dh, crop) in [
            (40u32, 30u32, 224u32, 224u32, (6.0, 0.0, 30.0, 30.0)),
            (30, 40, 224, 224, (0.0, 5.0, 30.0, 30.0)),
            (17, 23, 64, 80, (0.0, 0.0, 17.0, 23.0)),
            (50, 40, 64, 48, (3.25, 1.5, 40.0, 30.0)),
        ] {
            for (pt, ch) in [(PixelType::U8x3, 3usize), (PixelType::U8x4, 4)] {
                let src = noise((w * h) as usize * ch, w * 31 + h);
                let ours = resize_packed(
                    (&src, w, h),
                    pt,
                    (dw, dh),
                    FilterType::CatmullRom,
                    Some(crop),
                )
                .unwrap();
                let theirs = combined(&src, (w, h), pt, (dw, dh), crop);
                assert_eq!(ours, theirs, "{w}x{h} -> {dw}x{dh} {crop:?} {pt:?}");
            }
        }
    }

    #[test]
    fn geometries_that_broke_the_crate_resize_cleanly() {
        // Found by the input fuzz tests: an ulp-overshooting crop box (29.000000000000004 of
        // 29) and upscales with out-of-order bounds (21x19 -> 32, 35x32 -> 224 center crop).
        // Before the guards: a SIMD read past the row (UB) or an integer overflow.
        for (w, h, d, crop) in [
            (
                29u32,
                29u32,
                224u32,
                (0.0, 0.0, 29.000000000000004, 29.000000000000004),
            ),
            (
                29,
                40,
                224,
                (
                    0.0,
                    5.454545454545454,
                    29.000000000000004,
                    29.090909090909086,
                ),
            ),
            (21, 19, 32, (0.6, 0.0, 19.2, 19.0)),
            (35, 32, 224, (1.4285714285714284, 0.0, 32.0, 32.0)),
            (53, 32, 224, (10.428571428571429, 0.0, 32.0, 32.0)),
        ] {
            // a constant image must come out constant: weights sum to one on every path
            let src = vec![7u8; (w * h * 3) as usize];
            let out = resize_packed(
                (&src, w, h),
                PixelType::U8x3,
                (d, d),
                FilterType::CatmullRom,
                Some(crop),
            )
            .unwrap();
            assert_eq!(out.len(), (d * d * 3) as usize);
            assert!(out.iter().all(|&v| v == 7), "{w}x{h} -> {d}: not constant");
        }
    }
}
