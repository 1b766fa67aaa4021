"""Opening the store the way every store command does: --store, then $YARDARM_STORE."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from yardarm.store import Store


def open_store(args: argparse.Namespace) -> Store:
    from yardarm.store import Store

    path = getattr(args, "store", None)
    return Store.open(Path(path) if path else None)
