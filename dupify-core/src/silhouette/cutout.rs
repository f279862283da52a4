//! Cut-out (the hosted `background-remove`): the product on a transparent background, as an
//! RGBA PNG at full resolution.
//!
//! The mask comes from the small working image, so it is upsampled to the photo's size with
//! a bilinear filter after a light 3×3 blur: the alpha edge is then a ramp a few original
//! pixels wide instead of a staircase of working-image pixels.

use std::io::Cursor;

use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};

use crate::error::{Error, Result};
use crate::raster::Mask;

/// Resamples `mask` to `width × height` with a bilinear filter (soft edges).
pub fn resize_mask(mask: &Mask, width: u32, height: u32) -> Result<Mask> {
    if width == 0 || height == 0 {
        return Err(Error::invalid(
            "size",
            format!("target mask size {width}x{height} must be non-zero"),
        ));
    }
    if mask.width == 0 || mask.height == 0 {
        return Err(Error::invalid("mask", "mask is 0-sized"));
    }
    if mask.data.len() != mask.width as usize * mask.height as usize {
        return Err(Error::invalid(
            "mask",
            "mask data length does not match its size",
        ));
    }
    if (mask.width, mask.height) == (width, height) {
        return Ok(mask.clone());
    }
    let src = Image::from_vec_u8(mask.width, mask.height, mask.data.clone(), PixelType::U8)
        .map_err(|e| Error::invalid("mask", e.to_string()))?;
    let mut dst = Image::new(width, height, PixelType::U8);
    Resizer::new()
        .resize(
            &src,
            &mut dst,
            &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)),
        )
        .map_err(|e| Error::Internal(format!("mask resize failed: {e}")))?;
    Mask::new(width, height, dst.into_vec())
}

/// 3×3 box blur of a mask, edges clamped: turns the hard 0/255 step into a one-pixel ramp.
fn soften(mask: &Mask) -> Mask {
    let (w, h) = (mask.width as usize, mask.height as usize);
    let mut out = vec![0u8; w * h];
    for y in 0..h {
        for x in 0..w {
            let mut s = 0u32;
            for dy in [-1isize, 0, 1] {
                for dx in [-1isize, 0, 1] {
                    let xx = (x as isize + dx).clamp(0, w as isize - 1) as usize;
                    let yy = (y as isize + dy).clamp(0, h as isize - 1) as usize;
                    s += mask.data[yy * w + xx] as u32;
                }
            }
            out[y * w + x] = ((s + 4) / 9) as u8;
        }
    }
    Mask {
        width: mask.width,
        height: mask.height,
        data: out,
    }
}

/// The product on a transparent background: `rgb` is the full-resolution photo (packed RGB,
/// `width * height * 3` bytes), `mask` any-size foreground mask of the same scene (usually
/// [`super::Segmentation::mask`] at working size). Returns RGBA PNG bytes whose alpha is the
/// softened, upsampled mask.
pub fn cutout_png(width: u32, height: u32, rgb: &[u8], mask: &Mask) -> Result<Vec<u8>> {
    if width == 0 || height == 0 {
        return Err(Error::EmptyImage {
            reason: format!("cut-out of a {width}x{height} image"),
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
    if mask.width == 0
        || mask.height == 0
        || mask.data.len() != mask.width as usize * mask.height as usize
    {
        return Err(Error::invalid(
            "mask",
            "mask is empty or its data length is wrong",
        ));
    }
    let alpha = resize_mask(&soften(mask), width, height)?;
    let mut rgba = Vec::with_capacity(n * 4);
    for (px, &a) in rgb.chunks_exact(3).zip(&alpha.data) {
        rgba.extend_from_slice(px);
        rgba.push(a);
    }
    let mut out = Vec::with_capacity(n);
    PngEncoder::new(Cursor::new(&mut out))
        .write_image(&rgba, width, height, ExtendedColorType::Rgba8)
        .map_err(|e| Error::Internal(format!("PNG encoding failed: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsampled_mask_keeps_the_inside_and_softens_the_edge() {
        let mut data = vec![0u8; 16 * 16];
        for y in 4..12 {
            for x in 4..12 {
                data[y * 16 + x] = 255;
            }
        }
        let m = Mask::new(16, 16, data).unwrap();
        let big = resize_mask(&m, 64, 64).unwrap();
        assert_eq!(big.data[32 * 64 + 32], 255);
        assert_eq!(big.data[2 * 64 + 2], 0);
        let soft = big.data.iter().filter(|&&v| v > 0 && v < 255).count();
        assert!(soft > 0, "no soft edge pixels");
        assert!(resize_mask(&m, 0, 5).is_err());
    }

    #[test]
    fn cutout_is_a_decodable_rgba_png() {
        let (w, h) = (40u32, 30u32);
        let rgb = vec![90u8; (w * h * 3) as usize];
        let mut data = vec![0u8; 10 * 10];
        for y in 3..7 {
            for x in 3..7 {
                data[y * 10 + x] = 255;
            }
        }
        let m = Mask::new(10, 10, data).unwrap();
        let png = cutout_png(w, h, &rgb, &m).unwrap();
        let img = image::load_from_memory_with_format(&png, image::ImageFormat::Png)
            .unwrap()
            .to_rgba8();
        assert_eq!(img.dimensions(), (w, h));
        assert_eq!(img.get_pixel(20, 15).0, [90, 90, 90, 255]);
        assert_eq!(img.get_pixel(0, 0).0[3], 0);
        assert!(cutout_png(w, h, &rgb[1..], &m).is_err());
    }
}
