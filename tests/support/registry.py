"""Drive the real registry through `scripts/registry`, and read what it logged.

The script is the single place that knows how to configure `docker-registry`; the fixtures only
call it, so a developer can start the very same registry by hand to reproduce a failing test.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import hashlib
import http.client
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from support.imagegen import GeneratedImage
    from support.tokenserver import TokenServer

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "registry"
MODES = ("plain", "tls", "basic", "token", "schema1")
TOKEN_SERVICE = "yardarm-test-registry"
TOKEN_ISSUER = "yardarm-test-issuer"

# Gorilla's combined log format, which the registry writes for every request it served.
_ACCESS_RE = re.compile(
    r"^(?P<remote>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "
    r'"(?P<method>[A-Z]+) (?P<target>\S+) (?P<proto>[^"]+)" '
    r'(?P<status>\d{3}) (?P<size>\d+|-) "(?P<referer>[^"]*)" "(?P<agent>[^"]*)"$'
)


class RegistryStartError(RuntimeError):
    """The registry could not be started: tests using it must error, never skip."""


@dataclass(frozen=True)
class AccessEntry:
    """One request as the registry's access log recorded it.

    The registry does not log request body sizes, so bytes received are not available here;
    assert on uploaded sizes through the stored blobs instead.
    """

    remote: str
    time: str
    method: str
    path: str
    query: str
    protocol: str
    status: int
    bytes_sent: int
    referer: str
    user_agent: str

    @property
    def target(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path


def parse_access_line(line: str) -> AccessEntry | None:
    m = _ACCESS_RE.match(line.rstrip("\r\n"))
    if m is None:
        return None
    path, _, query = m["target"].partition("?")
    size = m["size"]
    return AccessEntry(
        remote=m["remote"],
        time=m["time"],
        method=m["method"],
        path=path,
        query=query,
        protocol=m["proto"],
        status=int(m["status"]),
        bytes_sent=0 if size == "-" else int(size),
        referer=m["referer"],
        user_agent=m["agent"],
    )


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]  # lower-cased names; repeated headers joined with ", "
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


def _script(*args: str) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        raise RegistryStartError(
            f"scripts/registry {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr.strip()}"
        )
    out = proc.stdout.strip()
    return json.loads(out.splitlines()[-1]) if out else {}


@dataclass
class RunningRegistry:
    """A live `docker-registry` on 127.0.0.1 and everything a test needs to talk to it."""

    mode: str
    dir: Path
    port: int
    pid: int
    url: str  # scheme://127.0.0.1:PORT, no trailing slash
    ca_path: Path | None
    users: dict[str, str] = field(repr=False)
    token_server: TokenServer | None = None
    stopped: bool = False

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    @property
    def log_path(self) -> Path:
        return self.dir / "registry.log"

    @property
    def storage(self) -> Path:
        return self.dir / "storage"

    def _update(self, state: Mapping[str, object]) -> None:
        self.pid = int(str(state["pid"]))
        self.port = int(str(state["port"]))
        self.url = str(state["url"])

    def ssl_context(self) -> ssl.SSLContext | None:
        """A context trusting only this registry's throwaway CA (None over plain HTTP)."""
        if self.scheme != "https":
            return None
        return ssl.create_default_context(cafile=str(self.ca_path) if self.ca_path else None)

    def log_mark(self) -> int:
        """A position in the log: pass it to access_log/log_text to see only what follows."""
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_text(self, since: int | None = None) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since or 0)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def access_log(self, since: int | None = None) -> list[AccessEntry]:
        """Requests the registry served, oldest first (after `since`, a `log_mark()`)."""
        entries = []
        for line in self.log_text(since).splitlines():
            entry = parse_access_line(line)
            if entry is not None:
                entries.append(entry)
        return entries

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | BinaryIO | None = None,
        verify: bool = True,
        timeout: float = 30.0,
    ) -> Response:
        """One raw HTTP request, for tests that must not depend on yardarm's own client."""
        conn: http.client.HTTPConnection
        if self.scheme == "https":
            ctx = self.ssl_context() if verify else ssl._create_unverified_context()
            conn = http.client.HTTPSConnection(
                self.host, timeout=timeout, context=ctx, blocksize=1 << 20
            )
        else:
            conn = http.client.HTTPConnection(self.host, timeout=timeout, blocksize=1 << 20)
        try:
            conn.request(method, path, body=body, headers=dict(headers or {}))
            resp = conn.getresponse()
            data = resp.read()
            hdrs: dict[str, str] = {}
            for k, v in resp.getheaders():
                key = k.lower()
                hdrs[key] = f"{hdrs[key]}, {v}" if key in hdrs else v
            return Response(resp.status, hdrs, data)
        finally:
            conn.close()

    def auth_headers(
        self, user: str | None = "pusher", scopes: Sequence[str] = ()
    ) -> dict[str, str]:
        """Headers that authenticate `user` here: Basic in basic mode, a Bearer token for
        `scopes` (e.g. "repository:t/x:pull,push") in token mode, nothing otherwise."""
        if user is None or self.mode not in ("basic", "token"):
            return {}
        if self.token_server is not None:
            return {"Authorization": f"Bearer {self.token_server.get_token(user, scopes)}"}
        basic = base64.b64encode(f"{user}:{self.users[user]}".encode()).decode()
        return {"Authorization": f"Basic {basic}"}

    def upload_blob(
        self,
        repo: str,
        data: bytes | Path,
        *,
        digest: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """Store a blob (POST, then one PUT with the body, streamed from a Path); returns its
        digest. Raw HTTP, so tests can seed a registry without yardarm or skopeo."""
        if digest is None:
            if isinstance(data, Path):
                with open(data, "rb") as f:
                    digest = "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()
            else:
                digest = "sha256:" + hashlib.sha256(data).hexdigest()
        started = self.request("POST", f"/v2/{repo}/blobs/uploads/", headers=headers)
        if started.status != 202:
            raise AssertionError(f"upload start in {repo} answered {started.status}")
        location = urlsplit(started.headers["location"])
        query = f"{location.query}&digest={digest}" if location.query else f"digest={digest}"
        hdrs = {"Content-Type": "application/octet-stream", **(headers or {})}
        target = f"{location.path}?{query}"
        if isinstance(data, Path):
            hdrs["Content-Length"] = str(data.stat().st_size)
            with open(data, "rb") as body:
                resp = self.request("PUT", target, headers=hdrs, body=body)
        else:
            resp = self.request("PUT", target, headers=hdrs, body=data)
        if resp.status != 201:
            raise AssertionError(f"blob upload to {repo} answered {resp.status}: {resp.body!r}")
        return digest

    def put_manifest(
        self,
        repo: str,
        ref: str,
        data: bytes,
        media_type: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """PUT a manifest; returns the registry's Docker-Content-Digest."""
        hdrs = {"Content-Type": media_type, **(headers or {})}
        resp = self.request("PUT", f"/v2/{repo}/manifests/{ref}", headers=hdrs, body=data)
        if resp.status != 201:
            raise AssertionError(f"manifest PUT {repo}:{ref} answered {resp.status}: {resp.body!r}")
        return resp.headers["docker-content-digest"]

    def seed_image(
        self,
        repo: str,
        image: GeneratedImage,
        tag: str = "latest",
        *,
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """Push a generated OCI layout with raw HTTP (blobs, manifests, then the index), skipping
        foreign layers like real clients; returns the tagged digest."""
        if image.kind != "oci":
            raise ValueError("seed_image pushes OCI layouts (their blobs are files)")
        for im in image.images:
            for layer in im.layers:
                if not layer.urls and layer.path is not None:
                    self.upload_blob(repo, layer.path, digest=layer.digest, headers=headers)
            self.upload_blob(repo, im.config_bytes, headers=headers)
            ref = tag if image.index_bytes is None else im.manifest_digest
            self.put_manifest(repo, ref, im.manifest_bytes, im.manifest_media_type, headers=headers)
        if image.index_bytes is not None and image.index_media_type is not None:
            self.put_manifest(repo, tag, image.index_bytes, image.index_media_type, headers=headers)
        return image.digest

    def alive(self) -> bool:
        """Whether the registry process still runs (a zombie counts as dead)."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{self.pid}/stat").read_text()
            return stat.rsplit(")", 1)[1].split()[0] != "Z"
        return True

    def restart(self) -> None:
        """Stop and start again: same port, storage and http.secret (open uploads survive)."""
        self._update(_script("restart", "--dir", str(self.dir)))
        self.stopped = False

    def stop(self) -> None:
        if not self.stopped:
            _script("stop", "--dir", str(self.dir))
            self.stopped = True

    def kill(self) -> None:
        """SIGKILL without grace, for crash tests; `restart()` brings it back."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)


def start_registry(
    mode: str, directory: Path, *, token_server: TokenServer | None = None, port: int = 0
) -> RunningRegistry:
    """Start a registry in `directory` (config, storage and log live there)."""
    if mode not in MODES:
        raise ValueError(f"unknown registry mode {mode!r}")
    directory.mkdir(parents=True, exist_ok=True)
    # The watchdog stops the registry if this test process dies without cleaning up.
    args = ["start", "--mode", mode, "--dir", str(directory), "--owner-pid", str(os.getpid())]
    if port:
        args += ["--port", str(port)]
    if mode == "token":
        if token_server is None:
            raise ValueError("token mode needs a token server")
        args += [
            "--realm", token_server.realm,
            "--service", token_server.service,
            "--issuer", token_server.issuer,
            "--token-certs", str(token_server.cert_path),
        ]  # fmt: skip
    state = _script(*args)
    raw_users = state.get("users")
    users = {str(k): str(v) for k, v in raw_users.items()} if isinstance(raw_users, dict) else {}
    if token_server is not None:
        users = dict(token_server.users)
    ca = state.get("ca")
    return RunningRegistry(
        mode=mode,
        dir=directory,
        port=int(str(state["port"])),
        pid=int(str(state["pid"])),
        url=str(state["url"]),
        ca_path=Path(str(ca)) if ca else None,
        users=users,
        token_server=token_server,
    )


class RegistryPool:
    """Every registry this test session started, so none outlives it (atexit as a backstop)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.registries: list[RunningRegistry] = []
        self.token_servers: list[TokenServer] = []
        atexit.register(self.stop_all)

    def add(self, reg: RunningRegistry) -> RunningRegistry:
        with self._lock:
            self.registries.append(reg)
        return reg

    def add_token_server(self, server: TokenServer) -> TokenServer:
        with self._lock:
            self.token_servers.append(server)
        return server

    def stop_all(self) -> None:
        with self._lock:
            regs, servers = list(self.registries), list(self.token_servers)
        for reg in regs:
            with contextlib.suppress(Exception):
                reg.stop()
        for server in servers:
            with contextlib.suppress(Exception):
                server.stop()
