//! Base64 image payloads: standard and URL-safe alphabets, padded or not, optionally inside a
//! `data:image/...;base64,` URL, with embedded whitespace (line-wrapped MIME base64) tolerated.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;

use crate::error::{Error, Result};

const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(false);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// Decodes a base64 image payload into its bytes, refusing payloads whose decoded size would
/// exceed `max_bytes` before decoding them.
pub(crate) fn decode_base64(text: &str, max_bytes: u64) -> Result<Vec<u8>> {
    // A payload this long cannot decode to ≤ max_bytes even with generous whitespace; refuse
    // it before copying anything.
    let hard_cap = max_bytes.saturating_mul(2).saturating_add(4096);
    if text.len() as u64 > hard_cap {
        return Err(Error::ImageTooLarge {
            what: "base64 payload (bytes)",
            actual: text.len() as u64,
            limit: hard_cap,
        });
    }
    let payload = strip_data_url(text.trim_start())?;
    let cleaned: Vec<u8> = payload
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if cleaned.is_empty() {
        return Err(Error::InvalidBase64 {
            reason: "payload is empty".into(),
        });
    }
    let decoded_estimate = (cleaned.len() as u64 / 4) * 3 + 2;
    if decoded_estimate > max_bytes.saturating_add(2) {
        return Err(Error::ImageTooLarge {
            what: "encoded size (bytes)",
            actual: decoded_estimate,
            limit: max_bytes,
        });
    }
    let url_safe = cleaned.iter().any(|&b| b == b'-' || b == b'_');
    let engine = if url_safe { &URL_SAFE } else { &STANDARD };
    engine.decode(&cleaned).map_err(|e| Error::InvalidBase64 {
        reason: e.to_string(),
    })
}

/// Removes a `data:<mime>;base64,` prefix. A data URL for something other than an image is an
/// unsupported format; one without `;base64` is not base64 at all.
fn strip_data_url(text: &str) -> Result<&str> {
    let Some(head) = text.get(..5) else {
        return Ok(text);
    };
    if !head.eq_ignore_ascii_case("data:") {
        return Ok(text);
    }
    let Some(comma) = text.find(',') else {
        return Err(Error::InvalidBase64 {
            reason: "data URL has no `,` before its payload".into(),
        });
    };
    let meta = &text[5..comma];
    let mut parts = meta.split(';');
    let mime = parts.next().unwrap_or("").trim();
    let is_base64 = parts.any(|p| p.trim().eq_ignore_ascii_case("base64"));
    if !is_base64 {
        return Err(Error::InvalidBase64 {
            reason: "data URL is not `;base64` encoded".into(),
        });
    }
    let is_image = mime
        .get(..6)
        .is_some_and(|m| m.eq_ignore_ascii_case("image/"));
    if !mime.is_empty() && !is_image {
        return Err(Error::UnsupportedFormat {
            detail: format!("data URL media type `{mime}` is not an image"),
        });
    }
    Ok(&text[comma + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const BYTES: &[u8] = b"\xff\xd8\xff\xe0 any bytes \xfe\xfb?>";

    #[test]
    fn all_alphabets_and_wrappings_decode() {
        use base64::engine::general_purpose as gp;
        let forms = [
            gp::STANDARD.encode(BYTES),
            gp::STANDARD_NO_PAD.encode(BYTES),
            gp::URL_SAFE.encode(BYTES),
            gp::URL_SAFE_NO_PAD.encode(BYTES),
        ];
        // The payload must actually exercise both alphabets.
        assert!(forms[0].contains('+') || forms[0].contains('/'));
        assert!(forms[2].contains('-') || forms[2].contains('_'));
        for f in forms {
            assert_eq!(decode_base64(&f, 1000).unwrap(), BYTES, "{f}");
            let url = format!("data:image/jpeg;base64,{f}");
            assert_eq!(decode_base64(&url, 1000).unwrap(), BYTES);
            let wrapped: String = f
                .as_bytes()
                .chunks(7)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join("\r\n ");
            assert_eq!(decode_base64(&wrapped, 1000).unwrap(), BYTES);
        }
        assert_eq!(
            decode_base64(
                &format!("DATA:Image/PNG;BASE64,{}", gp::STANDARD.encode(BYTES)),
                1000
            )
            .unwrap(),
            BYTES
        );
    }

    #[test]
    fn bad_payloads_are_typed_errors() {
        for bad in [
            "",
            "   ",
            "abc$def",
            "data:image/png;base64,",
            "QQ=x",
            "Zm9v+-",
        ] {
            let e = decode_base64(bad, 1000).unwrap_err();
            assert_eq!(e.code(), "invalid_base64", "{bad:?}: {e}");
        }
        assert_eq!(
            decode_base64("data:image/png,abcd", 1000)
                .unwrap_err()
                .code(),
            "invalid_base64"
        );
        assert_eq!(
            decode_base64("data:text/plain;base64,Zm9v", 1000)
                .unwrap_err()
                .code(),
            "unsupported_format"
        );
    }

    #[test]
    fn oversized_payloads_are_refused_before_decoding() {
        let big = "A".repeat(4000);
        assert!(matches!(
            decode_base64(&big, 100),
            Err(Error::ImageTooLarge { .. })
        ));
        assert_eq!(decode_base64("QUFB", 3).unwrap(), b"AAA");
    }
}
