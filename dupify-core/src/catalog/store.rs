//! SQLite storage of the catalog (rusqlite, WAL). Every public mutation of [`super::Catalog`]
//! runs as one `BEGIN IMMEDIATE` transaction made of these statements, and bumps its
//! namespace's `generation` in that same transaction so the on-disk ANN index can tell
//! whether it is stale.

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row, Transaction};

use super::filter::ProductFilter;
use super::index::{Entry, HotSource};
use super::{
    ColorSwatch, EmbeddingStatus, Environment, IngestJob, Namespace, NewProduct, Product,
    ProductFeatures,
};
use crate::error::{Error, Result};

pub(crate) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS catalog_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS namespaces (
    id          INTEGER PRIMARY KEY,
    account     TEXT NOT NULL,
    environment TEXT NOT NULL CHECK (environment IN ('live', 'test')),
    generation  INTEGER NOT NULL DEFAULT 0,
    UNIQUE (account, environment)
) STRICT;
CREATE TABLE IF NOT EXISTS products (
    pk          INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    ns          INTEGER NOT NULL REFERENCES namespaces(id),
    external_id TEXT NOT NULL,
    title       TEXT,
    sku         TEXT,
    description TEXT,
    brand       TEXT,
    category    TEXT,
    price       REAL,
    currency    TEXT NOT NULL DEFAULT 'USD',
    image_url   TEXT,
    product_url TEXT,
    metadata    TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    clip        BLOB,
    vec_id      INTEGER UNIQUE,
    shape       BLOB,
    colors      TEXT NOT NULL DEFAULT '[]',
    attributes  TEXT,
    model_id    TEXT,
    image_hash  TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (ns, external_id),
    CHECK ((clip IS NULL) = (vec_id IS NULL))
) STRICT;
CREATE INDEX IF NOT EXISTS products_ns_pk ON products (ns, pk);
CREATE TABLE IF NOT EXISTS ingest_jobs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    product_pk    INTEGER NOT NULL UNIQUE REFERENCES products(pk) ON DELETE CASCADE,
    image_url     TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('processing', 'failed')),
    error_code    TEXT,
    error_message TEXT,
    enqueued_at   INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    claimed_until INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX IF NOT EXISTS ingest_jobs_status ON ingest_jobs (status, id);
CREATE INDEX IF NOT EXISTS products_ns_vec ON products (ns, vec_id);
"#;

/// Columns read into a [`Product`], in [`row_to_product`]'s order.
pub(crate) const COLS: &str = "p.id, p.external_id, p.title, p.sku, p.description, p.brand, \
     p.category, p.price, p.currency, p.image_url, p.product_url, p.metadata, p.clip, p.shape, \
     p.colors, p.attributes, p.model_id, p.image_hash, p.created_at, p.updated_at, \
     n.account, n.environment, p.vec_id, j.status, j.error_code, j.error_message";

pub(crate) const FROM: &str = "FROM products p JOIN namespaces n ON n.id = p.ns \
     LEFT JOIN ingest_jobs j ON j.product_pk = p.pk";

