"""Explanations for the pages: from the persistent cache, else a job on the engine whose progress a fragment
draws (evaluations done, rate, time left, the place in the queue, Cancel) until its panels can be drawn.

The script never computes an explanation itself: it submits, draws the progress, and ends; the fragment reruns
every half second on its own and reruns the page when the job is done. Each poll renews this session's lease of
the jobs it shows (jobs.engine): once no session polls a job (the tab closed, the settings changed), the engine
cancels it. "Explain all" submits batch jobs, which go after the visitors' jobs and which a session keeps while
it is connected, on any page.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence

import streamlit as st

from explainers.cache import ExplanationCache
from explainers.explanation import Explanation
from explainers.images import InputImage
from explainers.progress import format_seconds
from explainers.request import ExplanationRequest
from jobs import Engine, Job
from jobs.engine import shared_engine
from jobs.job import batch_state
from ui import keys
from ui.access import signed_in_user

POLL_SECONDS = 0.5


@st.cache_resource(show_spinner=False)
def get_cache() -> ExplanationCache:
    """One cache for every session of this server (and shared with the command line on disk)."""
    cache = ExplanationCache()
    cache.sweep()
    return cache


def get_engine() -> Engine:
    """One job engine per server and cache: the embedded cluster (started at the first job) or
    $EXPLAINERS_SCHEDULER. This process stores every finished job in the cache the pages read (the one writer)."""
    return _engine_for(str(get_cache().folder))


@st.cache_resource(show_spinner=False)
def _engine_for(folder: str) -> Engine:
    engine = shared_engine(folder, lambda: Engine(cache=get_cache()))  # the one ui.serve warmed, if any
    engine.alive = _connected
    return engine


def _served() -> bool:
    """Whether a browser runs this session (its fragments poll on a timer); not under AppTest or bare mode."""
    from streamlit.runtime import Runtime

    # AppTest's runtime is a MagicMock with Runtime's spec, which isinstance() takes for a Runtime; type() does not.
    return Runtime.exists() and issubclass(type(Runtime.instance()), Runtime)


def _connected(session: str) -> bool:
    """Whether ``session``'s browser is still connected (a batch job's lease lasts while it is)."""
    from streamlit.runtime import Runtime

    return _served() and Runtime.instance().is_active_session(session)


def _lease() -> float | None:
    """How long this session's interest in a job lasts after its last poll: the engine's lease in a browser;
    held (None) where nothing polls on a timer (AppTest waits for the jobs and runs the page again)."""
    return get_engine().lease if _served() else None


@st.cache_resource(show_spinner=False)
def warm_engine(models: tuple[str, ...]) -> None:
    """Once per server, at the first visit: starts the cluster and loads ``models`` on its workers in the
    background, so the first explanation does not wait for them."""
    engine = get_engine()

    def warm() -> None:
        try:
            engine.warm(list(models))
        except Exception:  # the first job starts the cluster again and reports what is wrong
            logging.getLogger("jobs").exception("warming the job engine failed")

    threading.Thread(target=warm, name="warm-engine", daemon=True).start()


def session_id() -> str:
    """Who watches a job: this browser session (a job runs on until no session waits for it)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    context = get_script_run_ctx()
    return context.session_id if context is not None else "script"


def _stopped() -> set[str]:
    """The requests this session cancelled, or whose job failed: they wait for a button, not a new job."""
    return st.session_state.setdefault(keys.STOPPED_JOBS, set())


def _compute(request: ExplanationRequest, image: InputImage) -> None:
    """A button's callback: submit now (a new job when the last one failed or was cancelled)."""
    _stopped().discard(request.key)
    submit(request, image)


def _cancel(job: Job) -> None:
    _stopped().add(job.request.key)
    job.cancel(session_id())


def explanation_if_ready(request: ExplanationRequest) -> Explanation | None:
    """The explanation when it is stored, or when this server's job for it has finished (a read-only cache
    keeps results only in the job); None otherwise. Never computes."""
    stored = get_cache().get(request)
    if stored is not None:
        return stored
    job = get_engine().job(request)
    return job.result() if job is not None and job.done and job.outcome is not None else None


def submit(request: ExplanationRequest, image: InputImage, score: bool = False, batch: bool = False) -> Job:
    """``score``: the faithfulness scores too (for Compare and the worklist, which show them). ``batch``: after
    the visitors' jobs ("Explain all")."""
    return get_engine().submit(
        request, image, owner=signed_in_user(), watcher=session_id(), score=score, lease=_lease(), batch=batch
    )


def _touch(jobs: Sequence[Job]) -> None:
    """This session still waits for ``jobs``: their leases renew."""
    if jobs:
        jobs[0].engine.touch(jobs, session_id(), _lease())


def explanation_for(request: ExplanationRequest, image: InputImage, *, automatic: bool = True) -> Explanation | None:
    """The explanation, or None after drawing its job's progress (the fragment reruns the page when it is done).

    ``automatic``: submit a job when there is none; a request this session cancelled, or whose job failed,
    waits for its button instead.
    """
    explanation = explanation_if_ready(request)
    if explanation is not None:
        return explanation
    job = get_engine().job(request)
    stopped = request.key in _stopped()
    if job is not None and job.done and job.error is not None and not job.cancelled:
        st.error(f"Explaining {image.display_name} with {request.spec.title} failed: {job.error}")
        st.button("Try again", on_click=_compute, args=(request, image), key=f"retry_{request.key}")
        return None
    if stopped or (job is None and not automatic):
        label = "Compute again" if stopped else "Compute"
        st.info(f"{request.spec.title} for {image.display_name}: " + ("cancelled." if stopped else "not computed yet."))
        st.button(label, on_click=_compute, args=(request, image), key=f"compute_{request.key}", type="primary")
        return None
    job = submit(request, image)
    release_others("explain", [job])
    watch([job], unit=request.spec.budget_meaning)
    return None


