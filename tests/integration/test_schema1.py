"""yardarm's schema1 manifests against the real registry (schema1 mode) and skopeo as reader.

Blobs are uploaded with raw http.client requests (POST then PUT ?digest=) so that only the
schema1 module is under test here.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from support.registry import Response, RunningRegistry
from yardarm.digest import Digest
from yardarm.mediatypes import DOCKER_LAYER
from yardarm.push.schema1 import (
    EMPTY_GZIP_TAR,
    EMPTY_GZIP_TAR_DIGEST,
    SCHEMA1_SIGNED_MEDIA_TYPE,
    Schema1Key,
    build_schema1_manifest,
    load_or_create_key,
    schema1_blob_sums,
    schema1_canonical,
    schema1_digest,
)

pytestmark = pytest.mark.registry


@dataclass(frozen=True)
class Image:
    config: bytes
    layers: list[tuple[Digest, str]]  # bottom first
    blobs: dict[Digest, bytes]
    diff_ids: list[str]


def _layer(files: dict[str, bytes]) -> tuple[bytes, bytes]:
    """A real tar layer and its gzip form (fixed mtimes, so digests are stable)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    tar_bytes = buf.getvalue()
    return tar_bytes, gzip.compress(tar_bytes, mtime=0)


def make_image() -> Image:
    """Two layers with an ENV step (no layer) between them, as `docker build` records it."""
    tars = [_layer({"etc/hello": b"hello\n"}), _layer({"app/run.sh": b"#!/bin/sh\necho hi\n"})]
    diff_ids = ["sha256:" + hashlib.sha256(t).hexdigest() for t, _ in tars]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2026-11-28T06:00:00.123456789Z",
        "config": {"Env": ["PATH=/bin", "GREETING=hi & bye"], "Cmd": ["/app/run.sh"]},
        # schema1 keeps the top step's command only here (the top v1 entry is the config).
        "container_config": {"Cmd": ["/bin/sh", "-c", "#(nop) COPY app /app"]},
        "history": [
            {"created": "2026-11-28T05:00:00Z", "created_by": "ADD etc /etc"},
            {"created": "2026-11-28T05:30:00Z", "created_by": "ENV GREETING", "empty_layer": True},
            {"created": "2026-11-28T06:00:00.123456789Z", "created_by": "COPY app /app"},
        ],
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    blobs = {Digest.from_bytes(gz): gz for _, gz in tars}
    layers = [(d, DOCKER_LAYER) for d in blobs]
    return Image(json.dumps(config).encode(), layers, blobs, diff_ids)


def upload(reg: RunningRegistry, repo: str, data: bytes) -> Digest:
    """POST a session, PUT the bytes to its Location with ?digest= (the monolithic protocol)."""
    digest = Digest.from_bytes(data)
    started = reg.request("POST", f"/v2/{repo}/blobs/uploads/")
    assert started.status == 202, started.body
    location = urlsplit(started.headers["location"])
    query = f"{location.query}&digest={digest}" if location.query else f"digest={digest}"
    done = reg.request(
        "PUT",
        f"{location.path}?{query}",
        headers={"Content-Type": "application/octet-stream"},
        body=data,
    )
    assert done.status == 201, done.body
    assert done.headers["docker-content-digest"] == str(digest)
    return digest


def put_manifest(reg: RunningRegistry, repo: str, tag: str, raw: bytes) -> Response:
    return reg.request(
        "PUT",
        f"/v2/{repo}/manifests/{tag}",
        headers={"Content-Type": SCHEMA1_SIGNED_MEDIA_TYPE},
        body=raw,
    )


def error_codes(resp: Response) -> list[str]:
    body = resp.json()
    assert isinstance(body, dict)
    return [e["code"] for e in body["errors"]]


