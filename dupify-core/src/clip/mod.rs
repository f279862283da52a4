//! CLIP image and text embeddings, natively in tch.
//!
//! [`ClipModel`] loads a Hugging Face `CLIPModel` checkpoint (`config.json` +
//! `model.safetensors`: openai/clip-vit-base-patch32, -patch16, clip-vit-large-patch14,
//! patrickjohncyh/fashion-clip, …) and turns preprocessed pixels or text into L2-normalised
//! `Vec<f32>` embeddings in one shared space, so text can search images. [`ClipTokenizer`] is
//! CLIP's BPE tokenizer. The model code (`model.rs`) is private; see it for the paper and the
//! reference implementation it is checked against.
//!
//! # Sharing across threads
//! A `ClipModel` is `Send + Sync`: load it once and share it behind an `Arc`. Every method
//! takes `&self` and runs its LibTorch work under `tch::no_grad` *on the calling thread*
//! (autograd's grad mode is thread-local in LibTorch, so the guard is taken inside each call
//! rather than once at load time); callers need nothing else.
//!
//! # Threads
//! LibTorch parallelises each operator over its intra-op thread pool, which is process-wide.
//! Policy: the first model load sets it once to [`ClipOptions::intra_op_threads`] or, when
//! unset, to the number of available cores, unless LibTorch was already configured by the host
//! (a later load with an explicit value re-applies it). Rayon work in Dupify (decode, resize,
//! colours) runs *before* a batched model call, not around it, so the two pools don't compete;
//! a host that calls the model concurrently from `k` threads should set `intra_op_threads` to
//! `cores / k` to avoid oversubscription.

mod config;
mod model;
mod tokenizer;

use std::path::{Path, PathBuf};
use std::sync::Once;

use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

// The config structs mirror `config.json` for loading; they are not part of the API
// (`Extractor::model_info` says what a caller needs of a model).
pub(crate) use config::ClipConfig;
pub use tokenizer::{ClipTokenizer, CONTEXT_LENGTH};

use crate::device::{Device, Precision};
use crate::error::{Error, Result};
use crate::input::ClipPreprocess;

/// File names looked up by [`ClipModel::from_dir`].
pub const CONFIG_FILE: &str = "config.json";
/// The weights, in the `CLIPModel` safetensors layout.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// Tokenizer merges as shipped in the open-clip-torch wheel.
pub const BPE_FILE: &str = "bpe_simple_vocab_16e6.txt.gz";
/// Tokenizer merges as shipped on the Hugging Face hub.
pub const MERGES_FILE: &str = "merges.txt";

/// How to load a CLIP model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ClipOptions {
    /// Compute device. Default `Auto` (CUDA when usable, else CPU).
    pub device: Device,
    /// Compute precision. Default f32. `F16` needs CUDA; `Bf16` runs on CUDA and on CPU;
    /// `Int8` (dynamic int8 Linear layers) on the CPU only.
    pub precision: Precision,
    /// LibTorch intra-op threads (process-wide, see the module docs). Default: all cores.
    pub intra_op_threads: Option<usize>,
    /// Largest batch sent to the model at once; bigger inputs are split. Default 64.
    pub max_batch: usize,
}

impl Default for ClipOptions {
    fn default() -> Self {
        Self {
            device: Device::Auto,
            precision: Precision::F32,
            intra_op_threads: None,
            max_batch: 64,
        }
    }
}

impl ClipOptions {
    /// CPU, f32: the reference configuration.
    pub fn cpu() -> Self {
        Self {
            device: Device::Cpu,
            ..Self::default()
        }
    }

    /// Sets LibTorch's intra-op thread count.
    pub fn with_intra_op_threads(mut self, n: usize) -> Self {
        self.intra_op_threads = Some(n);
        self
    }

    /// Sets the largest model batch.
    pub fn with_max_batch(mut self, n: usize) -> Self {
        self.max_batch = n;
        self
    }
}

/// A loaded CLIP model: image and text towers, projections, logit scale, and (when found) the
/// tokenizer. `Send + Sync`; share it with `Arc`.
pub struct ClipModel {
    inner: model::Clip,
    config: ClipConfig,
    tokenizer: Option<ClipTokenizer>,
    content_hash: String,
    max_batch: usize,
    /// `Precision::Int8`: texts go through the text tower one at a time (see
    /// `embed_token_ids`).
    int8: bool,
}

