//! Finding the key in request headers.
//!
//! Accepted: `X-API-Key: <key>` or `Authorization: Bearer <key>`. Header names and the
//! `Bearer` scheme are case-insensitive and surrounding whitespace is trimmed. An
//! `Authorization` header with another scheme (`Basic …`) is not a Dupify credential and is
//! ignored (a proxy in front may use it). Two different keys in one request (both headers, or a
//! repeated header) are refused with [`Error::ConflictingApiKeys`]; the same key twice is fine.
//! Nothing here allocates.

use crate::error::{Error, Result};
use crate::key::{parse_key, ParsedKey};

/// Picks the key out of `headers` and checks its format.
///
/// Errors: [`Error::MissingApiKey`] when no header carries a key, [`Error::ConflictingApiKeys`]
/// when two differ, [`Error::MalformedApiKey`] (`invalid_api_key`) when the key is malformed.
pub fn key_from_headers<'a, I>(headers: I) -> Result<ParsedKey<'a>>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut found: Option<&'a str> = None;
    for (name, value) in headers {
        let name = name.trim();
        let candidate = if name.eq_ignore_ascii_case("x-api-key") {
            value.trim()
        } else if name.eq_ignore_ascii_case("authorization") {
            match bearer_token(value) {
                Some(t) => t,
                None => continue,
            }
        } else {
            continue;
        };
        match found {
            None => found = Some(candidate),
            Some(prev) if prev == candidate => {}
            Some(_) => return Err(Error::ConflictingApiKeys),
        }
    }
    let raw = found.ok_or(Error::MissingApiKey)?;
    Ok(parse_key(raw)?)
}

/// `Bearer <token>` → `<token>` (scheme case-insensitive, whitespace trimmed); `None` for any
/// other scheme.
fn bearer_token(value: &str) -> Option<&str> {
    let v = value.trim();
    let (scheme, rest) = match v.find(|c: char| c.is_ascii_whitespace()) {
        Some(i) => (&v[..i], &v[i..]),
        None => (v, ""),
    };
    if scheme.eq_ignore_ascii_case("bearer") {
        Some(rest.trim())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FormatError;
    use crate::key::Environment;

    const K: &str = "fe_live_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef";
    const K2: &str = "fe_test_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef";

    #[test]
    fn both_header_forms_and_case_and_whitespace() {
        for h in [
            [("X-API-Key", K)],
            [("x-api-key", "  fe_live_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef\t")],
            [(
                "Authorization",
                "Bearer fe_live_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef",
            )],
            [(
                "AUTHORIZATION",
                "  bEaReR   fe_live_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef ",
            )],
        ] {
            let p = key_from_headers(h).unwrap();
            assert_eq!(p.expose(), K);
            assert_eq!(p.environment(), Environment::Live);
        }
    }

    #[test]
    fn missing_conflicting_malformed() {
        let none: [(&str, &str); 0] = [];
        assert!(matches!(key_from_headers(none), Err(Error::MissingApiKey)));
        assert!(matches!(
            key_from_headers([
                ("Content-Type", "image/png"),
                ("Authorization", "Basic abc")
            ]),
            Err(Error::MissingApiKey)
        ));
        let e = key_from_headers([("X-API-Key", K), ("Authorization", &format!("Bearer {K2}"))])
            .unwrap_err();
        assert!(matches!(e, Error::ConflictingApiKeys));
        assert_eq!(e.code(), "invalid_api_key");
        assert!(matches!(
            key_from_headers([("X-API-Key", K), ("X-Api-Key", K2)]),
            Err(Error::ConflictingApiKeys)
        ));
        // Same key twice is accepted.
        assert!(
            key_from_headers([("X-API-Key", K), ("Authorization", &format!("Bearer {K}"))]).is_ok()
        );
        // Basic auth beside a key header is ignored.
        assert!(key_from_headers([("Authorization", "Basic dXNlcg=="), ("X-API-Key", K)]).is_ok());
        let e = key_from_headers([("Authorization", "Bearer")]).unwrap_err();
        assert!(matches!(e, Error::MalformedApiKey(FormatError::Empty)));
        assert_eq!((e.code(), e.http_status()), ("invalid_api_key", 401));
        let e = key_from_headers([("X-API-Key", "fe_live_short")]).unwrap_err();
        assert_eq!(e.code(), "invalid_api_key");
        let e = key_from_headers([("Authorization", "Bearerfe_live_x")]).unwrap_err();
        assert!(matches!(e, Error::MissingApiKey));
    }
}
