//! Decoding: encoded bytes or raw buffers → one full-resolution [`DecodedImage`].
//!
//! The `image` crate is built with only the formats we accept (jpeg, png, webp, gif, bmp), so
//! HDR/TIFF/… decoders whose headers have caused OOMs elsewhere are not even compiled in. The
//! reader gets explicit [`image::Limits`] (its default allocation limit is far above ours), and
//! the header's dimensions are checked against [`InputLimits`] before a single pixel is decoded.

use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};

use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader};
use serde::{Deserialize, Serialize};

use super::limits::InputLimits;
use super::PixelLayout;
use crate::error::{Error, Result};

/// The format an image arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputFormat {
    /// JPEG (baseline or progressive; grayscale, YCbCr or CMYK).
    Jpeg,
    /// PNG (8 or 16 bits, any colour type).
    Png,
    /// WebP (lossy or lossless).
    WebP,
    /// GIF (the first frame).
    Gif,
    /// BMP.
    Bmp,
    /// A raw RGB/RGBA buffer handed in by the caller.
    Raw,
}

impl InputFormat {
    /// Lower-case name, as the hosted API reports it.
    pub fn as_str(self) -> &'static str {
        match self {
            InputFormat::Jpeg => "jpeg",
            InputFormat::Png => "png",
            InputFormat::WebP => "webp",
            InputFormat::Gif => "gif",
            InputFormat::Bmp => "bmp",
            InputFormat::Raw => "raw",
        }
    }
}

/// A decoded image at full resolution: packed sRGB8 with EXIF orientation applied, plus an
/// alpha plane when the source had real transparency (some pixel with alpha < 255).
///
/// Where alpha is present, `rgb` holds the straight (unassociated) colour of each pixel as the
/// file stored it; transparent pixels' colour is meaningless (often black). Consumers treat
/// alpha as a foreground hint: colours and silhouette skip transparent pixels, and the CLIP
/// input composites onto a matte (white by default, like Hugging Face's `convert_to_rgb`).
#[derive(Clone, PartialEq, Eq)]
pub struct DecodedImage {
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) rgb: Vec<u8>,
    pub(super) alpha: Option<Vec<u8>>,
    pub(super) format: InputFormat,
}

impl std::fmt::Debug for DecodedImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodedImage")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("format", &self.format)
            .field("has_alpha", &self.alpha.is_some())
            .finish()
    }
}

impl DecodedImage {
    /// Width in pixels (after orientation).
    pub fn width(&self) -> u32 {
        self.width
    }
    /// Height in pixels (after orientation).
    pub fn height(&self) -> u32 {
        self.height
    }
    /// Packed RGB8, row-major, `width * height * 3` bytes.
    pub fn rgb(&self) -> &[u8] {
        &self.rgb
    }
    /// The alpha plane (`width * height` bytes) if the image has transparency.
    pub fn alpha(&self) -> Option<&[u8]> {
        self.alpha.as_deref()
    }
    /// The format the image arrived in.
    pub fn format(&self) -> InputFormat {
        self.format
    }
    /// A JPEG thumbnail whose long side is at most `max_side` (transparent pixels over
    /// white), for listing products: small enough to store beside a catalog row (a 256-px
    /// thumbnail of a product photo is ~10 kB at quality 80).
    pub fn thumbnail_jpeg(&self, max_side: u32, quality: u8) -> Result<Vec<u8>> {
        if !(1..=100).contains(&quality) {
            return Err(Error::invalid("quality", "must be in 1..=100"));
        }
        let small = self.working(max_side)?;
        let rgb: Vec<u8> = match small.alpha() {
            None => small.rgb().to_vec(),
            Some(a) => super::preprocess::composite(small.rgb(), a, [255, 255, 255]),
        };
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
            .encode(
                &rgb,
                small.width(),
                small.height(),
                image::ExtendedColorType::Rgb8,
            )
            .map_err(|e| Error::Internal(format!("encoding a thumbnail: {e}")))?;
        Ok(out)
    }

    /// Packed RGBA8 (alpha 255 where the image has none), e.g. to write a cut-out.
    pub fn rgba_bytes(&self) -> Vec<u8> {
        interleave_rgba(&self.rgb, self.alpha.as_deref())
    }
}

pub(super) fn interleave_rgba(rgb: &[u8], alpha: Option<&[u8]>) -> Vec<u8> {
    let n = rgb.len() / 3;
    let mut out = Vec::with_capacity(n * 4);
    match alpha {
        Some(a) => {
            for (px, &a) in rgb.chunks_exact(3).zip(a) {
                out.extend_from_slice(&[px[0], px[1], px[2], a]);
            }
        }
        None => {
            for px in rgb.chunks_exact(3) {
                out.extend_from_slice(&[px[0], px[1], px[2], 255]);
            }
        }
    }
    out
}

