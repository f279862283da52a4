//! The catalog's plain-data types: namespaces, products, features, queries, hits, options.

use serde::{Deserialize, Serialize};

use super::{ChannelScores, ChannelWeights, IndexMode, IndexParams, IndexSource, ProductFilter};
use crate::error::{Error, Result};
use crate::extractor::Features;
use crate::silhouette::SilhouetteSource;

pub use dupify_types::Environment;

/// Whose products: one account in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Namespace {
    /// Account id (opaque, non-empty, at most 256 bytes).
    pub account: String,
    /// Live or test.
    pub environment: Environment,
}

impl Namespace {
    /// Validated constructor.
    pub fn new(account: impl Into<String>, environment: Environment) -> Result<Self> {
        let ns = Namespace {
            account: account.into(),
            environment,
        };
        ns.validate()?;
        Ok(ns)
    }
    pub(super) fn validate(&self) -> Result<()> {
        if self.account.is_empty() || self.account.len() > 256 {
            return Err(Error::invalid("account", "must be 1..=256 bytes"));
        }
        Ok(())
    }
}

/// One dominant colour: CIELAB coordinates and its share of the product in percent
/// (0..=100), the unit of every colour share in the crate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ColorSwatch {
    /// CIELAB (D65) L*, a*, b*.
    pub lab: [f32; 3],
    /// Percent of the product's pixels, 0..=100.
    pub share: f32,
}

/// Extracted features of a product image, as plain data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProductFeatures {
    /// CLIP image embedding (normalised on ingest). Its dimension is fixed per catalog.
    pub clip: Option<Vec<f32>>,
    /// Silhouette shape embedding (compared by cosine).
    pub shape: Option<Vec<f32>>,
    /// Dominant colours.
    #[serde(default)]
    pub colors: Vec<ColorSwatch>,
    /// Attribute predictions, stored as given.
    pub attributes: Option<serde_json::Value>,
    /// The model that made the features (e.g. "openai/clip-vit-base-patch32").
    pub model_id: Option<String>,
}

impl crate::colors::PaletteEntry for ColorSwatch {
    fn lab(&self) -> [f32; 3] {
        self.lab
    }
    fn share(&self) -> f32 {
        self.share
    }
}

impl From<&Features> for ProductFeatures {
    /// The extractor's features in the catalog's form: embedding and shape vectors, the
    /// product palette as Lab swatches, attributes as JSON, and the
    /// model that made them. The catalog depends on the extractor, never the reverse, so the
    /// conversion lives here.
    fn from(f: &Features) -> Self {
        ProductFeatures {
            clip: f.embedding.clone(),
            // A centre prior's shape is the frame's, not the product's: not stored, so it
            // never makes two unrelated products look alike on the shape channel.
            shape: f
                .silhouette
                .as_ref()
                .filter(|s| s.foreground == SilhouetteSource::Segmenter)
                .map(|s| s.embedding.clone()),
            colors: f
                .colors
                .as_ref()
                .map(|r| {
                    r.colors
                        .iter()
                        .map(|c| ColorSwatch {
                            lab: c.lab,
                            share: c.share,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            attributes: f
                .attributes
                .as_ref()
                .and_then(|a| serde_json::to_value(a).ok()),
            model_id: f.model_id.clone(),
        }
    }
}

/// A product to insert or replace (matched by `external_id` within the namespace).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewProduct {
    /// The caller's id; unique per namespace; upserts match on it. 1..=512 bytes.
    pub external_id: String,
    pub title: Option<String>,
    pub sku: Option<String>,
    pub description: Option<String>,
    pub brand: Option<String>,
    pub category: Option<String>,
    /// Price in `currency` units; finite and ≥ 0.
    pub price: Option<f64>,
    /// ISO 4217 code, 3 ASCII letters (upper-cased). Default "USD".
    pub currency: Option<String>,
    pub image_url: Option<String>,
    pub product_url: Option<String>,
    /// Free-form JSON object.
    #[serde(default)]
    pub metadata: serde_json::Value,
    #[serde(default)]
    pub features: ProductFeatures,
    /// Content hash of the source image (to skip re-extraction of unchanged images).
    pub image_hash: Option<String>,
}

impl NewProduct {
    /// A product with only its external id set.
    pub fn new(external_id: impl Into<String>) -> Self {
        NewProduct {
            external_id: external_id.into(),
            metadata: serde_json::Value::Object(Default::default()),
            ..Default::default()
        }
    }

    /// The stored product this becomes once a backend has given it an id and timestamps
    /// (currency USD when none was given). One definition for every backend.
    pub fn to_product(
        &self,
        id: String,
        namespace: &Namespace,
        created_at_ms: i64,
        updated_at_ms: i64,
    ) -> Product {
        Product {
            id,
            external_id: self.external_id.clone(),
            title: self.title.clone(),
            sku: self.sku.clone(),
            description: self.description.clone(),
            brand: self.brand.clone(),
            category: self.category.clone(),
            price: self.price,
            currency: self.currency.clone().unwrap_or_else(|| "USD".into()),
            image_url: self.image_url.clone(),
            product_url: self.product_url.clone(),
            metadata: self.metadata.clone(),
            features: self.features.clone(),
            image_hash: self.image_hash.clone(),
            created_at_ms,
            updated_at_ms,
            namespace: namespace.clone(),
            embedding_status: EmbeddingStatus::Ready,
        }
    }

    /// The product's fields as a write: what completing a queued product re-stores with its
    /// features, keeping everything the caller sent.
    pub(super) fn from_product(p: Product) -> Self {
        NewProduct {
            external_id: p.external_id,
            title: p.title,
            sku: p.sku,
            description: p.description,
            brand: p.brand,
            category: p.category,
            price: p.price,
            currency: Some(p.currency),
            image_url: p.image_url,
            product_url: p.product_url,
            metadata: p.metadata,
            features: p.features,
            image_hash: p.image_hash,
        }
    }
}

/// Whether a product's image features are in: `ready` for products stored with their
/// features, `processing` while a queued product ([`super::Catalog::enqueue`]) waits for them,
/// `failed` when getting them failed (the product stays, without features, until it is
/// uploaded again).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum EmbeddingStatus {
    /// Features stored (or none asked for).
    #[default]
    Ready,
    /// Queued: a worker will fetch the image and store its features.
    Processing,
    /// The last attempt failed; `code` is the hosted error code (`image_fetch_failed`, …).
    Failed {
        /// Hosted error code.
        code: String,
        /// Why, for people.
        message: String,
    },
}

impl EmbeddingStatus {
    /// `ready`, `processing` or `failed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            EmbeddingStatus::Ready => "ready",
            EmbeddingStatus::Processing => "processing",
            EmbeddingStatus::Failed { .. } => "failed",
        }
    }
}

