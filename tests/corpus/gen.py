"""Small deterministic images for the store tests: OCI layouts and docker-archives.

The store tests use this until (and besides) tests/support/imagegen.py; everything is derived
from a seed so failures reproduce. Layers are single-file tars of random or compressible bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard
from isal import igzip

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_TYPES = {
    "none": "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def content(rnd: random.Random, size: int, compressible: bool) -> bytes:
    if not compressible:
        return rnd.randbytes(size)
    words = [rnd.randbytes(6).hex().encode() for _ in range(64)]
    out = bytearray()
    while len(out) < size:
        out += rnd.choice(words) + b" "
    return bytes(out[:size])


def layer_tar(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = 0
        tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def compress(tar: bytes, compression: str) -> bytes:
    if compression == "gzip":
        return igzip.compress(tar, 1)
    if compression == "zstd":
        return zstandard.ZstdCompressor(level=1).compress(tar)
    return tar


@dataclass
class GenLayer:
    tar: bytes
    blob: bytes
    compression: str

    @property
    def diff_id(self) -> str:
        return sha(self.tar)

    @property
    def digest(self) -> str:
        return sha(self.blob)


@dataclass
class GenImage:
    layers: list[GenLayer]
    config: bytes
    manifest: bytes
    tags: list[str] = field(default_factory=list)

    @property
    def config_digest(self) -> str:
        return sha(self.config)

    @property
    def manifest_digest(self) -> str:
        return sha(self.manifest)

    @property
    def diff_ids(self) -> list[str]:
        return [lay.diff_id for lay in self.layers]


def make_image(
    seed: int,
    sizes: list[int],
    compression: str = "gzip",
    *,
    compressible: bool = True,
    arch: str = "amd64",
) -> GenImage:
    rnd = random.Random(seed)
    layers = []
    for i, size in enumerate(sizes):
        tar = layer_tar(f"file{i}-{seed}", content(rnd, size, compressible))
        layers.append(GenLayer(tar, compress(tar, compression), compression))
    config_obj: dict[str, Any] = {
        "architecture": arch,
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Env": [f"SEED={seed}"]},
        "rootfs": {"type": "layers", "diff_ids": [lay.diff_id for lay in layers]},
        "history": [{"created": "2024-01-01T00:00:00Z"} for _ in layers],
    }
    config = json.dumps(config_obj, separators=(",", ":")).encode()
    manifest_obj = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha(config), "size": len(config)},
        "layers": [
            {
                "mediaType": LAYER_TYPES[lay.compression],
                "digest": lay.digest,
                "size": len(lay.blob),
            }
            for lay in layers
        ],
    }
    manifest = json.dumps(manifest_obj, indent=2).encode()
    return GenImage(layers, config, manifest)


def _put(root: Path, data: bytes) -> None:
    path = root / "blobs" / "sha256" / sha(data).split(":", 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def write_layout(root: Path, images: list[tuple[GenImage, str | None]]) -> dict[str, Any]:
    """An OCI layout holding each image under an optional ``ref.name``; returns index.json."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    entries = []
    for img, ref_name in images:
        for lay in img.layers:
            _put(root, lay.blob)
        _put(root, img.config)
        _put(root, img.manifest)
        entry: dict[str, Any] = {
            "mediaType": OCI_MANIFEST,
            "digest": img.manifest_digest,
            "size": len(img.manifest),
        }
        if ref_name:
            entry["annotations"] = {"org.opencontainers.image.ref.name": ref_name}
        entries.append(entry)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    (root / "index.json").write_text(json.dumps(index))
    return index


def write_docker_archive(path: Path, images: list[tuple[GenImage, list[str]]]) -> None:
    """A classic ``docker save`` archive: <id>/layer.tar, <id>.json, manifest.json."""
    manifest = []
    with tarfile.open(path, "w") as tf:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))

        for img, tags in images:
            names = []
            for lay in img.layers:
                name = f"{lay.diff_id.split(':')[1]}/layer.tar"
                if name not in tf.getnames():
                    add(name, lay.blob)
                names.append(name)
            config_name = img.config_digest.split(":")[1] + ".json"
            add(config_name, img.config)
            manifest.append({"Config": config_name, "RepoTags": tags, "Layers": names})
        add("manifest.json", json.dumps(manifest).encode())
