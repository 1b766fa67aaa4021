"""The image generator writes what it says it wrote: every digest, DiffID and size checks out."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import tracemalloc
from pathlib import Path

import pytest
import zstandard

from support.imagegen import (
    GeneratedImage,
    LayerSpec,
    Platform,
    read_blob,
    write_docker_archive,
    write_oci_layout,
)


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _decompress(data: bytes, media_type: str) -> bytes:
    if media_type.endswith("gzip"):
        return gzip.decompress(data)
    if media_type.endswith("zstd"):
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data


def _blob(image: GeneratedImage, digest: str) -> bytes:
    return (image.path / "blobs" / "sha256" / digest.split(":")[1]).read_bytes()


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_layout_digests_diff_ids_and_sizes_are_real(tmp_path: Path, compression: str) -> None:
    img = write_oci_layout(
        tmp_path / "oci",
        layers=[100, LayerSpec(70_000, "text", files=3), 0],
        compression=compression,  # type: ignore[arg-type]
    )
    manifest = json.loads(_blob(img, img.manifest_digest))
    assert _sha(_blob(img, img.manifest_digest)) == img.manifest_digest
    assert manifest["config"]["digest"] == img.config_digest
    config = json.loads(_blob(img, img.config_digest))
    assert config["rootfs"] == {"type": "layers", "diff_ids": list(img.diff_ids)}
    assert (config["architecture"], config["os"]) == ("amd64", "linux")
    assert len(config["history"]) == 3
    for desc, layer in zip(manifest["layers"], img.layers, strict=True):
        blob = _blob(img, layer.digest)
        assert desc == {"mediaType": layer.media_type, "digest": layer.digest, "size": len(blob)}
        assert _sha(blob) == layer.digest
        tar_bytes = _decompress(blob, layer.media_type)
        assert _sha(tar_bytes) == layer.diff_id
        assert len(tar_bytes) == layer.uncompressed_size
    index = json.loads((img.path / "index.json").read_text())
    assert index["manifests"] == [
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": img.manifest_digest,
            "size": img.image.manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": "latest"},
        }
    ]
    assert json.loads((img.path / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}


def test_layers_are_real_tars_with_fixed_metadata_and_the_asked_content_size(
    tmp_path: Path,
) -> None:
    img = write_oci_layout(tmp_path / "oci", layers=[LayerSpec(10_001, files=4)])
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(_blob(img, img.layer_digests[0])))) as t:
        members = t.getmembers()
        files = [m for m in members if m.isfile()]
        assert members[0].isdir()
        assert len(files) == 4
        assert sum(m.size for m in files) == 10_001
        assert {m.mtime for m in members} == {1_700_000_000}
        assert {(m.uid, m.gid) for m in members} == {(0, 0)}
        assert all(len(t.extractfile(m).read()) == m.size for m in files)  # type: ignore[union-attr]


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    specs = [LayerSpec(5000), LayerSpec(5000, "text")]
    a = write_oci_layout(tmp_path / "a", layers=specs, seed=7)
    b = write_oci_layout(tmp_path / "b", layers=specs, seed=7)
    c = write_oci_layout(tmp_path / "c", layers=specs, seed=8)
    assert a.manifest_digest == b.manifest_digest
    assert a.layer_digests == b.layer_digests
    assert not set(a.layer_digests) & set(c.layer_digests)
    assert a.diff_ids != c.diff_ids


def test_random_content_is_incompressible_and_text_compresses(tmp_path: Path) -> None:
    img = write_oci_layout(
        tmp_path / "oci", layers=[LayerSpec(1 << 20), LayerSpec(1 << 20, "text")]
    )
    random_layer, text_layer = img.layers
    assert random_layer.size > random_layer.uncompressed_size * 0.99
    ratio = text_layer.uncompressed_size / text_layer.size
    assert 2.0 < ratio < 4.0


def test_multi_platform_layout_tags_an_index_of_distinct_images(tmp_path: Path) -> None:
    img = write_oci_layout(tmp_path / "oci", layers=[300, 400], platforms=3, tags=["latest", "v1"])
    assert img.index_digest is not None and img.index_bytes is not None
    assert img.digest == img.index_digest
    index = json.loads(_blob(img, img.index_digest))
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    platforms = [m["platform"] for m in index["manifests"]]
    assert platforms == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux", "variant": "v8"},
        {"architecture": "arm", "os": "linux", "variant": "v7"},
    ]
    assert len({im.manifest_digest for im in img.images}) == 3
    assert len({d for im in img.images for d in im.layer_digests}) == 6
    for im in img.images:
        config = json.loads(_blob(img, im.config_digest))
        assert config["architecture"] == im.platform.architecture
    top = json.loads((img.path / "index.json").read_text())["manifests"]
    assert [(m["digest"], m["annotations"]["org.opencontainers.image.ref.name"]) for m in top] == [
        (img.index_digest, "latest"),
        (img.index_digest, "v1"),
    ]


def test_docker_format_in_a_layout_uses_docker_media_types(tmp_path: Path) -> None:
    img = write_oci_layout(
        tmp_path / "oci",
        layers=[100, LayerSpec(100, foreign=True)],
        manifest_format="docker",
        platforms=[Platform("linux", "amd64"), Platform("windows", "amd64")],
    )
    assert img.index_media_type == "application/vnd.docker.distribution.manifest.list.v2+json"
    manifest = json.loads(img.image.manifest_bytes)
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert manifest["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json"
    normal, foreign = manifest["layers"]
    assert normal["mediaType"] == "application/vnd.docker.image.rootfs.diff.tar.gzip"
    assert foreign["mediaType"] == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    assert foreign["urls"] == [f"https://example.invalid/layers/{foreign['digest']}"]
    with pytest.raises(ValueError, match="zstd"):
        write_oci_layout(tmp_path / "z", manifest_format="docker", compression="zstd")


def test_foreign_layer_is_non_distributable_with_urls_and_still_in_rootfs(tmp_path: Path) -> None:
    img = write_oci_layout(tmp_path / "oci", layers=[LayerSpec(100, foreign=True), 100])
    foreign = img.layers[0]
    assert foreign.media_type == "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    assert foreign.urls and foreign.descriptor()["urls"] == list(foreign.urls)
    config = json.loads(img.image.config_bytes)
    assert config["rootfs"]["diff_ids"][0] == foreign.diff_id


def test_writing_a_tag_again_moves_it_and_keeps_other_tags(tmp_path: Path) -> None:
    first = write_oci_layout(tmp_path / "oci", layers=[10], seed=1, tags=["a", "b"])
    second = write_oci_layout(tmp_path / "oci", layers=[10], seed=2, tags=["b"])
    top = json.loads((tmp_path / "oci" / "index.json").read_text())["manifests"]
    tags = {m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"] for m in top}
    assert tags == {"a": first.manifest_digest, "b": second.manifest_digest}


def test_classic_docker_archive_matches_docker_save(tmp_path: Path) -> None:
    img = write_docker_archive(
        tmp_path / "img.tar", layers=[1000, LayerSpec(2000, "text")], tags=["example/app:1", "x:2"]
    )
    with tarfile.open(img.path) as tar:
        names = tar.getnames()

        def read(name: str) -> bytes:
            f = tar.extractfile(name)
            assert f is not None
            return f.read()

        (entry,) = json.loads(read("manifest.json"))
        assert entry["RepoTags"] == ["example/app:1", "x:2"]
        assert entry["Config"] == img.config_digest.split(":")[1] + ".json"
        assert json.loads(read(entry["Config"]))["rootfs"]["diff_ids"] == list(img.diff_ids)
        for member, layer in zip(entry["Layers"], img.layers, strict=True):
            assert member.endswith("/layer.tar") and member == layer.member
            assert _sha(read(member)) == layer.diff_id == layer.digest
            v1_dir = member.rsplit("/", 1)[0]
            assert read(f"{v1_dir}/VERSION") == b"1.0"
            assert json.loads(read(f"{v1_dir}/json"))["id"] == v1_dir
        repos = json.loads(read("repositories"))
        top = entry["Layers"][-1].split("/")[0]
        assert repos == {"example/app": {"1": top}, "x": {"2": top}}
        assert "oci-layout" not in names
    assert _sha(read_blob(img, img.layer_digests[1])) == img.layer_digests[1]
    assert read_blob(img, img.config_digest) == img.image.config_bytes


def test_docker25_archive_is_an_oci_layout_plus_manifest_json(tmp_path: Path) -> None:
    img = write_docker_archive(tmp_path / "img.tar", layers=[1000, 500], oci_layout=True)
    with tarfile.open(img.path) as tar:

        def read(name: str) -> bytes:
            f = tar.extractfile(name)
            assert f is not None
            return f.read()

        (entry,) = json.loads(read("manifest.json"))
        assert entry["Config"] == "blobs/sha256/" + img.config_digest.split(":")[1]
        assert entry["Layers"] == [f"blobs/sha256/{d.split(':')[1]}" for d in img.layer_digests]
        (desc,) = json.loads(read("index.json"))["manifests"]
        assert desc["digest"] == img.manifest_digest
        assert desc["annotations"] == {
            "io.containerd.image.name": "localhost/yardarm-test:latest",
            "org.opencontainers.image.ref.name": "latest",
        }
        manifest = json.loads(read("blobs/sha256/" + img.manifest_digest.split(":")[1]))
        assert [m["mediaType"] for m in manifest["layers"]] == [
            "application/vnd.oci.image.layer.v1.tar"
        ] * 2
        assert read("oci-layout") == b'{"imageLayoutVersion":"1.0.0"}'


@pytest.mark.parametrize(
    ("content", "compression"), [("random", "gzip"), ("text", "zstd"), ("random", "none")]
)
def test_memory_stays_flat_for_big_layers(tmp_path: Path, content: str, compression: str) -> None:
    tracemalloc.start()
    try:
        img = write_oci_layout(
            tmp_path / "oci",
            layers=[LayerSpec(48 << 20, content)],  # type: ignore[arg-type]
            compression=compression,  # type: ignore[arg-type]
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert img.layers[0].uncompressed_size > 48 << 20
    assert peak < 12 << 20, f"peak {peak / 2**20:.1f} MiB while writing a 48 MiB layer"