/// A queued product waiting for its image's features (see [`super::Catalog::enqueue`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestJob {
    /// Never reused: a product queued again gets a new job, and completing the old one is
    /// refused.
    pub job_id: i64,
    /// Whose product.
    pub namespace: Namespace,
    /// The product's catalog id.
    pub product_id: String,
    /// The product's external id.
    pub external_id: String,
    /// The image to fetch.
    pub image_url: String,
    /// Unix milliseconds when it was queued.
    pub enqueued_at_ms: i64,
}

/// A stored product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    /// Catalog id (UUID v4).
    pub id: String,
    pub external_id: String,
    pub title: Option<String>,
    pub sku: Option<String>,
    pub description: Option<String>,
    pub brand: Option<String>,
    pub category: Option<String>,
    pub price: Option<f64>,
    pub currency: String,
    pub image_url: Option<String>,
    pub product_url: Option<String>,
    pub metadata: serde_json::Value,
    pub features: ProductFeatures,
    pub image_hash: Option<String>,
    /// Unix milliseconds.
    pub created_at_ms: i64,
    /// Unix milliseconds.
    pub updated_at_ms: i64,
    pub namespace: Namespace,
    /// Whether the image features are in (queued products: see [`super::Catalog::enqueue`]).
    #[serde(default)]
    pub embedding_status: EmbeddingStatus,
}

/// A page request for [`Catalog::list`](super::Catalog::list): keyset pagination (stable under inserts).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Page {
    /// 1..=1000. 0 means the default, 50.
    pub limit: usize,
    /// `next_cursor` of the previous page; `None` for the first.
    pub cursor: Option<String>,
}

/// One page of products.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListPage {
    pub items: Vec<Product>,
    /// Pass back in [`Page::cursor`] for the next page; `None` at the end.
    pub next_cursor: Option<String>,
}

