#!/usr/bin/env python3
"""Reference outputs for `Precision::Int8` (dupify-core/tests/clip_int8.rs): PyTorch's own
dynamic int8 quantization, `torch.ao.quantization.quantize_dynamic(model, {nn.Linear},
dtype=torch.qint8)`, of the transformers `CLIPModel` checkpoints written by gen_clip.py
(same seeded weights), run on the same inputs as that script's fp32 reference.

Runs after gen_clip.py (setup_weights.sh runs gen_*.py in name order) and reads its outputs:
weights/test/clip/<name>/{model.safetensors, reference.safetensors, reference.json}. Writes
weights/test/clip/<name>/reference_int8.safetensors (image_embeds [N,D], text_embeds [M,D],
both L2-normalised, from the fp32 reference's pixel_values and input_ids) and
reference_int8.json (the model_sha256 it was made from, versions, quantized engine).

Batching matters under dynamic quantization: each Linear quantizes its whole input tensor with
one scale, so over a batch an image's embedding would depend on its companions. Ours quantizes
each image (text) on its own, so the reference runs each one as a batch of one. A text's ids
are cut after its own pooled position (its end-of-text token), as `ClipModel::embed_token_ids`
does at int8; with a causal mask that changes nothing in fp32, but padding after it would take
part in the int8 activation scales.
"""

from __future__ import annotations

import hashlib
import json
import sys
import warnings
from pathlib import Path

import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import CLIPModel

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "weights" / "test" / "clip"
MODELS = ["tiny", "vit-b-32"]


def sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def pooled_position(row: list[int], eos_token_id: int) -> int:
    """Where transformers pools: argmax for legacy configs (eos_token_id == 2), else the
    first eos_token_id (0 when absent, as torch's argmax of an all-false mask)."""
    if eos_token_id == 2:
        return max(range(len(row)), key=lambda i: (row[i], -i))
    return next((i for i, x in enumerate(row) if x == eos_token_id), 0)


def build(name: str) -> None:
    d = OUT / name
    if not (d / "reference.safetensors").is_file():
        raise SystemExit(f"{d}/reference.safetensors missing: run weights/gen_clip.py first")
    ref = load_file(str(d / "reference.safetensors"))
    model = CLIPModel.from_pretrained(d).eval()
    qmodel = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    eos_id = model.config.text_config.eos_token_id
    ids = ref["input_ids"]
    with torch.inference_mode():
        img = torch.cat([
            qmodel.visual_projection(qmodel.vision_model(pixel_values=px[None]).pooler_output)
            for px in ref["pixel_values"]
        ])
        txt = torch.cat([
            qmodel.text_projection(qmodel.text_model(
                input_ids=row[None, :1 + pooled_position(row.tolist(), eos_id)]).pooler_output)
            for row in ids
        ])
    img = img / img.norm(dim=-1, keepdim=True)
    txt = txt / txt.norm(dim=-1, keepdim=True)
    save_file({"image_embeds": img.contiguous().float(), "text_embeds": txt.contiguous().float()},
              str(d / "reference_int8.safetensors"))
    cos_img = (img * ref["image_embeds"]).sum(-1)
    cos_txt = (txt * ref["text_embeds"]).sum(-1)
    meta = {
        "reference": "torch.ao.quantization.quantize_dynamic(CLIPModel, {nn.Linear}, dtype=torch.qint8)",
        "model_sha256": sha256(d / "model.safetensors"),
        "batching": "one image / one text (cut after its pooled token) per forward call",
        "quantized_engine": torch.backends.quantized.engine,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "min_cosine_vs_fp32": {"image": cos_img.min().item(), "text": cos_txt.min().item()},
    }
    (d / "reference_int8.json").write_text(json.dumps(meta, indent=1))
    print(f"[gen_quant_reference] {name}: int8 vs fp32 min cosine image {cos_img.min():.5f} "
          f"text {cos_txt.min():.5f}", file=sys.stderr)


def main() -> None:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    for name in MODELS:
        build(name)


if __name__ == "__main__":
    main()
