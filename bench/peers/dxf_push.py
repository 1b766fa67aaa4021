"""Push an OCI layout with python-dxf, THREADS blobs at a time (run with bench/.venv's python).

    dxf_push.py LAYOUT HOST REPO TAG THREADS [--tls CA] (user/password in BENCH_USER/PASSWORD)

Given the digest, python-dxf streams the blob without hashing it first (with a file name it
would hash the whole file before uploading): the strongest way to drive it.
"""

import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor

from dxf import DXF

CHUNK = 1 << 20


def chunks(path):
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            yield block


def read_text(path):
    with open(path) as f:
        return f.read()


def read_json(path):
    return json.loads(read_text(path))


def main():
    layout, host, repo, tag, threads = sys.argv[1:6]
    ca = sys.argv[7] if len(sys.argv) > 7 and sys.argv[6] == "--tls" else None
    user = os.environ.get("BENCH_USER")

    def auth(dxf, response):
        dxf.authenticate(user, os.environ["BENCH_PASSWORD"], response=response)

    def client():
        return DXF(
            host, repo, auth=auth if user else None, insecure=ca is None, tlsverify=ca or True
        )

    index = read_json(f"{layout}/index.json")
    top = next(
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag
    )
    raw = read_text(f"{layout}/blobs/sha256/{top['digest'][7:]}")
    manifest = json.loads(raw)
    blobs = [manifest["config"]["digest"], *(d["digest"] for d in manifest["layers"])]
    clients = [client() for _ in range(int(threads))]

    def push(i_digest):
        i, digest = i_digest
        clients[i % len(clients)].push_blob(
            data=chunks(f"{layout}/blobs/sha256/{digest[7:]}"), digest=digest
        )

    with ThreadPoolExecutor(int(threads)) as pool:
        list(pool.map(push, enumerate(blobs)))
    clients[0].set_manifest(tag, raw)


if __name__ == "__main__":
    main()
