//! Catalog operations that need an [`Extractor`]: bulk ingest of product images with resume,
//! and search by image or by text.
//!
//! Ingest works in chunks of the extractor's batch size: hash each item's image, skip items
//! whose `external_id` is already stored with that same image hash (so a re-run after a crash
//! or a cancel only does the remaining work), extract the rest in one batch, and upsert the
//! chunk in one transaction. Per-item problems (bad product fields, unreadable images, a
//! cancelled run) are collected in the report and never abort the run; only problems of the
//! whole call (the model cannot load, its dimension differs from the catalog's, the database
//! fails) return an error, and every chunk committed before it stays committed.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{validate_new, Catalog, Namespace, NewProduct, ProductFeatures};
use crate::error::{Error, Result};
use crate::extractor::{BatchOptions, CancelToken, Extractor, Ops};
use crate::input::{self, content_hash, load_bytes, ImageInput, InputLimits};

/// One product to ingest and the image its features are extracted from.
#[derive(Debug, Clone)]
pub struct IngestItem {
    /// The product; its `features` and `image_hash` are replaced by the extracted ones.
    pub product: NewProduct,
    /// Its image.
    pub image: ImageInput,
}

impl IngestItem {
    /// Pairs a product with its image.
    pub fn new(product: NewProduct, image: ImageInput) -> Self {
        IngestItem { product, image }
    }
}

/// Options of one [`Catalog::ingest`] call.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct IngestOptions {
    /// Called with `(done, total)` as items are accounted for (indexed, skipped or failed),
    /// after their chunk is committed.
    pub progress: Option<Arc<dyn Fn(usize, usize) + Send + Sync>>,
    /// Checked before every chunk and by the extractor before every item: items not started
    /// when it is cancelled are reported as failed with code `cancelled`.
    pub cancel: CancelToken,
}

impl IngestOptions {
    /// Calls `f(done, total)` as items are accounted for.
    pub fn with_progress(mut self, f: impl Fn(usize, usize) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }
    /// Stops the ingest when `token` is cancelled.
    pub fn with_cancel(mut self, token: CancelToken) -> Self {
        self.cancel = token;
        self
    }
}

impl fmt::Debug for IngestOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IngestOptions")
            .field("progress", &self.progress.is_some())
            .field("cancel", &self.cancel)
            .finish()
    }
}

/// What an ingest did. `indexed + skipped + failed.len()` is the number of items given.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IngestReport {
    /// Items extracted and upserted.
    pub indexed: usize,
    /// Items already stored under their `external_id` with the same image hash.
    pub skipped: usize,
    /// Items that could not be ingested, in input order.
    pub failed: Vec<IngestFailure>,
}

/// One item that could not be ingested.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngestFailure {
    /// The item's `external_id`.
    pub external_id: String,
    /// Hosted error code (e.g. `unsupported_format`, `invalid_parameter`, `cancelled`).
    pub code: String,
    /// Human-readable reason.
    pub message: String,
}

impl IngestFailure {
    fn new(external_id: &str, e: &Error) -> Self {
        IngestFailure {
            external_id: external_id.to_string(),
            code: e.code().to_string(),
            message: e.to_string(),
        }
    }
}

/// The image's content hash — the same SHA-256 the extractor reports as
/// `Features::content_hash` — and the input to extract from. Files and base64 are read once
/// here and handed on as bytes, so they are not read twice.
fn hash_image(image: ImageInput, limits: &InputLimits) -> Result<(String, ImageInput)> {
    if let ImageInput::Url(_) = image {
        input::decode(&image, limits)?;
        return Err(Error::NotAvailable {
            what: "ingest of image_url inputs: fetch the bytes and pass them".into(),
        });
    }
    let (hash, loaded) = {
        let bytes = load_bytes(&image, limits)?;
        let hash = content_hash(&bytes);
        // A file or base64 text was just read into memory: hand those bytes on.
        let loaded = match (&image, bytes) {
            (ImageInput::Path(_) | ImageInput::Base64(_), Cow::Owned(b)) => Some(b),
            _ => None,
        };
        (hash, loaded)
    };
    Ok((hash, loaded.map_or(image, ImageInput::Bytes)))
}

/// An item after hashing, waiting for extraction.
struct Pending {
    product: NewProduct,
    hash: String,
    image: ImageInput,
}

