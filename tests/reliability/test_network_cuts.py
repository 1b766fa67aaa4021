"""Scenario 1: the connection is cut in the middle of every big layer of a push.

Two 64 MiB layers go up in 16 MiB chunks through the fault proxy. Where the cut falls between
chunks (the next PATCH never reaches the registry) the retry asks the registry where the session
stands and re-sends nothing. Where it falls inside a PATCH body, registry 2.8 discards the
session (404 BLOB_UPLOAD_INVALID), so that layer starts again, once. The bytes re-sent are
measured at the proxy (what reached the registry), not taken from yardarm's word.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from fakes.faultproxy import FaultProxy, drop_response
from reliability.scenario import (
    CHUNK,
    LoadedStore,
    NthPatchOfFirstSessions,
    assert_every_tag_pulls,
    assert_store_sound,
    pending_uploads,
    tag,
)
from support.registry import RunningRegistry
from yardarm.errors import YardarmError
from yardarm.push.pusher import Pusher, PushOptions
from yardarm.reference import parse
from yardarm.store import Store
from yardarm.transfer import RetryPolicy, TransferManager

pytestmark = pytest.mark.registry


def _push_through(
    proxy: FaultProxy, store_path: Path, image_id: str, repo: str
) -> tuple[Pusher, list[str]]:
    ref = f"{proxy.host}/{repo}:v1"
    tag(store_path, image_id, ref)
    statuses: list[str] = []
    manager = TransferManager(5, RetryPolicy(first_delay=0.05))
    with Store.open(store_path) as store:
        pusher = Pusher(
            store,
            PushOptions(chunk_size=CHUNK),
            progress=lambda e: statuses.append(e.status),
            manager=manager,
        )
        with pusher, manager:
            pusher.push(parse(ref))
    return pusher, statuses


def _patched(proxy: FaultProxy) -> int:
    return proxy.body_bytes_forwarded("PATCH", "/blobs/uploads/")


def test_cut_between_chunks_of_every_layer_resumes_without_resending_a_byte(
    registry_plain: RunningRegistry,
    big_store: LoadedStore,
    copy_store: Callable[[LoadedStore], Path],
    repo_name: str,
    tmp_path: Path,
) -> None:
    store_path = copy_store(big_store)
    sizes = big_store.image.layer_sizes
    with FaultProxy(registry_plain.host, lifetime=120) as proxy:
        rule = NthPatchOfFirstSessions("cut", nth=2, sessions=len(sizes), after_bytes=0)
        proxy.add(rule)
        pusher, _ = _push_through(proxy, store_path, big_store.image_id, repo_name)
        assert rule.applied == len(sizes), "every big layer met one cut"
        assert _patched(proxy) == sum(sizes), "not one byte reached the registry twice"
        config = big_store.image.image.config_size
        assert (pusher.bytes_sent, pusher.bytes_resent) == (sum(sizes) + config, 0)
        assert len(proxy.requests_matching("POST", "/blobs/uploads/")) == len(sizes) + 1
    assert_every_tag_pulls(registry_plain, repo_name, ["v1"], tmp_path)
    assert_store_sound(store_path)
    assert pending_uploads(store_path) == 0, "finished uploads leave no resume state"


def test_cut_inside_a_chunk_restarts_each_layer_once_and_the_waste_is_bounded(
    registry_plain: RunningRegistry,
    big_store: LoadedStore,
    copy_store: Callable[[LoadedStore], Path],
    repo_name: str,
    tmp_path: Path,
) -> None:
    store_path = copy_store(big_store)
    sizes = big_store.image.layer_sizes
    half = CHUNK // 2
    with FaultProxy(registry_plain.host, lifetime=120) as proxy:
        rule = NthPatchOfFirstSessions("cut", nth=2, sessions=len(sizes), after_bytes=half)
        proxy.add(rule)
        pusher, _ = _push_through(proxy, store_path, big_store.image_id, repo_name)
        assert rule.applied == len(sizes)
        # Registry 2.8 throws away a session cut mid-body: the first chunk (acknowledged) and
        # the half chunk (cut) of each layer are the price of the restart, and no more.
        resent = _patched(proxy) - sum(sizes)
        assert resent == len(sizes) * (CHUNK + half), resent
        # yardarm reports what the registry acknowledged twice (the cut halves were never acked).
        assert pusher.bytes_resent == len(sizes) * CHUNK
        posts = proxy.requests_matching("POST", "/blobs/uploads/")
        assert len(posts) == 2 * len(sizes) + 1, "each layer restarted exactly once"
        dead = [r for r in proxy.requests_matching(path="/blobs/uploads/.") if r.status == 404]
        sent = [(r.method, r.body_forwarded) for r in dead]
        assert all(method in ("GET", "DELETE") for method, _ in sent), sent
    assert_every_tag_pulls(registry_plain, repo_name, ["v1"], tmp_path)
    assert_store_sound(store_path)


def test_lost_answer_to_a_blob_commit_is_recovered_by_finding_the_blob(
    registry_plain: RunningRegistry,
    big_store: LoadedStore,
    copy_store: Callable[[LoadedStore], Path],
    repo_name: str,
    tmp_path: Path,
) -> None:
    """The registry committed the blob, the 201 never arrived: the retry must not fail on the
    consumed session nor upload the layer again."""
    store_path = copy_store(big_store)
    sizes = big_store.image.layer_sizes
    with FaultProxy(registry_plain.host, lifetime=120) as proxy:
        layers = "|".join(layer.digest.split(":")[1] for layer in big_store.image.layers)
        proxy.add(drop_response(method="PUT", path=f"digest=sha256%3A({layers})", times=2))
        _push_through(proxy, store_path, big_store.image_id, repo_name)
        dropped = [r for r in proxy.requests_matching("PUT") if r.action == "drop_response"]
        # A dropped commit may be retried by the transport and meet the consumed session (404)
        # before the other layer's commit comes by; at least one answer lost was a stored blob.
        assert len(dropped) == 2 and any(r.upstream_status == 201 for r in dropped)
        config = big_store.image.image.config_size
        assert _patched(proxy) + proxy.body_bytes_forwarded("PUT") <= sum(sizes) + 2 * config
    assert_every_tag_pulls(registry_plain, repo_name, ["v1"], tmp_path)
    assert_store_sound(store_path)
    assert pending_uploads(store_path) == 0


def test_lost_answer_to_the_manifest_put_fails_clearly_and_a_rerun_is_instant(
    registry_plain: RunningRegistry,
    small_store: LoadedStore,
    copy_store: Callable[[LoadedStore], Path],
    repo_name: str,
    tmp_path: Path,
) -> None:
    store_path = copy_store(small_store)
    with FaultProxy(registry_plain.host, lifetime=120) as proxy:
        proxy.add(drop_response(method="PUT", path="/manifests/"))
        outcome = "completed"
        try:
            _push_through(proxy, store_path, small_store.image_id, repo_name)
        except YardarmError as exc:
            assert "\n" not in str(exc) and "manifests" in str(exc), exc
            outcome = "failed"
        proxy.clear()
        _push_through(proxy, store_path, small_store.image_id, repo_name)
        assert not proxy.requests_matching("PATCH|POST|PUT"), "the rerun sends nothing"
    assert_every_tag_pulls(registry_plain, repo_name, ["v1"], tmp_path)
    assert_store_sound(store_path)
    print(f"manifest answer lost: first push {outcome}")
