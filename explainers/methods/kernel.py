"""Kernel SHAP over SLIC superpixels (Lundberg & Lee, "A Unified Approach to Interpreting Model
Predictions", 2017), with four estimators chosen by the ``estimator`` parameter:

- ``adjusted`` (the default): regression-adjusted Kernel SHAP. Coalitions come from the ``stratified`` design
  (explainers.methods._kernel_design). For each explained class a gradient-boosted tree surrogate g of the game
  is fitted on the evaluated coalitions (scikit-learn's HistGradientBoostingRegressor); the Shapley values of g
  are exact (shap's TreeExplainer, interventional, against the all-hidden coalition), and the Shapley values of
  what g misses, v − g, are estimated by the same constrained regression from its residuals (in-sample, their
  error bars widened by what a second surrogate misses on held-out draws). The idea is regression-adjusted Monte Carlo
  (Witter et al., "Regression-adjusted Monte Carlo Estimators for Shapley Values and Probabilistic Values",
  2025); a good surrogate leaves little for the sampled regression to get wrong. Measured against exact values
  in ``bench/kernel_accuracy.py``. Classes that are not explained get the ``stratified`` values.
- ``stratified``: every coalition of the smallest and largest sizes is enumerated while the budget covers a
  whole pair of sizes (as shap does), the other sizes are sampled without repetition, in complementary pairs
  (Covert & Lee, "Improving KernelSHAP", 2021), in proportion to the Shapley kernel; one efficiency-
  constrained weighted least squares solves every class at once.
- ``shap``: shap's KernelExplainer as in the seed notebook, with ``l1_reg=False`` (its default ``"auto"``
  keeps only a handful of features when the budget is small); the reference.
- ``adjusted_sqrt`` (experimental): ``adjusted`` on a design whose sampled sizes take budget in proportion to
  1 / √(s (S − s)) rather than the kernel (the sampling of RegressionMSR; bench/kernel_accuracy.md).
Every estimator is exact once the budget covers every coalition (2^S). Every estimator but ``shap`` gives
standard errors beside its values (explainers.errors), and ``target_error`` > 0 turns the budget into a
maximum: budget "auto" (:func:`kernel_auto`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from explainers.errors import regression_errors, relative_error
from explainers.methods._kernel_design import pooled_design, stratified_design
from explainers.methods.base import Solution, SuperpixelMethod
from explainers.methods.registry import register
from explainers.params import TARGET_PARAM, Param, ParameterError
from explainers.progress import tell
from explainers.superpixels import SuperpixelGame

ESTIMATORS = ("adjusted", "stratified", "shap", "adjusted_sqrt")
ADJUSTED = ("adjusted", "adjusted_sqrt")  # the estimators with a tree surrogate
# The share of the sampled draws (1 in CALIBRATION_SHARE) held out to measure how much the surrogate misses on
# coalitions it did not see (its standard errors; surrogate_adjusted).
CALIBRATION_SHARE = 5
# The tree surrogate: 60 boosting rounds of 15 leaves at rate 0.25 (against scikit-learn's defaults of
# 150, 31 and 0.1: a third of the fitting time at 50 superpixels and 1000 coalitions; bench/kernel_accuracy).
SURROGATE_ITERATIONS = 60
SURROGATE_LEAVES = 15
SURROGATE_RATE = 0.25
SURROGATE_MIN_LEAF = 5
# The surrogate is fitted only with at least this many sampled draws (complementary pairs) and coalitions per
# player; below that, the stratified values (measured: with 126 coalitions of 50 digit
# superpixels the surrogate made the error worse, bench/kernel_accuracy.md).
MIN_DRAWS = 20
MIN_PER_PLAYER = 4


def kernel_auto(
    game: Any,
    players: int,
    budget: int,
    seed: int,
    estimator: str,
    adjust: np.ndarray,
    target: float,
    progress: Any = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Budget "auto": stratified designs of doubling size are pooled (:func:`pooled_design`) until the top
    class's relative standard error ‖errors‖ / ‖values‖ is at most ``target``, or ``budget`` evaluations are
    spent. The classes in ``adjust`` then get the ``adjusted`` estimator's surrogate on the pooled coalitions."""
    top = int(adjust[0]) if len(adjust) else 0
    full, empty = game(np.ones((1, players), bool))[0], game(np.zeros((1, players), bool))[0]
    pool: dict[bytes, np.ndarray] = {}
    step, rounds, error = min(budget, max(8 * players, 64)), 0, float("inf")
    while True:
        for row in stratified_design(players, step, seed + 7919 * rounds)[0]:
            pool.setdefault(np.packbits(row).tobytes(), row)
        rounds += 1
        coalitions = np.array(list(pool.values()))
        outputs = game(coalitions)
        weights, units, strata = pooled_design(coalitions)
        values = constrained_regression(coalitions, weights, outputs - empty, full - empty)
        errors = regression_errors(coalitions, weights, outputs - empty, values, units, strata)
        known = relative_error(errors[:, top][None], values[:, top][None])
        error = float("inf") if known is None else known
        tell(progress, f"relative error {error:.1%} (target {target:.0%})")
        left = budget - game.evaluations
        if error <= target or left < 4 or len(pool) >= 2**players - 2:
            break
        step = min(2 * len(pool), left + 2)
    if estimator == "adjusted":
        adjust_classes(coalitions, weights, outputs, empty, full, seed, adjust, values, errors, units, strata)
    return values, errors, {"auto_rounds": rounds, "auto_error": error, "auto_reached": error <= target}


