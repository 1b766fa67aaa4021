"""The fake registry keeps its promises: spec-style resume, and each hostile answer on demand.

Raw http.client/sockets prove the fake itself; a few checks drive yardarm's client against it
to show the two fit together (the reliability suite builds on both).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import time
from collections.abc import Iterator

import pytest

from fakes.fakeregistry import FakeRegistry, FakeRequest, FakeResponse
from fakes.faultproxy import FaultProxy, cut
from yardarm.digest import Digest
from yardarm.errors import ProtocolError, RedirectError, TransportError, YardarmError
from yardarm.registry import Registry, RegistryOptions
from yardarm.registry.credentials import Credentials

OCTET = {"Content-Type": "application/octet-stream"}


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    with FakeRegistry(lifetime=60) as f:
        yield f


def call(
    fake: FakeRegistry,
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    conn: http.client.HTTPConnection | None = None,
) -> tuple[int, dict[str, str], bytes]:
    c = conn or http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)
    c.request(method, url, body=body, headers=headers or {})
    resp = c.getresponse()
    data = resp.read()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def path_of(location: str) -> str:
    return location.split("://", 1)[-1].split("/", 1)[-1].join(["/", ""])


def start(fake: FakeRegistry, repo: str = "r/x") -> str:
    status, headers, _ = call(fake, "POST", f"/v2/{repo}/blobs/uploads/")
    assert status == 202
    return path_of(headers["location"])


def send_cut_patch(fake: FakeRegistry, location: str, declared: int, sent: bytes) -> None:
    """A PATCH that announces ``declared`` bytes and dies after ``sent``."""
    with socket.create_connection(("127.0.0.1", fake.port), timeout=5) as s:
        head = (
            f"PATCH {location} HTTP/1.1\r\nHost: {fake.host}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {declared}\r\n\r\n"
        )
        s.sendall(head.encode() + sent)
        s.shutdown(socket.SHUT_WR)
        s.recv(1)  # the fake closes without answering


# -- an honest registry -------------------------------------------------------------------------


def test_monolithic_and_chunked_uploads_then_reads(fake: FakeRegistry) -> None:
    data = os.urandom(100_000)
    loc = start(fake)
    status, headers, _ = call(fake, "PUT", f"{loc}?digest={sha(data)}", data, OCTET)
    assert (status, headers["docker-content-digest"]) == (201, sha(data))
    loc = start(fake)
    assert call(fake, "PATCH", loc, data[:60_000], OCTET)[1]["range"] == "0-59999"
    status, headers, _ = call(fake, "PATCH", loc, data[60_000:], OCTET)
    assert (status, headers["range"]) == (202, "0-99999")
    assert call(fake, "PUT", f"{loc}?digest={sha(data)}", None, OCTET)[0] == 201
    status, headers, body = call(fake, "GET", f"/v2/r/x/blobs/{sha(data)}")
    assert (status, body) == (200, data)
    status, headers, body = call(fake, "HEAD", f"/v2/r/x/blobs/{sha(data)}")
    assert (status, headers["content-length"], body) == (200, str(len(data)), b"")
    assert call(fake, "PUT", f"{start(fake)}?digest={sha(b'other')}", data, OCTET)[0] == 400


def test_manifests_tags_and_mounts(fake: FakeRegistry) -> None:
    blob = fake.add_blob("src/repo", b"layer")
    raw = json.dumps({"schemaVersion": 2}).encode()
    mt = "application/vnd.oci.image.manifest.v1+json"
    status, headers, _ = call(fake, "PUT", "/v2/r/x/manifests/v1", raw, {"Content-Type": mt})
    assert (status, headers["docker-content-digest"]) == (201, sha(raw))
    status, headers, body = call(fake, "GET", "/v2/r/x/manifests/v1")
    assert (status, headers["content-type"], body) == (200, mt, raw)
    assert json.loads(call(fake, "GET", "/v2/r/x/tags/list")[2])["tags"] == ["v1"]
    status, headers, _ = call(fake, "POST", f"/v2/r/x/blobs/uploads/?mount={blob}&from=src/repo")
    assert (status, headers["docker-content-digest"]) == (201, blob)
    assert fake.has_blob("r/x", blob)
    status, _, _ = call(fake, "POST", f"/v2/r/y/blobs/uploads/?mount={blob}&from=nowhere")
    assert status == 202


# -- spec-style resume --------------------------------------------------------------------------


def test_cut_patch_keeps_received_bytes_and_accepts_continuation(fake: FakeRegistry) -> None:
    data = os.urandom(10_000)
    loc = start(fake)
    send_cut_patch(fake, loc, len(data), data[:4000])
    deadline = time.monotonic() + 5
    while not any(r.cut for r in fake.requests) and time.monotonic() < deadline:
        time.sleep(0.01)
    status, headers, _ = call(fake, "GET", loc)
    assert (status, headers["range"]) == (204, "0-3999")
    wrong = {**OCTET, "Content-Range": "0-5999"}
    assert call(fake, "PATCH", loc, data[4000:], wrong)[0] == 416
    right = {**OCTET, "Content-Range": "4000-9999"}
    status, headers, _ = call(fake, "PATCH", loc, data[4000:], right)
    assert (status, headers["range"]) == (202, "0-9999")
    assert call(fake, "PUT", f"{loc}?digest={sha(data)}", None, OCTET)[0] == 201


def test_yardarm_resumes_from_range_after_a_cut_through_the_fault_proxy(
    fake: FakeRegistry,
) -> None:
    data = os.urandom(3 << 20)
    with FaultProxy(fake.host, lifetime=60) as proxy:
        proxy.add(cut(1 << 20, method="PATCH"))
        registry = Registry(proxy.host, RegistryOptions(), Credentials())
        try:
            repo = registry.repository("r/resume")
            upload = repo.start_upload()
            with pytest.raises(TransportError):
                upload.write(data)
            # The fake may still be reading the last forwarded bytes when the client sees the cut.
            deadline = time.monotonic() + 5
            while not any(r.cut for r in fake.requests_to("PATCH")):
                assert time.monotonic() < deadline, "the fake never saw the cut"
                time.sleep(0.01)
            resumed = repo.resume_upload(upload.location)
            assert resumed.offset == 1 << 20
            resumed.write(data[resumed.offset :])
            desc = resumed.commit(Digest.from_bytes(data))
        finally:
            registry.close()
        assert desc.digest == Digest.from_bytes(data)
        assert fake.blobs[sha(data)] == data
        # Nothing before the cut point went over the wire twice.
        assert proxy.body_bytes_forwarded("PATCH") == len(data)


# -- hostile answers ----------------------------------------------------------------------------


def test_garbage_json_on_errors_and_lists(fake: FakeRegistry) -> None:
    fake.hostility.garbage_json = True
    status, _, body = call(fake, "GET", "/v2/r/x/manifests/nope")
    assert status == 404
    with pytest.raises(ValueError):
        json.loads(body)
    with pytest.raises(ValueError):
        json.loads(call(fake, "GET", "/v2/_catalog")[2])


def test_wrong_content_digest_on_commit_and_head(fake: FakeRegistry) -> None:
    fake.hostility.wrong_content_digest = True
    data = b"hello"
    status, headers, _ = call(fake, "PUT", f"{start(fake)}?digest={sha(data)}", data, OCTET)
    assert status == 201
    assert headers["docker-content-digest"] != sha(data)
    assert call(fake, "HEAD", f"/v2/r/x/blobs/{sha(data)}")[1]["docker-content-digest"] != sha(data)


@pytest.mark.parametrize("base", ["http://127.0.0.2:9", "ftp://evil.example", "file://"])
def test_upload_location_on_another_host_or_scheme(fake: FakeRegistry, base: str) -> None:
    fake.hostility.upload_location_base = base
    _, headers, _ = call(fake, "POST", "/v2/r/x/blobs/uploads/")
    assert headers["location"].startswith(base + "/v2/r/x/blobs/uploads/")


def test_redirect_loop_and_cross_host_redirect(fake: FakeRegistry) -> None:
    blob = fake.add_blob("r/x", b"abc")
    fake.hostility.redirect_loop = True
    status, headers, _ = call(fake, "GET", f"/v2/r/x/blobs/{blob}")
    assert (status, headers["location"]) == (307, f"{fake.url}/v2/r/x/blobs/{blob}")
    fake.hostility.redirect_loop = False
    fake.hostility.blob_redirect_base = "http://127.0.0.1:1"
    status, headers, _ = call(fake, "GET", f"/v2/r/x/blobs/{blob}")
    assert status == 307
    assert headers["location"].startswith("http://127.0.0.1:1/v2/r/x/blobs/")


def test_ten_megabyte_error_body(fake: FakeRegistry) -> None:
    fake.hostility.error_body_size = 10 << 20
    status, _, body = call(fake, "GET", "/v2/r/x/manifests/nope")
    assert status == 404
    assert len(body) >= 10 << 20
    assert json.loads(body)["errors"][0]["code"] == "MANIFEST_UNKNOWN"


def test_oversized_and_too_many_headers_break_a_strict_client(fake: FakeRegistry) -> None:
    fake.hostility.huge_header = 100_000
    with pytest.raises(http.client.HTTPException):
        call(fake, "GET", "/v2/")
    fake.hostility.huge_header = 0
    fake.hostility.many_headers = 500
    with pytest.raises(http.client.HTTPException):
        call(fake, "GET", "/v2/")


def test_mount_201_with_another_digest_and_head_with_wrong_size(fake: FakeRegistry) -> None:
    blob = fake.add_blob("src/a", b"12345")
    fake.hostility.mount_digest = sha(b"something else")
    _, headers, _ = call(fake, "POST", f"/v2/r/x/blobs/uploads/?mount={blob}&from=src/a")
    assert headers["docker-content-digest"] == sha(b"something else")
    fake.hostility.head_size_delta = 1000
    assert call(fake, "HEAD", f"/v2/src/a/blobs/{blob}")[1]["content-length"] == "1005"


def test_basic_auth_and_intercept() -> None:
    seen: list[FakeRequest] = []

    def teapot(req: FakeRequest) -> FakeResponse | None:
        seen.append(req)
        return FakeResponse(418, body=b"tea") if req.path.endswith("/tea") else None

    with FakeRegistry(basic_auth=("u", "p"), intercept=teapot, lifetime=30) as fake:
        status, headers, _ = call(fake, "GET", "/v2/")
        assert (status, headers["www-authenticate"]) == (401, 'Basic realm="fake"')
        auth = {"Authorization": "Basic dTpw"}
        assert call(fake, "GET", "/v2/", headers=auth)[0] == 200
        assert call(fake, "GET", "/v2/tea", headers=auth)[:3:2] == (418, b"tea")
        assert [r.path for r in seen] == ["/v2/", "/v2/tea"]


def test_fake_stops_itself_after_its_lifetime() -> None:
    fake = FakeRegistry(lifetime=0.2).start()
    port = fake.port
    deadline = time.monotonic() + 5
    while not fake.stopped and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake.stopped
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), 1):
        pass


# -- yardarm's client against hostile answers ---------------------------------------------------


def test_yardarm_refuses_a_commit_acknowledged_with_another_digest(fake: FakeRegistry) -> None:
    fake.hostility.wrong_content_digest = True
    registry = Registry(fake.host, RegistryOptions(), Credentials())
    try:
        with pytest.raises(ProtocolError, match=r"digest|stored"):
            registry.repository("r/x").upload_blob(b"payload")
    finally:
        registry.close()


def test_yardarm_never_sends_credentials_to_another_host_on_redirect() -> None:
    secret = "fake-secret-pw"
    with FakeRegistry(lifetime=30) as cdn, FakeRegistry(basic_auth=("u", secret)) as origin:
        data = b"layer bytes"
        digest = origin.add_blob("r/x", data)
        cdn.add_blob("r/x", data)
        origin.hostility.blob_redirect_base = cdn.url
        registry = Registry(origin.host, RegistryOptions(), Credentials("u", secret))
        try:
            with registry.repository("r/x").open_blob(Digest.parse(digest)) as f:
                assert f.read() == data
        finally:
            registry.close()
        assert cdn.requests_to("GET", "/blobs/"), "the redirect was followed"
        assert all(r.authorization is None for r in cdn.requests)
        assert any(r.authorization for r in origin.requests)


@pytest.mark.parametrize("base", ["ftp://evil.example", "file://"])
def test_yardarm_refuses_an_upload_location_with_another_scheme(
    fake: FakeRegistry, base: str
) -> None:
    fake.hostility.upload_location_base = base
    registry = Registry(fake.host, RegistryOptions(), Credentials())
    try:
        with pytest.raises(YardarmError):
            registry.repository("r/x").upload_blob(b"payload")
    finally:
        registry.close()
    assert not fake.has_blob("r/x", sha(b"payload"))


def test_yardarm_stops_a_redirect_loop(fake: FakeRegistry) -> None:
    blob = fake.add_blob("r/x", b"abc")
    fake.hostility.redirect_loop = True
    registry = Registry(fake.host, RegistryOptions(), Credentials())
    started = time.monotonic()
    try:
        with pytest.raises(RedirectError):
            registry.repository("r/x").open_blob(Digest.parse(blob)).read()
    finally:
        registry.close()
    assert time.monotonic() - started < 10
