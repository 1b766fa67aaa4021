"""A fault-injecting HTTP/1.1 proxy between yardarm and the real registry, for tests only.

A healthy registry never drops a connection in the middle of a PATCH, stalls, or answers 429;
this proxy makes it do so on demand, while every other request reaches the real registry
unchanged (the ``Host`` header included, so the registry's ``Location`` URLs point back at the
proxy and the client keeps going through it).

Usage::

    with FaultProxy(registry.host) as proxy:
        proxy.add(cut(after_bytes=1 << 20, method="PATCH", path=r"/blobs/uploads/"))
        ...  # point the client at proxy.host / proxy.url
        assert proxy.requests_matching("PATCH")[0].body_forwarded == 1 << 20

Rules are tried in order; the first whose ``method`` (full match) and ``path`` (search in
path+query) match, and whose ``times`` is not used up, applies to that request. Actions:

``cut``            forward the head and ``after_bytes`` body bytes, wait ``seconds``, close both
                   sides without an answer (``after_bytes=0``: nothing of the body arrives).
``stall``          forward ``after_bytes`` body bytes, then wait ``seconds`` before going on
                   normally; with ``after_bytes=0`` and ``times=None`` it is plain latency.
``respond``        answer ``status`` itself (JSON error envelope, optional ``Retry-After``); the
                   registry never sees the request. The body is drained first unless ``drain``
                   is False, then the connection is closed after the answer.
``drop_response``  forward the whole request, read the registry's whole answer (so it acted),
                   then close the client connection without answering.
``cut_response``   relay the answer's head and ``after_bytes`` of its body, then close both
                   sides (a download cut mid-blob).

Every request is recorded as a :class:`ProxiedRequest` with the body bytes received from the
client and forwarded to the registry, so tests can assert "zero bytes re-sent". Keep-alive and
both body framings (Content-Length and chunked) are handled on both sides; ``Expect:
100-continue`` is answered by the proxy. The proxy listens on 127.0.0.1 only and stops itself
after ``lifetime`` seconds so a broken test cannot leave it running; every wait is interruptible
by :meth:`FaultProxy.stop`.
"""

from __future__ import annotations

import contextlib
import json
import re
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import BinaryIO, Literal

__all__ = [
    "FaultProxy",
    "ProxiedRequest",
    "Rule",
    "cut",
    "cut_response",
    "drop_response",
    "latency",
    "respond",
    "stall",
]

Action = Literal["cut", "stall", "respond", "drop_response", "cut_response"]

_BUF = 256 * 1024
_MAX_LINE = 64 * 1024
_MAX_HEADERS = 200

_DEFAULT_CODES = {
    429: ("TOOMANYREQUESTS", "too many requests"),
    500: ("UNKNOWN", "injected internal error"),
    502: ("UNAVAILABLE", "injected bad gateway"),
    503: ("UNAVAILABLE", "injected service unavailable"),
    504: ("UNAVAILABLE", "injected gateway timeout"),
}


@dataclass
class Rule:
    """One fault: what it matches, what it does, how many more times (None: always)."""

    action: Action
    method: str = ".*"
    path: str = ""
    times: int | None = 1
    after_bytes: int = 0
    seconds: float = 0.0
    status: int = 503
    retry_after: str | None = None
    body: bytes | None = None
    drain: bool = True
    #: How many requests this rule has been applied to.
    applied: int = 0

    def matches(self, method: str, target: str) -> bool:
        if self.times is not None and self.applied >= self.times:
            return False
        return (
            re.fullmatch(self.method, method) is not None
            and re.search(self.path, target) is not None
        )


def cut(
    after_bytes: int = 0,
    *,
    method: str = ".*",
    path: str = "",
    times: int | None = 1,
    seconds: float = 0.0,
) -> Rule:
    """Close both sides after ``after_bytes`` request-body bytes reached the registry."""
    return Rule("cut", method, path, times, after_bytes=after_bytes, seconds=seconds)


def stall(
    seconds: float,
    *,
    after_bytes: int = 0,
    method: str = ".*",
    path: str = "",
    times: int | None = 1,
) -> Rule:
    """Hold the request ``seconds`` after ``after_bytes`` body bytes, then carry on."""
    return Rule("stall", method, path, times, after_bytes=after_bytes, seconds=seconds)


