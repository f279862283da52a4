"""The ``dupify.DupifyError`` hierarchy.

Every error raised by dupify is a :class:`DupifyError` carrying the hosted API's error
``code`` (``invalid_parameter``, ``unsupported_format``, ``invalid_api_key``, …), the HTTP
``http_status`` the hosted API answers it with, and a clear message. Subclasses group codes by
what a caller does about them; input errors are also ``ValueError``\\ s and ``not_found`` a
``LookupError``, so generic handlers keep working.
"""

from __future__ import annotations

from typing import Dict, Optional, Type

__all__ = [
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


class DupifyError(Exception):
    """Base class of every dupify error.

    Attributes:
        code: the hosted API's error code, e.g. ``"invalid_parameter"``.
        http_status: the HTTP status the hosted API answers this error with.
        message: the human-readable message (also ``str(error)``).
        retry_after_secs: seconds to wait before retrying (rate limits only).
        headers: rate-limit response headers (``X-RateLimit-*``), for rate limits only.
    """

    def __init__(
        self,
        message: str,
        code: str = "internal_error",
        http_status: int = 500,
        retry_after_secs: Optional[int] = None,
        headers: Optional[Dict[str, str]] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status
        self.retry_after_secs = retry_after_secs
        self.headers = dict(headers) if headers else {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"

    def to_dict(self) -> dict:
        """The hosted API's error body: ``{"error": {"code": …, "message": …}}``."""
        return {"error": {"code": self.code, "message": self.message}}


class InvalidRequestError(DupifyError, ValueError):
    """A parameter is missing or invalid (``missing_parameter``, ``invalid_parameter``), or
    the request itself is refused by a server (``payload_too_large``, ``method_not_allowed``,
    ``request_timeout``)."""


class ImageError(DupifyError, ValueError):
    """The image could not be used: ``invalid_base64``, ``unsupported_format``,
    ``image_processing_failed`` (too large, corrupt, zero-sized), ``invalid_image_url``,
    ``image_fetch_failed``."""


class AuthenticationError(DupifyError):
    """No usable API key: ``missing_api_key``, ``invalid_api_key``, ``expired_api_key`` (401)."""


class PermissionDeniedError(DupifyError):
    """The key lacks a scope the operation needs: ``insufficient_scope`` (403)."""


class RateLimitError(DupifyError):
    """``rate_limit_exceeded`` (429) or ``quota_exceeded`` (403, until the monthly reset);
    see ``retry_after_secs``."""


class NotFoundError(DupifyError, LookupError):
    """A product or key does not exist: ``not_found`` (404)."""


class ConflictError(DupifyError):
    """A write would break a uniqueness rule: ``conflict`` (409)."""


class NotAvailableError(DupifyError):
    """An operation needs something this extractor does not have (a model, a feature):
    ``not_available`` (501)."""


class ModelError(DupifyError):
    """A model or attribute head could not be loaded: ``model_error``."""


class CancelledError(DupifyError):
    """The operation was cancelled through a ``CancelToken``: ``cancelled``."""


class InternalError(DupifyError):
    """A bug or an unexpected state: ``internal_error``."""


_BY_CODE: Dict[str, Type[DupifyError]] = {
    "missing_parameter": InvalidRequestError,
    "invalid_parameter": InvalidRequestError,
    "payload_too_large": InvalidRequestError,
    "method_not_allowed": InvalidRequestError,
    "request_timeout": InvalidRequestError,
    "invalid_base64": ImageError,
    "unsupported_format": ImageError,
    "image_processing_failed": ImageError,
    "invalid_image_url": ImageError,
    "image_fetch_failed": ImageError,
    "missing_api_key": AuthenticationError,
    "invalid_api_key": AuthenticationError,
    "expired_api_key": AuthenticationError,
    "insufficient_scope": PermissionDeniedError,
    "rate_limit_exceeded": RateLimitError,
    "quota_exceeded": RateLimitError,
    "not_found": NotFoundError,
    "conflict": ConflictError,
    "not_available": NotAvailableError,
    "model_error": ModelError,
    "cancelled": CancelledError,
    "internal_error": InternalError,
}


def _from_native(
    code: str,
    message: str,
    http_status: int,
    retry_after_secs: Optional[int],
    headers: Optional[Dict[str, str]],
) -> DupifyError:
    """Builds the exception for a native error (called by the extension module)."""
    cls = _BY_CODE.get(code, DupifyError)
    return cls(message, code, http_status, retry_after_secs, headers)
