//! Decoding: encoded bytes or raw buffers → one full-resolution [`DecodedImage`].
//!
//! The `image` crate is built with only the formats we accept (jpeg, png, webp, gif, bmp), so
//! HDR/TIFF/… decoders whose headers have caused OOMs elsewhere are not even compiled in. The
//! reader gets explicit [`image::Limits`] (its default allocation limit is far above ours), and
//! the header's dimensions are checked against [`InputLimits`] before a single pixel is decoded.
//!
//! Large JPEGs can be decoded at a reduced scale ([`MinDecodedSize`]): the inverse DCT then
//! produces 1/2, 1/4 or 1/8 of each 8×8 block directly (as libjpeg-turbo's scaling and PIL's
//! draft mode do), which skips most of the IDCT, chroma upsampling and colour conversion work
//! and all of the later downscale's work on pixels nobody looks at. A 3000-px product photo
//! needs none of its 12 MP for a 224-px model input and a 256-px working image.

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
    /// The image's size as stored (after orientation); larger than `width × height` when the
    /// decode was reduced.
    pub(super) source_width: u32,
    pub(super) source_height: u32,
}

/// The smallest decoded size a caller can use, so that a decoder may return a smaller image
/// than the file holds: JPEGs are then decoded at the smallest of 1/8, 1/4 and 1/2 scale
/// whose long side is still at least `long_side` and short side at least `short_side` (other
/// formats, and JPEGs that are not at least twice that size, decode at full size).
///
/// Consumers that only ever *downscale* to a known size (the model input, the working image,
/// a thumbnail) lose nothing they would have kept: the later resize starts from a copy that
/// is still at least as large as its output, and the DCT-domain reduction is itself an
/// area-averaging filter. What changes is the filter: results agree with a full-size decode
/// within the preprocessing tolerance the tests document (PIL's draft mode, the same rule,
/// deviates as much), not bit for bit. A margin ([`times`](Self::times)) leaves more of the
/// reduction to the later resize's filter and halves the deviation, at some speed.
///
/// The default, [`MinDecodedSize::FULL`], never reduces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MinDecodedSize {
    /// Minimum long side of the decoded image, in pixels.
    pub long_side: u32,
    /// Minimum short side of the decoded image, in pixels.
    pub short_side: u32,
}

impl Default for MinDecodedSize {
    fn default() -> Self {
        Self::FULL
    }
}

impl MinDecodedSize {
    /// Full resolution, always (e.g. for a full-size cut-out).
    pub const FULL: Self = Self {
        long_side: u32::MAX,
        short_side: u32::MAX,
    };

    /// Any decode whose long side is at least `n` (e.g. a working image or a thumbnail that
    /// fits the long side to `n`).
    pub const fn long_side(n: u32) -> Self {
        Self {
            long_side: n,
            short_side: 0,
        }
    }

    /// Any decode whose short side is at least `n` (e.g. a model input resized so that its
    /// shortest edge is `n`, then centre-cropped).
    pub const fn short_side(n: u32) -> Self {
        Self {
            long_side: 0,
            short_side: n,
        }
    }

    /// The size that satisfies both needs.
    pub fn max(self, other: Self) -> Self {
        Self {
            long_side: self.long_side.max(other.long_side),
            short_side: self.short_side.max(other.short_side),
        }
    }

    /// This size times `k` on both sides (saturating): a margin that leaves part of the
    /// reduction to a later resize's filter (block averages alias more than a bicubic
    /// downscale does).
    pub fn times(self, k: u32) -> Self {
        Self {
            long_side: self.long_side.saturating_mul(k),
            short_side: self.short_side.saturating_mul(k),
        }
    }

