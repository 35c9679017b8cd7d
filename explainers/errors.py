"""Error bars of sampled explanations: standard errors from an estimator's own sampling, and what a reader is
told about them (a value whose 90 % interval holds zero has an uncertain sign).

- Kernel SHAP's regression: the sandwich variance of its sampled coalitions (each complementary pair is one
  draw, exchangeable within its stratum of sizes; enumerated coalitions are not random and add none).
- Permutation SHAP: each antithetic permutation is an independent estimate of every value, so the standard
  error is their standard deviation over √(permutations).
- GradientSHAP: the same for its samples, summed over the regions of :func:`block_regions`.
- Owen values: the change from half the budget to the whole (shap's refinement of the first half is a prefix
  of the whole's), an estimate of what the refinement has yet to change.

``tests/test_errors.py`` checks that nominal 90 % intervals cover 85–95 % of the exact values of stored games.
"""

from __future__ import annotations

import numpy as np

# A two-sided 90 % normal interval is the value ± Z90 standard errors.
Z90 = 1.6448536269514722
# Pixel methods' error bars are per block of a grid of about ERROR_CELLS × ERROR_CELLS (the hover blocks).
ERROR_CELLS = 16


def block_regions(shape: tuple[int, int], cells: int = ERROR_CELLS) -> np.ndarray:
    """H × W labels of square blocks (side ⌈max(H, W) / cells⌉; the last row and column may be narrower),
    numbered row by row."""
    height, width = shape
    block = max(1, -(-max(height, width) // cells))
    columns = -(-width // block)
    rows = np.arange(height)[:, None] // block
    return (rows * columns + np.arange(width)[None, :] // block).astype(np.int32)


def relative_error(errors: np.ndarray, values: np.ndarray) -> float | None:
    """max over rows of ‖errors‖ / ‖values‖ (None when no row has a known error)."""
    # one error row per value row (both are classes × segments), so the rows must pair up exactly
    ratios = [
        float(np.linalg.norm(e)) / max(float(np.linalg.norm(v)), 1e-300)
        for e, v in zip(np.asarray(errors, np.float64), np.asarray(values, np.float64), strict=True)
        if np.all(np.isfinite(e))
    ]
    return max(ratios) if ratios else None


def uncertain_sign(values: np.ndarray, errors: np.ndarray) -> np.ndarray:
    """Where the 90 % interval value ± Z90·error holds zero strictly inside (a known, non-zero error only)."""
    errors = np.asarray(errors, dtype=np.float64)
    return np.isfinite(errors) & (np.abs(np.asarray(values, dtype=np.float64)) < Z90 * errors)


def mean_and_error(total: np.ndarray, squares: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The mean of ``count`` independent estimates from their sum and sum of squares, and its standard error
    (NaN from a single estimate), widened by Student's t for ``count`` − 1 degrees of freedom so that ± Z90
    standard errors stays a 90 % interval with few estimates (four permutations: × 1.43)."""
    from scipy.stats import t as student

    mean = total / count
    if count < 2:
        return mean, np.full_like(mean, np.nan)
    variance = np.maximum(squares - count * mean**2, 0.0) / (count - 1)
    widen = float(student.ppf(0.95, count - 1)) / Z90
    return mean, np.sqrt(variance / count) * widen


def regression_errors(
    coalitions: np.ndarray,
    weights: np.ndarray,
    outputs: np.ndarray,
    values: np.ndarray,
    units: np.ndarray,
    strata: np.ndarray,
) -> np.ndarray:
    """S × C standard errors of the efficiency-constrained weighted least squares ``values`` (S × C) fitted to
    ``outputs`` (Z × C) by Kernel SHAP, from the sampling of its coalitions: the sandwich (linearised)
    variance, Σ over the draws of (Q·ψ_u − mean of its stratum)², with ψ_u = Σ_{r∈u} w_r·z_r·(y_r − z_r·φ) a
    draw's term of the normal equations and Q = G⁻¹ − G⁻¹11ᵀG⁻¹ / 1ᵀG⁻¹1 the constrained inverse of the Gram
    matrix G. ``units``: each row's draw, a complementary pair (two rows); −1 for a row that was not drawn
    (an enumerated size), which adds no variance. ``strata``: each row's stratum of sizes, within which the
    draws are exchangeable. One pass of matrix products for every class at once."""
    design = coalitions.astype(np.float64)
    players, classes = design.shape[1], outputs.shape[1]
    drawn = np.flatnonzero(units >= 0)
    if len(drawn) == 0:
        return np.zeros((players, classes))
    inverse = np.linalg.pinv(design.T @ (design * weights[:, None]))
    ones_inverse = inverse @ np.ones(players)
    projector = inverse - np.outer(ones_inverse, ones_inverse) / ones_inverse.sum()
    order = drawn[np.argsort(units[drawn], kind="stable")]
    first, second = order[0::2], order[1::2]  # the two rows of each draw, side by side
    if len(first) != len(second) or np.any(units[first] != units[second]):
        raise ValueError("every draw of the design must be a pair of rows")
    residuals = (outputs - design @ values) * weights[:, None]  # Z × C: a row's w·(y − z·φ)
    q = design @ projector  # Z × S: Q·z_r (Q is symmetric)
    # (Q·ψ_u)_{ic} = q_first,i · a_first,c + q_second,i · a_second,c; its square summed over the draws:
    variance = np.zeros((players, classes))
    for stratum in np.unique(strata[first]):
        inside = strata[first] == stratum
        count = int(inside.sum())
        if count < 2:
            continue  # a lone draw: no spread to measure (its stratum's mass is tiny)
        f, s = first[inside], second[inside]
        squares = (
            (q[f] ** 2).T @ (residuals[f] ** 2)
            + (q[s] ** 2).T @ (residuals[s] ** 2)
            + 2 * (q[f] * q[s]).T @ (residuals[f] * residuals[s])
        )
        mean = (q[f].T @ residuals[f] + q[s].T @ residuals[s]) / count
        variance += (squares - count * mean**2) * count / (count - 1)
    # The residuals are smaller than the errors by the S parameters fitted to them (HC1's correction).
    rows = len(drawn)
    variance *= rows / (rows - players) if rows > 2 * players else 2.0
    return np.sqrt(np.maximum(variance, 0.0))
