"""Each malformed input: one line naming the input and the fault; the store is untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus.build import CASES, Case, valid_archive, valid_layout
from support.storecheck import store_snapshot as snapshot
from yardarm.cli import main


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store already holding images that share layers with the corpus inputs."""
    base = tmp_path_factory.mktemp("seed")
    store = base / "store"
    assert main(["--store", str(store), "load", "-q", str(valid_archive(base))]) == 0
    assert main(["--store", str(store), "load", "-q", str(valid_layout(base))]) == 0
    return store


def test_corpus_is_big_enough() -> None:
    assert len(CASES) >= 30
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_malformed_input_is_refused_with_one_line_and_store_unchanged(
    case: Case, seeded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = case.build(tmp_path)
    before = snapshot(seeded)
    capsys.readouterr()
    code = main(["--store", str(seeded), "load", str(source)])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("yardarm: error: "), err
    assert str(source) in lines[0], f"the message must name the input: {err}"
    assert case.fragment in lines[0], err
    assert snapshot(seeded) == before


@pytest.mark.parametrize("case", [c for c in CASES if c.unsafe], ids=lambda c: c.name)
def test_unsafe_members_raise_unsafe_archive(case: Case, tmp_path: Path) -> None:
    from yardarm.errors import UnsafeArchive
    from yardarm.store import Store

    source = case.build(tmp_path)
    with Store.open(tmp_path / "store") as store, pytest.raises(UnsafeArchive):
        store.load(source)


def test_stdin_stream_refuses_the_same_unsafe_archive(tmp_path: Path) -> None:
    from yardarm.errors import UnsafeArchive
    from yardarm.store import Store

    case = next(c for c in CASES if c.name == "tar-symlink-outside")
    source = case.build(tmp_path)
    with (
        Store.open(tmp_path / "store") as store,
        source.open("rb") as f,
        pytest.raises(UnsafeArchive, match="points outside the archive"),
    ):
        store.load_stream(f, "<stdin>")


def _as_archive(folder: Path, layout: Path) -> Path:
    """The broken layout as an OCI archive (links stay links), to reach the tar readers."""
    import tarfile

    path = folder / "as-archive.tar"
    with tarfile.open(path, "w") as tf:
        for p in sorted(layout.rglob("*")):
            tf.add(p, arcname=str(p.relative_to(layout)), recursive=False)
    return path


@pytest.mark.parametrize("via", ["file", "stdin"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_same_faults_in_archives_and_streams_leave_the_store_unchanged(
    case: Case, via: str, seeded: Path, tmp_path: Path
) -> None:
    from yardarm.errors import ImportError_, UnsafeArchive
    from yardarm.store import Store

    source = case.build(tmp_path)
    if source.is_dir():
        source = _as_archive(tmp_path, source)
    fragment = (
        "points outside the archive" if case.name == "layout-symlink-outside" else case.fragment
    )
    before = snapshot(seeded)
    with Store.open(seeded) as store, pytest.raises(ImportError_) as info:
        if via == "file":
            store.load(source)
        else:
            with source.open("rb") as f:
                store.load_stream(f, "<stdin>")
    assert fragment in str(info.value)
    assert ("<stdin>" if via == "stdin" else str(source)) in str(info.value)
    assert isinstance(info.value, UnsafeArchive) == case.unsafe
    assert snapshot(seeded) == before