impl Catalog {
    /// Bulk ingest: extracts features (embed, colors, silhouette, attributes when loaded) for
    /// each item's image with `extractor` (batched), upserts by external_id. Resume: an item
    /// whose external_id is already stored with the same image content hash is skipped.
    /// Per-item errors are collected, never abort the run.
    ///
    /// Attributes are extracted when the extractor's attribute heads load; without them the
    /// products are stored without attributes rather than failing.
    pub fn ingest(
        &self,
        ns: &Namespace,
        extractor: &Extractor,
        items: Vec<IngestItem>,
        opts: &IngestOptions,
    ) -> Result<IngestReport> {
        ns.validate()?;
        let total = items.len();
        let mut report = IngestReport::default();
        if total == 0 {
            return Ok(report);
        }
        // Whole-call failures first, before any work: no model, or the wrong dimension.
        let model_dim = extractor.embed_dim()?;
        if let Some(d) = self.backend.dim() {
            if d != model_dim {
                return Err(Error::invalid(
                    "extractor",
                    format!("its model makes {model_dim}-d embeddings, the catalog stores {d}-d"),
                ));
            }
        }
        let model = extractor.model_id()?;
        if let Some(have) = self.namespace_model(ns)? {
            if have != model {
                return Err(super::crud::model_mismatch("extractor", &model, &have));
            }
        }
        let ops = Ops {
            embed: true,
            colors: true,
            silhouette: true,
            attributes: extractor.warm_up().is_ok(),
            ..Ops::default()
        };
        let limits = extractor.config().limits;
        let chunk = extractor.config().batch_size.max(1);
        let batch_opts = BatchOptions {
            progress: None,
            cancel: Some(opts.cancel.clone()),
        };
        let mut done = 0usize;
        let mut account = |n: usize| {
            for _ in 0..n {
                done += 1;
                if let Some(p) = &opts.progress {
                    p(done, total);
                }
            }
        };

        let mut items = items.into_iter();
        loop {
            let part: Vec<IngestItem> = items.by_ref().take(chunk).collect();
            if part.is_empty() {
                break;
            }
            let n = part.len();
            if opts.cancel.is_cancelled() {
                for it in &part {
                    report.failed.push(IngestFailure::new(
                        &it.product.external_id,
                        &Error::Cancelled,
                    ));
                }
                account(n);
                continue;
            }
            // Hash and validate; a bad product fails alone, before any extraction.
            let mut pending: Vec<Pending> = Vec::with_capacity(n);
            for IngestItem { product, image } in part {
                match validate_new(&product).and_then(|()| hash_image(image, &limits)) {
                    Ok((hash, image)) => pending.push(Pending {
                        product,
                        hash,
                        image,
                    }),
                    Err(e) => report
                        .failed
                        .push(IngestFailure::new(&product.external_id, &e)),
                }
            }
            // Resume: skip what is stored with the same image, or repeated in this chunk.
            let ids: Vec<String> = pending
                .iter()
                .map(|p| p.product.external_id.clone())
                .collect();
            let stored = self.backend.image_hashes(ns, &ids)?;
            let mut seen: HashMap<String, String> = HashMap::new();
            let mut todo: Vec<Pending> = Vec::with_capacity(pending.len());
            for p in pending {
                let ext = &p.product.external_id;
                let same_stored = stored.get(ext) == Some(&p.hash);
                let same_here = seen.get(ext) == Some(&p.hash);
                if same_stored || same_here {
                    report.skipped += 1;
                } else {
                    seen.insert(ext.clone(), p.hash.clone());
                    todo.push(p);
                }
            }
            // Extract the rest in one batch.
            let (meta, inputs): (Vec<(NewProduct, String)>, Vec<ImageInput>) = todo
                .into_iter()
                .map(|p| ((p.product, p.hash), p.image))
                .unzip();
            let extracted = if inputs.is_empty() {
                Vec::new()
            } else {
                extractor.extract_batch(&inputs, ops, &batch_opts)?
            };
            let mut ready: Vec<NewProduct> = Vec::with_capacity(meta.len());
            for ((mut product, hash), res) in meta.into_iter().zip(extracted) {
                match res {
                    Ok(f) => {
                        product.features = ProductFeatures::from(&f);
                        product.image_hash = Some(hash);
                        ready.push(product);
                    }
                    Err(e) => report
                        .failed
                        .push(IngestFailure::new(&product.external_id, &e)),
                }
            }
            report.indexed += self.upsert_isolating(ns, ready, &mut report.failed);
            account(n);
        }
        Ok(report)
    }

    /// Upserts `products` in one transaction; when that fails, one by one so only the bad
    /// ones are reported. Returns how many were stored.
    fn upsert_isolating(
        &self,
        ns: &Namespace,
        products: Vec<NewProduct>,
        failed: &mut Vec<IngestFailure>,
    ) -> usize {
        if products.is_empty() {
            return 0;
        }
        let n = products.len();
        match self.upsert_batch(ns, products.clone()) {
            Ok(_) => n,
            Err(_) => {
                let mut ok = 0;
                for p in products {
                    let ext = p.external_id.clone();
                    match self.upsert(ns, p) {
                        Ok(_) => ok += 1,
                        Err(e) => failed.push(IngestFailure::new(&ext, &e)),
                    }
                }
                ok
            }
        }
    }
}
