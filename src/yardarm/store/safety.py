"""Archive member names and links that stay inside their archive, or an UnsafeArchive error.

Nothing is ever extracted to disk by name; still, a member that tries to escape is a sign of a
hostile or broken input, and docker refuses such archives, so we refuse them too.
"""

from __future__ import annotations

import posixpath
import tarfile

from yardarm.errors import UnsafeArchive

__all__ = ["link_target", "normalise_member"]


def normalise_member(name: str) -> str:
    """``./a//b`` -> ``a/b``; absolute names, ``..`` components and NULs are refused."""
    if not name or "\0" in name:
        raise UnsafeArchive(f"member name {name!r} is empty or holds a NUL byte")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchive(f"member {name!r} has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(f"member {name!r} has a '..' component")
    if not parts:
        return "."
    return "/".join(parts)


def link_target(member: tarfile.TarInfo, name: str) -> str:
    """Where a symlink or hard link member points, inside the archive, or UnsafeArchive."""
    target = member.linkname
    if not target or "\0" in target:
        raise UnsafeArchive(f"link {name!r} has an empty target")
    if target.startswith("/"):
        raise UnsafeArchive(f"link {name!r} points outside the archive ({target!r})")
    base = posixpath.dirname(name) if member.issym() else ""
    joined = posixpath.normpath(posixpath.join(base, target))
    if joined == ".." or joined.startswith("../") or joined.startswith("/"):
        raise UnsafeArchive(f"link {name!r} points outside the archive ({target!r})")
    return normalise_member(joined)
