//! The CLIP towers in tch: a ViT image encoder and a causal text transformer with their
//! projections (Radford et al., "Learning Transferable Visual Models From Natural Language
//! Supervision", 2021, <https://arxiv.org/abs/2103.00020>).
//!
//! Checked against Hugging Face `transformers` 5.24 `CLIPModel`
//! (<https://github.com/huggingface/transformers/blob/main/src/transformers/models/clip/modeling_clip.py>)
//! by `dupify-core/tests/clip/parity.rs` on seeded random checkpoints from `weights/gen_clip.py`.
//! Parameter names are the checkpoint keys, so loading is a straight mapping; every expected
//! tensor's presence, shape and dtype is checked before any is used, and errors name the tensor.
//!
//! Load-time rewrites that keep the outputs (within the parity tests' fp32 bounds) but cut
//! CPU work: the query/key/value projections run as one `[3d, d]` GEMM; quick_gelu's 1.702
//! is folded into `fc1`/`fc2` so the activation is one in-place SiLU; the attention output
//! and `fc2` accumulate straight into the residual stream (GEMM with beta = 1). With
//! `Precision::Int8` every Linear layer runs PyTorch's dynamic int8 kernels instead (see
//! [`QuantOps`]), checked against `quantize_dynamic` by `dupify-core/tests/clip_int8.rs`.

use std::sync::Arc;

use safetensors::SafeTensors;
use tch::nn::{self, Path};
use tch::{IValue, Kind, Tensor};

use super::config::{Activation, ClipConfig};
use crate::device::Precision;
use crate::encoder::checkpoint_tensor;
pub(crate) use crate::encoder::load_err;
use crate::error::{Error, Result};

/// Where loaded tensors come from: the parsed safetensors file and the target kind/device.
/// `quant`: the int8 bridge when Linear layers are quantized (`Precision::Int8`).
struct Source<'a> {
    st: &'a SafeTensors<'a>,
    kind: Kind,
    device: tch::Device,
    quant: Option<Arc<QuantOps>>,
}

impl Source<'_> {
    /// Reads tensor `path.name` as f32 on the CPU after checking its presence, shape and
    /// dtype. Load-time arithmetic (fusing, folding constants) happens on this copy, in f32,
    /// before [`Source::place`] rounds to the compute kind, so it adds no rounding of its own.
    fn read(&self, p: &Path, name: &str, shape: &[usize]) -> Result<Tensor> {
        // A 0-d scalar (`logit_scale`) is also accepted as [1].
        checkpoint_tensor(self.st, &p.path(name), shape, Kind::Float)
    }

    /// Converts a tensor from [`Source::read`] to the compute kind and device.
    fn place(&self, t: &Tensor) -> Result<Tensor> {
        Ok(t.f_to_kind(self.kind)?.f_to_device(self.device)?)
    }

    /// Reads tensor `path.name`, converts it and registers it in the VarStore under the same
    /// name (not trainable).
    fn get(&self, p: &Path, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = self.place(&self.read(p, name, shape)?)?;
        Ok(p.add(name, t, false))
    }
}

/// The TorchScript bridge to PyTorch's dynamic int8 Linear kernels (`quantized::linear_prepack`
/// and `quantized::linear_dynamic`, fbgemm on x86), which tch's generated API does not
/// expose; see `qlinear_ops.py` for why and for what each method does. Compiled into the
/// library, so `Precision::Int8` needs no file at run time.
const QLINEAR_OPS: &[u8] = include_bytes!("qlinear_ops.pt");

/// The loaded bridge module, shared by every int8 layer of a model.
pub(crate) struct QuantOps {
    module: tch::CModule,
}

impl QuantOps {
    pub(crate) fn load() -> Result<Self> {
        let module = tch::CModule::load_data(&mut std::io::Cursor::new(QLINEAR_OPS))
            .map_err(|e| load_err(format!("int8 kernels unavailable in this LibTorch: {e}")))?;
        Ok(Self { module })
    }

    /// Quantizes an f32 CPU weight `[out, inp]` (one scale per each of `groups` equal row
    /// blocks) and packs it with its bias for the int8 GEMM.
    fn prepack(&self, w: &Tensor, b: Option<&Tensor>, groups: i64) -> Result<PackedLinear> {
        let b = b.map_or(IValue::None, |b| IValue::Tensor(b.shallow_clone()));
        let args = [IValue::Tensor(w.f_contiguous()?), b, IValue::Int(groups)];
        match self.module.method_is("prepack", &args)? {
            v @ IValue::Object(_) => Ok(PackedLinear(v)),
            other => Err(Error::Internal(format!(
                "int8 prepack returned {other:?}, not packed weights"
            ))),
        }
    }