def constrained_regression(
    coalitions: np.ndarray, weights: np.ndarray, outputs: np.ndarray, total: np.ndarray
) -> np.ndarray:
    """S × C: the weighted least-squares additive fit of ``outputs`` (Z × C, relative to the empty
    coalition) subject to Σφ = ``total`` (C), for every class at once (one S × S system)."""
    design = coalitions.astype(np.float64)
    gram = design.T @ (design * weights[:, None])
    moments = design.T @ (outputs * weights[:, None])
    inverse_gram = np.linalg.pinv(gram)
    ones = np.ones(design.shape[1])
    unconstrained = inverse_gram @ moments
    correction = (ones @ unconstrained - total) / (ones @ inverse_gram @ ones)
    return unconstrained - np.outer(inverse_gram @ ones, correction)


def _tree_surrogate(coalitions: np.ndarray, outputs: np.ndarray, weights: np.ndarray, seed: int):
    from sklearn.ensemble import HistGradientBoostingRegressor  # scikit-learn takes a second to import

    return HistGradientBoostingRegressor(
        max_iter=SURROGATE_ITERATIONS,
        max_leaf_nodes=SURROGATE_LEAVES,
        learning_rate=SURROGATE_RATE,
        min_samples_leaf=SURROGATE_MIN_LEAF,
        random_state=seed,
    ).fit(coalitions.astype(np.float32), outputs, sample_weight=weights / weights.mean())


def _tree_values(model: Any, players: int) -> np.ndarray:
    """The exact Shapley values of the game z ↦ g(z) that a tree surrogate g defines: interventional TreeSHAP
    against the all-hidden coalition."""
    import shap  # imported on use: it takes a second and a half

    tree = shap.TreeExplainer(model, data=np.zeros((1, players), np.float32), feature_perturbation="interventional")
    explained = tree.shap_values(np.ones((1, players), np.float32), check_additivity=False)
    return np.asarray(explained).reshape(-1)[:players]


