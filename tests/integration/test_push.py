"""Pushing against the real registry, checked with skopeo and the registry's access log."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakes.faultproxy import FaultProxy, respond
from support import imagegen as gen
from support import skopeo
from support.registry import RunningRegistry
from yardarm.digest import Digest
from yardarm.errors import DeniedError, ImageNotFound, RegistryError, UsageError
from yardarm.progress import ProgressEvent
from yardarm.push.compress import Compression
from yardarm.push.pusher import PushOptions, push
from yardarm.reference import parse
from yardarm.registry import Credentials, RegistryOptions
from yardarm.store import Store
from yardarm.store.metadata import compute_hmac_key

MiB = 1 << 20


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "store") as s:
        yield s


def load_as(store: Store, image: gen.GeneratedImage, target: str) -> Digest:
    """Load a generated image and tag what it loaded as ``target``."""
    loaded = store.load(image.path)
    assert len(loaded) >= 1
    store.references.add_tag(parse(target), loaded[0].id)
    return loaded[0].id


class Events(list[ProgressEvent]):
    def __call__(self, event: ProgressEvent) -> None:
        self.append(event)

    def statuses(self) -> list[str]:
        return [e.status for e in self]


def uploads(reg: RunningRegistry, mark: int) -> list[str]:
    """Blob upload requests (POST/PATCH/PUT of blobs) since ``mark``."""
    return [
        f"{e.method} {e.path}"
        for e in reg.access_log(mark)
        if "/blobs/uploads/" in e.path and e.method in ("POST", "PATCH", "PUT")
    ]


def diff_ids_via_skopeo(reg: RunningRegistry, repo: str, tag: str) -> list[str]:
    """The config's diff IDs as skopeo, an independent reader, fetches them."""
    flags = skopeo.registry_flags(reg, "")
    out = skopeo.run(["inspect", "--config", *flags, f"docker://{reg.host}/{repo}:{tag}"])
    return list(json.loads(out.stdout)["rootfs"]["diff_ids"])


def certs_for(reg: RunningRegistry, tmp_path: Path) -> Path:
    """A --certs-dir folder laid out like /etc/docker/certs.d for this registry's CA."""
    assert reg.ca_path is not None
    folder = tmp_path / "certs.d" / reg.host
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ca.crt").write_bytes(reg.ca_path.read_bytes())
    return tmp_path / "certs.d"


# -- formats ------------------------------------------------------------------------------


def test_oci_layout_keeps_its_manifest_digest(
    registry_plain: RunningRegistry, repo_name: str, store: Store, tmp_path: Path
) -> None:
    image = gen.write_oci_layout(tmp_path / "oci", layers=[50_000, 2 * MiB, 12 * MiB], seed=1)
    target = f"{registry_plain.host}/{repo_name}:v1"
    load_as(store, image, target)
    events = Events()
    [result] = push(store, target, progress=events)
    assert str(result.digest) == image.manifest_digest
    assert result.size == image.image.manifest_size
    assert result.tag == "v1"
    assert (
        events.statuses()[0] == f"The push refers to repository [{registry_plain.host}/{repo_name}]"
    )
    assert events.statuses()[-1] == f"v1: digest: {image.manifest_digest} size: {result.size}"
    assert diff_ids_via_skopeo(registry_plain, repo_name, "v1") == list(image.diff_ids)
    out = tmp_path / "back"
    skopeo.run(["copy", *skopeo.registry_flags(registry_plain, "src"),
                f"docker://{registry_plain.host}/{repo_name}:v1", f"oci:{out}:x"])  # fmt: skip
    index = json.loads((out / "index.json").read_text())
    assert index["manifests"][0]["digest"] == image.manifest_digest
    # The store remembers the pushed digest, as docker's addDigestReference does.
    pushed = store.references.references_to(store.references.get(parse(target)))
    assert any(r.digest == image.manifest_digest for r in pushed)


