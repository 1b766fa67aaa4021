"""Hostile or broken registries: a whole `yardarm push` (a real process) against the fake.

Each case: yardarm either completes with a correct result in the registry (the safe path) or
stops with one precise error line and exit 1; it never hangs (every run has a deadline), never
sends the login to another host, never tags a manifest whose blobs the registry lacks, and never
records a digest the registry lied about in the store's v2 metadata.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fakes.fakeregistry import FakeRegistry, FakeRequest, FakeResponse
from reliability.scenario import (
    LoadedStore,
    assert_one_line_error,
    assert_store_sound,
    cli_env,
    run_cli,
    tag,
)

USER, SECRET = "hostile-user", "hostile-secret-5f1c9a"
BASIC = base64.b64encode(f"{USER}:{SECRET}".encode()).decode()
DEADLINE = 60.0  # seconds a hostile case may take, retries included


@dataclass(frozen=True)
class Hostile:
    name: str
    setup: Callable[[FakeRegistry, FakeRegistry], None]  # (origin, elsewhere)
    outcome: str  # "ok", "any" (either is fine), or a fragment of the error line
    push_twice: bool = False  # the first push seeds metadata (mounts, existence checks)
    args: tuple[str, ...] = ()  # extra push flags


def _set(**values: object) -> Callable[[FakeRegistry, FakeRegistry], None]:
    def apply(origin: FakeRegistry, other: FakeRegistry) -> None:
        for k, v in values.items():
            setattr(origin.hostility, k, other.url if v == "OTHER" else v)

    return apply


def _intercept(
    match: Callable[[FakeRequest], bool], answer: FakeResponse
) -> Callable[[FakeRegistry, FakeRegistry], None]:
    def apply(origin: FakeRegistry, other: FakeRegistry) -> None:
        origin.intercept = lambda req: answer if match(req) else None

    return apply


def _is(method: str, part: str) -> Callable[[FakeRequest], bool]:
    return lambda req: req.method == method and part in req.path


_BIG_ERROR = json.dumps(
    {"errors": [{"code": "MANIFEST_INVALID", "message": "bad", "detail": "x" * (10 << 20)}]}
).encode()

CASES = [
    Hostile("honest", lambda o, x: None, "ok"),
    Hostile("garbage-json-bodies", _set(garbage_json=True), "ok"),
    Hostile("wrong-content-digest", _set(wrong_content_digest=True), "registry stored"),
    Hostile("upload-location-other-host", _set(upload_location_base="OTHER"), "any"),
    Hostile("upload-location-ftp", _set(upload_location_base="ftp://evil.example"), "not an http"),
    Hostile("upload-location-file", _set(upload_location_base="file://"), "not an http"),
    Hostile("redirect-loop-on-blob-checks", _set(redirect_loop=True), "redirect"),
    Hostile("ten-megabyte-error-bodies", _set(error_body_size=10 << 20), "ok"),
    Hostile(
        "ten-megabyte-manifest-rejection",
        _intercept(_is("PUT", "/manifests/"), FakeResponse(400, {}, _BIG_ERROR)),
        "registry answered 400",
    ),
    Hostile("header-line-too-large", _set(huge_header=100_000), "header"),
    Hostile("too-many-headers", _set(many_headers=500), "header"),
    Hostile("mount-201-with-another-digest", _set(mount_digest="sha256:" + "0" * 64), "ok", True),
    Hostile("blob-head-wrong-size", _set(head_size_delta=7), "ok", True),
    Hostile(
        "blob-head-wrong-size-converted-manifest",
        _set(head_size_delta=7),
        "ok",
        True,
        ("--format", "docker"),
    ),
    Hostile(
        "manifest-put-garbage-digest",
        _intercept(
            _is("PUT", "/manifests/"),
            FakeResponse(201, {"Docker-Content-Digest": "sha256:zzzz"}),
        ),
        "digest",
    ),
    Hostile(
        "500-forever-on-uploads",
        _intercept(_is("POST", "/blobs/uploads/"), FakeResponse(500, {}, b"{}")),
        "500",
    ),
    Hostile(
        "401-with-no-challenge",
        _intercept(_is("POST", "/blobs/uploads/"), FakeResponse(401, {}, b"")),
        "401",
    ),
]


@pytest.fixture
def fakes() -> Iterator[tuple[FakeRegistry, FakeRegistry]]:
    with (
        FakeRegistry(basic_auth=(USER, SECRET), lifetime=120) as origin,
        FakeRegistry(lifetime=120) as elsewhere,
    ):
        yield origin, elsewhere


def _docker_config(folder: Path, host: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"auths": {host: {"auth": BASIC}}}))
    return folder


def _metadata_digests(store: Path) -> set[str]:
    conn = sqlite3.connect(store / "store.db")
    try:
        return {d for (d,) in conn.execute("SELECT digest FROM v2_metadata")}
    finally:
        conn.close()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_registry_gets_a_precise_error_or_the_safe_path(
    case: Hostile,
    fakes: tuple[FakeRegistry, FakeRegistry],
    small_store: LoadedStore,
    copy_store: Callable[[LoadedStore], Path],
    tmp_path: Path,
) -> None:
    origin, elsewhere = fakes
    store = copy_store(small_store)
    env = cli_env(store, DOCKER_CONFIG=str(_docker_config(tmp_path / "dc", origin.host)))
    image = small_store.image
    if case.push_twice:
        tag(store, small_store.image_id, f"{origin.host}/first/repo:v1")
        first = run_cli(["push", "-q", f"{origin.host}/first/repo:v1"], store, env=env)
        assert first.returncode == 0, first.stderr
    case.setup(origin, elsewhere)
    ref = f"{origin.host}/hostile/repo:v1"
    tag(store, small_store.image_id, ref)
    started = time.monotonic()
    proc = run_cli(["push", "-q", *case.args, ref], store, env=env, timeout=DEADLINE + 30)
    took = time.monotonic() - started
    assert took < DEADLINE, f"{case.name} took {took:.0f}s"

    if case.outcome == "ok":
        assert proc.returncode == 0, proc.stderr
        for layer in image.layers:
            assert origin.has_blob("hostile/repo", layer.digest)
        raw, _ = origin.manifests[("hostile/repo", "v1")]
        if not case.args:
            assert raw == image.image.manifest_bytes
        for layer in json.loads(raw)["layers"]:
            assert len(origin.blobs[layer["digest"]]) == layer["size"], "sizes are the blob's"
    elif case.outcome == "any":
        if proc.returncode != 0:
            assert_one_line_error(proc)
    else:
        line = assert_one_line_error(proc)
        assert case.outcome.lower() in line.lower(), line
        assert ("hostile/repo", "v1") not in origin.manifests, "no tag after a failed push"
    # Whatever happened: the tag (if any) names blobs the registry has.
    for (repo, ref_), (raw, _) in list(origin.manifests.items()):
        for layer in json.loads(raw).get("layers", []):
            assert origin.has_blob(repo, layer["digest"]), (repo, ref_, layer["digest"])
    # The login never went anywhere but the origin, and never into any output.
    assert all(r.authorization is None for r in elsewhere.requests)
    assert SECRET not in proc.stdout + proc.stderr and BASIC not in proc.stdout + proc.stderr
    # Only digests of real blobs may be remembered as being in a repository.
    real = {layer.digest for layer in image.layers} | {image.config_digest}
    assert _metadata_digests(store) <= real, _metadata_digests(store) - real
    assert_store_sound(store)


def test_a_registry_that_stops_answering_mid_upload_fails_within_the_read_timeout(
    small_store: LoadedStore, copy_store: Callable[[LoadedStore], Path]
) -> None:
    """Accepts the request, then says nothing: bounded by read_timeout, retries included."""
    from yardarm.errors import TransportError
    from yardarm.push.pusher import Pusher, PushOptions
    from yardarm.reference import parse
    from yardarm.registry import RegistryOptions
    from yardarm.store import Store
    from yardarm.transfer import RetryPolicy, TransferManager

    def hang(req: FakeRequest) -> FakeResponse | None:
        if req.method == "POST" and "/blobs/uploads/" in req.path:
            time.sleep(30)
        return None

    store = copy_store(small_store)
    with FakeRegistry(lifetime=60, intercept=hang) as fake:
        ref = f"{fake.host}/stalled/repo:v1"
        tag(store, small_store.image_id, ref)
        options = PushOptions(registry=RegistryOptions(read_timeout=1.0, sleep=lambda s: None))
        manager = TransferManager(5, RetryPolicy(first_delay=0.0), sleep=lambda s: None)
        started = time.monotonic()
        with (
            Store.open(store) as s,
            manager,
            Pusher(s, options, manager=manager) as pusher,
            pytest.raises(TransportError) as info,
        ):
            pusher.push(parse(ref))
        took = time.monotonic() - started
    assert "timed out" in str(info.value).lower() or "timeout" in str(info.value).lower()
    assert took < 5 * 1.0 * 3 + 5, took  # attempts x read timeout, not the 30 s stall
    assert ("stalled/repo", "v1") not in fake.manifests
