"""Every method on the real models at small budgets: values add up, sampling approaches exact Shapley
values, seeds reproduce, classes change without model calls, DeepSHAP works where shap's does not."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explainers.explanation import Explanation, top_classes
from explainers.methods import ParameterError, all_methods
from explainers.request import explain
from explainers.superpixels import slic_segments
from models import Classifier, get_spec, load_classifier

# A 10-player game on the digit: small enough to enumerate in a blink on the real digits model.
TEN_PLAYERS = {"segments": 10, "sigma": 0.0, "compactness": 10.0}


class CallCounter:
    """Counts the images a classifier evaluates."""

    def __init__(self, classifier: Classifier):
        self.classifier, self.calls = classifier, 0
        self.original = classifier.predict

    def __enter__(self) -> CallCounter:
        def counted(images, batch_size=None):
            self.calls += len(np.asarray(images).reshape(-1, *self.classifier.spec.input_size, 3))
            return self.original(images, batch_size)

        self.classifier.predict = counted  # type: ignore[method-assign]  # counting calls on this instance
        return self

    def __exit__(self, *exc) -> None:
        self.classifier.predict = self.original  # type: ignore[method-assign]  # the original again


def every_class(e: Explanation) -> np.ndarray:
    """C × S values of every class: a superpixel method's, which always has them."""
    assert e.segment_values_all is not None
    return e.segment_values_all


def test_every_method_declares_checked_parameters() -> None:
    for method in all_methods():
        assert method.title and method.summary and method.paper
        assert method.min_budget <= method.default_budget <= method.max_budget
        assert method.min_budget <= method.smoke_budget <= method.max_budget and method.version >= 1
        assert method.resolve({}) == {p.name: p.default for p in method.params}
        for param in method.params:
            assert param.help.endswith(".") and param.coerce(param.default) == param.default


def test_monte_carlo_methods_add_up_better_with_more_samples(digits_model, digit_seven) -> None:
    # Every method adds up exactly where it says so (tests/test_registry_smoke.py); the others nearly, closer
    # the more they sample: on the digit, GradientSHAP's gap is 0.5 to 1.5 of the change at 8 samples.
    def relative_error(method: str, budget: int) -> float:
        errors = []
        for seed in range(3):
            e = explain(digits_model, digit_seven, method, top_k=2, max_evals=budget, seed=seed)
            errors.append(e.additivity_error / np.abs(e.probs[e.classes] - e.base_values).max())
        return float(np.mean(errors))

    for declared in (method for method in all_methods() if not method.exactly_additive):
        few = relative_error(declared.name, declared.smoke_budget)
        many = relative_error(declared.name, 32 * declared.smoke_budget)
        assert many < 0.25 and many < 0.5 * few, (declared.name, few, many)


@pytest.fixture(scope="module")
def ten_player_exact(digits_model, digit_seven):
    return explain(digits_model, digit_seven, "exact", top_k=10, max_evals=1024, params=TEN_PLAYERS)


def test_the_ten_player_game_really_has_ten_players(ten_player_exact) -> None:
    assert ten_player_exact.params["segments_found"] == 10 and ten_player_exact.n_evals == 1024


def test_kernel_at_full_enumeration_equals_exact(digits_model, digit_seven, ten_player_exact) -> None:
    kernel = explain(digits_model, digit_seven, "kernel", top_k=10, max_evals=1024, params=TEN_PLAYERS)
    np.testing.assert_allclose(every_class(kernel), ten_player_exact.segment_values_all, atol=1e-6)


@pytest.mark.parametrize("method", ["kernel", "permutation"])
def test_sampling_methods_approach_exact_as_the_budget_grows(
    digits_model, digit_seven, ten_player_exact, method
) -> None:
    exact = ten_player_exact.segment_values_all[7]
    errors = []
    for budget in (42, 168, 672):
        runs = [
            every_class(
                explain(digits_model, digit_seven, method, top_k=1, max_evals=budget, seed=seed, params=TEN_PLAYERS)
            )[7]
            for seed in range(3)
        ]
        errors.append(np.median([np.linalg.norm(run - exact) / np.linalg.norm(exact) for run in runs]))
    assert errors[-1] < errors[0] and errors[-1] < 0.1, errors


