"""Blob upload throughput: yardarm's registry client side by side with curl, same registry.

    python bench/upload.py [--reps N] [--work DIR] [--quick]

Workloads: a 1 GiB blob monolithic (POST + one streamed PUT), the same blob chunked (64 MiB
PATCHes + PUT), and 8 x 128 MiB blobs with 4 uploads in flight. curl does the monolithic form
of each (`curl -X POST` for the session, `curl -T file` for the PUT), 4 processes at a time for
the parallel case; for the chunked case curl also PATCHes the same 64 MiB parts (pre-split,
untimed), one process per request. Every measurement gets a fresh registry (new storage:
nothing de-duplicated); tools alternate within each repetition; medians are reported. Digests
are computed up front, so neither side pays for hashing. Client CPU is this process's rusage for
yardarm (in-process) and the children's rusage for curl; the registry's CPU comes from /proc.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from yardarm.digest import Digest  # noqa: E402
from yardarm.registry import Credentials, Registry, RegistryOptions  # noqa: E402

MiB = 1 << 20
GiB = 1 << 30
SCRIPT = ROOT / "scripts" / "registry"
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Sample:
    wall: float
    client_cpu: float
    registry_cpu: float


@dataclass
class Blob:
    path: Path
    digest: Digest
    size: int


def make_blob(path: Path, size: int) -> Blob:
    h = hashlib.sha256()
    block = os.urandom(4 * MiB)
    with open(path, "wb") as f:
        written = 0
        i = 0
        while written < size:
            piece = (i.to_bytes(8, "big") + block[8:])[: size - written]
            f.write(piece)
            h.update(piece)
            written += len(piece)
            i += 1
    return Blob(path, Digest("sha256", h.hexdigest()), size)


class FreshRegistry:
    def __init__(self, base: Path) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="reg-", dir=base))
        out = subprocess.run(
            [sys.executable, str(SCRIPT), "start", "--mode", "plain", "--dir", str(self.dir)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        state = json.loads(out.strip().splitlines()[-1])
        self.host: str = state["host"]
        self.pid: int = int(state["pid"])

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS

    def stop(self) -> None:
        subprocess.run([sys.executable, str(SCRIPT), "stop", "--dir", str(self.dir)], check=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def measure(base: Path, run: Callable[[str], None], cpu: Callable[[], float]) -> Sample:
    reg = FreshRegistry(base)
    try:
        r0, c0, t0 = reg.cpu(), cpu(), time.perf_counter()
        run(reg.host)
        wall = time.perf_counter() - t0
        return Sample(wall, cpu() - c0, reg.cpu() - r0)
    finally:
        reg.stop()


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# -- the two clients --------------------------------------------------------------------------


def yardarm_upload(blobs: list[Blob], parallel: int, chunk: int | None) -> Callable[[str], None]:
    def run(host: str) -> None:
        with Registry(host, RegistryOptions(max_chunk_size=chunk), Credentials()) as reg:
            repo = reg.repository("bench/blobs")

            def one(b: Blob) -> None:
                if chunk is None:
                    desc = repo.upload_blob(b.path, b.digest)
                else:
                    with open(b.path, "rb") as f:
                        desc = repo.upload_blob(f, b.digest)
                assert desc.size == b.size

            with ThreadPoolExecutor(parallel) as pool:
                list(pool.map(one, blobs))

    return run


def _curl_location(args: list[str]) -> str:
    head = subprocess.run(
        ["curl", "-sS", "-f", "-D", "-", "-o", "/dev/null", *args],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return next(
        line.split(":", 1)[1].strip()
        for line in head.splitlines()
        if line.lower().startswith("location:")
    )


def curl_upload(
    blobs: list[Blob], parallel: int, parts: dict[Path, list[Path]] | None = None
) -> Callable[[str], None]:
    """POST + `curl -T` PUT; with ``parts``, one `curl -X PATCH -T part` per pre-split part."""
    octet = ["-H", "Content-Type: application/octet-stream"]

    def one(host: str, b: Blob) -> None:
        location = _curl_location(["-X", "POST", f"http://{host}/v2/bench/blobs/blobs/uploads/"])
        if parts is not None:
            for part in parts[b.path]:
                location = _curl_location(["-X", "PATCH", "-T", str(part), *octet, location])
            body: list[str] = ["-X", "PUT", "-d", ""]
        else:
            body = ["-T", str(b.path)]
        sep = "&" if "?" in location else "?"
        subprocess.run(
            ["curl", "-sS", "-f", "-o", "/dev/null", *body, *octet,
             f"{location}{sep}digest={b.digest}"],
            check=True,
        )  # fmt: skip

    def run(host: str) -> None:
        with ThreadPoolExecutor(parallel) as pool:
            list(pool.map(lambda b: one(host, b), blobs))

    return run


def split_parts(blob: Blob, size: int) -> list[Path]:
    """Cut a blob into part files up front (untimed), so curl can PATCH them one by one."""
    out = []
    with open(blob.path, "rb") as f:
        i = 0
        while data := f.read(size):
            part = blob.path.with_name(f"{blob.path.name}.part{i:03d}")
            part.write_bytes(data)
            out.append(part)
            i += 1
    return out


# -- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--quick", action="store_true", help="256 MiB / 8 x 32 MiB, 1 rep")
    args = ap.parse_args(argv)
    if shutil.which("curl") is None:
        print("bench/upload.py: curl is not installed", file=sys.stderr)
        return 1
    big, small = (256 * MiB, 32 * MiB) if args.quick else (GiB, 128 * MiB)
    reps = 1 if args.quick else args.reps
    work = args.work or Path(tempfile.mkdtemp(prefix="yardarm-bench-upload-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        one = [make_blob(work / "big.bin", big)]
        eight = [make_blob(work / f"small{i}.bin", small) for i in range(8)]
        chunk = 64 * MiB
        parts = {one[0].path: split_parts(one[0], chunk)}
        workloads = [
            (f"{big // MiB} MiB monolithic", one, 1, None, ("curl",)),
            (f"{big // MiB} MiB chunked (64 MiB PATCHes)", one, 1, chunk, ("curl", "curl-chunked")),
            (f"8 x {small // MiB} MiB, 4 parallel", eight, 4, None, ("curl",)),
        ]
        print(f"{'workload':34} {'tool':12} {'wall s':>7} {'MB/s':>7} {'cpu s/GiB':>9} "
              f"{'reg cpu s/GiB':>13}")  # fmt: skip
        summary = []
        for name, blobs, parallel, size, peers in workloads:
            total = sum(b.size for b in blobs)
            tools = ["yardarm", *peers]
            results: dict[str, list[Sample]] = {t: [] for t in tools}
            for rep in range(reps):
                order = tools if rep % 2 == 0 else tools[::-1]
                for tool in order:
                    if tool == "yardarm":
                        s = measure(work, yardarm_upload(blobs, parallel, size), self_cpu)
                    elif tool == "curl":
                        s = measure(work, curl_upload(blobs, parallel), children_cpu)
                    else:
                        s = measure(work, curl_upload(blobs, parallel, parts), children_cpu)
                    results[tool].append(s)
            med = {}
            for tool, samples in results.items():
                wall = statistics.median(s.wall for s in samples)
                cpu = statistics.median(s.client_cpu for s in samples) / (total / GiB)
                reg_cpu = statistics.median(s.registry_cpu for s in samples) / (total / GiB)
                med[tool] = (wall, cpu)
                print(f"{name:34} {tool:12} {wall:7.2f} {total / wall / 1e6:7.0f} {cpu:9.2f} "
                      f"{reg_cpu:13.2f}", flush=True)  # fmt: skip
            for peer in peers:
                ratio = med[peer][0] / med["yardarm"][0]
                summary.append((f"{name} vs {peer}", ratio, med["yardarm"][1], med[peer][1]))
        print()
        for name, ratio, ycpu, ccpu in summary:
            verdict = "ok" if ratio >= 0.9 else "BELOW TARGET"
            print(f"{name:50} throughput ratio {ratio:.2f} ({verdict}); "
                  f"client CPU {ycpu:.2f} vs {ccpu:.2f} s/GiB")  # fmt: skip
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