def _submit_all(requests: Sequence[ExplanationRequest], image: InputImage) -> None:
    """A button's callback: every request at once, so the workers compute them side by side (with their
    faithfulness scores: the grid shows them)."""
    for request in requests:
        submit(request, image, score=True)


def compare_explanations(
    requests: Mapping[str, ExplanationRequest], image: InputImage, slot: str = "compare"
) -> dict[str, Explanation]:
    """Method name → explanation, for those ready, in order. For the missing ones: a line saying which, each
    failed job's sentence, one button that submits all those no job computes yet (a method may already be
    computing for the Explain page or another user), and one bar per running job with Cancel (the page reruns as
    each finishes, so its panels appear)."""
    results = {name: explanation_if_ready(request) for name, request in requests.items()}
    missing = [name for name, result in results.items() if result is None]
    engine = get_engine()
    jobs = {name: engine.job(requests[name]) for name in missing}
    active = [job for job in jobs.values() if job is not None and not job.done]
    if not active:
        release_others(slot, [])  # settings changed: the jobs of the previous ones are no longer wanted
    if missing:
        left, right = st.columns([3, 1])
        left.info(
            f"{len(missing)} of {len(requests)} methods are not cached yet: {', '.join(missing)} (budgets "
            f"add up to {sum(requests[name].budget for name in missing)})."
        )
        for name, job in jobs.items():
            if job is not None and job.done and job.error is not None and not job.cancelled:
                st.error(f"{requests[name].spec.title} failed: {job.error}")
        waiting = [requests[name] for name in missing if (job := jobs[name]) is None or job.done]
        if waiting:
            right.button(
                "Compute the missing methods",
                on_click=_submit_all,
                args=(waiting, image),
                key="compare_run",
                type="primary",
            )
        if active:
            release_others(slot, active)
            watch(active)
    return {name: result for name, result in results.items() if result is not None}


def release_others(slot: str, jobs: Sequence[Job]) -> None:
    """This session now waits for ``jobs`` in ``slot`` (a page's results): the jobs it waited for there before,
    for settings or an image no longer shown, are released, and cancelled when no other session waits."""
    mine = st.session_state.setdefault(keys.SLOT_JOBS, {})
    _touch(jobs)
    keep = {job.dask_key for job in jobs}
    for old in mine.get(slot, []):
        if old.dask_key not in keep and not old.done:
            old.cancel(session_id())
    mine[slot] = list(jobs)


@st.fragment(run_every=POLL_SECONDS)
def watch(jobs: Sequence[Job], unit: str = "model evaluations") -> None:
    """Progress of ``jobs`` (one bar each), each labelled with its image and method, and one Cancel; reruns the
    page as soon as one has finished so its panels appear. Each run renews this session's lease of them."""
    if any(job.done for job in jobs):
        st.rerun()
    _touch(jobs)
    for job in jobs:
        status = job.status()
        fraction = status.progress.fraction if status.progress is not None else 0.0
        st.progress(fraction, text=f"Explaining {job.label} with {job.request.spec.title}: {status.describe(unit)}")
    if st.button("Cancel", key="cancel_jobs", help="The workers stop at their next batch; finished results are kept."):
        for job in jobs:
            _cancel(job)
        st.rerun()


@st.fragment(run_every=POLL_SECONDS)
def watch_all(jobs: Sequence[Job], label: str) -> None:
    """One bar for many jobs (a worklist's "explain all"): how many are done, the rate and the time left, which
    are running, one Cancel; reruns the page each time one more has finished, so its table counts it."""
    done = sum(1 for job in jobs if job.done)
    seen = f"_watch_all_{label}"
    if st.session_state.get(seen, done) != done:
        st.session_state[seen] = done
        st.rerun()
    st.session_state[seen] = done
    _touch([job for job in jobs if not job.done])
    st.progress(done / max(len(jobs), 1), text=describe_all(jobs, label))
    if st.button(
        "Cancel all", key=f"cancel_all_{label}", help="The workers stop at their next batch; finished results are kept."
    ):
        for job in jobs:
            if not job.done:
                _cancel(job)
        st.rerun()


def describe_all(jobs: Sequence[Job], label: str) -> str:
    """E.g. "Explaining the worklist: 3 of 12 done, 2.5/min, about 4 min left; now scan_4 (Kernel SHAP)": the
    rate and the time left from the first finished job on."""
    state = batch_state(jobs)
    running = [job for job in jobs if not job.done and job.started is not None]
    now = ", ".join(f"{job.label} ({job.request.spec.title})" for job in running[:3])
    failed = sum(1 for job in jobs if job.done and job.error is not None and not job.cancelled)
    text = f"{label}: {state.done} of {state.total} done" + (f", {failed} failed" if failed else "")
    if state.rate is not None and state.seconds_left is not None and state.done < state.total:
        text += f", {state.rate * 60:.2g}/min, about {format_seconds(state.seconds_left)} left"
    return text + (f"; now {now}" if now else "; waiting for a worker" if state.done < state.total else "")
