//! Key format: generation, parsing and the redacted secret type.
//!
//! A key is `fe_` + `live_`/`test_` + exactly [`SECRET_LEN`] characters from `[A-Za-z0-9]`.
//! Generation draws bytes from [`ring::rand::SystemRandom`] and maps them to the 62-character
//! alphabet by rejection sampling (bytes ≥ 248 are discarded), so every character is uniform:
//! `byte % 62` alone would favour the first 8 characters. The mapping is a pure function of the
//! byte stream ([`SecretKey::from_random_bytes`]) so known-answer tests exist even though ring's
//! RNG trait is sealed.

use std::fmt;

use ring::rand::SecureRandom;

use crate::error::{Error, FormatError};

/// Prefix shared by every Dupify key.
pub const KEY_PREFIX: &str = "fe_";
/// Number of random characters after the environment prefix.
pub const SECRET_LEN: usize = 32;
/// Total length of a key: `fe_` + `live_`/`test_` (both 5 bytes) + 32.
pub const KEY_LEN: usize = KEY_PREFIX.len() + 5 + SECRET_LEN;
/// The 62 characters a key's random part is drawn from, in this order.
pub const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// Largest multiple of 62 that fits in a byte: bytes at or above it are rejected.
const REJECT_FROM: u8 = 248;

pub use dupify_types::Environment;

/// A key that passed the format check, borrowed from the request: parsing allocates nothing.
/// `Debug` redacts the secret.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ParsedKey<'a> {
    env: Environment,
    full: &'a str,
}

impl<'a> ParsedKey<'a> {
    /// The key's environment.
    pub fn environment(&self) -> Environment {
        self.env
    }

    /// The whole key text. This is the secret: do not log it.
    pub fn expose(&self) -> &'a str {
        self.full
    }

    /// Non-secret preview: prefix + `…` + last 4 characters.
    pub fn preview(&self) -> String {
        preview_of(self.env, self.full)
    }
}

impl fmt::Debug for ParsedKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ParsedKey({}<redacted>)", self.env.key_prefix())
    }
}

/// Checks the format of `s` and returns it with its environment. Errors say what is wrong
/// (empty, prefix, environment, length, character) without echoing the input.
pub fn parse_key(s: &str) -> Result<ParsedKey<'_>, FormatError> {
    if s.is_empty() {
        return Err(FormatError::Empty);
    }
    let b = s.as_bytes();
    if !b.starts_with(KEY_PREFIX.as_bytes()) {
        return Err(FormatError::WrongPrefix);
    }
    let env = if b[3..].starts_with(b"live_") {
        Environment::Live
    } else if b[3..].starts_with(b"test_") {
        Environment::Test
    } else {
        return Err(FormatError::UnknownEnvironment);
    };
    // The first 8 bytes are ASCII, so index 8 is a character boundary.
    let tail = &s[KEY_LEN - SECRET_LEN..];
    if tail.len() == SECRET_LEN && tail.bytes().all(|c| c.is_ascii_alphanumeric()) {
        return Ok(ParsedKey { env, full: s });
    }
    let mut count = 0;
    let mut first_bad = None;
    for (i, c) in tail.chars().enumerate() {
        count += 1;
        if first_bad.is_none() && !c.is_ascii_alphanumeric() {
            first_bad = Some(i);
        }
    }
    if count != SECRET_LEN {
        return Err(FormatError::WrongLength {
            expected: SECRET_LEN,
            actual: count,
        });
    }
    if let Some(i) = first_bad {
        return Err(FormatError::BadCharacter {
            position: KEY_LEN - SECRET_LEN + i,
        });
    }
    Ok(ParsedKey { env, full: s })
}

fn preview_of(env: Environment, full: &str) -> String {
    let tail = &full[full.len().saturating_sub(4)..];
    format!("{}…{}", env.key_prefix(), tail)
}

/// An owned plaintext key, shown to the user once at creation. `Debug` and `Display` print a
/// redacted form; the bytes are overwritten when the value is dropped.
pub struct SecretKey {
    env: Environment,
    bytes: [u8; KEY_LEN],
}

impl SecretKey {
    /// Generates a key from the operating system's CSPRNG.
    pub fn generate(env: Environment) -> Result<SecretKey, Error> {
        let rng = ring::rand::SystemRandom::new();
        let mut out = [0u8; SECRET_LEN];
        let mut filled = 0;
        let mut buf = [0u8; 64];
        while filled < SECRET_LEN {
            rng.fill(&mut buf).map_err(|_| Error::Internal {
                reason: "the system random number generator failed".into(),
            })?;
            filled = map_accepted(&buf, &mut out, filled);
        }
        buf.fill(0);
        let key = SecretKey::assemble(env, &out);
        out.fill(0);
        Ok(key)
    }

    /// The pure mapping behind [`SecretKey::generate`]: consumes `bytes` in order, drops each
    /// byte ≥ 248 and maps the rest to `ALPHABET[b % 62]`. Returns `None` when `bytes` holds
    /// fewer than 32 accepted bytes.
    pub fn from_random_bytes(env: Environment, bytes: &[u8]) -> Option<SecretKey> {
        let mut out = [0u8; SECRET_LEN];
        if map_accepted(bytes, &mut out, 0) < SECRET_LEN {
            return None;
        }
        Some(SecretKey::assemble(env, &out))
    }

