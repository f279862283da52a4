//! `dupify.Catalog`, `dupify.Namespace` and the catalog's result objects. Products go in as
//! dicts in the core's JSON shape (`external_id`, `title`, `brand`, `price`, …), filters as
//! dicts of the core's `ProductFilter` fields; unknown keys are refused.

use std::path::PathBuf;

use dupify_core::catalog::{
    Catalog, CatalogOptions, ChannelScores, ChannelWeights, Environment, IndexParams, IndexReport,
    IngestFailure, IngestItem, IngestOptions, IngestReport, ListPage, Namespace, NewProduct, Page,
    Product, ProductFeatures, ProductFilter, SearchHit, SearchQuery,
};
use pyo3::conversion::FromPyObjectOwned;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::convert::{f32_array, f32_vec, from_py, image_input, serde_name};
use crate::error::{detached, Error, Failure, Result};
use crate::extractor::{Progress, PyCancelToken, PyExtractor};
use crate::results::{result_class, PyFeatures};

/// Whose products: one account in one environment (`live` or `test`). Test data never mixes
/// with live data.
#[pyclass(name = "Namespace", module = "dupify", frozen)]
#[derive(Clone)]
pub struct PyNamespace(pub Namespace);

#[pymethods]
impl PyNamespace {
    /// A namespace for `account` (1..=256 bytes) in `environment` (`live` or `test`).
    #[new]
    #[pyo3(signature = (account, environment="live"))]
    fn new(account: String, environment: &str) -> Result<Self> {
        let env: Environment = environment.parse()?;
        Ok(PyNamespace(Namespace::new(account, env)?))
    }
    /// The account id.
    #[getter]
    fn account(&self) -> &str {
        &self.0.account
    }
    /// `live` or `test`.
    #[getter]
    fn environment(&self) -> &'static str {
        self.0.environment.as_str()
    }
    /// The namespace as the core's JSON.
    fn to_dict(&self, py: Python<'_>) -> Result<Py<PyAny>> {
        crate::convert::to_dict(py, &self.0)
    }
    fn __repr__(&self) -> String {
        format!(
            "Namespace('{}', '{}')",
            self.0.account,
            self.0.environment.as_str()
        )
    }
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyNamespace>()
            .is_ok_and(|o| o.get().0 == self.0)
    }
    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.0.hash(&mut h);
        h.finish()
    }
}

/// A `Namespace`, or an `(account, environment)` tuple.
pub fn namespace(obj: &Bound<'_, PyAny>) -> Result<Namespace> {
    if let Ok(ns) = obj.cast::<PyNamespace>() {
        return Ok(ns.get().0.clone());
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        if let Ok((account, env)) = t.extract::<(String, String)>() {
            return Ok(Namespace::new(account, env.parse()?)?);
        }
    }
    Err(Failure::invalid(
        "namespace",
        "must be a dupify.Namespace or an (account, environment) tuple",
    )
    .into())
}

result_class! {
    /// A stored product.
    PyProduct = "Product" (Product) {
        /// Catalog id (UUID v4).
        id(p, py) -> String { p.id.clone() }
        /// The caller's id (unique per namespace).
        external_id(p, py) -> String { p.external_id.clone() }
        /// Title.
        title(p, py) -> Option<String> { p.title.clone() }
        /// SKU.
        sku(p, py) -> Option<String> { p.sku.clone() }
        /// Description.
        description(p, py) -> Option<String> { p.description.clone() }
        /// Brand.
        brand(p, py) -> Option<String> { p.brand.clone() }
        /// Category.
        category(p, py) -> Option<String> { p.category.clone() }
        /// Price in `currency` units.
        price(p, py) -> Option<f64> { p.price }
        /// ISO 4217 currency code.
        currency(p, py) -> String { p.currency.clone() }
        /// Image URL.
        image_url(p, py) -> Option<String> { p.image_url.clone() }
        /// Product page URL.
        product_url(p, py) -> Option<String> { p.product_url.clone() }
        /// Free-form metadata (a dict).
        metadata(p, py) -> Py<PyAny> { crate::convert::to_dict(py, &p.metadata)? }
        /// CLIP embedding stored for the product (float32 array), if any.
        embedding(p, py) -> Option<Py<PyAny>> {
            p.features.clip.as_deref().map(|e| f32_array(py, e).into_any().unbind())
        }
        /// Stored features (`clip`, `shape`, `colors`, `attributes`, `model_id`) as a dict.
        features(p, py) -> Py<PyAny> { crate::convert::to_dict(py, &p.features)? }
        /// Content hash of the source image.
        image_hash(p, py) -> Option<String> { p.image_hash.clone() }
        /// Unix milliseconds.
        created_at_ms(p, py) -> i64 { p.created_at_ms }
        /// Unix milliseconds.
        updated_at_ms(p, py) -> i64 { p.updated_at_ms }
        /// The product's namespace.
        namespace(p, py) -> PyNamespace { PyNamespace(p.namespace.clone()) }
    }
}