    /// `x @ wᵀ + b` with each item of `x`'s dim 0 (an image, a text, a pooled row) quantized
    /// on its own; any leading dims, f32 in and out.
    fn linear(&self, x: &Tensor, packed: &PackedLinear) -> Result<Tensor> {
        let x = IValue::Tensor(x.shallow_clone());
        match self.module.method_is("linear", &[&x, &packed.0])? {
            IValue::Tensor(t) => Ok(t),
            other => Err(Error::Internal(format!(
                "int8 linear returned {other:?}, not a tensor"
            ))),
        }
    }
}

/// Packed int8 weights and f32 bias (a `LinearPackedParamsBase` TorchScript object).
struct PackedLinear(IValue);

// SAFETY: the IValue is a reference-counted handle to LibTorch's packed-weight object. It is
// written once by `prepack` during `load` and afterwards only read, by `quantized::
// linear_dynamic`, which takes it as `const` and allocates its own scratch per call, as
// PyTorch relies on when several threads run one quantized module; it has no thread affinity
// and its destructor may run on any thread.
unsafe impl Send for PackedLinear {}
unsafe impl Sync for PackedLinear {}

enum Linear {
    /// Float weights `[out, inp]` in the compute kind.
    Dense { w: Tensor, b: Option<Tensor> },
    /// int8 weights, through the model's [`QuantOps`].
    Int8 {
        packed: PackedLinear,
        ops: Arc<QuantOps>,
    },
}

impl Linear {
    /// Builds a layer from f32 CPU tensors fresh from [`Source::read`]: dense in the compute
    /// kind, or int8 with one weight scale per each of `groups` row blocks.
    fn build(src: &Source<'_>, w: Tensor, b: Option<Tensor>, groups: i64) -> Result<Self> {
        match &src.quant {
            Some(ops) => Ok(Self::Int8 {
                packed: ops.prepack(&w, b.as_ref(), groups)?,
                ops: Arc::clone(ops),
            }),
            None => Ok(Self::Dense {
                w: src.place(&w)?,
                b: b.map(|b| src.place(&b)).transpose()?,
            }),
        }
    }

    fn load(src: &Source<'_>, p: &Path, out: usize, inp: usize, bias: bool) -> Result<Self> {
        let w = src.read(p, "weight", &[out, inp])?;
        let b = if bias {
            Some(src.read(p, "bias", &[out])?)
        } else {
            None
        };
        Self::build(src, w, b, 1)
    }

    /// Loads a biased layer with its weight multiplied by `w_scale` and its bias by
    /// `b_scale` (in f32, before rounding to the compute kind); see [`EncoderLayer::load`].
    fn load_scaled(
        src: &Source<'_>,
        p: &Path,
        (out, inp): (usize, usize),
        w_scale: f64,
        b_scale: f64,
    ) -> Result<Self> {
        let w = src.read(p, "weight", &[out, inp])? * w_scale;
        let b = src.read(p, "bias", &[out])? * b_scale;
        Self::build(src, w, Some(b), 1)
    }

    /// Concatenates biased `[d, d]` layers along the output dimension, so one GEMM does the
    /// work of several reading the same input (the query, key and value projections). In
    /// int8 each part keeps its own weight scale, so the result equals the separate layers.
    fn load_fused(src: &Source<'_>, parts: &[Path], out: usize, inp: usize) -> Result<Self> {
        let mut ws = Vec::with_capacity(parts.len());
        let mut bs = Vec::with_capacity(parts.len());
        for p in parts {
            ws.push(src.read(p, "weight", &[out, inp])?);
            bs.push(src.read(p, "bias", &[out])?);
        }
        let (w, b) = (Tensor::f_cat(&ws, 0)?, Tensor::f_cat(&bs, 0)?);
        Self::build(src, w, Some(b), parts.len() as i64)
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Dense { w, b } => Ok(x.f_linear(w, b.as_ref())?),
            Self::Int8 { packed, ops } => ops.linear(x, packed),
        }
    }

    /// `residual += self(x)` in place, for `x` and `residual` of shape `[B, T, ·]` with
    /// `residual` contiguous. Dense: the bias is added to the residual stream and the GEMM
    /// accumulates into it (beta = 1), so the layer output is never materialised.
    fn forward_add_into(&self, x: &Tensor, residual: &mut Tensor) -> Result<()> {
        match self {
            Self::Dense { w, b } => {
                let (inp, out) = (x.size()[2], residual.size()[2]);
                let mut r2 = residual.f_view([-1, out])?;
                if let Some(b) = b {
                    // In-place ops return the same tensor again.
                    let _ = r2.f_add_(b)?;
                }
                let _ = r2.f_addmm_(&x.f_reshape([-1, inp])?, &w.tr())?;
            }
            Self::Int8 { packed, ops } => {
                let _ = residual.f_add_(&ops.linear(x, packed)?)?;
            }
        }
        Ok(())
    }
}

