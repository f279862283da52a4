//! The hosted Dupify v1 HTTP API as a library: an axum [`Router`] a host can mount or
//! [`serve`], plus the `dupify-server` binary (`src/main.rs`) that runs it with a web page.
//!
//! An [axum] router over one [`dupify_keys::KeyStore`], one [`dupify_core::Extractor`] and one
//! [`dupify_core::catalog::Catalog`]:
//!
//! | route | scope | body / answer |
//! |---|---|---|
//! | `POST /v1/embed` | `embed` | image → `embedding`, `dimensions`, `model` (+ `quality` when asked) |
//! | `POST /v1/colors` | `colors` | image → dominant colours with shares, hex, Lab, names |
//! | `POST /v1/silhouette` | `silhouette` | image → bbox, area, shape `embedding` (+ cut-out when asked) |
//! | `POST /v1/attributes` | `attributes` | image → attributes with probabilities |
//! | `POST /v1/background-remove` | `silhouette` | image → transparent PNG (base64) |
//! | `POST /v1/batch` | `batch` + each operation's | `images` (≤ 10) × `operations` → per-item results |
//! | `POST /v1/catalog/products` | `catalog` | product + image → stored product (201, or 200 on upsert; 202 `processing` for an `image_url`, indexed in the background); `{"products": [...]}` → a result per item |
//! | `GET /v1/catalog/products` | `catalog` | `?limit&cursor&category&brand&min_price&max_price&currency` |
//! | `GET`/`DELETE /v1/catalog/products/{id}` | `catalog` | one product / 204 |
//! | `POST /v1/catalog/search` | `catalog` | image, `text`, `product_id` or `embedding` → dupes with per-channel scores |
//! | `GET /` | none | the demo web page |
//! | `GET /healthz` | none | `{"status": "ok"}` while the process serves HTTP |
//! | `GET /v1/openapi.json` | none | the OpenAPI 3.1 document of all of the above |
//!
//! An image is `image_base64` (standard or URL-safe, `data:` URLs accepted) or `image_url`
//! (fetched by `dupify-core`'s `url-fetch` feature, which refuses private, loopback and
//! link-local addresses after DNS resolution and on every redirect).
//!
//! **Request flow** (every `/v1` route): the key is taken from `X-API-Key` or
//! `Authorization: Bearer` and verified (401), the per-minute rate limit and monthly quota are
//! applied (429 with `Retry-After`), the body is read up to [`ServeConfig::max_body_bytes`]
//! (413), parsed, the scopes the request needs are checked (403), then the work runs on
//! tokio's blocking pool (`spawn_blocking`): model and CPU work never stall the async workers.
//! Every response to an authenticated caller carries `X-RateLimit-Limit/Remaining/Reset` (and
//! `X-Monthly-Limit/Remaining` for keys with a monthly quota). Errors use the hosted envelope
//! `{"error": {"code", "message", "details"}}` ([`ApiError`]).
//!
//! **Test/live isolation**: the catalog namespace is `(account, key environment)`, so an
//! `fe_test_` key reads and writes only test products and never sees a live one (a live
//! product id asked for with a test key is `not_found`).

mod error;
mod handlers;
mod openapi;
mod types;
mod worker;

use std::sync::Arc;

use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use dupify_core::catalog::{Catalog, Namespace};
use dupify_core::ErrorCode;
use dupify_core::{Extractor, ImageInput};
use dupify_keys::{Environment, KeyStore, Operation, Principal, RateHeaders};

pub use error::{put_rate_headers, ApiError};
pub use types::{BatchOperation, EmbeddingError, EmbeddingState, ProductView};

/// Opens (or creates) the key store of a data directory: `<data_dir>/keys.db`, with the
/// pepper from `DUPIFY_PEPPER` or `<data_dir>/keys.db.pepper` (generated with a new database),
/// the one convention ([`dupify_keys::Pepper::resolve`]) the `dupify keys` CLI follows too.
pub fn open_key_store(data_dir: &std::path::Path) -> Result<KeyStore, dupify_keys::Error> {
    let db = data_dir.join("keys.db");
    let (pepper, source) = dupify_keys::Pepper::resolve(None, &db, true)?;
    if let dupify_keys::PepperSource::Generated(path) = source {
        eprintln!(
            "dupify-server: generated a new key pepper in {}: keep it secret and keep it with \
             keys.db",
            path.display()
        );
    }
    KeyStore::open(db, pepper.as_bytes())
}

