"""Layers keyed by ChainID, and the blob files that carry them.

A layer is identified by its ChainID (the DiffIDs of it and everything below it), so the same
tar on top of different parents is a different layer, as in moby. Each layer remembers the
blobs it arrived as: the original gzip or zstd bytes are kept so a push can send them byte for
byte and the manifest that named them keeps its digest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from yardarm.digest import Digest
from yardarm.errors import LayerNotFound, StoreCorrupt
from yardarm.manifest import Descriptor
from yardarm.store.blobs import BlobArea
from yardarm.store.db import Database

if TYPE_CHECKING:
    from yardarm.store.images import Image

__all__ = ["CompressedBlob", "Layer", "LayerStore", "chain_ids"]


def chain_ids(diff_ids: Sequence[Digest]) -> list[Digest]:
    """ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))."""
    out: list[Digest] = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
        else:
            text = f"{out[-1]} {diff_id}".encode()
            out.append(Digest("sha256", hashlib.sha256(text).hexdigest()))
    return out


@dataclass(frozen=True, slots=True)
class CompressedBlob:
    """A layer blob as stored: ``compression`` is gzip or zstd (``none`` only in ``Layer.blob``)."""

    digest: Digest
    size: int
    media_type: str
    compression: str


@dataclass(frozen=True, slots=True)
class Layer:
    chain_id: Digest
    diff_id: Digest
    parent: Digest | None
    size: int  # uncompressed bytes; -1 when unknown (foreign layer stored without content)
    compressed: CompressedBlob | None  # the original gzip/zstd blob, sent byte for byte
    foreign: Descriptor | None  # non-distributable layer: its descriptor with urls
    blob: CompressedBlob | None  # the stored file whatever its compression (None: no content)
    _area: BlobArea = field(repr=False, compare=False)

    def open(self) -> BinaryIO:
        """The uncompressed tar stream, decompressing on the fly when the blob is compressed."""
        if self.blob is None:
            raise LayerNotFound(f"layer {self.diff_id} has no content in the store")
        raw = self.open_compressed() if self.compressed else self._open_file(self.blob)
        from yardarm.store.ingest import gzip_reader, zstd_reader

        if self.blob.compression == "gzip":
            return gzip_reader(raw)
        if self.blob.compression == "zstd":
            return zstd_reader(raw)
        return raw

    def open_compressed(self) -> BinaryIO:
        """The compressed blob exactly as imported."""
        if self.compressed is None:
            raise LayerNotFound(f"layer {self.diff_id} has no compressed blob in the store")
        return self._open_file(self.compressed)

    def compressed_path(self) -> Path | None:
        return None if self.compressed is None else self._area.path_for(self.compressed.digest)

    def blob_path(self) -> Path | None:
        """The stored file (compressed or plain tar), for sendfile."""
        return None if self.blob is None else self._area.path_for(self.blob.digest)

    def _open_file(self, blob: CompressedBlob) -> BinaryIO:
        try:
            return self._area.path_for(blob.digest).open("rb")
        except FileNotFoundError:
            raise StoreCorrupt(
                f"blob {blob.digest} of layer {self.diff_id} is missing from the store"
            ) from None


class LayerStore:
    def __init__(self, db: Database, area: BlobArea) -> None:
        self._db = db
        self._area = area

    def get(self, chain_id: Digest, prefer_blob: Digest | None = None) -> Layer:
        """The layer; its blob is ``prefer_blob`` when stored, else the newest one."""
        row = self._db.query_one(
            "SELECT diff_id, parent, size, foreign_desc FROM layers WHERE chain_id = ?",
            (str(chain_id),),
        )
        if row is None:
            raise LayerNotFound(f"layer {chain_id} is not in the store")
        diff_id, parent, size, foreign_json = row
        blobs = self._db.query(
            "SELECT digest, size, media_type, compression FROM layer_blobs WHERE chain_id = ? "
            "ORDER BY added DESC",
            (str(chain_id),),
        )
        chosen = None
        for b in blobs:
            blob = CompressedBlob(Digest.parse(str(b[0])), int(str(b[1])), str(b[2]), str(b[3]))
            if chosen is None or blob.digest == prefer_blob:
                chosen = blob
        foreign = None
        if foreign_json is not None:
            foreign = Descriptor.from_json(json.loads(str(foreign_json)), "foreign layer")
        return Layer(
            chain_id,
            Digest.parse(str(diff_id)),
            None if parent is None else Digest.parse(str(parent)),
            int(str(size)),
            chosen if chosen is not None and chosen.compression != "none" else None,
            foreign,
            chosen,
            self._area,
        )

    def for_image(self, image: Image) -> list[Layer]:
        """Bottom to top, each with the blob the image's original manifest named."""
        descs = image.layer_descriptors or ()
        out = []
        for i, cid in enumerate(chain_ids(image.diff_ids)):
            prefer = descs[i].digest if i < len(descs) else None
            out.append(self.get(cid, prefer))
        return out
