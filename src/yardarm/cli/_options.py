"""Options every command that talks to a registry shares (login, logout, push, ...).

Kept in one place so ``--insecure-registry`` and ``--certs-dir`` mean the same thing everywhere;
the library import happens in :func:`registry_options_from_args`, not at module import, to keep
``yardarm --help`` fast.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from yardarm.registry import RegistryOptions

__all__ = ["add_registry_options", "registry_options_from_args"]

#: Comma- or space-separated ``host[:port]`` list, for CI jobs that cannot change argv.
INSECURE_ENV = "YARDARM_INSECURE_REGISTRIES"


def add_registry_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--insecure-registry`` and ``--certs-dir`` (both repeatable) to ``parser``."""
    group = parser.add_argument_group("registry connection")
    group.add_argument(
        "--insecure-registry",
        dest="insecure_registries",
        metavar="HOST[:PORT]",
        action="append",
        default=[],
        help="allow plain HTTP or unverified TLS for this registry (repeatable; also "
        f"${INSECURE_ENV}); loopback addresses are always allowed",
    )
    group.add_argument(
        "--certs-dir",
        dest="certs_dirs",
        metavar="DIR",
        action="append",
        default=[],
        help="extra folder laid out like /etc/docker/certs.d: DIR/HOST[:PORT]/*.crt, "
        "client.cert, client.key (repeatable)",
    )


def _insecure_hosts(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[str, ...]:
    named = list(getattr(args, "insecure_registries", None) or [])
    named += env.get(INSECURE_ENV, "").replace(",", " ").split()
    hosts: list[str] = []
    for raw in named:
        host = raw.strip()
        if host and host not in hosts:
            hosts.append(host)
    return tuple(hosts)


def registry_options_from_args(
    args: argparse.Namespace, env: Mapping[str, str] = os.environ
) -> RegistryOptions:
    """The library's connection options from what :func:`add_registry_options` parsed."""
    from yardarm.errors import UsageError
    from yardarm.registry import RegistryOptions

    dirs: list[Path] = []
    for raw in getattr(args, "certs_dirs", None) or []:
        path = Path(raw).expanduser()
        if not path.is_dir():
            raise UsageError(f"--certs-dir {raw}: not a folder")
        dirs.append(path)
    for host in _insecure_hosts(args, env):
        if "/" in host or not host.strip(":"):
            raise UsageError(f"--insecure-registry {host}: expected HOST[:PORT]")
    return RegistryOptions(insecure_registries=_insecure_hosts(args, env), certs_dirs=tuple(dirs))
