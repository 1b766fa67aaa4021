"""API edge cases a healthy registry 2.8 never shows, with a scripted transport.

Everything here is also exercised against the real registry in tests/integration; these cover
answers only other registries (or broken ones) give: spec-style partial Range, wrong digest
headers, chunk minimums, paginated tags, HTTP-date Retry-After.
"""

from __future__ import annotations

import email.utils
import io
import json
import time
import urllib.parse

import pytest

from fakes.scripted_transport import Answer, ScriptedTransport, Sent
from yardarm import mediatypes as mt
from yardarm.digest import Digest
from yardarm.errors import (
    DeniedError,
    NotFoundError,
    ProtocolError,
    RegistryError,
    TooManyRequests,
    TransportError,
    UploadInvalid,
)
from yardarm.manifest import Descriptor
from yardarm.registry import Credentials, Registry, RegistryOptions
from yardarm.registry._errors import error_from_response, parse_retry_after
from yardarm.registry._upload import range_end
from yardarm.registry.transport import ERROR_BODY_LIMIT, Headers, Response

HOST = "reg.example"
BASE = f"https://{HOST}"


def registry(handler, **options: object) -> tuple[Registry, ScriptedTransport, list[float]]:  # type: ignore[no-untyped-def]
    def routed(req: Sent) -> Answer:
        if req.url == f"{BASE}/v2/":
            return Answer(200)
        return handler(req)  # type: ignore[no-any-return]

    t = ScriptedTransport(routed)
    sleeps: list[float] = []
    opts = RegistryOptions(transport=t, sleep=sleeps.append, **options)  # type: ignore[arg-type]
    return Registry(HOST, opts, Credentials()), t, sleeps


class SessionRegistry:
    """Upload sessions the way the OCI spec describes them, with a new Location every time."""

    def __init__(self, chunk_min: int | None = None, keep_partial: bool = True) -> None:
        self.data = bytearray()
        self.state = 0
        self.chunk_min = chunk_min
        self.keep_partial = keep_partial
        self.cut_next: int | None = None
        self.committed: tuple[str, bytes] | None = None

    def location(self) -> str:
        self.state += 1
        return f"/v2/r/blobs/uploads/u1?state={self.state}"

    def __call__(self, req: Sent) -> Answer:
        url = urllib.parse.urlsplit(req.url)
        query = urllib.parse.parse_qs(url.query)
        if req.method == "POST":
            headers = {"Location": self.location(), "Range": "0-0"}
            if self.chunk_min:
                headers["OCI-Chunk-Min-Length"] = str(self.chunk_min)
            return Answer(202, headers)
        if query.get("state") != [str(self.state)]:
            return Answer(404, body=b'{"errors":[{"code":"BLOB_UPLOAD_INVALID"}]}')
        rng = f"0-{max(len(self.data) - 1, 0)}"
        if req.method == "GET":
            return Answer(204, {"Location": self.location(), "Range": rng})
        if req.method == "PATCH":
            if self.cut_next is not None:
                cut, self.cut_next = self.cut_next, None
                if self.keep_partial:
                    self.data += req.body[:cut]
                return Answer(0, cut_after=cut)
            self.data += req.body
            return Answer(202, {"Location": self.location(), "Range": f"0-{len(self.data) - 1}"})
        if req.method == "PUT":
            self.data += req.body
            digest = query["digest"][0]
            self.committed = (digest, bytes(self.data))
            return Answer(201, {"Docker-Content-Digest": digest, "Location": "/v2/r/blobs/x"})
        return Answer(405)


def test_every_patch_uses_the_newest_location_and_commit_adds_the_digest() -> None:
    fake = SessionRegistry()
    reg, t, _ = registry(fake, max_chunk_size=4)
    data = b"0123456789"
    desc = reg.repository("r").upload_blob(io.BytesIO(data), Digest.from_bytes(data))
    states = [urllib.parse.parse_qs(urllib.parse.urlsplit(s.url).query)["state"] for s in t.sent
              if s.method in ("PATCH", "PUT")]  # fmt: skip
    assert states == [["1"], ["2"], ["3"], ["4"]]
    patches = t.of("PATCH")
    assert [p.body for p in patches] == [b"0123", b"4567", b"89"]
    assert [p.header("Content-Range") for p in patches] == ["0-3", "4-7", "8-9"]
    assert {p.header("Content-Type") for p in patches} == {"application/octet-stream"}
    assert desc == Descriptor("application/octet-stream", Digest.from_bytes(data), 10)
    assert fake.committed == (str(Digest.from_bytes(data)), data)


