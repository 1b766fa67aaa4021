"""Compressed size and speed of one W2 layer at each gzip level yardarm and skopeo could use.

    python bench/compression.py [bench/work/images/text.tar]

Reads the first layer of the W2 docker-archive and compresses it in 1 MiB blocks (as yardarm
does) with isal levels 0-3 and zlib levels 1 and 6 (Go's compress/gzip default, which skopeo
uses, is level 6-equivalent; its level 1 is `--dest-compress-level 1`). Single thread.
"""

from __future__ import annotations

import sys
import tarfile
import time
import zlib
from pathlib import Path

from isal import isal_zlib

ROOT = Path(__file__).resolve().parents[1]
BLOCK = 1 << 20


def main() -> int:
    archive = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "bench/work/images/text.tar"
    with tarfile.open(archive) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("layer.tar"))
        f = tar.extractfile(member)
        assert f is not None
        data = f.read()
    print(f"layer {member.name}: {len(data) / (1 << 20):.1f} MiB uncompressed")
    print("| compressor | level | compressed MiB | ratio | MB/s (1 thread) |")
    print("|---|---|---|---|---|")
    for name, make, levels in (
        ("isal", lambda lv: isal_zlib.compressobj(lv, isal_zlib.DEFLATED, 31), (0, 1, 2, 3)),
        ("zlib", lambda lv: zlib.compressobj(lv, zlib.DEFLATED, 31), (1, 6)),
    ):
        for level in levels:
            c = make(level)
            size = 0
            start = time.process_time()
            for i in range(0, len(data), BLOCK):
                size += len(c.compress(data[i : i + BLOCK]))
            size += len(c.flush())
            took = time.process_time() - start
            print(
                f"| {name} | {level} | {size / (1 << 20):.1f} | {len(data) / size:.2f} "
                f"| {len(data) / took / 1e6:.0f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
