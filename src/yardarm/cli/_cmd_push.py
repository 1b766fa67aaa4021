"""``yardarm push``: docker push, without the daemon."""

from __future__ import annotations

import argparse
import sys

from yardarm.cli._options import add_registry_options, registry_options_from_args

__all__ = ["register", "run"]


def _size(text: str) -> int:
    units = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    unit = t[-1:] if t[-1:] in units else ""
    number = t[: len(t) - len(unit)] if unit else t
    try:
        return int(float(number) * units[unit])
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 64MiB)") from None


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "push",
        help="push an image or a repository to a registry",
        description="Push NAME[:TAG] (default tag latest) from the local store to its registry.",
    )
    p.add_argument("name", metavar="NAME[:TAG]")
    p.add_argument("-a", "--all-tags", action="store_true", help="push every tag of NAME")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the pushed references")
    p.add_argument(
        "--progress",
        choices=("auto", "plain", "tty", "json"),
        default="auto",
        help="bars on a terminal, plain lines, or docker's JSON message stream",
    )
    p.add_argument(
        "--format", choices=("docker", "oci"), default=None, help="manifest format to push"
    )
    p.add_argument(
        "--compression",
        metavar="ALGO[:LEVEL]",
        default=None,
        help="recompress layers: gzip[:0-3] or zstd[:1-22] (default: keep, gzip uncompressed)",
    )
    p.add_argument("--max-concurrent-uploads", type=int, default=5, metavar="N")
    p.add_argument(
        "--allow-nondistributable-artifacts",
        dest="allow_nondist",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="push foreign (non-distributable) layers to this registry too (repeatable)",
    )
    p.add_argument(
        "--allow-schema1",
        action="store_true",
        help="fall back to a signed schema1 manifest when the registry refuses schema2",
    )
    p.add_argument(
        "--chunk-size",
        type=_size,
        default=None,
        metavar="SIZE",
        help="resume points for big layers: upload in pieces of SIZE (default 64MiB)",
    )
    p.add_argument(
        "--max-chunk-size",
        type=_size,
        default=None,
        metavar="SIZE",
        help="never send a request body larger than SIZE (for proxies that cap uploads)",
    )
    add_registry_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from yardarm.cli._render import make_renderer
    from yardarm.errors import UsageError
    from yardarm.push.compress import Compression
    from yardarm.push.pusher import DEFAULT_CHUNK, Pusher, PushOptions
    from yardarm.reference import parse
    from yardarm.store import Store

    ref = parse(args.name)
    if ref.digest is not None:
        raise UsageError("cannot push a digest reference")
    if args.all_tags:
        if ref.tag is not None:
            raise UsageError("tag can't be used with --all-tags/-a")
    elif ref.tag is None:
        ref = ref.with_tag("latest")
    registry_options = registry_options_from_args(args)
    if args.max_chunk_size is not None:
        registry_options = dataclasses.replace(registry_options, max_chunk_size=args.max_chunk_size)
    options = PushOptions(
        registry=registry_options,
        max_concurrent_uploads=args.max_concurrent_uploads,
        format=args.format,
        compression=Compression.parse(args.compression) if args.compression else None,
        allow_nondistributable=tuple(args.allow_nondist),
        allow_schema1=args.allow_schema1,
        chunk_size=DEFAULT_CHUNK if args.chunk_size is None else args.chunk_size,
    )
    renderer = make_renderer(args.progress, args.quiet)
    store = Store.open(args.store)
    try:
        with Pusher(store, options, progress=renderer) as pusher:
            results = pusher.push(ref)
    except Exception as exc:
        renderer.close()
        renderer.error(" ".join(str(exc).split()))
        raise
    finally:
        store.close()
    renderer.close()
    if args.quiet:
        for r in results:
            sys.stdout.write(f"{ref.name_only().familiar()}:{r.tag}\n")
    return 0
