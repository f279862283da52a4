//! One `Extractor` for every operation, single image or batch.
//!
//! Why one type: every operation starts from the same decoded image, so a request that asks
//! for embeddings, colours and a silhouette decodes once, builds one small working image and
//! one segmentation, and shares them. The handle is `Send + Sync` and cheap to clone (an
//! `Arc`), so a host application builds it once and shares it across threads; the CLIP model
//! and the attribute heads load lazily, the first time an operation needs them.
//!
//! Batches are processed in chunks of `batch_size`: the CPU stages of a chunk (decode,
//! working image, segmentation, colours, quality, CLIP preprocessing) run in parallel on the
//! extractor's rayon pool, then the chunk's pixels go through the model in one forward pass.
//! On CUDA the CPU stages of the next chunk overlap the model on the current one (a bounded
//! channel of one chunk keeps memory flat); on the CPU both stages would compete for the same
//! cores, so chunks run one after the other. One bad image yields an error for that item
//! only, never for the batch.

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::attributes::{AttributePredictor, AttributeReport};
use crate::clip::ClipOptions;
use crate::colors::{extract_colors, ColorOptions, ColorReport};
use crate::device::{Device, Precision};
use crate::encoder::{Encoder, ModelInfo};
use crate::error::{Error, Result};
use crate::input::{
    self, content_hash, load_bytes, ClipPreprocess, DecodedImage, ImageInput, InputLimits,
    MinDecodedSize, ResizeMode,
};
use crate::quality::{quality_score, QualityScore};
use crate::silhouette::{
    center_prior, cutout_png, shape_embedding, BoundingBox, ClassicalSegmenter, Segmentation,
    Segmenter, SilhouetteSource,
};

/// The operations an extraction can run. Parsed from comma-separated names
/// (`"embed,colors,silhouette,cutout,attributes,quality"`, or `"all"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Ops {
    /// CLIP image embedding.
    pub embed: bool,
    /// Dominant colours of the product.
    pub colors: bool,
    /// Silhouette: mask statistics and shape embedding.
    pub silhouette: bool,
    /// Cut-out PNG (the product on a transparent background); implies the segmentation.
    pub cutout: bool,
    /// Product attributes (needs the CLIP image embedding, computed if not asked for).
    pub attributes: bool,
    /// Image quality score.
    pub quality: bool,
}

impl Ops {
    /// Every operation.
    pub const ALL: Ops = Ops {
        embed: true,
        colors: true,
        silhouette: true,
        cutout: true,
        attributes: true,
        quality: true,
    };
    /// Only the CLIP embedding.
    pub const EMBED: Ops = Ops {
        embed: true,
        colors: false,
        silhouette: false,
        cutout: false,
        attributes: false,
        quality: false,
    };

    /// Whether no operation is selected.
    pub fn is_empty(&self) -> bool {
        *self == Ops::default()
    }
    fn needs_model(&self) -> bool {
        self.embed || self.attributes
    }
    fn needs_segmentation(&self) -> bool {
        self.colors || self.silhouette || self.cutout || self.quality
    }
    fn needs_working(&self) -> bool {
        self.needs_segmentation()
    }
}

impl FromStr for Ops {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let mut ops = Ops::default();
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name.to_ascii_lowercase().as_str() {
                "all" => ops = Ops::ALL,
                "embed" | "embedding" => ops.embed = true,
                "colors" | "colours" => ops.colors = true,
                "silhouette" => ops.silhouette = true,
                "cutout" | "background-remove" => ops.cutout = true,
                "attributes" => ops.attributes = true,
                "quality" => ops.quality = true,
                other => {
                    return Err(Error::invalid(
                        "ops",
                        format!(
                            "unknown operation `{other}` (expected embed, colors, silhouette, \
                             cutout, attributes, quality or all)"
                        ),
                    ))
                }
            }
        }
        if ops.is_empty() {
            return Err(Error::MissingParameter { name: "ops".into() });
        }
        Ok(ops)
    }
}

