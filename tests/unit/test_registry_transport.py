"""The stdlib transport on real loopback sockets: keep-alive, zero-copy bodies, timeouts,
proxies, client certificates and redirects (which the real registry never sends)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from yardarm.digest import Digest
from yardarm.errors import RedirectError, RegistryError, TLSError, TransportError
from yardarm.registry import BlobUpload, Credentials, Registry, RegistryOptions
from yardarm.registry.transport import USER_AGENT, HttpTransport, Response, _no_proxy_matches


class Server:
    """A loopback HTTP/1.1 server whose handler is a function of (handler, body)."""

    def __init__(self, respond: Callable[[BaseHTTPRequestHandler, bytes], None]) -> None:
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _handle(self) -> None:
                body = b""
                if self.headers.get("Transfer-Encoding") == "chunked":
                    while True:
                        size = int(self.rfile.readline().strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            break
                        body += self.rfile.read(size)
                        self.rfile.readline()
                elif self.headers.get("Content-Length"):
                    body = self.rfile.read(int(self.headers["Content-Length"]))
                server.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers.items()),
                        "body": body,
                        "port": self.client_address[1],
                    }
                )
                respond(self, body)

            def do_GET(self) -> None:
                self._handle()

            def do_HEAD(self) -> None:
                self._handle()

            def do_PUT(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def do_PATCH(self) -> None:
                self._handle()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def reply(h: BaseHTTPRequestHandler, status: int, body: bytes = b"", **headers: str) -> None:
    h.send_response(status)
    for k, v in headers.items():
        h.send_header(k.replace("_", "-"), v)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(body)


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(respond: Callable[[BaseHTTPRequestHandler, bytes], None]) -> Server:
        s = Server(respond)
        started.append(s)
        return s

    yield start
    for s in started:
        s.close()


def echo_digest(h: BaseHTTPRequestHandler, body: bytes) -> None:
    reply(h, 200, hashlib.sha256(body).hexdigest().encode())


def test_requests_share_one_keep_alive_connection_and_send_the_user_agent(serve) -> None:  # type: ignore[no-untyped-def]
    srv = serve(lambda h, b: reply(h, 200, b"ok"))
    t = HttpTransport()
    for _ in range(5):
        with t.request("GET", srv.url + "/v2/", {}) as resp:
            assert resp.read() == b"ok"
    t.close()
    assert len({r["port"] for r in srv.requests}) == 1
    assert {r["headers"]["User-Agent"] for r in srv.requests} == {USER_AGENT}


def test_file_body_goes_out_through_sendfile_on_plain_http(  # type: ignore[no-untyped-def]
    serve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    srv = serve(echo_digest)
    data = os.urandom(5 * 1024 * 1024 + 3)
    path = tmp_path / "blob"
    path.write_bytes(data)
    calls: list[int] = []
    original = socket.socket.sendfile

    def spy(self, file, offset=0, count=None):  # type: ignore[no-untyped-def]
        calls.append(count or 0)
        return original(self, file, offset, count)

    monkeypatch.setattr(socket.socket, "sendfile", spy)
    progress: list[int] = []
    t = HttpTransport()
    with open(path, "rb") as f:
        resp = t.request("PUT", srv.url + "/x", {}, f, length=len(data), progress=progress.append)
    assert resp.read() == hashlib.sha256(data).hexdigest().encode()
    assert sum(calls) == len(data) and sum(progress) == len(data)


def test_unknown_length_body_is_sent_chunked_in_large_writes(serve) -> None:  # type: ignore[no-untyped-def]
    srv = serve(echo_digest)
    pieces = [os.urandom(1000) for _ in range(3000)]
    t = HttpTransport()
    resp = t.request("PATCH", srv.url + "/x", {}, iter(pieces))
    assert resp.read() == hashlib.sha256(b"".join(pieces)).hexdigest().encode()
    assert srv.requests[0]["headers"]["Transfer-Encoding"] == "chunked"


def test_connection_closed_by_the_server_while_idle_is_replaced(serve) -> None:  # type: ignore[no-untyped-def]
    def close_after(h: BaseHTTPRequestHandler, body: bytes) -> None:
        reply(h, 200, b"ok")
        h.close_connection = True  # closes without saying "Connection: close"

    srv = serve(close_after)
    t = HttpTransport()
    for _ in range(3):
        assert t.request("GET", srv.url + "/", {}).read() == b"ok"
        time.sleep(0.05)
    assert len(srv.requests) == 3


def test_read_timeout_is_a_temporary_transport_error(serve) -> None:  # type: ignore[no-untyped-def]
    srv = serve(lambda h, b: (time.sleep(1.0), reply(h, 200)))
    t = HttpTransport(read_timeout=0.2)
    with pytest.raises(TransportError) as info:
        t.request("GET", srv.url + "/", {})
    assert info.value.temporary and "timed out" in str(info.value)


def test_connection_refused_is_a_temporary_transport_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TransportError) as info:
        HttpTransport(connect_timeout=2).request("GET", f"http://127.0.0.1:{port}/", {})
    assert info.value.temporary and "refused" in str(info.value)


def test_non_http_urls_are_refused() -> None:
    with pytest.raises(TransportError):
        HttpTransport().request("GET", "file:///etc/passwd", {})


def test_response_close_drains_small_rest_and_keeps_the_connection(serve) -> None:  # type: ignore[no-untyped-def]
    srv = serve(lambda h, b: reply(h, 404, b'{"errors":[]}' + b" " * 1000))
    t = HttpTransport()
    for _ in range(3):
        t.request("GET", srv.url + "/", {}).close()
    assert len({r["port"] for r in srv.requests}) == 1


# -- proxies ----------------------------------------------------------------------------------


class ConnectProxy:
    """A CONNECT-only proxy mapping the fake name registry.test to loopback."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            head += client.recv(4096)
        self.seen.append(head.decode())
        target = head.split(b" ")[1].decode()
        _, port = target.rsplit(":", 1)
        upstream = socket.create_connection(("127.0.0.1", int(port)))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

        def pipe(a: socket.socket, b: socket.socket) -> None:
            try:
                while data := a.recv(65536):
                    b.sendall(data)
            except OSError:
                pass
            finally:
                b.close()

        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
        pipe(client, upstream)

    def close(self) -> None:
        self.sock.close()


