"""The v2 metadata service and its HMACs, against values computed outside Python.

The expected keys and HMACs below come from `printf | sha256sum` and `openssl dgst -hmac`
over the JSON Go's json.Marshal writes for moby's authConfigKeyInput.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from yardarm.digest import Digest
from yardarm.store import (
    MAX_METADATA,
    Store,
    V2Metadata,
    check_hmac,
    compute_hmac,
    compute_hmac_key,
)

ZERO = Digest("sha256", "0" * 64)


def d(n: int) -> Digest:
    return Digest("sha256", f"{n:064x}")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(tmp_path / "store")
    yield s  # type: ignore[misc]
    s.close()


def test_hmac_key_is_digest_of_go_json_in_moby_field_order() -> None:
    # {"username":"user","password":"pass"}
    assert compute_hmac_key({"password": "pass", "username": "user"}) == (
        "sha256:cb54b00fb550d4a17c448149caa29f38f4d5a44fb87c752e43db8160af3a032a"
    )


def test_hmac_key_has_every_field_in_order() -> None:
    fields = {
        "registrytoken": "rt",
        "identitytoken": "it",
        "auth": "dTpw",
        "password": "p",
        "username": "u",
    }
    assert compute_hmac_key(fields) == (
        "sha256:7e4e37b85b6e74e042f0081ae82912f0c296f7d5dd43464a52caf22879db3dae"
    )


def test_hmac_key_escapes_like_go_html_safe_json() -> None:
    # {"password":"a\u003cb\u003e\u0026c\"\\é"}: <, >, & escaped; é kept as UTF-8
    assert compute_hmac_key({"password": 'a<b>&c"\\é'}) == (
        "sha256:d3d80c54680f2c1252d2c9beaa76ca95bd9e7c985102d87c225a35565efcc77e"
    )


def test_empty_fields_are_omitted_and_anonymous_gives_empty_key() -> None:
    assert compute_hmac_key({}) == ""
    assert compute_hmac_key({"username": "", "password": ""}) == ""
    assert compute_hmac_key({"username": "user", "password": "pass", "auth": ""}) == (
        compute_hmac_key({"username": "user", "password": "pass"})
    )


def test_hmac_is_hex_hmac_sha256_of_digest_and_repository() -> None:
    key = compute_hmac_key({"username": "user", "password": "pass"})
    assert compute_hmac(key, ZERO, "127.0.0.1:5000/a/b") == (
        "68e0195d1f5abaeaa7e04cd385eb3472662024fae7d4e455d2057782b060860d"
    )
    assert compute_hmac("", ZERO, "127.0.0.1:5000/a/b") == ""


def test_check_hmac_matches_only_the_same_key() -> None:
    key = compute_hmac_key({"username": "user", "password": "pass"})
    other = compute_hmac_key({"username": "user", "password": "other"})
    meta = V2Metadata(ZERO, "h/r", compute_hmac(key, ZERO, "h/r"))
    assert check_hmac(meta, key)
    assert not check_hmac(meta, other)
    assert not check_hmac(meta, "")
    anonymous = V2Metadata(ZERO, "h/r", "")
    assert check_hmac(anonymous, "")
    assert not check_hmac(anonymous, key)
    assert not check_hmac(V2Metadata(ZERO, "h/other", meta.hmac), key)


def test_entries_are_kept_newest_last(store: Store) -> None:
    store.metadata.add(d(1), "", d(10), "h/a")
    store.metadata.add(d(1), "", d(11), "h/b")
    assert [m.digest for m in store.metadata.get(d(1))] == [d(10), d(11)]
    assert store.metadata.get(d(2)) == []


def test_adding_an_identical_entry_moves_it_to_the_end_with_the_new_hmac(store: Store) -> None:
    key = compute_hmac_key({"username": "u", "password": "p"})
    store.metadata.add(d(1), "", d(10), "h/a")
    store.metadata.add(d(1), "", d(11), "h/b")
    store.metadata.add(d(1), key, d(10), "h/a")
    got = store.metadata.get(d(1))
    assert [(m.digest, m.source_repository) for m in got] == [(d(11), "h/b"), (d(10), "h/a")]
    assert got[-1].hmac == compute_hmac(key, d(10), "h/a")
    assert check_hmac(got[-1], key)


def test_at_most_fifty_entries_and_the_oldest_go_first(store: Store) -> None:
    for i in range(MAX_METADATA + 5):
        store.metadata.add(d(1), "", d(100 + i), "h/a")
    got = store.metadata.get(d(1))
    assert len(got) == MAX_METADATA == 50
    assert got[0].digest == d(105)
    assert got[-1].digest == d(100 + MAX_METADATA + 4)


def test_remove_drops_that_digest_and_repository_only(store: Store) -> None:
    store.metadata.add(d(1), "", d(10), "h/a")
    store.metadata.add(d(1), "", d(10), "h/b")
    store.metadata.add(d(1), "", d(11), "h/a")
    store.metadata.remove(V2Metadata(d(10), "h/a", ""))
    got = [(m.digest, m.source_repository) for m in store.metadata.get(d(1))]
    assert got == [(d(10), "h/b"), (d(11), "h/a")]


def test_reverse_lookup_digest_to_diff_id(store: Store) -> None:
    assert store.metadata.diff_id_for(d(10)) is None
    store.metadata.add(d(1), "", d(10), "h/a")
    store.metadata.add(d(2), "", d(20), "h/a")
    assert store.metadata.diff_id_for(d(10)) == d(1)
    assert store.metadata.diff_id_for(d(20)) == d(2)


def test_metadata_survives_reopening_and_is_shared_between_processes(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "store"
    with Store.open(path) as s:
        s.metadata.add(d(1), "", d(10), "h/a")
    code = (
        "import sys; from pathlib import Path; from yardarm.store import Store; "
        "from yardarm.digest import Digest; s = Store.open(Path(sys.argv[1])); "
        "s.metadata.add(Digest('sha256', '%064x' % 1), '', Digest('sha256', '%064x' % 11), 'h/b')"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    with Store.open(path) as s:
        assert [m.digest for m in s.metadata.get(d(1))] == [d(10), d(11)]


def test_upload_state_round_trips(store: Store) -> None:
    assert store.uploads.get("h", "r", "k") is None
    store.uploads.save("h", "r", "k", "http://h/v2/r/blobs/uploads/x?_state=s", 42, {"c": "gzip"})
    state = store.uploads.get("h", "r", "k")
    assert state is not None
    assert (state.location, state.offset, dict(state.extra)) == (
        "http://h/v2/r/blobs/uploads/x?_state=s",
        42,
        {"c": "gzip"},
    )
    assert "_state" not in repr(state)
    store.uploads.delete("h", "r", "k")
    assert store.uploads.get("h", "r", "k") is None
