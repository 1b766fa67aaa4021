"""What "the store is unchanged" means, for every test that feeds it bad input."""

from __future__ import annotations

import sqlite3
from pathlib import Path

__all__ = ["STORE_TABLES", "store_snapshot"]

STORE_TABLES = (
    "refs",
    "images",
    "image_layers",
    "indexes",
    "index_children",
    "layers",
    "layer_blobs",
    "v2_metadata",
    "uploads",
)


def store_snapshot(store: Path) -> dict[str, object]:
    """Every row and every blob file of a store, with sizes and mtimes: 'nothing changed'."""
    conn = sqlite3.connect(store / "store.db")
    try:
        rows = {t: sorted(map(repr, conn.execute(f"SELECT * FROM {t}"))) for t in STORE_TABLES}
    finally:
        conn.close()
    files = sorted(
        (str(p.relative_to(store)), p.stat().st_size, p.stat().st_mtime_ns)
        for p in (store / "blobs").rglob("*")
        if p.is_file()
    )
    tmp = store / "tmp"
    temps = sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []
    return {"rows": rows, "files": files, "tmp": temps}
