"""Turning the JSON of an archive or layout into checked images, whatever carried the bytes.

A :class:`Source` gives named files (``manifest.json``, ``blobs/sha256/<hex>`` ...). Everything
small is parsed and checked first; then every layer is streamed once (:meth:`Source.layers`)
and checked against its descriptor and the config's diff IDs. Every fault raises
:class:`ImportError_` naming the input and the member.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from yardarm import mediatypes as mt
from yardarm.digest import Digest
from yardarm.errors import ImportError_, InvalidDigest, InvalidReference, ManifestError
from yardarm.manifest import Descriptor, Index, Manifest, Platform
from yardarm.reference import Reference, parse
from yardarm.store.plan import Plan, PlannedImage, PlannedIndex, PlannedLayer

__all__ = ["LayerFacts", "Source", "blob_name", "build_plan"]

MAX_JSON = 16 << 20
_REF_NAME = "org.opencontainers.image.ref.name"
_CONTAINERD_NAME = "io.containerd.image.name"


@dataclass(frozen=True, slots=True)
class LayerFacts:
    """What one read of a layer blob showed (or what the store already knew about it)."""

    digest: Digest
    size: int
    compression: str
    diff_id: Digest | None
    uncompressed_size: int
    temp: Path | None  # None when the store already holds the blob
    error: str | None = None
    tar_ok: bool = True


class Source(Protocol):
    label: str

    def has(self, name: str) -> bool: ...

    def read_small(self, name: str) -> bytes: ...

    def layers(self, names: list[str]) -> Mapping[str, LayerFacts]: ...


def blob_name(digest: Digest) -> str:
    return f"blobs/{digest.algorithm}/{digest.hex}"


@dataclass(slots=True)
class _Want:
    """A layer an image needs: where its bytes are and what they must be."""

    name: str | None  # None: foreign layer whose content is absent
    descriptor: Descriptor | None
    diff_id: Digest
    where: str


@dataclass(slots=True)
class _PendingImage:
    config_raw: bytes
    config_media_type: str
    diff_ids: tuple[Digest, ...]
    wants: list[_Want]
    platform: Platform | None
    manifest: Manifest | None
    source_format: str


class _Builder:
    def __init__(self, src: Source) -> None:
        self.src = src
        self.fail: Callable[[str], ImportError_] = lambda msg: ImportError_(f"{src.label}: {msg}")
        self.images: dict[Digest, _PendingImage] = {}
        self.indexes: dict[Digest, PlannedIndex] = {}
        self.base_name: Reference | None = None

    # -- small things ---------------------------------------------------------------------
    def read_json(self, name: str, what: str) -> tuple[bytes, dict[str, Any]]:
        if not self.src.has(name):
            raise self.fail(f"{what} {name} is missing")
        raw = self.src.read_small(name)
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise self.fail(f"{name}: invalid JSON in {what}: {exc}") from None
        if not isinstance(obj, dict):
            raise self.fail(f"{name}: {what} is not a JSON object")
        return raw, obj

    def read_blob(self, desc: Descriptor, what: str) -> bytes:
        name = blob_name(desc.digest)
        if not self.src.has(name):
            raise self.fail(f"{what} {desc.digest} is missing ({name})")
        if desc.size > MAX_JSON:
            raise self.fail(f"{name}: {what} is too large ({desc.size} bytes)")
        raw = self.src.read_small(name)
        if len(raw) != desc.size:
            raise self.fail(f"{name}: {what} size mismatch: expected {desc.size}, got {len(raw)}")
        actual = Digest.from_bytes(raw, desc.digest.algorithm)
        if actual != desc.digest:
            raise self.fail(f"{name}: {what} digest mismatch: got {actual}")
        return raw

    def config(self, raw: bytes, where: str) -> tuple[tuple[Digest, ...], Platform | None]:
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise self.fail(f"{where}: invalid JSON in image config: {exc}") from None
        if not isinstance(obj, dict):
            raise self.fail(f"{where}: image config is not a JSON object")
        rootfs = obj.get("rootfs")
        if not isinstance(rootfs, dict) or rootfs.get("type") != "layers":
            raise self.fail(f"{where}: image config has no rootfs of type layers")
        ids = rootfs.get("diff_ids")
        if not isinstance(ids, list):
            raise self.fail(f"{where}: image config rootfs.diff_ids is not a list")
        try:
            diff_ids = tuple(Digest.parse(str(d)) for d in ids)
        except InvalidDigest as exc:
            raise self.fail(f"{where}: image config has a bad diff id: {exc}") from None
        arch, os_ = obj.get("architecture"), obj.get("os")
        platform = None
        if isinstance(arch, str) and isinstance(os_, str):
            variant = obj.get("variant")
            platform = Platform(arch, os_, variant if isinstance(variant, str) else None)
        return diff_ids, platform

    def member_name(self, name: str, where: str) -> str:
        from yardarm.store.safety import normalise_member

        try:
            return normalise_member(name)
        except ImportError_ as exc:
            raise type(exc)(f"{self.src.label}: {where}: {exc}") from None

    def read_json_list(self, name: str) -> list[Any]:
        raw = self.src.read_small(name)
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise self.fail(f"{name}: invalid JSON: {exc}") from None
        if not isinstance(obj, list) or not obj:
            raise self.fail(f"{name}: expected a non-empty JSON list")
        return obj

    # -- OCI ------------------------------------------------------------------------------
    def oci_entry(self, desc: Descriptor, where: str) -> Digest:
        """Load what an index entry points at; returns the image ID or index digest."""
        if mt.is_index(desc.media_type):
            raw = self.read_blob(desc, "index")
            try:
                index = Index.parse(raw, desc.media_type, blob_name(desc.digest))
            except ManifestError as exc:
                raise self.fail(str(exc)) from None
            children = []
            for i, child in enumerate(index.manifests):
                if _is_attestation(child):
                    continue
                target = self.oci_entry(child, f"{blob_name(desc.digest)} entry {i}")
                children.append((child, target))
            self.indexes[index.digest] = PlannedIndex(raw, index.media_type, children)
            return index.digest
        if mt.is_manifest(desc.media_type) or desc.media_type == "":
            raw = self.read_blob(desc, "manifest")
            return self.oci_manifest(raw, desc.media_type or None, desc.platform)
        raise self.fail(f"{where}: unknown media type {desc.media_type!r}")

    def oci_manifest(self, raw: bytes, media_type: str | None, platform: Platform | None) -> Digest:
        digest = Digest.from_bytes(raw)
        try:
            manifest = Manifest.parse(raw, media_type, blob_name(digest))
        except ManifestError as exc:
            raise self.fail(str(exc)) from None
        config_raw = self.read_blob(manifest.config, "config")
        diff_ids, cfg_platform = self.config(config_raw, blob_name(manifest.config.digest))
        if len(diff_ids) != len(manifest.layers):
            raise self.fail(
                f"{blob_name(digest)}: manifest has {len(manifest.layers)} layers but the config "
                f"has {len(diff_ids)} diff ids"
            )
        wants = []
        for i, (layer, diff_id) in enumerate(zip(manifest.layers, diff_ids, strict=True)):
            name: str | None = blob_name(layer.digest)
            if mt.is_foreign_layer(layer.media_type) and not self.src.has(str(name)):
                name = None
            elif not self.src.has(str(name)):
                raise self.fail(f"layer {i} blob {layer.digest} is missing ({name})")
            wants.append(_Want(name, layer, diff_id, f"{blob_name(digest)} layer {i}"))
        fmt = "docker" if manifest.media_type == mt.DOCKER_MANIFEST else "oci"
        image_id = Digest.from_bytes(config_raw)
        self.images[image_id] = _PendingImage(
            config_raw,
            manifest.config.media_type,
            diff_ids,
            wants,
            platform or cfg_platform,
            manifest,
            fmt,
        )
        return image_id

    # -- layers ---------------------------------------------------------------------------
    def finish(self, top: list[tuple[Digest, list[Reference]]]) -> Plan:
        names = sorted({w.name for img in self.images.values() for w in img.wants if w.name})
        facts = self.src.layers(names)
        plan = Plan(indexes=self.indexes, top=top)
        for image_id, img in self.images.items():
            layers = [self.check_layer(w, facts) for w in img.wants]
            m = img.manifest
            plan.images[image_id] = PlannedImage(
                img.config_raw,
                img.config_media_type,
                img.diff_ids,
                layers,
                img.platform,
                None if m is None else m.raw,
                None if m is None else m.media_type,
                None if m is None else m.layers,
                img.source_format,
            )
            for w in img.wants:
                if w.name is not None:
                    fact = facts[w.name]
                    if fact.temp is not None:
                        plan.files[fact.digest] = fact.temp
        return plan

    def check_layer(self, want: _Want, facts: Mapping[str, LayerFacts]) -> PlannedLayer:
        desc = want.descriptor
        foreign = desc if desc is not None and mt.is_foreign_layer(desc.media_type) else None
        if want.name is None:
            assert desc is not None
            return PlannedLayer(want.diff_id, -1, None, foreign=foreign)
        f = facts[want.name]
        where = f"{want.name} ({want.where})"
        if desc is not None:
            if f.size != desc.size:
                raise self.fail(f"{where}: size mismatch: expected {desc.size}, got {f.size}")
            if f.digest != desc.digest:
                raise self.fail(f"{where}: digest mismatch: expected {desc.digest}, got {f.digest}")
            declared = mt.compression_of(desc.media_type)
            if declared != f.compression:
                raise self.fail(
                    f"{where}: media type {desc.media_type} says {declared} but the content is "
                    f"{f.compression}"
                )
        if f.error is not None or f.diff_id is None:
            raise self.fail(f"{where}: {f.error or 'cannot decompress'}")
        if f.diff_id != want.diff_id:
            raise self.fail(
                f"{where}: diff id mismatch: config says {want.diff_id}, content is {f.diff_id}"
            )
        if not f.tar_ok:
            raise self.fail(f"{where}: layer content is not a tar archive")
        media_type = desc.media_type if desc is not None else _docker_media_type(f.compression)
        return PlannedLayer(
            want.diff_id,
            f.uncompressed_size,
            f.digest,
            f.size,
            media_type,
            f.compression,
            foreign,
        )


def _docker_media_type(compression: str) -> str:
    return {
        "none": mt.DOCKER_UNCOMPRESSED_LAYER,
        "gzip": mt.DOCKER_LAYER,
        "zstd": mt.OCI_LAYER_ZSTD,
    }[compression]


def _is_attestation(desc: Descriptor) -> bool:
    """BuildKit's attestation manifests ride in indexes but are not images of a platform."""
    return dict(desc.annotations).get("vnd.docker.reference.type") == "attestation-manifest"