impl fmt::Display for Ops {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [
            (self.embed, "embed"),
            (self.colors, "colors"),
            (self.silhouette, "silhouette"),
            (self.cutout, "cutout"),
            (self.attributes, "attributes"),
            (self.quality, "quality"),
        ]
        .into_iter()
        .filter_map(|(on, n)| on.then_some(n))
        .collect();
        f.write_str(&names.join(","))
    }
}

/// Configuration of an [`Extractor`]; build one with [`Extractor::builder`].
#[derive(Debug, Clone)]
pub struct ExtractorConfig {
    /// Model directory (`config.json` + `model.safetensors`): a CLIP checkpoint, or an
    /// image-only EfficientNet-Lite encoder ([`crate::Architecture::detect`] tells which).
    /// Required for `embed` and `attributes`; text embeddings need CLIP. The CPU-only
    /// operations work without it.
    pub model_dir: Option<PathBuf>,
    /// Device for model work. Default: `Auto` (first CUDA device, else CPU).
    pub device: Device,
    /// Model precision. Default: fp32.
    pub precision: Precision,
    /// CPU threads for the extractor's pool. Default: all cores.
    pub threads: usize,
    /// Input limits (bytes, pixels, side). Default: [`InputLimits::default`].
    pub limits: InputLimits,
    /// CLIP input framing. Default: centre crop (the CLIP reference); `PadToSquare` keeps
    /// long garments whole.
    pub resize_mode: ResizeMode,
    /// Long side of the working image used by colours, silhouette and quality. Default: 256.
    pub working_side: u32,
    /// Images per model forward pass in batches. Default: 32.
    pub batch_size: usize,
    /// Entries of the content-hash result cache; 0 disables it. Default: 0.
    pub cache_capacity: usize,
    /// Colour extraction options.
    pub color_options: ColorOptions,
    /// Decode large JPEGs at a reduced scale in the inverse DCT (1/2, 1/4 or 1/8) while
    /// every view the operations need (the model input's short side, the working image's
    /// long side) stays at most 1/`reduced_decode_margin` of the decode; see
    /// [`MinDecodedSize`]. 1, the default, is PIL's draft rule: a photo at least twice the
    /// model input decodes at half size or less. 2 leaves more of the reduction to the
    /// bicubic resize (closer to a full decode, slower); 0 always decodes at full size
    /// (results bit-identical to a full decode). The decode depends on this configuration and
    /// the photo only, not on the operations asked for (the model's input size is read from
    /// its `config.json`), so a photo's features are the same whichever operations come with
    /// them; a cut-out of a reduced photo decodes it again at full size.
    pub reduced_decode_margin: u32,
}

impl Default for ExtractorConfig {
    fn default() -> Self {
        Self {
            model_dir: None,
            device: Device::Auto,
            precision: Precision::F32,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            limits: InputLimits::default(),
            resize_mode: ResizeMode::CenterCrop,
            working_side: 256,
            batch_size: 32,
            cache_capacity: 0,
            color_options: ColorOptions::default(),
            reduced_decode_margin: 1,
        }
    }
}

/// Builder for [`Extractor`].
#[derive(Debug, Clone, Default)]
pub struct ExtractorBuilder {
    config: ExtractorConfig,
}

