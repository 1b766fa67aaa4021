"""Run skopeo against the test registries: the independent reader and writer tests compare with."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from support.registry import RunningRegistry


def cert_dir(reg: RunningRegistry) -> Path:
    """A directory holding only the registry's CA: skopeo's --*-cert-dir would also try to pair
    server.key with a client certificate and fail."""
    path = reg.dir / "skopeo-certs"
    if reg.ca_path is not None and not (path / "ca.crt").exists():
        path.mkdir(exist_ok=True)
        shutil.copy(reg.ca_path, path / "ca.crt")
    return path


def registry_flags(reg: RunningRegistry, side: str, user: str | None = None) -> list[str]:
    """skopeo flags to reach `reg` as --src-*, --dest-* or plain (`side` ""), maybe logged in."""
    pre = f"--{side}-" if side else "--"
    flags = []
    if reg.scheme == "https":
        flags.append(f"{pre}cert-dir={cert_dir(reg)}")
    else:
        flags.append(f"{pre}tls-verify=false")
    if user is not None:
        flags.append(f"{pre}creds={user}:{reg.users[user]}")
    else:
        flags.append(f"{pre}no-creds")
    return flags


def run(args: Sequence[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["skopeo", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        # Drop credentials from the message: tests print it on failure.
        shown = [a.split("=", 1)[0] + "=***" if "creds=" in a else a for a in args]
        raise AssertionError(f"skopeo {' '.join(shown)} failed:\n{proc.stderr.strip()}")
    return proc


def copy_to_registry(
    src: str,
    reg: RunningRegistry,
    repo: str,
    tag: str = "latest",
    *,
    user: str | None = None,
    all_platforms: bool = False,
    extra: Sequence[str] = (),
) -> None:
    """`skopeo copy SRC docker://REG/REPO:TAG`, keeping digests (no format conversion asked)."""
    args = ["copy", "--retry-times=0", *registry_flags(reg, "dest", user)]
    if all_platforms:
        args.append("--all")
    run([*args, *extra, src, f"docker://{reg.host}/{repo}:{tag}"])


def inspect(ref: str, *, raw: bool = False, config: bool = False) -> object:
    args = ["inspect"]
    if raw:
        args.append("--raw")
    if config:
        args.append("--config")
    return json.loads(run([*args, ref]).stdout)


def inspect_registry(
    reg: RunningRegistry, repo: str, tag: str, *, user: str | None = None, raw: bool = True
) -> object:
    args = ["inspect", *registry_flags(reg, "", user), *(["--raw"] if raw else [])]
    return json.loads(run([*args, f"docker://{reg.host}/{repo}:{tag}"]).stdout)
