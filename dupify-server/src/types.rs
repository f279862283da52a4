//! Request and response bodies of the v1 API.

use std::str::FromStr;

use dupify_core::attributes::AttributeReport;
use dupify_core::catalog::{ChannelScores, ChannelWeights, EmbeddingStatus, Product};
use dupify_core::colors::{ColorReport, DominantColor};
use dupify_core::silhouette::{BoundingBox, SilhouetteSource};
use dupify_core::{Features, ImageInput, Ops, QualityScore};
use dupify_keys::Scope;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};

/// Parses a JSON body into `T`: empty → `missing_parameter`, anything serde refuses →
/// `invalid_parameter` with serde's reason (which names the field).
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::missing("body"));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::invalid("body", e.to_string()))
}

/// A 48×48 PNG (a navy block on white) for the document's examples: small enough to read,
/// a real image, so tools that replay the examples reach the model and not only validation.
pub(crate) const EXAMPLE_IMAGE_BASE64: &str = "iVBORw0KGgoAAAANSUhEUgAAADAAAAAwCAIAAADYYG7QAAAAVklEQVR42u3YsQnAMAwAQTlkitQeLKNlsNQZQlVWcGGwwPe1QAfq1DIzKnVEsYCAgIBWd44MXf2esux7HycDAgICAgICAgICAgICAgLaHNQ8zoGAdgP9EZ8JPQHljVAAAAAASUVORK5CYII=";

/// Where an image comes from: exactly one of the two fields.
#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
pub(crate) struct ImageSource {
    /// Base64 of the file (standard or URL-safe, padded or not, or a `data:` URL).
    #[schema(example = json!(EXAMPLE_IMAGE_BASE64), format = Byte)]
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
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct EmbedRequest {
    #[serde(flatten)]
    pub image: ImageSource,
    /// Also return the image quality score.
    #[serde(default)]
    pub include_quality: bool,
}

/// `/v1/silhouette`.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct SilhouetteRequest {
    #[serde(flatten)]
    pub image: ImageSource,
    /// Also return the cut-out PNG.
    #[serde(default)]
    pub include_cutout: bool,
}

/// `/v1/colors`, `/v1/attributes`, `/v1/background-remove`.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct ImageRequest {
    #[serde(flatten)]
    pub image: ImageSource,
}

/// An operation inside `/v1/batch`, with the scope it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct BatchImage {
    #[serde(flatten)]
    pub image: ImageSource,
    pub id: Option<Value>,
}

/// `/v1/batch`.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct BatchRequest {
    #[serde(default)]
    pub images: Vec<BatchImage>,
    #[serde(default)]
    pub operations: Vec<BatchOperation>,
}

/// `POST /v1/catalog/products`: the product fields, and its image.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({
    "external_id": "sku-1042", "title": "Navy linen shirt", "brand": "Acme",
    "category": "shirt", "price": 49.0, "currency": "USD",
    "metadata": {"collection": "summer"}, "image_base64": EXAMPLE_IMAGE_BASE64,
}))]
pub(crate) struct CreateProduct {
    /// The shop's own id: a second upload with it replaces the product.
    #[schema(required = true, value_type = String)]
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
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Products per page, 1 to 1000 (0 or absent: 50).
    #[param(minimum = 0, maximum = 1000)]
    pub limit: Option<usize>,
    pub cursor: Option<String>,
    pub category: Option<String>,
    pub brand: Option<String>,
    pub min_price: Option<f64>,
    pub max_price: Option<f64>,
    pub currency: Option<String>,
}

/// Filters of a search.
#[derive(Debug, Default, Deserialize, ToSchema)]
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
#[derive(Debug, Deserialize, ToSchema)]
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
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
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
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
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
    /// `ready` (features stored), `processing` (uploaded from `image_url`: the image is
    /// being fetched and its features extracted) or `failed` (see `embedding_error`).
    pub embedding_status: EmbeddingState,
    /// Why a `failed` product has no features (a hosted error code and a message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding_error: Option<EmbeddingError>,
}

/// Whether a product's image features are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EmbeddingState {
    Ready,
    Processing,
    Failed,
}

/// Why a queued product's features could not be made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EmbeddingError {
    /// Hosted error code (`image_fetch_failed`, `unsupported_format`, …).
    pub code: String,
    pub message: String,
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
        let (embedding_status, embedding_error) = match p.embedding_status {
            EmbeddingStatus::Ready => (EmbeddingState::Ready, None),
            EmbeddingStatus::Processing => (EmbeddingState::Processing, None),
            EmbeddingStatus::Failed { code, message } => (
                EmbeddingState::Failed,
                Some(EmbeddingError { code, message }),
            ),
        };
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
            embedding_status,
            embedding_error,
        }
    }
}

/// One search result.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct SearchResult {
    pub product: ProductView,
    pub score: f32,
    pub scores: ChannelScores,
}

