"""Dupify: product-image features and dupe search, running in-process.

All logic lives in the Rust crates; this package only converts between Python and Rust types.
"""

from __future__ import annotations

import json as _json

from . import _dupify
from ._dupify import __version__

__all__ = ["__version__", "device_report"]


def device_report() -> dict:
    """What LibTorch sees in this process: CUDA availability, device count, the `auto` device."""
    return _json.loads(_dupify.device_report())
