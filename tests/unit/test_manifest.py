"""Manifests and indexes keep their bytes, and refuse what they cannot be."""

from __future__ import annotations

import json

import pytest

from yardarm import mediatypes as mt
from yardarm.digest import Digest
from yardarm.errors import ManifestError
from yardarm.manifest import Descriptor, Index, Manifest, parse_manifest_or_index

D = "sha256:" + "a" * 64


def manifest(**over: object) -> bytes:
    body: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": D, "size": 2},
        "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": D, "size": 3}],
    }
    body.update(over)
    return json.dumps(body, indent=2).encode()


def test_parse_keeps_the_exact_bytes_and_their_digest() -> None:
    raw = manifest()
    m = Manifest.parse(raw)
    assert m.raw == raw
    assert m.digest == Digest.from_bytes(raw)
    assert m.layers[0].size == 3
    assert isinstance(parse_manifest_or_index(raw), Manifest)


def test_build_round_trips() -> None:
    config = Descriptor(mt.DOCKER_CONFIG, Digest.parse(D), 2)
    layer = Descriptor(mt.DOCKER_LAYER, Digest.parse(D), 3, urls=("https://x/y",))
    built = Manifest.build(mt.DOCKER_MANIFEST, config, [layer])
    again = Manifest.parse(built.raw)
    assert again.layers == (layer,)
    assert again.config == config


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "invalid JSON"),
        (b"[]", "expected a JSON object"),
        (manifest(schemaVersion=1), "unsupported schemaVersion 1"),
        (manifest(mediaType=mt.OCI_INDEX), "not an image manifest"),
        (manifest(layers={}), "layers must be a list"),
        (manifest(config=None), "config: expected an object"),
        (manifest(layers=[{"mediaType": "text/plain", "digest": D, "size": 1}]), "unknown media"),
        (manifest(layers=[{"mediaType": mt.OCI_LAYER, "digest": "md5:x", "size": 1}]), "digest"),
        (manifest(layers=[{"mediaType": mt.OCI_LAYER, "digest": D, "size": -1}]), "size"),
        (manifest(layers=[{"mediaType": mt.OCI_LAYER, "digest": D}]), "missing field 'size'"),
    ],
)
def test_bad_manifests_are_refused_with_the_reason(raw: bytes, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        Manifest.parse(raw, where="m.json")


def test_index_parse_and_refusals() -> None:
    raw = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_INDEX,
            "manifests": [
                {
                    "mediaType": mt.OCI_MANIFEST,
                    "digest": D,
                    "size": 9,
                    "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
                }
            ],
        }
    ).encode()
    index = Index.parse(raw)
    assert str(index.manifests[0].platform) == "linux/arm64/v8"
    assert isinstance(parse_manifest_or_index(raw), Index)
    with pytest.raises(ManifestError, match="manifests must be a list"):
        Index.parse(json.dumps({"schemaVersion": 2, "manifests": 3}).encode())
    with pytest.raises(ManifestError, match="not an index"):
        Index.parse(manifest())
