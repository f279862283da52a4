//! Image input: every operation starts here.
//!
//! An [`ImageInput`] (encoded bytes, base64, a file path, a raw RGB/RGBA buffer, or an
//! `http(s)` URL when the `url-fetch` feature is on) is checked against [`InputLimits`] and decoded **once** into a
//! [`DecodedImage`] (full-resolution RGB8, EXIF orientation applied, alpha kept as a separate
//! plane). Every view the operations need is derived from that one decode with
//! `fast_image_resize`: the CLIP tensor ([`ClipPreprocess`]) and the small
//! [`WorkingImage`](crate::raster::WorkingImage) for colours, silhouette and quality
//! ([`DecodedImage::working`]).
//!
//! Untrusted input never panics: empty, truncated, corrupt, oversized and unsupported input
//! all come back as [`Error`] variants carrying the hosted error codes (`invalid_base64`,
//! `unsupported_format`, `image_processing_failed`, …).
//!
//! ```
//! use dupify_core::input::{decode, ClipPreprocess, ImageInput, InputLimits, PixelLayout};
//!
//! let input = ImageInput::Raw { width: 2, height: 1, layout: PixelLayout::Rgb,
//!                               data: vec![255, 0, 0, 0, 0, 255] };
//! let image = decode(&input, &InputLimits::default())?;
//! let tensor = ClipPreprocess::default().preprocess(&image)?;
//! assert_eq!(tensor.len(), 3 * 224 * 224);
//! let working = image.working(256)?;
//! assert_eq!((working.width(), working.height()), (2, 1));
//! # Ok::<(), dupify_core::Error>(())
//! ```

mod base64;
mod decode;
#[cfg(feature = "url-fetch")]
mod fetch;
mod identity;
mod limits;
mod preprocess;
mod url;
mod working;

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub(crate) use self::base64::decode_base64;
pub use self::url::{classify_ip, AddressClass, UrlPolicy};
pub use decode::{DecodedImage, InputFormat, MinDecodedSize};
#[cfg(feature = "url-fetch")]
pub use fetch::{check_image_url, fetch_image_url};
pub(crate) use identity::{content_hash, hex, load_bytes};
pub use limits::InputLimits;
pub use preprocess::{
    shortest_edge_size, ClipPreprocess, CropOffset, ResizeMode, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD,
};
pub use working::DEFAULT_WORKING_SIDE;

use crate::error::{Error, Result};

/// Channel layout of a raw pixel buffer (8 bits per channel, sRGB, row-major, no padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PixelLayout {
    /// 3 bytes per pixel.
    Rgb,
    /// 4 bytes per pixel, straight (not premultiplied) alpha.
    Rgba,
}

/// One image, in any of the forms a caller may hold it.
#[derive(Clone, PartialEq, Eq)]
pub enum ImageInput {
    /// Encoded file bytes: JPEG, PNG, WebP, GIF (first frame) or BMP.
    Bytes(Vec<u8>),
    /// Base64 of encoded bytes: standard or URL-safe alphabet, padded or not, optionally a
    /// `data:image/...;base64,` URL; whitespace anywhere is ignored.
    Base64(String),
    /// A file to read (size-checked before reading).
    Path(PathBuf),
    /// Decoded pixels the caller already has.
    Raw {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// Channel layout of `data`.
        layout: PixelLayout,
        /// `width * height * channels` bytes.
        data: Vec<u8>,
    },
    /// An `http(s)` URL, fetched under [`InputLimits::url`] (a [`UrlPolicy`]: public
    /// addresses only by default, checked after DNS and on every redirect, with byte and time
    /// limits). Needs the `url-fetch` cargo feature; without it the input is refused with
    /// [`Error::NotAvailable`].
    Url(String),
}

impl std::fmt::Debug for ImageInput {
    /// Never dumps payloads (they can be megabytes): lengths only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImageInput::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            ImageInput::Base64(s) => write!(f, "Base64({} chars)", s.len()),
            ImageInput::Path(p) => f.debug_tuple("Path").field(p).finish(),
            ImageInput::Raw {
                width,
                height,
                layout,
                data,
            } => write!(f, "Raw({width}x{height} {layout:?}, {} bytes)", data.len()),
            ImageInput::Url(u) => f.debug_tuple("Url").field(u).finish(),
        }
    }
}

