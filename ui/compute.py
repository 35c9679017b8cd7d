"""Runs a request for a page with a progress bar, served from the persistent cache when it can be."""

from __future__ import annotations

from typing import Any

import streamlit as st

from explainers.cache import ExplanationCache
from explainers.explanation import Explanation
from explainers.images import InputImage
from explainers.progress import Progress, ProgressState
from explainers.request import ExplanationRequest, run_cached
from models import Classifier
from ui.access import signed_in_user


@st.cache_resource(show_spinner=False)
def get_cache() -> ExplanationCache:
    """One cache for every session of this server (and shared with the command line on disk)."""
    cache = ExplanationCache()
    cache.sweep()
    return cache


class StreamlitProgress(Progress):
    """A progress bar (explainers.progress.Progress drawn by Streamlit)."""

    def __init__(self, label: str, unit: str = "model evaluations", slot: Any = None):
        self.label, self.unit = label, unit
        self.bar = (slot or st).progress(0.0, text=f"{label}: starting…")
        super().__init__(self._draw)

    def _draw(self, state: ProgressState) -> None:
        self.bar.progress(state.fraction, text=f"{self.label}: {state.describe(self.unit)}")

    def clear(self) -> None:
        self.bar.empty()


def explanation_for(request: ExplanationRequest, image: InputImage, classifier: Classifier) -> Explanation:
    """From the cache, or computed now with a progress bar (and then cached).

    Superpixel methods solve every class from one set of evaluations, so changing top-k or the explained
    class re-reads the stored values instead of calling the model.
    """
    progress = StreamlitProgress(f"Explaining {image.display_name} with {request.spec.title}",
                                 request.spec.budget_meaning)
    try:
        explanation, _ = run_cached(get_cache(), request, image, classifier, progress, owner=signed_in_user())
    finally:
        progress.clear()
    return explanation
