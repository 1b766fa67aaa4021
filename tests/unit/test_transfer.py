"""The upload manager: limits, de-duplication, retries and cancellation."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import pytest

from yardarm.errors import (
    AuthenticationError,
    Cancelled,
    DeniedError,
    DigestMismatch,
    RegistryError,
    TooManyRequests,
    TransportError,
    UploadInvalid,
)
from yardarm.progress import RETRYING, WAITING, ProgressEvent
from yardarm.transfer import RetryPolicy, TransferManager, is_retryable


@dataclass
class FakeJob:
    key: str
    id: str = "job"
    failures: list[BaseException] = field(default_factory=list)
    hold: threading.Event | None = None
    calls: int = 0
    running: list[int] = field(default_factory=list)
    counter: list[int] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, attempt: int, cancelled: threading.Event) -> str:
        with self.lock:
            self.calls += 1
        if self.counter is not None:
            with self.lock:
                self.counter[0] += 1
                self.running.append(self.counter[0])
        try:
            if self.hold is not None:
                self.hold.wait(5)
            if self.failures:
                raise self.failures.pop(0)
            return f"{self.key}#{attempt}"
        finally:
            if self.counter is not None:
                with self.lock:
                    self.counter[0] -= 1


def events() -> tuple[list[ProgressEvent], object]:
    out: list[ProgressEvent] = []
    return out, out.append


def test_results_come_back_in_order() -> None:
    with TransferManager(3, sleep=lambda s: None) as tm:
        assert tm.run([FakeJob("a"), FakeJob("b"), FakeJob("c")]) == ["a#1", "b#1", "c#1"]


def test_concurrency_never_exceeds_the_limit_and_extra_jobs_wait() -> None:
    counter = [0]
    shared_lock = threading.Lock()
    jobs = [FakeJob(str(i), counter=counter, lock=shared_lock) for i in range(12)]
    for j in jobs:
        j.run = _slow(j.run)  # type: ignore[method-assign]
    seen, sink = events()
    with TransferManager(3, sleep=lambda s: None) as tm:
        tm.run(jobs, sink)  # type: ignore[arg-type]
    peak = max(max(j.running, default=0) for j in jobs)
    assert 1 <= peak <= 3
    assert sum(1 for e in seen if e.kind == WAITING) == 9


def _slow(fn):  # type: ignore[no-untyped-def]
    def run(attempt: int, cancelled: threading.Event) -> str:
        time.sleep(0.02)
        return fn(attempt, cancelled)  # type: ignore[no-any-return]

    return run


def test_identical_work_runs_once_across_concurrent_callers() -> None:
    hold = threading.Event()
    job = FakeJob("layer", hold=hold)
    twin = FakeJob("layer")
    results: list[list[str]] = []
    with TransferManager(2, sleep=lambda s: None) as tm:
        t = threading.Thread(target=lambda: results.append(tm.run([job])))
        t.start()
        time.sleep(0.05)
        u = threading.Thread(target=lambda: results.append(tm.run([twin])))
        u.start()
        time.sleep(0.05)
        hold.set()
        t.join(5)
        u.join(5)
    assert results == [["layer#1"], ["layer#1"]]
    assert job.calls == 1
    assert twin.calls == 0


def test_temporary_errors_are_retried_with_a_countdown() -> None:
    slept: list[float] = []
    job = FakeJob(
        "a", failures=[TransportError("connection reset"), RegistryError(503, "UNAVAILABLE")]
    )
    seen, sink = events()
    with TransferManager(1, RetryPolicy(first_delay=2.0), sleep=slept.append) as tm:
        assert tm.run([job], sink) == ["a#3"]  # type: ignore[arg-type]
    assert job.calls == 3
    assert sum(slept) == pytest.approx(2.0 + 4.0)
    statuses = [e.status for e in seen if e.kind == RETRYING]
    assert statuses[:2] == ["Retrying in 2 seconds", "Retrying in 1 second"]
    assert "Retrying in 4 seconds" in statuses


def test_retry_after_is_honoured_and_capped() -> None:
    slept: list[float] = []
    job = FakeJob("a", failures=[TooManyRequests(429, "TOOMANYREQUESTS", retry_after=7)])
    with TransferManager(1, RetryPolicy(first_delay=1.0), sleep=slept.append) as tm:
        tm.run([job])
    assert sum(slept) == pytest.approx(7.0)
    huge = FakeJob("b", failures=[TooManyRequests(429, retry_after=10_000)])
    slept.clear()
    with TransferManager(1, RetryPolicy(max_retry_after=5), sleep=slept.append) as tm:
        tm.run([huge])
    assert sum(slept) == pytest.approx(5.0)


@pytest.mark.parametrize(
    "error",
    [
        AuthenticationError(401, "UNAUTHORIZED", "authentication required"),
        DeniedError(403, "DENIED", "requested access to the resource is denied"),
        DigestMismatch("sha256:aa", "sha256:bb"),
        OSError(28, "No space left on device"),
        RegistryError(400, "DIGEST_INVALID"),
    ],
)
def test_errors_that_cannot_get_better_are_not_retried(error: BaseException) -> None:
    job = FakeJob("a", failures=[error])
    with TransferManager(1, sleep=lambda s: None) as tm, pytest.raises(type(error)):
        tm.run([job])
    assert job.calls == 1


def test_gives_up_after_five_attempts() -> None:
    job = FakeJob("a", failures=[TransportError("cut")] * 10)
    with TransferManager(1, sleep=lambda s: None) as tm, pytest.raises(TransportError):
        tm.run([job])
    assert job.calls == 5


def test_a_dead_upload_session_is_retried() -> None:
    assert is_retryable(UploadInvalid(404, "BLOB_UPLOAD_INVALID"))
    assert not is_retryable(Cancelled("x"))
    assert is_retryable(ConnectionResetError())


def test_one_failure_cancels_the_others() -> None:
    seen_cancel = threading.Event()

    @dataclass
    class Watcher:
        key: str = "w"
        id: str = "w"

        def run(self, attempt: int, cancelled: threading.Event) -> str:
            if cancelled.wait(5):
                seen_cancel.set()
                raise Cancelled("stopped")
            return "late"

    bad = FakeJob("bad", failures=[DeniedError(403, "DENIED")])
    with TransferManager(2, sleep=lambda s: None) as tm, pytest.raises(DeniedError):
        tm.run([Watcher(), bad])  # type: ignore[list-item]
    assert seen_cancel.is_set()
