//! The catalog on PostgreSQL + pgvector (cargo feature `postgres`): the same behaviour as
//! the SQLite backend, for many app servers sharing one database.
//!
//! The backend's own docs ([`PgBackend`]) say what differs from SQLite and why.

mod schema;
mod sql;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::RwLock;
use std::time::Duration;

use pgvector::Vector;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use postgres::{Client, NoTls, Row, Transaction};

use super::backend::{BindFn, Candidate, CatalogBackend, ProductKey, Ranked, ScoreFn};
use super::score::dot;
use super::{
    now_ms, CatalogOptions, ColorSwatch, EmbeddingStatus, Environment, IndexMode, IndexReport,
    IndexSource, IngestJob, Namespace, NewProduct, Product, ProductFeatures, ProductFilter,
};
use crate::error::{Error, Result};
use dupify_types::location::redact_url;
use sql::Sql;

/// `.ctx("doing what")?` turns a driver error into [`Error::DatabaseOp`] with that context.
/// A trait rather than `From<postgres::Error>`: a `From` impl would be public and put the
/// driver's error type into this crate's API.
pub(super) trait Ctx<T> {
    fn ctx(self, context: &'static str) -> Result<T>;
}

impl<T> Ctx<T> for std::result::Result<T, postgres::Error> {
    fn ctx(self, context: &'static str) -> Result<T> {
        // The driver's errors carry the server's message, never the connection URL.
        self.map_err(|e| Error::DatabaseOp {
            context,
            source: Box::new(e),
        })
    }
}

impl<T> Ctx<T> for std::result::Result<T, r2d2::Error> {
    fn ctx(self, context: &'static str) -> Result<T> {
        // A pool timeout: the message is the last connection error, which names no password.
        self.map_err(|e| Error::DatabaseOp {
            context,
            source: Box::new(e),
        })
    }
}

/// Opens the pool's connections.
struct Manager {
    config: postgres::Config,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Client;
    type Error = postgres::Error;

    fn connect(&self) -> std::result::Result<Client, postgres::Error> {
        self.config.connect(NoTls)
    }

    fn is_valid(&self, conn: &mut Client) -> std::result::Result<(), postgres::Error> {
        conn.batch_execute("")
    }

    fn has_broken(&self, conn: &mut Client) -> bool {
        conn.is_closed()
    }
}

/// The catalog in PostgreSQL + pgvector, shared by many app servers. `Send + Sync`.
///
/// ## What differs from SQLite, and why
/// - **The vector index lives in the database**: an HNSW index (pgvector, cosine) on the
///   embedding column, kept in step by PostgreSQL itself, so every server sees every commit at
///   once and nothing is saved or rebuilt by the process (`flush` has nothing to do;
///   `index_report` says `loaded` for every namespace). The column is an untyped `vector`,
///   since a catalog's dimension is fixed only by its first embedding; the write that fixes
///   it adds a dimension check and the HNSW index on the expression `clip::vector(D)`, the
///   expression searches order by (no table rewrite, unlike altering the column's type).
///   pgvector indexes `vector` up to 2,000 dimensions: from 2,001 to 4,000 the index is on
///   `clip::halfvec(D)` (scores still come from the stored vectors), above that there is none
///   and every search is exact.
/// - **Filtered search does not lose results.** One index serves every namespace, so a
///   namespace and the product filters are conditions on an index scan: with plain HNSW the
///   scan stops after `ef_search` candidates and a selective filter leaves fewer than `k`.
///   Each search runs in its own transaction with `SET LOCAL hnsw.iterative_scan =
///   relaxed_order` (pgvector ≥ 0.8: the scan goes on until `k` rows pass the filter) and
///   `hnsw.ef_search` set to the catalog's live `ef_search` (`IndexParams::ef_search`, or
///   `set_ef_search`'s value: `target_recall` calibration is the embedded backend's, since
///   measuring recall here would mean exact scans of a table other servers write to).
///   When fewer than `IndexParams::brute_force_below` products match (a small namespace or
///   a selective filter), the search is exact instead: a scan of the matching rows ordered
///   by the true distance, which the index cannot serve. An ANN scan that still comes back short of the
///   matches counted (its `hnsw.max_scan_tuples` ran out) is redone exactly. Once enough
///   rows match, sorts are turned off for the query (`SET LOCAL enable_sort = off`): the
///   planner's estimate knows nothing of iterative scans and would often sort every matching
///   row instead of reading the index.
/// - **Writes are transactions on the server**: an upsert batch is one transaction (all or
///   none); the namespace's row is locked (`FOR UPDATE`) while its model binding is decided,
///   so two servers cannot bind one namespace to two models; a queued job is locked while it
///   is completed, so a job finished by two workers is written once.
/// - **Options**: `IndexParams::m` and `ef_construction` shape the HNSW index when it is
///   created (clamped to pgvector's ranges: m ≤ 100, ef_construction ≤ 1000);
///   `persist_index` and `synchronous_full` are SQLite's and do nothing here (durability is
///   the server's `synchronous_commit`).
/// - Connections come from an r2d2 pool of `CatalogOptions::max_connections` (default 8),
///   each checked with an empty query when lent, so a database restart costs no failed
///   request. Plain TCP or unix sockets (no TLS in this build): keep the database on a
///   private network.
/// - Upsert batches of 64 products or more are copied in (`COPY … FROM STDIN (FORMAT
///   binary)`) into a temporary table and upserted from it in one statement; smaller ones
///   write one prepared statement per product. Either way in one transaction.
pub struct PgBackend {
    pool: r2d2::Pool<Manager>,
    opts: CatalogOptions,
    /// The catalog's dimension once known here (another server may fix it: `dim` looks it up
    /// while it is unknown).
    dim: RwLock<Option<usize>>,
    /// Whether the database has the dimension recorded (with its index): until then each
    /// write that stores embeddings fixes it (`schema::fix_dim`).
    dim_stored: AtomicBool,
    ef_search: AtomicUsize,
}

/// The columns [`row_to_product`] reads, in its order.
const COLS: &str = "p.id, p.external_id, p.title, p.sku, p.description, p.brand, p.category, \
     p.price, p.currency, p.image_url, p.product_url, p.metadata::text, p.clip, p.shape, \
     p.colors::text, p.attributes::text, p.model_id, p.image_hash, p.created_at, p.updated_at, \
     n.account, n.environment, j.status, j.error_code, j.error_message";

const FROM: &str = "FROM catalog_products p JOIN catalog_namespaces n ON n.id = p.ns \
     LEFT JOIN catalog_ingest_jobs j ON j.product_pk = p.pk";

/// Inserts or replaces one product by `(ns, external_id)` and drops its queued job (a write
/// with the product's fields supersedes it), in one statement.
const UPSERT: &str = "WITH up AS (
    INSERT INTO catalog_products AS p (id, ns, external_id, title, sku, description, brand,
        category, price, currency, image_url, product_url, metadata, clip, shape, colors,
        attributes, model_id, image_hash, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::text::jsonb, $14, $15,
        $16::text::jsonb, $17::text::jsonb, $18, $19, $20, $20)
    ON CONFLICT (ns, external_id) DO UPDATE SET title = excluded.title, sku = excluded.sku,
        description = excluded.description, brand = excluded.brand,
        category = excluded.category, price = excluded.price, currency = excluded.currency,
        image_url = excluded.image_url, product_url = excluded.product_url,
        metadata = excluded.metadata, clip = excluded.clip, shape = excluded.shape,
        colors = excluded.colors, attributes = excluded.attributes,
        model_id = excluded.model_id, image_hash = excluded.image_hash,
        updated_at = excluded.updated_at
    RETURNING p.pk, p.id, p.created_at, p.external_id
), dropped AS (
    DELETE FROM catalog_ingest_jobs j USING up WHERE j.product_pk = up.pk
)
SELECT pk, id, created_at, external_id FROM up";

