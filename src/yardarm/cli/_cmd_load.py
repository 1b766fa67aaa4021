"""``yardarm load``: docker-archive, OCI archive (file or stdin) or OCI layout folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "load",
        help="load images from a docker-archive, OCI archive or OCI layout folder",
        description="Load images from a tar archive (docker save, OCI archive; stdin when no "
        "file is given) or an OCI image layout folder into the local store.",
    )
    p.add_argument("-i", "--input", metavar="FILE", help="read from FILE instead of stdin")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.add_argument(
        "--name",
        metavar="REPOSITORY",
        help="repository for OCI images named only by a bare tag (e.g. skopeo oci:DIR:v1)",
    )
    p.add_argument("path", nargs="?", metavar="FILE|DIR", help="archive file or layout folder")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from yardarm.cli._store_util import open_store
    from yardarm.errors import UsageError

    if args.input and args.path:
        raise UsageError("give either -i FILE or a path, not both")
    target = args.input or args.path
    if target is None and sys.stdin.isatty():
        raise UsageError("requested load from stdin, but stdin is empty (use -i FILE)")
    base = None
    if args.name:
        from yardarm.reference import parse_name

        base = parse_name(args.name)
    store = open_store(args)
    try:
        if target is None or target == "-":
            loaded = store.load_stream(sys.stdin.buffer, "<stdin>", base_name=base)
        else:
            loaded = store.load(Path(target), base_name=base)
    finally:
        store.close()
    if not args.quiet:
        for item in loaded:
            if item.tags:
                for ref in item.tags:
                    print(f"Loaded image: {ref.familiar()}")
            else:
                print(f"Loaded image ID: {item.id}")
    return 0
