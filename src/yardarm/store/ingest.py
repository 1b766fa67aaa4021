"""One pass over a blob: its digest and size, a copy into a store file, and its DiffID.

The reading thread hashes and writes the bytes as they arrive; when the blob is gzip or zstd a
second thread decompresses the same chunks and hashes the result. hashlib, file writes and both
decompressors release the GIL, so on two cores the two halves really overlap. Chunks travel
through a bounded queue and decompressed output is read in fixed pieces, so memory stays flat
whatever the blob size or the compression ratio (a decompression bomb costs time, not memory).
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final, cast

from yardarm.digest import Digest, Digester

__all__ = ["CHUNK", "Ingested", "detect_compression", "gzip_reader", "ingest", "zstd_reader"]

CHUNK: Final = 1 << 20
_QUEUE_DEPTH: Final = 8
_GZIP_MAGIC: Final = b"\x1f\x8b"
_ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"


def detect_compression(head: bytes) -> str:
    """``gzip``, ``zstd`` or ``none`` from the first bytes, as docker's DecompressStream does."""
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head.startswith(_ZSTD_MAGIC):
        return "zstd"
    return "none"


@dataclass(frozen=True, slots=True)
class Ingested:
    """What one pass learnt about a blob now sitting in ``temp``."""

    temp: Path
    digest: Digest
    size: int
    compression: str  # none | gzip | zstd
    diff_id: Digest | None  # None when decompression failed (see ``error``)
    uncompressed_size: int
    error: str | None = None  # why the content could not be decompressed
    tar_header_ok: bool = True  # the uncompressed stream starts like a tar (or is empty)


class ZstdFrameWalker:
    """Follows zstd frame and block headers to tell a complete stream from a truncated one.

    zstandard's streaming readers end quietly at a cut, so without this a truncated zstd layer
    would look like a shorter one. Only headers are parsed; block contents are skipped.
    """

    def __init__(self) -> None:
        self._pending = b""
        self._skip = 0
        self._state = "magic"  # magic | fhd | frame_rest | block | checksum | skippable
        self._need = 4
        self._checksum = False
        self.error: str | None = None

    def complete(self) -> bool:
        return (
            self.error is None and self._state == "magic" and not self._pending and not self._skip
        )

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view and self.error is None:
            if self._skip:
                n = min(self._skip, len(view))
                self._skip -= n
                view = view[n:]
                continue
            take = self._need - len(self._pending)
            self._pending += bytes(view[:take])
            view = view[take:]
            if len(self._pending) == self._need:
                header, self._pending = self._pending, b""
                self._header(header)

    def _header(self, h: bytes) -> None:
        if self._state == "magic":
            if h == _ZSTD_MAGIC:
                self._state, self._need = "fhd", 1
            elif h[1:] == b"\x2a\x4d\x18" and h[0] & 0xF0 == 0x50:
                self._state, self._need = "skippable", 4
            else:
                self.error = "corrupt zstd data (bad frame magic)"
        elif self._state == "skippable":
            self._skip = int.from_bytes(h, "little")
            self._state, self._need = "magic", 4
        elif self._state == "fhd":
            fhd = h[0]
            fcs_flag, single, dict_flag = fhd >> 6, (fhd >> 5) & 1, fhd & 3
            self._checksum = bool((fhd >> 2) & 1)
            rest = (0 if single else 1) + (0, 1, 2, 4)[dict_flag]
            rest += (1 if single else 0, 2, 4, 8)[fcs_flag]
            if rest:
                self._state, self._need = "frame_rest", rest
            else:
                self._state, self._need = "block", 3
        elif self._state == "frame_rest":
            self._state, self._need = "block", 3
        elif self._state == "block":
            value = int.from_bytes(h, "little")
            last, kind, size = value & 1, (value >> 1) & 3, value >> 3
            if kind == 3:
                self.error = "corrupt zstd data (reserved block type)"
                return
            self._skip = 1 if kind == 1 else size
            if last:
                if self._checksum:
                    self._state, self._need = "checksum", 4
                else:
                    self._state, self._need = "magic", 4
        elif self._state == "checksum":
            self._state, self._need = "magic", 4


