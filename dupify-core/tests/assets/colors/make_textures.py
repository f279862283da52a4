"""Crops background-only patches (floors, walls, sheets) from the committed clothing photos.

The colour tests composite a garment of known colour onto these real textures, so the
background is what real product photos have (wood grain, tiles with cracks, bed sheets), not a
flat synthetic colour. Run from the repository root:

    .venv/bin/python dupify-core/tests/assets/colors/make_textures.py

Each crop box was chosen by eye to contain no part of the product (see the contact sheet this
script prints the path of). Output: `<name>.png` next to this script (lossless, so the test sees
exactly the photo's pixels).
"""

from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
PHOTOS = HERE.parent / "clothing"

# name: (photo, (left, top, right, bottom)) in the photo's own pixels.
CROPS = {
    "carpet_brown": ("dress/3f844e1e-4a00-4b64-8c1d-3b847191bf11.jpg", (0, 0, 112, 72)),
    "wood_floor_a": ("outwear/0d73e759-eeaa-43ab-98d4-196b6974c41e.jpg", (374, 0, 409, 265)),
    "wood_floor_b": ("pants/05814dc4-0520-47e6-91e0-402a971ba40a.jpg", (35, 130, 85, 530)),
    "tile_floor": ("shoes/0dd87e47-ca85-4d5c-9fd1-59f5a01eb656.jpg", (0, 390, 230, 488)),
    "bedspread_beige": ("skirt/0558b2c5-be00-49de-b27f-8c88114ac36f.jpg", (0, 0, 40, 140)),
    "white_sheet": ("hat/2a12baab-f020-42e3-8e6b-5d82e3ed0b55.jpg", (0, 430, 320, 534)),
}


def main() -> None:
    sheet = Image.new("RGB", (6 * 330, 400), "white")
    for k, (name, (photo, box)) in enumerate(CROPS.items()):
        im = Image.open(PHOTOS / photo).convert("RGB").crop(box)
        im.save(HERE / f"{name}.png", optimize=True)
        sheet.paste(im, (k * 330, 0))
    out = Path("/tmp/colors_textures_sheet.png")
    sheet.save(out)
    print(f"wrote {len(CROPS)} textures; contact sheet {out}")


if __name__ == "__main__":
    main()
