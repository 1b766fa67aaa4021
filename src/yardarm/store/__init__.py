"""The local image store: references, images, layers, the v2 metadata service, importers.

What the pusher reads, as moby's pusher reads its reference, image and layer stores and its
v2 metadata service. One folder holds one SQLite database (WAL, many processes at once) and
content files under ``blobs/<algorithm>/<hex>``; rows are committed only after the files they
name are in place, so a process killed at any instant leaves a consistent store plus, at
worst, unreferenced files that :meth:`Store.prune` (and opening the store) removes.
"""

from __future__ import annotations

from yardarm.store.gc import PruneResult
from yardarm.store.images import Image, ImageIndex, ImageStore
from yardarm.store.layers import CompressedBlob, Layer, LayerStore, chain_ids
from yardarm.store.metadata import (
    MAX_METADATA,
    V2Metadata,
    V2MetadataService,
    check_hmac,
    compute_hmac,
    compute_hmac_key,
)
from yardarm.store.plan import LoadedImage
from yardarm.store.references import ReferenceStore
from yardarm.store.store import Store, default_store_path
from yardarm.store.uploads import UploadState, UploadStateStore

__all__ = [
    "MAX_METADATA",
    "CompressedBlob",
    "Image",
    "ImageIndex",
    "ImageStore",
    "Layer",
    "LayerStore",
    "LoadedImage",
    "PruneResult",
    "ReferenceStore",
    "Store",
    "UploadState",
    "UploadStateStore",
    "V2Metadata",
    "V2MetadataService",
    "chain_ids",
    "check_hmac",
    "compute_hmac",
    "compute_hmac_key",
    "default_store_path",
]
