"""Each registry mode enforces what it claims, checked with raw HTTP (not yardarm's client)."""

from __future__ import annotations

import base64
import http.client
import ssl

import pytest

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
    import re

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
