//! Crash safety: a writer process is SIGKILLed at random points while ingesting (single
//! upserts, batches, deletes and index saves); after each kill the catalog is reopened and
//! checked: every product the child reported committed exists with its features, no row is
//! half-written, deleted products stay deleted, and search finds every live product.
//!
//! The child is this same test binary re-executed with `DUPIFY_KILL_CHILD_DB` set.

#[path = "catalog/common.rs"]
mod catalog_common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use dupify_core::catalog::*;

const DIM: usize = 32;
const CHILD_ENV: &str = "DUPIFY_KILL_CHILD_DB";

fn vec_for(seed: u64) -> Vec<f32> {
    catalog_common::unit_vector(seed, DIM)
}

fn seed_of(ext: &str) -> u64 {
    ext.bytes().fold(1469598103934665603u64, |h, b| {
        (h ^ b as u64).wrapping_mul(1099511628211)
    })
}

fn product(ext: &str) -> NewProduct {
    let mut p = NewProduct::new(ext);
    p.features.clip = Some(vec_for(seed_of(ext)));
    p.features.shape = Some(vec![1.0, 2.0, 3.0]);
    p.features.colors = vec![ColorSwatch {
        lab: [50.0, 10.0, -10.0],
        share: 1.0,
    }];
    p.features.model_id = Some("m".into());
    p.price = Some(1.0);
    p
}

fn opts() -> CatalogOptions {
    CatalogOptions::default().with_index(IndexParams::default().with_brute_force_below(32))
}

fn ns() -> Namespace {
    Namespace::new("acme", Environment::Live).unwrap()
}

/// The writer: ingests forever, printing `C <ext>` after each committed upsert, `d <ext>`
/// before each delete and `D <ext>` after it committed. A kill between `d` and `D` leaves that
/// delete's outcome unknown (it may have committed before the report), so the checker accepts
/// either state for it — but never a half-written row.
fn child(db: &str, round: u64) {
    let cat = Catalog::open(db, opts()).unwrap();
    let n = ns();
    let out = std::io::stdout();
    writeln!(out.lock(), "READY").unwrap();
    out.lock().flush().unwrap();
    let mut i = 0u64;
    loop {
        match i % 7 {
            0..=3 => {
                let ext = format!("r{round}-{i}");
                cat.upsert(&n, product(&ext)).unwrap();
                writeln!(out.lock(), "C {ext}").unwrap();
            }
            4 => {
                let exts: Vec<String> = (0..10).map(|j| format!("r{round}-{i}-{j}")).collect();
                cat.upsert_batch(&n, exts.iter().map(|e| product(e)).collect())
                    .unwrap();
                let mut o = out.lock();
                for e in exts {
                    writeln!(o, "C {e}").unwrap();
                }
            }
            5 => {
                let ext = format!("r{round}-{}", i - 5);
                let p = cat.get_by_external_id(&n, &ext).unwrap();
                writeln!(out.lock(), "d {ext}").unwrap();
                out.lock().flush().unwrap();
                cat.delete(&n, &p.id).unwrap();
                writeln!(out.lock(), "D {ext}").unwrap();
            }
            _ => cat.flush().unwrap(),
        }
        out.lock().flush().unwrap();
        i += 1;
    }
}

#[test]
fn sigkilled_writer_loses_no_committed_product() {
    if let Ok(db) = std::env::var(CHILD_ENV) {
        let round = std::env::var("DUPIFY_KILL_ROUND")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        child(&db, round);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cat.db");
    let exe = std::env::current_exe().unwrap();
    let mut rng = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut committed: HashSet<String> = HashSet::new();
    let mut deleted: HashSet<String> = HashSet::new();
    // Deletes started but not confirmed when the writer died: either outcome is legal.
    let mut deleting: HashSet<String> = HashSet::new();
    let rounds = 25u64;
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "sigkilled_writer_loses_no_committed_product",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &db)
            .env("DUPIFY_KILL_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines: Vec<String> = Vec::new();
        // Wait until the child has opened the catalog, then kill it at a random point.
        // (the test harness prints its own lines first)
        while !rx
            .recv_timeout(Duration::from_secs(120))
            .expect("child started")
            .ends_with("READY")
        {}
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let delay = Duration::from_millis(rng % 400);
        let start = Instant::now();
        while start.elapsed() < delay {
            if let Ok(l) = rx.recv_timeout(Duration::from_millis(2)) {
                lines.push(l);
            }
        }
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        reader.join().unwrap();
        lines.extend(rx.try_iter());
        for line in lines {
            if let Some(ext) = line.strip_prefix("C ") {
                committed.insert(ext.to_string());
            } else if let Some(ext) = line.strip_prefix("D ") {
                deleted.insert(ext.to_string());
            } else if let Some(ext) = line.strip_prefix("d ") {
                deleting.insert(ext.to_string());
            }
        }

        // Reopen and check invariants.
        let cat = Catalog::open(&db, opts()).unwrap();
        let n = ns();
        let mut all: HashMap<String, Product> = HashMap::new();
        let mut page = Page {
            limit: 1000,
            cursor: None,
        };
        loop {
            let res = cat.list(&n, &page, &ProductFilter::default()).unwrap();
            for p in res.items {
                all.insert(p.external_id.clone(), p);
            }
            match res.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => break,
            }
        }
        for ext in &committed {
            if deleted.contains(ext) {
                assert!(
                    !all.contains_key(ext),
                    "round {round}: deleted {ext} is back"
                );
            } else if !deleting.contains(ext) {
                assert!(all.contains_key(ext), "round {round}: committed {ext} lost");
            }
        }
        for (ext, p) in &all {
            // no half-written row: every stored product carries all its features
            let want = product(ext).features;
            let got = &p.features;
            assert_eq!(got.shape, want.shape, "{ext}");
            assert_eq!(got.colors, want.colors, "{ext}");
            assert_eq!(got.model_id, want.model_id, "{ext}");
            let clip = got.clip.as_ref().expect("clip stored");
            let w = want.clip.unwrap();
            assert!(
                clip.iter().zip(&w).all(|(a, b)| (a - b).abs() < 1e-5),
                "{ext}"
            );
        }
        // the index agrees with the database: every live product is its own nearest match,
        // and nothing deleted comes back
        let rep = cat.index_report().unwrap();
        if let Some(r) = rep.first() {
            assert_eq!(r.live, all.len(), "round {round}");
        }
        for (ext, p) in all.iter().take(40) {
            let hits = cat
                .search(
                    &n,
                    &SearchQuery {
                        embedding: p.features.clip.clone(),
                        limit: 5,
                        ..Default::default()
                    },
                )
                .unwrap();
            assert_eq!(&hits[0].product.external_id, ext, "round {round}");
            assert!(hits
                .iter()
                .all(|h| !deleted.contains(&h.product.external_id)));
        }
        drop(cat);
    }
    assert!(
        committed.len() > 50,
        "the writer committed too little ({}) to test anything",
        committed.len()
    );
}