def test_http_proxy_is_used_through_a_connect_tunnel_with_proxy_auth(serve) -> None:  # type: ignore[no-untyped-def]
    srv = serve(lambda h, b: reply(h, 200, b"via proxy"))
    proxy = ConnectProxy()
    port = srv.host.rsplit(":", 1)[1]
    env = {"HTTP_PROXY": f"http://user:p%40ss@127.0.0.1:{proxy.port}"}
    try:
        t = HttpTransport(env=env)
        assert t.request("GET", f"http://registry.test:{port}/v2/", {}).read() == b"via proxy"
    finally:
        proxy.close()
    [head] = proxy.seen
    assert head.startswith(f"CONNECT registry.test:{port} HTTP/1.")
    assert "Proxy-Authorization: Basic " + base64.b64encode(b"user:p@ss").decode() in head
    assert "Authorization" not in srv.requests[0]["headers"]


def test_no_proxy_and_loopback_bypass_the_proxy(serve) -> None:  # type: ignore[no-untyped-def]
    srv = serve(lambda h, b: reply(h, 200, b"direct"))
    env = {"HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "example.com"}
    t = HttpTransport(env=env)
    assert t.request("GET", srv.url + "/", {}).read() == b"direct"  # loopback: never proxied


def test_no_proxy_matching_rules() -> None:
    assert _no_proxy_matches("*", "anything")
    assert _no_proxy_matches("example.com", "example.com")
    assert _no_proxy_matches("example.com", "reg.example.com")
    assert _no_proxy_matches(".example.com", "reg.example.com")
    assert _no_proxy_matches("a.b, example.com:5000", "example.com")
    assert not _no_proxy_matches("example.com", "notexample.com")
    assert not _no_proxy_matches("", "example.com")


# -- TLS with client certificates --------------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca_ext = "basicConstraints=critical,CA:TRUE"
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=test CA", "-addext", ca_ext, cwd=d)  # fmt: skip
    exts = {"server": "subjectAltName=IP:127.0.0.1", "client": "extendedKeyUsage=clientAuth"}
    for name, ext in exts.items():
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj",
                 f"/CN={name}", cwd=d)  # fmt: skip
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile",
                 f"{name}.ext", cwd=d)  # fmt: skip
    return d


