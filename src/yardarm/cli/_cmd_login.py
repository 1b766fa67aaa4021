"""``yardarm login``: check credentials against a registry, then keep them where docker does."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING

from yardarm.cli._options import add_registry_options, registry_options_from_args

if TYPE_CHECKING:
    from yardarm.registry import RegistryOptions
    from yardarm.registry.credentials import Credentials

__all__ = ["register", "run"]

INSECURE_PASSWORD_WARNING = "Using --password via the CLI is insecure. Use --password-stdin."


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "login",
        help="log in to a registry",
        description="Verify credentials against a registry and store them as docker does "
        "(credential helper if configured, else config.json with mode 0600).",
    )
    parser.add_argument("-u", "--username", metavar="USER", default=None)
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument("-p", "--password", metavar="PASS", default=None)
    secret.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    parser.add_argument(
        "server",
        metavar="SERVER",
        nargs="?",
        default="docker.io",
        help="registry host[:port] (default: docker.io)",
    )
    add_registry_options(parser)
    parser.set_defaults(run=run)


def registry_host(server: str) -> str:
    """The host to talk to for a login SERVER, which may be written as a URL."""
    from yardarm.registry.credentials import DOCKER_HUB_KEY, config_key

    key = config_key(server)
    return "registry-1.docker.io" if key == DOCKER_HUB_KEY else key


def _read_password_stdin() -> str:
    data = sys.stdin.read()
    # docker strips one trailing newline only; a password may end in other whitespace.
    if data.endswith("\n"):
        data = data[:-1]
    if data.endswith("\r"):
        data = data[:-1]
    return data


def _credentials(args: argparse.Namespace) -> Credentials | None:
    """The credentials to try, or None to re-check the stored ones (docker's plain `login`)."""
    from yardarm.errors import UsageError
    from yardarm.registry.credentials import Credentials

    username: str | None = args.username
    if args.password_stdin:
        if not username:
            raise UsageError("--password-stdin needs --username")
        password = _read_password_stdin()
    elif args.password is not None:
        sys.stderr.write(f"yardarm: warning: {INSECURE_PASSWORD_WARNING}\n")
        if not username:
            raise UsageError("--password needs --username")
        password = args.password
    elif username is None:
        return None
    else:
        password = _prompt_password()
    if not password:
        raise UsageError("empty password")
    return Credentials(username=username, password=password)


def _prompt_password() -> str:
    from yardarm.errors import UsageError

    if not sys.stdin.isatty():
        raise UsageError("no password given: use --password-stdin or a terminal")
    return getpass.getpass("Password: ")


def _prompt_username() -> str:
    from yardarm.errors import UsageError

    if not sys.stdin.isatty():
        raise UsageError("not logged in: give --username and --password-stdin")
    return input("Username: ").strip()


def run(args: argparse.Namespace) -> int:
    from yardarm.registry.credentials import (
        credential_helper_name,
        docker_config_dir,
        lookup_credentials,
        store_credentials,
    )

    options = registry_options_from_args(args)
    host = registry_host(args.server)
    creds = _credentials(args)
    if creds is None:
        stored = lookup_credentials(args.server)
        if not stored.anonymous:
            # As docker does: with nothing given, just prove the stored login still works.
            _verify(host, options, stored)
            sys.stdout.write("Login Succeeded\n")
            return 0
        args.username = _prompt_username()
        creds = _credentials(args)
        assert creds is not None
    _verify(host, options, creds)
    store_credentials(args.server, creds)
    if credential_helper_name(args.server) is None:
        where = docker_config_dir() / "config.json"
        sys.stderr.write(
            f"yardarm: warning: your password is stored unencrypted in {where}; "
            "configure a credential helper to avoid this\n"
        )
    sys.stdout.write("Login Succeeded\n")
    return 0


def _verify(host: str, options: RegistryOptions, creds: Credentials) -> None:
    from yardarm.errors import AuthenticationError
    from yardarm.registry import Registry

    registry = Registry(host, options, creds)
    try:
        registry.ping()
    except AuthenticationError as exc:
        raise AuthenticationError(
            exc.status,
            exc.code,
            f"login to {host} failed: {exc.message or 'unauthorized'}",
            detail=exc.detail,
            method=exc.method,
            url=exc.url,
        ) from None
    finally:
        registry.close()