/// The web page, compiled in so the binary serves it from anywhere.
const INDEX_HTML: &str = include_str!("../web/index.html");

/// Server settings, with documented defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServeConfig {
    /// Largest request body in bytes. Default 48 MiB: ten base64 images of a few MB each
    /// (base64 adds a third); single images are also bounded by the extractor's byte limit.
    pub max_body_bytes: usize,
    /// Most images in one `/v1/batch` call. Default 10, as in the hosted API.
    pub max_batch_images: usize,
    /// Most products in one `POST /v1/catalog/products {"products": [...]}`. Default 100.
    pub max_batch_products: usize,
    /// The account whose catalog this server serves (one account per server). Default
    /// `"default"`.
    pub account: String,
    /// Where product thumbnails (256-px JPEGs made from uploaded images, named by product id)
    /// are kept for the web page; `None` (default) stores none.
    pub thumbnails_dir: Option<std::path::PathBuf>,
    /// How long a client may take to send a request's headers, and how long a kept-alive
    /// connection may sit idle before its next request (hyper starts the same timer for
    /// both). Default 10 s: a slowloris client or an idle socket is closed after it.
    pub header_read_timeout: std::time::Duration,
    /// How long a client may take to send a whole request body. Default 60 s; after it the
    /// request is answered `request_timeout` (408) and the connection closed.
    pub body_timeout: std::time::Duration,
    /// Connections served at once. Default 1024: further connections are closed at accept,
    /// so file descriptors and memory stay bounded whatever clients do.
    pub max_connections: usize,
    /// On shutdown, how long requests in flight get to finish. Default 30 s.
    pub shutdown_grace: std::time::Duration,
    /// `image_url` fetches in flight at once, for all callers. Default 64. Fetches run on
    /// threads of their own, never on the extractor's CPU threads, and the image work starts
    /// only once the bytes are in, so a host that never answers slows nobody else.
    pub max_fetches: usize,
    /// `image_url` fetches in flight at once for one key. Default 4; over it (or over
    /// `max_fetches`) a request is answered 429 `rate_limit_exceeded` with `Retry-After: 1`.
    pub max_fetches_per_key: usize,
    /// Deadline of one whole `image_url` fetch (connect, redirects, body). Default 8 s (the
    /// extractor's URL policy may set a shorter one).
    pub fetch_timeout: std::time::Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            max_body_bytes: 48 << 20,
            max_batch_images: 10,
            max_batch_products: 100,
            account: "default".into(),
            thumbnails_dir: None,
            header_read_timeout: std::time::Duration::from_secs(10),
            body_timeout: std::time::Duration::from_secs(60),
            max_connections: 1024,
            shutdown_grace: std::time::Duration::from_secs(30),
            max_fetches: 64,
            max_fetches_per_key: 4,
            fetch_timeout: std::time::Duration::from_secs(8),
        }
    }
}

impl ServeConfig {
    /// Sets the account whose catalog the server serves.
    pub fn with_account(mut self, account: impl Into<String>) -> Self {
        self.account = account.into();
        self
    }
    /// Keeps product thumbnails in `dir`.
    pub fn with_thumbnails_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.thumbnails_dir = Some(dir.into());
        self
    }
}

/// Everything a request handler needs; cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    keys: KeyStore,
    extractor: Extractor,
    catalog: Catalog,
    config: ServeConfig,
    /// Slots for `image_url` fetches: all callers, and per key id.
    fetches: Arc<tokio::sync::Semaphore>,
    key_fetches: std::sync::Mutex<std::collections::HashMap<i64, Arc<tokio::sync::Semaphore>>>,
    /// Wakes the catalog queue's worker when a product is queued.
    queue_wake: tokio::sync::Notify,
}

