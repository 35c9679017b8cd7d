"""Contrastive maps (explainers.contrast): why the verdict rather than another class, drawn from a superpixel
method's stored evaluations with no model call; they add up to the log-ratio of the two classes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from explainers.contrast import ContrastError, contrast_of, log_ratio
from explainers.explanation import Explanation
from explainers.images import load_image
from explainers.methods.exact import all_coalitions, shapley_from_table
from explainers.request import explain
from explainers.superpixels import build_game

ROOT = Path(__file__).resolve().parents[1]
DIGIT = ROOT / "assets" / "samples" / "digits" / "digit_7.png"


@pytest.fixture(scope="module")
def seven():
    return load_image(DIGIT)


def stored(explanation: Explanation) -> Explanation:
    """The explanation as the cache gives it back (saved and loaded)."""
    buffer = io.BytesIO()
    explanation.save(buffer)
    buffer.seek(0)
    return Explanation.load(buffer)


def test_the_exact_contrast_is_the_shapley_value_of_the_log_ratio(digits_model, seven) -> None:
    e = stored(explain(digits_model, seven, "exact", top_k=2, max_evals=4096, params={"segments": 8}))
    a, b = int(e.classes[0]), int(e.classes[1])
    contrast = contrast_of(e, a, b)
    # Independently: the same superpixels' game, every coalition through the model, the log-ratio's values.
    settings = {k: e.params[k] for k in ("segments", "compactness", "sigma", "fill", "fill_constant")}
    game = build_game(digits_model, e.image, **settings, total=0, progress=None)
    assert e.segments is not None and np.array_equal(game.segments, e.segments)
    table = log_ratio(game.probabilities(all_coalitions(game.players)), a, b)[:, None]
    expected = shapley_from_table(table, game.players)[:, 0]
    np.testing.assert_allclose(contrast.segment_values, expected, atol=1e-5)
    assert contrast.total == pytest.approx(float(log_ratio(e.probs, a, b)))


@pytest.mark.parametrize(
    "method, params",
    [("kernel", {}), ("kernel", {"target_error": 0.25}), ("permutation", {}), ("exact", {"segments": 8})],
)
def test_a_contrast_adds_up_to_the_log_ratio_without_a_model_call(digits_model, seven, method, params) -> None:
    e = stored(explain(digits_model, seven, method, top_k=3, max_evals=600, params={"segments": 20, **params}))
    assert e.evaluated_classes is not None
    for b in e.evaluated_classes[1:4]:  # the verdict against the next classes, none explained but the top 3
        contrast = contrast_of(e, int(e.classes[0]), int(b))
        assert contrast.additivity_error < 1e-4
        assert contrast.segment_values.sum() + contrast.base_value == pytest.approx(contrast.total, abs=1e-4)
        assert contrast.values.shape == e.image.shape[:2]
    # The contrast's evaluations are the explanation's (contrast_of takes no model; a replay asks for nothing new).
    assert e.evaluated is not None and len(e.evaluated) == e.n_evals


def test_what_cannot_be_contrasted_is_told_in_one_sentence(digits_model, seven) -> None:
    partition = explain(digits_model, seven, "partition", top_k=1, max_evals=60)
    with pytest.raises(ContrastError, match="superpixel method's evaluations"):
        contrast_of(partition, int(partition.classes[0]), 3)
    kernel = explain(digits_model, seven, "kernel", top_k=1, max_evals=200)
    with pytest.raises(ContrastError, match="itself"):
        contrast_of(kernel, 7, 7)
    owen = explain(digits_model, seven, "owen", top_k=1, max_evals=60, params={"segments": 12})
    with pytest.raises(ContrastError, match="this owen explanation"):  # its refinement follows every output
        contrast_of(owen, int(owen.classes[0]), 3)


def explain_digit(method: str, budget: int, contrast: str) -> subprocess.CompletedProcess:
    """``python -m explainers explain`` on the bundled 7 with ``--contrast``."""
    return subprocess.run(
        [sys.executable, "-m", "explainers", "explain", "--model", "digits_cnn", "--image", str(DIGIT)]
        + ["--method", method, "--max-evals", str(budget), "--quiet", "--no-cache", "--contrast", contrast],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def test_the_command_line_adds_the_contrast_to_its_json_line() -> None:
    done = explain_digit("permutation", 200, "3")
    assert done.returncode == 0, done.stderr
    contrast = json.loads(done.stdout)["contrast"]
    assert (contrast["label"], contrast["against_label"]) == ("7", "3")
    assert sum(contrast["segment_values"]) + contrast["base_value"] == pytest.approx(contrast["total"], abs=1e-4)
    refused = explain_digit("kernel", 100, "banana")
    assert refused.returncode == 2 and refused.stderr.strip().count("\n") == 0 and "no class 'banana'" in refused.stderr


def test_the_explain_page_draws_why_the_verdict_rather_than_another_class() -> None:
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240)
    for key, value in {"model_name": "digits_cnn", "explain_method": "kernel", "budget_kernel": 200}.items():
        app.session_state[key] = value
    app.run()
    assert not app.exception, app.exception
    picker = app.selectbox(key="contrast_against")
    assert picker.label == "Why 7 rather than…" and len(picker.options) == 1 + 9  # none, and the other digits
    panels = len(app.get("html"))
    picker.select(3).run()
    assert not app.exception, app.exception
    assert len(app.get("html")) == panels + 1 and "Why 7 rather than 3" in str(app.get("html")[-1].proto)
    caption = " ".join(c.value for c in app.caption)
    assert "adds up to log p(7) − log p(3)" in caption and "no model evaluation" in caption
