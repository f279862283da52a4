//! `image_url` fetching (feature `url-fetch`) against a real HTTP server on 127.0.0.1.
//!
//! Run with `cargo test -p dupify-core --features url-fetch --test input url::`.
//!
//! Each test starts its own tiny HTTP/1.1 server (std `TcpListener`, one thread per
//! connection) that serves a committed CC0 photo, redirects, oversized and slow bodies, and
//! records every request path, so a test can prove that a refused URL never reached it. The
//! only addresses ever connected to are on this machine; refused private and metadata
//! addresses are refused before any connection, which is the point.
#![cfg(feature = "url-fetch")]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use dupify_core::extractor::{Extractor, Ops};
use dupify_core::input::{
    decode, decode_bytes, fetch_image_url, ImageInput, InputLimits, UrlPolicy,
};
use dupify_core::Error;
use sha2::{Digest, Sha256};

fn photo() -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/assets/clothing/dress/06a00c0f-5f9a-410d-a7da-3881a9df3a71.jpg");
    std::fs::read(&p).unwrap_or_else(|e| panic!("fixture {}: {e}", p.display()))
}

/// A test HTTP server on 127.0.0.1 with a fixed route table.
struct Server {
    port: u16,
    hits: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local addr").port();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&hits);
        let body = Arc::new(photo());
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = Arc::clone(&log);
                let body = Arc::clone(&body);
                thread::spawn(move || serve(stream, port, &body, &log));
            }
        });
        Server { port, hits }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn hits(&self) -> Vec<String> {
        self.hits.lock().expect("hits lock").clone()
    }
}

fn serve(mut s: TcpStream, port: u16, photo: &[u8], log: &Mutex<Vec<String>>) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 16 * 1024 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&req);
    let path = text.split_whitespace().nth(1).unwrap_or("").to_string();
    log.lock().expect("log lock").push(path.clone());

    let head = |status: &str, headers: &[(&str, String)]| {
        let mut h = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
        for (k, v) in headers {
            h.push_str(&format!("{k}: {v}\r\n"));
        }
        h.push_str("\r\n");
        h.into_bytes()
    };
    let redirect = |code: &str, to: String| head(code, &[("Location", to)]);
    let ok = |ct: Option<&str>, body: &[u8]| {
        let mut headers = vec![("Content-Length", body.len().to_string())];
        if let Some(ct) = ct {
            headers.push(("Content-Type", ct.to_string()));
        }
        let mut r = head("200 OK", &headers);
        r.extend_from_slice(body);
        r
    };
    let lo = format!("http://127.0.0.1:{port}");
    let reply: Vec<u8> = match path.as_str() {
        "/photo.jpg" => ok(Some("image/jpeg"), photo),
        "/photo.bin" => ok(Some("application/octet-stream"), photo),
        "/photo.noct" => ok(None, photo),
        "/html" => ok(
            Some("text/html; charset=utf-8"),
            b"<html>not an image</html>",
        ),
        "/empty" => ok(Some("image/jpeg"), b""),
        "/missing" => head("404 Not Found", &[("Content-Length", "0".into())]),
        "/to-photo" => redirect("302 Found", format!("{lo}/photo.jpg")),
        "/to-photo-relative" => redirect("301 Moved Permanently", "/photo.jpg".into()),
        "/to-private" => redirect("302 Found", "http://10.0.0.1/photo.jpg".into()),
        "/to-192-168" => redirect("307 Temporary Redirect", "http://192.168.1.1/".into()),
        "/to-metadata" => redirect(
            "302 Found",
            "http://169.254.169.254/latest/meta-data/".into(),
        ),
        "/to-mapped" => redirect(
            "308 Permanent Redirect",
            "http://[::ffff:a9fe:a9fe]/".into(),
        ),
        "/to-localhost" => redirect("302 Found", format!("http://localhost:{port}/photo.jpg")),
        "/to-ftp" => redirect("302 Found", format!("ftp://127.0.0.1:{port}/photo.jpg")),
        "/to-creds" => redirect(
            "302 Found",
            format!("http://u:p@127.0.0.1:{port}/photo.jpg"),
        ),
        "/no-location" => head("302 Found", &[("Content-Length", "0".into())]),
        "/loop" => redirect("302 Found", "/loop".into()),
        "/big" => {
            // Announces 100 kB; the client must refuse from the header alone.
            let mut r = head(
                "200 OK",
                &[
                    ("Content-Type", "image/jpeg".into()),
                    ("Content-Length", "100000".into()),
                ],
            );
            r.extend_from_slice(&photo[..1000]);
            r
        }
        "/big-stream" => {
            // No Content-Length: the body ends when the connection closes.
            let mut r = head("200 OK", &[("Content-Type", "image/jpeg".into())]);
            while r.len() < 200_000 {
                r.extend_from_slice(photo);
            }
            r
        }
        "/slow-body" => {
            let mut first = head(
                "200 OK",
                &[
                    ("Content-Type", "image/jpeg".into()),
                    ("Content-Length", photo.len().to_string()),
                ],
            );
            first.extend_from_slice(&photo[..100]);
            let _ = s.write_all(&first);
            let _ = s.flush();
            thread::sleep(Duration::from_secs(3));
            photo[100..].to_vec()
        }
        "/slow-headers" => {
            thread::sleep(Duration::from_secs(3));
            ok(Some("image/jpeg"), photo)
        }
        p if p.starts_with("/chain/") => match p["/chain/".len()..].parse::<u32>() {
            Ok(0) => ok(Some("image/jpeg"), photo),
            Ok(n) => redirect("302 Found", format!("/chain/{}", n - 1)),
            Err(_) => head("400 Bad Request", &[("Content-Length", "0".into())]),
        },
        _ => head("404 Not Found", &[("Content-Length", "0".into())]),
    };
    let _ = s.write_all(&reply);
    let _ = s.flush();
}

