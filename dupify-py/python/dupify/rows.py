"""Extraction results as columns: the row layout shared by every batch engine.

:mod:`dupify.ray` (Ray Data) and the Spark recipe (``examples/spark_extract.py``) both turn
a batch of image bytes into these columns, so a Parquet file written by one reads like one
written by the other, and :func:`dupify.ray.rows_to_items` stores either in a catalog:

* ``content_hash``: SHA-256 hex of the bytes (also for failed rows: de-duplication, resume);
* ``embedding``: the image embedding (a list of float32), ``None`` without one;
* ``features``: the core's features JSON without the embedding and cut-out (colours,
  silhouette, attributes, quality, model, size), ``None`` for a failed row;
* ``model``: the model id; ``error`` / ``error_code``: ``None`` on success, else the message
  and the hosted API's error code. One bad image never fails its batch.

No dependency beyond the module itself: usable from any engine's workers.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, List, Optional, Sequence

import dupify

#: The columns :func:`extract_columns` returns, in order.
COLUMNS = ("content_hash", "embedding", "features", "model", "error", "error_code")


def content_hash(image: bytes) -> str:
    """The core's content hash of encoded bytes (``Features.content_hash``): SHA-256 hex."""
    return hashlib.sha256(image).hexdigest()


def embeds(ops: str) -> bool:
    """Whether ``ops`` (``embed,colors,…`` or ``all``) asks for the image embedding."""
    return any(op in ("embed", "all") for op in ops.split(","))


def extract_columns(extractor: "dupify.Extractor", images: Sequence[bytes], ops: str) -> Dict[str, List[Any]]:
    """Extracts ``images`` (encoded bytes) as one batch and returns the columns above."""
    model: Optional[str] = extractor.model_id if embeds(ops) else None
    cols: Dict[str, List[Any]] = {c: [] for c in COLUMNS}
    for image, r in zip(images, extractor.extract_batch(list(images), ops)):
        cols["content_hash"].append(content_hash(image))
        if isinstance(r, dupify.Features):
            d = r.to_dict()
            emb = d.pop("embedding", None)
            d.pop("cutout_png", None)
            cols["embedding"].append(emb)
            cols["features"].append(json.dumps(d, separators=(",", ":")))
            cols["model"].append(d.get("model") or model)
            cols["error"].append(None)
            cols["error_code"].append(None)
        else:
            cols["embedding"].append(None)
            cols["features"].append(None)
            cols["model"].append(model)
            cols["error"].append(str(r))
            cols["error_code"].append(getattr(r, "code", "internal_error"))
    return cols


def to_features(row: Dict[str, Any]) -> "dupify.Features":
    """The core's :class:`dupify.Features` of a successful row (embedding put back)."""
    d = json.loads(row["features"])
    if row.get("embedding") is not None:
        d["embedding"] = [float(v) for v in row["embedding"]]
    return dupify.Features.from_json(json.dumps(d))
