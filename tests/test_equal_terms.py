"""Faithfulness on equal terms: one removal for every method (noisy linear imputation, ROAD), most and least
relevant blocks first."""

from __future__ import annotations

import numpy as np
import pytest

from explainers.explanation import Explanation
from explainers.faithfulness import faithfulness
from explainers.imputation import NOISE, impute
from explainers.request import explain


def ramp(size: int = 64) -> np.ndarray:
    return np.dstack([np.add.outer(np.arange(size), 2 * np.arange(size)) * 0.6] * 3)


def test_linear_imputation_fills_a_ramp_back_and_leaves_the_rest_alone() -> None:
    image = ramp()
    removed = np.zeros(image.shape[:2], bool)
    removed[20:40, 10:50] = True  # away from the edges
    filled = impute(image, removed, noise=0)
    np.testing.assert_allclose(filled[removed], image[removed], atol=1e-3)
    noisy = impute(image, removed, seed=1)
    assert np.array_equal(noisy[~removed], image[~removed].astype(np.float32))  # what was not removed stays
    assert np.std(noisy[removed] - image[removed]) == pytest.approx(NOISE * 255, rel=0.2)
    everything = impute(image, np.ones(image.shape[:2], bool), noise=0)
    assert np.all(everything == 127.5)  # nothing to continue from: mid grey


def test_on_equal_terms_a_map_ranks_above_its_own_reverse(digits_model, digit_seven) -> None:
    e = explain(digits_model, digit_seven, "kernel", top_k=1, max_evals=400, params={"segments": 20})
    score = faithfulness(digits_model, e)
    assert score.equal_fractions[0] == 0 and score.equal_fractions[-1] == 1
    assert score.equal_morf[0] == pytest.approx(float(e.probs[7]), abs=1e-5)  # nothing removed yet
    assert score.equal_gap > 0  # removing the least relevant blocks keeps the 7 longer than the most relevant
    reverse = Explanation(**{**e.__dict__, "values": -e.values})
    assert faithfulness(digits_model, reverse).equal_gap < 0
