//! EfficientNet-Lite in tch (Tan & Le, "EfficientNet: Rethinking Model Scaling for
//! Convolutional Neural Networks", 2019, <https://arxiv.org/abs/1905.11946>; the Lite variants
//! drop squeeze-excitation, use ReLU6 and keep the stem and head unscaled:
//! <https://github.com/tensorflow/tpu/tree/master/models/official/efficientnet/lite>).
//!
//! Checked against the PyPI reference `efficientnet-lite-pytorch` 0.1.0 (`EfficientNet`,
//! `extract_features` + global average pool) on the released ImageNet checkpoints by
//! `dupify-core/tests/clip/efficientnet_parity.rs`, with reference outputs from
//! `weights/gen_efficientnet.py`. Parameter names are the checkpoint keys (`_conv_stem`,
//! `_blocks.{i}._expand_conv`, `_bn0`, …), so loading is a straight mapping; every tensor's
//! presence and shape is checked before use and errors name the tensor.
//!
//! Load-time rewrite: every batch norm is folded into the convolution before it (eval mode:
//! `w' = w·γ/√(σ²+ε)`, `b' = β − μ·γ/√(σ²+ε)`, computed in f64), so a block is three
//! convolutions with bias and two in-place clamps. Padding is TensorFlow's "SAME", as the
//! reference's `Conv2dStaticSamePadding` computes it for the square input: symmetric for
//! stride 1, one more row/column at the bottom/right for stride 2 on even sizes.

use safetensors::SafeTensors;
use tch::{Kind, Tensor};

use super::config::{BlockPlan, EfficientNetConfig};
use crate::encoder::checkpoint_tensor;
pub(crate) use crate::encoder::load_err;
use crate::error::Result;

/// Where loaded tensors come from.
struct Source<'a> {
    st: &'a SafeTensors<'a>,
    kind: Kind,
    device: tch::Device,
}

impl Source<'_> {
    /// Tensor `key` as f64 on the CPU, after checking presence, shape and dtype.
    fn read(&self, key: &str, shape: &[usize]) -> Result<Tensor> {
        let t = checkpoint_tensor(self.st, key, shape, Kind::Double)?;
        let finite = t.f_isfinite()?.f_all()?.int64_value(&[]) == 1;
        if !finite {
            return Err(load_err(format!(
                "tensor `{key}` has NaN or infinite values"
            )));
        }
        Ok(t)
    }

    fn place(&self, t: &Tensor) -> Result<Tensor> {
        Ok(t.f_to_kind(self.kind)?.f_to_device(self.device)?)
    }
}

/// A convolution with its batch norm folded in, and the "SAME" padding of the reference.
struct ConvBn {
    weight: Tensor,
    bias: Tensor,
    stride: i64,
    kernel: i64,
    groups: i64,
}

