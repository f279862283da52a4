//! Size limits checked before an image is decoded.

use serde::{Deserialize, Serialize};

use super::url::UrlPolicy;
use crate::error::{Error, Result};

/// Limits applied to every image input, checked as early as possible: the encoded size before
/// reading or base64-decoding, the dimensions from the header before any pixel is decoded. A
/// decompression bomb (a small file that claims a huge canvas) is therefore refused without
/// allocating its pixels.
///
/// Defaults: 25 MB encoded ([`InputLimits::DEFAULT_MAX_BYTES`], the hosted API's upload
/// limit), 50 megapixels ([`InputLimits::DEFAULT_MAX_PIXELS`]; Pillow's own bomb threshold is
/// 89.5 MP), 20 000 pixels per side ([`InputLimits::DEFAULT_MAX_SIDE`], generous for
/// panoramas and long product strips while stopping 1×50M "line" images), and the safe
/// [`UrlPolicy::default`] for `image_url` inputs (public addresses only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InputLimits {
    /// Largest accepted encoded input in bytes (file size, bytes, decoded base64
    /// payload; raw pixel buffers are bounded by the pixel limit instead).
    pub max_bytes: u64,
    /// Largest accepted `width * height`.
    pub max_pixels: u64,
    /// Largest accepted width or height.
    pub max_side: u32,
    /// What an `image_url` fetch may reach (feature `url-fetch`); the body is also bounded by
    /// `max_bytes`.
    #[serde(default)]
    pub url: UrlPolicy,
}

impl Default for InputLimits {
    fn default() -> Self {
        Self {
            max_bytes: Self::DEFAULT_MAX_BYTES,
            max_pixels: Self::DEFAULT_MAX_PIXELS,
            max_side: Self::DEFAULT_MAX_SIDE,
            url: UrlPolicy::default(),
        }
    }
}

impl InputLimits {
    /// 25 MB (decimal), the hosted API's upload limit.
    pub const DEFAULT_MAX_BYTES: u64 = 25_000_000;
    /// 50 megapixels.
    pub const DEFAULT_MAX_PIXELS: u64 = 50_000_000;
    /// 20 000 pixels per side.
    pub const DEFAULT_MAX_SIDE: u32 = 20_000;

    /// Builds limits and rejects zero values (a zero limit would refuse every image, which is
    /// always a configuration mistake).
    pub fn try_new(max_bytes: u64, max_pixels: u64, max_side: u32) -> Result<Self> {
        let l = Self {
            max_bytes,
            max_pixels,
            max_side,
            url: UrlPolicy::default(),
        };
        l.validate()?;
        Ok(l)
    }

    /// Checks that every limit is positive and the URL policy is valid.
    /// [`crate::input::decode`] calls this first.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("max_bytes", self.max_bytes),
            ("max_pixels", self.max_pixels),
            ("max_side", u64::from(self.max_side)),
        ] {
            if v == 0 {
                return Err(Error::invalid(name, "must be greater than 0"));
            }
        }
        self.url.validate()
    }

    /// Refuses an encoded input longer than `max_bytes`.
    pub(crate) fn check_bytes(&self, len: u64) -> Result<()> {
        if len > self.max_bytes {
            return Err(Error::ImageTooLarge {
                what: "encoded size (bytes)",
                actual: len,
                limit: self.max_bytes,
            });
        }
        Ok(())
    }

    /// Refuses zero-sized images and images over the side or pixel limits.
    pub(crate) fn check_dimensions(&self, width: u32, height: u32) -> Result<()> {
        if width == 0 || height == 0 {
            return Err(Error::EmptyImage {
                reason: format!("image is {width}x{height}"),
            });
        }
        let side = width.max(height);
        if side > self.max_side {
            return Err(Error::ImageTooLarge {
                what: "side (pixels)",
                actual: u64::from(side),
                limit: u64::from(self.max_side),
            });
        }
        let pixels = u64::from(width) * u64::from(height);
        if pixels > self.max_pixels {
            return Err(Error::ImageTooLarge {
                what: "pixel count",
                actual: pixels,
                limit: self.max_pixels,
            });
        }
        Ok(())
    }
}

dupify_types::setters! { InputLimits {
    /// Sets the encoded-size limit in bytes.
    with_max_bytes(max_bytes: u64),
    /// Sets the pixel-count limit.
    with_max_pixels(max_pixels: u64),
    /// Sets the per-side limit.
    with_max_side(max_side: u32),
    /// Sets the `image_url` policy.
    with_url_policy(url: UrlPolicy),
} }

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_documented_values() {
        let l = InputLimits::default();
        assert_eq!(
            (l.max_bytes, l.max_pixels, l.max_side),
            (25_000_000, 50_000_000, 20_000)
        );
        assert!(l.validate().is_ok());
    }

    #[test]
    fn zero_limits_are_rejected() {
        assert_eq!(
            InputLimits::try_new(0, 1, 1).unwrap_err().code(),
            "invalid_parameter"
        );
        assert!(InputLimits::default()
            .with_max_pixels(0)
            .validate()
            .is_err());
        assert!(InputLimits::default().with_max_side(0).validate().is_err());
        assert!(InputLimits::try_new(1, 1, 1).is_ok());
    }

    #[test]
    fn dimension_checks_name_the_limit() {
        let l = InputLimits::default()
            .with_max_side(100)
            .with_max_pixels(5000);
        assert!(l.check_dimensions(100, 50).is_ok());
        match l.check_dimensions(101, 1).unwrap_err() {
            Error::ImageTooLarge { actual, limit, .. } => assert_eq!((actual, limit), (101, 100)),
            e => panic!("{e:?}"),
        }
        match l.check_dimensions(100, 51).unwrap_err() {
            Error::ImageTooLarge { actual, .. } => assert_eq!(actual, 5100),
            e => panic!("{e:?}"),
        }
        assert!(matches!(
            l.check_dimensions(0, 10),
            Err(Error::EmptyImage { .. })
        ));
        assert!(l.check_bytes(l.max_bytes).is_ok() && l.check_bytes(l.max_bytes + 1).is_err());
    }
}
