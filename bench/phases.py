"""Where a re-push (W4) spends its time, phase by phase, in one process.

    python bench/phases.py [--size full|quick] [--runs 7]

W4 does almost no I/O (two requests), so its wall time is start-up and local work. This starts
a fresh registry, pushes W1 once with the CLI, then re-pushes it `--runs` times in child
processes that report, for each phase, wall and CPU milliseconds: interpreter start (until the
child's first line), imports (the push command's modules), Store.open, the push itself
(requests included), Store.close. Medians are printed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import sys, time
t0, c0 = time.perf_counter(), time.process_time()
marks = {}
def mark(name):
    global t0, c0
    t, c = time.perf_counter(), time.process_time()
    marks[name] = ((t - t0) * 1000, (c - c0) * 1000)
    t0, c0 = t, c
import argparse
from yardarm.cli import build_parser
mark("import yardarm.cli + argparse")
parser = build_parser()
mark("build_parser (10 command modules)")
from yardarm.cli._options import registry_options_from_args
from yardarm.cli._render import make_renderer
from yardarm.push.compress import Compression
from yardarm.push.pusher import Pusher, PushOptions
from yardarm.reference import parse
from yardarm.store import Store
import yardarm.registry
mark("import push, store, registry")
args = parser.parse_args(sys.argv[1:])
options = PushOptions(registry=registry_options_from_args(args))
ref = parse(args.name)
mark("parse args, options")
store = Store.open(args.store)
mark("Store.open")
with Pusher(store, options, progress=make_renderer("plain", True)) as pusher:
    mark("Pusher()")
    pusher.push(ref)
    mark("Pusher.push (2 requests)")
mark("Pusher.close")
store.close()
mark("Store.close")
import json; print(json.dumps(marks))
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
    p.add_argument("--size", default="full")
    p.add_argument("--runs", type=int, default=7)
    args = p.parse_args(argv)
    run = _driver()
    wl = next(w for w in run.workloads(args.size) if w.name == "W4")
    work = (ROOT / "bench" / "work").resolve()
    yardarm = Path(sys.executable).parent / "yardarm"
    env = run.Env(work=work, bench_python=Path(sys.executable), yardarm=yardarm)
    env.paths[wl.image.name] = run.generate(wl.image, work)
    run.compile_sources(yardarm)
    run_dir = work / "phases-run"
    subprocess.run(["rm", "-rf", str(run_dir)], check=True)
    run_dir.mkdir(parents=True)
    reg = run.Registry.start(run_dir / "registry", "plain")
    rows: dict[str, list[tuple[float, float]]] = {}
    walls = []
    try:
        run.prepare_tool("yardarm", env, wl, reg, "bench/app", run_dir)
        argv, child_env = run.tool_command("yardarm", env, wl, reg, "bench/app", run_dir)
        subprocess.run(argv, env=child_env, check=True, capture_output=True)
        store = str(run_dir / "store")
        target = f"{reg.host}/bench/app:latest"
        for _ in range(args.runs):
            start = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", CHILD, "--store", store, "push", "-q", target],
                env=child_env,
                check=True,
                capture_output=True,
                text=True,
            )
            walls.append(time.perf_counter() - start)
            for name, value in json.loads(out.stdout.strip().splitlines()[-1]).items():
                rows.setdefault(name, []).append(tuple(value))
    finally:
        reg.stop()
    print(f"W4 phases, median of {args.runs} runs (ms)  wall   cpu")
    total_wall = total_cpu = 0.0
    for name, values in rows.items():
        w = statistics.median(v[0] for v in values)
        c = statistics.median(v[1] for v in values)
        total_wall, total_cpu = total_wall + w, total_cpu + c
        print(f"  {name:<36} {w:6.1f} {c:6.1f}")
    whole = statistics.median(walls) * 1000
    print(f"  {'sum of phases':<36} {total_wall:6.1f} {total_cpu:6.1f}")
    print(f"  {'whole process (spawn to exit)':<36} {whole:6.1f}")
    print(f"  {'=> interpreter start + exit':<36} {whole - total_wall:6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