def test_zstd_layout_pushes_byte_for_byte(
    registry_plain: RunningRegistry, repo_name: str, store: Store, tmp_path: Path
) -> None:
    image = gen.write_oci_layout(tmp_path / "z", layers=[300_000, 3 * MiB], compression="zstd")
    target = f"{registry_plain.host}/{repo_name}:z"
    load_as(store, image, target)
    [result] = push(store, target)
    assert str(result.digest) == image.manifest_digest
    assert diff_ids_via_skopeo(registry_plain, repo_name, "z") == list(image.diff_ids)


def test_docker_archive_with_uncompressed_layers_is_compressed_on_the_way(
    registry_plain: RunningRegistry, repo_name: str, store: Store, tmp_path: Path
) -> None:
    image = gen.write_docker_archive(
        tmp_path / "d.tar", layers=[gen.LayerSpec(200_000, "text"), gen.LayerSpec(3 * MiB, "text")]
    )
    with FaultProxy(registry_plain.host) as proxy:
        image_id = load_as(store, image, f"{proxy.host}/{repo_name}:1")
        [result] = push(store, f"{proxy.host}/{repo_name}:1")
        sent = proxy.body_bytes_forwarded("PATCH|PUT", "/blobs/")
    manifest = skopeo.inspect_registry(registry_plain, repo_name, "1", raw=True)
    assert isinstance(manifest, dict)
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert manifest["config"]["digest"] == str(image_id)
    for layer in manifest["layers"]:
        assert layer["mediaType"] == "application/vnd.docker.image.rootfs.diff.tar.gzip"
    assert diff_ids_via_skopeo(registry_plain, repo_name, "1") == list(image.diff_ids)
    assert 0 < sent < sum(layer.uncompressed_size for layer in image.layers) / 2  # text shrinks
    assert result.digest == Digest.from_bytes(
        registry_plain.request(
            "GET", f"/v2/{repo_name}/manifests/1", headers={"Accept": manifest["mediaType"]}
        ).body
    )