def test_chunks_are_at_least_oci_chunk_min_length() -> None:
    fake = SessionRegistry(chunk_min=6)
    reg, t, _ = registry(fake, max_chunk_size=4)
    data = b"0123456789abc"
    reg.repository("r").upload_blob(io.BytesIO(data), Digest.from_bytes(data))
    assert [len(p.body) for p in t.of("PATCH")] == [6, 6, 1]


def test_monolithic_when_size_and_digest_known_and_no_cap() -> None:
    fake = SessionRegistry()
    reg, t, _ = registry(fake)
    seen: list[int] = []
    data = b"x" * 5000
    reg.repository("r").upload_blob(data, progress=seen.append)
    assert [s.method for s in t.sent[1:]] == ["POST", "PUT"]
    assert t.of("PUT")[0].body == data and sum(seen) == 5000


def test_unknown_digest_is_computed_while_streaming() -> None:
    fake = SessionRegistry()
    reg, _t, _ = registry(fake)
    data = b"streamed " * 1000

    class Pipe(io.RawIOBase):  # not seekable: size and digest unknown up front
        def __init__(self) -> None:
            self.src = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:  # type: ignore[no-untyped-def, override]
            chunk = self.src.read(len(b))
            b[: len(chunk)] = chunk
            return len(chunk)

    desc = reg.repository("r").upload_blob(io.BufferedReader(Pipe()))
    assert desc.digest == Digest.from_bytes(data) and desc.size == len(data)


def test_spec_style_registry_resumes_from_received_range_after_a_cut() -> None:
    """A registry that keeps partial bytes: continue from its Range, nothing sent twice."""
    fake = SessionRegistry(keep_partial=True)
    reg, t, sleeps = registry(fake)
    data = bytes(range(256)) * 40
    upload = reg.repository("r").start_upload()
    fake.cut_next = 3000
    src = io.BytesIO(data)
    with pytest.raises(TransportError) as info:
        upload.write(src, length=len(data))
    assert info.value.bytes_sent == 3000
    offset = upload.status()
    assert offset == 3000
    # The status read waited for a registry still finishing the cut request (registry 2.8).
    assert len(sleeps) == 1 and 0.5 < sleeps[0] <= 1.0
    src.seek(offset)
    upload.write(src, length=len(data) - offset)
    upload.commit(Digest.from_bytes(data))
    assert fake.committed == (str(Digest.from_bytes(data)), data)
    assert sum(len(p.body) for p in t.of("PATCH")) == len(data)


def test_old_location_is_rejected_as_upload_invalid() -> None:
    fake = SessionRegistry()
    reg, _t, _ = registry(fake)
    upload = reg.repository("r").start_upload()
    stale = upload.location
    upload.write(b"abc")
    upload.location = stale
    with pytest.raises(UploadInvalid):
        upload.write(b"def")


def test_range_zero_zero_means_empty_unless_a_byte_was_sent() -> None:
    assert range_end("0-0") == 0
    assert range_end("0-0", expected=1) == 1
    assert range_end("0-99") == 100
    assert range_end("bytes=0-9") == 10
    with pytest.raises(ProtocolError):
        range_end("garbage")


def test_registry_acknowledging_less_than_sent_is_a_protocol_error() -> None:
    def handler(req: Sent) -> Answer:
        if req.method == "POST":
            return Answer(202, {"Location": "/v2/r/blobs/uploads/u"})
        return Answer(202, {"Location": "/v2/r/blobs/uploads/u?2", "Range": "0-4"})

    reg, _t, _ = registry(handler)
    with pytest.raises(ProtocolError):
        reg.repository("r").start_upload().write(b"0123456789")


# -- manifests ---------------------------------------------------------------------------


