//! The `dupify` CLI run as a subprocess on fixtures: every subcommand, bad arguments (exit 2),
//! runtime failures (exit 1) and a bad image inside an indexed folder.
//!
//! Uses the tiny seeded test model `weights/test/clip/tiny` (made by `scripts/setup.sh`); fails,
//! never skips, without it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod common;
use common::{dupify_with, root, tiny};

const PHOTOS: [&str; 5] = [
    "dress/06a00c0f-5f9a-410d-a7da-3881a9df3a71.jpg",
    "dress/28b09463-6bbb-491d-9ffc-f36df5c6b211.jpg",
    "hat/2a12baab-f020-42e3-8e6b-5d82e3ed0b55.jpg",
    "hat/31ae3916-c352-45fe-9866-a8947fc74991.jpg",
    "shoes/07d88b75-85a4-407b-aa73-12294a2ff9a8.jpg",
];

fn assets() -> PathBuf {
    root().join("dupify-core/tests/assets/clothing")
}

/// `dupify ARGS` with the tiny model, no colours, no inherited model or pepper settings.
fn dupify(args: &[&str]) -> Output {
    dupify_with(args, &[])
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("dupify was killed by a signal")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", stdout(o)))
}

/// The tiny model's embedding dimension, read from its config (not from the code under test).
fn tiny_dim() -> u64 {
    let cfg: Value =
        serde_json::from_slice(&std::fs::read(tiny().join("config.json")).expect("config.json"))
            .expect("config.json is JSON");
    cfg["projection_dim"].as_u64().expect("projection_dim")
}

/// A shop folder: five photos in category folders, a corrupt "image", a text file.
fn shop() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for rel in PHOTOS {
        let dst = dir.path().join(rel);
        std::fs::create_dir_all(dst.parent().expect("parent")).expect("mkdir");
        std::fs::copy(assets().join(rel), &dst).expect("copy photo");
    }
    std::fs::write(dir.path().join("dress/broken.jpg"), b"this is not a jpeg").expect("write");
    std::fs::write(dir.path().join("notes.txt"), b"not an image, ignored").expect("write");
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

#[test]
fn help_works_everywhere() {
    for args in [
        &["--help"][..],
        &["extract", "--help"],
        &["index", "--help"],
        &["search", "--help"],
        &["cutout", "--help"],
        &["keys", "--help"],
        &["keys", "create", "--help"],
        &["keys", "list", "--help"],
        &["keys", "revoke", "--help"],
        &["keys", "regenerate", "--help"],
        &["keys", "usage", "--help"],
        &["help", "search"],
    ] {
        let o = dupify(args);
        assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
        assert!(
            stdout(&o).contains("Usage: dupify"),
            "{args:?}: {}",
            stdout(&o)
        );
    }
    let top = stdout(&dupify(&["--help"]));
    for word in [
        "extract",
        "index",
        "search",
        "cutout",
        "keys",
        "Exit status",
    ] {
        assert!(top.contains(word), "top-level help lacks {word}:\n{top}");
    }
    let v = dupify(&["--version"]);
    assert_eq!(code(&v), 0);
    assert!(stdout(&v).starts_with("dupify "), "{}", stdout(&v));
}

#[test]
fn bad_arguments_are_usage_errors_with_status_2() {
    let img = assets().join(PHOTOS[0]);
    let img = s(&img);
    for args in [
        &[][..],
        &["frobnicate"],
        &["extract"],
        &["extract", img, "--ops", "embed,teleport"],
        &["extract", img, "--ops", ""],
        &["extract", img, "--device", "tpu"],
        &["extract", img, "--precision", "int4"],
        &["index", "somewhere"],
        &["index", "somewhere", "--catalog", "c.db", "--env", "prod"],
        &["search", "--catalog", "c.db"],
        &["search", img, "--text", "red", "--catalog", "c.db"],
        &[
            "search",
            "--text",
            "red",
            "--catalog",
            "c.db",
            "--limit",
            "0",
        ],
        &[
            "search",
            "--text",
            "red",
            "--catalog",
            "c.db",
            "--cheaper-by",
            "20",
        ],
        &[
            "search",
            "a.jpg",
            "--catalog",
            "c.db",
            "--exclude-own-brand",
        ],
        &[
            "search",
            "--product",
            "p",
            "--catalog",
            "c.db",
            "--max-price",
            "cheap",
        ],
        &["cutout", img],
        &["keys", "create", "--name", "x"],
        &["keys", "--db", "k.db", "create"],
        &[
            "keys",
            "--db",
            "k.db",
            "create",
            "--name",
            "x",
            "--scopes",
            "embed,fly",
        ],
        &[
            "keys", "--db", "k.db", "create", "--name", "x", "--tier", "gold",
        ],
        &["keys", "--db", "k.db", "revoke", "seven"],
    ] {
        let o = dupify(args);
        assert_eq!(code(&o), 2, "{args:?} gave {}: {}", code(&o), stderr(&o));
        assert!(stderr(&o).contains("error:"), "{args:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{args:?} printed to stdout");
    }
}