impl std::fmt::Debug for ClipModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClipModel")
            .field("name", &self.name())
            .field("device", &self.inner.device)
            .field("kind", &self.inner.kind)
            .field("tokenizer", &self.tokenizer.is_some())
            .finish()
    }
}

impl ClipModel {
    /// Loads `config.json` and `model.safetensors` from `dir`, and the tokenizer from
    /// `bpe_simple_vocab_16e6.txt.gz` or `merges.txt` in `dir` when one is there (without
    /// one, [`ClipModel::embed_texts`] answers `NotAvailable`; see
    /// [`ClipModel::with_tokenizer`]).
    pub fn from_dir(dir: impl AsRef<Path>, opts: &ClipOptions) -> Result<Self> {
        let dir = dir.as_ref();
        let read = |name: &str| {
            let p = dir.join(name);
            std::fs::read(&p).map_err(|source| Error::Storage { path: p, source })
        };
        let config = read(CONFIG_FILE)?;
        let weights = read(WEIGHTS_FILE)?;
        let mut m = Self::from_bytes(&config, &weights, opts).map_err(|e| match e {
            Error::ModelLoad { path, reason } => Error::ModelLoad {
                path: dir.join(path),
                reason,
            },
            other => other,
        })?;
        for name in [BPE_FILE, MERGES_FILE] {
            let p: PathBuf = dir.join(name);
            if p.is_file() {
                m.tokenizer = Some(ClipTokenizer::from_file(&p)?);
                break;
            }
        }
        Ok(m)
    }

    /// Loads a model from the bytes of `config.json` and `model.safetensors`.
    pub fn from_bytes(config_json: &[u8], safetensors: &[u8], opts: &ClipOptions) -> Result<Self> {
        if opts.max_batch == 0 {
            return Err(Error::invalid("max_batch", "must be at least 1"));
        }
        // Int8 is refused for an explicit CUDA device before resolving it (so the error is
        // the same with or without CUDA here) and for `Auto` when that resolves to CUDA.
        let int8_on_cuda = || {
            Error::invalid(
                "precision",
                format!(
                    "int8 runs on the CPU only (fbgemm kernels), but the device is {}; use \
                     device cpu, or f16/bf16 on CUDA",
                    opts.device
                ),
            )
        };
        if opts.precision == Precision::Int8 && matches!(opts.device, Device::Cuda(_)) {
            return Err(int8_on_cuda());
        }
        let device = opts.device.resolve()?;
        if opts.precision == Precision::Int8 && device != tch::Device::Cpu {
            return Err(int8_on_cuda());
        }
        if opts.precision == Precision::F16 && device == tch::Device::Cpu {
            return Err(Error::invalid(
                "precision",
                "f16 needs a CUDA device; use bf16 (or f32) on the CPU",
            ));
        }
        apply_thread_policy(opts.intra_op_threads);
        let config = ClipConfig::from_json(config_json)?;
        let st = SafeTensors::deserialize(safetensors)
            .map_err(|e| model::load_err(format!("not a valid safetensors file: {e}")))?;
        let inner = tch::no_grad(|| model::Clip::load(&config, &st, opts.precision, device))?;
        let content_hash = crate::encoder::content_hash_of(config_json, safetensors);
        Ok(Self {
            inner,
            config,
            tokenizer: None,
            content_hash,
            max_batch: opts.max_batch,
            int8: opts.precision == Precision::Int8,
        })
    }

    /// Attaches (or replaces) the tokenizer used by [`ClipModel::embed_texts`]. Its
    /// vocabulary must fit the text tower's.
    pub fn with_tokenizer(mut self, tokenizer: ClipTokenizer) -> Result<Self> {
        if tokenizer.vocab_size() > self.config.text_config.vocab_size {
            return Err(Error::ModelLoad {
                path: "tokenizer".into(),
                reason: format!(
                    "tokenizer has {} ids, the text tower {}",
                    tokenizer.vocab_size(),
                    self.config.text_config.vocab_size
                ),
            });
        }
        self.tokenizer = Some(tokenizer);
        Ok(self)
    }

