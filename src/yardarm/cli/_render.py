"""Drawing push progress: rich bars on a terminal, plain lines in logs, docker's JSON stream.

The library only emits :class:`~yardarm.progress.ProgressEvent`; everything about how it looks
lives here. Renderers are called from upload threads, so each takes a lock.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from yardarm.progress import ProgressEvent

__all__ = ["JsonRenderer", "PlainRenderer", "QuietRenderer", "Renderer", "make_renderer"]


class Renderer:
    """Base: receives events; ``error`` reports the failure in the renderer's own style."""

    def __init__(self, out: IO[str] | None = None) -> None:
        self.out = out or sys.stdout
        self.lock = threading.Lock()

    def __call__(self, event: ProgressEvent) -> None:
        raise NotImplementedError

    def error(self, message: str) -> bool:
        """Report a failure; True when it was shown (so the CLI need not print it again)."""
        return False

    def close(self) -> None:
        """Finish drawing (stop live bars)."""


class PlainRenderer(Renderer):
    """One line per change of status, like docker without a terminal; byte counts are skipped
    except every 25% so CI logs stay short but long uploads still show they move."""

    def __init__(self, out: IO[str] | None = None) -> None:
        super().__init__(out)
        self._last: dict[str, str] = {}
        self._quarter: dict[str, int] = {}

    def __call__(self, event: ProgressEvent) -> None:
        with self.lock:
            if not event.id:
                self.out.write(event.status + "\n")
                self.out.flush()
                return
            if event.kind == "Pushing":
                if not event.total or event.current is None:
                    return
                quarter = min(4, event.current * 4 // max(event.total, 1))
                if quarter <= self._quarter.get(event.id, 0):
                    return
                self._quarter[event.id] = quarter
                self.out.write(f"{event.id}: Pushing {quarter * 25}%\n")
                self.out.flush()
                return
            if self._last.get(event.id) == event.status:
                return
            self._last[event.id] = event.status
            self.out.write(f"{event.id}: {event.status}\n")
            self.out.flush()


class QuietRenderer(Renderer):
    """``--quiet``: nothing while pushing; the CLI prints each pushed reference at the end."""

    def __call__(self, event: ProgressEvent) -> None:
        return


def _progress_bar(current: int, total: int | None) -> str:
    """docker's JSON ``progress`` text: a 50-column bar and the sizes."""
    if not total:
        return f"{_human(current)}"
    width = 50
    filled = min(width, current * width // total)
    bar = "=" * filled + (">" if filled < width else "") + " " * max(width - filled - 1, 0)
    return f"[{bar}] {_human(current)}/{_human(total)}"


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.4g}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1000
    return f"{n}"  # pragma: no cover


class JsonRenderer(Renderer):
    """docker's JSON message stream, one object per line (``docker push`` via the API)."""

    def __call__(self, event: ProgressEvent) -> None:
        msg: dict[str, Any]
        if event.aux is not None:
            msg = {"progressDetail": {}, "aux": event.aux}
            self._emit({"status": event.status})
            self._emit(msg)
            return
        msg = {"status": event.status}
        if event.id:
            msg["id"] = event.id
        if event.kind == "Pushing":
            detail: dict[str, int] = {"current": event.current or 0}
            if event.total:
                detail["total"] = event.total
            msg["progressDetail"] = detail
            msg["progress"] = _progress_bar(event.current or 0, event.total)
        elif event.id:
            msg["progressDetail"] = {}
        self._emit(msg)

    def _emit(self, msg: dict[str, Any]) -> None:
        with self.lock:
            self.out.write(json.dumps(msg, separators=(",", ":")) + "\n")
            self.out.flush()

    def error(self, message: str) -> bool:
        self._emit({"errorDetail": {"message": message}, "error": message})
        return False  # stderr still gets the one-line error


class RichRenderer(Renderer):
    """Live bars per layer on a terminal (needs the ``rich`` extra)."""

    def __init__(self, out: IO[str] | None = None) -> None:
        super().__init__(out)
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TransferSpeedColumn,
        )

        self.console = Console(file=self.out)
        self.progress = Progress(
            TextColumn("{task.fields[layer]}"),
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=self.console,
            transient=False,
        )
        self.tasks: dict[str, Any] = {}
        self.progress.start()

    def __call__(self, event: ProgressEvent) -> None:
        with self.lock:
            if not event.id:
                self.progress.console.print(event.status, markup=False, highlight=False)
                return
            task = self.tasks.get(event.id)
            if task is None:
                task = self.progress.add_task(event.status, layer=event.id, total=None)
                self.tasks[event.id] = task
            if event.kind == "Pushing":
                self.progress.update(
                    task, description="Pushing", completed=event.current, total=event.total
                )
            else:
                done = event.kind in ("Pushed", "Layer already exists", "Mounted from")
                fields: dict[str, Any] = {"description": event.status}
                if done:
                    total = self.progress.tasks[task].total or 1
                    fields.update(total=total, completed=total)
                self.progress.update(task, **fields)

    def close(self) -> None:
        self.progress.stop()


def make_renderer(mode: str, quiet: bool, out: IO[str] | None = None) -> Renderer:
    """``auto`` picks rich bars on a terminal when rich is installed, plain lines otherwise."""
    stream = out or sys.stdout
    if quiet:
        return QuietRenderer(stream)
    if mode == "json":
        return JsonRenderer(stream)
    if mode in ("auto", "tty") and (mode == "tty" or stream.isatty()):
        try:
            return RichRenderer(stream)
        except ImportError:
            if mode == "tty":
                from yardarm.errors import UsageError

                raise UsageError("--progress tty needs rich: pip install 'yardarm[rich]'") from None
    return PlainRenderer(stream)
