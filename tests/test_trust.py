"""What bench.trust measured reaches the user: the model card names the recommended method and the methods that
fail the randomisation check, the Explain page starts on the recommended method, Compare puts it first, and a
failing method's panel says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from models import trust

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def measured(tmp_path, monkeypatch):
    """A trust file as bench.trust writes it: kernel recommended for the digits model, gradient failing."""
    rows = {
        "kernel": {"rho_top": 0.15, "passes": True, "gap": 0.44, "seconds": 0.3},
        "gradient": {"rho_top": 0.93, "passes": False, "gap": 0.30, "seconds": 0.1},
    }
    why = "passes the randomisation check (ρ 0.15 after the top layer) and has the widest gap on equal terms"
    entry = {"measured": "2026-12-07, 2 sample(s)", "methods": rows, "recommended": "kernel", "why": why}
    path = tmp_path / "trust.json"
    path.write_text(json.dumps({"digits_cnn": entry}))
    monkeypatch.setattr(trust, "TRUST_FILE", path)
    trust._all.cache_clear()
    yield
    trust._all.cache_clear()


def test_the_card_and_the_pages_follow_the_measurements(measured) -> None:
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240)
    app.session_state["model_name"] = "digits_cnn"
    app.session_state["budget_kernel"] = 100
    app.run()
    assert not app.exception, app.exception
    assert app.selectbox(key="explain_method").value == "kernel"  # the recommended method first
    card = " ".join(m.value for m in app.markdown)
    assert "**Recommended method** Kernel SHAP (superpixels): it passes the randomisation check" in card
    assert "fails for GradientSHAP" in card
    app.switch_page("app_pages/compare.py").run()
    assert not app.exception, app.exception
    assert app.multiselect(key="compare_methods").value[0] == "kernel"


def test_a_failing_method_says_so_under_its_panel(measured, digits_model, digit_seven) -> None:
    from explainers.faithfulness import faithfulness
    from explainers.request import explain
    from service.compare import score_caption

    gradient = explain(digits_model, digit_seven, "gradient", top_k=1, max_evals=8)
    caption = score_caption(faithfulness(digits_model, gradient), gradient)
    assert caption.startswith("⚠ fails the randomisation check (ρ 0.93")
    kernel = explain(digits_model, digit_seven, "kernel", top_k=1, max_evals=100)
    assert score_caption(faithfulness(digits_model, kernel), kernel).startswith("passes the randomisation check")
