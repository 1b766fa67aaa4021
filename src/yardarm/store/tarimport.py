"""``yardarm import``: a tarball or a folder becomes a one-layer image, like ``docker import``.

Folder tars are deterministic: entries sorted by name, numeric owners 0, no user or group
names, one fixed mtime. The same folder therefore always gives the same DiffID, which lets a
registry (and the v2 metadata service) recognise a layer it already has.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform as _platform
import stat
import tarfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Final

from yardarm import mediatypes as mt
from yardarm.digest import Digest, Digester
from yardarm.errors import ImportError_
from yardarm.manifest import Platform
from yardarm.reference import Reference
from yardarm.store.blobs import BlobArea
from yardarm.store.db import Database
from yardarm.store.ingest import ingest
from yardarm.store.plan import LoadedImage, Plan, PlannedImage, PlannedLayer, commit

__all__ = ["host_platform", "import_path"]

_ARCH: Final = {
    "x86_64": ("amd64", None),
    "amd64": ("amd64", None),
    "aarch64": ("arm64", "v8"),
    "arm64": ("arm64", "v8"),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i386": ("386", None),
    "i686": ("386", None),
    "ppc64le": ("ppc64le", None),
    "s390x": ("s390x", None),
    "riscv64": ("riscv64", None),
}


def host_platform() -> Platform:
    """The machine's platform in OCI names (x86_64 -> amd64, aarch64 -> arm64/v8)."""
    machine = _platform.machine().lower()
    arch, variant = _ARCH.get(machine, (machine, None))
    return Platform(arch, _platform.system().lower() or "linux", variant)


class _HashingWriter:
    """The file a folder's tar is written to, hashed on the way (tarfile writes sequentially)."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self.digester = Digester()

    def write(self, data: bytes) -> int:
        self.digester.update(data)
        return self._f.write(data)

    def tell(self) -> int:
        return self.digester.size


def _walk_under(root: Path, folder: Path) -> Iterator[tuple[str, Path]]:
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        path = Path(entry.path)
        yield path.relative_to(root).as_posix(), path
        if entry.is_dir(follow_symlinks=False):
            yield from _walk_under(root, path)


def write_dir_tar(root: Path, out: BinaryIO, mtime: int) -> Digester:
    """Write the deterministic tar of ``root`` to ``out``; returns its digest and size."""
    writer = _HashingWriter(out)
    seen: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tf:  # type: ignore[call-overload]
        for name, path in _walk_under(root, root):
            st = path.lstat()
            info = tarfile.TarInfo(name)
            info.mode = stat.S_IMODE(st.st_mode)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = mtime
            if stat.S_ISDIR(st.st_mode):
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            elif stat.S_ISLNK(st.st_mode):
                info.type = tarfile.SYMTYPE
                info.linkname = os.readlink(path)
                tf.addfile(info)
            elif stat.S_ISREG(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in seen:
                    info.type = tarfile.LNKTYPE
                    info.linkname = seen[key]
                    tf.addfile(info)
                    continue
                seen[key] = name
                info.size = st.st_size
                with path.open("rb") as f:
                    tf.addfile(info, f)
            elif stat.S_ISFIFO(st.st_mode):
                info.type = tarfile.FIFOTYPE
                tf.addfile(info)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                info.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
                info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
                tf.addfile(info)
            # sockets cannot live in a tar; docker skips them too
    return writer.digester


def _config(diff_id: Digest, created: str, comment: str) -> bytes:
    plat = host_platform()
    obj: dict[str, object] = {"architecture": plat.architecture}
    obj["config"] = {}
    obj["created"] = created
    obj["history"] = [{"created": created, "comment": comment}]
    obj["os"] = plat.os
    obj["rootfs"] = {"type": "layers", "diff_ids": [str(diff_id)]}
    if plat.variant:
        obj["variant"] = plat.variant
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def import_path(
    db: Database,
    area: BlobArea,
    source: Path,
    tag: Reference | None,
    *,
    mtime: int | None = None,
    created: float | None = None,
) -> LoadedImage:
    """Import a tarball (plain, gzip or zstd; kept as is) or a folder as a one-layer image."""
    if mtime is None:
        mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "0") or 0)
    when = datetime.fromtimestamp(time.time() if created is None else created, UTC)
    created_text = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with area.shared():
        dest, temp = area.new_temp()
        try:
            with dest:
                if source.is_dir():
                    d = write_dir_tar(source, dest, mtime)
                    digest, size = d.digest(), d.size
                    layer = PlannedLayer(digest, size, digest, size, mt.OCI_LAYER, "none")
                    comment = f"Imported from {source.name or source}"
                else:
                    try:
                        src = source.open("rb")
                    except OSError as exc:
                        raise ImportError_(f"{source}: {exc.strerror or exc}") from None
                    with src:
                        ing = ingest(src, dest, temp)
                    if ing.error is not None or ing.diff_id is None:
                        raise ImportError_(f"{source}: {ing.error}")
                    if not ing.tar_header_ok:
                        raise ImportError_(f"{source}: not a tar archive")
                    media = {
                        "none": mt.OCI_LAYER,
                        "gzip": mt.OCI_LAYER_GZIP,
                        "zstd": mt.OCI_LAYER_ZSTD,
                    }[ing.compression]
                    layer = PlannedLayer(
                        ing.diff_id,
                        ing.uncompressed_size,
                        ing.digest,
                        ing.size,
                        media,
                        ing.compression,
                    )
                    comment = "Imported from -" if str(source) == "-" else "Imported from tarball"
            assert layer.blob_digest is not None
            config = _config(layer.diff_id, created_text, comment)
            image = PlannedImage(
                config,
                mt.OCI_CONFIG,
                (layer.diff_id,),
                [layer],
                host_platform(),
                None,
                None,
                None,
                "oci",
            )
            plan = Plan(images={image.id: image}, top=[(image.id, [tag] if tag else [])])
            plan.files[layer.blob_digest] = temp
            commit(db, area, plan)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
    return plan.loaded()[0]
