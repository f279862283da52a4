//! The key pepper: the server-side secret that stored key hashes are keyed with
//! (`HMAC-SHA-256(pepper, key)`), with one convention for every host, so a key created by one
//! host (a CLI) verifies in another (an HTTP server) that uses the same database.
//!
//! ## Format
//! A pepper is hex text. ASCII whitespace at both ends is ignored (an editor's trailing newline
//! or a CRLF is harmless); what remains must be only `[0-9a-fA-F]`, an even number of digits,
//! and at least 32 digits (16 bytes of entropy). [`Pepper::generate`] makes 64 lowercase
//! digits (32 random bytes).
//!
//! **The HMAC key is the trimmed hex text itself (its ASCII bytes), not the bytes it decodes
//! to.** Key stores created before this convention, whose host wrote 32 random bytes as hex
//! plus a newline and keyed the HMAC with the trimmed text, keep verifying. Decoding would make
//! every existing key unknown. The case of the digits therefore matters: `AB…` and `ab…` are
//! different peppers.
//!
//! ## Where it comes from
//! [`Pepper::resolve`], in this order:
//! 1. a file the host was told about explicitly (a command-line option, a setting);
//! 2. the environment variable [`PEPPER_ENV`] (`DUPIFY_PEPPER`), same format;
//! 3. the file `<database file name>.pepper` next to the key database
//!    ([`Pepper::default_path`]: `data/keys.db` → `data/keys.db.pepper`), when it exists;
//! 4. only when the host allows it and the database file does not exist yet: a new pepper,
//!    written to that default file (owner-only permissions) and reported as
//!    [`PepperSource::Generated`] so the host can tell the user to keep it.
//!
//! Anything else is an error: a pepper made up for an existing database would silently turn
//! every stored key into an unknown key.

use std::ffi::OsString;
use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use ring::rand::{SecureRandom, SystemRandom};

use crate::error::{Error, Result};

/// The environment variable a pepper can be supplied in (hex text, see the module docs).
pub const PEPPER_ENV: &str = "DUPIFY_PEPPER";

/// Fewest hex digits a pepper may have: 16 bytes of entropy.
const MIN_HEX_DIGITS: usize = 32;
/// Random bytes in a generated pepper (64 hex digits).
const GENERATED_BYTES: usize = 32;

/// The key pepper: the HMAC key of stored key hashes. Holds the trimmed hex text (see the
/// module docs for why the text and not the decoded bytes); `Debug` is redacted and the bytes
/// are wiped on drop. Pass [`Pepper::as_bytes`] to [`crate::KeyStore::open`].
///
/// ```
/// use dupify_keys::{KeyStore, Pepper};
/// let pepper = Pepper::parse(b"00112233445566778899aabbccddeeff\n")?;
/// assert_eq!(pepper.as_bytes(), b"00112233445566778899aabbccddeeff");
/// assert_eq!(format!("{pepper:?}"), "Pepper(<redacted>)");
/// let store = KeyStore::open_in_memory(pepper.as_bytes())?;
/// # drop(store);
/// # Ok::<(), dupify_keys::Error>(())
/// ```
#[derive(Clone)]
pub struct Pepper {
    /// Trimmed, validated hex text.
    text: Vec<u8>,
}

/// Where [`Pepper::resolve`] found the pepper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PepperSource {
    /// Read from this file (the explicit one, or the default one next to the database).
    File(PathBuf),
    /// Read from the environment variable [`PEPPER_ENV`].
    Env,
    /// Generated now and written to this new file: the host should tell the user to keep it
    /// secret and keep it with the database.
    Generated(PathBuf),
}

impl fmt::Display for PepperSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PepperSource::File(p) => write!(f, "the file {}", p.display()),
            PepperSource::Env => write!(f, "the environment variable {PEPPER_ENV}"),
            PepperSource::Generated(p) => write!(f, "the newly generated file {}", p.display()),
        }
    }
}

