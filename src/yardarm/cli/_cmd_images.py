"""``yardarm images``: the local images, as docker lists them."""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime
from typing import Any


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("images", help="list local images", description="List local images.")
    p.add_argument("repository", nargs="?", metavar="REPOSITORY", help="only this repository")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--no-trunc", action="store_true", help="show full image IDs")
    p.set_defaults(run=run)


def human_size(size: float) -> str:
    """docker's HumanSize: decimal units, 3 significant digits."""
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    i = 0
    while size >= 1000 and i < len(units) - 1:
        size /= 1000
        i += 1
    return f"{size:.3g}{units[i]}"


def human_ago(when: float | None, now: float) -> str:
    if when is None:
        return "N/A"
    secs = max(0.0, now - when)
    for unit, n in (
        ("years", 365 * 86400),
        ("months", 30 * 86400),
        ("weeks", 7 * 86400),
        ("days", 86400),
        ("hours", 3600),
        ("minutes", 60),
    ):
        if secs >= 2 * n:
            return f"{int(secs // n)} {unit} ago"
        if secs >= n:
            return f"About a{'n' if unit == 'hours' else ''} {unit[:-1]} ago"
    return "Less than a second ago" if secs < 1 else f"{int(secs)} seconds ago"


def _created(config: dict[str, Any]) -> float | None:
    text = config.get("created")
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def rows(store: Any, repository: str | None) -> list[dict[str, Any]]:
    from yardarm.reference import parse_name
    from yardarm.store import Image

    wanted = parse_name(repository).name if repository else None
    refs: dict[str, list[Any]] = {}
    for ref, target in store.references.all():
        refs.setdefault(str(target), []).append(ref)
    out: list[dict[str, Any]] = []
    for target in store.images.ids():
        item = store.images.get(target)
        if isinstance(item, Image):
            size = sum(max(0, lay.size) for lay in store.layers.for_image(item))
            created = _created(item.config())
        else:
            size = 0
            created = None
            for _, child in item.children:
                sub = store.images.get(child)
                if isinstance(sub, Image):
                    size += sum(max(0, lay.size) for lay in store.layers.for_image(sub))
                    created = created or _created(sub.config())
            if not refs.get(str(target)):
                continue  # children are listed under their index's names
        names = refs.get(str(target), [])
        if not names:
            if store.db.query_one("SELECT 1 FROM index_children WHERE child = ?", (str(target),)):
                continue
            names = [None]
        for ref in names:
            if ref is not None and ref.tag is None:
                continue  # digest references show as RepoDigests in inspect
            repo = ref.familiar_name() if ref is not None else "<none>"
            if wanted is not None and (ref is None or ref.name != wanted):
                continue
            out.append(
                {
                    "Repository": repo,
                    "Tag": ref.tag if ref is not None else "<none>",
                    "ID": str(target),
                    "Created": created,
                    "Size": size,
                }
            )
    out.sort(key=lambda r: (-(r["Created"] or 0), r["Repository"], r["Tag"]))
    return out


def run(args: argparse.Namespace) -> int:
    from yardarm.cli._store_util import open_store

    store = open_store(args)
    try:
        table = rows(store, args.repository)
    finally:
        store.close()
    now = time.time()
    if args.format == "json":
        for r in table:
            print(json.dumps(r, sort_keys=True))
        return 0
    header = ("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE")
    lines = [header]
    for r in table:
        image_id = r["ID"] if args.no_trunc else r["ID"].split(":", 1)[1][:12]
        lines.append(
            (
                r["Repository"],
                r["Tag"],
                image_id,
                human_ago(r["Created"], now),
                human_size(r["Size"]),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    for line in lines:
        cells = [c.ljust(w) for c, w in zip(line[:-1], widths, strict=True)]
        print("   ".join([*cells, line[-1]]))
    return 0
