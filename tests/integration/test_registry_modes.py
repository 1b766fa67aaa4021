"""Each registry mode enforces what it claims, checked with raw HTTP (not yardarm's client)."""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import os
import re
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from support import schema1
from support.registry import RunningRegistry, parse_access_line

pytestmark = pytest.mark.registry


def test_access_line_parser_reads_combined_format() -> None:
    line = (
        '127.0.0.1 - - [28/Nov/2026:05:45:52 +0000] "PATCH /v2/a/b/blobs/uploads/u?_state=x%3D '
        'HTTP/1.1" 202 0 "" "yardarm/0.1 (test)"'
    )
    entry = parse_access_line(line)
    assert entry is not None
    assert (entry.method, entry.path, entry.query) == (
        "PATCH",
        "/v2/a/b/blobs/uploads/u",
        "_state=x%3D",
    )
    assert (entry.status, entry.bytes_sent, entry.user_agent) == (202, 0, "yardarm/0.1 (test)")
    assert parse_access_line('time="x" level=info msg="response completed"') is None


def test_plain_registry_answers_v2_over_http(registry_plain: RunningRegistry) -> None:
    assert registry_plain.url.startswith("http://127.0.0.1:")
    mark = registry_plain.log_mark()
    resp = registry_plain.request("GET", "/v2/", headers={"User-Agent": "mode-test/1"})
    assert resp.status == 200
    assert resp.headers["docker-distribution-api-version"] == "registry/2.0"
    entries = registry_plain.access_log(since=mark)
    assert [(e.method, e.path, e.status, e.user_agent) for e in entries] == [
        ("GET", "/v2/", 200, "mode-test/1")
    ]


def test_repo_name_is_unique_and_a_valid_repository_path(repo_name: str) -> None:
    assert repo_name.startswith("t/test-repo-name-is-unique")
    assert re.fullmatch(
        r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*", repo_name
    )


def test_restart_keeps_port_storage_and_open_upload_sessions(start_registry) -> None:  # type: ignore[no-untyped-def]
    reg = start_registry("plain")
    started = reg.request("POST", "/v2/t/restart/blobs/uploads/")
    assert started.status == 202
    location = started.headers["location"]
    old_pid, old_url = reg.pid, reg.url
    reg.restart()
    assert (reg.url, reg.alive()) == (old_url, True)
    assert reg.pid != old_pid
    path = location.split(reg.host, 1)[1]
    resp = reg.request(
        "PATCH", path, body=b"hello", headers={"Content-Type": "application/octet-stream"}
    )
    assert resp.status == 202, resp.body
    assert resp.headers["range"] == "0-4"


def test_stop_ends_the_process(start_registry) -> None:  # type: ignore[no-untyped-def]
    reg = start_registry("plain")
    reg.stop()
    assert not reg.alive()
    with pytest.raises(OSError):
        reg.request("GET", "/v2/", timeout=2)


def test_tls_registry_is_refused_without_its_ca_and_served_with_it(
    registry_tls: RunningRegistry,
) -> None:
    assert registry_tls.url.startswith("https://127.0.0.1:")
    assert registry_tls.ca_path is not None and registry_tls.ca_path.is_file()
    default = ssl.create_default_context()  # system trust store: knows nothing of our CA
    conn = http.client.HTTPSConnection(registry_tls.host, timeout=10, context=default)
    with pytest.raises(ssl.SSLCertVerificationError):
        conn.request("GET", "/v2/")
    conn.close()
    assert registry_tls.request("GET", "/v2/").status == 200


def test_tls_certificate_names_localhost_too(registry_tls: RunningRegistry) -> None:
    ctx = registry_tls.ssl_context()
    assert ctx is not None
    conn = http.client.HTTPSConnection("localhost", registry_tls.port, timeout=10, context=ctx)
    conn.request("GET", "/v2/")
    assert conn.getresponse().status == 200
    conn.close()


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_basic_registry_demands_credentials(registry_basic: RunningRegistry) -> None:
    resp = registry_basic.request("GET", "/v2/")
    assert resp.status == 401
    assert resp.headers["www-authenticate"].startswith("Basic realm=")
    assert set(registry_basic.users) == {"pusher", "reader"}
    assert registry_basic.request("GET", "/v2/", headers=_basic("pusher", "wrong")).status == 401