def test_client_certificate_from_certs_dir_is_presented(serve, pki: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    srv = serve(
        lambda h, b: reply(h, 200, json.dumps(h.connection.getpeercert()["subject"]).encode())
    )  # type: ignore[attr-defined]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki / "server.crt", pki / "server.key")
    ctx.load_verify_locations(pki / "ca.crt")
    ctx.verify_mode = ssl.CERT_REQUIRED
    srv.httpd.socket = ctx.wrap_socket(srv.httpd.socket, server_side=True)
    certs = tmp_path / "certs.d" / srv.host
    certs.mkdir(parents=True)
    (certs / "ca.crt").write_bytes((pki / "ca.crt").read_bytes())
    (certs / "client.cert").write_bytes((pki / "client.crt").read_bytes())
    (certs / "client.key").write_bytes((pki / "client.key").read_bytes())
    t = HttpTransport(certs_dirs=[tmp_path / "certs.d"], insecure_loopback=False)
    body = t.request("GET", f"https://{srv.host}/", {}).read()
    assert b"client" in body
    with pytest.raises(TLSError):
        HttpTransport(insecure_loopback=False).request("GET", f"https://{srv.host}/", {})


def test_client_certificate_without_its_key_is_a_clear_error(tmp_path: Path, pki: Path) -> None:
    certs = tmp_path / "127.0.0.1:1"
    certs.mkdir()
    (certs / "client.cert").write_bytes((pki / "client.crt").read_bytes())
    with pytest.raises(TLSError) as info:
        HttpTransport(certs_dirs=[tmp_path]).request("GET", "https://127.0.0.1:1/", {})
    assert "client.key" in str(info.value)


# -- redirects (through the client, which owns the rules) --------------------------------------


class PlainOnly(HttpTransport):
    """These fake registries speak plain HTTP only: skip the HTTPS probe."""

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if url.startswith("https://"):
            raise TransportError("no TLS here", method=method, url=url)
        return super().request(method, url, *args, **kwargs)


BLOB = b"redirected blob content"
DIGEST = Digest.from_bytes(BLOB)
CREDS = Credentials(username="u", password="pw-secret")


def storage_and_front(serve, front_rules: dict[str, tuple[int, str]]):  # type: ignore[no-untyped-def]
    storage = serve(lambda h, b: reply(h, 200, BLOB if h.command == "GET" else b""))

    def front(h: BaseHTTPRequestHandler, body: bytes) -> None:
        if not h.headers.get("Authorization"):
            reply(h, 401, b"", WWW_Authenticate='Basic realm="front"')
            return
        path = h.path.split("?")[0]
        for prefix, (status, location) in front_rules.items():
            if path.startswith(prefix):
                reply(h, status, b"", Location=location.replace("STORAGE", storage.url))
                return
        if h.command == "PUT":
            reply(h, 201, b"", Docker_Content_Digest=str(DIGEST))
            return
        reply(h, 200, BLOB if h.command == "GET" else b"")

    return storage, serve(front)


def client_for(front: Server) -> Registry:
    return Registry(
        front.host, RegistryOptions(transport=PlainOnly(), sleep=lambda _s: None), CREDS
    )


def test_blob_redirect_to_another_host_drops_authorization(serve) -> None:  # type: ignore[no-untyped-def]
    storage, front = storage_and_front(
        serve, {f"/v2/r/blobs/{DIGEST}": (307, "STORAGE/bucket/blob?X-Amz-Signature=s3cr3t")}
    )
    with client_for(front).repository("r").open_blob(DIGEST) as f:
        assert f.read() == BLOB
    assert "Authorization" in front.requests[-1]["headers"]
    assert [r["path"] for r in storage.requests] == ["/bucket/blob?X-Amz-Signature=s3cr3t"]
    assert "Authorization" not in storage.requests[0]["headers"]


def test_redirect_on_the_same_host_keeps_authorization(serve) -> None:  # type: ignore[no-untyped-def]
    _storage, front = storage_and_front(serve, {f"/v2/r/blobs/{DIGEST}": (302, "/moved")})
    with client_for(front).repository("r").open_blob(DIGEST) as f:
        assert f.read() == BLOB
    assert front.requests[-1]["path"] == "/moved"
    assert "Authorization" in front.requests[-1]["headers"]


def test_upload_put_redirected_with_307_replays_the_body_without_credentials(serve) -> None:  # type: ignore[no-untyped-def]
    storage, front = storage_and_front(serve, {"/v2/r/blobs/uploads/u": (307, "STORAGE/upload")})
    reg = client_for(front)
    upload = BlobUpload(reg.repository("r"), f"{front.url}/v2/r/blobs/uploads/u?_state=x")
    # The storage answers 200 where a commit expects 201: the request itself is what we check.
    with pytest.raises(RegistryError):
        upload.commit(DIGEST, io.BytesIO(BLOB), length=len(BLOB))
    assert storage.requests[-1]["method"] == "PUT"
    assert storage.requests[-1]["body"] == BLOB
    assert "Authorization" not in storage.requests[-1]["headers"]


def test_redirect_to_a_non_http_scheme_is_refused(serve) -> None:  # type: ignore[no-untyped-def]
    _storage, front = storage_and_front(serve, {"/v2/r/blobs/": (302, "file:///etc/passwd")})
    with pytest.raises(RedirectError) as info:
        client_for(front).repository("r").open_blob(DIGEST)
    assert not info.value.temporary


def test_redirect_loop_is_refused(serve) -> None:  # type: ignore[no-untyped-def]
    _storage, front = storage_and_front(serve, {"/v2/r/blobs/": (307, "/v2/r/blobs/again")})
    with pytest.raises(RedirectError) as info:
        client_for(front).repository("r").open_blob(DIGEST)
    assert "loop" in str(info.value)


def test_endless_redirect_chain_is_cut_after_a_few_hops(serve) -> None:  # type: ignore[no-untyped-def]
    hops = serve(lambda h, b: reply(h, 302, b"", Location=f"{h.path}x"))
    reg = Registry(hops.host, RegistryOptions(transport=PlainOnly()), Credentials())
    reg._session._base = hops.url  # this server redirects everything, even the ping
    with pytest.raises(RedirectError) as info:
        reg.repository("r").open_blob(DIGEST)
    assert "more than" in str(info.value)
    assert len(hops.requests) == 11


def test_body_read_to_its_length_keeps_the_connection_without_an_eof_read(serve) -> None:  # type: ignore[no-untyped-def]
    payload = os.urandom(1 << 20)
    srv = serve(lambda h, b: reply(h, 200, payload))
    t = HttpTransport()
    for _ in range(3):
        resp = t.request("GET", srv.url + "/", {})
        assert resp.read(len(payload)) == payload
        resp.close()
    assert len({r["port"] for r in srv.requests}) == 1
