"""Ranking and limits of existence checks and mounts (the seed's rules, plus the HMAC guard)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from yardarm.digest import Digest
from yardarm.push.candidates import (
    Limits,
    existence_candidates,
    limits_for_size,
    mount_candidates,
    rank,
)


@dataclass(frozen=True)
class Meta:
    digest: Digest
    source_repository: str
    hmac: str = ""


def d(n: int) -> Digest:
    return Digest("sha256", f"{n:064x}")


TARGET = "reg:5000/team/app"


@pytest.mark.parametrize(
    ("size", "limits"),
    [
        (0, Limits(1, 1, False)),
        (100 * 1024, Limits(1, 1, False)),
        (100 * 1024 + 1, Limits(3, 1, False)),
        (10 * 1024 * 1024, Limits(3, 1, False)),
        (10 * 1024 * 1024 + 1, Limits(4, 3, True)),
        (None, Limits(3, 1, False)),
    ],
)
def test_size_classes_are_the_seeds(size: int | None, limits: Limits) -> None:
    assert limits_for_size(size) == limits


def test_rank_prefers_hmac_then_shared_path_then_newest() -> None:
    entries = [
        Meta(d(1), "reg:5000/team/old"),  # oldest
        Meta(d(2), "reg:5000/other/x"),
        Meta(d(3), "reg:5000/team/new"),
        Meta(d(4), "reg:5000/zzz/y", "mac"),  # newest, HMAC match
    ]
    ranked = rank(entries, TARGET, hmac_matches={3})
    assert [e.digest for e in ranked] == [d(4), d(3), d(1), d(2)]


def test_mounts_only_from_same_registry_other_repos_and_trusted_entries() -> None:
    entries = [
        Meta(d(1), "other:5000/team/app"),  # other registry
        Meta(d(2), TARGET),  # the target itself
        Meta(d(3), "reg:5000/team/lib", "someone-elses-mac"),  # another account's
        Meta(d(4), "reg:5000/team/lib", "my-mac"),
        Meta(d(5), "reg:5000/pub/base"),  # recorded anonymously
        Meta(d(6), ""),  # known digest without a repository
    ]
    got = mount_candidates(entries, TARGET, hmac_matches={3}, limit=4)
    assert [e.digest for e in got] == [d(4), d(5)]
    assert mount_candidates(entries, TARGET, {3}, limit=1) == [entries[3]]


def test_existence_checks_stay_in_the_target_unless_the_layer_is_big() -> None:
    entries = [
        Meta(d(1), "reg:5000/elsewhere"),
        Meta(d(2), TARGET),
        Meta(d(3), ""),
        Meta(d(2), "reg:5000/dup"),
    ]
    small = existence_candidates(
        entries, TARGET, set(), 3, other_repositories=False, already_checked=set()
    )
    assert {e.digest for e in small} == {d(2), d(3)}
    big = existence_candidates(
        entries, TARGET, set(), 3, other_repositories=True, already_checked={d(3)}
    )
    assert [e.digest for e in big].count(d(2)) == 1
    assert d(3) not in {e.digest for e in big}
    assert len(big) == 2
    one = existence_candidates(
        entries, TARGET, set(), 1, other_repositories=True, already_checked=set()
    )
    assert len(one) == 1