pub(crate) fn f32s_to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub(crate) fn blob_to_f32s(b: &[u8]) -> Result<Vec<f32>> {
    if !b.len().is_multiple_of(4) {
        return Err(Error::Internal(format!(
            "stored vector has {} bytes, not a multiple of 4",
            b.len()
        )));
    }
    Ok(b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn json_err(what: &str, e: serde_json::Error) -> Error {
    Error::Internal(format!("stored {what} is not valid JSON: {e}"))
}

/// The `colors` column holds `[{lab, share}]` with shares as fractions of 1, as databases
/// written before shares became percent everywhere hold them; the API's swatches are percent.
/// Converting here keeps every existing database readable without a migration.
fn colors_to_db(colors: &[ColorSwatch]) -> Result<String> {
    let stored: Vec<ColorSwatch> = colors
        .iter()
        .map(|c| ColorSwatch {
            lab: c.lab,
            share: c.share / 100.0,
        })
        .collect();
    serde_json::to_string(&stored).map_err(|e| Error::Internal(format!("colors: {e}")))
}

fn colors_from_db(text: &str) -> Result<Vec<ColorSwatch>> {
    let stored: Vec<ColorSwatch> = serde_json::from_str(text).map_err(|e| json_err("colors", e))?;
    Ok(stored
        .into_iter()
        .map(|c| ColorSwatch {
            lab: c.lab,
            share: c.share * 100.0,
        })
        .collect())
}

/// Maps one row selected with [`COLS`] to `(product, vec_id)`.
pub(crate) fn row_to_product(r: &Row<'_>) -> Result<(Product, Option<usize>)> {
    let metadata: String = r.get(11)?;
    let clip: Option<Vec<u8>> = r.get(12)?;
    let shape: Option<Vec<u8>> = r.get(13)?;
    let colors: String = r.get(14)?;
    let attributes: Option<String> = r.get(15)?;
    let env: String = r.get(21)?;
    let vec_id: Option<i64> = r.get(22)?;
    let job_status: Option<String> = r.get(23)?;
    let embedding_status = match job_status.as_deref() {
        None => EmbeddingStatus::Ready,
        Some("processing") => EmbeddingStatus::Processing,
        Some(_) => EmbeddingStatus::Failed {
            code: r.get::<_, Option<String>>(24)?.unwrap_or_default(),
            message: r.get::<_, Option<String>>(25)?.unwrap_or_default(),
        },
    };
    let product = Product {
        id: r.get(0)?,
        external_id: r.get(1)?,
        title: r.get(2)?,
        sku: r.get(3)?,
        description: r.get(4)?,
        brand: r.get(5)?,
        category: r.get(6)?,
        price: r.get(7)?,
        currency: r.get(8)?,
        image_url: r.get(9)?,
        product_url: r.get(10)?,
        metadata: serde_json::from_str(&metadata).map_err(|e| json_err("metadata", e))?,
        features: ProductFeatures {
            clip: clip.as_deref().map(blob_to_f32s).transpose()?,
            shape: shape.as_deref().map(blob_to_f32s).transpose()?,
            colors: colors_from_db(&colors)?,
            attributes: attributes
                .map(|a| serde_json::from_str(&a))
                .transpose()
                .map_err(|e| json_err("attributes", e))?,
            model_id: r.get(16)?,
        },
        image_hash: r.get(17)?,
        created_at_ms: r.get(18)?,
        updated_at_ms: r.get(19)?,
        namespace: Namespace {
            account: r.get(20)?,
            environment: env.parse()?,
        },
        embedding_status,
    };
    Ok((product, vec_id.map(|v| v as usize)))
}

pub(crate) fn meta_get(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT value FROM catalog_meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

pub(crate) fn meta_set(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO catalog_meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute([key, value])?;
    Ok(())
}

/// The namespace's row id, if it has one.
pub(crate) fn ns_id(conn: &Connection, ns: &Namespace) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT id FROM namespaces WHERE account = ?1 AND environment = ?2")?
        .query_row(params![ns.account, ns.environment.as_str()], |r| r.get(0))
        .optional()?)
}

pub(crate) fn ensure_ns(tx: &Transaction<'_>, ns: &Namespace) -> Result<i64> {
    if let Some(id) = ns_id(tx, ns)? {
        return Ok(id);
    }
    tx.prepare_cached("INSERT INTO namespaces (account, environment) VALUES (?1, ?2)")?
        .execute(params![ns.account, ns.environment.as_str()])?;
    Ok(tx.last_insert_rowid())
}

/// The model a namespace's embeddings come from (`catalog_meta` key `model:<ns id>`), recorded
/// by the first embedded upsert that named one, or by [`record_legacy_ns_models`] for data
/// stored before models were recorded. `None`: no model-tagged embedding yet. One key lookup:
/// searches call it.
pub(crate) fn ns_model(conn: &Connection, ns: i64) -> Result<Option<String>> {
    meta_get(conn, &format!("model:{ns}"))
}

/// Once per database (flag `ns_models_recorded`): records the model of every namespace that
/// holds model-tagged embeddings stored before per-namespace models were recorded, in one pass
/// over the products, so [`ns_model`] never has to scan them.
pub(crate) fn record_legacy_ns_models(conn: &mut Connection) -> Result<()> {
    const FLAG: &str = "ns_models_recorded";
    if meta_get(conn, FLAG)?.is_some() {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    if meta_get(&tx, FLAG)?.is_none() {
        let found: Vec<(i64, String)> = tx
            .prepare(
                "SELECT ns, model_id FROM products WHERE clip IS NOT NULL \
                 AND model_id IS NOT NULL GROUP BY ns",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<std::result::Result<_, _>>()?;
        for (ns, model) in found {
            if ns_model(&tx, ns)?.is_none() {
                set_ns_model(&tx, ns, Some(&model))?;
            }
        }
        meta_set(&tx, FLAG, "1")?;
    }
    tx.commit()?;
    Ok(())
}

pub(crate) fn set_ns_model(tx: &Transaction<'_>, ns: i64, model: Option<&str>) -> Result<()> {
    match model {
        Some(m) => meta_set(tx, &format!("model:{ns}"), m),
        None => {
            tx.prepare_cached("DELETE FROM catalog_meta WHERE key = ?1")?
                .execute([format!("model:{ns}")])?;
            Ok(())
        }
    }
}

/// Drops every embedding of a namespace (the products and their other channels stay).
pub(crate) fn clear_embeddings(tx: &Transaction<'_>, ns: i64) -> Result<Vec<usize>> {
    let ids: Vec<i64> = tx
        .prepare_cached("SELECT vec_id FROM products WHERE ns = ?1 AND vec_id IS NOT NULL")?
        .query_map([ns], |r| r.get(0))?
        .collect::<std::result::Result<_, _>>()?;
    tx.prepare_cached(
        "UPDATE products SET clip = NULL, vec_id = NULL, model_id = NULL WHERE ns = ?1",
    )?
    .execute([ns])?;
    Ok(ids.into_iter().map(|v| v as usize).collect())
}

pub(crate) fn bump_generation(tx: &Transaction<'_>, ns: i64) -> Result<()> {
    tx.prepare_cached("UPDATE namespaces SET generation = generation + 1 WHERE id = ?1")?
        .execute([ns])?;
    Ok(())
}

pub(crate) fn generation(conn: &Connection, ns: i64) -> Result<u64> {
    let g: i64 = conn
        .prepare_cached("SELECT generation FROM namespaces WHERE id = ?1")?
        .query_row([ns], |r| r.get(0))?;
    Ok(g as u64)
}

/// All namespaces: `(id, namespace)`.
pub(crate) fn namespaces(conn: &Connection) -> Result<Vec<(i64, Namespace)>> {
    let mut st = conn.prepare_cached("SELECT id, account, environment FROM namespaces")?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, account, env) = row?;
        out.push((
            id,
            Namespace {
                account,
                environment: env.parse::<Environment>()?,
            },
        ));
    }
    Ok(out)
}

/// The next never-used ANN id (persisted, so ids are never reused even across crashes of
/// committed transactions).
pub(crate) fn next_vec_id(tx: &Transaction<'_>) -> Result<usize> {
    let cur: i64 = meta_get(tx, "next_vec_id")?
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    meta_set(tx, "next_vec_id", &(cur + 1).to_string())?;
    Ok(cur as usize)
}

pub(crate) fn last_vec_id(conn: &Connection) -> Result<usize> {
    let next: i64 = meta_get(conn, "next_vec_id")?
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    Ok((next - 1).max(0) as usize)
}

/// What an upsert changed in the index.
pub(crate) struct Upserted {
    pub product: Product,
    /// The row's key (the queue refers to it).
    pub pk: i64,
    pub old_vec: Option<usize>,
    pub new_vec: Option<Entry>,
}

/// Inserts or replaces one product (matched by `(ns, external_id)`). `p.features.clip` must
/// already be normalised and of the catalog dimension.
pub(crate) fn upsert(
    tx: &Transaction<'_>,
    ns_id: i64,
    ns: &Namespace,
    p: &NewProduct,
    now_ms: i64,
) -> Result<Upserted> {
    let existing: Option<(i64, String, i64, Option<i64>)> = tx
        .prepare_cached(
            "SELECT pk, id, created_at, vec_id FROM products WHERE ns = ?1 AND external_id = ?2",
        )?
        .query_row(params![ns_id, p.external_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let new_vec_id = match &p.features.clip {
        Some(_) => Some(next_vec_id(tx)?),
        None => None,
    };
    let vec_id = new_vec_id.map(|i| i as i64);
    let clip = p.features.clip.as_deref().map(f32s_to_blob);
    let shape = p.features.shape.as_deref().map(f32s_to_blob);
    let colors = colors_to_db(&p.features.colors)?;
    let attributes = p
        .features
        .attributes
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| Error::Internal(format!("attributes: {e}")))?;
    let metadata = serde_json::to_string(&p.metadata)
        .map_err(|e| Error::Internal(format!("metadata: {e}")))?;
    let currency = p.currency.clone().unwrap_or_else(|| "USD".to_string());
    let (pk, id, created_at, old_vec) = match existing {
        Some((pk, id, created_at, old_vec)) => {
            tx.prepare_cached(
                "UPDATE products SET title = ?2, sku = ?3, description = ?4, brand = ?5,
                   category = ?6, price = ?7, currency = ?8, image_url = ?9, product_url = ?10,
                   metadata = ?11, clip = ?12, vec_id = ?13, shape = ?14, colors = ?15,
                   attributes = ?16, model_id = ?17, image_hash = ?18, updated_at = ?19
                 WHERE pk = ?1",
            )?
            .execute(params![
                pk,
                p.title,
                p.sku,
                p.description,
                p.brand,
                p.category,
                p.price,
                currency,
                p.image_url,
                p.product_url,
                metadata,
                clip,
                vec_id,
                shape,
                colors,
                attributes,
                p.features.model_id,
                p.image_hash,
                now_ms
            ])?;
            (pk, id, created_at, old_vec.map(|v| v as usize))
        }
        None => {
            let id = uuid::Uuid::new_v4().to_string();
            tx.prepare_cached(
                "INSERT INTO products (id, ns, external_id, title, sku, description, brand,
                   category, price, currency, image_url, product_url, metadata, clip, vec_id,
                   shape, colors, attributes, model_id, image_hash, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                   ?16, ?17, ?18, ?19, ?20, ?21, ?21)",
            )?
            .execute(params![
                id,
                ns_id,
                p.external_id,
                p.title,
                p.sku,
                p.description,
                p.brand,
                p.category,
                p.price,
                currency,
                p.image_url,
                p.product_url,
                metadata,
                clip,
                vec_id,
                shape,
                colors,
                attributes,
                p.features.model_id,
                p.image_hash,
                now_ms
            ])?;
            (tx.last_insert_rowid(), id, now_ms, None)
        }
    };
    // A write with the product's features supersedes a queued one.
    tx.prepare_cached("DELETE FROM ingest_jobs WHERE product_pk = ?1")?
        .execute([pk])?;
    let product = p.to_product(id, ns, created_at, now_ms);
    let new_vec = match (new_vec_id, &product.features.clip) {
        (Some(i), Some(v)) => Some((
            i,
            v.clone(),
            HotSource {
                id: product.id.clone(),
                brand: product.brand.clone(),
                category: product.category.clone(),
                currency: product.currency.clone(),
                price: product.price,
                shape: product.features.shape.clone(),
                colors: product.features.colors.clone(),
            },
        )),
        _ => None,
    };
    Ok(Upserted {
        product,
        pk,
        old_vec,
        new_vec,
    })
}

/// Deletes by product id; returns whether a row went and its ANN id.
pub(crate) fn delete(tx: &Transaction<'_>, ns_id: i64, id: &str) -> Result<Option<Option<usize>>> {
    let vec: Option<Option<i64>> = tx
        .prepare_cached("DELETE FROM products WHERE ns = ?1 AND id = ?2 RETURNING vec_id")?
        .query_row(params![ns_id, id], |r| r.get(0))
        .optional()?;
    Ok(vec.map(|v| v.map(|v| v as usize)))
}

/// One product by a unique column (`id` or `external_id`).
pub(crate) fn get_by(
    conn: &Connection,
    ns_id: i64,
    column: &'static str,
    value: &str,
) -> Result<Option<(Product, Option<usize>)>> {
    let sql = format!("SELECT {COLS} {FROM} WHERE p.ns = ?1 AND p.{column} = ?2");
    let mut st = conn.prepare_cached(&sql)?;
    let mut rows = st.query(params![ns_id, value])?;
    match rows.next()? {
        Some(r) => Ok(Some(row_to_product(r)?)),
        None => Ok(None),
    }
}

/// Products in `pk` order after `after_pk`, at most `limit`, with their `pk`.
pub(crate) fn list(
    conn: &Connection,
    ns_id: i64,
    after_pk: i64,
    limit: usize,
    filter: &ProductFilter,
) -> Result<Vec<(i64, Product)>> {
    let mut sql = format!("SELECT {COLS}, p.pk {FROM} WHERE p.ns = ? AND p.pk > ?");
    let mut vals = vec![Value::Integer(ns_id), Value::Integer(after_pk)];
    filter.push_sql(&mut sql, &mut vals)?;
    sql.push_str(" ORDER BY p.pk LIMIT ?");
    vals.push(Value::Integer(limit as i64));
    let mut st = conn.prepare_cached(&sql)?;
    let mut rows = st.query(params_from_iter(vals))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let pk: i64 = r.get(26)?;
        out.push((pk, row_to_product(r)?.0));
    }
    Ok(out)
}

