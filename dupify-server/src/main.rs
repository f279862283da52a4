//! The hosted Dupify v1 HTTP API and its web page, served by the library on a loopback port.
//!
//! ```text
//! $ cargo run -p dupify-server -- --port 0 --data-dir /tmp/serve_demo
//! dupify-server: model weights/real/efficientnet-lite2
//! dupify-server: efficientnet-lite2-260px-1280d@099425539bba (efficientnet_lite, 1280-d, image-only: no text search)
//! dupify-server: data in /tmp/serve_demo (keys: keys.db, catalog: catalog.db)
//! listening: http://127.0.0.1:37779
//! live key: fe_live_w5zD…(32 characters in all)
//! test key: fe_test_Q06G…
//! web page: http://127.0.0.1:37779/#key=fe_live_w5zD…
//! ```
//! (Keys shortened here. They are printed once, when the key store is new or with
//! `--new-key`.)
//!
//! Then, for example:
//! ```text
//! $ curl -s -i -X POST http://127.0.0.1:43467/v1/colors -H "X-API-Key: $KEY" \
//!     -H 'Content-Type: application/json' \
//!     -d "{\"image_base64\": \"$(base64 -w0 hat.jpg)\"}"
//! HTTP/1.1 200 OK
//! content-type: application/json
//! x-ratelimit-limit: 1000
//! x-ratelimit-remaining: 999
//! x-ratelimit-reset: 1795755585
//!
//! {"background":[{"family":"white","hex":"#f1eff0", … "colors":[ … ], …}
//! $ curl -s -X POST http://127.0.0.1:43467/v1/embed -d '{}'
//! {"error":{"code":"missing_api_key","details":{},"message":"no API key: send it in …"}}
//! ```
//!
//! With the cargo feature `postgres`, `--catalog-url postgres://…` (or `DUPIFY_CATALOG_URL`)
//! and `--keys-url postgres://…` (or `DUPIFY_KEYS_URL`, with the pepper in `DUPIFY_PEPPER`)
//! keep the catalog and the keys in PostgreSQL, so several servers can share them (the
//! thumbnails of uploads stay in each server's data directory).
//!
//! Keys live in `<data-dir>/keys.db`, hashed with a pepper read from `DUPIFY_PEPPER` or, when
//! unset, from `<data-dir>/keys.db.pepper` (hex of 32 random bytes, created with the database,
//! mode 0600): the same convention as `dupify keys --db <data-dir>/keys.db`, so keys made with
//! the CLI work here. The first
//! keys are Unlimited-tier keys with every scope: one live, one test. `--port 0` picks a free
//! port (the printed URL has it). The page takes the key from the URL fragment, which browsers
//! never send to the server.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use dupify_core::catalog::{redact_url, Catalog, CatalogOptions};
use dupify_core::{Device, Extractor};
use dupify_keys::{Environment, KeySpec, Limits, Tier};
use dupify_server::{open_key_store, serve, shutdown_signal, AppState, ServeConfig};

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "Serve the hosted Dupify v1 API and its web page")]
struct Args {
    /// Address to bind (loopback by default: the demo is not hardened for the open internet).
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    host: IpAddr,
    /// Port; 0 picks a free one.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Directory for keys.db, catalog.db and the pepper. Default: target/serve of the
    /// checkout the binary was built from, or ./dupify-data for an installed binary.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Model directory (CLIP or EfficientNet-Lite). Default: a real CLIP in weights/real/ when
    /// present, else the pretrained EfficientNet-Lite2 that scripts/setup.sh installs.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Device for model work: auto, cpu, cuda, cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Create and print a new live and test key even when the key store has keys.
    #[arg(long)]
    new_key: bool,
    /// Keep the catalog in PostgreSQL instead of `<data-dir>/catalog.db`: a `postgres://` URL
    /// (needs the cargo feature `postgres`). Several servers may share it.
    #[arg(
        long,
        env = "DUPIFY_CATALOG_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    catalog_url: Option<String>,
    /// Keep the API keys in PostgreSQL instead of `<data-dir>/keys.db`: a `postgres://` URL
    /// (needs the cargo feature `postgres`); the pepper must then come from DUPIFY_PEPPER.
    #[arg(
        long,
        env = "DUPIFY_KEYS_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    keys_url: Option<String>,
}

