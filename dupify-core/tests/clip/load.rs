//! Load errors name what is wrong: truncated file, missing tensor, wrong shape, unknown
//! architecture. Built by editing the tiny generated checkpoint in memory.

use std::collections::HashMap;
use std::path::PathBuf;

use dupify_core::{ClipModel, ClipOptions, Error};
use safetensors::tensor::TensorView;
use safetensors::SafeTensors;

fn tiny() -> (Vec<u8>, Vec<u8>) {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../weights/test/clip/tiny");
    let read = |n: &str| {
        std::fs::read(d.join(n))
            .unwrap_or_else(|e| panic!("{e}: run scripts/setup.sh (weights/gen_clip.py) first"))
    };
    (read("config.json"), read("model.safetensors"))
}

fn load_reason(config: &[u8], weights: &[u8]) -> String {
    match ClipModel::from_bytes(config, weights, &ClipOptions::cpu()) {
        Err(e @ Error::ModelLoad { .. }) => {
            assert_eq!(e.code(), "model_error");
            e.to_string()
        }
        Err(e) => panic!("expected ModelLoad, got {e}"),
        Ok(_) => panic!("loaded a broken checkpoint"),
    }
}

/// Re-serialises the checkpoint with `edit` applied to its tensor list.
fn rewrite<'a>(
    weights: &'a [u8],
    edit: impl FnOnce(&mut Vec<(String, TensorView<'a>)>),
) -> Vec<u8> {
    let st = SafeTensors::deserialize(weights).unwrap();
    let mut tensors: Vec<(String, TensorView<'a>)> = st.tensors();
    edit(&mut tensors);
    safetensors::serialize(tensors, None::<HashMap<String, String>>).unwrap()
}

#[test]
fn the_untouched_checkpoint_loads() {
    let (c, w) = tiny();
    let m = ClipModel::from_bytes(&c, &w, &ClipOptions::cpu()).unwrap();
    assert_eq!(m.embed_dim(), 40);
    assert!(m.tokenizer().is_none(), "from_bytes has no tokenizer");
    assert_eq!(m.embed_texts(&["x"]).unwrap_err().code(), "not_available");
}

#[test]
fn truncated_file_is_refused() {
    let (c, w) = tiny();
    for cut in [0, 7, 100, w.len() / 2, w.len() - 1] {
        let r = load_reason(&c, &w[..cut]);
        assert!(r.contains("safetensors"), "{r}");
    }
}

#[test]
fn missing_tensor_is_named() {
    let (c, w) = tiny();
    for name in [
        "vision_model.encoder.layers.1.mlp.fc2.bias",
        "text_model.final_layer_norm.weight",
        "vision_model.pre_layrnorm.bias",
        "logit_scale",
        "text_projection.weight",
    ] {
        let w2 = rewrite(&w, |t| t.retain(|(k, _)| k != name));
        let r = load_reason(&c, &w2);
        assert!(r.contains(&format!("missing tensor `{name}`")), "{r}");
    }
}

#[test]
fn wrong_shape_is_named() {
    let (c, w) = tiny();
    let name = "visual_projection.weight";
    let st = SafeTensors::deserialize(&w).unwrap();
    let orig = st.tensor(name).unwrap();
    let data = orig.data()[..39 * 64 * 4].to_vec();
    let w2 = rewrite(&w, |t| {
        for (k, v) in t.iter_mut() {
            if k == name {
                *v = TensorView::new(orig.dtype(), vec![39, 64], &data).unwrap();
            }
        }
    });
    let r = load_reason(&c, &w2);
    assert!(
        r.contains(name) && r.contains("[39, 64]") && r.contains("[40, 64]"),
        "{r}"
    );
}

#[test]
fn config_mismatch_and_unknown_architecture_are_refused() {
    let (c, w) = tiny();
    let cfg: serde_json::Value = serde_json::from_slice(&c).unwrap();
    let mut bigger = cfg.clone();
    bigger["vision_config"]["num_hidden_layers"] = 3.into();
    let r = load_reason(&serde_json::to_vec(&bigger).unwrap(), &w);
    assert!(
        r.contains("missing tensor `vision_model.encoder.layers.2."),
        "{r}"
    );
    let mut other = cfg;
    other["model_type"] = "siglip".into();
    let r = load_reason(&serde_json::to_vec(&other).unwrap(), &w);
    assert!(r.contains("unsupported architecture"), "{r}");
}