#[test]
fn extract_reports_every_image_and_fails_on_the_bad_one() {
    let shop = shop();
    let good = shop.path().join(PHOTOS[0]);
    let bad = shop.path().join("dress/broken.jpg");
    let o = dupify(&["extract", s(&good), s(&bad), "--json"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("seeded RANDOM"),
        "no model warning: {}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("broken.jpg"), "{}", stderr(&o));
    let v = json(&o);
    let items = v.as_array().expect("array");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["path"], s(&good));
    let f = &items[0]["features"];
    assert_eq!(
        f["embedding"].as_array().expect("embedding").len() as u64,
        tiny_dim()
    );
    assert_eq!(
        (f["width"].as_u64(), f["height"].as_u64()),
        (Some(400), Some(711))
    );
    assert!(!f["colors"]["colors"].as_array().expect("colors").is_empty());
    assert!(f["silhouette"]["embedding"]
        .as_array()
        .is_some_and(|e| !e.is_empty()));
    assert!(f["attributes"]["category"].is_string());
    let q = f["quality"]["overall"].as_f64().expect("quality");
    assert!((0.0..=1.0).contains(&q), "{q}");
    assert!(items[0].get("error").is_none());
    let err = &items[1]["error"];
    assert!(items[1].get("features").is_none());
    assert!(
        ["unsupported_format", "image_processing_failed"]
            .contains(&err["code"].as_str().unwrap_or("")),
        "{err}"
    );

    // The CLI prints what the library computes for the same file and model.
    let x = dupify_core::Extractor::builder()
        .model_dir(tiny())
        .device(dupify_core::Device::Cpu)
        .build()
        .expect("extractor");
    let lib = x
        .extract(
            &dupify_core::ImageInput::Path(good.clone()),
            "embed,colors".parse().expect("ops"),
        )
        .expect("library extraction");
    let cli_emb: Vec<f32> = serde_json::from_value(f["embedding"].clone()).expect("floats");
    let lib_emb = lib.embedding.expect("embedding");
    assert_eq!(cli_emb.len(), lib_emb.len());
    for (a, b) in cli_emb.iter().zip(&lib_emb) {
        assert!((a - b).abs() <= 1e-5, "{a} vs {b}");
    }
    let lib_hex: Vec<String> = lib
        .colors
        .expect("colors")
        .colors
        .into_iter()
        .map(|c| c.hex)
        .collect();
    let cli_hex: Vec<String> = f["colors"]["colors"]
        .as_array()
        .expect("colors")
        .iter()
        .map(|c| c["hex"].as_str().expect("hex").to_string())
        .collect();
    assert_eq!(cli_hex, lib_hex);
}

#[test]
fn precision_int8_runs_the_int8_model() {
    let img = assets().join(PHOTOS[0]);
    let emb = |extra: &[&str]| -> Vec<f64> {
        let mut args = vec![
            "extract",
            s(&img),
            "--ops",
            "embed",
            "--device",
            "cpu",
            "--json",
        ];
        args.extend_from_slice(extra);
        let o = dupify(&args);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        json(&o)[0]["features"]["embedding"]
            .as_array()
            .expect("embedding")
            .iter()
            .map(|x| x.as_f64().expect("number"))
            .collect()
    };
    let (f32e, int8e) = (emb(&[]), emb(&["--precision", "int8"]));
    assert_eq!(f32e.len(), int8e.len());
    let dot: f64 = f32e.iter().zip(&int8e).map(|(a, b)| a * b).sum();
    let max_diff = f32e
        .iter()
        .zip(&int8e)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    // both unit vectors: int8 moves the embedding (so it ran) but keeps it close
    assert!(max_diff > 1e-4, "--precision int8 gave the f32 embedding");
    assert!(dot > 0.99, "int8 vs f32 cosine {dot}");
    // int8 on a GPU is refused with the reason, not silently run in f32
    let o = dupify(&[
        "extract",
        s(&img),
        "--ops",
        "embed",
        "--device",
        "cuda",
        "--precision",
        "int8",
    ]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("int8"), "{}", stderr(&o));
}

#[test]
fn extract_human_output_and_model_free_operations() {
    let img = assets().join(PHOTOS[2]);
    let o = dupify(&["extract", s(&img)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    for part in [
        "embedding",
        "colours",
        "silhouette",
        "attributes",
        "quality",
        "#",
    ] {
        assert!(out.contains(part), "missing {part}:\n{out}");
    }
    assert!(
        !out.contains("\x1b["),
        "escape codes with NO_COLOR:\n{out:?}"
    );

    // On a terminal (forced here) each colour gets a truecolor swatch of its sRGB value.
    let o = Command::new(env!("CARGO_BIN_EXE_dupify"))
        .args(["extract", s(&img), "--ops", "colors"])
        .env_remove("NO_COLOR")
        .env("CLICOLOR_FORCE", "1")
        .output()
        .expect("run");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let first = out
        .lines()
        .find_map(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with('#') && w.len() == 7)
        })
        .expect("a #rrggbb colour in the plain output");
    let rgb: Vec<String> = (0..3)
        .map(|i| {
            u8::from_str_radix(&first[1 + 2 * i..3 + 2 * i], 16)
                .expect("hex")
                .to_string()
        })
        .collect();
    let swatch = format!("\x1b[48;2;{}m", rgb.join(";"));
    assert!(
        stdout(&o).contains(&swatch),
        "no swatch {swatch:?} in {:?}",
        stdout(&o)
    );

    // Colours and silhouette need no model: no model, no warning, even with none configured.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dupify"));
    let o = cmd
        .args(["extract", s(&img), "--ops", "colors,silhouette", "--model"])
        .arg("/nonexistent/model")
        .env("NO_COLOR", "1")
        .output()
        .expect("run");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    assert!(stdout(&o).contains("colours") && !stdout(&o).contains("embedding"));

    // A model is needed for embeddings: a wrong --model is a runtime error that says so.
    let o = dupify(&[
        "extract",
        s(&img),
        "--ops",
        "embed",
        "--model",
        "/nonexistent/model",
    ]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("/nonexistent/model"), "{}", stderr(&o));

    // A missing file: status 1, the file named.
    let o = dupify(&["extract", "/nonexistent/photo.jpg", "--ops", "colors"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("/nonexistent/photo.jpg"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn index_lists_the_bad_file_resumes_and_search_finds_dupes() {
    let shop = shop();
    let tmp = tempfile::tempdir().expect("temp dir");
    let db = tmp.path().join("shop.db");
    let db = s(&db);

    let o = dupify(&["index", s(shop.path()), "--catalog", db]);
    assert_eq!(code(&o), 1, "a bad file makes the status 1: {}", stderr(&o));
    assert!(stdout(&o).contains("indexed 5"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("holds 5 products in local/test"),
        "{}",
        stdout(&o)
    );
    let err = stderr(&o);
    assert!(
        err.contains("dress/broken.jpg"),
        "failure not listed: {err}"
    );
    assert!(err.contains("seeded RANDOM"), "{err}");
    assert!(
        !err.contains("notes.txt"),
        "non-images are not attempted: {err}"
    );

    // Resume: nothing changed, nothing re-extracted; the bad file is still reported.
    let o = dupify(&["index", s(shop.path()), "--catalog", db, "--json"]);
    assert_eq!(code(&o), 1);
    let r = json(&o);
    assert_eq!(r["indexed"], 0, "{r}");
    assert_eq!(r["skipped"], 5, "{r}");
    assert_eq!(r["failed"].as_array().map(Vec::len), Some(1), "{r}");
    assert_eq!(r["failed"][0]["external_id"], "dress/broken.jpg");

    // Fix the bad file: only it is indexed now.
    std::fs::copy(
        assets().join(PHOTOS[1]),
        shop.path().join("dress/broken.jpg"),
    )
    .expect("copy");
    let o = dupify(&["index", s(shop.path()), "--catalog", db, "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let r = json(&o);
    assert_eq!(
        (r["indexed"].as_u64(), r["skipped"].as_u64()),
        (Some(1), Some(5)),
        "{r}"
    );

    // Another namespace is separate.
    let o = dupify(&[
        "search",
        "--text",
        "a hat",
        "--catalog",
        db,
        "--env",
        "live",
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json(&o).as_array().map(Vec::len), Some(0));

    // By image: the photo itself is the top hit, with every channel at 1.
    let query = assets().join(PHOTOS[2]);
    let o = dupify(&[
        "search",
        s(&query),
        "--catalog",
        db,
        "--json",
        "--limit",
        "3",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let hits = json(&o);
    let hits = hits.as_array().expect("array");
    assert_eq!(hits.len(), 3);
    assert_eq!(hits[0]["product"]["external_id"], PHOTOS[2]);
    assert_eq!(hits[0]["rank"], 1);
    for ch in ["clip", "shape", "color"] {
        let v = hits[0]["scores"][ch].as_f64().unwrap_or(0.0);
        assert!(v > 0.999, "{ch} = {v}");
    }
    assert!(hits[0]["product"].get("features").is_none());
    let scores: Vec<f64> = hits
        .iter()
        .map(|h| h["score"].as_f64().expect("score"))
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");

    // Human output: a table with the per-channel scores.
    let o = dupify(&["search", s(&query), "--catalog", db, "--limit", "2"]);
    assert_eq!(code(&o), 0);
    let out = stdout(&o);
    assert!(
        out.contains("clip") && out.contains("shape") && out.contains("color"),
        "{out}"
    );
    assert!(out.contains(PHOTOS[2]), "{out}");

    // Filters: only the category asked for.
    let o = dupify(&[
        "search",
        s(&query),
        "--catalog",
        db,
        "--category",
        "dress",
        "--json",
    ]);
    let hits = json(&o);
    let hits = hits.as_array().expect("array");
    assert_eq!(hits.len(), 3, "three dresses are indexed");
    assert!(hits.iter().all(|h| h["product"]["category"] == "dress"));

    // By stored product (external id): never itself.
    let o = dupify(&["search", "--product", PHOTOS[0], "--catalog", db, "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let hits = json(&o);
    let hits = hits.as_array().expect("array");
    assert_eq!(hits.len(), 5);
    assert!(hits
        .iter()
        .all(|h| h["product"]["external_id"] != PHOTOS[0]));

    // By text: CLIP channel only.
    let o = dupify(&[
        "search",
        "--text",
        "a red dress",
        "--catalog",
        db,
        "--json",
        "-n",
        "4",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let hits = json(&o);
    assert_eq!(hits.as_array().map(Vec::len), Some(4));
    assert!(hits[0]["scores"]["clip"].is_number());

    // Runtime errors: unknown product, missing catalog, unreadable query image.
    let o = dupify(&["search", "--product", "nope", "--catalog", db]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("nope"), "{}", stderr(&o));
    let missing = tmp.path().join("missing.db");
    let o = dupify(&["search", "--text", "x", "--catalog", s(&missing)]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
    assert!(!missing.exists(), "a search must not create a catalog");
    let o = dupify(&["search", "/nonexistent.jpg", "--catalog", db]);
    assert_eq!(code(&o), 1);

    // Indexing a folder that does not exist, or holds no image.
    let o = dupify(&["index", "/nonexistent/folder", "--catalog", db]);
    assert_eq!(code(&o), 1);
    let empty = tempfile::tempdir().expect("temp dir");
    let o = dupify(&["index", s(empty.path()), "--catalog", db]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("no images"), "{}", stderr(&o));
}

#[test]
fn cutout_writes_a_transparent_png_of_the_photo_size() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = tmp.path().join("cut.png");
    let img = assets().join(PHOTOS[0]);
    let o = dupify(&["cutout", s(&img), "-o", s(&out)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let png = std::fs::read(&out).expect("cut-out written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&png[12..16], b"IHDR");
    let w = u32::from_be_bytes(png[16..20].try_into().expect("4 bytes"));
    let h = u32::from_be_bytes(png[20..24].try_into().expect("4 bytes"));
    assert_eq!((w, h), (400, 711), "size of the photo (as PIL reads it)");
    assert_eq!(png[25], 6, "colour type 6: RGBA");

    // To stdout.
    let o = dupify(&["cutout", s(&img), "-o", "-"]);
    assert_eq!(code(&o), 0);
    assert_eq!(o.stdout, png, "same bytes to stdout as to the file");

    // A corrupt photo: status 1, nothing written.
    let bad = tmp.path().join("bad.jpg");
    std::fs::write(&bad, b"\xff\xd8\xff garbage").expect("write");
    let out2 = tmp.path().join("bad.png");
    let o = dupify(&["cutout", s(&bad), "-o", s(&out2)]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("bad.jpg"), "{}", stderr(&o));
    assert!(!out2.exists());
}

#[test]
fn keys_lifecycle_with_a_generated_pepper() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let db = tmp.path().join("keys.db");
    let k = |args: &[&str]| {
        let mut all = vec!["keys", "--db", s(&db)];
        all.extend_from_slice(args);
        dupify(&all)
    };

    // Without a pepper, nothing but `create` on a new database runs.
    let o = k(&["list"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("DUPIFY_PEPPER"), "{}", stderr(&o));

    let o = k(&["create", "--name", "CI"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let key1 = stdout(&o).trim().to_string();
    assert!(is_key(&key1, "fe_test_"), "{key1:?}");
    let pepper_path = tmp.path().join("keys.db.pepper");
    assert!(stderr(&o).contains("keys.db.pepper"), "{}", stderr(&o));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&pepper_path)
            .expect("pepper")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let o = k(&[
        "create",
        "--name",
        "Production",
        "--env",
        "live",
        "--scopes",
        "embed,colors",
        "--tier",
        "pro",
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let created = json(&o);
    let key2 = created["key"].as_str().expect("key").to_string();
    assert!(is_key(&key2, "fe_live_"), "{key2:?}");
    assert_eq!(created["record"]["limits"]["per_minute"], 200);
    assert_eq!(created["record"]["limits"]["monthly"], 10_000);
    let id2 = created["record"]["id"].as_i64().expect("id");

    // The stored keys verify with the generated pepper, through the library.
    let pepper = std::fs::read(&pepper_path).expect("pepper");
    let store = dupify_keys::KeyStore::open(&db, pepper.trim_ascii()).expect("open store");
    let who = store
        .verify(dupify_keys::parse_key(&key2).expect("parse"))
        .expect("the created key verifies");
    assert_eq!(who.environment(), dupify_keys::Environment::Live);
    assert!(who.scopes().contains(dupify_keys::Scope::Embed));
    assert!(!who.scopes().contains(dupify_keys::Scope::Catalog));
    drop(store);

    let list = json(&k(&["list", "--json"]));
    let list = list.as_array().expect("array");
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|r| r["status"] == "active"));
    let human = stdout(&k(&["list"]));
    assert!(
        human.contains("Production") && human.contains("embed,colors"),
        "{human}"
    );
    assert!(
        !human.contains(&key1) && !human.contains(&key2),
        "secrets listed: {human}"
    );

    // Regenerate: a new secret, the old one revoked.
    let o = k(&["regenerate", &id2.to_string()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let key3 = stdout(&o).trim().to_string();
    assert!(is_key(&key3, "fe_live_") && key3 != key2, "{key3:?}");

    // Revoke the first key.
    let id1 = list
        .iter()
        .find(|r| r["name"] == "CI")
        .and_then(|r| r["id"].as_i64())
        .expect("CI key");
    let o = k(&["revoke", &id1.to_string()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let list = json(&k(&["list", "--json"]));
    let status = |id: i64| {
        list.as_array()
            .expect("array")
            .iter()
            .find(|r| r["id"] == id)
            .map(|r| r["status"].as_str().unwrap_or("").to_string())
    };
    assert_eq!(status(id1).as_deref(), Some("revoked"));
    assert_eq!(status(id2).as_deref(), Some("revoked"));
    assert_eq!(list.as_array().map(Vec::len), Some(3));

    let o = k(&["usage", &id2.to_string(), "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json(&o)["key_id"], id2);
    let o = k(&["usage", &id2.to_string()]);
    assert!(stdout(&o).contains("per month"), "{}", stdout(&o));

    // Unknown ids are runtime errors.
    for args in [
        &["revoke", "999"][..],
        &["usage", "999"],
        &["regenerate", "999"],
    ] {
        let o = k(args);
        assert_eq!(code(&o), 1, "{args:?}");
        assert!(stderr(&o).contains("dupify: error"), "{}", stderr(&o));
    }

    // A pepper from the environment or a file works (the same hex text, with or without a
    // trailing newline); an empty one and one that is not hex are refused.
    const HEX_PEPPER: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let db2 = tmp.path().join("other.db");
    let o = dupify_with(
        &["keys", "--db", s(&db2), "create", "--name", "env"],
        &[("DUPIFY_PEPPER", "not hex at all, so refused")],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("DUPIFY_PEPPER"), "{}", stderr(&o));
    let o = dupify_with(
        &["keys", "--db", s(&db2), "create", "--name", "env"],
        &[("DUPIFY_PEPPER", HEX_PEPPER)],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        !tmp.path().join("other.db.pepper").exists(),
        "no pepper generated"
    );
    let pf = tmp.path().join("pepper.txt");
    std::fs::write(&pf, format!("{HEX_PEPPER}\n")).expect("write");
    let o = dupify(&[
        "keys",
        "--db",
        s(&db2),
        "--pepper-file",
        s(&pf),
        "list",
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json(&o).as_array().map(Vec::len), Some(1));
    std::fs::write(&pf, "\n").expect("write");
    let o = dupify(&["keys", "--db", s(&db2), "--pepper-file", s(&pf), "list"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("empty"), "{}", stderr(&o));
    // An existing database without its pepper: refused, never a fresh pepper.
    std::fs::remove_file(&pepper_path).expect("rm");
    let o = k(&["create", "--name", "again"]);
    assert_eq!(code(&o), 1);
    assert!(!pepper_path.exists());
}

fn is_key(k: &str, prefix: &str) -> bool {
    k.strip_prefix(prefix)
        .is_some_and(|rest| rest.len() == 32 && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// With no `--model`, `dupify` uses the pretrained default (a real CLIP when installed, else
/// the EfficientNet-Lite2 that setup installs), never a seeded test model, and says nothing
/// about random weights; `--text` search with an image-only model is a clear runtime error.
#[test]
fn default_model_is_the_pretrained_one() {
    let lite2 = root().join("weights/real/efficientnet-lite2");
    assert!(
        lite2.join("model.safetensors").is_file(),
        "{} is missing: run scripts/setup.sh",
        lite2.display()
    );
    let clip = root().join("weights/real/clip-vit-base-patch32/model.safetensors");
    let shop = tempfile::tempdir().unwrap();
    for rel in PHOTOS {
        let dst = shop.path().join(rel);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(assets().join(rel), &dst).unwrap();
    }
    let photo = shop.path().join(PHOTOS[0]);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dupify"));
    let o = cmd
        .args([
            "extract",
            s(&photo),
            "--ops",
            "embed",
            "--json",
            "--device",
            "cpu",
        ])
        .current_dir(std::env::temp_dir())
        .env("NO_COLOR", "1")
        .env_remove("DUPIFY_MODEL")
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!stderr(&o).contains("seeded"), "{}", stderr(&o));
    let v = json(&o);
    let dims = v[0]["features"]["dimensions"].as_u64();
    if !clip.is_file() {
        assert_eq!(
            dims,
            Some(1280),
            "EfficientNet-Lite2 makes 1280-d embeddings"
        );
    }

    let db = tempfile::tempdir().unwrap();
    let cat = db.path().join("c.db");
    let o = Command::new(env!("CARGO_BIN_EXE_dupify"))
        .args([
            "index",
            s(shop.path()),
            "--catalog",
            s(&cat),
            "--device",
            "cpu",
        ])
        .env("NO_COLOR", "1")
        .env_remove("DUPIFY_MODEL")
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    if !clip.is_file() {
        let o = Command::new(env!("CARGO_BIN_EXE_dupify"))
            .args(["search", "--text", "red dress", "--catalog", s(&cat)])
            .env("NO_COLOR", "1")
            .env_remove("DUPIFY_MODEL")
            .output()
            .unwrap();
        assert_eq!(code(&o), 1, "{}", stderr(&o));
        assert!(stderr(&o).contains("image-only"), "{}", stderr(&o));
    }
}
