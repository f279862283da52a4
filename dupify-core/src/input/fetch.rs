//! `image_url` fetching (feature `url-fetch`), under the protections of [`super::UrlPolicy`].
//!
//! Every hop (the URL, then each redirect) goes through the same checks before a byte is
//! sent:
//!
//! 1. the URL parses (WHATWG rules, so `http://0x7f.1/` is seen as `127.0.0.1`), its scheme is
//!    `http` or `https`, it carries no credentials and it has a host;
//! 2. the host is resolved here, with the connect timeout, and **every** address it resolves
//!    to must be allowed by the [`UrlPolicy`]; one disallowed address refuses the URL (a
//!    host that answers both a public and a private address is an attack, not a mirror);
//! 3. the request connects to exactly those vetted addresses: `ureq` is given a resolver that
//!    answers only for the vetted host with the vetted addresses, so nothing resolves the
//!    name a second time and a DNS-rebinding answer never reaches a socket. Proxies from the
//!    environment are ignored (a proxy would resolve the name itself).
//!
//! Redirects are followed here, not by `ureq`, so each `Location` is re-checked from step 1,
//! at most [`UrlPolicy::max_redirects`] times. The body is refused up front when its
//! `Content-Length` exceeds [`InputLimits::max_bytes`], and reading stops one byte past the
//! limit when it has none. [`UrlPolicy::total_timeout`] bounds the whole fetch: resolution,
//! every hop, and the body. The response must be `2xx` with an `image/*` or octet-stream
//! `Content-Type` (or none: the decoder checks the magic bytes either way).
//!
//! Errors: a URL refused before any request (syntax, scheme, credentials, a disallowed
//! address, also on a redirect hop) is [`Error::InvalidImageUrl`] (`invalid_image_url`);
//! network, TLS, HTTP status, content type, redirect-count and time failures are
//! [`Error::ImageFetchFailed`] (`image_fetch_failed`); a body over the byte limit is
//! [`Error::ImageTooLarge`], like any other oversized input. Messages name the class of a
//! refused address, never the address, so probing internal DNS through the API learns
//! nothing.

use std::io::Read;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::{header, Uri};
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};
use ureq::Agent;
use url::{Host, Url};

use super::limits::InputLimits;
use super::url::{classify_ip, UrlPolicy};
use crate::error::{Error, Result};

/// URLs longer than this are refused outright (browsers and CDNs cap around 8 KiB too).
const MAX_URL_LEN: usize = 8192;

/// Fetches the bytes of an `image_url` under `limits` (bytes) and `limits.url` (addresses,
/// redirects, timeouts). See the module documentation for every check made.
pub fn fetch_image_url(url: &str, limits: &InputLimits) -> Result<Vec<u8>> {
    limits.validate()?;
    let policy = &limits.url;
    let deadline = Instant::now() + policy.total_timeout;
    let mut current = parse_url(url)?;
    let mut redirects = 0u32;
    // The URL that redirected here, for errors about a refused hop.
    let mut from: Option<String> = None;
    loop {
        let shown = redact(&current);
        let target = vet(&current, policy, deadline).map_err(|e| on_hop(e, redirects, &from))?;
        let remaining = remaining(deadline, &shown)?;
        let config = Agent::config_builder()
            .proxy(None)
            .max_redirects(0)
            .http_status_as_error(false)
            .save_redirect_history(false)
            .timeout_global(Some(remaining))
            .timeout_connect(Some(policy.connect_timeout.min(remaining)))
            .user_agent(concat!("dupify/", env!("CARGO_PKG_VERSION")))
            .accept("image/*, application/octet-stream;q=0.8")
            .build();
        let agent = Agent::with_parts(config, DefaultConnector::new(), target);
        let response = agent
            .get(current.as_str())
            .call()
            .map_err(|e| fetch_failed(&shown, format!("request failed: {e}")))?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| {
                    fetch_failed(
                        &shown,
                        format!("HTTP {} without a usable Location", status.as_u16()),
                    )
                })?;
            if redirects >= policy.max_redirects {
                return Err(fetch_failed(
                    &shown,
                    format!("more than {} redirects", policy.max_redirects),
                ));
            }
            redirects += 1;
            let next = current.join(location).map_err(|e| Error::InvalidImageUrl {
                url: shown.clone(),
                reason: format!("redirect {redirects} has an invalid Location: {e}"),
            })?;
            from = Some(shown);
            current = check_url(next).map_err(|e| on_hop(e, redirects, &from))?;
            continue;
        }
        if !status.is_success() {
            return Err(fetch_failed(
                &shown,
                format!("the server answered HTTP {}", status.as_u16()),
            ));
        }
        check_content_type(&shown, response.headers().get(header::CONTENT_TYPE))?;
        let body = response.into_body();
        if let Some(len) = body.content_length() {
            limits.check_bytes(len)?;
        }
        let capacity = body
            .content_length()
            .unwrap_or(64 * 1024)
            .min(limits.max_bytes);
        let mut bytes = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
        body.into_reader()
            .take(limits.max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| fetch_failed(&shown, format!("reading the body failed: {e}")))?;
        limits.check_bytes(bytes.len() as u64)?;
        return Ok(bytes);
    }
}

