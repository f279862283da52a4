//! Trained linear heads: multinomial logistic regression over CLIP image embeddings (a
//! "linear probe", Radford et al. 2021 §3.2), trained with LibTorch and stored as
//! safetensors.
//!
//! The input embedding is L2-normalised both when training and when predicting, so a head
//! does not depend on whether the caller normalised. Prediction is
//! `softmax(W · ê + b)` in plain Rust (no tensors at inference: a head is a few kB).
//!
//! # File layout
//!
//! F32 tensors `weight` (`[labels, dim]`) and `bias` (`[labels]`), plus safetensors string
//! metadata:
//!
//! | key | value |
//! |---|---|
//! | `format` | `dupify.linear_head.v1` |
//! | `attribute` | the attribute the head predicts (a taxonomy name to be used by [`AttributePredictor`](super::AttributePredictor)) |
//! | `labels` | JSON array of labels, in row order |
//! | `model_hash` | content hash of the model whose image embeddings it was trained on |
//! | `embed_dim` | embedding dimension (decimal) |
//!
//! [`LinearHead::load_for_model`] refuses a head whose `model_hash` is not the model's.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::{
    load_err, matvec, normalized, prediction, read_head_file, write_head_file, AttributePrediction,
    HeadFile, HeadKind,
};
use crate::error::{Error, Result};

const FORMAT: &str = "dupify.linear_head.v1";

/// A trained linear head (weights, bias, labels, and the model hash it belongs to).
#[derive(Debug, Clone, PartialEq)]
pub struct LinearHead {
    pub(super) attribute: String,
    pub(super) labels: Vec<String>,
    /// Row-major `labels.len() × dim`.
    pub(super) weight: Vec<f32>,
    pub(super) bias: Vec<f32>,
    pub(super) dim: usize,
    pub(super) model_hash: String,
    pub(super) origin: PathBuf,
}

impl LinearHead {
    /// Builds a head from raw parts, validating shapes, labels and values.
    pub fn new(
        attribute: impl Into<String>,
        labels: Vec<String>,
        weight: Vec<f32>,
        bias: Vec<f32>,
        model_hash: impl Into<String>,
    ) -> Result<Self> {
        let attribute = attribute.into();
        let model_hash = model_hash.into();
        validate_labels(&labels)?;
        if attribute.is_empty() {
            return Err(Error::invalid("attribute", "must not be empty"));
        }
        if model_hash.is_empty() {
            return Err(Error::invalid("model_hash", "must not be empty"));
        }
        if bias.len() != labels.len() {
            return Err(Error::invalid(
                "bias",
                format!("{} values for {} labels", bias.len(), labels.len()),
            ));
        }
        if weight.is_empty() || !weight.len().is_multiple_of(labels.len()) {
            return Err(Error::invalid(
                "weight",
                format!(
                    "{} values is not a whole number of rows for {} labels",
                    weight.len(),
                    labels.len()
                ),
            ));
        }
        if weight.iter().chain(&bias).any(|x| !x.is_finite()) {
            return Err(Error::invalid("weight", "contains NaN or infinite values"));
        }
        let dim = weight.len() / labels.len();
        Ok(Self {
            attribute,
            labels,
            weight,
            bias,
            dim,
            model_hash,
            origin: PathBuf::from("<in-memory linear head>"),
        })
    }

