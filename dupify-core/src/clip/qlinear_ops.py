#!/usr/bin/env python3
"""Writes dupify-core/src/clip/qlinear_ops.pt, the TorchScript module through which
`Precision::Int8` reaches PyTorch's dynamic int8 Linear kernels (fbgemm on x86).

Why a TorchScript file: `quantized::linear_prepack` and `quantized::linear_dynamic` are
dispatcher ops outside the `aten::` namespace, and tch's generated Tensor API skips them (and
the legacy `aten::fbgemm_*` ops: tch's generator excludes the `fbgemm_` prefix). tch does run
TorchScript (`CModule`), and a scripted method may call any registered op, so this 4 KB module
is the bridge: the Rust side loads it from bytes compiled into the library (`include_bytes!`),
so no Python and no file is needed at run time. It holds no weights; it only names ops.

The methods mirror `torch.ao.quantization.quantize_dynamic(model, {nn.Linear},
dtype=torch.qint8)` exactly:
* `prepack(w, b, row_groups)`: the weight's scale is that of `default_weight_observer`
  (MinMaxObserver, qint8, per-tensor symmetric: max(|min|, |max|) / 127.5, at least f32 eps,
  zero point 0), computed separately for each of `row_groups` equal row blocks, so a fused
  [q; k; v] weight (row_groups = 3) quantizes exactly like the three checkpoint layers
  quantized one by one (a per-channel scale that repeats the per-tensor scale of each block).
* `linear(x, packed)`: `quantized::linear_dynamic(x, packed, reduce_range=True)`, what
  `torch.ao.nn.quantized.dynamic.Linear.forward` calls (the activation quantized per tensor,
  uint8, 7-bit range, from its min/max; the GEMM in int8 with int32 accumulation; f32 out),
  called once per item of dim 0 (an image's tokens, a text's tokens, a pooled row). So every
  image gets its own activation scales and its embedding does not depend on what else is in
  its batch: it equals `quantize_dynamic`'s output for that image run as a batch of one.
  (One call over the whole batch would share one scale between all its images: a feature
  library that batches whatever arrives cannot let one image's features depend on another.)

Run with the project venv whenever this file changes: `.venv/bin/python
dupify-core/src/clip/qlinear_ops.py`; commit the .pt it writes.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Optional

import torch

OUT = Path(__file__).resolve().with_suffix(".pt")


class QLinearOps(torch.nn.Module):
    @torch.jit.export
    def prepack(
        self, w: torch.Tensor, b: Optional[torch.Tensor], row_groups: int
    ) -> torch.classes.quantized.LinearPackedParamsBase:
        rows = w.size(0) // row_groups
        scales = []
        for g in range(row_groups):
            part = w.narrow(0, g * rows, rows)
            lo = torch.clamp(part.min(), max=0.0)
            hi = torch.clamp(part.max(), min=0.0)
            s = torch.clamp(torch.max(-lo, hi) / 127.5, min=1.1920928955078125e-07)  # f32 eps, as the observer
            scales.append(s.expand([rows]))
        scale = torch.cat(scales).to(torch.float64)
        if row_groups == 1:
            q = torch.quantize_per_tensor(w, float(scale[0].item()), 0, torch.qint8)
        else:
            zero = torch.zeros([w.size(0)], dtype=torch.int64)
            q = torch.quantize_per_channel(w, scale, zero, 0, torch.qint8)
        return torch.ops.quantized.linear_prepack(q, b)

    @torch.jit.export
    def linear(
        self, x: torch.Tensor, packed: torch.classes.quantized.LinearPackedParamsBase
    ) -> torch.Tensor:
        n = x.size(0)
        if n == 1:
            return torch.ops.quantized.linear_dynamic(x, packed, True)
        outs = [torch.ops.quantized.linear_dynamic(x.narrow(0, i, 1), packed, True) for i in range(n)]
        return torch.cat(outs, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def main() -> None:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    assert torch.finfo(torch.float32).eps == 1.1920928955078125e-07
    module = torch.jit.script(QLinearOps().eval())
    buf = io.BytesIO()
    torch.jit.save(module, buf)
    OUT.write_bytes(buf.getvalue())
    print(f"wrote {OUT} ({len(buf.getvalue())} bytes, torch {torch.__version__})")


if __name__ == "__main__":
    main()
