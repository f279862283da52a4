//! Request and response bodies of the v1 API.

use std::str::FromStr;

use dupify_core::catalog::{ChannelScores, ChannelWeights, Product};
use dupify_core::colors::DominantColor;
use dupify_core::{ImageInput, Ops};
use dupify_keys::Scope;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::ApiError;

/// Parses a JSON body into `T`: empty → `missing_parameter`, anything serde refuses →
/// `invalid_parameter` with serde's reason (which names the field).
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::missing("body"));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::invalid("body", e.to_string()))
}

/// Where an image comes from: exactly one of the two fields.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct ImageSource {
    /// Base64 of the file (standard or URL-safe, padded or not, or a `data:` URL).
    pub image_base64: Option<String>,
    /// An `http(s)` URL fetched with SSRF protections.
    pub image_url: Option<String>,
}

impl ImageSource {
    /// Whether either field is set.
    pub fn is_set(&self) -> bool {
        self.image_base64.is_some() || self.image_url.is_some()
    }

    /// The library input. Never a path: a request can name only bytes or a URL.
    pub fn to_input(&self) -> Result<ImageInput, ApiError> {
        match (&self.image_base64, &self.image_url) {
            (Some(_), Some(_)) => Err(ApiError::invalid(
                "image_base64",
                "send either `image_base64` or `image_url`, not both",
            )),
            (Some(b), None) => Ok(ImageInput::Base64(b.clone())),
            (None, Some(u)) => Ok(ImageInput::Url(u.clone())),
            (None, None) => Err(ApiError::missing("image_base64")),
        }
    }
}

/// `/v1/embed`.
#[derive(Debug, Deserialize)]
pub(crate) struct EmbedRequest {
    #[serde(flatten)]
    pub image: ImageSource,
    /// Also return the image quality score.
    #[serde(default)]
    pub include_quality: bool,
}

/// `/v1/silhouette`.
#[derive(Debug, Deserialize)]
pub(crate) struct SilhouetteRequest {
    #[serde(flatten)]
    pub image: ImageSource,
    /// Also return the cut-out PNG.
    #[serde(default)]
    pub include_cutout: bool,
}

/// `/v1/colors`, `/v1/attributes`, `/v1/background-remove`.
#[derive(Debug, Deserialize)]
pub(crate) struct ImageRequest {
    #[serde(flatten)]
    pub image: ImageSource,
}

/// An operation inside `/v1/batch`, with the scope it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BatchOperation {
    /// CLIP embedding (`embed` scope).
    Embed,
    /// Dominant colours (`colors`).
    Colors,
    /// Silhouette features (`silhouette`).
    Silhouette,
    /// Attributes (`attributes`).
    Attributes,
    /// Cut-out PNG (`silhouette`, as the hosted background removal).
    BackgroundRemove,
    /// Image quality score (`embed`: the hosted API reports it with embeddings).
    Quality,
}

impl BatchOperation {
    /// The key scope this operation needs.
    pub fn scope(self) -> Scope {
        match self {
            BatchOperation::Embed | BatchOperation::Quality => Scope::Embed,
            BatchOperation::Colors => Scope::Colors,
            BatchOperation::Silhouette | BatchOperation::BackgroundRemove => Scope::Silhouette,
            BatchOperation::Attributes => Scope::Attributes,
        }
    }

    fn op_name(self) -> &'static str {
        match self {
            BatchOperation::Embed => "embed",
            BatchOperation::Colors => "colors",
            BatchOperation::Silhouette => "silhouette",
            BatchOperation::Attributes => "attributes",
            BatchOperation::BackgroundRemove => "cutout",
            BatchOperation::Quality => "quality",
        }
    }

    /// The extractor operations for a list of batch operations.
    pub fn ops(list: &[BatchOperation]) -> Result<Ops, ApiError> {
        let names: Vec<&str> = list.iter().map(|o| o.op_name()).collect();
        Ok(Ops::from_str(&names.join(","))?)
    }
}

/// One image of a batch, with an optional caller id echoed back.
#[derive(Debug, Deserialize)]
pub(crate) struct BatchImage {
    #[serde(flatten)]
    pub image: ImageSource,
    pub id: Option<Value>,
}

