"""HTTP/1.1 on the stdlib: pooled keep-alive connections, zero-copy bodies, TLS as docker does it.

Why not requests/urllib3: a push is bound by CPU on small machines (the registry itself burns
~3 CPU-s/GiB), so the client must spend as little as possible per byte. Here a file body of known
length goes out through ``socket.sendfile`` on plain HTTP (no copy through Python at all) and
through 1 MiB ``sendall`` writes under TLS; http.client would send 8 KiB at a time.

The :class:`Transport` protocol is all the client needs, so tests substitute their own.
"""

from __future__ import annotations

import http.client
import ipaddress
import os
import select
import socket
import ssl
import threading
import urllib.parse
from base64 import b64encode
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from yardarm._version import __version__
from yardarm.errors import TLSError, TransportError, redact_url
from yardarm.registry._messages import (
    ERROR_BODY_LIMIT,
    Body,
    Headers,
    Response,
    Transport,
    body_position,
    rewind_body,
)

__all__ = [
    "DEFAULT_CERTS_DIR",
    "ERROR_BODY_LIMIT",
    "USER_AGENT",
    "Body",
    "Headers",
    "HttpTransport",
    "Response",
    "Transport",
    "body_position",
    "is_loopback",
    "rewind_body",
    "split_host",
]

USER_AGENT: Final = f"yardarm/{__version__}"
DEFAULT_CERTS_DIR: Final = Path("/etc/docker/certs.d")
_BLOCK: Final = 1024 * 1024
_SENDFILE_SLICE: Final = 16 * 1024 * 1024  # progress granularity for zero-copy sends
_MAX_IDLE_PER_HOST: Final = 16
_HANDSHAKE_TIMEOUT: Final = 10.0


def split_host(host: str) -> tuple[str, int | None]:
    """``host[:port]`` (IPv6 in brackets) -> (hostname, port or None)."""
    if host.startswith("["):
        end = host.find("]")
        name, rest = host[1:end], host[end + 1 :]
        return name, int(rest[1:]) if rest.startswith(":") else None
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit() and ":" not in name:
        return name, int(port)
    return host, None


def is_loopback(hostname: str) -> bool:
    """Docker treats 127.0.0.0/8, ::1 and localhost as insecure-allowed by default."""
    if hostname.lower() in ("localhost", "localhost.localdomain") or hostname.endswith(
        ".localhost"
    ):
        return True
    try:
        return ipaddress.ip_address(hostname.strip("[]")).is_loopback
    except ValueError:
        return False