def latency(
    seconds: float, *, method: str = ".*", path: str = "", times: int | None = None
) -> Rule:
    """Delay every matching request by ``seconds`` before the registry sees it."""
    return stall(seconds, method=method, path=path, times=times)


def respond(
    status: int,
    *,
    retry_after: str | float | None = None,
    body: bytes | None = None,
    method: str = ".*",
    path: str = "",
    times: int | None = 1,
    drain: bool = True,
) -> Rule:
    """Answer ``status`` in the registry's place (a JSON error envelope unless ``body``)."""
    ra = None if retry_after is None else str(retry_after)
    return Rule(
        "respond", method, path, times, status=status, retry_after=ra, body=body, drain=drain
    )


def drop_response(*, method: str = ".*", path: str = "", times: int | None = 1) -> Rule:
    """Let the registry act on the request, then lose its answer."""
    return Rule("drop_response", method, path, times)


def cut_response(
    after_bytes: int, *, method: str = ".*", path: str = "", times: int | None = 1
) -> Rule:
    """Relay the answer's head and ``after_bytes`` of its body, then close (a cut download)."""
    return Rule("cut_response", method, path, times, after_bytes=after_bytes)


@dataclass
class ProxiedRequest:
    """What happened to one request that reached the proxy."""

    method: str
    target: str
    connection: int  # client connection number, to see keep-alive reuse
    action: Action | None = None
    body_received: int = 0  # request-body bytes read from the client
    body_forwarded: int = 0  # request-body bytes written to the registry
    upstream_status: int | None = None  # what the registry answered, if it was asked
    status: int | None = None  # what the client got, None when it got nothing
    response_bytes: int = 0  # response-body bytes sent to the client
    started: float = 0.0
    finished: float | None = None

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


class _Closed(Exception):
    """A side closed the connection; the exchange ends here."""


class _Stop(Exception):
    """The rule or the proxy ended this connection on purpose."""


@dataclass
class _Head:
    start_line: str
    headers: list[tuple[str, str]] = field(default_factory=list)

    def get(self, name: str) -> str | None:
        lname = name.lower()
        for k, v in self.headers:
            if k.lower() == lname:
                return v
        return None

    def tokens(self, name: str) -> set[str]:
        lname = name.lower()
        out: set[str] = set()
        for k, v in self.headers:
            if k.lower() == lname:
                out.update(t.strip().lower() for t in v.split(","))
        return out

    def encode(self, drop: frozenset[str] = frozenset()) -> bytes:
        lines = [self.start_line]
        lines += [f"{k}: {v}" for k, v in self.headers if k.lower() not in drop]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _read_head(reader: BinaryIO) -> _Head | None:
    """One request or response head; None on a clean close before its first byte."""
    line = reader.readline(_MAX_LINE)
    if not line:
        return None
    while line in (b"\r\n", b"\n"):  # tolerated between messages
        line = reader.readline(_MAX_LINE)
        if not line:
            return None
    if not line.endswith(b"\n"):
        raise _Closed("start line too long or cut")
    head = _Head(line.decode("latin-1").rstrip("\r\n"))
    for _ in range(_MAX_HEADERS):
        line = reader.readline(_MAX_LINE)
        if not line or not line.endswith(b"\n"):
            raise _Closed("headers cut")
        if line in (b"\r\n", b"\n"):
            return head
        name, _, value = line.decode("latin-1").partition(":")
        head.headers.append((name.strip(), value.strip()))
    raise _Closed("too many headers")


