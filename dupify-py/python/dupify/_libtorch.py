"""Loads the LibTorch of the installed ``torch`` package before the extension module.

The extension links LibTorch 2.11 but carries no path of the machine that built it. This
finds the ``torch`` package without importing it (importing torch takes seconds), refuses a
torch of another version with a message that says what to install, and loads its
``libc10.so`` and ``libtorch_cpu.so`` (and ``libtorch_cuda.so`` when that wheel has it, which
registers CUDA). The extension's load-time dependencies then resolve to these libraries by
name: one LibTorch per process, the same one a later ``import torch`` uses.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import re
import sys

#: The LibTorch minor series the extension was built against (tch 0.24 pairs with 2.11).
LIBTORCH_SERIES = "2.11"

#: Where LibTorch was found: ``{"dir", "lib", "version", "libraries"}``, set by :func:`load`.
info: dict = {}

_handles: list = []


def _torch_version(torch_dir: str) -> str | None:
    try:
        with open(os.path.join(torch_dir, "version.py"), encoding="utf-8") as f:
            m = re.search(r"__version__\s*=\s*['\"]([^'\"]+)['\"]", f.read())
    except OSError:
        return None
    return m.group(1) if m else None


def load() -> dict:
    """Finds, checks and loads the LibTorch of ``torch``; idempotent."""
    if info:
        return info
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.origin:
        raise ImportError(
            f"dupify needs the torch package, version {LIBTORCH_SERIES}: "
            f"pip install torch=={LIBTORCH_SERIES}.0"
        )
    torch_dir = os.path.dirname(spec.origin)
    version = _torch_version(torch_dir)
    if version is None or not (version == LIBTORCH_SERIES or version.startswith(LIBTORCH_SERIES + ".")):
        raise ImportError(
            f"dupify was built against LibTorch {LIBTORCH_SERIES} and cannot use the torch "
            f"{version or '(unknown version)'} at {torch_dir}: "
            f"pip install torch=={LIBTORCH_SERIES}.0"
        )
    lib = os.path.join(torch_dir, "lib")
    libraries = []
    if sys.platform.startswith("linux"):
        for name in ("libc10.so", "libtorch_cpu.so", "libtorch_cuda.so"):
            path = os.path.join(lib, name)
            if name == "libtorch_cuda.so" and not os.path.exists(path):
                continue
            try:
                _handles.append(ctypes.CDLL(path, mode=os.RTLD_NOW | os.RTLD_LOCAL))
            except OSError as e:
                raise ImportError(f"dupify could not load LibTorch from {lib}: {e}") from e
            libraries.append(path)
    info.update(dir=torch_dir, lib=lib, version=version, libraries=libraries)
    return info
