"""The embedded cluster, in a process of its own: ``python -m jobs.cluster --workers N``.

A Dask ``LocalCluster`` on loopback (worker processes, one Dask thread each, memory-limited by their nannies),
or one worker per GPU pinned by ``CUDA_VISIBLE_DEVICES``. It prints one JSON line with the scheduler's address
and runs until its standard input closes, which is when the process that started it ends, however it ends.

Why a process of its own: a nanny starts (and restarts) its worker with multiprocessing's "spawn", which
re-imports the parent's main module; inside Streamlit that is the running page script, so a worker started
from the server would run the app. Here the main module is this file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from jobs.job import JobFailed
from jobs.worker import LOOPBACK_HTTP, THREADS_ENV

ROOT = Path(__file__).resolve().parents[1]
# Memory a worker is given at least; fewer workers start when the machine has less per core.
WORKER_MEMORY = 2 * 1024**3


def default_workers() -> int:
    """Worker processes for the embedded cluster: one per core, fewer where memory is short."""
    import psutil

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    memory = psutil.virtual_memory().total
    return max(1, min(cores, memory // WORKER_MEMORY))


def spawn(workers: int, memory_limit: str | int) -> tuple[subprocess.Popen, str, int]:
    """Starts this module in a process of its own (the engine's side): the process, the scheduler's address and
    the number of workers, once they are up. The cluster ends when the process's input closes."""
    threads = int(os.environ.get(THREADS_ENV) or 0) or max(1, (os.cpu_count() or 1) // workers)
    process = subprocess.Popen(
        [sys.executable, "-m", "jobs.cluster", "--workers", str(workers), "--threads", str(threads)]
        + ["--memory-limit", str(memory_limit)],
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
            f"The embedded cluster did not start (exit code {process.returncode}); its log is in the server's output."
        )
    started = json.loads(line)
    return process, started["address"], started["workers"]


def spawn_environment(threads: int) -> dict[str, str]:
    """Set before a worker process starts: its thread pools, and glibc's trim threshold, which the nanny sets to
    64 KB by default (memory handed back at once: partition ran 2.4× slower here with it)."""
    return {
        "MALLOC_TRIM_THRESHOLD_": str(128 * 2**20),
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "OPENBLAS_NUM_THREADS": str(threads),
        THREADS_ENV: str(threads),
    }


def gpu_count() -> int:
    """GPUs torch sees here, unless $EXPLAINERS_DEVICE=cpu (then every worker is a CPU worker)."""
    if (os.environ.get("EXPLAINERS_DEVICE") or "").strip().lower() == "cpu":
        return 0
    from models.device import gpu_count as count

    return count()


def start(workers: int, threads: int, memory_limit: str) -> tuple[Any, int]:
    """The cluster and its number of workers."""
    import dask
    from distributed import LocalCluster, Nanny, Scheduler, SpecCluster

    with dask.config.set(
        {
            "distributed.worker.daemon": False,
            "distributed.admin.system-monitor.gil.enabled": False,
            "distributed.nanny.pre-spawn-environ": spawn_environment(threads),
        }
    ):
        gpus = gpu_count()
        if gpus:  # one worker per GPU, each seeing only its own (dask-cuda's layout, without its version pins)
            specs = {
                f"gpu-{index}": {
                    "cls": Nanny,
                    "options": {
                        "nthreads": 1,
                        "memory_limit": memory_limit,
                        "host": "127.0.0.1",
                        "dashboard_address": "127.0.0.1:0",
                        "env": {"CUDA_VISIBLE_DEVICES": str(index), "EXPLAINERS_DEVICE": "cuda"},
                    },
                }
                for index in range(gpus)
            }
            scheduler = {
                "cls": Scheduler,
                "options": {"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0", "dashboard": False},
            }
            return SpecCluster(workers=specs, scheduler=scheduler, silence_logs=logging.ERROR), gpus
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            memory_limit=memory_limit,
            host="127.0.0.1",
            silence_logs=logging.ERROR,
            **LOOPBACK_HTTP,
        )
        return cluster, workers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.cluster")
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    parser.add_argument("--memory-limit", default="auto")
    args = parser.parse_args(argv)
    cluster, workers = start(args.workers, args.threads, args.memory_limit)
    print(json.dumps({"address": cluster.scheduler_address, "workers": workers}), flush=True)
    try:
        sys.stdin.read()  # until the parent closes the pipe, or ends
    except KeyboardInterrupt:
        pass
    cluster.close(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
