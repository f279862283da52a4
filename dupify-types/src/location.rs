//! Where a catalog or a key store lives: a PostgreSQL URL or a SQLite file path, and the URL
//! as it may appear in an error or a log (its password hidden). One definition for both
//! crates, compiled with and without their `postgres` features, so that a build without them
//! still recognises, and refuses, a URL instead of creating a SQLite file named after it.

use std::path::Path;

/// The URL when `path` is a PostgreSQL connection URL (`postgres://` or `postgresql://`, the
/// two schemes libpq accepts), `None` for a SQLite path.
pub fn postgres_url(path: &Path) -> Option<&str> {
    let s = path.to_str()?;
    (s.starts_with("postgres://") || s.starts_with("postgresql://")).then_some(s)
}

/// `url` with every password replaced by `***`: the one in the user-info part
/// (`user:secret@host`) and a `password=` query parameter. Errs on the side of hiding: the
/// user-info part ends at the *last* `@`, so a password with an unescaped `@`, `/` or `?` is
/// hidden whole (with whatever follows it up to that `@`).
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".to_string();
    };
    let rest = match rest.rfind('@') {
        Some(at) => {
            let (userinfo, after) = (&rest[..at], &rest[at..]);
            match userinfo.split_once(':') {
                Some((user, _password)) => format!("{user}:***{after}"),
                None => rest.to_string(),
            }
        }
        None => rest.to_string(),
    };
    let rest = match rest.split_once('?') {
        Some((main, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{main}?{}", params.join("&"))
        }
        None => rest,
    };
    format!("{scheme}://{rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_told_from_paths() {
        assert_eq!(
            postgres_url(Path::new("postgres://u@h/db")),
            Some("postgres://u@h/db")
        );
        assert!(postgres_url(Path::new("postgresql://h")).is_some());
        assert_eq!(postgres_url(Path::new("keys.db")), None);
        assert_eq!(postgres_url(Path::new("shop.db")), None);
        assert_eq!(postgres_url(Path::new("./postgres://x")), None);
        assert_eq!(postgres_url(Path::new("mysql://h/db")), None);
    }

    #[test]
    fn passwords_never_survive_redaction() {
        for (url, want) in [
            (
                "postgres://app:s3cret@db.internal:5432/keys",
                "postgres://app:***@db.internal:5432/keys",
            ),
            ("postgres://app@h/keys", "postgres://app@h/keys"),
            ("postgresql://h:5432/keys", "postgresql://h:5432/keys"),
            (
                "postgres://app@h/keys?sslmode=disable&password=s3cret",
                "postgres://app@h/keys?sslmode=disable&password=***",
            ),
            // Unescaped `@` and `?` in the password: hidden whole, up to the last `@`.
            ("postgres://app:s3@c?ret@h/k", "postgres://app:***@h/k"),
            ("not a url s3cret", "***"),
        ] {
            let got = redact_url(url);
            assert_eq!(got, want);
            assert!(!got.contains("s3"), "{got}");
        }
    }
}