    /// Parses and copies a key (for example one read from configuration).
    pub fn parse(s: &str) -> Result<SecretKey, FormatError> {
        let p = parse_key(s)?;
        let mut bytes = [0u8; KEY_LEN];
        bytes.copy_from_slice(p.full.as_bytes());
        Ok(SecretKey { env: p.env, bytes })
    }

    fn assemble(env: Environment, secret: &[u8; SECRET_LEN]) -> SecretKey {
        let mut bytes = [0u8; KEY_LEN];
        let prefix = env.key_prefix().as_bytes();
        bytes[..prefix.len()].copy_from_slice(prefix);
        bytes[prefix.len()..].copy_from_slice(secret);
        SecretKey { env, bytes }
    }

    /// The key's environment.
    pub fn environment(&self) -> Environment {
        self.env
    }

    /// The plaintext key. Hand it to the user once; never log it.
    pub fn expose(&self) -> &str {
        // Only ASCII is ever written into `bytes`.
        std::str::from_utf8(&self.bytes).unwrap_or_default()
    }

    /// Non-secret preview: prefix + `…` + last 4 characters.
    pub fn preview(&self) -> String {
        preview_of(self.env, self.expose())
    }

    /// Borrowed, format-checked view (what [`crate::KeyStore`] verifies).
    pub fn as_parsed(&self) -> ParsedKey<'_> {
        ParsedKey {
            env: self.env,
            full: self.expose(),
        }
    }
}

fn map_accepted(bytes: &[u8], out: &mut [u8; SECRET_LEN], mut filled: usize) -> usize {
    for &b in bytes {
        if filled == SECRET_LEN {
            break;
        }
        if b < REJECT_FROM {
            out[filled] = ALPHABET[usize::from(b % 62)];
            filled += 1;
        }
    }
    filled
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        for b in self.bytes.iter_mut() {
            // Volatile so the wipe is not optimised away as a dead store.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({}<redacted>)", self.env.key_prefix())
    }
}

impl fmt::Display for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}<redacted>", self.env.key_prefix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer_mapping() {
        let bytes: Vec<u8> = (0u8..32).collect();
        let k = SecretKey::from_random_bytes(Environment::Live, &bytes).unwrap();
        assert_eq!(k.expose(), "fe_live_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef");
        // 61 is 9, 62 wraps to A, 123 and 247 are 61 mod 62; 248, 250, 255 are skipped.
        let mut bytes = vec![248u8, 255, 61, 62, 123, 247, 250];
        bytes.extend(std::iter::repeat_n(0u8, 28));
        let k = SecretKey::from_random_bytes(Environment::Test, &bytes).unwrap();
        assert_eq!(k.expose(), "fe_test_9A99AAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        assert!(SecretKey::from_random_bytes(Environment::Test, &[0u8; 31]).is_none());
        assert!(SecretKey::from_random_bytes(Environment::Test, &[255u8; 100]).is_none());
    }

    #[test]
    fn generated_keys_parse_and_differ() {
        let a = SecretKey::generate(Environment::Live).unwrap();
        let b = SecretKey::generate(Environment::Live).unwrap();
        assert_ne!(a.expose(), b.expose());
        let p = parse_key(a.expose()).unwrap();
        assert_eq!(p.environment(), Environment::Live);
        assert_eq!(a.expose().len(), 40);
    }

    #[test]
    fn secrets_are_redacted() {
        let k = SecretKey::generate(Environment::Test).unwrap();
        let secret = &k.expose()[8..];
        for shown in [
            format!("{k:?}"),
            format!("{k}"),
            format!("{:?}", k.as_parsed()),
        ] {
            assert!(!shown.contains(secret), "{shown}");
            assert!(shown.contains("redacted"));
        }
        let prev = k.preview();
        assert_eq!(prev, format!("fe_test_…{}", &k.expose()[36..]));
    }

    #[test]
    fn specific_parse_errors() {
        let good = "fe_live_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef";
        assert!(parse_key(good).is_ok());
        assert_eq!(parse_key(""), Err(FormatError::Empty));
        assert_eq!(parse_key("sk_live_x"), Err(FormatError::WrongPrefix));
        assert_eq!(parse_key("f"), Err(FormatError::WrongPrefix));
        assert_eq!(
            parse_key("fe_prod_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef"),
            Err(FormatError::UnknownEnvironment)
        );
        assert_eq!(parse_key("fe_live"), Err(FormatError::UnknownEnvironment));
        assert_eq!(
            parse_key("fe_live_ABC"),
            Err(FormatError::WrongLength {
                expected: 32,
                actual: 3
            })
        );
        assert_eq!(
            parse_key("fe_live_ABCDEFGHIJKLMNOPQRSTUVWXYZabcde-"),
            Err(FormatError::BadCharacter { position: 39 })
        );
        // Multi-byte characters: length counted in characters, never a panic on slicing.
        assert!(matches!(
            parse_key("fe_live_ÄBCDEFGHIJKLMNOPQRSTUVWXYZabcdef"),
            Err(FormatError::BadCharacter { position: 8 })
        ));
        assert!(matches!(
            parse_key("fe_test_éé"),
            Err(FormatError::WrongLength { actual: 2, .. })
        ));
    }
}
