"""Media types of the Docker and OCI image formats, and the questions we ask of them."""

from __future__ import annotations

from typing import Final

__all__ = [
    "DOCKER_CONFIG",
    "DOCKER_FOREIGN_LAYER",
    "DOCKER_LAYER",
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "DOCKER_SCHEMA1_MANIFEST",
    "DOCKER_SCHEMA1_SIGNED",
    "DOCKER_UNCOMPRESSED_LAYER",
    "MANIFEST_ACCEPT",
    "OCI_CONFIG",
    "OCI_INDEX",
    "OCI_LAYER",
    "OCI_LAYER_GZIP",
    "OCI_LAYER_NONDIST",
    "OCI_LAYER_NONDIST_GZIP",
    "OCI_LAYER_NONDIST_ZSTD",
    "OCI_LAYER_ZSTD",
    "OCI_MANIFEST",
    "compression_of",
    "is_foreign_layer",
    "is_index",
    "is_layer",
    "is_manifest",
]

DOCKER_MANIFEST: Final = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST: Final = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1_MANIFEST: Final = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED: Final = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_CONFIG: Final = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER: Final = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_UNCOMPRESSED_LAYER: Final = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_FOREIGN_LAYER: Final = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX: Final = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG: Final = "application/vnd.oci.image.config.v1+json"
OCI_LAYER: Final = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP: Final = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD: Final = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDIST: Final = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_NONDIST_GZIP: Final = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_NONDIST_ZSTD: Final = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

#: What we accept when reading manifests, best first.
MANIFEST_ACCEPT: Final = (
    OCI_INDEX,
    OCI_MANIFEST,
    DOCKER_MANIFEST_LIST,
    DOCKER_MANIFEST,
    DOCKER_SCHEMA1_SIGNED,
    DOCKER_SCHEMA1_MANIFEST,
)

_LAYERS: Final = {
    DOCKER_LAYER: "gzip",
    DOCKER_UNCOMPRESSED_LAYER: "none",
    DOCKER_FOREIGN_LAYER: "gzip",
    OCI_LAYER: "none",
    OCI_LAYER_GZIP: "gzip",
    OCI_LAYER_ZSTD: "zstd",
    OCI_LAYER_NONDIST: "none",
    OCI_LAYER_NONDIST_GZIP: "gzip",
    OCI_LAYER_NONDIST_ZSTD: "zstd",
}
_FOREIGN: Final = frozenset(
    {DOCKER_FOREIGN_LAYER, OCI_LAYER_NONDIST, OCI_LAYER_NONDIST_GZIP, OCI_LAYER_NONDIST_ZSTD}
)


def is_layer(media_type: str) -> bool:
    return media_type in _LAYERS


def is_foreign_layer(media_type: str) -> bool:
    """Non-distributable layers: registries may refuse them, so they are not pushed by default."""
    return media_type in _FOREIGN


def compression_of(media_type: str) -> str:
    """``none``, ``gzip`` or ``zstd`` for a layer media type; KeyError for anything else."""
    return _LAYERS[media_type]


def is_index(media_type: str) -> bool:
    return media_type in (OCI_INDEX, DOCKER_MANIFEST_LIST)


def is_manifest(media_type: str) -> bool:
    return media_type in (OCI_MANIFEST, DOCKER_MANIFEST)