def skopeo(*args: str) -> str:
    proc = subprocess.run(
        ["skopeo", *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Schema1Key:
    return load_or_create_key(tmp_path_factory.mktemp("schema1-key") / "key.pem")


def push_blobs(reg: RunningRegistry, repo: str, image: Image, *, empty_tar: bool = True) -> None:
    upload(reg, repo, image.config)
    for data in image.blobs.values():
        upload(reg, repo, data)
    if empty_tar:
        upload(reg, repo, EMPTY_GZIP_TAR)


def test_schema1_registry_stores_our_signed_manifest_under_its_canonical_digest(
    registry_schema1: RunningRegistry, repo_name: str, key: Schema1Key
) -> None:
    image = make_image()
    push_blobs(registry_schema1, repo_name, image)
    raw = build_schema1_manifest(repo_name, "v1", image.config, image.layers, key)

    resp = put_manifest(registry_schema1, repo_name, "v1", raw)

    assert resp.status == 201, resp.body
    assert resp.headers["docker-content-digest"] == str(schema1_digest(raw))
    assert schema1_digest(raw) != Digest.from_bytes(raw)  # the signatures are not named
    got = registry_schema1.request(
        "GET", f"/v2/{repo_name}/manifests/v1", headers={"Accept": SCHEMA1_SIGNED_MEDIA_TYPE}
    )
    assert got.status == 200
    assert got.headers["content-type"] == SCHEMA1_SIGNED_MEDIA_TYPE
    assert got.headers["docker-content-digest"] == str(schema1_digest(raw))
    # The registry keeps only the canonical bytes and serves them signed with its own key.
    assert schema1_canonical(got.body) == schema1_canonical(raw)
    served_kid = json.loads(got.body)["signatures"][0]["header"]["jwk"]["kid"]
    assert served_kid != key.kid
    by_digest = registry_schema1.request(
        "GET",
        f"/v2/{repo_name}/manifests/{schema1_digest(raw)}",
        headers={"Accept": SCHEMA1_SIGNED_MEDIA_TYPE},
    )
    assert by_digest.status == 200
    assert schema1_canonical(by_digest.body) == schema1_canonical(raw)


def test_skopeo_reads_the_schema1_image_with_our_layers_in_order(
    registry_schema1: RunningRegistry, repo_name: str, key: Schema1Key, tmp_path: Path
) -> None:
    image = make_image()
    push_blobs(registry_schema1, repo_name, image)
    raw = build_schema1_manifest(repo_name, "v1", image.config, image.layers, key)
    assert put_manifest(registry_schema1, repo_name, "v1", raw).status == 201
    ref = f"docker://{registry_schema1.host}/{repo_name}:v1"

    info = json.loads(skopeo("inspect", "--tls-verify=false", ref))

    bottom, top = (str(d) for d, _ in image.layers)
    # skopeo lists schema1 layers bottom first, the ENV step's empty tar included.
    assert info["Layers"] == [bottom, str(EMPTY_GZIP_TAR_DIGEST), top]
    assert info["Digest"] == str(schema1_digest(raw))
    assert (info["Architecture"], info["Os"]) == ("amd64", "linux")
    assert info["Env"] == ["PATH=/bin", "GREETING=hi & bye"]
    assert info["Created"].startswith("2026-11-28T06:00:00.123456789")

    # Converting to OCI makes skopeo decompress every layer and rebuild the config from the
    # v1Compatibility entries: the diff IDs must come out as the ones we started from.
    layout = tmp_path / "oci"
    skopeo("copy", "--src-tls-verify=false", ref, f"oci:{layout}:v1")
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads(_oci_blob(layout, index["manifests"][0]["digest"]))
    config = json.loads(_oci_blob(layout, manifest["config"]["digest"]))
    assert config["rootfs"]["diff_ids"] == image.diff_ids
    assert [h.get("empty_layer", False) for h in config["history"]] == [False, True, False]
    assert [h["created_by"] for h in config["history"]] == [
        "ADD etc /etc",
        "ENV GREETING",
        "/bin/sh -c #(nop) COPY app /app",
    ]


def _oci_blob(layout: Path, digest: str) -> bytes:
    algorithm, hex_ = digest.split(":")
    data = (layout / "blobs" / algorithm / hex_).read_bytes()
    assert hashlib.sha256(data).hexdigest() == hex_
    return data


def test_registry_refuses_schema1_until_the_empty_tar_blob_exists(
    registry_schema1: RunningRegistry, repo_name: str, key: Schema1Key
) -> None:
    image = make_image()
    push_blobs(registry_schema1, repo_name, image, empty_tar=False)
    raw = build_schema1_manifest(repo_name, "v1", image.config, image.layers, key)
    assert EMPTY_GZIP_TAR_DIGEST in schema1_blob_sums(raw)

    refused = put_manifest(registry_schema1, repo_name, "v1", raw)
    assert refused.status == 400, refused.body
    assert error_codes(refused) == ["MANIFEST_BLOB_UNKNOWN"]
    assert str(EMPTY_GZIP_TAR_DIGEST) in refused.body.decode()

    upload(registry_schema1, repo_name, EMPTY_GZIP_TAR)
    assert put_manifest(registry_schema1, repo_name, "v1", raw).status == 201


def _resign_header(raw: bytes, **jwk_changes: str) -> bytes:
    """The same signed manifest with its JWK altered (the signature bytes left alone)."""
    canonical = schema1_canonical(raw)
    document = json.loads(raw)
    document["signatures"][0]["header"]["jwk"].update(jwk_changes)
    signatures = json.dumps(document["signatures"], indent=3).replace("\n", "\n   ")
    cut = len(canonical) - 2
    return canonical[:cut] + f',\n   "signatures": {signatures}\n}}'.encode()


@pytest.mark.parametrize(
    ("tamper", "code"), [("foreign key", "MANIFEST_UNVERIFIED"), ("wrong kid", "MANIFEST_INVALID")]
)
def test_registry_verifies_the_signature_and_the_key_id(
    registry_schema1: RunningRegistry,
    repo_name: str,
    key: Schema1Key,
    tmp_path: Path,
    tamper: str,
    code: str,
) -> None:
    """Acceptance above means something: a bad signature or key ID is refused."""
    image = make_image()
    push_blobs(registry_schema1, repo_name, image)
    raw = build_schema1_manifest(repo_name, "v1", image.config, image.layers, key)
    if tamper == "foreign key":
        other = load_or_create_key(tmp_path / "other.pem")
        bad = _resign_header(raw, **dict(other.jwk))
    else:
        kid = key.kid
        bad = _resign_header(raw, kid=kid[:-4] + ("AAAA" if kid[-4:] != "AAAA" else "BBBB"))
    assert schema1_canonical(bad) == schema1_canonical(raw)
    # The rebuilt document is still accepted when nothing was altered (control).
    assert put_manifest(registry_schema1, repo_name, "control", _resign_header(raw)).status == 201

    mark = registry_schema1.log_mark()
    resp = put_manifest(registry_schema1, repo_name, "v1", bad)

    assert resp.status == 400, resp.body
    assert error_codes(resp) == [code]
    if tamper == "wrong kid":  # libtrust recomputes the ID from the key; only the log says so
        assert "JWK EC Public Key ID does not match" in registry_schema1.log_text(mark)


def test_plain_registry_refuses_schema1_with_500_unknown(
    registry_plain: RunningRegistry, repo_name: str, key: Schema1Key
) -> None:
    """distribution 2.8 without `compatibility: schema1: enabled` cannot store schema1 at all;
    the pusher's fallback must treat this answer as final, not as a reason to retry schema1."""
    image = make_image()
    push_blobs(registry_plain, repo_name, image)
    raw = build_schema1_manifest(repo_name, "v1", image.config, image.layers, key)

    resp = put_manifest(registry_plain, repo_name, "v1", raw)

    assert resp.status == 500, resp.body
    assert error_codes(resp) == ["UNKNOWN"]
    missing = registry_plain.request(
        "GET", f"/v2/{repo_name}/manifests/v1", headers={"Accept": SCHEMA1_SIGNED_MEDIA_TYPE}
    )
    assert missing.status == 404


def test_protected_header_time_is_what_the_registry_sees(
    registry_schema1: RunningRegistry, repo_name: str, key: Schema1Key
) -> None:
    """A fixed `now` (for reproducible tests) still yields a manifest the registry accepts."""
    import datetime as dt

    image = make_image()
    push_blobs(registry_schema1, repo_name, image)
    now = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    raw = build_schema1_manifest(repo_name, "v1", image.config, image.layers, key, now=now)
    protected = json.loads(
        base64.urlsafe_b64decode(json.loads(raw)["signatures"][0]["protected"] + "==")
    )
    assert protected["time"] == "2020-01-01T00:00:00Z"
    assert put_manifest(registry_schema1, repo_name, "v1", raw).status == 201