impl ExtractorBuilder {
    /// Sets the model directory (CLIP or EfficientNet-Lite).
    pub fn model_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.model_dir = Some(dir.into());
        self
    }
    /// Sets the device.
    pub fn device(mut self, device: Device) -> Self {
        self.config.device = device;
        self
    }
    /// Sets the model precision.
    pub fn precision(mut self, precision: Precision) -> Self {
        self.config.precision = precision;
        self
    }
    /// Sets the number of CPU threads.
    pub fn threads(mut self, threads: usize) -> Self {
        self.config.threads = threads;
        self
    }
    /// Sets the input limits.
    pub fn limits(mut self, limits: InputLimits) -> Self {
        self.config.limits = limits;
        self
    }
    /// Sets the CLIP input framing.
    pub fn resize_mode(mut self, mode: ResizeMode) -> Self {
        self.config.resize_mode = mode;
        self
    }
    /// Sets the working-image long side.
    pub fn working_side(mut self, side: u32) -> Self {
        self.config.working_side = side;
        self
    }
    /// Sets the model batch size.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.config.batch_size = n;
        self
    }
    /// Sets the result-cache capacity (0 = off).
    pub fn cache_capacity(mut self, n: usize) -> Self {
        self.config.cache_capacity = n;
        self
    }
    /// Sets the colour options.
    pub fn color_options(mut self, opts: ColorOptions) -> Self {
        self.config.color_options = opts;
        self
    }

    /// Sets the margin of reduced-scale JPEG decoding (0 turns it off).
    pub fn reduced_decode_margin(mut self, margin: u32) -> Self {
        self.config.reduced_decode_margin = margin;
        self
    }

    /// Validates the configuration and builds the extractor. The model is not loaded here:
    /// it loads on first use (call [`Extractor::warm_up`] to load it eagerly).
    pub fn build(self) -> Result<Extractor> {
        let c = self.config;
        if c.threads == 0 {
            return Err(Error::invalid("threads", "must be at least 1"));
        }
        if c.batch_size == 0 || c.batch_size > 4096 {
            return Err(Error::invalid("batch_size", "must be in 1..=4096"));
        }
        if !(32..=2048).contains(&c.working_side) {
            return Err(Error::invalid("working_side", "must be in 32..=2048"));
        }
        if let Some(dir) = &c.model_dir {
            if !dir.is_dir() {
                return Err(Error::ModelLoad {
                    path: dir.clone(),
                    reason: "model directory does not exist".into(),
                });
            }
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(c.threads)
            .thread_name(|i| format!("dupify-cpu-{i}"))
            .build()
            .map_err(|e| Error::Internal(format!("cannot start thread pool: {e}")))?;
        Ok(Extractor {
            inner: Arc::new(Inner {
                cache: NonZeroUsize::new(c.cache_capacity)
                    .map(|n| Mutex::new(lru::LruCache::new(n))),
                config: c,
                pool,
                encoder: OnceLock::new(),
                decode_min: OnceLock::new(),
                attributes: OnceLock::new(),
                segmenter: Box::new(ClassicalSegmenter::default()),
            }),
        })
    }
}

/// Silhouette features of one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SilhouetteFeatures {
    /// Bounding box of the product in original-image pixels.
    pub bbox: BoundingBox,
    /// Product area / frame area, 0..1.
    pub area_fraction: f32,
    /// Segmentation confidence, 0..1 ([`crate::silhouette::CENTER_PRIOR_CONFIDENCE`] for a
    /// centre prior).
    pub confidence: f32,
    /// What found the product: the segmenter, or the centre prior it fell back to.
    #[serde(default)]
    pub foreground: SilhouetteSource,
    /// Shape embedding (L2-normalised, compare by cosine).
    pub embedding: Vec<f32>,
}

/// Everything extracted from one image. Fields are `None` for operations not requested.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Features {
    /// SHA-256 of the image bytes (hex): the cache key, and the catalog's content hash.
    pub content_hash: String,
    /// Original width (after EXIF orientation).
    pub width: u32,
    /// Original height (after EXIF orientation).
    pub height: u32,
    /// CLIP image embedding (L2-normalised).
    pub embedding: Option<Vec<f32>>,
    /// Length of `embedding` (the hosted API's `dimensions`).
    pub dimensions: Option<usize>,
    /// Dominant colours.
    pub colors: Option<ColorReport>,
    /// Silhouette features.
    pub silhouette: Option<SilhouetteFeatures>,
    /// Cut-out PNG bytes (serialised as base64 in JSON).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Byte))]
    #[serde(
        with = "base64_bytes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cutout_png: Option<Vec<u8>>,
    /// Product attributes.
    pub attributes: Option<AttributeReport>,
    /// Image quality.
    pub quality: Option<QualityScore>,
    /// The model that made `embedding`/`attributes` (its content hash), so stored features
    /// can be matched to the model that made them. `model` in JSON, as the hosted API names it.
    #[serde(rename = "model", alias = "model_id")]
    pub model_id: Option<String>,
    /// True when these features came from the cache.
    pub cached: bool,
    /// Wall time from the start of this item's CPU stage to its result, including the
    /// batched forward pass it shared (for a cache hit, the lookup). Excluded from equality:
    /// the only field that differs between two runs on the same input.
    #[serde(default)]
    pub processing_time_ms: f64,
}

mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_some(&base64::engine::general_purpose::STANDARD.encode(b)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| {
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}

/// Equal when every extracted value is equal; `processing_time_ms` is ignored.
impl PartialEq for Features {
    fn eq(&self, o: &Self) -> bool {
        self.content_hash == o.content_hash
            && self.width == o.width
            && self.height == o.height
            && self.embedding == o.embedding
            && self.dimensions == o.dimensions
            && self.colors == o.colors
            && self.silhouette == o.silhouette
            && self.cutout_png == o.cutout_png
            && self.attributes == o.attributes
            && self.quality == o.quality
            && self.model_id == o.model_id
            && self.cached == o.cached
    }
}

/// A cancellation flag shared between the caller and a running batch.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A fresh, not-cancelled token.
    pub fn new() -> Self {
        Self::default()
    }
    /// Requests cancellation: items not yet started finish with [`Error::Cancelled`].
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    /// Whether cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Progress callback: `(done, total)`, called from the batch's coordinating thread.
pub type ProgressFn = Arc<dyn Fn(usize, usize) + Send + Sync>;

/// Options of one batch call.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct BatchOptions {
    /// Called after every finished item.
    pub progress: Option<ProgressFn>,
    /// Checked before every item.
    pub cancel: Option<CancelToken>,
}

impl BatchOptions {
    /// Calls `f(done, total)` after every finished item.
    pub fn with_progress(mut self, f: impl Fn(usize, usize) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }
    /// Stops the batch when `token` is cancelled (items not started fail with `cancelled`).
    pub fn with_cancel(mut self, token: CancelToken) -> Self {
        self.cancel = Some(token);
        self
    }
}

impl fmt::Debug for BatchOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchOptions")
            .field("progress", &self.progress.is_some())
            .field("cancel", &self.cancel)
            .finish()
    }
}

/// The extraction pipeline. Cheap to clone; share it across threads.
#[derive(Clone)]
pub struct Extractor {
    inner: Arc<Inner>,
}

struct Inner {
    config: ExtractorConfig,
    pool: rayon::ThreadPool,
    encoder: OnceLock<std::result::Result<Arc<Encoder>, String>>,
    /// [`Extractor::min_decoded_size`], worked out once.
    decode_min: OnceLock<MinDecodedSize>,
    attributes: OnceLock<std::result::Result<Arc<AttributePredictor>, String>>,
    segmenter: Box<dyn Segmenter>,
    cache: Option<Mutex<lru::LruCache<CacheKey, Features>>>,
}

impl fmt::Debug for Extractor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extractor")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Work of one item after the CPU stages.
struct Staged {
    features: Features,
    /// The model's square RGB8 input (`ClipPreprocess::square_rgb`); normalised on the
    /// model's device, so a chunk moves to a GPU as bytes, not 4× as many f32s.
    pixels: Option<Vec<u8>>,
    started: Instant,
}

impl Extractor {
    /// A builder with the documented defaults.
    pub fn builder() -> ExtractorBuilder {
        ExtractorBuilder::default()
    }

    /// The configuration in force.
    pub fn config(&self) -> &ExtractorConfig {
        &self.inner.config
    }

    /// Loads the model (and the attribute heads) now instead of on first use.
    pub fn warm_up(&self) -> Result<()> {
        self.encoder()?;
        self.attributes()?;
        Ok(())
    }

