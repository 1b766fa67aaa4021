"""Upload sessions: PATCH chunks after the newest Location, commit with PUT ``?digest=``.

registry 2.8 signs the offset into the ``_state`` query of every ``Location`` and accepts only
the newest one, answers ``Range`` inclusively, and insists on ``application/octet-stream``
bodies. A failure between chunks leaves the session usable (:meth:`BlobUpload.status` says where
to go on); a PATCH cut mid-body kills it there (:class:`~yardarm.errors.UploadInvalid`), while
registries closer to the spec keep the received bytes and report them in ``Range``.
"""

from __future__ import annotations

import io
import logging
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from typing import IO, TYPE_CHECKING, BinaryIO, Final, cast

from yardarm.digest import Digest
from yardarm.errors import (
    NotFoundError,
    ProtocolError,
    TransportError,
    UploadInvalid,
    YardarmError,
)
from yardarm.manifest import Descriptor
from yardarm.registry.transport import Body, Response

if TYPE_CHECKING:
    from yardarm.registry.client import Repository

__all__ = ["OCTET", "BlobUpload", "location_from", "range_end"]

log = logging.getLogger("yardarm.registry")

OCTET: Final = "application/octet-stream"
_READ_BLOCK: Final = 1024 * 1024
#: Seconds between a PATCH cut mid-body and the status request that decides how to go on.
SETTLE_AFTER_CUT: Final = 1.0


