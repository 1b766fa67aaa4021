"""Pushing tags: moby's ``pushV2Repository``/``pushV2Tag``, made cheaper for unchanged images.

For each tag: find the image in the store, push its config and layers through the upload
manager (layers concurrently), and put the manifest only after every blob is confirmed, so a
failed or interrupted push never leaves a tag pointing at missing blobs.

Before any layer is looked at, the manifest we are about to push is looked up on the registry:
when the tag already names it, the push is done in two requests; when the registry has the
manifest under another name, one PUT of the manifest tags it. The seed checked every layer.

The seed's v1 fallback is obsolete (registries dropped the v1 protocol years ago) and is not
ported. Its schema1 manifest fallback is kept only behind ``allow_schema1`` and only when the
registry refuses schema2 (see :mod:`yardarm.push.schema1`).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from yardarm import mediatypes as mt
from yardarm.digest import Digest
from yardarm.errors import (
    ImageNotFound,
    ManifestError,
    ProtocolError,
    PushError,
    RegistryError,
    UsageError,
)
from yardarm.manifest import Descriptor, Index, Manifest
from yardarm.progress import ProgressCallback, ProgressEvent, null_progress
from yardarm.push.compress import Compression
from yardarm.push.layer import LayerJob, PushContext, PushState, hmac_matches
from yardarm.reference import Reference
from yardarm.transfer import Job, TransferManager

if TYPE_CHECKING:
    from yardarm.registry import Registry, RegistryOptions, Repository
    from yardarm.registry.credentials import Credentials
    from yardarm.store import Image, ImageIndex, Store

__all__ = ["PushOptions", "PushResult", "Pusher", "push"]

log = logging.getLogger("yardarm.push")

DEFAULT_CHUNK: Final = 64 << 20


@dataclass(frozen=True, slots=True)
class PushResult:
    """What docker's trust code got from a push: the tag, the manifest digest and its size."""

    tag: str
    digest: Digest
    size: int


@dataclass(frozen=True, slots=True)
class PushOptions:
    """How to push; validated once here so the pusher never meets a bad combination."""

    registry: RegistryOptions | None = None
    credentials: Credentials | None = None
    max_concurrent_uploads: int = 5
    format: str | None = None  # "docker" | "oci" | None: as the image came
    compression: Compression | None = None  # None: keep stored blobs, gzip uncompressed ones
    allow_nondistributable: tuple[str, ...] = ()  # registries that may get foreign layers
    allow_schema1: bool = False
    chunk_size: int = DEFAULT_CHUNK
    schema1_key: Path | None = None

    def __post_init__(self) -> None:
        if self.format not in (None, "docker", "oci"):
            raise UsageError(f"unknown manifest format {self.format!r}: use docker or oci")
        if self.max_concurrent_uploads < 1:
            raise UsageError("--max-concurrent-uploads must be at least 1")
        if self.chunk_size < 1 << 20:
            raise UsageError("the upload chunk size must be at least 1 MiB")
        if (
            self.compression is not None
            and self.compression.algorithm == "zstd"
            and self.format == "docker"
        ):
            raise UsageError("zstd layers need the OCI format: use --format oci")


@dataclass(slots=True)
class _Plan:
    """One image manifest to push: the blobs behind it and, when known, its bytes."""

    image: Image
    oci: bool
    keep_original: bool
    raw: bytes | None = field(default=None, repr=False)
    media_type: str = ""


