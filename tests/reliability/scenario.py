"""Shared pieces of the reliability scenarios (conftest.py re-exports the fixtures): one big
image loaded once, cheap store copies, and the final-state checks every scenario ends with
(skopeo pulls every tag; the store is sound).

The big image (two 64 MiB layers of random bytes, gzip) is generated and loaded once per
session; each scenario pushes from its own copy of that store, so one scenario's upload
bookkeeping never leaks into another's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from fakes.faultproxy import Action, Rule
from support import skopeo
from support.imagegen import GeneratedImage, LayerSpec, write_oci_layout
from support.registry import RunningRegistry

MiB = 1 << 20
BIG_LAYER = 64 * MiB
CHUNK = 16 * MiB


_SESSION = re.compile(r"/blobs/uploads/([0-9a-f-]+)")


class NthPatchOfFirstSessions(Rule):
    """Applies ``action`` to the ``nth`` PATCH of each of the first ``sessions`` upload sessions.

    A layer restarted after a fault opens a new session later than every first session, so it
    is never hit again: each layer meets exactly one fault.
    """

    def __init__(
        self, action: Action, *, nth: int, sessions: int, after_bytes: int = 0, seconds: float = 0
    ) -> None:
        super().__init__(
            action, "PATCH", "/blobs/uploads/", times=sessions, after_bytes=after_bytes,
            seconds=seconds,
        )  # fmt: skip
        self.nth = nth
        self.sessions = sessions
        self.order: list[str] = []
        self.patches: dict[str, int] = {}

    def matches(self, method: str, target: str) -> bool:
        m = _SESSION.search(target)
        if method != "PATCH" or m is None:
            return False
        sid = m.group(1)
        if sid not in self.patches and len(self.order) < self.sessions:
            self.order.append(sid)
        self.patches[sid] = self.patches.get(sid, 0) + 1
        return sid in self.order and self.patches[sid] == self.nth


@dataclass(frozen=True)
class LoadedStore:
    """A store holding one image, ready to be copied for a scenario."""

    path: Path
    image_id: str
    image: GeneratedImage


def _load(base: Path, image: GeneratedImage) -> LoadedStore:
    from yardarm.store import Store

    with Store.open(base / "store") as store:
        loaded = store.load(image.path)
    return LoadedStore(base / "store", str(loaded[0].id), image)


@pytest.fixture(scope="session")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> LoadedStore:
    """Two 64 MiB random layers (incompressible: the stored gzip blob goes up as is)."""
    base = tmp_path_factory.mktemp("big-image")
    image = write_oci_layout(
        base / "layout",
        layers=[LayerSpec(BIG_LAYER), LayerSpec(BIG_LAYER)],
        seed=71,
        compression="gzip",
        tags=["v1"],
    )
    return _load(base, image)


@pytest.fixture(scope="session")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> LoadedStore:
    """Three small layers: for storms and hostile answers where size does not matter."""
    base = tmp_path_factory.mktemp("small-image")
    image = write_oci_layout(
        base / "layout",
        layers=[LayerSpec(40_000), LayerSpec(300_000), LayerSpec(2_000)],
        seed=72,
        compression="gzip",
        tags=["v1"],
    )
    return _load(base, image)


@pytest.fixture
def copy_store(tmp_path: Path) -> Callable[[LoadedStore], Path]:
    """A private copy of a loaded store (plain file copy: the store has no open handles)."""
    count = 0

    def copy(src: LoadedStore) -> Path:
        nonlocal count
        count += 1
        dest = tmp_path / f"store-{count}"
        shutil.copytree(src.path, dest)
        return dest

    return copy


def tag(store_path: Path, image_id: str, reference: str) -> None:
    from yardarm.reference import parse
    from yardarm.store import Store

    with Store.open(store_path) as store:
        store.references.add_tag(parse(reference), store.resolve(image_id)[0])


def assert_every_tag_pulls(
    reg: RunningRegistry, repo: str, tags: Iterable[str], dest: Path, user: str | None = None
) -> list[dict[str, object]]:
    """skopeo copies every tag out of the registry: no tag names a manifest with missing blobs."""
    manifests = []
    for t in tags:
        out = dest / f"pulled-{t}"
        if out.exists():
            shutil.rmtree(out)
        args = ["copy", "--retry-times=0", *skopeo.registry_flags(reg, "src", user)]
        skopeo.run([*args, f"docker://{reg.host}/{repo}:{t}", f"dir:{out}"])
        manifest = json.loads((out / "manifest.json").read_bytes())
        for layer in manifest["layers"]:
            blob = out / layer["digest"].split(":", 1)[1]
            assert blob.stat().st_size == layer["size"]
        manifests.append(manifest)
        shutil.rmtree(out)
    return manifests


def registry_tags(reg: RunningRegistry, repo: str, user: str | None = None) -> list[str]:
    """Tags the registry lists (skopeo list-tags), [] when the repository does not exist."""
    args = ["list-tags", *skopeo.registry_flags(reg, "", user), f"docker://{reg.host}/{repo}"]
    proc = subprocess.run(
        ["skopeo", *args], capture_output=True, text=True, timeout=60, check=False
    )
    if proc.returncode != 0:
        return []
    return list(json.loads(proc.stdout).get("Tags") or [])


def assert_store_sound(store_path: Path) -> None:
    """PRAGMA integrity_check is ok and no row points at something missing."""
    conn = sqlite3.connect(store_path / "store.db")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        dangling = {
            "refs without target": conn.execute(
                "SELECT ref FROM refs WHERE target NOT IN (SELECT id FROM images)"
                " AND target NOT IN (SELECT id FROM indexes)"
            ).fetchall(),
            "image layers without layer": conn.execute(
                "SELECT image_id FROM image_layers"
                " WHERE chain_id NOT IN (SELECT chain_id FROM layers)"
            ).fetchall(),
            "layer blobs without layer": conn.execute(
                "SELECT digest FROM layer_blobs WHERE chain_id NOT IN (SELECT chain_id FROM layers)"
            ).fetchall(),
            "index children without image": conn.execute(
                "SELECT child FROM index_children WHERE child NOT IN (SELECT id FROM images)"
            ).fetchall(),
        }
        assert not any(dangling.values()), dangling
        for (digest,) in conn.execute("SELECT digest FROM layer_blobs"):
            algo, hexa = digest.split(":", 1)
            assert (store_path / "blobs" / algo / hexa).is_file(), f"blob file missing: {digest}"
    finally:
        conn.close()


def pending_uploads(store_path: Path) -> int:
    conn = sqlite3.connect(store_path / "store.db")
    try:
        return int(conn.execute("SELECT COUNT(*) FROM uploads").fetchone()[0])
    finally:
        conn.close()


def cli_env(store_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["YARDARM_STORE"] = str(store_path)
    env.pop("YARDARM_DEBUG", None)
    env.update(extra)
    return env


def run_cli(
    args: list[str], store: Path, *, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m yardarm ARGS`` with the store in YARDARM_STORE (a real process: exit codes,
    stderr and tracebacks exactly as a user sees them)."""
    import sys

    return subprocess.run(
        [sys.executable, "-m", "yardarm", *args],
        env=env or cli_env(store),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("yardarm: error: ")]
    assert len(errors) == 1, proc.stderr
    return errors[0]
