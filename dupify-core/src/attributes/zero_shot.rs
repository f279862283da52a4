//! Zero-shot attribute heads: label matrices from prompt-ensembled CLIP text embeddings,
//! cached as safetensors next to the model and tied to its content hash.
//!
//! # Building (once per model)
//!
//! For each attribute and each label, every template of the attribute is filled with the
//! label's phrase ([`taxonomy`]); the prompts go through the text tower in one call per
//! attribute; each prompt embedding is L2-normalised, the label's prompt embeddings are
//! averaged and the mean re-normalised. Row `i` of the attribute's matrix is label `i`.
//! This is the prompt ensembling of CLIP (Radford et al. 2021, §3.1.4) as done in the
//! reference notebook `Prompt_Engineering_for_ImageNet.ipynb` of openai/CLIP.
//!
//! # Scoring
//!
//! `p = softmax(logit_scale · T · ê)` with `ê` the L2-normalised image embedding and
//! `logit_scale` the model's (≈100 for trained CLIP): exactly CLIP's zero-shot classifier.
//!
//! # Cache file
//!
//! `<model_dir>/attribute_heads.safetensors` ([`ZeroShotHeads::CACHE_FILE`]), written
//! atomically, holds one F32 tensor per attribute, `<attribute>.text_embeddings`
//! (`[labels, dim]`), and string metadata (safetensors `__metadata__`):
//!
//! | key | value |
//! |---|---|
//! | `format` | `dupify.zero_shot_heads.v1` |
//! | `model_hash` | [`TextEncoder::model_hash`] of the model that built it |
//! | `prompt_hash` | [`taxonomy::prompt_set_hash`] of the prompts it was built from |
//! | `logit_scale` | the model's logit scale (decimal) |
//! | `embed_dim` | embedding dimension (decimal) |
//! | `labels.<attribute>` | JSON array of the attribute's labels, in row order |
//!
//! [`ZeroShotHeads::load`] refuses a file whose model hash (or prompt hash) is not the
//! expected one; [`ZeroShotHeads::load_or_build`] rebuilds and rewrites it instead.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::taxonomy::{self, Attribute};
use super::{
    load_err, matvec, normalized, prediction, read_head_file, write_head_file, AttributePrediction,
    HeadFile, HeadKind, TextEncoder,
};
use crate::error::{Error, Result};

const FORMAT: &str = "dupify.zero_shot_heads.v1";

/// One attribute's label matrix.
#[derive(Debug, Clone, PartialEq)]
struct ZeroShotHead {
    attribute: Attribute,
    labels: Vec<String>,
    /// Row-major `labels.len() × dim`, rows L2-normalised.
    matrix: Vec<f32>,
}

/// The zero-shot heads of every taxonomy attribute for one model.
#[derive(Debug, Clone, PartialEq)]
pub struct ZeroShotHeads {
    model_hash: String,
    prompt_hash: String,
    logit_scale: f32,
    dim: usize,
    /// In [`Attribute::ALL`] order.
    heads: Vec<ZeroShotHead>,
}

/// What [`ZeroShotHeads::load_or_build`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum CacheStatus {
    /// The cache matched the model and prompts and was used as is.
    Loaded,
    /// The heads were built with the text tower. `reason` says why the cache was not used
    /// (absent, built for another model, other prompts, unreadable); `cache_error` is set
    /// when the rebuilt heads could not be written back (e.g. a read-only model directory) —
    /// the heads are still correct, they will just be rebuilt next time.
    Built {
        reason: String,
        cache_error: Option<String>,
    },
}

impl ZeroShotHeads {
    /// File name of the cache inside a model directory.
    pub const CACHE_FILE: &'static str = "attribute_heads.safetensors";

    /// Cache path for a model directory.
    pub fn cache_path(model_dir: &Path) -> PathBuf {
        model_dir.join(Self::CACHE_FILE)
    }

