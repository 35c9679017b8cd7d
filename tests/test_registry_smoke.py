"""Every registered model × every registered method, read from the registries: a new model card, a new method
file or a new input format is tested here without editing a test.

Each model is built with its shipped weights, or random ones where none ship here (the torchvision weights are
not bundled), and explained on its own default sample at each method's declared ``smoke_budget``. A superpixel
method plays a four-superpixel game (every game memoises its coalitions, so at most 16 model evaluations): the
point is that each pairing runs the real pipeline end to end, not the quality of the values. Where a method
promises exact additivity the values add up to the output's change; where it cannot explain a model, it says so
in one sentence.
"""

from __future__ import annotations

import numpy as np
import pytest

from explainers.formats import FORMATS
from explainers.images import load_image
from explainers.methods import all_methods, get_method
from explainers.request import explain
from models import Classifier, all_specs, default_sample, get_spec, load_classifier

MODELS = [spec.name for spec in all_specs()]
METHODS = [method.name for method in all_methods()]
SMOKE_GAME = {"segments": 4, "sigma": 0.0}
_LOADED: dict[str, Classifier] = {}


def classifier_for(name: str) -> Classifier:
    """The model with its shipped weights, else random ones; one build per model for the whole module."""
    if name not in _LOADED:
        spec = get_spec(name)
        _LOADED[name] = load_classifier(name, weights="pretrained" if spec.available else "random", tune=False)
    return _LOADED[name]


def one_sentence(text: str) -> bool:
    return "\n" not in text and "Traceback" not in text and text.rstrip().endswith((".", ")")) and len(text) < 400


def test_the_registries_are_not_empty() -> None:
    assert len(MODELS) >= 8 and len(METHODS) >= 7 and len(FORMATS) >= 3
    print(f"registry smoke test: {len(MODELS)} models × {len(METHODS)} methods = {len(MODELS) * len(METHODS)}")


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("method", METHODS)
def test_every_model_runs_every_method_at_its_smoke_budget(model: str, method: str) -> None:
    classifier, declared = classifier_for(model), get_method(method)
    image = load_image(default_sample(classifier.spec).path).pixels
    params = SMOKE_GAME if declared.uses_segments else {}
    refusal = declared.unsupported(classifier)
    if refusal is not None:
        with pytest.raises(Exception) as raised:
            explain(classifier, image, method, top_k=1, max_evals=declared.smoke_budget, params=params)
        assert one_sentence(str(raised.value)), str(raised.value)
        return
    e = explain(classifier, image, method, top_k=2, max_evals=declared.smoke_budget, params=params)
    height, width = classifier.spec.input_size
    assert e.values.shape == (2, height, width) and np.isfinite(e.values).all()
    assert e.output == classifier.spec.policy.output and e.params["method_version"] == declared.version
    gap = np.abs(e.outputs() - e.base_values).max()
    if declared.exactly_additive:
        assert e.additivity_error <= max(1e-3 * gap, 1e-5), (e.additivity_error, gap)