/// Says which redirect a refusal concerns (the caller only sees the URL it passed).
fn on_hop(e: Error, redirects: u32, from: &Option<String>) -> Error {
    match (e, from) {
        (Error::InvalidImageUrl { url, reason }, Some(from)) => Error::InvalidImageUrl {
            url,
            reason: format!("redirect {redirects} from `{from}` refused: {reason}"),
        },
        (e, _) => e,
    }
}

/// Checks a caller-supplied image URL without fetching it (length, syntax, `http(s)` scheme,
/// no credentials, a host): what can be refused before a request is queued. The address
/// policy needs DNS and is applied when the URL is fetched.
pub fn check_image_url(raw: &str) -> Result<()> {
    parse_url(raw).map(drop)
}

/// Parses and checks a caller-supplied URL (length, syntax, scheme, credentials, host).
fn parse_url(raw: &str) -> Result<Url> {
    let raw = raw.trim();
    if raw.len() > MAX_URL_LEN {
        return Err(Error::InvalidImageUrl {
            url: format!("{}…", raw.chars().take(64).collect::<String>()),
            reason: format!("longer than {MAX_URL_LEN} bytes"),
        });
    }
    let url = Url::parse(raw).map_err(|e| Error::InvalidImageUrl {
        url: raw.chars().take(256).collect(),
        reason: format!("not an absolute URL: {e}"),
    })?;
    check_url(url)
}

fn check_url(mut url: Url) -> Result<Url> {
    let invalid = |url: &Url, reason: &str| Error::InvalidImageUrl {
        url: redact(url),
        reason: reason.into(),
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(
            &url,
            "only http and https URLs are fetched (scheme refused)",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(&url, "URLs with credentials are refused"));
    }
    if url.host().is_none() {
        return Err(invalid(&url, "the URL has no host"));
    }
    url.set_fragment(None);
    Ok(url)
}

/// The URL as shown in errors: credentials removed (they are refused, but the error that
/// refuses them must not echo them back), truncated.
fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    let s = shown.as_str();
    if s.len() > 256 {
        format!("{}…", s.chars().take(256).collect::<String>())
    } else {
        s.to_string()
    }
}

fn fetch_failed(url: &str, reason: String) -> Error {
    Error::ImageFetchFailed {
        url: url.to_string(),
        reason,
    }
}

fn remaining(deadline: Instant, shown: &str) -> Result<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| fetch_failed(shown, "timed out (total fetch timeout)".into()))
}