@pytest.mark.parametrize("method", ["permutation", "kernel", "gradient"])
def test_a_fixed_seed_gives_identical_results(digits_model, digit_seven, method) -> None:
    params = {"segments": 12} if method != "gradient" else {}
    budget = 60 if method != "gradient" else 16
    first, again, other = (
        explain(digits_model, digit_seven, method, top_k=2, max_evals=budget, seed=seed, params=params)
        for seed in (1, 1, 2)
    )
    np.testing.assert_array_equal(first.values, again.values)
    assert not np.array_equal(first.values, other.values)


def test_changing_the_explained_class_calls_the_model_no_more(digits_model, digit_seven) -> None:
    with CallCounter(digits_model) as counter:
        e = explain(digits_model, digit_seven, "kernel", top_k=1, max_evals=100, params={"segments": 12})
        used = counter.calls
        others = [e.for_classes(np.array([c]), (digits_model.class_names[c],)) for c in range(10)]
        five = top_classes(e.probs, 5)
        wider = e.for_classes(five, tuple(digits_model.class_names[c] for c in five))
        assert counter.calls == used
    assert e.n_evals <= 100 and [o.class_names[0] for o in others] == [str(d) for d in range(10)]
    assert all(o.additivity_error < 1e-5 for o in others) and wider.values.shape == (5, 28, 28)
    np.testing.assert_array_equal(wider.values[0], e.values[0])


def test_permutation_budget_below_one_permutation_is_refused(digits_model, digit_seven) -> None:
    with pytest.raises(ParameterError, match="One permutation over 10 superpixels needs 21"):
        explain(digits_model, digit_seven, "permutation", max_evals=20, params=TEN_PLAYERS)


def test_exact_refuses_a_game_too_big_for_the_budget(digits_model, digit_seven) -> None:
    with pytest.raises(ParameterError, match="need 1024 model evaluations"):
        explain(digits_model, digit_seven, "exact", max_evals=500, params=TEN_PLAYERS)


def superpixel_totals(values: np.ndarray, segments: np.ndarray) -> np.ndarray:
    return np.bincount(segments.ravel(), weights=values.ravel(), minlength=segments.max() + 1)


def test_deep_and_gradient_agree_on_the_strongest_superpixels(digits_model, digit_seven) -> None:
    deep = explain(digits_model, digit_seven, "deep", top_k=1, max_evals=9)
    gradient = explain(digits_model, digit_seven, "gradient", top_k=1, max_evals=256, params={"references": 9})
    segments = slic_segments(deep.image, 16, 10.0, 0.0)
    deep_totals = superpixel_totals(deep.values[0], segments)
    gradient_totals = superpixel_totals(gradient.values[0], segments)
    strongest = np.argsort(-np.abs(deep_totals))[:3]
    assert (np.sign(deep_totals[strongest]) == np.sign(gradient_totals[strongest])).all()


def test_gradient_on_an_intermediate_layer_keeps_its_sum(digits_model, digit_seven) -> None:
    from explainers.methods.gradient import spread_to_pixels

    cells = np.random.default_rng(0).normal(size=(2, 12, 12))
    np.testing.assert_allclose(spread_to_pixels(cells, (28, 28)).sum(axis=(1, 2)), cells.sum(axis=(1, 2)), rtol=1e-5)
    e = explain(digits_model, digit_seven, "gradient", top_k=2, max_evals=256, params={"layer": "middle"})
    assert e.values.shape == (2, 28, 28) and e.params["layer_module"].startswith("network.")
    gap = np.abs(e.probs[e.classes] - e.base_values).max()
    assert e.additivity_error < 0.3 * gap  # a Monte Carlo estimate in the layer's space


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenet_v3_large"])
def test_deep_works_where_shaps_deep_explainer_fails(name, chelsea) -> None:
    classifier = load_classifier(name, weights="random")
    # A fresh initialisation with untouched batch-norm statistics makes activations vanish (a flat output,
    # no game to explain): recalibrate the statistics on the photo and blurred copies, as after training.
    batch = torch.from_numpy(np.stack([classifier.prepare(chelsea)] * 4).astype(np.float32)).permute(0, 3, 1, 2)
    batch = batch + torch.randn_like(batch) * 30
    for module in classifier.module.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
    with torch.no_grad():
        classifier.module.train()(batch)
        for module in classifier.module.modules():
            if isinstance(module, torch.nn.Linear):  # MobileNet's head starts at std 0.01: near-uniform output
                module.weight.mul_(30)
    classifier.module.eval()
    e = explain(classifier, chelsea, "deep", top_k=2, max_evals=2)
    gap = np.abs(e.probs[e.classes] - e.base_values)
    assert gap.max() > 1e-4, gap
    assert e.additivity_error <= 1e-3 * gap.max()