/// Number of the namespace's products matching `filter`.
pub(crate) fn count(conn: &Connection, ns_id: i64, filter: &ProductFilter) -> Result<u64> {
    let mut sql = "SELECT COUNT(*) FROM products WHERE ns = ?".to_string();
    let mut vals = vec![Value::Integer(ns_id)];
    filter.push_sql(&mut sql, &mut vals)?;
    let n: i64 = conn
        .prepare_cached(&sql)?
        .query_row(params_from_iter(vals), |r| r.get(0))?;
    Ok(n as u64)
}

/// `external_id → image_hash` of the namespace's products among `external_ids` (for ingest
/// resume).
pub(crate) fn image_hashes(
    conn: &Connection,
    ns_id: i64,
    external_ids: &[&str],
) -> Result<std::collections::HashMap<String, Option<String>>> {
    let mut out = std::collections::HashMap::with_capacity(external_ids.len());
    for chunk in external_ids.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(",");
        let sql = format!(
            "SELECT external_id, image_hash FROM products WHERE ns = ? AND external_id IN ({marks})"
        );
        let mut vals = vec![Value::Integer(ns_id)];
        vals.extend(chunk.iter().map(|e| Value::Text((*e).to_string())));
        let mut st = conn.prepare(&sql)?;
        let mut rows = st.query(params_from_iter(vals))?;
        while let Some(r) = rows.next()? {
            out.insert(r.get(0)?, r.get(1)?);
        }
    }
    Ok(out)
}

