"""Scenario 6: the client's disk fills up while an image is loaded.

Two ways to run out: a real full filesystem (a 20 MiB tmpfs holding the store, when this
machine lets us mount one; ENOSPC), and a file-size limit on the yardarm process
(RLIMIT_FSIZE; EFBIG), which needs no privilege. Either way: one clean error line, exit 1, and
the store exactly as before (rows, blob files, no temporary left).
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

from reliability.scenario import (
    assert_one_line_error,
    assert_store_sound,
    cli_env,
    run_cli,
)
from support.imagegen import LayerSpec, write_docker_archive, write_oci_layout
from support.storecheck import store_snapshot

MiB = 1 << 20


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[bool]:
    """Mount a small tmpfs at ``path``; yields False where mounting is not permitted."""
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", f"yardarm-{uuid.uuid4().hex[:8]}", path],
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        yield False
        return
    try:
        yield True
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def _seeded_store(store: Path, base: Path) -> None:
    small = write_oci_layout(base / "small", layers=[LayerSpec(50_000)], seed=81, tags=["s"])
    proc = run_cli(["load", "-q", str(small.path)], store)
    assert proc.returncode == 0, proc.stderr


def test_disk_full_while_loading_leaves_the_store_unchanged(tmp_path: Path) -> None:
    big = write_docker_archive(
        tmp_path / "big.tar",
        layers=[LayerSpec(16 * MiB), LayerSpec(8 * MiB)],
        seed=82,
        tags=("localhost/full/disk:1",),
    )
    with _tmpfs(tmp_path / "fs", "20m") as mounted:
        if mounted:
            store = tmp_path / "fs" / "store"
            _seeded_store(store, tmp_path)
            before = store_snapshot(store)
            proc = run_cli(["load", str(big.path)], store)
            line = assert_one_line_error(proc)
            assert "No space left on device" in line or "disk" in line.lower(), line
            assert store_snapshot(store) == before
            assert_store_sound(store)
            return
    # No mount permission here: the same fault through a file-size limit (below).
    _load_under_fsize_limit(tmp_path, big.path)


def _limit_fsize() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (12 * MiB, 12 * MiB))


def _load_under_fsize_limit(tmp_path: Path, archive: Path) -> None:
    store = tmp_path / "limited-store"
    _seeded_store(store, tmp_path)
    before = store_snapshot(store)
    proc = subprocess.run(
        [sys.executable, "-m", "yardarm", "load", str(archive)],
        env=cli_env(store),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=_limit_fsize,
    )
    line = assert_one_line_error(proc)
    assert "File too large" in line or "too large" in line.lower(), line
    assert store_snapshot(store) == before
    assert_store_sound(store)


def test_file_size_limit_while_loading_is_one_line_and_store_unchanged(tmp_path: Path) -> None:
    big = write_docker_archive(
        tmp_path / "big.tar",
        layers=[LayerSpec(2 * MiB), LayerSpec(16 * MiB)],
        seed=83,
        tags=("localhost/full/fsize:1",),
    )
    _load_under_fsize_limit(tmp_path, big.path)


def test_disk_full_then_space_freed_the_same_load_succeeds(tmp_path: Path) -> None:
    """Nothing half-written blocks a later load: the store is usable straight away."""
    big = write_docker_archive(
        tmp_path / "big.tar", layers=[LayerSpec(6 * MiB)], seed=84, tags=("localhost/re/try:1",)
    )
    store = tmp_path / "store"
    _seeded_store(store, tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "yardarm", "load", str(big.path)],
        env=cli_env(store),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (2 * MiB, 2 * MiB)),
    )
    assert_one_line_error(proc)
    again = run_cli(["load", "-q", str(big.path)], store)
    assert again.returncode == 0, again.stderr
    assert_store_sound(store)
    assert shutil.disk_usage(store).free > 0
    assert os.listdir(store / "tmp") == []
