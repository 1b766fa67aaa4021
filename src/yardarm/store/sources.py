"""Where import bytes come from: an OCI layout folder, a tar file we can seek in, or a stream.

Folders and seekable tars are read lazily: the small JSON first, then only the blobs the images
need, two layers at a time (each layer already keeps two cores busy part of the time). Streams
(stdin, compressed archives) arrive in whatever order the tar has, so every member is
ingested as it passes and matched up afterwards.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, Final

from yardarm.digest import Digest
from yardarm.errors import ImportError_, UnsafeArchive
from yardarm.store.blobs import BlobArea
from yardarm.store.ingest import CHUNK, Ingested, ingest
from yardarm.store.resolve import MAX_JSON, LayerFacts
from yardarm.store.safety import link_target, normalise_member

__all__ = ["DirSource", "KnownBlob", "StreamSource", "TarFileSource"]

KnownBlob = Callable[[Digest], LayerFacts | None]
_PARALLEL: Final = 2
_LINK_DEPTH: Final = 16


class _RangeReader:
    """A member's bytes inside a tar file, read with pread so threads can share the descriptor."""

    def __init__(self, fd: int, offset: int, size: int) -> None:
        self._fd, self._pos, self._end = fd, offset, offset + size

    def read(self, n: int = -1) -> bytes:
        left = self._end - self._pos
        if n < 0 or n > left:
            n = left
        if n <= 0:
            return b""
        data = os.pread(self._fd, n, self._pos)
        if not data:
            raise ImportError_("unexpected end of file")
        self._pos += len(data)
        return data

    def close(self) -> None:
        pass

    def __enter__(self) -> _RangeReader:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _fsync_path(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return  # the load failed and cleaned up meanwhile
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _facts(ing: Ingested) -> LayerFacts:
    return LayerFacts(
        ing.digest,
        ing.size,
        ing.compression,
        ing.diff_id,
        ing.uncompressed_size,
        ing.temp,
        ing.error,
        ing.tar_header_ok,
    )


class _LazySource:
    """Common part of folder and seekable-tar sources: members opened on demand."""

    label: str

    def __init__(self, label: str, area: BlobArea, known: KnownBlob) -> None:
        self.label = label
        self._area = area
        self._known = known
        self.temps: list[Path] = []
        self._syncer: ThreadPoolExecutor | None = None

    def _open(self, name: str) -> tuple[BinaryIO, int]:
        raise NotImplementedError

    def has(self, name: str) -> bool:
        raise NotImplementedError

    def read_small(self, name: str) -> bytes:
        f, size = self._open(name)
        with f:
            if size > MAX_JSON:
                raise ImportError_(f"{self.label}: {name} is too large ({size} bytes)")
            data = f.read(size)
        if len(data) != size:
            raise ImportError_(f"{self.label}: {name}: unexpected end of file")
        return data

    def _ingest_one(self, name: str) -> LayerFacts:
        if name.startswith("blobs/"):
            try:
                _, alg, hx = name.split("/")
                digest: Digest | None = Digest(alg, hx)
            except ValueError:
                digest = None
            if digest is not None:
                facts = self._known(digest)
                if facts is not None:
                    return facts
        src, size = self._open(name)
        dest, temp = self._area.new_temp()
        self.temps.append(temp)
        try:
            with src, dest:
                ing = ingest(src, dest, temp)
        except ImportError_ as exc:
            raise ImportError_(f"{self.label}: {name}: {exc}") from None
        except OSError as exc:
            raise ImportError_(f"{self.label}: {name}: {exc.strerror or exc}") from None
        if ing.size != size:
            raise ImportError_(f"{self.label}: {name}: unexpected end of file")
        if self._syncer is not None:
            # Write the file back now, beside the hashing of the next layers, so the commit's
            # own fsync finds nothing left to do.
            self._syncer.submit(_fsync_path, temp)
        return _facts(ing)

    def layers(self, names: list[str]) -> Mapping[str, LayerFacts]:
        with (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="yardarm-fsync") as syncer,
            ThreadPoolExecutor(max_workers=_PARALLEL, thread_name_prefix="yardarm-load") as ex,
        ):
            self._syncer = syncer
            try:
                results = list(ex.map(self._ingest_one, names))
            finally:
                self._syncer = None
        return dict(zip(names, results, strict=True))


class DirSource(_LazySource):
    """An OCI image layout folder."""

    def __init__(self, root: Path, area: BlobArea, known: KnownBlob) -> None:
        super().__init__(str(root), area, known)
        self._root = root.resolve()

    def _path(self, name: str) -> Path | None:
        rel = normalise_member(name)
        path = self._root / rel
        try:
            real = path.resolve(strict=True)
        except (FileNotFoundError, RuntimeError):
            return None
        if real != self._root and self._root not in real.parents:
            raise UnsafeArchive(f"{self.label}: {name} is a link leading outside the layout")
        return real

    def has(self, name: str) -> bool:
        path = self._path(name)
        return path is not None and path.is_file()

    def _open(self, name: str) -> tuple[BinaryIO, int]:
        path = self._path(name)
        if path is None:
            raise ImportError_(f"{self.label}: {name} is missing")
        f = path.open("rb")
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            f.close()
            raise ImportError_(f"{self.label}: {name} is not a regular file")
        return f, st.st_size


