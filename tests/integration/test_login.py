"""`yardarm login` / `logout` against the real registry: verified, stored as docker does, no leaks.

The CLI runs as a subprocess (what users run); the stored result is read back three ways: the
file itself, yardarm's own lookup (a Registry built without credentials), and skopeo.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.registry import RunningRegistry
from yardarm.errors import AuthenticationError, YardarmError
from yardarm.registry import Registry, RegistryOptions
from yardarm.registry.credentials import Credentials, lookup_credentials

pytestmark = pytest.mark.registry

HELPERS = Path(__file__).resolve().parents[1] / "helpers"
WRONG = "Wr0ng-Pa55-not-the-real-one"


@dataclass
class Cli:
    """Runs `yardarm` with its own DOCKER_CONFIG and, optionally, the test helper on PATH."""

    config_dir: Path
    helper_store: Path
    certs_dir: Path | None = None

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.json"

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("YARDARM_DEBUG", None)
        env.update(
            DOCKER_CONFIG=str(self.config_dir),
            PATH=f"{HELPERS}{os.pathsep}{env.get('PATH', '')}",
            YARDARM_TEST_CREDS=str(self.helper_store),
        )
        env.update(extra or {})
        return env

    def run(
        self, *args: str, stdin: str = "", extra_env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        certs = ["--certs-dir", str(self.certs_dir)] if self.certs_dir else []
        if args and args[0] == "login":
            args = (args[0], *certs, *args[1:])
        return subprocess.run(
            [sys.executable, "-m", "yardarm", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env(extra_env),
            timeout=60,
            check=False,
        )

    def helper_log(self) -> list[str]:
        log = Path(str(self.helper_store) + ".log")
        return log.read_text().splitlines() if log.exists() else []

    def options(self) -> RegistryOptions:
        return RegistryOptions(
            docker_config_dir=self.config_dir,
            certs_dirs=(self.certs_dir,) if self.certs_dir else (),
        )


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(config_dir=tmp_path / "docker-config", helper_store=tmp_path / "helper.json")


def certs_dir_for(reg: RunningRegistry, base: Path) -> Path:
    """An /etc/docker/certs.d-style folder trusting the registry's throwaway CA."""
    assert reg.ca_path is not None
    folder = base / "certs.d"
    (folder / reg.host).mkdir(parents=True, exist_ok=True)
    shutil.copy(reg.ca_path, folder / reg.host / "ca.crt")
    return folder


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def assert_one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("yardarm: error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def ping_with_stored(reg: RunningRegistry, cli: Cli) -> None:
    registry = Registry(reg.host, cli.options())  # credentials=None: looked up like docker
    try:
        registry.ping()
    finally:
        registry.close()


@pytest.fixture
def basic(registry_basic: RunningRegistry, cli: Cli, tmp_path: Path) -> Iterator[RunningRegistry]:
    cli.certs_dir = certs_dir_for(registry_basic, tmp_path)
    yield registry_basic


# -- basic auth ---------------------------------------------------------------------------------


def test_login_logout_round_trip_stores_docker_compatible_0600_file(
    basic: RunningRegistry, cli: Cli
) -> None:
    password = basic.users["pusher"]
    proc = cli.run("login", "-u", "pusher", "--password-stdin", basic.host, stdin=password + "\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Login Succeeded\n"
    assert "stored unencrypted" in proc.stderr
    assert stat.S_IMODE(cli.config_file.stat().st_mode) == 0o600
    data = json.loads(cli.config_file.read_text())
    assert data == {"auths": {basic.host: {"auth": b64(f"pusher:{password}")}}}

    ping_with_stored(basic, cli)  # yardarm's own lookup reads what login wrote
    skopeo = subprocess.run(
        ["skopeo", "login", "--get-login", "--authfile", str(cli.config_file), basic.host],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (skopeo.returncode, skopeo.stdout.strip()) == (0, "pusher"), skopeo.stderr

    # Plain `login SERVER` re-checks the stored credentials, as docker does.
    again = cli.run("login", basic.host)
    assert (again.returncode, again.stdout) == (0, "Login Succeeded\n"), again.stderr

    out = cli.run("logout", basic.host)
    assert (out.returncode, out.stdout) == (0, f"Removing login credentials for {basic.host}\n")
    assert json.loads(cli.config_file.read_text()) == {"auths": {}}
    assert stat.S_IMODE(cli.config_file.stat().st_mode) == 0o600
    with pytest.raises(AuthenticationError):
        ping_with_stored(basic, cli)
    out = cli.run("logout", basic.host)
    assert (out.returncode, out.stdout) == (0, f"Not logged in to {basic.host}\n")


def test_login_keeps_other_settings_and_servers_in_config(basic: RunningRegistry, cli: Cli) -> None:
    cli.config_dir.mkdir()
    cli.config_file.write_text(
        json.dumps({"auths": {"other.example:5000": {"auth": b64("x:y")}}, "detachKeys": "ctrl-e"})
    )
    proc = cli.run(
        "login", "-u", "reader", "--password-stdin", basic.host, stdin=basic.users["reader"]
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(cli.config_file.read_text())
    assert data["detachKeys"] == "ctrl-e"
    assert data["auths"]["other.example:5000"] == {"auth": b64("x:y")}
    assert lookup_credentials(basic.host, cli.config_dir).username == "reader"


def test_wrong_password_is_one_line_error_and_stores_nothing(
    basic: RunningRegistry, cli: Cli
) -> None:
    cli.config_dir.mkdir()
    cli.config_file.write_text(json.dumps({"auths": {basic.host: {"auth": b64("old:login")}}}))
    before = cli.config_file.read_bytes()
    proc = cli.run("login", "-u", "pusher", "--password-stdin", basic.host, stdin=WRONG)
    line = assert_one_line_error(proc)
    assert "401" in line
    assert f"login to {basic.host} failed" in line
    assert WRONG not in proc.stderr + proc.stdout
    assert "Login Succeeded" not in proc.stdout
    assert cli.config_file.read_bytes() == before


def test_password_on_the_command_line_warns(basic: RunningRegistry, cli: Cli) -> None:
    # `--password=` form: a generated password may start with "-".
    proc = cli.run("login", "-u", "pusher", f"--password={basic.users['pusher']}", basic.host)
    assert proc.returncode == 0, proc.stderr
    assert "Using --password via the CLI is insecure. Use --password-stdin." in proc.stderr
    assert basic.users["pusher"] not in proc.stderr + proc.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("login", "--password-stdin"),  # no username
        ("login", "-p", "x"),  # no username
        ("login", "-u", "pusher"),  # no password and no terminal
        ("login", "--insecure-registry", "a/b", "-u", "pusher", "-p", "x"),
    ],
)
def test_login_usage_errors_exit_2_in_one_line(
    basic: RunningRegistry, cli: Cli, args: tuple[str, ...]
) -> None:
    proc = cli.run(*args, basic.host)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("yardarm: error:") == 1
    assert not cli.config_file.exists()


def test_login_to_unreachable_registry_fails_cleanly(cli: Cli) -> None:
    proc = cli.run("login", "-u", "a", "--password-stdin", "127.0.0.1:9", stdin="pw")
    assert_one_line_error(proc)
    assert not cli.config_file.exists()


# -- token auth ---------------------------------------------------------------------------------


def test_token_mode_login_verifies_against_the_token_server(
    registry_token: RunningRegistry, cli: Cli
) -> None:
    reg = registry_token
    bad = cli.run("login", "-u", "reader", "--password-stdin", reg.host, stdin=WRONG)
    assert_one_line_error(bad)
    assert not cli.config_file.exists()
    good = cli.run("login", "-u", "reader", "--password-stdin", reg.host, stdin=reg.users["reader"])
    assert (good.returncode, good.stdout) == (0, "Login Succeeded\n"), good.stderr
    assert lookup_credentials(reg.host, cli.config_dir) == Credentials(
        "reader", reg.users["reader"]
    )
    ping_with_stored(reg, cli)


# -- credential helpers -------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["credsStore", "credHelpers"])
def test_credential_helper_on_path_is_used_to_store_get_and_erase(
    basic: RunningRegistry, cli: Cli, how: str
) -> None:
    cli.config_dir.mkdir()
    config: dict[str, object] = (
        {"credsStore": "yardarmtest"}
        if how == "credsStore"
        else {"credHelpers": {basic.host: "yardarmtest"}}
    )
    cli.config_file.write_text(json.dumps(config))
    password = basic.users["pusher"]
    proc = cli.run("login", "-u", "pusher", "--password-stdin", basic.host, stdin=password)
    assert (proc.returncode, proc.stdout) == (0, "Login Succeeded\n"), proc.stderr
    assert "stored unencrypted" not in proc.stderr
    held = json.loads(cli.helper_store.read_text())
    assert held[basic.host] == {"ServerURL": basic.host, "Username": "pusher", "Secret": password}
    file_text = cli.config_file.read_text()
    assert password not in file_text
    assert b64(f"pusher:{password}") not in file_text

    with pytest.MonkeyPatch.context() as mp:  # the in-process lookup spawns the helper too
        mp.setenv("YARDARM_TEST_CREDS", str(cli.helper_store))
        mp.setenv("PATH", f"{HELPERS}{os.pathsep}{os.environ['PATH']}")
        ping_with_stored(basic, cli)

    out = cli.run("logout", basic.host)
    assert out.stdout == f"Removing login credentials for {basic.host}\n", out.stderr
    assert basic.host not in json.loads(cli.helper_store.read_text())
    assert cli.helper_log() == [
        f"store {basic.host}",
        f"get {basic.host}",
        f"erase {basic.host}",
    ]


def test_failing_helper_store_is_one_line_without_the_secret(
    basic: RunningRegistry, cli: Cli
) -> None:
    cli.config_dir.mkdir()
    cli.config_file.write_text(json.dumps({"credsStore": "yardarmtest"}))
    password = basic.users["pusher"]
    proc = cli.run(
        "login",
        "-u",
        "pusher",
        "--password-stdin",
        basic.host,
        stdin=password,
        extra_env={"YARDARM_TEST_CREDS_FAIL": "store"},
    )
    line = assert_one_line_error(proc)
    assert "docker-credential-yardarmtest store failed" in line
    assert password not in proc.stderr + proc.stdout


# -- no secret anywhere -------------------------------------------------------------------------


def test_secrets_never_appear_in_output_errors_logs_or_reprs(
    basic: RunningRegistry, cli: Cli, caplog: pytest.LogCaptureFixture
) -> None:
    password = basic.users["pusher"]
    secrets = {password, WRONG, b64(f"pusher:{password}"), b64(f"pusher:{WRONG}")}
    seen: list[str] = []

    # Every CLI channel, with --debug too (tracebacks are where secrets usually leak).
    for debug in ((), ("--debug",)):
        for stdin in (password, WRONG):
            proc = cli.run(
                *debug, "login", "-u", "pusher", "--password-stdin", basic.host, stdin=stdin
            )
            seen += [proc.stdout, proc.stderr]
        proc = cli.run(*debug, "login", "-u", "pusher", "-p", WRONG, basic.host)
        seen += [proc.stdout, proc.stderr]
        proc = cli.run(*debug, "logout", basic.host)
        seen += [proc.stdout, proc.stderr]

    # The library in-process: reprs, exception text and args, every log record at DEBUG.
    caplog.set_level(logging.DEBUG)
    for creds in (Credentials("pusher", password), Credentials("pusher", WRONG)):
        registry = Registry(basic.host, cli.options(), creds)
        seen += [repr(registry), str(registry), repr(creds), str(creds), repr(registry.credentials)]
        try:
            registry.ping()
        except YardarmError as exc:
            seen += [str(exc), repr(exc), repr(exc.args), repr(vars(exc))]
        finally:
            registry.close()
    seen += [r.getMessage() for r in caplog.records]
    seen += [repr(r.args) for r in caplog.records]

    text = "\n".join(seen)
    assert "Login Succeeded" in text and "401" in text  # the channels were really exercised
    for secret in secrets:
        assert secret not in text
