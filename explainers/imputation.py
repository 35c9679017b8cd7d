"""Noisy linear imputation (Rong et al., "A Consistent and Efficient Evaluation Strategy for Attribution
Methods", ICML 2022, ROAD): removed pixels are filled with the weighted mean of their eight neighbours, solved
for every removed pixel at once, plus a little Gaussian noise.

A constant or a blur leaves a patch the model never saw, whose shape alone tells it what was removed, so a
deletion curve under a method's own masker rewards the masker as much as the map. Linear imputation continues
the image smoothly into the hole (a linear ramp is filled back exactly), which keeps the removed image close to
the images the model knows; the noise keeps the fill from being a tell of its own. Every method is then scored
under this one removal (explainers.faithfulness.road_faithfulness).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import splu

# Neighbour weights of ROAD's imputer: the four sides count twice as much as the four corners.
_NEIGHBOURS = [
    (-1, 0, 2.0),
    (1, 0, 2.0),
    (0, -1, 2.0),
    (0, 1, 2.0),
    (-1, -1, 1.0),
    (-1, 1, 1.0),
    (1, -1, 1.0),
    (1, 1, 1.0),
]
NOISE = 0.01  # the noise's standard deviation, as a share of the pixel range (ROAD's default on [0, 1] images)


def impute(image: np.ndarray, removed: np.ndarray, seed: int = 0, noise: float = NOISE) -> np.ndarray:
    """``image`` (H × W × C, values in 0–255) with the pixels where ``removed`` (H × W bool) is true replaced by
    the noisy linear imputation of the others. Float32; the image itself where nothing is removed."""
    image = np.asarray(image, dtype=np.float64)
    height, width = removed.shape
    unknown = np.flatnonzero(removed.ravel())
    result = image.reshape(height * width, -1).copy()
    if len(unknown) == 0:
        return result.reshape(image.shape).astype(np.float32)
    if len(unknown) == height * width:  # nothing to continue from: the mean grey, and the noise
        result[:] = 127.5
    else:
        index = np.full(height * width, -1, dtype=np.int64)
        index[unknown] = np.arange(len(unknown))
        rows, cols = np.divmod(unknown, width)
        total = np.zeros(len(unknown))
        entries_i, entries_j, entries_w = [], [], []
        known_sum = np.zeros((len(unknown), result.shape[1]))
        for dr, dc, weight in _NEIGHBOURS:
            r, c = rows + dr, cols + dc
            inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
            neighbour = np.where(inside, r * width + c, 0)
            total += np.where(inside, weight, 0.0)
            other = np.where(inside, index[neighbour], -1)
            to_unknown = inside & (other >= 0)
            entries_i.append(np.flatnonzero(to_unknown))
            entries_j.append(other[to_unknown])
            entries_w.append(np.full(int(to_unknown.sum()), -weight))
            to_known = inside & (other < 0)
            known_sum[to_known] += weight * result[neighbour[to_known]]
        # Each unknown pixel: total·x_i − Σ w·x_j (unknown neighbours) = Σ w·v_k (known neighbours).
        system = sparse.csc_matrix(
            (
                np.concatenate([total, *entries_w]),
                (
                    np.concatenate([np.arange(len(unknown)), *entries_i]),
                    np.concatenate([np.arange(len(unknown)), *entries_j]),
                ),
            ),
            shape=(len(unknown), len(unknown)),
        )
        result[unknown] = splu(system).solve(known_sum)
    if noise > 0:
        result[unknown] += np.random.default_rng(seed).normal(0.0, noise * 255.0, (len(unknown), result.shape[1]))
    return np.clip(result, 0.0, 255.0).reshape(image.shape).astype(np.float32)