def test_deep_says_why_it_cannot_explain_a_model(digits_model) -> None:
    network = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LayerNorm(28 * 28 * 3), torch.nn.Linear(2352, 10))
    odd = Classifier(get_spec("digits_cnn"), network, "random")
    with pytest.raises(ParameterError, match="LayerNorm"):
        explain(odd, np.zeros((28, 28, 3), np.uint8), "deep")


def test_our_rescale_rule_equals_shaps_deep_explainer_where_shap_works() -> None:
    # On a plain conv/ReLU/linear network the DeepLIFT rescale rule is unique, so the two must agree.
    import shap

    from explainers.methods.deep import rescale_attributions, rewrite_for_deeplift

    torch.manual_seed(0)
    network = torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3),
        torch.nn.ReLU(),
        torch.nn.Conv2d(6, 8, 3, stride=2),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 5 * 5, 16),
        torch.nn.ReLU(),
        torch.nn.Linear(16, 3),
    ).eval()
    x = torch.rand(1, 3, 14, 14)
    refs = torch.rand(4, 3, 14, 14)
    reference = shap.DeepExplainer(network, refs).shap_values(x, check_additivity=False)
    reference = np.asarray(reference)[0]  # C × H × W × outputs

    def one_output(output: int):
        def weights(z_in: torch.Tensor, z_ref: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.one_hot(torch.full((len(z_in),), output), 3).float()[None]

        return weights

    for output in range(3):
        ours, _ = rescale_attributions(rewrite_for_deeplift(network), x[0], refs, one_output(output), batch_size=4)
        np.testing.assert_allclose(ours[0].numpy(), reference[..., output], atol=1e-5)


@pytest.mark.parametrize("estimator", ["stratified", "adjusted"])
def test_stratified_and_adjusted_estimators_are_exact_at_full_enumeration(
    estimator, digits_model, digit_seven, ten_player_exact
) -> None:
    result = explain(
        digits_model, digit_seven, "kernel", top_k=3, max_evals=1024, params={**TEN_PLAYERS, "estimator": estimator}
    )
    np.testing.assert_allclose(every_class(result), ten_player_exact.segment_values_all, atol=1e-6)
    assert result.n_evals == 1024


def test_stratified_design_spends_the_budget_on_distinct_complementary_pairs() -> None:
    from explainers.methods.kernel import stratified_design

    for players, budget in ((10, 300), (13, 128), (50, 1000), (16, 2048)):
        coalitions, weights = stratified_design(players, budget, seed=3)
        keys = {np.packbits(row).tobytes() for row in coalitions}
        assert len(keys) == len(coalitions) <= budget - 2 and len(coalitions) >= budget - 4
        assert {np.packbits(~row).tobytes() for row in coalitions} == keys  # every complement is there
        sizes = coalitions.sum(axis=1)
        assert sizes.min() >= 1 and sizes.max() <= players - 1 and (weights > 0).all()
    # With 300 of the 1024 coalitions of 10 players, sizes 1, 9, 2 and 8 are enumerated whole (110 coalitions).
    coalitions, _ = stratified_design(10, 300, seed=0)
    sizes = coalitions.sum(axis=1)
    assert [(sizes == s).sum() for s in (1, 2, 8, 9)] == [10, 45, 45, 10]


def test_adjusted_estimator_adds_up_reproduces_and_beats_shap_on_the_digit(
    digits_model, digit_seven, ten_player_exact
) -> None:
    exact = ten_player_exact.segment_values_all[7]

    def error(estimator: str, seed: int) -> tuple[float, np.ndarray]:
        result = explain(
            digits_model,
            digit_seven,
            "kernel",
            top_k=1,
            max_evals=200,
            seed=seed,
            params={**TEN_PLAYERS, "estimator": estimator},
        )
        values = every_class(result)[7]
        assert result.base_values_all is not None  # a superpixel method keeps every class's base value
        assert values.sum() == pytest.approx(result.probs[7] - result.base_values_all[7], abs=1e-6)
        return float(np.linalg.norm(values - exact) / np.linalg.norm(exact)), values

    adjusted = [error("adjusted", seed) for seed in range(3)]
    np.testing.assert_array_equal(error("adjusted", 0)[1], adjusted[0][1])
    shap_errors = [error("shap", seed)[0] for seed in range(3)]
    assert np.median([e for e, _ in adjusted]) < np.median(shap_errors)
