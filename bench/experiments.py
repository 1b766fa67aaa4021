"""Measure a proposed change to yardarm before anyone makes it: run the push CLI with a patch.

    python bench/experiments.py W1 --patch none,sendfile-chunks,monolithic [--runs 3]

The push, store and registry packages belong to other people; instead of editing them, each
patch here replaces one function at run time in the child process (see PATCHES), and the push
is measured like bench/run.py does (fresh registry, fresh store copy, CLI process, wait4). The
patches and their measured effect back the recommendations in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]

#: name -> Python run in the child before yardarm's CLI starts.
PATCHES: dict[str, str] = {
    "none": "",
    # Layers over MONOLITHIC_MAX are PATCHed in chunk_size pieces; today the bytes go through
    # Python (1 MiB reads, re-slicing, chunked transfer-encoding framing). Handing the file
    # and an exact length to BlobUpload.write lets the transport use sendfile per chunk.
    "sendfile-chunks": r"""
import yardarm.push.layer as L
from yardarm.progress import RateMeter
from yardarm.manifest import Descriptor
def _send_stored(self, session, cancelled):
    stored = self._stored_blob()
    meter = RateMeter(self.id, stored.size, self.ctx.progress)
    offset = session.offset
    if offset:
        meter.reset(offset)
    with self._open_stored(stored) as f:
        if offset:
            f.seek(offset)
        if not self._chunks_of(stored.size):
            session.commit(stored.digest, f, length=stored.size - offset, progress=meter.add)
        else:
            remaining = stored.size - offset
            while remaining > 0:
                if cancelled.is_set():
                    raise L.Cancelled("push cancelled")
                n = min(self.ctx.chunk_size, remaining)
                session.write(f, length=n, progress=meter.add)
                self._save(None, session)
                remaining -= n
            session.commit(stored.digest)
    self.bytes_sent += stored.size - offset
    return Descriptor(self._media_type_for(stored.digest), stored.digest, stored.size)
L.LayerJob._send_stored = _send_stored
""",
    # One POST + one PUT per blob, streamed with sendfile, like curl: no resume points.
    "monolithic": r"""
import yardarm.push.layer as L
L.MONOLITHIC_MAX = 1 << 62
""",
    # Blobs under 1 MiB: no existence HEAD for the stored digest when the store has never
    # seen it on any registry (the entry without a source repository); upload straight away.
    "no-head-small": r"""
import yardarm.push.layer as L
_metadata = L.LayerJob._metadata
def _small_metadata(self):
    entries = _metadata(self)
    if self.layer.size < (1 << 20):
        entries = [e for e in entries if e.source_repository]
    return entries
L.LayerJob._metadata = _small_metadata
""",
    # SQLite in WAL mode with synchronous=NORMAL: commits no longer fsync (a crash of the
    # process loses nothing; a power cut may lose the last commits of a cache).
    "sqlite-normal": r"""
import yardarm.store.db as D
_init = D.Database.__init__
def __init__(self, path):
    _init(self, path)
    self._conn.execute("PRAGMA synchronous=NORMAL")
D.Database.__init__ = __init__
""",
}

CHILD = """
import sys
{patch}
from yardarm.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _driver() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("workload")
    p.add_argument("--patch", default="none", help=f"comma-separated: {', '.join(PATCHES)}")
    p.add_argument("--size", default="full")
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args(argv)
    run = _driver()
    wl = next(w for w in run.workloads(args.size) if w.name == args.workload)
    work = (ROOT / "bench" / "work").resolve()
    yardarm = Path(sys.executable).parent / "yardarm"
    env = run.Env(work=work, bench_python=Path(sys.executable), yardarm=yardarm)
    env.paths[wl.image.name] = run.generate(wl.image, work)
    run.compile_sources(yardarm)
    patches = args.patch.split(",")
    results: dict[str, list[object]] = {name: [] for name in patches}
    log = work / "experiments.log"
    for _ in range(args.runs):
        for name in patches:
            run_dir = work / "experiment-run"
            run.shutil.rmtree(run_dir, ignore_errors=True)
            run_dir.mkdir(parents=True)
            reg = run.Registry.start(run_dir / "registry", wl.mode)
            try:
                repo = "bench/app"
                run.prepare_tool("yardarm", env, wl, reg, repo, run_dir)
                argv0, child_env = run.tool_command("yardarm", env, wl, reg, repo, run_dir)
                code = CHILD.format(patch=PATCHES[name])
                sample = run.measure([sys.executable, "-c", code, *argv0[1:]], child_env, reg, log)
            finally:
                reg.stop()
            results[name].append(sample)
            print(f"{name}: {sample.wall:.3f} s cpu {sample.cpu:.2f} registry cpu "
                  f"{sample.registry_cpu:.2f} ok={sample.ok} {run.fmt_requests(sample.requests)}",
                  file=sys.stderr)  # fmt: skip
    print(f"{args.workload}, {args.runs} runs alternating; medians")
    print("| patch | wall (s) | client CPU (s) | registry CPU (s) | requests |")
    print("|---|---|---|---|---|")
    for name, samples in results.items():
        good = [s for s in samples if s.ok]  # type: ignore[attr-defined]
        if not good:
            print(f"| {name} | failed | | | |")
            continue
        w = statistics.median(s.wall for s in good)
        c = statistics.median(s.cpu for s in good)
        r = statistics.median(s.registry_cpu for s in good)
        print(f"| {name} | {w:.3f} | {c:.2f} | {r:.2f} | {run.fmt_requests(good[-1].requests)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