impl ConvBn {
    /// Loads `{conv}.weight` (`[out, in/groups, k, k]`, no bias) and `{bn}.*`, and folds them.
    fn load(
        src: &Source<'_>,
        conv: &str,
        bn: &str,
        (out, inp, k): (usize, usize, usize),
        stride: usize,
        groups: usize,
        eps: f64,
    ) -> Result<Self> {
        let w = src.read(&format!("{conv}.weight"), &[out, inp / groups, k, k])?;
        let gamma = src.read(&format!("{bn}.weight"), &[out])?;
        let beta = src.read(&format!("{bn}.bias"), &[out])?;
        let mean = src.read(&format!("{bn}.running_mean"), &[out])?;
        let var = src.read(&format!("{bn}.running_var"), &[out])?;
        if var.f_lt(0.0)?.f_any()?.int64_value(&[]) == 1 {
            return Err(load_err(format!(
                "tensor `{bn}.running_var` has negative values"
            )));
        }
        let scale = gamma.f_div(&var.f_add_scalar(eps)?.f_sqrt()?)?;
        let weight = w.f_mul(&scale.f_view([out as i64, 1, 1, 1])?)?;
        let bias = beta.f_sub(&mean.f_mul(&scale)?)?;
        Ok(Self {
            weight: src.place(&weight)?.f_contiguous()?,
            bias: src.place(&bias)?,
            stride: stride as i64,
            kernel: k as i64,
            groups: groups as i64,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (k, s) = (self.kernel, self.stride);
        let size = x.size();
        let (ih, iw) = (size[2], size[3]);
        // TensorFlow "SAME": output ceil(i / s), total padding split low = p / 2, high = rest.
        let pad = |i: i64| (((i + s - 1) / s - 1) * s + k - i).max(0);
        let (ph, pw) = (pad(ih), pad(iw));
        if ph % 2 == 0 && pw % 2 == 0 {
            Ok(x.f_conv2d(
                &self.weight,
                Some(&self.bias),
                [s, s],
                [ph / 2, pw / 2],
                [1, 1],
                self.groups,
            )?)
        } else {
            let padded = x.f_constant_pad_nd([pw / 2, pw - pw / 2, ph / 2, ph - ph / 2])?;
            Ok(padded.f_conv2d(
                &self.weight,
                Some(&self.bias),
                [s, s],
                [0, 0],
                [1, 1],
                self.groups,
            )?)
        }
    }
}

/// ReLU6 in place.
fn relu6(mut x: Tensor) -> Result<Tensor> {
    let _ = x.f_clamp_(0.0, 6.0)?;
    Ok(x)
}

/// Mobile inverted bottleneck: 1×1 expand (skipped when the ratio is 1), k×k depthwise,
/// 1×1 project, identity skip when shapes allow.
struct MbConv {
    expand: Option<ConvBn>,
    depthwise: ConvBn,
    project: ConvBn,
    residual: bool,
}

impl MbConv {
    fn load(src: &Source<'_>, i: usize, b: &BlockPlan, eps: f64) -> Result<Self> {
        let p = format!("_blocks.{i}");
        let hidden = b.hidden();
        let expand = if b.expand != 1 {
            Some(ConvBn::load(
                src,
                &format!("{p}._expand_conv"),
                &format!("{p}._bn0"),
                (hidden, b.input, 1),
                1,
                1,
                eps,
            )?)
        } else {
            None
        };
        let depthwise = ConvBn::load(
            src,
            &format!("{p}._depthwise_conv"),
            &format!("{p}._bn1"),
            (hidden, hidden, b.kernel),
            b.stride,
            hidden,
            eps,
        )?;
        let project = ConvBn::load(
            src,
            &format!("{p}._project_conv"),
            &format!("{p}._bn2"),
            (b.output, hidden, 1),
            1,
            1,
            eps,
        )?;
        Ok(Self {
            expand,
            depthwise,
            project,
            residual: b.residual(),
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = match &self.expand {
            Some(e) => relu6(e.forward(x)?)?,
            None => x.shallow_clone(),
        };
        let h = relu6(self.depthwise.forward(&h)?)?;
        let mut out = self.project.forward(&h)?;
        if self.residual {
            let _ = out.f_add_(x)?;
        }
        Ok(out)
    }
}

/// The loaded network up to the pooled features (the ImageNet classifier `_fc` is not used:
/// the embedding is the pooled 1280-d feature vector).
pub(crate) struct EfficientNet {
    stem: ConvBn,
    blocks: Vec<MbConv>,
    head: ConvBn,
    pub(crate) kind: Kind,
    pub(crate) device: tch::Device,
}

// SAFETY: `tch::Tensor` is `Send` but not `Sync` because a tensor handle *can* be mutated in
// place. Every tensor here is a folded parameter written once during `load` and only read
// afterwards (`pooled_features` takes `&self`; its in-place clamps and adds act on tensors it
// created in that call); concurrent reads of a tensor are thread-safe in LibTorch.
unsafe impl Sync for EfficientNet {}

impl EfficientNet {
    pub(crate) fn load(
        config: &EfficientNetConfig,
        st: &SafeTensors<'_>,
        kind: Kind,
        device: tch::Device,
    ) -> Result<Self> {
        let src = Source { st, kind, device };
        let eps = config.batch_norm_epsilon;
        let plan = config.plan()?;
        let stem = ConvBn::load(
            &src,
            "_conv_stem",
            "_bn0",
            (config.stem_channels, 3, 3),
            2,
            1,
            eps,
        )?;
        let blocks = plan
            .iter()
            .enumerate()
            .map(|(i, b)| MbConv::load(&src, i, b, eps))
            .collect::<Result<Vec<_>>>()?;
        // A checkpoint with more blocks than the config describes is another model.
        let extra = format!("_blocks.{}._project_conv.weight", plan.len());
        if st.tensor(&extra).is_ok() {
            return Err(load_err(format!(
                "the checkpoint has `{extra}`, but the config describes {} blocks",
                plan.len()
            )));
        }
        let last = plan.last().map_or(config.stem_channels, |b| b.output);
        let head = ConvBn::load(
            &src,
            "_conv_head",
            "_bn1",
            (config.num_features, last, 1),
            1,
            1,
            eps,
        )?;
        Ok(Self {
            stem,
            blocks,
            head,
            kind,
            device,
        })
    }

    /// Pooled features `[B, num_features]` (f32) of normalised pixels `[B, 3, S, S]`.
    pub(crate) fn pooled_features(&self, pixels: &Tensor) -> Result<Tensor> {
        let x = pixels.f_to_device(self.device)?.f_to_kind(self.kind)?;
        let mut x = relu6(self.stem.forward(&x)?)?;
        for b in &self.blocks {
            x = b.forward(&x)?;
        }
        let x = relu6(self.head.forward(&x)?)?;
        Ok(x.f_mean_dim([2i64, 3].as_slice(), false, Kind::Float)?
            .f_to_kind(Kind::Float)?)
    }
}
