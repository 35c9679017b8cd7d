"""The model-parameter randomisation check (Adebayo et al. 2018): a map that survives replacing the model by
noise explains the image, not the model, and fails; maps of a real method on the digits model pass."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from explainers.explanation import Explanation
from explainers.images import load_image
from explainers.methods import Attribution, PixelMethod, register, unregister
from explainers.sanity import FAILS_ABOVE, map_similarity
from models import labelled_samples
from models.randomise import cascade, randomised, weighted_layers
from service.trust import sanity_check


class Brightness(PixelMethod):
    """An "explanation" that is the image's brightness: it looks like a saliency map of a digit and knows
    nothing of the model."""

    name = "brightness"
    title = "Brightness (test method)"
    summary = "The image's brightness, whatever the model."
    paper = "none: a test of the randomisation check"
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
        grey = image.astype(np.float64).mean(axis=2) / 255.0
        return Attribution(np.repeat(grey[None], len(classes), axis=0), np.zeros(len(classes)), 0, used={}, extras={})

    def hidden_image(self, explanation: Explanation, classifier: Any, features: np.ndarray) -> np.ndarray:
        return np.zeros_like(explanation.image, dtype=np.float32)


@pytest.fixture
def brightness():
    register(Brightness)
    try:
        yield
    finally:
        unregister("brightness")


@pytest.fixture(scope="module")
def digits(digits_model):
    return [load_image(s.path) for s in labelled_samples(digits_model.spec)[:2]]


def test_similarity_is_a_rank_correlation_of_block_totals() -> None:
    values = np.random.default_rng(0).normal(size=(28, 28))
    assert map_similarity(values, values) == pytest.approx(1.0)
    assert map_similarity(values, -values) == pytest.approx(-1.0)
    assert map_similarity(values, np.zeros_like(values)) == 0.0


def test_a_randomised_copy_leaves_the_model_alone_and_cascades_from_the_output(digits_model, digits) -> None:
    layers = weighted_layers(digits_model.module)
    stages = cascade(digits_model)
    assert stages[0] == ("top layer", layers[-1:]) and stages[-1] == ("every layer", layers)
    before = {name: p.clone() for name, p in digits_model.module.named_parameters()}
    image = digits_model.prepare(digits[0].pixels)[None].astype(np.float32)
    noise = randomised(digits_model, layers)
    assert all(torch.equal(p, before[name]) for name, p in digits_model.module.named_parameters())
    assert np.abs(noise.predict(image) - digits_model.predict(image)).max() > 0.1  # another model now


def test_a_map_of_the_image_alone_fails_and_kernel_shap_passes(brightness, digits_model, digits) -> None:
    image_only = sanity_check(digits_model, digits, "brightness")
    assert image_only.after_top == pytest.approx(1.0) and not image_only.passes
    assert "fails the randomisation check" in image_only.sentence()
    kernel = sanity_check(digits_model, digits, "kernel", budget=300)
    assert kernel.passes and kernel.after_top <= FAILS_ABOVE and len(kernel.cascade) >= 3
    assert all(-1 <= rho <= 1 for _, rho in kernel.cascade)
