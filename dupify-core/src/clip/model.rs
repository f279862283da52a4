//! The CLIP towers in tch: a ViT image encoder and a causal text transformer with their
//! projections (Radford et al., "Learning Transferable Visual Models From Natural Language
//! Supervision", 2021, <https://arxiv.org/abs/2103.00020>).
//!
//! Checked against Hugging Face `transformers` 5.24 `CLIPModel`
//! (<https://github.com/huggingface/transformers/blob/main/src/transformers/models/clip/modeling_clip.py>)
//! by `dupify-core/tests/clip_parity.rs` on seeded random checkpoints from `weights/gen_clip.py`.
//! Parameter names are the checkpoint keys, so loading is a straight mapping; every expected
//! tensor's presence, shape and dtype is checked before any is used, and errors name the tensor.

use safetensors::{Dtype, SafeTensors};
use tch::nn::{self, Path};
use tch::{Kind, Tensor};

use super::config::{Activation, ClipConfig};
use crate::error::{Error, Result};

/// Where loaded tensors come from: the parsed safetensors file and the target kind/device.
struct Source<'a> {
    st: &'a SafeTensors<'a>,
    kind: Kind,
    device: tch::Device,
}

impl Source<'_> {
    /// Reads tensor `path.name`, checks its shape, converts it and registers it in the
    /// VarStore under the same name (not trainable).
    fn get(&self, p: &Path, name: &str, shape: &[usize]) -> Result<Tensor> {
        let key = p.path(name);
        let view = self
            .st
            .tensor(&key)
            .map_err(|_| load_err(format!("missing tensor `{key}`")))?;
        let numel = |s: &[usize]| s.iter().product::<usize>();
        // A 0-d scalar (`logit_scale`) is also accepted as [1].
        let ok = view.shape() == shape || (shape.is_empty() && numel(view.shape()) == 1);
        if !ok {
            return Err(load_err(format!(
                "tensor `{key}` has shape {:?}, the config needs {shape:?}",
                view.shape()
            )));
        }
        let src_kind = match view.dtype() {
            Dtype::F32 => Kind::Float,
            Dtype::F16 => Kind::Half,
            Dtype::BF16 => Kind::BFloat16,
            other => {
                return Err(load_err(format!(
                    "tensor `{key}` has dtype {other:?}, expected F32, F16 or BF16"
                )))
            }
        };
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let t = Tensor::f_from_data_size(view.data(), &dims, src_kind)?
            .f_to_kind(self.kind)?
            .f_to_device(self.device)?;
        Ok(p.add(name, t, false))
    }
}

pub(crate) fn load_err(reason: String) -> Error {
    Error::ModelLoad {
        path: "model.safetensors".into(),
        reason,
    }
}

struct Linear {
    w: Tensor,
    b: Option<Tensor>,
}

impl Linear {
    fn load(src: &Source<'_>, p: &Path, out: usize, inp: usize, bias: bool) -> Result<Self> {
        Ok(Self {
            w: src.get(p, "weight", &[out, inp])?,
            b: if bias {
                Some(src.get(p, "bias", &[out])?)
            } else {
                None
            },
        })
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.w, self.b.as_ref())
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

    fn forward(&self, x: &Tensor) -> Tensor {
        x.layer_norm([self.dim], Some(&self.w), Some(&self.b), self.eps, true)
    }
}

struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    heads: i64,
}

impl Attention {
    fn forward(&self, x: &Tensor, causal: bool) -> Tensor {
        let (b, t, d) = x.size3().unwrap_or((0, 0, 0));
        let hd = d / self.heads;
        let split = |y: Tensor| y.view([b, t, self.heads, hd]).transpose(1, 2);
        let q = split(self.q_proj.forward(x));
        let k = split(self.k_proj.forward(x));
        let v = split(self.v_proj.forward(x));
        // Scale 1/sqrt(head_dim), as CLIP; LibTorch picks the fused kernel.
        let o = Tensor::scaled_dot_product_attention(
            &q,
            &k,
            &v,
            None::<Tensor>,
            0.0,
            causal,
            None,
            false,
        );
        self.out_proj.forward(&o.transpose(1, 2).reshape([b, t, d]))
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
        Ok(Self {
            layer_norm1: LayerNorm::load(src, &p.sub("layer_norm1"), d, eps)?,
            self_attn: Attention {
                q_proj: Linear::load(src, &a.sub("q_proj"), d, d, true)?,
                k_proj: Linear::load(src, &a.sub("k_proj"), d, d, true)?,
                v_proj: Linear::load(src, &a.sub("v_proj"), d, d, true)?,
                out_proj: Linear::load(src, &a.sub("out_proj"), d, d, true)?,
                heads: heads as i64,
            },
            layer_norm2: LayerNorm::load(src, &p.sub("layer_norm2"), d, eps)?,
            fc1: Linear::load(src, &m.sub("fc1"), ff, d, true)?,
            fc2: Linear::load(src, &m.sub("fc2"), d, ff, true)?,
            act,
        })
    }

    fn forward(&self, x: &Tensor, causal: bool) -> Tensor {
        let x = x + self.self_attn.forward(&self.layer_norm1.forward(x), causal);
        let h = self.fc1.forward(&self.layer_norm2.forward(&x));
        let h = match self.act {
            Activation::QuickGelu => &h * (&h * 1.702).sigmoid(),
            Activation::Gelu => h.gelu("none"),
            Activation::GeluNew => h.gelu("tanh"),
        };
        x + self.fc2.forward(&h)
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
    fn forward(&self, pixels: &Tensor) -> Tensor {
        let b = pixels.size()[0];
        let x = pixels
            .conv2d(
                &self.patch_embedding,
                None::<Tensor>,
                [self.patch, self.patch],
                [0, 0],
                [1, 1],
                1,
            )
            .flatten(2, -1)
            .transpose(1, 2);
        let d = x.size()[2];
        let cls = self
            .class_embedding
            .view([1, 1, d])
            .expand([b, 1, d], false);
        let mut x = Tensor::cat(&[cls, x], 1) + &self.position_embedding;
        x = self.pre_layrnorm.forward(&x);
        for l in &self.layers {
            x = l.forward(&x, false);
        }
        let pooled = self.post_layernorm.forward(&x.select(1, 0));
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
    fn forward(&self, ids: &Tensor, eos: &Tensor) -> Tensor {
        let (b, t) = ids.size2().unwrap_or((0, 0));
        let mut x = Tensor::embedding(&self.token_embedding, ids, -1, false, false)
            + self.position_embedding.narrow(0, 0, t);
        for l in &self.layers {
            x = l.forward(&x, true);
        }
        let d = x.size()[2];
        // The final LayerNorm is per token, so pooling first is the same and cheaper.
        let idx = eos.view([b, 1, 1]).expand([b, 1, d], false);
        let pooled = self
            .final_layer_norm
            .forward(&x.gather(1, &idx, false).squeeze_dim(1));
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
        kind: Kind,
        device: tch::Device,
    ) -> Result<Self> {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let src = Source { st, kind, device };
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
        Ok(self.vision.forward(&x).f_to_kind(Kind::Float)?)
    }

    /// Unnormalised text embeddings [B, D] (f32).
    pub(crate) fn text_features(&self, ids: &Tensor, eos: &Tensor) -> Result<Tensor> {
        let ids = ids.f_to_device(self.device)?;
        let eos = eos.f_to_device(self.device)?;
        Ok(self.text.forward(&ids, &eos).f_to_kind(Kind::Float)?)
    }
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
