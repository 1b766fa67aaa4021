"""``yardarm import``: a tarball or folder becomes a one-layer image (like docker import)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "import",
        help="create a one-layer image from a tarball or a folder",
        description="Create a one-layer image from a tarball (plain, gzip or zstd; kept as it "
        "is) or a folder (tarred deterministically: sorted, owners 0, fixed mtime).",
    )
    p.add_argument("source", metavar="FILE|DIR")
    p.add_argument("name", metavar="NAME[:TAG]", nargs="?")
    p.add_argument(
        "--mtime",
        type=int,
        default=None,
        help="mtime (seconds since the epoch) of every entry of a folder's tar "
        "(default $SOURCE_DATE_EPOCH or 0)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from yardarm.cli._store_util import open_store
    from yardarm.reference import parse

    ref = None
    if args.name:
        ref = parse(args.name)
        if ref.digest is not None:
            from yardarm.errors import UsageError

            raise UsageError(f"cannot import to a digest reference: {args.name}")
        if ref.tag is None:
            ref = ref.with_tag("latest")
    store = open_store(args)
    try:
        loaded = store.import_path(Path(args.source), ref, mtime=args.mtime)
    finally:
        store.close()
    print(loaded.id)
    return 0