def surrogate_adjusted(
    coalitions: np.ndarray,
    weights: np.ndarray,
    outputs: np.ndarray,
    empty: float,
    full: float,
    seed: int,
    units: np.ndarray,
    strata: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """S Shapley values of one class and their standard errors: the exact values of a tree surrogate g fitted
    on every evaluated coalition, plus the constrained regression of what it misses, v − g (see the module's
    docstring). ``units`` and ``strata`` as :func:`stratified_design` gives them.

    The residuals are the fit's own (in-sample): measured on the stored exact games, this is both more accurate
    and five times cheaper than residuals cross-fitted over five folds (bench/kernel_accuracy.md), but in-sample
    residuals are smaller than the surrogate's real misses, so the regression's standard errors would be too
    narrow (45 % of exact values inside the nominal 90 % intervals). They are widened by the ratio of a held-out
    fifth of the sampled draws' residuals, from a second surrogate that did not see them, to their in-sample ones
    (90 % inside)."""
    players = coalitions.shape[1]
    ends = np.stack([np.zeros(players, bool), np.ones(players, bool)])
    end_values = np.array([empty, full])
    end_weights = np.full(2, weights.max())
    model = _tree_surrogate(
        np.concatenate([coalitions, ends]),
        np.concatenate([outputs, end_values]),
        np.concatenate([weights, end_weights]),
        seed,
    )
    fit = model.predict(np.concatenate([coalitions, ends]).astype(np.float32))
    residuals = outputs - fit[:-2]
    end_residual = end_values - fit[-2:]
    left = (residuals - end_residual[0])[:, None]
    left_total = np.array([end_residual[1] - end_residual[0]])
    correction = constrained_regression(coalitions, weights, left, left_total)
    errors = regression_errors(coalitions, weights, left, correction, units, strata)[:, 0]
    draws = np.unique(units[units >= 0])
    held = np.isin(units, np.random.default_rng(seed).permutation(draws)[: len(draws) // CALIBRATION_SHARE])
    if held.any():  # a complementary pair is held out whole
        other = _tree_surrogate(
            np.concatenate([coalitions[~held], ends]),
            np.concatenate([outputs[~held], end_values]),
            np.concatenate([weights[~held], end_weights]),
            seed + 1,
        )
        missed = outputs[held] - other.predict(coalitions[held].astype(np.float32))
        seen = np.average(residuals[held] ** 2, weights=weights[held])
        unseen = np.average(missed**2, weights=weights[held])
        errors *= np.sqrt(max(unseen / seen, 1.0)) if seen > 0 else 1.0
    return _tree_values(model, players) + correction[:, 0], errors


def kernel_estimate(
    game: Any,
    players: int,
    budget: int,
    seed: int,
    estimator: str,
    adjust: np.ndarray | None = None,
    errors: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """S × C Kernel SHAP values of every class from about ``budget`` evaluations of ``game`` (with the
    ``adjusted`` estimator, the classes in ``adjust`` get the surrogate adjustment) and, with ``errors``, their
    S × C standard errors
    (explainers.errors; NaN for shap's KernelExplainer, which keeps its samples to itself)."""
    if estimator == "shap":
        explained = shap_kernel_explainer(game, players, budget, seed)
        return explained, np.full_like(explained, np.nan) if errors else None
    full, empty = game(np.ones((1, players), bool))[0], game(np.zeros((1, players), bool))[0]
    allocation = "sqrt" if estimator == "adjusted_sqrt" else "kernel"
    coalitions, weights, units, strata = stratified_design(players, budget, seed, True, allocation)
    outputs = game(coalitions)
    values = constrained_regression(coalitions, weights, outputs - empty, full - empty)
    standard = regression_errors(coalitions, weights, outputs - empty, values, units, strata) if errors else None
    if estimator in ADJUSTED and adjust is not None:
        adjust_classes(coalitions, weights, outputs, empty, full, seed, adjust, values, standard, units, strata)
    return values, standard


def adjust_classes(
    coalitions: np.ndarray,
    weights: np.ndarray,
    outputs: np.ndarray,
    empty: np.ndarray,
    full: np.ndarray,
    seed: int,
    adjust: np.ndarray,
    values: np.ndarray,
    errors: np.ndarray | None,
    units: np.ndarray,
    strata: np.ndarray,
) -> None:
    """The ``adjusted`` estimator for the classes in ``adjust``: their columns of ``values`` (and of ``errors``)
    replaced by :func:`surrogate_adjusted`'s, one class after another. Nothing changes with too few sampled
    draws or coalitions for the surrogate, or with none sampled (every coalition enumerated: already exact)."""
    players = coalitions.shape[1]
    draws = len(np.unique(units[units >= 0]))
    enough = draws >= MIN_DRAWS and len(coalitions) >= MIN_PER_PLAYER * players
    if not enough or len(adjust) == 0:
        return
    # One OpenMP thread: the fits are small, and with the CPU shared (another process, the model's own
    # threads) scikit-learn's spinning OpenMP threads were measured taking 130 s instead of 0.4 s per fit.
    # (Fitting the classes in threads side by side measured only 5 % faster: the grower holds the GIL.)
    with threadpool_limits(limits=1, user_api="openmp"):
        for column in np.asarray(adjust, dtype=np.int64):
            values[:, column], column_errors = surrogate_adjusted(
                coalitions, weights, outputs[:, column], float(empty[column]), float(full[column]), seed, units, strata
            )
            if errors is not None:
                errors[:, column] = column_errors


def shap_kernel_explainer(game: Any, players: int, budget: int, seed: int) -> np.ndarray:
    """S × C values from shap's KernelExplainer over the superpixel players (``l1_reg=False``)."""
    import shap

    state = np.random.get_state()  # shap samples coalitions from numpy's global generator
    np.random.seed(seed)
    try:
        explainer = shap.KernelExplainer(game, np.zeros((1, players)))
        # shap adds the empty and full coalitions itself; the budget counts those too.
        raw = explainer.shap_values(np.ones((1, players)), nsamples=max(budget - 2, 1), l1_reg=False, silent=True)
    finally:
        np.random.set_state(state)
    values = np.asarray(raw)
    return values[0] if values.ndim == 3 else np.stack([v[0] for v in raw], axis=1)


@register
class Kernel(SuperpixelMethod):
    name = "kernel"
    title = "Kernel SHAP (superpixels)"
    summary = "Weighted linear regression on sampled coalitions of SLIC superpixels (no L1 selection)."
    paper = "Lundberg & Lee 2017, A Unified Approach to Interpreting Model Predictions"
    own_params = (
        Param(
            "estimator",
            "choice",
            "adjusted",
            "Kernel SHAP estimator: adjusted (a tree surrogate's exact "
            "values plus a regression on what it misses; the most accurate per evaluation), stratified "
            "(enumerated and paired sampled coalition sizes, one regression), shap's KernelExplainer, or "
            "adjusted_sqrt (adjusted with more middle-sized coalitions; experimental).",
            choices=ESTIMATORS,
            flag="--estimator",
        ),
        TARGET_PARAM,
    )
    default_budget = 500
    min_budget = 5
    max_budget = 20_000
    smoke_budget = 200
    order = 30
    version = 3  # 2: the adjusted estimator's folds split the sampled draws; 3: one in-sample surrogate

    def solve(
        self,
        game: SuperpixelGame,
        budget: int,
        seed: int,
        explained: np.ndarray,
        estimator: str = "adjusted",
        target_error: float = 0.0,
        **params: Any,
    ) -> Solution:
        extras = {"adjusted_classes": explained.tolist()} if estimator in ADJUSTED else {}
        if target_error > 0:
            if estimator not in ("adjusted", "stratified"):
                raise ParameterError(
                    f"Budget auto (target_error) works with the adjusted and stratified estimators, not {estimator}."
                )
            values, errors, auto = kernel_auto(
                game, game.players, budget, seed, estimator, explained, target_error, game.progress
            )
            return Solution(values, {**extras, **auto}, errors)
        estimate, standard = kernel_estimate(game, game.players, budget, seed, estimator, adjust=explained)
        return Solution(estimate, extras, standard)
