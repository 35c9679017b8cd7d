"""What runs on a Dask worker: load a model by name (once per worker process), then predict or explain.

A job is plain data: the :class:`~explainers.request.ExplanationRequest` and the image. The worker reports its
progress as Dask events on one topic (``{"key", "done", "total"}``), and stops at its next batch when the job was
cancelled (its task is no longer wanted there). It never writes the cache: the submitting process does.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import numpy as np

from explainers.explanation import Explanation
from explainers.images import InputImage
from explainers.request import ExplanationRequest, run

PROGRESS_TOPIC = "explainers-progress"
# Torch threads per worker process: cores ÷ workers, set by jobs.cluster.
THREADS_ENV = "EXPLAINERS_WORKER_THREADS"
# For the embedded cluster (jobs.cluster, jobs.engine): the scheduler's and workers' small HTTP servers (health,
# metrics; no dashboard) on loopback, a free port each.
LOOPBACK_HTTP = {
    "dashboard_address": "127.0.0.1:0",
    "worker_dashboard_address": "127.0.0.1:0",
    "scheduler_kwargs": {"dashboard": False},
}
# Progress events at most this often per job (each is one small message to the scheduler).
PROGRESS_INTERVAL = 0.25

_CLASSIFIERS: dict[str, Any] = {}
_LOCK = threading.Lock()


class JobCancelled(Exception):
    """The job's task was cancelled while it ran: the worker stops at the next batch."""


def _configure_threads() -> None:
    threads = os.environ.get(THREADS_ENV)
    if threads and threads.isdigit():
        import torch

        if torch.get_num_threads() != int(threads):
            torch.set_num_threads(int(threads))


def classifier_for(name: str, weights_digest: str | None = None) -> Any:
    """The registered model ``name``, loaded once per worker process; its weights must be the submitter's."""
    from models import UnknownModelError, load_classifier
    from models.catalog import register_installed

    with _LOCK:
        if name not in _CLASSIFIERS:
            _configure_threads()
            try:
                _CLASSIFIERS[name] = load_classifier(name)
            except UnknownModelError:  # a user's model added since this worker started
                register_installed()
                _CLASSIFIERS[name] = load_classifier(name)
        classifier = _CLASSIFIERS[name]
    if weights_digest is not None and classifier.weights_digest != weights_digest:
        raise RuntimeError(
            f"this worker has other weights for {name} ({classifier.weights_digest}, the request "
            f"asks for {weights_digest}); install the same weights on every worker"
        )
    return classifier


def loaded_models() -> list[str]:
    """The models this worker process has loaded (for tests and the health of a cluster)."""
    return sorted(_CLASSIFIERS)


def warm(names: list[str]) -> list[str]:
    """Loads ``names`` now (at server start), so the first job does not wait for them, and runs the smallest
    partition explanation once: shap's numba functions compile at their first call in each process (18 s of a
    cold 25 s partition on EfficientNet here). Returns the models loaded."""
    from explainers.methods import get_method
    from explainers.request import explain

    for name in names:
        try:
            classifier = classifier_for(name)
        except Exception:  # noqa: BLE001 - an unavailable model is reported when a job asks for it
            continue
        blank = np.full((*classifier.spec.input_size, 3), 128, dtype=np.uint8)
        try:
            explain(classifier, blank, "partition", top_k=1, max_evals=get_method("partition").min_budget)
        except Exception:  # noqa: BLE001 - warming is best effort; a real job reports its own failure
            continue
    return loaded_models()


def _task_key() -> str | None:
    from distributed import get_worker

    try:
        return str(get_worker().get_current_task())
    except (ValueError, AttributeError):  # not inside a Dask task (called directly, e.g. by a test)
        return None


def _still_wanted(key: str | None) -> bool:
    """False once the scheduler has told this worker to drop the running task (cancelled by its client)."""
    if key is None:
        return True
    from distributed import get_worker

    task = get_worker().state.tasks.get(key)
    return task is not None and task.state not in ("cancelled", "released", "forgotten")


class _Reporter:
    """The progress callback a method calls: throttled events for the submitter, and the cancellation check."""

    def __init__(self, key: str | None):
        self.key, self.last = key, float("-inf")
        self.worker = None
        if key is not None:
            from distributed import get_worker

            self.worker = get_worker()

    def send(self, **message: Any) -> None:
        if self.worker is not None:
            self.worker.log_event(PROGRESS_TOPIC, {"key": self.key, **message})

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last < PROGRESS_INTERVAL and done < total:
            return
        self.last = now
        if not _still_wanted(self.key):
            raise JobCancelled(f"job {self.key} was cancelled")
        self.send(done=int(done), total=int(total))

    def note(self, text: str) -> None:
        self.send(note=str(text))


def explain_job(
    request: ExplanationRequest, image: InputImage, score: bool = False
) -> Explanation | tuple[Explanation, dict[str, dict]]:
    """The worker's side of one explanation: the model by name, then the request's pipeline. With ``score``,
    also the faithfulness scores of every explained class (what the Compare page shows under each panel), as
    ``(explanation, {cache key: scores})``, so that a comparison opens without evaluating the model."""
    from explainers.faithfulness import faithfulness, faithfulness_key

    reporter = _Reporter(_task_key())
    reporter.send(started=time.time(), pid=os.getpid())
    classifier = classifier_for(request.model, request.weights_digest)
    explanation = run(request, image, classifier, reporter)
    if not score:
        return explanation
    shown = request.shown(explanation)  # the scores are keyed by what the pages are given
    scores = {faithfulness_key(shown, int(c)): faithfulness(classifier, shown, int(c)).to_dict() for c in shown.classes}
    return explanation, scores
