//! The PostgreSQL catalog under real processes on one database: concurrent writers and
//! searchers lose no acknowledged upsert and never duplicate an external id, and a writer
//! killed with SIGKILL mid-ingest (20 times) loses no product it acknowledged.
//!
//! In-process threads would share one connection pool and one address space; separate
//! processes are what app servers are, so the children are this test binary re-executed
//! (`current_exe()`) with `DUPIFY_PG_CHILD` naming the role and `--exact <test>`, the same test
//! function running the child role. A child prints `ACK …` for a write only after the call
//! returned, so an acknowledged write is one the database reported committed.
//!
//! Needs `DUPIFY_TEST_PG_URL` like `catalog_pg.rs` and fails without it; each test works in a
//! database of its own. `DUPIFY_TEST_CONC_SECS` shortens the concurrency run (default 60 s,
//! which CI runs).

#![cfg(unix)]

#[path = "catalog/common.rs"]
mod catalog_common;
#[path = "common/pg_server.rs"]
mod pg_server;
use pg_server::fresh_database;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dupify_core::catalog::*;

const ROLE: &str = "DUPIFY_PG_CHILD";
const URL_ENV: &str = "DUPIFY_PG_CHILD_URL";
const DIM: usize = 16;
const CATEGORIES: [&str; 3] = ["dress", "shoes", "hat"];

fn ns() -> Namespace {
    Namespace::new("shop", Environment::Live).unwrap()
}

fn role() -> Option<String> {
    std::env::var(ROLE).ok()
}

fn env_u64(name: &str) -> u64 {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} missing"))
        .parse()
        .unwrap()
}

/// The product a writer sends for `ext` at `version` (unique per write across writers):
/// every field follows from the pair, so the parent can rebuild what was sent from an `ACK`.
fn product(ext: &str, writer: u64, version: u64) -> NewProduct {
    let mut p = NewProduct::new(ext);
    p.title = Some(format!("{ext} v{version}"));
    p.brand = Some(format!("brand-{}", version % 5));
    p.category = Some(CATEGORIES[(version % 3) as usize].into());
    p.price = Some((version % 1000) as f64 / 4.0);
    p.metadata = serde_json::json!({ "writer": writer, "version": version });
    p.features.clip = Some(catalog_common::unit_vector(version, DIM));
    p
}

/// `product` as stored: the same fields and embedding (to float rounding of the
/// normalisation on ingest).
fn assert_intact(got: &Product, ext: &str, writer: u64, version: u64) {
    let want = product(ext, writer, version);
    assert_eq!(got.external_id, ext);
    assert_eq!(got.title, want.title, "{ext}");
    assert_eq!(got.brand, want.brand, "{ext}");
    assert_eq!(got.category, want.category, "{ext}");
    assert_eq!(got.price, want.price, "{ext}");
    assert_eq!(got.metadata, want.metadata, "{ext}");
    let (a, b) = (
        got.features.clip.as_ref(),
        want.features.clip.as_ref().unwrap(),
    );
    let a = a.unwrap_or_else(|| panic!("{ext}: no embedding"));
    assert_eq!(a.len(), b.len(), "{ext}");
    let diff = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(diff <= 1e-5, "{ext}: embedding differs by {diff}");
}

/// One `ACK` line: a write the database reported committed, and when its call ran.
struct Ack {
    ext: String,
    writer: u64,
    version: u64,
    called: u64,
    returned: u64,
}

/// Batch sizes cycled by a writer: single upserts, small batches and batches of 64 and more
/// (copied in with binary `COPY`).
const BATCHES: [usize; 8] = [1, 7, 64, 3, 100, 20, 1, 80];

fn spawn(test: &str, role: &str, url: &str, extra: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(URL_ENV, url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn child")
}

/// The `KEYWORD …` lines of a child's output (libtest prints `test name ... ` without a
/// newline first, so a marker may share its line).
fn marked<'a>(line: &'a str, keyword: &str) -> Option<Vec<&'a str>> {
    let at = line.find(keyword)?;
    Some(line[at..].split(' ').skip(1).collect())
}