def _tags_from_annotations(
    desc: Descriptor, fail: Callable[[str], ImportError_], base_name: Reference | None
) -> list[Reference]:
    ann = dict(desc.annotations)
    text = ann.get(_CONTAINERD_NAME) or ""
    if not text:
        ref_name = ann.get(_REF_NAME) or ""
        # A bare tag ("latest") names no repository: it becomes a tag of base_name if given.
        if "/" in ref_name or ":" in ref_name:
            text = ref_name
        elif ref_name and base_name is not None:
            try:
                return [base_name.with_tag(ref_name)]
            except InvalidReference as exc:
                raise fail(f"index.json: bad tag {ref_name!r}: {exc}") from None
    if not text:
        return []
    try:
        ref = parse(text)
    except InvalidReference as exc:
        raise fail(f"index.json: bad image name {text!r}: {exc}") from None
    if ref.digest is not None:
        return []
    return [ref if ref.tag else ref.with_tag("latest")]


def _oci_plan(b: _Builder) -> list[tuple[Digest, list[Reference]]]:
    _, layout = b.read_json("oci-layout", "layout marker")
    if layout.get("imageLayoutVersion") != "1.0.0":
        raise b.fail(
            f"oci-layout: unsupported imageLayoutVersion {layout.get('imageLayoutVersion')!r}"
        )
    raw, _ = b.read_json("index.json", "layout index")
    try:
        index = Index.parse(raw, mt.OCI_INDEX, "index.json")
    except ManifestError as exc:
        raise b.fail(str(exc)) from None
    if not index.manifests:
        raise b.fail("index.json: the layout holds no images")
    top: dict[Digest, list[Reference]] = {}
    for i, desc in enumerate(index.manifests):
        target = b.oci_entry(desc, f"index.json entry {i}")
        tags = top.setdefault(target, [])
        for t in _tags_from_annotations(desc, b.fail, b.base_name):
            if t not in tags:
                tags.append(t)
    return list(top.items())


