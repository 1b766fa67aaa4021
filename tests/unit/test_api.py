"""The public API is what __all__ says, and the CLI behaves like a careful tool."""

from __future__ import annotations

import subprocess
import sys

import pytest

import yardarm
from yardarm.cli import main

PUBLIC_API = sorted(["Digest", "Reference", "YardarmError", "__version__", "parse"])


def test_public_api_is_pinned() -> None:
    """Growing the API is a decision: this list changes only on purpose."""
    assert sorted(yardarm.__all__) == PUBLIC_API
    for name in yardarm.__all__:
        assert hasattr(yardarm, name), name


def test_version_prints_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"yardarm {yardarm.__version__}"


def test_unknown_command_is_a_one_line_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["no-such-command"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("yardarm: error:")
    assert err.count("\n") == 1


def test_no_command_shows_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: yardarm" in capsys.readouterr().err


def test_console_script_help_lists_commands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "yardarm", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "usage: yardarm" in out
    from yardarm.cli import COMMANDS

    for name in COMMANDS:
        assert name in out


def test_startup_does_not_import_heavy_modules() -> None:
    code = (
        "import sys; from yardarm.cli import build_parser; build_parser(); "
        "heavy = [m for m in ('http.client', 'ssl', 'sqlite3', 'isal', 'zstandard', 'rich', "
        "'cryptography') if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
