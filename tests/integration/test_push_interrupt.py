"""Ctrl-C during a push: sessions cancelled, nothing tagged, exit 130; a rerun finishes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from fakes.faultproxy import FaultProxy, latency
from support import imagegen as gen
from support.registry import RunningRegistry
from yardarm.reference import parse
from yardarm.store import Store

MiB = 1 << 20


def test_ctrl_c_cancels_open_uploads_and_tags_nothing(
    registry_plain: RunningRegistry, repo_name: str, tmp_path: Path
) -> None:
    image = gen.write_oci_layout(tmp_path / "oci", layers=[40 * MiB], seed=21)
    store_dir = tmp_path / "store"
    with FaultProxy(registry_plain.host) as proxy:
        target = f"{proxy.host}/{repo_name}:1"
        with Store.open(store_dir) as store:
            loaded = store.load(image.path)
            store.references.add_tag(parse(target), loaded[0].id)
        proxy.add(latency(0.4, method="PATCH", path="/blobs/uploads/"))
        proc = subprocess.Popen(
            [sys.executable, "-m", "yardarm", "--store", str(store_dir), "push",
             "--progress", "plain", "--chunk-size", "4MiB", target],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not proxy.requests_matching("PATCH") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proxy.requests_matching("PATCH"), "the push never started uploading"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert "Traceback" not in err
        assert err.count("\n") == 1
        assert proxy.requests_matching("DELETE", "/blobs/uploads/"), "session left open"
        assert not proxy.requests_matching("PUT", "/manifests/")
        patches = len(proxy.requests_matching("PATCH"))
        assert patches < 10  # stopped early: 40 MiB in 4 MiB pieces would take 10
    status = registry_plain.request("HEAD", f"/v2/{repo_name}/manifests/1").status
    assert status == 404
    with Store.open(store_dir) as store:
        # A cancelled upload leaves nothing to resume: its session is gone on the registry.
        assert store.db.query("SELECT COUNT(*) FROM uploads") == [(0,)]
    # A rerun (direct, no proxy needed for correctness) completes.
    rerun = subprocess.run(
        [sys.executable, "-m", "yardarm", "--store", str(store_dir), "tag", target,
         f"{registry_plain.host}/{repo_name}:1"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    done = subprocess.run(
        [sys.executable, "-m", "yardarm", "--store", str(store_dir), "push",
         f"{registry_plain.host}/{repo_name}:1"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"1: digest: {image.manifest_digest}" in done.stdout