    /// Builds every head with the text tower (see the module docs for the recipe).
    pub fn build(encoder: &dyn TextEncoder) -> Result<Self> {
        let dim = encoder.embed_dim();
        let logit_scale = encoder.logit_scale();
        if dim == 0 {
            return Err(Error::Internal("text encoder reports embed_dim 0".into()));
        }
        if !(logit_scale.is_finite() && logit_scale > 0.0) {
            return Err(Error::Internal(format!(
                "text encoder logit scale {logit_scale} is not a positive number"
            )));
        }
        let mut heads = Vec::with_capacity(Attribute::ALL.len());
        for attribute in Attribute::ALL {
            let def = attribute.def();
            let labels = def.labels();
            let prompts: Vec<String> = labels
                .iter()
                .flat_map(|(_, phrase)| def.prompts_for(phrase))
                .collect();
            let refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
            let embs = encoder.embed_texts(&refs)?;
            if embs.len() != prompts.len() {
                return Err(Error::Internal(format!(
                    "text encoder returned {} embeddings for {} prompts",
                    embs.len(),
                    prompts.len()
                )));
            }
            let per_label = def.templates.len();
            let mut matrix = Vec::with_capacity(labels.len() * dim);
            for (li, chunk) in embs.chunks(per_label).enumerate() {
                let mut mean = vec![0f64; dim];
                for (pi, e) in chunk.iter().enumerate() {
                    let e = normalized(e, dim, "text embedding").map_err(|err| {
                        Error::Internal(format!("prompt `{}`: {err}", prompts[li * per_label + pi]))
                    })?;
                    for (m, &x) in mean.iter_mut().zip(&e) {
                        *m += f64::from(x);
                    }
                }
                let mean: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
                let row = normalized(&mean, dim, "mean text embedding")
                    .map_err(|err| Error::Internal(format!("label `{}`: {err}", labels[li].0)))?;
                matrix.extend_from_slice(&row);
            }
            heads.push(ZeroShotHead {
                attribute,
                labels: labels.iter().map(|(l, _)| l.to_string()).collect(),
                matrix,
            });
        }
        Ok(Self {
            model_hash: encoder.model_hash(),
            prompt_hash: taxonomy::prompt_set_hash(),
            logit_scale,
            dim,
            heads,
        })
    }

    /// Loads heads from `path`, refusing them (`model_error`) unless they were built for
    /// `expected_model_hash` from this library's prompt set. Also refuses malformed files:
    /// missing metadata or tensors, wrong shapes or dtypes, non-finite values.
    pub fn load(path: &Path, expected_model_hash: &str) -> Result<Self> {
        let bytes = read_head_file(path)?;
        let file = HeadFile::parse(path, &bytes)?;
        let format = file.meta(path, "format")?;
        if format != FORMAT {
            return Err(load_err(
                path,
                format!("format is `{format}`, expected `{FORMAT}`"),
            ));
        }
        let model_hash = file.meta(path, "model_hash")?;
        if model_hash != expected_model_hash {
            return Err(load_err(
                path,
                format!(
                    "heads were built for model {model_hash}, refusing them for model \
                     {expected_model_hash}"
                ),
            ));
        }
        let prompt_hash = file.meta(path, "prompt_hash")?;
        let expected_prompts = taxonomy::prompt_set_hash();
        if prompt_hash != expected_prompts {
            return Err(load_err(
                path,
                format!(
                    "heads were built from prompt set {prompt_hash}, this library's is \
                     {expected_prompts}"
                ),
            ));
        }
        let logit_scale: f32 = file
            .meta(path, "logit_scale")?
            .parse()
            .map_err(|e| load_err(path, format!("logit_scale: {e}")))?;
        if !(logit_scale.is_finite() && logit_scale > 0.0) {
            return Err(load_err(path, format!("logit_scale {logit_scale}")));
        }
        let dim: usize = file
            .meta(path, "embed_dim")?
            .parse()
            .map_err(|e| load_err(path, format!("embed_dim: {e}")))?;
        if dim == 0 {
            return Err(load_err(path, "embed_dim is 0"));
        }
        let mut heads = Vec::with_capacity(Attribute::ALL.len());
        for attribute in Attribute::ALL {
            let name = attribute.name();
            let labels: Vec<String> =
                serde_json::from_str(file.meta(path, &format!("labels.{name}"))?)
                    .map_err(|e| load_err(path, format!("labels.{name}: {e}")))?;
            let expected: Vec<&str> = attribute.def().labels().iter().map(|(l, _)| *l).collect();
            if labels != expected {
                return Err(load_err(
                    path,
                    format!("labels.{name} do not match the taxonomy"),
                ));
            }
            let matrix = file
                .tensor(path, &tensor_name(attribute), &[labels.len(), dim])?
                .to_vec();
            heads.push(ZeroShotHead {
                attribute,
                labels,
                matrix,
            });
        }
        Ok(Self {
            model_hash: model_hash.to_string(),
            prompt_hash: prompt_hash.to_string(),
            logit_scale,
            dim,
            heads,
        })
    }