/// Limits that let the fetcher reach the test server (loopback only, nothing else).
fn loopback() -> InputLimits {
    InputLimits::default().with_url_policy(UrlPolicy::default().with_allow_loopback(true))
}

fn fetch_err(url: &str, limits: &InputLimits) -> Error {
    match fetch_image_url(url, limits) {
        Ok(b) => panic!("{url} fetched {} bytes, expected an error", b.len()),
        Err(e) => e,
    }
}

#[test]
fn default_policy_refuses_loopback_in_every_spelling() {
    let server = Server::start();
    let p = server.port;
    let defaults = InputLimits::default();
    for url in [
        server.url("/photo.jpg"),
        format!("http://localhost:{p}/photo.jpg"),
        format!("http://LocalHost:{p}/photo.jpg"),
        format!("http://[::1]:{p}/photo.jpg"),
        format!("http://[::ffff:127.0.0.1]:{p}/photo.jpg"),
        format!("http://0x7f000001:{p}/photo.jpg"),
        format!("http://2130706433:{p}/photo.jpg"),
        format!("http://127.1:{p}/photo.jpg"),
        format!("http://0.0.0.0:{p}/photo.jpg"),
    ] {
        let e = fetch_err(&url, &defaults);
        assert!(matches!(e, Error::InvalidImageUrl { .. }), "{url}: {e:?}");
        assert_eq!((e.code(), e.http_status()), ("invalid_image_url", 400));
        // Through the decode entry point as well.
        let e = decode(&ImageInput::Url(url.clone()), &defaults).expect_err(&url);
        assert_eq!(e.code(), "invalid_image_url", "{url}");
    }
    assert!(
        server.hits().is_empty(),
        "refused URLs reached the server: {:?}",
        server.hits()
    );
}

#[test]
fn fetches_the_photo_when_loopback_is_opted_in() {
    let server = Server::start();
    let want = photo();
    let limits = loopback();
    for path in ["/photo.jpg", "/photo.bin", "/photo.noct"] {
        let got =
            fetch_image_url(&server.url(path), &limits).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(got, want, "{path}");
    }
    let via_url = decode(&ImageInput::Url(server.url("/photo.jpg")), &limits).expect("decodes");
    let direct = decode_bytes(&want, &limits).expect("decodes");
    assert_eq!(
        (via_url.width(), via_url.height()),
        (direct.width(), direct.height())
    );
    assert_eq!(via_url.rgb(), direct.rgb());
    assert_eq!(
        server.hits(),
        ["/photo.jpg", "/photo.bin", "/photo.noct", "/photo.jpg"]
    );
}