/// Sorted ANN ids of products with an embedding that match `filter`.
pub(crate) fn filtered_vec_ids(
    conn: &Connection,
    ns_id: i64,
    filter: &ProductFilter,
) -> Result<Vec<usize>> {
    let mut sql = "SELECT vec_id FROM products WHERE ns = ? AND vec_id IS NOT NULL".to_string();
    let mut vals = vec![Value::Integer(ns_id)];
    filter.push_sql(&mut sql, &mut vals)?;
    sql.push_str(" ORDER BY vec_id");
    let mut st = conn.prepare_cached(&sql)?;
    let ids = st
        .query_map(params_from_iter(vals), |r| r.get::<_, i64>(0))?
        .map(|r| r.map(|v| v as usize))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(ids)
}

/// Every product of the namespace matching `filter` (for queries with no embedding).
pub(crate) fn all_filtered(
    conn: &Connection,
    ns_id: i64,
    filter: &ProductFilter,
) -> Result<Vec<Product>> {
    let mut sql = format!("SELECT {COLS} {FROM} WHERE p.ns = ?");
    let mut vals = vec![Value::Integer(ns_id)];
    filter.push_sql(&mut sql, &mut vals)?;
    let mut st = conn.prepare_cached(&sql)?;
    let mut rows = st.query(params_from_iter(vals))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(row_to_product(r)?.0);
    }
    Ok(out)
}

