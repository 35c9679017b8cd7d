"""The user-study pages through AppTest: a participant's link shows only the study (consent, blinded trials,
answers stored per trial, resume by id), an unprecomputed study is not open, and the results are locked."""

from __future__ import annotations

import re
import sqlite3
import textwrap
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Element, ElementList, Widget, WidgetList

import studies
from explainers.cache import ExplanationCache
from explainers.methods import all_methods

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
SAMPLES = ROOT / "assets" / "samples" / "digits"
# Every name that would unblind a participant: method names and titles.
METHOD_WORDS = sorted({word for method in all_methods() for word in (method.name, method.title)})


def visible_text(body: str) -> str:
    """What an HTML panel shows a participant: its text, its pictures' alt texts and its hover texts."""
    shown = re.sub(r"<style>.*?</style>", " ", body, flags=re.S)
    tips = re.findall(r'(?:data-tip|alt)="([^"]*)"', shown)
    return " ".join([re.sub(r"<[^>]+>", " ", shown), *tips])


def study_text(study_id: str, digits: tuple[int, ...] = (1, 4, 7)) -> str:
    trials = "\n".join(f"  - {{id: d{n}, model: digits_cnn, image: {SAMPLES / f'digit_{n}.png'}}}" for n in digits)
    return (
        textwrap.dedent(f"""\
        id: {study_id}
        title: Digits study
        consent: Please agree to take part in this test study.
        instructions: Guess the digit the model will read.
        conditions: [partition, kernel, none]
        randomisation: {{design: within, order: shuffle, seed: 3}}
        explanation:
          budget: {{partition: 20, kernel: 20}}
          params: {{kernel: {{segments: 8}}}}
        trials:
        """)
        + trials
        + "\n"
    )


@pytest.fixture(scope="module")
def studies_dir(tmp_path_factory, digits_model) -> Path:
    """A folder with a precomputed tiny study (digits-study) and one never precomputed (closed-study)."""
    folder = tmp_path_factory.mktemp("studies")
    (folder / "digits.yaml").write_text(study_text("digits-study"))
    (folder / "closed.yaml").write_text(study_text("closed-study", digits=(2, 3)))
    reads = study_text("reads-study", digits=(1, 4)).replace("[partition, kernel, none]", "[kernel]")
    (folder / "reads.yaml").write_text(reads.replace("instructions:", "read_first: true\ninstructions:"))
    for name in ("digits.yaml", "reads.yaml"):
        studies.precompute(studies.load_study(folder / name), ExplanationCache(), load=lambda name: digits_model)
    return folder


@pytest.fixture
def env(studies_dir, tmp_path, monkeypatch) -> Path:
    """Each test gets its own answer store; the studies are shared."""
    monkeypatch.setenv("EXPLAINERS_STUDIES_DIR", str(studies_dir))
    monkeypatch.setenv("EXPLAINERS_STUDY_DIR", str(tmp_path))
    monkeypatch.delenv(studies.PASSWORD_ENV, raising=False)
    return tmp_path / "studies.sqlite3"


def open_link(**params: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=120)
    for key, value in params.items():
        app.query_params[key] = value
    return app.run()


def page_text(app: AppTest) -> str:
    texts: list[ElementList[Element]] = [
        app.title,
        app.header,
        app.subheader,
        app.markdown,
        app.caption,
        app.info,
        app.success,
        app.warning,
        app.error,
    ]
    parts = [element.value for elements in texts for element in elements]
    widgets: list[WidgetList[Widget]] = [app.radio, app.button, app.text_area, app.text_input, app.number_input]
    for elements in widgets:
        parts += [str(element.label) for element in elements]
    parts += [str(option) for radio in app.radio for option in radio.options]
    parts += [visible_text(panel.proto.body) for panel in app.get("html")]
    parts += [element.proto.label for element in app.get("expander")]
    return "\n".join(parts)


def answer_trial(app: AppTest, right: bool = True) -> AppTest:
    """Answers the trial on screen (forward simulation, confidence, trust when asked) and submits."""
    position = store_position(app)
    forward = app.radio(key=f"study_q_{position}_forward")
    forward.set_value(forward.options[0])
    app.radio(key=f"study_q_{position}_confidence").set_value(5)
    trust = [radio for radio in app.radio if radio.key == f"study_q_{position}_trust"]
    if trust:
        trust[0].set_value(6)
    app.text_area(key=f"study_q_{position}_comment").input("fine")
    return app.button[[b.label for b in app.button].index("Submit and continue")].click().run()


def store_position(app: AppTest) -> int:
    keys = [radio.key for radio in app.radio if radio.key and radio.key.endswith("_forward")]
    assert len(keys) == 1, keys
    return int(keys[0].split("_")[2])


def answers_in(database: Path) -> list[tuple]:
    with sqlite3.connect(database) as db:
        return db.execute("SELECT participant, position, question, value FROM answers ORDER BY position").fetchall()


def consent(app: AppTest) -> AppTest:
    return app.button(key="study_consent").click().run()


def test_the_link_shows_consent_and_nothing_of_the_researcher(env) -> None:
    app = open_link(study="digits-study")
    assert not app.exception, app.exception
    assert "Please agree to take part" in page_text(app)
    assert len(app.sidebar) == 0  # no model or image pickers, no navigation menu
    assert not [box for box in app.selectbox if box.key == "model_name"]
    assert not app.get("html")  # nothing shown before consent


def test_declining_ends_politely_and_records_nothing(env) -> None:
    app = open_link(study="digits-study")
    app.button(key="study_decline").click().run()
    assert "You have not taken part" in page_text(app)
    assert studies.StudyStore(env).participants("digits-study") == []