def test_basic_registry_lets_pusher_upload(registry_basic: RunningRegistry, repo_name: str) -> None:
    creds = _basic("pusher", registry_basic.users["pusher"])
    assert registry_basic.request("GET", "/v2/", headers=creds).status == 200
    mark = registry_basic.log_mark()
    resp = registry_basic.request("POST", f"/v2/{repo_name}/blobs/uploads/", headers=creds)
    assert resp.status == 202
    assert [(e.method, e.status) for e in registry_basic.access_log(mark)] == [("POST", 202)]


def _token(
    reg: RunningRegistry, scopes: list[str], user: str | None = None, **extra: str
) -> dict[str, object]:
    assert reg.token_server is not None
    query = urllib.parse.urlencode(
        [("service", reg.token_server.service), *[("scope", s) for s in scopes], *extra.items()]
    )
    req = urllib.request.Request(f"{reg.token_server.realm}?{query}")
    if user is not None:
        for k, v in _basic(user, reg.users[user]).items():
            req.add_header(k, v)
    with urllib.request.urlopen(req, timeout=10) as resp:
        body: dict[str, object] = json.load(resp)
    return body


def _bearer(token: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_token_registry_challenges_with_realm_and_service(registry_token: RunningRegistry) -> None:
    server = registry_token.token_server
    assert server is not None
    resp = registry_token.request("GET", "/v2/")
    assert resp.status == 401
    assert resp.headers["www-authenticate"] == (
        f'Bearer realm="{server.realm}",service="{server.service}"'
    )
    resp = registry_token.request("POST", "/v2/t/x/blobs/uploads/")
    assert resp.status == 401
    # The registry lists the actions in no fixed order.
    scope = re.search(r'scope="([^"]+)"', resp.headers["www-authenticate"])
    assert scope is not None
    kind, name, actions = scope[1].split(":")
    assert (kind, name, sorted(actions.split(","))) == ("repository", "t/x", ["pull", "push"])


def test_token_for_pusher_allows_starting_an_upload(
    registry_token: RunningRegistry, repo_name: str
) -> None:
    body = _token(registry_token, [f"repository:{repo_name}:pull,push"], "pusher")
    assert body["token"] == body["access_token"]
    assert body["expires_in"] == 300
    resp = registry_token.request(
        "POST", f"/v2/{repo_name}/blobs/uploads/", headers=_bearer(body["token"])
    )
    assert resp.status == 202
    assert registry_token.token_server is not None
    assert registry_token.token_server.requests == 1


def test_token_for_reader_is_refused_push(registry_token: RunningRegistry, repo_name: str) -> None:
    body = _token(registry_token, [f"repository:{repo_name}:pull,push"], "reader")
    resp = registry_token.request(
        "POST", f"/v2/{repo_name}/blobs/uploads/", headers=_bearer(body["token"])
    )
    assert resp.status in (401, 403)
    assert b"UNAUTHORIZED" in resp.body or b"DENIED" in resp.body
    server = registry_token.token_server
    assert server is not None
    (logged,) = server.log
    assert [str(s) for s in logged.granted] == [f"repository:{repo_name}:pull"]
    pulled = registry_token.request(
        "GET", f"/v2/{repo_name}/tags/list", headers=_bearer(body["token"])
    )
    assert pulled.status == 404  # authorised; the repository just does not exist


def test_anonymous_token_pulls_public_repositories_only(registry_token: RunningRegistry) -> None:
    public = _token(registry_token, ["repository:public/base:pull"])
    resp = registry_token.request(
        "GET", "/v2/public/base/tags/list", headers=_bearer(public["token"])
    )
    assert resp.status == 404  # NAME_UNKNOWN: past auth
    private = _token(registry_token, ["repository:t/private:pull"])
    resp = registry_token.request(
        "GET", "/v2/t/private/tags/list", headers=_bearer(private["token"])
    )
    assert resp.status == 401
    push = _token(registry_token, ["repository:public/base:pull,push"])
    resp = registry_token.request(
        "POST", "/v2/public/base/blobs/uploads/", headers=_bearer(push["token"])
    )
    assert resp.status == 401


def test_token_issuer_rejects_wrong_password(registry_token: RunningRegistry) -> None:
    assert registry_token.token_server is not None
    req = urllib.request.Request(f"{registry_token.token_server.realm}?scope=repository:a:pull")
    for k, v in _basic("pusher", "not-the-password").items():
        req.add_header(k, v)
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=10)
    assert info.value.code == 401


