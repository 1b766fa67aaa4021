"""Round trips through archives and layouts written by tools nobody here wrote.

The test generator's images go to the real registry with skopeo; skopeo then writes them out
as docker-archive, oci-archive and oci layouts, and umoci builds layouts of its own. yardarm
loads each and must report the config digest, diff IDs (and manifest digest where the format
keeps one) that skopeo reads from the same files.

Needs: docker-registry, skopeo, umoci (Debian package `umoci`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import skopeo
from support.imagegen import LayerSpec, write_oci_layout
from support.registry import RunningRegistry

pytestmark = pytest.mark.registry


def _yardarm(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        [sys.executable, "-m", "yardarm", "--store", str(store), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    return res


def _inspect(store: Path, name: str) -> dict[str, object]:
    (info,) = json.loads(_yardarm(store, "inspect", name).stdout)
    assert isinstance(info, dict)
    return info


def _skopeo_facts(ref: str) -> tuple[str, list[str], str]:
    """(config digest, diff ids, manifest digest) as skopeo reads them from ``ref``."""
    raw_config = skopeo.run(["inspect", "--config", "--raw", ref]).stdout.encode()
    raw_manifest = skopeo.run(["inspect", "--raw", ref]).stdout.encode()
    config = json.loads(raw_config)
    return (
        "sha256:" + hashlib.sha256(raw_config).hexdigest(),
        list(config["rootfs"]["diff_ids"]),
        "sha256:" + hashlib.sha256(raw_manifest).hexdigest(),
    )


@pytest.fixture(scope="module")
def pushed(
    request: pytest.FixtureRequest,
    registry_plain: RunningRegistry,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[RunningRegistry, str]:
    """A three-layer image (text and random content) pushed by skopeo to the registry."""
    compression = request.param
    base = tmp_path_factory.mktemp("gen")
    gen = write_oci_layout(
        base / "layout",
        layers=[LayerSpec(300_000, "text", files=3), LayerSpec(200_000), LayerSpec(10)],
        seed=41,
        compression=compression,
        tags=("v1",),
    )
    repo = f"store/roundtrip-{compression}"
    skopeo.copy_to_registry(gen.skopeo_ref("v1"), registry_plain, repo, "v1")
    return registry_plain, f"docker://{registry_plain.host}/{repo}:v1"


# skopeo cannot write zstd layers into a docker-archive, so that pair is not a case.
@pytest.mark.parametrize(
    ("pushed", "transport"),
    [
        ("gzip", "docker-archive"),
        ("gzip", "oci-archive"),
        ("gzip", "oci"),
        ("zstd", "oci-archive"),
        ("zstd", "oci"),
    ],
    indirect=["pushed"],
)
def test_skopeo_written_inputs_load_with_the_digests_skopeo_reports(
    pushed: tuple[RunningRegistry, str], tmp_path: Path, transport: str
) -> None:
    reg, source = pushed
    target = tmp_path / ("layout" if transport == "oci" else "image.tar")
    name = f"localhost/store/{transport}:1"
    dest = f"{transport}:{target}:{name}"
    skopeo.run(["copy", "--retry-times=0", *skopeo.registry_flags(reg, "src"), source, dest])
    store = tmp_path / "store"
    res = _yardarm(store, "load", str(target))
    assert res.stdout == f"Loaded image: {name}\n"
    config_digest, diff_ids, manifest_digest = _skopeo_facts(dest)
    info = _inspect(store, name)
    assert info["ConfigDigest"] == config_digest
    assert info["RootFS"] == {"Type": "layers", "Layers": diff_ids}
    if transport != "docker-archive":  # docker-archive keeps no manifest
        assert info["ManifestDigest"] == manifest_digest
    # what the store keeps reads back exactly: every layer decompresses to its diff id
    from yardarm.store import Image, Store

    with Store.open(store) as s:
        image = s.get(name)
        assert isinstance(image, Image)
        for lay in s.layers.for_image(image):
            with lay.open() as f:
                h = hashlib.sha256()
                while chunk := f.read(1 << 16):
                    h.update(chunk)
            assert "sha256:" + h.hexdigest() == str(lay.diff_id)


def test_skopeo_multi_platform_layout_loads_as_an_index(
    registry_plain: RunningRegistry, tmp_path: Path
) -> None:
    gen = write_oci_layout(
        tmp_path / "gen", layers=[LayerSpec(5000)], seed=42, platforms=3, tags=("multi",)
    )
    skopeo.copy_to_registry(
        gen.skopeo_ref("multi"), registry_plain, "store/multi", "m", all_platforms=True
    )
    layout = tmp_path / "copied"
    skopeo.run(
        [
            "copy",
            "--all",
            *skopeo.registry_flags(registry_plain, "src"),
            f"docker://{registry_plain.host}/store/multi:m",
            f"oci:{layout}:localhost/store/multi:m",
        ]
    )
    store = tmp_path / "store"
    _yardarm(store, "load", str(layout))
    info = _inspect(store, "localhost/store/multi:m")
    raw_index = skopeo.run(["inspect", "--raw", f"oci:{layout}:localhost/store/multi:m"]).stdout
    assert info["Id"] == "sha256:" + hashlib.sha256(raw_index.encode()).hexdigest()
    children = info["Children"]
    assert isinstance(children, list) and len(children) == 3
    assert [c["Id"] for c in children] == [img.config_digest for img in gen.images]


@pytest.fixture(scope="module")
def umoci_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("umoci") is None:
        pytest.fail("umoci is not installed (apt-get install umoci)")
    base = tmp_path_factory.mktemp("umoci")
    layout = base / "layout"
    subprocess.run(["umoci", "init", "--layout", str(layout)], check=True)
    subprocess.run(["umoci", "new", "--image", f"{layout}:t1"], check=True)
    payload = base / "payload"
    payload.mkdir()
    (payload / "hello.txt").write_text("hello from umoci\n" * 1000)
    subprocess.run(
        ["umoci", "insert", "--image", f"{layout}:t1", str(payload), "/opt/payload"], check=True
    )
    subprocess.run(
        ["umoci", "insert", "--image", f"{layout}:t1", str(payload / "hello.txt"), "/etc/x"],
        check=True,
    )
    return layout


def test_umoci_layout_loads_with_the_digests_skopeo_reports(
    umoci_layout: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    res = _yardarm(store, "load", str(umoci_layout))
    # umoci names images by a bare tag ("t1"): no repository, so docker prints the ID
    config_digest, diff_ids, manifest_digest = _skopeo_facts(f"oci:{umoci_layout}:t1")
    assert res.stdout == f"Loaded image ID: {config_digest}\n"
    info = _inspect(store, config_digest)
    assert info["RootFS"] == {"Type": "layers", "Layers": diff_ids}
    assert len(diff_ids) == 2
    assert info["ManifestDigest"] == manifest_digest


def test_umoci_layout_survives_a_trip_through_oci_archive(
    umoci_layout: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "u.tar"
    skopeo.run(["copy", f"oci:{umoci_layout}:t1", f"oci-archive:{archive}:localhost/u/m:1"])
    store = tmp_path / "store"
    with archive.open("rb") as f:  # and through stdin
        res = subprocess.run(
            [sys.executable, "-m", "yardarm", "--store", str(store), "load"],
            stdin=f,
            capture_output=True,
            text=True,
            check=False,
        )
    assert res.returncode == 0, res.stderr
    assert res.stdout == "Loaded image: localhost/u/m:1\n"
    config_digest, diff_ids, _ = _skopeo_facts(f"oci-archive:{archive}:localhost/u/m:1")
    info = _inspect(store, "localhost/u/m:1")
    assert (info["ConfigDigest"], info["RootFS"]["Layers"]) == (config_digest, diff_ids)  # type: ignore[index]