/// A similarity search. Set `embedding` or `by_product` (or, for shape/colour-only search,
/// `shape`/`colors`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SearchQuery {
    /// CLIP query vector (image or text embedding) of the catalog dimension.
    pub embedding: Option<Vec<f32>>,
    /// Silhouette shape vector of the query.
    pub shape: Option<Vec<f32>>,
    /// Colour palette of the query.
    #[serde(default)]
    pub colors: Vec<ColorSwatch>,
    /// Find dupes of this stored product (its id); its features are the query and it is never
    /// in the results.
    pub by_product: Option<String>,
    #[serde(default)]
    pub filter: ProductFilter,
    /// Only products at least this many percent cheaper than `by_product`, in its currency.
    pub cheaper_by_percent: Option<f64>,
    /// Leave out products of `by_product`'s own brand (a dupe is another brand's look-alike).
    /// Needs `by_product`; a query product without a brand excludes nothing.
    #[serde(default)]
    pub exclude_own_brand: bool,
    /// Drop hits whose combined score is below this (applied before `offset`/`limit`).
    pub min_score: Option<f32>,
    /// Channel weights; `None` = defaults.
    pub weights: Option<ChannelWeights>,
    /// Results wanted, 1..=1000. 0 means 10.
    pub limit: usize,
    /// Results to skip (pagination), ≤ 10,000.
    pub offset: usize,
    /// The model `embedding` came from (`Features::model_id`). When set, a namespace whose
    /// embeddings come from another model refuses the query (`invalid_parameter`) instead of
    /// ranking vectors of two spaces against each other. `search_image`/`search_text` set it.
    #[serde(default)]
    pub model_id: Option<String>,
}

impl SearchQuery {
    /// Nearest products to a CLIP embedding.
    pub fn by_embedding(embedding: Vec<f32>) -> Self {
        SearchQuery {
            embedding: Some(embedding),
            ..Default::default()
        }
    }
    /// Dupes of a stored product.
    pub fn dupes_of(product_id: impl Into<String>) -> Self {
        SearchQuery {
            by_product: Some(product_id.into()),
            ..Default::default()
        }
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    pub product: Product,
    /// Weighted combination of `scores`.
    pub score: f32,
    pub scores: ChannelScores,
}

/// Catalog configuration, with documented defaults. Deserialises from any subset of its
/// fields (the rest default; an unknown field is refused), so bindings take it as given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct CatalogOptions {
    /// CLIP dimension; `None` = taken from the first embedding stored, then fixed.
    pub dim: Option<usize>,
    /// ANN and brute-force parameters.
    pub index: IndexParams,
    /// Save ANN graphs next to the database on `flush` and drop. Default true.
    pub persist_index: bool,
    /// `synchronous=FULL` (a commit survives power loss) instead of NORMAL (survives a process
    /// crash). Default true.
    pub synchronous_full: bool,
    /// A PostgreSQL catalog's connection pool size (SQLite ignores it): calls beyond it wait
    /// for a connection. Each connection is a server process, so it is bounded: 1..=1000.
    /// Default 8, enough for a server's request threads and its ingest worker.
    pub max_connections: u32,
}

impl Default for CatalogOptions {
    fn default() -> Self {
        CatalogOptions {
            dim: None,
            index: IndexParams::default(),
            persist_index: true,
            synchronous_full: true,
            max_connections: 8,
        }
    }
}

impl CatalogOptions {
    /// Fixes the embedding dimension.
    pub fn with_dim(mut self, dim: usize) -> Self {
        self.dim = Some(dim);
        self
    }
    /// Rejects bad values.
    pub fn validate(&self) -> Result<()> {
        self.index.validate()?;
        if let Some(d) = self.dim {
            if !(1..=65_536).contains(&d) {
                return Err(Error::invalid("dim", "must be in 1..=65536"));
            }
        }
        if !(1..=1000).contains(&self.max_connections) {
            return Err(Error::invalid("max_connections", "must be in 1..=1000"));
        }
        Ok(())
    }
}

/// State of one namespace's index, for monitoring and tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexReport {
    pub namespace: Namespace,
    pub mode: IndexMode,
    pub source: IndexSource,
    pub live: usize,
    pub tombstones: usize,
    /// The `ef_search` the namespace's graph searches use (`None`: exact search).
    pub ef_search: Option<usize>,
    /// Recall@10 against exact search that calibration measured at that `ef_search`
    /// (`None`: not calibrated, or fixed by `set_ef_search`).
    pub recall_at_10: Option<f32>,
}

dupify_types::setters! { CatalogOptions {
    /// Sets the index parameters.
    with_index(index: IndexParams),
    /// Whether ANN graphs are saved next to the database.
    with_persist_index(persist_index: bool),
    /// `synchronous=FULL` (true) or NORMAL (false).
    with_synchronous_full(synchronous_full: bool),
    /// A PostgreSQL catalog's connection pool size.
    with_max_connections(max_connections: u32),
} }
