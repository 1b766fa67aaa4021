"""Malformed inputs for ``yardarm load``, generated at test time (no committed binaries).

Each case builds one broken archive or layout under a folder and says which fragment the
one-line error must contain. Cases start from a valid generated image and break one thing.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corpus.gen import (
    OCI_INDEX,
    OCI_MANIFEST,
    GenImage,
    compress,
    layer_tar,
    make_image,
    sha,
    write_docker_archive,
    write_layout,
)


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path], Path]  # folder to build in -> the input to load
    fragment: str  # must appear in the error line
    unsafe: bool = False  # raised as UnsafeArchive


def _img(compression: str = "gzip") -> GenImage:
    return make_image(7, [3000, 500], compression)


def _blob(root: Path, digest: str) -> Path:
    return root / "blobs" / "sha256" / digest.split(":", 1)[1]


def _put(root: Path, data: bytes) -> str:
    path = _blob(root, sha(data))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return sha(data)


def _layout(folder: Path, img: GenImage | None = None) -> tuple[Path, GenImage]:
    img = img or _img()
    root = folder / "layout"
    write_layout(root, [(img, "localhost/corpus/img:1")])
    return root, img


def _with_manifest(folder: Path, mutate: Callable[[dict[str, Any], Path], None]) -> Path:
    """A layout whose manifest is rewritten (and re-addressed) after ``mutate``."""
    root, img = _layout(folder)
    obj = json.loads(img.manifest)
    mutate(obj, root)
    raw = json.dumps(obj).encode()
    digest = _put(root, raw)
    index = json.loads((root / "index.json").read_text())
    index["manifests"][0].update(digest=digest, size=len(raw))
    (root / "index.json").write_text(json.dumps(index))
    return root


def _with_config(folder: Path, mutate: Callable[[dict[str, Any]], None]) -> Path:
    def change(m: dict[str, Any], root: Path) -> None:
        config = json.loads(_blob(root, m["config"]["digest"]).read_bytes())
        mutate(config)
        raw = json.dumps(config).encode()
        m["config"].update(digest=_put(root, raw), size=len(raw))

    return _with_manifest(folder, change)


def _with_layer(
    folder: Path, blob: bytes, media: str | None = None, diff_id: str | None = None
) -> Path:
    """Replace layer 0 by ``blob`` (descriptor re-addressed so only the content is wrong)."""

    def change(m: dict[str, Any], root: Path) -> None:
        m["layers"][0].update(digest=_put(root, blob), size=len(blob))
        if media:
            m["layers"][0]["mediaType"] = media
        config = json.loads(_blob(root, m["config"]["digest"]).read_bytes())
        if diff_id:
            config["rootfs"]["diff_ids"][0] = diff_id
        raw = json.dumps(config).encode()
        m["config"].update(digest=_put(root, raw), size=len(raw))

    return _with_manifest(folder, change)


def _index(folder: Path, index: object) -> Path:
    root, _ = _layout(folder)
    (root / "index.json").write_text(json.dumps(index) if not isinstance(index, str) else index)
    return root


def _tar(folder: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    path = folder / "input.tar"
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _link(name: str, target: str, *, hard: bool = False) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info, None


def _valid_archive_members(img: GenImage) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    out: list[tuple[tarfile.TarInfo, bytes | None]] = []
    for lay in img.layers:
        out.append(_file(f"{lay.diff_id[7:]}/layer.tar", lay.tar))
    out.append(_file(f"{img.config_digest[7:]}.json", img.config))
    manifest = [
        {
            "Config": f"{img.config_digest[7:]}.json",
            "RepoTags": ["localhost/corpus/arch:1"],
            "Layers": [f"{lay.diff_id[7:]}/layer.tar" for lay in img.layers],
        }
    ]
    out.append(_file("manifest.json", json.dumps(manifest).encode()))
    return out


def _archive_with(folder: Path, extra: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    img = _img("none")
    return _tar(folder, extra + _valid_archive_members(img))


def _docker_manifest(folder: Path, manifest: object, *, img: GenImage | None = None) -> Path:
    img = img or _img("none")
    members = [m for m in _valid_archive_members(img) if m[0].name != "manifest.json"]
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    return _tar(folder, [*members, _file("manifest.json", text.encode())])


def _truncate(path: Path, keep: int) -> Path:
    with path.open("r+b") as f:
        f.truncate(keep)
    return path


def _entry(img: GenImage, **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "Config": f"{img.config_digest[7:]}.json",
        "RepoTags": ["localhost/corpus/arch:1"],
        "Layers": [f"{lay.diff_id[7:]}/layer.tar" for lay in img.layers],
    }
    base.update(over)
    return base


def _cases() -> list[Case]:
    img = _img("none")
    cases = [
        # -- OCI layout folders -------------------------------------------------------------
        Case(
            "layout-no-oci-layout",
            lambda f: _rm(_layout(f)[0], "oci-layout"),
            "oci-layout is missing",
        ),
        Case(
            "layout-bad-version",
            lambda f: _write(_layout(f)[0], "oci-layout", '{"imageLayoutVersion":"9"}'),
            "unsupported imageLayoutVersion",
        ),
        Case("index-invalid-json", lambda f: _index(f, "{nope"), "invalid JSON"),
        Case("index-not-object", lambda f: _index(f, "[1, 2]"), "not a JSON object"),
        Case(
            "index-empty",
            lambda f: _index(f, {"schemaVersion": 2, "manifests": []}),
            "holds no images",
        ),
        Case(
            "index-points-nowhere",
            lambda f: _index(
                f,
                {
                    "schemaVersion": 2,
                    "manifests": [
                        {"mediaType": OCI_MANIFEST, "digest": sha(b"nothing"), "size": 7}
                    ],
                },
            ),
            "is missing",
        ),
        Case(
            "index-bad-digest",
            lambda f: _index(
                f,
                {
                    "schemaVersion": 2,
                    "manifests": [{"mediaType": OCI_MANIFEST, "digest": "sha256:xyz", "size": 7}],
                },
            ),
            "invalid sha256 digest",
        ),
        Case(
            "index-unknown-media-type",
            lambda f: _retype_entry(f, "application/x-nothing"),
            "unknown media type",
        ),
        Case(
            "index-bad-ref-name",
            lambda f: _annotate_entry(f, "localhost/UPPER/x:1"),
            "bad image name",
        ),
        Case("manifest-altered", _alter_manifest, "manifest digest mismatch"),
        Case("manifest-size-wrong", lambda f: _resize_entry(f, +3), "manifest size mismatch"),
        Case(
            "manifest-invalid-json",
            lambda f: _replace_manifest(f, b"{not json"),
            "invalid JSON",
        ),
        Case(
            "manifest-schema1",
            lambda f: _with_manifest(f, lambda m, r: m.update(schemaVersion=1)),
            "unsupported schemaVersion",
        ),
        Case(
            "layer-unknown-media-type",
            lambda f: _with_manifest(
                f, lambda m, r: m["layers"][0].update(mediaType="application/x-tar-lz4")
            ),
            "unknown media type",
        ),
        Case(
            "config-missing",
            lambda f: _with_manifest(f, lambda m, r: _blob(r, m["config"]["digest"]).unlink()),
            "config sha256:",
        ),
        Case(
            "config-invalid-json",
            lambda f: _with_manifest(f, _bad_config_json),
            "invalid JSON in image config",
        ),
        Case(
            "config-no-rootfs",
            lambda f: _with_config(f, lambda c: c.pop("rootfs")),
            "no rootfs",
        ),
        Case(
            "config-diff-ids-count",
            lambda f: _with_config(f, lambda c: c["rootfs"]["diff_ids"].pop()),
            "2 layers but the config has 1 diff ids",
        ),
        Case(
            "config-bad-diff-id",
            lambda f: _with_config(f, lambda c: c["rootfs"]["diff_ids"].__setitem__(0, "md5:1")),
            "bad diff id",
        ),
        Case(
            "layer-missing",
            lambda f: _with_manifest(f, lambda m, r: _blob(r, m["layers"][1]["digest"]).unlink()),
            "layer 1 blob",
        ),
        Case("layer-content-altered", _alter_layer, "digest mismatch"),
        Case(
            "layer-size-wrong",
            lambda f: _with_manifest(
                f, lambda m, r: m["layers"][0].update(size=m["layers"][0]["size"] + 1)
            ),
            "size mismatch",
        ),
        Case(
            "layer-diff-id-wrong",
            lambda f: _with_layer(
                f, compress(layer_tar("x", b"y"), "gzip"), diff_id=sha(b"something else")
            ),
            "diff id mismatch",
        ),
        Case(
            "layer-says-gzip-is-plain",
            lambda f: _with_layer(f, layer_tar("x", b"plain")),
            "says gzip but the content is none",
        ),
        Case(
            "layer-corrupt-gzip",
            lambda f: _with_layer(f, compress(layer_tar("x", b"a" * 5000), "gzip")[:-12]),
            "corrupt gzip data",
        ),
        Case(
            "layer-corrupt-zstd",
            lambda f: _with_layer(
                f,
                compress(layer_tar("x", os.urandom(5000)), "zstd")[:-40],
                media="application/vnd.oci.image.layer.v1.tar+zstd",
            ),
            "corrupt zstd data",
        ),
        Case(
            "layer-not-a-tar",
            lambda f: _with_layer(
                f,
                compress(b"this is not a tar" * 100, "gzip"),
                diff_id=sha(b"this is not a tar" * 100),
            ),
            "not a tar archive",
        ),
        Case("layout-symlink-outside", _symlink_outside, "outside the layout", unsafe=True),
        Case(
            "nested-index-points-nowhere",
            _nested_index_missing_child,
            "is missing",
        ),
        # -- tar archives ---------------------------------------------------------------------
        Case("tar-dotdot-member", lambda f: _archive_with(f, [_file("../evil")]), "'..'", True),
        Case(
            "tar-absolute-member",
            lambda f: _archive_with(f, [_file("/etc/evil")]),
            "absolute path",
            True,
        ),
        Case(
            "tar-symlink-outside",
            lambda f: _archive_with(f, [_link("a/link", "../../etc/passwd")]),
            "points outside the archive",
            True,
        ),
        Case(
            "tar-absolute-symlink",
            lambda f: _archive_with(f, [_link("link", "/etc/passwd")]),
            "points outside the archive",
            True,
        ),
        Case(
            "tar-hardlink-outside",
            lambda f: _archive_with(f, [_link("hl", "../x", hard=True)]),
            "points outside the archive",
            True,
        ),
        Case(
            "tar-device-member",
            lambda f: _archive_with(f, [_device("dev/null")]),
            "special file",
            True,
        ),
        Case(
            "tar-duplicate-member",
            lambda f: _archive_with(f, [_file("manifest.json", b"[]")]),
            "appears twice",
        ),
        Case(
            "tar-truncated",
            lambda f: _truncate(_archive_with(f, []), 2048),
            "truncated",
        ),
        Case(
            "tar-gzip-truncated",
            _gzip_truncated,
            "not a tar archive or truncated",
        ),
        Case("tar-not-a-tar", lambda f: _write(f, "input.tar", "hello " * 200), "not a tar"),
        Case("tar-empty-file", lambda f: _write(f, "input.tar", ""), "not a tar"),
        Case(
            "tar-neither-format",
            lambda f: _tar(f, [_file("hello.txt", b"hi")]),
            "neither a docker archive",
        ),
        Case("docker-manifest-invalid-json", lambda f: _docker_manifest(f, "[{"), "invalid JSON"),
        Case(
            "docker-manifest-not-list",
            lambda f: _docker_manifest(f, {"Config": "x"}),
            "expected a non-empty JSON list",
        ),
        Case(
            "docker-manifest-no-config",
            lambda f: _docker_manifest(f, [{"Layers": []}]),
            "needs Config",
        ),
        Case(
            "docker-missing-layer",
            lambda f: _docker_manifest(f, [_entry(img, Layers=["nope/layer.tar", "x/layer.tar"])]),
            "layer nope/layer.tar is missing",
        ),
        Case(
            "docker-layer-count",
            lambda f: _docker_manifest(f, [_entry(img, Layers=_entry(img)["Layers"][:1])]),
            "1 layers but the config has 2 diff ids",
        ),
        Case(
            "docker-diff-id-mismatch",
            lambda f: _docker_manifest(
                f, [_entry(img, Layers=list(reversed(_entry(img)["Layers"])))]
            ),
            "diff id mismatch",
        ),
        Case(
            "docker-bad-repotag",
            lambda f: _docker_manifest(f, [_entry(img, RepoTags=["Bad Name:1"])]),
            "bad RepoTags entry",
        ),
        Case(
            "docker-config-dotdot",
            lambda f: _docker_manifest(f, [_entry(img, Config="../x.json")]),
            "'..'",
            True,
        ),
    ]
    return cases


def _rm(root: Path, name: str) -> Path:
    (root / name).unlink()
    return root


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path if name == "input.tar" else folder


def _entry_edit(folder: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    root, _ = _layout(folder)
    index = json.loads((root / "index.json").read_text())
    edit(index["manifests"][0])
    (root / "index.json").write_text(json.dumps(index))
    return root


def _retype_entry(folder: Path, media: str) -> Path:
    return _entry_edit(folder, lambda e: e.update(mediaType=media))


def _annotate_entry(folder: Path, name: str) -> Path:
    return _entry_edit(
        folder, lambda e: e.update(annotations={"org.opencontainers.image.ref.name": name})
    )


def _resize_entry(folder: Path, delta: int) -> Path:
    return _entry_edit(folder, lambda e: e.update(size=e["size"] + delta))


def _alter_manifest(folder: Path) -> Path:
    root, img = _layout(folder)
    path = _blob(root, img.manifest_digest)
    data = bytearray(path.read_bytes())
    data[-2] = ord(" ")
    path.write_bytes(bytes(data))
    return root


def _replace_manifest(folder: Path, raw: bytes) -> Path:
    root, _ = _layout(folder)
    digest = _put(root, raw)
    index = json.loads((root / "index.json").read_text())
    index["manifests"][0].update(digest=digest, size=len(raw))
    (root / "index.json").write_text(json.dumps(index))
    return root


def _bad_config_json(m: dict[str, Any], root: Path) -> None:
    raw = b"{config"
    m["config"].update(digest=_put(root, raw), size=len(raw))


def _alter_layer(folder: Path) -> Path:
    # Another image: a blob the store already holds is not read again, so it must be new.
    root, img = _layout(folder, make_image(8, [3000, 500], "gzip"))
    path = _blob(root, img.layers[0].digest)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return root


def _symlink_outside(folder: Path) -> Path:
    root, img = _layout(folder)
    outside = folder / "outside-blob"
    path = _blob(root, img.layers[0].digest)
    shutil.move(path, outside)
    path.symlink_to(outside)
    return root


def _nested_index_missing_child(folder: Path) -> Path:
    root, img = _layout(folder)
    nested = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": img.manifest_digest, "size": len(img.manifest)},
            {"mediaType": OCI_MANIFEST, "digest": sha(b"gone"), "size": 4},
        ],
    }
    raw = json.dumps(nested).encode()
    top = {
        "schemaVersion": 2,
        "manifests": [{"mediaType": OCI_INDEX, "digest": _put(root, raw), "size": len(raw)}],
    }
    (root / "index.json").write_text(json.dumps(top))
    return root


def _device(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    info.devmajor, info.devminor = 1, 3
    return info, None


def _gzip_truncated(folder: Path) -> Path:
    plain = _archive_with(folder, [])
    data = compress(plain.read_bytes(), "gzip")
    path = folder / "input.tar.gz"
    path.write_bytes(data[: len(data) // 2])
    plain.unlink()
    return path


def valid_archive(folder: Path) -> Path:
    """A valid docker-archive sharing layers with the corpus layouts' base image."""
    path = folder / "valid.tar"
    write_docker_archive(path, [(_img("none"), ["localhost/corpus/base:1"])])
    return path


def valid_layout(folder: Path) -> Path:
    return _layout(folder)[0]


CASES = _cases()