impl Pepper {
    /// Parses pepper text: hex after trimming ASCII whitespace at both ends, an even number
    /// of digits, at least 32. The error says what is wrong (empty, the position of a
    /// non-hex character, odd length, too few digits) and never echoes the input.
    pub fn parse(bytes: &[u8]) -> Result<Pepper> {
        Pepper::parse_from(bytes, || "the supplied value".to_string())
    }

    /// A new pepper: 32 bytes from [`ring::rand::SystemRandom`], as 64 lowercase hex digits.
    pub fn generate() -> Result<Pepper> {
        let mut raw = [0u8; GENERATED_BYTES];
        SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| Error::Internal {
                reason: "the system random generator failed".into(),
            })?;
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = Vec::with_capacity(2 * GENERATED_BYTES);
        for b in raw {
            text.push(HEX[usize::from(b >> 4)]);
            text.push(HEX[usize::from(b & 0x0f)]);
        }
        wipe(&mut raw);
        Ok(Pepper { text })
    }

    /// Reads and parses a pepper file. Errors name the path.
    pub fn read_file(path: impl AsRef<Path>) -> Result<Pepper> {
        let path = path.as_ref();
        let mut bytes = std::fs::read(path).map_err(|source| Error::Io {
            action: "read the key pepper file",
            path: path.to_path_buf(),
            source,
        })?;
        let parsed = Pepper::parse_from(&bytes, || format!("the file {}", path.display()));
        wipe(&mut bytes);
        parsed
    }

    /// Writes the pepper to a new file: the hex text and a newline, owner-only permissions
    /// (mode 0600) on Unix, synced to disk with its directory entry. Refuses to overwrite an
    /// existing file ([`Error::Io`] with the "already exists" error as source); a file left
    /// half-written by a failed write is removed.
    pub fn write_new_file(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let io = |action: &'static str| {
            move |source| Error::Io {
                action,
                path: path.to_path_buf(),
                source,
            }
        };
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts
            .open(path)
            .map_err(io("create the new key pepper file"))?;
        let written = file
            .write_all(&self.text)
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.sync_all());
        if let Err(e) = written {
            drop(file);
            let _ = std::fs::remove_file(path);
            return Err(io("write the key pepper file")(e));
        }
        sync_parent_dir(path).map_err(io("sync the directory of the key pepper file"))
    }

    /// The default pepper file of a key database: `<database file name>.pepper` in the same
    /// directory (`data/keys.db` → `data/keys.db.pepper`).
    pub fn default_path(db: &Path) -> PathBuf {
        let mut name = db.file_name().unwrap_or_default().to_os_string();
        name.push(".pepper");
        db.with_file_name(name)
    }

    /// Finds the pepper for the key database `db`: `explicit_file` if given, else the
    /// environment variable [`PEPPER_ENV`], else [`Pepper::default_path`] if that file exists,
    /// else — only when `may_create` and `db` does not exist yet — a new pepper written to the
    /// default path ([`PepperSource::Generated`]). Otherwise [`Error::MissingPepper`], whose
    /// message lists the three ways to supply one. Every source must hold a valid pepper: an
    /// empty or malformed one is an error, never skipped.
    pub fn resolve(
        explicit_file: Option<&Path>,
        db: &Path,
        may_create: bool,
    ) -> Result<(Pepper, PepperSource)> {
        Pepper::resolve_with_env(explicit_file, db, may_create, std::env::var_os(PEPPER_ENV))
    }

    /// [`Pepper::resolve`] with the environment variable's value passed in (tests do not
    /// touch the process environment).
    fn resolve_with_env(
        explicit_file: Option<&Path>,
        db: &Path,
        may_create: bool,
        env: Option<OsString>,
    ) -> Result<(Pepper, PepperSource)> {
        if let Some(file) = explicit_file {
            return Ok((
                Pepper::read_file(file)?,
                PepperSource::File(file.to_path_buf()),
            ));
        }
        if let Some(value) = env {
            let mut bytes = value.into_encoded_bytes();
            let parsed =
                Pepper::parse_from(&bytes, || format!("the environment variable {PEPPER_ENV}"));
            wipe(&mut bytes);
            return Ok((parsed?, PepperSource::Env));
        }
        let default = Pepper::default_path(db);
        // An error checking for the file (permissions) is reported by reading it.
        if !matches!(default.try_exists(), Ok(false)) {
            return Ok((Pepper::read_file(&default)?, PepperSource::File(default)));
        }
        if may_create && matches!(db.try_exists(), Ok(false)) {
            let pepper = Pepper::generate()?;
            pepper.write_new_file(&default)?;
            return Ok((pepper, PepperSource::Generated(default)));
        }
        Err(Error::MissingPepper {
            default_path: default,
        })
    }

    /// The HMAC key: the trimmed hex text's ASCII bytes. This is the secret: do not log it.
    pub fn as_bytes(&self) -> &[u8] {
        &self.text
    }

    fn parse_from(bytes: &[u8], origin: impl FnOnce() -> String) -> Result<Pepper> {
        let text = bytes.trim_ascii();
        let problem = if text.is_empty() {
            Some("it is empty".to_string())
        } else if let Some(position) = text.iter().position(|b| !b.is_ascii_hexdigit()) {
            Some(format!(
                "it has a character outside [0-9a-fA-F] at position {position} (after \
                 leading whitespace)"
            ))
        } else if !text.len().is_multiple_of(2) {
            Some(format!(
                "it has {} hex digits, an odd number (two digits per byte)",
                text.len()
            ))
        } else if text.len() < MIN_HEX_DIGITS {
            Some(format!(
                "it has {} hex digits, need at least {MIN_HEX_DIGITS} (16 random bytes)",
                text.len()
            ))
        } else {
            None
        };
        match problem {
            Some(reason) => Err(Error::InvalidPepper {
                origin: origin(),
                reason,
            }),
            None => Ok(Pepper {
                text: text.to_vec(),
            }),
        }
    }
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pepper(<redacted>)")
    }
}

