"""The job engine: explanations computed on Dask workers, stored by the process that asked.

    engine = Engine(cache=ExplanationCache())        # an embedded LocalCluster, started at the first job
    job = engine.submit(request, image)              # identical requests in flight share one job
    job.status()                                     # queued (place in the queue) / running (progress) / done
    explanation = job.result()                       # stored in the cache by this process, the one writer

Who waits: each job has waiters, each with a lease. A command (no ``watcher``) holds its job until it has it
or cancels; a page's session holds a lease of ``lease`` seconds that each poll renews (``touch``), and a job
that no waiter holds any more (the tab closed, the settings changed) is cancelled within about a second of its
last lease ending. Batch jobs (``batch=True``: precompute, "Explain all") go after interactive ones: a lower
Dask priority, and the engine sends its batch jobs only as worker slots free, keeping ``reserved`` of them free
(a task already queued on a worker runs before one of higher priority that comes later), so a visitor's job
starts while a batch runs.

``address`` (or $EXPLAINERS_SCHEDULER, e.g. ``tcp://10.0.0.5:8786``) uses an existing cluster instead of the
embedded one, so the same code runs on many machines: the workers load models by name from their own registry
and need no shared disk. The embedded cluster has worker processes with one Dask thread each (torch gets the
cores ÷ workers), as many as the cores and memory allow, each memory-limited by its nanny.
"""

from __future__ import annotations

import itertools
import logging
import os
import subprocess
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from explainers.cache import LOCAL, SHARED
from explainers.explanation import Explanation
from explainers.images import InputImage
from explainers.request import ExplanationRequest
from jobs import cluster, worker
from jobs.cluster import WORKER_MEMORY, default_workers  # noqa: F401 - re-exported
from jobs.job import HOLDER, Job, JobFailed, JobStatus, State, failure_reason  # noqa: F401 - re-exported
from jobs.worker import LOOPBACK_HTTP

log = logging.getLogger("jobs")
SCHEDULER_ENV = "EXPLAINERS_SCHEDULER"
WORKERS_ENV = "EXPLAINERS_WORKERS"
# "0": the embedded cluster runs its workers as threads of this process (quick to start; used by tests).
PROCESSES_ENV = "EXPLAINERS_WORKER_PROCESSES"
# Seconds a page's interest in a job lasts after its last poll (the pages poll every half second).
LEASE_ENV = "EXPLAINERS_JOB_LEASE"
LEASE_SECONDS = 5.0
# Worker slots an engine's batch jobs leave free for interactive ones (default 1; 0: none).
RESERVED_ENV = "EXPLAINERS_INTERACTIVE_SLOTS"
# Dask priorities: higher runs first among the tasks that wait for a worker.
INTERACTIVE, BATCH = 10, 0
# How often the engine ends lapsed leases and sends held batch jobs.
UPKEEP_SECONDS = 0.5
# Finished jobs kept for the pages that still poll them (their results are also in the cache).
KEEP_FINISHED = 256
# Every engine of this process (tests wait for their jobs; nothing else reads it).
ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()
# The engine of each cache folder that something in this process holds (the server's start-up step and its pages).
_SHARED: weakref.WeakValueDictionary[str, Engine] = weakref.WeakValueDictionary()
_SHARED_LOCK = threading.Lock()


def shared_engine(folder: str, make: Any) -> Engine:
    """This process's engine for the cache at ``folder``, made by ``make()`` when no one holds one: the server's
    start-up warm-up and the pages share its cluster and its jobs. Held weakly: it lives while a holder does."""
    with _SHARED_LOCK:
        engine = _SHARED.get(folder)
        if engine is None:
            engine = _SHARED[folder] = make()
        return engine


def batch_engine(**kwargs: Any) -> Engine:
    """An engine for a command that submits a batch: on its own embedded cluster it leaves no worker slot free
    (no one else uses it); on a shared scheduler (an address) it leaves ``reserved`` slots to the pages."""
    shared = bool(kwargs.get("address") or os.environ.get(SCHEDULER_ENV))
    return Engine(**kwargs, reserved=None if shared else 0)