/// Batches of at least this many products are loaded with `COPY … (FORMAT binary)` into a
/// temporary table and upserted from it in one statement: one round trip for the rows
/// instead of one per product.
const COPY_BATCH_MIN: usize = 64;

/// The staging table of a bulk upsert, dropped when its transaction ends. JSON travels as
/// text (cast on the way in), the vectors in pgvector's binary form.
const STAGE: &str = "CREATE TEMP TABLE catalog_stage (ord BIGINT, id TEXT, external_id TEXT,
    title TEXT, sku TEXT, description TEXT, brand TEXT, category TEXT,
    price DOUBLE PRECISION, currency TEXT, image_url TEXT, product_url TEXT, metadata TEXT,
    clip vector, shape REAL[], colors TEXT, attributes TEXT, model_id TEXT, image_hash TEXT)
    ON COMMIT DROP";

const STAGE_COLS: &str = "ord, id, external_id, title, sku, description, brand, category, \
     price, currency, image_url, product_url, metadata, clip, shape, colors, attributes, \
     model_id, image_hash";

/// [`UPSERT`] of every staged row, in batch order (so positions follow it, as on SQLite):
/// `$1` the namespace's row id, `$2` the time.
fn upsert_staged() -> String {
    let head = UPSERT
        .split("VALUES")
        .next()
        .unwrap_or_default()
        .to_string();
    let tail = &UPSERT[UPSERT.find("ON CONFLICT").unwrap_or(0)..];
    format!(
        "{head}SELECT id, $1, external_id, title, sku, description, brand, category, price, \
         currency, image_url, product_url, metadata::jsonb, clip, shape, colors::jsonb, \
         attributes::jsonb, model_id, image_hash, $2, $2 FROM catalog_stage ORDER BY ord\n    \
         {tail}"
    )
}

/// A namespace's row id by account and environment (`$1`, `$2`), as a subquery: reads of a
/// namespace never written match nothing.
const NS: &str = "(SELECT id FROM catalog_namespaces WHERE account = $1 AND environment = $2)";

