"""Kernel SHAP over SLIC superpixels (Lundberg & Lee, "A Unified Approach to Interpreting Model
Predictions", 2017).

Two estimators, chosen by the ``estimator`` parameter:
- ``shap``: shap's KernelExplainer as in the seed notebook. Its default ``l1_reg="auto"`` keeps only a
  handful of features when the budget is small; these are plain Kernel SHAP values, so it is switched off.
- ``paired``: our own. Coalition sizes are drawn from the Shapley kernel and every coalition comes with its
  complement (antithetic pairs, as in Covert & Lee, "Improving KernelSHAP", 2021); the efficiency-constrained
  least squares is solved once for every class at the same time (one S × S system with C right-hand sides)
  instead of one regression per class. With a budget of 2^S − 2 or more it enumerates every coalition with
  the exact kernel weights, which gives exact Shapley values.
Every class is solved from the same evaluations either way.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import shap
from scipy.special import comb

from explainers.explanation import Explanation
from explainers.base import Param, ProgressCallback
from explainers.superpixels import build_game, superpixel_explanation, superpixel_params

ESTIMATORS = ("shap", "paired")
PARAMS = superpixel_params() + (
    Param("estimator", "choice", "shap", "Kernel SHAP estimator: shap's KernelExplainer, or our paired sampler "
          "that solves every class in one system.", choices=ESTIMATORS),
)


def _kernel_weight(players: int, size: np.ndarray) -> np.ndarray:
    """The Shapley kernel (S − 1) / (C(S, s) · s · (S − s)) for coalition sizes 0 < s < S."""
    return (players - 1) / (comb(players, size) * size * (players - size))


def paired_kernel_shap(game: Any, players: int, budget: int, seed: int) -> np.ndarray:
    """S × C Kernel SHAP values from about ``budget`` evaluations, every class at once."""
    full, empty = game(np.ones((1, players), bool))[0], game(np.zeros((1, players), bool))[0]
    if budget - 2 >= 2 ** players - 2:
        # Enough budget to enumerate every proper coalition: weight each by the exact kernel.
        coalitions = ((np.arange(1, 2 ** players - 1)[:, None] >> np.arange(players)) & 1).astype(bool)
        weights = _kernel_weight(players, coalitions.sum(axis=1))
    else:
        rng = np.random.default_rng(seed)
        sizes = np.arange(1, players)
        size_probability = (1.0 / (sizes * (players - sizes)))
        size_probability /= size_probability.sum()
        halves = max(1, (budget - 2) // 2)
        drawn = rng.choice(sizes, size=halves, p=size_probability)
        scores = rng.random((halves, players))
        # The `size` players with the smallest random scores form a uniformly random coalition of that size.
        ranks = scores.argsort(axis=1).argsort(axis=1)
        half = ranks < drawn[:, None]
        coalitions = np.concatenate([half, ~half])
        weights = np.ones(len(coalitions))  # sampled in proportion to the kernel: equal regression weights
    outputs = game(coalitions) - empty  # Z × C
    design = coalitions.astype(np.float64)
    gram = design.T @ (design * weights[:, None])  # S × S
    moments = design.T @ (outputs * weights[:, None])  # S × C
    total = full - empty  # C
    # Minimise the weighted squared error subject to Σφ = f(full) − f(empty), for all classes together.
    inverse_gram = np.linalg.pinv(gram)
    ones = np.ones(players)
    unconstrained = inverse_gram @ moments
    correction = (ones @ unconstrained - total) / (ones @ inverse_gram @ ones)
    return unconstrained - np.outer(inverse_gram @ ones, correction)


def explain_kernel(classifier: Any, image: np.ndarray, *, top_k: int, max_evals: int, seed: int,
                   progress: ProgressCallback | None = None, segments: int = 50, compactness: float = 10.0,
                   sigma: float = 1.0, fill: str = "auto", fill_constant: float = 0.0,
                   estimator: str = "shap") -> Explanation:
    started = time.perf_counter()
    game = build_game(classifier, image, segments=segments, compactness=compactness, sigma=sigma, fill=fill,
                      fill_constant=fill_constant, total=max_evals, progress=progress)
    players = game.players
    params = {"max_evals": max_evals, "estimator": estimator}
    if estimator == "paired":
        return superpixel_explanation(classifier, image, game, method="kernel",
                                      segment_values_all=paired_kernel_shap(game, players, max_evals, seed).T,
                                      top_k=top_k, params=params, seed=seed, started=started)
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
    return superpixel_explanation(classifier, image, game, method="kernel", segment_values_all=values.T,
                                  top_k=top_k, params=params, seed=seed, started=started)
