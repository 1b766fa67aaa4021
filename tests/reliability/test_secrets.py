"""Known secrets never appear in any channel: logs (--debug, and DEBUG logging in the library),
plain and JSON progress, error messages, and repr of the objects a user may print.

Each push runs through the fault proxy with a fault, so retry and renewal paths (the ones that
log the most) are taken too. Secrets searched: the password, its base64 ``user:password`` form,
the ``Authorization`` values, and any JWT (``eyJ`` prefix: bearer tokens are JWTs here).
"""

from __future__ import annotations

import base64
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from fakes.faultproxy import FaultProxy, respond
from reliability.scenario import LoadedStore, cli_env, run_cli, tag
from support.registry import RunningRegistry

pytestmark = pytest.mark.registry


def _secrets(user: str, password: str) -> list[str]:
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    return [password, basic, "Basic " + basic[:8], "Bearer ey", "eyJhbGci", "eyJ0eXAi"]


def _assert_clean(text: str, secrets: list[str], channel: str) -> None:
    for s in secrets:
        assert s not in text, f"{channel} leaks {s[:4]}..."


def _docker_config(folder: Path, host: str, user: str, password: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (folder / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    return folder


def _certs(reg: RunningRegistry, base: Path) -> Path:
    assert reg.ca_path is not None
    folder = base / "certs.d"
    (folder / reg.host).mkdir(parents=True, exist_ok=True)
    shutil.copy(reg.ca_path, folder / reg.host / "ca.crt")
    return folder


@pytest.mark.parametrize("progress", ["json", "plain"])
def test_token_push_with_debug_logs_and_progress_leaks_nothing(
    registry_token: RunningRegistry,
    small_store: LoadedStore,
    copy_store: Callable[[LoadedStore], Path],
    repo_name: str,
    tmp_path: Path,
    progress: str,
) -> None:
    password = registry_token.users["pusher"]
    secrets = _secrets("pusher", password)
    store = copy_store(small_store)
    with FaultProxy(registry_token.host, lifetime=60) as proxy:
        ref = f"{proxy.host}/{repo_name}:v1"
        tag(store, small_store.image_id, ref)
        proxy.add(respond(503, path="/blobs/uploads/", times=2))  # retries get logged
        dc = _docker_config(tmp_path / "dc", proxy.host, "pusher", password)
        env = cli_env(store, DOCKER_CONFIG=str(dc), YARDARM_DEBUG="1")
        proc = run_cli(["--debug", "push", f"--progress={progress}", ref], store, env=env)
        assert proc.returncode == 0, proc.stderr
        assert "DEBUG" in proc.stderr or "debug" in proc.stderr.lower(), "debug logs were on"
        _assert_clean(proc.stdout, secrets, f"{progress} progress")
        _assert_clean(proc.stderr, secrets, "debug log")
        if progress == "json":
            for line in proc.stdout.splitlines():
                json.loads(line)  # every progress line is JSON


def test_wrong_password_error_and_debug_traceback_leak_nothing(
    registry_basic: RunningRegistry,
    small_store: LoadedStore,
    copy_store: Callable[[LoadedStore], Path],
    repo_name: str,
    tmp_path: Path,
) -> None:
    wrong = "not-the-password-8c1e"
    secrets = _secrets("pusher", wrong)
    store = copy_store(small_store)
    ref = f"{registry_basic.host}/{repo_name}:v1"
    tag(store, small_store.image_id, ref)
    dc = _docker_config(tmp_path / "dc", registry_basic.host, "pusher", wrong)
    certs = _certs(registry_basic, tmp_path)
    env = cli_env(store, DOCKER_CONFIG=str(dc))
    plain = run_cli(["push", "--certs-dir", str(certs), ref], store, env=env)
    assert plain.returncode == 1
    assert "401" in plain.stderr or "auth" in plain.stderr.lower(), plain.stderr
    _assert_clean(plain.stdout + plain.stderr, secrets, "error message")
    debug = run_cli(["--debug", "push", "--certs-dir", str(certs), ref], store, env=env)
    assert debug.returncode != 0
    assert "Traceback" in debug.stderr, "--debug shows the traceback"
    _assert_clean(debug.stdout + debug.stderr, secrets, "debug traceback")


def test_library_debug_logging_progress_errors_and_reprs_leak_nothing(
    registry_basic: RunningRegistry,
    small_store: LoadedStore,
    copy_store: Callable[[LoadedStore], Path],
    repo_name: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from yardarm.errors import YardarmError
    from yardarm.progress import ProgressEvent
    from yardarm.push.pusher import Pusher, PushOptions
    from yardarm.reference import parse
    from yardarm.registry import Credentials, Registry, RegistryOptions
    from yardarm.store import Store

    password = registry_basic.users["pusher"]
    secrets = _secrets("pusher", password)
    store_path = copy_store(small_store)
    ref = f"{registry_basic.host}/{repo_name}:v1"
    tag(store_path, small_store.image_id, ref)
    creds = Credentials(username="pusher", password=password)
    options = PushOptions(
        registry=RegistryOptions(certs_dirs=(_certs(registry_basic, tmp_path),)),
        credentials=creds,
    )
    events: list[ProgressEvent] = []
    caplog.set_level(logging.DEBUG)
    with Store.open(store_path) as store, Pusher(store, options, progress=events.append) as p:
        results = p.push(parse(ref))
        reprs = [repr(p), repr(options), repr(creds), repr(results), repr(store)]
    registry = Registry(registry_basic.host, options.registry, creds)
    try:
        registry.ping()
        reprs += [repr(registry), str(registry), repr(registry.repository(repo_name))]
    finally:
        registry.close()
    bad = Credentials(username="pusher", password=password + "-wrong")
    failed = Registry(registry_basic.host, options.registry, bad)
    try:
        with pytest.raises(YardarmError) as info:
            failed.ping()
    finally:
        failed.close()
    error_text = f"{info.value!s} {info.value!r} {info.value.args!r}"
    log_text = "\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records)
    assert caplog.records, "DEBUG logging captured something"
    _assert_clean(log_text, secrets, "library DEBUG log")
    _assert_clean(repr(events), secrets, "progress events")
    _assert_clean("\n".join(reprs), secrets, "repr")
    _assert_clean(error_text, [*secrets, password + "-wrong"], "error")


class _PlainOnly:
    """A transport where the registry speaks plain HTTP only (TLS handshakes fail)."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def request(self, method: str, url: str, headers: object, body: object = None, **_: object):  # type: ignore[no-untyped-def]
        from yardarm.errors import TransportError
        from yardarm.registry.transport import Response

        self.urls.append(url)
        if url.startswith("https://"):
            raise TransportError("TLS handshake failed: wrong version number", url=url)
        return Response(200, {"Docker-Distribution-Api-Version": "registry/2.0"}, b"{}")

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("host", "named", "warned"),
    [
        ("registry.example:5000", True, True),
        ("10.1.2.3:5000", True, True),
        ("127.0.0.1:5000", False, False),  # loopback: docker's silent exception
    ],
)
def test_an_insecure_registry_is_announced_with_a_warning(
    host: str, named: bool, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    from yardarm.registry import Registry, RegistryOptions

    transport = _PlainOnly()
    options = RegistryOptions(
        insecure_registries=(host,) if named else (), transport=transport, sleep=lambda s: None
    )
    caplog.set_level(logging.WARNING)
    registry = Registry(host, options)
    try:
        registry.ping()
    finally:
        registry.close()
    assert transport.urls[-1] == f"http://{host}/v2/"
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    if warned:
        assert any(host in w and "insecure" in w and "plain HTTP" in w for w in warnings), warnings
    else:
        assert not warnings


def test_a_registry_nobody_named_insecure_is_never_tried_over_plain_http() -> None:
    from yardarm.errors import YardarmError
    from yardarm.registry import Registry, RegistryOptions

    transport = _PlainOnly()
    registry = Registry(
        "registry.example:5000", RegistryOptions(transport=transport, sleep=lambda s: None)
    )
    try:
        with pytest.raises(YardarmError):
            registry.ping()
    finally:
        registry.close()
    assert all(u.startswith("https://") for u in transport.urls)


def test_the_insecure_warning_reaches_stderr_without_debug(tmp_path: Path) -> None:
    """Library warnings print on stderr when the CLI configured no logging (lastResort)."""
    import subprocess
    import sys

    code = (
        "import logging; from yardarm.registry import _session\n"
        "_session.log.warning('registry %s is insecure: using %s', 'r.example', 'plain HTTP')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    assert "registry r.example is insecure: using plain HTTP" in proc.stderr
    del tmp_path
