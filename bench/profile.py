"""Profile one yardarm push of a benchmark workload with py-spy, and summarise where time goes.

    python bench/profile.py W1 [--size full|quick] [--rate 250] [--idle] [--out DIR]

Same setting as bench/run.py (fresh registry, fresh store copy, W4/W5 prepared by an untimed
first push). Writes DIR/<W>.raw (py-spy's collapsed stacks; feed it to flamegraph.pl or
speedscope) and prints the top functions by self and by total samples, per thread group.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def _driver() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module
    spec.loader.exec_module(module)
    return module


def summarise(raw: Path, top: int = 25) -> str:
    """Self and total samples per function from py-spy's raw (collapsed) output."""
    self_counts: Counter[str] = Counter()
    total_counts: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if not f.startswith(("thread ", "process "))]
        samples += count
        if frames:
            self_counts[frames[-1]] += count
        for frame in set(frames):
            total_counts[frame] += count
    out = [f"{samples} samples (active threads summed; idle excluded unless --idle)", ""]
    for title, counts in (("self", self_counts), ("total", total_counts)):
        out.append(f"top {top} by {title}:")
        for frame, n in counts.most_common(top):
            out.append(f"  {100 * n / max(samples, 1):5.1f}%  {frame}")
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("workload")
    p.add_argument("--size", default="full")
    p.add_argument("--rate", type=int, default=250)
    p.add_argument("--idle", action="store_true", help="also sample threads waiting on I/O")
    p.add_argument("--tool", default="yardarm", help="yardarm variant, e.g. yardarm-gzip1")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "work" / "profiles")
    p.add_argument("--py-spy", type=Path, default=ROOT / "bench" / ".venv" / "bin" / "py-spy")
    args = p.parse_args(argv)
    run = _driver()
    wl = next(w for w in run.workloads(args.size) if w.name == args.workload)
    work = (ROOT / "bench" / "work").resolve()
    env = run.Env(
        work=work,
        bench_python=ROOT / "bench" / ".venv" / "bin" / "python",
        yardarm=Path(sys.executable).parent / "yardarm",
    )
    env.paths[wl.image.name] = run.generate(wl.image, work)
    args.out.mkdir(parents=True, exist_ok=True)
    raw = args.out / f"{args.workload}.raw"
    run_dir = work / "profile-run"  # bench/run.py may be using work/run
    subprocess.run(["rm", "-rf", str(run_dir)], check=True)
    run_dir.mkdir(parents=True)
    reg = run.Registry.start(run_dir / "registry", wl.mode)
    try:
        repo = "bench/app"
        run.prepare_tool(args.tool, env, wl, reg, repo, run_dir)
        if wl.scenario in ("repush", "mount"):
            argv0, child_env = run.tool_command(args.tool, env, wl, reg, repo, run_dir)
            subprocess.run(argv0, env=child_env, check=True, capture_output=True)
            if wl.scenario == "mount":
                repo = "bench/other"
                run.tag_in_store(env, wl, run_dir / "store", f"{reg.host}/{repo}:latest")
        argv1, child_env = run.tool_command(args.tool, env, wl, reg, repo, run_dir)
        spy = [str(args.py_spy), "record", "-r", str(args.rate), "-f", "raw", "-o", str(raw)]
        spy += ["--threads", "--function", *(["--idle"] if args.idle else []), "--"]
        subprocess.run([*spy, *argv1], env=child_env, check=True)
    finally:
        reg.stop()
    print(summarise(raw))
    return 0


if __name__ == "__main__":
    sys.exit(main())
