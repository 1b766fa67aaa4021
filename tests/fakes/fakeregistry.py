"""An in-process registry for what the real one cannot be made to do. Tests only.

Two uses, both *in addition to* tests against the real ``docker-registry``:

1. **Spec-style upload resume.** Registry 2.8 kills a session whose PATCH was cut mid-body. The
   OCI distribution spec lets a registry keep the received bytes instead; this fake does: the
   bytes of a cut PATCH stay in the session, ``GET`` on the session answers ``204`` with
   ``Range: 0-<last byte>``, and a PATCH whose ``Content-Range`` starts there continues it (any
   other start gets ``416``).
2. **Hostile or broken answers**, switched on through :class:`Hostility` (mutable, also between
   requests): garbage JSON, a wrong ``Docker-Content-Digest``, an upload ``Location`` on another
   host or with a non-http scheme, redirect loops on blob reads, 10 MB error bodies, oversized
   or too many headers, a mount ``201`` naming another digest, a blob ``HEAD`` with the wrong
   size. :attr:`FakeRegistry.intercept` answers any request its own way.

API::

    with FakeRegistry(hostility=Hostility(wrong_content_digest=True)) as fake:
        fake.url, fake.host               # http://127.0.0.1:PORT, 127.0.0.1:PORT
        fake.add_blob("repo", b"data")    # seed content, returns the digest string
        fake.requests                     # every request: method, path, query, headers, body size
        fake.hostility.garbage_json = True

    FakeRegistry(hostility=None, *, basic_auth=("user", "pw") | None, lifetime=300.0,
                 intercept=callable(FakeRequest) -> FakeResponse | None)

Content is kept in memory (keep blobs to a few MiB). Plain HTTP/1.1 with keep-alive on
127.0.0.1; every connection has a read timeout and the server stops itself after ``lifetime``
seconds, so a broken test cannot leave it behind. Repository names are not validated.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, quote, unquote, urlsplit

__all__ = ["FakeRegistry", "FakeRequest", "FakeResponse", "Hostility"]

_BUF = 64 * 1024
_MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


@dataclass
class Hostility:
    """Which lies the fake tells. All off by default: then it is a small, honest registry."""

    #: JSON answers (errors, tags, catalog, manifests GET) are not JSON.
    garbage_json: bool = False
    #: ``Docker-Content-Digest`` on blob commit/HEAD/GET and manifest PUT/GET/HEAD is wrong.
    wrong_content_digest: bool = False
    #: Base (scheme://host[:port]) put in front of upload-session ``Location`` answers, e.g.
    #: another fake's URL or ``ftp://evil.example``.
    upload_location_base: str | None = None
    #: Base that blob GETs are redirected to (307), e.g. another fake's URL (like a CDN).
    blob_redirect_base: str | None = None
    #: Blob GET/HEAD answer 307 to themselves, for ever.
    redirect_loop: bool = False
    #: Error answers carry a JSON envelope padded to this many bytes (10 MB: ``10 << 20``).
    error_body_size: int = 0
    #: Every answer carries one extra header line of this many bytes.
    huge_header: int = 0
    #: Every answer carries this many extra headers.
    many_headers: int = 0
    #: A mount of a blob present in ``from`` answers 201 with this digest instead.
    mount_digest: str | None = None
    #: Blob HEAD reports a Content-Length off by this much.
    head_size_delta: int = 0


@dataclass
class FakeRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""  # kept for requests other than blob PATCH/PUT (which may be large)
    body_bytes: int = 0
    cut: bool = False  # the client went away before the whole body arrived

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


@dataclass
class FakeResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class _Session:
    name: str
    data: bytearray = field(default_factory=bytearray)


class _ClientGone(Exception):
    """The client closed the connection mid-body."""


class FakeRegistry:
    """A threaded v2 registry on 127.0.0.1 with switchable hostility (see the module doc)."""

    def __init__(
        self,
        hostility: Hostility | None = None,
        *,
        basic_auth: tuple[str, str] | None = None,
        lifetime: float = 300.0,
        intercept: Callable[[FakeRequest], FakeResponse | None] | None = None,
        read_timeout: float = 30.0,
    ) -> None:
        self.hostility = hostility or Hostility()
        self.basic_auth = basic_auth
        self.lifetime = lifetime
        self.intercept = intercept
        self.read_timeout = read_timeout
        self.requests: list[FakeRequest] = []
        self.blobs: dict[str, bytes] = {}
        self.links: dict[str, set[str]] = {}  # repository -> blob digests it holds
        self.manifests: dict[tuple[str, str], tuple[bytes, str]] = {}  # (repo, ref) -> raw, type
        self.sessions: dict[str, _Session] = {}
        self.lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._stopped = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> FakeRegistry:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        threading.Thread(target=self._watchdog, daemon=True).start()
        return self

    def stop(self) -> None:
        with self.lock:
            if self._stopping:
                return
            self._stopping = True
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        with self.lock:
            conns = list(self._connections)
        for conn in conns:  # keep-alive connections would otherwise outlive the server
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                conn.close()
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _watchdog(self) -> None:
        if not self._stopped.wait(self.lifetime):
            self.stop()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def __enter__(self) -> FakeRegistry:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    # -- content --------------------------------------------------------------------------------

    def add_blob(self, repository: str, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        with self.lock:
            self.blobs[digest] = data
            self.links.setdefault(repository, set()).add(digest)
        return digest

    def has_blob(self, repository: str, digest: str) -> bool:
        with self.lock:
            return digest in self.links.get(repository, set())

    def requests_to(self, method: str = ".*", path: str = "") -> list[FakeRequest]:
        with self.lock:
            reqs = list(self.requests)
        return [r for r in reqs if re.fullmatch(method, r.method) and re.search(path, r.path)]


_UPLOADS = re.compile(r"^/v2/(?P<name>.+?)/blobs/uploads/(?P<id>[^/]*)$")
_BLOB = re.compile(r"^/v2/(?P<name>.+?)/blobs/(?P<digest>[a-z0-9+._-]+:[a-zA-Z0-9=_-]+)$")
_MANIFEST = re.compile(r"^/v2/(?P<name>.+?)/manifests/(?P<ref>[^/]+)$")
_TAGS = re.compile(r"^/v2/(?P<name>.+?)/tags/list$")


def _digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:" + hashlib.new(algorithm, data).hexdigest()


def _wrong(digest: str) -> str:
    return _digest_of(b"not " + digest.encode())


def _handler_for(fake: FakeRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = fake.read_timeout

        def log_message(self, format: str, *args: object) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            with fake.lock:
                fake._connections.add(self.connection)

        def handle(self) -> None:
            # A client trying HTTPS first: answer as Go's plain server does, not after a timeout.
            try:
                first = self.connection.recv(1, socket.MSG_PEEK)
                if first[:1] == b"\x16":
                    self.connection.sendall(
                        b"HTTP/1.0 400 Bad Request\r\n\r\n"
                        b"Client sent an HTTP request to an HTTPS server.\n"
                    )
                    self.close_connection = True
                    return
                super().handle()
            except OSError:  # clients that vanish are the point of these tests, not noise
                self.close_connection = True

        def finish(self) -> None:
            with fake.lock:
                fake._connections.discard(self.connection)
            with contextlib.suppress(OSError):
                super().finish()

        # -- plumbing ---------------------------------------------------------------------

        def _request(self) -> FakeRequest:
            parts = urlsplit(self.path)
            req = FakeRequest(
                self.command,
                unquote(parts.path),
                parse_qs(parts.query, keep_blank_values=True),
                {k.lower(): v for k, v in self.headers.items()},
            )
            with fake.lock:
                fake.requests.append(req)
            return req

        def _iter_body(self, req: FakeRequest) -> Iterator[bytes]:
            try:
                yield from self._iter_body_raw(req)
            except (OSError, ValueError):
                req.cut = True
                raise _ClientGone from None

        def _iter_body_raw(self, req: FakeRequest) -> Iterator[bytes]:
            if "chunked" in req.headers.get("transfer-encoding", "").lower():
                while True:
                    line = self.rfile.readline(65537)
                    if not line.endswith(b"\n"):
                        req.cut = True
                        raise _ClientGone
                    size = int(line.split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                            pass
                        return
                    remaining = size
                    while remaining:
                        data = self.rfile.read1(min(remaining, _BUF))  # type: ignore[attr-defined]
                        if not data:
                            req.cut = True
                            raise _ClientGone
                        remaining -= len(data)
                        req.body_bytes += len(data)
                        yield data
                    self.rfile.readline(65537)
            remaining = int(req.headers.get("content-length", "0") or 0)
            while remaining > 0:
                data = self.rfile.read1(min(remaining, _BUF))  # type: ignore[attr-defined]
                if not data:
                    req.cut = True
                    raise _ClientGone
                remaining -= len(data)
                req.body_bytes += len(data)
                yield data

        def _read_all(self, req: FakeRequest) -> bytes:
            req.body = b"".join(self._iter_body(req))
            return req.body

        def _send(self, resp: FakeResponse, *, head_only: bool = False) -> None:
            h = fake.hostility
            self.send_response(resp.status)
            headers = {"Docker-Distribution-API-Version": "registry/2.0", **resp.headers}
            if "Content-Length" not in headers:
                headers["Content-Length"] = str(len(resp.body))
            for k, v in headers.items():
                self.send_header(k, v)
            if h.huge_header:
                self.send_header("X-Fake-Padding", "p" * h.huge_header)
            for i in range(h.many_headers):
                self.send_header(f"X-Fake-{i}", "x")
            self.end_headers()
            if not head_only and resp.body:
                self.wfile.write(resp.body)

        def _error(self, status: int, code: str, message: str, **extra: str) -> FakeResponse:
            h = fake.hostility
            if h.garbage_json:
                body = b"<html><body>502 Bad Gateway{{{ not json"
            else:
                err: dict[str, object] = {"code": code, "message": message}
                envelope = {"errors": [err]}
                body = json.dumps(envelope).encode()
                if h.error_body_size > len(body):
                    err["detail"] = "x" * (h.error_body_size - len(body) - 12)
                    body = json.dumps(envelope).encode()
            return FakeResponse(status, {"Content-Type": "application/json", **extra}, body)

        def _json(self, status: int, value: object, **extra: str) -> FakeResponse:
            body = b"{garbage" if fake.hostility.garbage_json else json.dumps(value).encode()
            return FakeResponse(status, {"Content-Type": "application/json", **extra}, body)

        def _authorized(self, req: FakeRequest) -> bool:
            if fake.basic_auth is None:
                return True
            user, password = fake.basic_auth
            expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            return req.authorization == expected

        def _base(self) -> str:
            # Like distribution: absolute URLs from the Host header, so a proxy stays in the path.
            host = self.headers.get("Host") if self.headers else None
            return f"http://{host}" if host else fake.url

        def _location(self, name: str, sid: str) -> str:
            base = fake.hostility.upload_location_base or self._base()
            return f"{base}/v2/{name}/blobs/uploads/{sid}"

        def _session_headers(self, name: str, sid: str, size: int) -> dict[str, str]:
            return {
                "Location": self._location(name, sid),
                "Range": f"0-{max(size - 1, 0)}",
                "Docker-Upload-UUID": sid,
            }

        # -- dispatch ---------------------------------------------------------------------

        def _handle(self) -> None:
            req = self._request()
            streamed = self.command in ("PATCH", "PUT") and bool(_UPLOADS.match(req.path))
            try:
                if not self._authorized(req):
                    with contextlib.suppress(_ClientGone):
                        self._read_all(req)
                    self._send(
                        self._error(
                            401,
                            "UNAUTHORIZED",
                            "authentication required",
                            **{"WWW-Authenticate": 'Basic realm="fake"'},
                        ),
                        head_only=self.command == "HEAD",
                    )
                    return
                if fake.intercept is not None:
                    if not streamed:
                        self._read_all(req)
                    answer = fake.intercept(req)
                    if answer is not None:
                        self._send(answer, head_only=self.command == "HEAD")
                        return
                if not streamed:
                    self._read_all(req)
                resp = self._route(req)
            except _ClientGone:
                self.close_connection = True
                return
            self._send(resp, head_only=self.command == "HEAD")

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815

        def _route(self, req: FakeRequest) -> FakeResponse:
            path, m = req.path, None
            if path in ("/v2", "/v2/"):
                return self._json(200, {})
            if path == "/v2/_catalog":
                with fake.lock:
                    names = sorted(set(fake.links) | {n for n, _ in fake.manifests})
                return self._json(200, {"repositories": names})
            if m := _UPLOADS.match(path):
                return self._uploads(req, m["name"], m["id"])
            if m := _BLOB.match(path):
                return self._blob(req, m["name"], m["digest"])
            if m := _MANIFEST.match(path):
                return self._manifest(req, m["name"], m["ref"])
            if m := _TAGS.match(path):
                with fake.lock:
                    tags = sorted(r for n, r in fake.manifests if n == m["name"] and ":" not in r)
                if not tags:
                    return self._error(404, "NAME_UNKNOWN", "repository name not known")
                return self._json(200, {"name": m["name"], "tags": tags})
            return self._error(404, "NOT_FOUND", "no such route")

        # -- uploads ----------------------------------------------------------------------

        def _uploads(self, req: FakeRequest, name: str, sid: str) -> FakeResponse:
            h = fake.hostility
            if req.method == "POST" and not sid:
                mount, source = req.query.get("mount", [""])[0], req.query.get("from", [""])[0]
                if mount and source and fake.has_blob(source, mount):
                    with fake.lock:
                        fake.links.setdefault(name, set()).add(mount)
                    shown = h.mount_digest or mount
                    return FakeResponse(
                        201,
                        {
                            "Location": f"{self._base()}/v2/{name}/blobs/{shown}",
                            "Docker-Content-Digest": shown,
                        },
                    )
                digest = req.query.get("digest", [""])[0]
                if digest:  # monolithic POST
                    return self._commit(name, bytearray(req.body), digest)
                sid = str(uuid.uuid4())
                with fake.lock:
                    fake.sessions[sid] = _Session(name)
                return FakeResponse(202, self._session_headers(name, sid, 0))
            with fake.lock:
                session = fake.sessions.get(sid)
            if session is None or session.name != name:
                return self._error(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown")
            if req.method == "GET":
                return FakeResponse(204, self._session_headers(name, sid, len(session.data)))
            if req.method == "DELETE":
                with fake.lock:
                    fake.sessions.pop(sid, None)
                return FakeResponse(204)
            if req.method == "PATCH":
                return self._patch(req, session, name, sid)
            if req.method == "PUT":
                digest = req.query.get("digest", [""])[0]
                for piece in self._iter_body(req):
                    session.data += piece
                result = self._commit(name, session.data, digest)
                if result.status == 201:
                    with fake.lock:
                        fake.sessions.pop(sid, None)
                return result
            return self._error(405, "UNSUPPORTED", "method not allowed")

        def _patch(self, req: FakeRequest, session: _Session, name: str, sid: str) -> FakeResponse:
            content_range = req.headers.get("content-range")
            if content_range:
                start = content_range.removeprefix("bytes=").split("-", 1)[0]
                if not start.isdigit() or int(start) != len(session.data):
                    for _ in self._iter_body(req):  # drain so keep-alive survives
                        pass
                    return FakeResponse(416, self._session_headers(name, sid, len(session.data)))
            # The point of this fake: bytes of a cut PATCH stay in the session.
            for piece in self._iter_body(req):
                session.data += piece
            return FakeResponse(202, self._session_headers(name, sid, len(session.data)))

        def _commit(self, name: str, data: bytearray, digest: str) -> FakeResponse:
            algorithm = digest.split(":", 1)[0] if ":" in digest else ""
            if algorithm not in ("sha256", "sha512"):
                return self._error(400, "DIGEST_INVALID", "provided digest did not match")
            if _digest_of(bytes(data), algorithm) != digest:
                return self._error(400, "DIGEST_INVALID", "provided digest did not match")
            with fake.lock:
                fake.blobs[digest] = bytes(data)
                fake.links.setdefault(name, set()).add(digest)
            shown = _wrong(digest) if fake.hostility.wrong_content_digest else digest
            return FakeResponse(
                201,
                {
                    "Location": f"{self._base()}/v2/{name}/blobs/{digest}",
                    "Docker-Content-Digest": shown,
                },
            )

        # -- blobs and manifests ----------------------------------------------------------

        def _blob(self, req: FakeRequest, name: str, digest: str) -> FakeResponse:
            h = fake.hostility
            if req.method in ("GET", "HEAD") and h.redirect_loop:
                return FakeResponse(307, {"Location": f"{self._base()}{self.path}"})
            if req.method == "DELETE":
                with fake.lock:
                    fake.links.get(name, set()).discard(digest)
                return FakeResponse(202)
            if not fake.has_blob(name, digest):
                return self._error(404, "BLOB_UNKNOWN", "blob unknown to registry")
            if req.method == "GET" and h.blob_redirect_base:
                target = f"{h.blob_redirect_base}/v2/{name}/blobs/{quote(digest)}"
                return FakeResponse(307, {"Location": target})
            data = fake.blobs[digest]
            shown = _wrong(digest) if h.wrong_content_digest else digest
            headers = {
                "Content-Type": "application/octet-stream",
                "Docker-Content-Digest": shown,
                "Content-Length": str(
                    len(data) + (h.head_size_delta if req.method == "HEAD" else 0)
                ),
            }
            return FakeResponse(200, headers, data)

        def _manifest(self, req: FakeRequest, name: str, ref: str) -> FakeResponse:
            h = fake.hostility
            if req.method == "PUT":
                raw = req.body
                media_type = req.headers.get("content-type", _MANIFEST_TYPE)
                digest = _digest_of(raw)
                if ":" in ref and ref != digest:
                    return self._error(400, "DIGEST_INVALID", "manifest digest did not match")
                with fake.lock:
                    fake.manifests[(name, ref)] = (raw, media_type)
                    fake.manifests[(name, digest)] = (raw, media_type)
                shown = _wrong(digest) if h.wrong_content_digest else digest
                return FakeResponse(
                    201,
                    {
                        "Location": f"{self._base()}/v2/{name}/manifests/{digest}",
                        "Docker-Content-Digest": shown,
                    },
                )
            with fake.lock:
                found = fake.manifests.get((name, ref))
            if req.method == "DELETE":
                if found is None:
                    return self._error(404, "MANIFEST_UNKNOWN", "manifest unknown")
                with fake.lock:
                    for key in [k for k, v in fake.manifests.items() if v == found]:
                        del fake.manifests[key]
                return FakeResponse(202)
            if found is None:
                return self._error(404, "MANIFEST_UNKNOWN", "manifest unknown")
            raw, media_type = found
            digest = _digest_of(raw)
            body = b"{garbage" if h.garbage_json else raw
            shown = _wrong(digest) if h.wrong_content_digest else digest
            return FakeResponse(
                200,
                {
                    "Content-Type": media_type,
                    "Docker-Content-Digest": shown,
                    "Content-Length": str(len(body)),
                },
                body,
            )

    return Handler
