#!/usr/bin/env python3
"""Peer for `cpu_preprocess/decode_clip224`: PIL + torchvision transforms, images/s.

The same photos (the 40 committed CC0 photos, or every *.jpg under $DUPIFY_BENCH_PHOTOS), held
as encoded bytes in memory, each decoded with PIL and run through the standard CLIP transform
(Resize(224, BICUBIC) → CenterCrop(224) → ToTensor → Normalize(CLIP mean/std)) into one batch
tensor. `--threads` worker threads (PIL and torch release the GIL in decode/resize/tensor ops),
torch intra-op threads pinned to 1 so the total matches ours. Prints the median of several
timed passes as the last line: {"images_per_s": ...}.

`--draft N` turns on PIL's draft mode (libjpeg-turbo's DCT scaling, 1/2, 1/4 or 1/8): each
JPEG is decoded at the smallest scale that keeps both sides at least N pixels, as
`Image.draft("RGB", (N, N))` chooses, before the same transform.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from PIL import Image
from torchvision import transforms

ROOT = Path(__file__).resolve().parent.parent.parent
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--draft", type=int, default=0, help="PIL draft mode: keep both sides >= N")
    args = ap.parse_args()
    torch.set_num_threads(1)
    base = Path(os.environ.get("DUPIFY_BENCH_PHOTOS", ROOT / "dupify-core" / "tests" / "assets" / "clothing"))
    files = [p.read_bytes() for p in sorted(base.rglob("*.jpg"))]
    if not files:
        raise SystemExit(f"no photos under {base}")
    tf = transforms.Compose([
        transforms.Resize(224, interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(224),
        transforms.ToTensor(),
        transforms.Normalize(MEAN, STD),
    ])
    batch = torch.empty((len(files), 3, 224, 224))

    def one(i: int) -> None:
        im = Image.open(io.BytesIO(files[i]))
        if args.draft:
            im.draft("RGB", (args.draft, args.draft))
        batch[i] = tf(im.convert("RGB"))

    rates = []
    with ThreadPoolExecutor(args.threads) as pool:
        list(pool.map(one, range(len(files))))  # warm-up
        deadline = time.perf_counter() + args.seconds
        while time.perf_counter() < deadline or len(rates) < 3:
            t = time.perf_counter()
            list(pool.map(one, range(len(files))))
            rates.append(len(files) / (time.perf_counter() - t))
    print(json.dumps({"images_per_s": statistics.median(rates), "images": len(files), "threads": args.threads,
                      "draft": args.draft}))


if __name__ == "__main__":
    main()