/// Unix milliseconds (every process on this machine reads the same clock).
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Child: upserts batches until the deadline (or forever), printing `ACK ext writer version
/// called_ms returned_ms` for each product once its batch call returned. It cycles through its own ids
/// `{DUPIFY_PG_PREFIX}-k` (so it re-upserts them) and, every fourth product, writes one of
/// `DUPIFY_PG_SHARED` ids shared by every writer.
fn writer_child() {
    let cat = Catalog::connect(&std::env::var(URL_ENV).unwrap(), CatalogOptions::default())
        .expect("child connects");
    let w = env_u64("DUPIFY_PG_WRITER");
    let secs = std::env::var("DUPIFY_PG_SECS")
        .ok()
        .map(|s| s.parse::<u64>().unwrap());
    let deadline = secs.map(|s| Instant::now() + Duration::from_secs(s));
    let (own, shared) = (env_u64("DUPIFY_PG_OWN"), env_u64("DUPIFY_PG_SHARED"));
    let prefix = std::env::var("DUPIFY_PG_PREFIX").unwrap();
    let mut out = std::io::stdout().lock();
    // Versions are unique across writers (and across restarts of a killed writer).
    let mut version = w << 32;
    let mut next_own = 0u64;
    let mut round = 0usize;
    let (mut acks, mut errors) = (0u64, 0u64);
    while deadline.is_none_or(|d| Instant::now() < d) {
        let size = BATCHES[round % BATCHES.len()];
        round += 1;
        let mut ids: Vec<String> = Vec::new();
        let mut seen = HashSet::new();
        for i in 0..size {
            let ext = if shared > 0 && i % 4 == 0 {
                format!("shared-{}", (version + i as u64 * 7) % shared)
            } else {
                next_own += 1;
                format!("{prefix}-{}", (next_own * 13) % own)
            };
            if seen.insert(ext.clone()) {
                ids.push(ext);
            }
        }
        let batch: Vec<(String, u64)> = ids
            .into_iter()
            .map(|ext| {
                version += 1;
                (ext, version)
            })
            .collect();
        let products = batch.iter().map(|(e, v)| product(e, w, *v)).collect();
        let called = now_ms();
        match cat.upsert_batch(&ns(), products) {
            Ok(stored) => {
                let returned = now_ms();
                assert_eq!(stored.len(), batch.len());
                for (ext, v) in &batch {
                    writeln!(out, "ACK {ext} {w} {v} {called} {returned}").unwrap();
                    acks += 1;
                }
                out.flush().unwrap();
            }
            Err(e) => {
                errors += 1;
                writeln!(out, "ERROR writer {w}: {e}").unwrap();
                out.flush().unwrap();
            }
        }
    }
    writeln!(out, "DONE {acks} {errors}").unwrap();
}

