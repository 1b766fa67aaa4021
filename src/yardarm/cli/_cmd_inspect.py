"""``yardarm inspect NAME[:TAG]``: config, manifest and layers of a local image, as JSON."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "inspect",
        help="show a local image's config and manifest as JSON",
        description="Show the config, manifest, diff IDs and layers of local images as JSON.",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.set_defaults(run=run)


def describe(store: Any, text: str) -> dict[str, Any]:
    from yardarm.store import Image

    target, _ = store.resolve(text)
    item = store.images.get(target)
    refs = store.references.references_to(target)
    out: dict[str, Any] = {
        "Id": str(target),
        "RepoTags": [r.familiar() for r in refs if r.tag is not None],
        "RepoDigests": [r.familiar() for r in refs if r.digest is not None],
    }
    if isinstance(item, Image):
        out["ConfigDigest"] = str(item.id)
        out["ConfigMediaType"] = item.config_media_type
        out["Config"] = json.loads(item.config_raw)
        out["Platform"] = None if item.platform is None else str(item.platform)
        out["RootFS"] = {"Type": "layers", "Layers": [str(d) for d in item.diff_ids]}
        out["ChainID"] = None if item.chain_id() is None else str(item.chain_id())
        out["SourceFormat"] = item.source_format
        out["ManifestDigest"] = None if item.manifest_raw is None else str(item.manifest_digest)
        out["ManifestMediaType"] = item.manifest_media_type
        out["Manifest"] = None if item.manifest_raw is None else json.loads(item.manifest_raw)
        layers = []
        for lay in store.layers.for_image(item):
            blob = lay.blob
            layers.append(
                {
                    "ChainID": str(lay.chain_id),
                    "DiffID": str(lay.diff_id),
                    "Size": lay.size,
                    "Digest": None if blob is None else str(blob.digest),
                    "CompressedSize": None if blob is None else blob.size,
                    "MediaType": None if blob is None else blob.media_type,
                    "Foreign": None if lay.foreign is None else lay.foreign.to_json(),
                }
            )
        out["Layers"] = layers
    else:
        out["MediaType"] = item.media_type
        out["Index"] = json.loads(item.raw)
        out["Children"] = [
            {"Descriptor": d.to_json(), "Id": str(child)} for d, child in item.children
        ]
    return out


def run(args: argparse.Namespace) -> int:
    from yardarm.cli._store_util import open_store

    store = open_store(args)
    try:
        result = [describe(store, text) for text in args.images]
    finally:
        store.close()
    print(json.dumps(result, indent=4))
    return 0