class _Conn(http.client.HTTPConnection):
    """An HTTP(S) connection with separate connect/read timeouts and an optional tunnel."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        connect_timeout: float,
        read_timeout: float,
        context: ssl.SSLContext | None,
        server_hostname: str,
    ) -> None:
        super().__init__(host, port, timeout=read_timeout)
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._context = context
        self._server_hostname = server_hostname
        self.reused = False

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self._connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock = sock
            if self._tunnel_host:  # type: ignore[attr-defined]
                self._tunnel()  # type: ignore[attr-defined]
            if self._context is not None:
                # A server that does not speak TLS may never answer the ClientHello; the
                # handshake counts as connecting, and a short bound lets the insecure-registry
                # fallback to plain HTTP happen quickly.
                self.sock.settimeout(min(self._connect_timeout, _HANDSHAKE_TIMEOUT))
                self.sock = self._context.wrap_socket(
                    self.sock, server_hostname=self._server_hostname
                )
            self.sock.settimeout(self._read_timeout)
        except BaseException:
            sock.close()
            self.sock = None
            raise

    @property
    def is_tls(self) -> bool:
        return self._context is not None

    def stale(self) -> bool:
        """An idle keep-alive connection the server already closed reads as ready (EOF)."""
        if self.sock is None:
            return True
        try:
            ready, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(ready)


@dataclass
class _Sent:
    """How many body bytes left us; reported in TransportError.bytes_sent."""

    count: int = 0


class HttpTransport:
    """The real transport: one keep-alive pool per (scheme, host, port); thread-safe."""

    def __init__(
        self,
        *,
        insecure_hosts: Iterable[str] = (),
        insecure_loopback: bool = True,
        certs_dirs: Iterable[Path] = (),
        connect_timeout: float = 30.0,
        read_timeout: float = 300.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if env is None else env
        self._insecure = {h.lower() for h in insecure_hosts}
        self._insecure_loopback = insecure_loopback
        self._certs_dirs = (*certs_dirs, DEFAULT_CERTS_DIR)
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._proxies = _proxies_from(env)
        self._lock = threading.Lock()
        self._idle: dict[tuple[str, str, int], list[_Conn]] = {}
        self._contexts: dict[str, ssl.SSLContext] = {}

    # -- public -------------------------------------------------------------------------

    def is_insecure(self, host: str) -> bool:
        """Named as insecure, or loopback: TLS without verification, plain HTTP allowed."""
        name, _ = split_host(host)
        if host.lower() in self._insecure or name.lower() in self._insecure:
            return True
        return self._insecure_loopback and is_loopback(name)

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: Body = None,
        *,
        length: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Response:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TransportError(f"unsupported URL {redact_url(url)!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        key = (parts.scheme, parts.hostname.lower(), port)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        if isinstance(body, bytes | bytearray | memoryview):
            length = len(body)
        start = body_position(body)
        for attempt in (0, 1):
            conn = self._checkout(key, parts.netloc)
            sent = _Sent()
            try:
                resp = self._exchange(conn, method, target, headers, body, length, progress, sent)
            except ssl.SSLCertVerificationError as exc:
                conn.close()
                raise TLSError(
                    f"TLS certificate of {parts.netloc} not trusted: {exc.verify_message}",
                    method=method,
                    url=url,
                ) from exc
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                # A reused connection the server closed while idle: try once more on a
                # fresh one, but only without a streamed body. A PATCH cut after its body
                # left us may have reached the registry (which then kills the session), so
                # that decision belongs to the caller, who can ask the registry.
                if (
                    attempt == 0
                    and conn.reused
                    and _is_disconnect(exc)
                    and method != "PATCH"
                    and (body is None or isinstance(body, bytes | bytearray | memoryview))
                    and rewind_body(body, start, progress)
                ):
                    continue
                raise TransportError(
                    _describe(exc), method=method, url=url, bytes_sent=sent.count
                ) from exc
            return self._wrap(resp, conn, key, url)
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for c in conns:
                c.close()

    # -- connections --------------------------------------------------------------------

    def _checkout(self, key: tuple[str, str, int], netloc: str) -> _Conn:
        with self._lock:
            pool = self._idle.get(key)
            while pool:
                conn = pool.pop()
                if not conn.stale():
                    conn.reused = True
                    return conn
                conn.close()
        return self._new_conn(key, netloc)

    def _new_conn(self, key: tuple[str, str, int], netloc: str) -> _Conn:
        scheme, hostname, port = key
        context = self._context_for(netloc) if scheme == "https" else None
        proxy = None if is_loopback(hostname) else self._proxy_for(scheme, hostname)
        if proxy is None:
            return _Conn(
                hostname,
                port,
                connect_timeout=self._connect_timeout,
                read_timeout=self._read_timeout,
                context=context,
                server_hostname=hostname,
            )
        pparts = urllib.parse.urlsplit(proxy if "://" in proxy else "http://" + proxy)
        conn = _Conn(
            pparts.hostname or "",
            pparts.port or 80,
            connect_timeout=self._connect_timeout,
            read_timeout=self._read_timeout,
            context=context,
            server_hostname=hostname,
        )
        tunnel_headers = {}
        if pparts.username:
            cred = f"{urllib.parse.unquote(pparts.username)}:"
            cred += urllib.parse.unquote(pparts.password or "")
            tunnel_headers["Proxy-Authorization"] = "Basic " + b64encode(cred.encode()).decode()
        conn.set_tunnel(hostname, port, headers=tunnel_headers)
        return conn

    def _proxy_for(self, scheme: str, hostname: str) -> str | None:
        proxy = self._proxies.get(scheme)
        if not proxy:
            return None
        if _no_proxy_matches(self._proxies.get("no", ""), hostname):
            return None
        return proxy

    def _release(self, key: tuple[str, str, int], conn: _Conn, reusable: bool) -> None:
        if not reusable or conn.sock is None:
            conn.close()
            return
        with self._lock:
            pool = self._idle.setdefault(key, [])
            if len(pool) < _MAX_IDLE_PER_HOST:
                pool.append(conn)
                return
        conn.close()

    def _context_for(self, netloc: str) -> ssl.SSLContext:
        netloc = netloc.rsplit("@", 1)[-1].lower()
        with self._lock:
            ctx = self._contexts.get(netloc)
            if ctx is None:
                ctx = self._build_context(netloc)
                self._contexts[netloc] = ctx
            return ctx

    def _build_context(self, netloc: str) -> ssl.SSLContext:
        if self.is_insecure(netloc):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        else:
            ctx = ssl.create_default_context()
        # HTTP/2 would cost several times the CPU per byte; stay on HTTP/1.1.
        ctx.set_alpn_protocols(["http/1.1"])
        name, port = split_host(netloc)
        names = [netloc] if port is None else [netloc, name]
        for base in self._certs_dirs:
            for dirname in names:
                folder = base / dirname
                if folder.is_dir():
                    _load_certs_dir(ctx, folder)
                    break
        return ctx

    # -- one exchange -------------------------------------------------------------------

    def _exchange(
        self,
        conn: _Conn,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: Body,
        length: int | None,
        progress: Callable[[int], None] | None,
        sent: _Sent,
    ) -> http.client.HTTPResponse:
        conn.putrequest(method, target, skip_accept_encoding=True)
        names = {k.lower() for k in headers}
        if "user-agent" not in names:
            conn.putheader("User-Agent", USER_AGENT)
        for k, v in headers.items():
            conn.putheader(k, v)
        chunked = body is not None and length is None
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        elif "content-length" not in names and (body is not None or method in ("PUT", "POST")):
            conn.putheader("Content-Length", str(length or 0))
        conn.endheaders()
        if body is not None:
            try:
                _send_body(conn, body, length, progress, sent)
            except OSError:
                # The server may have answered (401, 413) and closed while we were sending:
                # its answer explains the failure better than EPIPE, so try to read it.
                try:
                    resp = conn.getresponse()
                except (OSError, http.client.HTTPException):
                    raise
                resp.will_close = True
                return resp
        return conn.getresponse()

    def _wrap(
        self, resp: http.client.HTTPResponse, conn: _Conn, key: tuple[str, str, int], url: str
    ) -> Response:
        def on_close(reusable: bool) -> None:
            self._release(key, conn, reusable and not resp.will_close)

        out = Response(
            resp.status,
            Headers(resp.getheaders()),
            resp,
            url=url,
            reason=resp.reason,
            on_close=on_close,
        )
        if resp.isclosed():  # HEAD, 204, 304, zero length: nothing to read
            out._eof = True
            out.close()
        return out


def _send_body(
    conn: _Conn,
    body: Body,
    length: int | None,
    progress: Callable[[int], None] | None,
    sent: _Sent,
) -> None:
    sock = conn.sock
    assert sock is not None

    def done(n: int) -> None:
        sent.count += n
        if progress is not None and n:
            progress(n)

    if isinstance(body, bytes | bytearray | memoryview):
        view = memoryview(body)
        for i in range(0, len(view), _BLOCK):
            piece = view[i : i + _BLOCK]
            sock.sendall(piece)
            done(len(piece))
        return
    if hasattr(body, "read"):
        f: IO[bytes] = body  # type: ignore[assignment]
        if length is not None and not conn.is_tls and _has_fileno(f):
            offset = f.tell()
            remaining = length
            while remaining > 0:
                n = sock.sendfile(f, offset, min(remaining, _SENDFILE_SLICE))
                if n == 0:
                    raise TransportError(f"body ended {remaining} bytes early")
                offset += n
                remaining -= n
                done(n)
            return
        chunks: Iterable[bytes] = _read_blocks(f, length)
    else:
        chunks = body  # type: ignore[assignment]
    if length is None:
        # Chunk framing goes in separate small writes: gluing it to 1 MiB of data would copy it.
        trailer = b""
        for chunk in _coalesce(chunks):
            sock.sendall(b"%s%x\r\n" % (trailer, len(chunk)))
            sock.sendall(chunk)
            trailer = b"\r\n"
            done(len(chunk))
        sock.sendall(trailer + b"0\r\n\r\n")
        return
    remaining = length
    for chunk in _coalesce(chunks):
        if len(chunk) > remaining:
            raise TransportError(f"body is longer than the {length} bytes announced")
        sock.sendall(chunk)
        remaining -= len(chunk)
        done(len(chunk))
    if remaining:
        raise TransportError(f"body ended {remaining} bytes before the {length} announced")


def _read_blocks(f: IO[bytes], length: int | None) -> Iterator[bytes]:
    buf = bytearray(_BLOCK)
    view = memoryview(buf)
    remaining = length
    readinto = getattr(f, "readinto", None)
    while remaining is None or remaining > 0:
        want = _BLOCK if remaining is None else min(_BLOCK, remaining)
        if readinto is not None:
            n = readinto(view[:want])
            if not n:
                return
            yield view[:n]  # type: ignore[misc]  # memoryview is bytes-like for sendall
        else:
            data = f.read(want)
            if not data:
                return
            n = len(data)
            yield data
        if remaining is not None:
            remaining -= n


def _coalesce(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Turn many small pieces into >= 1 MiB writes; big pieces pass through uncopied."""
    pending = bytearray()
    for chunk in chunks:
        if not pending and len(chunk) >= _BLOCK:
            yield chunk
            continue
        pending += chunk
        if len(pending) >= _BLOCK:
            yield bytes(pending)
            pending.clear()
    if pending:
        yield bytes(pending)