class Pusher:
    """Pushes tags of one repository from a store; one instance per push (it holds its state)."""

    def __init__(
        self,
        store: Store,
        options: PushOptions | None = None,
        *,
        progress: ProgressCallback = null_progress,
        manager: TransferManager | None = None,
        registry_factory: Callable[[str], Registry] | None = None,
        cancelled: threading.Event | None = None,
    ) -> None:
        self.store = store
        self.options = options or PushOptions()
        self.progress = progress
        self._own_manager = manager is None
        self.manager = manager or TransferManager(self.options.max_concurrent_uploads)
        self._registry_factory = registry_factory
        self.state = PushState()
        self.cancelled = cancelled or threading.Event()
        self.bytes_sent = 0
        self.bytes_resent = 0  # sent again because a session was lost (included in bytes_sent)

    def close(self) -> None:
        if self._own_manager:
            self.manager.close()

    def __enter__(self) -> Pusher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- entry point ----------------------------------------------------------------------
    def push(self, ref: Reference) -> list[PushResult]:
        """Push ``ref``'s tag, or every tag of its name when it has none (the seed's rule)."""
        if ref.digest is not None:
            raise UsageError("cannot push a digest reference")
        self._say(f"The push refers to repository [{ref.name}]")
        if ref.tag is not None:
            try:
                targets = [(ref, self.store.references.get(ref))]
            except ImageNotFound:
                raise ImageNotFound(f"tag does not exist: {ref.familiar()}") from None
        else:
            targets = [(r, t) for r, t in self.store.references.references_by_name(ref) if r.tag]
            if not targets:
                raise ImageNotFound(f"no tags to push for {ref.familiar_name()}")
        registry = self._registry(ref.domain)
        repository = registry.repository(ref.path)
        hmac_key = _hmac_key(registry)
        results = []
        for tagged, target in targets:
            results.append(self._push_tag(tagged, target, registry, repository, hmac_key))
        return results

    def _registry(self, host: str) -> Registry:
        if self._registry_factory is not None:
            return self._registry_factory(host)
        from yardarm.registry import Registry, RegistryOptions

        return Registry(host, self.options.registry or RegistryOptions(), self.options.credentials)

    def _say(self, status: str, aux: dict[str, object] | None = None) -> None:
        self.progress(ProgressEvent("", status, "message", aux=aux))

    # -- one tag --------------------------------------------------------------------------
    def _push_tag(
        self,
        ref: Reference,
        target: Digest,
        registry: Registry,
        repository: Repository,
        hmac_key: str,
    ) -> PushResult:
        assert ref.tag is not None
        obj = self.store.images.get(target)
        ctx_args = (registry, repository, hmac_key, ref)
        from yardarm.store import ImageIndex

        if isinstance(obj, ImageIndex):
            raw, _ = self._push_index(obj, *ctx_args)
        else:
            raw, _ = self._push_image(obj, *ctx_args, tag=ref.tag)
        digest = Digest.from_bytes(raw)
        self._say(
            f"{ref.tag}: digest: {digest} size: {len(raw)}",
            {"Tag": ref.tag, "Digest": str(digest), "Size": len(raw)},
        )
        self.store.references.add_digest_reference(ref.name_only().with_digest(digest), target)
        return PushResult(ref.tag, digest, len(raw))

    def _plan(self, image: Image) -> _Plan:
        opts = self.options
        fmt = opts.format or image.source_format
        if opts.compression is not None and opts.compression.algorithm == "zstd":
            fmt = "oci"
        oci = fmt == "oci"
        unchanged_format = opts.format is None or opts.format == image.source_format
        keep = image.manifest_raw is not None and unchanged_format and opts.compression is None
        plan = _Plan(image, oci, keep)
        if keep:
            assert image.manifest_raw is not None
            plan.raw = image.manifest_raw
            plan.media_type = image.manifest_media_type or (
                mt.OCI_MANIFEST if oci else mt.DOCKER_MANIFEST
            )
        return plan

    def _already_pushed(
        self,
        repository: Repository,
        reference: str,
        image: Image | ImageIndex,
        plan_raw: bytes | None,
    ) -> tuple[bytes, str] | None:
        """The manifest we would push when the registry already has it under ``reference``."""
        head = repository.head_manifest(reference)
        if head is None:
            return None
        if plan_raw is not None and head.digest == Digest.from_bytes(plan_raw):
            return plan_raw, head.media_type
        # Pushed by us earlier (a digest reference the store recorded for this image)?
        if plan_raw is None and head.digest in self._pushed_digests(repository, image.id):
            raw, media_type, digest = repository.get_manifest(str(head.digest))
            if digest == head.digest:
                return raw, media_type
        return None

    def _pushed_digests(self, repository: Repository, target: Digest) -> set[Digest]:
        out = set()
        for r in self.store.references.references_to(target):
            if r.digest is not None and r.path == repository.name:
                out.add(Digest.parse(r.digest))
        return out

    def _push_image(
        self,
        image: Image,
        registry: Registry,
        repository: Repository,
        hmac_key: str,
        ref: Reference,
        *,
        tag: str | None,
    ) -> tuple[bytes, str]:
        plan = self._plan(image)
        reference = tag if tag is not None else str(image.manifest_digest)
        found = self._already_pushed(repository, reference, image, plan.raw)
        if found is not None:
            self._skip_layers(image)
            return found
        if plan.raw is not None and tag is not None:
            digest = Digest.from_bytes(plan.raw)
            if repository.head_manifest(str(digest)) is not None:
                # The registry has this manifest (so its blobs); only the tag is missing.
                self._skip_layers(image)
                self._put_manifest(repository, tag, plan.raw, plan.media_type)
                return plan.raw, plan.media_type

        descriptors = self._push_blobs(plan, registry, repository, hmac_key, ref)
        if plan.raw is None:
            config = Descriptor(
                mt.OCI_CONFIG if plan.oci else mt.DOCKER_CONFIG, image.id, len(image.config_raw)
            )
            manifest = Manifest.build(
                mt.OCI_MANIFEST if plan.oci else mt.DOCKER_MANIFEST, config, descriptors
            )
            plan.raw, plan.media_type = manifest.raw, manifest.media_type
        return self._put_manifest(repository, reference, plan.raw, plan.media_type, plan, ref)

    def _skip_layers(self, image: Image) -> None:
        for diff_id in image.diff_ids:
            self.progress(
                ProgressEvent(diff_id.short, "Layer already exists", "Layer already exists")
            )

    def _push_blobs(
        self,
        plan: _Plan,
        registry: Registry,
        repository: Repository,
        hmac_key: str,
        ref: Reference,
    ) -> list[Descriptor]:
        image = plan.image
        layers = self.store.layers.for_image(image)
        ctx = PushContext(
            store=self.store,
            repository=repository,
            registry_host=registry.host,
            target=ref.name,
            hmac_key=hmac_key,
            state=self.state,
            progress=self.progress,
            oci=plan.oci,
            compression=self.options.compression,
            allow_foreign=_allowed(registry.host, self.options.allow_nondistributable),
            chunk_size=self.options.chunk_size,
            keep_original=plan.keep_original,
        )
        jobs = [LayerJob(ctx, layer) for layer in layers]
        for job in jobs:
            self.progress(ProgressEvent(job.id, "Preparing", "Preparing"))
        config_job = _ConfigJob(repository, image, self.store, ref.name, hmac_key)
        work: list[Job[Descriptor]] = [config_job, *jobs]
        results = self.manager.run(work, self.progress, self.cancelled)
        self.bytes_sent += sum(j.bytes_sent for j in jobs) + config_job.bytes_sent
        self.bytes_resent += sum(j.bytes_resent for j in jobs)
        descriptors = [r for r in results[1:] if isinstance(r, Descriptor)]
        if plan.keep_original and image.layer_descriptors is not None:
            for got, want in zip(descriptors, image.layer_descriptors, strict=False):
                if got.digest != want.digest and not want.urls:
                    raise PushError(
                        f"layer {want.digest} went up as {got.digest}; refusing to tag a "
                        "manifest that names blobs the registry does not have"
                    )
        return descriptors

    def _put_manifest(
        self,
        repository: Repository,
        reference: str,
        raw: bytes,
        media_type: str,
        plan: _Plan | None = None,
        ref: Reference | None = None,
    ) -> tuple[bytes, str]:
        """PUT the manifest; returns what went up (a schema1 fallback changes it)."""
        try:
            digest = repository.put_manifest(reference, raw, media_type)
        except RegistryError as exc:
            if not self._schema1_applies(exc, plan):
                raise
            assert plan is not None and ref is not None
            log.warning("registry refused the schema2 manifest (%s); falling back to schema1", exc)
            return self._put_schema1(repository, plan, ref, reference)
        if digest != Digest.from_bytes(raw):
            raise ProtocolError(
                f"registry stored the manifest as {digest}, expected {Digest.from_bytes(raw)}"
            )
        return raw, media_type

    def _schema1_applies(self, exc: RegistryError, plan: _Plan | None) -> bool:
        """Only with --allow-schema1, only for Docker images, only when schema2 was refused."""
        if not self.options.allow_schema1 or plan is None or plan.oci:
            return False
        return exc.status in (400, 415) and exc.code in ("MANIFEST_INVALID", "UNSUPPORTED", "")

    def _put_schema1(
        self, repository: Repository, plan: _Plan, ref: Reference, reference: str
    ) -> tuple[bytes, str]:
        from yardarm.push import schema1

        key_path = self.options.schema1_key or self.store.path / "schema1-key.pem"
        key = schema1.load_or_create_key(key_path)
        layers = self.store.layers.for_image(plan.image)
        known = [self.state.known(layer.diff_id) for layer in layers]
        blobs = [(d.digest, d.media_type) for d in known if d is not None]
        if len(blobs) != len(layers):
            raise PushError("cannot build a schema1 manifest: some layers were not pushed")
        raw = schema1.build_schema1_manifest(ref.path, reference, plan.image.config_raw, blobs, key)
        # Empty history steps name the empty gzip tar; the registry needs that blob too.
        if schema1.EMPTY_GZIP_TAR_DIGEST in schema1.schema1_blob_sums(raw) and (
            repository.stat_blob(schema1.EMPTY_GZIP_TAR_DIGEST) is None
        ):
            session = repository.start_upload()
            session.commit(
                schema1.EMPTY_GZIP_TAR_DIGEST,
                schema1.EMPTY_GZIP_TAR,
                length=len(schema1.EMPTY_GZIP_TAR),
            )
        digest = repository.put_manifest(reference, raw, mt.DOCKER_SCHEMA1_SIGNED)
        if digest != schema1.schema1_digest(raw):
            raise ProtocolError(f"registry stored the schema1 manifest as {digest}")
        return schema1.schema1_canonical(raw), mt.DOCKER_SCHEMA1_SIGNED

    # -- multi-platform -------------------------------------------------------------------
    def _push_index(
        self,
        index: ImageIndex,
        registry: Registry,
        repository: Repository,
        hmac_key: str,
        ref: Reference,
    ) -> tuple[bytes, str]:
        from yardarm.store import ImageIndex

        assert ref.tag is not None
        head = repository.head_manifest(ref.tag)
        rebuild = self.options.format is not None or self.options.compression is not None
        if head is not None and not rebuild and head.digest == index.id:
            return index.raw, index.media_type
        children: list[Descriptor] = []
        for desc, child_id in index.children:
            child = self.store.images.get(child_id)
            if isinstance(child, ImageIndex):
                raise ManifestError("nested indexes are not supported")
            raw, media_type = self._push_image(child, registry, repository, hmac_key, ref, tag=None)
            children.append(
                Descriptor(
                    media_type,
                    Digest.from_bytes(raw),
                    len(raw),
                    desc.urls,
                    desc.annotations,
                    desc.platform,
                )
            )
        if not rebuild and all(
            c.digest == d.digest for c, (d, _) in zip(children, index.children, strict=True)
        ):
            raw, media_type = index.raw, index.media_type
        else:
            media_type = (
                mt.OCI_INDEX
                if self.options.format == "oci"
                else (
                    mt.DOCKER_MANIFEST_LIST if self.options.format == "docker" else index.media_type
                )
            )
            body = {
                "schemaVersion": 2,
                "mediaType": media_type,
                "manifests": [c.to_json() for c in children],
            }
            raw = json.dumps(body, indent=3).encode()
            Index.parse(raw, media_type)
        self._put_manifest(repository, ref.tag, raw, media_type)
        return raw, media_type