RAW = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}'
GOOD = Digest.from_bytes(RAW)
BAD = Digest.from_bytes(b"something else")


def test_put_manifest_with_a_wrong_digest_header_is_a_protocol_error() -> None:
    reg, t, _ = registry(lambda r: Answer(201, {"Docker-Content-Digest": str(BAD)}))
    with pytest.raises(ProtocolError):
        reg.repository("r").put_manifest("v1", RAW, mt.OCI_MANIFEST)
    assert t.of("PUT")[0].header("Content-Type") == mt.OCI_MANIFEST


def test_get_manifest_checks_content_against_the_requested_digest() -> None:
    reg, _t, _ = registry(lambda r: Answer(200, {"Content-Type": mt.OCI_MANIFEST}, RAW))
    with pytest.raises(ProtocolError):
        reg.repository("r").get_manifest(str(BAD))
    assert reg.repository("r").get_manifest(str(GOOD)) == (RAW, mt.OCI_MANIFEST, GOOD)


def test_get_manifest_checks_the_digest_header_for_tags() -> None:
    headers = {"Content-Type": mt.OCI_MANIFEST, "Docker-Content-Digest": str(BAD)}
    reg, t, _ = registry(lambda r: Answer(200, headers, RAW))
    with pytest.raises(ProtocolError):
        reg.repository("r").get_manifest("latest")
    accept = t.sent[-1].header("Accept") or ""
    assert all(m in accept for m in (mt.OCI_INDEX, mt.OCI_MANIFEST, mt.DOCKER_MANIFEST_LIST,
                                     mt.DOCKER_MANIFEST, mt.DOCKER_SCHEMA1_SIGNED))  # fmt: skip


def test_signed_schema1_without_a_readable_signature_falls_back_to_the_bytes_digest() -> None:
    headers = {"Content-Type": mt.DOCKER_SCHEMA1_SIGNED, "Docker-Content-Digest": str(GOOD)}
    reg, _t, _ = registry(lambda r: Answer(200, headers, RAW))
    raw, media_type, digest = reg.repository("r").get_manifest("latest")
    assert (raw, media_type, digest) == (RAW, mt.DOCKER_SCHEMA1_SIGNED, GOOD)


def test_head_manifest_descriptor_and_missing() -> None:
    def handler(req: Sent) -> Answer:
        if req.url.endswith("/v1"):
            h = {"Content-Type": mt.OCI_MANIFEST, "Docker-Content-Digest": str(GOOD),
                 "Content-Length": str(len(RAW))}  # fmt: skip
            return Answer(200, h)
        return Answer(404)

    reg, _t, _ = registry(handler)
    repo = reg.repository("r")
    assert repo.head_manifest("v1") == Descriptor(mt.OCI_MANIFEST, GOOD, len(RAW))
    assert repo.head_manifest("v2") is None


def test_oversized_manifest_is_refused() -> None:
    reg, _t, _ = registry(
        lambda r: Answer(200, {"Content-Type": mt.OCI_MANIFEST}, b" " * (5 << 20))
    )
    with pytest.raises(ProtocolError):
        reg.repository("r").get_manifest("big")


# -- listing -------------------------------------------------------------------------------


def test_tags_follow_link_pagination_relative_and_absolute() -> None:
    pages = {
        "/v2/r/tags/list": (["a", "b"], '</v2/r/tags/list?n=2&last=b>; rel="next"'),
        "/v2/r/tags/list?n=2&last=b": (["c"], f'<{BASE}/v2/r/tags/list?last=c>; rel="next"'),
        "/v2/r/tags/list?last=c": (["d"], None),
    }

    def handler(req: Sent) -> Answer:
        target = req.url[len(BASE) :]
        tags, link = pages[target]
        headers = {"Link": link} if link else {}
        return Answer(200, headers, json.dumps({"name": "r", "tags": tags}).encode())

    reg, _t, _ = registry(handler)
    assert reg.repository("r").tags() == ["a", "b", "c", "d"]


