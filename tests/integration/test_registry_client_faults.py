"""Faults a healthy registry never shows, injected by the proxy in front of the real one."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from fakes.faultproxy import FaultProxy, cut, respond
from support.registry import RunningRegistry
from yardarm.digest import Digest
from yardarm.errors import RegistryError, TooManyRequests, TransportError, UploadInvalid
from yardarm.registry import Credentials, HttpTransport, Registry, RegistryOptions, Response

pytestmark = pytest.mark.registry

MiB = 1024 * 1024


@pytest.fixture
def proxy(registry_plain: RunningRegistry) -> Iterator[FaultProxy]:
    with FaultProxy(registry_plain.host, lifetime=120) as p:
        yield p


class PlainOnly(HttpTransport):
    """The proxy speaks plain HTTP and never answers a TLS hello: skip the HTTPS probe."""

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if url.startswith("https://"):
            raise TransportError("this test's proxy speaks no TLS", method=method, url=url)
        return super().request(method, url, *args, **kwargs)


def through(proxy: FaultProxy, sleeps: list[float] | None = None, **options: object) -> Registry:
    sleep = sleeps.append if sleeps is not None else (lambda _s: None)
    options.setdefault("sleep", sleep)
    opts = RegistryOptions(transport=PlainOnly(), **options)  # type: ignore[arg-type]
    return Registry(proxy.host, opts, Credentials())


def test_failure_between_chunks_resumes_from_range_with_nothing_resent(
    proxy: FaultProxy, repo_name: str
) -> None:
    data = os.urandom(4 * MiB)
    with through(proxy, max_chunk_size=MiB) as reg:
        upload = reg.repository(repo_name).start_upload()
        assert upload.write(io.BytesIO(data[:MiB]), length=MiB) == MiB
        proxy.add(cut(0, method="PATCH"))  # the next PATCH dies before any body byte arrives
        src = io.BytesIO(data)
        src.seek(MiB)
        with pytest.raises(TransportError) as info:
            upload.write(src, length=3 * MiB)
        assert info.value.temporary
        offset = upload.status()
        assert offset == MiB
        src.seek(offset)
        assert upload.write(src, length=len(data) - offset) == 3 * MiB
        desc = upload.commit(Digest.from_bytes(data))
    assert desc.size == len(data)
    assert proxy.body_bytes_forwarded("PATCH") == len(data)  # zero bytes sent twice
    with through(proxy) as check, check.repository(repo_name).open_blob(desc.digest) as f:
        assert f.read() == data


def test_patch_cut_mid_body_leaves_a_dead_session_detected_as_upload_invalid(
    proxy: FaultProxy, repo_name: str
) -> None:
    data = os.urandom(3 * MiB)
    with through(proxy, sleep=time.sleep) as reg:
        repo = reg.repository(repo_name)
        upload = repo.start_upload()
        proxy.add(cut(MiB // 2, method="PATCH"))
        with pytest.raises(TransportError) as info:
            upload.write(io.BytesIO(data), length=len(data))
        assert info.value.bytes_sent is not None and info.value.bytes_sent >= MiB // 2
        # registry 2.8 stores the partial bytes but its signed _state still names offset 0;
        # it notices when its handler of the cut PATCH finishes, which status() waits for.
        with pytest.raises(UploadInvalid) as dead:
            upload.status()
        assert dead.value.code == "BLOB_UPLOAD_INVALID" and not dead.value.temporary
        # The clean restart: a new session, the whole blob again.
        desc = repo.upload_blob(data)
    assert desc.digest == Digest.from_bytes(data)


def test_429_with_retry_after_is_retried_for_small_requests(
    proxy: FaultProxy, repo_name: str
) -> None:
    sleeps: list[float] = []
    with through(proxy, sleeps) as reg:
        repo = reg.repository(repo_name)
        desc = repo.upload_blob(b"rate limited")
        proxy.add(respond(429, retry_after=3, method="HEAD"))
        assert repo.stat_blob(desc.digest) == desc
    assert sleeps == [3.0]


def test_503_is_retried_with_backoff_then_succeeds(proxy: FaultProxy, repo_name: str) -> None:
    sleeps: list[float] = []
    with through(proxy, sleeps) as reg:
        repo = reg.repository(repo_name)
        desc = repo.upload_blob(b"unavailable")
        proxy.add(respond(503, method="GET", path="/blobs/", times=2))
        with repo.open_blob(desc.digest) as f:
            assert f.read() == b"unavailable"
    assert sleeps == [0.5, 1.0]


def test_persistent_429_gives_up_with_retry_after_on_the_error(
    proxy: FaultProxy, repo_name: str
) -> None:
    sleeps: list[float] = []
    with through(proxy, sleeps) as reg:
        proxy.add(respond(429, retry_after=7, method="HEAD", times=None))
        with pytest.raises(TooManyRequests) as info:
            reg.repository(repo_name).stat_blob(Digest.from_bytes(b"x"))
    assert info.value.temporary and info.value.retry_after == 7.0
    assert sleeps == [7.0, 7.0]


def test_upload_requests_are_not_retried_by_the_client(proxy: FaultProxy, repo_name: str) -> None:
    """Whole-operation retries belong to the upload manager: a POST 503 surfaces at once."""
    sleeps: list[float] = []
    with through(proxy, sleeps) as reg:
        reg.ping()
        proxy.add(respond(503, method="POST"))
        with pytest.raises(RegistryError) as info:
            reg.repository(repo_name).start_upload()
    assert info.value.status == 503 and info.value.temporary
    assert sleeps == []
    assert len(proxy.requests_matching("POST")) == 1
