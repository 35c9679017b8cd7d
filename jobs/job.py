"""One submitted job, as the pages and the command line see it: its state, its place in the queue, its progress,
who waits for it (each waiter's lease) and its result; fed by the engine (jobs.engine) from Dask's callbacks.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from explainers.explanation import Explanation
from explainers.progress import Progress, ProgressState
from explainers.request import ExplanationRequest

if TYPE_CHECKING:
    from jobs.engine import Engine

State = Literal["queued", "running", "done", "failed", "cancelled"]
# Who waits for a job submitted without a watcher: the command that waits for it (held until it lets go).
HOLDER = "the submitting command"


class JobFailed(RuntimeError):
    """The job did not produce an explanation; the message is one sentence for the user."""


@dataclass(frozen=True)
class JobStatus:
    state: State
    progress: ProgressState | None  # None until the worker reports
    position: int | None  # 1: the next job to start, when it waits for a worker
    error: str | None  # one sentence when it failed

    def describe(self, unit: str = "model evaluations") -> str:
        if self.state == "queued":
            return f"waiting for a worker ({self.position} in the queue)" if self.position else "waiting for a worker"
        if self.state == "running":
            if self.progress is None or not self.progress.total:
                return "starting (loading the model)…"
            return self.progress.describe(unit)
        return {"done": "done", "cancelled": "cancelled"}.get(self.state, f"failed: {self.error}")


def failure_reason(error: BaseException) -> str:
    """One sentence for a failed job."""
    name = type(error).__name__
    if name == "KilledWorker":
        return (
            "the worker computing it stopped (out of memory, or killed) on every retry; try a smaller "
            "budget or fewer top-k classes"
        )
    if name in ("JobCancelled", "CancelledError", "FutureCancelledError"):
        return "it was cancelled"
    message = str(error).strip().rstrip(".") or name
    return message[0].upper() + message[1:] + "."


class Job:
    """One submitted request: its Dask future, the progress its worker reports, and who waits for it."""

    def __init__(
        self,
        engine: Engine,
        request: ExplanationRequest,
        dask_key: str,
        order: int,
        label: str,
        owner: str,
        batch: bool = False,
    ):
        self.engine, self.request, self.dask_key, self.order = engine, request, dask_key, order
        self.label, self.owner = label, owner
        # A batch job (precompute, "Explain all") goes after interactive ones (the pages' Explain and Compare).
        self.batch = batch
        self.submitted = time.time()
        self.started: float | None = None
        self.finished: float | None = None
        self.progress = Progress()
        self.reported = False
        self.future: Any = None
        self.outcome: Explanation | None = None
        self.error: str | None = None
        self.cancelled = False
        # Who waits for it: watcher → when its lease ends (time.monotonic(); inf: held until it lets go). The
        # engine cancels the job once no lease is left.
        self.waiters: dict[str, float] = {}
        self.payload: tuple[Any, bool] | None = None  # (image, score) of a batch job the engine has not sent yet
        self._done = threading.Event()

    # -- what the pages and the command line read --------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def status(self) -> JobStatus:
        if self.done:
            state: State = "cancelled" if self.cancelled else "failed" if self.error is not None else "done"
            return JobStatus(state, self.progress.state if self.reported else None, None, self.error)
        if self.started is None:
            return JobStatus("queued", None, self.engine.position(self), None)
        return JobStatus("running", self.progress.state if self.reported else None, None, None)

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def result(self, timeout: float | None = None) -> Explanation:
        """The explanation (narrowed to the request's classes); JobFailed with the reason otherwise."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"the job for {self.label} is still running")
        if self.outcome is None:
            raise JobFailed(self.error or "it was cancelled.")
        return self.request.shown(self.outcome)

    def cancel(self, watcher: str | None = None) -> None:
        """Stops waiting for it on behalf of ``watcher`` (a session); the worker stops at its next batch once no
        one else waits (None: cancel for everyone)."""
        self.engine.cancel(self, watcher)

    def hold(self, watcher: str, lease: float | None) -> None:
        """``watcher`` waits for it for ``lease`` seconds more (None: until it lets go); the engine's lock is held."""
        until = math.inf if lease is None else time.monotonic() + lease
        self.waiters[watcher] = max(self.waiters.get(watcher, -math.inf), until)

    # -- fed by the engine ------------------------------------------------------------------------------------

    def _report(self, message: dict[str, Any]) -> None:
        if "started" in message and self.started is None:
            self.started = time.time()
            self.progress = Progress()
        if "note" in message and self.progress is not None:
            self.progress.note(str(message["note"]))
        if "done" in message:
            self.reported = True
            self.progress(int(message["done"]), int(message["total"]))

    def _finish(self, outcome: Explanation | None, error: str | None, cancelled: bool = False) -> None:
        self.outcome, self.error, self.cancelled = outcome, error, cancelled
        self.finished = time.time()
        self._done.set()


def batch_state(jobs: Sequence[Job], clock: Any = time.time) -> ProgressState:
    """Many jobs as one progress (a worklist's "explain all"): jobs finished of all, and from the first finished
    one on the rate (jobs a second: finished ÷ seconds from the first submission to the latest finish) and the
    time left at that rate (less the time since the latest finish)."""
    now = clock()
    finished = [job.finished for job in jobs if job.done and job.finished is not None]
    started = min((job.submitted for job in jobs), default=now)
    rate = left = None
    if finished:
        rate = len(finished) / max(max(finished) - started, 1e-3)
        left = max((len(jobs) - len(finished)) / rate - (now - max(finished)), 0.0)
    return ProgressState(len(finished), len(jobs), now - started, rate, left)
