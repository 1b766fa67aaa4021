"""Loading a ~1 GiB gzip OCI layout: ``yardarm load`` against the shell doing the same checks.

The shell side does the verification a careful script would: ``sha256sum`` of every blob plus
``gzip -dc | sha256sum`` of every layer (it neither copies the files anywhere nor parses JSON,
so it does strictly less than yardarm, which also copies each blob into its store, fsyncs and
records it). Both run over the same files in the same run, alternating, with the page cache
warm for both. Peak memory (max RSS) of the yardarm process is reported for the big layout and
for a small one, to show it does not grow with the data.

    .venv/bin/python bench/load.py [--rounds 3] [--workdir /tmp/yardarm-bench-load]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.imagegen import LayerSpec, write_oci_layout  # noqa: E402

MIB = 1 << 20
# Mostly incompressible content (like binaries) plus some text; ~1.07 GiB of gzip on disk.
BIG = [LayerSpec(128 * MIB, "random") for _ in range(7)] + [
    LayerSpec(200 * MIB, "text") for _ in range(3)
]
SMALL = [LayerSpec(4 * MIB, "random") for _ in range(3)]


def ensure_layout(path: Path, layers: list[LayerSpec], seed: int) -> Path:
    marker = path / ".done"
    if not marker.exists():
        shutil.rmtree(path, ignore_errors=True)
        write_oci_layout(path, layers=layers, seed=seed, compression="gzip", tags=("bench",))
        marker.write_text("ok")
    return path


def layer_blobs(layout: Path) -> tuple[list[Path], list[Path]]:
    """(all blobs, layer blobs) of the layout; layers are the big gzip files."""
    blobs = sorted((layout / "blobs" / "sha256").iterdir())
    layers = []
    for b in blobs:
        with b.open("rb") as f:
            if f.read(2) == b"\x1f\x8b":
                layers.append(b)
    return blobs, layers


def run_yardarm(layout: Path, store: Path) -> tuple[float, int, float]:
    """Wall seconds, peak RSS (KiB) and CPU seconds of one ``yardarm load`` into a fresh store."""
    shutil.rmtree(store, ignore_errors=True)
    cmd = [sys.executable, "-m", "yardarm", "--store", str(store), "load", "-q", str(layout)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"yardarm load failed ({status})")
    return elapsed, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def run_shell(blobs: list[Path], layers: list[Path]) -> tuple[float, float]:
    """Wall and CPU seconds (bash and everything it ran) of the shell verification."""
    script = "set -e\n"
    script += "".join(f"sha256sum {b} >/dev/null\n" for b in blobs)
    script += "".join(f"gzip -dc {b} | sha256sum >/dev/null\n" for b in layers)
    start = time.perf_counter()
    proc = subprocess.Popen(["bash", "-c", script])
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("shell verification failed")
    return elapsed, usage.ru_utime + usage.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/yardarm-bench-load"))
    args = ap.parse_args()
    work: Path = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    print("generating layouts (cached in", work, ")", flush=True)
    big = ensure_layout(work / "big", BIG, 1)
    small = ensure_layout(work / "small", SMALL, 2)
    blobs, layers = layer_blobs(big)
    compressed = sum(b.stat().st_size for b in layers)
    uncompressed = sum(spec.size for spec in BIG)
    print(
        f"layout: {len(layers)} gzip layers, {compressed / MIB:.0f} MiB compressed, "
        f"~{uncompressed / MIB:.0f} MiB of file content; {os.cpu_count()} CPUs"
    )
    for b in blobs:  # warm the page cache equally for both sides
        with b.open("rb") as f:
            while f.read(8 * MIB):
                pass
    ours, theirs, rss, our_cpu, their_cpu = [], [], [], [], []
    for i in range(args.rounds):
        t, peak, cpu = run_yardarm(big, work / "store")
        ours.append(t)
        rss.append(peak)
        our_cpu.append(cpu)
        s, scpu = run_shell(blobs, layers)
        theirs.append(s)
        their_cpu.append(scpu)
        print(
            f"round {i + 1}: yardarm {t:.2f}s wall {cpu:.2f}s CPU (peak {peak / 1024:.0f} MiB)  "
            f"shell {s:.2f}s wall {scpu:.2f}s CPU  load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    _, small_peak, _ = run_yardarm(small, work / "store-small")
    y, sh = statistics.median(ours), statistics.median(theirs)
    print(f"median: yardarm load {y:.2f}s  shell verification {sh:.2f}s  speed-up {sh / y:.2f}x")
    print(
        f"median CPU: yardarm {statistics.median(our_cpu):.2f}s  "
        f"shell {statistics.median(their_cpu):.2f}s (yardarm also copies and fsyncs every blob)"
    )
    print(
        f"yardarm throughput {compressed / MIB / y:.0f} MiB/s of compressed input; "
        f"peak RSS {max(rss) / 1024:.0f} MiB on {compressed / MIB:.0f} MiB, "
        f"{small_peak / 1024:.0f} MiB on a 12 MiB layout"
    )
    shutil.rmtree(work / "store", ignore_errors=True)
    shutil.rmtree(work / "store-small", ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
