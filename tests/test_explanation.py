"""Partition SHAP on the real models: the values add up, match shap, report progress, and survive a save."""

from __future__ import annotations

import io

import numpy as np
import pytest
import shap

from explainers.explanation import SCHEMA_VERSION, Explanation, ExplanationFileError
from explainers.methods import ParameterError
from explainers.request import explain


@pytest.fixture(scope="module")
def digit_explanation(digits_model, digit_seven) -> Explanation:
    return explain(digits_model, digit_seven, "partition", top_k=3, max_evals=120, seed=0)


def test_values_add_up_to_the_model_output(digit_explanation) -> None:
    e = digit_explanation
    assert e.values.shape == (3, 28, 28) and e.values.dtype == np.float32
    outputs = e.probs[e.classes]
    totals = e.values.reshape(3, -1).sum(axis=1) + e.base_values
    np.testing.assert_allclose(totals, outputs, atol=1e-5)
    assert e.additivity_error < 1e-5
    assert e.class_names[0] == "7" and e.probs.shape == (10,) and e.probs.sum() == pytest.approx(1, abs=1e-5)


def test_the_digit_itself_carries_the_evidence(digit_explanation) -> None:
    # The ink (bright pixels) should hold most of the positive attribution for "7".
    ink = digit_explanation.image[..., 0] > 64
    values = digit_explanation.values[0]
    assert values[ink].sum() > 0 and values[ink].mean() > values[~ink].mean()


def test_cat_is_explained_as_a_cat(efficientnet, chelsea) -> None:
    e = explain(efficientnet, chelsea, "partition", top_k=2, max_evals=60, seed=0)
    assert e.class_names[0] == "Egyptian cat" and e.values.shape == (2, 224, 224)
    assert e.additivity_error < 1e-5 and e.n_evals <= 61


def test_equals_shap_partition_explainer_on_the_same_inputs(digits_model, digit_seven, digit_explanation) -> None:
    image = digits_model.prepare(digit_seven).astype(np.float32)
    masker = shap.maskers.Image("blur(128,128)", image.shape)
    reference = shap.PartitionExplainer(digits_model.predict, masker)(
        image[None], max_evals=120, batch_size=50, outputs=digit_explanation.classes, silent=True
    )
    np.testing.assert_allclose(digit_explanation.values, np.moveaxis(reference.values[0].sum(axis=2), -1, 0), atol=1e-6)
    np.testing.assert_allclose(digit_explanation.base_values, reference.base_values[0], atol=1e-6)


def test_progress_is_reported_in_model_evaluations(digits_model, digit_seven) -> None:
    reports: list[tuple[int, int]] = []
    e = explain(
        digits_model,
        digit_seven,
        "partition",
        top_k=1,
        max_evals=80,
        seed=0,
        progress=lambda done, total: reports.append((done, total)),
    )
    done = [d for d, _ in reports]
    assert reports and all(total == 80 for _, total in reports)
    assert done == sorted(done) and done[-1] == min(e.n_evals - 1, 80)


def test_save_and_load_round_trip(digit_explanation, tmp_path) -> None:
    path = tmp_path / "e.npz"
    digit_explanation.save(path)
    with np.load(path, allow_pickle=False) as data:
        assert {"values", "base_values", "probs", "classes"} <= set(data.files)
        assert data["values"].shape == (3, 28, 28) and data["values"].dtype == np.float32
    loaded = Explanation.load(path)
    np.testing.assert_array_equal(loaded.values, digit_explanation.values)
    assert loaded.class_names == digit_explanation.class_names and loaded.params == digit_explanation.params
    assert loaded.schema_version == SCHEMA_VERSION and loaded.n_evals == digit_explanation.n_evals


def test_damaged_file_gets_a_clear_error(digit_explanation, tmp_path) -> None:
    buffer = io.BytesIO()
    digit_explanation.save(buffer)
    path = tmp_path / "broken.npz"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ExplanationFileError, match="damaged"):
        Explanation.load(path)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_evals": 5}, "budget for partition must be between"),
        ({"top_k": 11}, "top-k must be between 1 and 10"),
        ({"params": {"blur_kernel": "x"}}, "blur_kernel must be an integer"),
        ({"params": {"masker": "paint"}}, "masker must be one of"),
        ({"params": {"colour": 1}}, "has no parameter 'colour'"),
    ],
)
def test_bad_parameters_are_refused_with_a_sentence(digits_model, digit_seven, kwargs, message) -> None:
    with pytest.raises(ParameterError, match=message):
        explain(digits_model, digit_seven, "partition", **kwargs)


def test_unknown_method(digits_model, digit_seven) -> None:
    with pytest.raises(ParameterError, match="Unknown method 'lime'"):
        explain(digits_model, digit_seven, "lime")


@pytest.mark.parametrize("masker", ["inpaint_telea", "inpaint_ns"])
def test_inpainting_maskers_add_up_too(digits_model, digit_seven, masker) -> None:
    e = explain(digits_model, digit_seven, "partition", top_k=1, max_evals=60, params={"masker": masker})
    assert e.params["masker"] == masker and e.additivity_error < 1e-5 and e.class_names[0] == "7"
