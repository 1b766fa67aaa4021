"""Unfinished blob uploads, remembered across processes so a later push can resume them.

Only the session URL and the offset the registry acknowledged are kept; the URL's query may
hold a signed ``_state`` but never credentials (the registry client strips userinfo).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from yardarm.store.db import Database

__all__ = ["UploadState", "UploadStateStore"]


@dataclass(frozen=True, slots=True)
class UploadState:
    registry: str
    repository: str
    key: str
    location: str = field(repr=False)
    offset: int
    extra: Mapping[str, str]
    updated: float


class UploadStateStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def save(
        self,
        registry: str,
        repository: str,
        key: str,
        location: str,
        offset: int,
        extra: Mapping[str, str],
    ) -> None:
        with self._db.write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO uploads(registry, repository, key, location, offset, "
                "extra, updated) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    registry,
                    repository,
                    key,
                    location,
                    int(offset),
                    json.dumps(dict(extra), sort_keys=True),
                    time.time(),
                ),
            )

    def get(self, registry: str, repository: str, key: str) -> UploadState | None:
        row = self._db.query_one(
            "SELECT location, offset, extra, updated FROM uploads "
            "WHERE registry = ? AND repository = ? AND key = ?",
            (registry, repository, key),
        )
        if row is None:
            return None
        location, offset, extra, updated = row
        loaded = json.loads(str(extra))
        return UploadState(
            registry,
            repository,
            key,
            str(location),
            int(str(offset)),
            {str(k): str(v) for k, v in loaded.items()},
            float(str(updated)),
        )

    def delete(self, registry: str, repository: str, key: str) -> None:
        with self._db.write() as conn:
            conn.execute(
                "DELETE FROM uploads WHERE registry = ? AND repository = ? AND key = ?",
                (registry, repository, key),
            )
