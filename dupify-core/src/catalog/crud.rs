//! Writes and reads of single products: upsert (one or a batch, all or none), delete, get,
//! list with keyset paging, count, and the namespace's model binding.

use std::sync::atomic::Ordering;

use rusqlite::{Connection, TransactionBehavior};

use super::index::{self, IndexMode, NsIndex};
use super::{
    lock, now_ms, store, Catalog, ListPage, Namespace, NewProduct, Page, Product, ProductFilter,
};
use crate::error::{Error, Result};

impl Catalog {
    /// Inserts or replaces one product (matched by `external_id`).
    pub fn upsert(&self, ns: &Namespace, product: NewProduct) -> Result<Product> {
        let mut out = self.upsert_batch(ns, vec![product])?;
        out.pop()
            .ok_or_else(|| Error::Internal("upsert returned nothing".into()))
    }

    /// Inserts or replaces many products in one transaction: all or none. A batch with the
    /// same `external_id` twice keeps the last.
    pub fn upsert_batch(&self, ns: &Namespace, products: Vec<NewProduct>) -> Result<Vec<Product>> {
        ns.validate()?;
        let mut products = products;
        for p in &mut products {
            validate_new(p)?;
            if p.metadata.is_null() {
                p.metadata = serde_json::Value::Object(Default::default());
            }
            if let Some(c) = &mut p.currency {
                c.make_ascii_uppercase();
            }
        }
        let mut conn = lock(&self.writer);
        // The dimension is fixed by options, by the database, or by this first embedding.
        let dim = match self.dim() {
            Some(d) => Some(d),
            None => products
                .iter()
                .find_map(|p| p.features.clip.as_ref().map(Vec::len)),
        };
        if let Some(dim) = dim {
            for p in &mut products {
                if let Some(v) = &p.features.clip {
                    p.features.clip = Some(normalise("features.clip", v, dim)?);
                }
            }
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let ns_id = store::ensure_ns(&tx, ns)?;
        bind_model(&tx, ns_id, &products)?;
        if let (Some(d), None) = (dim, self.dim()) {
            store::meta_set(&tx, "dim", &d.to_string())?;
        }
        let now = now_ms();
        let mut saved = Vec::with_capacity(products.len());
        let mut removed = Vec::new();
        let mut added = Vec::new();
        for p in &products {
            let u = store::upsert(&tx, ns_id, ns, p, now)?;
            removed.extend(u.old_vec);
            added.extend(u.new_vec);
            saved.push(u.product);
        }
        store::bump_generation(&tx, ns_id)?;
        tx.commit()?;
        if let Some(d) = dim {
            *self.dim.write().unwrap_or_else(|p| p.into_inner()) = Some(d);
            self.apply(&conn, ns_id, d, &removed, added)?;
        }
        Ok(saved)
    }

    /// Applies a committed change to the in-memory index (writer lock held by the caller).
    pub(super) fn apply(
        &self,
        conn: &Connection,
        ns_id: i64,
        dim: usize,
        removed: &[usize],
        added: Vec<index::Entry>,
    ) -> Result<()> {
        let rebuild = {
            let mut indexes = self.indexes.write().unwrap_or_else(|p| p.into_inner());
            let ix = indexes
                .entry(ns_id)
                .or_insert_with(|| NsIndex::new(dim, self.index_params()));
            let rebuild = ix.remove(removed);
            ix.insert(added);
            rebuild
                || (ix.mode() == IndexMode::Ann
                    && ix.live_len() < self.opts.index.brute_force_below / 2)
        };
        if rebuild {
            // Built outside the index lock so searches keep running meanwhile.
            let mut fresh =
                NsIndex::build(dim, self.index_params(), store::entries(conn, ns_id, 0)?);
            let mut indexes = self.indexes.write().unwrap_or_else(|p| p.into_inner());
            // A `set_ef_search` may have run while the graph was being built.
            fresh.set_ef_search(self.ef_search.load(Ordering::Relaxed));
            indexes.insert(ns_id, fresh);
        }
        Ok(())
    }

    /// The model (`Features::model_id`) the namespace's embeddings come from, once one was
    /// stored with a model id; upserts and queries with another model's embedding are refused.
    pub fn namespace_model(&self, ns: &Namespace) -> Result<Option<String>> {
        ns.validate()?;
        self.read(|conn| match store::ns_id(conn, ns)? {
            Some(id) => store::ns_model(conn, id),
            None => Ok(None),
        })
    }

    /// Drops every image embedding of a namespace and forgets its model, keeping the products
    /// and their shape and colour channels: the explicit first step of switching a namespace
    /// to another image model. Re-ingest the images afterwards (`Catalog::ingest` with an
    /// extractor on the new model, matched by external id); until then searches rank by the
    /// shape and colour channels alone. Returns the number of embeddings dropped.
    pub fn clear_embeddings(&self, ns: &Namespace) -> Result<usize> {
        ns.validate()?;
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(ns_id) = store::ns_id(&tx, ns)? else {
            return Ok(0);
        };
        let removed = store::clear_embeddings(&tx, ns_id)?;
        store::set_ns_model(&tx, ns_id, None)?;
        store::bump_generation(&tx, ns_id)?;
        tx.commit()?;
        if let Some(d) = self.dim() {
            self.apply(&conn, ns_id, d, &removed, Vec::new())?;
        }
        Ok(removed.len())
    }

    /// Deletes a product by id. Deleted products are never returned again.
    pub fn delete(&self, ns: &Namespace, id: &str) -> Result<()> {
        ns.validate()?;
        let mut conn = lock(&self.writer);
        let not_found = || Error::NotFound {
            what: "product",
            id: id.to_string(),
        };
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(ns_id) = store::ns_id(&tx, ns)? else {
            return Err(not_found());
        };
        let Some(vec) = store::delete(&tx, ns_id, id)? else {
            return Err(not_found());
        };
        store::bump_generation(&tx, ns_id)?;
        tx.commit()?;
        if let (Some(v), Some(d)) = (vec, self.dim()) {
            self.apply(&conn, ns_id, d, &[v], Vec::new())?;
        }
        Ok(())
    }

    /// A product by catalog id.
    pub fn get(&self, ns: &Namespace, id: &str) -> Result<Product> {
        self.get_by(ns, "id", id)
    }

    /// A product by the caller's external id.
    pub fn get_by_external_id(&self, ns: &Namespace, external_id: &str) -> Result<Product> {
        self.get_by(ns, "external_id", external_id)
    }

    pub(super) fn get_by(
        &self,
        ns: &Namespace,
        column: &'static str,
        value: &str,
    ) -> Result<Product> {
        ns.validate()?;
        let found = self.read(|c| match store::ns_id(c, ns)? {
            Some(n) => store::get_by(c, n, column, value),
            None => Ok(None),
        })?;
        found.map(|(p, _)| p).ok_or_else(|| Error::NotFound {
            what: "product",
            id: value.to_string(),
        })
    }

    /// Products in insertion order, one page at a time, optionally filtered.
    pub fn list(&self, ns: &Namespace, page: &Page, filter: &ProductFilter) -> Result<ListPage> {
        ns.validate()?;
        let limit = match page.limit {
            0 => 50,
            l if l <= 1000 => l,
            _ => return Err(Error::invalid("limit", "must be ≤ 1000")),
        };
        let after: i64 = match &page.cursor {
            None => 0,
            Some(c) => c
                .parse()
                .ok()
                .filter(|v: &i64| *v >= 0)
                .ok_or_else(|| Error::invalid("cursor", "not a cursor from this catalog"))?,
        };
        let rows = self.read(|c| match store::ns_id(c, ns)? {
            Some(n) => store::list(c, n, after, limit + 1, filter),
            None => {
                // still validate the filter
                filter.push_sql(&mut String::new(), &mut Vec::new())?;
                Ok(Vec::new())
            }
        })?;
        let more = rows.len() > limit;
        let items: Vec<(i64, Product)> = rows.into_iter().take(limit).collect();
        let next_cursor = if more {
            items.last().map(|(pk, _)| pk.to_string())
        } else {
            None
        };
        Ok(ListPage {
            items: items.into_iter().map(|(_, p)| p).collect(),
            next_cursor,
        })
    }

    /// Products in `ns` matching `filter`.
    pub fn count(&self, ns: &Namespace, filter: &ProductFilter) -> Result<u64> {
        ns.validate()?;
        filter.push_sql(&mut String::new(), &mut Vec::new())?;
        self.read(|c| match store::ns_id(c, ns)? {
            Some(n) => store::count(c, n, filter),
            None => Ok(0),
        })
    }
}

pub(super) fn normalise(name: &str, v: &[f32], dim: usize) -> Result<Vec<f32>> {
    if v.len() != dim {
        return Err(Error::invalid(
            name,
            format!("has dimension {}, the catalog's is {dim}", v.len()),
        ));
    }
    if v.iter().any(|x| !x.is_finite()) {
        return Err(Error::invalid(name, "contains NaN or infinity"));
    }
    let n = index::dot(v, v).sqrt();
    if n == 0.0 {
        return Err(Error::invalid(name, "is the zero vector"));
    }
    Ok(v.iter().map(|x| x / n).collect())
}

pub(super) fn validate_new(p: &NewProduct) -> Result<()> {
    if p.external_id.is_empty() || p.external_id.len() > 512 {
        return Err(Error::invalid("external_id", "must be 1..=512 bytes"));
    }
    if let Some(pr) = p.price {
        if !pr.is_finite() || pr < 0.0 {
            return Err(Error::invalid("price", "must be a finite number ≥ 0"));
        }
    }
    if let Some(c) = &p.currency {
        if c.len() != 3 || !c.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(Error::invalid(
                "currency",
                "must be a 3-letter ISO 4217 code",
            ));
        }
    }
    if !p.metadata.is_object() && !p.metadata.is_null() {
        return Err(Error::invalid("metadata", "must be a JSON object"));
    }
    if let Some(s) = &p.features.shape {
        if s.is_empty() || s.iter().any(|x| !x.is_finite()) {
            return Err(Error::invalid(
                "features.shape",
                "must be non-empty and finite",
            ));
        }
    }
    for c in &p.features.colors {
        if c.lab.iter().any(|x| !x.is_finite()) || !(0.0..=100.0).contains(&c.share) {
            return Err(Error::invalid(
                "features.colors",
                "lab must be finite and share a percentage in 0..=100",
            ));
        }
    }
    Ok(())
}

/// Refuses a batch whose embeddings come from a model other than the namespace's (or from
/// two models at once), and records the model on the namespace's first tagged embedding.
/// Embeddings without a model id are the caller's responsibility and pass.
fn bind_model(tx: &rusqlite::Transaction<'_>, ns_id: i64, products: &[NewProduct]) -> Result<()> {
    let mut bound = store::ns_model(tx, ns_id)?;
    let recorded = bound.is_some();
    for p in products {
        let (Some(_), Some(m)) = (&p.features.clip, &p.features.model_id) else {
            continue;
        };
        match &bound {
            Some(b) if b != m => return Err(model_mismatch("features.model_id", m, b)),
            Some(_) => {}
            None => bound = Some(m.clone()),
        }
    }
    if let (false, Some(m)) = (recorded, &bound) {
        store::set_ns_model(tx, ns_id, Some(m))?;
    }
    Ok(())
}

pub(super) fn model_mismatch(field: &str, got: &str, have: &str) -> Error {
    Error::invalid(
        field,
        format!(
            "embedding from model {got}, but this namespace holds embeddings of model {have}; \
             a namespace never mixes two models' embeddings (to switch models, call \
             Catalog::clear_embeddings and re-ingest the images with the new model)"
        ),
    )
}
