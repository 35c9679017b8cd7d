"""The service under the pages (service/): the Compare page, ui/state and the report ask it for the same requests;
the grid's basis and scales, the ranking, the downloads and the report's contents come from it; viz only draws."""

from __future__ import annotations

import ast
import csv
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from explainers.cache import ExplanationCache
from explainers.explanation import Explanation
from explainers.images import InputImage, load_image
from explainers.methods import get_method
from explainers.request import explain
from models import Classifier, default_sample, get_spec
from service.compare import SLIC_SEGMENTS, compare_grid, compare_requests, grid_caption, grid_scores, ranking
from service.downloads import compare_downloads
from service.report import report_contents
from ui.compute import get_cache, get_engine
from viz.report import report_pdf

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {"kernel": 62, "gradient": 8}  # budgets small enough for a test, each method's defaults otherwise


def defaults(name: str) -> dict:
    """A method's parameters as the pages start them (budget "auto" there)."""
    return get_method(name).page_defaults()


@pytest.fixture(scope="module")
def digit() -> InputImage:
    return load_image(default_sample(get_spec("digits_cnn")).path, sample=True)


@pytest.fixture(scope="module")
def explanations(digits_model, digit) -> dict[str, Explanation]:
    return {
        "kernel": explain(digits_model, digit, "kernel", top_k=2, max_evals=300, params={"segments": 12}),
        "gradient": explain(digits_model, digit, "gradient", top_k=2, max_evals=8),
    }


def not_needed() -> np.ndarray:
    raise AssertionError("the superpixels were made though a superpixel method brought its own")


def test_the_compare_page_and_ui_state_ask_for_the_services_requests(digits_model, digit) -> None:
    state = {
        "model_name": "digits_cnn",
        "compare_methods": list(SETTINGS),
        "compare_top_k": 2,
        **{f"budget_{name}": budget for name, budget in SETTINGS.items()},
    }
    import streamlit as st

    st.cache_resource.clear()  # this server's cache and job engine as the environment says, not a former test's
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    for key, value in state.items():
        app.session_state[key] = value
    app.switch_page("app_pages/compare.py").run()
    app.button(key="compare_run").click().run()  # the page's jobs; the run waits for them (conftest)
    assert not app.exception and not app.error, (app.exception, [e.value for e in app.error])

    plan = compare_requests(
        digits_model,
        digit,
        {name: (budget, defaults(name)) for name, budget in SETTINGS.items()},
        top_k=2,
        seed=0,
        output="probability",
    )
    assert list(plan.requests) == list(SETTINGS) and not plan.refused
    # What the page computed: in the cache its server wrote to, or held by its engine as a finished job (an
    # earlier test may have run the same request in this process and cleared its cache entry since).
    cache, engine = get_cache(), get_engine()
    jobs = {name: engine.job(request) for name, request in plan.requests.items()}
    held = {name for name, job in jobs.items() if job is not None and job.outcome is not None}
    computed = {name for name, request in plan.requests.items() if cache.get(request) is not None} | held
    states = {name: job.status().state for name, job in jobs.items() if job is not None}
    assert computed == set(plan.requests), states  # a cancelled job: see ui.compute._served

    def script() -> None:
        import streamlit as st

        from ui.resources import get_classifier
        from ui.state import compare_requests

        st.text(" ".join(r.key for r in compare_requests(get_classifier("digits_cnn"), st.session_state["digest"])))

    listed = AppTest.from_function(script, default_timeout=120)
    for key, value in {**state, "digest": digit.digest}.items():
        listed.session_state[key] = value
    listed.run()
    assert listed.text[0].value.split() == [request.key for request in plan.requests.values()]


def test_a_method_that_cannot_run_so_is_refused_in_one_sentence(digits_model, digit) -> None:
    plan = compare_requests(digits_model, digit, {"kernel": (1, {}), "gradient": (8, {})}, top_k=1, seed=0, output=None)
    assert list(plan.requests) == ["gradient"] and plan.refused["kernel"].startswith("The budget for kernel")


def test_pixel_methods_are_summed_over_the_superpixel_methods_regions(
    digits_model, explanations: dict[str, Explanation]
) -> None:
    spec, prepared = digits_model.spec, explanations["kernel"].image
    grid = compare_grid(spec, prepared, explanations, 2, output="probability", superpixels=not_needed)
    segments = explanations["kernel"].segments
    assert segments is not None
    assert grid.one_basis and grid.basis is segments and grid.segments["gradient"] is segments
    assert grid.classes == [int(c) for c in explanations["kernel"].classes[:2]]
    summed = grid.maps[0][1]
    for label in np.unique(segments):  # a pixel method's total per superpixel, spread evenly over it
        region = segments == label
        assert np.allclose(summed[region], summed[region][0])
        assert summed[region].sum() == pytest.approx(grid.raw[0][1][region].sum(), rel=1e-4, abs=1e-9)
    # One scale for the grid, fitted to the verdict's row: none of its panels saturates.
    assert len({limit for row in grid.limits for limit in row}) == 1
    assert "Pixel methods are summed over the same 12 superpixels" in grid_caption(grid)

    per_row = compare_grid(spec, prepared, explanations, 2, output="probability", superpixels=not_needed, per_row=True)
    assert all(len(set(row)) == 1 for row in per_row.limits) and per_row.limits[0] == grid.limits[0]
    own = compare_grid(
        spec, prepared, explanations, 2, output="probability", superpixels=not_needed, over_superpixels=False
    )
    assert not own.one_basis and own.basis is None and own.segments["gradient"] is None
    assert "one per panel" in grid_caption(own)


