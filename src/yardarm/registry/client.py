"""The v2 / OCI distribution API: blobs, resumable uploads, manifests, tags, referrers.

Upload sessions follow registry 2.8's rules, which are stricter than the spec: only the newest
``Location`` is accepted (its ``_state`` query is signed with the offset), PATCH bodies must be
``application/octet-stream``, and ``Range`` is inclusive. Retrying whole uploads is the upload
manager's job; this module retries only small idempotent requests and says precisely what failed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, Final, cast

from yardarm import mediatypes as mt
from yardarm.digest import Digest, Digester, VerifyingReader
from yardarm.errors import (
    DeniedError,
    InvalidDigest,
    NotFoundError,
    ProtocolError,
    UsageError,
    YardarmError,
)
from yardarm.manifest import Descriptor
from yardarm.registry._session import Session
from yardarm.registry._upload import OCTET, BlobUpload, location_from, range_end
from yardarm.registry.auth import repository_scope
from yardarm.registry.credentials import Credentials, lookup_credentials
from yardarm.registry.transport import (
    HttpTransport,
    Response,
    Transport,
    is_loopback,
    split_host,
)

__all__ = ["BlobSource", "BlobUpload", "Registry", "RegistryOptions", "Repository"]

log = logging.getLogger("yardarm.registry")

#: What upload_blob accepts: a file path (sent with zero copy), bytes, or an open binary file.
BlobSource = Path | bytes | IO[bytes] | BinaryIO
MANIFEST_LIMIT: Final = 4 * 1024 * 1024  # the spec's recommended manifest size limit
_JSON_LIMIT: Final = 16 * 1024 * 1024
_READ_BLOCK: Final = 1024 * 1024
_DOCKER_HUB: Final = ("docker.io", "index.docker.io")


@dataclass(frozen=True)
class RegistryOptions:
    """How to reach registries; one value shared by every Registry of a push."""

    insecure_registries: tuple[str, ...] = ()
    certs_dirs: tuple[Path, ...] = ()
    connect_timeout: float = 30.0
    read_timeout: float = 300.0
    max_chunk_size: int | None = None
    docker_config_dir: Path | None = None
    transport: Transport | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    #: docker allows 127.0.0.0/8 and ::1 without TLS verification; tests of TLS turn this off.
    insecure_loopback: bool = True

    def __post_init__(self) -> None:
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise UsageError("timeouts must be positive")
        if self.max_chunk_size is not None and self.max_chunk_size < 1:
            raise UsageError("max chunk size must be at least 1 byte")


class Registry:
    """One registry host; thread-safe, share it between threads of a push."""

    def __init__(
        self,
        host: str,
        options: RegistryOptions | None = None,
        credentials: Credentials | None = None,
    ) -> None:
        options = options or RegistryOptions()
        self.options = options
        self.host = "registry-1.docker.io" if host.lower() in _DOCKER_HUB else host
        if credentials is None:
            credentials = lookup_credentials(host, options.docker_config_dir)
        self.credentials = credentials
        env_insecure = os.environ.get("YARDARM_INSECURE_REGISTRIES", "")
        named = {h.strip().lower() for h in env_insecure.split(",") if h.strip()}
        named |= {h.lower() for h in options.insecure_registries}
        hostname = split_host(self.host)[0]
        insecure = self.host.lower() in named or hostname.lower() in named
        if options.insecure_loopback and is_loopback(hostname):
            insecure = True
        self._owns_transport = options.transport is None
        transport = options.transport or HttpTransport(
            insecure_hosts=named,
            insecure_loopback=options.insecure_loopback,
            certs_dirs=options.certs_dirs,
            connect_timeout=options.connect_timeout,
            read_timeout=options.read_timeout,
        )
        self._session = Session(
            self.host,
            credentials,
            transport,
            insecure=insecure,
            sleep=options.sleep,
            clock=options.clock,
        )

    def __repr__(self) -> str:
        return f"Registry({self.host!r})"

    @property
    def base_url(self) -> str:
        """``scheme://host`` as discovered by the first ping."""
        return self._session.base

    @property
    def token_fetches(self) -> int:
        return self._session.auth.fetches

    def ping(self) -> None:
        """GET /v2/ with credentials: proves they work (what ``login`` needs)."""
        url = self._session.url("/v2/")
        self._session.call("GET", url, retry=True).close()

    def repository(self, path: str) -> Repository:
        return Repository(self._session, path, self.options)

    def catalog(self) -> list[str]:
        out: list[str] = []
        for doc in _pages(
            self._session, self._session.url("/v2/_catalog"), ("registry:catalog:*",), ""
        ):
            names = doc.get("repositories") or []
            out.extend(n for n in names if isinstance(n, str))
        return out

    def close(self) -> None:
        if self._owns_transport:
            self._session.transport.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Repository:
    """One repository of a registry; thread-safe. Every request asks for push and pull."""

    def __init__(self, session: Session, name: str, options: RegistryOptions) -> None:
        self._s = session
        self.name = name
        self._options = options
        self._scopes = (repository_scope(name, "push,pull"),)
        # registry 2.8 wants the "delete" action for every DELETE, upload cancels included.
        self._delete_scopes = (repository_scope(name, "delete"),)

    def __repr__(self) -> str:
        return f"Repository({self._s.host!r}, {self.name!r})"

    def _path(self, tail: str) -> str:
        return f"/v2/{self.name}/{tail}"

    def _call(self, method: str, url: str, **kw: object) -> Response:
        kw.setdefault("scopes", self._scopes)
        return self._s.call(method, url, repository=self.name, **kw)  # type: ignore[arg-type]

    # -- blobs ---------------------------------------------------------------------------

    def stat_blob(self, digest: Digest) -> Descriptor | None:
        return self._stat(digest, self._scopes)

    def _stat(self, digest: Digest, scopes: tuple[str, ...]) -> Descriptor | None:
        url = self._s.url(self._path(f"blobs/{digest}"))
        try:
            resp = self._call("HEAD", url, retry=True, scopes=scopes)
        except NotFoundError:
            return None
        resp.close()
        size = _content_length(resp)
        if size is None:
            raise ProtocolError(f"HEAD {self.name}@{digest}: no Content-Length")
        return Descriptor(OCTET, digest, size)

    def open_blob(self, digest: Digest) -> BinaryIO:
        """A streaming reader that raises DigestMismatch at EOF if the content is wrong."""
        url = self._s.url(self._path(f"blobs/{digest}"))
        resp = self._call("GET", url, retry=True)
        reader = VerifyingReader(
            cast(BinaryIO, resp), digest, _content_length(resp), what=f"blob {digest}"
        )
        return cast(BinaryIO, reader)

    def mount_blob(
        self, digest: Digest, source: str, size: int | None = None
    ) -> Descriptor | BlobUpload | None:
        """Cross-repository mount: Descriptor if mounted, a session (202) or None (no scope).

        With ``size`` known (the caller holds the blob) a 201 carrying the right digest is
        enough; without it, a HEAD learns the size (and proves the blob is there).
        """
        url = self._s.url(self._path("blobs/uploads/"), [("mount", str(digest)), ("from", source)])
        scopes = (*self._scopes, repository_scope(source, "pull"))
        try:
            resp = self._call("POST", url, scopes=scopes, ok=(201, 202))
        except DeniedError as exc:
            # registry 2.8 answers the whole POST 401 insufficient_scope when we may not pull
            # the source; that only means "not mounted", the upload can still go ahead.
            log.debug("mount of %s from %s refused: %s", digest.short, source, exc)
            return None
        with resp:
            if resp.status == 201:
                got = resp.headers.get("docker-content-digest")
                if got and got != str(digest):
                    raise ProtocolError(f"mount of {digest} answered digest {got}")
                if size is not None and got == str(digest):
                    return Descriptor(OCTET, digest, size)
                # The answer has no size; HEAD with the same token (no second token fetch).
                stat = self._stat(digest, scopes)
                if stat is None:
                    raise ProtocolError(f"mount of {digest} answered 201 but the blob is missing")
                return stat
            return self._upload_from(resp, url)

    def start_upload(self) -> BlobUpload:
        url = self._s.url(self._path("blobs/uploads/"))
        with self._call("POST", url, ok=(202,)) as resp:
            return self._upload_from(resp, url)

    def _upload_from(self, resp: Response, url: str) -> BlobUpload:
        location = location_from(resp, url)
        chunk_min = resp.headers.get("oci-chunk-min-length")
        upload = BlobUpload(self, location, self._options.max_chunk_size)
        if chunk_min and chunk_min.isdigit():
            upload.chunk_min = int(chunk_min)
        rng = resp.headers.get("range")
        if rng:
            upload.offset = range_end(rng)
        return upload

    def resume_upload(self, location: str) -> BlobUpload:
        """Reattach to a session saved earlier; UploadInvalid if the registry dropped it."""
        upload = BlobUpload(self, location, self._options.max_chunk_size)
        upload.status()
        return upload

    def upload_blob(
        self,
        source: BlobSource,
        digest: Digest | None = None,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> Descriptor:
        """Start, send and commit one blob: a single PUT when size and digest are known."""
        if isinstance(source, Path):
            with open(source, "rb") as f:
                if digest is None:
                    digest = _hash_file(f)
                    f.seek(0)
                return self._upload_stream(f, os.fstat(f.fileno()).st_size, digest, progress)
        if isinstance(source, bytes | bytearray | memoryview):
            data = bytes(source)
            digest = digest or Digest.from_bytes(data)
            if self._options.max_chunk_size is None:
                # Small blobs (configs) go as they are: no file wrapper, no 1 MiB buffer.
                upload = self.start_upload()
                try:
                    return upload.commit(digest, data, progress=progress)
                except BaseException:
                    upload.cancel()
                    raise
            return self._upload_stream(io.BytesIO(data), len(data), digest, progress)
        length = _remaining_length(source)
        return self._upload_stream(source, length, digest, progress)

    def _upload_stream(
        self,
        f: IO[bytes] | BinaryIO,
        length: int | None,
        digest: Digest | None,
        progress: Callable[[int], None] | None,
    ) -> Descriptor:
        upload = self.start_upload()
        try:
            if digest is not None and length is not None and upload.max_chunk_size is None:
                return upload.commit(digest, f, length=length, progress=progress)
            if digest is None:
                hashing = _HashingReader(f)
                upload.write(hashing, length=length, progress=progress)
                digest = hashing.digester.digest()
            else:
                upload.write(f, length=length, progress=progress)
            return upload.commit(digest)
        except BaseException:
            upload.cancel()
            raise

    # -- manifests -----------------------------------------------------------------------

    def head_manifest(self, reference: str) -> Descriptor | None:
        url = self._s.url(self._path(f"manifests/{reference}"))
        headers = {"Accept": ", ".join(mt.MANIFEST_ACCEPT)}
        try:
            resp = self._call("HEAD", url, headers=headers, retry=True)
        except NotFoundError:
            return None
        resp.close()
        header = resp.headers.get("docker-content-digest")
        try:
            digest = Digest.parse(header) if header else Digest.parse(reference)
        except InvalidDigest:
            raise ProtocolError(
                f"HEAD {self.name}:{reference}: no usable Docker-Content-Digest"
            ) from None
        if reference.startswith(("sha256:", "sha512:")) and str(digest) != reference:
            raise ProtocolError(f"HEAD {self.name}@{reference} answered digest {digest}")
        media_type = (resp.headers.get("content-type") or "").split(";")[0].strip()
        return Descriptor(media_type, digest, _content_length(resp) or 0)

    def get_manifest(self, reference: str) -> tuple[bytes, str, Digest]:
        """Raw bytes (unchanged), media type, and the digest checked against what was asked."""
        url = self._s.url(self._path(f"manifests/{reference}"))
        headers = {"Accept": ", ".join(mt.MANIFEST_ACCEPT)}
        resp = self._call("GET", url, headers=headers, retry=True)
        size = _content_length(resp)
        if size is not None and size > MANIFEST_LIMIT:
            resp.close()
            raise ProtocolError(f"manifest {self.name}:{reference} is too large ({size} bytes)")
        raw = resp.read_capped(MANIFEST_LIMIT + 1)
        if len(raw) > MANIFEST_LIMIT:
            raise ProtocolError(f"manifest {self.name}:{reference} is too large")
        media_type = (resp.headers.get("content-type") or "").split(";")[0].strip()
        wanted = _digest_or_none(reference)
        algorithm = wanted.algorithm if wanted else "sha256"
        digest = _manifest_digest(raw, media_type, algorithm)
        raw_digest = Digest(algorithm, hashlib.new(algorithm, raw).hexdigest())
        if wanted is not None and wanted not in (digest, raw_digest):
            raise ProtocolError(f"manifest {self.name}@{wanted}: content hashes to {digest}")
        self._check_digest_header(resp, digest, "GET", reference)
        return raw, media_type, digest

    def put_manifest(self, reference: str, raw: bytes, media_type: str) -> Digest:
        """PUT the bytes unchanged; returns the digest the registry knows them by.

        That is the hash of the bytes, except for signed schema1, whose digest covers the
        payload without its signatures (what registries and docker report).
        """
        url = self._s.url(self._path(f"manifests/{reference}"))
        digest = _manifest_digest(raw, media_type)
        with self._call(
            "PUT", url, headers={"Content-Type": media_type}, body=raw, ok=(200, 201, 202)
        ) as resp:
            self._check_digest_header(resp, digest, "PUT", reference)
        return digest

    def _check_digest_header(
        self, resp: Response, digest: Digest, method: str, reference: str
    ) -> None:
        header = resp.headers.get("docker-content-digest")
        if header and header.strip() != str(digest):
            raise ProtocolError(
                f"{method} manifest {self.name}:{reference}: registry says digest {header}, "
                f"content is {digest}"
            )

    def delete_manifest(self, digest: Digest) -> None:
        url = self._s.url(self._path(f"manifests/{digest}"))
        self._call("DELETE", url, ok=(200, 202, 204), scopes=self._delete_scopes).close()

    # -- listing -------------------------------------------------------------------------

    def tags(self) -> list[str]:
        out: list[str] = []
        for doc in _pages(self._s, self._s.url(self._path("tags/list")), self._scopes, self.name):
            tags = doc.get("tags") or []
            out.extend(t for t in tags if isinstance(t, str))
        return out

    def referrers(self, digest: Digest, artifact_type: str | None = None) -> list[Descriptor]:
        """The referrers API, falling back to the ``<alg>-<hex>`` tag schema where missing."""
        query = [("artifactType", artifact_type)] if artifact_type else []
        url = self._s.url(self._path(f"referrers/{digest}"), query)
        try:
            resp = self._call("GET", url, retry=True, headers={"Accept": mt.OCI_INDEX})
            raw = resp.read_capped(_JSON_LIMIT)
        except NotFoundError:
            try:
                raw = self.get_manifest(f"{digest.algorithm}-{digest.hex}")[0]
            except NotFoundError:
                return []
        # Filtering again is harmless where the registry already did (OCI-Filters-Applied).
        return _index_descriptors(raw, f"referrers of {digest}", artifact_type)


# -- helpers --------------------------------------------------------------------------------


class _HashingReader(io.RawIOBase):
    """Hashes what passes through, so a blob of unknown digest is read once."""

    def __init__(self, raw: IO[bytes] | BinaryIO) -> None:
        self._raw = raw
        self.digester = Digester()

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        if data:
            self.digester.update(data)
        return data

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def _remaining_length(f: IO[bytes] | BinaryIO) -> int | None:
    try:
        if f.seekable():
            pos = f.tell()
            end = f.seek(0, os.SEEK_END)
            f.seek(pos)
            return end - pos
    except (AttributeError, OSError, ValueError):
        pass
    return None


def _hash_file(f: IO[bytes]) -> Digest:
    d = Digester()
    buf = bytearray(_READ_BLOCK * 4)
    view = memoryview(buf)
    while n := f.readinto(view):  # type: ignore[attr-defined]
        d.update(view[:n])
    return d.digest()


def _manifest_digest(raw: bytes, media_type: str, algorithm: str = "sha256") -> Digest:
    if media_type == mt.DOCKER_SCHEMA1_SIGNED:
        payload = _schema1_payload(raw)
        if payload is not None:
            raw = payload
    return Digest(algorithm, hashlib.new(algorithm, raw).hexdigest())


def _schema1_payload(raw: bytes) -> bytes | None:
    """The signed schema1 payload: the bytes before the signatures plus the protected tail."""
    try:
        doc = json.loads(raw)
        protected = doc["signatures"][0]["protected"]
        header = json.loads(base64.urlsafe_b64decode(protected + "=" * (-len(protected) % 4)))
        length = header["formatLength"]
        tail = header["formatTail"]
        tail_bytes = base64.urlsafe_b64decode(tail + "=" * (-len(tail) % 4))
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    if not isinstance(length, int) or not 0 < length <= len(raw):
        return None
    return raw[:length] + tail_bytes


def _content_length(resp: Response) -> int | None:
    v = resp.headers.get("content-length")
    return int(v) if v is not None and v.strip().isdigit() else None


def _digest_or_none(reference: str) -> Digest | None:
    if ":" not in reference:
        return None
    try:
        return Digest.parse(reference)
    except InvalidDigest:
        return None


def _pages(session: Session, url: str, scopes: tuple[str, ...], repository: str) -> Iterator[dict]:  # type: ignore[type-arg]
    seen: set[str] = set()
    next_url: str | None = url
    while next_url and next_url not in seen:
        seen.add(next_url)
        resp = session.call("GET", next_url, scopes=scopes, retry=True, repository=repository)
        raw = resp.read_capped(_JSON_LIMIT)
        try:
            doc = json.loads(raw)
        except ValueError:
            raise ProtocolError(f"GET {next_url}: answer is not JSON") from None
        if not isinstance(doc, dict):
            raise ProtocolError(f"GET {next_url}: answer is not a JSON object")
        yield doc
        next_url = _next_link(resp.headers.get_all("link"), next_url)


def _next_link(values: list[str], base: str) -> str | None:
    for value in values:
        for part in value.split(","):
            target, _, params = part.partition(";")
            target = target.strip()
            if (
                target.startswith("<")
                and target.endswith(">")
                and 'rel="next"' in params.replace(" ", "").replace("rel=next", 'rel="next"')
            ):
                return urllib.parse.urljoin(base, target[1:-1])
    return None


def _index_descriptors(raw: bytes, what: str, artifact_type: str | None = None) -> list[Descriptor]:
    """Descriptors of an index's manifests, optionally only those of one artifact type."""
    try:
        doc = json.loads(raw)
    except ValueError:
        raise ProtocolError(f"{what}: not JSON") from None
    manifests = doc.get("manifests") if isinstance(doc, dict) else None
    if not isinstance(manifests, list):
        return []
    out = []
    for i, m in enumerate(manifests):
        if artifact_type and not (isinstance(m, dict) and m.get("artifactType") == artifact_type):
            continue
        try:
            out.append(Descriptor.from_json(m, f"{what}[{i}]"))
        except YardarmError:
            continue
    return out
