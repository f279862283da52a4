#!/usr/bin/env python3
"""Peer for benches/benches/clip.rs: transformers CLIPModel (PyTorch eager, fp32, CPU),
model-only image embedding `visual_projection(vision_model(px).pooler_output)` + L2 norm, on
the same checkpoint (weights/test/clip/vit-b-32), batch and thread count. Prints images/s as
the last line: {"images_per_s": ...}."""

import argparse
import json
import time
from pathlib import Path

import torch
from transformers import CLIPModel

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = CLIPModel.from_pretrained(ROOT / "weights/test/clip/vit-b-32").eval()
    side = model.config.vision_config.image_size
    px = torch.rand(args.batch, 3, side, side) * 2 - 1

    def run():
        with torch.inference_mode():
            e = model.visual_projection(model.vision_model(pixel_values=px).pooler_output)
            return e / e.norm(dim=-1, keepdim=True)

    for _ in range(2):
        run()
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < args.seconds or len(times) < 5:
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    times.sort()
    median = times[len(times) // 2]
    print(json.dumps({"images_per_s": args.batch / median}))


if __name__ == "__main__":
    main()
