"""Descriptors, manifests and indexes.

Manifests keep the exact bytes they were parsed from: a manifest's digest is the hash of its
bytes, and re-serialising JSON changes them, so an image pushed unchanged must send the bytes it
came with.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from yardarm import mediatypes as mt
from yardarm.digest import Digest
from yardarm.errors import InvalidDigest, ManifestError

__all__ = ["Descriptor", "Index", "Manifest", "Platform", "parse_manifest_or_index"]


@dataclass(frozen=True, slots=True)
class Platform:
    architecture: str
    os: str
    variant: str | None = None
    os_version: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        if self.os_version:
            out["os.version"] = self.os_version
        return out

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True, slots=True)
class Descriptor:
    """What a manifest says about one piece of content: type, digest, size, and extras."""

    media_type: str
    digest: Digest
    size: int
    urls: tuple[str, ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    platform: Platform | None = None

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ManifestError(f"descriptor {self.digest} has a negative size")

    @classmethod
    def from_json(cls, obj: object, where: str = "descriptor") -> Descriptor:
        if not isinstance(obj, dict):
            raise ManifestError(f"{where}: expected an object")
        try:
            media_type = obj.get("mediaType", "")
            digest = Digest.parse(str(obj["digest"]))
            size = obj["size"]
        except KeyError as exc:
            raise ManifestError(f"{where}: missing field {exc.args[0]!r}") from None
        except InvalidDigest as exc:
            raise ManifestError(f"{where}: {exc}") from None
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ManifestError(f"{where}: size must be a non-negative integer")
        if not isinstance(media_type, str):
            raise ManifestError(f"{where}: mediaType must be a string")
        urls = obj.get("urls") or ()
        if not isinstance(urls, list | tuple) or not all(isinstance(u, str) for u in urls):
            raise ManifestError(f"{where}: urls must be a list of strings")
        ann = obj.get("annotations") or {}
        if not isinstance(ann, dict):
            raise ManifestError(f"{where}: annotations must be an object")
        plat = obj.get("platform")
        platform = None
        if isinstance(plat, dict):
            platform = Platform(
                str(plat.get("architecture", "")),
                str(plat.get("os", "")),
                plat.get("variant"),
                plat.get("os.version"),
            )
        return cls(
            media_type,
            digest,
            size,
            tuple(urls),
            tuple(sorted((str(k), str(v)) for k, v in ann.items())),
            platform,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        return out


def _load(raw: bytes, where: str) -> dict[str, Any]:
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{where}: invalid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ManifestError(f"{where}: expected a JSON object")
    return obj


def _load_v2(
    raw: bytes,
    default_type: str,
    where: str,
    accepts: Callable[[str], bool],
    what: str,
    list_key: str,
) -> tuple[dict[str, Any], str, list[Any]]:
    """The checks manifests and indexes share: JSON object, schemaVersion 2, type, the list."""
    obj = _load(raw, where)
    mtype = obj.get("mediaType") or default_type
    if obj.get("schemaVersion") != 2:
        raise ManifestError(f"{where}: unsupported schemaVersion {obj.get('schemaVersion')!r}")
    if not accepts(mtype):
        raise ManifestError(f"{where}: not {what} (mediaType {mtype!r})")
    items = obj.get(list_key)
    if not isinstance(items, list):
        raise ManifestError(f"{where}: {list_key} must be a list")
    return obj, mtype, items


@dataclass(frozen=True, slots=True)
class Manifest:
    """An image manifest (Docker schema2 or OCI) with the bytes it came from."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    raw: bytes = field(repr=False)
    annotations: tuple[tuple[str, str], ...] = ()

    @property
    def digest(self) -> Digest:
        return Digest.from_bytes(self.raw)

    @classmethod
    def parse(cls, raw: bytes, media_type: str | None = None, where: str = "manifest") -> Manifest:
        obj, mtype, layers = _load_v2(
            raw, media_type or mt.OCI_MANIFEST, where, mt.is_manifest, "an image manifest", "layers"
        )
        config = Descriptor.from_json(obj.get("config"), f"{where}: config")
        descs = tuple(
            Descriptor.from_json(layer, f"{where}: layer {i}") for i, layer in enumerate(layers)
        )
        for i, d in enumerate(descs):
            if not mt.is_layer(d.media_type):
                raise ManifestError(f"{where}: layer {i} has unknown media type {d.media_type!r}")
        ann = obj.get("annotations") or {}
        return cls(
            mtype,
            config,
            descs,
            raw,
            tuple(sorted((str(k), str(v)) for k, v in dict(ann).items())),
        )

    @classmethod
    def build(
        cls,
        media_type: str,
        config: Descriptor,
        layers: list[Descriptor],
        annotations: dict[str, str] | None = None,
    ) -> Manifest:
        """Serialise a new manifest the way docker does (indented, field order fixed)."""
        body: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type}
        body["config"] = config.to_json()
        body["layers"] = [d.to_json() for d in layers]
        if annotations:
            body["annotations"] = annotations
        raw = json.dumps(body, indent=3).encode()
        return cls(
            media_type, config, tuple(layers), raw, tuple(sorted((annotations or {}).items()))
        )


@dataclass(frozen=True, slots=True)
class Index:
    """A multi-platform index (OCI) or manifest list (Docker) with its bytes."""

    media_type: str
    manifests: tuple[Descriptor, ...]
    raw: bytes = field(repr=False)

    @property
    def digest(self) -> Digest:
        return Digest.from_bytes(self.raw)

    @classmethod
    def parse(cls, raw: bytes, media_type: str | None = None, where: str = "index") -> Index:
        _, mtype, items = _load_v2(
            raw, media_type or mt.OCI_INDEX, where, mt.is_index, "an index", "manifests"
        )
        descs = tuple(
            Descriptor.from_json(m, f"{where}: manifest {i}") for i, m in enumerate(items)
        )
        return cls(mtype, descs, raw)


def parse_manifest_or_index(
    raw: bytes, media_type: str | None = None, where: str = "manifest"
) -> Manifest | Index:
    """Parse either kind, deciding by the mediaType field, the given type, or the shape."""
    obj = _load(raw, where)
    mtype = obj.get("mediaType") or media_type
    if mtype is None:
        mtype = mt.OCI_INDEX if "manifests" in obj else mt.OCI_MANIFEST
    if mt.is_index(mtype):
        return Index.parse(raw, mtype, where)
    return Manifest.parse(raw, mtype, where)