impl Drop for Pepper {
    fn drop(&mut self) {
        wipe(&mut self.text);
    }
}

/// Overwrites secret bytes with zeros.
fn wipe(bytes: &mut [u8]) {
    for b in bytes.iter_mut() {
        // Volatile so the wipe is not optimised away as a dead store.
        // SAFETY: `b` is a valid, aligned, exclusive reference.
        unsafe { std::ptr::write_volatile(b, 0) };
    }
}

/// Makes a new file's directory entry durable (Unix; elsewhere a no-op).
fn sync_parent_dir(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "00112233445566778899aabbccddeeff";
    const HEX64: &str = "0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789abcdef";

    fn reason(e: Error) -> String {
        assert_eq!((e.code(), e.http_status()), ("internal_error", 500));
        match e {
            Error::InvalidPepper { reason, .. } => reason,
            other => panic!("expected InvalidPepper, got {other:?}"),
        }
    }

    #[test]
    fn trailing_newline_and_crlf_are_trimmed() {
        let plain = Pepper::parse(HEX.as_bytes()).unwrap();
        assert_eq!(plain.as_bytes(), HEX.as_bytes());
        for text in [
            format!("{HEX}\n"),
            format!("{HEX}\r\n"),
            format!("  \t{HEX} \n\n"),
        ] {
            let p = Pepper::parse(text.as_bytes()).unwrap();
            assert_eq!(p.as_bytes(), plain.as_bytes(), "{text:?}");
        }
        // Mixed case is kept as written: the key is the text.
        assert_eq!(
            Pepper::parse(HEX64.as_bytes()).unwrap().as_bytes(),
            HEX64.as_bytes()
        );
    }

    #[test]
    fn malformed_peppers_are_refused_with_the_reason() {
        assert_eq!(reason(Pepper::parse(b"").unwrap_err()), "it is empty");
        assert_eq!(
            reason(Pepper::parse(b" \r\n\t").unwrap_err()),
            "it is empty"
        );

        let bad = format!("{}g{}", &HEX[..5], &HEX[6..]);
        let r = reason(Pepper::parse(bad.as_bytes()).unwrap_err());
        assert!(r.contains("at position 5"), "{r}");
        assert!(!r.contains(&bad), "the pepper is echoed: {r}");
        let inner_space = format!("{} {}", &HEX[..16], &HEX[16..]);
        assert!(reason(Pepper::parse(inner_space.as_bytes()).unwrap_err()).contains("position 16"));
        assert!(
            reason(Pepper::parse("é".repeat(20).as_bytes()).unwrap_err()).contains("position 0")
        );

        let odd = &HEX64[..33];
        let r = reason(Pepper::parse(odd.as_bytes()).unwrap_err());
        assert!(r.contains("33 hex digits") && r.contains("odd"), "{r}");

        let short = &HEX[..30];
        let r = reason(Pepper::parse(short.as_bytes()).unwrap_err());
        assert!(
            r.contains("30 hex digits") && r.contains("at least 32"),
            "{r}"
        );

        // The error's message names the origin and the problem, not the value.
        let e = Pepper::parse(short.as_bytes()).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("the supplied value") && !msg.contains(short),
            "{msg}"
        );
    }

    #[test]
    fn debug_is_redacted() {
        let p = Pepper::parse(HEX.as_bytes()).unwrap();
        let d = format!("{p:?}");
        assert_eq!(d, "Pepper(<redacted>)");
        assert!(!d.contains(HEX));
    }

    #[test]
    fn generated_peppers_are_64_lowercase_hex_digits_and_differ() {
        let a = Pepper::generate().unwrap();
        let b = Pepper::generate().unwrap();
        assert_eq!(a.as_bytes().len(), 64);
        assert!(a
            .as_bytes()
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c)));
        assert_ne!(a.as_bytes(), b.as_bytes());
        assert_eq!(
            Pepper::parse(a.as_bytes()).unwrap().as_bytes(),
            a.as_bytes()
        );
    }

    #[test]
    fn write_then_read_round_trips_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.db.pepper");
        let p = Pepper::generate().unwrap();
        p.write_new_file(&path).unwrap();
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(on_disk, [p.as_bytes(), b"\n"].concat());
        assert_eq!(Pepper::read_file(&path).unwrap().as_bytes(), p.as_bytes());

        let other = Pepper::generate().unwrap();
        let e = other.write_new_file(&path).unwrap_err();
        match &e {
            Error::Io {
                path: p2, source, ..
            } => {
                assert_eq!(p2, &path);
                assert_eq!(source.kind(), std::io::ErrorKind::AlreadyExists);
            }
            other => panic!("expected Io, got {other:?}"),
        }
        assert_eq!((e.code(), e.http_status()), ("internal_error", 500));
        assert_eq!(std::fs::read(&path).unwrap(), on_disk, "overwritten");
    }

    #[cfg(unix)]
    #[test]
    fn written_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        Pepper::generate().unwrap().write_new_file(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn read_file_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pepper");
        let e = Pepper::read_file(&missing).unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e:?}");
        assert!(
            e.to_string().contains(&missing.display().to_string()),
            "{e}"
        );

        let short = dir.path().join("short.pepper");
        std::fs::write(&short, "abcd\n").unwrap();
        let e = Pepper::read_file(&short).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(&short.display().to_string()), "{msg}");
        assert!(msg.contains("4 hex digits"), "{msg}");
    }

    #[test]
    fn default_path_sits_next_to_the_database() {
        assert_eq!(
            Pepper::default_path(Path::new("data/keys.db")),
            PathBuf::from("data/keys.db.pepper")
        );
        assert_eq!(
            Pepper::default_path(Path::new("keys.db")),
            PathBuf::from("keys.db.pepper")
        );
    }

    #[test]
    fn resolve_order_and_generation() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("keys.db");
        let default = Pepper::default_path(&db);
        let explicit = dir.path().join("explicit.pepper");
        let (a, b, c) = (HEX64.to_lowercase(), HEX.to_string(), HEX.to_uppercase());
        std::fs::write(&explicit, format!("{a}\n")).unwrap();
        let env = || Some(OsString::from(format!("{b}\n")));

        // Nothing anywhere, may not create: the error names all three ways.
        let e = Pepper::resolve_with_env(None, &db, false, None).unwrap_err();
        assert!(matches!(e, Error::MissingPepper { .. }), "{e:?}");
        assert_eq!((e.code(), e.http_status()), ("internal_error", 500));
        let msg = e.to_string();
        assert!(msg.contains(PEPPER_ENV), "{msg}");
        assert!(msg.contains(&default.display().to_string()), "{msg}");
        assert!(msg.contains("file"), "{msg}");
        assert!(!default.exists());

        // Explicit file beats the environment.
        let (p, src) = Pepper::resolve_with_env(Some(&explicit), &db, true, env()).unwrap();
        assert_eq!(
            (p.as_bytes(), src),
            (a.as_bytes(), PepperSource::File(explicit.clone()))
        );
        // The environment beats the default file (absent here) and generation.
        let (p, src) = Pepper::resolve_with_env(None, &db, true, env()).unwrap();
        assert_eq!((p.as_bytes(), src), (b.as_bytes(), PepperSource::Env));
        assert!(
            !default.exists(),
            "generated although the environment had one"
        );
        // A set but empty or malformed variable is an error, not a fall-through.
        for bad in ["", "\n", "xyz"] {
            let e = Pepper::resolve_with_env(None, &db, true, Some(bad.into())).unwrap_err();
            let msg = e.to_string();
            assert!(matches!(e, Error::InvalidPepper { .. }), "{bad:?}: {e:?}");
            assert!(msg.contains(PEPPER_ENV), "{msg}");
        }

        // New database, may create: generated into the default file.
        let (generated, src) = Pepper::resolve_with_env(None, &db, true, None).unwrap();
        assert_eq!(src, PepperSource::Generated(default.clone()));
        assert_eq!(
            Pepper::read_file(&default).unwrap().as_bytes(),
            generated.as_bytes()
        );
        // Next time the default file is found (and not regenerated).
        let (p, src) = Pepper::resolve_with_env(None, &db, true, None).unwrap();
        assert_eq!(
            (p.as_bytes(), src),
            (generated.as_bytes(), PepperSource::File(default.clone()))
        );
        // The environment beats the default file, the explicit file beats both.
        let (p, _) = Pepper::resolve_with_env(None, &db, false, env()).unwrap();
        assert_eq!(p.as_bytes(), b.as_bytes());
        let (p, _) = Pepper::resolve_with_env(Some(&explicit), &db, false, env()).unwrap();
        assert_eq!(p.as_bytes(), a.as_bytes());

        // An existing database without a pepper is never given a new one.
        std::fs::remove_file(&default).unwrap();
        std::fs::write(&db, b"").unwrap();
        let e = Pepper::resolve_with_env(None, &db, true, None).unwrap_err();
        assert!(matches!(e, Error::MissingPepper { .. }), "{e:?}");
        assert!(!default.exists());

        // A malformed default file is an error, not a reason to generate.
        std::fs::remove_file(&db).unwrap();
        std::fs::write(&default, &c[..10]).unwrap();
        let e = Pepper::resolve_with_env(None, &db, true, None).unwrap_err();
        assert!(matches!(e, Error::InvalidPepper { .. }), "{e:?}");
        // A missing explicit file is an error, not a fall-through.
        let e =
            Pepper::resolve_with_env(Some(&dir.path().join("none")), &db, true, env()).unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e:?}");
    }

    #[test]
    fn source_display() {
        assert_eq!(
            PepperSource::Env.to_string(),
            "the environment variable DUPIFY_PEPPER"
        );
        assert_eq!(
            PepperSource::File(PathBuf::from("a/b.pepper")).to_string(),
            "the file a/b.pepper"
        );
    }
}