#[test]
fn redirects_to_allowed_hosts_are_followed() {
    let server = Server::start();
    let want = photo();
    let limits = loopback();
    for path in ["/to-photo", "/to-photo-relative", "/chain/5"] {
        let got =
            fetch_image_url(&server.url(path), &limits).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(got, want, "{path}");
    }
    let hits = server.hits();
    assert_eq!(hits.iter().filter(|h| *h == "/photo.jpg").count(), 2);
    assert_eq!(hits.iter().filter(|h| h.starts_with("/chain/")).count(), 6);
}

#[test]
fn every_redirect_hop_is_checked_again() {
    let server = Server::start();
    let limits = loopback();
    for path in [
        "/to-private",
        "/to-192-168",
        "/to-metadata",
        "/to-mapped",
        "/to-ftp",
        "/to-creds",
    ] {
        let e = fetch_err(&server.url(path), &limits);
        assert!(matches!(e, Error::InvalidImageUrl { .. }), "{path}: {e:?}");
        assert!(e.to_string().contains("redirect"), "{path}: {e}");
    }
    // The credentials of a refused hop are not echoed back.
    let e = fetch_err(&server.url("/to-creds"), &limits);
    assert!(!e.to_string().contains("u:p@"), "{e}");
    // The metadata address stays refused even for an intranet deployment.
    let intranet = InputLimits::default().with_url_policy(
        UrlPolicy::default()
            .with_allow_loopback(true)
            .with_allow_private_networks(true),
    );
    let e = fetch_err(&server.url("/to-metadata"), &intranet);
    assert_eq!(e.code(), "invalid_image_url");
    // A redirect from a loopback-allowed URL to `localhost` is vetted after resolution: with
    // loopback allowed it is fetched, under the default policy the first hop never happens.
    // (`localhost` may also resolve to ::1, which is vetted too; the client tries the vetted
    // addresses in turn and reaches the server on 127.0.0.1.)
    let got = fetch_image_url(&server.url("/to-localhost"), &limits).expect("to localhost");
    assert_eq!(got, photo());
    let e = fetch_err(&server.url("/to-localhost"), &InputLimits::default());
    assert_eq!(e.code(), "invalid_image_url");
    // Only the redirecting paths were requested: no refused hop reached any server.
    let hits = server.hits();
    assert!(
        hits.iter()
            .all(|h| h.starts_with("/to-") || h == "/photo.jpg"),
        "{hits:?}"
    );
    assert_eq!(hits.iter().filter(|h| *h == "/photo.jpg").count(), 1);
}

#[test]
fn redirect_count_is_limited() {
    let server = Server::start();
    let limits = loopback();
    for path in ["/chain/6", "/loop"] {
        let e = fetch_err(&server.url(path), &limits);
        assert!(matches!(e, Error::ImageFetchFailed { .. }), "{path}: {e:?}");
        assert!(
            e.to_string().contains("more than 5 redirects"),
            "{path}: {e}"
        );
    }
    assert_eq!(
        server
            .hits()
            .iter()
            .filter(|h| h.starts_with("/chain/"))
            .count(),
        6
    );
    let none = InputLimits::default().with_url_policy(
        UrlPolicy::default()
            .with_allow_loopback(true)
            .with_max_redirects(0),
    );
    let e = fetch_err(&server.url("/to-photo"), &none);
    assert_eq!((e.code(), e.http_status()), ("image_fetch_failed", 422));
    let e = fetch_err(&server.url("/no-location"), &limits);
    assert_eq!(e.code(), "image_fetch_failed");
}

#[test]
fn byte_limit_is_enforced_by_header_and_while_streaming() {
    let server = Server::start();
    let want = photo();
    let small = loopback().with_max_bytes(50_000);
    for path in ["/big", "/big-stream"] {
        let e = fetch_err(&server.url(path), &small);
        assert!(
            matches!(e, Error::ImageTooLarge { limit: 50_000, .. }),
            "{path}: {e:?}"
        );
        assert_eq!(e.code(), "image_processing_failed");
    }
    // Exactly at the limit is fine, one byte under is not.
    let exact = loopback().with_max_bytes(want.len() as u64);
    assert_eq!(
        fetch_image_url(&server.url("/photo.jpg"), &exact).expect("at the limit"),
        want
    );
    let under = loopback().with_max_bytes(want.len() as u64 - 1);
    let e = fetch_err(&server.url("/photo.noct"), &under);
    assert!(matches!(e, Error::ImageTooLarge { .. }), "{e:?}");
}

