"""Which known blob digests to check or mount, in which order, and how many.

Ported from moby's v2 pusher (2016): small layers get fewer round trips than big ones because a
round trip can cost more than the upload; candidates are ranked by whether they were recorded
with the same credentials (HMAC), then by how many leading path components their repository
shares with the target, then by age (newest first).

One deliberate difference from the seed: a mount is never tried from an entry whose HMAC belongs
to other credentials, so one account's history cannot steer another account's mounts (the
seed only ranked such entries lower). Existence checks in the target repository still use them:
a HEAD reveals nothing the target's own permissions do not already allow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol, TypeVar

from yardarm.digest import Digest

__all__ = [
    "MIDDLE_LAYER_MAX",
    "SMALL_LAYER_MAX",
    "Limits",
    "MetadataEntry",
    "existence_candidates",
    "limits_for_size",
    "mount_candidates",
    "rank",
]

SMALL_LAYER_MAX: Final = 100 * 1024
MIDDLE_LAYER_MAX: Final = 10 * 1024 * 1024


class MetadataEntry(Protocol):
    """What ranking needs of a v2 metadata entry (the store's ``V2Metadata`` fits)."""

    @property
    def digest(self) -> Digest: ...

    @property
    def source_repository(self) -> str: ...

    @property
    def hmac(self) -> str: ...


M = TypeVar("M", bound=MetadataEntry)


@dataclass(frozen=True, slots=True)
class Limits:
    mounts: int
    checks: int
    other_repositories: bool


def limits_for_size(size: int | None) -> Limits:
    """The seed's size classes; an unknown size is treated as middle-sized."""
    if size is not None and size > MIDDLE_LAYER_MAX:
        return Limits(4, 3, True)
    if size is None or size > SMALL_LAYER_MAX:
        return Limits(3, 1, False)
    return Limits(1, 1, False)


def path_components(full_name: str) -> list[str]:
    return full_name.split("/")


def matching_components(name: str, target: Sequence[str]) -> int:
    count = 0
    for mine, theirs in zip(path_components(name), target, strict=False):
        if mine != theirs:
            break
        count += 1
    return count


def rank(entries: Sequence[M], target_repository: str, hmac_matches: set[int]) -> list[M]:
    """Newest first, then stable-sorted: HMAC match first, then most shared path components.

    ``hmac_matches`` holds the indexes (into ``entries``) whose HMAC matches the current key.
    """
    target = path_components(target_repository)
    indexed = list(enumerate(entries))[::-1]
    indexed.sort(
        key=lambda pair: (
            pair[0] not in hmac_matches,
            -matching_components(pair[1].source_repository, target),
        )
    )
    return [entry for _, entry in indexed]


def _host(full_name: str) -> str:
    return full_name.split("/", 1)[0]


def mount_candidates(
    entries: Sequence[M],
    target_repository: str,
    hmac_matches: set[int],
    limit: int,
) -> list[M]:
    """Entries from other repositories of the same registry that we may mount from."""
    host = _host(target_repository)
    allowed = [
        i
        for i, e in enumerate(entries)
        if e.source_repository
        and "/" in e.source_repository
        and _host(e.source_repository) == host
        and e.source_repository != target_repository
        and (i in hmac_matches or not e.hmac)
    ]
    subset = [entries[i] for i in allowed]
    matches = {j for j, i in enumerate(allowed) if i in hmac_matches}
    return rank(subset, target_repository, matches)[: max(limit, 0)]


def existence_candidates(
    entries: Sequence[M],
    target_repository: str,
    hmac_matches: set[int],
    limit: int,
    *,
    other_repositories: bool,
    already_checked: set[Digest],
) -> list[M]:
    """Up to ``limit`` entries with distinct, not yet checked digests, best first.

    Entries without a source repository (digests known from the image itself) always qualify;
    entries of other repositories only when ``other_repositories`` (big layers).
    """
    keep = [
        i
        for i, e in enumerate(entries)
        if not e.source_repository or other_repositories or e.source_repository == target_repository
    ]
    subset = [entries[i] for i in keep]
    matches = {j for j, i in enumerate(keep) if i in hmac_matches}
    out: list[M] = []
    seen: set[Digest] = set()
    for e in rank(subset, target_repository, matches):
        if len(out) >= limit:
            break
        if e.digest in seen or e.digest in already_checked:
            continue
        seen.add(e.digest)
        out.append(e)
    return out
