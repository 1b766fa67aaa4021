"""The v2 metadata service: which registry blobs a layer's DiffID is known to be, and where.

It mirrors moby's ``distribution/metadata.V2MetadataService``: the pusher asks it for mount
candidates and for blobs that may already exist, and records every blob it pushed or found.
Each entry carries an HMAC keyed by the credentials used, so entries learnt with one set of
credentials are preferred only when pushing with the same ones (a different user may not be
allowed to read the source repository).
"""

from __future__ import annotations

import hashlib
import hmac as _hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from yardarm.digest import Digest
from yardarm.store.db import Database

__all__ = [
    "MAX_METADATA",
    "V2Metadata",
    "V2MetadataService",
    "check_hmac",
    "compute_hmac",
    "compute_hmac_key",
]

#: At most this many entries per DiffID; the oldest go first (moby's maxMetadata).
MAX_METADATA: Final = 50

#: Field order of moby's authConfigKeyInput, which decides the JSON and so the key.
_KEY_FIELDS: Final = ("username", "password", "auth", "identitytoken", "registrytoken")


@dataclass(frozen=True, slots=True)
class V2Metadata:
    """One registry blob a DiffID was pushed as or found as."""

    digest: Digest
    source_repository: str  # full name "host/path"
    hmac: str
    #: The blob's media type when we know it ("" for entries recorded without one, which moby
    #: treated as gzip); a push must not name a zstd blob with a gzip media type.
    media_type: str = ""


def _go_json_string(value: str) -> str:
    """A JSON string exactly as Go's json.Marshal writes it (HTML-safe escaping included)."""
    text = json.dumps(value, ensure_ascii=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def compute_hmac_key(fields: Mapping[str, str]) -> str:
    """The sha256 digest string of the credentials' JSON, or "" for anonymous access.

    The JSON is what Go's json.Marshal gives for moby's authConfigKeyInput: fields in that
    order, empty ones omitted, no spaces. Unknown keys are ignored like Go would.
    """
    parts = [f'"{k}":{_go_json_string(fields[k])}' for k in _KEY_FIELDS if fields.get(k)]
    if not parts:
        return ""
    canonical = "{" + ",".join(parts) + "}"
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def compute_hmac(key: str, digest: Digest, source_repository: str) -> str:
    """Hex HMAC-SHA256 over digest + source repository; "" when the key is empty."""
    if not key:
        return ""
    mac = _hmac.new(key.encode(), f"{digest}{source_repository}".encode(), hashlib.sha256)
    return mac.hexdigest()


def check_hmac(meta: V2Metadata, key: str) -> bool:
    """Whether ``meta`` was recorded with this key (both empty counts as a match, like moby)."""
    if not meta.hmac or not key:
        return not meta.hmac and not key
    expected = compute_hmac(key, meta.digest, meta.source_repository)
    return _hmac.compare_digest(expected, meta.hmac.lower())


class V2MetadataService:
    """Persistent per-DiffID lists, newest last, and the reverse digest -> DiffID map."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, diff_id: Digest) -> list[V2Metadata]:
        rows = self._db.query(
            "SELECT digest, source_repository, hmac, media_type FROM v2_metadata "
            "WHERE diff_id = ? ORDER BY seq",
            (str(diff_id),),
        )
        return [V2Metadata(Digest.parse(str(d)), str(s), str(h), str(m)) for d, s, h, m in rows]

    def add(
        self,
        diff_id: Digest,
        hmac_key: str,
        meta_digest: Digest,
        source_repository: str,
        media_type: str = "",
    ) -> None:
        """moby's TagAndAdd: record (digest, repository) as the newest entry of ``diff_id``.

        An entry with the same digest and repository moves to the end with the new HMAC; past
        :data:`MAX_METADATA` the oldest entries are dropped.
        """
        mac = compute_hmac(hmac_key, meta_digest, source_repository)
        with self._db.write() as conn:
            if not media_type:  # keep what an earlier record knew
                row = conn.execute(
                    "SELECT media_type FROM v2_metadata WHERE digest = ? AND media_type != '' "
                    "LIMIT 1",
                    (str(meta_digest),),
                ).fetchone()
                media_type = str(row[0]) if row else ""
            conn.execute(
                "DELETE FROM v2_metadata WHERE diff_id = ? AND digest = ? "
                "AND source_repository = ?",
                (str(diff_id), str(meta_digest), source_repository),
            )
            conn.execute(
                "INSERT INTO v2_metadata(diff_id, digest, source_repository, hmac, media_type) "
                "VALUES (?, ?, ?, ?, ?)",
                (str(diff_id), str(meta_digest), source_repository, mac, media_type),
            )
            conn.execute(
                "DELETE FROM v2_metadata WHERE diff_id = ? AND seq NOT IN "
                "(SELECT seq FROM v2_metadata WHERE diff_id = ? ORDER BY seq DESC LIMIT ?)",
                (str(diff_id), str(diff_id), MAX_METADATA),
            )
            conn.execute(
                "INSERT OR REPLACE INTO v2_digest_diff(digest, diff_id) VALUES (?, ?)",
                (str(meta_digest), str(diff_id)),
            )

    def remove(self, meta: V2Metadata) -> None:
        """Forget that blob in that repository (e.g. a mount found it gone), for every DiffID."""
        with self._db.write() as conn:
            conn.execute(
                "DELETE FROM v2_metadata WHERE digest = ? AND source_repository = ?",
                (str(meta.digest), meta.source_repository),
            )

    def diff_id_for(self, digest: Digest) -> Digest | None:
        row = self._db.query_one(
            "SELECT diff_id FROM v2_digest_diff WHERE digest = ?", (str(digest),)
        )
        return None if row is None else Digest.parse(str(row[0]))
