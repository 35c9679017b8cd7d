"""The job engine: explanations computed on Dask workers, stored by the process that asked.

    engine = Engine(cache=ExplanationCache())        # an embedded LocalCluster, started at the first job
    job = engine.submit(request, image)              # identical requests in flight share one job
    job.status()                                     # queued (place in the queue) / running (progress) / done
    explanation = job.result()                       # stored in the cache by this process, the one writer

``address`` (or $EXPLAINERS_SCHEDULER, e.g. ``tcp://10.0.0.5:8786``) uses an existing cluster instead of the
embedded one, so the same code runs on many machines: the workers load models by name from their own registry
and need no shared disk. The embedded cluster has worker processes with one Dask thread each (torch gets the
cores ÷ workers), as many as the cores and memory allow, each memory-limited by its nanny.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import subprocess
import sys
import threading
import weakref
from pathlib import Path
from typing import Any

from explainers.cache import LOCAL, SHARED
from explainers.explanation import Explanation
from explainers.images import InputImage
from explainers.request import ExplanationRequest
from jobs import worker
from jobs.job import Job, JobFailed, JobStatus, State, failure_reason  # noqa: F401 - JobStatus, State re-exported
from jobs.worker import LOOPBACK_HTTP, THREADS_ENV

ROOT = Path(__file__).resolve().parents[1]

log = logging.getLogger("jobs")
SCHEDULER_ENV = "EXPLAINERS_SCHEDULER"
WORKERS_ENV = "EXPLAINERS_WORKERS"
# "0": the embedded cluster runs its workers as threads of this process (quick to start; used by tests).
PROCESSES_ENV = "EXPLAINERS_WORKER_PROCESSES"
# Memory a worker is given at least; fewer workers start when the machine has less per core.
WORKER_MEMORY = 2 * 1024**3
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


def default_workers() -> int:
    """Worker processes for the embedded cluster: one per core, fewer where memory is short."""
    import psutil

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    memory = psutil.virtual_memory().total
    return max(1, min(cores, memory // WORKER_MEMORY))


class Engine:
    """Submits requests to a Dask cluster (embedded or at ``address``) and stores what comes back in ``cache``."""

    def __init__(
        self,
        cache: Any | None = None,
        address: str | None = None,
        workers: int | None = None,
        processes: bool | None = None,
        memory_limit: str | int = "auto",
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
        ENGINES.add(self)

    # -- the cluster --------------------------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The Dask client, connecting (or starting the embedded cluster) at the first use."""
        with self._lock:
            if self._client is None:
                self._client = self._connect()
                self._client.subscribe_topic(worker.PROGRESS_TOPIC, self._on_event)
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
        threads = int(os.environ.get(THREADS_ENV) or 0) or max(1, (os.cpu_count() or 1) // self.workers)
        process = self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jobs.cluster",
                "--workers",
                str(self.workers),
                "--threads",
                str(threads),
                "--memory-limit",
                str(self.memory_limit),
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert process.stdout is not None  # a pipe: stdout=PIPE above
        line = process.stdout.readline()  # the address, once the workers are up
        if not line:
            process.wait(10)
            raise JobFailed(
                f"The embedded cluster did not start (exit code {process.returncode}); its log "
                "is in the server's output."
            )
        started = json.loads(line)
        self.workers = started["workers"]
        log.info(
            "jobs: started an embedded cluster of %d worker%s at %s",
            self.workers,
            "s" * (self.workers > 1),
            started["address"],
        )
        return Client(started["address"], timeout="20s")

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
    ) -> Job:
        """The job computing ``request`` on ``image``: a new one, or the one already in flight for the same
        request. ``owner``: whose cache entry it becomes (a bundled sample's is shared with everyone).
        ``score``: the worker also scores its faithfulness per class, stored beside it (for Compare)."""
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
                )
                self._jobs[request.key] = self._by_dask_key[job.dask_key] = job
                job.future = self.client.submit(
                    worker.explain_job, request, image, score, key=job.dask_key, pure=False, retries=1
                )
                job.future.add_done_callback(lambda future, job=job: self._on_done(job, future))
                self._prune()
            if watcher is not None:
                job.watchers.add(watcher)
            return job

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
        """Its place among the jobs that wait for a worker (1: next), or None when a worker is free for it."""
        waiting = [other for other in self.pending() if other.started is None]
        running = sum(1 for other in self.pending() if other.started is not None)
        if job not in waiting:
            return None
        ahead = waiting.index(job)
        free = max(0, self.threads() - running)
        return None if ahead < free else ahead - free + 1

    def cancel(self, job: Job, watcher: str | None = None) -> None:
        with self._lock:
            if watcher is not None:
                job.watchers.discard(watcher)
                if job.watchers:
                    return  # another session still waits for it
            if job.done:
                return
            job.cancelled = True
        self.client.cancel([job.future])

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
            return
        try:
            explanation, scores = future.result(), {}
            if isinstance(explanation, tuple):  # scored on the worker
                explanation, scores = explanation
        except BaseException as error:  # noqa: BLE001 - any failure is the job's outcome, told in a sentence
            log.warning("jobs: %s failed: %s: %s", job.request.method, type(error).__name__, error)
            job._finish(None, failure_reason(error))
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

    def _prune(self) -> None:
        finished = sorted((job for job in self._jobs.values() if job.done), key=lambda job: job.order)
        for job in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            self._jobs.pop(job.request.key, None)
            self._by_dask_key.pop(job.dask_key, None)
