"""Streamlit glue of the user-study pages: which studies exist, the answer store, and the question widgets.

The participant page (``app_pages/study.py``) is opened by a link ``?study=<id>`` (see app.py) and never shows
the researcher's controls; the results page (``app_pages/study_results.py``) is password-locked.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import streamlit as st

from studies import PlannedTrial, Question, Study, StudyError, StudyStore, find_studies, load_study

STUDY_PARAM = "study"  # ?study=<id> opens the participant page of that study
PID_PARAM = "pid"  # &pid=<participant id> resumes it


# What a study id (studies.loading) and a participant id (studies.store, after normalise_id) can look like: only
# these are ever echoed back from a link; letters, digits, - and _ carry no Markdown but _ (escaped below).
_STUDY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_PARTICIPANT_ID = re.compile(r"[0-9A-Z]{8}")


def echoed(text: Any, kind: str = "study") -> str | None:
    """``text`` from the URL (``kind``: "study" or "participant"), safe to put in Markdown, or None when it is
    not shaped like such an id: a link's text must never become a live link or an image fetched from elsewhere
    (st.info, st.warning and st.markdown render Markdown)."""
    pattern = _STUDY_ID if kind == "study" else _PARTICIPANT_ID
    if not isinstance(text, str) or not pattern.fullmatch(text):
        return None
    return text.replace("_", "\\_")


def participant_link_requested() -> bool:
    """Whether this visit is a participant's (the link carries ?study=...)."""
    return bool(st.query_params.get(STUDY_PARAM))


@st.cache_resource(show_spinner=False, max_entries=32)
def _load(path: str, modified: float) -> Study:
    # verify=False: the registries are checked by `study check`/`precompute`; a study whose facts are in the
    # cache was verified then, and its digest changes with any edit (so it would read as not precomputed).
    return load_study(path, verify=False)


def read_study(path: Path) -> Study:
    """The study in a file, reloaded when the file changes; raises StudyError."""
    return _load(str(path), path.stat().st_mtime)


def study_files() -> dict[str, Path]:
    """Study id → file, for every readable study in the studies folder (``storage.folder("studies")``)."""
    found: dict[str, Path] = {}
    for path in find_studies():
        try:
            found.setdefault(read_study(path).id, path)
        except StudyError:
            continue
    return found


def find_study(study_id: str) -> Study | None:
    path = study_files().get(study_id)
    return None if path is None else read_study(path)


def get_store() -> StudyStore:
    """The answer store (``storage.folder("answers")/studies.sqlite3``); opened per call (one short connection)."""
    return StudyStore()


def participant_url(study: Study) -> str:
    """The link to share with participants, on this server's address when it is known."""
    base = ""
    try:
        url = st.context.url or ""
    except Exception:  # noqa: BLE001 - no browser context (AppTest)
        url = ""
    if url:
        base = url.split("?")[0].rstrip("/")
        for suffix in ("/study_results",):
            base = base.removesuffix(suffix)
    return f"{base or 'http://localhost:8501'}/?{STUDY_PARAM}={study.id}"


def answer_key(planned: PlannedTrial, question: Question) -> str:
    """The session-state key of a question's widget (one per trial, so each trial starts blank)."""
    return f"study_q_{planned.position}_{question.id}"


def question_widget(question: Question, planned: PlannedTrial) -> Any:
    """One question of a trial as a widget with no preset answer; returns what the participant chose."""
    key = answer_key(planned, question)
    label = question.prompt + ("" if question.required or question.kind == "text" else " (optional)")
    if question.kind == "forward_simulation":
        return st.radio(label, planned.options, index=None, key=key)
    if question.kind == "choice":
        return st.radio(label, question.options, index=None, key=key)
    if question.kind == "likert":
        low, high = question.labels
        value = st.radio(label, list(range(1, question.points + 1)), index=None, horizontal=True, key=key)
        if low or high:
            st.caption(f"1 = {low} · {question.points} = {high}")
        return value
    if question.kind == "percent":
        return st.number_input(label, 0.0, 100.0, value=None, step=5.0, key=key)
    return st.text_area(label, key=key, max_chars=5000)