struct LayerNorm {
    w: Tensor,
    b: Tensor,
    eps: f64,
    dim: i64,
}

impl LayerNorm {
    fn load(src: &Source<'_>, p: &Path, dim: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            w: src.get(p, "weight", &[dim])?,
            b: src.get(p, "bias", &[dim])?,
            eps,
            dim: dim as i64,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.f_layer_norm([self.dim], Some(&self.w), Some(&self.b), self.eps, true)?)
    }
}

struct Attention {
    /// `q_proj`, `k_proj` and `v_proj` of the checkpoint as one `[3d, d]` layer.
    qkv_proj: Linear,
    out_proj: Linear,
    heads: i64,
}

impl Attention {
    /// Adds the attention output to `residual` in place (pre-norm input `x`).
    fn forward_add_into(&self, x: &Tensor, causal: bool, residual: &mut Tensor) -> Result<()> {
        let (b, t, d) = x.size3()?;
        let hd = d / self.heads;
        // [B, T, 3d] -> [3, B, heads, T, hd]: q, k and v are strided views, no copies.
        let qkv = self
            .qkv_proj
            .forward(x)?
            .f_view([b, t, 3, self.heads, hd])?
            .f_permute([2, 0, 3, 1, 4])?;
        let (q, k, v) = (
            qkv.f_select(0, 0)?,
            qkv.f_select(0, 1)?,
            qkv.f_select(0, 2)?,
        );
        // Scale 1/sqrt(head_dim), as CLIP; LibTorch picks the fused kernel.
        let o = Tensor::f_scaled_dot_product_attention(
            &q,
            &k,
            &v,
            None::<Tensor>,
            0.0,
            causal,
            None,
            false,
        )?;
        // [B, heads, T, hd] -> [B, T, d]; free when the kernel wrote [B, T, heads, hd].
        self.out_proj
            .forward_add_into(&o.f_transpose(1, 2)?.f_reshape([b, t, d])?, residual)
    }
}

struct EncoderLayer {
    layer_norm1: LayerNorm,
    self_attn: Attention,
    layer_norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    act: Activation,
}

/// quick_gelu's constant: `quick_gelu(h) = h · σ(1.702 h)`.
const QUICK_GELU_ALPHA: f64 = 1.702;

impl EncoderLayer {
    fn load(src: &Source<'_>, p: &Path, dims: &Dims) -> Result<Self> {
        let Dims {
            hidden: d,
            ff,
            heads,
            eps,
            act,
            ..
        } = *dims;
        let a = p.sub("self_attn");
        let m = p.sub("mlp");
        let (fc1, fc2) = match act {
            // quick_gelu(h) = silu(α h) / α, so with fc1 scaled by α and fc2's weight by 1/α
            // the MLP is fc2'(silu(fc1'(x))): one in-place SiLU instead of three ops.
            Activation::QuickGelu => (
                Linear::load_scaled(
                    src,
                    &m.sub("fc1"),
                    (ff, d),
                    QUICK_GELU_ALPHA,
                    QUICK_GELU_ALPHA,
                )?,
                Linear::load_scaled(src, &m.sub("fc2"), (d, ff), 1.0 / QUICK_GELU_ALPHA, 1.0)?,
            ),
            Activation::Gelu | Activation::GeluNew => (
                Linear::load(src, &m.sub("fc1"), ff, d, true)?,
                Linear::load(src, &m.sub("fc2"), d, ff, true)?,
            ),
        };
        Ok(Self {
            layer_norm1: LayerNorm::load(src, &p.sub("layer_norm1"), d, eps)?,
            self_attn: Attention {
                qkv_proj: Linear::load_fused(
                    src,
                    &[a.sub("q_proj"), a.sub("k_proj"), a.sub("v_proj")],
                    d,
                    d,
                )?,
                out_proj: Linear::load(src, &a.sub("out_proj"), d, d, true)?,
                heads: heads as i64,
            },
            layer_norm2: LayerNorm::load(src, &p.sub("layer_norm2"), d, eps)?,
            fc1,
            fc2,
            act,
        })
    }