result_class! {
    /// One search result with its combined score and per-channel breakdown.
    PySearchHit = "SearchHit" (SearchHit) {
        /// The product.
        product(h, py) -> PyProduct { PyProduct(h.product.clone()) }
        /// Weighted combination of `scores`.
        score(h, py) -> f32 { h.score }
        /// Per-channel similarities.
        scores(h, py) -> PyChannelScores { PyChannelScores(h.scores) }
    }
}

result_class! {
    /// Per-channel similarities of a hit (`None` when either side lacks the channel).
    PyChannelScores = "ChannelScores" (ChannelScores) {
        /// CLIP cosine similarity.
        clip(s, py) -> Option<f32> { s.clip }
        /// Shape cosine similarity.
        shape(s, py) -> Option<f32> { s.shape }
        /// Colour palette similarity.
        color(s, py) -> Option<f32> { s.color }
    }
}

result_class! {
    /// One page of products; pass `next_cursor` to `list()` for the next one.
    PyListPage = "ListPage" (ListPage) {
        /// The products of this page.
        items(l, py) -> Vec<PyProduct> { l.items.iter().cloned().map(PyProduct).collect() }
        /// Cursor of the next page (`None` at the end).
        next_cursor(l, py) -> Option<String> { l.next_cursor.clone() }
    }
}

result_class! {
    /// State of one namespace's vector index.
    PyIndexReport = "IndexReport" (IndexReport) {
        /// The namespace.
        namespace(r, py) -> PyNamespace { PyNamespace(r.namespace.clone()) }
        /// `exact` (brute force) or `ann` (HNSW graph).
        mode(r, py) -> String { serde_name(&r.mode) }
        /// Where the index came from (`memory`, `loaded`, `reconciled`, `rebuilt`).
        source(r, py) -> String { serde_name(&r.source) }
        /// Live vectors.
        live(r, py) -> usize { r.live }
        /// Deleted vectors still in the graph.
        tombstones(r, py) -> usize { r.tombstones }
        /// The `ef_search` the graph's searches use (`None`: exact search).
        ef_search(r, py) -> Option<usize> { r.ef_search }
        /// Recall@10 against exact search that calibration measured at that `ef_search`
        /// (`None`: not calibrated, or fixed by `set_ef_search`).
        recall_at_10(r, py) -> Option<f32> { r.recall_at_10 }
    }
}

result_class! {
    /// What an ingest did: `indexed + skipped + len(failed)` is the number of items given.
    PyIngestReport = "IngestReport" (IngestReport) {
        /// Items extracted and upserted.
        indexed(r, py) -> usize { r.indexed }
        /// Items already stored under their `external_id` with the same image hash.
        skipped(r, py) -> usize { r.skipped }
        /// Items that could not be ingested, in input order.
        failed(r, py) -> Vec<PyIngestFailure> {
            r.failed.iter().cloned().map(PyIngestFailure).collect()
        }
    }
}

result_class! {
    /// One item an ingest could not index, with the hosted error code.
    PyIngestFailure = "IngestFailure" (IngestFailure) {
        /// The item's `external_id`.
        external_id(f, py) -> String { f.external_id.clone() }
        /// Hosted error code (`unsupported_format`, `invalid_parameter`, `cancelled`, …).
        code(f, py) -> String { f.code.clone() }
        /// Human-readable reason.
        message(f, py) -> String { f.message.clone() }
    }
}

