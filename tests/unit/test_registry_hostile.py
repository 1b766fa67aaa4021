"""The client against the in-process fake registry: spec-style resume and hostile answers.

The real registry (tests/integration) cannot keep the bytes of a cut PATCH, lie about digests or
send upload sessions to other hosts; the fake can, and the client must stay correct and safe.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from typing import Any

import pytest

from fakes.fakeregistry import FakeRegistry
from fakes.faultproxy import FaultProxy, cut
from yardarm import mediatypes as mt
from yardarm.digest import Digest
from yardarm.errors import (
    ProtocolError,
    RedirectError,
    RegistryError,
    TransportError,
)
from yardarm.registry import Credentials, HttpTransport, Registry, RegistryOptions, Response

KiB = 1024


class PlainOnly(HttpTransport):
    """The fake speaks plain HTTP only: skip the HTTPS probe."""

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if url.startswith("https://"):
            raise TransportError("no TLS here", method=method, url=url)
        return super().request(method, url, *args, **kwargs)


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    with FakeRegistry(lifetime=60) as f:
        yield f


def client(host: str, creds: Credentials | None = None, **options: Any) -> Registry:
    opts = RegistryOptions(transport=PlainOnly(), sleep=lambda _s: None, **options)
    return Registry(host, opts, creds or Credentials())


def test_spec_style_registry_continues_a_cut_patch_from_its_range(fake: FakeRegistry) -> None:
    data = os.urandom(900 * KiB)
    digest = Digest.from_bytes(data)
    with FaultProxy(fake.host, lifetime=60) as proxy:
        upload = client(proxy.host).repository("r").start_upload()
        proxy.add(cut(300 * KiB, method="PATCH"))
        src = io.BytesIO(data)
        with pytest.raises(TransportError):
            upload.write(src, length=len(data))
        offset = upload.status()
        assert offset == 300 * KiB  # the fake kept what arrived
        src.seek(offset)
        upload.write(src, length=len(data) - offset)
        desc = upload.commit(digest)
        assert proxy.body_bytes_forwarded("PATCH") == len(data)  # nothing sent twice
    assert desc.digest == digest
    assert fake.has_blob("r", str(digest))


def test_wrong_digest_on_commit_and_manifest_put_is_a_protocol_error(fake: FakeRegistry) -> None:
    fake.hostility.wrong_content_digest = True
    repo = client(fake.host).repository("r")
    with pytest.raises(ProtocolError):
        repo.upload_blob(b"content")
    raw = b'{"schemaVersion":2}'
    with pytest.raises(ProtocolError):
        repo.put_manifest("v1", raw, mt.OCI_MANIFEST)


def test_garbage_json_in_listings_is_a_protocol_error(fake: FakeRegistry) -> None:
    repo = client(fake.host).repository("r")
    repo.put_manifest("v1", b'{"schemaVersion":2}', mt.OCI_MANIFEST)
    fake.hostility.garbage_json = True
    with pytest.raises(ProtocolError):
        repo.tags()
    with pytest.raises(ProtocolError):
        client(fake.host).catalog()


def test_upload_location_with_a_non_http_scheme_is_refused(fake: FakeRegistry) -> None:
    fake.hostility.upload_location_base = "ftp://evil.example"
    with pytest.raises(ProtocolError):
        client(fake.host).repository("r").start_upload()


def test_upload_session_on_another_host_gets_no_credentials() -> None:
    with (
        FakeRegistry(basic_auth=("u", "pw-secret"), lifetime=60) as home,
        FakeRegistry(lifetime=60) as elsewhere,
    ):
        home.hostility.upload_location_base = elsewhere.url
        creds = Credentials(username="u", password="pw-secret")
        repo = client(home.host, creds).repository("r")
        upload = repo.start_upload()
        assert upload.location.startswith(elsewhere.url)
        with pytest.raises(RegistryError):  # the other host knows no such session
            upload.write(b"data")
        assert elsewhere.requests and all(r.authorization is None for r in elsewhere.requests)
        assert home.requests[-1].authorization is not None


def test_blob_redirect_loop_is_refused(fake: FakeRegistry) -> None:
    digest = fake.add_blob("r", b"looping")
    fake.hostility.redirect_loop = True
    with pytest.raises(RedirectError):
        client(fake.host).repository("r").open_blob(Digest.parse(digest))


def test_huge_error_body_is_read_through_the_cap(fake: FakeRegistry) -> None:
    fake.hostility.error_body_size = 10 << 20
    with pytest.raises(RegistryError) as info:
        client(fake.host).repository("r").get_manifest("missing")
    assert info.value.status == 404
    assert len(str(info.value)) < 2000


def test_mount_answering_another_digest_is_a_protocol_error(fake: FakeRegistry) -> None:
    digest = fake.add_blob("src", b"mounted")
    fake.hostility.mount_digest = str(Digest.from_bytes(b"something else"))
    with pytest.raises(ProtocolError):
        client(fake.host).repository("dst").mount_blob(Digest.parse(digest), "src")


def test_too_many_response_headers_is_a_transport_error_not_a_crash(fake: FakeRegistry) -> None:
    fake.hostility.many_headers = 500
    with pytest.raises(TransportError):
        client(fake.host, read_timeout=5).ping()
