"""Adding a method is one file: a method defined and registered here appears on the Explain page, in
``methods`` and in ``explain``, with no other change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cli.main import main
from explainers.explanation import Explanation
from explainers.methods import Attribution, PixelMethod, all_methods, register, unregister

ROOT = Path(__file__).resolve().parents[1]
SEVEN = str(ROOT / "assets" / "samples" / "digits" / "digit_7.png")


class Uniform(PixelMethod):
    """The whole change in probability from a black image, spread evenly over the pixels: the crudest
    attribution that still adds up exactly."""

    name = "uniform"
    title = "Uniform (test method)"
    summary = "The change from a black image, spread evenly."
    paper = "none: a test of the method registry"
    default_budget = 1
    min_budget = 1
    max_budget = 1
    budget_meaning = "evaluations"

    def attribute(
        self,
        classifier: Any,
        image: np.ndarray,
        classes: np.ndarray,
        budget: int,
        seed: int,
        progress: Any,
        output: str,
        **params: Any,
    ) -> Attribution:
        black = classifier.predict(np.zeros_like(image)[None])[0][classes]
        probs = classifier.predict(image[None])[0][classes]
        values = np.broadcast_to(
            ((probs - black) / image[..., 0].size)[:, None, None], (len(classes), *image.shape[:2])
        )
        return Attribution(values.copy(), black, 2, used={}, extras={})

    def hidden_image(self, explanation: Explanation, classifier: Any, features: np.ndarray) -> np.ndarray:
        return np.zeros_like(explanation.image, dtype=np.float32)


@pytest.fixture
def uniform_registered():
    register(Uniform)
    try:
        yield
    finally:
        unregister("uniform")


def test_a_method_defined_in_one_file_is_offered_everywhere(uniform_registered, capsys, tmp_path) -> None:
    assert "uniform" in [method.name for method in all_methods()]

    assert main(["methods"]) == 0
    assert "\nuniform\tUniform (test method)" in "\n" + capsys.readouterr().out

    out = tmp_path / "u.npz"
    assert (
        main(
            [
                "explain",
                "--model",
                "digits_cnn",
                "--image",
                SEVEN,
                "--method",
                "uniform",
                "--top-k",
                "2",
                "--quiet",
                "--no-cache",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["method"] == "uniform" and report["labels"][0] == "7" and report["additivity_error"] < 1e-5
    assert Explanation.load(out).params["max_evals"] == 1  # the same provenance as every method

    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    app.session_state["model_name"] = "digits_cnn"
    app.run()
    assert "Uniform (test method)" in app.selectbox(key="explain_method").options
    app.selectbox(key="explain_method").set_value("uniform").run()
    assert not app.exception, app.exception
    assert "says **7**" in "\n".join(m.value for m in app.markdown)
    assert len(app.get("html")) == 2 + 3


def test_the_registry_forgets_it_afterwards() -> None:
    assert "uniform" not in [method.name for method in all_methods()]
