"""The one exception tree of yardarm.

Every error the library raises on purpose is a ``YardarmError``; the CLI turns each into a
one-line message and an exit code, so nothing below should need a traceback to be understood.
Messages never contain credentials: URLs are passed through :func:`redact_url` first.

::

    YardarmError
    ├── UsageError                   bad arguments or options (CLI exit 2)
    ├── InvalidReference(ValueError) a name, tag or digest that breaks the grammar
    ├── InvalidDigest(ValueError)    malformed or unsupported digest string
    ├── DigestMismatch               content does not hash to what it claimed
    ├── SizeMismatch                 content is not as long as it claimed
    ├── ManifestError(ValueError)    a manifest, index or config that cannot be used
    ├── StoreError                   the local image store
    │   ├── ImageNotFound            no such tag, digest or image ID in the store
    │   ├── LayerNotFound            a layer the image needs is not in the store
    │   ├── ImportError_             an archive or layout that cannot be loaded
    │   │   └── UnsafeArchive        a member that would escape its archive
    │   └── StoreCorrupt             the store's own files are damaged
    ├── CredentialError              docker config or credential helper problems
    ├── TransportError               the network: connect, TLS, timeouts, cut connections
    │   ├── TLSError                 certificate verification failed
    │   └── RedirectError            a redirect we refuse to follow
    ├── RegistryError                the registry answered with an error (status, code, ...)
    │   ├── AuthenticationError      401: no or wrong credentials
    │   ├── DeniedError              403 / DENIED: credentials fine, permission missing
    │   ├── NotFoundError            404 family: BLOB_UNKNOWN, MANIFEST_UNKNOWN, NAME_UNKNOWN
    │   ├── UploadInvalid            BLOB_UPLOAD_INVALID / BLOB_UPLOAD_UNKNOWN: session is dead
    │   └── TooManyRequests          429 (carries retry_after)
    ├── ProtocolError                the registry broke the protocol (bad JSON, wrong digest)
    ├── PushError                    a push that cannot finish (after retries)
    └── Cancelled                    the user interrupted (CLI exit 130)
"""

from __future__ import annotations

import re
import urllib.parse

__all__ = [
    "AuthenticationError",
    "Cancelled",
    "CredentialError",
    "DeniedError",
    "DigestMismatch",
    "ImageNotFound",
    "ImportError_",
    "InvalidDigest",
    "InvalidReference",
    "LayerNotFound",
    "ManifestError",
    "NotFoundError",
    "ProtocolError",
    "PushError",
    "RedirectError",
    "RegistryError",
    "SizeMismatch",
    "StoreCorrupt",
    "StoreError",
    "TLSError",
    "TooManyRequests",
    "TransportError",
    "UnsafeArchive",
    "UploadInvalid",
    "UsageError",
    "YardarmError",
    "redact_url",
]

# Query parameters that may carry secrets (tokens in signed URLs, S3/GCS signatures).
_SECRET_QUERY = re.compile(
    r"(?i)^(access_token|token|signature|sig|x-amz-signature|x-amz-credential|"
    r"x-amz-security-token|x-goog-signature|x-goog-credential|password|_state|refresh_token)$"
)


def redact_url(url: str) -> str:
    """Return ``url`` safe for messages: no userinfo, secret-looking query values masked.

    The upload ``_state`` is masked too: it is not a credential but it is long and useless to a
    reader, and signed blob URLs from storage back ends put real credentials in the query.
    """
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if query:
        masked = [(k, "REDACTED" if _SECRET_QUERY.match(k) else v) for k, v in query]
        q = urllib.parse.urlencode(masked, safe=":/")
    else:
        q = parts.query
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, q, ""))


class YardarmError(Exception):
    """Base of every error yardarm raises on purpose."""

    #: Whether trying the same operation again may succeed.
    temporary: bool = False


class UsageError(YardarmError):
    """The caller asked for something that makes no sense (CLI exit code 2)."""


class InvalidReference(YardarmError, ValueError):
    """A reference that breaks the distribution grammar; the message says which part."""


class InvalidDigest(YardarmError, ValueError):
    """A digest string that is malformed or uses an algorithm we do not support."""


