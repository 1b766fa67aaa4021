"""Push benchmarks: yardarm side by side with skopeo, curl, python-dxf and oras-py.

    python bench/run.py [--size full|quick|tiny] [--reps N] [--only W1,W3] [--tools yardarm,skopeo]
                        [--out bench/RESULTS.md] [--work bench/work]

Every run gets a fresh `docker-registry` (new storage, so nothing is de-duplicated) and, for
yardarm, a fresh copy of the local store (hard-linked blobs, copied database: no push metadata
leaks between runs). Tools alternate within each repetition. The measured process is the
tool's own CLI as a child: wall time, CPU and peak RSS come from `os.wait4`; request counts from
the registry's access log; bytes received and CPU of the registry from its /proc entry.

The tables are written between the GENERATED markers of the output file; prose around them
(profile findings, recommendations) is kept.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.imagegen import LayerSpec, write_docker_archive, write_oci_layout  # noqa: E402

MiB = 1 << 20
GiB = 1 << 30
REGISTRY_SCRIPT = ROOT / "scripts" / "registry"
SKOPEO_CACHE = Path("/var/lib/containers/cache/blob-info-cache-v1.boltdb")
BEGIN, END = "<!-- BEGIN GENERATED -->", "<!-- END GENERATED -->"
TICKS = os.sysconf("SC_CLK_TCK")


# --- workloads -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageSpec:
    """What to generate: a layout (`oci`) or a docker-archive with uncompressed layers."""

    name: str
    kind: str  # "oci" | "docker-archive"
    layers: tuple[LayerSpec, ...]
    compression: str

    @property
    def path_name(self) -> str:
        return self.name + (".tar" if self.kind == "docker-archive" else "")

    def signature(self) -> str:
        return json.dumps([self.kind, self.compression, [(x.size, x.content) for x in self.layers]])

    @property
    def total(self) -> int:
        return sum(x.size for x in self.layers)


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    image: ImageSpec
    scenario: str = "fresh"  # fresh | repush | mount
    mode: str = "plain"  # registry mode: plain | basic (TLS + htpasswd)
    tools: tuple[str, ...] = ()


#: layer sizes of the big (W1), text (W2), small (W3) and huge (W6) images per --size; the
#: layer counts never change. "tiny" is the smoke test's: seconds, for `make test`.
SIZES = {
    "full": (128 * MiB, 128 * MiB, 200 * 1024, GiB),
    "quick": (16 * MiB, 16 * MiB, 200 * 1024, 128 * MiB),
    "tiny": (64 * 1024, 64 * 1024, 4 * 1024, 256 * 1024),
}


def images(size: str) -> dict[str, ImageSpec]:
    big, text, small, huge = SIZES[size]
    # Full-size images keep plain names; other sizes get their own, so switching sizes never
    # throws away (and regenerates) the 6 GiB of full-size images.
    sfx = "" if size == "full" else f"-{size}"
    return {
        "big": ImageSpec(f"big{sfx}", "oci", (LayerSpec(big),) * 8, "gzip"),
        "text": ImageSpec(f"text{sfx}", "docker-archive", (LayerSpec(text, "text"),) * 4, "none"),
        "small": ImageSpec(f"small{sfx}", "oci", (LayerSpec(small),) * 50, "gzip"),
        "huge": ImageSpec(f"huge{sfx}", "oci", (LayerSpec(huge),) * 4, "gzip"),
    }


def _size(n: int) -> str:
    return f"{n // MiB} MiB" if n >= MiB else f"{n // 1024} KiB"


def workloads(size: str) -> list[Workload]:
    im = images(size)
    layout_peers = ("yardarm", "skopeo", "curl-1", "curl-4", "dxf-4", "oras-4")

    def mib(spec: ImageSpec) -> str:
        return _size(spec.layers[0].size)

    return [
        Workload("W1", f"big: 8 x {mib(im['big'])} random, gzip, OCI layout", im["big"],
                 tools=layout_peers),
        Workload("W1-TLS", "W1 over TLS with basic auth", im["big"], mode="basic",
                 tools=("yardarm", "skopeo", "curl-4", "dxf-4")),
        Workload("W2", f"text: 4 x {mib(im['text'])} text, docker-archive, uncompressed "
                 "(the push compresses)", im["text"],
                 tools=("yardarm", "yardarm-gzip1", "yardarm-gzip2", "skopeo",
                        "skopeo-level1")),
        Workload("W3", f"small: 50 x {mib(im['small'])} random, gzip, OCI layout", im["small"],
                 tools=layout_peers),
        Workload("W4", "re-push: W1 again to the same repository", im["big"],
                 scenario="repush", tools=("yardarm", "skopeo", "dxf-4", "oras-4")),
        Workload("W5", "mount: W1 to a second repository of the same registry", im["big"],
                 scenario="mount", tools=("yardarm", "skopeo")),
        Workload("W6", f"huge: 4 x {mib(im['huge'])} random, gzip, OCI layout (memory)",
                 im["huge"], tools=("yardarm", "skopeo", "curl-4", "dxf-4", "oras-4")),
    ]  # fmt: skip


def generate(spec: ImageSpec, work: Path) -> Path:
    """Write the image once; a stamp file holding the spec makes later runs reuse it."""
    path = work / "images" / spec.path_name
    stamp = work / "images" / f"{spec.name}.stamp"
    if path.exists() and stamp.exists() and stamp.read_text() == spec.signature():
        return path
    if path.is_dir():
        shutil.rmtree(path)
    path.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"bench: generating {spec.name} ({spec.total / MiB:.0f} MiB)", file=sys.stderr)
    if spec.kind == "oci":
        write_oci_layout(path, layers=spec.layers, compression=spec.compression)  # type: ignore[arg-type]
    else:
        write_docker_archive(
            path, layers=spec.layers, compression="none", tags=("localhost/bench:latest",)
        )
    stamp.write_text(spec.signature())
    return path


# --- the registry ----------------------------------------------------------------------------


@dataclass
class Registry:
    dir: Path
    host: str
    url: str
    pid: int
    ca: str | None
    user: str | None
    password: str | None = field(repr=False)

    @classmethod
    def start(cls, directory: Path, mode: str) -> Registry:
        if directory.exists():
            shutil.rmtree(directory)
        out = subprocess.run(
            [sys.executable, str(REGISTRY_SCRIPT), "start", "--mode", mode, "--dir",
             str(directory)],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        state = json.loads(out.strip().splitlines()[-1])
        users = state.get("users") or {}
        user = "pusher" if users else None
        return cls(
            dir=directory,
            host=state["host"],
            url=state["url"],
            pid=int(state["pid"]),
            ca=state.get("ca"),
            user=user,
            password=users.get(user) if user else None,
        )

    def stop(self) -> None:
        """SIGKILL: the storage is thrown away, so a graceful stop would only cost time."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while Path(f"/proc/{self.pid}").exists() and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, os.WNOHANG)
            if _zombie(self.pid):
                break
            time.sleep(0.01)
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_mark(self) -> int:
        return (self.dir / "registry.log").stat().st_size

    def requests(self, since: int) -> Counter[str]:
        """Requests by "METHOD status" after `since`, from the access log."""
        with open(self.dir / "registry.log", "rb") as f:
            f.seek(since)
            text = f.read().decode("utf-8", "replace")
        counts: Counter[str] = Counter()
        for m in re.finditer(r'"([A-Z]+) /v2/\S* HTTP/[^"]+" (\d{3}) ', text):
            counts[f"{m[1]} {m[2]}"] += 1
        return counts

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS

    def rchar(self) -> int:
        """Bytes the registry read (sockets and files): received bodies dominate."""
        for line in Path(f"/proc/{self.pid}/io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
        return 0

    def manifest(self, repo: str, tag: str) -> dict[str, Any] | None:
        """The manifest the tag names, read from storage (no request, so nothing is logged)."""
        v2 = self.dir / "storage" / "docker" / "registry" / "v2"
        link = v2 / "repositories" / repo / "_manifests" / "tags" / tag / "current" / "link"
        try:
            digest = link.read_text().strip().split(":", 1)[1]
            data = (v2 / "blobs" / "sha256" / digest[:2] / digest / "data").read_bytes()
        except (OSError, IndexError):
            return None
        parsed: dict[str, Any] = json.loads(data)
        parsed["_digest"] = "sha256:" + digest
        return parsed


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


# --- one measured run ------------------------------------------------------------------------


@dataclass
class Sample:
    tool: str
    wall: float
    cpu: float
    rss_mib: float
    registry_cpu: float
    received: int
    requests: dict[str, int]
    layer_bytes: int
    manifest_digest: str
    ok: bool
    error: str = ""


def measure(argv: Sequence[str], env: dict[str, str], reg: Registry, log: Path) -> Sample:
    mark, cpu0, rchar0 = reg.log_mark(), reg.cpu(), reg.rchar()
    # ru_maxrss survives exec, so a child forked from this (big) process would report at
    # least our own RSS: GNU time, a tiny process, forks the tool and reports its peak.
    rss_file = log.with_name("rss.txt")
    timed = ["/usr/bin/time", "-o", str(rss_file), "-f", "%M", *argv]
    with open(log, "ab") as out:
        out.write(f"\n$ {' '.join(argv)}\n".encode())
        out.flush()
        t0 = time.perf_counter()
        proc = subprocess.Popen(timed, env=env, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    try:
        rss_kib = int(rss_file.read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        rss_kib = 0
    time.sleep(0.05)  # the access log line follows the response
    return Sample(
        tool="",
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        rss_mib=rss_kib / 1024,
        registry_cpu=reg.cpu() - cpu0,
        received=reg.rchar() - rchar0,
        requests=dict(reg.requests(mark)),
        layer_bytes=0,
        manifest_digest="",
        ok=proc.returncode == 0,
        error="" if proc.returncode == 0 else f"exit {proc.returncode}",
    )


@dataclass
class Env:
    work: Path
    bench_python: Path
    yardarm: Path
    stores: dict[str, Path] = field(default_factory=dict)
    image_ids: dict[str, str] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)


def base_store(env: Env, spec: ImageSpec) -> Path:
    """Load the image into a store once (not timed); runs work on copies of it."""
    if spec.name in env.stores:
        return env.stores[spec.name]
    store = env.work / "stores" / spec.name
    stamp = store.with_suffix(".stamp")
    if not (stamp.exists() and stamp.read_text() == spec.signature()):
        shutil.rmtree(store, ignore_errors=True)
        store.parent.mkdir(parents=True, exist_ok=True)
        path = env.paths[spec.name]
        args = [str(path)] if spec.kind == "oci" else ["-i", str(path)]
        out = subprocess.run(
            [str(env.yardarm), "--store", str(store), "load", *args],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        m = re.search(r"Loaded image(?: ID)?: (\S+)", out)
        if m is None:
            raise RuntimeError(f"yardarm load printed no image: {out!r}")
        (store.parent / f"{spec.name}.id").write_text(m[1])
        stamp.write_text(spec.signature())
    env.image_ids[spec.name] = (store.parent / f"{spec.name}.id").read_text()
    env.stores[spec.name] = store
    return store


def fresh_store(env: Env, spec: ImageSpec, dest: Path) -> Path:
    """A private copy of the base store: blobs hard-linked, everything else copied."""
    base = base_store(env, spec)
    shutil.rmtree(dest, ignore_errors=True)
    for src in base.rglob("*"):
        rel = src.relative_to(base)
        target = dest / rel
        if src.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif rel.parts[0] == "blobs":
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(src, target)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    return dest


def oci_blobs(layout: Path) -> tuple[str, str, list[str]]:
    """(manifest digest, media type, blob digests) of the layout's `latest`."""
    index = json.loads((layout / "index.json").read_text())
    top = index["manifests"][0]
    manifest = json.loads((layout / "blobs" / "sha256" / top["digest"][7:]).read_text())
    blobs = [manifest["config"]["digest"], *(d["digest"] for d in manifest["layers"])]
    return top["digest"], top["mediaType"], blobs


def tool_command(
    tool: str, env: Env, wl: Workload, reg: Registry, repo: str, run_dir: Path
) -> tuple[list[str], dict[str, str]]:
    """The argv and environment that push `wl`'s image to `reg`/`repo`:latest with `tool`."""
    spec = wl.image
    path = env.paths[spec.name]
    child_env = dict(os.environ)
    tls = reg.ca is not None
    if tool.startswith("yardarm"):
        store = run_dir / "store"
        argv = [str(env.yardarm), "--store", str(store), "push", "-q"]
        if tool == "yardarm-gzip1":
            argv += ["--compression", "gzip:1"]
        elif tool == "yardarm-gzip2":
            argv += ["--compression", "gzip:2"]
        if tls:
            certs = run_dir / "certs.d"
            (certs / reg.host).mkdir(parents=True, exist_ok=True)
            shutil.copy(str(reg.ca), certs / reg.host / "ca.crt")
            argv += ["--certs-dir", str(certs)]
        if reg.user:
            cfg = run_dir / "docker-config"
            cfg.mkdir(parents=True, exist_ok=True)
            auth = base64.b64encode(f"{reg.user}:{reg.password}".encode()).decode()
            (cfg / "config.json").write_text(json.dumps({"auths": {reg.host: {"auth": auth}}}))
            child_env["DOCKER_CONFIG"] = str(cfg)
        return [*argv, f"{reg.host}/{repo}:latest"], child_env
    if tool.startswith("skopeo"):
        argv = ["skopeo", "copy", "--retry-times=0"]
        if tls:
            certs = run_dir / "skopeo-certs"
            certs.mkdir(parents=True, exist_ok=True)
            shutil.copy(str(reg.ca), certs / "ca.crt")
            argv.append(f"--dest-cert-dir={certs}")
        else:
            argv.append("--dest-tls-verify=false")
        argv.append(f"--dest-creds={reg.user}:{reg.password}" if reg.user else "--dest-no-creds")
        if spec.kind == "oci":
            argv += ["--preserve-digests", f"oci:{path}:latest"]
        else:
            if tool == "skopeo-level1":
                argv.append("--dest-compress-level=1")
            argv.append(f"docker-archive:{path}")
        return [*argv, f"docker://{reg.host}/{repo}:latest"], child_env
    if reg.user:
        child_env["BENCH_USER"], child_env["BENCH_PASSWORD"] = reg.user, str(reg.password)
    tls_args = ["--tls", str(reg.ca)] if tls else []
    if tool.startswith("curl"):
        digest, media_type, blobs = oci_blobs(path)
        child_env.update(BENCH_BLOBS=" ".join(blobs), BENCH_MANIFEST=digest,
                         BENCH_MEDIATYPE=media_type, BENCH_CA=str(reg.ca or ""))  # fmt: skip
        par = tool.split("-")[1]
        script = ROOT / "bench" / "peers" / "curl_push.sh"
        return ["bash", str(script), str(path), reg.url, repo, "latest", par], child_env
    if tool in ("dxf-4", "oras-4"):
        script = ROOT / "bench" / "peers" / ("dxf_push.py" if tool == "dxf-4" else "oras_push.py")
        argv = [str(env.bench_python), str(script), str(path), reg.host, repo, "latest", "4"]
        return [*argv, *tls_args], child_env
    raise ValueError(f"unknown tool {tool}")


def prepare_tool(
    tool: str, env: Env, wl: Workload, reg: Registry, repo: str, run_dir: Path
) -> None:
    """Per-run state before the timed push: a fresh yardarm store tagged for this registry."""
    if tool.startswith("yardarm"):
        store = fresh_store(env, wl.image, run_dir / "store")
        tag_in_store(env, wl, store, f"{reg.host}/{repo}:latest")


def tag_in_store(env: Env, wl: Workload, store: Path, ref: str) -> None:
    image = env.image_ids[wl.image.name]
    subprocess.run([str(env.yardarm), "--store", str(store), "tag", image, ref], check=True)


def one_run(env: Env, wl: Workload, tool: str, log: Path) -> Sample:
    run_dir = env.work / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    reg = Registry.start(run_dir / "registry", wl.mode)
    try:
        repo = "bench/app"
        # W4/W5: the same tool pushes W1 first (untimed), so whatever it remembers (yardarm's
        # store metadata, skopeo's blob-info cache) is what a real second push would have.
        if tool.startswith("skopeo"):
            SKOPEO_CACHE.unlink(missing_ok=True)
        if wl.scenario in ("repush", "mount"):
            prepare_tool(tool, env, wl, reg, repo, run_dir)
            argv, child_env = tool_command(tool, env, wl, reg, repo, run_dir)
            first = measure(argv, child_env, reg, log)
            if not first.ok:
                raise RuntimeError(f"{tool}: first push for {wl.name} failed ({first.error})")
            if wl.scenario == "mount":
                repo = "bench/other"
        if tool.startswith("yardarm") and wl.scenario == "fresh":
            prepare_tool(tool, env, wl, reg, repo, run_dir)
        elif tool.startswith("yardarm") and wl.scenario == "mount":
            tag_in_store(env, wl, run_dir / "store", f"{reg.host}/{repo}:latest")
        argv, child_env = tool_command(tool, env, wl, reg, repo, run_dir)
        sample = measure(argv, child_env, reg, log)
        sample.tool = tool
        manifest = reg.manifest(repo, "latest")
        if manifest is None:
            sample.ok, sample.error = False, sample.error or "no manifest tagged"
        else:
            sample.layer_bytes = sum(int(x["size"]) for x in manifest.get("layers", []))
            sample.manifest_digest = manifest["_digest"]
        return sample
    finally:
        reg.stop()


# --- report ----------------------------------------------------------------------------------


def med(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt_requests(req: dict[str, int]) -> str:
    return ", ".join(f"{k} x{v}" for k, v in sorted(req.items())) or "-"


def table(wl: Workload, samples: dict[str, list[Sample]]) -> list[str]:
    ref = [s.wall for s in samples.get("yardarm", []) if s.ok]
    yd = med(ref)
    lines = [
        f"### {wl.name} — {wl.title}",
        "",
        "| tool | wall median (s) | min-max | yardarm / tool | client CPU (s) | peak RSS (MiB) "
        "| registry CPU (s) | requests (method status x count, one run) | registry received "
        "(MiB) | layer bytes in manifest (MiB) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for tool in wl.tools:
        runs = samples.get(tool, [])
        good = [s for s in runs if s.ok]
        if not good:
            errors = "; ".join(sorted({s.error for s in runs})) or "not run"
            lines.append(f"| {tool} | failed: {errors} |" + " |" * 8)
            continue
        walls = [s.wall for s in good]
        ratio = yd / med(walls) if ref else float("nan")
        failed = f" ({len(runs) - len(good)} failed)" if len(good) < len(runs) else ""
        lines.append(
            f"| {tool}{failed} | {med(walls):.3f} | {min(walls):.3f}-{max(walls):.3f} "
            f"| {ratio:.2f} | {med([s.cpu for s in good]):.2f} "
            f"| {max(s.rss_mib for s in good):.0f} | {med([s.registry_cpu for s in good]):.2f} "
            f"| {fmt_requests(good[-1].requests)} | {med([s.received for s in good]) / MiB:.1f} "
            f"| {med([s.layer_bytes for s in good]) / MiB:.1f} |"
        )
    return [*lines, ""]


def targets(wls: list[Workload], res: dict[str, dict[str, list[Sample]]]) -> list[str]:
    def m(w: str, tool: str, attr: str = "wall") -> float:
        return med([getattr(s, attr) for s in res.get(w, {}).get(tool, []) if s.ok])

    def requests(w: str) -> float:
        runs = [s for s in res.get(w, {}).get("yardarm", []) if s.ok]
        return med([sum(s.requests.values()) for s in runs])

    def check(value: float, limit: float) -> str:
        if math.isnan(value):
            return "not measured"
        return "met" if value <= limit else "**missed**"

    names = {w.name for w in wls}
    out = ["### Targets (ratios from this run)", "", "| target | measured | |", "|---|---|---|"]
    if "W1" in names:
        r1, r2 = m("W1", "yardarm") / m("W1", "skopeo"), m("W1", "yardarm") / m("W1", "curl-4")
        out.append(f"| W1 <= 0.6x skopeo | {r1:.3f}x | {check(r1, 0.6)} |")
        out.append(f"| W1 <= 1.15x curl-4 | {r2:.3f}x | {check(r2, 1.15)} |")
    if "W2" in names:
        r = m("W2", "yardarm") / m("W2", "skopeo")
        b = m("W2", "yardarm", "layer_bytes") / m("W2", "skopeo", "layer_bytes")
        out.append(f"| W2 <= 0.5x skopeo (gzip default) | {r:.3f}x | {check(r, 0.5)} |")
        out.append(f"| W2 bytes <= 1.05x skopeo's | {b:.3f}x | {check(b, 1.05)} |")
        for t in ("yardarm-gzip1", "yardarm-gzip2"):
            bt = m("W2", t, "layer_bytes") / m("W2", "skopeo", "layer_bytes")
            out.append(f"| W2 bytes, {t}, vs skopeo | {bt:.3f}x | (for choosing the default) |")
    if "W3" in names:
        r1, r2 = m("W3", "yardarm") / m("W3", "skopeo"), m("W3", "yardarm") / m("W3", "dxf-4")
        out.append(f"| W3 <= 0.6x skopeo | {r1:.3f}x | {check(r1, 0.6)} |")
        out.append(f"| W3 <= 0.9x python-dxf 4 thr | {r2:.3f}x | {check(r2, 0.9)} |")
    if "W4" in names:
        n, w = requests("W4"), m("W4", "yardarm")
        out.append(f"| W4 <= 3 requests | {n:.0f} | {check(n, 3)} |")
        out.append(f"| W4 <= 0.3 s wall incl. start-up | {w:.3f} s | {check(w, 0.3)} |")
    if "W5" in names:
        runs = [s for s in res.get("W5", {}).get("yardarm", []) if s.ok]
        layers = 8
        per = med([sum(s.requests.values()) for s in runs]) / layers
        mounts = med([s.requests.get("POST 201", 0) for s in runs])
        got = m("W5", "yardarm", "received") / MiB
        # Config and manifest are KiB; any layer would be tens of MiB at every size but tiny.
        out.append(f"| W5 at most 2 requests per layer | {per:.2f} per layer | {check(per, 2)} |")
        verdict = "not measured" if not runs else "met" if mounts >= layers else "**missed**"
        out.append(
            f"| W5 zero layer bytes uploaded | {mounts:.0f} mounts (POST 201) for {layers} "
            f"layers, registry received {got:.3f} MiB | {verdict} |"
        )
    if "W6" in names:
        rss = [s.rss_mib for s in res.get("W6", {}).get("yardarm", []) if s.ok]
        r = max(rss) if rss else float("nan")
        out.append(f"| W6 peak RSS <= 80 MiB (worst run) | {r:.0f} MiB | {check(r, 80)} |")
    return [*out, ""]


def compile_sources(yardarm: Path) -> None:
    """Byte-compile yardarm as `pip install` would. The editable install here has no .pyc files,
    and with PYTHONDONTWRITEBYTECODE set (as in these sessions) every start would compile
    every imported module from source again: ~40 % of a re-push's time, measured."""
    python = yardarm.parent / "python"
    subprocess.run(
        [str(python), "-m", "compileall", "-q", str(ROOT / "src" / "yardarm")],
        check=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    )


def startup(yardarm: Path, reps: int) -> list[str]:
    walls, cpus = [], []
    for _ in range(max(reps, 5)):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run([str(yardarm), "--version"], capture_output=True, check=True)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    w = med(walls)
    verdict = "met" if w <= 0.15 else "**missed**"
    return [
        f"Start-up: `yardarm --version` median {w:.3f} s wall (min {min(walls):.3f}), "
        f"{med(cpus):.3f} s CPU, over {len(walls)} runs — target <= 0.15 s wall: {verdict}.",
        "",
    ]


def source_state() -> str:
    """The commit measured, and which files under src/ differed from it (others edit too)."""

    def git(*argv: str) -> str:
        proc = subprocess.run(
            ["git", "-C", str(ROOT), *argv], capture_output=True, text=True, check=False
        )
        return proc.stdout.strip()

    dirty = git("status", "--porcelain", "--", "src").splitlines()
    changed = ", ".join(line[3:] for line in dirty) if dirty else "none"
    return f"{git('rev-parse', '--short', 'HEAD') or '?'} (uncommitted under src/: {changed})"


def versions(bench_python: Path) -> str:
    def out(argv: list[str]) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, check=False).stdout
        except OSError:
            return ""

    skopeo = out(["skopeo", "--version"]).strip()
    curl = out(["curl", "--version"]).split("\n")[0].split(" (")[0]
    peers = out([str(bench_python), "-m", "pip", "list", "--format=freeze"])
    pins = [x for x in peers.split() if x.lower().startswith(("python-dxf", "oras=="))]
    return f"{skopeo}; {curl}; {', '.join(pins)}; Python {platform.python_version()}"


def write_report(
    out: Path, wls: list[Workload], res: dict[str, dict[str, list[Sample]]], header: list[str]
) -> None:
    body = [BEGIN, *header]
    for wl in wls:
        if wl.name in res:
            body += table(wl, res[wl.name])
    body += targets(wls, res)
    body.append(END)
    text = out.read_text() if out.exists() else "# Push benchmarks\n\n" + BEGIN + "\n" + END + "\n"
    if BEGIN in text and END in text:
        pre, rest = text.split(BEGIN, 1)
        post = rest.split(END, 1)[1]
        text = pre + "\n".join(body) + post
    else:
        text = text + "\n" + "\n".join(body) + "\n"
    out.write_text(text)


def rerender(path: Path, out: Path, size: str) -> int:
    """Rewrite the report from saved samples (after a change to the report code)."""
    saved = json.loads(path.read_text())
    samples = saved["samples"] if isinstance(saved, dict) else saved
    header = saved.get("header") if isinstance(saved, dict) else None
    if not header and out.exists() and BEGIN in out.read_text():
        # keep the header of the run that produced the samples
        block = out.read_text().split(BEGIN, 1)[1].split("### ", 1)[0]
        header = [*block.strip("\n").splitlines(), ""]
    header = header or [f"Re-rendered from {path.name}.", ""]
    res: dict[str, dict[str, list[Sample]]] = {}
    for row in samples:
        fields = {k: v for k, v in row.items() if k not in ("workload", "rep")}
        res.setdefault(row["workload"], {}).setdefault(row["tool"], []).append(Sample(**fields))
    wls = [w for w in workloads(size) if w.name in res]
    write_report(out, wls, res, header)
    return 0


# --- main ------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", choices=sorted(SIZES), default="full", help="layer sizes")
    p.add_argument("--quick", action="store_const", dest="size", const="quick")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--only", default="", help="comma-separated workloads (W1,W1-TLS,...)")
    p.add_argument("--tools", default="", help="comma-separated tools to keep")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    p.add_argument("--work", type=Path, default=ROOT / "bench" / "work")
    p.add_argument("--yardarm", type=Path, default=Path(sys.executable).parent / "yardarm")
    p.add_argument("--bench-python", type=Path, default=ROOT / "bench" / ".venv" / "bin" / "python")
    p.add_argument(
        "--from-json", type=Path, help="only rewrite the report from a saved results.json"
    )
    p.add_argument(
        "--keep-from",
        type=Path,
        metavar="RESULTS_JSON",
        help="also report the workloads this run skips, from an earlier run's samples",
    )
    args = p.parse_args(argv)
    if args.from_json:
        return rerender(args.from_json, args.out, args.size)
    work: Path = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    wls = workloads(args.size)
    if args.only:
        keep = set(args.only.split(","))
        wls = [w for w in wls if w.name in keep]
    if args.tools:
        keep_tools = set(args.tools.split(","))
        wls = [
            Workload(w.name, w.title, w.image, w.scenario, w.mode,
                     tuple(t for t in w.tools if t in keep_tools))
            for w in wls
        ]  # fmt: skip
    env = Env(work=work, bench_python=args.bench_python, yardarm=args.yardarm)
    compile_sources(args.yardarm)
    for wl in wls:
        if wl.image.name not in env.paths:
            env.paths[wl.image.name] = generate(wl.image, work)
    log = work / "tools.log"
    load0 = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    res: dict[str, dict[str, list[Sample]]] = {}
    raw: list[dict[str, Any]] = []
    keep_note = ""
    for wl in wls:
        res[wl.name] = {}
        for rep in range(args.reps):
            # alternate: rotate the order each repetition so no tool always runs first
            order = list(wl.tools[rep % len(wl.tools) :] + wl.tools[: rep % len(wl.tools)])
            for tool in order:
                try:
                    s = one_run(env, wl, tool, log)
                except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
                    s = Sample(tool, 0, 0, 0, 0, 0, {}, 0, "", False, str(e).splitlines()[0])
                res[wl.name].setdefault(tool, []).append(s)
                raw.append({"workload": wl.name, "rep": rep, **s.__dict__})
                state = f"{s.wall:.3f} s cpu {s.cpu:.2f} rss {s.rss_mib:.0f} MiB"
                print(f"bench: {wl.name} {tool} rep {rep + 1}: "
                      f"{state if s.ok else 'FAILED ' + s.error}", file=sys.stderr)  # fmt: skip
    (work / "results.json").write_text(json.dumps({"header": None, "samples": raw}, indent=1))
    if args.keep_from:
        saved = json.loads(args.keep_from.read_text())
        measured = set(res)
        for row in saved["samples"] if isinstance(saved, dict) else saved:
            if row["workload"] in measured:
                continue
            fields = {k: v for k, v in row.items() if k not in ("workload", "rep")}
            res.setdefault(row["workload"], {}).setdefault(row["tool"], []).append(Sample(**fields))
        ran = {w.name: w for w in wls}
        kept = [w for w in workloads(args.size) if w.name in res and w.name not in ran]
        if kept:
            names = ", ".join(w.name for w in kept)
            wls = [ran.get(w.name, w) for w in workloads(args.size) if w.name in res]
            keep_note = f"{names}: from an earlier run ({args.keep_from.name}), not this one."
    header = [
        *([keep_note, ""] if keep_note else []),
        f"Run {started}, {args.size} sizes, {args.reps} repetitions, "
        f"fresh registry per run. Machine: {os.cpu_count()} cores, load average before "
        f"{load0[0]:.1f}, after {os.getloadavg()[0]:.1f} (other sessions share it: noise).",
        f"Versions: {versions(args.bench_python)}; yardarm at {source_state()}.",
        "",
        *startup(args.yardarm, args.reps),
    ]
    write_report(args.out, wls, res, header)
    (work / "results.json").write_text(json.dumps({"header": header, "samples": raw}, indent=1))
    print(f"bench: wrote {args.out}", file=sys.stderr)
    return 0 if all(s.ok for w in res.values() for v in w.values() for s in v) else 1


if __name__ == "__main__":
    sys.exit(main())