/// A product dict (optionally with `features` given separately as `Features` or a dict).
fn new_product(obj: &Bound<'_, PyAny>, features: Option<&Bound<'_, PyAny>>) -> Result<NewProduct> {
    if let Ok(d) = obj.cast::<PyDict>() {
        if !d.contains("external_id")? {
            return Err(Failure::from(dupify_core::Error::MissingParameter {
                name: "external_id".into(),
            })
            .into());
        }
    }
    let mut p: NewProduct = from_py(obj, "product")?;
    if p.metadata.is_null() {
        p.metadata = serde_json::Value::Object(Default::default());
    }
    if let Some(f) = features {
        if p.features != ProductFeatures::default() {
            return Err(Failure::invalid(
                "features",
                "given both as an argument and inside the product",
            )
            .into());
        }
        p.features = product_features(f)?;
    }
    Ok(p)
}

fn product_features(obj: &Bound<'_, PyAny>) -> Result<ProductFeatures> {
    if let Ok(f) = obj.cast::<PyFeatures>() {
        return Ok(ProductFeatures::from(&f.get().0));
    }
    from_py(obj, "features")
}

fn filter(obj: Option<&Bound<'_, PyAny>>) -> Result<ProductFilter> {
    let Some(obj) = obj else {
        return Ok(ProductFilter::default());
    };
    // `metadata_eq` may be given as a dict; the core takes a list of (key, value) pairs.
    if let Ok(d) = obj.cast::<PyDict>() {
        if let Some(m) = d.get_item("metadata_eq")? {
            if let Ok(md) = m.cast::<PyDict>() {
                let d2 = d.copy()?;
                let items = md.items();
                d2.set_item("metadata_eq", items)?;
                return from_py(d2.as_any(), "filter");
            }
        }
    }
    from_py(obj, "filter")
}

/// The search arguments every search method takes as keywords, parsed in one place: the
/// query vectors (`embedding`, `features`, `shape`, `colors`: `search()` only; the image and
/// text searches make their own) and the common ones (`by_product`, `filter`,
/// `cheaper_by_percent`, `weights`, `limit`, `offset`, `min_score`, `exclude_own_brand`).
/// An unknown keyword is `invalid_parameter` naming it, so a typo never silently searches
/// without its argument.
fn search_query(kwargs: Option<&Bound<'_, PyDict>>, vectors: bool) -> Result<SearchQuery> {
    const VECTORS: [&str; 4] = ["embedding", "features", "shape", "colors"];
    const COMMON: [&str; 8] = [
        "by_product",
        "filter",
        "cheaper_by_percent",
        "weights",
        "limit",
        "offset",
        "min_score",
        "exclude_own_brand",
    ];
    let mut q = SearchQuery::default();
    let Some(kwargs) = kwargs else {
        return Ok(q);
    };
    let arg = |name: &str| -> Result<Option<Bound<'_, PyAny>>> {
        Ok(kwargs.get_item(name)?.filter(|v| !v.is_none()))
    };
    fn extract<'py, T: FromPyObjectOwned<'py>>(v: &Bound<'py, PyAny>, name: &str) -> Result<T> {
        v.extract::<T>().map_err(|e| {
            let e: PyErr = e.into();
            Failure::invalid(name, e.value(v.py()).to_string()).into()
        })
    }
    for key in kwargs.keys() {
        let key: String = extract(&key, "keyword")?;
        let known = COMMON.contains(&key.as_str()) || (vectors && VECTORS.contains(&key.as_str()));
        if !known {
            let expected = if vectors {
                [&VECTORS[..], &COMMON[..]].concat().join(", ")
            } else {
                COMMON.join(", ")
            };
            return Err(Failure::invalid(
                &key,
                format!("not a search argument here (expected one of: {expected})"),
            )
            .into());
        }
    }
    if let Some(f) = arg("features")? {
        let pf = product_features(&f)?;
        q.embedding = pf.clip;
        q.shape = pf.shape;
        q.colors = pf.colors;
    }
    if let Some(e) = arg("embedding")? {
        q.embedding = Some(f32_vec(&e, "embedding")?);
    }
    if let Some(s) = arg("shape")? {
        q.shape = Some(f32_vec(&s, "shape")?);
    }
    if let Some(c) = arg("colors")? {
        let wrapped = PyDict::new(c.py());
        wrapped.set_item("colors", &c)?;
        let pf: ProductFeatures = from_py(wrapped.as_any(), "colors")?;
        q.colors = pf.colors;
    }
    if let Some(v) = arg("by_product")? {
        q.by_product = Some(extract(&v, "by_product")?);
    }
    q.filter = filter(arg("filter")?.as_ref())?;
    if let Some(v) = arg("cheaper_by_percent")? {
        q.cheaper_by_percent = Some(extract(&v, "cheaper_by_percent")?);
    }
    if let Some(w) = arg("weights")? {
        q.weights = Some(from_py::<ChannelWeights>(&w, "weights")?);
    }
    if let Some(v) = arg("limit")? {
        q.limit = extract(&v, "limit")?;
    }
    if let Some(v) = arg("offset")? {
        q.offset = extract(&v, "offset")?;
    }
    if let Some(v) = arg("min_score")? {
        q.min_score = Some(extract(&v, "min_score")?);
    }
    if let Some(v) = arg("exclude_own_brand")? {
        q.exclude_own_brand = extract(&v, "exclude_own_brand")?;
    }
    Ok(q)
}