def test_consenting_shows_trial_one_blinded_and_submitting_stores_it_and_moves_on(env) -> None:
    app = consent(open_link(study="digits-study"))
    assert not app.exception, app.exception
    store = studies.StudyStore(env)
    [participant] = store.participants("digits-study")
    assert app.query_params["pid"] == [participant.id] or app.query_params["pid"] == participant.id
    text = page_text(app)
    assert participant.id in text and "Image 1 of 3" in text
    assert store_position(app) == 0
    for word in METHOD_WORDS:
        assert word.lower() not in text.lower(), f"the page names the method: {word}"
    planned = participant.plan[0]
    assert len(app.get("html")) == (2 if planned.explained else 1)  # image, and the map unless control
    assert bool([r for r in app.radio if r.key == "study_q_0_trust"]) == planned.explained

    app = answer_trial(app)
    assert not app.exception, app.exception
    stored = answers_in(env)
    assert {row[2] for row in stored} == (
        {"forward", "confidence", "trust", "comment"} if planned.explained else {"forward", "confidence", "comment"}
    )
    assert all(row[:2] == (participant.id, 0) for row in stored)
    assert "Image 2 of 3" in page_text(app) and store_position(app) == 1
    seconds = studies.StudyStore(env).answer_rows("digits-study")[0]["seconds"]
    assert seconds is not None and seconds >= 0


def test_an_unanswered_question_is_refused_and_nothing_is_stored(env) -> None:
    app = consent(open_link(study="digits-study"))
    app = app.button[[b.label for b in app.button].index("Submit and continue")].click().run()
    assert "Please answer" in " ".join(e.value for e in app.error)
    assert answers_in(env) == []


def test_a_new_session_with_the_id_in_the_link_resumes_where_it_stopped(env) -> None:
    answer_trial(answer_trial(consent(open_link(study="digits-study"))))
    [participant] = studies.StudyStore(env).participants("digits-study")

    again = open_link(study="digits-study", pid=participant.id.lower())  # a reload: the session is gone
    assert not again.exception, again.exception
    assert "Image 3 of 3" in page_text(again) and store_position(again) == 2
    again = answer_trial(again)
    assert "Thank you for taking part" in page_text(again)
    assert studies.StudyStore(env).progress(participant.id).finished
    assert "Thank you for taking part" in page_text(open_link(study="digits-study", pid=participant.id))


def test_typing_the_id_resumes(env) -> None:
    answer_trial(consent(open_link(study="digits-study")))
    [participant] = studies.StudyStore(env).participants("digits-study")
    fresh = open_link(study="digits-study")
    fresh.text_input(key="study_resume_id").input(participant.id[:4] + "-" + participant.id[4:].lower())
    fresh.button(key="study_resume").click().run()
    assert "Image 2 of 3" in page_text(fresh)


def test_a_study_that_is_not_precomputed_is_not_open(env) -> None:
    app = open_link(study="closed-study")
    assert not app.exception, app.exception
    assert "not open yet" in page_text(app)
    assert not app.button and not app.get("html")


def results_page(password: str | None = None) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=120)
    # Straight to the results page: a first run would open Explain, whose explanation the session's jobs wait for.
    app.switch_page("app_pages/study_results.py").run()
    if password is not None:
        app.text_input(key="study_password").input(password).run()
    return app


def test_results_are_locked_without_a_password(env) -> None:
    app = results_page()
    assert not app.exception, app.exception
    assert "STUDY_RESULTS_PASSWORD" in page_text(app) and not app.text_input


def test_results_refuse_a_wrong_password_and_open_with_the_right_one(env, monkeypatch) -> None:
    answer_trial(answer_trial(consent(open_link(study="digits-study"))))
    monkeypatch.setenv(studies.PASSWORD_ENV, "s3cret")
    wrong = results_page("guess")
    assert "wrong" in page_text(wrong) and not wrong.get("html")

    app = results_page("s3cret")
    assert not app.exception, app.exception
    app.selectbox(key="study_results_study").set_value("digits-study").run()
    text = page_text(app)
    assert "?study=digits-study" in " ".join(code.value for code in app.code)
    assert "are ready" in text
    assert len(app.get("plotly_chart")) == 4  # completion, answers, accuracy, time
    assert app.get("download_button")

    app.selectbox(key="study_results_study").set_value("closed-study").run()
    assert any("study precompute" in code.value and "closed.yaml" in code.value for code in app.code)


def test_read_first_shows_the_image_alone_until_the_read_is_stored(env) -> None:
    app = consent(open_link(study="reads-study"))
    assert not app.exception, app.exception
    assert len(app.get("html")) == 1 and "Your own read first" in page_text(app)  # the image alone
    assert not [radio for radio in app.radio if radio.key == "study_q_0_trust"]
    app.radio(key="study_q_0_forward").set_value(app.radio(key="study_q_0_forward").options[0])
    app.radio(key="study_q_0_confidence").set_value(2)
    app = app.button[[b.label for b in app.button].index("Record my read")].click().run()
    assert not app.exception, app.exception
    assert {row[2] for row in answers_in(env)} == {"forward", "confidence"}  # kept before the map is seen
    assert len(app.get("html")) == 2 and "Image 1 of 2" in page_text(app)  # now the explanation
    assert not [radio for radio in app.radio if radio.key == "study_q_0_forward"]
    app.radio(key="study_q_0_trust").set_value(6)
    app = app.button[[b.label for b in app.button].index("Submit and continue")].click().run()
    assert "Image 2 of 2" in page_text(app) and len(app.get("html")) == 1
    assert {row[2] for row in answers_in(env) if row[1] == 0} == {"forward", "confidence", "trust"}