/// `POST /v1/embed` answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EmbedResponse {
    /// CLIP image embedding, L2-normalised: compare by dot product.
    pub embedding: Vec<f32>,
    /// Length of `embedding`.
    pub dimensions: usize,
    /// Content hash of the model that made it.
    pub model: Option<String>,
    /// Image width in pixels (after EXIF orientation).
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// Server time for this image.
    pub processing_time_ms: f64,
    /// With `include_quality`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<QualityScore>,
}

/// `POST /v1/colors` answer: the colour report and the image's size.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ColorsResponse {
    #[serde(flatten)]
    pub report: ColorReport,
    pub width: u32,
    pub height: u32,
    pub processing_time_ms: f64,
}

/// `POST /v1/silhouette` answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SilhouetteResponse {
    pub bbox: BoundingBox,
    /// Product area / frame area, 0..1.
    pub area_fraction: f32,
    /// Segmentation confidence, 0..1 (low when the centre prior stood in).
    pub confidence: f32,
    /// What found the product.
    pub foreground: SilhouetteSource,
    /// Length of `embedding`.
    pub dimensions: usize,
    /// Shape embedding, L2-normalised.
    pub embedding: Vec<f32>,
    pub width: u32,
    pub height: u32,
    pub processing_time_ms: f64,
    /// With `include_cutout`: the product on a transparent background, PNG as base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = Byte)]
    pub cutout_base64: Option<String>,
}

/// `POST /v1/attributes` answer: the attribute report and the model that made it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AttributesResponse {
    #[serde(flatten)]
    pub report: AttributeReport,
    pub model: Option<String>,
    pub processing_time_ms: f64,
}

/// `POST /v1/background-remove` answer (JSON; `Accept: image/png` answers the PNG itself).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BackgroundRemoveResponse {
    /// The product on a transparent background, PNG as base64.
    #[schema(format = Byte)]
    pub image_base64: String,
    /// Always `png`.
    pub format: &'static str,
    pub width: u32,
    pub height: u32,
    pub processing_time_ms: f64,
}

/// The features of one `/v1/batch` image: the operations asked for, the others left out.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BatchFeatures {
    /// SHA-256 of the image bytes (hex).
    pub content_hash: String,
    pub width: u32,
    pub height: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub colors: Option<ColorReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silhouette: Option<dupify_core::extractor::SilhouetteFeatures>,
    /// With `background-remove`: the cut-out PNG as base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = Byte)]
    pub cutout_base64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<AttributeReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<QualityScore>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Served from the extractor's cache.
    pub cached: bool,
    pub processing_time_ms: f64,
}

impl From<Features> for BatchFeatures {
    fn from(f: Features) -> Self {
        BatchFeatures {
            content_hash: f.content_hash,
            width: f.width,
            height: f.height,
            embedding: f.embedding,
            dimensions: f.dimensions,
            colors: f.colors,
            silhouette: f.silhouette,
            cutout_base64: f.cutout_png.as_deref().map(b64),
            attributes: f.attributes,
            quality: f.quality,
            model: f.model_id,
            cached: f.cached,
            processing_time_ms: f.processing_time_ms,
        }
    }
}

/// Standard base64 of bytes (PNG answers).
pub(crate) fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// One `/v1/batch` item: `result` when `ok`, else `error`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BatchItem {
    /// Position in the request's `images`.
    pub index: usize,
    /// The request item's `id`, echoed back (any JSON value).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<BatchFeatures>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// `POST /v1/batch` answer (200 even when some items failed).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BatchResponse {
    pub results: Vec<BatchItem>,
    pub succeeded: usize,
    pub failed: usize,
}

/// The two bodies `POST /v1/catalog/products` takes: one product, or up to the server's
/// `max_batch_products` of them. (The handler reads `products` item by item so one bad
/// item gets its own error; this type is the document's view of the body.)
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum ProductUpload {
    Many { products: Vec<CreateProduct> },
    One(Box<CreateProduct>),
}

/// One item of a batch upload: the product when `ok`, else `error`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProductUploadItem {
    /// Position in the request's `products`.
    pub index: usize,
    pub ok: bool,
    /// Whether it was new (false: it replaced the product with its `external_id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<ProductView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// A batch upload's answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProductUploadResponse {
    pub results: Vec<ProductUploadItem>,
    pub succeeded: usize,
    pub failed: usize,
}

/// `POST /v1/catalog/products` answer: the product (one uploaded), or a result per item.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum ProductWritten {
    One(Box<ProductView>),
    Many(ProductUploadResponse),
}

/// `GET /v1/catalog/products` answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProductList {
    pub items: Vec<ProductView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// Products matching the filters.
    pub total: u64,
}

/// `POST /v1/catalog/search` answer, best first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SearchResponse {
    pub results: Vec<SearchResult>,
}

/// `GET /healthz` answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// `ok`.
    pub status: &'static str,
}
