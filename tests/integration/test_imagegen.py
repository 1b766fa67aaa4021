"""skopeo, an independent implementation, accepts every image the generator writes, and copies
them into the real registries (which also proves the fixtures work for every mode)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support import skopeo
from support.imagegen import LayerSpec, write_docker_archive, write_oci_layout
from support.registry import RunningRegistry

pytestmark = pytest.mark.registry


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_skopeo_reads_oci_layouts(tmp_path: Path, compression: str) -> None:
    img = write_oci_layout(
        tmp_path / "oci",
        layers=[LayerSpec(2000), LayerSpec(5000, "text", files=2)],
        compression=compression,  # type: ignore[arg-type]
        tags=["latest", "v1"],
    )
    for tag in img.tags:
        info = skopeo.inspect(img.skopeo_ref(tag))
        assert isinstance(info, dict)
        assert info["Digest"] == img.manifest_digest
        assert info["Layers"] == list(img.layer_digests)
    raw = skopeo.inspect(img.skopeo_ref(), config=True)
    assert raw == json.loads(img.image.config_bytes)


def test_skopeo_reads_multi_platform_layouts_and_foreign_layers(tmp_path: Path) -> None:
    img = write_oci_layout(
        tmp_path / "oci", layers=[100, LayerSpec(100, foreign=True)], platforms=2
    )
    assert skopeo.inspect(img.skopeo_ref(), raw=True) == json.loads(img.index_bytes or b"")
    info = skopeo.inspect(img.skopeo_ref())  # resolves the index to this machine's platform
    assert isinstance(info, dict)
    assert info["Digest"] == img.index_digest
    assert info["Architecture"] == "amd64"
    assert info["Layers"] == list(img.images[0].layer_digests)


def test_docker_format_layouts_are_valid_images_for_the_registry_and_skopeo(
    tmp_path: Path, registry_plain: RunningRegistry, repo_name: str
) -> None:
    # skopeo 1.9 skips index.json entries with Docker media types (go-containerregistry writes
    # them), so the registry is the judge: seed it with raw HTTP, then read it with skopeo.
    img = write_oci_layout(
        tmp_path / "oci", layers=[100, LayerSpec(100, foreign=True)], manifest_format="docker"
    )
    assert registry_plain.seed_image(repo_name, img) == img.manifest_digest
    raw = skopeo.inspect_registry(registry_plain, repo_name, "latest")
    assert raw == json.loads(img.image.manifest_bytes)
    config = json.loads(
        skopeo.run(
            [
                "inspect",
                "--config",
                "--raw",
                "--tls-verify=false",
                f"docker://{registry_plain.host}/{repo_name}:latest",
            ]
        ).stdout
    )
    assert config["rootfs"]["diff_ids"] == list(img.diff_ids)


def test_seed_image_pushes_multi_platform_docker_lists(
    tmp_path: Path, registry_plain: RunningRegistry, repo_name: str
) -> None:
    img = write_oci_layout(tmp_path / "oci", layers=[100], platforms=2, manifest_format="docker")
    assert registry_plain.seed_image(repo_name, img, "multi") == img.index_digest
    raw = skopeo.inspect_registry(registry_plain, repo_name, "multi")
    assert raw == json.loads(img.index_bytes or b"")


@pytest.mark.parametrize("oci_layout", [False, True], ids=["classic", "docker25"])
@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_skopeo_reads_docker_archives(tmp_path: Path, oci_layout: bool, compression: str) -> None:
    img = write_docker_archive(
        tmp_path / "img.tar",
        layers=[1000, LayerSpec(3000, "text")],
        oci_layout=oci_layout,
        compression=compression,  # type: ignore[arg-type]
        tags=["example.com/app:v1"],
    )
    info = skopeo.inspect(img.skopeo_ref())
    assert isinstance(info, dict)
    # skopeo names archive layers by DiffID (it serves them uncompressed).
    assert info["Layers"] == list(img.diff_ids)
    assert skopeo.inspect(img.skopeo_ref(), config=True) == json.loads(img.image.config_bytes)


def _manifest_digest(reg: RunningRegistry, repo: str, ref: str, accept: str, auth: str) -> str:
    headers = {"Accept": accept}
    if auth:
        headers["Authorization"] = auth
    resp = reg.request("HEAD", f"/v2/{repo}/manifests/{ref}", headers=headers)
    assert resp.status == 200, resp.headers
    return resp.headers["docker-content-digest"]


def test_skopeo_copies_a_layout_to_the_plain_registry_keeping_digests(
    tmp_path: Path, registry_plain: RunningRegistry, repo_name: str
) -> None:
    img = write_oci_layout(tmp_path / "oci", layers=[LayerSpec(300_000), LayerSpec(100, "text")])
    mark = registry_plain.log_mark()
    skopeo.copy_to_registry(img.skopeo_ref(), registry_plain, repo_name, "v1")
    digest = _manifest_digest(
        registry_plain, repo_name, "v1", "application/vnd.oci.image.manifest.v1+json", ""
    )
    assert digest == img.manifest_digest
    puts = [e for e in registry_plain.access_log(mark) if e.method == "PUT"]
    assert [e.status for e in puts].count(201) == 4  # 2 layers, config, manifest
    assert all(e.user_agent.startswith("skopeo") for e in puts)


def test_skopeo_copies_a_multi_platform_index(
    tmp_path: Path, registry_plain: RunningRegistry, repo_name: str
) -> None:
    img = write_oci_layout(tmp_path / "oci", layers=[100, 200], platforms=3)
    skopeo.copy_to_registry(img.skopeo_ref(), registry_plain, repo_name, all_platforms=True)
    assert img.index_digest == _manifest_digest(
        registry_plain, repo_name, "latest", "application/vnd.oci.image.index.v1+json", ""
    )
    for im in img.images:
        resp = registry_plain.request(
            "HEAD",
            f"/v2/{repo_name}/manifests/{im.manifest_digest}",
            headers={"Accept": im.manifest_media_type},
        )
        assert resp.status == 200


def test_skopeo_copies_a_docker_archive_and_the_diff_ids_survive(
    tmp_path: Path, registry_plain: RunningRegistry, repo_name: str
) -> None:
    img = write_docker_archive(tmp_path / "img.tar", layers=[1000, LayerSpec(3000, "text")])
    skopeo.copy_to_registry(img.skopeo_ref(), registry_plain, repo_name)
    config = skopeo.inspect_registry(registry_plain, repo_name, "latest", raw=False)
    assert isinstance(config, dict)
    assert len(config["Layers"]) == 2  # compressed by skopeo, so new digests
    pushed = json.loads(
        skopeo.run(
            [
                "inspect",
                "--config",
                "--raw",
                "--tls-verify=false",
                f"docker://{registry_plain.host}/{repo_name}:latest",
            ]
        ).stdout
    )
    assert pushed["rootfs"]["diff_ids"] == list(img.diff_ids)


@pytest.mark.parametrize(
    ("fixture", "user"),
    [("registry_tls", None), ("registry_basic", "pusher"), ("registry_token", "pusher")],
)
def test_skopeo_pushes_to_every_auth_mode(
    tmp_path: Path, request: pytest.FixtureRequest, repo_name: str, fixture: str, user: str | None
) -> None:
    reg: RunningRegistry = request.getfixturevalue(fixture)
    img = write_oci_layout(tmp_path / "oci", layers=[1000])
    skopeo.copy_to_registry(img.skopeo_ref(), reg, repo_name, user=user)
    raw = skopeo.inspect_registry(reg, repo_name, "latest", user=user)
    assert raw == json.loads(img.image.manifest_bytes)
    if reg.token_server is not None:
        assert reg.token_server.requests >= 1


def test_token_registry_refuses_a_reader_push(
    tmp_path: Path, registry_token: RunningRegistry, repo_name: str
) -> None:
    img = write_oci_layout(tmp_path / "oci", layers=[100])
    with pytest.raises(AssertionError, match=r"(?i)unauthorized|denied|authentication"):
        skopeo.copy_to_registry(img.skopeo_ref(), registry_token, repo_name, user="reader")


def test_foreign_layers_are_referenced_not_uploaded(
    tmp_path: Path, registry_plain: RunningRegistry, repo_name: str
) -> None:
    img = write_oci_layout(tmp_path / "oci", layers=[LayerSpec(100, foreign=True), 200])
    skopeo.copy_to_registry(img.skopeo_ref(), registry_plain, repo_name)
    raw = skopeo.inspect_registry(registry_plain, repo_name, "latest")
    assert raw == json.loads(img.image.manifest_bytes)
    foreign, normal = img.layer_digests
    blob = f"/v2/{repo_name}/blobs/"
    assert registry_plain.request("HEAD", blob + foreign).status == 404
    assert registry_plain.request("HEAD", blob + normal).status == 200
