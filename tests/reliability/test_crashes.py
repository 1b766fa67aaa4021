"""Scenarios 2 and 3: the registry dies mid-push; yardarm dies mid-push (SIGKILL).

Both end the same way: a rerun completes, skopeo pulls the tag, and the store is sound. What a
rerun can save differs with where the kill falls. Registry 2.8 throws away a session whose PATCH
was cut mid-body (REGISTRY-FACTS), so a kill during a chunk costs that layer a restart; a kill
between chunks costs nothing already acknowledged. The random kills assert the bound (never
more than one extra copy of the image); the stalled-chunk kill asserts the exact resume.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fakes.faultproxy import FaultProxy
from reliability.scenario import (
    CHUNK,
    LoadedStore,
    NthPatchOfFirstSessions,
    assert_every_tag_pulls,
    assert_store_sound,
    cli_env,
    pending_uploads,
    registry_tags,
    tag,
)
from support.registry import RunningRegistry
from yardarm.errors import YardarmError
from yardarm.progress import PUSHING, ProgressEvent
from yardarm.push.pusher import Pusher, PushOptions
from yardarm.reference import parse
from yardarm.store import Store
from yardarm.transfer import RetryPolicy, TransferManager

pytestmark = pytest.mark.registry

KILLS = int(os.environ.get("YARDARM_CHAOS_KILLS", "4"))
SEED = int(os.environ.get("YARDARM_CHAOS_SEED", "20261128"))
RESULTS = os.environ.get("YARDARM_CHAOS_RESULTS")  # where to write the measured table (docs)


def _push_cli(store: Path, ref: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "yardarm", "push", "--progress=plain", "--chunk-size=16MiB", ref],
        env=cli_env(store),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def test_registry_killed_and_restarted_mid_push_then_push_completes(
    start_registry: Callable[[str], RunningRegistry],
    big_store: LoadedStore,
    copy_store: Callable[[LoadedStore], Path],
    tmp_path: Path,
) -> None:
    reg = start_registry("plain")
    store_path = copy_store(big_store)
    ref = f"{reg.host}/crash/registry:v1"
    tag(store_path, big_store.image_id, ref)
    killed = threading.Event()

    def progress(event: ProgressEvent) -> None:
        if event.kind == PUSHING and (event.current or 0) > CHUNK and not killed.is_set():
            killed.set()
            reg.kill()

    def bring_back() -> None:
        killed.wait(60)
        time.sleep(1.5)
        reg.restart()

    restarter = threading.Thread(target=bring_back, daemon=True)
    restarter.start()
    manager = TransferManager(5, RetryPolicy(first_delay=1.0))
    outcome: str
    with Store.open(store_path) as store, manager:
        pusher = Pusher(store, PushOptions(chunk_size=CHUNK), progress=progress, manager=manager)
        try:
            with pusher:
                pusher.push(parse(ref))
            outcome = "completed"
        except YardarmError as exc:
            message = str(exc)
            assert "\n" not in message and message, message
            outcome = f"failed: {message}"
    restarter.join(60)
    assert killed.is_set(), "the registry was killed during the upload"
    assert reg.alive()
    # Completed or not, a rerun completes and the registry then holds a pullable tag.
    rc, _, err = _finish(_push_cli(store_path, ref))
    assert rc == 0, err
    assert registry_tags(reg, "crash/registry") == ["v1"]
    assert_every_tag_pulls(reg, "crash/registry", ["v1"], tmp_path)
    assert_store_sound(store_path)
    assert pending_uploads(store_path) == 0
    print(f"registry kill: first push {outcome}")


def test_push_killed_while_a_chunk_waits_resumes_without_resending_acknowledged_bytes(
    registry_plain: RunningRegistry,
    big_store: LoadedStore,
    copy_store: Callable[[LoadedStore], Path],
    repo_name: str,
    tmp_path: Path,
) -> None:
    """SIGKILL while the second PATCH of each layer is held (not yet at the registry)."""
    store_path = copy_store(big_store)
    sizes = big_store.image.layer_sizes
    with FaultProxy(registry_plain.host, lifetime=120) as proxy:
        ref = f"{proxy.host}/{repo_name}:v1"
        tag(store_path, big_store.image_id, ref)
        proxy.add(NthPatchOfFirstSessions("stall", nth=2, sessions=len(sizes), seconds=60))
        proc = _push_cli(store_path, ref)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            held = [r for r in proxy.requests_matching("PATCH") if r.action == "stall"]
            if len(held) >= len(sizes):
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        first = proxy.body_bytes_forwarded("PATCH")
        assert first == len(sizes) * CHUNK, "each layer had exactly one chunk acknowledged"
        assert pending_uploads(store_path) == len(sizes), "each layer's resume point was saved"
        proxy.clear()
        rc, _, err = _finish(_push_cli(store_path, ref))
        assert rc == 0, err
        second = proxy.body_bytes_forwarded("PATCH", "/blobs/uploads/")
    assert second == sum(sizes) - len(sizes) * CHUNK, "nothing acknowledged re-sent"
    assert_every_tag_pulls(registry_plain, repo_name, ["v1"], tmp_path)
    assert_store_sound(store_path)
    assert pending_uploads(store_path) == 0


def test_push_sigkilled_at_random_moments_each_rerun_completes(
    registry_plain: RunningRegistry,
    big_store: LoadedStore,
    copy_store: Callable[[LoadedStore], Path],
    repo_name: str,
    tmp_path: Path,
) -> None:
    rnd = random.Random(SEED)
    sizes = big_store.image.layer_sizes
    total = sum(sizes)
    rows = []
    with FaultProxy(registry_plain.host, lifetime=60 + 30 * KILLS) as proxy:
        for n in range(KILLS):
            store_path = copy_store(big_store)
            repo = f"{repo_name}-{n}"
            ref = f"{proxy.host}/{repo}:v1"
            tag(store_path, big_store.image_id, ref)
            proxy.clear()
            # A random moment: before the first byte (a tenth of the kills), or once a random
            # share of the image has reached the registry (wall-clock moments mostly miss a push
            # this fast).
            share = 0.0 if rnd.random() < 0.1 else rnd.uniform(0.02, 0.99)
            proc = _push_cli(store_path, ref)
            started = time.monotonic()
            while proc.poll() is None and time.monotonic() - started < 60:
                if proxy.body_bytes_forwarded("PATCH", "/blobs/uploads/") >= share * total:
                    break
                time.sleep(0.002)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            moment = time.monotonic() - started
            before = proxy.body_bytes_forwarded("PATCH|PUT", "/blobs/uploads/")
            first_run = [(r.method, r.path[-12:], r.status) for r in proxy.requests_matching()]
            saved = pending_uploads(store_path)
            assert_store_sound(store_path)
            proxy.clear()
            rc, _, err = _finish(_push_cli(store_path, ref))
            assert rc == 0, f"rerun after a kill at {moment:.2f}s failed: {err}"
            after = proxy.body_bytes_forwarded("PATCH|PUT", "/blobs/uploads/")
            resent = max(0, before + after - total - big_store.image.image.config_size)
            # Never more than one extra copy of each layer, whatever the kill interrupted.
            assert resent <= total, (moment, before, after)
            assert_every_tag_pulls(registry_plain, repo, ["v1"], tmp_path)
            assert_store_sound(store_path)
            second_run = [(r.method, r.path[-12:], r.status) for r in proxy.requests_matching()]
            trace = "\n".join(map(str, [*first_run, "--", *second_run]))
            assert pending_uploads(store_path) == 0, trace
            rows.append(
                {
                    "kill_at_s": round(moment, 2),
                    "kill_at_share": round(share, 2),
                    "killed": proc.returncode == -signal.SIGKILL,
                    "bytes_before_kill": before,
                    "saved_sessions": saved,
                    "bytes_on_rerun": after,
                    "resent": resent,
                }
            )
    print(json.dumps(rows, indent=1))
    if RESULTS:
        Path(RESULTS).write_text(json.dumps(rows, indent=1))
    assert any(r["killed"] for r in rows), "at least one push was killed mid-way"


def test_push_sigkilled_mid_chunk_resumes_exactly_where_a_spec_registry_stopped(
    big_store: LoadedStore, copy_store: Callable[[LoadedStore], Path]
) -> None:
    """Against a registry that keeps the bytes of a cut PATCH (the OCI spec allows it; 2.8 does
    not), every random kill resumes at the registry's offset: zero bytes re-sent."""
    from fakes.fakeregistry import FakeRegistry

    rnd = random.Random(SEED + 1)
    total = sum(big_store.image.layer_sizes)
    kills = max(2, KILLS // 2)
    with FakeRegistry(lifetime=60 + 30 * kills) as fake:
        for n in range(kills):
            store_path = copy_store(big_store)
            ref = f"{fake.host}/spec/resume-{n}:v1"
            tag(store_path, big_store.image_id, ref)
            fake.requests.clear()
            # A random moment measured in bytes: the fake is too fast for wall-clock moments.
            target = int(rnd.uniform(0.05, 0.9) * total)
            proc = _push_cli(store_path, ref)
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline:
                with fake.lock:
                    received = sum(len(x.data) for x in fake.sessions.values())
                if received >= target:
                    break
                time.sleep(0.002)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            moment = target / total
            time.sleep(0.3)  # the fake finishes reading what the dead client had sent
            before = _uploaded(fake)
            fake.requests.clear()
            rc, _, err = _finish(_push_cli(store_path, ref))
            assert rc == 0, f"rerun after a kill at {moment:.0%} failed: {err}"
            after = _uploaded(fake)
            config = big_store.image.image.config_size
            print(f"spec registry: kill at {moment:.0%}, {before} B before, {after} B on rerun")
            assert 0 < before < total, "the kill fell inside the upload"
            assert before + after <= total + config, (moment, before, after)
            for layer in big_store.image.layers:
                assert fake.has_blob(f"spec/resume-{n}", layer.digest)
            assert_store_sound(store_path)
            assert pending_uploads(store_path) == 0


def _uploaded(fake: object) -> int:
    from fakes.fakeregistry import FakeRegistry

    assert isinstance(fake, FakeRegistry)
    return sum(r.body_bytes for r in fake.requests if "/blobs/uploads/" in r.path)
