"""Exact Shapley values over superpixels (Shapley, "A Value for n-Person Games", 1953).

Every coalition of S superpixels is evaluated (2^S model evaluations), so this is the reference the sampling
methods are checked against; offered up to 14 superpixels.
"""

from __future__ import annotations

from math import factorial
from typing import Any

import numpy as np

from explainers.methods.base import Solution, SuperpixelMethod
from explainers.methods.registry import register
from explainers.params import ParameterError
from explainers.superpixels import SuperpixelGame

MAX_PLAYERS = 14


def all_coalitions(players: int) -> np.ndarray:
    """2^S × S booleans; row r is the binary expansion of r (player i is bit i)."""
    return ((np.arange(2**players)[:, None] >> np.arange(players)) & 1).astype(bool)


def shapley_from_table(table: np.ndarray, players: int) -> np.ndarray:
    """S × C exact Shapley values from the 2^S × C table of v over all coalitions (row r ↔ bits of r)."""
    rows = np.arange(2**players)
    sizes = np.array([bin(r).count("1") for r in rows])
    weights = np.array(
        [
            factorial(s) * factorial(players - s - 1) / factorial(players) if s < players else 0.0
            for s in range(players + 1)
        ]
    )
    values = np.zeros((players, table.shape[1]))
    for player in range(players):
        without = rows[(rows >> player) & 1 == 0]
        values[player] = weights[sizes[without]] @ (table[without | (1 << player)] - table[without])
    return values


@register
class Exact(SuperpixelMethod):
    name = "exact"
    title = "Exact Shapley values (superpixels)"
    summary = "Every coalition of at most 14 superpixels evaluated: the reference for the sampling methods."
    paper = "Shapley 1953, A Value for n-Person Games"
    budget_meaning = "model evaluations, at least 2^segments"
    default_budget = 4096
    min_budget = 4
    max_budget = 2**MAX_PLAYERS
    smoke_budget = 4096
    notes = (f"Needs 2^S evaluations for S superpixels, so it is offered up to {MAX_PLAYERS} superpixels.",)
    # The SLIC target may exceed 14: SLIC often makes fewer superpixels than asked; the game size is checked.
    default_segments = 10
    max_segments = 24
    order = 40

    def solve(self, game: SuperpixelGame, budget: int, seed: int, explained: np.ndarray, **params: Any) -> Solution:
        if game.players > MAX_PLAYERS:
            raise ParameterError(
                f"SLIC made {game.players} superpixels; exact Shapley values are offered up to "
                f"{MAX_PLAYERS} (2^{MAX_PLAYERS} evaluations): lower the segment count."
            )
        needed = 2**game.players
        if needed > budget:
            raise ParameterError(
                f"Exact Shapley values over {game.players} superpixels need {needed} model "
                f"evaluations; raise the budget to {needed} or lower the segment count."
            )
        game.total = needed
        return Solution(shapley_from_table(game(all_coalitions(game.players)), game.players))