class BlobUpload:
    """An open upload session. Not for concurrent use; each blob has its own."""

    def __init__(
        self, repository: Repository, location: str, max_chunk_size: int | None = None
    ) -> None:
        self._repo = repository
        self.location = location
        self.offset = 0
        self.max_chunk_size = max_chunk_size
        #: OCI-Chunk-Min-Length from the registry: no chunk but the last may be smaller.
        self.chunk_min = 0
        self._cut_at: float | None = None

    def __repr__(self) -> str:
        return f"BlobUpload({self._repo.name!r}, offset={self.offset})"

    def _chunk_size(self) -> int | None:
        cap = self.max_chunk_size
        if cap is None:
            return None
        return max(cap, self.chunk_min)

    def write(
        self,
        data: IO[bytes] | BinaryIO | Iterable[bytes] | bytes,
        *,
        length: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """PATCH ``data`` after :attr:`offset`; returns bytes the registry acknowledged."""
        reader = _as_reader(data)
        if isinstance(data, bytes | bytearray | memoryview):
            length = len(data)
        cap = self._chunk_size()
        total = 0
        while length is None or total < length:
            want = None if length is None else length - total
            if cap is not None:
                want = cap if want is None else min(cap, want)
            sent = self._patch(reader, want, length is not None, progress)
            if sent == 0:
                break
            total += sent
            if cap is None:
                break
        return total

    def _patch(
        self,
        reader: IO[bytes],
        want: int | None,
        exact: bool,
        progress: Callable[[int], None] | None,
    ) -> int:
        """One PATCH of ``want`` bytes (exact: known to exist) or up to ``want`` (streamed)."""
        body: Body
        n: int | None
        if exact and want is not None and _seekable(reader):
            body, n = reader, want
        else:
            # Peek, so an exhausted stream ends without sending an empty PATCH.
            first = reader.read(min(_READ_BLOCK, want) if want is not None else _READ_BLOCK)
            if not first:
                return 0
            rest = None if want is None else want - len(first)
            body = _chain(first, reader, rest)
            n = want if exact else None
        if n == 0:
            return 0
        headers = {"Content-Type": OCTET}
        if n is not None:
            headers["Content-Range"] = f"{self.offset}-{self.offset + n - 1}"
        counted = _Counter(progress)
        try:
            resp = self._repo._call(
                "PATCH", self.location, headers=headers, body=body, length=n, progress=counted,
                ok=(202, 204),
            )  # fmt: skip
        except TransportError as exc:
            if exc.bytes_sent != 0:
                self._cut_at = self._repo._s.clock()
            raise
        with resp:
            expected = self.offset + counted.total
            self._advance(resp, self.location, expected)
            if resp.headers.get("range") is None:
                self.offset = expected
            elif self.offset != expected:
                raise ProtocolError(
                    f"upload to {self._repo.name}: registry acknowledged {self.offset} bytes, "
                    f"{expected} were sent"
                )
        return counted.total

    def _advance(self, resp: Response, url: str, expected: int) -> None:
        if resp.headers.get("location"):
            self.location = location_from(resp, url)
        rng = resp.headers.get("range")
        if rng is not None:
            self.offset = range_end(rng, expected)

    def status(self) -> int:
        """Ask the registry how far it got (GET the newest Location); UploadInvalid if dead.

        After a PATCH cut with body bytes on the wire, wait a moment first: registry 2.8 kills
        the session only when its handler of the cut request finishes, and a status read
        before that would offer a resume whose bytes land next to the dead request's.
        """
        if self._cut_at is not None:
            wait = SETTLE_AFTER_CUT - (self._repo._s.clock() - self._cut_at)
            self._cut_at = None
            if wait > 0:
                self._repo._s.sleep(wait)
        try:
            resp = self._repo._call("GET", self.location, ok=(200, 204), retry=True)
        except NotFoundError as exc:
            raise UploadInvalid(
                exc.status, exc.code or "BLOB_UPLOAD_UNKNOWN", exc.message,
                method="GET", url=self.location, repository=self._repo.name,
            ) from exc  # fmt: skip
        with resp:
            known = self.offset
            self.offset = 0
            self._advance(resp, self.location, known)
        return self.offset

    def commit(
        self,
        digest: Digest,
        data: IO[bytes] | BinaryIO | Iterable[bytes] | bytes | None = None,
        *,
        length: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Descriptor:
        """PUT ``?digest=``, optionally carrying the last (or all) bytes; checks the answer."""
        parts = urllib.parse.urlsplit(self.location)
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        query.append(("digest", str(digest)))
        url = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
        headers = {"Content-Type": OCTET}
        body: Body = None
        if isinstance(data, bytes | bytearray | memoryview):
            body, length = data, len(data)
        elif data is not None:
            body = data if hasattr(data, "read") else _chain(b"", _as_reader(data), None)
        counted = _Counter(progress)
        resp = self._repo._call(
            "PUT", url, headers=headers, body=body, length=length if body is not None else 0,
            progress=counted, ok=(201, 204),
        )  # fmt: skip
        with resp:
            got = resp.headers.get("docker-content-digest")
            if got and got.strip() != str(digest):
                raise ProtocolError(
                    f"upload to {self._repo.name}: registry stored {got}, we sent {digest}"
                )
        self.offset += counted.total
        return Descriptor(OCTET, digest, self.offset)

    def cancel(self) -> None:
        """DELETE the session; best effort, a failure is only logged."""
        try:
            self._repo._call(
                "DELETE", self.location, ok=(200, 202, 204, 404), scopes=self._repo._delete_scopes
            ).close()
        except YardarmError as exc:
            log.info("cancelling upload to %s failed: %s", self._repo.name, exc)


class _Counter:
    """Counts body bytes of one request; after a resend only bytes beyond the best attempt
    reach the caller's progress callback, so progress never runs ahead of the data."""

    __slots__ = ("high", "progress", "total")

    def __init__(self, progress: Callable[[int], None] | None) -> None:
        self.progress = progress
        self.total = 0
        self.high = 0

    def __call__(self, n: int) -> None:
        self.total += n
        if self.total > self.high:
            if self.progress is not None:
                self.progress(self.total - self.high)
            self.high = self.total

    def rewound(self) -> None:
        self.total = 0


class _IterReader(io.RawIOBase):
    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it: Iterator[bytes] = iter(chunks)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            rest = self._buf + b"".join(self._it)
            self._buf = b""
            return rest
        while not self._buf:
            try:
                self._buf = bytes(next(self._it))
            except StopIteration:
                return b""
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def _as_reader(data: IO[bytes] | BinaryIO | Iterable[bytes] | bytes) -> IO[bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        return io.BytesIO(data)
    if hasattr(data, "read"):
        return cast(IO[bytes], data)
    return cast(IO[bytes], _IterReader(data))


def _chain(first: bytes, reader: IO[bytes], limit: int | None) -> Iterator[bytes]:
    if first:
        yield first
    while limit is None or limit > 0:
        data = reader.read(_READ_BLOCK if limit is None else min(_READ_BLOCK, limit))
        if not data:
            return
        if limit is not None:
            limit -= len(data)
        yield data


def _seekable(f: IO[bytes]) -> bool:
    try:
        return bool(f.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def location_from(resp: Response, request_url: str) -> str:
    loc = resp.headers.get("location")
    if not loc:
        raise ProtocolError(f"upload answer without Location ({resp.status})")
    url = urllib.parse.urljoin(request_url, loc)
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ProtocolError(f"upload Location is not an http(s) URL ({resp.status})")
    return url


def range_end(value: str, expected: int = 0) -> int:
    """``Range: 0-N`` is inclusive: N+1 bytes received.

    registry 2.8 also answers ``0-0`` for an empty session, so ``0-0`` is ambiguous between 0
    and 1 byte; what we expect to have sent decides.
    """
    text = value.strip()
    if text.startswith("bytes="):
        text = text[6:]
    start, _, end = text.partition("-")
    if not (start.isdigit() and end.isdigit()):
        raise ProtocolError(f"unparseable Range header {value!r}")
    n = int(end)
    if n == 0 and int(start) == 0:
        return 1 if expected >= 1 else 0
    return n + 1
