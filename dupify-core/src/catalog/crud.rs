//! Writes and reads of single products: upsert (one or a batch, all or none), delete, get,
//! list with keyset paging, count, and the namespace's model binding.

use super::backend::ProductKey;
use super::score::dot;
use super::{Catalog, ListPage, Namespace, NewProduct, Page, Product, ProductFilter};
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
        for p in &products {
            validate_new(p)?;
        }
        let (products, dim) = prepare_batch(products, self.backend.dim())?;
        let bind = |recorded: Option<&str>| bind_model(recorded, &products);
        self.backend.upsert(ns, &products, dim, &bind)
    }

    /// The model (`Features::model_id`) the namespace's embeddings come from, once one was
    /// stored with a model id; upserts and queries with another model's embedding are refused.
    pub fn namespace_model(&self, ns: &Namespace) -> Result<Option<String>> {
        ns.validate()?;
        self.backend.namespace_model(ns)
    }

    /// Drops every image embedding of a namespace and forgets its model, keeping the products
    /// and their shape and colour channels: the explicit first step of switching a namespace
    /// to another image model. Re-ingest the images afterwards (`Catalog::ingest` with an
    /// extractor on the new model, matched by external id); until then searches rank by the
    /// shape and colour channels alone. Returns the number of embeddings dropped.
    pub fn clear_embeddings(&self, ns: &Namespace) -> Result<usize> {
        ns.validate()?;
        self.backend.clear_embeddings(ns)
    }

    /// Deletes a product by id. Deleted products are never returned again.
    pub fn delete(&self, ns: &Namespace, id: &str) -> Result<()> {
        ns.validate()?;
        if self.backend.delete(ns, id)? {
            Ok(())
        } else {
            Err(Error::NotFound {
                what: "product",
                id: id.to_string(),
            })
        }
    }

    /// A product by catalog id.
    pub fn get(&self, ns: &Namespace, id: &str) -> Result<Product> {
        self.get_by(ns, ProductKey::Id(id))
    }

    /// A product by the caller's external id.
    pub fn get_by_external_id(&self, ns: &Namespace, external_id: &str) -> Result<Product> {
        self.get_by(ns, ProductKey::ExternalId(external_id))
    }

    pub(super) fn get_by(&self, ns: &Namespace, key: ProductKey<'_>) -> Result<Product> {
        ns.validate()?;
        let (ProductKey::Id(value) | ProductKey::ExternalId(value)) = key;
        self.backend.get(ns, key)?.ok_or_else(|| Error::NotFound {
            what: "product",
            id: value.to_string(),
        })
    }

    /// Products in insertion order, one page at a time, optionally filtered.
    pub fn list(&self, ns: &Namespace, page: &Page, filter: &ProductFilter) -> Result<ListPage> {
        ns.validate()?;
        filter.validate()?;
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
        let rows = self.backend.list(ns, after, limit + 1, filter)?;
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
        filter.validate()?;
        self.backend.count(ns, filter)
    }
}

/// Validated products made ready for a backend: empty metadata as `{}`, currency upper
/// case, embeddings normalised to the catalog's dimension — fixed by options, by the database
/// (`dim`), or by this batch's first embedding, which is returned.
pub(super) fn prepare_batch(
    mut products: Vec<NewProduct>,
    dim: Option<usize>,
) -> Result<(Vec<NewProduct>, Option<usize>)> {
    for p in &mut products {
        if p.metadata.is_null() {
            p.metadata = serde_json::Value::Object(Default::default());
        }
        if let Some(c) = &mut p.currency {
            c.make_ascii_uppercase();
        }
    }
    let dim = dim.or_else(|| {
        products
            .iter()
            .find_map(|p| p.features.clip.as_ref().map(Vec::len))
    });
    if let Some(dim) = dim {
        for p in &mut products {
            if let Some(v) = &p.features.clip {
                p.features.clip = Some(normalise("features.clip", v, dim)?);
            }
        }
    }
    Ok((products, dim))
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
    let n = dot(v, v).sqrt();
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

/// The namespace's model binding rule, run by the backend inside the write: refuses a batch
/// whose embeddings come from a model other than the namespace's `recorded` one (or from two
/// models at once), and returns the model to record on the namespace's first tagged
/// embedding. Embeddings without a model id are the caller's responsibility and pass.
pub(super) fn bind_model(
    recorded: Option<&str>,
    products: &[NewProduct],
) -> Result<Option<String>> {
    let mut bound = recorded.map(str::to_string);
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
    Ok(if recorded.is_none() { bound } else { None })
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