/// `/v1/batch`.
#[derive(Debug, Deserialize)]
pub(crate) struct BatchRequest {
    #[serde(default)]
    pub images: Vec<BatchImage>,
    #[serde(default)]
    pub operations: Vec<BatchOperation>,
}

/// `POST /v1/catalog/products`: the product fields, and its image.
#[derive(Debug, Deserialize)]
pub(crate) struct CreateProduct {
    pub external_id: Option<String>,
    pub title: Option<String>,
    pub sku: Option<String>,
    pub description: Option<String>,
    pub brand: Option<String>,
    pub category: Option<String>,
    pub price: Option<f64>,
    pub currency: Option<String>,
    pub product_url: Option<String>,
    #[serde(default)]
    pub metadata: Option<Value>,
    #[serde(flatten)]
    pub image: ImageSource,
}

/// `GET /v1/catalog/products` query.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    pub limit: Option<usize>,
    pub cursor: Option<String>,
    pub category: Option<String>,
    pub brand: Option<String>,
    pub min_price: Option<f64>,
    pub max_price: Option<f64>,
    pub currency: Option<String>,
}

/// Filters of a search.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SearchFilter {
    pub category: Option<String>,
    pub brand: Option<String>,
    pub min_price: Option<f64>,
    pub max_price: Option<f64>,
    pub currency: Option<String>,
    /// Brands left out of the results.
    #[serde(default)]
    pub exclude_brands: Vec<String>,
}

/// `POST /v1/catalog/search`: exactly one query (image, `text`, `product_id`, `embedding`).
#[derive(Debug, Deserialize)]
pub(crate) struct SearchRequest {
    #[serde(flatten)]
    pub image: ImageSource,
    pub text: Option<String>,
    pub product_id: Option<String>,
    pub embedding: Option<Vec<f32>>,
    #[serde(default)]
    pub filter: SearchFilter,
    pub cheaper_by_percent: Option<f64>,
    /// With `product_id`: leave out products of the same brand.
    #[serde(default)]
    pub exclude_own_brand: bool,
    /// Drop hits whose combined score is below this.
    pub min_score: Option<f32>,
    pub weights: Option<ChannelWeights>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

/// A colour of a stored product, for display.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProductColor {
    /// `#rrggbb`.
    pub hex: String,
    /// Percent of the product.
    pub share: f32,
    /// Nearest CSS colour name.
    pub name: String,
}

/// A stored product as the API returns it: the product fields and a summary of its features
/// (colours, attributes, embedding dimension) rather than raw vectors.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProductView {
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
    pub metadata: Value,
    pub image_hash: Option<String>,
    /// `live` or `test`: the environment of the key that stored it.
    pub environment: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
    /// Dominant colours.
    pub colors: Vec<ProductColor>,
    /// Attribute predictions made at ingest.
    pub attributes: Option<Value>,
    /// CLIP embedding dimension (`None` when the product has no embedding).
    pub dimensions: Option<usize>,
    /// The model that made the features.
    pub model: Option<String>,
}

impl From<Product> for ProductView {
    fn from(p: Product) -> Self {
        let colors = p
            .features
            .colors
            .iter()
            .map(|s| {
                let c = DominantColor::from_lab(s.lab, s.share);
                ProductColor {
                    hex: c.hex,
                    share: c.share,
                    name: c.name,
                }
            })
            .collect();
        ProductView {
            id: p.id,
            external_id: p.external_id,
            title: p.title,
            sku: p.sku,
            description: p.description,
            brand: p.brand,
            category: p.category,
            price: p.price,
            currency: p.currency,
            image_url: p.image_url,
            product_url: p.product_url,
            metadata: p.metadata,
            image_hash: p.image_hash,
            environment: p.namespace.environment.as_str().to_owned(),
            created_at: p.created_at_ms,
            updated_at: p.updated_at_ms,
            colors,
            attributes: p.features.attributes,
            dimensions: p.features.clip.as_ref().map(Vec::len),
            model: p.features.model_id,
        }
    }
}

/// One search result.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SearchResult {
    pub product: ProductView,
    pub score: f32,
    pub scores: ChannelScores,
}
