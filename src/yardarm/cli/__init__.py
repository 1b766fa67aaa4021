"""The command line: the only code that parses argv, prints, or exits.

Each command lives in its own module ``_cmd_<name>.py`` with ``register(subparsers)`` and
``run(args) -> int``; :data:`COMMANDS` lists them. Command modules import the library inside
``run`` so that ``yardarm --help`` and ``--version`` stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Final

from yardarm._version import __version__

__all__ = ["COMMANDS", "main"]

#: Command name -> module under ``yardarm.cli`` that implements it, in ``--help`` order.
COMMANDS: Final[dict[str, str]] = {
    "push": "_cmd_push",
    "login": "_cmd_login",
    "logout": "_cmd_logout",
    "load": "_cmd_load",
    "import": "_cmd_import",
    "images": "_cmd_images",
    "tag": "_cmd_tag",
    "rmi": "_cmd_rmi",
    "inspect": "_cmd_inspect",
    "prune": "_cmd_prune",
}

EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"yardarm: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="yardarm",
        description="Push container images to Docker/OCI v2 registries, without a daemon.",
    )
    parser.add_argument("--version", action="version", version=f"yardarm {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument(
        "--store",
        metavar="DIR",
        default=None,
        help="local image store folder (default: $YARDARM_STORE or the user data folder)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module in COMMANDS.items():
        mod = importlib.import_module(f"yardarm.cli.{module}")
        mod.register(sub)
        del name
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``yardarm`` console script; returns the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    debug = bool(args.debug) or os.environ.get("YARDARM_DEBUG") == "1"
    if debug:  # --debug promises debug logs: the library logs, only the CLI may print them
        import logging

        logging.basicConfig(
            level=logging.DEBUG, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
        )
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        sys.stderr.write("yardarm: interrupted\n")
        return EXIT_INTERRUPTED
    except BaseException as exc:  # every error becomes one line, unless --debug
        if isinstance(exc, SystemExit):
            raise
        if debug:
            raise
        return _report(exc)


def _report(exc: BaseException) -> int:
    from yardarm.errors import Cancelled, UsageError, YardarmError

    if isinstance(exc, Cancelled):
        sys.stderr.write(f"yardarm: {exc}\n")
        return EXIT_INTERRUPTED
    if isinstance(exc, YardarmError):
        message = str(exc)
    elif isinstance(exc, OSError):
        what = f"{exc.filename}: " if exc.filename else ""
        message = f"{what}{exc.strerror or exc}"
    else:
        message = f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)"
    message = " ".join(message.split())  # one line, always
    sys.stderr.write(f"yardarm: error: {message}\n")
    return EXIT_USAGE if isinstance(exc, UsageError) else EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
