"""Explaining the log-odds: every method adds up in that space, the choice is part of the cache key, and the
command line takes --output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from explainers.explanation import Explanation
from explainers.outputs import log_odds, log_odds_of_logits, log_odds_of_probs, shown
from explainers.request import build_request, explain

ROOT = Path(__file__).resolve().parents[1]
# (method, budget, params, additivity tolerance in log-odds): the sampling methods' exact-sum constraint,
# deep's exact rescale rule; expected gradients is an estimate (checked separately).
EXACT = [
    ("kernel", 100, {"segments": 12}, 1e-4),
    ("partition", 100, {}, 1e-4),
    ("exact", 1024, {"segments": 10}, 1e-4),
    ("permutation", 100, {"segments": 12}, 1e-4),
    ("owen", 100, {"segments": 12}, 1e-4),
    ("deep", 2, {}, 1e-3),
]


def test_log_odds_keep_their_digits_where_one_minus_p_has_none() -> None:
    logits = torch.tensor([[30.0, 1.0, -2.0, 0.5]], dtype=torch.float64)
    exact = log_odds_of_logits(logits).numpy()
    probs = torch.softmax(logits.float(), -1).numpy()  # float32: p_0 rounds to 1.0, 1 − p_0 to 0
    assert probs[0, 0] == np.float32(1.0)
    np.testing.assert_allclose(log_odds(probs), exact, rtol=1e-5)
    np.testing.assert_allclose(log_odds_of_probs(torch.from_numpy(probs), torch.arange(4)).numpy(), exact, rtol=1e-5)
    assert shown(0.0312, "probability") == "+3.1 pp" and shown(-0.41, "log-odds") == "-0.41 log-odds"


@pytest.mark.parametrize("method,budget,params,tolerance", EXACT, ids=[m[0] for m in EXACT])
def test_every_method_adds_up_in_log_odds(digits_model, digit_seven, method, budget, params, tolerance) -> None:
    result = explain(digits_model, digit_seven, method, top_k=2, max_evals=budget, params=params, output="log-odds")
    assert result.output == "log-odds" and result.classes[0] == 7
    totals = result.values.reshape(2, -1).sum(axis=1) + result.base_values
    odds = log_odds(result.probs)[result.classes]
    assert odds[0] > 10  # p(7) = 0.9999999: the probability has nothing left to give, its log-odds do
    np.testing.assert_allclose(totals, odds, atol=tolerance * max(1.0, np.abs(odds).max()))
    assert result.additivity_error <= tolerance * np.abs(odds).max()
    if result.segment_values_all is not None:  # another class is a lookup, in the same space
        other = result.for_classes(np.array([3]), ("3",))
        assert abs(other.values.sum() + other.base_values[0] - log_odds(result.probs)[3]) < 1e-3


def test_gradient_log_odds_follow_the_logits(digits_model, digit_seven) -> None:
    many = explain(digits_model, digit_seven, "gradient", top_k=1, max_evals=256, output="log-odds")
    odds = log_odds(many.probs)[7]
    # Expected gradients is an estimate of the same total; with 256 samples it is within a tenth of it.
    assert abs(many.values.sum() + many.base_values[0] - odds) < 0.1 * abs(odds)
    probability = explain(digits_model, digit_seven, "gradient", top_k=1, max_evals=256)
    assert not np.allclose(probability.values, many.values)


def test_the_output_space_is_part_of_the_cache_key_and_saved(digits_model, digit_seven, tmp_path) -> None:
    probability = build_request(digits_model, digit_seven, "kernel", budget=50, output="probability")
    odds = build_request(digits_model, digit_seven, "kernel", budget=50, output="log-odds")
    assert probability.key != odds.key and odds.identity()["output"] == "log-odds"
    assert build_request(digits_model, digit_seven, "kernel", budget=50).output == digits_model.default_output
    result = explain(digits_model, digit_seven, "kernel", max_evals=50, params={"segments": 8}, output="log-odds")
    result.save(tmp_path / "e.npz")
    assert Explanation.load(tmp_path / "e.npz").output == "log-odds"


def test_the_command_line_explains_log_odds(tmp_path) -> None:
    image = ROOT / "assets" / "samples" / "digits" / "digit_7.png"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "explainers",
            "explain",
            "--model",
            "digits_cnn",
            "--image",
            str(image),
            "--method",
            "kernel",
            "--max-evals",
            "40",
            "--segments",
            "8",
            "--output",
            "log-odds",
            "--quiet",
            "--no-cache",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert line["output"] == "log-odds" and line["outputs"][0] > 10
    assert abs(line["outputs"][0] - line["base_values"][0]) > 1  # the map has log-odds to share out
