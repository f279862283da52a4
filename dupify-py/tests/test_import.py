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


def test_libtorch_of_the_installed_torch_is_loaded_before_the_extension():
    info = json.loads(_run("import dupify, json; print(json.dumps(dupify._libtorch.info))"))
    import importlib.util

    torch_dir = os.path.dirname(importlib.util.find_spec("torch").origin)
    assert info["dir"] == torch_dir
    assert info["version"].startswith("2.11")
    assert info["libraries"][:2] == [
        os.path.join(torch_dir, "lib", "libc10.so"),
        os.path.join(torch_dir, "lib", "libtorch_cpu.so"),
    ]


def test_a_torch_of_another_version_is_refused_with_what_to_install(tmp_path):
    fake = tmp_path / "torch"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "version.py").write_text("__version__ = '2.10.0+cpu'\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", "import dupify"], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode != 0
    assert "ImportError: dupify was built against LibTorch 2.11 and cannot use the torch 2.10.0+cpu" in out.stderr
    assert "pip install torch==2.11.0" in out.stderr