    /// Embedding dimension (`projection_dim`: 512 for ViT-B/32, 768 for ViT-L/14).
    pub fn embed_dim(&self) -> usize {
        self.config.projection_dim
    }

    /// Side of the square input image in pixels (224 for the OpenAI checkpoints).
    pub fn image_size(&self) -> usize {
        self.config.vision_config.image_size
    }

    /// SHA-256 (hex) of the config and weights bytes: ties attribute heads and stored
    /// embeddings to exactly this model.
    pub fn content_hash(&self) -> &str {
        &self.content_hash
    }

    /// A readable name: architecture plus the first 12 hex digits of the content hash, e.g.
    /// `clip-vit-p32-224px-512d@3f2a…` ([`crate::ModelInfo::name`]). Not the model id: that is
    /// the full [`content_hash`](Self::content_hash), everywhere.
    pub fn name(&self) -> String {
        let v = &self.config.vision_config;
        format!(
            "clip-vit-p{}-{}px-{}d@{}",
            v.patch_size,
            v.image_size,
            self.config.projection_dim,
            &self.content_hash[..12]
        )
    }

    /// The learned temperature, as stored (`exp()` of it multiplies cosine similarities).
    pub fn logit_scale(&self) -> f32 {
        self.inner.logit_scale() as f32
    }

    /// Whether the model runs on a CUDA device (batches then overlap CPU work with it).
    pub fn is_cuda(&self) -> bool {
        matches!(self.inner.device, tch::Device::Cuda(_))
    }

    /// The tokenizer, when one was found or attached.
    pub fn tokenizer(&self) -> Option<&ClipTokenizer> {
        self.tokenizer.as_ref()
    }

    /// L2-normalised image embeddings of `batch` preprocessed images: `pixels` is
    /// `[batch, 3, image_size, image_size]` row-major (CHW per image, normalised with CLIP's
    /// mean/std). Batched and one-by-one calls agree (up to f32 rounding; with
    /// [`Precision::Int8`] each image has its own activation scales, so an int8 level flipped
    /// by such rounding is the only difference).
    pub fn embed_pixels(&self, pixels: &[f32], batch: usize) -> Result<Vec<Vec<f32>>> {
        let shape = (self.config.vision_config.num_channels, self.image_size());
        crate::encoder::embed_f32_batches(pixels, batch, shape, self.max_batch, |x| {
            self.inner.image_features(x)
        })
    }

    /// L2-normalised image embeddings of `batch` square RGB8 images as
    /// [`ClipPreprocess::square_rgb`] returns them (`[batch, S, S, 3]`, before normalisation),
    /// normalised with `preprocess`'s mean/std *on the model's device*.
    ///
    /// Why: a normalised f32 image is 4× the bytes of its RGB8 crop. On a GPU the host→device
    /// copy and the host-side batch assembly of f32 pixels cap throughput well below what the
    /// model sustains, so batches travel as bytes. Normalisation is a lookup in the same
    /// table [`ClipPreprocess::preprocess`] uses, so the result equals
    /// `embed_pixels(preprocess(..))` bit for bit.
    pub fn embed_rgb8(
        &self,
        rgb: &[u8],
        batch: usize,
        preprocess: &ClipPreprocess,
    ) -> Result<Vec<Vec<f32>>> {
        crate::encoder::embed_rgb8_batches(
            rgb,
            batch,
            self.image_size(),
            self.max_batch,
            preprocess,
            self.inner.device,
            |x| self.inner.image_features(x),
        )
    }

    /// L2-normalised text embeddings, in the image embeddings' space (text → image search).
    /// Texts longer than the context are truncated (end token kept).
    pub fn embed_texts(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let tok = self.tokenizer.as_ref().ok_or_else(|| Error::NotAvailable {
            what: format!(
                "text embeddings: no CLIP tokenizer ({BPE_FILE} or {MERGES_FILE}) next to the model"
            ),
        })?;
        let ctx = self.config.text_config.max_position_embeddings;
        let rows = tok.encode_batch(texts, ctx);
        self.embed_token_ids(&rows)
    }

