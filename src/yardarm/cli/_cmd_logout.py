"""``yardarm logout``: forget a registry's credentials wherever docker would have kept them."""

from __future__ import annotations

import argparse
import sys

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "logout",
        help="log out from a registry",
        description="Remove stored credentials for SERVER (credential helper or config.json).",
    )
    parser.add_argument(
        "server",
        metavar="SERVER",
        nargs="?",
        default="docker.io",
        help="registry host[:port] (default: docker.io)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from yardarm.registry.credentials import config_key, erase_credentials

    key = config_key(args.server)
    if erase_credentials(args.server):
        sys.stdout.write(f"Removing login credentials for {key}\n")
    else:
        sys.stdout.write(f"Not logged in to {key}\n")
    return 0
