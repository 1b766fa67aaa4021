"""Scenarios 4 and 5: 429 storms (Retry-After honoured, no early request, total wait capped) and
a bearer token that dies at the registry in the middle of an upload."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fakes.faultproxy import FaultProxy, respond
from reliability.scenario import (
    CHUNK,
    LoadedStore,
    NthPatchOfFirstSessions,
    assert_every_tag_pulls,
    assert_store_sound,
    tag,
)
from support.registry import RunningRegistry
from yardarm.errors import TooManyRequests, YardarmError
from yardarm.push.pusher import Pusher, PushOptions
from yardarm.reference import parse
from yardarm.registry import Credentials, RegistryOptions
from yardarm.store import Store
from yardarm.transfer import RetryPolicy, TransferManager

pytestmark = pytest.mark.registry


def _push(
    store_path: Path,
    ref: str,
    *,
    registry: RegistryOptions | None = None,
    manager: TransferManager | None = None,
    credentials: Credentials | None = None,
    concurrency: int = 5,
) -> None:
    manager = manager or TransferManager(concurrency)
    options = PushOptions(
        registry=registry,
        credentials=credentials,
        chunk_size=CHUNK,
        max_concurrent_uploads=concurrency,
    )
    with Store.open(store_path) as store, manager, Pusher(store, options, manager=manager) as p:
        p.push(parse(ref))


def test_429_storm_honours_retry_after_and_no_request_comes_early(
    registry_plain: RunningRegistry,
    small_store: LoadedStore,
    copy_store: Callable[[LoadedStore], Path],
    repo_name: str,
    tmp_path: Path,
) -> None:
    store_path = copy_store(small_store)
    with FaultProxy(registry_plain.host, lifetime=120) as proxy:
        ref = f"{proxy.host}/{repo_name}:v1"
        tag(store_path, small_store.image_id, ref)
        # Every blob request (checks, uploads) meets 429s for a while.
        proxy.add(respond(429, retry_after=1, path="/blobs/", times=6))
        start = time.monotonic()
        _push(store_path, ref, concurrency=1)
        elapsed = time.monotonic() - start
        reqs = proxy.requests_matching()
    storm = [r for r in reqs if r.status == 429]
    assert len(storm) == 6
    for r in storm:
        assert r.finished is not None
        later = [x for x in reqs if x.started > r.started]
        assert later, "the push went on after the storm"
        gap = min(x.started for x in later) - r.finished
        assert gap >= 0.95, f"a request came {gap:.2f}s after a 429 asking for 1 s"
    assert elapsed >= 6 * 0.95
    assert_every_tag_pulls(registry_plain, repo_name, ["v1"], tmp_path)
    assert_store_sound(store_path)


def test_endless_429_with_huge_retry_after_gives_up_within_the_cap(
    registry_plain: RunningRegistry,
    small_store: LoadedStore,
    copy_store: Callable[[LoadedStore], Path],
    repo_name: str,
) -> None:
    """Retry-After: 86400 for ever: the push fails with TooManyRequests; waits are capped."""
    store_path = copy_store(small_store)
    slept: list[float] = []
    with FaultProxy(registry_plain.host, lifetime=120) as proxy:
        ref = f"{proxy.host}/{repo_name}:v1"
        tag(store_path, small_store.image_id, ref)
        proxy.add(respond(429, retry_after=86400, path="/v2/.+", times=None))
        registry = RegistryOptions(sleep=slept.append)
        manager = TransferManager(5, RetryPolicy(), sleep=slept.append)
        with pytest.raises(YardarmError) as info:
            _push(store_path, ref, registry=registry, manager=manager)
    assert isinstance(info.value, TooManyRequests), repr(info.value)
    assert "\n" not in str(info.value)
    # One wait is never more than the transfer policy's cap, and the whole push gives up
    # after a bounded wait (what a CI job can afford), not after days.
    assert max(slept) <= RetryPolicy().max_retry_after, max(slept)
    assert sum(slept) <= 15 * 60, sum(slept)


def test_token_expiring_mid_upload_is_renewed_and_the_push_completes(
    registry_token: RunningRegistry,
    big_store: LoadedStore,
    copy_store: Callable[[LoadedStore], Path],
    repo_name: str,
    tmp_path: Path,
) -> None:
    server = registry_token.token_server
    assert server is not None
    server.set_lifetime(2)  # the registry refuses it 2 s after issue (leeway included)
    store_path = copy_store(big_store)
    creds = Credentials(username="pusher", password=registry_token.users["pusher"])
    with FaultProxy(registry_token.host, lifetime=120) as proxy:
        ref = f"{proxy.host}/{repo_name}:v1"
        tag(store_path, big_store.image_id, ref)
        # Hold each layer's second chunk past the token's death.
        proxy.add(NthPatchOfFirstSessions("stall", nth=2, sessions=2, seconds=3))
        _push(store_path, ref, credentials=creds)
        unauthorized = [r for r in proxy.requests_matching() if r.status == 401]
    assert server.requests >= 2, "a second token was fetched"
    assert any(r.method == "PATCH" for r in unauthorized) or server.requests >= 2
    assert_every_tag_pulls(registry_token, repo_name, ["v1"], tmp_path, user="pusher")
    assert_store_sound(store_path)


def test_every_temporary_status_once_on_blob_requests_still_completes(
    registry_plain: RunningRegistry,
    small_store: LoadedStore,
    copy_store: Callable[[LoadedStore], Path],
    repo_name: str,
    tmp_path: Path,
) -> None:
    """500, 502, 503, 504 and a bare 429 (no Retry-After), one after another."""
    store_path = copy_store(small_store)
    with FaultProxy(registry_plain.host, lifetime=120) as proxy:
        ref = f"{proxy.host}/{repo_name}:v1"
        tag(store_path, small_store.image_id, ref)
        for status in (500, 502, 503, 504, 429):
            proxy.add(respond(status, path="/blobs/"))
        manager = TransferManager(5, RetryPolicy(first_delay=0.05))
        registry = RegistryOptions(sleep=lambda s: time.sleep(min(s, 0.05)))
        _push(store_path, ref, registry=registry, manager=manager)
        answered = sorted(r.status for r in proxy.requests_matching() if r.action == "respond")
    assert answered == [429, 500, 502, 503, 504]
    assert_every_tag_pulls(registry_plain, repo_name, ["v1"], tmp_path)
    assert_store_sound(store_path)
