"""Pushing one layer: moby's per-layer decisions, then a streamed, resumable upload.

The order is the seed's (moby ``v2PushDescriptor.Upload``):

1. a foreign (non-distributable) layer is skipped unless the registry is allowed to get it;
2. what this push already learned is reused (``Layer already exists``);
3. one existence check (HEAD) of the best known digest in the target repository;
4. cross-repository mounts from other repositories of the same registry, best first, as many as
   the size class allows; a mount that fails drops its metadata entry when it was ours to trust,
   and a 202 answer is kept as the session for the real upload;
5. further existence checks with the remaining digests (other repositories too for big layers);
6. otherwise the upload: the original compressed blob byte for byte when the store kept one,
   else the uncompressed layer compressed while it is read, hashed in the same pass.

What the seed did not do, and we do: an unfinished upload's session URL and offset are kept in
the store after every acknowledged chunk, so a push killed at any moment continues where the
registry says it stopped (see :mod:`yardarm.push.compress` for why recompression is safe).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, Final

from yardarm import mediatypes as mt
from yardarm.digest import Digest, Digester
from yardarm.errors import (
    Cancelled,
    DigestMismatch,
    LayerNotFound,
    NotFoundError,
    ProtocolError,
    RegistryError,
    TransportError,
    UploadInvalid,
    YardarmError,
)
from yardarm.manifest import Descriptor
from yardarm.progress import (
    ALREADY_EXISTS,
    MOUNTED_FROM,
    PUSHED,
    SKIPPED_FOREIGN,
    ProgressCallback,
    ProgressEvent,
    RateMeter,
)
from yardarm.push.candidates import existence_candidates, limits_for_size, mount_candidates
from yardarm.push.compress import Compression, compress_stream, skip_bytes

if TYPE_CHECKING:
    from yardarm.registry import BlobUpload, Repository
    from yardarm.store import Layer, Store
    from yardarm.store.layers import CompressedBlob
    from yardarm.store.metadata import V2Metadata

__all__ = ["LayerJob", "PushContext", "PushState", "hmac_matches"]

log = logging.getLogger("yardarm.push")

#: Blobs up to this size go up as one request (POST + PUT with the body).
MONOLITHIC_MAX: Final = 32 << 20
#: A blob no registry ever reported, up to this size, is sent without an existence check.
SKIP_CHECK_MAX: Final = 1 << 20
#: Compressed output up to this size is buffered to send it with the PUT (one request less).
BUFFER_MAX: Final = 1 << 20


@dataclass(slots=True)
class PushState:
    """What one push has learned: layers known to be in the target repository by DiffID."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    remote_layers: dict[Digest, Descriptor] = field(default_factory=dict)

    def known(self, diff_id: Digest) -> Descriptor | None:
        with self.lock:
            return self.remote_layers.get(diff_id)

    def learn(self, diff_id: Digest, desc: Descriptor) -> None:
        with self.lock:
            self.remote_layers[diff_id] = desc


@dataclass(frozen=True, slots=True)
class PushContext:
    """Everything a layer job needs that is the same for every layer of one push."""

    store: Store
    repository: Repository
    registry_host: str
    target: str  # full name host/path, as the metadata service records it
    hmac_key: str
    state: PushState
    progress: ProgressCallback
    oci: bool
    compression: Compression | None  # None: keep what the store has, gzip for uncompressed
    allow_foreign: bool
    chunk_size: int
    keep_original: bool  # send every blob exactly as stored (the original manifest goes up)


