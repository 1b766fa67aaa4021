"""The store's behaviour seen from its API and its commands (no registry needed)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from corpus.gen import OCI_INDEX, make_image, sha, write_docker_archive, write_layout
from yardarm.digest import Digest
from yardarm.errors import ImageNotFound, StoreError
from yardarm.reference import parse
from yardarm.store import Image, ImageIndex, Store, chain_ids


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(tmp_path / "store")
    yield s  # type: ignore[misc]
    s.close()


def _sha_stream(f: object) -> str:
    h = hashlib.sha256()
    while chunk := f.read(1 << 16):  # type: ignore[attr-defined]
        h.update(chunk)
    return "sha256:" + h.hexdigest()


def run_cli(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "yardarm", "--store", str(store), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_chain_id_follows_the_moby_formula() -> None:
    a, b = Digest("sha256", "a" * 64), Digest("sha256", "b" * 64)
    expected = hashlib.sha256(f"{a} {b}".encode()).hexdigest()
    assert chain_ids([a, b]) == [a, Digest("sha256", expected)]


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_layout_load_keeps_original_blobs_and_manifest_bytes(
    store: Store, tmp_path: Path, compression: str
) -> None:
    img = make_image(3, [70000, 10, 300000], compression)
    write_layout(tmp_path / "lay", [(img, "localhost/t/img:1")])
    loaded = store.load(tmp_path / "lay")
    assert [(str(x.id), [r.familiar() for r in x.tags]) for x in loaded] == [
        (img.config_digest, ["localhost/t/img:1"])
    ]
    image = store.images.get(store.references.get(parse("localhost/t/img:1")))
    assert isinstance(image, Image)
    assert image.manifest_raw == img.manifest
    assert image.config_raw == img.config
    assert [str(x) for x in image.diff_ids] == img.diff_ids
    assert image.source_format == "oci"
    layers = store.layers.for_image(image)
    assert [str(lay.chain_id) for lay in layers] == [str(c) for c in chain_ids(image.diff_ids)]
    for lay, gen in zip(layers, img.layers, strict=True):
        assert lay.size == len(gen.tar)
        assert lay.blob is not None and str(lay.blob.digest) == gen.digest
        if compression == "none":
            assert lay.compressed is None and lay.compressed_path() is None
        else:
            assert lay.compressed is not None and lay.compressed.compression == compression
            path = lay.compressed_path()
            assert path is not None and path.read_bytes() == gen.blob
            with lay.open_compressed() as f:
                assert f.read() == gen.blob
        with lay.open() as f:
            assert _sha_stream(f) == gen.diff_id


def test_docker_archive_load_prints_familiar_tags_like_docker(tmp_path: Path) -> None:
    a = make_image(4, [1000], "none")
    b = make_image(5, [2000], "none")
    archive = tmp_path / "a.tar"
    write_docker_archive(archive, [(a, ["busybox:latest", "localhost:5000/x/y:2"]), (b, [])])
    res = run_cli(tmp_path / "store", "load", "-i", str(archive))
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        "Loaded image: busybox:latest",
        "Loaded image: localhost:5000/x/y:2",
        f"Loaded image ID: {b.config_digest}",
    ]
    with Store.open(tmp_path / "store") as s:
        image = s.get("docker.io/library/busybox:latest")
        assert isinstance(image, Image)
        assert image.manifest_raw is None and image.source_format == "docker"
        lay = s.layers.for_image(image)[0]
        assert lay.compressed is None and lay.blob is not None
        assert lay.blob.media_type == "application/vnd.docker.image.rootfs.diff.tar"


def test_stdin_load_reads_the_archive_once_from_a_pipe(tmp_path: Path) -> None:
    img = make_image(6, [5000], "none")
    archive = tmp_path / "a.tar"
    write_docker_archive(archive, [(img, ["localhost/p/q:1"])])
    with archive.open("rb") as f:
        res = subprocess.run(
            [sys.executable, "-m", "yardarm", "--store", str(tmp_path / "s"), "load"],
            stdin=f,
            capture_output=True,
            text=True,
            check=False,
        )
    assert res.returncode == 0, res.stderr
    assert res.stdout == "Loaded image: localhost/p/q:1\n"


def test_multi_platform_index_is_kept_with_its_children(store: Store, tmp_path: Path) -> None:
    amd = make_image(10, [1000], "gzip", arch="amd64")
    arm = make_image(11, [1000], "gzip", arch="arm64")
    root = tmp_path / "lay"
    write_layout(root, [(amd, None), (arm, None)])
    entries = []
    for img, arch in ((amd, "amd64"), (arm, "arm64")):
        entries.append(
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": img.manifest_digest,
                "size": len(img.manifest),
                "platform": {"architecture": arch, "os": "linux"},
            }
        )
    raw = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    (root / "blobs/sha256" / sha(raw)[7:]).write_bytes(raw)
    top = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": OCI_INDEX,
                "digest": sha(raw),
                "size": len(raw),
                "annotations": {"org.opencontainers.image.ref.name": "localhost/m/p:1"},
            }
        ],
    }
    (root / "index.json").write_text(json.dumps(top))
    loaded = store.load(root)
    assert [str(x.id) for x in loaded] == [sha(raw)]
    index = store.get("localhost/m/p:1")
    assert isinstance(index, ImageIndex)
    assert index.raw == raw
    assert [(str(c), d.platform and d.platform.architecture) for d, c in index.children] == [
        (amd.config_digest, "amd64"),
        (arm.config_digest, "arm64"),
    ]
    child = store.images.get(index.children[1][1])
    assert isinstance(child, Image) and child.platform is not None
    assert child.platform.architecture == "arm64"
    # removing the index takes its children and their files
    store.remove("localhost/m/p:1")
    assert store.images.ids() == []
    assert list(store.blobs.all_files()) == []


def test_foreign_layer_without_content_keeps_its_descriptor(store: Store, tmp_path: Path) -> None:
    img = make_image(12, [1000, 2000], "gzip")
    manifest = json.loads(img.manifest)
    manifest["layers"][0]["mediaType"] = (
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    )
    manifest["layers"][0]["urls"] = ["https://example.com/layer"]
    img.manifest = json.dumps(manifest).encode()
    root = tmp_path / "lay"
    write_layout(root, [(img, "localhost/f/g:1")])
    (root / "blobs/sha256" / img.layers[0].digest[7:]).unlink()
    store.load(root)
    image = store.get("localhost/f/g:1")
    assert isinstance(image, Image)
    foreign, normal = store.layers.for_image(image)
    assert foreign.foreign is not None and foreign.foreign.urls == ("https://example.com/layer",)
    assert foreign.blob is None and foreign.size == -1
    assert str(foreign.diff_id) == img.layers[0].diff_id
    assert normal.compressed is not None


def test_rmi_keeps_layers_shared_with_other_images_and_removes_the_rest(
    store: Store, tmp_path: Path
) -> None:
    base = make_image(20, [4000], "gzip")
    child = make_image(21, [4000, 5000], "gzip")
    # child shares base's first layer: rebuild child's config on top of base's layer
    child.layers[0] = base.layers[0]
    cfg = json.loads(child.config)
    cfg["rootfs"]["diff_ids"] = child.diff_ids
    child.config = json.dumps(cfg).encode()
    m = json.loads(child.manifest)
    m["config"].update(digest=child.config_digest, size=len(child.config))
    m["layers"][0].update(digest=base.layers[0].digest, size=len(base.layers[0].blob))
    child.manifest = json.dumps(m).encode()
    write_layout(tmp_path / "lay", [(base, "localhost/r/base:1"), (child, "localhost/r/child:1")])
    store.load(tmp_path / "lay")
    files_before = {p.name for _, p in store.blobs.all_files()}
    assert files_before == {lay.digest[7:] for lay in (*base.layers, child.layers[1])}
    untagged, deleted = store.remove("localhost/r/child:1")
    assert [r.familiar() for r in untagged] == ["localhost/r/child:1"]
    assert [str(d) for d in deleted] == [child.config_digest]
    assert {p.name for _, p in store.blobs.all_files()} == {base.layers[0].digest[7:]}
    image = store.get("localhost/r/base:1")
    assert isinstance(image, Image)
    with store.layers.for_image(image)[0].open() as f:
        assert _sha_stream(f) == base.diff_ids[0]
    with pytest.raises(ImageNotFound):
        store.get("localhost/r/child:1")


def test_tag_and_remove_by_id(store: Store, tmp_path: Path) -> None:
    img = make_image(30, [100], "gzip")
    write_layout(tmp_path / "lay", [(img, "localhost/a/b:1")])
    store.load(tmp_path / "lay")
    target, _ = store.resolve(img.config_digest[7:19])
    store.references.add_tag(parse("localhost/c/d:2"), target)
    assert store.references.get(parse("localhost/c/d:2")) == target
    with pytest.raises(StoreError, match="multiple repositories"):
        store.remove(img.config_digest[7:19])
    untagged, deleted = store.remove(img.config_digest, force=True)
    assert sorted(r.familiar() for r in untagged) == ["localhost/a/b:1", "localhost/c/d:2"]
    assert [str(d) for d in deleted] == [img.config_digest]


def test_digest_reference_after_push_is_listed_by_name(store: Store, tmp_path: Path) -> None:
    img = make_image(31, [100], "gzip")
    write_layout(tmp_path / "lay", [(img, "localhost/a/b:1")])
    store.load(tmp_path / "lay")
    target = store.references.get(parse("localhost/a/b:1"))
    ref = parse(f"localhost/a/b@{img.manifest_digest}")
    store.references.add_digest_reference(ref, target)
    by_name = store.references.references_by_name(parse("localhost/a/b"))
    assert sorted(str(r) for r, _ in by_name) == sorted(
        ["localhost/a/b:1", f"localhost/a/b@{img.manifest_digest}"]
    )
    assert store.references.get(ref) == target
    with pytest.raises(ImageNotFound, match="localhost/a/b:latest"):
        store.references.get(parse("localhost/a/b"))  # a bare name means :latest


def test_prune_removes_dangling_images_leftover_temps_and_orphan_files(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store"
    img = make_image(40, [3000], "gzip")
    write_docker_archive(tmp_path / "a.tar", [(img, [])])
    with Store.open(path) as s:
        s.load(tmp_path / "a.tar")
        assert len(s.images.ids()) == 1
    orphan = path / "blobs" / "sha256" / ("f" * 64)
    orphan.write_bytes(b"junk")
    dead_temp = path / "tmp" / "999999999-x.part"
    dead_temp.write_bytes(b"junk")
    with Store.open(path) as s:  # opening sweeps garbage
        assert not orphan.exists() and not dead_temp.exists()
        result = s.prune()
        assert [str(d) for d in result.images_removed] == [img.config_digest]
        assert result.layers_removed == 1 and result.files_removed == 1
        assert list(s.blobs.all_files()) == []


def test_dir_import_is_deterministic_and_honours_mtime(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "b").mkdir(parents=True)
    (root / "b" / "z").write_text("z")
    (root / "a").write_text("a")
    os.symlink("a", root / "link")
    os.link(root / "a", root / "hard")
    with Store.open(tmp_path / "s") as s:
        first = s.import_path(root, parse("localhost/i/d:1"), created=0)
        os.utime(root / "a", (12345, 12345))
        os.utime(root / "b", (999, 999))
        second = s.import_path(root, parse("localhost/i/d:2"), created=0)
        assert first.id == second.id
        third = s.import_path(root, parse("localhost/i/d:3"), mtime=1000, created=0)
        assert third.id != first.id
        image = s.get("localhost/i/d:1")
        assert isinstance(image, Image)
        config = image.config()
        assert config["os"] == "linux" and config["rootfs"]["type"] == "layers"
        assert config["architecture"] in {"amd64", "arm64", "arm", "386", "ppc64le", "s390x"}
        lay = s.layers.for_image(image)[0]
        with lay.open() as f, tarfile.open(fileobj=f, mode="r|") as tf:
            members = [(m.name, m.uid, m.gid, m.uname, m.mtime, m.type) for m in tf]
    assert [m[0] for m in members] == ["a", "b", "b/z", "hard", "link"]
    assert all(m[1:5] == (0, 0, "", 0) for m in members)
    assert members[3][5] == tarfile.LNKTYPE and members[4][5] == tarfile.SYMTYPE


def test_import_of_a_gzip_tarball_keeps_it_byte_for_byte(tmp_path: Path) -> None:
    img = make_image(50, [20000], "gzip")
    tarball = tmp_path / "rootfs.tar.gz"
    tarball.write_bytes(img.layers[0].blob)
    res = run_cli(tmp_path / "s", "import", str(tarball), "localhost/imp/x:7")
    assert res.returncode == 0, res.stderr
    with Store.open(tmp_path / "s") as s:
        image = s.get("localhost/imp/x:7")
        assert isinstance(image, Image)
        assert [str(d) for d in image.diff_ids] == [img.layers[0].diff_id]
        lay = s.layers.for_image(image)[0]
        assert lay.compressed is not None and str(lay.compressed.digest) == img.layers[0].digest


def test_import_refuses_what_is_not_a_tar(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"hello" * 300)
    res = run_cli(tmp_path / "s", "import", str(bad), "localhost/x/y:1")
    assert res.returncode == 1
    assert res.stderr == f"yardarm: error: {bad}: not a tar archive\n"


def test_images_table_and_json(tmp_path: Path) -> None:
    img = make_image(60, [1000], "gzip")
    write_layout(tmp_path / "lay", [(img, "localhost/l/m:1")])
    assert run_cli(tmp_path / "s", "load", str(tmp_path / "lay")).returncode == 0
    table = run_cli(tmp_path / "s", "images").stdout.splitlines()
    assert table[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert table[1].split()[:3] == ["localhost/l/m", "1", img.config_digest[7:19]]
    rows = [
        json.loads(line)
        for line in run_cli(tmp_path / "s", "images", "--format", "json").stdout.splitlines()
    ]
    assert rows == [
        {
            "Repository": "localhost/l/m",
            "Tag": "1",
            "ID": img.config_digest,
            "Created": rows[0]["Created"],
            "Size": len(img.layers[0].tar),
        }
    ]


def test_inspect_shows_config_digest_diff_ids_and_manifest(tmp_path: Path) -> None:
    img = make_image(61, [1000, 2000], "zstd")
    write_layout(tmp_path / "lay", [(img, "localhost/l/n:1")])
    assert run_cli(tmp_path / "s", "load", str(tmp_path / "lay")).returncode == 0
    res = run_cli(tmp_path / "s", "inspect", "localhost/l/n:1")
    assert res.returncode == 0, res.stderr
    (info,) = json.loads(res.stdout)
    assert info["ConfigDigest"] == img.config_digest
    assert info["RootFS"]["Layers"] == img.diff_ids
    assert info["ManifestDigest"] == img.manifest_digest
    assert info["Manifest"] == json.loads(img.manifest)
    missing = run_cli(tmp_path / "s", "inspect", "localhost/l/none:1")
    assert missing.returncode == 1
    assert missing.stderr == "yardarm: error: no such image: localhost/l/none:1\n"


def test_two_processes_can_load_into_one_store_at_once(tmp_path: Path) -> None:
    procs = []
    for seed in range(70, 74):
        img = make_image(seed, [2_000_000], "gzip", compressible=False)
        write_layout(tmp_path / f"lay{seed}", [(img, f"localhost/c/p:{seed}")])
    for seed in range(70, 74):
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "yardarm",
                    "--store",
                    str(tmp_path / "s"),
                    "load",
                    str(tmp_path / f"lay{seed}"),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outs = [p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outs
    with Store.open(tmp_path / "s") as s:
        assert len(s.images.ids()) == 4
        assert len(list(s.blobs.all_files())) == 4


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_docker_25_archive_keeps_the_oci_manifest_and_the_repo_tags(
    tmp_path: Path, compression: str
) -> None:
    from support.imagegen import LayerSpec
    from support.imagegen import write_docker_archive as gen_archive

    gen = gen_archive(
        tmp_path / "d25.tar",
        layers=[LayerSpec(3000), LayerSpec(100, "text")],
        seed=80,
        compression=compression,  # type: ignore[arg-type]
        tags=("localhost/d25/img:1", "localhost/d25/img:2"),
        oci_layout=True,
    )
    res = run_cli(tmp_path / "s", "load", "-i", str(gen.path))
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        "Loaded image: localhost/d25/img:1",
        "Loaded image: localhost/d25/img:2",
    ]
    with Store.open(tmp_path / "s") as s:
        image = s.get("localhost/d25/img:2")
        assert isinstance(image, Image)
        assert str(image.id) == gen.config_digest
        assert str(image.manifest_digest) == gen.manifest_digest
        assert [str(lay.blob.digest) for lay in s.layers.for_image(image) if lay.blob] == list(
            gen.layer_digests
        )


def test_classic_docker_archive_from_the_generator(tmp_path: Path) -> None:
    from support.imagegen import LayerSpec
    from support.imagegen import write_docker_archive as gen_archive

    gen = gen_archive(
        tmp_path / "d.tar", layers=[LayerSpec(3000), LayerSpec(10)], seed=81, tags=("x/y:z",)
    )
    res = run_cli(tmp_path / "s", "load", "-i", str(gen.path))
    assert res.stdout == "Loaded image: x/y:z\n", res.stderr
    (info,) = json.loads(run_cli(tmp_path / "s", "inspect", "x/y:z").stdout)
    assert info["ConfigDigest"] == gen.config_digest
    assert info["RootFS"]["Layers"] == list(gen.diff_ids)


def test_bare_oci_tags_load_untagged_unless_a_name_is_given(tmp_path: Path) -> None:
    img = make_image(82, [100], "gzip")
    write_layout(tmp_path / "lay", [(img, "v1")])
    res = run_cli(tmp_path / "s", "load", str(tmp_path / "lay"))
    assert res.stdout == f"Loaded image ID: {img.config_digest}\n"
    res = run_cli(tmp_path / "s", "load", "--name", "localhost/named/repo", str(tmp_path / "lay"))
    assert res.stdout == "Loaded image: localhost/named/repo:v1\n"


def test_rmi_reports_each_failure_and_goes_on(tmp_path: Path) -> None:
    img = make_image(83, [100], "gzip")
    write_layout(tmp_path / "lay", [(img, "localhost/r/m:1")])
    assert run_cli(tmp_path / "s", "load", str(tmp_path / "lay")).returncode == 0
    res = run_cli(tmp_path / "s", "rmi", "localhost/r/none:1", "localhost/r/m:1")
    assert res.returncode == 1
    assert res.stderr == "yardarm: error: no such image: localhost/r/none:1\n"
    assert res.stdout.splitlines() == ["Untagged: localhost/r/m:1", f"Deleted: {img.config_digest}"]


def test_memory_stays_flat_on_a_highly_compressed_layer(tmp_path: Path) -> None:
    """256 MiB of zeros in a ~250 KiB gzip: decompressed in fixed pieces, never held whole."""
    import io

    from isal import igzip

    size = 256 << 20
    tar_head = io.BytesIO()
    info = tarfile.TarInfo("zeros")
    info.size = size
    tar_head.write(info.tobuf(format=tarfile.PAX_FORMAT))
    tail = b"\0" * (512 * 2)  # the file is a multiple of 512: no padding, then the end marker
    diff = hashlib.sha256(tar_head.getvalue())
    blob = io.BytesIO()
    with igzip.IGzipFile(fileobj=blob, mode="wb", compresslevel=1) as gz:
        gz.write(tar_head.getvalue())
        zeros = b"\0" * (8 << 20)
        for _ in range(size // len(zeros)):
            gz.write(zeros)
            diff.update(zeros)
        gz.write(tail)
        diff.update(tail)
    data = blob.getvalue()
    assert len(data) < 1 << 20
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff.hexdigest()]},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": sha(data),
                    "size": len(data),
                }
            ],
        }
    ).encode()
    root = tmp_path / "lay"
    (root / "blobs/sha256").mkdir(parents=True)
    for b in (data, config, manifest):
        (root / "blobs/sha256" / sha(b)[7:]).write_bytes(b)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    entry = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": sha(manifest),
        "size": len(manifest),
    }
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    # The child reports its own high-water mark: rusage of a child forked from a big pytest
    # process counts the parent's pages it inherited before exec, so it is not trustworthy.
    child = (
        "import runpy, sys\n"
        "sys.argv = ['yardarm', '--store', sys.argv[1], 'load', sys.argv[2]]\n"
        "try:\n"
        "    runpy.run_module('yardarm', run_name='__main__')\n"
        "finally:\n"
        "    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')]\n"
        "    sys.stderr.write('PEAK ' + hwm[0].split()[1] + '\\n')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", child, str(tmp_path / "s"), str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    peak_kib = int(proc.stderr.rsplit("PEAK ", 1)[1].split()[0])
    assert peak_kib < 120 * 1024, f"peak RSS {peak_kib} KiB"


def test_store_location_comes_from_yardarm_store_env(tmp_path: Path) -> None:
    img = make_image(84, [100], "none")
    archive = tmp_path / "a.tar"
    write_docker_archive(archive, [(img, ["localhost/env/x:1"])])
    env = {**os.environ, "YARDARM_STORE": str(tmp_path / "from-env")}
    res = subprocess.run(
        [sys.executable, "-m", "yardarm", "load", "-i", str(archive)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "from-env" / "store.db").is_file()


@pytest.mark.parametrize("compressor", ["gzip", "zstd"])
def test_compressed_archive_on_stdin_is_undone_on_the_fly(tmp_path: Path, compressor: str) -> None:
    img = make_image(85, [3000], "none")
    archive = tmp_path / "a.tar"
    write_docker_archive(archive, [(img, ["localhost/gz/x:1"])])
    if compressor == "gzip":
        from isal import igzip

        packed = igzip.compress(archive.read_bytes())
    else:
        import zstandard

        packed = zstandard.ZstdCompressor().compress(archive.read_bytes())
    res = subprocess.run(
        [sys.executable, "-m", "yardarm", "--store", str(tmp_path / "s"), "load"],
        input=packed,
        capture_output=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout == b"Loaded image: localhost/gz/x:1\n"


def test_tag_command_adds_a_name_and_prune_keeps_tagged_images(tmp_path: Path) -> None:
    img = make_image(86, [100], "gzip")
    write_layout(tmp_path / "lay", [(img, "localhost/t/a:1")])
    assert run_cli(tmp_path / "s", "load", str(tmp_path / "lay")).returncode == 0
    res = run_cli(tmp_path / "s", "tag", "localhost/t/a:1", "localhost/t/b")
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")
    res = run_cli(tmp_path / "s", "tag", img.config_digest[7:19], "localhost/t/c:9")
    assert res.returncode == 0, res.stderr
    rows = run_cli(tmp_path / "s", "images", "--format", "json").stdout.splitlines()
    assert sorted((json.loads(r)["Repository"], json.loads(r)["Tag"]) for r in rows) == [
        ("localhost/t/a", "1"),
        ("localhost/t/b", "latest"),
        ("localhost/t/c", "9"),
    ]
    res = run_cli(tmp_path / "s", "tag", "localhost/t/nothing:1", "localhost/t/d:1")
    assert res.returncode == 1
    assert res.stderr == "yardarm: error: no such image: localhost/t/nothing:1\n"
    res = run_cli(tmp_path / "s", "prune")
    assert res.returncode == 0
    assert res.stdout == "Removed 0 images, 0 layers, 0 files; reclaimed 0 bytes\n"
