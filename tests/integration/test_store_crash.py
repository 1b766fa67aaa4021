"""SIGKILL during ``yardarm load`` at 20 random moments: the store must always stay consistent.

One ~300 MiB gzip layout is generated once; each round starts a load and kills it at a random
point of its progress (measured by the bytes it has written, so a busy machine does not shift
the moments past the end), a few just before it starts writing or right after the last byte
(fsync, rename, commit). Then the store must open, SQLite's integrity check pass, every
reference lead to an image whose layers and files exist with the right sizes, no temporary
file survive the reopening, and a second load complete. The image is then removed so the next
kill again lands in real work.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.imagegen import LayerSpec, write_oci_layout
from yardarm.store import Store

ROUNDS = 20
NAME = "localhost/crash/big:1"


def _start_load(store: Path, layout: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "yardarm", "--store", str(store), "load", "-q", str(layout)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _check_consistent(path: Path) -> None:
    with Store.open(path) as store:
        db = path / "store.db"
        conn = sqlite3.connect(db)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            dangling_refs = conn.execute(
                "SELECT ref FROM refs WHERE target NOT IN (SELECT id FROM images) "
                "AND target NOT IN (SELECT id FROM indexes)"
            ).fetchall()
            assert dangling_refs == []
            missing_layers = conn.execute(
                "SELECT chain_id FROM image_layers WHERE chain_id NOT IN "
                "(SELECT chain_id FROM layers)"
            ).fetchall()
            assert missing_layers == []
            blobs = conn.execute("SELECT digest, size FROM layer_blobs").fetchall()
        finally:
            conn.close()
        for digest, size in blobs:
            f = path / "blobs" / digest.replace(":", "/")
            assert f.is_file(), f"{digest} is referenced but missing"
            assert f.stat().st_size == size
        for image_id in store.images.ids():
            image = store.images.get(image_id)
            if hasattr(image, "diff_ids"):
                for lay in store.layers.for_image(image):  # type: ignore[arg-type]
                    assert lay.blob is not None
        assert list((path / "tmp").iterdir()) == [], "a dead writer's temp files survived"


def _remove(path: Path) -> None:
    """Take the image out again so the next kill lands in a load that has real work to do."""
    with Store.open(path) as store:
        _, deleted = store.remove(NAME)
        assert len(deleted) == 1
        assert list(store.blobs.all_files()) == []


@pytest.fixture(scope="module")
def big_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("crash") / "layout"
    write_oci_layout(
        path,
        # 300 MiB of layer content, half random and half text (gzip keeps ~190 MiB on disk)
        layers=[LayerSpec(50 << 20, "random" if i % 2 else "text") for i in range(6)],
        seed=99,
        compression="gzip",
        tags=(NAME,),
    )
    return path


def _written(store: Path) -> int:
    total = 0
    for folder in (store / "tmp", store / "blobs" / "sha256"):
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            continue
        for e in entries:
            with contextlib.suppress(FileNotFoundError):
                total += e.stat().st_size
    return total


def _kill_at(proc: subprocess.Popen[bytes], store: Path, target: int, extra: float) -> bool:
    """SIGKILL once ``target`` bytes are written (then ``extra`` seconds); False if it ended."""
    while _written(store) < target:
        if proc.poll() is not None:
            return False
        time.sleep(0.002)
    if extra:
        time.sleep(extra)
    if proc.poll() is not None:
        return False
    os.kill(proc.pid, signal.SIGKILL)
    return True


def test_sigkill_at_random_moments_never_leaves_an_inconsistent_store(
    big_layout: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    total = sum(p.stat().st_size for p in (big_layout / "blobs" / "sha256").iterdir())
    rnd = random.Random(20240601)
    outcomes = []
    for i in range(ROUNDS):
        proc = _start_load(store, big_layout)
        if i % 7 == 0:  # before anything is written: reading JSON, opening the store
            target, extra = 0, rnd.uniform(0.0, 0.3)
        elif i % 7 == 3:  # after the last byte: background fsyncs, renames, the commit
            target, extra = int(total * 0.99), rnd.uniform(0.0, 0.3)
        else:
            target, extra = int(total * rnd.uniform(0.02, 0.98)), 0.0
        killed = _kill_at(proc, store, target, extra)
        code = proc.wait()
        outcomes.append((round(target / total, 2), round(extra, 2), killed, code))
        _check_consistent(store)
        again = _start_load(store, big_layout)
        assert again.wait() == 0, again.stderr.read() if again.stderr else ""
        _check_consistent(store)
        _remove(store)
    killed = [o for o in outcomes if o[3] == -signal.SIGKILL]
    assert len(killed) >= ROUNDS - 2, f"the kills must land mid-load: {outcomes}"