/// The product catalog: products with their features in SQLite (WAL), an ANN index over CLIP
/// embeddings, and dupe search with filters and a per-channel score breakdown. Thread-safe;
/// every call releases the GIL.
#[pyclass(name = "Catalog", module = "dupify", frozen)]
pub struct PyCatalog {
    pub inner: std::sync::Arc<Catalog>,
    path: Option<PathBuf>,
}

#[pymethods]
impl PyCatalog {
    /// Opens (or creates) the catalog database at `path`, or an in-memory catalog when `path`
    /// is `None`. `dim` fixes the embedding dimension (default: taken from the first embedding
    /// stored); `index` is a dict of the core's index parameters (`m`, `ef_construction`,
    /// `ef_search`, `target_recall`, `max_layers`, `brute_force_below`,
    /// `rebuild_tombstone_ratio`).
    #[new]
    #[pyo3(signature = (path=None, *, dim=None, index=None, persist_index=true, synchronous_full=true))]
    fn new(
        py: Python<'_>,
        path: Option<PathBuf>,
        dim: Option<usize>,
        index: Option<&Bound<'_, PyAny>>,
        persist_index: bool,
        synchronous_full: bool,
    ) -> Result<Self> {
        let mut opts = CatalogOptions::default()
            .with_persist_index(persist_index)
            .with_synchronous_full(synchronous_full);
        opts.dim = dim;
        if let Some(i) = index {
            opts.index = from_py::<IndexParams>(i, "index")?;
        }
        let p = path.clone();
        let cat = detached(py, move || match p {
            Some(p) => Catalog::open(p, opts),
            None => Catalog::open_in_memory(opts),
        })?;
        Ok(PyCatalog {
            inner: std::sync::Arc::new(cat),
            path,
        })
    }

    /// Inserts or replaces one product (matched by `external_id`). `product` is a dict with
    /// the core's fields; `features` (a `Features` from the extractor, or a dict with `clip`,
    /// `shape`, `colors`, `attributes`, `model_id`) may be given separately.
    #[pyo3(signature = (namespace, product, features=None))]
    fn upsert(
        &self,
        py: Python<'_>,
        namespace: &Bound<'_, PyAny>,
        product: &Bound<'_, PyAny>,
        features: Option<&Bound<'_, PyAny>>,
    ) -> Result<PyProduct> {
        let ns = self::namespace(namespace)?;
        let p = new_product(product, features)?;
        let cat = self.inner.clone();
        detached(py, move || cat.upsert(&ns, p)).map(PyProduct)
    }

    /// Inserts or replaces many products in one transaction (all or none). Each item is a
    /// product dict, or a `(product, features)` tuple.
    fn upsert_batch(
        &self,
        py: Python<'_>,
        namespace: &Bound<'_, PyAny>,
        products: &Bound<'_, PyAny>,
    ) -> Result<Vec<PyProduct>> {
        let ns = self::namespace(namespace)?;
        let mut items = Vec::new();
        for item in products.try_iter()? {
            let item = item?;
            let p = match item.cast::<PyTuple>() {
                Ok(t) if t.len() == 2 => new_product(&t.get_item(0)?, Some(&t.get_item(1)?))?,
                _ => new_product(&item, None)?,
            };
            items.push(p);
        }
        let cat = self.inner.clone();
        let out = detached(py, move || cat.upsert_batch(&ns, items))?;
        Ok(out.into_iter().map(PyProduct).collect())
    }