def _has_fileno(f: object) -> bool:
    try:
        f.fileno()  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False
    return hasattr(f, "tell") and hasattr(f, "seek")


def _is_disconnect(exc: BaseException) -> bool:
    return isinstance(
        exc,
        http.client.RemoteDisconnected | BrokenPipeError | ConnectionResetError,
    )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the server closed the connection without answering"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host: {exc.strerror}"
    return f"{type(exc).__name__}: {exc}"


def _proxies_from(env: Mapping[str, str]) -> dict[str, str]:
    """HTTP(S)_PROXY / NO_PROXY as urllib reads them, but from an injectable mapping."""
    proxies: dict[str, str] = {}
    for name, value in env.items():
        low = name.lower()
        if value and low.endswith("_proxy"):
            proxies[low[:-6]] = value
    for name in ("http_proxy", "https_proxy", "no_proxy"):  # lowercase wins, as in curl
        if env.get(name):
            proxies[name[:-6]] = env[name]
    return proxies


def _no_proxy_matches(no_proxy: str, hostname: str) -> bool:
    """NO_PROXY as curl and Go read it: ``*``, exact names, and domain suffixes."""
    hostname = hostname.lower().rstrip(".")
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        name, _ = split_host(entry)
        name = name.lstrip("*").lstrip(".")
        if hostname == name or hostname.endswith("." + name):
            return True
    return False


def _load_certs_dir(ctx: ssl.SSLContext, folder: Path) -> None:
    """docker's layout: ``*.crt`` are CAs, ``X.cert`` + ``X.key`` a client certificate."""
    for entry in sorted(folder.iterdir()):
        try:
            if entry.suffix == ".crt":
                ctx.load_verify_locations(cafile=str(entry))
            elif entry.suffix == ".cert":
                key = entry.with_suffix(".key")
                if not key.exists():
                    raise TLSError(f"client certificate {entry} has no matching {key.name}")
                ctx.load_cert_chain(str(entry), str(key))
        except (ssl.SSLError, OSError) as exc:
            raise TLSError(f"cannot load {entry}: {exc}") from exc
