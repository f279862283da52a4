//! `config.json` of a Hugging Face `CLIPModel` checkpoint, mirrored field by field.
//!
//! Field names and defaults are those of `transformers`' `CLIPConfig`, `CLIPTextConfig` and
//! `CLIPVisionConfig` (5.24), so a checkpoint whose config omits a field (older exports do)
//! gets the value `transformers` would use. Unknown fields are ignored.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The activation of the transformer MLPs (`hidden_act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `x * sigmoid(1.702 x)`, the original OpenAI CLIP activation.
    QuickGelu,
    /// Exact (erf) GELU.
    Gelu,
    /// tanh-approximated GELU (`gelu_new` / `gelu_pytorch_tanh` in `transformers`).
    #[serde(alias = "gelu_pytorch_tanh")]
    GeluNew,
}

/// `text_config` of a `CLIPModel`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClipTextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub max_position_embeddings: usize,
    pub hidden_act: Activation,
    pub layer_norm_eps: f64,
    /// `2` in legacy configs (openai/clip-*): then `transformers` pools at the argmax of the
    /// token ids (the end-of-text token has the highest id); otherwise at the first
    /// occurrence of this id.
    pub eos_token_id: i64,
}

impl Default for ClipTextConfig {
    fn default() -> Self {
        Self {
            vocab_size: 49408,
            hidden_size: 512,
            intermediate_size: 2048,
            num_hidden_layers: 12,
            num_attention_heads: 8,
            max_position_embeddings: 77,
            hidden_act: Activation::QuickGelu,
            layer_norm_eps: 1e-5,
            eos_token_id: 49407,
        }
    }
}

/// `vision_config` of a `CLIPModel`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClipVisionConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_channels: usize,
    pub image_size: usize,
    pub patch_size: usize,
    pub hidden_act: Activation,
    pub layer_norm_eps: f64,
}

impl Default for ClipVisionConfig {
    fn default() -> Self {
        Self {
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            num_channels: 3,
            image_size: 224,
            patch_size: 32,
            hidden_act: Activation::QuickGelu,
            layer_norm_eps: 1e-5,
        }
    }
}

/// The whole `config.json` of a `CLIPModel` checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipConfig {
    pub text_config: ClipTextConfig,
    pub vision_config: ClipVisionConfig,
    /// Output dimension of both projections: the embedding size.
    pub projection_dim: usize,
}