    /// A product by catalog id (`NotFoundError` if absent).
    fn get(&self, py: Python<'_>, namespace: &Bound<'_, PyAny>, id: String) -> Result<PyProduct> {
        let ns = self::namespace(namespace)?;
        let cat = self.inner.clone();
        detached(py, move || cat.get(&ns, &id)).map(PyProduct)
    }

    /// A product by the caller's external id (`NotFoundError` if absent).
    fn get_by_external_id(
        &self,
        py: Python<'_>,
        namespace: &Bound<'_, PyAny>,
        external_id: String,
    ) -> Result<PyProduct> {
        let ns = self::namespace(namespace)?;
        let cat = self.inner.clone();
        detached(py, move || cat.get_by_external_id(&ns, &external_id)).map(PyProduct)
    }

    /// Deletes a product by id (`NotFoundError` if absent).
    fn delete(&self, py: Python<'_>, namespace: &Bound<'_, PyAny>, id: String) -> Result<()> {
        let ns = self::namespace(namespace)?;
        let cat = self.inner.clone();
        detached(py, move || cat.delete(&ns, &id))
    }

    /// Products in insertion order, one page at a time (`limit` 1..=1000, 0 = 50), optionally
    /// filtered by a filter dict (`category`, `brand`, `min_price`, `max_price`, `currency`,
    /// `metadata_eq`, …).
    #[pyo3(signature = (namespace, *, limit=0, cursor=None, filter=None))]
    fn list(
        &self,
        py: Python<'_>,
        namespace: &Bound<'_, PyAny>,
        limit: usize,
        cursor: Option<String>,
        filter: Option<&Bound<'_, PyAny>>,
    ) -> Result<PyListPage> {
        let ns = self::namespace(namespace)?;
        let f = self::filter(filter)?;
        let page = Page { limit, cursor };
        let cat = self.inner.clone();
        detached(py, move || cat.list(&ns, &page, &f)).map(PyListPage)
    }

    /// Similarity search. Query by `embedding` (CLIP image or text vector), `features` (a
    /// `Features`: embedding, shape and colours), `shape`/`colors`, or `by_product` (dupes of a
    /// stored product, never returned itself). `filter` is a filter dict, `weights` a dict of
    /// channel weights (`clip`, `shape`, `color`), `cheaper_by_percent` keeps only products that
    /// much cheaper than `by_product`, `exclude_own_brand` drops `by_product`'s brand, and
    /// `min_score` drops hits scoring below it; `limit` (default 10) and `offset` page.
    #[pyo3(signature = (namespace, **query))]
    fn search(
        &self,
        py: Python<'_>,
        namespace: &Bound<'_, PyAny>,
        query: Option<&Bound<'_, PyDict>>,
    ) -> Result<Vec<PySearchHit>> {
        let ns = self::namespace(namespace)?;
        let q = search_query(query, true)?;
        let cat = self.inner.clone();
        let hits = detached(py, move || cat.search(&ns, &q))?;
        Ok(hits.into_iter().map(PySearchHit).collect())
    }

    /// Extracts `image`'s features with `extractor` and searches with them (embedding, shape
    /// and colours); the other keywords are those of `search()` but the query vectors.
    #[pyo3(signature = (namespace, extractor, image, **query))]
    fn search_image(
        &self,
        py: Python<'_>,
        namespace: &Bound<'_, PyAny>,
        extractor: PyRef<'_, PyExtractor>,
        image: &Bound<'_, PyAny>,
        query: Option<&Bound<'_, PyDict>>,
    ) -> Result<Vec<PySearchHit>> {
        let ns = self::namespace(namespace)?;
        let q = search_query(query, false)?;
        let input = image_input(image)?;
        let (cat, x) = (self.inner.clone(), extractor.inner.clone());
        let hits = detached(py, move || cat.search_image(&ns, &x, &input, q))?;
        Ok(hits.into_iter().map(PySearchHit).collect())
    }

