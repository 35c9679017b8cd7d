"""The job engine on a real Dask LocalCluster with worker processes (loopback only): submit, share, queue,
cancel, and a worker killed in the middle of a job."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from explainers.cache import ExplanationCache
from explainers.images import load_image
from explainers.request import build_request
from jobs import Engine, JobFailed
from jobs.worker import PROGRESS_TOPIC, loaded_models

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def digit():
    return load_image(ROOT / "assets" / "samples" / "digits" / "digit_7.png", sample=True)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    engine = Engine(cache=ExplanationCache(tmp_path_factory.mktemp("jobs-cache")), workers=2, processes=True)
    yield engine
    engine.close()


def _started(engine: Engine, job, timeout: float = 120) -> dict:
    """The worker's "started" event for ``job`` (after which it reports progress)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if job.reported:
            for _, message in engine.client.get_events(PROGRESS_TOPIC):
                if message.get("key") == job.dask_key and "started" in message:
                    return message
        time.sleep(0.1)
    raise AssertionError(f"{job.dask_key} never started: {job.status()}")


def _executing(engine: Engine) -> int:
    return sum(len(keys) for keys in engine.client.processing().values())


def test_a_job_runs_on_a_worker_and_the_submitter_stores_it(engine, digits_model, digit) -> None:
    request = build_request(digits_model, digit, "kernel", budget=300, top_k=2)
    job = engine.submit(request, digit)
    assert engine.submit(request, digit) is job  # identical requests in flight share one job
    explanation = job.result(timeout=180)
    assert job.status().state == "done" and job.status().progress.done == job.status().progress.total
    assert explanation.class_names[0] == "7" and explanation.additivity_error < 1e-4
    assert os.getpid() not in {pid for pid in engine.client.run(os.getpid).values()}  # computed elsewhere
    assert any("digits_cnn" in models for models in engine.client.run(loaded_models).values())
    stored = engine.cache.get(request)  # written by this process, the one writer: the workers have no cache
    assert stored is not None and np.allclose(stored.values, explanation.values)
    assert engine.submit(request, digit).result() is not None  # a finished job is served again, not resubmitted


def test_a_scored_job_stores_its_faithfulness_so_a_comparison_needs_no_model(
    engine, digits_model, digit, monkeypatch
) -> None:
    from explainers.faithfulness import cached_faithfulness, faithfulness
    from models import Classifier

    request = build_request(digits_model, digit, "kernel", budget=120, top_k=2, params={"segments": 12})
    explanation = engine.submit(request, digit, score=True).result(timeout=180)
    expected = {int(c): faithfulness(digits_model, explanation, int(c)) for c in explanation.classes}

    def no_model(*args, **kwargs):
        raise AssertionError("the stored scores were computed again")

    monkeypatch.setattr(Classifier, "predict", no_model)
    for class_id, score in expected.items():  # the Compare page's own look-up finds the worker's scores
        assert cached_faithfulness(engine.cache, digits_model, explanation, class_id) == score


def test_a_second_client_shares_the_task_in_flight(engine, digits_model, digit) -> None:
    request = build_request(digits_model, digit, "partition", budget=1000, top_k=1, seed=11)
    other = Engine(address=engine.client.scheduler.address)
    try:
        first, second = engine.submit(request, digit), other.submit(request, digit)
        assert np.allclose(first.result(180).values, second.result(180).values)
        started = [
            m for _, m in engine.client.get_events(PROGRESS_TOPIC) if m.get("key") == first.dask_key and "started" in m
        ]
        assert len(started) == 1, "the same request was computed twice"
    finally:
        other.close()


def test_jobs_beyond_the_workers_wait_in_the_queue_and_cancel_stops_the_worker(engine, efficientnet, digit) -> None:
    # EfficientNet on one core: about 10 s for these 400 evaluations, long enough to watch the queue.
    jobs = [
        engine.submit(build_request(efficientnet, digit, "partition", budget=400, top_k=1, seed=seed), digit)
        for seed in (21, 22, 23)
    ]
    for job in jobs[:2]:
        _started(engine, job)
    status = jobs[2].status()
    assert status.state == "queued" and status.position == 1, status
    assert "1 in the queue" in status.describe()
    for job in jobs:
        job.cancel()
    for job in jobs:
        assert job.wait(30) and job.status().state == "cancelled"
        with pytest.raises(JobFailed, match="cancelled"):
            job.result()
        assert engine.cache.get(job.request) is None
    deadline = time.monotonic() + 15
    while _executing(engine) and time.monotonic() < deadline:  # the workers stop at their next batch
        time.sleep(0.2)
    assert _executing(engine) == 0
    again = engine.submit(jobs[0].request, digit)  # a cancelled request can be submitted again
    assert again is not jobs[0] and again.dask_key != jobs[0].dask_key
    again.cancel()


def test_a_worker_killed_mid_job_is_retried_or_fails_with_a_reason(engine, digits_model, digit) -> None:
    request = build_request(digits_model, digit, "partition", budget=1500, top_k=1, seed=31)
    job = engine.submit(request, digit)
    victim = _started(engine, job)["pid"]
    os.kill(victim, signal.SIGKILL)
    assert job.wait(240), job.status()
    status = job.status()
    if status.state == "done":
        stored = engine.cache.get(request)
        assert stored is not None and np.allclose(stored.values, job.result().values)
        assert stored.additivity_error < 1e-4
    else:
        assert status.state == "failed" and status.error.endswith("."), status
        assert engine.cache.get(request) is None
    assert victim not in engine.client.run(os.getpid).values()  # the nanny started a fresh worker
