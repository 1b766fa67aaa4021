"""The login/logout CLI and the shared registry options, without a registry."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from yardarm.cli import main
from yardarm.cli._options import add_registry_options, registry_options_from_args
from yardarm.errors import UsageError


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_registry_options(parser)
    return parser.parse_args(argv)


def test_registry_options_merge_flags_and_environment(tmp_path: Path) -> None:
    args = parse(
        "--insecure-registry", "a.example:5000", "--certs-dir", str(tmp_path),
        "--insecure-registry", "b.example",
    )  # fmt: skip
    env = {"YARDARM_INSECURE_REGISTRIES": "c.example, a.example:5000 d.example"}
    options = registry_options_from_args(args, env)
    assert options.insecure_registries == ("a.example:5000", "b.example", "c.example", "d.example")
    assert options.certs_dirs == (tmp_path,)
    assert registry_options_from_args(parse(), {}).insecure_registries == ()


def test_registry_options_reject_bad_values(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a folder"):
        registry_options_from_args(parse("--certs-dir", str(tmp_path / "missing")), {})
    with pytest.raises(UsageError, match="HOST"):
        registry_options_from_args(parse("--insecure-registry", "http://x/y"), {})


def test_logout_when_not_logged_in_and_after_login_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert main(["logout", "localhost:5000"]) == 0
    assert capsys.readouterr().out == "Not logged in to localhost:5000\n"
    (tmp_path / "config.json").write_text(
        json.dumps({"auths": {"https://localhost:5000": {"auth": "YTpi"}}})
    )
    assert main(["logout", "https://localhost:5000/"]) == 0
    assert capsys.readouterr().out == "Removing login credentials for localhost:5000\n"
    assert json.loads((tmp_path / "config.json").read_text()) == {"auths": {}}


def test_logout_docker_hub_uses_the_historic_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    (tmp_path / "config.json").write_text(
        json.dumps({"auths": {"https://index.docker.io/v1/": {"auth": "YTpi"}}})
    )
    assert main(["logout"]) == 0
    assert capsys.readouterr().out == "Removing login credentials for https://index.docker.io/v1/\n"


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (
            ["login", "--password-stdin", "localhost:5000"],
            "pw",
            "--password-stdin needs --username",
        ),
        (["login", "-u", "a", "--password-stdin", "localhost:5000"], "\n", "empty password"),
        (["login", "-u", "a", "localhost:5000"], "", "no password given"),
        (["login", "localhost:5000"], "", "not logged in"),
    ],
)
def test_login_usage_errors_before_any_network(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    stdin: str,
    message: str,
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("yardarm: error: ")
    assert message in err
    assert not (tmp_path / "config.json").exists()


def test_login_with_malformed_config_is_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    (tmp_path / "config.json").write_text("{not json")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["login", "localhost:5000"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert str(tmp_path / "config.json") in err