/// Number of the namespace's products with an embedding.
pub(crate) fn live_count(conn: &Connection, ns_id: i64) -> Result<usize> {
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM products WHERE ns = ?1 AND vec_id IS NOT NULL")?
        .query_row([ns_id], |r| r.get(0))?;
    Ok(n as usize)
}

const HOT_COLS: &str = "vec_id, id, brand, category, currency, price, shape, colors";

fn row_to_hot(r: &Row<'_>) -> Result<(usize, HotSource)> {
    let vec_id: i64 = r.get(0)?;
    let shape: Option<Vec<u8>> = r.get(6)?;
    let colors: String = r.get(7)?;
    Ok((
        vec_id as usize,
        HotSource {
            id: r.get(1)?,
            brand: r.get(2)?,
            category: r.get(3)?,
            currency: r.get(4)?,
            price: r.get(5)?,
            shape: shape.as_deref().map(blob_to_f32s).transpose()?,
            colors: colors_from_db(&colors)?,
        },
    ))
}

/// Ranking data of the namespace's products with `vec_id <= upto` (those already in a saved
/// graph), without their vectors.
pub(crate) fn hot_rows(
    conn: &Connection,
    ns_id: i64,
    upto: usize,
) -> Result<Vec<(usize, HotSource)>> {
    let sql = format!(
        "SELECT {HOT_COLS} FROM products WHERE ns = ?1 AND vec_id IS NOT NULL AND vec_id <= ?2"
    );
    let mut st = conn.prepare_cached(&sql)?;
    let mut rows = st.query(params![ns_id, upto as i64])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(row_to_hot(r)?);
    }
    Ok(out)
}

