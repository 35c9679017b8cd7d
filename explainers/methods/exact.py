"""Exact Shapley values over superpixels (Shapley, "A Value for n-Person Games", 1953).

Every coalition of S superpixels is evaluated (2^S model evaluations), so this is the reference the sampling
methods are checked against; offered up to 14 superpixels.
"""

from __future__ import annotations

import time
from math import factorial
from typing import Any

import numpy as np

from explainers.explanation import Explanation
from explainers.base import ParameterError, ProgressCallback
from explainers.superpixels import build_game, superpixel_explanation, superpixel_params

MAX_PLAYERS = 14
# The SLIC target may exceed 14: SLIC often makes fewer superpixels than asked; the game size is checked.
PARAMS = superpixel_params(default_segments=10, max_segments=24)


def all_coalitions(players: int) -> np.ndarray:
    """2^S × S booleans; row r is the binary expansion of r (player i is bit i)."""
    return ((np.arange(2 ** players)[:, None] >> np.arange(players)) & 1).astype(bool)


def shapley_from_table(table: np.ndarray, players: int) -> np.ndarray:
    """S × C exact Shapley values from the 2^S × C table of v over all coalitions (row r ↔ bits of r)."""
    rows = np.arange(2 ** players)
    sizes = np.array([bin(r).count("1") for r in rows])
    weights = np.array([factorial(s) * factorial(players - s - 1) / factorial(players) if s < players else 0.0
                        for s in range(players + 1)])
    values = np.zeros((players, table.shape[1]))
    for player in range(players):
        without = rows[(rows >> player) & 1 == 0]
        values[player] = weights[sizes[without]] @ (table[without | (1 << player)] - table[without])
    return values


def explain_exact(classifier: Any, image: np.ndarray, *, top_k: int, max_evals: int, seed: int,
                  progress: ProgressCallback | None = None, segments: int = 10, compactness: float = 10.0,
                  sigma: float = 1.0, fill: str = "auto", fill_constant: float = 0.0) -> Explanation:
    started = time.perf_counter()
    game = build_game(classifier, image, segments=segments, compactness=compactness, sigma=sigma, fill=fill,
                      fill_constant=fill_constant, total=0, progress=progress)
    if game.players > MAX_PLAYERS:
        raise ParameterError(f"SLIC made {game.players} superpixels; exact Shapley values are offered up to "
                             f"{MAX_PLAYERS} (2^{MAX_PLAYERS} evaluations): lower the segment count.")
    needed = 2 ** game.players
    if needed > max_evals:
        raise ParameterError(f"Exact Shapley values over {game.players} superpixels need {needed} model "
                             f"evaluations; raise the budget to {needed} or lower the segment count.")
    game.total = needed
    table = game(all_coalitions(game.players))
    params = {"max_evals": max_evals}
    return superpixel_explanation(classifier, image, game, method="exact",
                                  segment_values_all=shapley_from_table(table, game.players).T, top_k=top_k,
                                  params=params, seed=seed, started=started)