impl PgBackend {
    /// Connects to `url`, creates or migrates the schema and starts the connection pool.
    pub fn connect(url: &str, opts: CatalogOptions) -> Result<Self> {
        opts.validate()?;
        let mut config: postgres::Config =
            url.parse()
                .map_err(|e: postgres::Error| Error::InvalidDatabaseUrl {
                    url: redact_url(url),
                    reason: e.to_string(),
                })?;
        if config.get_application_name().is_none() {
            config.application_name("dupify-catalog");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let mut first = config
            .connect(NoTls)
            .ctx("connecting to the catalog database")?;
        schema::migrate(&mut first)?;
        let stored = schema::stored_dim(&mut first)?;
        drop(first);
        let dim = match (stored, opts.dim) {
            (Some(s), Some(o)) if s != o => {
                return Err(Error::invalid(
                    "dim",
                    format!("the catalog stores {s}-d embeddings, options ask for {o}"),
                ))
            }
            (Some(s), _) => Some(s),
            (None, o) => o,
        };
        let pool = r2d2::Pool::builder()
            .max_size(opts.max_connections)
            .min_idle(Some(1))
            // One empty query per checkout: after a database restart the dead connections
            // are replaced before a request uses them.
            .test_on_check_out(true)
            .connection_timeout(Duration::from_secs(30))
            .build(Manager { config })
            .ctx("opening the catalog's connection pool")?;
        Ok(PgBackend {
            pool,
            ef_search: AtomicUsize::new(opts.index.ef_search),
            opts,
            dim: RwLock::new(dim),
            dim_stored: AtomicBool::new(stored.is_some()),
        })
    }

    fn conn(&self, context: &'static str) -> Result<r2d2::PooledConnection<Manager>> {
        self.pool.get().ctx(context)
    }

    /// The rows of the statement `build` writes, with the namespace's account and environment
    /// bound first as `$1` and `$2` (the [`NS`] subquery reads them).
    fn ns_query(
        &self,
        context: &'static str,
        ns: &Namespace,
        build: impl FnOnce(&mut Sql),
    ) -> Result<Vec<Row>> {
        let mut sql = Sql::default();
        sql.bind(ns.account.clone());
        sql.bind(ns.environment.as_str().to_string());
        build(&mut sql);
        self.conn(context)?
            .query(sql.text.as_str(), &sql.params())
            .ctx(context)
    }
}

/// What a write does besides storing rows.
enum Write<'a> {
    /// An upsert.
    Plain,
    /// Also queues the (single) product for extraction from this URL.
    Enqueue(&'a str),
    /// Only if this job is still the product's pending one (then the upsert drops it).
    Complete(&'a IngestJob),
}

impl PgBackend {
    /// One write transaction: the namespace's row (locked) and model binding, the catalog's
    /// dimension, the rows, the queue. `None` when a `Complete` job was superseded (nothing
    /// written).
    fn write(
        &self,
        ns: &Namespace,
        products: &[NewProduct],
        dim: Option<usize>,
        bind: &BindFn<'_>,
        what: Write<'_>,
    ) -> Result<Option<Vec<Product>>> {
        const CTX: &str = "storing products";
        let mut conn = self.conn(CTX)?;
        let mut tx = conn.transaction().ctx(CTX)?;
        // Locks are taken in one order by every write (the namespace's row, the dimension's
        // advisory lock, product rows, job rows), so concurrent writers wait, never deadlock.
        let (ns_id, recorded) = lock_namespace(&mut tx, ns)?;
        let embeds = products.iter().any(|p| p.features.clip.is_some());
        if let (Some(d), true) = (dim, embeds) {
            // Before any product row is locked: fixing the dimension alters the table.
            if !self.dim_stored.load(Ordering::Relaxed) {
                schema::fix_dim(&mut tx, d, &self.opts.index)?;
            }
        }
        if let Write::Complete(job) = what {
            // The product's row, then its job: a second worker completing the same job waits
            // here, then finds the job gone (each statement sees what committed before it).
            let pending = tx
                .query_opt(
                    "SELECT pk FROM catalog_products WHERE id = $1 FOR UPDATE",
                    &[&job.product_id],
                )
                .ctx(CTX)?
                .map(|r| r.try_get::<_, i64>(0))
                .transpose()
                .ctx(CTX)?;
            let Some(pk) = pending else {
                return Ok(None);
            };
            let job_row = tx
                .query_opt(
                    "SELECT 1 FROM catalog_ingest_jobs WHERE id = $1 AND product_pk = $2 \
                     AND status = 'processing' FOR UPDATE",
                    &[&job.job_id, &pk],
                )
                .ctx(CTX)?;
            if job_row.is_none() {
                return Ok(None);
            }
        }
        if let Some(m) = bind(recorded.as_deref())? {
            tx.execute(
                "UPDATE catalog_namespaces SET model_id = $2 WHERE id = $1",
                &[&ns_id, &m],
            )
            .ctx(CTX)?;
        }
        let now = now_ms();
        let stored = if products.len() >= COPY_BATCH_MIN {
            bulk_upsert(&mut tx, ns_id, products, now)?
        } else {
            let upsert = tx.prepare(UPSERT).ctx(CTX)?;
            let mut stored = HashMap::with_capacity(products.len());
            for p in products {
                let row = Staged::of(p)?;
                let new_id = uuid::Uuid::new_v4().to_string();
                let r = tx
                    .query_one(
                        &upsert,
                        &[
                            &new_id,
                            &ns_id,
                            &p.external_id,
                            &p.title,
                            &p.sku,
                            &p.description,
                            &p.brand,
                            &p.category,
                            &p.price,
                            &row.currency,
                            &p.image_url,
                            &p.product_url,
                            &row.metadata,
                            &row.clip,
                            &p.features.shape,
                            &row.colors,
                            &row.attributes,
                            &p.features.model_id,
                            &p.image_hash,
                            &now,
                        ],
                    )
                    .ctx(CTX)?;
                stored.insert(p.external_id.clone(), upserted(&r)?);
            }
            stored
        };
        let mut saved = Vec::with_capacity(products.len());
        for p in products {
            let (pk, id, created_at) = stored
                .get(&p.external_id)
                .cloned()
                .ok_or_else(|| Error::Internal("an upserted product has no row".into()))?;
            let mut product = p.to_product(id, ns, created_at, now);
            if let Write::Enqueue(url) = what {
                tx.execute(
                    "INSERT INTO catalog_ingest_jobs (product_pk, image_url, status, \
                     enqueued_at, updated_at) VALUES ($1, $2, 'processing', $3, $3)",
                    &[&pk, &url, &now],
                )
                .ctx("queueing a product")?;
                product.embedding_status = EmbeddingStatus::Processing;
            }
            saved.push(product);
        }
        tx.commit().ctx(CTX)?;
        if let (Some(d), true) = (dim, embeds) {
            *self.dim.write().unwrap_or_else(|p| p.into_inner()) = Some(d);
            self.dim_stored.store(true, Ordering::Relaxed);
        }
        Ok(Some(saved))
    }

    fn cached_dim(&self) -> Option<usize> {
        *self.dim.read().unwrap_or_else(|p| p.into_inner())
    }
}

/// A product's columns that are not stored as given.
struct Staged {
    currency: String,
    metadata: String,
    clip: Option<Vector>,
    colors: String,
    attributes: Option<String>,
}

impl Staged {
    fn of(p: &NewProduct) -> Result<Staged> {
        Ok(Staged {
            currency: p.currency.clone().unwrap_or_else(|| "USD".to_string()),
            metadata: p.metadata.to_string(),
            clip: p.features.clip.clone().map(Vector::from),
            colors: serde_json::to_string(&p.features.colors)
                .map_err(|e| Error::Internal(format!("colors: {e}")))?,
            attributes: p
                .features
                .attributes
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(|e| Error::Internal(format!("attributes: {e}")))?,
        })
    }
}

/// `(pk, id, created_at)` of an [`UPSERT`] answer row.
fn upserted(r: &Row) -> Result<(i64, String, i64)> {
    const CTX: &str = "storing products";
    Ok((
        r.try_get(0).ctx(CTX)?,
        r.try_get(1).ctx(CTX)?,
        r.try_get(2).ctx(CTX)?,
    ))
}

/// Upserts a large batch: its rows (the last of each external id, at the first one's place,
/// as the row-by-row path leaves them) are copied in binary into a temporary table, then upserted from it in one
/// statement. Returns `(pk, id, created_at)` by external id.
fn bulk_upsert(
    tx: &mut Transaction<'_>,
    ns_id: i64,
    products: &[NewProduct],
    now: i64,
) -> Result<HashMap<String, (i64, String, i64)>> {
    const CTX: &str = "bulk-loading products";
    // Each external id's first and last place in the batch: the last one's fields are
    // stored, at the first one's position (where the row-by-row path inserts it).
    let mut places: HashMap<&str, (usize, usize)> = HashMap::with_capacity(products.len());
    for (i, p) in products.iter().enumerate() {
        places
            .entry(p.external_id.as_str())
            .and_modify(|e| e.1 = i)
            .or_insert((i, i));
    }
    tx.batch_execute(STAGE).ctx(CTX)?;
    // pgvector's type has no fixed OID: ask the server for it.
    let vector = tx
        .prepare("SELECT NULL::vector")
        .ctx(CTX)?
        .columns()
        .first()
        .map(|c| c.type_().clone())
        .ok_or_else(|| Error::Internal("no type for vector".into()))?;
    let text = Type::TEXT;
    let types = [
        Type::INT8,
        text.clone(),
        text.clone(),
        text.clone(),
        text.clone(),
        text.clone(),
        text.clone(),
        text.clone(),
        Type::FLOAT8,
        text.clone(),
        text.clone(),
        text.clone(),
        text.clone(),
        vector,
        Type::FLOAT4_ARRAY,
        text.clone(),
        text.clone(),
        text.clone(),
        text,
    ];
    let sink = tx
        .copy_in(&format!(
            "COPY catalog_stage ({STAGE_COLS}) FROM STDIN (FORMAT binary)"
        ))
        .ctx(CTX)?;
    let mut writer = BinaryCopyInWriter::new(sink, &types);
    for (i, p) in products.iter().enumerate() {
        let Some(&(first, last)) = places.get(p.external_id.as_str()) else {
            continue;
        };
        if last != i {
            continue;
        }
        let row = Staged::of(p)?;
        let new_id = uuid::Uuid::new_v4().to_string();
        writer
            .write(&[
                &(first as i64),
                &new_id,
                &p.external_id,
                &p.title,
                &p.sku,
                &p.description,
                &p.brand,
                &p.category,
                &p.price,
                &row.currency,
                &p.image_url,
                &p.product_url,
                &row.metadata,
                &row.clip,
                &p.features.shape,
                &row.colors,
                &row.attributes,
                &p.features.model_id,
                &p.image_hash,
            ])
            .ctx(CTX)?;
    }
    writer.finish().ctx(CTX)?;
    let rows = tx.query(&upsert_staged(), &[&ns_id, &now]).ctx(CTX)?;
    rows.iter()
        .map(|r| Ok((r.try_get::<_, String>(3).ctx(CTX)?, upserted(r)?)))
        .collect()
}

/// The namespace's row id and recorded model, its row created if missing and locked until the
/// transaction ends: writers of one namespace decide its model binding one at a time.
fn lock_namespace(tx: &mut Transaction<'_>, ns: &Namespace) -> Result<(i64, Option<String>)> {
    const CTX: &str = "locking the namespace";
    let select = "SELECT id, model_id FROM catalog_namespaces \
                  WHERE account = $1 AND environment = $2 FOR UPDATE";
    let env = ns.environment.as_str();
    let mut row = tx.query_opt(select, &[&ns.account, &env]).ctx(CTX)?;
    if row.is_none() {
        tx.execute(
            "INSERT INTO catalog_namespaces (account, environment) VALUES ($1, $2) \
             ON CONFLICT (account, environment) DO NOTHING",
            &[&ns.account, &env],
        )
        .ctx(CTX)?;
        row = tx.query_opt(select, &[&ns.account, &env]).ctx(CTX)?;
    }
    let row = row.ok_or_else(|| Error::Internal("namespace row vanished".into()))?;
    Ok((row.try_get(0).ctx(CTX)?, row.try_get(1).ctx(CTX)?))
}

/// Maps one row selected with [`COLS`].
fn row_to_product(r: &Row) -> Result<Product> {
    row_to_product_at(r, 0)
}

/// Maps a row whose [`COLS`] start at column `off`.
fn row_to_product_at(r: &Row, off: usize) -> Result<Product> {
    const CTX: &str = "reading a product";
    let text = |i: usize| -> Result<String> { r.try_get(i + off).ctx(CTX) };
    let json = |what: &str, s: &str| -> Result<serde_json::Value> {
        serde_json::from_str(s).map_err(|e| Error::Internal(format!("stored {what}: {e}")))
    };
    let clip: Option<Vector> = r.try_get(12 + off).ctx(CTX)?;
    let colors: Vec<ColorSwatch> = serde_json::from_str(&text(14)?)
        .map_err(|e| Error::Internal(format!("stored colors: {e}")))?;
    let attributes: Option<String> = r.try_get(15 + off).ctx(CTX)?;
    let env: String = text(21)?;
    let job_status: Option<String> = r.try_get(22 + off).ctx(CTX)?;
    let embedding_status = match job_status.as_deref() {
        None => EmbeddingStatus::Ready,
        Some("processing") => EmbeddingStatus::Processing,
        Some(_) => EmbeddingStatus::Failed {
            code: r
                .try_get::<_, Option<String>>(23 + off)
                .ctx(CTX)?
                .unwrap_or_default(),
            message: r
                .try_get::<_, Option<String>>(24 + off)
                .ctx(CTX)?
                .unwrap_or_default(),
        },
    };
    Ok(Product {
        id: text(0)?,
        external_id: text(1)?,
        title: r.try_get(2 + off).ctx(CTX)?,
        sku: r.try_get(3 + off).ctx(CTX)?,
        description: r.try_get(4 + off).ctx(CTX)?,
        brand: r.try_get(5 + off).ctx(CTX)?,
        category: r.try_get(6 + off).ctx(CTX)?,
        price: r.try_get(7 + off).ctx(CTX)?,
        currency: text(8)?,
        image_url: r.try_get(9 + off).ctx(CTX)?,
        product_url: r.try_get(10 + off).ctx(CTX)?,
        metadata: json("metadata", &text(11)?)?,
        features: ProductFeatures {
            clip: clip.map(|v| v.to_vec()),
            shape: r.try_get(13 + off).ctx(CTX)?,
            colors,
            attributes: attributes.map(|a| json("attributes", &a)).transpose()?,
            model_id: r.try_get(16 + off).ctx(CTX)?,
        },
        image_hash: r.try_get(17 + off).ctx(CTX)?,
        created_at_ms: r.try_get(18 + off).ctx(CTX)?,
        updated_at_ms: r.try_get(19 + off).ctx(CTX)?,
        namespace: Namespace {
            account: text(20)?,
            environment: env.parse::<Environment>()?,
        },
        embedding_status,
    })
}

/// A candidate row of a nearest-neighbour query: `pk, id, shape, colors, clip`.
struct CandidateRow {
    pk: i64,
    id: String,
    shape: Option<Vec<f32>>,
    colors: Vec<ColorSwatch>,
    clip: Vec<f32>,
}

fn candidate_rows(rows: Vec<Row>) -> Result<Vec<CandidateRow>> {
    const CTX: &str = "reading search candidates";
    rows.iter()
        .map(|r| {
            let colors: String = r.try_get(3).ctx(CTX)?;
            let clip: Vector = r.try_get(4).ctx(CTX)?;
            Ok(CandidateRow {
                pk: r.try_get(0).ctx(CTX)?,
                id: r.try_get(1).ctx(CTX)?,
                shape: r.try_get(2).ctx(CTX)?,
                colors: serde_json::from_str(&colors)
                    .map_err(|e| Error::Internal(format!("stored colors: {e}")))?,
                clip: clip.to_vec(),
            })
        })
        .collect()
}

impl CatalogBackend for PgBackend {
    /// The dimension known here, or else the one another server recorded since (one cheap
    /// lookup, only while the catalog has none). The trait's `dim` cannot fail: a lookup
    /// that fails answers `None`, as for a catalog with no embedding yet, so until this
    /// process has seen the dimension once, an embedding search during a database outage
    /// finds nothing instead of failing (writes and every other read still report it).
    fn dim(&self) -> Option<usize> {
        if let Some(d) = self.cached_dim() {
            return Some(d);
        }
        let found = self
            .conn("reading the catalog's dimension")
            .and_then(|mut c| schema::stored_dim(&mut *c))
            .ok()
            .flatten();
        if let Some(d) = found {
            *self.dim.write().unwrap_or_else(|p| p.into_inner()) = Some(d);
            self.dim_stored.store(true, Ordering::Relaxed);
        }
        found
    }

    fn upsert(
        &self,
        ns: &Namespace,
        products: &[NewProduct],
        dim: Option<usize>,
        bind: &BindFn<'_>,
    ) -> Result<Vec<Product>> {
        Ok(self
            .write(ns, products, dim, bind, Write::Plain)?
            .unwrap_or_default())
    }

    fn enqueue(&self, ns: &Namespace, product: &NewProduct, image_url: &str) -> Result<Product> {
        let no_model = |_: Option<&str>| Ok(None);
        self.write(
            ns,
            std::slice::from_ref(product),
            None,
            &no_model,
            Write::Enqueue(image_url),
        )?
        .and_then(|mut v| v.pop())
        .ok_or_else(|| Error::Internal("enqueue stored nothing".into()))
    }

    fn pending_jobs(&self, limit: usize) -> Result<Vec<IngestJob>> {
        const CTX: &str = "reading the ingest queue";
        let rows = self
            .conn(CTX)?
            .query(
                &format!(
                    "SELECT {JOB_COLS} FROM catalog_ingest_jobs j \
                     JOIN catalog_products p ON p.pk = j.product_pk \
                     JOIN catalog_namespaces n ON n.id = p.ns \
                     WHERE j.status = 'processing' ORDER BY j.id LIMIT $1"
                ),
                &[&(limit as i64)],
            )
            .ctx(CTX)?;
        rows.iter().map(|r| row_to_job(r, CTX)).collect()
    }

    /// One statement: the oldest unclaimed jobs are locked with `SKIP LOCKED` (a concurrent
    /// claimer passes over the rows this one holds instead of waiting for them, and gets the
    /// next ones) and leased on the database's clock, the same for every app server.
    fn claim_jobs(&self, limit: usize, lease_ms: i64) -> Result<Vec<IngestJob>> {
        const CTX: &str = "claiming ingest jobs";
        let rows = self
            .conn(CTX)?
            .query(
                &format!(
                    "WITH t AS (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint \
                     AS now), \
                     c AS (SELECT j.id FROM catalog_ingest_jobs j, t \
                           WHERE j.status = 'processing' AND j.claimed_until <= t.now \
                           ORDER BY j.id LIMIT $1 FOR UPDATE OF j SKIP LOCKED) \
                     UPDATE catalog_ingest_jobs j SET claimed_until = t.now + $2 \
                     FROM c, t, catalog_products p, catalog_namespaces n \
                     WHERE j.id = c.id AND p.pk = j.product_pk AND n.id = p.ns \
                     RETURNING {JOB_COLS}"
                ),
                &[&(limit as i64), &lease_ms],
            )
            .ctx(CTX)?;
        let mut jobs = rows
            .iter()
            .map(|r| row_to_job(r, CTX))
            .collect::<Result<Vec<_>>>()?;
        // RETURNING follows no ORDER BY: oldest first, as promised.
        jobs.sort_by_key(|j| j.job_id);
        Ok(jobs)
    }

    fn complete_job(
        &self,
        job: &IngestJob,
        product: &NewProduct,
        dim: Option<usize>,
        bind: &BindFn<'_>,
    ) -> Result<Option<Product>> {
        let saved = self.write(
            &job.namespace,
            std::slice::from_ref(product),
            dim,
            bind,
            Write::Complete(job),
        )?;
        Ok(saved.and_then(|mut v| v.pop()))
    }

    fn fail_job(&self, job: &IngestJob, code: &str, message: &str) -> Result<bool> {
        const CTX: &str = "recording a failed job";
        let n = self
            .conn(CTX)?
            .execute(
                "UPDATE catalog_ingest_jobs SET status = 'failed', error_code = $2, \
                 error_message = $3, updated_at = $4 WHERE id = $1 AND status = 'processing'",
                &[&job.job_id, &code, &message, &now_ms()],
            )
            .ctx(CTX)?;
        Ok(n > 0)
    }

    fn namespace_model(&self, ns: &Namespace) -> Result<Option<String>> {
        let rows = self.ns_query("reading the namespace's model", ns, |s| {
            s.text = format!("SELECT model_id FROM catalog_namespaces WHERE id = {NS}");
        })?;
        match rows.first() {
            Some(r) => r.try_get(0).ctx("reading the namespace's model"),
            None => Ok(None),
        }
    }

    fn clear_embeddings(&self, ns: &Namespace) -> Result<usize> {
        const CTX: &str = "clearing embeddings";
        let mut conn = self.conn(CTX)?;
        let mut tx = conn.transaction().ctx(CTX)?;
        // The namespace's row first, as every write locks it.
        lock_namespace(&mut tx, ns)?;
        let env = ns.environment.as_str();
        let params: [&(dyn postgres::types::ToSql + Sync); 2] = [&ns.account, &env];
        let cleared = tx
            .execute(
                &format!(
                    "UPDATE catalog_products p SET clip = NULL, model_id = NULL \
                     WHERE p.ns = {NS} AND p.clip IS NOT NULL"
                ),
                &params,
            )
            .ctx(CTX)?;
        tx.execute(
            &format!(
                "UPDATE catalog_products p SET model_id = NULL \
                 WHERE p.ns = {NS} AND p.model_id IS NOT NULL"
            ),
            &params,
        )
        .ctx(CTX)?;
        tx.execute(
            &format!("UPDATE catalog_namespaces SET model_id = NULL WHERE id = {NS}"),
            &params,
        )
        .ctx(CTX)?;
        tx.commit().ctx(CTX)?;
        Ok(cleared as usize)
    }

    fn delete(&self, ns: &Namespace, id: &str) -> Result<bool> {
        const CTX: &str = "deleting a product";
        let env = ns.environment.as_str();
        let n = self
            .conn(CTX)?
            .execute(
                &format!("DELETE FROM catalog_products p WHERE p.ns = {NS} AND p.id = $3"),
                &[&ns.account, &env, &id],
            )
            .ctx(CTX)?;
        Ok(n > 0)
    }

    fn get(&self, ns: &Namespace, key: ProductKey<'_>) -> Result<Option<Product>> {
        let (column, value) = match key {
            ProductKey::Id(v) => ("id", v),
            ProductKey::ExternalId(v) => ("external_id", v),
        };
        let rows = self.ns_query("reading a product", ns, |s| {
            let v = s.bind(value.to_string());
            s.text = format!("SELECT {COLS} {FROM} WHERE p.ns = {NS} AND p.{column} = {v}");
        })?;
        rows.first().map(row_to_product).transpose()
    }

    fn list(
        &self,
        ns: &Namespace,
        after: i64,
        limit: usize,
        filter: &ProductFilter,
    ) -> Result<Vec<(i64, Product)>> {
        let rows = self.ns_query("listing products", ns, |s| {
            let a = s.bind(after);
            s.text = format!("SELECT {COLS}, p.pk {FROM} WHERE p.ns = {NS} AND p.pk > {a}");
            s.push_filter(filter);
            let l = s.bind(limit as i64);
            s.text.push_str(&format!(" ORDER BY p.pk LIMIT {l}"));
        })?;
        rows.iter()
            .map(|r| {
                let pk: i64 = r.try_get(25).ctx("listing products")?;
                Ok((pk, row_to_product(r)?))
            })
            .collect()
    }

    fn count(&self, ns: &Namespace, filter: &ProductFilter) -> Result<u64> {
        let rows = self.ns_query("counting products", ns, |s| {
            s.text = format!("SELECT count(*) FROM catalog_products p WHERE p.ns = {NS}");
            s.push_filter(filter);
        })?;
        let n: i64 = rows
            .first()
            .map(|r| r.try_get(0))
            .transpose()
            .ctx("counting products")?
            .unwrap_or(0);
        Ok(n as u64)
    }

    fn image_hashes(
        &self,
        ns: &Namespace,
        external_ids: &[String],
    ) -> Result<HashMap<String, String>> {
        const CTX: &str = "reading image hashes";
        let rows = self.ns_query(CTX, ns, |s| {
            let ids = s.bind(external_ids.to_vec());
            s.text = format!(
                "SELECT p.external_id, p.image_hash FROM catalog_products p \
                 WHERE p.ns = {NS} AND p.external_id = ANY({ids}::text[]) \
                 AND p.image_hash IS NOT NULL"
            );
        })?;
        rows.iter()
            .map(|r| Ok((r.try_get(0).ctx(CTX)?, r.try_get(1).ctx(CTX)?)))
            .collect()
    }

    fn scan(&self, ns: &Namespace, filter: &ProductFilter) -> Result<Vec<Product>> {
        let rows = self.ns_query("scanning products", ns, |s| {
            s.text = format!("SELECT {COLS} {FROM} WHERE p.ns = {NS}");
            s.push_filter(filter);
            s.text.push_str(" ORDER BY p.pk");
        })?;
        rows.iter().map(row_to_product).collect()
    }

    /// Exact below `brute_force_below` matches, else the HNSW index with iterative scans,
    /// redone exactly if it comes back short (see the type's docs).
    fn nearest(
        &self,
        ns: &Namespace,
        query: &[f32],
        k: usize,
        filter: &ProductFilter,
        score: &ScoreFn<'_>,
    ) -> Result<Vec<Ranked>> {
        const CTX: &str = "searching products";
        let Some(dim) = self.dim() else {
            return Ok(Vec::new());
        };
        let mut sql = Sql::default();
        sql.bind(ns.account.clone());
        sql.bind(ns.environment.as_str().to_string());
        sql.text = format!("p.ns = {NS} AND p.clip IS NOT NULL");
        sql.push_filter(filter);
        let filter_params = sql.len();
        let conditions = sql.text.clone();
        let q = sql.bind(Vector::from(query.to_vec()));
        let threshold = self.opts.index.brute_force_below.max(k);
        let mut conn = self.conn(CTX)?;
        let mut tx = conn.transaction().ctx(CTX)?;
        // How many rows match, counted up to the threshold only.
        let matching: i64 = tx
            .query_one(
                &format!(
                    "SELECT count(*) FROM (SELECT 1 FROM catalog_products p \
                     WHERE {conditions} LIMIT {threshold}) m"
                ),
                &sql.params_upto(filter_params),
            )
            .and_then(|r| r.try_get(0))
            .ctx(CTX)?;
        let matching = matching as usize;
        let exact = format!(
            "SELECT p.pk, p.id, p.shape, p.colors::text, p.clip FROM catalog_products p \
             WHERE {conditions} ORDER BY p.clip <=> {q} LIMIT {k}"
        );
        let mut rows = None;
        if let (Some((expr, _)), true) = (schema::ann_expr(dim), matching >= threshold) {
            let ef = self.ef_search.load(Ordering::Relaxed).clamp(1, 1000);
            let max_scan = (20_000usize).max(k.saturating_mul(10));
            // `enable_sort = off`: enough rows match for the index to be the right plan, but
            // the planner's estimate for an index scan under a filter knows nothing of
            // iterative scans and often picks a filtered scan plus a sort of every matching
            // row instead; with sorts off the only ordered path left is the HNSW index.
            tx.batch_execute(&format!(
                "SET LOCAL hnsw.iterative_scan = relaxed_order; \
                 SET LOCAL hnsw.ef_search = {ef}; \
                 SET LOCAL hnsw.max_scan_tuples = {max_scan}; \
                 SET LOCAL enable_sort = off;"
            ))
            .ctx(CTX)?;
            // The parameter is sent as a `vector`: a cast straight to `halfvec` would make the
            // server expect a `halfvec` for it.
            let cast = if expr.contains("halfvec") {
                format!("{q}::vector::halfvec({dim})")
            } else {
                format!("{q}::vector({dim})")
            };
            let ann = tx
                .query(
                    &format!(
                        "SELECT p.pk, p.id, p.shape, p.colors::text, p.clip \
                         FROM catalog_products p WHERE {conditions} \
                         ORDER BY {expr} <=> {cast} LIMIT {k}"
                    ),
                    &sql.params(),
                )
                .ctx(CTX)?;
            if ann.len() >= k.min(matching) {
                rows = Some(ann);
            }
        }
        let rows = match rows {
            Some(r) => r,
            None => tx.query(&exact, &sql.params()).ctx(CTX)?,
        };
        tx.commit().ctx(CTX)?;
        Ok(candidate_rows(rows)?
            .into_iter()
            .filter_map(|c| {
                let candidate = Candidate {
                    id: &c.id,
                    shape: c.shape.as_deref(),
                    colors: &c.colors,
                };
                let (total, scores) = score(&candidate, dot(query, &c.clip))?;
                Some(Ranked {
                    id: c.id.clone(),
                    handle: c.pk as u64,
                    score: total,
                    scores,
                })
            })
            .collect())
    }

    fn resolve(&self, ns: &Namespace, ranked: &Ranked) -> Result<Option<Product>> {
        let rows = self.ns_query("reading a search hit", ns, |s| {
            let pk = s.bind(ranked.handle as i64);
            s.text = format!("SELECT {COLS} {FROM} WHERE p.ns = {NS} AND p.pk = {pk}");
        })?;
        rows.first().map(row_to_product).transpose()
    }

    /// One statement for the whole page (`pk = ANY($3)`), not one round trip per hit.
    fn resolve_many(&self, ns: &Namespace, ranked: &[&Ranked]) -> Result<Vec<Option<Product>>> {
        if ranked.is_empty() {
            return Ok(Vec::new());
        }
        let pks: Vec<i64> = ranked.iter().map(|r| r.handle as i64).collect();
        let rows = self.ns_query("reading search hits", ns, |s| {
            let pks = s.bind(pks.clone());
            s.text = format!("SELECT p.pk, {COLS} {FROM} WHERE p.ns = {NS} AND p.pk = ANY({pks})");
        })?;
        let mut by_pk = std::collections::HashMap::with_capacity(rows.len());
        for r in &rows {
            let pk: i64 = r.try_get(0).ctx("reading search hits")?;
            by_pk.insert(pk, r);
        }
        pks.iter()
            .map(|pk| by_pk.get(pk).map(|r| row_to_product_at(r, 1)).transpose())
            .collect()
    }

    /// `ef` arrives validated by `Catalog::set_ef_search`; each search sets it (at most 1000,
    /// pgvector's limit; iterative scans go past it when more results are asked for).
    fn set_ef_search(&self, ef: usize) -> Result<()> {
        self.ef_search.store(ef, Ordering::Relaxed);
        Ok(())
    }

    /// pgvector takes one `hnsw.ef_search` per query: always fixed (no calibration here).
    fn ef_search(&self) -> Option<usize> {
        Some(self.ef_search.load(Ordering::Relaxed))
    }

    /// Nothing is held in memory: every commit is already in the database and its index.
    fn flush(&self) -> Result<()> {
        Ok(())
    }

    /// Every namespace with its live embeddings; `ann` where searches use the HNSW index
    /// (at least `brute_force_below` embeddings and a dimension pgvector indexes), `exact`
    /// otherwise. The index is the database's, always current: `loaded`, no tombstones.
    fn index_report(&self) -> Result<Vec<IndexReport>> {
        const CTX: &str = "reporting the index";
        let rows = self
            .conn(CTX)?
            .query(
                "SELECT n.account, n.environment, count(p.clip) FROM catalog_namespaces n \
                 LEFT JOIN catalog_products p ON p.ns = n.id \
                 GROUP BY n.id ORDER BY n.account, n.environment",
                &[],
            )
            .ctx(CTX)?;
        let indexed = self.dim().and_then(schema::ann_expr).is_some();
        rows.iter()
            .map(|r| {
                let env: String = r.try_get(1).ctx(CTX)?;
                let live: i64 = r.try_get(2).ctx(CTX)?;
                let live = live as usize;
                Ok(IndexReport {
                    namespace: Namespace {
                        account: r.try_get(0).ctx(CTX)?,
                        environment: env.parse()?,
                    },
                    mode: if indexed && live >= self.opts.index.brute_force_below {
                        IndexMode::Ann
                    } else {
                        IndexMode::Exact
                    },
                    source: IndexSource::Loaded,
                    live,
                    tombstones: 0,
                    ef_search: (indexed && live >= self.opts.index.brute_force_below)
                        .then(|| self.ef_search.load(Ordering::Relaxed).clamp(1, 1000)),
                    recall_at_10: None,
                })
            })
            .collect()
    }
}

/// The columns [`row_to_job`] reads, in its order (`j` jobs, `p` products, `n` namespaces).
const JOB_COLS: &str =
    "j.id, n.account, n.environment, p.id, p.external_id, j.image_url, j.enqueued_at";

/// Maps a row selected with [`JOB_COLS`] to an [`IngestJob`].
fn row_to_job(r: &postgres::Row, ctx: &'static str) -> Result<IngestJob> {
    let env: String = r.try_get(2).ctx(ctx)?;
    Ok(IngestJob {
        job_id: r.try_get(0).ctx(ctx)?,
        namespace: Namespace {
            account: r.try_get(1).ctx(ctx)?,
            environment: env.parse()?,
        },
        product_id: r.try_get(3).ctx(ctx)?,
        external_id: r.try_get(4).ctx(ctx)?,
        image_url: r.try_get(5).ctx(ctx)?,
        enqueued_at_ms: r.try_get(6).ctx(ctx)?,
    })
}