    /// The largest scale denominator (8, 4, 2, else 1) at which a `width × height` image
    /// still meets this size. Scaled sides round up, as the JPEG decoder's do.
    pub fn denominator(self, width: u32, height: u32) -> u32 {
        let (long, short) = (width.max(height), width.min(height));
        [8, 4, 2]
            .into_iter()
            .find(|&d| long.div_ceil(d) >= self.long_side && short.div_ceil(d) >= self.short_side)
            .unwrap_or(1)
    }
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
    /// Width of the image as stored (after orientation): what the caller's photo measures,
    /// and the frame bounding boxes are reported in. Equal to [`width`](Self::width) unless
    /// the decode was reduced (see [`MinDecodedSize`]).
    pub fn source_width(&self) -> u32 {
        self.source_width
    }
    /// Height of the image as stored (after orientation); see
    /// [`source_width`](Self::source_width).
    pub fn source_height(&self) -> u32 {
        self.source_height
    }
    /// Whether this is a reduced-scale decode of a larger image.
    pub fn is_reduced(&self) -> bool {
        (self.width, self.height) != (self.source_width, self.source_height)
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

/// Decodes encoded bytes (jpeg/png/webp/gif/bmp) under `limits`, reduced as far as `min`
/// allows.
pub(super) fn decode_bytes(
    bytes: &[u8],
    limits: &InputLimits,
    min: MinDecodedSize,
) -> Result<DecodedImage> {
    if bytes.is_empty() {
        return Err(Error::EmptyImage {
            reason: "input is empty".into(),
        });
    }
    limits.check_bytes(bytes.len() as u64)?;
    // Decoders are written defensively, but one untrusted file must never take the host
    // process down: a panic inside a decoder becomes a typed error for that image.
    match catch_unwind(AssertUnwindSafe(|| decode_bytes_inner(bytes, limits, min))) {
        Ok(r) => r,
        Err(_) => Err(Error::CorruptImage {
            reason: "the decoder rejected the data (internal decoder failure)".into(),
        }),
    }
}

fn decode_bytes_inner(
    bytes: &[u8],
    limits: &InputLimits,
    min: MinDecodedSize,
) -> Result<DecodedImage> {
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
    let denominator = min.denominator(w, h);
    let reduced = match (format, denominator) {
        (InputFormat::Jpeg, 2..) => decode_jpeg_reduced(bytes, denominator, max_alloc),
        _ => None,
    };
    let mut img = match reduced {
        Some(img) => img,
        None => DynamicImage::from_decoder(decoder)
            .map_err(|e| map_image_error(e, output_bytes, max_alloc))?,
    };
    img.apply_orientation(orientation);
    let mut out = from_dynamic(img, format)?;
    // The stored size, turned as the pixels were.
    use image::metadata::Orientation as O;
    (out.source_width, out.source_height) = match orientation {
        O::Rotate90 | O::Rotate270 | O::Rotate90FlipH | O::Rotate270FlipH => (h, w),
        _ => (w, h),
    };
    Ok(out)
}

/// Decodes a JPEG at 1/`denominator` scale in the inverse DCT, or `None` where this decoder
/// cannot do it (lossless or CMYK files, 12-bit samples, an unexpected output size) or fails
/// on the file: the caller then decodes at full size with the default decoder, whose verdict
/// on a damaged file stands. A photo that decodes at all is never lost to the faster path.
fn decode_jpeg_reduced(bytes: &[u8], denominator: u32, max_alloc: u64) -> Option<DynamicImage> {
    use jpeg_decoder::{CodingProcess, Decoder, PixelFormat};
    let mut decoder = Decoder::new(bytes);
    decoder.set_max_decoding_buffer_size(usize::try_from(max_alloc).unwrap_or(usize::MAX));
    if decoder.read_info().is_err() {
        return None;
    }
    let info = decoder.info()?;
    if info.coding_process == CodingProcess::Lossless
        || !matches!(info.pixel_format, PixelFormat::RGB24 | PixelFormat::L8)
    {
        return None;
    }
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    let want = (w.div_ceil(denominator), h.div_ceil(denominator));
    // Asking for exactly the scaled size makes the decoder pick exactly this scale: every
    // smaller one is smaller on both axes.
    let (rw, rh) = (u16::try_from(want.0).ok()?, u16::try_from(want.1).ok()?);
    match decoder.scale(rw, rh) {
        Ok(got) if (u32::from(got.0), u32::from(got.1)) == want => {}
        _ => return None,
    }
    let pixels = decoder.decode().ok()?;
    match info.pixel_format {
        PixelFormat::RGB24 => {
            image::RgbImage::from_raw(want.0, want.1, pixels).map(DynamicImage::ImageRgb8)
        }
        _ => image::GrayImage::from_raw(want.0, want.1, pixels).map(DynamicImage::ImageLuma8),
    }
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
            // From the end: a complete file ends with its EOI (perhaps followed by padding), so
            // this looks at a few bytes instead of the whole entropy-coded megabyte.
            return bytes
                .get(scan..)
                .is_some_and(|rest| rest.windows(2).rev().any(|w| w == [0xFF, 0xD9]));
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
        source_width: width,
        source_height: height,
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
        source_width: width,
        source_height: height,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_reduction_that_keeps_both_sides_is_chosen() {
        // A 3000 x 1688 photo for a 224-px centre crop: the short side must stay >= 224,
        // which 1/4 (422) does and 1/8 (211) does not; with a 2x margin (>= 448) only 1/2.
        let crop = MinDecodedSize::short_side(224);
        assert_eq!(crop.times(2).denominator(3000, 1688), 2);
        assert_eq!(crop.denominator(3000, 1688), 4);
        assert_eq!(
            crop.denominator(1688, 3000),
            4,
            "orientation does not matter"
        );
        // Rounding up, as the decoder does: ceil(1800 / 8) = 225 >= 224.
        assert_eq!(crop.denominator(1800, 1800), 8);
        assert_eq!(crop.denominator(1784, 1784), 4);
        // Both needs at once: the working image's long side and the crop's short side.
        let both = crop.max(MinDecodedSize::long_side(1000));
        assert_eq!(both.denominator(3000, 1688), 2);
        // Small photos and FULL never reduce; an image exactly twice the need halves.
        assert_eq!(crop.denominator(400, 711), 1);
        assert_eq!(crop.denominator(448, 900), 2);
        assert_eq!(MinDecodedSize::FULL.denominator(8000, 8000), 1);
        assert_eq!(MinDecodedSize::FULL.times(2), MinDecodedSize::FULL);
        assert_eq!(MinDecodedSize::default(), MinDecodedSize::FULL);
    }

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
            source_width: w,
            source_height: h,
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
            source_width: 16,
            source_height: 16,
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
