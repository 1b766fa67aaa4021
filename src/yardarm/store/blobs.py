"""Content-addressed files under ``blobs/<algorithm>/<hex>`` and the temporary files behind them.

A blob file appears only by ``rename`` of a fully written, fsynced temporary file, so a file
under ``blobs/`` always holds exactly the content its name says. Temporary files are named after
the writing process, so a cleaner can tell a crashed writer's leftovers from a live one's.

Garbage collection (unlinking files no row references) and imports exclude each other through
an ``flock`` on ``lock``: imports hold it shared from their first file write until their commit,
collection holds it exclusively. The kernel drops the lock when a process dies, even by SIGKILL.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from yardarm.digest import Digest

__all__ = ["BlobArea", "fsync_dir"]


def fsync_dir(path: Path) -> None:
    """Make a rename durable: the directory entry must reach the disk too."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobArea:
    """The files of one store: ``blobs/``, ``tmp/`` and the ``lock`` file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs"
        self.tmp = root / "tmp"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self._lock_path = root / "lock"

    def path_for(self, digest: Digest) -> Path:
        return self.blobs / digest.algorithm / digest.hex

    def exists(self, digest: Digest) -> bool:
        return self.path_for(digest).is_file()

    def new_temp(self) -> tuple[BinaryIO, Path]:
        """A temporary file in ``tmp/`` named after our pid (see :meth:`sweep_temp`)."""
        fd, name = tempfile.mkstemp(prefix=f"{os.getpid()}-", suffix=".part", dir=self.tmp)
        return os.fdopen(fd, "w+b"), Path(name)

    def promote(self, temp: Path, digest: Digest) -> Path:
        """fsync and rename a finished temporary file into place (content already verified)."""
        dest = self.path_for(digest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, dest)
        return dest

    def sync_dirs(self, algorithms: set[str]) -> None:
        for alg in algorithms:
            fsync_dir(self.blobs / alg)

    def write_bytes(self, data: bytes, digest: Digest) -> Path:
        f, temp = self.new_temp()
        with f:
            f.write(data)
        return self.promote(temp, digest)

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        """Held by an import while it has files in flight: collection must not run meanwhile."""
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def exclusive(self, *, wait: bool = True) -> Iterator[bool]:
        """Yields whether the exclusive lock was taken (never blocks when ``wait`` is false)."""
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def all_files(self) -> Iterator[tuple[Digest | None, Path]]:
        """Every file under ``blobs/``; the digest is None for names that are not digests."""
        if not self.blobs.is_dir():
            return
        for alg_dir in sorted(self.blobs.iterdir()):
            if not alg_dir.is_dir():
                yield None, alg_dir
                continue
            for f in alg_dir.iterdir():
                try:
                    yield Digest(alg_dir.name, f.name), f
                except ValueError:
                    yield None, f

    def sweep_temp(self) -> tuple[int, int]:
        """Remove temporary files of dead writers; returns (files, bytes) removed."""
        removed = freed = 0
        for f in self.tmp.iterdir():
            pid_text = f.name.split("-", 1)[0]
            if pid_text.isdigit() and _alive(int(pid_text)):
                continue
            try:
                size = f.stat().st_size
                f.unlink()
            except FileNotFoundError:
                continue
            removed += 1
            freed += size
        return removed, freed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
