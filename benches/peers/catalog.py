#!/usr/bin/env python3
"""Peer for the catalog benchmark: exact top-10 cosine search with numpy (BLAS mat-vec over a
normalised float32 matrix), on the same kind of data as `benches/benches/catalog.rs`
(L2-normalised 512-d vectors: a shared cone direction + one of 1,000 cluster centres +
per-dimension noise, `--cone`/`--noise` as its DUPIFY_CATALOG_BENCH_CONE/_NOISE). Prints queries/s as a JSON last line, so the ANN
speed-up can also be stated against the tool a Python user would reach for first.
"""
import argparse
import json
import os
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n", type=int, default=int(os.environ.get("DUPIFY_CATALOG_BENCH_N", 100_000)))
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--cone", type=float, default=float(os.environ.get("DUPIFY_CATALOG_BENCH_CONE", 1.0)))
    ap.add_argument("--noise", type=float, default=float(os.environ.get("DUPIFY_CATALOG_BENCH_NOISE", 0.02)))
    a = ap.parse_args()
    rng = np.random.default_rng(1)
    dim = 512
    centres = rng.standard_normal((1000, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    cone = rng.standard_normal(dim).astype(np.float32)
    cone /= np.linalg.norm(cone)

    def draw(k):
        x = (
            centres[rng.integers(0, 1000, k)]
            + a.cone * cone
            + a.noise * rng.standard_normal((k, dim)).astype(np.float32)
        )
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    data = draw(a.n)
    qs = draw(a.queries)
    t = time.perf_counter()
    for q in qs:  # one query at a time, like an online search
        s = data @ q
        top = np.argpartition(-s, 10)[:10]
        top[np.argsort(-s[top])]
    dt = time.perf_counter() - t
    print(json.dumps({"qps": a.queries / dt, "n": a.n, "threads": a.threads}))


if __name__ == "__main__":
    main()
