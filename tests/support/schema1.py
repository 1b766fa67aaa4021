"""Sign Docker schema1 manifests (libtrust "pretty" JWS, ES256), independently of yardarm.

Only tests need this: it is the oracle that proves the `schema1` registry mode accepts what a
correct signer writes, so yardarm's own signer can be compared against it.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

SIGNED_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v1+prettyjws"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def manifest_for(
    name: str, tag: str, layers: list[str], architecture: str = "amd64"
) -> dict[str, object]:
    """A minimal schema1 body: fsLayers newest first, one v1Compatibility entry per layer."""
    history = []
    parent = None
    ids = []
    for i, _ in enumerate(reversed(layers)):
        layer_id = hashlib.sha256(f"{name}:{tag}:{i}".encode()).hexdigest()
        entry: dict[str, object] = {"id": layer_id, "created": "2024-01-01T00:00:00Z"}
        if parent:
            entry["parent"] = parent
        if i == len(layers) - 1:
            entry["architecture"] = architecture
            entry["os"] = "linux"
        parent = layer_id
        ids.append(entry)
    for entry in reversed(ids):
        history.append({"v1Compatibility": json.dumps(entry, separators=(",", ":"))})
    return {
        "schemaVersion": 1,
        "name": name,
        "tag": tag,
        "architecture": architecture,
        "fsLayers": [{"blobSum": d} for d in layers],
        "history": history,
    }


def sign(manifest: dict[str, object], key: ec.EllipticCurvePrivateKey | None = None) -> bytes:
    """The signed manifest bytes; its digest is that of the payload without signatures."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    payload = json.dumps(manifest, indent=3).encode()
    # libtrust signs the document up to its closing brace and keeps the tail aside.
    format_length = payload.rstrip().rindex(b"}")
    while payload[format_length - 1 : format_length].isspace():
        format_length -= 1
    tail = payload[format_length:]
    protected = _b64(
        json.dumps(
            {
                "formatLength": format_length,
                "formatTail": _b64(tail),
                "time": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        ).encode()
    )
    der = key.sign(f"{protected}.{_b64(payload)}".encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    numbers = key.public_key().public_numbers()
    signature = {
        "header": {
            "jwk": {
                "crv": "P-256",
                "kty": "EC",
                "x": _b64(numbers.x.to_bytes(32, "big")),
                "y": _b64(numbers.y.to_bytes(32, "big")),
            },
            "alg": "ES256",
        },
        "signature": _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big")),
        "protected": protected,
    }
    signatures = json.dumps([signature], indent=3).replace("\n", "\n   ")
    return payload[:format_length] + f',\n   "signatures": {signatures}'.encode() + tail


def payload_digest(manifest: dict[str, object]) -> str:
    """The digest the registry gives a signed manifest produced by `sign` (signatures excluded)."""
    return "sha256:" + hashlib.sha256(json.dumps(manifest, indent=3).encode()).hexdigest()