class _ConfigJob:
    """The image config blob: a mount from where we pushed it before, else check and upload.

    The seed always checked and uploaded configs. We record where each config went in the v2
    metadata service (keyed by the config digest, with the same HMAC as layers), so a push to
    another repository of the registry mounts it in one request, under the same rule as
    layers: never from an entry another account recorded.
    """

    def __init__(
        self, repository: Repository, image: Image, store: Store, target: str, hmac_key: str
    ) -> None:
        self.repository = repository
        self.image = image
        self.store = store
        self.target = target
        self.hmac_key = hmac_key
        self.key = f"v2push:{target} config {image.id}"
        self.id = image.id.short
        self.bytes_sent = 0

    def _source(self) -> str | None:
        from yardarm.push.candidates import mount_candidates

        entries = self.store.metadata.get(self.image.id)
        best = mount_candidates(entries, self.target, hmac_matches(entries, self.hmac_key), 1)
        return best[0].source_repository.split("/", 1)[1] if best else None

    def run(self, attempt: int, cancelled: threading.Event) -> Descriptor:
        size = len(self.image.config_raw)
        done = Descriptor(self.image.config_media_type, self.image.id, size)
        source = self._source() if attempt == 1 else None
        session = None
        if source is not None:
            try:
                answer = self.repository.mount_blob(self.image.id, source, size)
            except (RegistryError, ProtocolError) as exc:
                if getattr(exc, "temporary", False):
                    raise
                # Refused, or a 201 naming another blob: our own upload is the safe path.
                log.warning("mount of config %s from %s failed: %s", self.id, source, exc)
                answer = None
            if isinstance(answer, Descriptor):
                return self._record(done)
            session = answer  # a 202 session (or None: not allowed to read the source)
        if session is None:
            if self.repository.stat_blob(self.image.id) is not None:
                return self._record(done)
            session = self.repository.start_upload()
        session.commit(self.image.id, self.image.config_raw, length=size)
        self.bytes_sent += size
        return self._record(done)

    def _record(self, done: Descriptor) -> Descriptor:
        self.store.metadata.add(
            self.image.id, self.hmac_key, self.image.id, self.target, done.media_type
        )
        return done


def _allowed(host: str, registries: tuple[str, ...]) -> bool:
    return host in registries or "*" in registries


def _hmac_key(registry: Registry) -> str:
    from yardarm.store.metadata import compute_hmac_key

    creds = registry.credentials
    return compute_hmac_key(creds.hmac_fields()) if creds is not None else ""


def push(
    store: Store,
    reference: str | Reference,
    options: PushOptions | None = None,
    *,
    progress: ProgressCallback = null_progress,
) -> list[PushResult]:
    """Push a tag (or every tag of a name) from ``store``; the library's one-call entry."""
    from yardarm.reference import parse

    ref = parse(reference) if isinstance(reference, str) else reference
    with Pusher(store, options, progress=progress) as pusher:
        return pusher.push(ref)
