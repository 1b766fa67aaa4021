"""Deterministic container images on disk: OCI layouts and `docker save` archives.

Tests and benchmarks need images whose every byte is known in advance (so digests can be
asserted) yet whose layers are real tars (so DiffIDs are real) and whose size can reach hundreds
of MiB without the generator's memory growing. Same arguments and seed, same bytes, same digests
(on one machine: gzip output depends on the compressor library's version).

Only the standard library plus `zstandard` (for zstd layers) and, when importable, `isal` (a
gzip 10x faster than zlib on incompressible data); both are yardarm runtime dependencies.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import tarfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

Compression = Literal["none", "gzip", "zstd"]
Content = Literal["random", "text"]
ManifestFormat = Literal["oci", "docker"]

CHUNK = 1 << 20
MTIME = 1_700_000_000  # fixed timestamps: the tar bytes must not depend on when they are made
CREATED = "2023-11-14T22:13:20Z"

OCI_LAYOUT_VERSION = '{"imageLayoutVersion":"1.0.0"}'
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"

_LAYER_TYPES: dict[tuple[ManifestFormat, bool, Compression], str] = {
    ("oci", False, "none"): "application/vnd.oci.image.layer.v1.tar",
    ("oci", False, "gzip"): "application/vnd.oci.image.layer.v1.tar+gzip",
    ("oci", False, "zstd"): "application/vnd.oci.image.layer.v1.tar+zstd",
    ("oci", True, "none"): "application/vnd.oci.image.layer.nondistributable.v1.tar",
    ("oci", True, "gzip"): "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    ("oci", True, "zstd"): "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    ("docker", False, "none"): "application/vnd.docker.image.rootfs.diff.tar",
    ("docker", False, "gzip"): "application/vnd.docker.image.rootfs.diff.tar.gzip",
    ("docker", True, "none"): "application/vnd.docker.image.rootfs.foreign.diff.tar",
    ("docker", True, "gzip"): "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
}


@dataclass(frozen=True)
class LayerSpec:
    """One layer: `size` bytes of file content spread over `files` files (plus tar headers)."""

    size: int = 1024
    content: Content = "random"
    files: int = 1
    foreign: bool = False  # a non-distributable layer: descriptor with `urls`

    def __post_init__(self) -> None:
        if self.size < 0 or self.files < 1:
            raise ValueError(f"bad layer spec {self}")


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    def as_dict(self) -> dict[str, str]:
        d = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            d["variant"] = self.variant
        return d

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


PLATFORMS = (
    Platform("linux", "amd64"),
    Platform("linux", "arm64", "v8"),
    Platform("linux", "arm", "v7"),
    Platform("linux", "ppc64le"),
    Platform("linux", "s390x"),
    Platform("linux", "386"),
    Platform("linux", "riscv64"),
    Platform("linux", "mips64le"),
)


@dataclass(frozen=True)
class Layer:
    digest: str  # of the blob as stored (compressed if compressed)
    size: int
    media_type: str
    diff_id: str  # of the uncompressed tar
    uncompressed_size: int
    path: Path | None  # the blob file (OCI layout); None inside an archive
    member: str | None  # the archive member name (docker archive); None in a layout
    urls: tuple[str, ...] = ()

    def descriptor(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.urls:
            d["urls"] = list(self.urls)
        return d


@dataclass(frozen=True)
class Image:
    """One platform's image: its manifest, config and layers."""

    platform: Platform
    manifest_digest: str
    manifest_media_type: str
    manifest_bytes: bytes = field(repr=False)
    config_digest: str
    config_media_type: str
    config_bytes: bytes = field(repr=False)
    layers: tuple[Layer, ...]

    @property
    def manifest_size(self) -> int:
        return len(self.manifest_bytes)

    @property
    def config_size(self) -> int:
        return len(self.config_bytes)

    @property
    def diff_ids(self) -> tuple[str, ...]:
        return tuple(layer.diff_id for layer in self.layers)

    @property
    def layer_digests(self) -> tuple[str, ...]:
        return tuple(layer.digest for layer in self.layers)

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        return tuple(layer.size for layer in self.layers)


