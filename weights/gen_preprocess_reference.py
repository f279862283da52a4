#!/usr/bin/env python3
"""Reference CLIP input tensors for the preprocessing parity test (tests/input/preprocess_parity.rs).

Runs Hugging Face's CLIP image processor on the committed photos and writes, per image, the
`pixel_values` tensor (3x224x224 float32, little-endian, CHW) to
`weights/test/preprocess/<name>.f32` plus a `manifest.json` listing them. Our Rust code never
produces these numbers; it is compared against them.

Which processor: transformers 5.24 has two CLIP image processors. `CLIPImageProcessor` is now
the torchvision-backed one; the PIL one, `CLIPImageProcessorPil`, is the original
implementation (PIL BICUBIC resize of the uint8 image, numpy centre crop/rescale/normalise)
that CLIP checkpoints were published with. We pin `CLIPImageProcessorPil` explicitly and record
its class name in the manifest; the test checks it.

Images are opened with Pillow and EXIF-transposed first (the processor itself ignores EXIF
orientation, our decoder applies it; none of the committed photos carries a rotation tag, the
transpose only keeps the semantics aligned). RGBA inputs are handed to the processor as RGBA:
its `convert_to_rgb` composites them onto white, which is our default matte.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import transformers
from PIL import Image, ImageOps
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "dupify-core" / "tests" / "assets"
OUT = ROOT / "weights" / "test" / "preprocess"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    proc = CLIPImageProcessorPil()  # OpenAI defaults: shortest_edge 224, crop 224, CLIP mean/std
    files = sorted((ASSETS / "clothing").glob("*/*.jpg"))
    files += [ASSETS / "input" / n for n in ("rgba.png", "gray.png", "cmyk.jpg", "lossless.webp", "exif6.jpg")]
    entries = []
    for f in files:
        im = ImageOps.exif_transpose(Image.open(f))
        if im.mode not in ("RGB", "RGBA"):
            # CMYK/L: Pillow's own conversion, the one the processor would apply
            im = im.convert("RGB")
        pv = proc(images=im, return_tensors="np")["pixel_values"][0].astype("<f4")
        assert pv.shape == (3, 224, 224), pv.shape
        rel = f.relative_to(ASSETS).as_posix()
        name = rel.replace("/", "__").rsplit(".", 1)[0] + ".f32"
        (OUT / name).write_bytes(pv.tobytes())
        entries.append({
            "image": rel,
            "tensor": name,
            "shape": list(pv.shape),
            "source_sha256": hashlib.sha256(f.read_bytes()).hexdigest(),
        })
    manifest = {
        "processor": type(proc).__name__,
        "transformers": transformers.__version__,
        "resample": "PIL BICUBIC",
        "size": proc.size["shortest_edge"] if isinstance(proc.size, dict) else proc.size.shortest_edge,
        "mean": list(map(float, proc.image_mean)),
        "std": list(map(float, proc.image_std)),
        "entries": entries,
    }
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2))
    print(f"wrote {len(entries)} reference tensors to {OUT.relative_to(ROOT)} with {manifest['processor']}")


if __name__ == "__main__":
    main()