/// Child: embedding searches until the deadline, without and with filters; a failed search
/// is an error, and so is any hit that does not match the query's filter. The index query and
/// the reading of the hits' rows are separate statements, so a row may be rewritten between
/// them by a writer; the catalog re-checks the filter on the rows it read, and a hit that no
/// longer matches must never be returned.
fn searcher_child() {
    let cat = Catalog::connect(&std::env::var(URL_ENV).unwrap(), CatalogOptions::default())
        .expect("child connects");
    let s = env_u64("DUPIFY_PG_SEARCHER");
    let deadline = Instant::now() + Duration::from_secs(env_u64("DUPIFY_PG_SECS"));
    let mut out = std::io::stdout().lock();
    let (mut searches, mut errors, mut stale) = (0u64, 0u64, 0u64);
    let mut i = 0u64;
    while Instant::now() < deadline {
        i += 1;
        let started_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let mut q = SearchQuery::by_embedding(catalog_common::unit_vector(
            (s << 40) + i + 1_000_000_000_000,
            DIM,
        ));
        q.limit = 20;
        let category = CATEGORIES[(i % 3) as usize];
        match i % 3 {
            0 => {}
            1 => q.filter.category = Some(category.into()),
            _ => {
                q.filter.max_price = Some(100.0);
                q.filter.exclude_brands = vec!["brand-0".into()];
            }
        }
        match cat.search(&ns(), &q) {
            Ok(hits) => {
                searches += 1;
                for h in &hits {
                    let p = &h.product;
                    let bad = match i % 3 {
                        0 => false,
                        1 => p.category.as_deref() != Some(category),
                        _ => {
                            p.price.is_none_or(|x| x > 100.0)
                                || p.brand.as_deref() == Some("brand-0")
                        }
                    };
                    if bad {
                        if p.updated_at_ms >= started_ms - 10_000 {
                            stale += 1;
                        }
                        errors += 1;
                        writeln!(
                            out,
                            "ERROR searcher {s}: {p:?} does not match {:?}",
                            q.filter
                        )
                        .unwrap();
                    }
                }
            }
            Err(e) => {
                errors += 1;
                writeln!(out, "ERROR searcher {s}: {e}").unwrap();
            }
        }
    }
    writeln!(out, "DONE {searches} {errors} {stale}").unwrap();
    out.flush().unwrap();
}

/// The rows per external id of a namespace, by SQL (the unique constraint is the backend's
/// promise; this checks the data, not the schema).
fn duplicate_ids(url: &str) -> i64 {
    let mut c = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    c.query_one(
        "SELECT COUNT(*) FROM (SELECT ns, external_id FROM catalog_products \
         GROUP BY ns, external_id HAVING COUNT(*) > 1) d",
        &[],
    )
    .expect("count duplicates")
    .get(0)
}

