"""The store object: one folder, one database, the content files, and the services over them."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import BinaryIO

from yardarm.digest import Digest
from yardarm.errors import ImageNotFound, StoreError, UsageError
from yardarm.reference import Reference, parse
from yardarm.store.blobs import BlobArea
from yardarm.store.db import Database
from yardarm.store.gc import (
    PruneResult,
    collect_files,
    drop_unreferenced_rows,
    remove_if_unreferenced,
)
from yardarm.store.images import Image, ImageIndex, ImageStore
from yardarm.store.layers import LayerStore
from yardarm.store.metadata import V2MetadataService
from yardarm.store.plan import LoadedImage
from yardarm.store.references import ReferenceStore
from yardarm.store.uploads import UploadStateStore

__all__ = ["Store", "default_store_path"]

_ID_PREFIX = re.compile(r"^(?:sha256:)?([0-9a-f]{4,64})$")


def default_store_path() -> Path:
    env = os.environ.get("YARDARM_STORE")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("yardarm", appauthor=False))


class Store:
    """The local image store (see the package docstring); open it with :meth:`open`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{path}: cannot create the store: {exc.strerror or exc}") from None
        self._area = BlobArea(path)
        self._db = Database(path / "store.db")
        self.references = ReferenceStore(self._db)
        self.images = ImageStore(self._db)
        self.layers = LayerStore(self._db, self._area)
        self.metadata = V2MetadataService(self._db)
        self.uploads = UploadStateStore(self._db)

    @classmethod
    def open(cls, path: Path | str | None = None) -> Store:
        """Open (creating if needed); a dead writer's leftovers are swept when nobody imports."""
        store = cls(Path(path) if path else default_store_path())
        collect_files(store._db, store._area, wait=False)
        return store

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def db(self) -> Database:
        return self._db

    @property
    def blobs(self) -> BlobArea:
        return self._area

    # -- importing ----------------------------------------------------------------------------
    def load(self, path: Path, *, base_name: Reference | None = None) -> list[LoadedImage]:
        """A docker-archive or OCI archive file, or an OCI layout folder.

        ``base_name``: the repository for OCI entries named only by a bare tag (``ref.name``
        like ``v1``), which otherwise load untagged, as with docker.
        """
        from yardarm.store.load import load_path

        return load_path(self._db, self._area, path, base_name)

    def load_stream(
        self, stream: BinaryIO, label: str = "<stdin>", *, base_name: Reference | None = None
    ) -> list[LoadedImage]:
        from yardarm.store.load import load_stream

        return load_stream(self._db, self._area, stream, label, base_name)

    def import_path(
        self,
        source: Path,
        tag: Reference | None,
        *,
        mtime: int | None = None,
        created: float | None = None,
    ) -> LoadedImage:
        """A tarball or folder as a one-layer image (``docker import``)."""
        from yardarm.store.tarimport import import_path

        return import_path(self._db, self._area, source, tag, mtime=mtime, created=created)

    # -- finding ------------------------------------------------------------------------------
    def resolve(self, text: str) -> tuple[Digest, Reference | None]:
        """A reference or an image ID (full or a unique prefix) -> target and the reference."""
        m = _ID_PREFIX.match(text)
        if m:
            found = self._by_prefix(m.group(1))
            if found is not None:
                return found, None
            if text.startswith("sha256:"):
                raise ImageNotFound(f"no such image: {text}")
        ref = parse(text)
        return self.references.get(ref), ref

    def _by_prefix(self, prefix: str) -> Digest | None:
        like = f"sha256:{prefix}%"
        rows = self._db.query(
            "SELECT id FROM images WHERE id LIKE ? UNION SELECT id FROM indexes WHERE id LIKE ?",
            (like, like),
        )
        if len(rows) > 1:
            raise UsageError(f"image ID prefix {prefix!r} is ambiguous")
        return Digest.parse(str(rows[0][0])) if rows else None

    def get(self, text: str) -> Image | ImageIndex:
        target, _ = self.resolve(text)
        return self.images.get(target)

    # -- removing -----------------------------------------------------------------------------
    def remove(self, text: str, *, force: bool = False) -> tuple[list[Reference], list[Digest]]:
        """``rmi``: untag, and delete the image when nothing else refers to it.

        By ID: the image goes with every tag when ``force`` or when it has at most one name.
        Returns (references removed, images/indexes deleted); files follow after the commit.
        """
        target, ref = self.resolve(text)
        untagged: list[Reference] = []
        deleted: list[str] = []
        with self._db.write() as conn:
            rows = conn.execute(
                "SELECT ref FROM refs WHERE target = ? ORDER BY ref", (str(target),)
            ).fetchall()
            names = [parse(str(r)) for (r,) in rows]
            if ref is not None:
                key = _stored_key(ref)
                victims = [n for n in names if n == key]
            else:
                if len({n.name for n in names}) > 1 and not force:
                    raise StoreError(
                        f"unable to delete {target.short} (must be forced): image is referenced "
                        "in multiple repositories"
                    )
                victims = names
            if conn.execute(
                "SELECT 1 FROM index_children WHERE child = ?", (str(target),)
            ).fetchone() and (ref is None):
                raise StoreError(
                    f"unable to delete {target.short}: it is part of a multi-platform image"
                )
            for v in victims:
                conn.execute("DELETE FROM refs WHERE ref = ?", (str(v),))
                untagged.append(v)
            deleted = remove_if_unreferenced(conn, str(target))
            drop_unreferenced_rows(conn, dangling_images=False)
        collect_files(self._db, self._area)
        return untagged, [Digest.parse(d) for d in deleted]

    def prune(self) -> PruneResult:
        """Drop untagged images no index keeps, unused layers, and every file nothing names."""
        with self._db.write() as conn:
            before = conn.execute("SELECT COUNT(*) FROM layers").fetchone()[0]
            removed = drop_unreferenced_rows(conn, dangling_images=True)
            after = conn.execute("SELECT COUNT(*) FROM layers").fetchone()[0]
        files, freed = collect_files(self._db, self._area)
        return PruneResult(
            tuple(Digest.parse(r) for r in removed), int(before - after), files, freed
        )


def _stored_key(ref: Reference) -> Reference:
    if ref.digest is not None:
        return Reference(ref.domain, ref.path, None, ref.digest)
    return Reference(ref.domain, ref.path, ref.tag or "latest", None)