def test_tags_pagination_loop_terminates() -> None:
    def handler(req: Sent) -> Answer:
        return Answer(200, {"Link": '</v2/r/tags/list>; rel="next"'}, b'{"tags":["a"]}')

    reg, _t, _ = registry(handler)
    assert reg.repository("r").tags() == ["a"]


def test_catalog_asks_for_the_catalog_scope_and_reads_pages() -> None:
    reg, _t, _ = registry(lambda r: Answer(200, {}, b'{"repositories":["x","y/z"]}'))
    assert reg.catalog() == ["x", "y/z"]


def test_referrers_api_and_tag_schema_fallback() -> None:
    index = json.dumps(
        {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
            {"mediaType": mt.OCI_MANIFEST, "digest": str(GOOD), "size": 10,
             "artifactType": "application/vnd.example.sbom"}]}
    ).encode()  # fmt: skip

    def api(req: Sent) -> Answer:
        return Answer(200, {"Content-Type": mt.OCI_INDEX}, index)

    reg, t, _ = registry(api)
    found = reg.repository("r").referrers(BAD, "application/vnd.example.sbom")
    assert [d.digest for d in found] == [GOOD]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(t.sent[-1].url).query)
    assert query == {"artifactType": ["application/vnd.example.sbom"]}
    assert reg.repository("r").referrers(BAD, "application/other") == []

    def fallback(req: Sent) -> Answer:
        if "/referrers/" in req.url:
            return Answer(404)
        if req.url.endswith(f"/manifests/sha256-{BAD.hex}"):
            return Answer(200, {"Content-Type": mt.OCI_INDEX}, index)
        return Answer(404)

    reg2, _t2, _ = registry(fallback)
    assert [d.digest for d in reg2.repository("r").referrers(BAD)] == [GOOD]
    reg3, _t3, _ = registry(lambda r: Answer(404))
    assert reg3.repository("r").referrers(BAD) == []


# -- errors and retries --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "cls", "temporary"),
    [
        (404, "BLOB_UNKNOWN", NotFoundError, False),
        (404, "BLOB_UPLOAD_INVALID", UploadInvalid, False),
        (404, "BLOB_UPLOAD_UNKNOWN", UploadInvalid, False),
        (400, "DIGEST_INVALID", RegistryError, False),
        (400, "MANIFEST_BLOB_UNKNOWN", RegistryError, False),
        (400, "MANIFEST_INVALID", RegistryError, False),
        (404, "MANIFEST_UNKNOWN", NotFoundError, False),
        (400, "NAME_INVALID", RegistryError, False),
        (404, "NAME_UNKNOWN", NotFoundError, False),
        (400, "SIZE_INVALID", RegistryError, False),
        (401, "UNAUTHORIZED", RegistryError, False),
        (403, "DENIED", DeniedError, False),
        (405, "UNSUPPORTED", RegistryError, False),
        (429, "TOOMANYREQUESTS", TooManyRequests, True),
        (408, "", RegistryError, True),
        (500, "UNKNOWN", RegistryError, True),
        (502, "", RegistryError, True),
        (503, "UNAVAILABLE", RegistryError, True),
        (504, "", RegistryError, True),
    ],
)
def test_error_envelope_becomes_a_typed_error(
    status: int, code: str, cls: type[RegistryError], temporary: bool
) -> None:
    body = json.dumps({"errors": [{"code": code, "message": "msg", "detail": {"k": 1}}]})
    resp = Response(status, {}, body.encode() if code else b"<html>oops</html>")
    err = error_from_response(resp, "PATCH", f"{BASE}/v2/r/x?_state=SECRET", repository="r")
    assert isinstance(err, cls)
    assert (err.status, err.code, err.temporary, err.method) == (status, code, temporary, "PATCH")
    if code:
        assert (err.message, err.detail) == ("msg", {"k": 1})
    assert "SECRET" not in str(err) and "SECRET" not in err.url
    assert "\n" not in str(err)


def test_error_bodies_are_read_through_a_cap() -> None:
    class Endless(io.RawIOBase):
        read_total = 0

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:  # type: ignore[no-untyped-def, override]
            Endless.read_total += len(b)
            b[:] = b"x" * len(b)
            return len(b)

    resp = Response(500, Headers({"Content-Length": str(1 << 40)}), Endless())
    error_from_response(resp, "GET", BASE + "/v2/")
    assert Endless.read_total <= ERROR_BODY_LIMIT