/// 4 writers and 4 searchers on one database for 60 s (`DUPIFY_TEST_CONC_SECS`): every
/// acknowledged upsert is found, a shared id holds a version some writer acknowledged and
/// that is its writer's last for the id (an older write never comes back), no external id
/// twice, no error in any process.
#[test]
fn concurrent_writers_and_searchers_on_one_database() {
    const TEST: &str = "concurrent_writers_and_searchers_on_one_database";
    match role().as_deref() {
        Some("writer") => return writer_child(),
        Some("searcher") => return searcher_child(),
        _ => {}
    }
    let secs: u64 = std::env::var("DUPIFY_TEST_CONC_SECS")
        .map(|s| s.parse().expect("DUPIFY_TEST_CONC_SECS: seconds"))
        .unwrap_or(60);
    let url = fresh_database();
    // The first embedding binds the catalog's dimension and builds the index: done once here
    // so the children race on data, not on that one-time setup.
    let cat = Catalog::connect(&url, CatalogOptions::default()).unwrap();
    cat.upsert(&ns(), product("seed", 99, 99)).unwrap();
    let started = Instant::now();
    let mut children = Vec::new();
    for w in 0..4u64 {
        let extra = [
            ("DUPIFY_PG_WRITER", w.to_string()),
            ("DUPIFY_PG_SECS", secs.to_string()),
            ("DUPIFY_PG_OWN", "300".to_string()),
            ("DUPIFY_PG_SHARED", "50".to_string()),
            ("DUPIFY_PG_PREFIX", format!("own{w}")),
        ];
        children.push(("writer", spawn(TEST, "writer", &url, &extra)));
    }
    for s in 0..4u64 {
        let extra = [
            ("DUPIFY_PG_SEARCHER", s.to_string()),
            ("DUPIFY_PG_SECS", secs.to_string()),
        ];
        children.push(("searcher", spawn(TEST, "searcher", &url, &extra)));
    }
    let readers: Vec<_> = children
        .iter_mut()
        .map(|(role, child)| {
            let role = *role;
            let stdout = child.stdout.take().unwrap();
            std::thread::spawn(move || {
                let mut acks: Vec<Ack> = Vec::new();
                let mut errors = Vec::new();
                let mut done = None;
                for line in BufReader::new(stdout).lines() {
                    let line = line.unwrap();
                    if let Some(p) = marked(&line, "ACK ") {
                        let n = |i: usize| p[i].parse::<u64>().unwrap();
                        acks.push(Ack {
                            ext: p[0].to_string(),
                            writer: n(1),
                            version: n(2),
                            called: n(3),
                            returned: n(4),
                        });
                    } else if line.contains("ERROR ") {
                        errors.push(line);
                    } else if let Some(p) = marked(&line, "DONE ") {
                        let n = |i: usize| p.get(i).map_or(0, |x| x.parse::<u64>().unwrap());
                        done = Some((n(0), n(1), n(2)));
                    }
                }
                (role, acks, errors, done)
            })
        })
        .collect();
    for (role, child) in &mut children {
        assert!(child.wait().unwrap().success(), "a {role} failed");
    }
    let mut acks = Vec::new();
    let (mut searches, mut stale) = (0, 0);
    for r in readers {
        let (role, a, errors, done) = r.join().unwrap();
        assert!(errors.is_empty(), "{role} errors: {errors:#?}");
        let (count, errs, st) = done.unwrap_or_else(|| panic!("a {role} did not finish"));
        stale += st;
        assert_eq!(errs, 0);
        if role == "writer" {
            assert_eq!(count, a.len() as u64);
            assert!(count > 0, "a writer acknowledged nothing");
        } else {
            assert!(count > 0, "a searcher searched nothing");
            searches += count;
        }
        acks.extend(a);
    }
    assert_eq!(
        stale, 0,
        "hits rewritten mid-search returned against the filter"
    );
    println!(
        "{} acknowledged upserts, {searches} searches in {:.1} s",
        acks.len(),
        started.elapsed().as_secs_f64()
    );

    // Per id: every acknowledged (writer, version), each writer's last one, and the write
    // that must have won when one was called after every other write of the id returned.
    let mut acked: HashMap<String, HashSet<(u64, u64)>> = HashMap::new();
    let mut last: HashMap<(String, u64), u64> = HashMap::new();
    let mut by_id: HashMap<&str, Vec<&Ack>> = HashMap::new();
    for a in &acks {
        acked
            .entry(a.ext.clone())
            .or_default()
            .insert((a.writer, a.version));
        let l = last.entry((a.ext.clone(), a.writer)).or_default();
        assert!(a.version > *l, "a writer's versions grow");
        *l = a.version;
        by_id.entry(&a.ext).or_default().push(a);
    }
    let mut decided = 0;
    let cat = Catalog::connect(&url, CatalogOptions::default()).unwrap();
    let mut shared_writers = HashSet::new();
    for (ext, versions) in &acked {
        let got = cat
            .get_by_external_id(&ns(), ext)
            .expect("acknowledged product found");
        let w = got.metadata["writer"].as_u64().unwrap();
        let v = got.metadata["version"].as_u64().unwrap();
        assert!(
            versions.contains(&(w, v)),
            "{ext}: stored version {w}/{v} was never acknowledged"
        );
        assert_eq!(
            last[&(ext.clone(), w)],
            v,
            "{ext}: writer {w}'s later write is lost under its older one"
        );
        // The last write called strictly after every other write of the id returned (whole
        // milliseconds apart) overwrote them all: it is what must be stored.
        let writes = &by_id[ext.as_str()];
        let latest = writes.iter().max_by_key(|a| a.called).unwrap();
        if writes
            .iter()
            .all(|a| std::ptr::eq(*a, *latest) || a.returned < latest.called)
        {
            decided += 1;
            assert_eq!(
                (w, v),
                (latest.writer, latest.version),
                "{ext}: the last acknowledged write is lost under an earlier one"
            );
        }
        if !ext.starts_with("shared-") {
            // Only its owner writes it: its last acknowledged write is there.
            assert!(
                ext.starts_with(&format!("own{w}-")),
                "{ext} from writer {w}"
            );
        } else {
            shared_writers.extend(versions.iter().map(|(w, _)| *w));
        }
        assert_intact(&got, ext, w, v);
    }
    assert_eq!(shared_writers.len(), 4, "every writer wrote the shared ids");
    assert!(decided > 0, "no id had a write after all its others");
    println!(
        "{decided} of {} ids had a last write called after all others",
        acked.len()
    );
    assert_eq!(
        duplicate_ids(&url),
        0,
        "an external id twice in a namespace"
    );
    let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    let rows: i64 = c
        .query_one("SELECT COUNT(*) FROM catalog_products", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        rows as usize,
        acked.len() + 1,
        "rows = acknowledged ids + seed"
    );
}

