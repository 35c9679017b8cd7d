"""Permutation SHAP over SLIC superpixels: shap's PermutationExplainer algorithm (Štrumbelj & Kononenko,
"Explaining prediction models and individual predictions with feature contributions", 2014; antithetic
permutations as in shap).

On raw pixels one permutation would need 2·H·W·C + 1 evaluations, so the players are superpixels: one
permutation costs 2·S + 1, and the budget must allow at least one.

The surprising detail: this is shap's own loop rewritten for a superpixel game, with the same permutations
from the same seed (``tests/test_speed_paths.py`` checks the values against shap's PermutationExplainer).
shap's version walks its masks through a numba-compiled tabular masker (seconds to compile in every new
process) and sends one permutation at a time to the model; here every permutation's coalitions are built at
once and go to the model in full batches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from explainers.errors import mean_and_error, relative_error
from explainers.methods.base import Solution, SuperpixelMethod
from explainers.methods.registry import register
from explainers.params import TARGET_PARAM, ParameterError
from explainers.progress import tell
from explainers.superpixels import SuperpixelGame

# Coalitions sent to the game at once (a few thousand rows of class probabilities in memory).
ROWS_PER_CALL = 2048


def permutation_coalitions(order: np.ndarray) -> np.ndarray:
    """(2S + 1) × S masks of one antithetic pass: nobody, then each player of ``order`` joins in turn, then
    each leaves again in the same order."""
    players = len(order)
    steps = np.zeros((2 * players + 1, players), dtype=np.int8)
    rows = np.arange(players)
    steps[rows + 1, order] = 1  # joins
    steps[rows + 1 + players, order] = -1  # leaves
    return np.cumsum(steps, axis=0).astype(bool)


def permutation_estimate(
    game: Callable[[np.ndarray], np.ndarray],
    players: int,
    max_evals: int,
    seed: int,
    target: float = 0.0,
    top: int = 0,
    progress: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """S × C values, equal to shap's PermutationExplainer(seed=seed) with ``max_evals`` on this game, and their
    standard errors: each antithetic permutation is one independent estimate of every value (NaN from a single
    permutation). With ``target`` > 0 (budget "auto"), it stops after the first few permutations at which class
    ``top``'s relative standard error ‖errors‖ / ‖values‖ is at most ``target``."""
    permutations = max_evals // (2 * players + 1)
    rng = np.random.RandomState(seed)  # shap seeds numpy's global RandomState with the same seed
    order = np.arange(players)
    orders = []
    for _ in range(permutations):
        rng.shuffle(order)  # in place, each from the previous one, as shap does
        orders.append(order.copy())
    values: np.ndarray | None = None
    squares: np.ndarray | None = None
    group = max(1, ROWS_PER_CALL // (2 * players + 1))
    if target > 0:
        group = max(2, min(group, permutations // 16))  # look at the error often enough to stop near the target
    done = 0
    for start in range(0, permutations, group):
        chunk = orders[start : start + group]
        outputs = game(np.concatenate([permutation_coalitions(o) for o in chunk]))
        outputs = outputs.astype(np.float64).reshape(len(chunk), 2 * players + 1, -1)
        if values is None or squares is None:
            values = np.zeros((players, outputs.shape[-1]))
            squares = np.zeros_like(values)
        for permutation, rows in zip(chunk, outputs, strict=True):
            joining = rows[1 : players + 1] - rows[:players]  # each player joining
            leaving = rows[players : 2 * players] - rows[players + 1 :]  # each player leaving
            values[permutation] += joining  # in shap's order of additions, to its last bit
            values[permutation] += leaving
            squares[permutation] += ((joining + leaving) / 2) ** 2
        done += len(chunk)
        if target > 0 and done >= 2:
            mean, errors = mean_and_error(values / 2, squares, done)
            error = relative_error(errors[:, top][None], mean[:, top][None])
            tell(progress, f"relative error {error:.1%} (target {target:.0%})")
            if error is not None and error <= target:
                break
    assert values is not None and squares is not None  # the caller checked the budget allows one permutation
    return values / (2 * done), mean_and_error(values / 2, squares, done)[1]


@register
class Permutation(SuperpixelMethod):
    name = "permutation"
    title = "Permutation SHAP (shap, superpixels)"
    summary = "Antithetic permutations of SLIC superpixels; one permutation costs 2·S + 1 evaluations."
    paper = (
        "Štrumbelj & Kononenko 2014, Explaining prediction models and individual predictions with feature "
        "contributions (shap's Permutation explainer)"
    )
    own_params = (TARGET_PARAM,)
    default_budget = 500
    min_budget = 5
    max_budget = 20_000
    smoke_budget = 200
    order = 20

    def solve(
        self,
        game: SuperpixelGame,
        budget: int,
        seed: int,
        explained: np.ndarray,
        target_error: float = 0.0,
        **params: Any,
    ) -> Solution:
        needed = 2 * game.players + 1
        if budget < needed:
            raise ParameterError(
                f"One permutation over {game.players} superpixels needs {needed} model "
                f"evaluations; raise the budget to at least {needed} or lower the segment count."
            )
        values, errors = permutation_estimate(
            game, game.players, budget, seed, target_error, int(explained[0]), game.progress
        )
        return Solution(values, errors=errors)
