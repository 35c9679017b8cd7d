"""Runs an explanation for a page with a progress bar, served from the persistent cache when it can be."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import streamlit as st

from explainers.api import explain_cached
from explainers.cache import ExplanationCache
from explainers.explanation import Explanation
from models import Classifier


@st.cache_resource(show_spinner=False)
def get_cache() -> ExplanationCache:
    """One cache for every session of this server (and shared with the command line on disk)."""
    cache = ExplanationCache()
    cache.sweep()
    return cache


class StreamlitProgress:
    """A progress bar counted in model evaluations, with an estimate of the time left."""

    def __init__(self, label: str):
        self.label = label
        self.bar = st.progress(0.0, text=f"{label}: starting…")
        self.started = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        fraction = min(done / total, 1.0) if total else 1.0
        elapsed = time.perf_counter() - self.started
        left = f", about {elapsed / fraction - elapsed:.0f} s left" if 0 < fraction < 1 else ""
        self.bar.progress(fraction, text=f"{self.label}: {done} / {total} model evaluations{left}")

    def clear(self) -> None:
        self.bar.empty()


def explanation_for(classifier: Classifier, image: np.ndarray, method: str, *, top_k: int, max_evals: int,
                    seed: int, params: dict[str, Any], classes: list[int] | None = None,
                    image_label: str = "") -> Explanation:
    """From the cache, or computed now with a progress bar (and then cached).

    Superpixel methods solve every class from one set of evaluations, so changing top-k or the explained
    class re-reads the stored values instead of calling the model.
    """
    progress = StreamlitProgress(f"Explaining with {method}")
    try:
        explanation, _ = explain_cached(get_cache(), classifier, image, method, top_k=top_k, max_evals=max_evals,
                                        seed=seed, progress=progress, params=params, classes=classes,
                                        image_label=image_label)
    finally:
        progress.clear()
    return explanation