impl AppState {
    /// Bundles the stores and the extractor. Refuses a zero body limit, a batch limit outside
    /// 1..=1000 or an empty/oversized account id.
    pub fn new(
        keys: KeyStore,
        extractor: Extractor,
        catalog: Catalog,
        config: ServeConfig,
    ) -> anyhow::Result<AppState> {
        anyhow::ensure!(config.max_body_bytes > 0, "max_body_bytes must be > 0");
        anyhow::ensure!(
            (1..=1000).contains(&config.max_batch_images),
            "max_batch_images must be in 1..=1000"
        );
        anyhow::ensure!(
            (1..=10_000).contains(&config.max_batch_products),
            "max_batch_products must be in 1..=10000"
        );
        Namespace::new(config.account.clone(), Environment::Live)?;
        Ok(AppState {
            inner: Arc::new(Inner {
                keys,
                extractor,
                catalog,
                fetches: Arc::new(tokio::sync::Semaphore::new(config.max_fetches.max(1))),
                key_fetches: std::sync::Mutex::new(std::collections::HashMap::new()),
                queue_wake: tokio::sync::Notify::new(),
                config,
            }),
        })
    }

    /// The key store (to create keys, read usage).
    pub fn keys(&self) -> &KeyStore {
        &self.inner.keys
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    /// The extractor.
    pub fn extractor(&self) -> &Extractor {
        &self.inner.extractor
    }

    /// Tells the catalog queue's worker that a product was queued.
    pub(crate) fn wake_worker(&self) {
        self.inner.queue_wake.notify_one();
    }

    /// The settings.
    pub fn config(&self) -> &ServeConfig {
        &self.inner.config
    }

    /// The image behind a request's input, with any `image_url` fetched here: on a blocking
    /// thread of its own under the fetch caps and deadline of [`ServeConfig`], never on the
    /// extractor's CPU threads, so the image work that follows starts only with the bytes in
    /// hand. Over a cap: 429 with `Retry-After: 1`.
    pub(crate) async fn fetch_input(
        &self,
        who: &Principal,
        input: ImageInput,
    ) -> Result<ImageInput, ApiError> {
        let ImageInput::Url(url) = input else {
            return Ok(input);
        };
        let config = self.config();
        let busy = |scope: &str, cap: usize| {
            let mut e = ApiError::new(
                ErrorCode::RATE_LIMIT_EXCEEDED,
                format!("{cap} image_url fetches are in flight {scope}; retry when one finishes"),
            )
            .with_details(serde_json::json!({ "fetches_in_flight": cap, "scope": scope }));
            e.retry_after = Some(1);
            e
        };
        let per_key = {
            let mut map = self
                .inner
                .key_fetches
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            Arc::clone(map.entry(who.key_id()).or_insert_with(|| {
                Arc::new(tokio::sync::Semaphore::new(
                    config.max_fetches_per_key.max(1),
                ))
            }))
        };
        let key_slot = per_key
            .try_acquire_owned()
            .map_err(|_| busy("for this key", config.max_fetches_per_key))?;
        let slot = Arc::clone(&self.inner.fetches)
            .try_acquire_owned()
            .map_err(|_| busy("on this server", config.max_fetches))?;
        let mut limits = self.extractor().config().limits;
        limits.url.total_timeout = limits.url.total_timeout.min(config.fetch_timeout);
        let bytes = blocking(move || {
            let _slots = (key_slot, slot);
            Ok(dupify_core::input::fetch_image_url(&url, &limits)?)
        })
        .await?;
        Ok(ImageInput::Bytes(bytes))
    }

    /// The catalog namespace of a caller: this server's account in the key's environment.
    pub(crate) fn namespace(&self, who: &Principal) -> Result<Namespace, ApiError> {
        // Keys and catalog share one `Environment`: a test key's namespace is the test one.
        Ok(Namespace::new(
            self.inner.config.account.clone(),
            who.environment(),
        )?)
    }

    /// Authenticates the request and applies its rate limit and quota, on the blocking pool
    /// (the key lookup reads SQLite).
    pub(crate) async fn gate(&self, headers: &HeaderMap) -> Result<Gate, ApiError> {
        let mut creds = Vec::new();
        for (name, value) in headers {
            let n = name.as_str();
            if n == "x-api-key" || n == "authorization" {
                let v = value.to_str().map_err(|_| {
                    ApiError::new(
                        ErrorCode::INVALID_API_KEY,
                        "the API key header is not valid ASCII",
                    )
                })?;
                creds.push((n.to_owned(), v.to_owned()));
            }
        }
        let state = self.clone();
        let (who, decision) = blocking(move || {
            let who = state
                .inner
                .keys
                .authenticate(creds.iter().map(|(n, v)| (n.as_str(), v.as_str())))?;
            let decision = state.inner.keys.check_rate(&who);
            Ok((who, decision))
        })
        .await?;
        let rate = decision.into_result()?;
        Ok(Gate {
            state: self.clone(),
            who,
            rate,
        })
    }
}

/// An authenticated, rate-checked caller. Responses go through [`Gate::finish`] so each one
/// carries the rate-limit headers.
pub(crate) struct Gate {
    state: AppState,
    pub(crate) who: Principal,
    rate: RateHeaders,
}

impl Gate {
    /// Checks the scopes `op` needs (403 `insufficient_scope`) and counts the call. In-memory
    /// counters only: no I/O, fine on the async thread.
    pub(crate) fn authorize(&self, op: Operation) -> Result<(), ApiError> {
        Ok(self.state.inner.keys.authorize(&self.who, &op)?)
    }

