"""The fast paths give the answers of the slow ones: our permutation loop and blur masker against shap's,
ONNX Runtime against PyTorch, per-class backward passes against a vmapped one, the remembered runtime."""

from __future__ import annotations

import numpy as np
import pytest
import shap
import torch

from explainers.images import load_image
from explainers.methods.gradient import _grads_for_classes
from explainers.methods.partition import masker_spec
from explainers.methods.permutation import permutation_estimate
from explainers.request import explain
from explainers.superpixels import build_game, slic_segments
from models import list_samples, load_classifier, runtime


def digit_game(classifier, image, segments: int, budget: int):
    return build_game(
        classifier,
        image,
        segments=segments,
        compactness=10.0,
        sigma=0.0,
        fill="auto",
        fill_constant=0.0,
        total=budget,
        progress=None,
    )


def shaps_permutation_values(game, players: int, budget: int, seed: int) -> np.ndarray:
    masker = shap.maskers.Independent(np.zeros((1, players)), max_samples=1)
    explainer = shap.PermutationExplainer(game, masker, seed=seed)
    return np.asarray(explainer(np.ones((1, players)), max_evals=budget, silent=True).values[0])


@pytest.mark.parametrize("seed, budget, players", [(0, 200, 9), (3, 500, 12), (7, 95, 20)])
def test_permutation_loop_is_shaps_on_an_exact_game(seed, budget, players) -> None:
    # A game with interactions whose outputs do not depend on how coalitions are batched: equal to the bit.
    rng = np.random.default_rng(seed)
    weights, pairs = rng.normal(size=(players, 3)), rng.normal(size=(players, players, 3))

    def game(coalitions: np.ndarray) -> np.ndarray:
        z = np.asarray(coalitions, dtype=np.float64)
        return z @ weights + np.einsum("ns,stc,nt->nc", z, pairs, z)

    ours = permutation_estimate(game, players, budget, seed)
    np.testing.assert_array_equal(ours[0], shaps_permutation_values(game, players, budget, seed))


@pytest.mark.parametrize("seed, budget, segments", [(0, 200, 10), (7, 95, 20)])
def test_permutation_equals_shaps_permutation_explainer(digits_model, digit_seven, seed, budget, segments) -> None:
    ours_game = digit_game(digits_model, digit_seven, segments, budget)
    ours = permutation_estimate(ours_game, ours_game.players, budget, seed)[0]
    shap_game = digit_game(digits_model, digit_seven, segments, budget)
    reference = shaps_permutation_values(shap_game, shap_game.players, budget, seed)
    # The model's float32 outputs move in the last digits with the batch a coalition lands in.
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-6)
    assert ours_game.evaluations == shap_game.evaluations  # the same coalitions, each evaluated once


@pytest.mark.parametrize("masker", ["blur", "inpaint_telea"])
def test_partition_gives_shaps_values_image_after_image(digits_model, masker) -> None:
    # Two different images in a row through the shared masker: any state left behind shows on the second.
    for digit in (7, 3):
        image = digits_model.prepare(load_image(f"assets/samples/digits/digit_{digit}.png").pixels)
        ours = explain(
            digits_model,
            image,
            "partition",
            top_k=2,
            max_evals=100,
            seed=0,
            params={"masker": masker, "blur_kernel": 10},
        )
        stock = shap.PartitionExplainer(digits_model.predict, shap.maskers.Image(masker_spec(masker, 10), image.shape))
        reference = stock(
            image[None].astype(np.float32), max_evals=100, batch_size=50, outputs=ours.classes, silent=True
        )
        np.testing.assert_array_equal(
            ours.values, np.moveaxis(reference.values[0].sum(axis=2), -1, 0).astype(np.float32)
        )
        np.testing.assert_array_equal(ours.base_values, np.float32(reference.base_values[0]))


def test_tumour_predict_in_onnx_runtime_matches_pytorch(tumour_model) -> None:
    images = np.stack(
        [tumour_model.prepare(load_image(s.path).pixels) for s in list_samples() if s.domain == "mri"][:6]
    )
    assert tumour_model.runtime == "onnxruntime"  # the registry's choice, without measuring
    try:
        fast = tumour_model.predict(images)
        tumour_model.use_runtime("torch")
        reference = tumour_model.predict(images)
    finally:
        tumour_model.use_runtime("onnxruntime")
    np.testing.assert_allclose(fast, reference, atol=1e-5)