/// `(vec_id, clip, ranking data)` of the namespace's products with `vec_id > after`, in id
/// order.
pub(crate) fn entries(conn: &Connection, ns_id: i64, after: usize) -> Result<Vec<Entry>> {
    let sql = format!(
        "SELECT {HOT_COLS}, clip FROM products WHERE ns = ?1 AND vec_id > ?2 ORDER BY vec_id"
    );
    let mut st = conn.prepare_cached(&sql)?;
    let mut rows = st.query(params![ns_id, after as i64])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let (id, hot) = row_to_hot(r)?;
        let blob: Vec<u8> = r.get(8)?;
        out.push((id, blob_to_f32s(&blob)?, hot));
    }
    Ok(out)
}

/// The live product with this ANN id.
pub(crate) fn by_vec_id(conn: &Connection, ns_id: i64, vec_id: usize) -> Result<Option<Product>> {
    let sql = format!("SELECT {COLS} {FROM} WHERE p.ns = ?1 AND p.vec_id = ?2");
    let mut st = conn.prepare_cached(&sql)?;
    let mut rows = st.query(params![ns_id, vec_id as i64])?;
    match rows.next()? {
        Some(r) => Ok(Some(row_to_product(r)?.0)),
        None => Ok(None),
    }
}

/// `(vec_id, clip)` for the given ids.
pub(crate) fn vectors_for(
    conn: &Connection,
    ns_id: i64,
    ids: &[usize],
) -> Result<Vec<(usize, Vec<f32>)>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(",");
        let sql = format!("SELECT vec_id, clip FROM products WHERE ns = ? AND vec_id IN ({marks})");
        let mut vals = vec![Value::Integer(ns_id)];
        vals.extend(chunk.iter().map(|i| Value::Integer(*i as i64)));
        let mut st = conn.prepare(&sql)?;
        let mut rows = st.query(params_from_iter(vals))?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let blob: Vec<u8> = r.get(1)?;
            out.push((id as usize, blob_to_f32s(&blob)?));
        }
    }
    Ok(out)
}

/// Queues the product at `pk` for extraction from `image_url` (replacing any earlier job).
pub(crate) fn enqueue(tx: &Transaction<'_>, pk: i64, image_url: &str, now_ms: i64) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO ingest_jobs (product_pk, image_url, status, enqueued_at, updated_at) \
         VALUES (?1, ?2, 'processing', ?3, ?3)",
    )?
    .execute(params![pk, image_url, now_ms])?;
    Ok(())
}

