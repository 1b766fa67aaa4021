"""Tags and digest references pointing at image IDs or index digests (moby's reference store)."""

from __future__ import annotations

import time

from yardarm.digest import Digest
from yardarm.errors import ImageNotFound, StoreError
from yardarm.reference import Reference, parse
from yardarm.store.db import Database

__all__ = ["ReferenceStore"]


def _key(ref: Reference) -> Reference:
    """What a reference is stored as: a tag (``latest`` when none) or a digest reference."""
    if ref.digest is not None:
        return Reference(ref.domain, ref.path, None, ref.digest)
    return Reference(ref.domain, ref.path, ref.tag or "latest", None)


class ReferenceStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, ref: Reference) -> Digest:
        key = _key(ref)
        row = self._db.query_one("SELECT target FROM refs WHERE ref = ?", (str(key),))
        if row is None:
            raise ImageNotFound(f"no such image: {key.familiar()}")
        return Digest.parse(str(row[0]))

    def references_by_name(self, name: Reference) -> list[tuple[Reference, Digest]]:
        rows = self._db.query(
            "SELECT ref, target FROM refs WHERE name = ? ORDER BY ref", (name.name,)
        )
        return [(parse(str(r)), Digest.parse(str(t))) for r, t in rows]

    def references_to(self, target: Digest) -> list[Reference]:
        rows = self._db.query("SELECT ref FROM refs WHERE target = ? ORDER BY ref", (str(target),))
        return [parse(str(r)) for (r,) in rows]

    def add_tag(self, ref: Reference, target: Digest, *, force: bool = True) -> None:
        if ref.digest is not None:
            raise StoreError(f"refusing to create a tag with a digest: {ref.familiar()}")
        self._add(_key(ref), target, force=force)

    def add_digest_reference(self, ref: Reference, target: Digest) -> None:
        """Record ``name@digest`` after a push, as moby's addDigestReference does."""
        if ref.digest is None:
            raise StoreError(f"a digest reference needs a digest: {ref.familiar()}")
        self._add(_key(ref), target, force=True)

    def _add(self, key: Reference, target: Digest, *, force: bool) -> None:
        with self._db.write() as conn:
            known = conn.execute(
                "SELECT 1 FROM images WHERE id = ? UNION SELECT 1 FROM indexes WHERE id = ?",
                (str(target), str(target)),
            ).fetchone()
            if known is None:
                raise ImageNotFound(f"no such image: {target}")
            old = conn.execute("SELECT target FROM refs WHERE ref = ?", (str(key),)).fetchone()
            if old is not None and old[0] != str(target) and not force:
                raise StoreError(f"{key.familiar()} already points at {old[0]}")
            conn.execute(
                "INSERT OR REPLACE INTO refs(ref, name, tag, digest, target, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (str(key), key.name, key.tag, key.digest, str(target), time.time()),
            )

    def delete(self, ref: Reference) -> bool:
        with self._db.write() as conn:
            cur = conn.execute("DELETE FROM refs WHERE ref = ?", (str(_key(ref)),))
            return cur.rowcount > 0

    def all(self) -> list[tuple[Reference, Digest]]:
        rows = self._db.query("SELECT ref, target FROM refs ORDER BY ref")
        return [(parse(str(r)), Digest.parse(str(t))) for r, t in rows]
