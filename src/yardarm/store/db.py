"""The store's SQLite database: schema, connection settings and transactions.

One database holds every row; files under ``blobs/`` hold content. A row may only name a file
that is already in place (files are renamed before the transaction that records them commits),
so a process killed at any instant leaves at worst unreferenced files, which are garbage.
WAL mode lets readers proceed while another process writes; the busy timeout makes concurrent
writers wait for each other instead of failing.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from yardarm.errors import StoreCorrupt

__all__ = ["SCHEMA_VERSION", "Database"]

SCHEMA_VERSION: Final = 1
BUSY_TIMEOUT_MS: Final = 60_000

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS refs (
    ref TEXT PRIMARY KEY,             -- canonical reference string
    name TEXT NOT NULL,               -- domain/path
    tag TEXT,
    digest TEXT,                      -- manifest digest of a digest reference
    target TEXT NOT NULL,             -- image ID or index digest
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS refs_name ON refs(name);
CREATE INDEX IF NOT EXISTS refs_target ON refs(target);
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,              -- config digest
    config BLOB NOT NULL,
    config_media_type TEXT NOT NULL,
    diff_ids TEXT NOT NULL,           -- JSON list
    chain_id TEXT,                    -- top layer's ChainID, NULL for no layers
    platform TEXT,                    -- JSON or NULL
    manifest BLOB,
    manifest_media_type TEXT,
    layer_descriptors TEXT,           -- JSON list of descriptors, or NULL
    source_format TEXT NOT NULL,
    created REAL NOT NULL             -- when it entered the store
);
CREATE TABLE IF NOT EXISTS image_layers (
    image_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    chain_id TEXT NOT NULL,
    PRIMARY KEY (image_id, position)
);
CREATE INDEX IF NOT EXISTS image_layers_chain ON image_layers(chain_id);
CREATE TABLE IF NOT EXISTS indexes (
    id TEXT PRIMARY KEY,              -- digest of raw
    raw BLOB NOT NULL,
    media_type TEXT NOT NULL,
    children TEXT NOT NULL,           -- JSON list of [descriptor, child target]
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS index_children (
    index_id TEXT NOT NULL,
    child TEXT NOT NULL,
    PRIMARY KEY (index_id, child)
);
CREATE INDEX IF NOT EXISTS index_children_child ON index_children(child);
CREATE TABLE IF NOT EXISTS layers (
    chain_id TEXT PRIMARY KEY,
    diff_id TEXT NOT NULL,
    parent TEXT,
    size INTEGER NOT NULL,            -- uncompressed; -1 when unknown (foreign, no content)
    foreign_desc TEXT                 -- JSON descriptor of a non-distributable layer
);
CREATE TABLE IF NOT EXISTS layer_blobs (
    chain_id TEXT NOT NULL,
    digest TEXT NOT NULL,             -- the blob file as stored (compressed or plain tar)
    size INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    compression TEXT NOT NULL,        -- none | gzip | zstd
    added REAL NOT NULL,
    PRIMARY KEY (chain_id, digest)
);
CREATE INDEX IF NOT EXISTS layer_blobs_digest ON layer_blobs(digest);
CREATE TABLE IF NOT EXISTS v2_metadata (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    diff_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    source_repository TEXT NOT NULL,
    hmac TEXT NOT NULL,
    media_type TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS v2_metadata_diff ON v2_metadata(diff_id, seq);
CREATE INDEX IF NOT EXISTS v2_metadata_digest ON v2_metadata(digest);
CREATE TABLE IF NOT EXISTS v2_digest_diff (digest TEXT PRIMARY KEY, diff_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS uploads (
    registry TEXT NOT NULL,
    repository TEXT NOT NULL,
    key TEXT NOT NULL,
    location TEXT NOT NULL,
    offset INTEGER NOT NULL,
    extra TEXT NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (registry, repository, key)
);
"""


def _statements(script: str) -> list[str]:
    """executescript would COMMIT our transaction first, so statements run one by one."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


class Database:
    """A connection shared by the threads of one process, serialised by a lock.

    Import workers never touch the database (they only write files), so one connection is
    enough and keeps transactions simple.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(
                str(path),
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            self._conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=OFF")
            with self.write() as conn:
                for statement in _statements(_SCHEMA):
                    conn.execute(statement)
                conn.execute(
                    "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', ?)",
                    (str(SCHEMA_VERSION),),
                )
                # Stores made before v2 metadata recorded media types gain the column.
                columns = {row[1] for row in conn.execute("PRAGMA table_info(v2_metadata)")}
                if "media_type" not in columns:
                    conn.execute(
                        "ALTER TABLE v2_metadata ADD COLUMN media_type TEXT NOT NULL DEFAULT ''"
                    )
        except sqlite3.DatabaseError as exc:
            raise StoreCorrupt(f"{path}: cannot open the store database: {exc}") from None
        (version,) = self.query_one("SELECT value FROM meta WHERE key = 'schema'") or ("0",)
        if int(str(version)) > SCHEMA_VERSION:
            raise StoreCorrupt(
                f"{path}: store schema {version} is newer than this yardarm ({SCHEMA_VERSION})"
            )

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """An IMMEDIATE transaction: takes the write lock up front so it cannot deadlock later."""
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            return list(self._conn.execute(sql, params).fetchall())

    def query_one(self, sql: str, params: tuple[object, ...] = ()) -> tuple[object, ...] | None:
        with self._lock:
            row = self._conn.execute(sql, params).fetchone()
            return None if row is None else tuple(row)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