class Engine:
    """Submits requests to a Dask cluster (embedded or at ``address``) and stores what comes back in ``cache``."""

    def __init__(
        self,
        cache: Any | None = None,
        address: str | None = None,
        workers: int | None = None,
        processes: bool | None = None,
        memory_limit: str | int = "auto",
        lease: float | None = None,
        reserved: int | None = None,
    ):
        self.cache = cache
        self.address = address or os.environ.get(SCHEDULER_ENV) or None
        self.workers = workers or int(os.environ.get(WORKERS_ENV) or 0) or default_workers()
        if processes is None:
            processes = os.environ.get(PROCESSES_ENV, "1").strip() not in ("0", "false", "no")
        self.processes, self.memory_limit = processes, memory_limit
        self._client: Any = None
        self._cluster: Any = None  # an in-process cluster (threads)
        self._process: subprocess.Popen | None = None  # the embedded cluster's process (jobs.cluster)
        self._lock = threading.RLock()
        self._jobs: dict[str, Job] = {}  # by request key: the latest job of each request
        self._by_dask_key: dict[str, Job] = {}
        self._order = itertools.count()
        self._attempts = itertools.count(1)
        self._warmed: set[str] = set()
        self.lease = lease or float(os.environ.get(LEASE_ENV) or 0) or LEASE_SECONDS
        self.reserved = reserved if reserved is not None else int(os.environ.get(RESERVED_ENV) or 1)
        # Whether a waiter (a session) is still there, asked when its lease of a batch job ends: a session that
        # started a batch keeps it while it is connected, on any page (ui.compute sets it; None: no one asked).
        self.alive: Callable[[str], bool] | None = None
        self._closed = threading.Event()
        self._slots = 0  # worker slots for this engine's batch jobs, measured by the upkeep
        ENGINES.add(self)

    # -- the cluster --------------------------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The Dask client, connecting (or starting the embedded cluster) at the first use."""
        with self._lock:
            if self._client is None:
                self._closed = threading.Event()  # a fresh upkeep (also after close)
                self._client = self._connect()
                self._client.subscribe_topic(worker.PROGRESS_TOPIC, self._on_event)
                threading.Thread(
                    target=_upkeep, args=(weakref.ref(self), self._closed), name="jobs-upkeep", daemon=True
                ).start()
            return self._client

    def _connect(self) -> Any:
        from distributed import Client, LocalCluster

        if self.address:
            log.info("jobs: using the cluster at %s", self.address)
            return Client(self.address, timeout="20s")
        if not self.processes:  # threads of this process: nothing is spawned
            self._cluster = LocalCluster(
                n_workers=self.workers,
                threads_per_worker=1,
                processes=False,
                silence_logs=logging.ERROR,
                **LOOPBACK_HTTP,
            )
            return Client(self._cluster)
        self._process, address, self.workers = cluster.spawn(self.workers, self.memory_limit)
        log.info("jobs: an embedded cluster of %d worker(s) at %s", self.workers, address)
        return Client(address, timeout="20s")

    @property
    def started(self) -> bool:
        return self._client is not None

    def threads(self) -> int:
        """Jobs that can run at once (the cluster's Dask threads)."""
        return sum(self.client.nthreads().values()) or 1

    def warm(self, models: list[str]) -> list[Any]:
        """Starts the cluster and loads ``models`` on every worker now (at server start), without waiting: one
        task per worker, in its own thread (its event loop stays free). Returns their futures."""
        from distributed import fire_and_forget

        with self._lock:
            models = [name for name in models if name not in self._warmed]
            self._warmed.update(models)
        if not models:
            return []
        futures = [
            self.client.submit(worker.warm, list(models), workers=[address], pure=False, allow_other_workers=False)
            for address in self.client.scheduler_info(n_workers=-1)["workers"]
        ]
        fire_and_forget(futures)
        return futures

    def close(self) -> None:
        self._closed.set()
        for job in [job for job in self.pending() if job.future is None]:  # batch jobs never sent
            self.cancel(job)
        with self._lock:
            if self._client is not None:
                self._client.close()
            if self._cluster is not None:
                self._cluster.close()
            if self._process is not None:
                if self._process.stdin is not None:
                    self._process.stdin.close()  # the cluster process ends when its input closes
                try:
                    self._process.wait(20)
                except subprocess.TimeoutExpired:
                    self._process.kill()
            self._client = self._cluster = self._process = None

    # -- jobs ---------------------------------------------------------------------------------------------------

    def submit(
        self,
        request: ExplanationRequest,
        image: InputImage,
        owner: str | None = None,
        watcher: str | None = None,
        score: bool = False,
        *,
        lease: float | None = None,
        batch: bool = False,
    ) -> Job:
        """The job computing ``request`` on ``image``: a new one, or the one already in flight for the same
        request. ``owner``: whose cache entry it becomes (a bundled sample's is shared with everyone).
        ``score``: the worker also scores its faithfulness per class, stored beside it (for Compare).
        ``watcher`` waits for it for ``lease`` seconds, renewed by :meth:`touch` (None: until it has it or
        cancels; no watcher: the submitting command holds it). ``batch``: it goes after interactive jobs."""
        if image.digest != request.image_digest:
            raise ValueError("this image is not the one the request was built for")
        with self._lock:
            job = self._jobs.get(request.key)
            if job is None or job.cancelled or (job.done and job.outcome is None):  # none, or it failed or stopped
                attempt = "" if job is None else f"-{next(self._attempts)}"
                job = Job(
                    self,
                    request,
                    f"explain-{request.key}{attempt}",
                    next(self._order),
                    image.display_name,
                    SHARED if image.source == "sample" else owner or LOCAL,
                    batch=batch,
                )
                self._jobs[request.key] = self._by_dask_key[job.dask_key] = job
                job.payload = (image, score)
                if batch:  # never queued on a worker, where a visitor's job could not overtake it
                    self._slots = self._slots or self._batch_slots()
                    self._feed()  # sent when a batch slot is free, held here until then
                else:
                    self._send(job)
                self._prune()
            elif job.batch and not batch and job.future is None:  # a page asks now for what a batch holds
                job.batch = False
                self._send(job)
            job.hold(HOLDER if watcher is None else watcher, lease)
            return job

    def touch(self, jobs: Iterable[Job], watcher: str, lease: float | None) -> None:
        """``watcher`` still waits for ``jobs`` (a page's poll): a lease of ``lease`` s more (None: held) of each."""
        with self._lock:
            for job in jobs:
                if not job.done:
                    job.hold(watcher, lease)

    def explain(
        self, request: ExplanationRequest, image: InputImage, owner: str | None = None, timeout: float | None = None
    ) -> Explanation:
        """Submits and waits (the command line, study precompute)."""
        return self.submit(request, image, owner).result(timeout)

    def job(self, request: ExplanationRequest) -> Job | None:
        """The latest job of ``request`` in this engine, if any."""
        with self._lock:
            return self._jobs.get(request.key)

    def pending(self) -> list[Job]:
        with self._lock:
            return sorted((job for job in self._jobs.values() if not job.done), key=lambda job: job.order)

    def position(self, job: Job) -> int | None:
        """Its place among the jobs that wait for a worker (1: next; interactive ones before batch ones), or None
        when a worker is free for it."""
        pending = self.pending()
        waiting = sorted((other for other in pending if other.started is None), key=lambda o: (o.batch, o.order))
        if job not in waiting:
            return None
        ahead = waiting.index(job)
        free = max(0, self.threads() - (len(pending) - len(waiting)))
        return None if ahead < free else ahead - free + 1

    def cancel(self, job: Job, watcher: str | None = None) -> None:
        """``watcher`` no longer waits for ``job``; cancelled once no one does (None: cancelled for everyone)."""
        with self._lock:
            if watcher is not None:
                job.waiters.pop(watcher, None)
                if job.waiters:
                    return  # another session or command still waits for it
            job.waiters.clear()
            if job.done or job.cancelled:
                return
            job.cancelled = True
            future = job.future
        if future is None:  # a batch job never sent
            job.payload = None
            job._finish(None, "it was cancelled.", cancelled=True)
        else:
            self.client.cancel([future])

    # -- sending, leases (the upkeep thread) ------------------------------------------------------------------

    def _send(self, job: Job) -> None:
        """Gives ``job`` to Dask (the engine's lock is held)."""
        assert job.payload is not None
        (image, score), job.payload = job.payload, None
        priority = BATCH if job.batch else INTERACTIVE
        job.future = self.client.submit(
            worker.explain_job, job.request, image, score, key=job.dask_key, pure=False, retries=1, priority=priority
        )
        job.future.add_done_callback(lambda future, job=job: self._on_done(job, future))

    def _batch_slots(self) -> int:
        """How many of this engine's batch jobs may be with Dask at once."""
        return max(1, self.threads() - self.reserved)

    def _feed(self) -> None:
        """Sends held batch jobs, oldest first, while a batch slot is free and no interactive job waits."""
        with self._lock:
            if self._closed.is_set():
                return
            pending = self.pending()
            if any(not job.batch and job.started is None for job in pending):
                return  # a worker that frees goes to a visitor's job first
            held = [job for job in pending if job.future is None and not job.cancelled]
            sent = sum(1 for job in pending if job.batch and job.future is not None)
            for job in held[: max(0, self._slots - sent)]:
                self._send(job)

    def _expire(self) -> None:
        """Ends lapsed leases (a batch job's session keeps its lease while it is connected) and cancels the
        jobs that no one waits for any more."""
        now, unwanted = time.monotonic(), []
        with self._lock:
            for job in self.pending():
                for watcher, until in list(job.waiters.items()):
                    if until >= now:
                        continue
                    if job.batch and self.alive is not None and self.alive(watcher):
                        job.waiters[watcher] = now + self.lease
                    else:
                        del job.waiters[watcher]
                if not job.waiters and not job.cancelled:
                    unwanted.append(job)
        for job in unwanted:
            log.info("jobs: no one waits for %s any more; cancelled", job.dask_key)
            self.cancel(job)

    def _upkeep(self) -> None:  # every UPKEEP_SECONDS
        self._expire()
        if any(job.future is None for job in self.pending()):
            self._slots = self._batch_slots()
            self._feed()

    # -- callbacks (Dask's threads) --------------------------------------------------------------------------

    def _on_event(self, event: tuple[float, dict[str, Any]]) -> None:
        message = event[1]
        job = self._by_dask_key.get(str(message.get("key")))
        if job is not None and not job.done:
            job._report(message)

    def _on_done(self, job: Job, future: Any) -> None:
        """Stores a finished explanation (this process is the cache's one writer), or records why it failed."""
        if future.cancelled() or job.cancelled:
            job._finish(None, "it was cancelled.", cancelled=True)
            self._feed()
            return
        try:
            explanation, scores = future.result(), {}
            if isinstance(explanation, tuple):  # scored on the worker
                explanation, scores = explanation
        except BaseException as error:  # noqa: BLE001 - any failure is the job's outcome, told in a sentence
            log.warning("jobs: %s failed: %s: %s", job.request.method, type(error).__name__, error)
            job._finish(None, failure_reason(error))
            self._feed()
            return
        try:
            if self.cache is not None:
                self.cache.put(job.request, explanation, image_label=job.label, owner=job.owner)
                for key, score in scores.items():
                    self.cache.put_json(key, score)
        except Exception:  # the cache fails soft itself; whatever else, the result is kept
            log.exception("jobs: storing the explanation failed")
        finally:
            job._finish(explanation, None)
            self._feed()

    def _prune(self) -> None:
        finished = sorted((job for job in self._jobs.values() if job.done), key=lambda job: job.order)
        for job in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            self._jobs.pop(job.request.key, None)
            self._by_dask_key.pop(job.dask_key, None)


def _upkeep(ref: weakref.ref[Engine], closed: threading.Event) -> None:
    """The engine's upkeep thread until it closes (held weakly: it ends with the engine)."""
    while not closed.wait(UPKEEP_SECONDS):
        engine = ref()
        if engine is None:
            return
        try:
            engine._upkeep()
        except Exception:  # a cluster going away: the next round tries again
            log.debug("jobs: upkeep failed", exc_info=True)
        del engine
