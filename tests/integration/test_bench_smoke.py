"""The benchmark driver, end to end at tiny sizes: the real registry, yardarm, skopeo and curl.

`make bench` takes many minutes, so this keeps its code path working inside `make test`: fresh
registries, store copies, re-push and mount scenarios, the access-log counts and the report.
No timing is asserted; the numbers of a run this small mean nothing.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.registry


def _driver() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def _rows(report: str, workload: str) -> dict[str, list[str]]:
    section = report.split(f"### {workload} ", 1)[1].split("###", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ") and cells[0] not in ("tool",):
            rows[cells[0]] = cells
    return rows


def test_bench_driver_pushes_every_tool_and_writes_the_report(tmp_path: Path) -> None:
    for tool in ("skopeo", "curl", "docker-registry"):
        assert shutil.which(tool), f"{tool} is missing: run `make registry-deps`"
    out = tmp_path / "RESULTS.md"
    out.write_text("# Results\n\nProse kept.\n\n<!-- BEGIN GENERATED -->\n<!-- END GENERATED -->\n")
    code = _driver().main(
        [
            "--size", "tiny", "--reps", "1",
            "--only", "W1,W2,W4,W5",
            "--tools", "yardarm,skopeo,curl-4",
            "--out", str(out), "--work", str(tmp_path / "work"),
            "--yardarm", str(Path(sys.executable).parent / "yardarm"),
        ]
    )  # fmt: skip
    report = out.read_text()
    assert code == 0, report
    assert report.startswith("# Results\n\nProse kept.\n")
    w1 = _rows(report, "W1")
    assert set(w1) == {"yardarm", "skopeo", "curl-4"}
    for tool, cells in w1.items():
        assert not cells[1].startswith("failed"), (tool, cells)
        assert "PUT 201" in cells[7], (tool, cells)  # requests came from the access log
        assert float(cells[9]) > 0, (tool, cells)  # the manifest the tag names has layers
    assert set(_rows(report, "W2")) == {"yardarm", "skopeo"}
    # A re-push uploads nothing: no blob session is opened.
    w4 = _rows(report, "W4")["yardarm"]
    assert "POST" not in w4[7] and "PATCH" not in w4[7], w4
    # A push to a second repository mounts (POST 201) instead of uploading.
    w5 = _rows(report, "W5")["yardarm"]
    assert re.search(r"POST 201 x\d+", w5[7]), w5
    assert "### Targets" in report and "yardarm --version" in report
