#!/usr/bin/env python3
"""Makes the seeded random-weight ViT-B/32 checkpoint on a benchmark machine, from the
`config.json` the package carries (the 600 MB checkpoint is not shipped: the device transfer
is small). Same architecture and FLOPs as weights/gen_clip.py's model and the real
openai/clip-vit-base-patch32; the weights differ, which does not change the cost. The
attribute-head cache is rebuilt from it by the extractor on first use.

Usage: python3 benches/cuda/make_model.py [MODEL_DIR]  (default weights/test/clip/vit-b-32)
"""

import sys
from pathlib import Path

import torch
from transformers import CLIPConfig, CLIPModel

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    d = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "weights/test/clip/vit-b-32"
    config = CLIPConfig.from_pretrained(d)
    torch.manual_seed(0)
    model = CLIPModel(config).eval()
    model.save_pretrained(d, safe_serialization=True)
    print(f"wrote {d / 'model.safetensors'}")


if __name__ == "__main__":
    main()
