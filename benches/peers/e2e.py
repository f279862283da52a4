#!/usr/bin/env python3
"""Peer for benches/benches/extract.rs: end-to-end image embedding from files on disk with the
tools a user would otherwise pick, on the same files, model and thread count.

* `images_per_s` (peer of `*_extract/embed_files`): read + decode each file with PIL, batch it
  through transformers `CLIPImageProcessor` (the image half of `CLIPProcessor`; in
  transformers 5 the torchvision-backed one, the fastest it offers) and `CLIPModel`
  (`visual_projection(vision_model(px).pooler_output)`, L2-normalised), batch 32 on the CPU.
  Threads: `torch.set_num_threads(--threads)`.
* `all_ops_images_per_s` (peer of `*_extract/all_ops_files`): the above plus colorthief's
  palette (`get_palette(color_count=5)`, its default quality=10) on each decoded photo
  resized to long side 256 (bilinear, our working image): time per image = transformers time
  + colorthief time (decode counted once). colorthief is pure Python and single-threaded.

`--quant int8` (CPU): the model is PyTorch's dynamic int8 quantization of it,
`torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)`, the
like-for-like peer of our `Precision::Int8`.

`--device cuda --dtype fp16` (the peer on a GPU machine): a torch `DataLoader` with
`--threads` worker processes does the decoding and preprocessing while the model runs,
batch 256, pinned memory; synchronised before the clock stops.

Photos: every *.jpg under $DUPIFY_BENCH_PHOTOS, else the 40 committed photos (sorted, as
ours), cycled to $DUPIFY_BENCH_IMAGES entries when set. One untimed pass, then `--reps` timed passes over all files; prints the medians, the
last line as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def photo_paths() -> list[Path]:
    base = Path(os.environ.get("DUPIFY_BENCH_PHOTOS", ROOT / "dupify-core" / "tests" / "assets" / "clothing"))
    paths = sorted(p for p in base.rglob("*") if p.suffix.lower() == ".jpg")
    if not paths:
        raise SystemExit(f"no photos under {base}")
    n = int(os.environ.get("DUPIFY_BENCH_IMAGES") or 0)
    if n > 0:  # cycled to n entries, as benches/src/lib.rs bench_image_list
        paths = [paths[i % len(paths)] for i in range(n)]
    return paths


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", choices=["fp32", "fp16", "bf16"], default=None)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--no-colors", action="store_true", help="skip the colorthief part")
    ap.add_argument("--quant", choices=["none", "int8"], default="none")
    args = ap.parse_args()
    if not args.no_colors:
        # Say so before minutes of model loading, not after (GPU images often lack it).
        try:
            import colorthief  # noqa: F401
        except ImportError:
            sys.exit("e2e.py: colorthief is not installed (pip install colorthief); "
                     "pass --no-colors for the embedding rows alone")

    import torch
    from PIL import Image
    from transformers import CLIPImageProcessor, CLIPModel

    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[
        args.dtype or ("fp16" if cuda else "fp32")]
    batch = args.batch or (256 if cuda else 32)
    paths = photo_paths()
    model = CLIPModel.from_pretrained(ROOT / "weights/test/clip/vit-b-32").eval().to(dev, dtype)
    if args.quant == "int8":
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    side = model.config.vision_config.image_size
    proc = CLIPImageProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side})

    def embed(px: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            e = model.visual_projection(model.vision_model(pixel_values=px).pooler_output)
            return e / e.norm(dim=-1, keepdim=True)

    if cuda:
        class Files(torch.utils.data.Dataset):
            def __len__(self) -> int:
                return len(paths)

            def __getitem__(self, i: int) -> torch.Tensor:
                img = Image.open(paths[i]).convert("RGB")
                return proc(images=img, return_tensors="pt")["pixel_values"][0]

        def clip_pass() -> None:
            loader = torch.utils.data.DataLoader(
                Files(), batch_size=batch, num_workers=args.threads, pin_memory=True,
                persistent_workers=False, prefetch_factor=4)
            for px in loader:
                embed(px.to(dev, dtype, non_blocking=True)).cpu()
            torch.cuda.synchronize()
    else:
        def clip_pass() -> None:
            for s in range(0, len(paths), batch):
                imgs = [Image.open(p).convert("RGB") for p in paths[s:s + batch]]
                px = proc(images=imgs, return_tensors="pt")["pixel_values"]
                embed(px.to(dtype)).numpy()

    decoded = None
    if not args.no_colors:
        from colorthief import ColorThief

        decoded = [Image.open(p).convert("RGB") for p in paths]

        def colors_pass() -> None:
            for im in decoded:
                s = 256 / max(im.size)
                small = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))),
                                  Image.BILINEAR)
                thief = ColorThief.__new__(ColorThief)  # skip its file open: decode is shared
                thief.image = small
                thief.get_palette(color_count=5)

    clip_pass()  # warm-up: model, allocator, workers
    clip_t, col_t = [], []
    for _ in range(args.reps):
        t = time.perf_counter()
        clip_pass()
        clip_t.append(time.perf_counter() - t)
        if decoded is not None:
            t = time.perf_counter()
            colors_pass()
            col_t.append(time.perf_counter() - t)
    n = len(paths)
    out = {"images": n, "images_per_s": n / statistics.median(clip_t),
           "processor": type(proc).__name__}
    print(f"transformers e2e: {statistics.median(clip_t) / n * 1e3:.2f} ms/image")
    if col_t:
        print(f"colorthief: {statistics.median(col_t) / n * 1e3:.2f} ms/image")
        out["colorthief_images_per_s"] = n / statistics.median(col_t)
        out["all_ops_images_per_s"] = n / (statistics.median(clip_t) + statistics.median(col_t))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
