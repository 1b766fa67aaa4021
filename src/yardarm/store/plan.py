"""What an import found, checked and ready: recorded in one transaction or not at all.

Importers only read their input and write temporary files; :func:`commit` renames the needed
files into ``blobs/`` (fsynced) and then records every row in a single transaction, so an
input that fails anywhere, or a process killed anywhere, leaves the store's rows as they were.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from yardarm.digest import Digest
from yardarm.errors import StoreError
from yardarm.manifest import Descriptor, Platform
from yardarm.reference import Reference
from yardarm.store.blobs import BlobArea
from yardarm.store.db import Database
from yardarm.store.layers import chain_ids

__all__ = ["LoadedImage", "Plan", "PlannedImage", "PlannedIndex", "PlannedLayer", "commit"]


@dataclass(slots=True)
class PlannedLayer:
    diff_id: Digest
    size: int  # uncompressed; -1 unknown
    blob_digest: Digest | None  # None: foreign layer without content
    blob_size: int = 0
    media_type: str = ""
    compression: str = "none"
    foreign: Descriptor | None = None


@dataclass(slots=True)
class PlannedImage:
    config_raw: bytes
    config_media_type: str
    diff_ids: tuple[Digest, ...]
    layers: list[PlannedLayer]
    platform: Platform | None
    manifest_raw: bytes | None
    manifest_media_type: str | None
    layer_descriptors: tuple[Descriptor, ...] | None
    source_format: str

    @property
    def id(self) -> Digest:
        return Digest.from_bytes(self.config_raw)


@dataclass(slots=True)
class PlannedIndex:
    raw: bytes
    media_type: str
    children: list[tuple[Descriptor, Digest]]

    @property
    def id(self) -> Digest:
        return Digest.from_bytes(self.raw)


@dataclass(frozen=True, slots=True)
class LoadedImage:
    """One top-level thing an import produced, and the tags it got."""

    id: Digest
    tags: tuple[Reference, ...]


@dataclass(slots=True)
class Plan:
    images: dict[Digest, PlannedImage] = field(default_factory=dict)
    indexes: dict[Digest, PlannedIndex] = field(default_factory=dict)
    top: list[tuple[Digest, list[Reference]]] = field(default_factory=list)
    files: dict[Digest, Path] = field(default_factory=dict)  # blob -> verified temp file

    def loaded(self) -> list[LoadedImage]:
        return [LoadedImage(t, tuple(tags)) for t, tags in self.top]


def _platform_json(p: Platform | None) -> str | None:
    return None if p is None else json.dumps(p.to_json(), sort_keys=True)


def commit(db: Database, area: BlobArea, plan: Plan) -> None:
    """Put the files in place, then record everything at once. Caller holds ``area.shared()``."""
    needed: set[Digest] = set()
    for img in plan.images.values():
        needed.update(lay.blob_digest for lay in img.layers if lay.blob_digest is not None)
    known = {
        str(r[0]) for r in db.query("SELECT DISTINCT digest FROM layer_blobs") if r[0] is not None
    }
    algorithms: set[str] = set()
    for digest in sorted(needed):
        temp = plan.files.get(digest)
        if str(digest) in known and area.exists(digest):
            continue
        if temp is None:
            if area.exists(digest):
                continue  # an orphan from an earlier crash whose content was verified now
            # only when another process removed a blob this load relied on, mid-load
            raise StoreError(f"blob {digest} vanished from the store during the load; retry")
        area.promote(temp, digest)
        algorithms.add(digest.algorithm)
    area.sync_dirs(algorithms)
    now = time.time()
    with db.write() as conn:
        for image_id, img in plan.images.items():
            cids = chain_ids(img.diff_ids)
            descs = img.layer_descriptors
            conn.execute(
                "INSERT INTO images(id, config, config_media_type, diff_ids, chain_id, "
                "platform, manifest, manifest_media_type, layer_descriptors, source_format, "
                "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET platform = COALESCE(excluded.platform, platform), "
                "manifest = COALESCE(excluded.manifest, manifest), "
                "manifest_media_type = "
                "COALESCE(excluded.manifest_media_type, manifest_media_type), "
                "layer_descriptors = COALESCE(excluded.layer_descriptors, layer_descriptors)",
                (
                    str(image_id),
                    img.config_raw,
                    img.config_media_type,
                    json.dumps([str(d) for d in img.diff_ids]),
                    str(cids[-1]) if cids else None,
                    _platform_json(img.platform),
                    img.manifest_raw,
                    img.manifest_media_type,
                    None if descs is None else json.dumps([d.to_json() for d in descs]),
                    img.source_format,
                    now,
                ),
            )
            conn.execute("DELETE FROM image_layers WHERE image_id = ?", (str(image_id),))
            for pos, (cid, lay) in enumerate(zip(cids, img.layers, strict=True)):
                conn.execute(
                    "INSERT INTO image_layers(image_id, position, chain_id) VALUES (?, ?, ?)",
                    (str(image_id), pos, str(cid)),
                )
                parent = str(cids[pos - 1]) if pos else None
                foreign = None if lay.foreign is None else json.dumps(lay.foreign.to_json())
                conn.execute(
                    "INSERT INTO layers(chain_id, diff_id, parent, size, foreign_desc) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT(chain_id) DO UPDATE SET "
                    "size = MAX(size, excluded.size), "
                    "foreign_desc = COALESCE(foreign_desc, excluded.foreign_desc)",
                    (str(cid), str(lay.diff_id), parent, lay.size, foreign),
                )
                if lay.blob_digest is not None:
                    conn.execute(
                        "INSERT OR REPLACE INTO layer_blobs(chain_id, digest, size, media_type, "
                        "compression, added) VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            str(cid),
                            str(lay.blob_digest),
                            lay.blob_size,
                            lay.media_type,
                            lay.compression,
                            now,
                        ),
                    )
        for index_id, idx in plan.indexes.items():
            conn.execute(
                "INSERT OR REPLACE INTO indexes(id, raw, media_type, children, created) "
                "VALUES (?, ?, ?, ?, COALESCE((SELECT created FROM indexes WHERE id = ?), ?))",
                (
                    str(index_id),
                    idx.raw,
                    idx.media_type,
                    json.dumps([[d.to_json(), str(c)] for d, c in idx.children]),
                    str(index_id),
                    now,
                ),
            )
            conn.execute("DELETE FROM index_children WHERE index_id = ?", (str(index_id),))
            for _, child in idx.children:
                conn.execute(
                    "INSERT OR IGNORE INTO index_children(index_id, child) VALUES (?, ?)",
                    (str(index_id), str(child)),
                )
        for target, tags in plan.top:
            for ref in tags:
                conn.execute(
                    "INSERT OR REPLACE INTO refs(ref, name, tag, digest, target, created) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (str(ref), ref.name, ref.tag, ref.digest, str(target), now),
                )
