//! `config.json` of an EfficientNet-Lite model directory, and the layer plan derived from it.
//!
//! The fields mirror the reference implementation's `GlobalParams` and block strings
//! (`efficientnet_lite_pytorch.utils`), so the plan below is computed the same way: widths
//! rounded with `round_filters`, repeats with `round_repeats`, and the Lite rule that the stem
//! and head are not scaled (the first block keeps a 32-channel input and the first and last
//! stages keep their repeat counts).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The `model_type` value that marks an EfficientNet-Lite directory.
pub const MODEL_TYPE: &str = "efficientnet_lite";

/// `config.json` of an EfficientNet-Lite model directory, as `weights/gen_efficientnet.py`
/// writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EfficientNetConfig {
    /// Always `efficientnet_lite`.
    pub model_type: String,
    /// `efficientnet-lite0` … `efficientnet-lite4`.
    pub model_name: String,
    /// Channel multiplier (1.0 for Lite0, 1.1 for Lite2).
    pub width_coefficient: f64,
    /// Repeat multiplier (1.0 for Lite0, 1.2 for Lite2).
    pub depth_coefficient: f64,
    /// Channels are rounded to multiples of this. Default 8.
    #[serde(default = "default_divisor")]
    pub depth_divisor: usize,
    /// Side of the square input (224 for Lite0, 260 for Lite2).
    pub image_size: usize,
    /// Batch-norm epsilon (folded into the convolutions at load). Default 1e-3.
    #[serde(default = "default_eps")]
    pub batch_norm_epsilon: f64,
    /// Block strings of the seven stages (`r1_k3_s11_e1_i32_o16`, …).
    pub blocks_args: Vec<String>,
    /// Stem output channels (not scaled in Lite models). Default 32.
    #[serde(default = "default_stem")]
    pub stem_channels: usize,
    /// Channels of the head convolution = the embedding dimension. Default 1280.
    #[serde(default = "default_features")]
    pub num_features: usize,
    /// Per-channel mean of the input normalisation (RGB, on 0..1 values).
    pub image_mean: [f32; 3],
    /// Per-channel std of the input normalisation.
    pub image_std: [f32; 3],
}

fn default_divisor() -> usize {
    8
}
fn default_eps() -> f64 {
    1e-3
}
fn default_stem() -> usize {
    32
}
fn default_features() -> usize {
    1280
}

/// One stage as written in a block string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockArgs {
    pub repeats: usize,
    pub kernel: usize,
    pub stride: usize,
    pub expand: usize,
    pub input: usize,
    pub output: usize,
}

/// One MBConv block of the expanded plan (what `_blocks.{i}` holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockPlan {
    pub input: usize,
    pub output: usize,
    pub kernel: usize,
    pub stride: usize,
    pub expand: usize,
}

impl BlockPlan {
    /// Channels after the expansion convolution.
    pub fn hidden(&self) -> usize {
        self.input * self.expand
    }
    /// Whether the block adds its input back (stride 1, same width; Lite blocks all skip).
    pub fn residual(&self) -> bool {
        self.stride == 1 && self.input == self.output
    }
}

fn bad(reason: impl Into<String>) -> Error {
    Error::ModelLoad {
        path: "config.json".into(),
        reason: reason.into(),
    }
}