/// Splits packed RGBA into RGB and an alpha plane, dropping the plane when fully opaque.
fn split_rgba(rgba: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
    let n = rgba.len() / 4;
    let mut rgb = Vec::with_capacity(n * 3);
    let mut alpha = Vec::with_capacity(n);
    for px in rgba.chunks_exact(4) {
        rgb.extend_from_slice(&px[..3]);
        alpha.push(px[3]);
    }
    let alpha = alpha.iter().any(|&a| a != 255).then_some(alpha);
    (rgb, alpha)
}

fn accepted(format: ImageFormat) -> Option<InputFormat> {
    Some(match format {
        ImageFormat::Jpeg => InputFormat::Jpeg,
        ImageFormat::Png => InputFormat::Png,
        ImageFormat::WebP => InputFormat::WebP,
        ImageFormat::Gif => InputFormat::Gif,
        ImageFormat::Bmp => InputFormat::Bmp,
        _ => return None,
    })
}

/// Maps an `image` error to the hosted vocabulary. `output_bytes` is the header's estimate of
/// the decoded size, reported when the decoder's own allocation limit trips.
fn map_image_error(e: ImageError, output_bytes: u64, max_alloc: u64) -> Error {
    match e {
        ImageError::Unsupported(u) => Error::UnsupportedFormat {
            detail: u.to_string(),
        },
        ImageError::Limits(_) => Error::ImageTooLarge {
            what: "decoder memory (bytes)",
            actual: output_bytes,
            limit: max_alloc,
        },
        ImageError::IoError(io) => Error::CorruptImage {
            reason: format!("truncated or unreadable image data: {io}"),
        },
        other => Error::CorruptImage {
            reason: other.to_string(),
        },
    }
}

/// Decodes encoded bytes (jpeg/png/webp/gif/bmp) under `limits`.
pub(super) fn decode_bytes(bytes: &[u8], limits: &InputLimits) -> Result<DecodedImage> {
    if bytes.is_empty() {
        return Err(Error::EmptyImage {
            reason: "input is empty".into(),
        });
    }
    limits.check_bytes(bytes.len() as u64)?;
    // Decoders are written defensively, but one untrusted file must never take the host
    // process down: a panic inside a decoder becomes a typed error for that image.
    match catch_unwind(AssertUnwindSafe(|| decode_bytes_inner(bytes, limits))) {
        Ok(r) => r,
        Err(_) => Err(Error::CorruptImage {
            reason: "the decoder rejected the data (internal decoder failure)".into(),
        }),
    }
}

fn decode_bytes_inner(bytes: &[u8], limits: &InputLimits) -> Result<DecodedImage> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::CorruptImage {
            reason: e.to_string(),
        })?;
    let Some(guessed) = reader.format() else {
        return Err(Error::UnsupportedFormat {
            detail: "unrecognised data (accepted: jpeg, png, webp, gif, bmp)".into(),
        });
    };
    let Some(format) = accepted(guessed) else {
        return Err(Error::UnsupportedFormat {
            detail: format!(
                "{} (accepted: jpeg, png, webp, gif, bmp)",
                guessed
                    .extensions_str()
                    .first()
                    .copied()
                    .unwrap_or("unknown")
            ),
        });
    };
    match format {
        InputFormat::Jpeg if !jpeg_has_eoi(bytes) => {
            return Err(Error::CorruptImage {
                reason: "truncated JPEG (no end-of-image marker after the scan data)".into(),
            })
        }
        // The BMP decoder reports a zero dimension as an unsupported feature; it is an empty
        // image. Width and height are the signed 32-bit fields of the info header.
        InputFormat::Bmp => {
            let field = |at: usize| {
                bytes
                    .get(at..at + 4)
                    .and_then(|b| b.try_into().ok())
                    .map(i32::from_le_bytes)
            };
            if let (Some(w), Some(h)) = (field(18), field(22)) {
                if w == 0 || h == 0 {
                    return Err(Error::EmptyImage {
                        reason: format!("BMP header says {w}x{}", h.unsigned_abs()),
                    });
                }
            }
        }
        _ => {}
    }
    // 8 bytes per pixel covers the widest output we can get (16-bit RGBA); the slack covers
    // decoder scratch buffers. This is a backstop: the header check below is the real limit.
    let max_alloc = limits.max_pixels.saturating_mul(8).saturating_add(64 << 20);
    // Dimensions are checked by us right after the header is parsed (with the real numbers
    // in the error); `image` enforces the allocation ceiling inside the decoders.
    let mut image_limits = image::Limits::no_limits();
    image_limits.max_alloc = Some(max_alloc);
    let mut reader = reader;
    reader.limits(image_limits);

    // Only the allocation ceiling can trip here; its exact need is unknown, "more than the
    // limit" is what we can say.
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| map_image_error(e, max_alloc.saturating_add(1), max_alloc))?;
    let (w, h) = decoder.dimensions();
    limits.check_dimensions(w, h)?;
    let output_bytes = decoder.total_bytes();
    // A broken EXIF block must not cost the image: fall back to "as stored".
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder)
        .map_err(|e| map_image_error(e, output_bytes, max_alloc))?;
    img.apply_orientation(orientation);
    from_dynamic(img, format)
}

