"""Images/s through Ray Data (dupify.ray) against the same extraction in-process, same cores.

    python benches/ray_extract.py PHOTO_DIR [--model DIR] [--ops embed] [--repeats 3]

Both sides start from files on disk and end with every embedding in the driver, and both
include building the Extractor (model load): in-process is `Extractor(threads=C)` +
`extract_batch(paths)`; Ray is a local cluster of C CPUs (started once, outside the timing)
running `dupify.ray.extract_dataset` over `index_folder_rows` with `--actors` actors sharing
C - 0.25 CPUs (each actor's share rounded up is its torch threads) and `take_all()`. The runs alternate, and the
median of each is reported with their ratio: the cost of the engine on one machine.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import time

import ray

import dupify
import dupify.ray as dray


def in_process(model: str, ops: str, files: list, cpus: int, batch: int) -> float:
    t = time.perf_counter()
    x = dupify.Extractor(model, device="cpu", threads=cpus, batch_size=batch)
    out = x.extract_batch(files, ops)
    wall = time.perf_counter() - t
    assert all(isinstance(f, dupify.Features) for f in out)
    return wall


def through_ray(model: str, ops: str, folder: str, n: int, batch: int, actors: int) -> float:
    t = time.perf_counter()
    rows = dray.extract_dataset(
        dray.index_folder_rows(folder),
        model_dir=model,
        ops=ops,
        batch_size=batch,
        num_actors=actors,
        reserve_cpus=dray.LIGHT_TASK_CPUS,
    ).take_all()
    wall = time.perf_counter() - t
    assert len(rows) == n and all(r["error"] is None for r in rows)
    return wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder")
    ap.add_argument("--model", default=None)
    ap.add_argument("--ops", default="embed")
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--actors", type=int, default=1, help="Ray actors sharing the CPUs")
    args = ap.parse_args()
    model = str(args.model or dupify.default_model_dir())
    root = pathlib.Path(args.folder).resolve()
    files = sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in dray.IMAGE_SUFFIXES)
    n = len(files)
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    # One untimed run of each: file cache, Ray's worker pool and its imports.
    in_process(model, args.ops, files[:8], args.cpus, args.batch)
    through_ray(model, args.ops, str(root), n, args.batch, args.actors)
    walls: dict = {"in_process": [], "ray": []}
    for _ in range(args.repeats):
        walls["in_process"].append(in_process(model, args.ops, files, args.cpus, args.batch))
        walls["ray"].append(through_ray(model, args.ops, str(root), n, args.batch, args.actors))
    ray.shutdown()
    med = {k: statistics.median(v) for k, v in walls.items()}
    report = {
        "images": n,
        "model": model,
        "ops": args.ops,
        "cpus": args.cpus,
        "batch": args.batch,
        "actors": args.actors,
        "walls_s": walls,
        "images_per_s": {k: round(n / v, 2) for k, v in med.items()},
        "ray_over_in_process": round(med["in_process"] / med["ray"], 3),
        "cpu": os.cpu_count(),
        "python": sys.version.split()[0],
        "ray_version": ray.__version__,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
