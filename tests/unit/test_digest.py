"""Digest values, the streaming digester and the verifying reader."""

from __future__ import annotations

import hashlib
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yardarm.digest import Digest, Digester, VerifyingReader
from yardarm.errors import DigestMismatch, InvalidDigest, SizeMismatch


def test_parse_round_trips_and_orders() -> None:
    text = "sha256:" + "0" * 64
    d = Digest.parse(text)
    assert str(d) == text
    assert d.short == "0" * 12
    assert Digest.parse("sha512:" + "a" * 128).algorithm == "sha512"
    assert sorted([Digest.parse("sha256:" + "1" * 64), d])[0] == d


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("sha256:" + "0" * 63, "64 lowercase hex"),
        ("sha256:" + "A" * 64, "lowercase hex"),
        ("sha512:" + "0" * 64, "128 lowercase hex"),
        ("md5:" + "0" * 32, "unsupported digest algorithm"),
        ("sha256", "invalid digest format"),
        ("", "invalid digest format"),
        ("sha256:" + "g" * 64, "lowercase hex"),
        (":" + "0" * 64, "invalid digest format"),
    ],
)
def test_bad_digests_are_refused_with_a_reason(text: str, fragment: str) -> None:
    with pytest.raises(InvalidDigest, match=fragment):
        Digest.parse(text)


def test_long_garbage_is_not_echoed_whole() -> None:
    with pytest.raises(InvalidDigest) as info:
        Digest.parse("x" * 10_000)
    assert len(str(info.value)) < 200


@given(st.binary(max_size=4096))
def test_from_bytes_matches_hashlib(data: bytes) -> None:
    assert Digest.from_bytes(data).hex == hashlib.sha256(data).hexdigest()
    assert Digest.from_bytes(data, "sha512").hex == hashlib.sha512(data).hexdigest()


@given(st.lists(st.binary(max_size=512), max_size=10))
def test_digester_counts_and_hashes_in_one_pass(chunks: list[bytes]) -> None:
    dg = Digester()
    for c in chunks:
        dg.update(c)
    whole = b"".join(chunks)
    assert dg.size == len(whole)
    assert dg.digest() == Digest.from_bytes(whole)


def test_verifying_reader_passes_good_content() -> None:
    data = b"hello" * 1000
    r = VerifyingReader(io.BytesIO(data), Digest.from_bytes(data), len(data))
    out = b"".join(iter(lambda: r.read(333), b""))
    assert out == data


def test_verifying_reader_read_all_checks_at_once() -> None:
    data = b"abc"
    assert VerifyingReader(io.BytesIO(data), Digest.from_bytes(data)).read() == data
    with pytest.raises(DigestMismatch):
        VerifyingReader(io.BytesIO(data), Digest.from_bytes(b"abd")).read()


def test_verifying_reader_raises_on_mismatch_at_eof() -> None:
    r = VerifyingReader(io.BytesIO(b"evil"), Digest.from_bytes(b"good"), what="blob x")
    assert r.read(4) == b"evil"
    with pytest.raises(DigestMismatch, match="blob x: digest mismatch"):
        r.read(4)


def test_verifying_reader_raises_on_size_mismatch() -> None:
    data = b"0123456789"
    with pytest.raises(SizeMismatch):
        VerifyingReader(io.BytesIO(data), Digest.from_bytes(data), 5).read(100)
    short = VerifyingReader(io.BytesIO(data), Digest.from_bytes(data), 11)
    short.read(100)
    with pytest.raises(SizeMismatch):
        short.read(100)
