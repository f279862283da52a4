//! The v1 HTTP API over real TCP: each test starts the router in-process on 127.0.0.1:0 with a
//! temporary key store and catalog and the tiny seeded CLIP model, and talks to it with a
//! blocking HTTP client (`ureq`).
//!
//! Needs `weights/test/clip/tiny` (made by `scripts/setup.sh`).

use std::path::PathBuf;
use std::sync::OnceLock;

use base64::Engine;
use dupify_core::catalog::{Catalog, CatalogOptions};
use dupify_core::Extractor;
use dupify_keys::{Environment, KeySpec, Limits, Scope, Tier};
use dupify_server::{serve, AppState, ServeConfig};
use serde_json::{json, Value};
use ureq::http::HeaderMap;

const BODY_LIMIT: usize = 1 << 20;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One extractor (the tiny model loads once) shared by every test server.
fn extractor() -> Extractor {
    static X: OnceLock<Extractor> = OnceLock::new();
    X.get_or_init(|| {
        let dir = root().join("weights/test/clip/tiny");
        assert!(
            dir.join("model.safetensors").is_file(),
            "missing {}: run scripts/setup.sh to generate the test models",
            dir.display()
        );
        let x = Extractor::builder()
            .model_dir(&dir)
            .threads(2)
            .build()
            .expect("extractor");
        x.warm_up().expect("tiny model and attribute heads load");
        x
    })
    .clone()
}

/// Fixture photos, read from the committed test assets.
fn photo(category: &str) -> Vec<u8> {
    let dir = root()
        .join("dupify-core/tests/assets/clothing")
        .join(category);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    files.sort();
    std::fs::read(&files[0]).expect("read fixture")
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// JPEG dimensions from its SOF marker, independent of the code under test.
fn jpeg_size(bytes: &[u8]) -> (u32, u32) {
    let mut i = 2;
    while i + 9 < bytes.len() {
        assert_eq!(bytes[i], 0xFF, "JPEG marker expected at {i}");
        let marker = bytes[i + 1];
        let len = u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize;
        if (0xC0..=0xC3).contains(&marker) {
            let h = u16::from_be_bytes([bytes[i + 5], bytes[i + 6]]) as u32;
            let w = u16::from_be_bytes([bytes[i + 7], bytes[i + 8]]) as u32;
            return (w, h);
        }
        i += 2 + len;
    }
    panic!("no SOF marker");
}

struct Resp {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Resp {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Asserts the hosted error envelope with `status` and `code`.
    fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.code()),
            (status, code),
            "body: {}",
            self.body
        );
        let e = &self.body["error"];
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(e["details"].is_object(), "details must be an object: {e}");
    }
}