def test_retry_after_in_seconds_and_http_date() -> None:
    now = time.time()
    assert parse_retry_after("12") == 12.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert 28 <= (parse_retry_after(date, lambda: now) or 0) <= 31
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), lambda: now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_small_requests_retry_honouring_retry_after_then_give_up() -> None:
    answers = iter(
        [Answer(429, {"Retry-After": "4"}), Answer(503), Answer(200, {"Content-Length": "3"})]
    )
    reg, t, sleeps = registry(lambda r: next(answers))
    assert reg.repository("r").stat_blob(GOOD) == Descriptor("application/octet-stream", GOOD, 3)
    assert sleeps == [4.0, 1.0]
    assert len(t.of("HEAD")) == 3


def test_head_transport_errors_are_retried_but_not_uploads() -> None:
    calls = {"n": 0}

    def flaky(req: Sent) -> Answer:
        calls["n"] += 1
        if calls["n"] == 1:
            raise TransportError("connection reset")
        return Answer(404)

    reg, _t, sleeps = registry(flaky)
    assert reg.repository("r").stat_blob(GOOD) is None
    assert sleeps == [0.5]


def test_denied_push_is_one_line_naming_the_repository() -> None:
    body = b'{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}'
    reg, _t, _ = registry(lambda r: Answer(403, {}, body))
    with pytest.raises(DeniedError) as info:
        reg.repository("team/app").start_upload()
    assert str(info.value) == (
        "denied: requested access to team/app is not allowed "
        "(requested access to the resource is denied)"
    )


def test_mount_refused_with_403_is_not_mounted() -> None:
    reg, _t, _ = registry(lambda r: Answer(403, {}, b'{"errors":[{"code":"DENIED"}]}'))
    assert reg.repository("a").mount_blob(GOOD, "b") is None


def test_mount_answering_another_digest_is_a_protocol_error() -> None:
    reg, _t, _ = registry(lambda r: Answer(201, {"Docker-Content-Digest": str(BAD)}))
    with pytest.raises(ProtocolError):
        reg.repository("a").mount_blob(GOOD, "b")


def test_docker_hub_names_map_to_the_registry_host() -> None:
    t = ScriptedTransport(lambda r: Answer(200))
    assert Registry("docker.io", RegistryOptions(transport=t), Credentials()).host == (
        "registry-1.docker.io"
    )


def test_insecure_registries_named_in_the_environment_fall_back_to_http(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def handler(req: Sent) -> Answer:
        if req.url.startswith("https://"):
            raise TransportError("no TLS here")
        return Answer(200)

    monkeypatch.setenv("YARDARM_INSECURE_REGISTRIES", "other.example, reg.example:5000")
    t = ScriptedTransport(handler)
    reg = Registry("reg.example:5000", RegistryOptions(transport=t), Credentials())
    assert reg.base_url == "http://reg.example:5000"
    monkeypatch.setenv("YARDARM_INSECURE_REGISTRIES", "")
    secure = Registry("reg.example:5000", RegistryOptions(transport=t), Credentials())
    with pytest.raises(TransportError):
        secure.ping()


def test_empty_blob_is_one_post_and_an_empty_put() -> None:
    fake = SessionRegistry()
    reg, t, _ = registry(fake)
    desc = reg.repository("r").upload_blob(b"")
    assert desc == Descriptor("application/octet-stream", Digest.from_bytes(b""), 0)
    assert t.of("PUT")[0].body == b"" and t.of("PATCH") == []


def test_registry_package_exports_are_pinned() -> None:
    """Growing the registry API is a decision: this list changes only on purpose."""
    import yardarm.registry as pkg

    assert sorted(pkg.__all__) == [
        "BlobSource",
        "BlobUpload",
        "Credentials",
        "HttpTransport",
        "Registry",
        "RegistryOptions",
        "Repository",
        "Response",
        "Transport",
        "lookup_credentials",
    ]
    assert all(hasattr(pkg, name) for name in pkg.__all__)