/// A writer SIGKILLed mid-ingest, 20 times: after each kill the catalog is reopened and
/// every product the writer acknowledged is there with the fields and embedding sent (or a
/// later version of the writer's: the batch in flight at the kill may have committed
/// unacknowledged), and no external id is stored twice.
#[test]
fn sigkill_mid_ingest_keeps_every_acknowledged_product() {
    const TEST: &str = "sigkill_mid_ingest_keeps_every_acknowledged_product";
    if role().as_deref() == Some("writer") {
        return writer_child();
    }
    let url = fresh_database();
    let cat = Catalog::connect(&url, CatalogOptions::default()).unwrap();
    cat.upsert(&ns(), product("seed", 99, 99)).unwrap();
    drop(cat);
    // The last acknowledged version of each id, over all cycles.
    let mut last: HashMap<String, u64> = HashMap::new();
    let started = Instant::now();
    for cycle in 0..20u64 {
        // Ids are re-upserted across cycles (400 of them), so a kill can hit an update too.
        let extra = [
            // A distinct writer number per cycle keeps versions unique across restarts.
            ("DUPIFY_PG_WRITER", (cycle + 1).to_string()),
            ("DUPIFY_PG_OWN", "400".to_string()),
            ("DUPIFY_PG_SHARED", "0".to_string()),
            ("DUPIFY_PG_PREFIX", "p".to_string()),
        ];
        let mut child = spawn(TEST, "writer", &url, &extra);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Kill after a varying number of acknowledgements, mid-stream.
        let want = 40 + (cycle * 37) % 300;
        let mut n = 0;
        while n < want {
            let line = lines.next().expect("the writer stopped early").unwrap();
            assert!(!line.contains("ERROR "), "{line}");
            if let Some(p) = marked(&line, "ACK ") {
                last.insert(p[0].to_string(), p[2].parse().unwrap());
                n += 1;
            }
        }
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "killed by SIGKILL");
        // Lines already written before the kill are acknowledgements too.
        for line in lines {
            let line = line.unwrap();
            if let Some(p) = marked(&line, "ACK ") {
                last.insert(p[0].to_string(), p[2].parse().unwrap());
            }
        }

        let cat = Catalog::connect(&url, CatalogOptions::default()).expect("reopen");
        for (ext, v) in &last {
            let got = cat
                .get_by_external_id(&ns(), ext)
                .expect("acknowledged product found");
            let gv = got.metadata["version"].as_u64().unwrap();
            let gw = got.metadata["writer"].as_u64().unwrap();
            assert!(
                gv >= *v,
                "{ext}: acknowledged version {v} lost (found {gv})"
            );
            assert_intact(&got, ext, gw, gv);
        }
        assert_eq!(duplicate_ids(&url), 0, "an external id twice");
    }
    println!(
        "20 kills, {} acknowledged products checked after each, in {:.1} s",
        last.len(),
        started.elapsed().as_secs_f64()
    );
}