class FaultProxy:
    """Loopback HTTP/1.1 proxy to ``upstream`` (``host:port``) applying :class:`Rule` faults."""

    def __init__(
        self,
        upstream: str,
        *,
        lifetime: float = 300.0,
        idle_timeout: float = 60.0,
        upstream_ssl: ssl.SSLContext | None = None,
    ) -> None:
        host, _, port = upstream.rpartition(":")
        self.upstream = (host or "127.0.0.1", int(port))
        self.lifetime = lifetime
        self.idle_timeout = idle_timeout
        self.upstream_ssl = upstream_ssl
        self.requests: list[ProxiedRequest] = []
        self.connections_accepted = 0
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._listener: socket.socket | None = None
        self.port = 0

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        self._listener = listener
        self.port = int(listener.getsockname()[1])
        self._deadline = time.monotonic() + self.lifetime
        self._spawn(self._accept_loop, "faultproxy-accept")
        self._spawn(self._watchdog, "faultproxy-watchdog")
        return self

    def stop(self) -> None:
        """Close everything now; idempotent, safe from any thread."""
        self._stop.set()
        if self._listener is not None:
            _close(self._listener)  # shutdown() first: a bare close() does not wake accept()
        with self._lock:
            socks = list(self._sockets)
        for s in socks:
            _close(s)
        current = threading.current_thread()
        for t in list(self._threads):
            if t is not current:
                t.join(timeout=5)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    # -- rules and records ----------------------------------------------------------------------

    def add(self, *rules: Rule) -> None:
        with self._lock:
            self._rules.extend(rules)

    def clear(self) -> None:
        """Drop all rules and records (between phases of one test)."""
        with self._lock:
            self._rules.clear()
            self.requests.clear()

    def requests_matching(self, method: str = ".*", path: str = "") -> list[ProxiedRequest]:
        with self._lock:
            reqs = list(self.requests)
        return [
            r
            for r in reqs
            if re.fullmatch(method, r.method) is not None and re.search(path, r.target)
        ]

    def body_bytes_forwarded(self, method: str = ".*", path: str = "") -> int:
        return sum(r.body_forwarded for r in self.requests_matching(method, path))

    def _rule_for(self, method: str, target: str) -> Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, target):
                    rule.applied += 1
                    return rule
        return None

    # -- plumbing -------------------------------------------------------------------------------

    def _spawn(self, target: object, name: str, *args: object) -> None:
        t = threading.Thread(target=target, args=args, name=name, daemon=True)  # type: ignore[arg-type]
        with self._lock:
            self._threads = [x for x in self._threads if x.is_alive()]
            self._threads.append(t)
        t.start()

    def _watchdog(self) -> None:
        if not self._stop.wait(max(0.0, self._deadline - time.monotonic())):
            threading.Thread(target=self.stop, daemon=True).start()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        number = 0
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            number += 1
            with self._lock:
                self.connections_accepted += 1
                self._sockets.add(client)
            self._spawn(self._serve, f"faultproxy-conn-{number}", client, number)

    def _track(self, s: socket.socket) -> None:
        with self._lock:
            self._sockets.add(s)
        if self._stop.is_set():
            _close(s)

    def _untrack(self, s: socket.socket | None) -> None:
        if s is None:
            return
        with self._lock:
            self._sockets.discard(s)
        _close(s)

    def _connect_upstream(self) -> socket.socket:
        s = socket.create_connection(self.upstream, timeout=self.idle_timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.upstream_ssl is not None:
            s = self.upstream_ssl.wrap_socket(s, server_hostname=self.upstream[0])
        self._track(s)
        return s

    def _serve(self, client: socket.socket, number: int) -> None:
        client.settimeout(self.idle_timeout)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        creader = client.makefile("rb", buffering=_BUF)
        upstream: socket.socket | None = None
        ureader: BinaryIO | None = None
        try:
            if _is_tls_hello(client):
                return
            while not self._stop.is_set():
                head = _read_head(creader)
                if head is None:
                    return
                if upstream is not None and not _idle_and_open(upstream):
                    self._untrack(upstream)  # the registry closed it while we were idle
                    upstream, ureader = None, None
                if upstream is None:
                    upstream = self._connect_upstream()
                    ureader = upstream.makefile("rb", buffering=_BUF)
                assert ureader is not None
                keep = self._exchange(number, head, client, creader, upstream, ureader)
                if keep == "close":
                    return
                if keep == "reconnect":
                    self._untrack(upstream)
                    upstream, ureader = None, None
        except (_Closed, _Stop, OSError, ValueError):
            return
        finally:
            self._untrack(upstream)
            self._untrack(client)

    def _exchange(
        self,
        number: int,
        head: _Head,
        client: socket.socket,
        creader: BinaryIO,
        upstream: socket.socket,
        ureader: BinaryIO,
    ) -> Literal["keep", "close", "reconnect"]:
        parts = head.start_line.split(" ")
        if len(parts) != 3:
            raise _Closed("bad request line")
        method, target, version = parts
        record = ProxiedRequest(method, target, number, started=time.monotonic())
        with self._lock:
            self.requests.append(record)
        rule = self._rule_for(method, target)
        record.action = rule.action if rule is not None else None
        client_close = "close" in head.tokens("Connection") or version == "HTTP/1.0"
        if "100-continue" in head.tokens("Expect"):
            client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = _body_reader(head, creader, record)

        if rule is not None and rule.action == "respond":
            if rule.drain:
                for _ in body:
                    pass
            record.finished = time.monotonic()
            self._answer(client, record, rule)
            return "close" if client_close or not rule.drain else "keep"

        if rule is not None and rule.action == "stall" and rule.after_bytes == 0:
            self._sleep(rule.seconds)
        upstream.sendall(head.encode(drop=frozenset({"expect"})))
        chunked = "chunked" in head.tokens("Transfer-Encoding")
        limit: int | None = None
        if rule is not None and (
            rule.action == "cut" or (rule.action == "stall" and rule.after_bytes > 0)
        ):
            limit = rule.after_bytes
        for piece in body:
            rest = piece
            if limit is not None and record.body_forwarded + len(piece) >= limit:
                first = piece[: limit - record.body_forwarded]
                rest = piece[len(first) :]
                self._send_body(upstream, first, chunked, record)
                assert rule is not None
                self._sleep(rule.seconds)
                if rule.action == "cut":
                    raise _Stop("cut")
                limit = None
            self._send_body(upstream, rest, chunked, record)
        if chunked:
            upstream.sendall(b"0\r\n\r\n")
        if rule is not None and rule.action == "cut":  # body shorter than the cut point
            self._sleep(rule.seconds)
            raise _Stop("cut")

        rhead = _read_head(ureader)
        if rhead is None:
            raise _Closed("registry closed without answering")
        status = int(rhead.start_line.split(" ", 2)[1])
        record.upstream_status = status
        drop = rule is not None and rule.action == "drop_response"
        if not drop:
            # Records are updated before the bytes leave, so a test that got its answer
            # already sees them.
            record.status = status
            client.sendall(rhead.encode())
        upstream_close = "close" in rhead.tokens("Connection")
        cut_at = rule.after_bytes if rule is not None and rule.action == "cut_response" else None
        for piece, raw in _response_body(method, status, rhead, ureader):
            if drop:
                continue
            if cut_at is not None and record.response_bytes + len(piece) >= cut_at:
                keep = cut_at - record.response_bytes
                record.response_bytes += keep
                client.sendall(raw[: len(raw) - (len(piece) - keep)])  # payload ends raw
                record.finished = time.monotonic()
                raise _Stop("response cut")
            record.response_bytes += len(piece)
            client.sendall(raw)
        if cut_at is not None:  # shorter than the cut point: cut at its end
            record.finished = time.monotonic()
            raise _Stop("response cut")
        record.finished = time.monotonic()
        if drop:
            raise _Stop("response dropped")
        if client_close:
            return "close"
        if upstream_close or _reads_to_eof(method, status, rhead):
            return "close" if _reads_to_eof(method, status, rhead) else "reconnect"
        return "keep"

    def _send_body(
        self, upstream: socket.socket, data: bytes, chunked: bool, record: ProxiedRequest
    ) -> None:
        if not data:
            return
        if chunked:
            upstream.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        else:
            upstream.sendall(data)
        record.body_forwarded += len(data)

    def _answer(self, client: socket.socket, record: ProxiedRequest, rule: Rule) -> None:
        body = rule.body
        if body is None:
            code, message = _DEFAULT_CODES.get(rule.status, ("UNKNOWN", "injected error"))
            body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
        try:
            reason = HTTPStatus(rule.status).phrase
        except ValueError:
            reason = "Injected"
        lines = [
            f"HTTP/1.1 {rule.status} {reason}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            "Docker-Distribution-Api-Version: registry/2.0",
        ]
        if rule.retry_after is not None:
            lines.append(f"Retry-After: {rule.retry_after}")
        if not rule.drain:
            lines.append("Connection: close")
        record.status = rule.status
        record.response_bytes = len(body)
        client.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def _sleep(self, seconds: float) -> None:
        if seconds > 0 and self._stop.wait(seconds):
            raise _Stop("proxy stopped")


def _body_reader(head: _Head, reader: BinaryIO, record: ProxiedRequest) -> Iterator[bytes]:
    """The request body's payload bytes as they arrive, whatever the framing."""
    if "chunked" in head.tokens("Transfer-Encoding"):
        for payload, _raw in _chunked(reader):
            record.body_received += len(payload)
            yield payload
        return
    length = head.get("Content-Length")
    remaining = int(length) if length else 0
    while remaining > 0:
        data = reader.read1(min(remaining, _BUF))  # type: ignore[attr-defined]
        if not data:
            raise _Closed("client closed mid-body")
        remaining -= len(data)
        record.body_received += len(data)
        yield data


def _chunked(reader: BinaryIO) -> Iterator[tuple[bytes, bytes]]:
    """(payload, raw bytes) pieces of a chunked body, the trailer included in the last raw."""
    while True:
        size_line = reader.readline(_MAX_LINE)
        if not size_line.endswith(b"\n"):
            raise _Closed("chunk size cut")
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            trailer = b""
            while True:
                line = reader.readline(_MAX_LINE)
                if not line:
                    raise _Closed("trailer cut")
                trailer += line
                if line in (b"\r\n", b"\n"):
                    break
            yield b"", size_line + trailer
            return
        remaining = size
        first = True
        while remaining > 0:
            data = reader.read1(min(remaining, _BUF))  # type: ignore[attr-defined]
            if not data:
                raise _Closed("chunk cut")
            remaining -= len(data)
            raw = (size_line if first else b"") + data
            first = False
            yield data, raw
        crlf = reader.readline(_MAX_LINE)
        if crlf not in (b"\r\n", b"\n"):
            raise _Closed("chunk not terminated")
        yield b"", crlf


def _reads_to_eof(method: str, status: int, head: _Head) -> bool:
    if method == "HEAD" or status < 200 or status in (204, 304):
        return False
    return "chunked" not in head.tokens("Transfer-Encoding") and head.get("Content-Length") is None


def _response_body(
    method: str, status: int, head: _Head, reader: BinaryIO
) -> Iterator[tuple[bytes, bytes]]:
    """(payload, raw) pieces of a response body, relayed with its own framing."""
    if method == "HEAD" or status < 200 or status in (204, 304):
        return
    if "chunked" in head.tokens("Transfer-Encoding"):
        yield from _chunked(reader)
        return
    length = head.get("Content-Length")
    if length is None:
        while True:
            data = reader.read1(_BUF)  # type: ignore[attr-defined]
            if not data:
                return
            yield data, data
    remaining = int(length)
    while remaining > 0:
        data = reader.read1(min(remaining, _BUF))  # type: ignore[attr-defined]
        if not data:
            raise _Closed("registry closed mid-response")
        remaining -= len(data)
        yield data, data


_TLS_HANDSHAKE = 0x16
_PLAIN_TO_TLS = b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"


def _is_tls_hello(sock: socket.socket) -> bool:
    """A client trying HTTPS first gets what Go's plain HTTP server answers, at once.

    Otherwise the handshake bytes would sit in a readline() until the idle timeout, and a
    client that falls back to plain HTTP would hang that long.
    """
    first = sock.recv(1, socket.MSG_PEEK)
    if first and first[0] == _TLS_HANDSHAKE:
        with contextlib.suppress(OSError):
            sock.sendall(_PLAIN_TO_TLS)
        return True
    return False


def _idle_and_open(sock: socket.socket) -> bool:
    """Between exchanges an upstream connection has nothing to say; readable means closed."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def _close(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        s.close()