    /// L2-normalised text embeddings of already tokenized rows (`<start_of_text>` … ids …
    /// `<end_of_text>`, optionally padded). Pooling follows `transformers`: the argmax of the
    /// ids for legacy configs (`eos_token_id == 2`), else the first `eos_token_id`.
    pub fn embed_token_ids(&self, rows: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        let tc = &self.config.text_config;
        let mut out = Vec::with_capacity(rows.len());
        // Int8 quantizes each row's activations on their own, padding included: one text at
        // a time (cut after its own pooled token, below) is what keeps a text's int8 embedding
        // independent of the longest text it happens to be batched with.
        let step = if self.int8 { 1 } else { self.max_batch };
        tch::no_grad(|| -> Result<()> {
            for chunk in rows.chunks(step) {
                let mut eos = Vec::with_capacity(chunk.len());
                for (i, r) in chunk.iter().enumerate() {
                    if r.is_empty() || r.len() > tc.max_position_embeddings {
                        return Err(Error::invalid(
                            "token_ids",
                            format!(
                                "row {i} has {} ids, expected 1..={}",
                                r.len(),
                                tc.max_position_embeddings
                            ),
                        ));
                    }
                    if let Some(&bad) = r.iter().find(|&&id| id as usize >= tc.vocab_size) {
                        return Err(Error::invalid(
                            "token_ids",
                            format!("id {bad} is outside the vocabulary of {}", tc.vocab_size),
                        ));
                    }
                    eos.push(eos_position(r, tc.eos_token_id));
                }
                // Causal attention: tokens after the pooled position cannot change it, so
                // the batch only needs to reach the furthest one.
                let t = eos.iter().max().map_or(1, |&p| p + 1);
                let mut ids = Vec::with_capacity(chunk.len() * t);
                for r in chunk {
                    ids.extend(r.iter().take(t).map(|&x| x as i64));
                    ids.extend(std::iter::repeat_n(0i64, t.saturating_sub(r.len())));
                }
                let ids = Tensor::f_from_slice(&ids)?.f_view([chunk.len() as i64, t as i64])?;
                let eos: Vec<i64> = eos.iter().map(|&p| p as i64).collect();
                let eos = Tensor::f_from_slice(&eos)?.f_to_kind(Kind::Int64)?;
                out.extend(crate::encoder::normalized_rows(
                    &self.inner.text_features(&ids, &eos)?,
                )?);
            }
            Ok(())
        })?;
        Ok(out)
    }
}

/// Where `transformers` pools the text tower: the first maximum of the ids for legacy configs
/// (`eos_token_id == 2`), otherwise the first `eos_token_id` (position 0 when absent).
fn eos_position(row: &[u32], eos_token_id: i64) -> usize {
    if eos_token_id == 2 {
        let mut best = 0;
        for (i, &x) in row.iter().enumerate() {
            if x > row[best] {
                best = i;
            }
        }
        best
    } else {
        row.iter()
            .position(|&x| i64::from(x) == eos_token_id)
            .unwrap_or(0)
    }
}

/// Sets LibTorch's intra-op pool once per process (see the module docs).
pub(crate) fn apply_thread_policy(explicit: Option<usize>) {
    static DEFAULT: Once = Once::new();
    match explicit {
        Some(n) if n > 0 => tch::set_num_threads(n.min(i32::MAX as usize) as i32),
        _ => DEFAULT.call_once(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            // Respect a host that configured LibTorch (or OMP_NUM_THREADS) itself.
            if std::env::var_os("OMP_NUM_THREADS").is_none() {
                tch::set_num_threads(cores.min(i32::MAX as usize) as i32);
            }
        }),
    }
}

dupify_types::setters! { ClipOptions {
    /// Sets the device.
    with_device(device: Device),
    /// Sets the precision.
    with_precision(precision: Precision),
} }

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eos_pooling_follows_transformers() {
        // Legacy: argmax, first occurrence.
        assert_eq!(eos_position(&[49406, 320, 49407, 0, 49407], 2), 2);
        // New configs: first eos id.
        assert_eq!(eos_position(&[49406, 320, 49407, 0], 49407), 2);
        assert_eq!(eos_position(&[49406, 320], 49407), 0);
    }

    #[test]
    fn model_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<ClipModel>();
        check::<ClipTokenizer>();
    }
}
