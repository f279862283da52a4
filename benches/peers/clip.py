#!/usr/bin/env python3
"""Peer for benches/benches/clip.rs: transformers CLIPModel (PyTorch eager), model-only image
embedding `visual_projection(vision_model(px).pooler_output)` + L2 norm, on the same
checkpoint (weights/test/clip/vit-b-32), batch and thread count. `--device cuda --dtype fp16`
is the peer of `cuda_clip/vit_b32_fp16`; with `--host-u8` it does that row's whole job: host
uint8 HWC crops copied to the device, normalised there with CLIP's mean/std, embedded,
embeddings copied back to the host (which synchronises before the clock stops). `--quant int8`
runs PyTorch's dynamic int8 quantization of it instead (`torch.ao.quantization.quantize_dynamic(
model, {nn.Linear}, dtype=torch.qint8)`, CPU, fp32 activations): the like-for-like peer of our
`Precision::Int8`. Prints images/s as the last line: {"images_per_s": ...}."""

import argparse
import json
import time
from pathlib import Path

import torch
from transformers import CLIPModel
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

ROOT = Path(__file__).resolve().parents[2]
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    ap.add_argument("--host-u8", action="store_true",
                    help="start from host uint8 crops and end with host embeddings")
    ap.add_argument("--quant", choices=["none", "int8"], default="none")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    dtype = DTYPES[args.dtype]
    model = CLIPModel.from_pretrained(ROOT / "weights/test/clip/vit-b-32").eval().to(dev, dtype)
    if args.quant == "int8":
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    side = model.config.vision_config.image_size
    px = (torch.rand(args.batch, 3, side, side) * 2 - 1).to(dev, dtype)
    rgb = torch.randint(0, 256, (args.batch, side, side, 3), dtype=torch.uint8)
    mean = torch.tensor(OPENAI_CLIP_MEAN, device=dev).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_CLIP_STD, device=dev).view(1, 3, 1, 1)

    def run():
        with torch.inference_mode():
            x = px
            if args.host_u8:
                x = rgb.to(dev).permute(0, 3, 1, 2).float()
                x = ((x / 255.0 - mean) / std).to(dtype)
            e = model.visual_projection(model.vision_model(pixel_values=x).pooler_output)
            e = e / e.norm(dim=-1, keepdim=True)
            if args.host_u8:
                e = e.float().cpu()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            return e

    for _ in range(3):
        run()
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < args.seconds or len(times) < 5:
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    times.sort()
    median = times[len(times) // 2]
    print(json.dumps({"images_per_s": args.batch / median}))


if __name__ == "__main__":
    main()
