#!/usr/bin/env python3
"""Large product photos for the reduced-scale decoding benchmark: `target/bench-large-photos/`.

E-commerce photos are often 1,500-4,000 px, but the committed CC0 photos are ~400 x 711. This
script makes 3000-px versions of every third committed photo (14 files): Lanczos upscale with
Pillow, a little Gaussian grain (sigma 2 levels) so that the entropy-coded data is closer to a
camera photo's than a smooth upscale's would be, saved as baseline JPEG at quality 90 with
Pillow's default 4:2:0 chroma subsampling. Deterministic (fixed seed); skipped when the files
exist. Both sides of the comparison decode exactly these files.

Caveat: upscaled content is smoother than a native 3000-px photo, so every decoder's Huffman
stage (the part no reduced decode skips) has somewhat less to do than on a real large photo.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "dupify-core" / "tests" / "assets" / "clothing"
OUT = ROOT / "target" / "bench-large-photos"
LONG_SIDE = 3000


def main() -> None:
    files = sorted(SRC.rglob("*.jpg"))[::3]
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, f in enumerate(files):
        dst = OUT / f"{i:02d}-{f.stem[:8]}.jpg"
        noise_shape = None
        with Image.open(f) as im:
            im = im.convert("RGB")
            s = LONG_SIDE / max(im.size)
            size = (round(im.width * s), round(im.height * s))
            noise_shape = (size[1], size[0], 1)
            if dst.exists():
                rng.normal(0, 2.0, noise_shape)  # keep the stream aligned with a full run
                continue
            big = np.asarray(im.resize(size, Image.LANCZOS), dtype=np.float32)
        grain = rng.normal(0, 2.0, noise_shape)
        Image.fromarray(np.clip(big + grain, 0, 255).astype(np.uint8)).save(dst, quality=90)
    print(OUT)


if __name__ == "__main__":
    main()