class _QueueReader:
    """A file-like view of the chunks the reading thread hands over."""

    def __init__(self, q: queue.Queue[bytes | None]) -> None:
        self._q = q
        self._buf = memoryview(b"")
        self._eof = False

    def read(self, n: int = -1) -> bytes:
        if not self._buf and not self._eof:
            item = self._q.get()
            if item is None:
                self._eof = True
            else:
                self._buf = memoryview(item)
        if self._eof and not self._buf:
            return b""
        if n < 0 or n >= len(self._buf):
            out, self._buf = bytes(self._buf), memoryview(b"")
            return out
        out, self._buf = bytes(self._buf[:n]), self._buf[n:]
        return out

    def readinto(self, b: bytearray | memoryview) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        """Consume the rest so the producer never blocks on a full queue."""
        self._buf = memoryview(b"")
        while not self._eof:
            if self._q.get() is None:
                self._eof = True

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        pass


class _Decompressor(threading.Thread):
    def __init__(self, compression: str) -> None:
        super().__init__(name=f"yardarm-{compression}", daemon=True)
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=_QUEUE_DEPTH)
        self.compression = compression
        self.digester = Digester()
        self.error: str | None = None
        self.head = b""

    def run(self) -> None:
        src = _QueueReader(self.queue)
        try:
            reader = _open_decompressing(self.compression, src)
            update = self.digester.update
            while True:
                data = reader.read(CHUNK)
                if not data:
                    break
                if len(self.head) < 512:
                    self.head += data[: 512 - len(self.head)]
                update(data)
        except Exception as exc:  # corrupt streams raise many kinds of errors
            self.error = f"corrupt {self.compression} data ({type(exc).__name__}: {exc})"
        finally:
            src.drain()


def gzip_reader(src: object) -> BinaryIO:
    """isal's gzip reader (several times faster than zlib's) over any object with ``read``."""
    from isal import igzip

    return cast(BinaryIO, igzip.IGzipFile(fileobj=src, mode="rb"))  # type: ignore[no-untyped-call]


def zstd_reader(src: object) -> BinaryIO:
    import zstandard

    dctx = zstandard.ZstdDecompressor()
    reader = dctx.stream_reader(cast(BinaryIO, src), read_size=CHUNK, read_across_frames=True)
    return cast(BinaryIO, reader)


def _open_decompressing(compression: str, src: _QueueReader) -> BinaryIO:
    return gzip_reader(src) if compression == "gzip" else zstd_reader(src)


def _looks_like_tar(head: bytes) -> bool:
    if not head:
        return True  # an empty layer
    if len(head) < 512:
        return False
    if head == b"\0" * 512:
        return True  # an archive holding only its end marker
    try:
        stored = int(head[148:156].split(b"\0", 1)[0].strip() or b"-1", 8)
    except ValueError:
        return False
    computed = sum(head[:148]) + 8 * 32 + sum(head[156:512])
    return stored == computed


def ingest(src: BinaryIO, dest: BinaryIO, temp: Path, *, decompress: bool = True) -> Ingested:
    """Copy ``src`` to ``dest`` once, returning digest, size and (when asked) the DiffID.

    ``decompress=False`` is for blobs known not to be layers (configs, manifests): they are
    only hashed. The caller closes ``dest``; nothing here trusts the content yet.
    """
    digester = Digester()
    first = src.read(CHUNK)
    compression = detect_compression(first) if decompress else "none"
    worker: _Decompressor | None = None
    if compression != "none":
        worker = _Decompressor(compression)
        worker.start()
    walker = ZstdFrameWalker() if compression == "zstd" else None
    head = first[:512]
    data = first
    try:
        while data:
            digester.update(data)
            dest.write(data)
            if worker is not None:
                worker.queue.put(data)
            if walker is not None:
                walker.feed(data)
            data = src.read(CHUNK)
    finally:
        if worker is not None:
            worker.queue.put(None)
            worker.join()
    dest.flush()
    digest = digester.digest()
    if worker is None:
        tar_ok = _looks_like_tar(head) if decompress else True
        return Ingested(temp, digest, digester.size, "none", digest, digester.size, None, tar_ok)
    if walker is not None and worker.error is None and not walker.complete():
        worker.error = walker.error or "corrupt zstd data (the stream ends inside a frame)"
    if worker.error is not None:
        return Ingested(temp, digest, digester.size, compression, None, 0, worker.error, False)
    return Ingested(
        temp,
        digest,
        digester.size,
        compression,
        worker.digester.digest(),
        worker.digester.size,
        None,
        _looks_like_tar(worker.head),
    )
