"""The extension loads with and without torch in the process, sharing torch's LibTorch."""

import json
import os
import subprocess
import sys


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _libtorch_paths(pid_maps: str) -> set:
    return {line.split()[-1] for line in pid_maps.splitlines() if "libtorch_cpu.so" in line}


def test_device_report_without_torch():
    report = json.loads(_run("import dupify, json; print(json.dumps(dupify.device_report()))"))
    assert set(report) >= {"cuda_available", "cuda_device_count", "auto_device"}
    assert report["auto_device"] in {"cpu"} | {f"cuda:{i}" for i in range(16)}


def test_one_libtorch_when_torch_is_imported_first_and_after():
    for order in ("import torch, dupify", "import dupify, torch"):
        code = (
            f"{order}; import os; "
            "maps = open('/proc/self/maps').read(); "
            "print(sorted({l.split()[-1] for l in maps.splitlines() if 'libtorch_cpu.so' in l}))"
        )
        paths = eval(_run(code))
        assert len(paths) == 1, (order, paths)
        real = os.path.realpath(paths[0])
        import importlib.util

        torch_dir = os.path.dirname(importlib.util.find_spec("torch").origin)
        assert real == os.path.realpath(os.path.join(torch_dir, "lib", "libtorch_cpu.so"))


def test_cuda_visibility_matches_torch():
    ours, theirs = _run(
        "import torch, dupify; print(dupify.device_report()['cuda_available'], torch.cuda.is_available())"
    ).split()
    assert ours == theirs