    /// Writes the heads to `path` atomically (see the module docs for the layout).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut metadata = HashMap::new();
        metadata.insert("format".to_string(), FORMAT.to_string());
        metadata.insert("model_hash".to_string(), self.model_hash.clone());
        metadata.insert("prompt_hash".to_string(), self.prompt_hash.clone());
        metadata.insert("logit_scale".to_string(), self.logit_scale.to_string());
        metadata.insert("embed_dim".to_string(), self.dim.to_string());
        let mut tensors = Vec::with_capacity(self.heads.len());
        for h in &self.heads {
            metadata.insert(
                format!("labels.{}", h.attribute.name()),
                serde_json::to_string(&h.labels)
                    .map_err(|e| Error::Internal(format!("labels: {e}")))?,
            );
            tensors.push((
                tensor_name(h.attribute),
                vec![h.labels.len(), self.dim],
                h.matrix.clone(),
            ));
        }
        write_head_file(path, &tensors, metadata)
    }

    /// Loads the cache in `model_dir` if it was built for this encoder's model and this
    /// prompt set; otherwise builds the heads with the encoder and rewrites the cache.
    /// Only text-tower errors fail this call: an unusable cache is rebuilt, an unwritable
    /// one is reported in [`CacheStatus::Built::cache_error`].
    pub fn load_or_build(
        encoder: &dyn TextEncoder,
        model_dir: &Path,
    ) -> Result<(Self, CacheStatus)> {
        let path = Self::cache_path(model_dir);
        let hash = encoder.model_hash();
        let reason = if path.exists() {
            match Self::load(&path, &hash) {
                Ok(heads) if heads.dim == encoder.embed_dim() => {
                    return Ok((heads, CacheStatus::Loaded))
                }
                Ok(heads) => format!(
                    "cache has {}-d heads, the model is {}-d",
                    heads.dim,
                    encoder.embed_dim()
                ),
                Err(e) => e.to_string(),
            }
        } else {
            format!("no cache at {}", path.display())
        };
        let heads = Self::build(encoder)?;
        let cache_error = heads.save(&path).err().map(|e| e.to_string());
        Ok((
            heads,
            CacheStatus::Built {
                reason,
                cache_error,
            },
        ))
    }

    /// Content hash of the model these heads belong to.
    pub fn model_hash(&self) -> &str {
        &self.model_hash
    }

    /// Hash of the prompt set the heads were built from.
    pub fn prompt_hash(&self) -> &str {
        &self.prompt_hash
    }

    /// The model's logit scale used for the softmax.
    pub fn logit_scale(&self) -> f32 {
        self.logit_scale
    }

    /// Embedding dimension.
    pub fn embed_dim(&self) -> usize {
        self.dim
    }

    /// Labels of an attribute's head, in distribution order.
    pub fn labels(&self, attribute: Attribute) -> &[String] {
        &self.heads[attribute as usize].labels
    }

    /// The normalised text embedding (row) of one label, if the label exists.
    pub fn label_embedding(&self, attribute: Attribute, label: &str) -> Option<&[f32]> {
        let h = &self.heads[attribute as usize];
        let i = h.labels.iter().position(|l| l == label)?;
        Some(&h.matrix[i * self.dim..(i + 1) * self.dim])
    }

    /// Scores one attribute for an image embedding of this model:
    /// `softmax(logit_scale · T · ê)`. `invalid_parameter` for a wrong length or a zero or
    /// non-finite embedding.
    pub fn predict(
        &self,
        attribute: Attribute,
        image_embedding: &[f32],
    ) -> Result<AttributePrediction> {
        let e = normalized(image_embedding, self.dim, "image_embedding")?;
        let h = &self.heads[attribute as usize];
        let scale = f64::from(self.logit_scale);
        let logits: Vec<f64> = matvec(&h.matrix, self.dim, &e)
            .into_iter()
            .map(|c| scale * c)
            .collect();
        Ok(prediction(
            attribute.name(),
            &h.labels,
            &logits,
            HeadKind::ZeroShot,
        ))
    }
}

fn tensor_name(attribute: Attribute) -> String {
    format!("{}.text_embeddings", attribute.name())
}