@dataclass(frozen=True)
class GeneratedImage:
    """What was written. Single-platform conveniences read `images[0]`."""

    path: Path  # the layout directory or the archive file
    kind: Literal["oci", "docker-archive"]
    tags: tuple[str, ...]
    images: tuple[Image, ...]
    index_digest: str | None = None  # the multi-platform index, when one was written
    index_media_type: str | None = None
    index_bytes: bytes | None = field(default=None, repr=False)

    @property
    def image(self) -> Image:
        return self.images[0]

    @property
    def digest(self) -> str:
        """What the tags point at: the index if there is one, else the manifest."""
        return self.index_digest or self.images[0].manifest_digest

    @property
    def manifest_digest(self) -> str:
        return self.image.manifest_digest

    @property
    def config_digest(self) -> str:
        return self.image.config_digest

    @property
    def diff_ids(self) -> tuple[str, ...]:
        return self.image.diff_ids

    @property
    def layer_digests(self) -> tuple[str, ...]:
        return self.image.layer_digests

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        return self.image.layer_sizes

    @property
    def layers(self) -> tuple[Layer, ...]:
        return self.image.layers

    def skopeo_ref(self, tag: str | None = None) -> str:
        """The transport:reference skopeo reads this image with."""
        if self.kind == "oci":
            return f"oci:{self.path}:{tag or self.tags[0]}"
        return f"docker-archive:{self.path}"


# --- content -------------------------------------------------------------------------------


class _ChunkReader:
    """A file-like view of a chunk generator, so tarfile can stream it."""

    def __init__(self, chunks: Iterator[bytes], size: int) -> None:
        self._chunks = chunks
        self._left = size
        self._buf = b""

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            n = self._left
        while len(self._buf) < n and self._left > len(self._buf):
            self._buf += next(self._chunks)
        out, self._buf = self._buf[:n], self._buf[n:]
        out = out[: self._left]
        self._left -= len(out)
        return out


def _random_chunks(key: bytes) -> Iterator[bytes]:
    # shake_128 keyed per chunk: incompressible, seekable by design, ~2x random.randbytes.
    i = 0
    while True:
        yield hashlib.shake_128(key + i.to_bytes(8, "big")).digest(CHUNK)
        i += 1


