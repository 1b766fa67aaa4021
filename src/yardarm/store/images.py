"""Images (configs by image ID) and multi-platform indexes, with the bytes they came as."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from yardarm.digest import Digest
from yardarm.errors import ImageNotFound
from yardarm.manifest import Descriptor, Platform
from yardarm.store.db import Database
from yardarm.store.layers import chain_ids

__all__ = ["Image", "ImageIndex", "ImageStore"]


@dataclass(frozen=True, slots=True)
class Image:
    """An image: its ID is the config digest; the original manifest is kept when there was one."""

    id: Digest
    config_raw: bytes = field(repr=False)
    config_media_type: str
    diff_ids: tuple[Digest, ...]
    platform: Platform | None
    manifest_raw: bytes | None = field(repr=False)
    manifest_media_type: str | None
    layer_descriptors: tuple[Descriptor, ...] | None
    source_format: str  # "docker" or "oci"
    created: float = 0.0  # when it entered this store

    def chain_id(self) -> Digest | None:
        ids = chain_ids(self.diff_ids)
        return ids[-1] if ids else None

    @property
    def manifest_digest(self) -> Digest | None:
        return None if self.manifest_raw is None else Digest.from_bytes(self.manifest_raw)

    def config(self) -> dict[str, Any]:
        obj = json.loads(self.config_raw)
        return obj if isinstance(obj, dict) else {}


@dataclass(frozen=True, slots=True)
class ImageIndex:
    """A manifest list / OCI index and, per entry, the image ID it resolved to."""

    id: Digest
    raw: bytes = field(repr=False)
    media_type: str
    children: tuple[tuple[Descriptor, Digest], ...]
    created: float = 0.0


def platform_from_json(text: object) -> Platform | None:
    if text is None:
        return None
    obj = json.loads(str(text))
    return Platform(obj["architecture"], obj["os"], obj.get("variant"), obj.get("os.version"))


class ImageStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, target: Digest) -> Image | ImageIndex:
        row = self._db.query_one(
            "SELECT config, config_media_type, diff_ids, platform, manifest, "
            "manifest_media_type, layer_descriptors, source_format, created "
            "FROM images WHERE id = ?",
            (str(target),),
        )
        if row is not None:
            return _image(target, row)
        irow = self._db.query_one(
            "SELECT raw, media_type, children, created FROM indexes WHERE id = ?", (str(target),)
        )
        if irow is not None:
            raw, media_type, children, created = irow
            kids = tuple(
                (Descriptor.from_json(d, "index entry"), Digest.parse(str(c)))
                for d, c in json.loads(str(children))
            )
            return ImageIndex(target, _bytes(raw), str(media_type), kids, float(str(created)))
        raise ImageNotFound(f"no such image: {target}")

    def ids(self) -> list[Digest]:
        rows = self._db.query("SELECT id FROM images UNION SELECT id FROM indexes")
        return [Digest.parse(str(r[0])) for r in rows]

    def exists(self, target: Digest) -> bool:
        return bool(
            self._db.query_one("SELECT 1 FROM images WHERE id = ?", (str(target),))
            or self._db.query_one("SELECT 1 FROM indexes WHERE id = ?", (str(target),))
        )


def _bytes(value: object) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError("expected a BLOB column")
    return bytes(value)


def _image(target: Digest, row: tuple[object, ...]) -> Image:
    config, cmt, diff_ids, platform, manifest, mmt, descs, fmt, created = row
    layer_descs = None
    if descs is not None:
        layer_descs = tuple(
            Descriptor.from_json(d, "layer descriptor") for d in json.loads(str(descs))
        )
    return Image(
        target,
        _bytes(config),
        str(cmt),
        tuple(Digest.parse(d) for d in json.loads(str(diff_ids))),
        platform_from_json(platform),
        None if manifest is None else _bytes(manifest),
        None if mmt is None else str(mmt),
        layer_descs,
        str(fmt),
        float(str(created)),
    )
