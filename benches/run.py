#!/usr/bin/env python3
"""Runs Dupify's benchmarks and their peers in one invocation, alternating, and prints ratios.

Each comparison in the suite (`benches/suite.json`, or `--suite FILE`) names a criterion
benchmark of ours (bench target + benchmark id, which must declare `Throughput::Elements`) and,
optionally, a peer script in `benches/peers/` doing the same work with the tools a user would
otherwise pick. The peer prints, as its last line, a JSON object `{"<metric>": <items per
second>, ...}`. For every repetition, each comparison runs ours then its peer, on the same
machine with the same thread count (a criterion run or peer run shared by several comparisons
of the same repetition runs once). The table shows the median throughput of each and the
ratio ours / peer (higher is better for us); a comparison without a peer is reported alone.
A peak-memory row (`benches/src/bin/peak_memory.rs`: a 1,000-image batch, streamed vs
decode-everything-first) runs once at the end unless `--no-memory`.

Results go to `benches/results/<date>-<host>.json` (or `--out-dir`) with the machine
description. Absolute numbers on shared machines lie; ratios measured in the same run are
what we report.

Two ways to find our benchmarks:
* in a checkout (default): `cargo bench -p dupify-benches --bench <name>`;
* packaged (`--bin-dir DIR`, used by `scripts/bench_cuda.sh` on a machine without cargo):
  `DIR/<name> --bench ...`, the criterion binaries built elsewhere.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
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
    m = {
        "host": platform.node(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_gb, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
    }
    try:
        import torch

        m["torch"] = torch.__version__
        if torch.cuda.is_available():
            m["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return m


class Runner:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.bin_dir = Path(args.bin_dir).resolve() if args.bin_dir else None
        if self.bin_dir is None:
            out = subprocess.run(
                ["cargo", "metadata", "--format-version", "1", "--no-deps"],
                cwd=ROOT, capture_output=True, text=True, check=True,
            )
            self.criterion_home = Path(json.loads(out.stdout)["target_directory"]) / "criterion"
        else:
            self.criterion_home = self.bin_dir.parent / "criterion"

    def env(self, threads: int, extra: dict | None = None) -> dict:
        env = dict(os.environ, DUPIFY_BENCH_THREADS=str(threads), RAYON_NUM_THREADS=str(threads),
                   OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                   CRITERION_HOME=str(self.criterion_home))
        env.update(extra or {})
        return env

    def ours(self, c: dict, threads: int) -> tuple[float, dict]:
        """Runs our side of comparison `c`; returns items per second and any extra figures.

        A criterion benchmark (default) yields elements/s from its median; a plain bench
        program (`"kind": "program"`) prints a JSON last line whose `ours_metric` is taken."""
        bench, env = c["bench"], self.env(threads, c.get("env"))
        if c.get("kind") == "program":
            if self.bin_dir is None:
                cmd = ["cargo", "bench", "-q", "-p", "dupify-benches", "--bench", bench]
            else:
                cmd = [str(self.bin_dir / bench), "--bench"]
            out = subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
            res = json.loads([line for line in out.stdout.splitlines() if line.startswith("{")][-1])
            return float(res[c["ours_metric"]]), res
        bench_id = c["id"]
        crit = ["--exact", bench_id, "--noplot"]
        if self.args.quick:
            crit += ["--warm-up-time", "1", "--measurement-time", "3"]
        if self.bin_dir is None:
            cmd = ["cargo", "bench", "-q", "-p", "dupify-benches", "--bench", bench, "--", *crit]
        else:
            cmd = [str(self.bin_dir / bench), "--bench", *crit]
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        base = self.criterion_home / Path(*bench_id.split("/"))
        est = json.loads((base / "new" / "estimates.json").read_text())
        meta = json.loads((base / "new" / "benchmark.json").read_text())
        tp = meta.get("throughput") or {}
        elements = tp.get("Elements") or tp.get("Bytes")
        if not elements:
            raise SystemExit(f"benchmark {bench_id} declares no Throughput::Elements")
        return elements / (est["median"]["point_estimate"] * 1e-9), {}

    def peer(self, script: str, threads: int, extra: list[str], extra_env: dict | None) -> dict:
        out = subprocess.run(
            [sys.executable, str(ROOT / "benches" / "peers" / script), "--threads", str(threads), *extra],
            cwd=ROOT, env=self.env(threads, extra_env), check=True, capture_output=True, text=True,
        )
        last = [line for line in out.stdout.strip().splitlines() if line.startswith("{")][-1]
        return json.loads(last)

    def bench_profile_bin(self, name: str) -> str:
        """The package binary `name` as `cargo bench` builds it (same profile and features as
        the benches; `cargo run --release` would build every dependency a second time)."""
        out = subprocess.run(
            ["cargo", "bench", "-q", "-p", "dupify-benches", "--no-run", "--message-format=json"],
            cwd=ROOT, capture_output=True, text=True, check=True)
        for line in out.stdout.splitlines():
            try:
                m = json.loads(line)
            except ValueError:
                continue
            t = m.get("target", {})
            if (m.get("reason") == "compiler-artifact" and m.get("executable") and t.get("name") == name
                    and "bin" in t.get("kind", []) and not m.get("profile", {}).get("test")):
                return m["executable"]
        raise SystemExit(f"cargo bench --no-run built no binary `{name}`")

    def peak_memory(self, images: int, threads: int) -> dict:
        args = ["--images", str(images)]
        if self.bin_dir is None:
            cmd = [self.bench_profile_bin("peak_memory"), *args]
        else:
            cmd = [str(self.bin_dir / "peak_memory"), *args]
        out = subprocess.run(cmd, cwd=ROOT, env=self.env(threads), check=True,
                             capture_output=True, text=True)
        return json.loads([line for line in out.stdout.splitlines() if line.startswith("{")][-1])


class GpuSampler:
    """Samples `nvidia-smi` GPU utilisation (%) while a run is in progress."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.proc = None
        self.thread = None

    def __enter__(self) -> "GpuSampler":
        if shutil.which("nvidia-smi"):
            self.proc = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                 "-i", "0", "-lms", "200"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self.thread = threading.Thread(target=self._read, daemon=True)
            self.thread.start()
        return self

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                self.samples.append(float(line.strip()))
            except ValueError:
                pass

    def __exit__(self, *exc) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait()
            self.thread.join(timeout=2)

    def summary(self) -> dict | None:
        if not self.samples:
            return None
        busy = [s for s in self.samples if s > 0]
        return {"mean": statistics.fmean(self.samples), "max": max(self.samples),
                "mean_while_busy": statistics.fmean(busy) if busy else 0.0,
                "samples": len(self.samples)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="comparisons to run (default: all in the suite)")
    ap.add_argument("--suite", default=str(SUITE), help="suite JSON (default: benches/suite.json)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--quick", action="store_true", help="shorter criterion measurement")
    ap.add_argument("--bin-dir", help="run packaged criterion binaries from this folder, not cargo")
    ap.add_argument("--out-dir", default=str(ROOT / "benches" / "results"))
    ap.add_argument("--memory-images", type=int, default=1000)
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory row")
    ap.add_argument("--gpu-util", action="store_true",
                    help="sample nvidia-smi utilisation during comparisons marked \"gpu\": true")
    args = ap.parse_args()

    suite = json.loads(Path(args.suite).read_text())
    todo = [c for c in suite if not args.names or c["name"] in args.names]
    if not todo:
        raise SystemExit(f"no comparison named {args.names}; have {[c['name'] for c in suite]}")
    runner = Runner(args)
    # Inputs some comparisons need made first (e.g. large photos): each script once.
    for script in dict.fromkeys(c["setup"] for c in todo if c.get("setup")):
        subprocess.run([sys.executable, str(ROOT / "benches" / script)], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
    ours_runs: dict = {c["name"]: [] for c in todo}
    ours_extra: dict = {}
    peer_runs: dict = {c["name"]: [] for c in todo}
    gpu: dict = {c["name"]: [] for c in todo}
    for rep in range(args.reps):
        ours_cache: dict = {}
        peer_cache: dict = {}
        for c in todo:
            if rep >= c.get("max_reps", args.reps):
                continue
            threads = c.get("threads", args.threads)
            env = c.get("env") or {}
            key = (c["bench"], c.get("id", ""), threads, json.dumps(env, sort_keys=True))
            if key not in ours_cache:
                with GpuSampler() if (args.gpu_util and c.get("gpu")) else _Null() as g:
                    ours_cache[key] = runner.ours(c, threads)
                if isinstance(g, GpuSampler) and g.summary():
                    gpu[c["name"]].append({"ours": g.summary()})
            value, extra = ours_cache[key]
            ours_runs[c["name"]].append(value)
            if extra:
                ours_extra.setdefault(c["name"], []).append(extra)
            if c.get("peer"):
                pkey = (c["peer"], threads, tuple(c.get("peer_args", [])), json.dumps(env, sort_keys=True))
                if pkey not in peer_cache:
                    with GpuSampler() if (args.gpu_util and c.get("gpu")) else _Null() as g:
                        peer_cache[pkey] = runner.peer(c["peer"], threads, c.get("peer_args", []), env)
                    if isinstance(g, GpuSampler) and g.summary():
                        gpu[c["name"]].append({"peer": g.summary()})
                peer_runs[c["name"]].append(float(peer_cache[pkey][c["metric"]]))
            print(f"[rep {rep + 1}/{args.reps}] {c['name']}: ours {ours_runs[c['name']][-1]:.1f}"
                  + (f" vs peer {peer_runs[c['name']][-1]:.1f}" if c.get("peer") else ""),
                  file=sys.stderr)

    rows = []
    for c in todo:
        ours, peer = ours_runs[c["name"]], peer_runs[c["name"]]
        row = {
            "name": c["name"], "what": c.get("what", ""),
            "peer_name": c.get("peer_name", c.get("peer", "")),
            "threads": c.get("threads", args.threads), "unit": c.get("unit", "items/s"),
            "ours": ours, "peer": peer,
            "ours_median": statistics.median(ours),
            "peer_median": statistics.median(peer) if peer else None,
            "target": c.get("target"), "target_abs": c.get("target_abs"),
        }
        row["ratio"] = row["ours_median"] / row["peer_median"] if peer else None
        if c["name"] in ours_extra:
            row["ours_details"] = ours_extra[c["name"]]
        if gpu[c["name"]]:
            row["gpu_utilisation_pct"] = gpu[c["name"]]
        rows.append(row)

    memory = None
    if not args.no_memory:
        print(f"peak memory: {args.memory_images}-image batch …", file=sys.stderr)
        memory = runner.peak_memory(args.memory_images, args.threads)

    m = machine()
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    print(f"\n{stamp}, {m['cpu']} ({m['cores']} cores{', ' + m['gpu'] if m.get('gpu') else ''}), "
          f"{args.reps} reps, medians")
    print("\n| comparison | threads | ours | peer | peer | ours / peer | target |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        tgt = (f"≥ {r['target']}×" if r["target"] else
               f"≥ {r['target_abs']:,} {r['unit']}" if r["target_abs"] else "")
        peer_v = f"{r['peer_median']:.1f} {r['unit']}" if r["peer_median"] is not None else "—"
        ratio = f"{r['ratio']:.2f}×" if r["ratio"] is not None else "—"
        print(f"| {r['name']} | {r['threads']} | {r['ours_median']:.1f} {r['unit']} | "
              f"{r['peer_name'] or '—'} | {peer_v} | {ratio} | {tgt} |")
    for r in rows:
        for g in r.get("gpu_utilisation_pct", []):
            for who, s in g.items():
                print(f"GPU utilisation, {r['name']} ({who}): mean {s['mean']:.0f}%, "
                      f"while busy {s['mean_while_busy']:.0f}%, max {s['max']:.0f}%")
    if memory:
        print(f"\npeak memory, {memory['images']}-image batch ({memory['ops']}):")
        print("| mode | images | seconds | VmHWM after model load (MiB) | VmHWM at end (MiB) |")
        print("|---|---|---|---|---|")
        for run in memory["runs"]:
            print(f"| {run['mode']} | {run['images']} | {run['seconds']:.1f} | "
                  f"{run['hwm_after_load_mib']:.0f} | {run['hwm_end_mib']:.0f} |")
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{stamp}-{m['host']}.json"
    out.write_text(json.dumps({"date": stamp, "machine": m, "reps": args.reps, "quick": args.quick,
                               "suite": Path(args.suite).name, "results": rows,
                               "peak_memory": memory}, indent=2))
    print(f"\nwritten {out}  ({m['cpu']}, {m['cores']} cores)")


class _Null:
    def __enter__(self) -> "_Null":
        return self

    def __exit__(self, *exc) -> None:
        return None


if __name__ == "__main__":
    main()
