"""What the client and any transport share: request bodies, responses, the Transport protocol.

Kept apart from the real transport so a test transport (or another implementation) needs
nothing of http.client.
"""

from __future__ import annotations

import http.client
from collections.abc import Callable, Iterable, Mapping
from typing import IO, BinaryIO, Final, Protocol, runtime_checkable

from yardarm.errors import TransportError, redact_url

__all__ = [
    "ERROR_BODY_LIMIT",
    "Body",
    "Headers",
    "Response",
    "Transport",
    "body_position",
    "rewind_body",
]

#: Error bodies are read at most this far: a hostile registry cannot make us buffer gigabytes.
ERROR_BODY_LIMIT: Final = 64 * 1024
_BLOCK: Final = 1024 * 1024
_DRAIN_LIMIT: Final = 256 * 1024  # read this much of an unread body to keep the connection

#: A request body: nothing, bytes, a binary file (seekable files can be replayed), or chunks.
Body = bytes | bytearray | memoryview | IO[bytes] | BinaryIO | Iterable[bytes] | None


class Headers:
    """Case-insensitive, multi-valued response headers (the part of a Message we use)."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] | Mapping[str, str] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        self._items: list[tuple[str, str]] = [(k.lower(), v) for k, v in pairs]

    def get(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for k, v in self._items:
            if k == name:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self._items if k == name]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __repr__(self) -> str:
        # Only names: values may be tokens or signed URLs.
        return f"Headers({sorted({k for k, _ in self._items})})"


class Response:
    """A response whose body is read lazily; closing it gives the connection back to the pool."""

    def __init__(
        self,
        status: int,
        headers: Headers | Mapping[str, str],
        body: bytes | IO[bytes] | None = None,
        *,
        url: str = "",
        reason: str = "",
        on_close: Callable[[bool], None] | None = None,
    ) -> None:
        self.status = status
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.url = url
        self.reason = reason
        self._raw: IO[bytes] | None = None
        self._buf = b""
        if isinstance(body, bytes | bytearray):
            self._buf = bytes(body)
        elif body is not None:
            self._raw = body
        self._on_close = on_close
        self._eof = self._raw is None and not self._buf
        self._closed = False

    def read(self, n: int = -1) -> bytes:
        if self._buf:
            if n < 0 or n >= len(self._buf):
                data, self._buf = self._buf, b""
                if n < 0 and self._raw is not None:
                    data += self._read_raw(-1)
            else:
                data, self._buf = self._buf[:n], self._buf[n:]
            if not self._buf and self._raw is None:
                self._eof = True
            return data
        if self._raw is None:
            self._eof = True
            return b""
        return self._read_raw(n)

    def _read_raw(self, n: int) -> bytes:
        assert self._raw is not None
        try:
            data = self._raw.read() if n < 0 else self._raw.read(n)
        except (OSError, http.client.HTTPException) as exc:
            self._finish(reusable=False)
            raise TransportError(f"reading the response failed: {exc}", url=self.url) from exc
        if n < 0 or (n > 0 and not data):
            self._eof = True
        return data

    def read_capped(self, limit: int = ERROR_BODY_LIMIT) -> bytes:
        """Read at most ``limit`` bytes and close: for error and JSON bodies of unknown size."""
        out = bytearray()
        while len(out) < limit:
            chunk = self.read(min(_BLOCK, limit - len(out)))
            if not chunk:
                break
            out += chunk
        self.close()
        return bytes(out)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if self._closed:
            return
        if not self._eof and getattr(self._raw, "isclosed", lambda: False)():
            self._eof = True  # every byte was read, only the empty read that says so was not
        if not self._eof and self._raw is not None:
            # A small unread rest (an error JSON we skipped) is worth draining to keep alive.
            length = self.headers.get("content-length")
            if length is not None and length.isdigit() and int(length) <= _DRAIN_LIMIT:
                try:
                    self._raw.read()
                    self._eof = True
                except (OSError, http.client.HTTPException):
                    pass
        self._finish(reusable=self._eof)

    def _finish(self, *, reusable: bool) -> None:
        if self._closed:
            return
        self._closed = True
        if self._on_close is not None:
            self._on_close(reusable)

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Response({self.status}, {redact_url(self.url)!r})"


@runtime_checkable
class Transport(Protocol):
    """What the client needs from HTTP; redirects and auth are the client's business."""

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: Body = None,
        *,
        length: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Response:
        """Send one request; raise TransportError (with ``bytes_sent``) if the network fails."""
        ...

    def close(self) -> None: ...


def body_position(body: Body) -> int | None:
    """Where a replayable body starts (0 for bytes), or None if it cannot be sent again."""
    if body is None or isinstance(body, bytes | bytearray | memoryview):
        return 0
    try:
        if getattr(body, "seekable")():  # noqa: B009 - Iterable has no seekable for mypy
            return int(getattr(body, "tell")())  # noqa: B009
    except (AttributeError, OSError, ValueError):
        pass
    return None


def rewind_body(
    body: Body, start: int | None, progress: Callable[[int], None] | None = None
) -> bool:
    """Put a body back to ``start`` for a resend; False if it cannot be replayed.

    A progress callback with a ``rewound()`` method hears of it, so resent bytes are not
    counted twice.
    """
    if start is None:
        return False
    if body is not None and not isinstance(body, bytes | bytearray | memoryview):
        try:
            getattr(body, "seek")(start)  # noqa: B009
        except (AttributeError, OSError, ValueError):
            return False
    rewound = getattr(progress, "rewound", None)
    if rewound is not None:
        rewound()
    return True