/// Adds what [`SCHEMA`]'s `CREATE ... IF NOT EXISTS` cannot to a database written by an
/// earlier version: `ingest_jobs.claimed_until` (job claims).
pub(crate) fn upgrade(conn: &Connection) -> Result<()> {
    let has_claims: bool = conn.query_row(
        "SELECT count(*) > 0 FROM pragma_table_info('ingest_jobs') WHERE name = 'claimed_until'",
        [],
        |r| r.get(0),
    )?;
    if !has_claims {
        conn.execute_batch(
            "ALTER TABLE ingest_jobs ADD COLUMN claimed_until INTEGER NOT NULL DEFAULT 0",
        )?;
    }
    Ok(())
}

const JOB_SELECT: &str =
    "SELECT j.id, n.account, n.environment, p.id, p.external_id, j.image_url, \
     j.enqueued_at FROM ingest_jobs j JOIN products p ON p.pk = j.product_pk \
     JOIN namespaces n ON n.id = p.ns";

fn row_to_job(r: &Row<'_>) -> Result<IngestJob> {
    let env: String = r.get(2)?;
    Ok(IngestJob {
        job_id: r.get(0)?,
        namespace: Namespace {
            account: r.get(1)?,
            environment: env.parse()?,
        },
        product_id: r.get(3)?,
        external_id: r.get(4)?,
        image_url: r.get(5)?,
        enqueued_at_ms: r.get(6)?,
    })
}

/// Jobs still processing, claimed or not, oldest first.
pub(crate) fn pending_jobs(conn: &Connection, limit: usize) -> Result<Vec<IngestJob>> {
    let mut st = conn.prepare_cached(&format!(
        "{JOB_SELECT} WHERE j.status = 'processing' ORDER BY j.id LIMIT ?1"
    ))?;
    let mut rows = st.query([limit as i64])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(row_to_job(r)?);
    }
    Ok(out)
}

/// Claims up to `limit` processing jobs whose claim ended by `now_ms`, oldest first, until
/// `until_ms`. Runs in the caller's `BEGIN IMMEDIATE` transaction, so two claims never
/// overlap.
pub(crate) fn claim_jobs(
    tx: &Transaction<'_>,
    limit: usize,
    now_ms: i64,
    until_ms: i64,
) -> Result<Vec<IngestJob>> {
    let mut jobs = Vec::new();
    {
        let mut st = tx.prepare_cached(&format!(
            "{JOB_SELECT} WHERE j.status = 'processing' AND j.claimed_until <= ?2 \
             ORDER BY j.id LIMIT ?1"
        ))?;
        let mut rows = st.query(params![limit as i64, now_ms])?;
        while let Some(r) = rows.next()? {
            jobs.push(row_to_job(r)?);
        }
    }
    let mut claim = tx.prepare_cached("UPDATE ingest_jobs SET claimed_until = ?2 WHERE id = ?1")?;
    for job in &jobs {
        claim.execute(params![job.job_id, until_ms])?;
    }
    Ok(jobs)
}

/// Whether `job_id` is still pending for product `product_id`.
pub(crate) fn job_pending(tx: &Transaction<'_>, job_id: i64, product_id: &str) -> Result<bool> {
    Ok(tx
        .prepare_cached(
            "SELECT 1 FROM ingest_jobs j JOIN products p ON p.pk = j.product_pk \
             WHERE j.id = ?1 AND p.id = ?2 AND j.status = 'processing'",
        )?
        .query_row(params![job_id, product_id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Marks a pending job failed; whether it was pending.
pub(crate) fn fail_job(
    tx: &Transaction<'_>,
    job_id: i64,
    code: &str,
    message: &str,
    now_ms: i64,
) -> Result<bool> {
    Ok(tx
        .prepare_cached(
            "UPDATE ingest_jobs SET status = 'failed', error_code = ?2, error_message = ?3, \
             updated_at = ?4 WHERE id = ?1 AND status = 'processing'",
        )?
        .execute(params![job_id, code, message, now_ms])?
        > 0)
}