/// Resolves the URL's host (at most the connect timeout, within the deadline) and checks
/// every address against the policy. Returns the resolver the request must use.
fn vet(url: &Url, policy: &UrlPolicy, deadline: Instant) -> Result<PinnedResolver> {
    let shown = redact(url);
    let port = url
        .port_or_known_default()
        .ok_or_else(|| Error::InvalidImageUrl {
            url: shown.clone(),
            reason: "the URL has no port".into(),
        })?;
    // The host exactly as serialised in the URL handed to ureq, so the pinned resolver
    // compares like with like (IPv6 literals keep their brackets).
    let host = url.host_str().unwrap_or_default().to_string();
    let addrs: Vec<SocketAddr> = match url.host() {
        Some(Host::Ipv4(ip)) => vec![SocketAddr::new(ip.into(), port)],
        Some(Host::Ipv6(ip)) => vec![SocketAddr::new(ip.into(), port)],
        Some(Host::Domain(name)) => {
            let budget = policy.connect_timeout.min(remaining(deadline, &shown)?);
            resolve(name, port, budget, &shown)?
        }
        None => {
            return Err(Error::InvalidImageUrl {
                url: shown,
                reason: "the URL has no host".into(),
            })
        }
    };
    for addr in &addrs {
        if !policy.permits(addr.ip()) {
            let class = classify_ip(addr.ip());
            let how = if matches!(url.host(), Some(Host::Domain(_))) {
                "resolves to"
            } else {
                "is"
            };
            return Err(Error::InvalidImageUrl {
                url: shown,
                reason: format!("host `{host}` {how} {} (refused)", class.describe()),
            });
        }
    }
    Ok(PinnedResolver { host, port, addrs })
}

/// System resolution (getaddrinfo) on a helper thread, abandoned after `budget`: std has no
/// resolver timeout, and a stuck DNS server must not hold a batch worker for minutes.
fn resolve(name: &str, port: u16, budget: Duration, shown: &str) -> Result<Vec<SocketAddr>> {
    let (tx, rx) = mpsc::sync_channel(1);
    let query = (name.to_string(), port);
    std::thread::Builder::new()
        .name("dupify-dns".into())
        .spawn(move || {
            let _ = tx.send(query.to_socket_addrs().map(Iterator::collect::<Vec<_>>));
        })
        .map_err(|e| fetch_failed(shown, format!("cannot start the DNS lookup: {e}")))?;
    let addrs = match rx.recv_timeout(budget) {
        Ok(Ok(addrs)) => addrs,
        Ok(Err(e)) => return Err(fetch_failed(shown, format!("cannot resolve `{name}`: {e}"))),
        Err(_) => return Err(fetch_failed(shown, format!("resolving `{name}` timed out"))),
    };
    if addrs.is_empty() {
        return Err(fetch_failed(
            shown,
            format!("`{name}` resolves to no address"),
        ));
    }
    Ok(addrs)
}

fn check_content_type(shown: &str, value: Option<&header::HeaderValue>) -> Result<()> {
    let Some(value) = value else {
        return Ok(());
    };
    let text = value.to_str().unwrap_or("").trim();
    let essence = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let ok = essence.starts_with("image/")
        || essence == "application/octet-stream"
        || essence == "binary/octet-stream";
    if ok {
        Ok(())
    } else {
        Err(fetch_failed(
            shown,
            format!(
                "the response is not an image (Content-Type `{}`)",
                text.chars().take(100).collect::<String>()
            ),
        ))
    }
}

/// Answers `ureq`'s lookup with the addresses vetted by [`vet`], and only for the vetted
/// host and port: the request can reach no other address.
#[derive(Debug)]
struct PinnedResolver {
    host: String,
    port: u16,
    addrs: Vec<SocketAddr>,
}

