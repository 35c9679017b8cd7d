"""Nothing from a link's query string is rendered as Markdown: a ``?study=`` or ``&pid=`` that is not shaped
like an id is never echoed (no live link, no picture fetched from someone else's server), and one that is
shaped like an id is echoed as plain text."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

import studies
from explainers.cache import ExplanationCache

ROOT = Path(__file__).resolve().parents[1]
DIGIT = ROOT / "assets" / "samples" / "digits" / "digit_1.png"
TRICKS = [
    "[Sign in again](http://evil.invalid/)",
    "![i](http://evil.invalid/a.png)",
    "<img src=http://evil.invalid/a.png>",
    "**bold**_x_",
]


def elements(node: Any) -> Iterator[Any]:
    """Every element drawn, in the main area and the sidebar, however deeply nested."""
    if hasattr(node, "proto") and not hasattr(node, "children"):
        yield node
    for child in getattr(node, "children", {}).values():
        yield from elements(child)


def drawn(app: AppTest) -> str:
    """All that the page sends the browser, each element's fields as text."""
    return "\n".join(str(element.proto) for root in (app.main, app.sidebar) for element in elements(root))


def open_link(**params: str) -> AppTest:
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    for key, value in params.items():
        app.query_params[key] = value
    app.run()
    assert not app.exception, app.exception
    return app


@pytest.mark.parametrize("trick", TRICKS)
def test_a_study_link_that_is_no_study_id_is_not_echoed(trick: str) -> None:
    app = open_link(study=trick)
    assert [info.value for info in app.info] == [
        "There is no study with that link; please check the link you were given."
    ]
    page = drawn(app)
    assert "There is no study with that link" in page  # what is drawn is read
    assert "evil.invalid" not in page and "](" not in page and "bold" not in page


def test_an_unknown_study_id_is_named_as_plain_text() -> None:
    app = open_link(study="no_such_study")
    # Escaped: Markdown shows no_such_study, not "no" then "such" in italics.
    assert app.info[0].value == (
        "There is no study called “no\\_such\\_study” here; please check the link you were given."
    )


@pytest.fixture(scope="module")
def open_study(tmp_path_factory, digits_model) -> Iterator[None]:
    """A one-trial study, precomputed, so that its link opens; its own studies and answers folders."""
    folder = tmp_path_factory.mktemp("echo-studies")
    (folder / "echo.yaml").write_text(
        textwrap.dedent(f"""\
        id: echo-study
        title: Echo study
        consent: Please agree.
        conditions: [partition, none]
        explanation: {{budget: {{partition: 20}}}}
        trials:
          - {{id: d1, model: digits_cnn, image: {DIGIT}}}
          - {{id: d2, model: digits_cnn, image: {DIGIT}}}
        """)
    )
    patch = pytest.MonkeyPatch()
    patch.setenv("EXPLAINERS_STUDIES_DIR", str(folder))
    patch.setenv("EXPLAINERS_STUDY_DIR", str(tmp_path_factory.mktemp("echo-answers")))
    studies.precompute(studies.load_study(folder / "echo.yaml"), ExplanationCache(), load=lambda name: digits_model)
    yield
    patch.undo()


@pytest.mark.parametrize("trick", TRICKS)
def test_a_participant_id_that_is_no_id_is_not_echoed(open_study: None, trick: str) -> None:
    app = open_link(study="echo-study", pid=trick)
    assert [warning.value for warning in app.warning] == [
        "There is no participant with that id in this study; check the id, or start afresh below."
    ]
    page = drawn(app)
    assert "evil.invalid" not in page and "](" not in page and "bold" not in page
    assert "Please agree." in page  # the study itself still opens


def test_an_unknown_participant_id_is_named(open_study: None) -> None:
    app = open_link(study="echo-study", pid="k7q2-m9xd")
    assert app.warning[0].value.startswith("There is no participant K7Q2M9XD in this study")