class LayerJob:
    """One layer of one push; :meth:`run` is called once per attempt by the upload manager."""

    def __init__(self, ctx: PushContext, layer: Layer) -> None:
        self.ctx = ctx
        self.layer = layer
        self.key = f"v2push:{ctx.target} {layer.diff_id}"
        self.id = layer.diff_id.short
        self.checked: set[Digest] = set()
        self._session: BlobUpload | None = None
        self.bytes_sent = 0
        self.bytes_resent = 0
        self._known_types: dict[Digest, str] = {}

    # -- events ---------------------------------------------------------------------------
    def _say(self, status: str, kind: str | None = None) -> None:
        self.ctx.progress(ProgressEvent(self.id, status, kind or status))

    # -- the decisions --------------------------------------------------------------------
    def run(self, attempt: int, cancelled: threading.Event) -> Descriptor:
        layer, ctx = self.layer, self.ctx
        if layer.foreign is not None and not ctx.allow_foreign:
            self._say(SKIPPED_FOREIGN)
            return layer.foreign
        known = ctx.state.known(layer.diff_id)
        if known is not None:
            self._say(ALREADY_EXISTS)
            return known

        if attempt > 1:
            # The failed attempt may have landed (a commit whose answer was lost): look again.
            self.checked.clear()
        limits = limits_for_size(layer.size)
        entries = self._metadata()
        matches = self._hmac_matches(entries)
        if attempt == 1 and self._never_seen_and_small(entries):
            # No registry ever reported this blob: a HEAD would almost surely answer 404 and
            # costs about what sending the bytes does. (Retries still look: see above.)
            return self._upload(cancelled)
        if entries:
            found = self._check_existence(entries, matches, 1, other_repositories=False)
            if found is not None:
                return found

        if attempt == 1 or self._session is None:
            for candidate in mount_candidates(entries, ctx.target, matches, limits.mounts):
                mounted = self._try_mount(candidate)
                if mounted is not None:
                    return mounted

        remaining = limits.checks - len(self.checked)
        if remaining > 0 and entries:
            found = self._check_existence(
                entries, matches, remaining, other_repositories=limits.other_repositories
            )
            if found is not None:
                return found

        return self._upload(cancelled)

    def _wanted(self) -> tuple[Compression | None, bool]:
        """(compression to apply or None to send the stored blob, whether it is stored)."""
        if self.ctx.keep_original and self.layer.blob is not None:
            return None, True
        stored = self.layer.compressed
        want = self.ctx.compression
        if stored is not None and (want is None or want.algorithm == stored.compression):
            return None, True
        return want or Compression(), False

    def _stored_blob(self) -> CompressedBlob:
        """The stored file that goes up byte for byte."""
        if self.ctx.keep_original and self.layer.blob is not None:
            return self.layer.blob
        if self.layer.compressed is None:
            raise LayerNotFound(f"layer {self.layer.diff_id} has no stored blob to send")
        return self.layer.compressed

    def _metadata(self) -> list[V2Metadata]:
        """Known registry digests for this DiffID that fit what we will send.

        The stored blob's own digest is added as a candidate with no source repository (like
        metadata the seed had from pulls): checking it costs one HEAD and saves an upload.
        Entries of another compression are dropped: a zstd blob must never be named in a
        manifest as gzip (entries without a media type count as gzip, as moby assumed).
        """
        from yardarm.store.metadata import V2Metadata

        compression, send_stored = self._wanted()
        if send_stored:
            stored = self._stored_blob()
            wanted = stored.compression
        else:
            assert compression is not None
            stored, wanted = None, compression.algorithm
        entries = [
            e
            for e in self.ctx.store.metadata.get(self.layer.diff_id)
            if _compression_of(e.media_type) == wanted
        ]
        if stored is not None:
            if self.ctx.keep_original:
                # The original manifest names exactly this blob: no other encoding will do.
                entries = [e for e in entries if e.digest == stored.digest]
            if all(e.digest != stored.digest for e in entries):
                entries.insert(0, V2Metadata(stored.digest, "", "", stored.media_type))
        elif self.layer.blob is not None:
            # We will produce a new encoding; the stored blob is not it.
            entries = [e for e in entries if e.digest != self.layer.blob.digest]
        self._known_types = {e.digest: e.media_type for e in entries if e.media_type}
        return entries

    def _never_seen_and_small(self, entries: list[V2Metadata]) -> bool:
        blob = self.layer.blob
        return (
            blob is not None
            and blob.size <= SKIP_CHECK_MAX
            and all(not e.source_repository for e in entries)
        )

    def _hmac_matches(self, entries: list[V2Metadata]) -> set[int]:
        return hmac_matches(entries, self.ctx.hmac_key)

    def _media_type_for(self, digest: Digest) -> str:
        stored = self.layer.blob
        if stored is not None and digest == stored.digest:
            if self.ctx.keep_original:
                return stored.media_type
            return _layer_media_type(stored.compression, self.ctx.oci, stored.media_type)
        known = self._known_types.get(digest)
        if known:
            return _layer_media_type(_compression_of(known), self.ctx.oci, known)
        compression = self.ctx.compression or Compression()
        return compression.media_type(self.ctx.oci)

    def _check_existence(
        self,
        entries: list[V2Metadata],
        matches: set[int],
        limit: int,
        *,
        other_repositories: bool,
    ) -> Descriptor | None:
        ctx = self.ctx
        from yardarm.store.metadata import check_hmac

        for meta in existence_candidates(
            entries,
            ctx.target,
            matches,
            limit,
            other_repositories=other_repositories,
            already_checked=self.checked,
        ):
            self.checked.add(meta.digest)
            try:
                desc = ctx.repository.stat_blob(meta.digest)
            except YardarmError as exc:
                if not exc.temporary:
                    raise
                log.debug("existence check of %s failed: %s", meta.digest, exc)
                continue
            if desc is None:
                if meta.source_repository == ctx.target:
                    ctx.store.metadata.remove(meta)
                continue
            if desc.digest != meta.digest:
                continue  # a registry answering for another blob: not trusted
            result = Descriptor(self._media_type_for(desc.digest), desc.digest, desc.size)
            if meta.source_repository != ctx.target or not check_hmac(meta, ctx.hmac_key):
                ctx.store.metadata.add(
                    self.layer.diff_id, ctx.hmac_key, desc.digest, ctx.target, result.media_type
                )
            self._forget_saved_upload()
            self._say(ALREADY_EXISTS)
            ctx.state.learn(self.layer.diff_id, result)
            return result
        return None

    def _try_mount(self, meta: V2Metadata) -> Descriptor | None:
        ctx = self.ctx
        source = meta.source_repository.split("/", 1)[1]
        blob = self.layer.blob
        size = blob.size if blob is not None and blob.digest == meta.digest else None
        try:
            answer = ctx.repository.mount_blob(meta.digest, source, size)
        except RegistryError as exc:
            if exc.temporary:
                raise
            log.info("mount of %s from %s failed: %s", meta.digest, source, exc)
            answer = None
        except ProtocolError as exc:
            # A 201 naming another blob: never record or use it; our own upload is the safe path.
            log.warning("%s; uploading instead", exc)
            return None
        if isinstance(answer, Descriptor):
            if answer.digest != meta.digest:
                # 201 for another digest: never record or use it (hostile or broken registry).
                log.warning("registry mounted %s when asked for %s", answer.digest, meta.digest)
                return None
            result = Descriptor(self._media_type_for(meta.digest), meta.digest, answer.size)
            ctx.store.metadata.add(
                self.layer.diff_id, ctx.hmac_key, meta.digest, ctx.target, result.media_type
            )
            self._forget_saved_upload()
            ctx.state.learn(self.layer.diff_id, result)
            self._say(f"{MOUNTED_FROM} {source}", MOUNTED_FROM)
            return result
        # Not mounted: the entry proved stale for this registry, when we can trust it was ours.
        from yardarm.store.metadata import check_hmac

        if not meta.hmac or check_hmac(meta, ctx.hmac_key):
            ctx.store.metadata.remove(meta)
        if answer is not None:
            self._replace_session(answer)
        return None

    def _forget_saved_upload(self) -> None:
        """The blob is there: a resume point saved by a push killed after its commit is dead."""
        compression, _ = self._wanted()
        key = self._state_key(compression)
        self.ctx.store.uploads.delete(self.ctx.registry_host, self.ctx.target, key)

    def _replace_session(self, session: BlobUpload) -> None:
        if self._session is not None:
            self._session.cancel()
        self._session = session

    # -- the upload -----------------------------------------------------------------------
    def _state_key(self, compression: Compression | None) -> str:
        how = "stored" if compression is None else compression.fingerprint
        return f"{self.layer.diff_id}|{how}"

    def _open_session(self, compression: Compression | None) -> BlobUpload:
        """A session to write into: this attempt's, a saved one from an earlier process, or new."""
        ctx = self.ctx
        if self._session is not None:
            try:
                self._session.status()
                return self._session
            except (UploadInvalid, NotFoundError):
                self._session = None
        saved = ctx.store.uploads.get(ctx.registry_host, ctx.target, self._state_key(compression))
        if saved is not None:
            try:
                session = ctx.repository.resume_upload(saved.location)
                log.info("resuming upload of %s at byte %d", self.id, session.offset)
                self._session = session
                return session
            except (UploadInvalid, NotFoundError, RegistryError) as exc:
                log.info("saved upload session of %s is gone (%s); starting again", self.id, exc)
                ctx.store.uploads.delete(
                    ctx.registry_host, ctx.target, self._state_key(compression)
                )
        self._session = ctx.repository.start_upload()
        if self._chunks_of(self.layer.size):
            # Saved before the first chunk: a kill inside it resumes where the registry stopped.
            self._save(compression, self._session)
        return self._session

    def _save(self, compression: Compression | None, session: BlobUpload) -> None:
        extra = {"compression": "stored" if compression is None else compression.fingerprint}
        self.ctx.store.uploads.save(
            self.ctx.registry_host,
            self.ctx.target,
            self._state_key(compression),
            session.location,
            session.offset,
            extra,
        )

    def _upload(self, cancelled: threading.Event) -> Descriptor:
        ctx, layer = self.ctx, self.layer
        compression, _ = self._wanted()
        session = self._open_session(compression)
        try:
            if compression is None:
                desc = self._send_stored(session, cancelled)
            else:
                desc = self._send_compressed(session, compression, cancelled)
        except Cancelled:
            self._abandon(compression)
            raise
        except (UploadInvalid, DigestMismatch):
            self._abandon(compression)
            raise
        except TransportError:
            raise  # keep the session: the retry resumes from the registry's offset
        ctx.store.uploads.delete(ctx.registry_host, ctx.target, self._state_key(compression))
        self._session = None
        # More acknowledged bytes than the blob: a session the registry discarded (a cut inside
        # a chunk on registry 2.8) made the layer start again.
        self.bytes_resent = max(0, self.bytes_sent - desc.size)
        if self.bytes_resent:
            log.info(
                "layer %s: %d bytes sent again after a lost session", self.id, self.bytes_resent
            )
        ctx.store.metadata.add(
            layer.diff_id, ctx.hmac_key, desc.digest, ctx.target, desc.media_type
        )
        ctx.state.learn(layer.diff_id, desc)
        self._say(PUSHED)
        return desc

    def _abandon(self, compression: Compression | None) -> None:
        if self._session is not None:
            self._session.cancel()
            self._session = None
        self.ctx.store.uploads.delete(
            self.ctx.registry_host, self.ctx.target, self._state_key(compression)
        )

    def _chunks_of(self, size: int | None) -> bool:
        """Whether to upload in resumable chunks instead of one streamed request."""
        return size is None or size > MONOLITHIC_MAX

    def _open_stored(self, stored: CompressedBlob) -> BinaryIO:
        if stored == self.layer.compressed:
            return self.layer.open_compressed()
        path = self.layer.blob_path()
        if path is None:
            raise LayerNotFound(f"layer {self.layer.diff_id} has no content in the store")
        return path.open("rb")

    def _send_stored(self, session: BlobUpload, cancelled: threading.Event) -> Descriptor:
        stored = self._stored_blob()
        meter = RateMeter(self.id, stored.size, self.ctx.progress)
        offset = session.offset
        if offset:
            meter.reset(offset)
        with self._open_stored(stored) as f:
            if offset:
                f.seek(offset)
            if self._chunks_of(stored.size):
                self._write_file_chunks(session, f, stored.size, meter.add, cancelled)
                session.commit(stored.digest)
            else:
                f.seek(offset)
                session.commit(stored.digest, f, length=stored.size - offset, progress=meter.add)
                self.bytes_sent += stored.size - offset
        return Descriptor(self._media_type_for(stored.digest), stored.digest, stored.size)

    def _send_compressed(
        self, session: BlobUpload, compression: Compression, cancelled: threading.Event
    ) -> Descriptor:
        layer = self.layer
        meter = RateMeter(self.id, layer.size, self.ctx.progress)
        digester = Digester()
        offset = session.offset
        with layer.open() as f:
            chunks = compress_stream(
                f, compression, digester, on_input=meter.add, cancelled=cancelled.is_set
            )
            if offset == 0 and layer.size <= BUFFER_MAX:
                body = b"".join(chunks)
                session.commit(digester.digest(), body, length=len(body))
                self.bytes_sent += len(body)
            else:
                self._write_chunks(
                    session, skip_bytes(chunks, offset), compression, None, cancelled
                )
                session.commit(digester.digest())
        return Descriptor(compression.media_type(self.ctx.oci), digester.digest(), digester.size)

    def _write_file_chunks(
        self,
        session: BlobUpload,
        f: BinaryIO,
        size: int,
        progress: Callable[[int], None],
        cancelled: threading.Event,
    ) -> None:
        """PATCH a stored file in ``chunk_size`` pieces, saving the session after each one.

        Each piece is a known range of a seekable file, so the transport can hand it to
        ``sendfile``: the bytes never pass through Python (most of W1's client CPU otherwise).
        """
        chunk = self.ctx.chunk_size
        while session.offset < size:
            if cancelled.is_set():
                raise Cancelled("push cancelled")
            before = session.offset
            f.seek(before)
            session.write(f, length=min(chunk, size - before), progress=progress)
            self.bytes_sent += session.offset - before  # acknowledged, over every attempt
            self._save(None, session)

    def _write_chunks(
        self,
        session: BlobUpload,
        chunks: Iterator[bytes],
        compression: Compression | None,
        progress: Callable[[int], None] | None,
        cancelled: threading.Event,
    ) -> None:
        """PATCH ``chunk_size`` bytes at a time, saving the session after each one."""
        pending = _Rechunker(chunks)
        while not pending.exhausted:
            if cancelled.is_set():
                raise Cancelled("push cancelled")
            piece = pending.take(self.ctx.chunk_size)
            before = session.offset
            session.write(piece, progress=progress)
            self.bytes_sent += session.offset - before  # acknowledged, over every attempt
            self._save(compression, session)