impl From<Vec<u8>> for ImageInput {
    fn from(bytes: Vec<u8>) -> Self {
        ImageInput::Bytes(bytes)
    }
}

impl From<&[u8]> for ImageInput {
    fn from(bytes: &[u8]) -> Self {
        ImageInput::Bytes(bytes.to_vec())
    }
}

impl From<PathBuf> for ImageInput {
    fn from(path: PathBuf) -> Self {
        ImageInput::Path(path)
    }
}

impl From<&Path> for ImageInput {
    fn from(path: &Path) -> Self {
        ImageInput::Path(path.to_path_buf())
    }
}

/// Decodes any [`ImageInput`] under `limits` into one full-resolution [`DecodedImage`].
pub fn decode(input: &ImageInput, limits: &InputLimits) -> Result<DecodedImage> {
    decode_reduced(input, limits, MinDecodedSize::FULL)
}

/// Decodes any [`ImageInput`] under `limits`, at a reduced scale where the input is a JPEG at
/// least twice as large as `min` on both sides (see [`MinDecodedSize`]). The result knows the
/// photo's stored size ([`DecodedImage::source_width`]).
pub fn decode_reduced(
    input: &ImageInput,
    limits: &InputLimits,
    min: MinDecodedSize,
) -> Result<DecodedImage> {
    limits.validate()?;
    match input {
        ImageInput::Bytes(bytes) => decode::decode_bytes(bytes, limits, min),
        ImageInput::Base64(text) => {
            let bytes = base64::decode_base64(text, limits.max_bytes)?;
            decode::decode_bytes(&bytes, limits, min)
        }
        ImageInput::Path(path) => {
            let bytes = read_file(path, limits.max_bytes)?;
            decode::decode_bytes(&bytes, limits, min)
        }
        ImageInput::Raw {
            width,
            height,
            layout,
            data,
        } => decode::decode_raw(*width, *height, *layout, data, limits),
        ImageInput::Url(url) => {
            let bytes = fetch_url_bytes(url, limits)?;
            decode::decode_bytes(&bytes, limits, min)
        }
    }
}

/// Decodes encoded bytes without copying them into an [`ImageInput`].
pub fn decode_bytes(bytes: &[u8], limits: &InputLimits) -> Result<DecodedImage> {
    decode_bytes_reduced(bytes, limits, MinDecodedSize::FULL)
}

/// [`decode_bytes`], reduced as far as `min` allows (see [`decode_reduced`]).
pub fn decode_bytes_reduced(
    bytes: &[u8],
    limits: &InputLimits,
    min: MinDecodedSize,
) -> Result<DecodedImage> {
    limits.validate()?;
    decode::decode_bytes(bytes, limits, min)
}

/// Reads at most `max_bytes` from `path`, refusing larger files before reading them.
pub(crate) fn read_file(path: &Path, max_bytes: u64) -> Result<Vec<u8>> {
    let io = |source| Error::InputFile {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(Error::invalid(
            "path",
            format!("`{}` is not a regular file", path.display()),
        ));
    }
    if meta.len() > max_bytes {
        return Err(Error::ImageTooLarge {
            what: "encoded size (bytes)",
            actual: meta.len(),
            limit: max_bytes,
        });
    }
    // The file may grow between the metadata call and the read: never read past the limit.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > max_bytes {
        return Err(Error::ImageTooLarge {
            what: "encoded size (bytes)",
            actual: bytes.len() as u64,
            limit: max_bytes,
        });
    }
    Ok(bytes)
}

/// The bytes behind an `image_url` (feature `url-fetch`): see
/// [`fetch_image_url`](crate::input::fetch_image_url) for the protections.
#[cfg(feature = "url-fetch")]
pub(crate) fn fetch_url_bytes(url: &str, limits: &InputLimits) -> Result<Vec<u8>> {
    fetch::fetch_image_url(url, limits)
}

/// Without the `url-fetch` feature URL inputs are refused: the caller fetches the bytes and
/// passes [`ImageInput::Bytes`], or builds dupify-core with the feature.
#[cfg(not(feature = "url-fetch"))]
pub(crate) fn fetch_url_bytes(_url: &str, _limits: &InputLimits) -> Result<Vec<u8>> {
    Err(Error::NotAvailable {
        what: "image_url inputs (this build of dupify-core has no `url-fetch` feature; fetch \
               the bytes yourself and pass ImageInput::Bytes)"
            .into(),
    })
}