def test_expired_token_is_rejected(registry_token: RunningRegistry, repo_name: str) -> None:
    server = registry_token.token_server
    assert server is not None
    server.set_lifetime(2)
    body = _token(registry_token, [f"repository:{repo_name}:pull"], "reader")
    assert body["expires_in"] == 2
    path = f"/v2/{repo_name}/tags/list"
    assert registry_token.request("GET", path, headers=_bearer(body["token"])).status == 404
    time.sleep(2.2)
    assert registry_token.request("GET", path, headers=_bearer(body["token"])).status == 401
    forged = server.issue("pusher", [f"repository:{repo_name}:pull"], lifetime=-5)
    assert registry_token.request("GET", path, headers=_bearer(forged)).status == 401


@pytest.mark.parametrize("field", ["audience", "issuer"])
def test_token_with_wrong_claims_is_rejected(
    registry_token: RunningRegistry, repo_name: str, field: str
) -> None:
    server = registry_token.token_server
    assert server is not None
    scope = [f"repository:{repo_name}:pull"]
    good = server.issue("pusher", scope)
    bad = server.issue("pusher", scope, **{field: "someone-else"})  # type: ignore[arg-type]
    path = f"/v2/{repo_name}/tags/list"
    assert registry_token.request("GET", path, headers=_bearer(good)).status == 404
    assert registry_token.request("GET", path, headers=_bearer(bad)).status == 401


def test_refresh_token_obtains_new_access_tokens(
    registry_token: RunningRegistry, repo_name: str
) -> None:
    first = _token(registry_token, [], "pusher", offline_token="true")
    refresh = first["refresh_token"]
    assert isinstance(refresh, str)
    server = registry_token.token_server
    assert server is not None
    form = urllib.parse.urlencode(
        {
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "service": server.service,
            "scope": f"repository:{repo_name}:pull,push",
            "client_id": "test",
        }
    ).encode()
    with urllib.request.urlopen(server.realm, data=form, timeout=10) as resp:
        body = json.load(resp)
    resp2 = registry_token.request(
        "POST", f"/v2/{repo_name}/blobs/uploads/", headers=_bearer(body["access_token"])
    )
    assert resp2.status == 202
    assert server.requests == 2
    bogus = form.replace(refresh.encode(), b"nope")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(server.realm, data=bogus, timeout=10)
    assert info.value.code == 401


def test_password_grant_and_injected_failures(registry_token: RunningRegistry) -> None:
    server = registry_token.token_server
    assert server is not None
    form = urllib.parse.urlencode(
        {
            "grant_type": "password",
            "username": "reader",
            "password": registry_token.users["reader"],
            "service": server.service,
            "scope": "repository:a/b:pull repository:c:pull,push",
        }
    ).encode()
    server.fail_next(1, 503)
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(server.realm, data=form, timeout=10)
    assert info.value.code == 503
    with urllib.request.urlopen(server.realm, data=form, timeout=10) as resp:
        assert "access_token" in json.load(resp)
    assert [str(s) for s in server.log[-1].granted] == ["repository:a/b:pull", "repository:c:pull"]
    assert server.requests == 2


def _schema1_manifest(reg: RunningRegistry, repo: str) -> dict[str, object]:
    layer = reg.upload_blob(repo, gzip.compress(b"", mtime=0))
    return schema1.manifest_for(repo, "v1", [layer])


def test_schema1_registry_accepts_a_signed_schema1_manifest(
    registry_schema1: RunningRegistry, repo_name: str
) -> None:
    manifest = _schema1_manifest(registry_schema1, repo_name)
    body = schema1.sign(manifest)
    headers = {"Content-Type": schema1.SIGNED_MEDIA_TYPE}
    resp = registry_schema1.request(
        "PUT", f"/v2/{repo_name}/manifests/v1", headers=headers, body=body
    )
    assert resp.status == 201, resp.body
    assert resp.headers["docker-content-digest"] == schema1.payload_digest(manifest)
    got = registry_schema1.request(
        "GET", f"/v2/{repo_name}/manifests/v1", headers={"Accept": schema1.SIGNED_MEDIA_TYPE}
    )
    assert got.status == 200
    assert json.loads(got.body)["fsLayers"] == manifest["fsLayers"]


def test_schema1_registry_refuses_an_unsigned_schema1_manifest(
    registry_schema1: RunningRegistry, repo_name: str
) -> None:
    manifest = _schema1_manifest(registry_schema1, repo_name)
    resp = registry_schema1.request(
        "PUT",
        f"/v2/{repo_name}/manifests/v1",
        headers={"Content-Type": schema1.SIGNED_MEDIA_TYPE},
        body=json.dumps(manifest).encode(),
    )
    assert resp.status == 400, resp.body
    assert b"MANIFEST" in resp.body


