"""Every non-success response passes through here and becomes one typed error.

The registry's JSON error code decides the class (so the upload manager can tell a dead session
from a missing blob), the status decides whether trying again may help.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Final

from yardarm.errors import (
    AuthenticationError,
    DeniedError,
    NotFoundError,
    RegistryError,
    TooManyRequests,
    UploadInvalid,
)
from yardarm.registry.transport import ERROR_BODY_LIMIT, Response

__all__ = ["KNOWN_CODES", "error_from_response", "parse_retry_after"]

KNOWN_CODES: Final = frozenset(
    {
        "BLOB_UNKNOWN",
        "BLOB_UPLOAD_INVALID",
        "BLOB_UPLOAD_UNKNOWN",
        "DIGEST_INVALID",
        "MANIFEST_BLOB_UNKNOWN",
        "MANIFEST_INVALID",
        "MANIFEST_UNKNOWN",
        "MANIFEST_UNVERIFIED",
        "NAME_INVALID",
        "NAME_UNKNOWN",
        "SIZE_INVALID",
        "TAG_INVALID",
        "UNAUTHORIZED",
        "DENIED",
        "UNSUPPORTED",
        "TOOMANYREQUESTS",
        "UNKNOWN",
        "UNAVAILABLE",
    }
)
_NOT_FOUND: Final = frozenset({"BLOB_UNKNOWN", "MANIFEST_UNKNOWN", "NAME_UNKNOWN"})
_UPLOAD_DEAD: Final = frozenset({"BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN"})
_MAX_RETRY_AFTER: Final = 600.0


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Retry-After as seconds: an integer, or an HTTP date (seconds from now, never negative)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit() also accepts '²', which float() refuses
        return min(float(value), _MAX_RETRY_AFTER)
    try:
        import email.utils  # rare (HTTP-date Retry-After); keeps start-up light

        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return min(max(when.timestamp() - now(), 0.0), _MAX_RETRY_AFTER)


def _first_error(raw: bytes) -> tuple[str, str, object]:
    try:
        doc = json.loads(raw)
    except ValueError:
        return "", "", None
    if not isinstance(doc, dict):
        return "", "", None
    errors = doc.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        code = first.get("code")
        message = first.get("message")
        return (
            code.upper() if isinstance(code, str) else "",
            message[:500] if isinstance(message, str) else "",
            first.get("detail"),
        )
    return "", "", None


def error_from_response(
    resp: Response,
    method: str,
    url: str,
    *,
    repository: str = "",
    now: Callable[[], float] = time.time,
) -> RegistryError:
    """Read the (capped) body, close the response, and build the right exception."""
    raw = b"" if method == "HEAD" else resp.read_capped(ERROR_BODY_LIMIT)
    resp.close()
    code, message, detail = _first_error(raw)
    status = resp.status
    if not message and not code:
        message = resp.reason or f"HTTP {status}"
    kwargs = {"detail": detail, "method": method, "url": url, "repository": repository}
    if status == 429 or code == "TOOMANYREQUESTS":
        retry_after = parse_retry_after(resp.headers.get("retry-after"), now)
        return TooManyRequests(
            status, code or "TOOMANYREQUESTS", message, retry_after=retry_after, **kwargs
        )
    if code in _UPLOAD_DEAD:
        return UploadInvalid(status, code, message, **kwargs)  # type: ignore[arg-type]
    if status == 403 or code == "DENIED":
        return DeniedError(status, code or "DENIED", message, **kwargs)  # type: ignore[arg-type]
    if status == 401:
        return AuthenticationError(status, code or "UNAUTHORIZED", message, **kwargs)  # type: ignore[arg-type]
    if code in _NOT_FOUND or (status == 404 and not code):
        return NotFoundError(status, code, message, **kwargs)  # type: ignore[arg-type]
    error = RegistryError(status, code, message, **kwargs)  # type: ignore[arg-type]
    if status in (500, 502, 503, 504):
        error.retry_after = parse_retry_after(resp.headers.get("retry-after"), now)  # type: ignore[attr-defined]
    return error