def _index_members(
    members: Iterator[tarfile.TarInfo], label: str
) -> tuple[dict[str, tarfile.TarInfo], dict[str, str]]:
    """Regular files by normalised name, and links to resolve; refuses anything unsafe."""
    files: dict[str, tarfile.TarInfo] = {}
    links: dict[str, str] = {}
    for m in members:
        try:
            name = normalise_member(m.name)
            if m.isdir():
                continue
            if name in files or name in links:
                raise ImportError_(f"member {name!r} appears twice")
            if m.isreg():
                files[name] = m
            elif m.issym() or m.islnk():
                links[name] = link_target(m, name)
            else:
                raise UnsafeArchive(f"member {name!r} is a device, fifo or other special file")
        except ImportError_ as exc:
            cls = type(exc)
            raise cls(f"{label}: {exc}") from None
    return files, links


def _resolve(name: str, files: Mapping[str, object], links: Mapping[str, str]) -> str | None:
    for _ in range(_LINK_DEPTH):
        if name in files:
            return name
        if name not in links:
            return None
        name = links[name]
    return None


class TarFileSource(_LazySource):
    """A docker-archive or OCI archive in a regular file: headers first, then members by offset."""

    def __init__(self, path: Path, area: BlobArea, known: KnownBlob) -> None:
        super().__init__(str(path), area, known)
        self._file = path.open("rb")
        self._fd = self._file.fileno()
        size = os.fstat(self._fd).st_size
        try:
            tf = tarfile.open(fileobj=self._file, mode="r:")  # noqa: SIM115
            members = tf.getmembers()
        except (tarfile.TarError, EOFError, ValueError, UnicodeError) as exc:
            self._file.close()
            raise ImportError_(f"{self.label}: not a tar archive or truncated ({exc})") from None
        for m in members:
            if m.isreg() and m.offset_data + m.size > size:
                self._file.close()
                raise ImportError_(f"{self.label}: truncated tar archive (member {m.name!r})")
        try:
            self._files, self._links = _index_members(iter(members), self.label)
        except ImportError_:
            self._file.close()
            raise

    def has(self, name: str) -> bool:
        return _resolve(name, self._files, self._links) is not None

    def _open(self, name: str) -> tuple[BinaryIO, int]:
        real = _resolve(name, self._files, self._links)
        if real is None:
            raise ImportError_(f"{self.label}: {name} is missing")
        m = self._files[real]
        return _RangeReader(self._fd, m.offset_data, m.size), m.size  # type: ignore[return-value]

    def close(self) -> None:
        self._file.close()


class StreamSource:
    """A tar arriving as a stream: each member ingested once as it passes by."""

    def __init__(self, stream: BinaryIO, label: str, area: BlobArea, temps: list[Path]) -> None:
        self.label = label
        self._area = area
        self.temps = temps  # the caller's list, so it can clean up even if we raise
        self._facts: dict[str, LayerFacts] = {}
        self._small: dict[str, bytes] = {}
        self._small_total = 0
        members: dict[str, tarfile.TarInfo] = {}
        links: dict[str, str] = {}
        try:
            tf = tarfile.open(fileobj=stream, mode="r|*", bufsize=CHUNK)  # noqa: SIM115
            for m in tf:
                files, mlinks = _index_members(iter([m]), label)
                for name in files:
                    if name in members or name in links:
                        raise ImportError_(f"{label}: member {name!r} appears twice")
                    members[name] = m
                    self._take(tf, m, name)
                for name, target in mlinks.items():
                    if name in members or name in links:
                        raise ImportError_(f"{label}: member {name!r} appears twice")
                    links[name] = target
        except (tarfile.TarError, EOFError) as exc:
            raise ImportError_(f"{label}: not a tar archive or truncated ({exc})") from None
        if not members:
            raise ImportError_(f"{label}: empty or not a tar archive")
        self._members = members
        self._links = links

    def _take(self, tf: tarfile.TarFile, m: tarfile.TarInfo, name: str) -> None:
        src = tf.extractfile(m)
        assert src is not None
        dest, temp = self._area.new_temp()
        self.temps.append(temp)
        with dest:
            ing = ingest(src, dest, temp)  # type: ignore[arg-type]
        if ing.size != m.size:
            raise ImportError_(f"{self.label}: truncated tar archive (member {name!r})")
        self._facts[name] = _facts(ing)
        if m.size <= 64 * 1024 and self._small_total < MAX_JSON:
            self._small[name] = temp.read_bytes()
            self._small_total += m.size

    def has(self, name: str) -> bool:
        return _resolve(name, self._members, self._links) is not None

    def read_small(self, name: str) -> bytes:
        real = _resolve(name, self._members, self._links)
        if real is None:
            raise ImportError_(f"{self.label}: {name} is missing")
        if real in self._small:
            return self._small[real]
        facts = self._facts[real]
        if facts.size > MAX_JSON:
            raise ImportError_(f"{self.label}: {name} is too large ({facts.size} bytes)")
        assert facts.temp is not None
        return facts.temp.read_bytes()

    def layers(self, names: list[str]) -> Mapping[str, LayerFacts]:
        out = {}
        for n in names:
            real = _resolve(n, self._members, self._links)
            if real is None:
                raise ImportError_(f"{self.label}: {n} is missing")
            out[n] = self._facts[real]
        return out
