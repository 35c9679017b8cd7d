"""Kernel SHAP over SLIC superpixels (Lundberg & Lee, "A Unified Approach to Interpreting Model
Predictions", 2017), through shap's KernelExplainer as in the seed notebook.

shap's default ``l1_reg="auto"`` keeps only a handful of features when the budget is small; these are plain
Kernel SHAP values, so it is switched off. Every class is solved from the same evaluations.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import shap

from explainers.explanation import Explanation
from explainers.base import ProgressCallback
from explainers.superpixels import build_game, superpixel_explanation, superpixel_params

PARAMS = superpixel_params()


def explain_kernel(classifier: Any, image: np.ndarray, *, top_k: int, max_evals: int, seed: int,
                   progress: ProgressCallback | None = None, segments: int = 50, compactness: float = 10.0,
                   sigma: float = 1.0, fill: str = "auto", fill_constant: float = 0.0) -> Explanation:
    started = time.perf_counter()
    game = build_game(classifier, image, segments=segments, compactness=compactness, sigma=sigma, fill=fill,
                      fill_constant=fill_constant, total=max_evals, progress=progress)
    players = game.players
    state = np.random.get_state()  # shap samples coalitions from numpy's global generator
    np.random.seed(seed)
    try:
        explainer = shap.KernelExplainer(game, np.zeros((1, players)))
        # shap adds the empty and full coalitions itself; the budget counts those too.
        raw = explainer.shap_values(np.ones((1, players)), nsamples=max(max_evals - 2, 1), l1_reg=False,
                                    silent=True)
    finally:
        np.random.set_state(state)
    values = np.asarray(raw)
    values = values[0] if values.ndim == 3 else np.stack([v[0] for v in raw], axis=1)  # S × C
    params = {"segments": segments, "compactness": compactness, "sigma": sigma, "fill": fill,
              "fill_constant": fill_constant, "max_evals": max_evals, "estimator": "shap"}
    return superpixel_explanation(classifier, image, game, method="kernel", segment_values_all=values.T,
                                  top_k=top_k, params=params, seed=seed, started=started)
