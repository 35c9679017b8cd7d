"""Error bars: calibrated on the stored exact games, and shown where a reader looks (hover, the dotted mark, the
command line's JSON and .npz)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from explainers.errors import Z90, block_regions, mean_and_error, uncertain_sign
from explainers.methods.exact import shapley_from_table
from explainers.methods.kernel import kernel_estimate
from explainers.methods.permutation import permutation_estimate

DATA = Path(__file__).resolve().parents[1] / "bench" / "data"


class TableGame:
    """v(z) read from a stored exact table (row r ↔ the bits of r)."""

    def __init__(self, table: np.ndarray, players: int):
        self.table, self.bits = table, 1 << np.arange(players)

    def __call__(self, coalitions: np.ndarray) -> np.ndarray:
        return self.table[(np.asarray(coalitions) > 0.5).astype(np.int64) @ self.bits]


def exact_games():
    for path in sorted(DATA.glob("*.npz")):
        table = np.load(path)["table"].astype(np.float64)
        players = int(np.log2(len(table)))
        yield path.stem, table, players, shapley_from_table(table, players)


def coverage(estimate, budgets, seeds, classes=None) -> float:
    """The share of exact values inside the nominal 90 % intervals, pooled over the games, budgets, seeds and
    classes."""
    hits = []
    for _, table, players, exact in exact_games():
        for budget in budgets:
            for seed in seeds:
                values, errors = estimate(TableGame(table, players), players, budget, seed)
                for column in range(table.shape[1]) if classes is None else classes:
                    hits.append(np.abs(values[:, column] - exact[:, column]) <= Z90 * errors[:, column])
    return float(np.mean(np.concatenate(hits)))


@pytest.mark.parametrize("estimator", ["stratified"])
def test_kernel_intervals_cover_ninety_percent_of_the_exact_values(estimator):
    share = coverage(
        lambda game, players, budget, seed: kernel_estimate(game, players, budget, seed, estimator),
        budgets=(128, 512, 2048),
        seeds=range(4),
    )
    assert 0.85 <= share <= 0.95, share


def test_adjusted_kernel_intervals_cover_the_explained_class():
    share = coverage(
        lambda game, players, budget, seed: kernel_estimate(
            game, players, budget, seed, "adjusted", adjust=np.array([0])
        ),
        budgets=(256, 1024),
        seeds=range(2),
        classes=[0],
    )
    assert 0.85 <= share <= 0.95, share


def test_permutation_intervals_cover_ninety_percent_of_the_exact_values():
    share = coverage(permutation_estimate, budgets=(256, 1024), seeds=range(4))
    assert 0.80 <= share <= 0.95, share


def test_errors_shrink_with_the_budget_and_vanish_when_every_coalition_is_evaluated():
    _, table, players, _ = next(exact_games())
    small = kernel_estimate(TableGame(table, players), players, 256, 0, "stratified")[1]
    large = kernel_estimate(TableGame(table, players), players, 1024, 0, "stratified")[1]
    ratio = np.linalg.norm(large[:, 0]) / np.linalg.norm(small[:, 0])
    assert 0.2 < ratio < 0.75  # about 1/2 for 4× the coalitions, less as whole sizes become enumerated
    everything = kernel_estimate(TableGame(table, players), players, 2**players, 0, "stratified")[1]
    assert np.all(everything == 0)


def test_one_estimate_has_no_error_and_few_are_widened_by_student_t():
    mean, error = mean_and_error(np.array([2.0]), np.array([4.0]), 1)
    assert mean[0] == 2.0 and np.isnan(error[0])
    samples = np.array([1.0, 2.0, 3.0, 4.0])
    _, error = mean_and_error(samples.sum(keepdims=True), (samples**2).sum(keepdims=True), 4)
    plain = samples.std(ddof=1) / 2
    assert error[0] == pytest.approx(plain * 2.3534 / Z90, rel=1e-3)


def test_a_sign_is_uncertain_only_when_zero_lies_inside_the_interval():
    assert uncertain_sign(np.array([0.1, 0.5, 0.0, 0.3]), np.array([0.1, 0.1, 0.0, np.nan])).tolist() == [
        True,
        False,
        False,
        False,
    ]


def test_block_regions_number_the_hover_blocks():
    from viz.plots import hover_grid

    values = np.random.default_rng(0).random((50, 37))
    regions = block_regions(values.shape, 16)
    _, _, z, _, block = hover_grid(values, None, cells=16)
    assert regions.max() + 1 == z.size and block == 4
    sums = np.bincount(regions.ravel(), weights=values.ravel())
    counts = np.bincount(regions.ravel())
    np.testing.assert_allclose((sums / counts).reshape(z.shape), z, rtol=1e-5)


def test_hover_shows_plus_minus_and_dots_mark_uncertain_regions():
    from viz.panels import overlay_panel

    segments = np.repeat(np.arange(4), 16).reshape(8, 8).astype(np.int32)
    totals = np.array([0.20, -0.10, 0.01, 0.0])
    errors = np.array([0.02, 0.01, 0.05, 0.0])
    values = (totals / 16)[segments]
    html = overlay_panel(
        np.zeros((8, 8, 3), np.uint8), values, limit=25.0, segments=segments, errors=(errors, segments)
    )
    tips = dict(re.findall(r'data-tip="superpixel (\d+): ([^"]*)"', html))
    assert tips["0"] == "+20.0 ± 2.0 pp"
    assert tips["2"] == "+1.0 ± 5.0 pp (sign uncertain)"
    assert tips["3"] == "0 ± 0 pp" or "uncertain" not in tips["3"]
    assert "sign uncertain" in html  # the dotted layer is drawn
    plain = overlay_panel(np.zeros((8, 8, 3), np.uint8), values, limit=25.0, segments=segments)
    assert "±" not in plain and "sign uncertain" not in plain


@pytest.mark.parametrize("method, estimator", [("kernel", "stratified"), ("kernel", "adjusted"), ("permutation", None)])
def test_budget_auto_stops_at_the_target_and_never_beyond_the_budget(method: str, estimator: str | None) -> None:
    from explainers.images import load_image
    from explainers.methods import get_method
    from explainers.progress import Progress
    from explainers.request import build_request
    from models import load_classifier

    classifier = load_classifier("digits_cnn")
    image = classifier.prepare(
        load_image(Path(__file__).resolve().parents[1] / "assets" / "samples" / "digits" / "digit_7.png").pixels
    )
    own = {} if estimator is None else {"estimator": estimator}
    seen: list[str] = []

    def explain(target: float, budget: int):
        request = build_request(
            classifier,
            image,
            method,
            params={**own, "segments": 20, "target_error": target},
            budget=budget,
            seed=0,
            top_k=2,
        )
        return get_method(method).explain(request, classifier, image, Progress(lambda s: seen.append(s.describe())))

    loose = explain(0.25, 4000)
    assert loose.n_evals < 2000  # stopped early
    top_error = np.linalg.norm(loose.segment_errors[0]) / np.linalg.norm(loose.segment_values[0])
    assert top_error <= 0.25 + 1e-9
    assert any("relative error" in line and "(target 25%)" in line for line in seen)  # the progress bar tells
    strict = explain(0.001, 1500)
    assert strict.n_evals <= 1500 + 2  # the budget is the limit (and the full and empty coalitions)
    assert np.linalg.norm(strict.segment_errors[0]) < np.linalg.norm(loose.segment_errors[0])