impl Resolver for PinnedResolver {
    fn resolve(
        &self,
        uri: &Uri,
        _config: &Config,
        _timeout: NextTimeout,
    ) -> std::result::Result<ResolvedSocketAddrs, ureq::Error> {
        let bare = |h: &str| h.trim_start_matches('[').trim_end_matches(']').to_string();
        let host = uri.host().map(bare).unwrap_or_default();
        let port = uri
            .port_u16()
            .or_else(|| match uri.scheme_str() {
                Some("http") => Some(80),
                Some("https") => Some(443),
                _ => None,
            })
            .unwrap_or(0);
        if !host.eq_ignore_ascii_case(&bare(&self.host)) || port != self.port {
            return Err(ureq::Error::BadUri(format!(
                "`{host}:{port}` is not the vetted host"
            )));
        }
        let mut out = self.empty();
        // ureq keeps at most 16 addresses; every one of ours was vetted, so dropping the
        // tail only drops fallbacks.
        for addr in &self.addrs {
            if out.try_push(*addr).is_err() {
                break;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: Result<Url>) -> &'static str {
        match r {
            Ok(u) => panic!("{u} was accepted"),
            Err(e) => e.code(),
        }
    }

    #[test]
    fn only_http_and_https_without_credentials() {
        for bad in [
            "ftp://example.com/a.jpg",
            "file:///etc/passwd",
            "gopher://example.com/",
            "data:image/png;base64,AAAA",
            "javascript:alert(1)",
            "http://user:pass@example.com/a.jpg",
            "https://user@example.com/a.jpg",
            "http://:pw@example.com/a.jpg",
            "not a url",
            "/relative/path.jpg",
            "",
        ] {
            assert_eq!(code(parse_url(bad)), "invalid_image_url", "{bad}");
        }
        let ok = parse_url("  HTTPS://Example.COM/a.jpg#frag ").expect("valid URL");
        assert_eq!(ok.as_str(), "https://example.com/a.jpg");
    }

    #[test]
    fn credentials_are_not_echoed_in_errors() {
        let e = parse_url("http://alice:s3cret@example.com/a.jpg").expect_err("refused");
        assert!(!e.to_string().contains("s3cret"), "{e}");
        assert!(!e.to_string().contains("alice"), "{e}");
    }

    #[test]
    fn overlong_urls_are_refused() {
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(code(parse_url(&long)), "invalid_image_url");
    }

    #[test]
    fn ip_literals_in_any_notation_are_vetted_without_dns() {
        let policy = UrlPolicy::default();
        let deadline = Instant::now() + Duration::from_secs(5);
        for bad in [
            "http://127.0.0.1/",
            "http://0x7f.1/",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:a9fe:a9fe]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1:8080/",
            "http://[fd00:ec2::254]/",
            "http://0.0.0.0/",
        ] {
            let url = parse_url(bad).expect("syntactically valid");
            let e = vet(&url, &policy, deadline).expect_err(bad);
            assert_eq!(e.code(), "invalid_image_url", "{bad}: {e}");
        }
        let url = parse_url("http://93.184.215.14:8080/a.jpg").expect("valid");
        let pinned = vet(&url, &policy, deadline).expect("public literal");
        assert_eq!(
            pinned.addrs,
            vec!["93.184.215.14:8080".parse::<SocketAddr>().expect("addr")]
        );
    }

    #[test]
    fn pinned_resolver_answers_only_for_its_host() {
        let r = PinnedResolver {
            host: "[::1]".into(),
            port: 8080,
            addrs: vec!["[::1]:8080".parse().expect("addr")],
        };
        let cfg = Config::default();
        let t = NextTimeout::default();
        let ok: Uri = "http://[::1]:8080/x".parse().expect("uri");
        assert_eq!(r.resolve(&ok, &cfg, t).expect("vetted").len(), 1);
        for other in [
            "http://[::2]:8080/x",
            "http://[::1]:8081/x",
            "http://evil/x",
        ] {
            let uri: Uri = other.parse().expect("uri");
            assert!(r.resolve(&uri, &cfg, t).is_err(), "{other}");
        }
    }

    #[test]
    fn content_type_sanity() {
        let hv = |s: &'static str| header::HeaderValue::from_static(s);
        for ok in [
            "image/jpeg",
            "IMAGE/PNG; charset=binary",
            "application/octet-stream",
            "binary/octet-stream",
        ] {
            assert!(check_content_type("u", Some(&hv(ok))).is_ok(), "{ok}");
        }
        assert!(check_content_type("u", None).is_ok());
        for bad in ["text/html", "application/json", "imagex/jpeg"] {
            let e = check_content_type("u", Some(&hv(bad))).expect_err(bad);
            assert_eq!(e.code(), "image_fetch_failed");
        }
    }
}