    /// The loaded image model, loading it on first use. A load failure is remembered and
    /// returned to every later caller (it will not succeed on retry without a new extractor).
    fn encoder(&self) -> Result<Arc<Encoder>> {
        let loaded = self.inner.encoder.get_or_init(|| {
            let dir = self.inner.config.model_dir.as_ref().ok_or_else(|| {
                "no model directory configured (ExtractorBuilder::model_dir)".to_string()
            })?;
            let opts = ClipOptions {
                device: self.inner.config.device,
                precision: self.inner.config.precision,
                // A chunk is one forward pass.
                max_batch: self.inner.config.batch_size,
                ..ClipOptions::default()
            };
            Encoder::from_dir(dir, &opts)
                .map(Arc::new)
                .map_err(|e| e.to_string())
        });
        loaded.clone().map_err(|reason| Error::NotAvailable {
            what: format!("image model: {reason}"),
        })
    }

    /// Attribute heads for the loaded model: with CLIP, zero-shot heads (built once and
    /// cached beside the model); with an image-only model, none. Either way every trained
    /// linear head in `<model_dir>/heads/` bound to this model replaces or adds its
    /// attribute. An image-only model without heads has no attributes (`not_available`).
    fn attributes(&self) -> Result<Arc<AttributePredictor>> {
        let encoder = self.encoder()?;
        let loaded = self.inner.attributes.get_or_init(|| {
            let dir = self
                .inner
                .config
                .model_dir
                .as_ref()
                .ok_or_else(|| "no model directory configured".to_string())?;
            let base = match encoder.as_ref() {
                Encoder::Clip(clip) => AttributePredictor::load_or_build(clip.as_ref(), dir)
                    .map(|(predictor, _status)| predictor),
                Encoder::EfficientNet(m) => Ok(AttributePredictor::heads_only(
                    m.content_hash(),
                    m.embed_dim(),
                )),
            };
            let predictor = base
                .and_then(|p| p.with_heads_from_dir(&dir.join(HEADS_DIR)))
                .map_err(|e| e.to_string())?;
            if !predictor.has_head(crate::attributes::Attribute::Category) {
                return Err(format!(
                    "the model {} is image-only and {} holds no trained category head",
                    encoder.info().name,
                    dir.join(HEADS_DIR).display()
                ));
            }
            Ok(Arc::new(predictor))
        });
        loaded.clone().map_err(|reason| Error::NotAvailable {
            what: format!("attribute heads: {reason}"),
        })
    }

    /// The content hash of the loaded model (loads it if needed): `Features::model_id`.
    pub fn model_id(&self) -> Result<String> {
        Ok(self.encoder()?.content_hash().to_string())
    }

    /// What the loaded model is: architecture, readable name, hash, dimension, text tower.
    pub fn model_info(&self) -> Result<ModelInfo> {
        Ok(self.encoder()?.info())
    }

    /// The model-input preprocessing this extractor applies: the model's size, mean/std and
    /// crop rule with the configured framing (loads the model if needed).
    pub fn preprocess(&self) -> Result<ClipPreprocess> {
        self.encoder()?.preprocess(self.inner.config.resize_mode)
    }

    /// Dimension of image embeddings (loads the model if needed).
    pub fn embed_dim(&self) -> Result<usize> {
        Ok(self.encoder()?.info().dimensions)
    }

    /// CLIP text embedding (L2-normalised), for text→image search. `not_available` with an
    /// image-only model.
    pub fn embed_text(&self, text: &str) -> Result<Vec<f32>> {
        let mut v = self.embed_texts(&[text])?;
        v.pop()
            .ok_or_else(|| Error::Internal("text tower returned no embedding".into()))
    }

    /// CLIP text embeddings for several texts, in order.
    pub fn embed_texts(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let encoder = self.encoder()?;
        let clip = encoder.clip("text embeddings")?;
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        clip.embed_texts(texts)
    }

    /// Runs `ops` on one image.
    pub fn extract(&self, input: &ImageInput, ops: Ops) -> Result<Features> {
        let mut out =
            self.extract_batch(std::slice::from_ref(input), ops, &BatchOptions::default())?;
        out.pop()
            .ok_or_else(|| Error::Internal("batch of one returned nothing".into()))?
    }

