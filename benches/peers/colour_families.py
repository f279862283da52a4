#!/usr/bin/env python3
"""Peer dominant colours for the by-eye colour-family labels.

Measures what two common off-the-shelf "dominant colour" recipes return for every photo listed in
`dupify-core/examples/data/colour_labels.csv` (the test split of the CC0 clothing-dataset-small),
so that their answers can be mapped to a colour family and scored against the hand labels in the
same way as ours. Only the colours are produced here; no timing, no scoring.

  colorthief  ColorThief(path).get_color(quality=1) on the photo file as it is on disk
              (every pixel; colorthief's median-cut palette, first swatch).
  kmeans      scikit-learn KMeans(n_clusters=5, n_init=4, random_state=0) on all RGB pixels of the
              photo resized with PIL bilinear so its long side is 256; the dominant colour is the
              centre of the largest cluster, rounded to integers.

Both look at the whole frame, background included: that is the point of the comparison (the
labels say which photos have a strongly coloured or busy background).

Usage:
  colour_families.py TEST_ROOT [--labels CSV] [--out FILE]

Prints progress to stderr and one JSON object on the last line of stdout (or writes it to FILE
with --out):
  {"colorthief": {file: [r, g, b], ...}, "kmeans": {file: [r, g, b], ...}}
where `file` is the path relative to TEST_ROOT, as in the labels CSV.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_LABELS = ROOT / "dupify-core" / "examples" / "data" / "colour_labels.csv"


def kmeans_dominant(path: Path) -> list[int]:
    import numpy as np
    from PIL import Image
    from sklearn.cluster import KMeans

    im = Image.open(path).convert("RGB")
    s = 256 / max(im.size)
    im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.BILINEAR)
    px = np.asarray(im, dtype=np.float64).reshape(-1, 3)
    km = KMeans(n_clusters=5, n_init=4, random_state=0).fit(px)
    counts = np.bincount(km.labels_, minlength=km.n_clusters)
    centre = km.cluster_centers_[int(np.argmax(counts))]
    return [int(v) for v in np.clip(np.rint(centre), 0, 255)]


def colorthief_dominant(path: Path) -> list[int]:
    from colorthief import ColorThief

    return [int(v) for v in ColorThief(str(path)).get_color(quality=1)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path, help="root of the test split (holds dress/, hat/, ...)")
    ap.add_argument("--labels", type=Path, default=DEFAULT_LABELS, help="labels CSV (file column)")
    ap.add_argument("--out", type=Path, help="write the JSON here instead of printing it")
    args = ap.parse_args()

    with open(args.labels, newline="") as f:
        files = sorted({row["file"] for row in csv.DictReader(f)})
    missing = [p for p in files if not (args.root / p).is_file()]
    if missing:
        sys.exit(f"{len(missing)} labelled files not under {args.root}, e.g. {missing[0]}")

    out: dict[str, dict[str, list[int]]] = {"colorthief": {}, "kmeans": {}}
    t0 = time.perf_counter()
    for n, rel in enumerate(files, 1):
        path = args.root / rel
        out["colorthief"][rel] = colorthief_dominant(path)
        out["kmeans"][rel] = kmeans_dominant(path)
        if n % 20 == 0 or n == len(files):
            print(f"{n}/{len(files)} photos, {time.perf_counter() - t0:.1f}s", file=sys.stderr)

    text = json.dumps(out, sort_keys=True)
    if args.out:
        args.out.write_text(text + "\n")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text)


if __name__ == "__main__":
    main()
