"""Compressing layers while they are read and hashed, in one pass and reproducibly.

Reproducible output matters for resuming: an upload interrupted at byte K is continued by
compressing the layer again and sending only what comes after K, so the bytes must be the same
every time. That holds for the same implementation, level and input block size, which is why
:attr:`Compression.fingerprint` names all three and is stored with an unfinished upload.

gzip goes through ISA-L (``isal``), which releases the GIL and runs ~4x faster than zlib; the
level is chosen by measurement (see docs/PUSH.md): ISA-L level 3 stays within a few percent of
Go's default gzip size, which is what docker and skopeo produce.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Final, Protocol

from yardarm import mediatypes as mt
from yardarm.digest import Digester
from yardarm.errors import Cancelled, UsageError

__all__ = ["BLOCK_SIZE", "Compression", "compress_stream", "skip_bytes"]

#: Input block size; part of the reproducibility fingerprint, never change it casually.
BLOCK_SIZE: Final = 1 << 20
_LEVELS: Final = {"gzip": (0, 3, 3), "zstd": (1, 22, 3)}  # min, max, default


@dataclass(frozen=True, slots=True)
class Compression:
    """``gzip`` or ``zstd`` at a level; parsed from ``--compression zstd[:LEVEL]``."""

    algorithm: str = "gzip"
    level: int = 3

    def __post_init__(self) -> None:
        if self.algorithm not in _LEVELS:
            raise UsageError(f"unsupported compression {self.algorithm!r}: use gzip or zstd")
        low, high, _ = _LEVELS[self.algorithm]
        if not low <= self.level <= high:
            raise UsageError(f"{self.algorithm} level must be between {low} and {high}")

    @classmethod
    def parse(cls, text: str) -> Compression:
        name, _, level = text.partition(":")
        name = name.strip().lower()
        if name not in _LEVELS:
            raise UsageError(f"unsupported compression {name!r}: use gzip or zstd")
        if not level:
            return cls(name, _LEVELS[name][2])
        try:
            return cls(name, int(level))
        except ValueError:
            raise UsageError(f"compression level must be a number: {text!r}") from None

    @property
    def fingerprint(self) -> str:
        """Implementation, version, level and block size: equal fingerprints, equal bytes."""
        if self.algorithm == "gzip":
            import isal

            version = getattr(isal, "__version__", "?")
            return f"gzip/isal-{version}/{self.level}/{BLOCK_SIZE}"
        import zstandard

        return f"zstd/zstandard-{zstandard.__version__}/{self.level}/{BLOCK_SIZE}"

    def media_type(self, oci: bool) -> str:
        if self.algorithm == "zstd":
            return mt.OCI_LAYER_ZSTD
        return mt.OCI_LAYER_GZIP if oci else mt.DOCKER_LAYER

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.level}"


def compress_stream(
    source: BinaryIO,
    compression: Compression,
    digester: Digester,
    *,
    on_input: Callable[[int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Iterator[bytes]:
    """Yield compressed bytes of ``source``, hashing them into ``digester`` as they go.

    Reads fixed ``BLOCK_SIZE`` blocks (reproducibility) and reports uncompressed bytes read to
    ``on_input``, which is what docker's progress counts for layers it compresses.
    """
    compressor = _compressor(compression)
    while True:
        if cancelled is not None and cancelled():
            raise Cancelled("push cancelled")
        block = source.read(BLOCK_SIZE)
        if not block:
            break
        if on_input is not None:
            on_input(len(block))
        out = compressor.compress(block)
        if out:
            digester.update(out)
            yield out
    tail = compressor.flush()
    if tail:
        digester.update(tail)
        yield tail


class _Compressor(Protocol):
    """What zlib-style compressobj()s of isal and zstandard have in common."""

    def compress(self, data: bytes, /) -> bytes: ...

    def flush(self) -> bytes: ...


def _compressor(compression: Compression) -> _Compressor:
    if compression.algorithm == "gzip":
        from isal import isal_zlib

        # wbits 31: a gzip header with mtime 0 and no file name, so output is reproducible.
        gz: _Compressor = isal_zlib.compressobj(compression.level, isal_zlib.DEFLATED, 31)
        return gz
    import zstandard

    zs: _Compressor = zstandard.ZstdCompressor(level=compression.level, threads=0).compressobj()
    return zs


def skip_bytes(chunks: Iterator[bytes], count: int) -> Iterator[bytes]:
    """Drop the first ``count`` bytes of a chunk stream (already acknowledged by the registry)."""
    remaining = count
    for chunk in chunks:
        if remaining >= len(chunk):
            remaining -= len(chunk)
            continue
        if remaining:
            yield chunk[remaining:]
            remaining = 0
        else:
            yield chunk