def test_plain_registry_refuses_schema1_even_when_signed(
    registry_plain: RunningRegistry, repo_name: str
) -> None:
    manifest = _schema1_manifest(registry_plain, repo_name)
    resp = registry_plain.request(
        "PUT",
        f"/v2/{repo_name}/manifests/v1",
        headers={"Content-Type": schema1.SIGNED_MEDIA_TYPE},
        body=schema1.sign(manifest),
    )
    # Registry 2.8 without the compatibility flag fails the PUT as an unknown server error.
    assert resp.status == 500, resp.body
    assert b'"UNKNOWN"' in resp.body


def test_schema1_registry_still_accepts_schema2(
    registry_schema1: RunningRegistry, repo_name: str
) -> None:
    config = registry_schema1.upload_blob(repo_name, b'{"architecture":"amd64","os":"linux"}')
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": config,
            "size": 37,
        },
        "layers": [],
    }
    resp = registry_schema1.request(
        "PUT",
        f"/v2/{repo_name}/manifests/latest",
        headers={"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"},
        body=json.dumps(manifest).encode(),
    )
    assert resp.status == 201, resp.body


@pytest.mark.parametrize("mode", ["plain", "tls", "basic", "token", "schema1"])
def test_private_registries_start_in_every_mode(start_registry, mode: str) -> None:  # type: ignore[no-untyped-def]
    reg = start_registry(mode)
    assert reg.mode == mode and reg.alive()
    status = reg.request("GET", "/v2/").status
    assert status == (401 if mode in ("basic", "token") else 200)
    assert (reg.ca_path is not None) == (mode in ("tls", "basic"))
    assert (reg.token_server is not None) == (mode == "token")


INNER_TESTS = """
def test_passes(registry_plain):
    registry_plain.request("GET", "/v2/marker-of-passing-test/tags/list")

def test_fails(registry_plain):
    registry_plain.request("GET", "/v2/marker-of-failing-test/tags/list")
    assert False
"""


def test_failing_test_report_carries_its_registry_log_and_nothing_leaks(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    tests_dir = Path(__file__).resolve().parents[1]
    pytester.makeconftest((tests_dir / "conftest.py").read_text())
    pytester.makepyfile(test_inner=INNER_TESTS)
    monkeypatch.setenv("PYTHONPATH", str(tests_dir))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "registry plain log" in out
    assert "marker-of-failing-test" in out
    assert "marker-of-passing-test" not in out  # only what the failing test caused
    states = list(pytester.path.rglob("state.json"))
    assert len(states) == 1
    pid = json.loads(states[0].read_text())["pid"]
    assert not Path(f"/proc/{pid}").exists() or "Z" in _proc_state(pid)


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


@pytest.mark.parametrize("fixture", ["registry_plain", "registry_basic", "registry_token"])
def test_auth_headers_let_seed_image_push_in_every_mode(
    request: pytest.FixtureRequest, tmp_path: Path, repo_name: str, fixture: str
) -> None:
    from support.imagegen import write_oci_layout

    reg: RunningRegistry = request.getfixturevalue(fixture)
    img = write_oci_layout(tmp_path / "oci", layers=[100, 200])
    headers = reg.auth_headers("pusher", [f"repository:{repo_name}:pull,push"])
    assert bool(headers) == (reg.mode != "plain")
    assert reg.seed_image(repo_name, img, headers=headers) == img.manifest_digest
    got = reg.request(
        "GET",
        f"/v2/{repo_name}/manifests/latest",
        headers={**headers, "Accept": img.image.manifest_media_type},
    )
    assert got.body == img.image.manifest_bytes


OWNER_SCRIPT = """
import sys, time
from pathlib import Path
from support.registry import start_registry
reg = start_registry("plain", Path(sys.argv[1]))
print(reg.pid, flush=True)
time.sleep(120)
"""


def test_registry_dies_with_a_sigkilled_test_process(tmp_path: Path) -> None:
    tests_dir = Path(__file__).resolve().parents[1]
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER_SCRIPT, str(tmp_path / "reg")],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(tests_dir)},
    )
    try:
        assert owner.stdout is not None
        pid = int(owner.stdout.readline())
        assert _proc_state(pid) != "Z"
    finally:
        owner.kill()  # no atexit, no fixture teardown: only the watchdog can help
        owner.wait()
    deadline = time.monotonic() + 10
    while _proc_state(pid) != "Z" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _proc_state(pid) == "Z", "the registry outlived its owner"
