"""Compression while hashing: correct, reproducible (resume depends on it), and resumable."""

from __future__ import annotations

import gzip
import io
import os

import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from yardarm.digest import Digest, Digester
from yardarm.errors import Cancelled, UsageError
from yardarm.push.compress import BLOCK_SIZE, Compression, compress_stream, skip_bytes

DATA = os.urandom(BLOCK_SIZE) + b"text " * 400_000


def run(data: bytes, spec: str) -> tuple[bytes, Digester]:
    digester = Digester()
    out = b"".join(compress_stream(io.BytesIO(data), Compression.parse(spec), digester))
    return out, digester


@pytest.mark.parametrize("spec", ["gzip", "gzip:1", "zstd", "zstd:9"])
def test_output_decompresses_and_is_hashed_in_the_same_pass(spec: str) -> None:
    out, digester = run(DATA, spec)
    if spec.startswith("gzip"):
        assert gzip.decompress(out) == DATA
    else:
        assert zstandard.ZstdDecompressor().decompressobj().decompress(out) == DATA
    assert digester.digest() == Digest.from_bytes(out)
    assert digester.size == len(out)


@pytest.mark.parametrize("spec", ["gzip:3", "zstd:3"])
def test_output_is_reproducible_so_a_resumed_upload_matches(spec: str) -> None:
    assert run(DATA, spec)[0] == run(DATA, spec)[0]
    assert Compression.parse(spec).fingerprint == Compression.parse(spec).fingerprint


def test_gzip_header_has_no_timestamp() -> None:
    out, _ = run(b"x", "gzip")
    assert out[4:8] == b"\0\0\0\0"


def test_input_progress_counts_uncompressed_bytes() -> None:
    seen: list[int] = []
    b"".join(compress_stream(io.BytesIO(DATA), Compression(), Digester(), on_input=seen.append))
    assert sum(seen) == len(DATA)


def test_cancel_stops_between_blocks() -> None:
    stream = compress_stream(io.BytesIO(DATA), Compression(), Digester(), cancelled=lambda: True)
    with pytest.raises(Cancelled):
        next(stream)


@given(st.lists(st.binary(min_size=1, max_size=50), max_size=20), st.integers(0, 1200))
def test_skip_bytes_drops_exactly_the_acknowledged_prefix(chunks: list[bytes], n: int) -> None:
    whole = b"".join(chunks)
    assert b"".join(skip_bytes(iter(chunks), n)) == whole[n:]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("brotli", "unsupported compression"),
        ("gzip:9", "between 0 and 3"),
        ("zstd:0", "between 1 and 22"),
        ("gzip:x", "must be a number"),
    ],
)
def test_bad_compression_specs_are_usage_errors(spec: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        Compression.parse(spec)
