#!/usr/bin/env python3
"""Builds the image-input fixtures under dupify-core/tests/assets/input/ from committed photos.

Run once with the project venv (`.venv/bin/python weights/make_input_fixtures.py`); the outputs
are committed, so tests never depend on Pillow. Every variant is derived from one real photo
(`source.png`, a downscaled CC0 dress photo from tests/assets/clothing) so a test can check a
decode against an independent expectation: the lossless source pixels, or values Pillow wrote.

Files:
  source.png     8-bit RGB, the reference pixels for every lossless variant
  source.rgb     the same pixels as raw bytes (96x163, RGB, row-major), written by numpy so
                 tests have expected values no decoder of ours produced
  upright.jpg    the source as a JPEG without orientation tag
  exif3.jpg / exif6.jpg / exif8.jpg
                 stored pixels rotated, EXIF Orientation 3 / 6 / 8 set so that the *displayed*
                 image is upright (checked here with PIL.ImageOps.exif_transpose)
  rgb16.png      16-bit RGB PNG holding source*257 (exact 8-bit value is source)
  gray16.png     16-bit grayscale PNG holding L*257 where L is Pillow's luma of the source
  gray.png       8-bit grayscale PNG of the same L; gray.jpg the same as a grayscale JPEG
  cmyk.jpg       Adobe CMYK JPEG (Pillow writes inverted CMYK with the Adobe marker) with a
                 real black channel: K = 255 - max(R,G,B), C/M/Y chosen so that
                 R = (255-C)(255-K)/255 etc. reconstructs the source
  rgba.png       a synthetic cut-out of the source: alpha 255 inside a centred ellipse, 128 on
                 its rim, 0 outside, and the transparent pixels' RGB set to black (what many
                 cut-out tools write)
  lossless.webp / lossy.webp, source.bmp, anim.gif (2 frames: frame 1 = source, frame 2 =
                 the inverted source, so "first frame" is checkable)
  tiny.tiff      a valid image in a format we refuse
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "dupify-core/tests/assets/clothing/dress/35f157d0-53e4-4496-b087-da4ad63edd47.jpg"
OUT = ROOT / "dupify-core/tests/assets/input"


def png16(path: Path, arr: np.ndarray) -> None:
    """Writes a 16-bit PNG (Pillow cannot write 16-bit RGB) from an HxW or HxWx3 uint16 array."""
    h, w = arr.shape[:2]
    color_type = 0 if arr.ndim == 2 else 2
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9))
                     + chunk(b"IEND", b""))


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    src = Image.open(SRC).convert("RGB")
    src = src.resize((96, round(96 * src.height / src.width)), Image.Resampling.LANCZOS)
    src.save(OUT / "source.png", optimize=True)
    a = np.asarray(src)
    (OUT / "source.rgb").write_bytes(a.tobytes())

    src.save(OUT / "upright.jpg", quality=90)
    for tag, stored in ((3, src.transpose(Image.Transpose.ROTATE_180)),
                        (6, src.transpose(Image.Transpose.ROTATE_90)),
                        (8, src.transpose(Image.Transpose.ROTATE_270))):
        exif = Image.Exif()
        exif[0x0112] = tag
        p = OUT / f"exif{tag}.jpg"
        stored.save(p, quality=90, exif=exif.tobytes())
        shown = ImageOps.exif_transpose(Image.open(p))
        assert shown.size == src.size, (tag, shown.size)
        diff = np.abs(np.asarray(shown, dtype=np.int16) - a).mean()
        assert diff < 4, (tag, diff)

    png16(OUT / "rgb16.png", a.astype(np.uint16) * 257)
    lum = np.asarray(src.convert("L"))
    png16(OUT / "gray16.png", lum.astype(np.uint16) * 257)
    Image.fromarray(lum, "L").save(OUT / "gray.png", optimize=True)
    Image.fromarray(lum, "L").save(OUT / "gray.jpg", quality=90)

    f = a.astype(np.float64)
    k = 255 - f.max(axis=2)
    nk = np.maximum(255 - k, 1)
    cmy = 255 - f * 255 / nk[..., None]
    cmyk = np.concatenate([cmy, k[..., None]], axis=2).round().clip(0, 255).astype(np.uint8)
    Image.fromarray(cmyk, "CMYK").save(OUT / "cmyk.jpg", quality=95)

    h, w = a.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    r = ((xx - (w - 1) / 2) / (0.36 * w)) ** 2 + ((yy - (h - 1) / 2) / (0.46 * h)) ** 2
    alpha = np.where(r <= 0.9, 255, np.where(r <= 1.0, 128, 0)).astype(np.uint8)
    rgb = np.where(alpha[..., None] == 0, 0, a).astype(np.uint8)
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(OUT / "rgba.png", optimize=True)

    src.save(OUT / "lossless.webp", lossless=True)
    src.save(OUT / "lossy.webp", quality=85)
    src.save(OUT / "source.bmp")
    inv = Image.fromarray(255 - a)
    src.save(OUT / "anim.gif", save_all=True, append_images=[inv], duration=100, loop=0)
    Image.new("RGB", (8, 8), (200, 30, 30)).save(OUT / "tiny.tiff")

    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(list(OUT.iterdir()))} files, {total / 1024:.0f} KiB, source {src.size}")


if __name__ == "__main__":
    main()