    /// Text→image search: embeds `text` with `extractor`'s CLIP text tower and searches with
    /// it; the other keywords are those of `search()` but the query vectors.
    #[pyo3(signature = (namespace, extractor, text, **query))]
    fn search_text(
        &self,
        py: Python<'_>,
        namespace: &Bound<'_, PyAny>,
        extractor: PyRef<'_, PyExtractor>,
        text: String,
        query: Option<&Bound<'_, PyDict>>,
    ) -> Result<Vec<PySearchHit>> {
        let ns = self::namespace(namespace)?;
        let q = search_query(query, false)?;
        let (cat, x) = (self.inner.clone(), extractor.inner.clone());
        let hits = detached(py, move || cat.search_text(&ns, &x, &text, q))?;
        Ok(hits.into_iter().map(PySearchHit).collect())
    }

    /// Number of products in `namespace` matching `filter` (a filter dict).
    #[pyo3(signature = (namespace, filter=None))]
    fn count(
        &self,
        py: Python<'_>,
        namespace: &Bound<'_, PyAny>,
        filter: Option<&Bound<'_, PyAny>>,
    ) -> Result<u64> {
        let ns = self::namespace(namespace)?;
        let f = self::filter(filter)?;
        let cat = self.inner.clone();
        detached(py, move || cat.count(&ns, &f))
    }

    /// Bulk ingest: extracts each item's image with `extractor` (batched) and upserts the
    /// products by `external_id`. `items` are `(product_dict, image)` pairs. An item already
    /// stored with the same image hash is skipped (resume after a crash or cancel); per-item
    /// problems are collected in the report. `progress(done, total)` and `cancel` work as in
    /// `Extractor.extract_batch`. An item that is not a `(product, image)` pair, or whose
    /// image is not an image object at all, raises `InvalidRequestError` before any work.
    #[pyo3(signature = (namespace, extractor, items, *, progress=None, cancel=None))]
    fn ingest(
        &self,
        py: Python<'_>,
        namespace: &Bound<'_, PyAny>,
        extractor: PyRef<'_, PyExtractor>,
        items: &Bound<'_, PyAny>,
        progress: Option<Py<PyAny>>,
        cancel: Option<PyRef<'_, PyCancelToken>>,
    ) -> Result<PyIngestReport> {
        let ns = self::namespace(namespace)?;
        let iter = items
            .try_iter()
            .map_err(|_| Failure::invalid("items", "must be an iterable of (product, image)"))?;
        let mut batch = Vec::new();
        for item in iter {
            let item = item?;
            let pair = item
                .cast::<PyTuple>()
                .ok()
                .filter(|t| t.len() == 2)
                .ok_or_else(|| {
                    Failure::invalid("items", "each item must be a (product, image) pair")
                })?;
            batch.push(IngestItem::new(
                new_product(&pair.get_item(0)?, None)?,
                image_input(&pair.get_item(1)?)?,
            ));
        }
        let token = cancel.map(|c| c.0.clone()).unwrap_or_default();
        let p = Progress::new(progress, token.clone());
        let mut opts = IngestOptions::default().with_cancel(token);
        opts.progress = Some(p.callback.clone());
        let (cat, x) = (self.inner.clone(), extractor.inner.clone());
        let out = detached(py, move || cat.ingest(&ns, &x, batch, &opts));
        if let Some(e) = p.take_failure() {
            return Err(Error::Python(e));
        }
        out.map(PyIngestReport)
    }

    /// Saves changed ANN graphs next to the database (also done on close).
    fn flush(&self, py: Python<'_>) -> Result<()> {
        let cat = self.inner.clone();
        detached(py, move || cat.flush())
    }

    /// The state of every namespace's index.
    fn index_report(&self, py: Python<'_>) -> Result<Vec<PyIndexReport>> {
        let cat = self.inner.clone();
        let r = detached(py, move || cat.index_report())?;
        Ok(r.into_iter().map(PyIndexReport).collect())
    }

    /// The database path (`None` in memory).
    #[getter]
    fn path(&self) -> Option<PathBuf> {
        self.path.clone()
    }

    fn __repr__(&self) -> String {
        match &self.path {
            Some(p) => format!("Catalog('{}')", p.display()),
            None => "Catalog(in memory)".to_string(),
        }
    }
}
