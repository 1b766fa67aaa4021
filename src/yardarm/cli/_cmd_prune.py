"""``yardarm prune``: drop untagged images and every file nothing references."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "prune",
        help="remove untagged images and unreferenced content",
        description="Remove images without a name (not part of a kept multi-platform image), "
        "layers no image uses, leftovers of interrupted loads and unreferenced files.",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from yardarm.cli._store_util import open_store

    store = open_store(args)
    try:
        result = store.prune()
    finally:
        store.close()
    for d in result.images_removed:
        print(f"Deleted: {d}")
    print(
        f"Removed {len(result.images_removed)} images, {result.layers_removed} layers, "
        f"{result.files_removed} files; reclaimed {result.bytes_freed} bytes"
    )
    return 0
