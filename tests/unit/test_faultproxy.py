"""The fault proxy injects exactly the faults asked for, and is transparent otherwise.

Checked with http.client against the real registry (plain mode), so the reliability tests that
rely on it measure yardarm, not the proxy.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator

import pytest

from fakes.faultproxy import (
    FaultProxy,
    cut,
    cut_response,
    drop_response,
    latency,
    respond,
    stall,
)
from support.registry import RunningRegistry

pytestmark = pytest.mark.registry

OCTET = {"Content-Type": "application/octet-stream"}


@pytest.fixture
def proxy(registry_plain: RunningRegistry) -> Iterator[FaultProxy]:
    with FaultProxy(registry_plain.host, lifetime=120) as p:
        yield p


def connect(proxy: FaultProxy, timeout: float = 10) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=timeout)


def call(
    conn: http.client.HTTPConnection,
    method: str,
    url: str,
    body: object = None,
    headers: dict[str, str] | None = None,
    *,
    chunked: bool = False,
) -> tuple[int, dict[str, str], bytes]:
    conn.request(method, url, body=body, headers=headers or {}, encode_chunked=chunked)  # type: ignore[arg-type]
    resp = conn.getresponse()
    data = resp.read()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def start_upload(conn: http.client.HTTPConnection, repo: str) -> str:
    status, headers, _ = call(conn, "POST", f"/v2/{repo}/blobs/uploads/")
    assert status == 202
    return headers["location"]


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def with_query(location: str, query: str) -> str:
    return f"{location}{'&' if '?' in location else '?'}{query}"


def test_transparent_proxy_reuses_one_connection_for_keep_alive(
    proxy: FaultProxy, repo_name: str
) -> None:
    conn = connect(proxy)
    data = os.urandom(300_000)
    location = start_upload(conn, repo_name)
    assert location.startswith(proxy.url) or location.startswith("/v2/")
    status, headers, _ = call(
        conn, "PUT", with_query(location, f"digest={digest_of(data)}"), data, OCTET
    )
    assert status == 201
    status, headers, body = call(conn, "GET", f"/v2/{repo_name}/blobs/{digest_of(data)}")
    assert status == 200
    assert body == data
    status, headers, body = call(conn, "HEAD", f"/v2/{repo_name}/blobs/{digest_of(data)}")
    assert (status, headers["content-length"], body) == (200, str(len(data)), b"")
    conn.close()
    assert proxy.connections_accepted == 1
    put = proxy.requests_matching("PUT")[0]
    assert (put.body_received, put.body_forwarded, put.status) == (len(data), len(data), 201)
    get = proxy.requests_matching("GET")[0]
    assert get.response_bytes == len(data)


def test_chunked_request_body_is_forwarded_whole(proxy: FaultProxy, repo_name: str) -> None:
    conn = connect(proxy)
    pieces = [os.urandom(70_000) for _ in range(5)]
    location = start_upload(conn, repo_name)
    status, headers, _ = call(conn, "PATCH", location, iter(pieces), OCTET, chunked=True)
    assert status == 202
    assert headers["range"] == f"0-{sum(map(len, pieces)) - 1}"
    patch = proxy.requests_matching("PATCH")[0]
    assert patch.body_forwarded == sum(map(len, pieces))


def test_cut_mid_body_forwards_exactly_n_bytes_and_closes(
    proxy: FaultProxy, registry_plain: RunningRegistry, repo_name: str
) -> None:
    proxy.add(cut(100_000, method="PATCH"))
    conn = connect(proxy)
    location = start_upload(conn, repo_name)
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        call(conn, "PATCH", location, os.urandom(2_000_000), OCTET)
    conn.close()
    patch = proxy.requests_matching("PATCH")[0]
    assert patch.action == "cut"
    assert patch.body_forwarded == 100_000
    assert patch.status is None
    # The registry saw a PATCH cut mid-body: on 2.8 the session is dead (REGISTRY-FACTS.md).
    # The registry may still be writing the partial bytes when the client sees the cut.
    deadline = time.monotonic() + 5
    while True:
        status, _, body = call(connect(proxy), "GET", location)
        if status == 404 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert status == 404
    assert b"BLOB_UPLOAD_INVALID" in body


def test_cut_before_body_sends_no_body_byte_and_rule_is_used_once(
    proxy: FaultProxy, repo_name: str
) -> None:
    proxy.add(cut(0, method="PATCH", times=1))
    conn = connect(proxy)
    location = start_upload(conn, repo_name)
    data = os.urandom(50_000)
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        call(conn, "PATCH", location, data, OCTET)
    conn = connect(proxy)
    status, _, _ = call(conn, "PATCH", location, data, OCTET)
    assert status == 202, "the second PATCH must pass: the rule applied once"
    first, second = proxy.requests_matching("PATCH")
    assert (first.body_forwarded, second.body_forwarded) == (0, len(data))
    assert proxy.body_bytes_forwarded("PATCH") == len(data)


@pytest.mark.parametrize(
    ("status", "retry_after"), [(429, "2"), (429, None), (500, None), (502, None), (503, "1")]
)
def test_respond_answers_without_reaching_the_registry(
    proxy: FaultProxy, repo_name: str, status: int, retry_after: str | None
) -> None:
    proxy.add(respond(status, retry_after=retry_after, method="POST", path="/blobs/uploads/"))
    conn = connect(proxy)
    got, headers, body = call(conn, "POST", f"/v2/{repo_name}/blobs/uploads/")
    assert got == status
    assert headers.get("retry-after") == retry_after
    assert json.loads(body)["errors"][0]["code"]
    # Same connection, next request: the rule is used up, the registry answers.
    got, headers, _ = call(conn, "POST", f"/v2/{repo_name}/blobs/uploads/")
    assert got == 202
    first, second = proxy.requests_matching("POST")
    assert (first.upstream_status, first.status) == (None, status)
    assert (second.upstream_status, second.status) == (202, 202)


def test_respond_drains_a_streamed_body_and_keeps_the_connection(
    proxy: FaultProxy, repo_name: str
) -> None:
    proxy.add(respond(503, method="PATCH"))
    conn = connect(proxy)
    location = start_upload(conn, repo_name)
    got, _, _ = call(conn, "PATCH", location, iter([b"a" * 1000, b"b" * 1000]), OCTET, chunked=True)
    assert got == 503
    got, _, _ = call(conn, "GET", "/v2/")
    assert got == 200
    assert proxy.connections_accepted == 1
    patch = proxy.requests_matching("PATCH")[0]
    assert (patch.body_received, patch.body_forwarded) == (2000, 0)


def test_drop_response_after_the_registry_committed_the_blob(
    proxy: FaultProxy, repo_name: str
) -> None:
    proxy.add(drop_response(method="PUT"))
    conn = connect(proxy)
    data = os.urandom(10_000)
    location = start_upload(conn, repo_name)
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        call(conn, "PUT", with_query(location, f"digest={digest_of(data)}"), data, OCTET)
    put = proxy.requests_matching("PUT")[0]
    assert (put.upstream_status, put.status, put.body_forwarded) == (201, None, len(data))
    conn = connect(proxy)
    status, _, _ = call(conn, "HEAD", f"/v2/{repo_name}/blobs/{digest_of(data)}")
    assert status == 200, "the registry acted on the request whose answer was lost"


def test_stall_delays_and_a_client_timeout_fires(proxy: FaultProxy) -> None:
    proxy.add(stall(0.4, method="GET", path="^/v2/$"))
    conn = connect(proxy)
    started = time.monotonic()
    status, _, _ = call(conn, "GET", "/v2/")
    assert status == 200
    assert time.monotonic() - started >= 0.4
    proxy.add(stall(30, method="GET", path="^/v2/$"))
    conn = connect(proxy, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        call(conn, "GET", "/v2/")
    assert time.monotonic() - started < 5


def test_stall_mid_body_then_carries_on(proxy: FaultProxy, repo_name: str) -> None:
    proxy.add(stall(0.3, after_bytes=1000, method="PATCH"))
    conn = connect(proxy)
    location = start_upload(conn, repo_name)
    started = time.monotonic()
    status, headers, _ = call(conn, "PATCH", location, os.urandom(5000), OCTET)
    assert (status, headers["range"]) == (202, "0-4999")
    assert time.monotonic() - started >= 0.3


def test_latency_applies_to_every_matching_request(proxy: FaultProxy) -> None:
    proxy.add(latency(0.1, method="GET"))
    conn = connect(proxy)
    started = time.monotonic()
    for _ in range(3):
        assert call(conn, "GET", "/v2/")[0] == 200
    assert time.monotonic() - started >= 0.3
    assert [r.action for r in proxy.requests_matching("GET")] == ["stall"] * 3


def test_proxy_stops_itself_after_its_lifetime(registry_plain: RunningRegistry) -> None:
    proxy = FaultProxy(registry_plain.host, lifetime=0.3).start()
    try:
        assert call(connect(proxy), "GET", "/v2/")[0] == 200
        deadline = time.monotonic() + 5
        while not proxy.stopped and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proxy.stopped
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", proxy.port), 1):
            pass
    finally:
        proxy.stop()


def test_stop_interrupts_a_long_stall(registry_plain: RunningRegistry) -> None:
    proxy = FaultProxy(registry_plain.host).start()
    proxy.add(stall(60, method="GET"))
    conn = connect(proxy, timeout=10)
    conn.request("GET", "/v2/")
    time.sleep(0.1)
    started = time.monotonic()
    proxy.stop()
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        conn.getresponse()
    assert time.monotonic() - started < 3


def test_proxy_speaks_tls_to_a_tls_registry(registry_tls: RunningRegistry, repo_name: str) -> None:
    assert registry_tls.ca_path is not None
    context = ssl.create_default_context(cafile=str(registry_tls.ca_path))
    with FaultProxy(registry_tls.host, upstream_ssl=context, lifetime=60) as p:
        p.add(respond(503, method="POST"))
        conn = connect(p)
        assert call(conn, "GET", "/v2/")[0] == 200
        assert call(conn, "POST", f"/v2/{repo_name}/blobs/uploads/")[0] == 503
        assert call(conn, "POST", f"/v2/{repo_name}/blobs/uploads/")[0] == 202
        assert p.requests_matching("POST")[1].upstream_status == 202


def test_upstream_closing_an_idle_connection_is_not_a_fault() -> None:
    """A registry may drop idle keep-alive connections; the proxy must reconnect, not fail."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        for _ in range(2):
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            # closed right after answering, without saying "Connection: close"

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with FaultProxy(f"127.0.0.1:{port}", lifetime=30) as p:
            conn = connect(p)
            assert call(conn, "GET", "/v2/")[::2] == (200, b"ok")
            time.sleep(0.2)  # let the upstream close arrive
            assert call(conn, "GET", "/v2/")[::2] == (200, b"ok")
            assert p.connections_accepted == 1
    finally:
        server.close()
        thread.join(timeout=5)


def test_cut_response_delivers_exactly_n_body_bytes(proxy: FaultProxy, repo_name: str) -> None:
    data = os.urandom(200_000)
    conn = connect(proxy)
    location = start_upload(conn, repo_name)
    status, _, _ = call(conn, "PUT", with_query(location, f"digest={digest_of(data)}"), data, OCTET)
    assert status == 201
    proxy.add(cut_response(50_000, method="GET", path="/blobs/sha256"))
    conn.request("GET", f"/v2/{repo_name}/blobs/{digest_of(data)}")
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("Content-Length") == str(len(data))
    with pytest.raises(http.client.IncompleteRead) as info:
        resp.read()
    assert info.value.partial == data[:50_000]
    assert proxy.requests_matching("GET", "/blobs/")[0].response_bytes == 50_000
