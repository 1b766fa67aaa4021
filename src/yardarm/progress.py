"""Progress as data: the library emits events, the CLI decides how to draw them.

The statuses are docker's words, so users and tools that parse docker's output recognise them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "ALREADY_EXISTS",
    "MOUNTED_FROM",
    "PREPARING",
    "PUSHED",
    "PUSHING",
    "RETRYING",
    "SKIPPED_FOREIGN",
    "WAITING",
    "ProgressCallback",
    "ProgressEvent",
    "RateMeter",
    "null_progress",
]

PREPARING: Final = "Preparing"
WAITING: Final = "Waiting"
PUSHING: Final = "Pushing"
PUSHED: Final = "Pushed"
ALREADY_EXISTS: Final = "Layer already exists"
MOUNTED_FROM: Final = "Mounted from"
RETRYING: Final = "Retrying in"
SKIPPED_FOREIGN: Final = "Skipped foreign layer"


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """One change: ``id`` is the short layer ID (empty for repository-wide messages).

    ``status`` is the full docker wording (``Mounted from library/x``, ``Retrying in 3 seconds``);
    ``kind`` is the bare status constant so renderers need not parse text. ``aux`` carries the
    final push result, as docker's JSON stream does.
    """

    id: str
    status: str
    kind: str = ""
    current: int | None = None
    total: int | None = None
    rate: float | None = None
    error: str | None = None
    aux: dict[str, Any] | None = field(default=None)


ProgressCallback = Callable[[ProgressEvent], None]


def null_progress(event: ProgressEvent) -> None:
    """The default sink: a library call without a callback shows nothing."""


class RateMeter:
    """Counts bytes of one transfer and emits ``Pushing`` events at most every ``interval`` s.

    Throttling matters: a 1 GiB layer sent in 1 MiB writes would otherwise make a thousand
    events, and drawing them costs the CPU the upload needs.
    """

    def __init__(
        self,
        layer_id: str,
        total: int | None,
        sink: ProgressCallback,
        *,
        interval: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._id = layer_id
        self._total = total
        self._sink = sink
        self._interval = interval
        self._clock = clock
        self._start = clock()
        self._last = -interval
        self._lock = threading.Lock()
        self.current = 0

    def reset(self, current: int = 0) -> None:
        with self._lock:
            self.current = current
            self._start = self._clock()

    def add(self, n: int) -> None:
        with self._lock:
            self.current += n
            now = self._clock()
            if now - self._last < self._interval:
                return
            self._last = now
            elapsed = max(now - self._start, 1e-6)
            event = ProgressEvent(
                self._id,
                PUSHING,
                PUSHING,
                current=self.current,
                total=self._total,
                rate=self.current / elapsed,
            )
        self._sink(event)
