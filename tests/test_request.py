"""The request object and the contracts around it: validated once, picklable, one key; a model with
``predict`` alone is explained by every model-agnostic method; one progress type with an honest estimate."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from explainers.cache import ExplanationCache
from explainers.images import InputImage
from explainers.methods import ParameterError, all_methods, get_method
from explainers.progress import Progress, ProgressState
from explainers.request import build_request, explain, run, run_cached


class PredictOnly:
    """What an ONNX-only model offers: predict and the data of its spec, no differentiable module."""

    def __init__(self, classifier):
        self.inner = classifier
        self.name, self.class_names = classifier.name + "_predict_only", classifier.class_names
        self.weights_digest, self.batch_size = "onnx-only", classifier.batch_size
        self.default_fill, self.default_background = classifier.default_fill, classifier.default_background
        self.sample_folder = classifier.sample_folder

    def prepare(self, image):
        return self.inner.prepare(image)

    def predict(self, images, batch_size=None):
        return self.inner.predict(images, batch_size)


def test_a_request_is_plain_data_with_one_key(digits_model, digit_seven) -> None:
    image = InputImage.from_pixels(digit_seven)
    request = build_request(digits_model, image, "kernel", budget=60, params={"segments": 12}, top_k=2)
    again = pickle.loads(pickle.dumps(request))  # what a job engine sends to a worker
    assert again == request and again.key == request.key and again.spec.name == "kernel"
    assert request.parameters["segments"] == 12 and request.parameters["fill"] == "auto"  # resolved once
    # Superpixel methods solve every class: top-k is not part of what is stored.
    assert build_request(digits_model, image, "kernel", budget=60, params={"segments": 12}, top_k=5).key == request.key
    assert (
        build_request(digits_model, image, "deep", budget=2, top_k=1).key
        != build_request(digits_model, image, "deep", budget=2, top_k=2).key
    )


def test_a_request_is_checked_before_anything_runs(digits_model, digit_seven) -> None:
    with pytest.raises(ParameterError, match="budget for kernel"):
        build_request(digits_model, digit_seven, "kernel", budget=1)
    with pytest.raises(ParameterError, match="segments must be between"):
        build_request(digits_model, digit_seven, "kernel", params={"segments": 1})
    with pytest.raises(ParameterError, match="Class ids"):
        build_request(digits_model, digit_seven, "kernel", classes=[10])


def test_a_request_checks_its_image(digits_model, digit_seven) -> None:
    request = build_request(digits_model, digit_seven, "partition", budget=40)
    with pytest.raises(ValueError, match="not the one"):
        run(request, np.roll(digit_seven, 1, axis=0), digits_model)


def test_a_model_with_predict_alone_is_explained_by_every_model_agnostic_method(
    digits_model, digit_seven, tmp_path
) -> None:
    model = PredictOnly(digits_model)
    cache = ExplanationCache(tmp_path)
    for method in all_methods():
        if method.requires_gradients:
            with pytest.raises(ParameterError, match="needs the model's gradients"):
                build_request(model, digit_seven, method.name)
            continue
        request = build_request(
            model,
            digit_seven,
            method.name,
            budget=method.smoke_budget,
            top_k=1,
            params={"segments": 8} if method.uses_segments else {},
        )
        explanation, cached = run_cached(cache, request, digit_seven, model)
        assert explanation.class_names == ("7",) and explanation.additivity_error < 1e-4 and not cached
        assert run_cached(cache, request, digit_seven, model)[1]


def test_time_left_comes_from_the_recent_rate_not_the_first_update() -> None:
    now = [0.0]
    states: list[ProgressState] = []
    progress = Progress(states.append, min_interval=0, clock=lambda: now[0])
    now[0] = 40.0  # a slow start (superpixels, a warm-up) before the first evaluation is counted
    progress(1, 300)
    assert states[-1].seconds_left is None  # one update says nothing about the rate
    for done in range(11, 301, 10):  # then 10 evaluations a second
        now[0] += 1.0
        progress(done, 300)
        if done == 101:
            assert states[-1].seconds_left == pytest.approx(19.9, abs=0.5)
    now[0] += 1.0
    progress(300, 300)
    assert states[-1].done == 300 and states[-1].fraction == 1.0


def test_the_pages_default_to_budget_auto_and_scripts_spend_what_they_ask(digits_model, digit_seven) -> None:
    sampled = [method for method in all_methods() if "target_error" in method.page_defaults()]
    assert {method.name for method in sampled} >= {"kernel", "permutation"}
    for method in sampled:
        assert method.page_defaults()["target_error"] > 0 and method.resolve({})["target_error"] == 0
    # A page's request (its defaults) stops once the top class's map is within the target: the digit's easy map
    # needs a fraction of the budget a script spends whole.
    page = explain(
        digits_model, digit_seven, "kernel", top_k=1, max_evals=1000, params=get_method("kernel").page_defaults()
    )
    script = explain(digits_model, digit_seven, "kernel", top_k=1, max_evals=1000)
    assert page.extras["auto_reached"] and page.extras["auto_error"] <= page.params["target_error"]
    assert page.n_evals < script.n_evals == 1000
