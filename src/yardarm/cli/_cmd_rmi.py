"""``yardarm rmi NAME[:TAG]...``: untag; delete images and content nothing else uses."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "rmi",
        help="remove images",
        description="Untag images; an image with no name left is deleted, with the layers "
        "and files no other image uses.",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("-f", "--force", action="store_true", help="delete an ID with several names")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from yardarm.cli._store_util import open_store
    from yardarm.errors import YardarmError

    failed = False
    store = open_store(args)
    try:
        for text in args.images:
            try:
                untagged, deleted = store.remove(text, force=args.force)
            except YardarmError as exc:  # like docker: report, go on with the others
                sys.stderr.write(f"yardarm: error: {' '.join(str(exc).split())}\n")
                failed = True
                continue
            for ref in untagged:
                print(f"Untagged: {ref.familiar()}")
            for d in deleted:
                print(f"Deleted: {d}")
    finally:
        store.close()
    return 1 if failed else 0
