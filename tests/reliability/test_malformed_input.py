"""Malformed input beyond archives and layouts (those are tests/corpus, 49 cases): references,
command-line values, docker config.json and credential-helper output.

Every case: exit 1 (2 for a usage error), exactly one `yardarm: error:` line, no traceback, no
"internal error" (an exception that escaped the error tree), the case's fragment in the line,
no secret in any output, and the store byte-for-byte as before.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from support.imagegen import LayerSpec, write_oci_layout
from support.storecheck import store_snapshot
from yardarm.cli import main

SECRET = "corpus-secret-3b9d"
TARGET = "127.0.0.1:9/corpus/img:1"  # nothing listens on port 9: no case may get that far

BAD_REFERENCES = [
    "",
    " ",
    "a//b",
    "a:b:c",
    "-lead",
    "trail-",
    "x@sha256:short",
    "x@sha256:" + "g" * 64,
    "x@md5:" + "a" * 32,
    "host:port:x/y",
    " space",
    "tab\tname",
    "a" * 256,
    "x:" + "t" * 129,
    "x:.tag",
    "x:-tag",
    "x:",
    "@sha256:" + "a" * 64,
    "x/..",
    "x/./y",
    "x___y",
    "x..y",
    "/x",
    "x/",
    "localhost:/x",
    "[::1/x",
    "x@",
    "\u00fc/x",
    "x:tag:tag",
    "x y",
    "X",
    "Abc",
    "x/y:",
    "x\n",
    "x@sha256:" + "A" * 64,
    "x:t@sha256:",
    "http://host/x",
    "x#y",
    "x?y",
    "x;y",
    "x*",
    "./x",
    "~/x",
    "x/-y",
    "x/y-",
    "x/_y",
    "x.y./z",
]


@dataclass(frozen=True)
class Case:
    name: str
    argv: list[str]
    fragment: str
    code: int = 1
    config: object | None = None  # docker config.json content (str: raw text)
    helper: str | None = None  # body of docker-credential-corpus (a shell script)
    env: dict[str, str] = field(default_factory=dict)


def _ref_cases() -> list[Case]:
    cases = []
    for i, ref in enumerate(BAD_REFERENCES):
        cases.append(Case(f"ref-tag-{i:02d}", ["tag", "IMAGE", ref], "", code=-1))
    for i, ref in enumerate(BAD_REFERENCES[:10]):
        cases.append(Case(f"ref-push-{i:02d}", ["push", ref], "", code=-1))
    return cases


def _usage_cases() -> list[Case]:
    push = ["push", TARGET]
    return [
        Case("usage-chunk-size-zero", [*push, "--chunk-size", "0"], "chunk size", 2),
        Case("usage-chunk-size-tiny", [*push, "--chunk-size", "1KiB"], "chunk size", 2),
        Case("usage-chunk-size-text", [*push, "--chunk-size", "lots"], "not a size", 2),
        Case("usage-concurrency-zero", [*push, "--max-concurrent-uploads", "0"], "at least 1", 2),
        Case("usage-format-unknown", [*push, "--format", "xml"], "invalid choice", 2),
        Case("usage-compression-unknown", [*push, "--compression", "brotli"], "brotli", 2),
        Case("usage-compression-level", [*push, "--compression", "gzip:99"], "level", 2),
        Case(
            "usage-zstd-with-docker",
            [*push, "--compression", "zstd", "--format", "docker"],
            "zstd",
            2,
        ),
        Case("usage-all-tags-with-tag", ["push", "-a", TARGET], "all-tags", 2),
        Case("usage-push-digest", ["push", "x@sha256:" + "a" * 64], "digest", 2),
        Case("usage-tag-to-digest", ["tag", "IMAGE", "x@sha256:" + "a" * 64], "digest", 2),
        Case("usage-unknown-command", ["frobnicate"], "invalid choice", 2),
    ]


_AUTH = "Y29ycHVzOmNvcnB1cy1zZWNyZXQtM2I5ZA=="  # corpus:corpus-secret-3b9d


def _config_cases() -> list[Case]:
    host = TARGET.split("/", 1)[0]
    push = ["push", TARGET]
    return [
        Case("config-invalid-json", push, "invalid JSON", config='{"auths": {'),
        Case("config-secret-in-bad-json", push, "invalid JSON", config='{"auths": "' + SECRET),
        Case("config-top-level-list", push, "not an object", config="[1, 2]"),
        Case("config-top-level-string", push, "not an object", config='"auths"'),
        Case("config-auths-list", push, "auths", config={"auths": [host]}),
        Case("config-credhelpers-list", push, "credHelpers", config={"credHelpers": [host]}),
        Case("config-auth-not-base64", push, "base64", config={"auths": {host: {"auth": "%%%"}}}),
        Case(
            "config-auth-no-colon",
            push,
            "':'",
            config={"auths": {host: {"auth": "bm9jb2xvbg=="}}},  # "nocolon"
        ),
        Case("config-not-utf8", push, "docker config", config="\udcff\udcfe{}"),
        Case(
            "config-missing-helper",
            push,
            "docker-credential-nosuchhelper",
            config={"credHelpers": {host: "nosuchhelper"}},
        ),
        Case(
            "config-missing-store",
            push,
            "docker-credential-nosuchstore",
            config={"credsStore": "nosuchstore", "auths": {host: {}}},
        ),
        Case("config-is-a-directory", push, "docker config", config="DIR"),
    ]


def _helper_cases() -> list[Case]:
    host = TARGET.split("/", 1)[0]
    cfg = {"credHelpers": {host: "corpus"}}
    push = ["push", TARGET]
    s = SECRET

    def case(name: str, script: str, fragment: str) -> Case:
        return Case(f"helper-{name}", push, fragment, config=cfg, helper=script)

    return [
        case("not-json", f"echo 'not json {s}'", "helper"),
        case("json-list", "echo '[1,2]'", "helper"),
        case("secret-not-string", 'echo \'{"Username": "u", "Secret": 5}\'', "helper"),
        case("user-not-string", f'echo \'{{"Username": [1], "Secret": "{s}"}}\'', "helper"),
        case("fails", "echo 'keychain locked' >&2; exit 3", "keychain locked"),
        case("binary-output", "printf '\\377\\376\\000\\001'", "helper"),
        case("huge-output", "head -c 2000000 /dev/zero | tr '\\0' 'a'", "helper"),
        case("killed-by-signal", "kill -9 $$", "helper"),
    ]


CASES = _ref_cases() + _usage_cases() + _config_cases() + _helper_cases()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    base = tmp_path_factory.mktemp("malformed")
    image = write_oci_layout(base / "img", layers=[LayerSpec(5_000)], seed=91, tags=["c"])
    store = base / "store"
    from yardarm.store import Store

    with Store.open(store) as st:
        target = st.load(image.path)[0].id
    assert main(["--store", str(store), "tag", str(target), TARGET]) == 0
    return store, str(target)


def _prepare(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dc = tmp_path / "docker-config"
    dc.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(dc))
    if case.config == "DIR":
        (dc / "config.json").mkdir()
    elif isinstance(case.config, str):
        (dc / "config.json").write_bytes(case.config.encode("utf-8", "surrogateescape"))
    elif case.config is not None:
        (dc / "config.json").write_text(json.dumps(case.config))
    if case.helper is not None:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        helper = bin_dir / "docker-credential-corpus"
        helper.write_text(f"#!/bin/sh\ncat >/dev/null\n{case.helper}\n")
        helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    for k, v in case.env.items():
        monkeypatch.setenv(k, v)


def test_corpus_has_at_least_the_issue_count_with_the_store_corpus() -> None:
    from corpus.build import CASES as STORE_CASES

    assert len(CASES) + len(STORE_CASES) >= 100, (len(CASES), len(STORE_CASES))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_malformed_input_gets_one_line_and_changes_nothing(
    case: Case,
    seeded: tuple[Path, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store, image = seeded
    _prepare(case, tmp_path, monkeypatch)
    argv = [image if a == "IMAGE" else a for a in case.argv]
    before = store_snapshot(store)
    capsys.readouterr()
    try:
        code = main(["--store", str(store), *argv])
    except SystemExit as exc:  # argparse's own usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    if case.code == -1:  # a bad reference: exit 1, or 2 where the CLI calls it usage
        assert code in (1, 2), (code, err)
    else:
        assert code == case.code, (code, err)
    assert "Traceback" not in err + out
    errors = [line for line in err.splitlines() if line.startswith("yardarm: error: ")]
    usage = [line for line in err.splitlines() if line.startswith("usage:")]
    assert len(errors) == 1 or (code == 2 and usage and "error:" in err), err
    line = errors[0] if errors else err.strip().splitlines()[-1]
    assert "internal error" not in line, line
    assert case.fragment.lower() in line.lower(), line
    assert SECRET not in out + err
    assert store_snapshot(store) == before
