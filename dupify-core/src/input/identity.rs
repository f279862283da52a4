//! The identity of an input: the bytes that name it (read, base64-decoded or fetched once,
//! under the byte limit) and their SHA-256. The extractor's cache and the catalog's resumable
//! ingest both key on it, so it lives with the input, not with either of them.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

use super::{ImageInput, InputLimits};
use crate::error::Result;

/// The bytes that identify an input: the encoded image (read or decoded once), or for raw
/// pixels their geometry and data. [`content_hash`] of these is `Features::content_hash`, the
/// cache key and the catalog's image hash.
pub(crate) fn load_bytes<'a>(input: &'a ImageInput, limits: &InputLimits) -> Result<Cow<'a, [u8]>> {
    limits.validate()?;
    match input {
        ImageInput::Bytes(b) => {
            limits.check_bytes(b.len() as u64)?;
            Ok(Cow::Borrowed(b))
        }
        ImageInput::Base64(text) => Ok(Cow::Owned(super::decode_base64(text, limits.max_bytes)?)),
        ImageInput::Path(path) => Ok(Cow::Owned(super::read_file(path, limits.max_bytes)?)),
        ImageInput::Raw {
            width,
            height,
            layout,
            data,
        } => {
            // Geometry is part of the identity: the same bytes at another width are another image.
            let mut key = Vec::with_capacity(data.len() + 12);
            key.extend_from_slice(&width.to_le_bytes());
            key.extend_from_slice(&height.to_le_bytes());
            key.extend_from_slice(format!("{layout:?}").as_bytes());
            key.extend_from_slice(data);
            Ok(Cow::Owned(key))
        }
        // Fetched once (under the URL policy and the byte limit); the key is the hash of the
        // fetched bytes, so two URLs serving the same image share a cache entry and one URL
        // whose content changes does not serve stale features.
        ImageInput::Url(url) => Ok(Cow::Owned(super::fetch_url_bytes(url, limits)?)),
    }
}

/// SHA-256 (hex) of the bytes [`load_bytes`] returns.
pub(crate) fn content_hash(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lower-case hex of `bytes`: the one spelling of every hash the crate shows (content hashes,
/// model hashes, head bindings).
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_and_padded() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }

    #[test]
    fn raw_geometry_is_part_of_the_identity() {
        let limits = InputLimits::default();
        let raw = |width| ImageInput::Raw {
            width,
            height: 12 / width,
            layout: super::super::PixelLayout::Rgb,
            data: vec![7; 36],
        };
        let a = content_hash(&load_bytes(&raw(2), &limits).unwrap());
        let b = content_hash(&load_bytes(&raw(3), &limits).unwrap());
        assert_ne!(a, b);
        let bytes = ImageInput::Bytes(b"abc".to_vec());
        // SHA-256("abc"), the FIPS 180-2 test vector.
        assert_eq!(
            content_hash(&load_bytes(&bytes, &limits).unwrap()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
