"""Push an OCI layout with oras-py's registry API, THREADS blobs at a time (bench/.venv python).

    oras_push.py LAYOUT HOST REPO TAG THREADS [--tls CA] (user/password in BENCH_USER/PASSWORD)

oras-py's own `push` builds an artifact manifest from files; an image push goes through
`upload_blob` per layer (HEAD, POST, then a PUT of the whole blob read into memory) and
`upload_manifest`, which re-serialises the manifest (so its digest changes).
"""

import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import oras.provider


def read_text(path):
    with open(path) as f:
        return f.read()


def read_json(path):
    return json.loads(read_text(path))


def main():
    layout, host, repo, tag, threads = sys.argv[1:6]
    ca = sys.argv[7] if len(sys.argv) > 7 and sys.argv[6] == "--tls" else None
    index = read_json(f"{layout}/index.json")
    top = next(
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag
    )
    manifest = read_json(f"{layout}/blobs/sha256/{top['digest'][7:]}")
    registry = oras.provider.Registry(
        hostname=host, insecure=ca is None, tls_verify=ca or True, auth_backend="basic"
    )
    if os.environ.get("BENCH_USER"):
        registry.auth.set_basic_auth(os.environ["BENCH_USER"], os.environ["BENCH_PASSWORD"])
    target = registry.get_container(f"{host}/{repo}:{tag}")
    descriptors = [manifest["config"], *manifest["layers"]]

    def push(desc):
        path = f"{layout}/blobs/sha256/{desc['digest'][7:]}"
        response = registry.upload_blob(path, target, desc)
        response.raise_for_status()

    with ThreadPoolExecutor(int(threads)) as pool:
        list(pool.map(push, descriptors))
    registry.upload_manifest(manifest, target).raise_for_status()


if __name__ == "__main__":
    main()