    /// Runs `ops` on every input. The outer `Result` fails only for problems that concern
    /// the whole call (no operation selected, the model cannot load); each item has its own
    /// result, in input order.
    pub fn extract_batch(
        &self,
        inputs: &[ImageInput],
        ops: Ops,
        options: &BatchOptions,
    ) -> Result<Vec<Result<Features>>> {
        if ops.is_empty() {
            return Err(Error::MissingParameter { name: "ops".into() });
        }
        // Fail fast, once, when the model is needed and unavailable.
        let encoder = if ops.needs_model() {
            Some(self.encoder()?)
        } else {
            None
        };
        let attrs = if ops.attributes {
            Some(self.attributes()?)
        } else {
            None
        };
        let total = inputs.len();
        let mut results: Vec<Option<Result<Features>>> = (0..total).map(|_| None).collect();
        let mut done = 0usize;
        let chunk = self.inner.config.batch_size;
        let overlap = encoder.as_ref().is_some_and(|c| c.is_cuda());

        let mut finish = |start: usize, staged: Vec<Result<Staged>>| -> Result<()> {
            let finished = self.model_stage(staged, ops, encoder.as_deref(), attrs.as_deref());
            for (i, r) in finished.into_iter().enumerate() {
                results[start + i] = Some(r);
                done += 1;
                if let Some(p) = &options.progress {
                    p(done, total);
                }
            }
            Ok(())
        };

        if overlap {
            // CPU stages of chunk i+1 run while chunk i is on the GPU.
            std::thread::scope(|scope| -> Result<()> {
                let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Vec<Result<Staged>>)>(1);
                let producer = scope.spawn(move || {
                    for (ci, part) in inputs.chunks(chunk).enumerate() {
                        let staged = self.cpu_stage(part, ops, options.cancel.as_ref());
                        if tx.send((ci * chunk, staged)).is_err() {
                            break;
                        }
                    }
                });
                for (start, staged) in rx {
                    finish(start, staged)?;
                }
                producer
                    .join()
                    .map_err(|_| Error::Internal("batch producer thread panicked".into()))
            })?;
        } else {
            for (ci, part) in inputs.chunks(chunk).enumerate() {
                let staged = self.cpu_stage(part, ops, options.cancel.as_ref());
                finish(ci * chunk, staged)?;
            }
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::Internal("item was never processed".into()))))
            .collect())
    }

    /// Decode, working image, segmentation, colours, quality, shape, cut-out and CLIP
    /// preprocessing for a chunk, in parallel. Cached items come back complete.
    fn cpu_stage(
        &self,
        part: &[ImageInput],
        ops: Ops,
        cancel: Option<&CancelToken>,
    ) -> Vec<Result<Staged>> {
        self.inner.pool.install(|| {
            part.par_iter()
                .map(|input| {
                    if cancel.is_some_and(CancelToken::is_cancelled) {
                        return Err(Error::Cancelled);
                    }
                    self.cpu_one(input, ops)
                })
                .collect()
        })
    }

    /// The smallest decode the views of a photo can use: the working image and, when a model
    /// is configured, its input; each is a downscale, so a JPEG at least twice that size can
    /// decode reduced. It depends on the configuration only, never on the operations asked
    /// for: a photo's embedding must not change because colours were asked for with it. The
    /// model's input size comes from its `config.json`, so an extractor whose model is not
    /// loaded yet (or is never used) decides exactly as one whose model is.
    fn min_decoded_size(&self) -> MinDecodedSize {
        *self.inner.decode_min.get_or_init(|| {
            let c = &self.inner.config;
            if c.reduced_decode_margin == 0 {
                return MinDecodedSize::FULL;
            }
            let mut min = MinDecodedSize::long_side(c.working_side);
            if let Some(dir) = &c.model_dir {
                match crate::encoder::input_size(dir) {
                    Some(size) => {
                        let pre = ClipPreprocess::new(size).with_mode(c.resize_mode);
                        min = min.max(pre.min_decoded_size());
                    }
                    // An unreadable config fails the model's own load with its reason;
                    // until then, nothing is reduced.
                    None => return MinDecodedSize::FULL,
                }
            }
            min.times(c.reduced_decode_margin)
        })
    }

    fn cpu_one(&self, input: &ImageInput, ops: Ops) -> Result<Staged> {
        let started = Instant::now();
        let c = &self.inner.config;
        let bytes = load_bytes(input, &c.limits)?;
        let content_hash = content_hash(&bytes);
        let key = (content_hash.clone(), ops);
        if let Some(hit) = self.cache_get(&key) {
            return Ok(Staged {
                features: Features {
                    cached: true,
                    ..hit
                },
                pixels: None,
                started,
            });
        }
        let decoded: DecodedImage = match input {
            ImageInput::Raw { .. } => input::decode(input, &c.limits)?,
            _ => input::decode_bytes_reduced(&bytes, &c.limits, self.min_decoded_size())?,
        };
        // Sizes and boxes are reported in the photo's own frame, whatever the decode's scale.
        let (w, h) = (decoded.source_width(), decoded.source_height());
        let mut f = Features {
            content_hash,
            width: w,
            height: h,
            embedding: None,
            dimensions: None,
            colors: None,
            silhouette: None,
            cutout_png: None,
            attributes: None,
            quality: None,
            model_id: None,
            cached: false,
            processing_time_ms: 0.0,
        };
        if ops.needs_working() {
            let working = decoded.working(c.working_side)?;
            // No photo is refused for lack of a clear foreground: the centre prior stands in
            // and says so. Colours and quality then do without a mask (colours fall back to
            // their border model or the whole image, and report which).
            let (seg, source): (Segmentation, SilhouetteSource) =
                match self.inner.segmenter.segment(&working) {
                    Ok(seg) => (seg, SilhouetteSource::Segmenter),
                    Err(Error::EmptyImage { .. }) => {
                        (center_prior(&working)?, SilhouetteSource::CenterPrior)
                    }
                    Err(e) => return Err(e),
                };
            let product_mask = (source == SilhouetteSource::Segmenter).then_some(&seg.mask);
            if ops.colors {
                f.colors = Some(extract_colors(&working, product_mask, &c.color_options)?);
            }
            if ops.quality {
                f.quality = Some(quality_score(&working, product_mask)?);
            }
            if ops.silhouette {
                f.silhouette = Some(SilhouetteFeatures {
                    bbox: seg.bbox.scaled(working.width(), working.height(), w, h),
                    area_fraction: seg.area_fraction,
                    confidence: seg.confidence,
                    foreground: source,
                    embedding: shape_embedding(&seg.mask)?,
                });
            }
            if ops.cutout {
                // A cut-out is full size: a reduced decode is decoded again, at full size.
                let again;
                let full_image = if decoded.is_reduced() {
                    again = input::decode_bytes(&bytes, &c.limits)?;
                    &again
                } else {
                    &decoded
                };
                let full = seg.mask_at(w, h)?;
                f.cutout_png = Some(cutout_png(w, h, full_image.rgb(), &full)?);
            }
        }
        let pixels = if ops.needs_model() {
            Some(
                self.encoder()?
                    .preprocess(c.resize_mode)?
                    .square_rgb(&decoded)?,
            )
        } else {
            None
        };
        Ok(Staged {
            features: f,
            pixels,
            started,
        })
    }

    /// One forward pass over the chunk's pixels, then attributes; fills the cache.
    fn model_stage(
        &self,
        staged: Vec<Result<Staged>>,
        ops: Ops,
        encoder: Option<&Encoder>,
        attrs: Option<&AttributePredictor>,
    ) -> Vec<Result<Features>> {
        let mut batch = Vec::new();
        let mut owners = Vec::new();
        for (i, s) in staged.iter().enumerate() {
            if let Ok(Staged {
                pixels: Some(p), ..
            }) = s
            {
                batch.extend_from_slice(p);
                owners.push(i);
            }
        }
        let mut embeddings: HashMap<usize, Vec<f32>> = HashMap::new();
        let mut batch_error: Option<String> = None;
        if let (Some(encoder), false) = (encoder, owners.is_empty()) {
            match encoder
                .preprocess(self.inner.config.resize_mode)
                .and_then(|pre: ClipPreprocess| encoder.embed_rgb8(&batch, owners.len(), &pre))
            {
                Ok(embs) => embeddings.extend(owners.iter().copied().zip(embs)),
                Err(e) => batch_error = Some(e.to_string()),
            }
        }
        let model_id = encoder.map(|c| c.content_hash().to_string());
        staged
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let Staged {
                    mut features,
                    pixels,
                    started,
                } = s?;
                if pixels.is_some() {
                    if let Some(reason) = &batch_error {
                        return Err(Error::Internal(format!("model forward failed: {reason}")));
                    }
                    let emb = embeddings
                        .remove(&i)
                        .ok_or_else(|| Error::Internal("missing embedding".into()))?;
                    if ops.attributes {
                        if let Some(a) = attrs {
                            features.attributes = Some(a.predict(&emb)?);
                        }
                    }
                    features.model_id = model_id.clone();
                    if ops.embed {
                        features.dimensions = Some(emb.len());
                        features.embedding = Some(emb);
                    }
                    self.cache_put((features.content_hash.clone(), ops), &features);
                } else if !features.cached {
                    self.cache_put((features.content_hash.clone(), ops), &features);
                }
                // From the start of this item's CPU stage to its result: includes the
                // batched forward pass it shared (what a caller of one item would wait for).
                features.processing_time_ms = started.elapsed().as_secs_f64() * 1e3;
                Ok(features)
            })
            .collect()
    }

    fn cache_get(&self, key: &CacheKey) -> Option<Features> {
        let cache = self.inner.cache.as_ref()?;
        let mut guard = cache.lock().ok()?;
        guard.get(key).cloned()
    }

    fn cache_put(&self, key: CacheKey, f: &Features) {
        if let Some(Ok(mut c)) = self.inner.cache.as_ref().map(Mutex::lock) {
            c.put(key, f.clone());
        }
    }
}

