"""yardarm's registry client against the real `docker-registry`, in every auth mode."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import logging
import os
import time
import tracemalloc
import urllib.parse
from pathlib import Path

import pytest

from support.registry import RunningRegistry
from yardarm import mediatypes as mt
from yardarm.digest import Digest
from yardarm.errors import (
    AuthenticationError,
    DeniedError,
    NotFoundError,
    TLSError,
    TransportError,
    UploadInvalid,
)
from yardarm.manifest import Descriptor
from yardarm.registry import BlobUpload, Credentials, Registry, RegistryOptions

pytestmark = pytest.mark.registry

MiB = 1024 * 1024


def client(reg: RunningRegistry, creds: Credentials | None = None, **options: object) -> Registry:
    return Registry(reg.host, RegistryOptions(**options), creds or Credentials())  # type: ignore[arg-type]


def pusher(reg: RunningRegistry) -> Credentials:
    return Credentials(username="pusher", password=reg.users["pusher"])


def reader(reg: RunningRegistry) -> Credentials:
    return Credentials(username="reader", password=reg.users["reader"])


def independent_digest(reg: RunningRegistry, repo: str, digest: Digest) -> tuple[str, int]:
    """GET the blob with plain http.client (not yardarm) and hash it while streaming."""
    conn = http.client.HTTPConnection(reg.host, timeout=60)
    try:
        conn.request("GET", f"/v2/{repo}/blobs/{digest}")
        resp = conn.getresponse()
        assert resp.status == 200
        h, n = hashlib.sha256(), 0
        while chunk := resp.read(4 * MiB):
            h.update(chunk)
            n += len(chunk)
        return "sha256:" + h.hexdigest(), n
    finally:
        conn.close()


def random_file(path: Path, size: int) -> Digest:
    h = hashlib.sha256()
    block = os.urandom(MiB)
    with open(path, "wb") as f:
        for i in range(size // MiB):
            # Vary each block cheaply so the content is not periodic.
            piece = i.to_bytes(8, "big") + block[8:]
            f.write(piece)
            h.update(piece)
        rest = os.urandom(size % MiB)
        f.write(rest)
        h.update(rest)
    return Digest("sha256", h.hexdigest())


def small_manifest(repo: object, layer: Descriptor) -> bytes:
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    cfg = repo.upload_blob(config)  # type: ignore[attr-defined]
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": mt.OCI_CONFIG, "digest": str(cfg.digest), "size": cfg.size},
            "layers": [
                {"mediaType": mt.OCI_LAYER_GZIP, "digest": str(layer.digest), "size": layer.size}
            ],
        }
    ).encode()


# -- plain ------------------------------------------------------------------------------------


def test_blob_round_trip_stat_open_and_missing_blob(
    registry_plain: RunningRegistry, repo_name: str
) -> None:
    with client(registry_plain) as reg:
        repo = reg.repository(repo_name)
        data = os.urandom(300_000)
        desc = repo.upload_blob(data)
        assert desc.digest == Digest.from_bytes(data) and desc.size == len(data)
        assert repo.stat_blob(desc.digest) == Descriptor(
            "application/octet-stream", desc.digest, len(data)
        )
        with repo.open_blob(desc.digest) as f:
            assert f.read() == data
        assert repo.stat_blob(Digest.from_bytes(b"never uploaded")) is None
        with pytest.raises(NotFoundError):
            repo.open_blob(Digest.from_bytes(b"never uploaded")).read()


def test_requests_carry_yardarm_user_agent_and_reuse_one_connection(
    registry_plain: RunningRegistry, repo_name: str
) -> None:
    mark = registry_plain.log_mark()
    with client(registry_plain) as reg:
        repo = reg.repository(repo_name)
        for i in range(5):
            repo.stat_blob(Digest.from_bytes(b"%d" % i))
    entries = registry_plain.access_log(since=mark)
    assert len(entries) == 6  # ping + 5 HEAD
    assert {e.user_agent for e in entries} == {"yardarm/" + __import__("yardarm").__version__}
    # One keep-alive connection: every request came from the same client port.
    log = registry_plain.log_text(mark)
    ports = {line.split('remote.addr="')[1].split('"')[0] for line in log.splitlines()
             if 'remote.addr="' in line}  # fmt: skip
    assert len(ports) <= 1


def test_monolithic_upload_of_256_mib_file_streams_with_flat_memory(
    registry_plain: RunningRegistry, repo_name: str, tmp_path: Path
) -> None:
    path = tmp_path / "big"
    digest = random_file(path, 256 * MiB + 123)
    seen: list[int] = []
    tracemalloc.start()
    try:
        with client(registry_plain) as reg:
            desc = reg.repository(repo_name).upload_blob(path, digest, progress=seen.append)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert desc.size == 256 * MiB + 123 and sum(seen) == desc.size
    assert peak < 4 * MiB, f"peak Python allocations {peak} bytes"
    assert independent_digest(registry_plain, repo_name, digest) == (str(digest), desc.size)


def test_chunked_upload_of_256_mib_with_chunk_cap_uses_several_patches(
    registry_plain: RunningRegistry, repo_name: str, tmp_path: Path
) -> None:
    path = tmp_path / "big"
    digest = random_file(path, 256 * MiB + 7)
    mark = registry_plain.log_mark()
    tracemalloc.start()
    try:
        with client(registry_plain, max_chunk_size=64 * MiB) as reg, open(path, "rb") as f:
            desc = reg.repository(repo_name).upload_blob(f, digest)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert desc.size == 256 * MiB + 7
    assert peak < 4 * MiB, f"peak Python allocations {peak} bytes"
    patches = [e for e in registry_plain.access_log(since=mark) if e.method == "PATCH"]
    assert len(patches) == 5 and all(e.status == 202 for e in patches)
    assert independent_digest(registry_plain, repo_name, digest) == (str(digest), desc.size)


def test_streamed_upload_of_unknown_length_and_digest(
    registry_plain: RunningRegistry, repo_name: str
) -> None:
    data = os.urandom(3 * MiB + 5)
    pieces = (data[i : i + 100_000] for i in range(0, len(data), 100_000))
    with client(registry_plain) as reg:
        repo = reg.repository(repo_name)
        upload = repo.start_upload()
        assert upload.write(pieces) == len(data)
        desc = upload.commit(Digest.from_bytes(data))
    assert desc.size == len(data)
    assert independent_digest(registry_plain, repo_name, desc.digest)[0] == str(desc.digest)


def test_wrong_digest_at_commit_is_a_typed_error(
    registry_plain: RunningRegistry, repo_name: str
) -> None:
    with client(registry_plain) as reg:
        upload = reg.repository(repo_name).start_upload()
        upload.write(b"some bytes")
        with pytest.raises(Exception) as info:
            upload.commit(Digest.from_bytes(b"other bytes"))
    assert getattr(info.value, "code", "") == "DIGEST_INVALID"
    assert "DIGEST_INVALID" in str(info.value) or "digest" in str(info.value).lower()


def test_resume_upload_from_saved_location_continues_at_registry_offset(
    registry_plain: RunningRegistry, repo_name: str
) -> None:
    data = os.urandom(2 * MiB)
    with client(registry_plain) as reg:
        repo = reg.repository(repo_name)
        first = repo.start_upload()
        first.write(data[:MiB])
        location = first.location
    with client(registry_plain) as reg:  # a new process, as far as the client knows
        resumed = reg.repository(repo_name).resume_upload(location)
        assert resumed.offset == MiB
        resumed.write(io.BytesIO(data[MiB:]), length=MiB)
        desc = resumed.commit(Digest.from_bytes(data))
    assert independent_digest(registry_plain, repo_name, desc.digest) == (
        str(desc.digest),
        len(data),
    )


def test_cancelled_upload_session_is_dead(registry_plain: RunningRegistry, repo_name: str) -> None:
    with client(registry_plain) as reg:
        repo = reg.repository(repo_name)
        upload = repo.start_upload()
        upload.write(b"abc")
        upload.cancel()
        with pytest.raises(UploadInvalid):
            repo.resume_upload(upload.location)


def test_mount_from_another_repository_and_fallback_session(
    registry_plain: RunningRegistry, repo_name: str
) -> None:
    with client(registry_plain) as reg:
        source = reg.repository(repo_name + "/src")
        target = reg.repository(repo_name + "/dst")
        desc = source.upload_blob(b"mount me")
        mark = registry_plain.log_mark()
        mounted = target.mount_blob(desc.digest, source.name)
        assert mounted == Descriptor("application/octet-stream", desc.digest, 8)
        assert [e.method for e in registry_plain.access_log(since=mark)] == ["POST", "HEAD"]
        again = reg.repository(repo_name + "/dst2")
        mark = registry_plain.log_mark()
        assert again.mount_blob(desc.digest, source.name, 8) == mounted
        assert [e.method for e in registry_plain.access_log(since=mark)] == ["POST"]
        assert target.stat_blob(desc.digest) is not None
        missing = Digest.from_bytes(b"not in source")
        fallback = target.mount_blob(missing, source.name)
        assert isinstance(fallback, BlobUpload)
        done = fallback.commit(missing, b"not in source")
        assert done.digest == missing


def test_manifest_put_head_get_delete_and_tags(
    registry_plain: RunningRegistry, repo_name: str
) -> None:
    with client(registry_plain) as reg:
        repo = reg.repository(repo_name)
        layer = repo.upload_blob(b"layer")
        raw = small_manifest(repo, layer)
        digest = repo.put_manifest("v1", raw, mt.OCI_MANIFEST)
        assert digest == Digest.from_bytes(raw)
        repo.put_manifest("v2", raw, mt.OCI_MANIFEST)
        assert repo.head_manifest("v1") == Descriptor(mt.OCI_MANIFEST, digest, len(raw))
        assert repo.get_manifest(str(digest)) == (raw, mt.OCI_MANIFEST, digest)
        assert repo.get_manifest("v2") == (raw, mt.OCI_MANIFEST, digest)
        assert sorted(repo.tags()) == ["v1", "v2"]
        assert repo_name in reg.catalog()
        assert repo.referrers(digest) == []
        repo.delete_manifest(digest)
        assert repo.head_manifest("v1") is None
        with pytest.raises(NotFoundError) as info:
            repo.get_manifest("v1")
        assert info.value.code == "MANIFEST_UNKNOWN"


def test_manifest_referring_to_missing_blob_is_manifest_blob_unknown(
    registry_plain: RunningRegistry, repo_name: str
) -> None:
    with client(registry_plain) as reg:
        repo = reg.repository(repo_name)
        ghost = Descriptor(mt.OCI_LAYER_GZIP, Digest.from_bytes(b"ghost"), 5)
        raw = small_manifest(repo, ghost)
        with pytest.raises(Exception) as info:
            repo.put_manifest("v1", raw, mt.OCI_MANIFEST)
    assert getattr(info.value, "code", "") == "MANIFEST_BLOB_UNKNOWN"
    assert not getattr(info.value, "temporary", True)


# -- TLS --------------------------------------------------------------------------------------


def test_tls_is_verified_against_certs_dir_when_loopback_is_not_trusted_blindly(
    registry_tls: RunningRegistry, repo_name: str, tmp_path: Path
) -> None:
    assert registry_tls.ca_path is not None
    with pytest.raises(TLSError):
        client(registry_tls, insecure_loopback=False).ping()
    certs = tmp_path / "certs.d"
    (certs / registry_tls.host).mkdir(parents=True)
    (certs / registry_tls.host / "ca.crt").write_bytes(registry_tls.ca_path.read_bytes())
    with client(registry_tls, insecure_loopback=False, certs_dirs=(certs,)) as reg:
        assert reg.base_url == f"https://{registry_tls.host}"
        path = tmp_path / "blob"
        digest = random_file(path, 5 * MiB + 1)
        desc = reg.repository(repo_name).upload_blob(path, digest)  # 1 MiB TLS writes
        assert desc.size == 5 * MiB + 1
        with reg.repository(repo_name).open_blob(digest) as f:
            assert hashlib.sha256(f.read()).hexdigest() == digest.hex


def test_loopback_registry_is_insecure_allowed_https_first(registry_tls: RunningRegistry) -> None:
    with client(registry_tls) as reg:
        reg.ping()
        assert reg.base_url.startswith("https://")


def test_insecure_registry_falls_back_to_plain_http(registry_plain: RunningRegistry) -> None:
    with client(registry_plain) as reg:
        reg.ping()
        assert reg.base_url == f"http://{registry_plain.host}"


def test_plain_http_is_refused_for_a_registry_nobody_named_insecure(
    registry_plain: RunningRegistry,
) -> None:
    with pytest.raises(TransportError):  # HTTPS to a plain-HTTP server fails
        client(registry_plain, insecure_loopback=False).ping()


# -- basic auth -------------------------------------------------------------------------------


def test_basic_auth_pushes_with_credentials_and_refuses_without(
    registry_basic: RunningRegistry, repo_name: str
) -> None:
    with client(registry_basic, pusher(registry_basic)) as reg:
        reg.ping()
        assert reg.repository(repo_name).upload_blob(b"basic").size == 5
    with pytest.raises(AuthenticationError) as info:
        client(registry_basic).ping()
    assert info.value.status == 401
    wrong = Credentials(username="pusher", password="wrong-password-123")
    with pytest.raises(AuthenticationError) as info2:
        client(registry_basic, wrong).repository(repo_name).start_upload()
    assert "wrong-password-123" not in str(info2.value) + repr(info2.value)


# -- token auth -------------------------------------------------------------------------------


def test_token_auth_push_with_pusher_and_scope_push_first(
    registry_token: RunningRegistry, repo_name: str
) -> None:
    assert registry_token.token_server is not None
    with client(registry_token, pusher(registry_token)) as reg:
        repo = reg.repository(repo_name)
        desc = repo.upload_blob(os.urandom(1000))
        assert repo.stat_blob(desc.digest) is not None
        assert reg.token_fetches == 1  # one token serves the whole repository
    asked = [r for r in registry_token.token_server.log if r.requested]
    assert str(asked[0].requested[0]) == f"repository:{repo_name}:push,pull"


def test_pull_only_user_gets_one_line_denied_naming_the_repository(
    registry_token: RunningRegistry, repo_name: str
) -> None:
    reg = client(registry_token, reader(registry_token))
    with pytest.raises(DeniedError) as info:
        reg.repository(repo_name).upload_blob(b"not allowed")
    message = str(info.value)
    assert "\n" not in message and repo_name in message and "denied" in message
    assert registry_token.users["reader"] not in message + repr(info.value)


def test_anonymous_may_read_public_but_not_push(
    registry_token: RunningRegistry, repo_name: str
) -> None:
    with client(registry_token, pusher(registry_token)) as reg:
        desc = reg.repository("public/" + repo_name).upload_blob(b"public blob")
    with client(registry_token) as anon:
        repo = anon.repository("public/" + repo_name)
        assert repo.stat_blob(desc.digest) is not None
        with pytest.raises((DeniedError, AuthenticationError)):
            repo.start_upload()


def test_wrong_password_for_token_server_is_authentication_error(
    registry_token: RunningRegistry, repo_name: str
) -> None:
    creds = Credentials(username="pusher", password="not-the-password-42")
    with pytest.raises(AuthenticationError) as info:
        client(registry_token, creds).repository(repo_name).start_upload()
    assert "not-the-password-42" not in str(info.value) + repr(info.value)


def test_identity_token_uses_oauth2_refresh_grant(
    registry_token: RunningRegistry, repo_name: str
) -> None:
    server = registry_token.token_server
    assert server is not None
    form = urllib.parse.urlencode(
        {
            "grant_type": "password",
            "username": "pusher",
            "password": registry_token.users["pusher"],
            "service": server.service,
            "access_type": "offline",
            "client_id": "test",
        }
    )
    conn = http.client.HTTPConnection(urllib.parse.urlsplit(server.url).netloc)
    conn.request("POST", "/token", form, {"Content-Type": "application/x-www-form-urlencoded"})
    refresh = json.loads(conn.getresponse().read())["refresh_token"]
    conn.close()
    creds = Credentials(username="<token>", identity_token=refresh)
    with client(registry_token, creds) as reg:
        assert reg.repository(repo_name).upload_blob(b"via refresh").size == 11
    assert server.log[-1].grant_type == "refresh_token"
    assert refresh not in repr(creds) + repr(reg)


def test_token_expiring_in_the_middle_of_a_chunked_upload_is_renewed(
    registry_token: RunningRegistry, repo_name: str
) -> None:
    server = registry_token.token_server
    assert server is not None
    server.set_lifetime(2)  # the registry rejects it after 2 s; we believe it for 60 s
    data = os.urandom(8 * MiB)
    with client(registry_token, pusher(registry_token)) as reg:
        upload = reg.repository(repo_name).start_upload()
        upload.write(io.BytesIO(data[: 2 * MiB]), length=2 * MiB)
        time.sleep(3)  # the token is now dead at the registry
        upload.write(io.BytesIO(data[2 * MiB :]), length=6 * MiB)
        desc = upload.commit(Digest.from_bytes(data))
        assert reg.token_fetches >= 2
    assert desc.size == len(data)
    again = client(registry_token, pusher(registry_token))
    with again.repository(repo_name).open_blob(desc.digest) as f:
        assert hashlib.sha256(f.read()).hexdigest() == desc.digest.hex


def test_token_renewal_before_expiry_keeps_a_long_push_free_of_401(
    registry_token: RunningRegistry, repo_name: str
) -> None:
    """With a fake clock past the renewal point, the next request fetches a new token first."""
    now = [1000.0]
    mark = registry_token.log_mark()
    with client(registry_token, pusher(registry_token), clock=lambda: now[0]) as reg:
        repo = reg.repository(repo_name)
        repo.stat_blob(Digest.from_bytes(b"a"))
        now[0] += 3600
        repo.stat_blob(Digest.from_bytes(b"b"))
        assert reg.token_fetches == 2
    statuses = [e.status for e in registry_token.access_log(since=mark) if e.method == "HEAD"]
    assert statuses == [404, 404]  # never a 401 in between


def test_mount_with_token_auth_succeeds_and_asks_for_source_pull(
    registry_token: RunningRegistry, repo_name: str
) -> None:
    server = registry_token.token_server
    assert server is not None
    with client(registry_token, pusher(registry_token)) as reg:
        src = reg.repository(repo_name + "/src")
        desc = src.upload_blob(b"shared layer")
        mounted = reg.repository(repo_name + "/dst").mount_blob(desc.digest, src.name)
    assert isinstance(mounted, Descriptor)
    asked = [[str(s) for s in r.requested] for r in server.log]
    assert asked[-1] == [
        f"repository:{repo_name}/dst:push,pull",
        f"repository:{repo_name}/src:pull",
    ]


def test_mount_without_pull_on_source_is_not_mounted_but_no_error(
    registry_token: RunningRegistry, repo_name: str
) -> None:
    server = registry_token.token_server
    assert server is not None
    with client(registry_token, pusher(registry_token)) as reg:
        desc = reg.repository(repo_name + "/src").upload_blob(b"secret layer")
    # A registry token that may push the target but not pull the source.
    token = server.issue("pusher", [f"repository:{repo_name}/dst:push,pull"])
    with client(registry_token, Credentials(registry_token=token)) as limited:
        dst = limited.repository(repo_name + "/dst")
        assert dst.mount_blob(desc.digest, repo_name + "/src") is None
        assert dst.upload_blob(b"secret layer").digest == desc.digest


def test_token_server_failure_is_a_temporary_registry_error(
    registry_token: RunningRegistry, repo_name: str
) -> None:
    server = registry_token.token_server
    assert server is not None
    server.fail_next(1, 503)
    with client(registry_token, pusher(registry_token)) as reg:
        with pytest.raises(Exception) as info:
            reg.repository(repo_name).start_upload()
        assert getattr(info.value, "temporary", False)
        assert reg.repository(repo_name).start_upload().offset == 0  # next try works


def test_secrets_never_appear_in_reprs_errors_or_logs(
    registry_basic: RunningRegistry,
    registry_token: RunningRegistry,
    repo_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="yardarm")
    texts: list[str] = []
    secrets: list[str] = []
    for reg_under_test in (registry_basic, registry_token):
        creds = pusher(reg_under_test)
        secrets.append(creds.password)
        with client(reg_under_test, creds) as reg:
            repo = reg.repository(repo_name)
            upload = repo.start_upload()
            auth = reg._session.auth
            secrets += [t.value for t in auth._tokens.values()]
            texts += [repr(reg), repr(repo), repr(upload), repr(reg._session), repr(auth)]
            texts += [repr(t) for t in auth._tokens.values()]
            with pytest.raises(Exception) as info:
                upload.commit(Digest.from_bytes(b"x"), b"y")  # DIGEST_INVALID
            texts += [str(info.value), repr(info.value), str(getattr(info.value, "url", ""))]
            upload.cancel()
            # A failing cancel logs; the message must still be clean.
            upload.cancel()
    texts += [r.getMessage() for r in caplog.records]
    assert len(secrets) >= 3  # two passwords and at least one bearer token
    assert caplog.records, "debug logging produced nothing to check"
    for secret in secrets:
        assert not any(secret in t for t in texts)
    assert all("_state=" not in t or "_state=REDACTED" in t for t in texts)


def test_cancel_and_manifest_delete_under_token_auth_ask_for_the_delete_action(
    registry_token: RunningRegistry, repo_name: str
) -> None:
    server = registry_token.token_server
    assert server is not None
    with client(registry_token, pusher(registry_token)) as reg:
        repo = reg.repository(repo_name)
        upload = repo.start_upload()
        upload.write(b"abc")
        upload.cancel()
        with pytest.raises(UploadInvalid):
            repo.resume_upload(upload.location)
        layer = repo.upload_blob(b"layer")
        digest = repo.put_manifest("v1", small_manifest(repo, layer), mt.OCI_MANIFEST)
        repo.delete_manifest(digest)
        assert repo.head_manifest(str(digest)) is None
    asked = {str(s) for r in server.log for s in r.requested}
    assert f"repository:{repo_name}:delete" in asked


def test_signed_schema1_manifest_round_trip_on_a_schema1_registry(
    registry_schema1: RunningRegistry, repo_name: str
) -> None:
    import gzip

    from support import schema1

    with client(registry_schema1) as reg:
        repo = reg.repository(repo_name)
        layer = repo.upload_blob(gzip.compress(b"", mtime=0))
        manifest = schema1.manifest_for(repo_name, "v1", [str(layer.digest)])
        raw = schema1.sign(manifest)
        # Its digest covers the payload without signatures, as the registry computes it.
        digest = repo.put_manifest("v1", raw, mt.DOCKER_SCHEMA1_SIGNED)
        assert str(digest) == schema1.payload_digest(manifest)
        got, media_type, got_digest = repo.get_manifest(str(digest))
        assert (media_type, got_digest) == (mt.DOCKER_SCHEMA1_SIGNED, digest)
        assert json.loads(got)["fsLayers"] == manifest["fsLayers"]
        head = repo.head_manifest("v1")
        assert head is not None and head.digest == digest