class DigestMismatch(YardarmError):
    """Content hashed to something other than it claimed: never trust such content."""

    def __init__(self, expected: str, actual: str, what: str = "content") -> None:
        super().__init__(f"{what}: digest mismatch: expected {expected}, got {actual}")
        self.expected = expected
        self.actual = actual


class SizeMismatch(YardarmError):
    """Content is not as long as its descriptor said."""

    def __init__(self, expected: int, actual: int, what: str = "content") -> None:
        super().__init__(f"{what}: size mismatch: expected {expected} bytes, got {actual}")
        self.expected = expected
        self.actual = actual


class ManifestError(YardarmError, ValueError):
    """A manifest, index or image config that cannot be parsed or used."""


class StoreError(YardarmError):
    """Something about the local image store."""


class ImageNotFound(StoreError):
    """No image for that tag, digest or ID in the local store."""


class LayerNotFound(StoreError):
    """A layer an image needs is missing from the local store."""


class ImportError_(StoreError):  # noqa: N801 - trailing underscore avoids the builtin
    """An archive or layout that cannot be loaded; the message names the file and the fault."""


class UnsafeArchive(ImportError_):
    """An archive member whose name or link would land outside the archive."""


class StoreCorrupt(StoreError):
    """The store's own files do not match its database."""


class CredentialError(YardarmError):
    """The docker config file or a credential helper failed; never carries the secret."""


class TransportError(YardarmError):
    """The network failed us: connect, TLS handshake, timeouts, cut connections."""

    temporary = True

    def __init__(
        self, message: str, *, method: str = "", url: str = "", bytes_sent: int | None = None
    ) -> None:
        self.method = method
        self.url = redact_url(url) if url else ""
        #: Body bytes that left us before the failure (None when unknown or no body).
        self.bytes_sent = bytes_sent
        where = f" ({method} {self.url})" if method and self.url else ""
        super().__init__(f"{message}{where}")


class TLSError(TransportError):
    """Certificate verification failed; retrying will not fix it."""

    temporary = False


class RedirectError(TransportError):
    """A redirect we refuse: another scheme, a loop, or too many hops."""

    temporary = False


_TEMPORARY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_TEMPORARY_CODES = frozenset({"TOOMANYREQUESTS", "UNAVAILABLE"})


class RegistryError(YardarmError):
    """The registry answered an error: status, its JSON error code, message and detail."""

    def __init__(
        self,
        status: int,
        code: str = "",
        message: str = "",
        *,
        detail: object = None,
        method: str = "",
        url: str = "",
        repository: str = "",
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail
        self.method = method
        self.url = redact_url(url) if url else ""
        self.repository = repository
        self.temporary = status in _TEMPORARY_STATUS or code in _TEMPORARY_CODES
        super().__init__(self._describe())

    def _describe(self) -> str:
        what = self.message or self.code or "error"
        code = f" {self.code}" if self.code and self.code != what else ""
        where = f" ({self.method} {self.url})" if self.method and self.url else ""
        return f"registry answered {self.status}{code}: {what}{where}"


class AuthenticationError(RegistryError):
    """401: the registry wants credentials we do not have, or rejected the ones we sent."""


class DeniedError(RegistryError):
    """403 or DENIED: authenticated, but not allowed to do this to this repository."""

    def _describe(self) -> str:
        repo = f" to {self.repository}" if self.repository else ""
        return f"denied: requested access{repo} is not allowed ({self.message or self.code})"


class NotFoundError(RegistryError):
    """The registry does not know that blob, manifest or repository."""


class UploadInvalid(RegistryError):
    """The upload session is dead (BLOB_UPLOAD_INVALID/UNKNOWN): the blob must start again."""


class TooManyRequests(RegistryError):
    """429: slow down; ``retry_after`` is seconds from the Retry-After header, if any."""

    def __init__(self, *args: object, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after
        self.temporary = True


class ProtocolError(YardarmError):
    """The registry broke the protocol: garbage JSON, wrong digest header, missing Location."""


class PushError(YardarmError):
    """A push that could not finish; the message says which layer or manifest and why."""


class Cancelled(YardarmError):
    """The user interrupted the operation; open upload sessions were cancelled."""