class _Rechunker:
    """Cuts a stream of byte chunks into bounded pieces, each itself a lazy iterator."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._carry = b""
        self.exhausted = False

    def _fill(self) -> bool:
        if self._carry:
            return True
        for chunk in self._chunks:
            if chunk:
                self._carry = chunk
                return True
        self.exhausted = True
        return False

    def take(self, limit: int) -> Iterator[bytes]:
        if not self._fill():
            return iter(())
        return self._piece(limit)

    def _piece(self, limit: int) -> Iterator[bytes]:
        left = limit
        while left > 0 and self._fill():
            chunk, self._carry = self._carry[:left], self._carry[left:]
            left -= len(chunk)
            yield chunk
        if not self._carry:
            self._fill()


def hmac_matches(entries: list[V2Metadata], key: str) -> set[int]:
    """Indexes of the entries recorded with these credentials (ranking and the mount rule)."""
    from yardarm.store.metadata import check_hmac

    return {i for i, e in enumerate(entries) if check_hmac(e, key)}


def _compression_of(media_type: str) -> str:
    """gzip, zstd or none; unknown or empty media types count as gzip (moby's assumption)."""
    return mt.compression_of(media_type) if mt.is_layer(media_type) else "gzip"


def _layer_media_type(compression: str, oci: bool, original: str) -> str:
    """The media type a blob gets in the manifest we write, by the format asked for."""
    if compression == "zstd":
        return mt.OCI_LAYER_ZSTD
    if mt.is_foreign_layer(original):
        return original
    if compression == "gzip":
        return mt.OCI_LAYER_GZIP if oci else mt.DOCKER_LAYER
    return mt.OCI_LAYER if oci else mt.DOCKER_UNCOMPRESSED_LAYER