struct Server {
    base: String,
    state: AppState,
    agent: ureq::Agent,
    rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        Server::start_with(extractor())
    }

    fn start_with(extractor: Extractor) -> Server {
        Server::start_configured(extractor, ServeConfig::default())
    }

    /// Serves through `dupify_server::serve`, the binary's own connection handling.
    fn start_configured(extractor: Extractor, config: ServeConfig) -> Server {
        Server::start_in(tempfile::tempdir().expect("tempdir"), extractor, config)
    }

    /// Serves the stores in `dir` (`keys.db`, `catalog.db`), created when missing.
    fn start_in(dir: tempfile::TempDir, extractor: Extractor, config: ServeConfig) -> Server {
        let keys = dupify_keys::KeyStore::open(dir.path().join("keys.db"), b"test pepper")
            .expect("key store");
        let catalog =
            Catalog::open(dir.path().join("catalog.db"), CatalogOptions::default()).expect("cat");
        let state = AppState::new(
            keys,
            extractor,
            catalog,
            config
                .with_max_body_bytes(BODY_LIMIT)
                .with_thumbnails_dir(dir.path().join("thumbnails")),
        )
        .expect("state");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        rt.spawn(serve(listener, state.clone(), std::future::pending()));
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Server {
            base: format!("http://{addr}"),
            state,
            agent,
            rt,
            _dir: dir,
        }
    }

    fn key(&self, spec: KeySpec) -> String {
        self.state
            .keys()
            .create(spec)
            .expect("create key")
            .key
            .expose()
            .to_owned()
    }

    /// An Unlimited-tier key with `scopes` (empty = all).
    fn key_with(&self, env: Environment, scopes: &[Scope]) -> String {
        self.key(
            KeySpec::new("test", env)
                .with_scopes(scopes.iter().copied())
                .with_limits(Limits::tier(Tier::Unlimited)),
        )
    }

    fn read(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Resp {
        let mut r = r.unwrap_or_else(|e| panic!("HTTP exchange failed: {e}"));
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let bytes = r.body_mut().read_to_vec().expect("read body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    fn post(&self, path: &str, key: Option<&str>, body: &Value) -> Resp {
        let mut req = self.agent.post(format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.header("X-API-Key", k);
        }
        Self::read(req.send_json(body))
    }

    fn post_raw(&self, path: &str, key: &str, body: &[u8]) -> Resp {
        Self::read(
            self.agent
                .post(format!("{}{path}", self.base))
                .header("X-API-Key", key)
                .header("Content-Type", "application/json")
                .send(body),
        )
    }

    fn get(&self, path: &str, key: Option<&str>) -> Resp {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.header("X-API-Key", k);
        }
        Self::read(req.call())
    }

    /// GET returning status, content type and the raw body (for non-JSON answers).
    fn get_bytes(&self, path: &str, key: &str) -> (u16, String, Vec<u8>) {
        let mut r = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("X-API-Key", key)
            .call()
            .expect("HTTP exchange");
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        (
            r.status().as_u16(),
            ct,
            r.body_mut().read_to_vec().expect("body"),
        )
    }

    fn delete(&self, path: &str, key: &str) -> Resp {
        Self::read(
            self.agent
                .delete(format!("{}{path}", self.base))
                .header("X-API-Key", key)
                .call(),
        )
    }

    /// Polls a product until its `embedding_status` is `want` (at most 60 s).
    fn wait_for_status(&self, key: &str, id: &str, want: &str) -> Resp {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let r = self.get(&format!("/v1/catalog/products/{id}"), Some(key));
            assert_eq!(r.status, 200, "{}", r.body);
            if r.body["embedding_status"] == want {
                return r;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still {} after 60 s",
                r.body["embedding_status"]
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    fn add_product(&self, key: &str, external_id: &str, image: &[u8], price: f64) -> Resp {
        self.post(
            "/v1/catalog/products",
            Some(key),
            &json!({
                "external_id": external_id, "title": format!("Product {external_id}"),
                "brand": "Acme", "category": "tops", "price": price, "currency": "usd",
                "metadata": {"source": "test"}, "image_base64": b64(image),
            }),
        )
    }
}

fn assert_rate_headers(r: &Resp, limit: u32) {
    assert_eq!(
        r.header("x-ratelimit-limit"),
        Some(limit.to_string().as_str()),
        "{:?}",
        r.headers
    );
    let remaining: u32 = r
        .header("x-ratelimit-remaining")
        .expect("X-RateLimit-Remaining")
        .parse()
        .expect("number");
    assert!(remaining < limit);
    let reset: i64 = r
        .header("x-ratelimit-reset")
        .expect("X-RateLimit-Reset")
        .parse()
        .expect("number");
    assert!(reset > 1_700_000_000);
}

fn norm(v: &[Value]) -> f64 {
    v.iter()
        .map(|x| x.as_f64().expect("number").powi(2))
        .sum::<f64>()
        .sqrt()
}

#[test]
fn single_image_endpoints() {
    let s = Server::start();
    let key = s.key_with(Environment::Live, &[]);
    let img = photo("dress");
    let (w, h) = jpeg_size(&img);
    let body = json!({ "image_base64": b64(&img) });
    let dim = s.state.extractor().embed_dim().expect("dim");

    let r = s.post(
        "/v1/embed",
        Some(&key),
        &json!({ "image_base64": b64(&img), "include_quality": true }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_rate_headers(&r, 1000);
    let emb = r.body["embedding"].as_array().expect("embedding");
    assert_eq!(emb.len(), dim);
    assert_eq!(r.body["dimensions"], json!(dim));
    assert!((norm(emb) - 1.0).abs() < 1e-3);
    assert!(r.body["model"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(
        (r.body["width"].as_u64(), r.body["height"].as_u64()),
        (Some(w as u64), Some(h as u64))
    );
    let q = r.body["quality"]["overall"].as_f64().expect("quality");
    assert!((0.0..=1.0).contains(&q));
    // Bearer works the same.
    let r2 = s
        .agent
        .post(format!("{}/v1/embed", s.base))
        .header("Authorization", &format!("Bearer {key}"))
        .send_json(&body);
    let r2 = Server::read(r2);
    assert_eq!(r2.status, 200);
    assert_eq!(r2.body["embedding"], r.body["embedding"]);

    let r = s.post("/v1/colors", Some(&key), &body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_rate_headers(&r, 1000);
    let colors = r.body["colors"].as_array().expect("colors");
    assert!(!colors.is_empty());
    let total: f64 = colors
        .iter()
        .map(|c| c["share"].as_f64().expect("share"))
        .sum();
    assert!(total > 0.0 && total <= 100.01, "shares sum to {total}");
    for c in colors {
        let hex = c["hex"].as_str().expect("hex");
        assert!(hex.len() == 7 && hex.starts_with('#'), "{hex}");
        assert!(c["name"].as_str().is_some_and(|n| !n.is_empty()));
    }

    let r = s.post(
        "/v1/silhouette",
        Some(&key),
        &json!({ "image_base64": b64(&img), "include_cutout": true }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let e = r.body["embedding"].as_array().expect("shape embedding");
    assert_eq!(r.body["dimensions"].as_u64(), Some(e.len() as u64));
    assert!((norm(e) - 1.0).abs() < 1e-3);
    let bb = &r.body["bbox"];
    assert!(bb["x"].as_u64().unwrap() + bb["width"].as_u64().unwrap() <= w as u64);
    assert!(bb["y"].as_u64().unwrap() + bb["height"].as_u64().unwrap() <= h as u64);
    assert!(r.body["cutout_base64"].is_string());

    let r = s.post("/v1/attributes", Some(&key), &body);
    assert_eq!(r.status, 200, "{}", r.body);
    let attrs = r.body["attributes"].as_array().expect("attributes");
    assert!(!attrs.is_empty());
    for a in attrs {
        let p = a["probability"].as_f64().expect("probability");
        assert!((0.0..=1.0).contains(&p));
        assert!(a["label"].is_string() && a["attribute"].is_string());
    }
    assert!(r.body["category"].is_string());

    let r = s.post("/v1/background-remove", Some(&key), &body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["format"], "png");
    let png = base64::engine::general_purpose::STANDARD
        .decode(r.body["image_base64"].as_str().expect("png"))
        .expect("base64 PNG");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&png[12..16], b"IHDR");
    let pw = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let ph = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((pw, ph), (w, h));
    assert_eq!(
        png[25], 6,
        "colour type 6 = RGBA: the cut-out has transparency"
    );
    // `Accept: image/png`: the same PNG, as the body itself.
    let mut raw = s
        .agent
        .post(format!("{}/v1/background-remove", s.base))
        .header("X-API-Key", &key)
        .header("Accept", "image/png")
        .send_json(&body)
        .expect("POST");
    assert_eq!(raw.status(), 200);
    assert_eq!(
        raw.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("image/png")
    );
    let bytes = raw.body_mut().read_to_vec().expect("png body");
    assert_eq!(bytes, png);

    // The web page is served without a key.
    let mut page = s.agent.get(format!("{}/", s.base)).call().expect("GET /");
    assert_eq!(page.status(), 200);
    let html = page.body_mut().read_to_string().expect("html");
    assert!(html.contains("id=\"swatches\"") && html.contains("/v1/catalog/search"));
}

#[test]
fn batch_runs_each_image_and_reports_per_item_errors() {
    let s = Server::start();
    let key = s.key_with(
        Environment::Live,
        &[Scope::Batch, Scope::Colors, Scope::Embed],
    );
    let r = s.post(
        "/v1/batch",
        Some(&key),
        &json!({
            "images": [
                {"image_base64": b64(&photo("dress")), "id": "a"},
                {"image_base64": "%%% not base64 %%%", "id": "b"},
                {"image_base64": b64(&photo("shoes"))},
                {"id": "d"},
            ],
            "operations": ["embed", "colors"],
        }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_rate_headers(&r, 1000);
    let items = r.body["results"].as_array().expect("results");
    assert_eq!(items.len(), 4);
    assert_eq!(
        (r.body["succeeded"].as_u64(), r.body["failed"].as_u64()),
        (Some(2), Some(2))
    );
    for (i, it) in items.iter().enumerate() {
        assert_eq!(it["index"], json!(i));
    }
    assert_eq!(items[0]["id"], "a");
    assert_eq!(items[0]["ok"], true);
    assert!(items[0]["result"]["embedding"].is_array());
    assert!(items[0]["result"]["colors"]["colors"].is_array());
    assert!(
        items[0]["result"].get("silhouette").is_none(),
        "not requested"
    );
    assert_eq!(items[1]["ok"], false);
    assert_eq!(items[1]["error"]["code"], "invalid_base64");
    assert_eq!(items[2]["ok"], true);
    assert!(items[2].get("id").is_none());
    assert_ne!(
        items[0]["result"]["embedding"],
        items[2]["result"]["embedding"]
    );
    assert_eq!(items[3]["error"]["code"], "missing_parameter");

    // At most 10 images.
    let many: Vec<Value> = (0..11).map(|_| json!({"image_base64": "AAAA"})).collect();
    s.post(
        "/v1/batch",
        Some(&key),
        &json!({"images": many, "operations": ["colors"]}),
    )
    .assert_error(400, "invalid_parameter");
    s.post(
        "/v1/batch",
        Some(&key),
        &json!({"images": [{"image_base64": "AAAA"}]}),
    )
    .assert_error(400, "missing_parameter");
    s.post(
        "/v1/batch",
        Some(&key),
        &json!({"images": [], "operations": ["colors"]}),
    )
    .assert_error(400, "missing_parameter");
    s.post(
        "/v1/batch",
        Some(&key),
        &json!({"images": [{"image_base64": "AAAA"}], "operations": ["teleport"]}),
    )
    .assert_error(400, "invalid_parameter");
}

#[test]
fn catalog_crud_and_search() {
    let s = Server::start();
    let key = s.key_with(Environment::Live, &[Scope::Catalog]);
    let (dress, shoes, hat) = (photo("dress"), photo("shoes"), photo("hat"));

    let a = s.add_product(&key, "sku-a", &dress, 80.0);
    assert_eq!(a.status, 201, "{}", a.body);
    assert_rate_headers(&a, 1000);
    assert_eq!(a.body["external_id"], "sku-a");
    assert_eq!(a.body["currency"], "USD");
    assert_eq!(a.body["environment"], "live");
    assert_eq!(a.body["metadata"]["source"], "test");
    assert!(!a.body["colors"].as_array().expect("colors").is_empty());
    assert!(a.body["attributes"]["attributes"].is_array());
    let a_id = a.body["id"].as_str().expect("id").to_owned();
    let b = s.add_product(&key, "sku-b", &shoes, 30.0);
    assert_eq!(b.status, 201, "{}", b.body);
    let c = s.add_product(&key, "sku-c", &hat, 20.0);
    assert_eq!(c.status, 201, "{}", c.body);
    // Upsert by external_id: same id, 200, new values.
    let a2 = s.add_product(&key, "sku-a", &dress, 60.0);
    assert_eq!(a2.status, 200, "{}", a2.body);
    assert_eq!(a2.body["id"], a_id.as_str());
    assert_eq!(a2.body["price"], 60.0);

    let r = s.get("/v1/catalog/products", Some(&key));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_rate_headers(&r, 1000);
    assert_eq!(r.body["items"].as_array().expect("items").len(), 3);
    assert_eq!(r.body["total"], 3);
    let r = s.get("/v1/catalog/products?limit=2", Some(&key));
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    let cursor = r.body["next_cursor"].as_str().expect("cursor").to_owned();
    let r = s.get(
        &format!("/v1/catalog/products?limit=2&cursor={cursor}"),
        Some(&key),
    );
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    let r = s.get("/v1/catalog/products?max_price=25", Some(&key));
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["external_id"], "sku-c");
    s.get("/v1/catalog/products?limit=abc", Some(&key))
        .assert_error(400, "invalid_parameter");

    let r = s.get(&format!("/v1/catalog/products/{a_id}"), Some(&key));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["title"], "Product sku-a");

    // Search with the very image of A: A first, every channel identical.
    let r = s.post(
        "/v1/catalog/search",
        Some(&key),
        &json!({ "image_base64": b64(&dress), "limit": 3 }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let hits = r.body["results"].as_array().expect("results");
    assert_eq!(hits.len(), 3);
    assert_eq!(hits[0]["product"]["id"], a_id.as_str());
    for ch in ["clip", "shape", "color"] {
        let v = hits[0]["scores"][ch]
            .as_f64()
            .unwrap_or_else(|| panic!("{ch}: {}", hits[0]));
        assert!(v > 0.999, "{ch} = {v}");
    }
    let scores: Vec<f64> = hits.iter().map(|h| h["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    // Filters apply.
    let r = s.post(
        "/v1/catalog/search",
        Some(&key),
        &json!({ "image_base64": b64(&dress), "filter": {"max_price": 25} }),
    );
    let hits = r.body["results"].as_array().unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0]["product"]["external_id"], "sku-c");
    let r = s.post(
        "/v1/catalog/search",
        Some(&key),
        &json!({ "image_base64": b64(&dress), "filter": {"exclude_brands": ["Acme"]} }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["results"], json!([]), "every product is an Acme one");
    let r = s.post(
        "/v1/catalog/search",
        Some(&key),
        &json!({ "image_base64": b64(&dress), "min_score": 0.999 }),
    );
    let hits = r.body["results"].as_array().unwrap();
    assert!(hits.iter().all(|h| h["score"].as_f64().unwrap() >= 0.999));
    assert_eq!(hits[0]["product"]["id"], a_id.as_str());
    // Dupes of A: never A itself.
    let r = s.post(
        "/v1/catalog/search",
        Some(&key),
        &json!({ "product_id": a_id }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let hits = r.body["results"].as_array().unwrap();
    assert_eq!(hits.len(), 2);
    assert!(hits.iter().all(|h| h["product"]["id"] != a_id.as_str()));
    // Text query.
    let r = s.post(
        "/v1/catalog/search",
        Some(&key),
        &json!({ "text": "a red dress" }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["results"].as_array().unwrap().len(), 3);
    // Exactly one query.
    s.post("/v1/catalog/search", Some(&key), &json!({ "limit": 3 }))
        .assert_error(400, "missing_parameter");
    s.post("/v1/catalog/search", Some(&key), &json!({ "text": "  " }))
        .assert_error(400, "missing_parameter");
    s.post(
        "/v1/catalog/search",
        Some(&key),
        &json!({ "text": "x", "product_id": a_id }),
    )
    .assert_error(400, "invalid_parameter");

    let r = s.delete(&format!("/v1/catalog/products/{a_id}"), &key);
    assert_eq!(r.status, 204, "{}", r.body);
    assert_rate_headers(&r, 1000);
    s.get(&format!("/v1/catalog/products/{a_id}"), Some(&key))
        .assert_error(404, "not_found");
    s.delete(&format!("/v1/catalog/products/{a_id}"), &key)
        .assert_error(404, "not_found");
    let r = s.get("/v1/catalog/products", Some(&key));
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    s.post(
        "/v1/catalog/products",
        Some(&key),
        &json!({ "image_base64": b64(&hat) }),
    )
    .assert_error(400, "missing_parameter");
    s.post(
        "/v1/catalog/products",
        Some(&key),
        &json!({ "external_id": "x" }),
    )
    .assert_error(400, "missing_parameter");
}

#[test]
fn authentication_errors() {
    let s = Server::start();
    let img = json!({ "image_base64": b64(&photo("hat")) });
    let r = s.post("/v1/colors", None, &img);
    r.assert_error(401, "missing_api_key");
    assert!(r.header("x-ratelimit-limit").is_none());
    s.post("/v1/colors", Some("fe_live_short"), &img)
        .assert_error(401, "invalid_api_key");
    s.post(
        "/v1/colors",
        Some("sk_live_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef"),
        &img,
    )
    .assert_error(401, "invalid_api_key");
    // Well formed but never issued.
    s.post(
        "/v1/colors",
        Some("fe_live_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef"),
        &img,
    )
    .assert_error(401, "invalid_api_key");
    // Revoked.
    let created = s
        .state
        .keys()
        .create(KeySpec::new("revoked", Environment::Live))
        .expect("key");
    s.state.keys().revoke(created.record.id).expect("revoke");
    s.post("/v1/colors", Some(created.key.expose()), &img)
        .assert_error(401, "invalid_api_key");
    // Expired.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let expired = s.key(KeySpec::new("old", Environment::Live).with_expiry(now - 60));
    let r = s.post("/v1/colors", Some(&expired), &img);
    r.assert_error(401, "expired_api_key");
    assert_eq!(r.body["error"]["details"]["expired_at"], json!(now - 60));
    // Two different keys in one request.
    let k1 = s.key_with(Environment::Live, &[]);
    let k2 = s.key_with(Environment::Live, &[]);
    let r = Server::read(
        s.agent
            .post(format!("{}/v1/colors", s.base))
            .header("X-API-Key", &k1)
            .header("Authorization", &format!("Bearer {k2}"))
            .send_json(&img),
    );
    r.assert_error(401, "invalid_api_key");
    // Catalog GETs are guarded too.
    s.get("/v1/catalog/products", None)
        .assert_error(401, "missing_api_key");
}

#[test]
fn input_errors() {
    let s = Server::start();
    let key = s.key_with(Environment::Live, &[]);
    let r = s.post(
        "/v1/colors",
        Some(&key),
        &json!({ "image_base64": "not base64!!" }),
    );
    r.assert_error(400, "invalid_base64");
    assert_rate_headers(&r, 1000);
    // A TIFF header: a real image format, but not one we accept.
    let tiff = b"II*\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
    s.post(
        "/v1/colors",
        Some(&key),
        &json!({ "image_base64": b64(tiff) }),
    )
    .assert_error(422, "unsupported_format");
    // A truncated JPEG.
    let jpg = photo("hat");
    s.post(
        "/v1/embed",
        Some(&key),
        &json!({ "image_base64": b64(&jpg[..600]) }),
    )
    .assert_error(422, "image_processing_failed");
    s.post("/v1/embed", Some(&key), &json!({}))
        .assert_error(400, "missing_parameter");
    s.post(
        "/v1/embed",
        Some(&key),
        &json!({ "image_base64": b64(&jpg), "image_url": "https://example.com/a.jpg" }),
    )
    .assert_error(400, "invalid_parameter");
    s.post_raw("/v1/embed", &key, b"{not json")
        .assert_error(400, "invalid_parameter");
    s.post_raw("/v1/embed", &key, b"")
        .assert_error(400, "missing_parameter");
    s.post("/v1/embed", Some(&key), &json!({ "image_base64": 42 }))
        .assert_error(400, "invalid_parameter");
    // Body over the limit.
    let big = format!("{{\"image_base64\": \"{}\"}}", "A".repeat(BODY_LIMIT + 10));
    let r = s.post_raw("/v1/embed", &key, big.as_bytes());
    r.assert_error(413, "payload_too_large");
    assert_eq!(r.body["error"]["details"]["limit"], json!(BODY_LIMIT));
    // A key without the route's scope is refused before its body is parsed.
    let embed_only = s.key_with(Environment::Live, &[Scope::Embed]);
    s.post_raw("/v1/colors", &embed_only, b"{not json")
        .assert_error(403, "insufficient_scope");
    // Errors name the request's own fields: `cheaper_by_percent` needs `product_id`.
    let r = s.post(
        "/v1/catalog/search",
        Some(&key),
        &json!({ "image_base64": b64(&jpg), "cheaper_by_percent": 30 }),
    );
    r.assert_error(400, "invalid_parameter");
    assert_eq!(
        r.body["error"]["details"]["parameter"],
        json!("cheaper_by_percent")
    );
    assert!(!r.body.to_string().contains("by_product"), "{}", r.body);
    // Liveness needs no key.
    let r = s.get("/healthz", None);
    assert_eq!((r.status, r.body.clone()), (200, json!({ "status": "ok" })));
    // Unknown route and method, in the envelope.
    s.get("/v1/nope", Some(&key)).assert_error(404, "not_found");
    s.get("/v1/embed", Some(&key))
        .assert_error(405, "method_not_allowed");
}

#[test]
fn blocked_image_urls() {
    let s = Server::start();
    let key = s.key_with(Environment::Live, &[]);
    let own = format!("{}/x.jpg", s.base);
    for url in [
        own.as_str(),
        "http://169.254.169.254/",
        "http://[::1]/a.jpg",
        "http://10.0.0.1/a.jpg",
        "ftp://example.com/a.jpg",
        "file:///etc/passwd",
    ] {
        let r = s.post("/v1/embed", Some(&key), &json!({ "image_url": url }));
        r.assert_error(400, "invalid_image_url");
        assert_rate_headers(&r, 1000);
    }
    // Inside a batch the refusal is per item.
    let r = s.post(
        "/v1/batch",
        Some(&key),
        &json!({
            "images": [{"image_url": "http://169.254.169.254/latest/meta-data/"},
                       {"image_base64": b64(&photo("hat"))}],
            "operations": ["colors"],
        }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["results"][0]["error"]["code"], "invalid_image_url");
    assert_eq!(r.body["results"][1]["ok"], true);
}

/// A URL the policy allows is fetched and processed like the same bytes sent as base64. The
/// image is served by a second loopback server; the extractor here allows loopback (the
/// default policy, used by every other test and by the example binary, refuses it).
#[test]
fn image_url_is_fetched_when_the_policy_allows_it() {
    let mut limits = dupify_core::InputLimits::default();
    limits.url.allow_loopback = true;
    let x = Extractor::builder()
        .model_dir(root().join("weights/test/clip/tiny"))
        .threads(2)
        .limits(limits)
        .build()
        .expect("extractor");
    let s = Server::start_with(x);
    let img = photo("shoes");
    let served = img.clone();
    let files = axum::Router::new().route(
        "/shoe.jpg",
        axum::routing::get(move || {
            let b = served.clone();
            async move { ([("content-type", "image/jpeg")], b) }
        }),
    );
    let listener =
        s.rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
    let addr = listener.local_addr().expect("addr");
    s.rt.spawn(async move { axum::serve(listener, files).await });

    let key = s.key_with(Environment::Live, &[]);
    let by_url = s.post(
        "/v1/colors",
        Some(&key),
        &json!({ "image_url": format!("http://{addr}/shoe.jpg") }),
    );
    assert_eq!(by_url.status, 200, "{}", by_url.body);
    let by_b64 = s.post(
        "/v1/colors",
        Some(&key),
        &json!({ "image_base64": b64(&img) }),
    );
    assert_eq!(by_url.body["colors"], by_b64.body["colors"]);
    s.post(
        "/v1/colors",
        Some(&key),
        &json!({ "image_url": format!("http://{addr}/missing.jpg") }),
    )
    .assert_error(422, "image_fetch_failed");
    // A product uploaded by URL is stored at once and indexed in the background.
    let r = s.post(
        "/v1/catalog/products",
        Some(&key),
        &json!({ "external_id": "u", "image_url": format!("http://{addr}/shoe.jpg") }),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["image_url"], format!("http://{addr}/shoe.jpg"));
    assert_eq!(r.body["embedding_status"], "processing");
    let id = r.body["id"].as_str().expect("id").to_string();
    let ready = s.wait_for_status(&key, &id, "ready");
    assert_eq!(ready.body["dimensions"], by_b64_dims(&s, &key, &img));
    assert_eq!(
        ready.body["colors"][0]["hex"],
        by_b64.body["colors"][0]["hex"]
    );
    // Searchable by its image now.
    let hits = s.post(
        "/v1/catalog/search",
        Some(&key),
        &json!({ "image_base64": b64(&img), "limit": 1 }),
    );
    assert_eq!(hits.body["results"][0]["product"]["id"], id.as_str());

    // A URL that cannot be fetched: stored, then `failed` with the code.
    let r = s.post(
        "/v1/catalog/products",
        Some(&key),
        &json!({ "external_id": "gone", "image_url": format!("http://{addr}/missing.jpg") }),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["id"].as_str().expect("id").to_string();
    let failed = s.wait_for_status(&key, &id, "failed");
    assert_eq!(failed.body["embedding_error"]["code"], "image_fetch_failed");
    // A URL refused before any request is refused at upload.
    s.post(
        "/v1/catalog/products",
        Some(&key),
        &json!({ "external_id": "bad", "image_url": "ftp://example.com/x.jpg" }),
    )
    .assert_error(400, "invalid_image_url");
}

/// The embedding dimension the server reports for an image uploaded directly.
fn by_b64_dims(s: &Server, key: &str, img: &[u8]) -> Value {
    let r = s.post("/v1/embed", Some(key), &json!({ "image_base64": b64(img) }));
    r.body["dimensions"].clone()
}

/// A file server for `bytes` at `/p.jpg` on a loopback port of the server's runtime.
fn serve_file(s: &Server, bytes: Vec<u8>) -> std::net::SocketAddr {
    let files = axum::Router::new().route(
        "/p.jpg",
        axum::routing::get(move || {
            let b = bytes.clone();
            async move { ([("content-type", "image/jpeg")], b) }
        }),
    );
    let listener =
        s.rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
    let addr = listener.local_addr().expect("addr");
    s.rt.spawn(async move { axum::serve(listener, files).await });
    addr
}

#[test]
fn queued_uploads_survive_a_restart() {
    let mut limits = dupify_core::InputLimits::default();
    limits.url.allow_loopback = true;
    let extractor = || {
        Extractor::builder()
            .model_dir(root().join("weights/test/clip/tiny"))
            .threads(2)
            .limits(limits)
            .build()
            .expect("extractor")
    };
    let dir = tempfile::tempdir().expect("tempdir");
    // A process queued a product and stopped before its worker got to it: the job is a row
    // of the catalog database.
    let ns = dupify_core::catalog::Namespace::new("default", Environment::Live).expect("ns");
    // The image is served from the runtime of a second server (its own directory).
    let host = Server::start_with(extractor());
    let addr = serve_file(&host, photo("hat"));
    let queued = {
        let cat =
            Catalog::open(dir.path().join("catalog.db"), CatalogOptions::default()).expect("cat");
        let mut p = dupify_core::catalog::NewProduct::new("resumed");
        p.image_url = Some(format!("http://{addr}/p.jpg"));
        cat.enqueue(&ns, p).expect("enqueue")
    };
    let s = Server::start_in(dir, extractor(), ServeConfig::default());
    let key = s.key_with(Environment::Live, &[]);
    let ready = s.wait_for_status(&key, &queued.id, "ready");
    assert!(
        ready.body["dimensions"].as_u64().is_some_and(|d| d > 0),
        "{}",
        ready.body
    );
    assert!(s.state.catalog().pending_jobs(10).expect("jobs").is_empty());
}

#[test]
fn rate_limit_and_quota() {
    let s = Server::start();
    let rate = s.key(
        KeySpec::new("rate", Environment::Live)
            .with_limits(Limits::custom(2, None).expect("limits")),
    );
    let r1 = s.get("/v1/catalog/products", Some(&rate));
    assert_eq!(r1.status, 200);
    assert_eq!(r1.header("x-ratelimit-remaining"), Some("1"));
    assert!(r1.header("x-monthly-limit").is_none(), "no monthly cap");
    let r2 = s.get("/v1/catalog/products", Some(&rate));
    assert_eq!(r2.status, 200);
    assert_eq!(r2.header("x-ratelimit-remaining"), Some("0"));
    let r3 = s.get("/v1/catalog/products", Some(&rate));
    r3.assert_error(429, "rate_limit_exceeded");
    let retry: u64 = r3
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("secs");
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(r3.header("x-ratelimit-limit"), Some("2"));
    assert_eq!(r3.header("x-ratelimit-remaining"), Some("0"));

    let quota = s.key(
        KeySpec::new("quota", Environment::Live)
            .with_limits(Limits::custom(100, Some(2)).expect("limits")),
    );
    for left in ["1", "0"] {
        let r = s.get("/v1/catalog/products", Some(&quota));
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-monthly-limit"), Some("2"));
        assert_eq!(r.header("x-monthly-remaining"), Some(left));
    }
    let r = s.get("/v1/catalog/products", Some(&quota));
    // The hosted contract: 403 with the usage, the limit and when it resets.
    r.assert_error(403, "quota_exceeded");
    let details = &r.body["error"]["details"];
    assert_eq!(details["current_usage"], json!(2));
    assert!(
        details["resets_at"].as_i64().expect("resets_at") > 0,
        "{details}"
    );
    assert!(
        r.header("retry-after")
            .expect("Retry-After")
            .parse::<u64>()
            .expect("secs")
            > 0
    );
    assert_eq!(r.header("x-monthly-remaining"), Some("0"));
    assert_eq!(r.body["error"]["details"]["limit"], json!(2));
}

/// Every scope against every endpoint: allowed only with the endpoint's scope (batch: `batch`
/// and the scopes of its operations).
#[test]
fn scope_matrix() {
    let s = Server::start();
    let img = b64(&photo("hat"));
    let image = json!({ "image_base64": img });
    let missing_id = "/v1/catalog/products/00000000-0000-4000-8000-000000000000";
    // (endpoint, scope it needs, call)
    type Call<'a> = Box<dyn Fn(&str) -> Resp + 'a>;
    let calls: Vec<(&str, Scope, Call)> = vec![
        (
            "embed",
            Scope::Embed,
            Box::new(|k| s.post("/v1/embed", Some(k), &image)),
        ),
        (
            "colors",
            Scope::Colors,
            Box::new(|k| s.post("/v1/colors", Some(k), &image)),
        ),
        (
            "silhouette",
            Scope::Silhouette,
            Box::new(|k| s.post("/v1/silhouette", Some(k), &image)),
        ),
        (
            "attributes",
            Scope::Attributes,
            Box::new(|k| s.post("/v1/attributes", Some(k), &image)),
        ),
        (
            "background-remove",
            Scope::Silhouette,
            Box::new(|k| s.post("/v1/background-remove", Some(k), &image)),
        ),
        (
            "list",
            Scope::Catalog,
            Box::new(|k| s.get("/v1/catalog/products", Some(k))),
        ),
        (
            "get",
            Scope::Catalog,
            Box::new(|k| s.get(missing_id, Some(k))),
        ),
        (
            "delete",
            Scope::Catalog,
            Box::new(|k| s.delete(missing_id, k)),
        ),
        (
            "search",
            Scope::Catalog,
            Box::new(|k| s.post("/v1/catalog/search", Some(k), &json!({"text": "shirt"}))),
        ),
        (
            "create",
            Scope::Catalog,
            Box::new(|k| {
                s.post(
                    "/v1/catalog/products",
                    Some(k),
                    &json!({"external_id": "m", "image_base64": img}),
                )
            }),
        ),
    ];
    for scope in Scope::ALL {
        let key = s.key_with(Environment::Live, &[scope]);
        for (name, needs, call) in &calls {
            let r = call(&key);
            if *needs == scope {
                assert!(
                    matches!(r.status, 200 | 201 | 204 | 404),
                    "{scope} on {name}: {} {}",
                    r.status,
                    r.body
                );
                assert_ne!(r.code(), "insufficient_scope");
            } else {
                r.assert_error(403, "insufficient_scope");
                assert_eq!(
                    r.body["error"]["details"]["missing_scopes"],
                    json!([needs.as_str()]),
                    "{scope} on {name}"
                );
                assert_rate_headers(&r, 1000);
            }
        }
    }
    // Batch: `batch` plus the scope of every operation inside.
    let batch = |k: &str, ops: &[&str]| {
        s.post(
            "/v1/batch",
            Some(k),
            &json!({"images": [{"image_base64": img}], "operations": ops}),
        )
    };
    let colors_batch = s.key_with(Environment::Live, &[Scope::Batch, Scope::Colors]);
    assert_eq!(batch(&colors_batch, &["colors"]).status, 200);
    let r = batch(&colors_batch, &["colors", "embed"]);
    r.assert_error(403, "insufficient_scope");
    assert_eq!(
        r.body["error"]["details"]["missing_scopes"],
        json!(["embed"])
    );
    let r = batch(&colors_batch, &["background-remove"]);
    assert_eq!(
        r.body["error"]["details"]["missing_scopes"],
        json!(["silhouette"])
    );
    let only_colors = s.key_with(Environment::Live, &[Scope::Colors]);
    let r = batch(&only_colors, &["colors"]);
    r.assert_error(403, "insufficient_scope");
    assert_eq!(
        r.body["error"]["details"]["missing_scopes"],
        json!(["batch"])
    );
    let only_batch = s.key_with(Environment::Live, &[Scope::Batch]);
    let r = batch(&only_batch, &["attributes", "embed"]);
    assert_eq!(
        r.body["error"]["details"]["missing_scopes"],
        json!(["embed", "attributes"])
    );
    // No scopes selected = every scope.
    let all = s.key_with(Environment::Live, &[]);
    assert_eq!(
        batch(
            &all,
            &[
                "embed",
                "colors",
                "silhouette",
                "attributes",
                "background-remove",
                "quality"
            ]
        )
        .status,
        200
    );
}

#[test]
fn test_keys_never_touch_live_data() {
    let s = Server::start();
    let live = s.key_with(Environment::Live, &[]);
    let test = s.key_with(Environment::Test, &[]);
    let dress = photo("dress");
    let l = s.add_product(&live, "shared-sku", &dress, 50.0);
    assert_eq!(l.status, 201, "{}", l.body);
    let l_id = l.body["id"].as_str().unwrap().to_owned();

    // The test key sees nothing of it.
    s.get(&format!("/v1/catalog/products/{l_id}"), Some(&test))
        .assert_error(404, "not_found");
    let r = s.get("/v1/catalog/products", Some(&test));
    assert_eq!(r.status, 200);
    assert_eq!(r.body["items"], json!([]));
    let r = s.post(
        "/v1/catalog/search",
        Some(&test),
        &json!({"image_base64": b64(&dress)}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["results"], json!([]));
    s.post(
        "/v1/catalog/search",
        Some(&test),
        &json!({"product_id": l_id}),
    )
    .assert_error(404, "not_found");
    s.delete(&format!("/v1/catalog/products/{l_id}"), &test)
        .assert_error(404, "not_found");

    // The same external id in test is a different product; live is unchanged.
    let t = s.add_product(&test, "shared-sku", &dress, 1.0);
    assert_eq!(t.status, 201, "{}", t.body);
    assert_eq!(t.body["environment"], "test");
    let t_id = t.body["id"].as_str().unwrap().to_owned();
    assert_ne!(t_id, l_id);
    let r = s.get(&format!("/v1/catalog/products/{l_id}"), Some(&live));
    assert_eq!(r.status, 200);
    assert_eq!(r.body["price"], 50.0);
    s.get(&format!("/v1/catalog/products/{t_id}"), Some(&live))
        .assert_error(404, "not_found");
    let r = s.get("/v1/catalog/products", Some(&live));
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], l_id.as_str());
}

/// Products uploaded as bytes get a 256-px JPEG thumbnail for the web page, readable only
/// with a key of the product's environment, and gone with the product.
#[test]
fn product_thumbnails() {
    let srv = Server::start();
    let live = srv.key_with(Environment::Live, &[]);
    let test = srv.key_with(Environment::Test, &[]);
    let r = srv.add_product(&live, "thumb-1", &photo("dress"), 10.0);
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    let path = format!("/v1/catalog/products/{id}/thumbnail");
    let (status, ct, body) = srv.get_bytes(&path, &live);
    assert_eq!((status, ct.as_str()), (200, "image/jpeg"));
    let (w, h) = jpeg_size(&body);
    assert_eq!(w.max(h), 256, "{w}x{h}");
    // Another environment's key does not see it.
    let (status, _, _) = srv.get_bytes(&path, &test);
    assert_eq!(status, 404);
    // An id that is not a product id is refused before any file is touched.
    let (status, _, _) = srv.get_bytes("/v1/catalog/products/..%2Fkeys.db/thumbnail", &live);
    assert!(status == 404 || status == 400, "{status}");
    assert_eq!(
        srv.delete(&format!("/v1/catalog/products/{id}"), &live)
            .status,
        204
    );
    let (status, _, _) = srv.get_bytes(&path, &live);
    assert_eq!(status, 404);
}

/// A key made with the CLI's convention (`dupify keys --db <data-dir>/keys.db`, pepper file
/// `keys.db.pepper` holding hex and a newline) verifies on a server sharing the data
/// directory; a pepper file that is not hex stops the server with a clear error instead of
/// making every key fail.
#[test]
fn keys_made_by_the_cli_verify_on_a_server_sharing_the_data_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("keys.db");
    let pepper = dupify_keys::Pepper::generate().expect("pepper");
    pepper
        .write_new_file(dupify_keys::Pepper::default_path(&db))
        .expect("write pepper");
    // The CLI's side: the same resolver, an explicit-file-free lookup next to the database.
    let (cli_pepper, _) = dupify_keys::Pepper::resolve(None, &db, false).expect("resolve");
    let created = {
        let cli = dupify_keys::KeyStore::open(&db, cli_pepper.as_bytes()).expect("cli store");
        cli.create(KeySpec::new("from the CLI", Environment::Live))
            .expect("create")
    };
    let server = dupify_server::open_key_store(dir.path()).expect("server store");
    let header = format!("Bearer {}", created.key.expose());
    let who = server
        .authenticate([("authorization", header.as_str())])
        .expect("the CLI's key verifies on the server");
    assert_eq!(who.environment(), Environment::Live);

    let bad = tempfile::tempdir().expect("tempdir");
    std::fs::write(bad.path().join("keys.db.pepper"), "not hex\n").expect("write");
    let err = dupify_server::open_key_store(bad.path())
        .err()
        .expect("a bad pepper file is refused");
    assert!(err.to_string().contains("keys.db.pepper"), "{err}");
    assert_eq!(err.code(), "internal_error");
}

/// Reads from `s` until the server closes the connection (or 10 s pass); returns what came.
fn read_until_closed(s: &mut std::net::TcpStream) -> Vec<u8> {
    use std::io::Read;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return out,
            Err(e) => panic!("the server kept the connection open: {e}"),
        }
    }
}

/// Hostile clients cannot hold the server: a slowloris client (headers never finished), an
/// idle kept-alive connection and a trickled body are each cut off by their timeout, and
/// connections over the cap are closed at accept, while the server keeps answering.
#[test]
fn slow_idle_and_excess_connections_are_closed() {
    use std::io::Write;
    use std::net::TcpStream;
    use std::time::Duration;
    let s = Server::start_configured(
        extractor(),
        ServeConfig::default()
            .with_header_read_timeout(Duration::from_secs(1))
            .with_body_timeout(Duration::from_secs(1))
            .with_max_connections(4),
    );
    let addr = s.base.trim_start_matches("http://").to_string();
    let connect = || TcpStream::connect(&addr).expect("connect");

    // Slowloris: half a request, then silence.
    let mut slow = connect();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    assert!(read_until_closed(&mut slow).is_empty());

    // Keep-alive: one request answered, then the idle connection is closed.
    let mut idle = connect();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let answer = String::from_utf8_lossy(&read_until_closed(&mut idle)).to_string();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // A body announced and never finished: 408 `request_timeout`, connection closed.
    let key = s.key_with(Environment::Live, &[]);
    let mut trickle = connect();
    write!(
        trickle,
        "POST /v1/colors HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"image"
    )
    .expect("write");
    let answer = String::from_utf8_lossy(&read_until_closed(&mut trickle)).to_string();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");

    // The cap, on a server whose timeouts are long enough that nothing else closes a
    // connection meanwhile.
    let capped = Server::start_configured(
        extractor(),
        ServeConfig::default()
            .with_header_read_timeout(Duration::from_secs(60))
            .with_max_connections(4),
    );
    let addr = capped.base.trim_start_matches("http://").to_string();
    let connect = || TcpStream::connect(&addr).expect("connect");
    // Four half-open connections fill it; each new client takes the place of the oldest,
    // which is closed: a flood of half-open sockets never keeps a real request out.
    let mut half_open: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut c = connect();
            c.write_all(b"GET /healthz HTTP/1.1\r\n").expect("write");
            std::thread::sleep(Duration::from_millis(50));
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    for round in 0..3 {
        let mut client = connect();
        client
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .expect("write");
        let answer = String::from_utf8_lossy(&read_until_closed(&mut client)).to_string();
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "round {round}: {answer:?}"
        );
        // The oldest half-open connection went (closed without an answer).
        let mut oldest = half_open.remove(0);
        assert!(read_until_closed(&mut oldest).is_empty());
        // Another half-open one fills the cap again for the next round.
        let mut c = connect();
        c.write_all(b"GET /healthz HTTP/1.1\r\n").expect("write");
        half_open.push(c);
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(half_open);
    // Four connections that each sent a request and are kept alive hold the cap: a fifth
    // is closed at once, unanswered (nothing may be evicted).
    let mut kept: Vec<TcpStream> = Vec::new();
    for _ in 0..100 {
        if kept.len() == 4 {
            break;
        }
        let mut c = connect();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("write");
        c.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut buf = [0u8; 512];
        match std::io::Read::read(&mut c, &mut buf) {
            Ok(n) if n > 0 && buf.starts_with(b"HTTP/1.1 200") => kept.push(c),
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    assert_eq!(kept.len(), 4, "four kept-alive connections");
    let mut fifth = connect();
    let _ = fifth.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        read_until_closed(&mut fifth).is_empty(),
        "a fifth connection was served while four busy ones held the cap"
    );
    drop(kept);
    let mut served = false;
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(50));
        if capped.get("/healthz", None).status == 200 {
            served = true;
            break;
        }
    }
    assert!(
        served,
        "the server did not answer once the held connections closed"
    );
}

/// An `image_url` whose host accepts and never answers occupies only its own fetch slots:
/// with one key's fetches hanging, that key's next fetch is refused at once (429,
/// `Retry-After`), and another key's requests are answered while the hanging ones are still
/// in flight; the hanging ones end with `image_fetch_failed` at the fetch deadline.
#[test]
fn hanging_image_urls_never_starve_other_callers() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;
    let mut limits = dupify_core::InputLimits::default();
    limits.url.allow_loopback = true;
    let x = Extractor::builder()
        .model_dir(root().join("weights/test/clip/tiny"))
        .threads(2)
        .limits(limits)
        .build()
        .expect("extractor");
    let s = Arc::new(Server::start_configured(
        x,
        ServeConfig::default()
            .with_max_fetches_per_key(2)
            .with_fetch_timeout(Duration::from_secs(3)),
    ));
    // A host that accepts connections and never says a word.
    let tarpit = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/x.jpg", tarpit.local_addr().expect("addr"));
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in tarpit.incoming() {
            held.push(c);
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let slow_key = s.key_with(Environment::Live, &[]);
    let other_key = s.key_with(Environment::Live, &[]);
    let done = Arc::new(AtomicBool::new(false));
    let hanging: Vec<_> = (0..2)
        .map(|_| {
            let (s, key, url, done) = (s.clone(), slow_key.clone(), url.clone(), done.clone());
            std::thread::spawn(move || {
                let r = s.post("/v1/colors", Some(&key), &json!({ "image_url": url }));
                done.store(true, Ordering::SeqCst);
                r
            })
        })
        .collect();
    // Both fetches are in flight (connected to the tarpit); a third for this key is refused.
    for _ in 0..500 {
        if accepted.load(Ordering::SeqCst) >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        2,
        "both fetches reached the host"
    );
    let refused = s.post("/v1/colors", Some(&slow_key), &json!({ "image_url": url }));
    refused.assert_error(429, "rate_limit_exceeded");
    assert_eq!(refused.header("retry-after"), Some("1"));
    // Another key is answered while the two hang.
    let r = s.post(
        "/v1/colors",
        Some(&other_key),
        &json!({ "image_base64": b64(&photo("hat")) }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        !done.load(Ordering::SeqCst),
        "the hanging fetches ended before the other key was served"
    );
    for h in hanging {
        h.join()
            .expect("thread")
            .assert_error(422, "image_fetch_failed");
    }
}

/// `POST /v1/catalog/products {"products": [...]}`: a result per item, a bad item does not
/// stop the others, an item repeating an external id replaces it, and more than the maximum
/// is refused before any work.
#[test]
fn batch_product_upload() {
    let s = Server::start_configured(
        extractor(),
        ServeConfig::default().with_max_batch_products(3),
    );
    let key = s.key_with(Environment::Test, &[]);
    let hat = b64(&photo("hat"));
    let shoes = b64(&photo("shoes"));
    let r = s.post(
        "/v1/catalog/products",
        Some(&key),
        &json!({ "products": [
            { "external_id": "hat-1", "title": "Hat", "image_base64": hat },
            { "external_id": "bad", "image_base64": "not base64!!" },
            { "external_id": "shoe-1", "price": 30.0, "image_base64": shoes },
        ]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.body["succeeded"].clone(), r.body["failed"].clone()),
        (json!(2), json!(1))
    );
    let results = r.body["results"].as_array().expect("results");
    assert_eq!(results[0]["product"]["external_id"], "hat-1");
    assert_eq!(results[0]["created"], true);
    assert_eq!(results[1]["ok"], false);
    assert_eq!(results[1]["error"]["code"], "invalid_base64");
    assert_eq!(results[2]["product"]["price"], json!(30.0));
    // The stored products are listed; a repeated external id replaces, not duplicates.
    let r = s.post(
        "/v1/catalog/products",
        Some(&key),
        &json!({ "products": [{ "external_id": "hat-1", "title": "Hat v2", "image_base64": hat }] }),
    );
    assert_eq!(r.body["results"][0]["created"], false, "{}", r.body);
    let listed = s.get("/v1/catalog/products", Some(&key));
    assert_eq!(listed.body["total"], json!(2), "{}", listed.body);
    // Over the maximum: refused whole, nothing stored.
    let four: Vec<Value> = (0..4)
        .map(|i| json!({ "external_id": format!("x{i}"), "image_base64": hat }))
        .collect();
    let r = s.post(
        "/v1/catalog/products",
        Some(&key),
        &json!({ "products": four }),
    );
    r.assert_error(400, "invalid_parameter");
    assert_eq!(r.body["error"]["details"]["max"], json!(3));
    let listed = s.get("/v1/catalog/products", Some(&key));
    assert_eq!(listed.body["total"], json!(2));
}

/// Requests refused by validation before any work do not consume the monthly quota.
#[test]
fn refused_requests_do_not_consume_the_quota() {
    let s = Server::start();
    let key = s.key(
        KeySpec::new("quota", Environment::Live)
            .with_limits(Limits::custom(100, Some(2)).expect("limits")),
    );
    for body in [
        &b"{not json"[..],
        b"{}",
        b"{\"image_base64\": \"not base64!!\"}",
    ] {
        let r = s.post_raw("/v1/colors", &key, body);
        assert_eq!(r.status, 400, "{}", r.body);
    }
    for _ in 0..2 {
        let r = s.get("/v1/catalog/products", Some(&key));
        assert_eq!(r.status, 200, "{}", r.body);
    }
    s.get("/v1/catalog/products", Some(&key))
        .assert_error(403, "quota_exceeded");
}

#[test]
fn openapi_document_covers_every_route_and_the_error_table() {
    let s = Server::start();
    let doc = s.get("/v1/openapi.json", None);
    assert_eq!(doc.status, 200);
    let d = &doc.body;
    assert!(
        d["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")),
        "{}",
        d["openapi"]
    );
    // Every route the router serves, with its methods.
    let expected = [
        ("/v1/embed", "post"),
        ("/v1/colors", "post"),
        ("/v1/silhouette", "post"),
        ("/v1/attributes", "post"),
        ("/v1/background-remove", "post"),
        ("/v1/batch", "post"),
        ("/v1/catalog/products", "post"),
        ("/v1/catalog/products", "get"),
        ("/v1/catalog/products/{id}", "get"),
        ("/v1/catalog/products/{id}", "delete"),
        ("/v1/catalog/products/{id}/thumbnail", "get"),
        ("/v1/catalog/search", "post"),
        ("/healthz", "get"),
    ];
    let paths = d["paths"].as_object().expect("paths");
    let listed: usize = paths
        .values()
        .map(|p| p.as_object().map_or(0, |o| o.len()))
        .sum();
    assert_eq!(
        listed,
        expected.len(),
        "{:?}",
        paths.keys().collect::<Vec<_>>()
    );
    for (path, method) in expected {
        let op = &d["paths"][path][method];
        assert!(op.is_object(), "{method} {path} missing");
        if path.starts_with("/v1/") {
            assert_eq!(op["security"].as_array().map(Vec::len), Some(2), "{path}");
            // Every status of the error table an operation can answer, with the envelope.
            for status in [
                "400", "401", "403", "404", "408", "413", "422", "429", "500",
            ] {
                let r = &op["responses"][status];
                assert_eq!(
                    r["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorEnvelope",
                    "{method} {path} {status}"
                );
                assert!(r["headers"]["X-RateLimit-Remaining"].is_object());
            }
            assert!(op["responses"]["429"]["headers"]["Retry-After"].is_object());
        }
    }
    // The envelope's codes are exactly the table's.
    let mut codes: Vec<&str> = d["components"]["schemas"]["ErrorBody"]["properties"]["code"]
        ["enum"]
        .as_array()
        .expect("code enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut table: Vec<&str> = dupify_core::ERROR_CODES.iter().map(|c| c.code).collect();
    codes.sort_unstable();
    table.sort_unstable();
    assert_eq!(codes, table);
    let schemes = &d["components"]["securitySchemes"];
    assert_eq!(schemes["api_key"]["name"], "X-API-Key");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    // The body schemas come from the handlers' types.
    assert!(d["components"]["schemas"]["EmbedResponse"]["properties"]["embedding"].is_object());
    assert!(d["components"]["schemas"]["ColorFamily"]["enum"]
        .as_array()
        .is_some_and(|f| f.iter().any(|v| v == "navy")));
}
