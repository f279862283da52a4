//! Load generator for the v1 API: starts `dupify-server` in this process on a loopback port
//! (default model, fresh data directory), then drives it with N client threads for a fixed
//! time and prints throughput and latency percentiles. Not a test: figures depend on the
//! machine, so report them with its name.
//!
//! ```text
//! $ cargo run --release -p dupify-server --example load -- colors 16 20
//! $ cargo run --release -p dupify-server --example load -- mixed 16 20
//! ```
//! Scenarios: `colors` (every client posts a base64 photo to `/v1/colors`) and `mixed`
//! (clients alternate catalog uploads and searches by image). Arguments: scenario, clients,
//! seconds, and optionally an attack run at the same time by another key:
//!
//! - `hanging-urls N`: N attackers post `/v1/colors {"image_url": …}` naming a host that
//!   accepts connections and never answers (a loopback listener; the URL policy is opened to
//!   loopback for this run only);
//! - `idle N`: N connections that send part of a request's headers, then one byte every 2 s
//!   (slowloris), reopened as soon as the server closes them.
//!
//! ```text
//! $ cargo run --release -p dupify-server --example load -- colors 16 20 hanging-urls 64
//! $ cargo run --release -p dupify-server --example load -- colors 16 20 idle 3000
//! ```
//! The good clients' figures are the ones to compare with the same run without the attack.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use base64::Engine;
use dupify_core::catalog::{Catalog, CatalogOptions};
use dupify_core::Extractor;
use dupify_keys::{Environment, KeySpec, KeyStore, Limits};
use dupify_server::{serve, AppState, ServeConfig};
use serde_json::json;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (scenario, clients, seconds, attack) = match args.as_slice() {
        [s, c, t] => (s.clone(), c.parse::<usize>()?, t.parse::<u64>()?, None),
        [s, c, t, a, n] => (
            s.clone(),
            c.parse::<usize>()?,
            t.parse::<u64>()?,
            Some((a.clone(), n.parse::<usize>()?)),
        ),
        _ => bail!("usage: load colors|mixed CLIENTS SECONDS [hanging-urls|idle N]"),
    };
    if scenario != "colors" && scenario != "mixed" {
        bail!("scenario must be colors or mixed");
    }
    if let Some((a, _)) = &attack {
        if a != "hanging-urls" && a != "idle" {
            bail!("the attack must be hanging-urls or idle");
        }
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let model = dupify_core::resolve_model_dir(None, std::slice::from_ref(&root))?;
    let dir = tempfile::tempdir()?;
    let keys = KeyStore::open(dir.path().join("keys.db"), b"load test pepper")?;
    let key = keys
        .create(
            KeySpec::new("load", Environment::Live).with_limits(Limits::custom(1_000_000, None)?),
        )?
        .key
        .expose()
        .to_string();
    let attacker_key = keys
        .create(
            KeySpec::new("attacker", Environment::Live)
                .with_limits(Limits::custom(1_000_000, None)?),
        )?
        .key
        .expose()
        .to_string();
    let mut limits = dupify_core::InputLimits::default();
    // The hanging host is a loopback listener: let the URL policy reach it for this run.
    limits.url.allow_loopback = matches!(&attack, Some((a, _)) if a == "hanging-urls");
    let extractor = Extractor::builder()
        .model_dir(&model.dir)
        .limits(limits)
        .build()?;
    extractor.warm_up().context("loading the model")?;
    let catalog = Catalog::open(dir.path().join("catalog.db"), CatalogOptions::default())?;
    let state = AppState::new(keys, extractor, catalog, ServeConfig::default())?;
    let rt = tokio::runtime::Runtime::new()?;
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let base = format!("http://{}", listener.local_addr()?);
    rt.spawn(serve(listener, state, std::future::pending()));

    let photos: Vec<String> = ["dress", "hat", "shoes", "pants", "shirt", "skirt"]
        .iter()
        .map(|c| {
            let d = root.join("dupify-core/tests/assets/clothing").join(c);
            let mut files: Vec<PathBuf> = std::fs::read_dir(&d)
                .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default();
            files.sort();
            let bytes = std::fs::read(files.first().context("no photo")?)?;
            Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
        })
        .collect::<anyhow::Result<_>>()?;
    // The mixed scenario searches a catalog that already holds every photo.
    if scenario == "mixed" {
        let agent = ureq::Agent::new_with_defaults();
        for (i, p) in photos.iter().enumerate() {
            agent
                .post(format!("{base}/v1/catalog/products"))
                .header("X-API-Key", &key)
                .send_json(json!({ "external_id": format!("seed-{i}"), "image_base64": p }))?;
        }
    }

    let stop = Arc::new(AtomicBool::new(false));
    let attack_stats = Arc::new(AttackStats::default());
    let mut attackers = Vec::new();
    if let Some((kind, n)) = &attack {
        let addr = listener_addr(&base)?;
        attackers = start_attack(kind, *n, addr, &base, &attacker_key, &stop, &attack_stats)?;
        // Let the attack take hold before measuring.
        std::thread::sleep(Duration::from_secs(2));
    }
    let latencies = Arc::new(Mutex::new(Vec::<(bool, Duration)>::new()));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|c| {
            let (stop, latencies, photos, base, key, scenario) = (
                stop.clone(),
                latencies.clone(),
                photos.clone(),
                base.clone(),
                key.clone(),
                scenario.clone(),
            );
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let photo = &photos[(c + n) % photos.len()];
                    let t = Instant::now();
                    let (path, body) = match (scenario.as_str(), n % 2) {
                        ("colors", _) => ("/v1/colors", json!({ "image_base64": photo })),
                        (_, 0) => (
                            "/v1/catalog/products",
                            json!({ "external_id": format!("c{c}-{n}"), "image_base64": photo }),
                        ),
                        _ => (
                            "/v1/catalog/search",
                            json!({ "image_base64": photo, "limit": 10 }),
                        ),
                    };
                    let ok = agent
                        .post(format!("{base}{path}"))
                        .header("X-API-Key", &key)
                        .send_json(body)
                        .map(|r| r.status().is_success())
                        .unwrap_or(false);
                    latencies
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((ok, t.elapsed()));
                    n += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    let wall = started.elapsed().as_secs_f64();
    // Attackers may wait out a fetch deadline before they see the stop flag.
    for a in attackers {
        let _ = a.join();
    }
    let all = latencies.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let failed = all.iter().filter(|(ok, _)| !ok).count();
    let mut ms: Vec<f64> = all.iter().map(|(_, d)| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| ms[((ms.len() as f64 - 1.0) * p).round() as usize];
    if ms.is_empty() {
        bail!("no request finished");
    }
    println!(
        "{scenario}: {clients} clients, {wall:.1} s, {} requests ({failed} failed), {:.1} req/s, \
         p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (model {})",
        ms.len(),
        ms.len() as f64 / wall,
        pct(0.5),
        pct(0.99),
        ms[ms.len() - 1],
        model.dir.display()
    );
    if let Some((kind, n)) = &attack {
        println!(
            "attack {kind} x{n}: {} attacker requests answered ({} with 429), {} connections \
             closed by the server",
            attack_stats.answered.load(Ordering::Relaxed),
            attack_stats.refused_429.load(Ordering::Relaxed),
            attack_stats.closed.load(Ordering::Relaxed),
        );
    }
    Ok(())
}

/// What the attackers saw.
#[derive(Default)]
struct AttackStats {
    answered: AtomicU64,
    refused_429: AtomicU64,
    closed: AtomicU64,
}

fn listener_addr(base: &str) -> anyhow::Result<std::net::SocketAddr> {
    Ok(base.trim_start_matches("http://").parse()?)
}

/// Starts `n` attackers of `kind`; they stop with `stop`.
fn start_attack(
    kind: &str,
    n: usize,
    server: std::net::SocketAddr,
    base: &str,
    key: &str,
    stop: &Arc<AtomicBool>,
    stats: &Arc<AttackStats>,
) -> anyhow::Result<Vec<std::thread::JoinHandle<()>>> {
    let mut threads = Vec::new();
    if kind == "hanging-urls" {
        // Accepts every connection and never says a word.
        let tarpit = std::net::TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}/photo.jpg", tarpit.local_addr()?);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in tarpit.incoming().flatten() {
                held.push(conn);
            }
        });
        for _ in 0..n {
            let (stop, stats, base, key, url) = (
                stop.clone(),
                stats.clone(),
                base.to_string(),
                key.to_string(),
                url.clone(),
            );
            threads.push(std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                while !stop.load(Ordering::Relaxed) {
                    let r = agent
                        .post(format!("{base}/v1/colors"))
                        .header("X-API-Key", &key)
                        .send_json(json!({ "image_url": url }));
                    if let Ok(r) = r {
                        stats.answered.fetch_add(1, Ordering::Relaxed);
                        if r.status().as_u16() == 429 {
                            stats.refused_429.fetch_add(1, Ordering::Relaxed);
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
            }));
        }
    } else {
        // Slowloris: part of the headers, then a byte every 2 s; reopened when closed.
        // Spread over a few threads, each holding its share of the connections.
        let per_thread = n.div_ceil(16).max(1);
        let mut left = n;
        while left > 0 {
            let count = per_thread.min(left);
            left -= count;
            let (stop, stats) = (stop.clone(), stats.clone());
            threads.push(std::thread::spawn(move || {
                let open = || {
                    let mut c = std::net::TcpStream::connect(server).ok()?;
                    c.write_all(b"POST /v1/colors HTTP/1.1\r\nHost: x\r\n")
                        .ok()?;
                    Some(c)
                };
                let mut conns: Vec<Option<std::net::TcpStream>> =
                    (0..count).map(|_| open()).collect();
                while !stop.load(Ordering::Relaxed) {
                    for c in conns.iter_mut() {
                        let alive = c.as_mut().is_some_and(|s| s.write_all(b"X").is_ok());
                        if !alive {
                            stats.closed.fetch_add(1, Ordering::Relaxed);
                            *c = open();
                        }
                    }
                    for _ in 0..20 {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }));
        }
    }
    Ok(threads)
}
