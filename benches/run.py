#!/usr/bin/env python3
"""Runs Dupify's benchmarks and their peers in one invocation, alternating, and prints ratios.

Each comparison in `benches/suite.json` names a criterion benchmark of ours (bench target +
benchmark id, which must declare `Throughput::Elements`) and a peer script in `benches/peers/`
doing the same work with the tools a user would otherwise pick. The peer prints, as its last
line, a JSON object `{"<metric>": <items per second>, ...}`. Ours and the peer run one after
the other, `--reps` times, on the same machine with the same thread count; the table shows the
median throughput of each and the ratio ours / peer (higher is better for us). Results go to
`benches/results/<date>-<host>.json` with the machine description.

Absolute numbers on shared machines lie; ratios measured in the same run are what we report.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "benches" / "suite.json"


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "host": platform.node(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_gb, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def target_dir() -> Path:
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    return Path(json.loads(out.stdout)["target_directory"])


def criterion_throughput(bench: str, bench_id: str, threads: int, quick: bool) -> float:
    """Runs one criterion benchmark and returns elements per second (from its median)."""
    args = ["cargo", "bench", "-q", "-p", "dupify-benches", "--bench", bench, "--", "--exact", bench_id,
            "--noplot"]
    if quick:
        args += ["--warm-up-time", "1", "--measurement-time", "3"]
    env = dict(os.environ, DUPIFY_BENCH_THREADS=str(threads), RAYON_NUM_THREADS=str(threads))
    subprocess.run(args, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    base = target_dir() / "criterion" / Path(*bench_id.split("/"))
    est = json.loads((base / "new" / "estimates.json").read_text())
    meta = json.loads((base / "new" / "benchmark.json").read_text())
    tp = meta.get("throughput") or {}
    elements = tp.get("Elements") or tp.get("Bytes")
    if not elements:
        raise SystemExit(f"benchmark {bench_id} declares no Throughput::Elements")
    return elements / (est["median"]["point_estimate"] * 1e-9)


def peer_throughput(script: str, metric: str, threads: int, extra: list[str]) -> float:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    out = subprocess.run(
        [sys.executable, str(ROOT / "benches" / "peers" / script), "--threads", str(threads), *extra],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    )
    last = [l for l in out.stdout.strip().splitlines() if l.startswith("{")][-1]
    return float(json.loads(last)[metric])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="comparisons to run (default: all in suite.json)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--quick", action="store_true", help="shorter criterion measurement")
    args = ap.parse_args()

    suite = json.loads(SUITE.read_text())
    todo = [c for c in suite if not args.names or c["name"] in args.names]
    if not todo:
        raise SystemExit(f"no comparison named {args.names}; have {[c['name'] for c in suite]}")
    rows = []
    for c in todo:
        threads = c.get("threads", args.threads)
        ours, peer = [], []
        for _ in range(args.reps):
            ours.append(criterion_throughput(c["bench"], c["id"], threads, args.quick))
            peer.append(peer_throughput(c["peer"], c["metric"], threads, c.get("peer_args", [])))
        row = {
            "name": c["name"], "what": c.get("what", ""), "peer_name": c.get("peer_name", c["peer"]),
            "threads": threads, "unit": c.get("unit", "items/s"),
            "ours": ours, "peer": peer,
            "ours_median": statistics.median(ours), "peer_median": statistics.median(peer),
        }
        row["ratio"] = row["ours_median"] / row["peer_median"]
        row["target"] = c.get("target")
        rows.append(row)
        print(f"{c['name']}: ours {row['ours_median']:.1f} vs {row['peer_name']} "
              f"{row['peer_median']:.1f} {row['unit']} -> {row['ratio']:.2f}x", file=sys.stderr)

    print(f"\n| comparison | threads | ours ({rows[0]['unit']}) | peer | peer ({rows[0]['unit']}) | ours / peer | target |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        tgt = f"≥ {r['target']}×" if r["target"] else ""
        print(f"| {r['name']} | {r['threads']} | {r['ours_median']:.1f} | {r['peer_name']} | "
              f"{r['peer_median']:.1f} | {r['ratio']:.2f}× | {tgt} |")
    m = machine()
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    out = ROOT / "benches" / "results" / f"{stamp}-{m['host']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"date": stamp, "machine": m, "reps": args.reps, "results": rows}, indent=2))
    print(f"\nwritten {out.relative_to(ROOT)}  ({m['cpu']}, {m['cores']} cores)")


if __name__ == "__main__":
    main()