#[test]
fn slow_servers_hit_the_total_timeout() {
    let server = Server::start();
    let quick = InputLimits::default().with_url_policy(
        UrlPolicy::default()
            .with_allow_loopback(true)
            .with_total_timeout(Duration::from_millis(400)),
    );
    for path in ["/slow-body", "/slow-headers"] {
        let e = fetch_err(&server.url(path), &quick);
        assert!(matches!(e, Error::ImageFetchFailed { .. }), "{path}: {e:?}");
        assert!(e.to_string().contains("tim"), "{path}: {e}");
    }
}

#[test]
fn http_errors_and_non_images_are_fetch_failures() {
    let server = Server::start();
    let limits = loopback();
    let e = fetch_err(&server.url("/missing"), &limits);
    assert!(e.to_string().contains("HTTP 404"), "{e}");
    assert_eq!((e.code(), e.http_status()), ("image_fetch_failed", 422));
    let e = fetch_err(&server.url("/html"), &limits);
    assert_eq!(e.code(), "image_fetch_failed");
    assert!(e.to_string().contains("text/html"), "{e}");
    // An empty image body is fetched, then refused by the decoder like any empty input.
    let e = decode(&ImageInput::Url(server.url("/empty")), &limits).expect_err("empty");
    assert!(matches!(e, Error::EmptyImage { .. }), "{e:?}");
    // Nothing listens on a port we bound and closed: connection refused.
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let e = fetch_err(&format!("http://127.0.0.1:{port}/photo.jpg"), &limits);
    assert_eq!(e.code(), "image_fetch_failed");
    // https to a plaintext server fails the TLS handshake.
    let e = fetch_err(
        &format!("https://127.0.0.1:{}/photo.jpg", server.port),
        &limits,
    );
    assert_eq!(e.code(), "image_fetch_failed");
}

#[test]
fn wrong_schemes_and_credentials_never_reach_the_network() {
    let server = Server::start();
    let p = server.port;
    let limits = loopback();
    for url in [
        format!("ftp://127.0.0.1:{p}/photo.jpg"),
        "file:///etc/passwd".to_string(),
        format!("gopher://127.0.0.1:{p}/"),
        format!("ws://127.0.0.1:{p}/photo.jpg"),
        format!("http://user:secret@127.0.0.1:{p}/photo.jpg"),
        format!("http://user@127.0.0.1:{p}/photo.jpg"),
        "127.0.0.1/photo.jpg".to_string(),
        "http://".to_string(),
    ] {
        let e = fetch_err(&url, &limits);
        assert_eq!(
            (e.code(), e.http_status()),
            ("invalid_image_url", 400),
            "{url}"
        );
        assert!(!e.to_string().contains("secret"), "{e}");
    }
    assert!(server.hits().is_empty(), "{:?}", server.hits());
}

#[test]
fn extractor_cache_key_is_the_fetched_bytes_hash() {
    let server = Server::start();
    let want = photo();
    let hash: String = Sha256::digest(&want)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let x = Extractor::builder()
        .threads(1)
        .limits(loopback())
        .cache_capacity(8)
        .build()
        .expect("extractor");
    let ops: Ops = "colors".parse().expect("ops");
    let first = x
        .extract(&ImageInput::Url(server.url("/photo.jpg")), ops)
        .expect("fetched and extracted");
    assert_eq!(first.content_hash, hash);
    assert!(!first.cached);
    // Another URL serving the same bytes hits the cache entry of the first.
    let second = x
        .extract(&ImageInput::Url(server.url("/to-photo-relative")), ops)
        .expect("fetched");
    assert!(second.cached);
    assert_eq!(second.content_hash, hash);
    assert_eq!(second.colors, first.colors);
    // The same bytes passed directly are the same cache entry.
    let direct = x.extract(&ImageInput::Bytes(want), ops).expect("bytes");
    assert!(direct.cached && direct.content_hash == hash);
    // Refusals stay per-item errors with the hosted code.
    let refused = Extractor::builder()
        .threads(1)
        .build()
        .expect("default extractor")
        .extract(&ImageInput::Url(server.url("/photo.jpg")), ops)
        .expect_err("default policy");
    assert_eq!(refused.code(), "invalid_image_url");
}