type CacheKey = (String, Ops);

/// Folder inside a model directory whose `*.safetensors` linear heads the extractor loads.
pub const HEADS_DIR: &str = "heads";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_parse_print_and_reject() {
        let ops: Ops = "embed, colors,quality".parse().unwrap();
        assert!(ops.embed && ops.colors && ops.quality && !ops.silhouette);
        assert_eq!(ops.to_string(), "embed,colors,quality");
        assert_eq!("all".parse::<Ops>().unwrap(), Ops::ALL);
        assert_eq!(
            "background-remove".parse::<Ops>().unwrap().to_string(),
            "cutout"
        );
        assert_eq!(
            "emb".parse::<Ops>().unwrap_err().code(),
            "invalid_parameter"
        );
        assert_eq!(
            " , ".parse::<Ops>().unwrap_err().code(),
            "missing_parameter"
        );
    }

    #[test]
    fn builder_rejects_bad_values() {
        assert!(Extractor::builder().threads(0).build().is_err());
        assert!(Extractor::builder().batch_size(0).build().is_err());
        assert!(Extractor::builder().working_side(8).build().is_err());
        let e = Extractor::builder()
            .model_dir("/nonexistent/dupify-model")
            .build()
            .unwrap_err();
        assert_eq!(e.code(), "model_error");
    }

    #[test]
    fn model_ops_without_a_model_fail_once_for_the_call() {
        let x = Extractor::builder().threads(1).build().unwrap();
        let e = x
            .extract_batch(
                &[ImageInput::Bytes(vec![1, 2, 3])],
                Ops::EMBED,
                &BatchOptions::default(),
            )
            .unwrap_err();
        assert_eq!(e.code(), "not_available");
    }
}