    /// Loads a head without checking which model it belongs to (for inspection and
    /// tooling). Use [`LinearHead::load_for_model`] to run it.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = read_head_file(path)?;
        let file = HeadFile::parse(path, &bytes)?;
        let format = file.meta(path, "format")?;
        if format != FORMAT {
            return Err(load_err(
                path,
                format!("format is `{format}`, expected `{FORMAT}`"),
            ));
        }
        let labels: Vec<String> = serde_json::from_str(file.meta(path, "labels")?)
            .map_err(|e| load_err(path, format!("labels: {e}")))?;
        let dim: usize = file
            .meta(path, "embed_dim")?
            .parse()
            .map_err(|e| load_err(path, format!("embed_dim: {e}")))?;
        let weight = file.tensor(path, "weight", &[labels.len(), dim])?.to_vec();
        let bias = file.tensor(path, "bias", &[labels.len()])?.to_vec();
        let mut head = Self::new(
            file.meta(path, "attribute")?,
            labels,
            weight,
            bias,
            file.meta(path, "model_hash")?,
        )
        .map_err(|e| load_err(path, e.to_string()))?;
        head.origin = path.to_path_buf();
        Ok(head)
    }

    /// Loads a head and refuses it (`model_error`) unless it was trained on embeddings of
    /// the model with content hash `expected_model_hash`.
    pub fn load_for_model(path: &Path, expected_model_hash: &str) -> Result<Self> {
        let head = Self::load(path)?;
        if head.model_hash != expected_model_hash {
            return Err(load_err(
                path,
                format!(
                    "head was trained for model {}, refusing it for model {expected_model_hash}",
                    head.model_hash
                ),
            ));
        }
        Ok(head)
    }

    /// Writes the head atomically (see the module docs for the layout).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut metadata = HashMap::new();
        metadata.insert("format".to_string(), FORMAT.to_string());
        metadata.insert("attribute".to_string(), self.attribute.clone());
        metadata.insert(
            "labels".to_string(),
            serde_json::to_string(&self.labels)
                .map_err(|e| Error::Internal(format!("labels: {e}")))?,
        );
        metadata.insert("model_hash".to_string(), self.model_hash.clone());
        metadata.insert("embed_dim".to_string(), self.dim.to_string());
        write_head_file(
            path,
            &[
                (
                    "weight".to_string(),
                    vec![self.labels.len(), self.dim],
                    self.weight.clone(),
                ),
                (
                    "bias".to_string(),
                    vec![self.labels.len()],
                    self.bias.clone(),
                ),
            ],
            metadata,
        )
    }

    /// `softmax(W · ê + b)` for an image embedding of this head's model.
    /// `invalid_parameter` for a wrong length or a zero or non-finite embedding.
    pub fn predict(&self, image_embedding: &[f32]) -> Result<AttributePrediction> {
        let e = normalized(image_embedding, self.dim, "image_embedding")?;
        let logits: Vec<f64> = matvec(&self.weight, self.dim, &e)
            .into_iter()
            .zip(&self.bias)
            .map(|(z, &b)| z + f64::from(b))
            .collect();
        Ok(prediction(
            &self.attribute,
            &self.labels,
            &logits,
            HeadKind::Linear,
        ))
    }

    /// The attribute this head predicts.
    pub fn attribute(&self) -> &str {
        &self.attribute
    }
    /// Labels in distribution order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }
    /// Content hash of the model the head was trained for.
    pub fn model_hash(&self) -> &str {
        &self.model_hash
    }
    /// Embedding dimension.
    pub fn embed_dim(&self) -> usize {
        self.dim
    }
    /// Row-major `labels × dim` weights.
    pub fn weight(&self) -> &[f32] {
        &self.weight
    }
    /// One bias per label.
    pub fn bias(&self) -> &[f32] {
        &self.bias
    }
    /// The file the head was loaded from, or `<in-memory linear head>`.
    pub fn origin(&self) -> &Path {
        &self.origin
    }
}

pub(super) fn validate_labels(labels: &[String]) -> Result<()> {
    if labels.len() < 2 {
        return Err(Error::invalid("labels", "a head needs at least two labels"));
    }
    let mut seen = HashSet::new();
    for l in labels {
        if l.is_empty() {
            return Err(Error::invalid("labels", "labels must not be empty"));
        }
        if !seen.insert(l.as_str()) {
            return Err(Error::invalid("labels", format!("duplicate label `{l}`")));
        }
    }
    Ok(())
}