def test_format_and_compression_can_be_changed(
    registry_plain: RunningRegistry, repo_name: str, store: Store, tmp_path: Path
) -> None:
    image = gen.write_docker_archive(tmp_path / "d.tar", layers=[gen.LayerSpec(400_000, "text")])
    target = f"{registry_plain.host}/{repo_name}:oci"
    load_as(store, image, target)
    options = PushOptions(format="oci", compression=Compression.parse("zstd:3"))
    push(store, target, options)
    manifest = skopeo.inspect_registry(registry_plain, repo_name, "oci", raw=True)
    assert isinstance(manifest, dict)
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    assert manifest["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"
    assert diff_ids_via_skopeo(registry_plain, repo_name, "oci") == list(image.diff_ids)


def test_multi_platform_index_pushes_children_then_index(
    registry_plain: RunningRegistry, repo_name: str, store: Store, tmp_path: Path
) -> None:
    image = gen.write_oci_layout(tmp_path / "multi", layers=[100_000, 200_000], platforms=3)
    target = f"{registry_plain.host}/{repo_name}:multi"
    load_as(store, image, target)
    mark = registry_plain.log_mark()
    [result] = push(store, target)
    assert str(result.digest) == image.index_digest
    puts = [
        e for e in registry_plain.access_log(mark) if e.method == "PUT" and "/manifests/" in e.path
    ]
    assert [e.path.rsplit("/", 1)[1] for e in puts][-1] == "multi"
    assert len(puts) == 4
    raw = skopeo.inspect_registry(registry_plain, repo_name, "multi", raw=True)
    assert isinstance(raw, dict)
    assert [m["digest"] for m in raw["manifests"]] == [i.manifest_digest for i in image.images]


# -- the cheap paths ------------------------------------------------------------------------


def test_repush_of_an_unchanged_image_costs_two_requests(
    registry_plain: RunningRegistry, repo_name: str, store: Store, tmp_path: Path
) -> None:
    image = gen.write_oci_layout(tmp_path / "oci", layers=[200_000, 1 * MiB, 11 * MiB], seed=3)
    target = f"{registry_plain.host}/{repo_name}:v1"
    load_as(store, image, target)
    push(store, target)
    mark = registry_plain.log_mark()
    events = Events()
    push(store, target, progress=events)
    requests = registry_plain.access_log(mark)
    assert uploads(registry_plain, mark) == []
    assert len(requests) <= 3, [f"{e.method} {e.path}" for e in requests]
    assert events.statuses().count("Layer already exists") == 3


def test_repush_of_a_compressed_on_the_fly_image_uploads_nothing(
    registry_plain: RunningRegistry, repo_name: str, store: Store, tmp_path: Path
) -> None:
    image = gen.write_docker_archive(
        tmp_path / "d.tar", layers=[gen.LayerSpec(300_000, "text")] * 2
    )
    target = f"{registry_plain.host}/{repo_name}:1"
    load_as(store, image, target)
    first = push(store, target)
    mark = registry_plain.log_mark()
    again = push(store, target)
    assert again == first
    assert uploads(registry_plain, mark) == []
    assert len(registry_plain.access_log(mark)) <= 4


def test_other_tag_of_the_same_image_reuses_push_knowledge(
    registry_plain: RunningRegistry, repo_name: str, store: Store, tmp_path: Path
) -> None:
    image = gen.write_docker_archive(
        tmp_path / "d.tar", layers=[gen.LayerSpec(150_000, "text")] * 3
    )
    loaded = store.load(image.path)[0].id
    name = f"{registry_plain.host}/{repo_name}"
    for tag in ("a", "b", "c"):
        store.references.add_tag(parse(f"{name}:{tag}"), loaded)
    mark = registry_plain.log_mark()
    events = Events()
    results = push(store, name, progress=events)  # no tag: every tag (the seed's rule)
    assert sorted(r.tag for r in results) == ["a", "b", "c"]
    assert len({r.digest for r in results}) == 1
    posts = [u for u in uploads(registry_plain, mark) if u.startswith("POST")]
    assert len(posts) == 4  # three layers and the config, once


def test_second_repository_mounts_every_layer(
    registry_plain: RunningRegistry, repo_name: str, store: Store, tmp_path: Path
) -> None:
    image = gen.write_oci_layout(tmp_path / "oci", layers=[50_000, 2 * MiB, 12 * MiB], seed=5)
    with FaultProxy(registry_plain.host) as proxy:
        first = f"{proxy.host}/{repo_name}/one:v1"
        second = f"{proxy.host}/{repo_name}/two:v1"
        image_id = load_as(store, image, first)
        store.references.add_tag(parse(second), image_id)
        push(store, first)
        proxy.requests.clear()
        events = Events()
        push(store, second, progress=events)
        config_hex = str(image_id).split(":")[1]
        layer_writes = [
            r for r in proxy.requests_matching(".*", "/blobs/") if config_hex not in r.target
        ]
        layer_bytes = sum(r.body_forwarded for r in layer_writes)
        mounts = proxy.requests_matching("POST", "mount=")
        all_blob_bytes = proxy.body_bytes_forwarded(".*", "/blobs/")
        config_requests = [
            r for r in proxy.requests_matching(".*", "/blobs/") if r not in layer_writes
        ]
    mounted = [s for s in events.statuses() if s.startswith("Mounted from")]
    assert len(mounted) == 3
    assert all(s == f"Mounted from {repo_name}/one" for s in mounted)
    assert len(mounts) == 4  # three layers and the config, pushed there before
    assert layer_bytes == 0
    assert all_blob_bytes == 0
    assert [(r.method, r.status) for r in config_requests] == [("POST", 201)]
    assert len(layer_writes) <= 2 * len(image.layers)  # a mount and at most one HEAD each
    assert skopeo.inspect_registry(registry_plain, f"{repo_name}/two", "v1")


def test_stale_metadata_is_dropped_and_the_layer_uploaded(
    registry_plain: RunningRegistry, repo_name: str, store: Store, tmp_path: Path
) -> None:
    image = gen.write_docker_archive(tmp_path / "d.tar", layers=[gen.LayerSpec(500_000, "text")])
    source = f"{registry_plain.host}/{repo_name}/src:1"
    image_id = load_as(store, image, source)
    push(store, source)
    diff_id = Digest.parse(image.diff_ids[0])
    [entry] = store.metadata.get(diff_id)
    # Delete the blob behind the registry's back: the metadata entry is now stale.
    resp = registry_plain.request("DELETE", f"/v2/{repo_name}/src/blobs/{entry.digest}")
    assert resp.status == 202
    dest = f"{registry_plain.host}/{repo_name}/dst:1"
    store.references.add_tag(parse(dest), image_id)
    events = Events()
    push(store, dest, progress=events)
    assert "Pushed" in events.statuses()
    entries = store.metadata.get(diff_id)
    assert [e.source_repository for e in entries] == [f"{registry_plain.host}/{repo_name}/dst"]
    assert skopeo.inspect_registry(registry_plain, f"{repo_name}/dst", "1")


def test_no_mount_from_another_accounts_history(
    registry_basic: RunningRegistry, repo_name: str, store: Store, tmp_path: Path
) -> None:
    image = gen.write_oci_layout(tmp_path / "oci", layers=[300_000, 2 * MiB], seed=9)
    options = RegistryOptions(certs_dirs=(certs_for(registry_basic, tmp_path),))
    pusher_creds = Credentials(username="pusher", password=registry_basic.users["pusher"])
    first = f"{registry_basic.host}/{repo_name}/a:1"
    image_id = load_as(store, image, first)
    push(store, first, PushOptions(registry=options, credentials=pusher_creds))
    diff_id = Digest.parse(image.diff_ids[0])
    assert store.metadata.get(diff_id)[0].hmac  # recorded with the first account's key
    # Same registry, other credentials: nothing recorded by the first account may steer mounts.
    other = Credentials(username="reader", password=registry_basic.users["reader"])
    assert compute_hmac_key(other.hmac_fields()) != compute_hmac_key(pusher_creds.hmac_fields())
    second = f"{registry_basic.host}/{repo_name}/b:1"
    store.references.add_tag(parse(second), image_id)
    mark = registry_basic.log_mark()
    events = Events()
    push(store, second, PushOptions(registry=options, credentials=other), progress=events)
    mounts = [e for e in registry_basic.access_log(mark) if "mount=" in e.query]
    assert mounts == []
    assert not any(s.startswith("Mounted") for s in events.statuses())


# -- failures -------------------------------------------------------------------------------


def test_error_paths_have_one_line_messages(
    registry_plain: RunningRegistry, repo_name: str, store: Store
) -> None:
    name = f"{registry_plain.host}/{repo_name}"
    with pytest.raises(ImageNotFound) as missing:
        push(store, f"{name}:nope")
    assert str(missing.value) == f"tag does not exist: {name}:nope"
    with pytest.raises(ImageNotFound) as none:
        push(store, name)
    assert str(none.value) == f"no tags to push for {name}"
    with pytest.raises(UsageError) as digest:
        push(store, f"{name}@sha256:{'a' * 64}")
    assert str(digest.value) == "cannot push a digest reference"


def test_denied_push_names_the_repository_and_puts_no_manifest(
    registry_token: RunningRegistry, repo_name: str, store: Store, tmp_path: Path
) -> None:
    image = gen.write_oci_layout(tmp_path / "oci", layers=[10_000])
    target = f"{registry_token.host}/{repo_name}:1"
    load_as(store, image, target)
    reader = Credentials(username="reader", password=registry_token.users["reader"])
    mark = registry_token.log_mark()
    with pytest.raises((DeniedError, RegistryError)) as info:
        push(store, target, PushOptions(credentials=reader))
    assert "\n" not in str(info.value)
    assert repo_name in str(info.value) or "denied" in str(info.value).lower()
    assert not [
        e for e in registry_token.access_log(mark) if "/manifests/" in e.path and e.method == "PUT"
    ]


def test_a_layer_failing_for_good_means_no_manifest(
    registry_plain: RunningRegistry, repo_name: str, store: Store, tmp_path: Path
) -> None:
    image = gen.write_oci_layout(tmp_path / "oci", layers=[100_000, 2 * MiB], seed=11)
    with FaultProxy(registry_plain.host) as proxy:
        proxy.add(
            respond(
                400,
                body=b'{"errors":[{"code":"DIGEST_INVALID","message":"digest did not match"}]}',
                method="PUT",
                path=r"/blobs/uploads/",
                times=None,
            )
        )
        target = f"{proxy.host}/{repo_name}:1"
        load_as(store, image, target)
        with pytest.raises(RegistryError) as info:
            push(store, target)
        assert info.value.status == 400
        assert not proxy.requests_matching("PUT", "/manifests/")
    assert registry_plain.request("HEAD", f"/v2/{repo_name}/manifests/1").status == 404


def test_concurrency_at_the_registry_never_exceeds_the_limit(
    registry_plain: RunningRegistry, repo_name: str, store: Store, tmp_path: Path
) -> None:
    image = gen.write_oci_layout(tmp_path / "oci", layers=[150_000] * 8, seed=13)
    with FaultProxy(registry_plain.host) as proxy:
        from fakes.faultproxy import latency

        proxy.add(latency(0.05, method="PUT", path=r"/blobs/uploads/"))
        target = f"{proxy.host}/{repo_name}:1"
        load_as(store, image, target)
        push(store, target, PushOptions(max_concurrent_uploads=3))
        spans = [
            (r.started, r.finished or r.started)
            for r in proxy.requests_matching("PUT", "/blobs/uploads/")
        ]
    assert len(spans) == 9  # eight layers and the config
    peak = max(sum(1 for s, f in spans if s <= t < f) for t, _ in spans)
    assert 2 <= peak <= 3


# -- the command line ---------------------------------------------------------------------


def yardarm(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "yardarm", "--store", str(store), *args],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_cli_push_prints_docker_lines_and_json_stream(
    registry_plain: RunningRegistry, repo_name: str, tmp_path: Path
) -> None:
    image = gen.write_oci_layout(tmp_path / "oci", layers=[20_000, 1 * MiB], seed=17)
    store_dir = tmp_path / "st"
    assert yardarm(store_dir, "load", str(image.path)).returncode == 0
    with Store.open(store_dir) as s:
        image_id = s.images.ids()[0]
    target = f"{registry_plain.host}/{repo_name}"
    assert yardarm(store_dir, "tag", str(image_id), target).returncode == 0  # :latest
    plain = yardarm(store_dir, "push", target)
    assert plain.returncode == 0, plain.stderr
    lines = plain.stdout.splitlines()
    assert lines[0] == f"The push refers to repository [{target}]"
    assert lines[-1] == f"latest: digest: {image.manifest_digest} size: {image.image.manifest_size}"
    assert "Pushed" in plain.stdout
    again = yardarm(store_dir, "push", "--progress", "json", target)
    assert again.returncode == 0
    messages = [json.loads(line) for line in again.stdout.splitlines()]
    assert messages[0] == {"status": f"The push refers to repository [{target}]"}
    aux = [m["aux"] for m in messages if "aux" in m]
    assert aux == [
        {"Tag": "latest", "Digest": image.manifest_digest, "Size": image.image.manifest_size}
    ]
    assert any(m.get("status") == "Layer already exists" for m in messages)


def test_cli_errors_are_one_line(registry_plain: RunningRegistry, tmp_path: Path) -> None:
    store_dir = tmp_path / "st"
    missing = yardarm(store_dir, "push", f"{registry_plain.host}/x/y:nope")
    assert missing.returncode == 1
    assert missing.stderr == f"yardarm: error: tag does not exist: {registry_plain.host}/x/y:nope\n"
    digest = yardarm(store_dir, "push", f"{registry_plain.host}/x/y@sha256:{'a' * 64}")
    assert digest.returncode == 2
    assert digest.stderr == "yardarm: error: cannot push a digest reference\n"
    both = yardarm(store_dir, "push", "-a", f"{registry_plain.host}/x/y:t")
    assert both.returncode == 2
    assert "Traceback" not in missing.stderr + digest.stderr + both.stderr


def test_a_zstd_blob_is_never_reused_as_gzip(
    registry_plain: RunningRegistry, repo_name: str, store: Store, tmp_path: Path
) -> None:
    image = gen.write_docker_archive(tmp_path / "d.tar", layers=[gen.LayerSpec(2 * MiB, "text")])
    zstd_target = f"{registry_plain.host}/{repo_name}/z:1"
    gzip_target = f"{registry_plain.host}/{repo_name}/g:1"
    image_id = load_as(store, image, zstd_target)
    store.references.add_tag(parse(gzip_target), image_id)
    push(store, zstd_target, PushOptions(compression=Compression.parse("zstd")))
    [entry] = store.metadata.get(Digest.parse(image.diff_ids[0]))
    assert entry.media_type == "application/vnd.oci.image.layer.v1.tar+zstd"
    events = Events()
    push(store, gzip_target, progress=events)
    assert not any(s.startswith("Mounted") for s in events.statuses())
    manifest = skopeo.inspect_registry(registry_plain, f"{repo_name}/g", "1", raw=True)
    assert isinstance(manifest, dict)
    [layer] = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.docker.image.rootfs.diff.tar.gzip"
    assert layer["digest"] != str(entry.digest)
    assert diff_ids_via_skopeo(registry_plain, f"{repo_name}/g", "1") == list(image.diff_ids)
    # A third repository wanting gzip mounts the gzip blob, not the zstd one.
    third = f"{registry_plain.host}/{repo_name}/g2:1"
    store.references.add_tag(parse(third), image_id)
    events = Events()
    push(store, third, progress=events)
    assert f"Mounted from {repo_name}/g" in events.statuses()


def test_schema1_fallback_only_when_allowed_and_schema2_is_refused(
    registry_schema1: RunningRegistry, repo_name: str, store: Store, tmp_path: Path
) -> None:
    image = gen.write_docker_archive(tmp_path / "d.tar", layers=[gen.LayerSpec(120_000, "text")])
    refusal = (
        b'{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid",'
        b'"detail":"schema2 not supported"}]}'
    )
    with FaultProxy(registry_schema1.host) as proxy:
        target = f"{proxy.host}/{repo_name}:legacy"
        load_as(store, image, target)
        # Without --allow-schema1 the refusal stands.
        proxy.add(respond(400, body=refusal, method="PUT", path="/manifests/", times=1))
        with pytest.raises(RegistryError) as info:
            push(store, target)
        assert info.value.code == "MANIFEST_INVALID"
        # With it, the signed schema1 manifest goes up after the same refusal.
        proxy.add(respond(400, body=refusal, method="PUT", path="/manifests/", times=1))
        [result] = push(store, target, PushOptions(allow_schema1=True))
        puts = proxy.requests_matching("PUT", "/manifests/")
    assert [p.status for p in puts][-2:] == [400, 201]
    raw = registry_schema1.request(
        "GET",
        f"/v2/{repo_name}/manifests/legacy",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v1+prettyjws"},
    )
    assert raw.status == 200
    assert json.loads(raw.body)["schemaVersion"] == 1
    assert raw.headers["docker-content-digest"] == str(result.digest)
    inspected = skopeo.inspect_registry(registry_schema1, repo_name, "legacy", raw=False)
    assert isinstance(inspected, dict)
    pushed = store.metadata.get(Digest.parse(image.diff_ids[0]))[-1].digest
    assert inspected["Layers"] == [str(pushed)]
    assert (store.path / "schema1-key.pem").stat().st_mode & 0o777 == 0o600
