"""``yardarm tag SOURCE TARGET``."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "tag",
        help="give an image another name",
        description="Create a tag TARGET that refers to SOURCE (a reference or image ID).",
    )
    p.add_argument("source", metavar="SOURCE")
    p.add_argument("target", metavar="TARGET")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from yardarm.cli._store_util import open_store
    from yardarm.errors import UsageError
    from yardarm.reference import parse

    ref = parse(args.target)
    if ref.digest is not None:
        raise UsageError(f"refusing to create a tag with a digest reference: {args.target}")
    if ref.tag is None:
        ref = ref.with_tag("latest")
    store = open_store(args)
    try:
        target, _ = store.resolve(args.source)
        store.references.add_tag(ref, target)
    finally:
        store.close()
    return 0