    /// One pre-norm block; takes the residual stream by value and updates it in place.
    fn forward(&self, x: Tensor, causal: bool) -> Result<Tensor> {
        let mut x = x.f_contiguous()?;
        self.self_attn
            .forward_add_into(&self.layer_norm1.forward(&x)?, causal, &mut x)?;
        let mut h = self.fc1.forward(&self.layer_norm2.forward(&x)?)?;
        let _ = match self.act {
            Activation::QuickGelu => h.f_silu_()?,
            Activation::Gelu => h.f_gelu_("none")?,
            Activation::GeluNew => h.f_gelu_("tanh")?,
        };
        self.fc2.forward_add_into(&h, &mut x)?;
        Ok(x)
    }
}

/// Sizes of one transformer tower.
#[derive(Clone, Copy)]
struct Dims {
    layers: usize,
    hidden: usize,
    ff: usize,
    heads: usize,
    eps: f64,
    act: Activation,
}

fn load_layers(src: &Source<'_>, p: &Path, dims: &Dims) -> Result<Vec<EncoderLayer>> {
    let layers = p.sub("encoder").sub("layers");
    (0..dims.layers)
        .map(|i| EncoderLayer::load(src, &layers.sub(i), dims))
        .collect()
}

/// `vision_model` + `visual_projection`.
struct VisionTower {
    patch_embedding: Tensor,
    class_embedding: Tensor,
    position_embedding: Tensor,
    pre_layrnorm: LayerNorm,
    layers: Vec<EncoderLayer>,
    post_layernorm: LayerNorm,
    visual_projection: Linear,
    patch: i64,
}

impl VisionTower {
    fn forward(&self, pixels: &Tensor) -> Result<Tensor> {
        let b = pixels.size()[0];
        let x = pixels
            .f_conv2d(
                &self.patch_embedding,
                None::<Tensor>,
                [self.patch, self.patch],
                [0, 0],
                [1, 1],
                1,
            )?
            .f_flatten(2, -1)?
            .f_transpose(1, 2)?;
        let d = x.size()[2];
        let cls = self
            .class_embedding
            .f_view([1, 1, d])?
            .f_expand([b, 1, d], false)?;
        let mut x = self
            .pre_layrnorm
            .forward(&(Tensor::f_cat(&[cls, x], 1)? + &self.position_embedding))?;
        for l in &self.layers {
            x = l.forward(x, false)?;
        }
        let pooled = self.post_layernorm.forward(&x.f_select(1, 0)?)?;
        self.visual_projection.forward(&pooled)
    }
}

/// `text_model` + `text_projection`.
struct TextTower {
    token_embedding: Tensor,
    position_embedding: Tensor,
    layers: Vec<EncoderLayer>,
    final_layer_norm: LayerNorm,
    text_projection: Linear,
}

impl TextTower {
    /// `ids`: [B, T] int64; `eos`: [B] int64 positions to pool at.
    fn forward(&self, ids: &Tensor, eos: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.size2()?;
        let mut x = Tensor::f_embedding(&self.token_embedding, ids, -1, false, false)?
            + self.position_embedding.f_narrow(0, 0, t)?;
        for l in &self.layers {
            x = l.forward(x, true)?;
        }
        let d = x.size()[2];
        // The final LayerNorm is per token, so pooling first is the same and cheaper.
        let idx = eos.f_view([b, 1, 1])?.f_expand([b, 1, d], false)?;
        let pooled = self
            .final_layer_norm
            .forward(&x.f_gather(1, &idx, false)?.f_squeeze_dim(1)?)?;
        self.text_projection.forward(&pooled)
    }
}

/// Both towers, the logit scale, and the VarStore that owns the parameters.
pub(crate) struct Clip {
    vision: VisionTower,
    text: TextTower,
    logit_scale: f64,
    pub(crate) kind: Kind,
    pub(crate) device: tch::Device,
    _vs: nn::VarStore,
}

// SAFETY: `tch::Tensor` is `Send` but not `Sync` because a tensor handle *can* be mutated in
// place. Every tensor in `Clip` is a parameter written once during `load` and only read
// afterwards (the forward passes take `&self` and create new tensors); concurrent reads of a
// tensor are thread-safe in LibTorch (as for `tch::CModule`, which tch marks `Sync`).
unsafe impl Sync for Clip {}

