"""``yardarm load``: docker-archive, OCI archive or OCI layout folder into the store.

The whole load is one unit: it either records every image, index and tag of the input or,
on any fault, nothing (temporary files are removed; a kill leaves only garbage for prune).
"""

from __future__ import annotations

import contextlib
import stat
from pathlib import Path
from typing import BinaryIO, cast

from yardarm.digest import Digest
from yardarm.errors import ImportError_
from yardarm.reference import Reference
from yardarm.store.blobs import BlobArea
from yardarm.store.db import Database
from yardarm.store.ingest import detect_compression, gzip_reader, zstd_reader
from yardarm.store.plan import LoadedImage, commit
from yardarm.store.resolve import LayerFacts, build_plan
from yardarm.store.sources import DirSource, StreamSource, TarFileSource

__all__ = ["load_path", "load_stream"]


def _known(db: Database, area: BlobArea) -> object:
    def known(digest: Digest) -> LayerFacts | None:
        row = db.query_one(
            "SELECT b.size, b.compression, l.diff_id, l.size FROM layer_blobs b "
            "JOIN layers l ON l.chain_id = b.chain_id WHERE b.digest = ? LIMIT 1",
            (str(digest),),
        )
        if row is None or not area.exists(digest):
            return None
        size, compression, diff_id, usize = row
        return LayerFacts(
            digest,
            int(str(size)),
            str(compression),
            Digest.parse(str(diff_id)),
            int(str(usize)),
            None,
        )

    return known


def _cleanup(temps: list[Path]) -> None:
    for t in temps:
        with contextlib.suppress(FileNotFoundError):
            t.unlink()


def load_path(
    db: Database, area: BlobArea, path: Path, base_name: Reference | None = None
) -> list[LoadedImage]:
    """Load a folder (OCI layout) or a file (docker-archive / OCI archive, maybe compressed)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ImportError_(f"{path}: no such file or directory") from None
    except OSError as exc:
        raise ImportError_(f"{path}: {exc.strerror or exc}") from None
    known = _known(db, area)
    if stat.S_ISDIR(st.st_mode):
        with area.shared():
            src = DirSource(path, area, known)  # type: ignore[arg-type]
            try:
                plan = build_plan(src, base_name)
                commit(db, area, plan)
            finally:
                _cleanup(src.temps)
        return plan.loaded()
    try:
        f = path.open("rb")
    except OSError as exc:
        raise ImportError_(f"{path}: {exc.strerror or exc}") from None
    with f:
        head = f.read(4)
        f.seek(0)
        if not stat.S_ISREG(st.st_mode) or detect_compression(head) != "none":
            return load_stream(db, area, f, str(path), base_name)
    with area.shared():
        tsrc = TarFileSource(path, area, known)  # type: ignore[arg-type]
        try:
            plan = build_plan(tsrc, base_name)
            commit(db, area, plan)
        finally:
            tsrc.close()
            _cleanup(tsrc.temps)
    return plan.loaded()


def load_stream(
    db: Database,
    area: BlobArea,
    stream: BinaryIO,
    label: str,
    base_name: Reference | None = None,
) -> list[LoadedImage]:
    """Load a tar arriving as a stream (stdin, pipes); gzip or zstd around it is undone."""
    head = _Peeked(stream)
    compression = detect_compression(head.peek)
    raw = cast(BinaryIO, head)
    if compression == "gzip":
        raw = gzip_reader(raw)
    elif compression == "zstd":
        raw = zstd_reader(raw)
    with area.shared():
        src: StreamSource | None = None
        temps: list[Path] = []
        try:
            unreadable: tuple[type[Exception], ...] = (
                OSError,
                EOFError,
                ValueError,
                *_decoder_errors(compression),
            )
            try:
                src = StreamSource(raw, label, area, temps)
            except unreadable as exc:
                if isinstance(exc, ImportError_):
                    raise
                raise ImportError_(f"{label}: cannot read the archive ({exc})") from None
            plan = build_plan(src, base_name)
            commit(db, area, plan)
        finally:
            _cleanup(temps)
    return plan.loaded()


def _decoder_errors(compression: str) -> tuple[type[Exception], ...]:
    """zstandard raises its own class for corrupt input (gzip's errors are OSErrors)."""
    if compression != "zstd":
        return ()
    import zstandard

    return (zstandard.ZstdError,)


class _Peeked:
    """Lets us look at the first bytes of a non-seekable stream and still read them later."""

    def __init__(self, stream: BinaryIO) -> None:
        self._s = stream
        self.peek = stream.read(4)
        self._buf = self.peek

    def read(self, n: int = -1) -> bytes:
        if self._buf:
            if n < 0:
                out = self._buf + self._s.read()
                self._buf = b""
                return out
            out, self._buf = self._buf[:n], self._buf[n:]
            if len(out) < n:
                out += self._s.read(n - len(out))
            return out
        return self._s.read(n)

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        pass
