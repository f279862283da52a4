"""Dupify: product-image features and dupe search, running in-process.

* :class:`Extractor` — CLIP image/text embeddings, dominant colours, silhouette, cut-out,
  attributes and quality, one image or a batch (with progress and cancellation).
* :class:`Catalog` — products with their features in SQLite, ANN search, dupes with filters.
* :class:`KeyStore` — API keys, request authentication, scopes, rate limits and quotas.

Images are ``bytes``, a path (``str`` / ``pathlib.Path``), :class:`Base64` text (or a
``data:`` URL string), a numpy ``uint8`` H×W×3 / H×W×4 array, or a PIL image. Errors are
:class:`DupifyError` subclasses carrying the hosted API's ``code``. All logic lives in the
Rust crates; this package only converts between Python and Rust types, and every heavy call
releases the GIL.
"""

from __future__ import annotations

from . import _libtorch

# Before anything imports the extension: it needs the torch package's LibTorch loaded.
_libtorch.load()

from . import errors  # noqa: E402
from ._dupify import (  # noqa: E402
    AttributePrediction,
    AttributeReport,
    Base64,
    BoundingBox,
    CancelToken,
    Catalog,
    ChannelScores,
    ColorReport,
    CreatedKey,
    DominantColor,
    Extractor,
    Features,
    IndexReport,
    IngestFailure,
    IngestReport,
    KeyRecord,
    KeyStore,
    KeyUsage,
    LabelScore,
    Limits,
    ListPage,
    ManualClock,
    Namespace,
    ParsedKey,
    Principal,
    Product,
    QualityScore,
    RateDecision,
    RateHeaders,
    SearchHit,
    Silhouette,
    UsageCounts,
    __version__,
    decode,
    delta_e2000,
    default_model_dir,
    device_report,
    palette_distance,
    parse_key,
    shape_similarity,
)
from .errors import (  # noqa: E402
    AuthenticationError,
    CancelledError,
    ConflictError,
    DupifyError,
    ImageError,
    InternalError,
    InvalidRequestError,
    ModelError,
    NotAvailableError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)

__all__ = [
    "__version__",
    # extraction
    "Extractor",
    "CancelToken",
    "Base64",
    "Features",
    "ColorReport",
    "DominantColor",
    "Silhouette",
    "BoundingBox",
    "QualityScore",
    "AttributeReport",
    "AttributePrediction",
    "LabelScore",
    "decode",
    "palette_distance",
    "delta_e2000",
    "shape_similarity",
    "default_model_dir",
    "device_report",
    # catalog
    "Catalog",
    "Namespace",
    "Product",
    "SearchHit",
    "ChannelScores",
    "ListPage",
    "IndexReport",
    "IngestReport",
    "IngestFailure",
    # keys
    "KeyStore",
    "Limits",
    "ManualClock",
    "KeyRecord",
    "CreatedKey",
    "Principal",
    "RateDecision",
    "RateHeaders",
    "KeyUsage",
    "UsageCounts",
    "ParsedKey",
    "parse_key",
    # errors
    "errors",
    "DupifyError",
    "InvalidRequestError",
    "ImageError",
    "AuthenticationError",
    "PermissionDeniedError",
    "RateLimitError",
    "NotFoundError",
    "ConflictError",
    "NotAvailableError",
    "ModelError",
    "CancelledError",
    "InternalError",
]