impl Clip {
    /// Builds the model from a parsed checkpoint. Every tensor the config implies must be
    /// present with the right shape; unused extra tensors (`position_ids`, …) are ignored.
    pub(crate) fn load(
        cfg: &ClipConfig,
        st: &SafeTensors<'_>,
        precision: Precision,
        device: tch::Device,
    ) -> Result<Self> {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let kind = precision.kind();
        let quant = match precision {
            Precision::Int8 => Some(Arc::new(QuantOps::load()?)),
            Precision::F32 | Precision::F16 | Precision::Bf16 => None,
        };
        let src = Source {
            st,
            kind,
            device,
            quant,
        };
        let v = &cfg.vision_config;
        let t = &cfg.text_config;
        let vp = root.sub("vision_model");
        let ve = vp.sub("embeddings");
        let vision = VisionTower {
            patch_embedding: src.get(
                &ve.sub("patch_embedding"),
                "weight",
                &[v.hidden_size, v.num_channels, v.patch_size, v.patch_size],
            )?,
            class_embedding: src.get(&ve, "class_embedding", &[v.hidden_size])?,
            position_embedding: src.get(
                &ve.sub("position_embedding"),
                "weight",
                &[cfg.vision_positions(), v.hidden_size],
            )?,
            pre_layrnorm: LayerNorm::load(
                &src,
                &vp.sub("pre_layrnorm"),
                v.hidden_size,
                v.layer_norm_eps,
            )?,
            layers: load_layers(
                &src,
                &vp,
                &Dims {
                    layers: v.num_hidden_layers,
                    hidden: v.hidden_size,
                    ff: v.intermediate_size,
                    heads: v.num_attention_heads,
                    eps: v.layer_norm_eps,
                    act: v.hidden_act,
                },
            )?,
            post_layernorm: LayerNorm::load(
                &src,
                &vp.sub("post_layernorm"),
                v.hidden_size,
                v.layer_norm_eps,
            )?,
            visual_projection: Linear::load(
                &src,
                &root.sub("visual_projection"),
                cfg.projection_dim,
                v.hidden_size,
                false,
            )?,
            patch: v.patch_size as i64,
        };
        let tp = root.sub("text_model");
        let te = tp.sub("embeddings");
        let text = TextTower {
            token_embedding: src.get(
                &te.sub("token_embedding"),
                "weight",
                &[t.vocab_size, t.hidden_size],
            )?,
            position_embedding: src.get(
                &te.sub("position_embedding"),
                "weight",
                &[t.max_position_embeddings, t.hidden_size],
            )?,
            layers: load_layers(
                &src,
                &tp,
                &Dims {
                    layers: t.num_hidden_layers,
                    hidden: t.hidden_size,
                    ff: t.intermediate_size,
                    heads: t.num_attention_heads,
                    eps: t.layer_norm_eps,
                    act: t.hidden_act,
                },
            )?,
            final_layer_norm: LayerNorm::load(
                &src,
                &tp.sub("final_layer_norm"),
                t.hidden_size,
                t.layer_norm_eps,
            )?,
            text_projection: Linear::load(
                &src,
                &root.sub("text_projection"),
                cfg.projection_dim,
                t.hidden_size,
                false,
            )?,
        };
        // Kept in f32 whatever the compute precision: it is a single scalar.
        let ls = Source {
            st,
            kind: Kind::Float,
            device: tch::Device::Cpu,
            quant: None,
        };
        let logit_scale = ls.get(&root, "logit_scale", &[])?.f_double_value(&[])?;
        Ok(Self {
            vision,
            text,
            logit_scale,
            kind,
            device,
            _vs: vs,
        })
    }

    pub(crate) fn logit_scale(&self) -> f64 {
        self.logit_scale
    }

    /// Unnormalised image embeddings [B, D] (f32) of preprocessed pixels [B, C, S, S].
    pub(crate) fn image_features(&self, pixels: &Tensor) -> Result<Tensor> {
        let x = pixels.f_to_device(self.device)?.f_to_kind(self.kind)?;
        Ok(self.vision.forward(&x)?.f_to_kind(Kind::Float)?)
    }

    /// Unnormalised text embeddings [B, D] (f32).
    pub(crate) fn text_features(&self, ids: &Tensor, eos: &Tensor) -> Result<Tensor> {
        let ids = ids.f_to_device(self.device)?;
        let eos = eos.f_to_device(self.device)?;
        Ok(self.text.forward(&ids, &eos)?.f_to_kind(Kind::Float)?)
    }
}