def test_exported_efficientnet_in_onnx_runtime_matches_pytorch(efficientnet, chelsea, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MODELS_CACHE_DIR", str(tmp_path))
    predictor = runtime.onnx_predictor(efficientnet.spec, efficientnet.module, efficientnet.weights_digest)
    assert predictor is not None and predictor.path.parent == tmp_path
    photos = [s.path for s in list_samples() if s.domain == "imagenet"][:3]
    images = np.stack([efficientnet.prepare(load_image(path).pixels) for path in photos]).astype(np.float32)
    np.testing.assert_allclose(predictor(images), efficientnet.predict(images), atol=1e-5)


def test_runtime_is_measured_once_then_remembered(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MODELS_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(runtime, "MEASURE_SECONDS", 0.01)
    monkeypatch.setattr(runtime, "TUNE_BATCHES", (1, 2))
    first = load_classifier("digits_cnn", tune=True)
    assert first.tuning is not None and not first.tuning.remembered
    assert set(first.tuning.measured) == {"torch", "onnxruntime"}
    assert (first.runtime, first.batch_size) == (first.tuning.runtime, first.tuning.batch_size)

    def no_measuring(*args, **kwargs):
        raise AssertionError("measured again instead of reading the remembered choice")

    monkeypatch.setattr(runtime, "measure_batches", no_measuring)
    again = load_classifier("digits_cnn", tune=True)
    assert again.tuning is not None and again.tuning.remembered
    assert (again.runtime, again.batch_size) == (first.runtime, first.batch_size)
    image = np.zeros((1, 28, 28, 3), dtype=np.uint8)
    np.testing.assert_allclose(again.predict(image), first.predict(image), atol=1e-6)

    monkeypatch.setenv("MODELS_TUNE", "0")
    untuned = load_classifier("digits_cnn")
    assert untuned.tuning is None and untuned.batch_size == untuned.spec.batch_size


def test_per_class_backward_passes_equal_one_vmapped_pass(digits_model, digit_seven) -> None:
    x = torch.from_numpy(digit_seven.astype(np.float32)).permute(2, 0, 1)[None]
    points = (x * torch.linspace(0.2, 1.0, 5).view(-1, 1, 1, 1)).requires_grad_(True)
    classes = torch.tensor([7, 1, 3])
    with torch.enable_grad():
        ours = _grads_for_classes(digits_model.module(points)[:, classes], points)
        outputs = digits_model.module(points)
        selectors = torch.zeros((len(classes),) + tuple(outputs.shape))
        selectors[torch.arange(len(classes)), :, classes] = 1
        (vmapped,) = torch.autograd.grad(outputs, points, selectors, is_grads_batched=True)
    torch.testing.assert_close(ours, vmapped, rtol=1e-5, atol=1e-7)


def test_masked_images_take_each_superpixel_from_the_image_or_the_background(efficientnet, chelsea) -> None:
    image = efficientnet.prepare(chelsea)
    game = build_game(
        efficientnet,
        image,
        segments=30,
        compactness=10.0,
        sigma=1.0,
        fill="mean",
        fill_constant=0.0,
        total=10,
        progress=None,
    )
    coalitions = np.random.default_rng(0).random((4, game.players)) > 0.5
    coalitions[0], coalitions[1] = True, False
    masked = game.masked_images(coalitions)
    keep = coalitions[:, game.segments][..., None]
    np.testing.assert_array_equal(masked, np.where(keep, image.astype(np.float32), game.background))


def test_slic_segments_are_remembered_per_image(chelsea) -> None:
    first = slic_segments(chelsea[:96, :96], 20)
    first[:] = -1  # the caller's copy: the remembered answer must not change
    again = slic_segments(chelsea[:96, :96], 20)
    assert again.min() == 0 and again.max() + 1 <= 20
    other = slic_segments(chelsea[96:192, :96], 20)
    assert not np.array_equal(other, again)


def test_gradient_module_folds_batchnorm_and_computes_the_same(efficientnet, chelsea) -> None:
    folded = efficientnet.gradient_module
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in efficientnet.module.modules())  # untouched
    names = [name for name, m in folded.named_modules() if isinstance(m, torch.nn.Conv2d)]
    assert names == [name for name, m in efficientnet.module.named_modules() if isinstance(m, torch.nn.Conv2d)]
    x = torch.from_numpy(efficientnet.prepare(chelsea).astype(np.float32)).permute(2, 0, 1)[None]
    with torch.inference_mode():
        torch.testing.assert_close(folded(x), efficientnet.module(x), rtol=0, atol=1e-5)