    /// Adds the rate-limit headers to the handler's answer. A request refused by validation
    /// before any work (a malformed or incomplete body, a missing scope) is released: it does
    /// not count against the monthly quota.
    pub(crate) fn finish(self, result: Result<Response, ApiError>) -> Response {
        let mut resp = match result {
            Ok(r) => r,
            Err(e) => {
                const REFUSED_BEFORE_WORK: [ErrorCode; 7] = [
                    ErrorCode::MISSING_PARAMETER,
                    ErrorCode::INVALID_PARAMETER,
                    ErrorCode::INVALID_BASE64,
                    ErrorCode::INVALID_IMAGE_URL,
                    ErrorCode::PAYLOAD_TOO_LARGE,
                    ErrorCode::REQUEST_TIMEOUT,
                    ErrorCode::INSUFFICIENT_SCOPE,
                ];
                if REFUSED_BEFORE_WORK.iter().any(|c| c.code == e.code) {
                    self.state.inner.keys.release(&self.who);
                }
                e.into_response()
            }
        };
        put_rate_headers(resp.headers_mut(), &self.rate);
        resp
    }
}

/// Runs `f` on tokio's blocking pool; a panic inside becomes a 500 envelope.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("blocking task failed: {e}")))?
}

/// The v1 API and the web page.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/healthz", get(healthz))
        .route("/v1/openapi.json", get(openapi_json))
        .route("/v1/embed", post(handlers::embed))
        .route("/v1/colors", post(handlers::colors))
        .route("/v1/silhouette", post(handlers::silhouette))
        .route("/v1/attributes", post(handlers::attributes))
        .route("/v1/background-remove", post(handlers::background_remove))
        .route("/v1/batch", post(handlers::batch))
        .route(
            "/v1/catalog/products",
            post(handlers::create_product).get(handlers::list_products),
        )
        .route(
            "/v1/catalog/products/{id}",
            get(handlers::get_product).delete(handlers::delete_product),
        )
        .route(
            "/v1/catalog/products/{id}/thumbnail",
            get(handlers::product_thumbnail),
        )
        .route("/v1/catalog/search", post(handlers::search))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(on_panic))
        .with_state(state)
}

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM (what `kill`, systemd and container
/// runtimes send): the signal to stop taking connections, drain the requests in flight and
/// flush what is buffered (see `dupify-server`'s `main`).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => ctrl_c.await,
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}

