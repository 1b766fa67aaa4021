"""The upload manager: bounded concurrency, de-duplication, retries with a visible countdown.

Like docker's upload manager, identical work is done once: a job's ``key`` names the work
(``repository + diff ID``), and a second request for a key already in flight waits for the first
instead of uploading again, whether it comes from another tag of the same push or from another
push running in another thread. Concurrency is bounded for the whole manager, not per call,
because the registry (not the client) is the bottleneck on a small machine.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from yardarm.errors import Cancelled, TooManyRequests, UploadInvalid, YardarmError
from yardarm.progress import (
    RETRYING,
    WAITING,
    ProgressCallback,
    ProgressEvent,
    null_progress,
)

__all__ = ["Job", "RetryPolicy", "TransferManager", "is_retryable"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Job(Protocol[T_co]):
    """One unit of work. ``run`` is called once per attempt with a cancellation flag to poll."""

    @property
    def key(self) -> str: ...

    @property
    def id(self) -> str: ...

    def run(self, attempt: int, cancelled: threading.Event) -> T_co: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Five attempts with doubling delays, as docker does; total waiting is capped."""

    attempts: int = 5
    first_delay: float = 1.0
    max_delay: float = 30.0
    max_retry_after: float = 60.0
    max_total_wait: float = 180.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.first_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must not be negative")

    def delay(self, attempt: int, exc: BaseException) -> float:
        """Seconds to wait after failed ``attempt`` (1-based)."""
        base = min(self.first_delay * 2.0 ** (attempt - 1), self.max_delay)
        if isinstance(exc, TooManyRequests) and exc.retry_after is not None:
            return max(base, min(exc.retry_after, self.max_retry_after))
        return base


def is_retryable(exc: BaseException) -> bool:
    """Whether another attempt can succeed: network and server trouble yes; auth, denial,
    invalid input, local corruption and a full disk no."""
    if isinstance(exc, Cancelled):
        return False
    if isinstance(exc, UploadInvalid):
        return True  # the session died; a fresh one usually works
    if isinstance(exc, YardarmError):
        return exc.temporary
    return isinstance(exc, ConnectionError | TimeoutError)


@dataclass(slots=True)
class _Flight(Generic[T]):
    future: Future[T]
    waiters: int = 1


class TransferManager:
    """Runs jobs on a bounded pool, sharing in-flight work by key, retrying what can succeed."""

    def __init__(
        self,
        max_concurrent: int = 5,
        policy: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.max_concurrent = max_concurrent
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._pool = ThreadPoolExecutor(max_concurrent, thread_name_prefix="yardarm-upload")
        self._lock = threading.Lock()
        self._inflight: dict[str, _Flight[object]] = {}
        self._active = 0

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __enter__(self) -> TransferManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(
        self,
        jobs: Sequence[Job[T]],
        progress: ProgressCallback = null_progress,
        cancelled: threading.Event | None = None,
    ) -> list[T]:
        """Run ``jobs``; return results in order, or raise the first error that stuck.

        On failure or Ctrl-C the others are told to stop (``cancelled`` is set) and are waited
        for, so no worker is left writing while the caller cleans up.
        """
        cancel = cancelled or threading.Event()
        futures: list[Future[T]] = []
        for job in jobs:
            futures.append(self._submit(job, progress, cancel))
        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.25, return_when=FIRST_EXCEPTION)
                for f in done:
                    if f.exception() is not None:
                        cancel.set()
                        wait(pending)
                        raise f.exception()  # type: ignore[misc]
        except KeyboardInterrupt:
            cancel.set()
            wait(futures)
            raise Cancelled("push interrupted; open uploads were cancelled") from None
        finally:
            self._release([job.key for job in jobs])
        return [f.result() for f in futures]

    def _submit(
        self, job: Job[T], progress: ProgressCallback, cancel: threading.Event
    ) -> Future[T]:
        with self._lock:
            flight = self._inflight.get(job.key)
            if flight is not None:
                flight.waiters += 1
                return flight.future  # type: ignore[return-value]
            queued = self._active >= self.max_concurrent
            self._active += 1
            future = self._pool.submit(self._attempts, job, progress, cancel)
            self._inflight[job.key] = _Flight(future)  # type: ignore[arg-type]
        if queued:
            progress(ProgressEvent(job.id, WAITING, WAITING))
        return future

    def _release(self, keys: list[str]) -> None:
        with self._lock:
            for key in keys:
                flight = self._inflight.get(key)
                if flight is None:
                    continue
                flight.waiters -= 1
                if flight.waiters <= 0:
                    del self._inflight[key]

    def _attempts(self, job: Job[T], progress: ProgressCallback, cancel: threading.Event) -> T:
        try:
            waited = 0.0
            for attempt in range(1, self.policy.attempts + 1):
                if cancel.is_set():
                    raise Cancelled("push cancelled")
                try:
                    return job.run(attempt, cancel)
                except BaseException as exc:
                    if attempt == self.policy.attempts or not is_retryable(exc):
                        raise
                    delay = self.policy.delay(attempt, exc)
                    if waited + delay > self.policy.max_total_wait:
                        raise
                    waited += delay
                    self._countdown(job.id, delay, progress, cancel)
            raise AssertionError("unreachable")  # pragma: no cover
        finally:
            with self._lock:
                self._active -= 1

    def _countdown(
        self, job_id: str, delay: float, progress: ProgressCallback, cancel: threading.Event
    ) -> None:
        """Wait ``delay`` seconds, announcing each remaining second like docker does."""
        remaining = delay
        while remaining > 0:
            if cancel.is_set():
                raise Cancelled("push cancelled")
            seconds = math.ceil(remaining)
            word = "second" if seconds == 1 else "seconds"
            progress(ProgressEvent(job_id, f"{RETRYING} {seconds} {word}", RETRYING))
            step = min(1.0, remaining)
            self._sleep(step)
            remaining -= step
