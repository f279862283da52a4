#!/usr/bin/env python3
"""Peers for `cpu_colors/extract_40_photos`: colorthief and scikit-learn k-means.

Same 40 photos, same working images (long side 256, bilinear/triangle), decode and resize
outside the timed loop, one thread. Prints per-peer ms/image, then one JSON line of images/s:
  colorthief       ColorThief.get_palette(color_count=5, quality=1)  (every pixel, as we do)
  colorthief_q10   the same with colorthief's default quality=10 (every 10th pixel)
  sklearn_kmeans   KMeans(n_clusters=5, n_init=1, random_state=0) on the RGB pixels
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PHOTOS = ROOT / "dupify-core" / "tests" / "assets" / "clothing"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    import numpy as np
    from colorthief import ColorThief
    from PIL import Image
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    imgs = []
    for p in sorted(PHOTOS.glob("*/*.jpg")):
        im = Image.open(p).convert("RGB")
        s = 256 / max(im.size)
        im = im.resize((round(im.width * s), round(im.height * s)), Image.BILINEAR)
        imgs.append(im)
    assert len(imgs) == 40

    def colorthief(quality: int):
        bufs = []
        for im in imgs:
            b = io.BytesIO()
            im.save(b, format="PNG")
            bufs.append(b.getvalue())
        thieves = [ColorThief(io.BytesIO(b)) for b in bufs]
        for t in thieves:
            t.image.load()

        def run():
            for t in thieves:
                t.get_palette(color_count=5, quality=quality)

        return run

    arrays = [np.asarray(im, dtype=np.float32).reshape(-1, 3) for im in imgs]

    def kmeans():
        for a in arrays:
            KMeans(n_clusters=5, n_init=1, random_state=0).fit(a)

    out = {}
    with threadpool_limits(args.threads):
        for name, fn in [("colorthief", colorthief(1)), ("colorthief_q10", colorthief(10)),
                         ("sklearn_kmeans", kmeans)]:
            best = float("inf")
            for _ in range(args.reps):
                t0 = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - t0)
            out[name] = len(imgs) / best
            print(f"{name}: {best / len(imgs) * 1e3:.2f} ms/image")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
