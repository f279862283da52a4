"""Crops the background patches used by tests/silhouette_*.rs from the CC0 clothing photos.

Run from the repo root with the project venv:
    .venv/bin/python dupify-core/tests/assets/backgrounds/make_backgrounds.py <clothing-dataset-small>/test
Each patch is a product-free strip of floor, wall or fabric (boxes chosen by eye).
"""
import sys
from pathlib import Path
from PIL import Image

if len(sys.argv) != 2:
    sys.exit("usage: make_backgrounds.py <clothing-dataset-small>/test")
ROOT = Path(sys.argv[1])
OUT = Path(__file__).parent
# name: (photo, side, box in the 400-px-wide strip)
PATCHES = {
    "light_wood": ("shorts/cbae96c4-ee32-4c10-a69e-d723e0a54480.jpg", "top", (0, 0, 400, 90)),
    "knit_beige": ("shorts/06248e28-9e26-4036-8a8f-40cc605c83fb.jpg", "top", (0, 0, 400, 100)),
    "dark_wood": ("longsleeve/9d662e99-37a1-4e5a-a068-d38556d6c436.jpg", "top", (0, 0, 400, 83)),
    "terrazzo": ("shoes/8648344c-5acb-4f5d-93a1-7e89489489bf.jpg", "bottom", (0, 10, 400, 107)),
    "wall": ("outwear/8a17d01f-80f9-4e88-ad35-51d09dbb5b3c.jpg", "bottom", (0, 0, 370, 140)),
    "quilt": ("t-shirt/7fe4daa4-2802-42b4-8dee-68c114105a7a.jpg", "bottom", (0, 12, 280, 104)),
}
for name, (photo, side, box) in PATCHES.items():
    im = Image.open(ROOT / photo).convert("RGB")
    w, h = im.size
    strip = im.crop((0, 0, w, int(h * 0.25))) if side == "top" else im.crop((0, int(h * 0.8), w, h))
    strip = strip.resize((400, round(400 * strip.size[1] / strip.size[0])), Image.LANCZOS)
    strip.crop(box).save(OUT / f"{name}.jpg", quality=88)
    print(name, strip.crop(box).size)
