"""Content digests: the identity of every blob, config and manifest.

Digests are parsed once into :class:`Digest` values; raw strings do not travel inside the
library. hashlib releases the GIL for large updates, so hashing in a worker thread keeps the
other core free for compression or the socket.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import BinaryIO, Final

from yardarm.errors import DigestMismatch, InvalidDigest, SizeMismatch

__all__ = ["Digest", "Digester", "VerifyingReader"]

_HEX_LENGTH: Final = {"sha256": 64, "sha512": 128}
_DIGEST_RE: Final = re.compile(r"^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$")


@dataclass(frozen=True, slots=True, order=True)
class Digest:
    """An ``algorithm:hex`` content digest, validated on construction."""

    algorithm: str
    hex: str

    def __post_init__(self) -> None:
        length = _HEX_LENGTH.get(self.algorithm)
        if length is None:
            raise InvalidDigest(f"unsupported digest algorithm: {self.algorithm!r}")
        if len(self.hex) != length or not all(c in "0123456789abcdef" for c in self.hex):
            raise InvalidDigest(
                f"invalid {self.algorithm} digest: expected {length} lowercase hex characters"
            )

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse ``algorithm:hex``; the error says what is wrong without echoing huge input."""
        m = _DIGEST_RE.match(text)
        if not m:
            shown = text if len(text) <= 80 else text[:77] + "..."
            raise InvalidDigest(f"invalid digest format: {shown!r}")
        return cls(m.group(1), m.group(2))

    @classmethod
    def from_bytes(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    @property
    def short(self) -> str:
        """The 12-hex form docker shows in progress lines."""
        return self.hex[:12]

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


class Digester:
    """Incremental hashing that also counts bytes, so one pass gives digest and size."""

    __slots__ = ("_hash", "algorithm", "size")

    def __init__(self, algorithm: str = "sha256") -> None:
        if algorithm not in _HEX_LENGTH:
            raise InvalidDigest(f"unsupported digest algorithm: {algorithm!r}")
        self.algorithm = algorithm
        self._hash = hashlib.new(algorithm)
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._hash.update(data)
        self.size += len(data)

    def digest(self) -> Digest:
        return Digest(self.algorithm, self._hash.hexdigest())


class VerifyingReader:
    """Wraps a stream and raises :class:`DigestMismatch` at EOF if the content is not as claimed.

    The check happens at EOF because only then is the whole content known; callers must not act
    on data read before EOF as trusted (the store writes to a temporary file and renames only
    after EOF passed).
    """

    def __init__(
        self,
        raw: BinaryIO,
        expected: Digest,
        size: int | None = None,
        what: str = "content",
    ) -> None:
        self._raw = raw
        self._expected = expected
        self._size = size
        self._what = what
        self._digester = Digester(expected.algorithm)
        self._done = False

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        if data:
            self._digester.update(data)
            if self._size is not None and self._digester.size > self._size:
                raise SizeMismatch(self._size, self._digester.size, self._what)
        elif n != 0 and not self._done:
            self._finish()
        if n < 0 and data and not self._done:
            self._finish()
        return data

    def _finish(self) -> None:
        self._done = True
        if self._size is not None and self._digester.size != self._size:
            raise SizeMismatch(self._size, self._digester.size, self._what)
        actual = self._digester.digest()
        if actual != self._expected:
            raise DigestMismatch(str(self._expected), str(actual), self._what)

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> VerifyingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