def test_without_a_superpixel_method_the_basis_is_slic(digits_model, explanations) -> None:
    made = []

    def superpixels() -> np.ndarray:
        made.append(SLIC_SEGMENTS)
        return np.arange(28 * 28).reshape(28, 28) // 98  # eight bands

    grid = compare_grid(
        digits_model.spec,
        explanations["gradient"].image,
        {"gradient": explanations["gradient"]},
        1,
        output="probability",
        superpixels=superpixels,
    )
    assert made == [SLIC_SEGMENTS] and grid.basis is not None and int(grid.basis.max()) == 7 and grid.one_basis


def test_the_ranking_puts_the_most_faithful_first_and_the_downloads_hold_every_panel(
    tmp_path, digits_model, digit, explanations
) -> None:
    grid = compare_grid(
        digits_model.spec, explanations["kernel"].image, explanations, 2, output="probability", superpixels=not_needed
    )
    scores = grid_scores(ExplanationCache(tmp_path / "c"), digits_model, grid)
    assert set(scores) == {(name, c) for name in explanations for c in grid.classes}
    rows = ranking(grid, scores)
    assert {row["method"] for row in rows} == {"Kernel SHAP", "GradientSHAP"}
    gaps = [row["equal terms: gap ↑"] for row in rows]  # the most faithful on equal terms first
    assert gaps == sorted(gaps, reverse=True)

    superpixels = explanations["kernel"].segments
    assert superpixels is not None
    files = compare_downloads(
        grid, scores, opacity=0.7, superpixels=superpixels, image_digest=digit.digest, report=lambda: b"%PDF"
    )
    assert [file.file_name for file in files] == [
        "digits_cnn_comparison.png",
        "digits_cnn_explanations.zip",
        "digits_cnn_values.csv",
        "digits_cnn_scores.csv",
        f"digits_cnn_{digit.digest[:8]}_report.pdf",
    ]
    made = {file.file_name: file.make() for file in files}
    png, archive = made["digits_cnn_comparison.png"], made["digits_cnn_explanations.zip"]
    values_csv, scores_csv = made["digits_cnn_values.csv"], made["digits_cnn_scores.csv"]
    assert isinstance(png, bytes) and isinstance(archive, bytes) and isinstance(values_csv, str)
    assert isinstance(scores_csv, str) and png[:4] == b"\x89PNG"
    bundle = zipfile.ZipFile(io.BytesIO(archive))
    assert [Explanation.load(io.BytesIO(bundle.read(n))).method for n in bundle.namelist()] == ["kernel", "gradient"]
    values = list(csv.reader(io.StringIO(values_csv)))[1:]
    assert len(values) == 2 * 2 * (int(superpixels.max()) + 1)  # methods × classes × superpixels
    assert len(list(csv.reader(io.StringIO(scores_csv)))) == 1 + 2 * 2


def test_the_report_is_gathered_from_the_cache_and_drawn_without_the_model(
    tmp_path, monkeypatch, digits_model, digit, explanations
) -> None:
    cache = ExplanationCache(tmp_path / "c")
    first = report_contents(cache, digits_model, digit, explanations, top_k=2)  # the model runs: scores, verdict

    def no_model(*args, **kwargs):
        raise AssertionError("the report ran the model")

    monkeypatch.setattr(Classifier, "predict", no_model)
    contents = report_contents(cache, digits_model, digit, explanations, top_k=2)  # now all cached
    assert [method.title for method in contents.methods] == ["Kernel SHAP", "GradientSHAP"]
    assert contents.classes == first.classes and int(np.argmax(contents.probs)) == 7
    assert all(len(method.maps) == 2 and len(method.scores) == 2 for method in contents.methods)
    assert contents.unit == "pp per region" and contents.image_name == digit.display_name
    assert report_pdf(contents).startswith(b"%PDF")


def test_viz_never_runs_a_model() -> None:
    """viz draws what it is given: it imports nothing that loads or runs a model, and calls no predict."""
    forbidden = {
        "models",
        "jobs",
        "service",
        "explainers.request",
        "explainers.faithfulness",
        "explainers.predictions",
        "explainers.methods",
        "explainers.superpixels",
        "explainers.masks",
    }
    for path in (ROOT / "viz").rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        modules |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert not {m for m in modules if m in forbidden or m.split(".")[0] in forbidden}, path
        calls = {
            node.func.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        }
        assert not calls & {"predict", "prepare", "predict_tensor"}, path
    code = (
        "import sys, viz.report, viz.panels, viz.plots, viz.render, viz.card; "
        "sys.exit(1 if any(m.split('.')[0] in ('models', 'jobs') or m in ('explainers.request', "
        "'explainers.faithfulness', 'explainers.predictions') for m in sys.modules) else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
