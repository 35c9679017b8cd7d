"""Kernel SHAP's coalition designs (explainers.methods.kernel): which coalitions to evaluate and with what
regression weights. The ``stratified`` design (enumerated small and large sizes,
distinct complementary pairs sampled from the others in proportion to the kernel) and the weights of a pool of
such designs (budget "auto"), with each row's draw and stratum for the standard errors of explainers.errors.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
from scipy.special import comb


def _size_mass(players: int) -> np.ndarray:
    """Kernel mass of each coalition size 0..S (0 for the empty and full coalitions), summing to 1."""
    sizes = np.arange(players + 1)
    mass = np.zeros(players + 1)
    inner = sizes[1:-1]
    mass[1:-1] = (players - 1) / (inner * (players - inner))
    return mass / mass.sum()


def _share_mass(players: int, allocation: str) -> np.ndarray:
    """The per-size share of the budget (sizes 0..S): the kernel's mass, or 1 / √(s (S − s)) ("sqrt")."""
    if allocation == "kernel":
        return _size_mass(players)
    sizes = np.arange(1, players)
    share = np.zeros(players + 1)
    share[1:-1] = 1 / np.sqrt(sizes * (players - sizes))
    return share / share.sum()


def _random_coalitions(players: int, size: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` uniformly random coalitions of ``size`` players (rows may repeat)."""
    ranks = rng.random((count, players)).argsort(axis=1).argsort(axis=1)
    return ranks < size


def stratified_design(
    players: int, budget: int, seed: int, with_units: bool = False, allocation: str = "kernel"
) -> tuple[np.ndarray, ...]:
    """Coalitions (Z × S bool, neither empty nor full, all distinct) and their regression weights; with
    ``with_units`` also each row's draw (its complementary pair; −1 for an enumerated row) and stratum, for the
    standard errors of explainers.errors.

    Sizes s and S − s form a stratum. From the smallest, a stratum is enumerated while its share of the
    remaining budget covers it; the remaining budget is split over the other strata in proportion to their
    kernel mass and spent on distinct complementary pairs, each weighted by its stratum's mass ÷ its count.
    ``allocation="sqrt"`` splits the budget in proportion to 1 / √(s (S − s)) per size instead (the sampling of
    Witter et al. 2025's MSR: more middle sizes, where a surrogate of the game is hardest to learn); the
    regression weights stay the kernel's (mass ÷ count), so the regression estimates the same values.
    """
    rng = np.random.default_rng(seed)
    mass = _size_mass(players)
    strata = list(range(1, players // 2 + 1))
    stratum_mass = {s: mass[s] + (mass[players - s] if players - s != s else 0.0) for s in strata}
    share_mass = _share_mass(players, allocation)
    stratum_share = {s: share_mass[s] + (share_mass[players - s] if players - s != s else 0.0) for s in strata}
    stratum_size = {s: int(comb(players, s, exact=True)) * (2 if players - s != s else 1) for s in strata}
    left = max(budget - 2, 0)
    rows: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    units: list[np.ndarray] = []
    stratum_of: list[np.ndarray] = []
    while strata:
        s = strata[0]
        share = left * stratum_share[s] / sum(stratum_share[t] for t in strata)
        if stratum_size[s] > share + 1e-9:
            break
        for size in sorted({s, players - s}):
            members = np.array(list(combinations(range(players), size)))
            block = np.zeros((len(members), players), dtype=bool)
            np.put_along_axis(block, members, True, axis=1)
            rows.append(block)
            weights.append(np.full(len(block), mass[size] / comb(players, size)))
            units.append(np.full(len(block), -1))
            stratum_of.append(np.full(len(block), s))
        left -= stratum_size[s]
        strata.pop(0)
    if strata and left >= 2:
        total = sum(stratum_share[t] for t in strata)
        pairs = {s: int(left * stratum_share[s] / total) // 2 for s in strata}
        # Whole pairs left over go to the strata with the largest remainders.
        remainders = sorted(strata, key=lambda t: pairs[t] - left * stratum_share[t] / total / 2)
        for s in remainders[: max(0, left // 2 - sum(pairs.values()))]:
            pairs[s] += 1
        for s, count in pairs.items():
            count = min(count, stratum_size[s] // 2)
            if count == 0:
                continue
            chosen: dict[bytes, np.ndarray] = {}
            while len(chosen) < count:
                for half in _random_coalitions(players, s, 2 * (count - len(chosen)), rng):
                    # A pair is known by whichever of its two halves packs to the smaller key.
                    key = min(np.packbits(half).tobytes(), np.packbits(~half).tobytes())
                    if key not in chosen and len(chosen) < count:
                        chosen[key] = half
            halves = np.array(list(chosen.values()))
            rows.append(np.concatenate([halves, ~halves]))
            weights.append(np.full(2 * count, stratum_mass[s] / (2 * count)))
            first = sum(len(u) for u in units)
            units.append(first + np.tile(np.arange(count), 2))
            stratum_of.append(np.full(2 * count, s))
    if not rows:
        empty = (np.zeros((0, players), dtype=bool), np.zeros(0))
        return empty + (np.zeros(0, np.int64), np.zeros(0, np.int64)) if with_units else empty
    design = (np.concatenate(rows), np.concatenate(weights))
    return design + (np.concatenate(units), np.concatenate(stratum_of)) if with_units else design


def pooled_design(coalitions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Regression weights, draws and strata (as :func:`stratified_design` gives them) for any set of distinct
    coalitions closed under complement, such as the union of several stratified designs: a stratum held whole
    is enumerated, the others are uniform samples weighted by their stratum's kernel mass ÷ their count."""
    players = coalitions.shape[1]
    mass = _size_mass(players)
    sizes = coalitions.sum(axis=1)
    stratum = np.minimum(sizes, players - sizes)
    weights = np.zeros(len(coalitions))
    units = np.full(len(coalitions), -1)
    keys = [min(np.packbits(row).tobytes(), np.packbits(~row).tobytes()) for row in coalitions]
    pair_of = {key: number for number, key in enumerate(dict.fromkeys(keys))}
    for s in np.unique(stratum):
        rows = stratum == s
        whole = int(comb(players, s, exact=True)) * (2 if players - s != s else 1)
        if rows.sum() >= whole:
            weights[rows] = mass[sizes[rows]] / comb(players, sizes[rows])
        else:
            weights[rows] = (mass[s] + (mass[players - s] if players - s != s else 0.0)) / rows.sum()
            units[rows] = [pair_of[keys[i]] for i in np.flatnonzero(rows)]
    return weights, units, stratum