impl BlockArgs {
    /// Parses `r2_k3_s22_e6_i16_o24` (the TensorFlow reference's notation). Squeeze-excitation
    /// (`se…`) is refused: Lite models have none and this implementation does not run it.
    pub fn parse(s: &str) -> Result<Self> {
        let (mut r, mut k, mut st, mut e, mut i, mut o) = (None, None, None, None, None, None);
        for part in s.split('_') {
            let (key, value) = part.split_at(part.find(|c: char| c.is_ascii_digit()).unwrap_or(0));
            let num = || {
                value
                    .parse::<usize>()
                    .map_err(|_| bad(format!("block `{s}`: `{part}` is not <letter><number>")))
            };
            match key {
                "r" => r = Some(num()?),
                "k" => k = Some(num()?),
                "s" => {
                    let b = value.as_bytes();
                    let ok =
                        (b.len() == 1 || (b.len() == 2 && b[0] == b[1])) && b[0].is_ascii_digit();
                    if !ok {
                        return Err(bad(format!("block `{s}`: stride `{value}` not supported")));
                    }
                    st = Some(usize::from(b[0] - b'0'));
                }
                "e" => e = Some(num()?),
                "i" => i = Some(num()?),
                "o" => o = Some(num()?),
                "se" => {
                    return Err(bad(format!(
                        "block `{s}` has squeeze-excitation, which EfficientNet-Lite does not use"
                    )))
                }
                "noskip" => {}
                _ => return Err(bad(format!("block `{s}`: unknown field `{part}`"))),
            }
        }
        let need = |v: Option<usize>, what: &str| {
            v.filter(|&x| x > 0)
                .ok_or_else(|| bad(format!("block `{s}`: `{what}` missing or zero")))
        };
        let b = BlockArgs {
            repeats: need(r, "r")?,
            kernel: need(k, "k")?,
            stride: need(st, "s")?,
            expand: need(e, "e")?,
            input: need(i, "i")?,
            output: need(o, "o")?,
        };
        if b.kernel.is_multiple_of(2) || b.kernel > 15 || b.stride > 2 || b.repeats > 64 {
            return Err(bad(format!(
                "block `{s}`: kernel, stride or repeats out of range"
            )));
        }
        Ok(b)
    }
}