class _TextPool:
    """Compressible text, ~2.4x with gzip -1 and ~2.7x with gzip -6, like source trees."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(f"text-pool-{seed}")
        letters = "abcdefghijklmnopqrstuvwxyz"
        words = ["".join(rng.choices(letters, k=rng.randint(2, 10))) for _ in range(2000)]
        lines = [
            (" ".join(rng.choices(words, k=rng.randint(4, 14))) + "\n").encode()
            for _ in range(16384)
        ]
        # Paragraphs of 8 lines make chunk assembly cheap (~1 KiB per choice).
        self.paragraphs = [b"".join(rng.choices(lines, k=8)) for _ in range(4096)]

    def chunks(self, key: bytes) -> Iterator[bytes]:
        rng = random.Random(key)
        while True:
            yield b"".join(rng.choices(self.paragraphs, k=CHUNK // 480))[:CHUNK]


# --- layers --------------------------------------------------------------------------------


class _Compressor(Protocol):
    def compress(self, data: bytes) -> bytes: ...
    def flush(self) -> bytes: ...


def _compressor(compression: Compression) -> _Compressor | None:
    if compression == "none":
        return None
    if compression == "zstd":
        import zstandard

        c: _Compressor = zstandard.ZstdCompressor(level=3).compressobj()
        return c
    try:
        from isal import isal_zlib

        return isal_zlib.compressobj(1, isal_zlib.DEFLATED, 31)
    except ImportError:
        return zlib.compressobj(1, zlib.DEFLATED, 31)


class _HashingSink:
    """What tarfile writes into: hashes the tar (DiffID), compresses, hashes the blob, writes."""

    def __init__(self, out: io.BufferedWriter, compression: Compression) -> None:
        self._out = out
        self._comp = _compressor(compression)
        self.diff = hashlib.sha256()
        # Uncompressed, the blob is the tar: one hash serves both (hashing dominates the cost).
        self.blob = hashlib.sha256() if self._comp else self.diff
        self.uncompressed = 0
        self.compressed = 0

    def write(self, data: bytes) -> int:
        self.diff.update(data)
        self.uncompressed += len(data)
        self._emit(self._comp.compress(data) if self._comp else data)
        return len(data)

    def tell(self) -> int:
        return self.uncompressed

    def _emit(self, data: bytes) -> None:
        if data:
            if self._comp is not None:
                self.blob.update(data)
            self.compressed += len(data)
            self._out.write(data)

    def finish(self) -> None:
        if self._comp is not None:
            self._emit(self._comp.flush())


def _info(name: str, size: int = 0, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.mtime = size, kind, MTIME
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


@dataclass(frozen=True)
class _RawLayer:
    file: Path
    blob_digest: str
    blob_size: int
    diff_id: str
    uncompressed_size: int


def _write_layer(
    file: Path,
    spec: LayerSpec,
    key: bytes,
    compression: Compression,
    text: Callable[[], _TextPool],
) -> _RawLayer:
    top = f"layer-{key.hex()[:12]}"
    with open(file, "wb") as raw:
        sink = _HashingSink(raw, compression)
        # Mode "w" (not the stream mode "w|", whose buffer re-slicing is quadratic in chunk size).
        with tarfile.open(  # type: ignore[call-overload]
            fileobj=sink, mode="w", format=tarfile.PAX_FORMAT, copybufsize=CHUNK
        ) as tar:
            tar.addfile(_info(top, kind=tarfile.DIRTYPE))
            base, extra = divmod(spec.size, spec.files)
            for n in range(spec.files):
                size = base + (1 if n < extra else 0)
                fkey = key + n.to_bytes(4, "big")
                chunks = _random_chunks(fkey) if spec.content == "random" else text().chunks(fkey)
                tar.addfile(_info(f"{top}/file-{n:05d}.bin", size), _ChunkReader(chunks, size))
        sink.finish()
    return _RawLayer(
        file=file,
        blob_digest="sha256:" + sink.blob.hexdigest(),
        blob_size=sink.compressed,
        diff_id="sha256:" + sink.diff.hexdigest(),
        uncompressed_size=sink.uncompressed,
    )


def _layer_key(seed: int, platform: int, index: int) -> bytes:
    return hashlib.sha256(f"imagegen/{seed}/{platform}/{index}".encode()).digest()[:16]


def _specs(layers: Sequence[LayerSpec | int]) -> list[LayerSpec]:
    return [s if isinstance(s, LayerSpec) else LayerSpec(size=s) for s in layers]


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _config(platform: Platform, diff_ids: list[str], specs: list[LayerSpec], seed: int) -> bytes:
    config: dict[str, Any] = {
        "created": CREATED,
        "architecture": platform.architecture,
        "os": platform.os,
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["/bin/sh"],
            "Labels": {"org.yardarm.imagegen.seed": str(seed)},
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {
                "created": CREATED,
                "created_by": f"imagegen layer {i}: {s.size} bytes {s.content} in {s.files} files",
            }
            for i, s in enumerate(specs)
        ],
    }
    if platform.variant:
        config["variant"] = platform.variant
    return _dumps(config)


def _manifest(fmt: ManifestFormat, config: bytes, layers: list[Layer]) -> tuple[bytes, str]:
    media_type = OCI_MANIFEST if fmt == "oci" else DOCKER_MANIFEST
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {
            "mediaType": OCI_CONFIG if fmt == "oci" else DOCKER_CONFIG,
            "digest": _sha(config),
            "size": len(config),
        },
        "layers": [layer.descriptor() for layer in layers],
    }
    return _dumps(manifest), media_type


def _resolve_platforms(platforms: int | Sequence[Platform]) -> list[Platform]:
    if isinstance(platforms, int):
        if not 1 <= platforms <= len(PLATFORMS):
            raise ValueError(f"platforms must be 1..{len(PLATFORMS)}")
        return list(PLATFORMS[:platforms])
    return list(platforms)


# --- OCI layout ----------------------------------------------------------------------------


def write_oci_layout(
    dest: Path,
    *,
    layers: Sequence[LayerSpec | int] = (LayerSpec(),),
    seed: int = 0,
    compression: Compression = "gzip",
    tags: Sequence[str] = ("latest",),
    platforms: int | Sequence[Platform] = 1,
    manifest_format: ManifestFormat = "oci",
    index: bool | None = None,
) -> GeneratedImage:
    """Write an OCI image layout at `dest` (created; may already hold other images' blobs).

    With more than one platform (or `index=True`) the tags name an image index. Each tag gets
    an index.json entry with an `org.opencontainers.image.ref.name` annotation.
    """
    if manifest_format == "docker" and compression == "zstd":
        raise ValueError("Docker schema2 manifests have no zstd layer type")
    specs = _specs(layers)
    plats = _resolve_platforms(platforms)
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (dest / "oci-layout").write_text(OCI_LAYOUT_VERSION)
    pool: list[_TextPool] = []

    def text() -> _TextPool:
        if not pool:
            pool.append(_TextPool(seed))
        return pool[0]

    def put(data: bytes) -> str:
        digest = _sha(data)
        (blobs / digest.split(":", 1)[1]).write_bytes(data)
        return digest

    images = []
    for p_index, platform in enumerate(plats):
        written: list[Layer] = []
        for l_index, spec in enumerate(specs):
            tmp = blobs / f".imagegen-{os.getpid()}-{p_index}-{l_index}.tmp"
            raw = _write_layer(tmp, spec, _layer_key(seed, p_index, l_index), compression, text)
            final = blobs / raw.blob_digest.split(":", 1)[1]
            tmp.replace(final)
            urls = (f"https://example.invalid/layers/{raw.blob_digest}",) if spec.foreign else ()
            written.append(
                Layer(
                    digest=raw.blob_digest,
                    size=raw.blob_size,
                    media_type=_LAYER_TYPES[(manifest_format, spec.foreign, compression)],
                    diff_id=raw.diff_id,
                    uncompressed_size=raw.uncompressed_size,
                    path=final,
                    member=None,
                    urls=urls,
                )
            )
        config = _config(platform, [x.diff_id for x in written], specs, seed)
        manifest, media_type = _manifest(manifest_format, config, written)
        images.append(
            Image(
                platform=platform,
                manifest_digest=put(manifest),
                manifest_media_type=media_type,
                manifest_bytes=manifest,
                config_digest=put(config),
                config_media_type=OCI_CONFIG if manifest_format == "oci" else DOCKER_CONFIG,
                config_bytes=config,
                layers=tuple(written),
            )
        )

    use_index = len(images) > 1 if index is None else index
    index_bytes: bytes | None = None
    index_type: str | None = None
    if use_index:
        index_type = OCI_INDEX if manifest_format == "oci" else DOCKER_LIST
        index_bytes = _dumps(
            {
                "schemaVersion": 2,
                "mediaType": index_type,
                "manifests": [
                    {
                        "mediaType": im.manifest_media_type,
                        "digest": im.manifest_digest,
                        "size": im.manifest_size,
                        "platform": im.platform.as_dict(),
                    }
                    for im in images
                ],
            }
        )
        top = {"mediaType": index_type, "digest": put(index_bytes), "size": len(index_bytes)}
    else:
        im = images[0]
        top = {
            "mediaType": im.manifest_media_type,
            "digest": im.manifest_digest,
            "size": im.manifest_size,
        }
    _add_to_index(dest, [{**top, "annotations": {REF_NAME: tag}} for tag in tags])
    return GeneratedImage(
        path=dest,
        kind="oci",
        tags=tuple(tags),
        images=tuple(images),
        index_digest=_sha(index_bytes) if index_bytes is not None else None,
        index_media_type=index_type,
        index_bytes=index_bytes,
    )


def _add_to_index(dest: Path, entries: list[dict[str, Any]]) -> None:
    """Merge into index.json: a tag written again moves; other tags stay."""
    path = dest / "index.json"
    existing: list[dict[str, Any]] = []
    if path.exists():
        existing = json.loads(path.read_text()).get("manifests", [])
    names = {e["annotations"][REF_NAME] for e in entries}
    kept = [e for e in existing if e.get("annotations", {}).get(REF_NAME) not in names]
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": kept + entries}
    path.write_bytes(_dumps(index))


# --- docker save archives ------------------------------------------------------------------


def _split_tag(ref: str) -> tuple[str, str]:
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "latest"
    return name, tag


def write_docker_archive(
    dest: Path,
    *,
    layers: Sequence[LayerSpec | int] = (LayerSpec(),),
    seed: int = 0,
    compression: Compression = "none",
    tags: Sequence[str] = ("localhost/yardarm-test:latest",),
    oci_layout: bool = False,
    platform: Platform = PLATFORMS[0],
) -> GeneratedImage:
    """Write a `docker save` archive at `dest` (a file).

    Classic layout (Docker < 25): `<id>/layer.tar`, `<id>/json`, `<id>/VERSION`,
    `<config-hex>.json`, `manifest.json`, `repositories`. With `oci_layout=True`, Docker 25+'s:
    an OCI layout (oci-layout, index.json, blobs/sha256/...) plus manifest.json and repositories.
    Layers are uncompressed as docker writes them unless `compression` says otherwise.
    """
    specs = _specs(layers)
    if any(s.foreign for s in specs):
        raise ValueError("docker archives here carry no foreign layers")
    if compression == "zstd" and not oci_layout:
        raise ValueError("classic docker archives carry no zstd layers")
    dest.parent.mkdir(parents=True, exist_ok=True)
    pool: list[_TextPool] = []

    def text() -> _TextPool:
        if not pool:
            pool.append(_TextPool(seed))
        return pool[0]

    fmt: ManifestFormat = "oci" if oci_layout else "docker"
    written: list[Layer] = []
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:

        def add_bytes(name: str, data: bytes) -> None:
            tar.addfile(_info(name, len(data)), io.BytesIO(data))

        if oci_layout:
            tar.addfile(_info("blobs", kind=tarfile.DIRTYPE))
            tar.addfile(_info("blobs/sha256", kind=tarfile.DIRTYPE))
        parent = ""
        v1_ids: list[str] = []
        for i, spec in enumerate(specs):
            tmp = dest.parent / f".{dest.name}.layer-{os.getpid()}-{i}.tmp"
            try:
                raw = _write_layer(tmp, spec, _layer_key(seed, 0, i), compression, text)
                if oci_layout:
                    member = f"blobs/sha256/{raw.blob_digest.split(':', 1)[1]}"
                else:
                    v1_id = hashlib.sha256(f"{parent}{raw.diff_id}".encode()).hexdigest()
                    v1_ids.append(v1_id)
                    tar.addfile(_info(v1_id, kind=tarfile.DIRTYPE))
                    add_bytes(f"{v1_id}/VERSION", b"1.0")
                    v1 = {"id": v1_id, "created": CREATED, **({"parent": parent} if parent else {})}
                    add_bytes(f"{v1_id}/json", _dumps(v1))
                    member, parent = f"{v1_id}/layer.tar", v1_id
                with open(tmp, "rb") as f:
                    tar.addfile(_info(member, raw.blob_size), f)
            finally:
                tmp.unlink(missing_ok=True)
            written.append(
                Layer(
                    digest=raw.blob_digest,
                    size=raw.blob_size,
                    media_type=_LAYER_TYPES[(fmt, False, compression)],
                    diff_id=raw.diff_id,
                    uncompressed_size=raw.uncompressed_size,
                    path=None,
                    member=member,
                )
            )
        config = _config(platform, [x.diff_id for x in written], specs, seed)
        config_hex = _sha(config).split(":", 1)[1]
        manifest, media_type = _manifest(fmt, config, written)
        if oci_layout:
            config_member = f"blobs/sha256/{config_hex}"
            add_bytes(config_member, config)
            add_bytes(f"blobs/sha256/{_sha(manifest).split(':', 1)[1]}", manifest)
            add_bytes("oci-layout", OCI_LAYOUT_VERSION.encode())
            entries = [
                {
                    "mediaType": media_type,
                    "digest": _sha(manifest),
                    "size": len(manifest),
                    "annotations": {CONTAINERD_NAME: ref, REF_NAME: _split_tag(ref)[1]},
                }
                for ref in tags
            ]
            add_bytes(
                "index.json",
                _dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}),
            )
        else:
            config_member = f"{config_hex}.json"
            add_bytes(config_member, config)
        docker_manifest = [
            {
                "Config": config_member,
                "RepoTags": list(tags),
                "Layers": [x.member for x in written],
            }
        ]
        add_bytes("manifest.json", _dumps(docker_manifest))
        repositories: dict[str, dict[str, str]] = {}
        top_id = v1_ids[-1] if v1_ids else config_hex
        for ref in tags:
            name, tag = _split_tag(ref)
            repositories.setdefault(name, {})[tag] = top_id
        add_bytes("repositories", _dumps(repositories))

    image = Image(
        platform=platform,
        manifest_digest=_sha(manifest),
        manifest_media_type=media_type,
        manifest_bytes=manifest,
        config_digest=_sha(config),
        config_media_type=OCI_CONFIG if oci_layout else DOCKER_CONFIG,
        config_bytes=config,
        layers=tuple(written),
    )
    return GeneratedImage(path=dest, kind="docker-archive", tags=tuple(tags), images=(image,))


def read_blob(image: GeneratedImage, digest: str) -> bytes:
    """A small blob's bytes (config, manifest, small layer), wherever the image keeps it."""
    hexpart = digest.split(":", 1)[1]
    if image.kind == "oci":
        return (image.path / "blobs" / "sha256" / hexpart).read_bytes()
    for im in image.images:
        if im.config_digest == digest:
            return im.config_bytes
        if im.manifest_digest == digest:
            return im.manifest_bytes
        for layer in im.layers:
            if layer.digest == digest and layer.member:
                with tarfile.open(image.path) as tar:
                    f = tar.extractfile(layer.member)
                    assert f is not None
                    return f.read()
    raise KeyError(digest)


__all__ = [
    "PLATFORMS",
    "Compression",
    "Content",
    "GeneratedImage",
    "Image",
    "Layer",
    "LayerSpec",
    "ManifestFormat",
    "Platform",
    "read_blob",
    "write_docker_archive",
    "write_oci_layout",
]
