"""Removing images and collecting what nothing references any more.

Rows go first, in one transaction; files go after it commits, under the exclusive lock so no
import is between writing a file and recording it. A crash in between leaves only unreferenced
files, which the next collection removes.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from yardarm.digest import Digest
from yardarm.store.blobs import BlobArea
from yardarm.store.db import Database

__all__ = [
    "PruneResult",
    "collect_files",
    "drop_unreferenced_rows",
    "remove_if_unreferenced",
]


@dataclass(frozen=True, slots=True)
class PruneResult:
    images_removed: tuple[Digest, ...]
    layers_removed: int
    files_removed: int
    bytes_freed: int


def drop_unreferenced_rows(conn: sqlite3.Connection, *, dangling_images: bool) -> list[str]:
    """Delete indexes/images nothing keeps, then layers and layer blobs no image uses.

    An image is kept by a reference or by an index that is kept. ``dangling_images=False``
    keeps untagged images that are not part of any index (docker keeps them until an image
    prune), so only images orphaned by this very operation should go.
    Returns the removed image and index IDs.
    """
    removed: list[str] = []
    while dangling_images:
        rows = conn.execute(
            "SELECT id FROM indexes WHERE id NOT IN (SELECT target FROM refs) "
            "AND id NOT IN (SELECT child FROM index_children)"
        ).fetchall()
        if not rows:
            break
        for (iid,) in rows:
            conn.execute("DELETE FROM indexes WHERE id = ?", (iid,))
            conn.execute("DELETE FROM index_children WHERE index_id = ?", (iid,))
            removed.append(iid)
    if dangling_images:
        rows = conn.execute(
            "SELECT id FROM images WHERE id NOT IN (SELECT target FROM refs) "
            "AND id NOT IN (SELECT child FROM index_children)"
        ).fetchall()
        for (iid,) in rows:
            conn.execute("DELETE FROM images WHERE id = ?", (iid,))
            conn.execute("DELETE FROM image_layers WHERE image_id = ?", (iid,))
            removed.append(iid)
    conn.execute("DELETE FROM image_layers WHERE image_id NOT IN (SELECT id FROM images)")
    conn.execute("DELETE FROM layers WHERE chain_id NOT IN (SELECT chain_id FROM image_layers)")
    conn.execute("DELETE FROM layer_blobs WHERE chain_id NOT IN (SELECT chain_id FROM layers)")
    return removed


def remove_if_unreferenced(conn: sqlite3.Connection, target: str) -> list[str]:
    """Delete an image or index no reference and no index keeps; an index takes its children.

    Returns what was deleted. Layers are left to :func:`drop_unreferenced_rows`.
    """
    if conn.execute("SELECT 1 FROM refs WHERE target = ?", (target,)).fetchone():
        return []
    if conn.execute("SELECT 1 FROM index_children WHERE child = ?", (target,)).fetchone():
        return []
    removed = [target]
    conn.execute("DELETE FROM images WHERE id = ?", (target,))
    conn.execute("DELETE FROM image_layers WHERE image_id = ?", (target,))
    children = [
        str(c)
        for (c,) in conn.execute(
            "SELECT child FROM index_children WHERE index_id = ?", (target,)
        ).fetchall()
    ]
    conn.execute("DELETE FROM indexes WHERE id = ?", (target,))
    conn.execute("DELETE FROM index_children WHERE index_id = ?", (target,))
    for child in children:
        removed += remove_if_unreferenced(conn, child)
    return removed


def collect_files(db: Database, area: BlobArea, *, wait: bool = True) -> tuple[int, int]:
    """Unlink blob files no row names, and dead writers' temporary files.

    Returns (files, bytes) removed; does nothing when ``wait`` is false and an import holds
    the lock.
    """
    with area.exclusive(wait=wait) as locked:
        if not locked:
            return 0, 0
        removed, freed = area.sweep_temp()
        referenced = {str(r[0]) for r in db.query("SELECT DISTINCT digest FROM layer_blobs")}
        for digest, path in area.all_files():
            if digest is not None and str(digest) in referenced:
                continue
            try:
                if path.is_dir():
                    continue
                size = path.stat().st_size
                path.unlink()
            except FileNotFoundError:
                continue
            removed += 1
            freed += size
        return removed, freed