/// Whether a JPEG stream ends properly. The JPEG decoder is lenient and fills a truncated
/// scan with grey; a truncated upload must be an error instead. Walks the marker segments from
/// SOI to the first start-of-scan (skipping APPn payloads, which may embed a thumbnail with
/// its own markers), then looks for EOI (`FF D9`) in the rest: inside entropy-coded data `FF`
/// is always followed by `00` or a restart marker, so `FF D9` there is a real EOI.
fn jpeg_has_eoi(bytes: &[u8]) -> bool {
    let mut i = 2; // after SOI
    while i + 4 <= bytes.len() {
        if bytes[i] != 0xFF {
            return false;
        }
        let marker = bytes[i + 1];
        if marker == 0xFF {
            i += 1; // fill byte
            continue;
        }
        if marker == 0xD9 {
            return false; // EOI before any scan: no image data
        }
        let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
        if marker == 0xDA {
            let scan = i + 2 + len;
            return bytes
                .get(scan..)
                .is_some_and(|rest| rest.windows(2).any(|w| w == [0xFF, 0xD9]));
        }
        i += 2 + len;
    }
    false
}

/// Converts any decoded colour type to RGB8 + optional alpha. 16-bit channels are rounded to
/// 8 bits (`image` maps v16 → round(v16 / 257)), grayscale is replicated, CMYK JPEGs arrive
/// already converted to RGB by the JPEG decoder.
fn from_dynamic(img: DynamicImage, format: InputFormat) -> Result<DecodedImage> {
    let (width, height) = (img.width(), img.height());
    let (rgb, alpha) = match img {
        DynamicImage::ImageRgb8(buf) => (buf.into_raw(), None),
        other if other.color().has_alpha() => split_rgba(&other.into_rgba8().into_raw()),
        other => (other.into_rgb8().into_raw(), None),
    };
    Ok(DecodedImage {
        width,
        height,
        rgb,
        alpha,
        format,
    })
}

/// Wraps a caller's raw buffer, checking its length and the limits.
pub(super) fn decode_raw(
    width: u32,
    height: u32,
    layout: PixelLayout,
    data: &[u8],
    limits: &InputLimits,
) -> Result<DecodedImage> {
    limits.check_dimensions(width, height)?;
    let channels = match layout {
        PixelLayout::Rgb => 3u64,
        PixelLayout::Rgba => 4,
    };
    let expected = u64::from(width) * u64::from(height) * channels;
    if data.len() as u64 != expected {
        return Err(Error::invalid(
            "data",
            format!(
                "expected {expected} bytes for {width}x{height} {layout:?}, got {}",
                data.len()
            ),
        ));
    }
    // `max_bytes` bounds *encoded* input; a raw buffer is already in memory and is bounded
    // by the pixel and side limits.
    let (rgb, alpha) = match layout {
        PixelLayout::Rgb => (data.to_vec(), None),
        PixelLayout::Rgba => split_rgba(data),
    };
    Ok(DecodedImage {
        width,
        height,
        rgb,
        alpha,
        format: InputFormat::Raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnails_fit_and_decode() {
        let (w, h) = (300u32, 120u32);
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i % 251) as u8).collect();
        let img = DecodedImage {
            width: w,
            height: h,
            rgb,
            alpha: None,
            format: InputFormat::Png,
        };
        let jpeg = img.thumbnail_jpeg(64, 80).unwrap();
        let back = image::load_from_memory(&jpeg).unwrap();
        assert_eq!((back.width(), back.height()), (64, 26));
        assert!(img.thumbnail_jpeg(64, 0).is_err());

        // Transparent pixels come out white (JPEG has no alpha).
        let clear = DecodedImage {
            width: 16,
            height: 16,
            rgb: vec![0; 16 * 16 * 3],
            alpha: Some(vec![0; 16 * 16]),
            format: InputFormat::Png,
        };
        let back = image::load_from_memory(&clear.thumbnail_jpeg(16, 90).unwrap())
            .unwrap()
            .to_rgb8();
        assert!(
            back.pixels().all(|p| p.0.iter().all(|&c| c >= 250)),
            "not white"
        );
    }
}