/// Serves `router(state)` on `listener` until `shutdown` resolves, with the connection
/// limits of the state's [`ServeConfig`]: HTTP/1.1 through hyper with a header-read (and
/// keep-alive idle) timeout, at most `max_connections` at once, and on shutdown no new
/// connections while those in flight get `shutdown_grace` to finish.
///
/// At the cap, a new connection takes the place of the oldest one that has not sent a whole
/// request yet (a slowloris or idle socket): that one is closed. Only when every connection
/// has sent a request is the new one closed unanswered. So a flood of half-open connections,
/// however large, cannot keep clients that send real requests out; it can only make the
/// attacker's own connections churn.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A connection served now: whether it has sent a whole request, and how to close it.
    struct Held {
        id: u64,
        requested: Arc<AtomicBool>,
        evict: Option<tokio::sync::oneshot::Sender<()>>,
    }

    let config = state.config().clone();
    // The catalog queue's worker lives as long as the server; a job cut short by shutdown
    // stays queued in the database and is resumed by the next start.
    let worker = tokio::spawn(worker::run(state.clone()));
    let app = router(state);
    let slots = Arc::new(tokio::sync::Semaphore::new(config.max_connections.max(1)));
    let held = Arc::new(std::sync::Mutex::new(
        std::collections::VecDeque::<Held>::new(),
    ));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout);
    tokio::pin!(shutdown);
    let mut next_id = 0u64;
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: keep serving
                    // the connections we have; back off briefly so the loop does not spin.
                    eprintln!("dupify-server: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let id = next_id;
        next_id += 1;
        let requested = Arc::new(AtomicBool::new(false));
        let (evict, evicted) = tokio::sync::oneshot::channel::<()>();
        let app = app.clone();
        let flag = Arc::clone(&requested);
        // Hyper calls the service once a request's head is in: from then on the connection
        // is a client's, not a half-open socket, and is never evicted.
        let svc = hyper::service::service_fn(move |req| {
            flag.store(true, Ordering::Relaxed);
            tower_service::Service::call(&mut app.clone(), req)
        });
        let conn = http.serve_connection(TokioIo::new(stream), svc);
        let watcher = graceful.watcher();
        let held_by_task = Arc::clone(&held);
        let run = async move {
            let conn = watcher.watch(conn);
            tokio::select! {
                _ = conn => {}
                _ = evicted => {} // dropping the connection closes it
            }
            held_by_task
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|c: &Held| c.id != id);
        };
        let entry = Held {
            id,
            requested,
            evict: Some(evict),
        };
        match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => {
                held.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push_back(entry);
                tokio::spawn(async move {
                    run.await;
                    drop(slot);
                });
            }
            Err(_) => {
                // At the cap: close the oldest connection that has not sent a request, and
                // serve this one in its place once its slot is free (off the accept loop).
                let victim = held
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter_mut()
                    .find(|c| !c.requested.load(Ordering::Relaxed))
                    .and_then(|c| c.evict.take());
                let Some(victim) = victim else {
                    continue; // every connection is in use: this one is closed at once
                };
                let _ = victim.send(());
                let (slots, held) = (Arc::clone(&slots), Arc::clone(&held));
                tokio::spawn(async move {
                    let freed = tokio::time::timeout(
                        std::time::Duration::from_secs(2),
                        slots.acquire_owned(),
                    )
                    .await;
                    if let Ok(Ok(slot)) = freed {
                        held.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push_back(entry);
                        run.await;
                        drop(slot);
                    }
                });
            }
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(config.shutdown_grace, graceful.shutdown()).await;
    worker.abort();
    Ok(())
}

/// `GET /healthz`: liveness for load balancers and orchestrators, without a key: the process
/// answers HTTP. (No model, catalog or key-store work: a probe must stay cheap.)
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process serves HTTP", body = types::Health)))]
async fn healthz() -> axum::Json<types::Health> {
    axum::Json(types::Health { status: "ok" })
}

/// `GET /v1/openapi.json`: the API's OpenAPI 3.1 document (no key needed), built once.
async fn openapi_json() -> Response {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let doc = DOC.get_or_init(|| openapi::document().to_string());
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        doc.as_str(),
    )
        .into_response()
}

async fn index() -> Html<&'static str> {
    Html(INDEX_HTML)
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NOT_FOUND, "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::METHOD_NOT_ALLOWED,
        "method not allowed on this route",
    )
}

fn on_panic(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal("a request handler panicked").into_response()
}

dupify_types::setters! { ServeConfig {
    /// Sets the body limit.
    with_max_body_bytes(max_body_bytes: usize),
    /// Sets the most images one `/v1/batch` call may carry.
    with_max_batch_images(max_batch_images: usize),
    /// Sets the header-read and keep-alive idle timeout.
    with_header_read_timeout(header_read_timeout: std::time::Duration),
    /// Sets the time allowed for a whole request body.
    with_body_timeout(body_timeout: std::time::Duration),
    /// Sets the most connections served at once.
    with_max_connections(max_connections: usize),
    /// Sets the time requests in flight get on shutdown.
    with_shutdown_grace(shutdown_grace: std::time::Duration),
    /// Sets the `image_url` fetches in flight for all callers.
    with_max_fetches(max_fetches: usize),
    /// Sets the `image_url` fetches in flight for one key.
    with_max_fetches_per_key(max_fetches_per_key: usize),
    /// Sets the deadline of one `image_url` fetch.
    with_fetch_timeout(fetch_timeout: std::time::Duration),
    /// Sets the most products in one catalog upload.
    with_max_batch_products(max_batch_products: usize),
} }