impl ClipConfig {
    /// Parses and validates a `config.json`. Refuses anything that is not a `CLIPModel`
    /// (`model_type` "clip" / `architectures` containing "CLIPModel" when present), and
    /// dimension combinations the model cannot run.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("config.json: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| bad("config.json is not a JSON object"))?;
        if let Some(mt) = obj.get("model_type").and_then(|m| m.as_str()) {
            if mt != "clip" {
                return Err(bad(format!(
                    "unsupported architecture: model_type `{mt}`, expected `clip` (CLIPModel)"
                )));
            }
        }
        if let Some(archs) = obj.get("architectures").and_then(|a| a.as_array()) {
            if !archs.iter().any(|a| a.as_str() == Some("CLIPModel")) {
                return Err(bad(format!(
                    "unsupported architecture {archs:?}, expected CLIPModel"
                )));
            }
        }
        // Old exports carry `*_config_dict` instead of (or besides) `*_config`.
        let section = |name: &str| {
            obj.get(name)
                .filter(|s| !s.is_null())
                .or_else(|| obj.get(&format!("{name}_dict")).filter(|s| !s.is_null()))
                .cloned()
                .unwrap_or_else(|| serde_json::Value::Object(Default::default()))
        };
        let text_config: ClipTextConfig = serde_json::from_value(section("text_config"))
            .map_err(|e| bad(format!("config.json text_config: {e}")))?;
        let vision_config: ClipVisionConfig = serde_json::from_value(section("vision_config"))
            .map_err(|e| bad(format!("config.json vision_config: {e}")))?;
        let projection_dim = match obj.get("projection_dim") {
            None => 512,
            Some(p) => p
                .as_u64()
                .ok_or_else(|| bad("config.json projection_dim is not a positive integer"))?
                as usize,
        };
        let cfg = Self {
            text_config,
            vision_config,
            projection_dim,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<()> {
        let t = &self.text_config;
        let v = &self.vision_config;
        let positive = [
            ("projection_dim", self.projection_dim),
            ("text_config.vocab_size", t.vocab_size),
            ("text_config.hidden_size", t.hidden_size),
            ("text_config.intermediate_size", t.intermediate_size),
            ("text_config.num_attention_heads", t.num_attention_heads),
            (
                "text_config.max_position_embeddings",
                t.max_position_embeddings,
            ),
            ("vision_config.hidden_size", v.hidden_size),
            ("vision_config.intermediate_size", v.intermediate_size),
            ("vision_config.num_attention_heads", v.num_attention_heads),
            ("vision_config.num_channels", v.num_channels),
            ("vision_config.image_size", v.image_size),
            ("vision_config.patch_size", v.patch_size),
        ];
        for (name, value) in positive {
            if value == 0 || value > 1 << 20 {
                return Err(bad(format!("config.json {name} = {value} is out of range")));
            }
        }
        if !t.hidden_size.is_multiple_of(t.num_attention_heads) {
            return Err(bad(
                "text_config.hidden_size is not a multiple of num_attention_heads",
            ));
        }
        if !v.hidden_size.is_multiple_of(v.num_attention_heads) {
            return Err(bad(
                "vision_config.hidden_size is not a multiple of num_attention_heads",
            ));
        }
        if !v.image_size.is_multiple_of(v.patch_size) {
            return Err(bad(
                "vision_config.image_size is not a multiple of patch_size",
            ));
        }
        if !(t.layer_norm_eps > 0.0 && v.layer_norm_eps > 0.0) {
            return Err(bad("layer_norm_eps must be > 0"));
        }
        Ok(())
    }

    /// Number of patches plus the class token.
    pub(crate) fn vision_positions(&self) -> usize {
        let g = self.vision_config.image_size / self.vision_config.patch_size;
        g * g + 1
    }
}

fn bad(reason: impl Into<String>) -> Error {
    Error::ModelLoad {
        path: "config.json".into(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_sections_give_the_vit_b_32_defaults() {
        let c = ClipConfig::from_json(br#"{"model_type":"clip"}"#).unwrap();
        assert_eq!(c.projection_dim, 512);
        assert_eq!(c.vision_config.patch_size, 32);
        assert_eq!(c.text_config.vocab_size, 49408);
        assert_eq!(c.vision_positions(), 50);
    }

    #[test]
    fn legacy_dict_sections_and_activations_parse() {
        let c = ClipConfig::from_json(
            br#"{"text_config_dict":{"hidden_act":"gelu","eos_token_id":2},
                 "vision_config":{"hidden_act":"gelu_pytorch_tanh","patch_size":16},
                 "projection_dim":768}"#,
        )
        .unwrap();
        assert_eq!(c.text_config.hidden_act, Activation::Gelu);
        assert_eq!(c.text_config.eos_token_id, 2);
        assert_eq!(c.vision_config.hidden_act, Activation::GeluNew);
        assert_eq!(c.projection_dim, 768);
    }

    #[test]
    fn unknown_architectures_and_bad_values_are_refused() {
        for bad in [
            &br#"{"model_type":"siglip"}"#[..],
            br#"{"architectures":["BertModel"]}"#,
            br#"{"vision_config":{"hidden_act":"relu"}}"#,
            br#"{"vision_config":{"image_size":225}}"#,
            br#"{"text_config":{"hidden_size":100}}"#,
            br#"{"projection_dim":0}"#,
            br#"[1,2]"#,
            br#"{"#,
        ] {
            let e = ClipConfig::from_json(bad).unwrap_err();
            assert_eq!(e.code(), "model_error", "{}", String::from_utf8_lossy(bad));
        }
    }
}
