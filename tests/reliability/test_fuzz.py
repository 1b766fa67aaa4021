"""Property fuzzing of every parser that reads outside input: references, WWW-Authenticate,
registry error envelopes and Retry-After, and the archive importer.

The property is the same everywhere: the parser returns a well-formed value or raises a
YardarmError subclass; nothing else escapes, nothing hangs, and a round trip holds where one is
defined. ``make test`` runs a short pass; ``make fuzz`` sets YARDARM_FUZZ_EXAMPLES high. Any
crash found is kept as an ``@example`` below (a regression case).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tarfile

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reliability.scenario import assert_store_sound
from support.imagegen import LayerSpec, write_docker_archive, write_oci_layout
from support.storecheck import store_snapshot
from yardarm.errors import YardarmError

EXAMPLES = int(os.environ.get("YARDARM_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=EXAMPLES <= 200,  # the short pass is the same on every run (CI stays stable)
)

# -- references -------------------------------------------------------------------------------

_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
_component = st.from_regex(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*", fullmatch=True).filter(
    lambda s: len(s) <= 30
)
_tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,40}", fullmatch=True)
_domain = st.one_of(
    st.just("localhost:5000"),
    st.from_regex(r"[a-z][a-z0-9-]{0,10}\.[a-z]{2,5}(:[1-9][0-9]{0,4})?", fullmatch=True),
    st.from_regex(r"127\.0\.0\.[0-9]{1,3}:[1-9][0-9]{0,4}", fullmatch=True),
)
_references = st.builds(
    lambda d, parts, t, h: (
        (f"{d}/" if d else "")
        + "/".join(parts)
        + (f":{t}" if t else "")
        + (f"@sha256:{h}" if h else "")
    ),
    st.none() | _domain,
    # Without a domain, a first component holding '.' would be read as one (docker's rule).
    st.lists(_component, min_size=1, max_size=4).filter(lambda p: "." not in p[0]),
    st.none() | _tag,
    st.none() | st.from_regex(r"[0-9a-f]{64}", fullmatch=True),
)


@FUZZ
@given(st.text(max_size=300) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
@example("a" * 256)
@example("x@sha256:" + "A" * 64)
@example("[::1]:5000/x")
def test_any_text_parses_to_a_round_tripping_reference_or_invalid_reference(text: str) -> None:
    from yardarm.errors import InvalidReference
    from yardarm.reference import parse

    try:
        ref = parse(text)
    except InvalidReference:
        return
    assert parse(str(ref)) == ref


@FUZZ
@given(_references)
def test_grammar_generated_references_parse_and_round_trip(text: str) -> None:
    from yardarm.errors import InvalidReference
    from yardarm.reference import parse

    try:
        ref = parse(text)
    except InvalidReference as exc:
        # The only refusals a grammar-valid string may meet are the length limits.
        assert "long" in str(exc).lower() or "255" in str(exc), (text, exc)
        return
    assert parse(str(ref)) == ref
    if "@sha256:" in text:
        assert ref.digest is not None and str(ref.digest).endswith(text[-64:])


# -- WWW-Authenticate -------------------------------------------------------------------------

_token68 = st.from_regex(r"[A-Za-z0-9._~+/-]+=*", fullmatch=True)
_quoted = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters='"\\'), max_size=40
)


@FUZZ
@given(st.lists(st.text(max_size=200), max_size=4))
@example(['Bearer realm="a", , ,scope="x"'])
@example(['Basic realm="\\'])
@example(['Bearer realm="unterminated'])
def test_any_www_authenticate_headers_parse_without_escaping_errors(values: list[str]) -> None:
    from yardarm.registry.auth import parse_challenges

    for challenge in parse_challenges(values):
        assert challenge.scheme == challenge.scheme.lower()
        assert all(k == k.lower() for k in challenge.params)


@FUZZ
@given(
    st.sampled_from(["Bearer", "bearer", "BEARER"]),
    _quoted,
    _quoted,
    st.lists(_quoted, max_size=3),
)
def test_bearer_challenges_keep_their_parameters(
    scheme: str, realm: str, service: str, scopes: list[str]
) -> None:
    from yardarm.registry.auth import parse_challenges

    scope = " ".join(scopes)
    header = f'{scheme} realm="{realm}",service="{service}",scope="{scope}"'
    (c,) = parse_challenges([header, 'Basic realm="x"'])[:1]
    assert c.scheme == "bearer"
    assert (c.realm, c.service) == (realm, service)


# -- registry error envelopes and Retry-After -------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
_envelopes = st.one_of(
    st.binary(max_size=400),
    _json.map(lambda v: json.dumps(v).encode()),
    st.builds(
        lambda errs: json.dumps({"errors": errs}).encode(),
        st.lists(
            st.dictionaries(st.sampled_from(["code", "message", "detail"]), _json), max_size=3
        ),
    ),
)


@FUZZ
@given(
    st.sampled_from([400, 401, 403, 404, 405, 409, 416, 429, 500, 502, 503, 504, 599]),
    _envelopes,
    st.none() | st.text(max_size=40),
    st.sampled_from(["GET", "HEAD", "PUT", "PATCH", "POST"]),
)
@example(429, b'{"errors":[{"code":"TOOMANYREQUESTS"}]}', "Wed, 21 Oct 2015 07:28:00 GMT", "GET")
@example(500, b'{"errors":[{"code":7,"message":["x"]}]}', "-1", "PUT")
@example(404, b'{"errors":[]}', "99999999999999999999", "HEAD")
@example(429, b"", "\u00b2", "GET")  # found by make fuzz: '²'.isdigit() but float('²') fails
def test_any_error_answer_becomes_one_typed_error(
    status: int, body: bytes, retry_after: str | None, method: str
) -> None:
    from yardarm.errors import RegistryError
    from yardarm.registry._errors import error_from_response
    from yardarm.registry.transport import Response

    headers = {"Content-Type": "application/json"}
    if retry_after is not None:
        headers["Retry-After"] = retry_after.replace("\n", " ").replace("\r", " ")
    resp = Response(status, headers, body, url="http://r.example/v2/x", reason="Reason")
    err = error_from_response(resp, method, "http://r.example/v2/x?_state=SECRET")
    assert isinstance(err, RegistryError)
    assert err.status == status
    assert "\n" not in err.message or len(err.message) <= 500
    assert len(err.message) <= 500
    assert "SECRET" not in str(err)
    ra = getattr(err, "retry_after", None)
    assert ra is None or 0 <= ra <= 600


# -- the archive importer ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    base = tmp_path_factory.mktemp("fuzz-seeds")
    docker = write_docker_archive(
        base / "d.tar", layers=[LayerSpec(3000), LayerSpec(200)], seed=5, tags=("fz/d:1",)
    )
    layout = write_oci_layout(base / "oci", layers=[LayerSpec(2500)], seed=6, tags=["o"])
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(layout.path, arcname=".")
    return {"docker": docker.path.read_bytes(), "oci": buf.getvalue()}


_edits = st.lists(
    st.tuples(
        st.sampled_from(["flip", "cut", "insert", "zero"]),
        st.floats(min_value=0, max_value=1, allow_nan=False),
        st.binary(min_size=1, max_size=16),
    ),
    min_size=1,
    max_size=4,
)


def _mutate(data: bytes, edits: list[tuple[str, float, bytes]]) -> bytes:
    out = bytearray(data)
    for kind, where, junk in edits:
        at = int(where * max(len(out) - 1, 0))
        if kind == "flip" and out:
            out[at] ^= junk[0] or 1
        elif kind == "cut":
            del out[at:]
        elif kind == "insert":
            out[at:at] = junk
        elif kind == "zero":
            out[at : at + 512] = bytes(len(out[at : at + 512]))
    return bytes(out)


@FUZZ
@given(st.sampled_from(["docker", "oci"]), _edits)
@example("docker", [("insert", 0.0, b"(\xb5/\xfd")])  # found by make fuzz: zstd magic, not zstd
def test_mutated_archives_load_or_fail_with_a_store_error_and_leave_no_trace(
    seed_inputs: dict[str, bytes],
    tmp_path_factory: pytest.TempPathFactory,
    kind: str,
    edits: list[tuple[str, float, bytes]],
) -> None:
    from yardarm.store import Store

    data = _mutate(seed_inputs[kind], edits)
    base = tmp_path_factory.mktemp("fz")
    path = base / "input.tar"
    path.write_bytes(data)
    store_path = base / "store"
    with Store.open(store_path) as store:
        pass
    before = store_snapshot(store_path)
    with Store.open(store_path) as store:
        loaded = 0
        with contextlib.suppress(YardarmError):
            loaded += len(store.load(path))
        with contextlib.suppress(YardarmError), path.open("rb") as f:
            loaded += len(store.load_stream(f, "<fuzz>"))
    if not loaded:
        assert store_snapshot(store_path) == before, "a refused input changed the store"
    assert_store_sound(store_path)
    assert not list((store_path / "tmp").iterdir()), "no temporary left behind"
