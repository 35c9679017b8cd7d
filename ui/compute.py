"""Runs an explanation for a page with a progress bar, remembering results for the session."""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from typing import Any

import numpy as np
import streamlit as st

from explainers.api import explain, for_classes
from explainers.explanation import Explanation, top_classes
from explainers.images import image_digest
from explainers.methods import get_method
from models import Classifier

_MEMO_KEY = "_explanations"
_MEMO_SIZE = 24


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
                    seed: int, params: dict[str, Any], classes: list[int] | None = None) -> Explanation:
    """The session's earlier result for the same inputs, or a new one computed with a progress bar.

    Superpixel methods solve every class from one set of evaluations, so top-k and the explained class are
    not part of their key: changing them re-reads the stored values instead of calling the model.
    """
    every_class = get_method(method).uses_segments
    key = json.dumps([classifier.name, classifier.weights_digest, image_digest(image), method, max_evals, seed,
                      params] + ([] if every_class else [top_k, classes]), sort_keys=True, default=str)
    memo: OrderedDict[str, Explanation] = st.session_state.setdefault(_MEMO_KEY, OrderedDict())
    if key in memo:
        memo.move_to_end(key)
        result = memo[key]
    else:
        progress = StreamlitProgress(f"Explaining with {method}")
        try:
            result = explain(classifier, image, method, top_k=top_k, max_evals=max_evals, seed=seed,
                             progress=progress, params=params, classes=None if every_class else classes)
        finally:
            progress.clear()
        memo[key] = result
        while len(memo) > _MEMO_SIZE:
            memo.popitem(last=False)
    if every_class:
        wanted = classes if classes is not None else top_classes(result.probs, top_k)
        result = for_classes(result, classifier, wanted)
    return result