def _docker_plan(b: _Builder) -> list[tuple[Digest, list[Reference]]]:
    raw = b.read_json_list("manifest.json")
    top: dict[Digest, list[Reference]] = {}
    oci_by_config: dict[Digest, Digest] = {}
    if b.src.has("index.json") and b.src.has("oci-layout"):
        _oci_plan(b)  # Docker 25+: the original manifests live in the OCI layout
        oci_by_config = {img_id: img_id for img_id in b.images}
    for i, entry in enumerate(raw):
        where = f"manifest.json entry {i}"
        if not isinstance(entry, dict):
            raise b.fail(f"{where} is not an object")
        config_name = entry.get("Config")
        layer_names = entry.get("Layers")
        if not isinstance(config_name, str) or not isinstance(layer_names, list):
            raise b.fail(f"{where}: needs Config (a string) and Layers (a list)")
        if not all(isinstance(n, str) for n in layer_names):
            raise b.fail(f"{where}: Layers must be strings")
        config_name = b.member_name(config_name, where)
        if not b.src.has(config_name):
            raise b.fail(f"{where}: config {config_name} is missing")
        config_raw = b.src.read_small(config_name)
        image_id = Digest.from_bytes(config_raw)
        if config_name.startswith("blobs/") and blob_name(image_id) != config_name:
            raise b.fail(f"{config_name}: config digest mismatch: got {image_id}")
        diff_ids, platform = b.config(config_raw, config_name)
        if len(diff_ids) != len(layer_names):
            raise b.fail(
                f"{where}: {len(layer_names)} layers but the config has {len(diff_ids)} diff ids"
            )
        if image_id not in oci_by_config:
            sources = entry.get("LayerSources") or {}
            if not isinstance(sources, dict):
                raise b.fail(f"{where}: LayerSources must be an object")
            wants = []
            for j, (name, diff_id) in enumerate(zip(layer_names, diff_ids, strict=True)):
                lname: str | None = b.member_name(name, where)
                desc = None
                if str(diff_id) in sources:
                    try:
                        desc = Descriptor.from_json(sources[str(diff_id)], f"{where} LayerSources")
                    except ManifestError as exc:
                        raise b.fail(str(exc)) from None
                    if not mt.is_foreign_layer(desc.media_type):
                        raise b.fail(f"{where}: LayerSources entry is not a foreign layer")
                    if not b.src.has(str(lname)):
                        lname = None
                elif not b.src.has(str(lname)):
                    raise b.fail(f"{where}: layer {lname} is missing")
                wants.append(_Want(lname, desc, diff_id, f"{where} layer {j}"))
            b.images[image_id] = _PendingImage(
                config_raw, mt.DOCKER_CONFIG, diff_ids, wants, platform, None, "docker"
            )
        tags = top.setdefault(image_id, [])
        repo_tags = entry.get("RepoTags") or []
        if not isinstance(repo_tags, list):
            raise b.fail(f"{where}: RepoTags must be a list")
        for text in repo_tags:
            try:
                ref = parse(str(text))
            except InvalidReference as exc:
                raise b.fail(f"{where}: bad RepoTags entry {text!r}: {exc}") from None
            if ref.digest is not None or ref.tag is None:
                raise b.fail(f"{where}: RepoTags entry {text!r} is not NAME:TAG")
            if ref not in tags:
                tags.append(ref)
    if oci_by_config:
        # Indexes and images reachable only through index.json still belong to the load.
        for target in list(b.indexes) + list(b.images):
            top.setdefault(target, [])
        top = _drop_nested(top, b)
    return list(top.items())


def _drop_nested(top: dict[Digest, list[Reference]], b: _Builder) -> dict[Digest, list[Reference]]:
    nested = {c for idx in b.indexes.values() for _, c in idx.children}
    return {t: tags for t, tags in top.items() if tags or t not in nested}


def build_plan(src: Source, base_name: Reference | None = None) -> Plan:
    """Check everything ``src`` holds and return the plan; raises :class:`ImportError_`.

    ``base_name`` names the repository of OCI entries whose ``ref.name`` is a bare tag.
    """
    b = _Builder(src)
    b.base_name = base_name
    if src.has("manifest.json"):
        top = _docker_plan(b)
    elif src.has("index.json") or src.has("oci-layout"):
        top = _oci_plan(b)
    else:
        raise b.fail("neither a docker archive (manifest.json) nor an OCI layout (index.json)")
    return b.finish(top)
