"""Permutation SHAP over SLIC superpixels: shap's PermutationExplainer (Štrumbelj & Kononenko, "Explaining
prediction models and individual predictions with feature contributions", 2014; antithetic permutations as
in shap).

On raw pixels one permutation would need 2·H·W·C + 1 evaluations, so the players are superpixels: one
permutation costs 2·S + 1, and the budget must allow at least one.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import shap

from explainers.explanation import Explanation
from explainers.base import ParameterError, ProgressCallback
from explainers.superpixels import build_game, superpixel_explanation, superpixel_params

PARAMS = superpixel_params()


def explain_permutation(classifier: Any, image: np.ndarray, *, top_k: int, max_evals: int, seed: int,
                        progress: ProgressCallback | None = None, segments: int = 50, compactness: float = 10.0,
                        sigma: float = 1.0, fill: str = "auto", fill_constant: float = 0.0) -> Explanation:
    started = time.perf_counter()
    game = build_game(classifier, image, segments=segments, compactness=compactness, sigma=sigma, fill=fill,
                      fill_constant=fill_constant, total=max_evals, progress=progress)
    players = game.players
    needed = 2 * players + 1
    if max_evals < needed:
        raise ParameterError(f"One permutation over {players} superpixels needs {needed} model evaluations; "
                             f"raise the budget to at least {needed} or lower the segment count.")
    # A hidden player is 0: the masker's background row is all zeros, the explained row all ones.
    masker = shap.maskers.Independent(np.zeros((1, players)), max_samples=1)
    explainer = shap.PermutationExplainer(game, masker, seed=seed)
    result = explainer(np.ones((1, players)), max_evals=max_evals, silent=True)
    values = np.asarray(result.values[0])  # S × C
    params = {"max_evals": max_evals}
    return superpixel_explanation(classifier, image, game, method="permutation", segment_values_all=values.T,
                                  top_k=top_k, params=params, seed=seed, started=started)
