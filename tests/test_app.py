"""The dashboard through Streamlit's AppTest: every page renders, and the Explain page explains."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from explainers.cache import ExplanationCache

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")


def start(**state) -> AppTest:
    """The app from app.py (so the sidebar runs), with a small budget so each test stays quick."""
    app = AppTest.from_file(APP, default_timeout=240)
    app.session_state["budget_partition"] = 40
    for key, value in state.items():
        app.session_state[key] = value
    return app.run()


def markdown_text(app: AppTest) -> str:
    return "\n".join(m.value for m in app.markdown)


def test_explain_page_shows_a_verdict_and_one_overlay_per_class_for_the_cat() -> None:
    app = start()
    assert not app.exception, app.exception
    assert app.sidebar.selectbox(key="model_name").value == "efficientnet_lite0"
    assert "says **Egyptian cat**" in markdown_text(app)
    charts = app.get("html")
    assert len(charts) == 2 + 3  # the input, the probabilities, an overlay per top-3 class (HTML panels)
    assert "adds up to the model's probability" in " ".join(c.value for c in app.caption)


def test_changing_top_k_and_model_updates_the_page() -> None:
    app = start(model_name="digits_cnn", sample_digits="digits/digit_3")
    assert not app.exception, app.exception
    assert "says **3**" in markdown_text(app) and "the file name says **3** ✓" in markdown_text(app)
    app.slider(key="top_k").set_value(1).run()
    assert not app.exception
    assert len(app.get("html")) == 2 + 1


def test_switching_model_picks_a_sample_of_its_domain() -> None:
    app = start(model_name="digits_cnn")
    assert "the file name says **7** ✓" in markdown_text(app)
    # AppTest drops app.py's sidebar from the tree after a rerun under st.navigation, so widgets are set
    # through session_state from here on (the real server shows the sidebar on every run).
    app.session_state["model_name"] = "brain_tumor_vgg16"
    app.run()
    assert not app.exception, app.exception
    assert "the file name says **glioma** ✓" in markdown_text(app)


def test_models_page_lists_every_model_and_explains_missing_weights() -> None:
    app = start(model_name="digits_cnn")
    app.switch_page("app_pages/models.py").run()
    assert not app.exception, app.exception
    warnings = " ".join(w.value for w in app.warning)
    assert "resnet18-f37072fd.pth" in warnings and "never downloads" in warnings


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_uploaded_image_is_explained() -> None:
    app = start(model_name="digits_cnn", image_source="Upload")
    digit = np.asarray(Image.open(ROOT / "assets" / "samples" / "digits" / "digit_4.png").convert("L"))
    app.sidebar.file_uploader[0].set_value(("four.png", png_bytes(digit), "image/png"))
    app.run()
    assert not app.exception, app.exception
    assert "says **4**" in markdown_text(app)


@pytest.mark.parametrize(
    "name, data",
    [
        ("empty.png", b""),
        ("notes.png", b"just some text"),
        ("cut.png", png_bytes(np.zeros((64, 64, 3), np.uint8))[:60]),
    ],
)
def test_bad_upload_gets_one_sentence_and_the_app_keeps_running(name, data) -> None:
    app = start(model_name="digits_cnn", image_source="Upload")
    app.sidebar.file_uploader[0].set_value((name, data, "image/png"))
    app.run()
    assert not app.exception, app.exception
    messages = [message.value for message in app.info]
    assert len(messages) == 1 and messages[0].startswith(name) and messages[0].endswith(".")
    app.session_state["image_source"] = "Sample"  # and the app goes on
    app.run()
    assert not app.exception and "says **7**" in markdown_text(app)


@pytest.mark.parametrize(
    "method, budget", [("permutation", 60), ("kernel", 60), ("exact", 4096), ("deep", 2), ("gradient", 8)]
)
def test_every_method_renders_on_the_explain_page(method, budget) -> None:
    app = start(
        model_name="digits_cnn",
        explain_method=method,
        outlines=True,
        **{f"budget_{method}": budget, f"segments_{method}": 12},
    )
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    assert "says **7**" in markdown_text(app) and len(app.get("html")) == 2 + 3


def test_a_chosen_class_is_explained_from_the_stored_values() -> None:
    cache = ExplanationCache()
    before = cache.stats()["entries"]
    app = start(model_name="digits_cnn", explain_method="kernel", budget_kernel=61)
    assert cache.stats()["entries"] == before + 1
    app.session_state["explained_class"] = "3"
    app.run()
    assert not app.exception, app.exception
    assert len(app.get("html")) == 2 + 1
    assert cache.stats()["entries"] == before + 1  # nothing new was computed


def test_the_explain_page_explains_the_log_odds_when_asked() -> None:
    cache = ExplanationCache()
    before = cache.stats()["entries"]
    app = start(model_name="digits_cnn", explain_method="kernel", budget_kernel=59, segments_kernel=12)
    assert app.radio(key="output_digits_cnn").value == "probability"  # the model's default
    assert "adds up to the model's probability" in " ".join(c.value for c in app.caption)
    app.radio(key="output_digits_cnn").set_value("log-odds").run()
    assert not app.exception and not app.error, (app.exception, [e.value for e in app.error])
    assert cache.stats()["entries"] == before + 2  # another explanation, under its own key
    assert "adds up to the model's log-odds" in " ".join(c.value for c in app.caption)