/// The key store at `url` (PostgreSQL), with the pepper from `DUPIFY_PEPPER`: a database
/// server has no folder for a pepper file, and none is generated, since the database may
/// already hold keys made under another pepper.
fn open_key_store_url(url: &str) -> anyhow::Result<dupify_keys::KeyStore> {
    let shown = redact_url(url);
    if std::env::var_os(dupify_keys::PEPPER_ENV).is_none() {
        anyhow::bail!(
            "--keys-url {shown}: set {} to the key pepper (every server sharing the key \
             database must use the same one)",
            dupify_keys::PEPPER_ENV
        );
    }
    let (pepper, _) = dupify_keys::Pepper::resolve(None, std::path::Path::new(url), false)?;
    dupify_keys::KeyStore::open(url, pepper.as_bytes())
        .with_context(|| format!("opening the key store {shown}"))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let model =
        dupify_core::resolve_model_dir(args.model.as_deref(), &[PathBuf::new(), root.clone()])
            .context("--model")?;
    println!("dupify-server: model {}", model.dir.display());
    if model.seeded {
        eprintln!(
            "dupify-server: warning: {} is a seeded RANDOM-weight test model: its embeddings, \
             text search and attributes are NOT semantic",
            model.dir.display()
        );
    }
    // A binary built from a checkout keeps the demo's data under its target/; an installed one
    // (`cargo install`, whose source tree is a registry cache) never writes there.
    let data_dir = args.data_dir.unwrap_or_else(|| {
        if root.join("dupify-core").join("Cargo.toml").is_file() {
            root.join("target/serve")
        } else {
            PathBuf::from("dupify-data")
        }
    });
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;

    let keys = match &args.keys_url {
        Some(url) => open_key_store_url(url)?,
        None => open_key_store(&data_dir)?,
    };
    let device: Device = args.device.parse()?;
    let extractor = Extractor::builder()
        .model_dir(&model.dir)
        .device(device)
        .build()?;
    let info = extractor.model_info().context("loading the model")?;
    println!(
        "dupify-server: {} ({}, {}-d{})",
        info.name,
        info.architecture.as_str(),
        info.dimensions,
        if info.has_text_tower {
            ", text search"
        } else {
            ", image-only: no text search"
        }
    );
    if let Err(e) = extractor.warm_up() {
        eprintln!("dupify-server: attributes unavailable ({e}); the other operations work");
    }
    let catalog = match &args.catalog_url {
        Some(url) => Catalog::open(url, CatalogOptions::default())
            .with_context(|| format!("opening the catalog {}", redact_url(url)))?,
        None => Catalog::open(data_dir.join("catalog.db"), CatalogOptions::default())?,
    };
    println!(
        "dupify-server: data in {} (keys: {}, catalog: {})",
        data_dir.display(),
        args.keys_url
            .as_deref()
            .map_or_else(|| "keys.db".to_string(), redact_url),
        args.catalog_url
            .as_deref()
            .map_or_else(|| "catalog.db".to_string(), redact_url),
    );

    let first = if args.new_key || keys.list()?.is_empty() {
        let live = keys.create(
            KeySpec::new("First live key", Environment::Live)
                .with_limits(Limits::tier(Tier::Unlimited)),
        )?;
        let test = keys.create(
            KeySpec::new("First test key", Environment::Test)
                .with_limits(Limits::tier(Tier::Unlimited)),
        )?;
        Some((live, test))
    } else {
        None
    };
    let config = ServeConfig::default().with_thumbnails_dir(data_dir.join("thumbnails"));
    let state = AppState::new(keys, extractor, catalog, config)?;

    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.host, args.port))
            .await
            .with_context(|| format!("binding {}:{}", args.host, args.port))?;
        let addr = listener.local_addr()?;
        let url = format!("http://{addr}");
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening: {url}")?;
        match &first {
            Some((live, test)) => {
                writeln!(out, "live key: {}", live.key.expose())?;
                writeln!(out, "test key: {}", test.key.expose())?;
                writeln!(out, "web page: {url}/#key={}", live.key.expose())?;
            }
            None => writeln!(
                out,
                "web page: {url}/ (keys exist already; pass --new-key to print a new one)"
            )?,
        }
        out.flush()?;
        drop(out);
        // On SIGINT or SIGTERM: stop accepting, let the requests in flight finish, then
        // write the buffered usage counters, hand back unspent quota reservations and save the
        // catalog's graphs before exiting.
        let kept = state.clone();
        serve(listener, state, shutdown_signal()).await?;
        kept.keys().shutdown().context("flushing key usage")?;
        kept.catalog().flush().context("saving the catalog index")?;
        Ok::<_, anyhow::Error>(())
    })?;
    // Best effort: stdout may be a closed pipe by now (a supervisor that stopped reading).
    let _ = writeln!(std::io::stdout(), "dupify-server: stopped");
    Ok(())
}