impl EfficientNetConfig {
    /// Parses and validates `config.json`.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let c: Self = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if c.model_type != MODEL_TYPE {
            return Err(bad(format!(
                "model_type is `{}`, expected `{MODEL_TYPE}`",
                c.model_type
            )));
        }
        let finite = |x: f64| x.is_finite() && x > 0.0;
        if !finite(c.width_coefficient) || !finite(c.depth_coefficient) {
            return Err(bad("width/depth coefficients must be positive"));
        }
        if !(16..=1024).contains(&c.image_size) {
            return Err(bad(format!("image_size {} out of 16..=1024", c.image_size)));
        }
        if c.depth_divisor == 0 || c.stem_channels == 0 || c.num_features == 0 {
            return Err(bad(
                "depth_divisor, stem_channels and num_features must be > 0",
            ));
        }
        if c.blocks_args.is_empty() {
            return Err(bad("blocks_args is empty"));
        }
        if c.image_std.iter().any(|s| !(s.is_finite() && *s > 0.0))
            || c.image_mean.iter().any(|m| !m.is_finite())
        {
            return Err(bad("image_mean/image_std must be finite, std > 0"));
        }
        if !(c.batch_norm_epsilon.is_finite() && c.batch_norm_epsilon > 0.0) {
            return Err(bad("batch_norm_epsilon must be > 0"));
        }
        c.plan()?;
        Ok(c)
    }

    /// `round_filters` of the reference: scale by the width, round to the divisor, never
    /// more than 10% down.
    fn round_filters(&self, filters: usize) -> usize {
        let f = filters as f64 * self.width_coefficient;
        let d = self.depth_divisor as f64;
        let mut new = (((f + d / 2.0) as usize) / self.depth_divisor) * self.depth_divisor;
        new = new.max(self.depth_divisor);
        if (new as f64) < 0.9 * f {
            new += self.depth_divisor;
        }
        new
    }

    /// `round_repeats` of the reference.
    fn round_repeats(&self, repeats: usize) -> usize {
        (self.depth_coefficient * repeats as f64).ceil() as usize
    }

    /// Every MBConv block in order, as the reference builds `_blocks`.
    pub(crate) fn plan(&self) -> Result<Vec<BlockPlan>> {
        let stages = self
            .blocks_args
            .iter()
            .map(|s| BlockArgs::parse(s))
            .collect::<Result<Vec<_>>>()?;
        let last = stages.len() - 1;
        let mut out = Vec::new();
        for (i, a) in stages.iter().enumerate() {
            let mut input = self.round_filters(a.input);
            let output = self.round_filters(a.output);
            // Lite: stem and head fixed, so the first and last stages keep their repeats and
            // the first block reads the unscaled stem.
            let repeats = if i == 0 || i == last {
                a.repeats
            } else {
                self.round_repeats(a.repeats)
            };
            if i == 0 {
                input = self.stem_channels;
            }
            for r in 0..repeats {
                out.push(BlockPlan {
                    input: if r == 0 { input } else { output },
                    output,
                    kernel: a.kernel,
                    stride: if r == 0 { a.stride } else { 1 },
                    expand: a.expand,
                });
            }
        }
        if out.len() > 256 {
            return Err(bad(format!(
                "{} blocks is more than this loader takes",
                out.len()
            )));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lite(name: &str, w: f64, d: f64, res: usize) -> EfficientNetConfig {
        EfficientNetConfig {
            model_type: MODEL_TYPE.into(),
            model_name: name.into(),
            width_coefficient: w,
            depth_coefficient: d,
            depth_divisor: 8,
            image_size: res,
            batch_norm_epsilon: 1e-3,
            blocks_args: [
                "r1_k3_s11_e1_i32_o16",
                "r2_k3_s22_e6_i16_o24",
                "r2_k5_s22_e6_i24_o40",
                "r3_k3_s22_e6_i40_o80",
                "r3_k5_s11_e6_i80_o112",
                "r4_k5_s22_e6_i112_o192",
                "r1_k3_s11_e6_i192_o320",
            ]
            .map(String::from)
            .to_vec(),
            stem_channels: 32,
            num_features: 1280,
            image_mean: [0.485, 0.456, 0.406],
            image_std: [0.229, 0.224, 0.225],
        }
    }

    #[test]
    fn block_strings_parse_and_bad_ones_are_named() {
        let b = BlockArgs::parse("r2_k5_s22_e6_i24_o40").unwrap();
        assert_eq!((b.repeats, b.kernel, b.stride, b.expand), (2, 5, 2, 6));
        assert_eq!((b.input, b.output), (24, 40));
        for s in [
            "r2_k4_s22_e6_i24_o40",
            "r2_k3_s12_e6_i24_o40",
            "r2_k3_s11_e6_i24",
            "x1",
        ] {
            assert_eq!(
                BlockArgs::parse(s).unwrap_err().code(),
                "model_error",
                "{s}"
            );
        }
        let e = BlockArgs::parse("r1_k3_s11_e1_i32_o16_se0.25").unwrap_err();
        assert!(e.to_string().contains("squeeze-excitation"), "{e}");
    }

    /// Block counts and widths of the released checkpoints (the numbers of `_blocks.*` and
    /// the head's input width in `model.safetensors`): 16 blocks ending at 320 channels for
    /// Lite0, 21 blocks ending at 352 for Lite2.
    #[test]
    fn plans_match_the_released_checkpoints() {
        let p0 = lite("efficientnet-lite0", 1.0, 1.0, 224).plan().unwrap();
        assert_eq!(p0.len(), 16);
        assert_eq!(p0[0].input, 32);
        assert_eq!(p0.last().unwrap().output, 320);
        let p2 = lite("efficientnet-lite2", 1.1, 1.2, 260).plan().unwrap();
        assert_eq!(p2.len(), 21);
        assert_eq!((p2[0].input, p2[0].output), (32, 16));
        assert_eq!(p2[1].hidden(), 96);
        assert_eq!(p2.last().unwrap().output, 352);
        assert!(p2.iter().filter(|b| b.residual()).count() > 10);
    }

    #[test]
    fn wrong_model_type_is_refused() {
        let mut c = lite("x", 1.0, 1.0, 224);
        c.model_type = "clip".into();
        let json = serde_json::to_vec(&c).unwrap();
        let e = EfficientNetConfig::from_json(&json).unwrap_err();
        assert!(e.to_string().contains("efficientnet_lite"), "{e}");
    }
}
