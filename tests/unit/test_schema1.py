"""Schema1 manifests as docker's fallback writes them: v1 ID chain, libtrust JWS, the key file."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import re
import stat
import subprocess
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm

from yardarm.digest import Digest
from yardarm.errors import CredentialError, InvalidReference, ManifestError, YardarmError
from yardarm.mediatypes import DOCKER_LAYER, DOCKER_UNCOMPRESSED_LAYER, OCI_LAYER_ZSTD
from yardarm.push.schema1 import (
    EMPTY_GZIP_TAR,
    EMPTY_GZIP_TAR_DIGEST,
    Schema1Key,
    SigningKeyError,
    build_schema1_manifest,
    load_or_create_key,
    schema1_blob_sums,
    schema1_canonical,
    schema1_digest,
)

EMPTY = "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"
BLOB_A = "sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa"
BLOB_B = "sha256:b4ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"
# v1 IDs distribution's own config builder test publishes for this history shape and these
# blobs (bottom first). Lower IDs depend only on the blobs and the chain, not on the config.
DISTRIBUTION_LOWER_IDS = [
    "3690474eb5b4b26fdfbd89c6e159e8cc376ca76ef48032a30fa6aafd56337880",
    "9e3447ca24cb96d86ebd5960cb34d1299b07e0a0e03801d90b9969a2c187dd6e",
    "b449305a55a283538c4574856a8b701f2a3d5ec08ef8aec47f385f20339a4866",
    "178be37afc7c49e951abd75525dbe0871b62ad49402f037164ee6314f754599d",
    "74cf9c92699240efdba1903c2748ef57105d5bedc588084c4e88f3bb1c3ef0b0",
]
KID_RE = re.compile(r"^[A-Z2-7]{4}(?::[A-Z2-7]{4}){11}$")


def six_step_config() -> bytes:
    """Three layers, three empty steps; blobs [EMPTY, A, B] fill the non-empty ones in order."""
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2015-11-04T23:06:32.365666163Z",
        "config": {"Env": ["PATH=/bin", "X=<a>&b"], "Cmd": ["sh"], "Labels": {"z": "1", "a": "2"}},
        "history": [
            {"created": "2015-10-31T22:22:54.690851953Z", "created_by": "ADD rootfs"},
            {"created": "2015-10-31T22:22:55.613815829Z", "created_by": 'CMD ["sh"]'},
            {"created": "2015-11-04T23:06:30.93431Z", "created_by": "ENV a=1", "empty_layer": True},
            {"created": "2015-11-04T23:06:31+00:00", "created_by": "ENV b=2", "empty_layer": True},
            {
                "author": "Alyssa <a@example.com>",
                "created": "2015-11-04T23:06:32.083868454Z",
                "created_by": "RUN dd if=/dev/zero of=/f && true",
                "comment": "big",
            },
            {"created": "2015-11-04T23:06:32.365666163Z", "created_by": "CMD", "empty_layer": True},
        ],
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + c * 64 for c in "123"]},
    }
    return json.dumps(config, indent=4).encode()


def six_step_layers() -> list[tuple[Digest, str]]:
    return [(Digest.parse(d), DOCKER_LAYER) for d in (EMPTY, BLOB_A, BLOB_B)]


def simple_config(n_layers: int = 2) -> bytes:
    return json.dumps(
        {
            "architecture": "arm64",
            "os": "linux",
            "history": [{"created_by": f"step {i}"} for i in range(n_layers)],
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{i:064x}" for i in range(n_layers)]},
        }
    ).encode()


def simple_layers(n: int = 2) -> list[tuple[Digest, str]]:
    return [(Digest.from_bytes(f"layer {i}".encode()), DOCKER_LAYER) for i in range(n)]


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Schema1Key:
    return load_or_create_key(tmp_path_factory.mktemp("key") / "schema1.pem")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def only_signature(raw: bytes) -> dict[str, object]:
    signatures = json.loads(raw)["signatures"]
    assert len(signatures) == 1
    sig: dict[str, object] = signatures[0]
    return sig


def verify_with_pyjwt(raw: bytes, payload: bytes) -> bool:
    """Check the JWS with PyJWT's ES256 and the JWK from the header (not yardarm's code)."""
    sig = only_signature(raw)
    header = sig["header"]
    assert isinstance(header, dict)
    assert header["alg"] == "ES256"
    public = ECAlgorithm.from_jwk(json.dumps(header["jwk"]))
    signing_input = f"{sig['protected']}.".encode() + base64.urlsafe_b64encode(payload).rstrip(b"=")
    alg = ECAlgorithm(ECAlgorithm.SHA256)
    return bool(alg.verify(signing_input, public, b64url_decode(str(sig["signature"]))))


def history_entries(raw: bytes) -> list[dict[str, object]]:
    return [json.loads(h["v1Compatibility"]) for h in json.loads(raw)["history"]]


# -- signature ------------------------------------------------------------------------------


def test_signature_verifies_with_the_jwk_in_its_header(key: Schema1Key) -> None:
    raw = build_schema1_manifest("t/app", "v1", simple_config(), simple_layers(), key)
    assert verify_with_pyjwt(raw, schema1_canonical(raw))
    header = only_signature(raw)["header"]
    assert isinstance(header, dict)
    assert header["jwk"] == dict(key.jwk)
    assert header["jwk"]["kid"] == key.kid


def test_signature_does_not_verify_once_the_payload_changes(key: Schema1Key) -> None:
    raw = build_schema1_manifest("t/app", "v1", simple_config(), simple_layers(), key)
    tampered = schema1_canonical(raw).replace(b'"tag": "v1"', b'"tag": "v2"')
    assert tampered != schema1_canonical(raw)
    assert not verify_with_pyjwt(raw, tampered)


def test_protected_header_says_where_the_signatures_were_cut(key: Schema1Key) -> None:
    now = dt.datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    raw = build_schema1_manifest("t/app", "v1", simple_config(), simple_layers(), key, now=now)
    protected = json.loads(b64url_decode(str(only_signature(raw)["protected"])))
    assert list(protected) == ["formatLength", "formatTail", "time"]
    assert protected["time"] == "2026-01-02T01:04:05Z"  # UTC, whole seconds, like libtrust
    assert b64url_decode(protected["formatTail"]) == b"\n}"
    length = protected["formatLength"]
    assert raw[:length].endswith(b"\n   ]")  # the history array closes the signed part
    assert raw[length:].startswith(b',\n   "signatures": [\n      {\n         "header": {')
    assert raw.endswith(b"\n   ]\n}")


# -- canonical bytes ------------------------------------------------------------------------


def test_canonical_bytes_are_the_pretty_manifest_without_signatures(key: Schema1Key) -> None:
    raw = build_schema1_manifest("t/app", "v1", simple_config(), simple_layers(), key)
    canonical = schema1_canonical(raw)
    document = json.loads(raw)
    del document["signatures"]
    assert json.loads(canonical) == document
    # Go's MarshalIndent with three spaces, key order as distribution's struct.
    assert canonical.startswith(b'{\n   "schemaVersion": 1,\n   "name": "t/app",\n   "tag": "v1"')
    assert canonical.endswith(b"\n   ]\n}")
    assert list(json.loads(canonical)) == [
        "schemaVersion",
        "name",
        "tag",
        "architecture",
        "fsLayers",
        "history",
    ]
    assert schema1_digest(raw) == Digest.from_bytes(canonical)


def test_canonical_bytes_do_not_depend_on_the_signature(key: Schema1Key, tmp_path: Path) -> None:
    other = load_or_create_key(tmp_path / "other.pem")
    args = ("t/app", "v1", simple_config(), simple_layers())
    first = build_schema1_manifest(*args, key)
    second = build_schema1_manifest(*args, other)
    assert first != second
    assert schema1_canonical(first) == schema1_canonical(second)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"not json", "not valid JSON"),
        (b'{"schemaVersion": 1}', "no signatures"),
        (b'{"signatures": [{"protected": "!!"}]}', "protected header"),
        (b'{"signatures": [{"protected": "e30"}]}', "protected header"),  # {}
    ],
)
def test_canonical_refuses_what_is_not_a_signed_manifest(raw: bytes, why: str) -> None:
    with pytest.raises(ManifestError, match=why):
        schema1_canonical(raw)


def test_canonical_refuses_signatures_that_disagree_on_the_cut(key: Schema1Key) -> None:
    raw = build_schema1_manifest("t/app", "v1", simple_config(), simple_layers(), key)
    document = json.loads(raw)
    sig = document["signatures"][0]
    header = json.loads(b64url_decode(sig["protected"]))
    header["formatLength"] -= 1
    forged = dict(sig, protected=base64.urlsafe_b64encode(json.dumps(header).encode()).decode())
    document["signatures"].append(forged)
    with pytest.raises(ManifestError, match="disagree"):
        schema1_canonical(json.dumps(document).encode())


# -- the manifest: what distribution's config builder produces ------------------------------


def test_v1_ids_chain_exactly_as_distribution_computes_them(key: Schema1Key) -> None:
    config = six_step_config()
    raw = build_schema1_manifest("testrepo", "testtag", config, six_step_layers(), key)
    entries = history_entries(raw)
    assert [e["id"] for e in reversed(entries[1:])] == DISTRIBUTION_LOWER_IDS
    parents = [e.get("parent") for e in reversed(entries)]
    assert parents == [None, *DISTRIBUTION_LOWER_IDS]
    top = entries[0]
    expected_top = hashlib.sha256(
        f"{EMPTY.split(':')[1]} {DISTRIBUTION_LOWER_IDS[-1]} ".encode() + config
    ).hexdigest()
    assert top["id"] == expected_top


def test_fs_layers_run_top_first_with_the_empty_tar_for_empty_steps(key: Schema1Key) -> None:
    raw = build_schema1_manifest("testrepo", "testtag", six_step_config(), six_step_layers(), key)
    manifest = json.loads(raw)
    assert [layer["blobSum"] for layer in manifest["fsLayers"]] == [
        EMPTY,  # CMD (empty)
        BLOB_B,  # RUN dd
        EMPTY,  # ENV b (empty)
        EMPTY,  # ENV a (empty)
        BLOB_A,  # CMD ["sh"] (a layer in this image)
        EMPTY,  # ADD rootfs: the first blob given happens to be the empty tar
    ]
    assert (manifest["name"], manifest["tag"], manifest["architecture"]) == (
        "testrepo",
        "testtag",
        "amd64",
    )
    assert [e.get("throwaway", False) for e in history_entries(raw)] == [
        True,
        False,
        True,
        True,
        False,
        False,
    ]
    assert schema1_blob_sums(raw) == tuple(Digest.parse(d) for d in (EMPTY, BLOB_A, BLOB_B))


def test_lower_entries_are_go_marshalled_v1_images(key: Schema1Key) -> None:
    raw = build_schema1_manifest("testrepo", "testtag", six_step_config(), six_step_layers(), key)
    history = [h["v1Compatibility"] for h in json.loads(raw)["history"]]
    # Field order of distribution's struct; Go's HTML-safe escapes; times as Go re-marshals them.
    assert history[1] == (
        '{"id":"74cf9c92699240efdba1903c2748ef57105d5bedc588084c4e88f3bb1c3ef0b0",'
        '"parent":"178be37afc7c49e951abd75525dbe0871b62ad49402f037164ee6314f754599d",'
        '"comment":"big","created":"2015-11-04T23:06:32.083868454Z",'
        '"container_config":{"Cmd":["RUN dd if=/dev/zero of=/f \\u0026\\u0026 true"]},'
        '"author":"Alyssa \\u003ca@example.com\\u003e"}'
    )
    assert json.loads(history[2])["created"] == "2015-11-04T23:06:31Z"  # +00:00 becomes Z
    assert json.loads(history[3])["created"] == "2015-11-04T23:06:30.93431Z"
    assert history[5] == (
        '{"id":"3690474eb5b4b26fdfbd89c6e159e8cc376ca76ef48032a30fa6aafd56337880",'
        '"created":"2015-10-31T22:22:54.690851953Z","container_config":{"Cmd":["ADD rootfs"]}}'
    )


def test_top_entry_is_the_config_without_rootfs_and_history(key: Schema1Key) -> None:
    raw = build_schema1_manifest("testrepo", "testtag", six_step_config(), six_step_layers(), key)
    top_text = json.loads(raw)["history"][0]["v1Compatibility"]
    top = json.loads(top_text)
    assert list(top) == sorted(top)  # Go marshals the map with sorted keys...
    assert list(top["config"]["Labels"]) == ["z", "a"]  # ...but keeps nested values verbatim
    assert "rootfs" not in top and "history" not in top
    assert top["throwaway"] is True  # the last step made no layer
    assert top["parent"] == DISTRIBUTION_LOWER_IDS[-1]
    assert top["config"]["Env"] == ["PATH=/bin", "X=<a>&b"]
    assert "\\u003ca\\u003e\\u0026b" in top_text
    assert " " not in top_text.replace("RUN dd", "")  # compacted


def test_missing_history_times_become_go_zero_time(key: Schema1Key) -> None:
    raw = build_schema1_manifest("t/app", "v1", simple_config(3), simple_layers(3), key)
    assert [e.get("created") for e in history_entries(raw)[1:]] == ["0001-01-01T00:00:00Z"] * 2


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        ("2024-05-06T07:08:09Z", "2024-05-06T07:08:09Z"),
        ("2024-05-06T07:08:09.500000Z", "2024-05-06T07:08:09.5Z"),
        ("2024-05-06T07:08:09.000Z", "2024-05-06T07:08:09Z"),
        ("2024-05-06T07:08:09.1234567891234Z", "2024-05-06T07:08:09.123456789Z"),
        ("2024-05-06T07:08:09-00:00", "2024-05-06T07:08:09Z"),
        ("2024-05-06T07:08:09.25+02:00", "2024-05-06T07:08:09.25+02:00"),
        (None, "0001-01-01T00:00:00Z"),
    ],
)
def test_history_times_are_written_as_go_remarshals_them(
    key: Schema1Key, created: str | None, expected: str
) -> None:
    config = json.dumps(
        {
            "history": [{"created": created}, {}],
            "rootfs": {"diff_ids": ["a", "b"]},
        }
    ).encode()
    raw = build_schema1_manifest("t/app", "v1", config, simple_layers(2), key)
    assert history_entries(raw)[1]["created"] == expected


def test_top_entry_keeps_config_values_verbatim_only_compacted(key: Schema1Key) -> None:
    config = (
        b'{"rootfs": {"diff_ids": ["a"]}, "history": [{}],\n'
        b' "z": {"b": 1e5, "a": [1.50, -0]}, "u": "\\u00e9 \xc3\xa9", "a": null}'
    )
    raw = build_schema1_manifest("t/app", "v1", config, simple_layers(1), key)
    top = json.loads(raw)["history"][0]["v1Compatibility"]
    assert top.startswith('{"a":null,"id":"')
    # An escape stays an escape, raw UTF-8 stays raw, numbers keep their spelling.
    assert top.endswith('"u":"\\u00e9 é","z":{"b":1e5,"a":[1.50,-0]}}')


def test_lone_surrogate_escapes_become_the_replacement_character_as_in_go(
    key: Schema1Key,
) -> None:
    config = b'{"history": [{"created_by": "a\\ud800b"}, {}], "rootfs": {"diff_ids": ["a", "b"]}}'
    raw = build_schema1_manifest("t/app", "v1", config, simple_layers(2), key)
    assert '"Cmd":["a\ufffdb"]' in json.loads(raw)["history"][1]["v1Compatibility"]
    raw.decode("utf-8")  # strict: nothing unencodable was written


text_without_surrogates = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(created_by=text_without_surrogates, label=text_without_surrogates)
def test_any_text_survives_go_escaping_and_the_signature_still_verifies(
    key: Schema1Key, created_by: str, label: str
) -> None:
    config = json.dumps(
        {
            "config": {"Labels": {label: label}},
            "history": [{"created_by": created_by}, {"created_by": "top"}],
            "rootfs": {"diff_ids": ["a", "b"]},
        }
    ).encode()
    raw = build_schema1_manifest("t/app", "v1", config, simple_layers(2), key)
    entries = history_entries(raw)
    assert entries[1]["container_config"] == {"Cmd": [created_by]}
    assert entries[0]["config"]["Labels"] == {label: label}
    assert verify_with_pyjwt(raw, schema1_canonical(raw))
    for unsafe in "<>&\u2028\u2029":
        assert unsafe not in schema1_canonical(raw).decode()


def test_architecture_argument_overrides_the_config(key: Schema1Key) -> None:
    raw = build_schema1_manifest("t/app", "v1", simple_config(), simple_layers(), key, "s390x")
    assert json.loads(raw)["architecture"] == "s390x"
    raw = build_schema1_manifest("t/app", "v1", simple_config(), simple_layers(), key)
    assert json.loads(raw)["architecture"] == "arm64"


def test_uncompressed_layers_are_allowed(key: Schema1Key) -> None:
    layers = [(d, DOCKER_UNCOMPRESSED_LAYER) for d, _ in simple_layers()]
    raw = build_schema1_manifest("t/app", "v1", simple_config(), layers, key)
    assert schema1_blob_sums(raw) == tuple(d for d, _ in layers)


@pytest.mark.parametrize(
    ("config", "layers", "message"),
    [
        (b"[1]", simple_layers(), "not a JSON object"),
        (b"{", simple_layers(), "not valid JSON"),
        (json.dumps({"rootfs": {"diff_ids": []}}).encode(), [], "no history"),
        (simple_config(2), simple_layers(3), "lists 2 layers but 3"),
        (
            json.dumps(
                {"history": [{"created_by": "x"}], "rootfs": {"diff_ids": ["a", "b"]}}
            ).encode(),
            simple_layers(2),
            "fewer layers",
        ),
        (
            json.dumps({"history": [{}, {}, {}], "rootfs": {"diff_ids": ["a", "b"]}}).encode(),
            simple_layers(2),
            "more non-empty entries",
        ),
        (
            json.dumps(
                {"history": [{"created": "yesterday"}], "rootfs": {"diff_ids": ["a"]}}
            ).encode(),
            simple_layers(1),
            "RFC 3339",
        ),
        (simple_config(1), [(simple_layers(1)[0][0], OCI_LAYER_ZSTD)], "cannot be described"),
        (simple_config(1), [(simple_layers(1)[0][0], "text/plain")], "cannot be described"),
    ],
)
def test_images_schema1_cannot_describe_are_refused_with_a_reason(
    key: Schema1Key, config: bytes, layers: list[tuple[Digest, str]], message: str
) -> None:
    with pytest.raises(ManifestError, match=message):
        build_schema1_manifest("t/app", "v1", config, layers, key)


@pytest.mark.parametrize(("name", "tag"), [("T/App", "v1"), ("t//a", "v1"), ("t/a", "")])
def test_bad_names_and_tags_are_refused(key: Schema1Key, name: str, tag: str) -> None:
    with pytest.raises(InvalidReference):
        build_schema1_manifest(name, tag, simple_config(), simple_layers(), key)


def test_empty_gzip_tar_is_1024_zero_bytes_with_the_known_digest() -> None:
    import gzip

    assert gzip.decompress(EMPTY_GZIP_TAR) == bytes(1024)
    assert Digest.from_bytes(EMPTY_GZIP_TAR) == EMPTY_GZIP_TAR_DIGEST == Digest.parse(EMPTY)


# -- the key --------------------------------------------------------------------------------


def test_kid_is_libtrust_fingerprint_of_the_der_public_key(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    key = load_or_create_key(path)
    assert KID_RE.match(key.kid)
    # Derive the DER SubjectPublicKeyInfo with openssl, not with the library under test.
    der = subprocess.run(
        ["openssl", "pkey", "-in", str(path), "-pubout", "-outform", "DER"],
        capture_output=True,
        check=True,
    ).stdout
    fingerprint = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    assert key.kid.replace(":", "") == fingerprint
    assert (key.jwk["kty"], key.jwk["crv"], key.jwk["kid"]) == ("EC", "P-256", key.kid)
    assert len(b64url_decode(key.jwk["x"])) == len(b64url_decode(key.jwk["y"])) == 32


def test_key_file_is_private_pem_and_reused_on_the_next_load(tmp_path: Path) -> None:
    path = tmp_path / "dir" / "schema1.pem"
    first = load_or_create_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN EC PRIVATE KEY-----\n")
    second = load_or_create_key(path)
    assert second.kid == first.kid
    assert second == first
    assert [p.name for p in path.parent.iterdir()] == ["schema1.pem"]  # no temp file left


def test_key_file_is_0600_even_under_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = tmp_path / "k.pem"
        load_or_create_key(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_concurrent_first_use_ends_with_one_key(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    kids: list[str] = []
    barrier = threading.Barrier(8)

    def load() -> None:
        barrier.wait()
        kids.append(load_or_create_key(path).kid)

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(kids) == 8
    assert set(kids) == {load_or_create_key(path).kid}


def test_a_damaged_key_file_is_a_one_line_error_that_shows_no_key(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    path.write_bytes(b"-----BEGIN EC PRIVATE KEY-----\nc2VjcmV0\n-----END EC PRIVATE KEY-----\n")
    with pytest.raises(SigningKeyError) as info:
        load_or_create_key(path)
    assert isinstance(info.value, CredentialError) and isinstance(info.value, YardarmError)
    assert str(path) in str(info.value)
    assert "c2VjcmV0" not in str(info.value) and "\n" not in str(info.value)


def test_a_key_file_that_is_not_p256_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p384.pem"
    pem = subprocess.run(
        ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
        capture_output=True,
        check=True,
    ).stdout
    path.write_bytes(pem)
    with pytest.raises(SigningKeyError, match="P-256"):
        load_or_create_key(path)


def test_repr_of_a_key_hides_the_private_key(key: Schema1Key) -> None:
    assert "private" not in repr(key)
    assert key.kid in repr(key)
