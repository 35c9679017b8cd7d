"""The second reader (issue 34, item 5): in "read first" mode a worklist scan opens with the image alone, the
verdict and the way to its maps appear only once the reader has recorded a read, and the reads are kept with no
patient data, compared with the model (agreement and Cohen's κ) and exported as CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from sklearn.metrics import cohen_kappa_score
from streamlit.testing.v1 import AppTest

from models import get_spec
from studies.reads import EXPORT_COLUMNS, ReadError, ReadStore, agreement, reads_csv

ROOT = Path(__file__).resolve().parents[1]
TUMOUR = "brain_tumor_vgg16"
CLASSES = ("glioma", "meningioma", "notumor", "pituitary")


def keep(store: ReadStore, digest: str, read: str, model: str, label: str | None = None, reader: str = "A") -> None:
    store.record(
        reader=reader,
        model=TUMOUR,
        digest=digest,
        read_class=read,
        confidence=4,
        classes=CLASSES,
        model_class=model,
        model_probability=0.9,
        label=label,
        in_domain=True,
    )


def test_reads_are_kept_once_compared_with_the_model_and_exported(tmp_path) -> None:
    store = ReadStore(tmp_path / "reads.sqlite3")
    pairs = [("glioma", "glioma"), ("meningioma", "glioma"), ("notumor", "notumor"), ("pituitary", "pituitary")]
    for number, (read, model) in enumerate(pairs):
        keep(store, f"d{number}", read, model, label=model if number < 3 else None)
    keep(store, "d0", "pituitary", "glioma")  # a second read of a seen scan does not replace the first
    reads = store.reads("A", TUMOUR)
    assert [read.read_class for read in reads] == [read for read, _ in pairs]
    found = agreement(reads)
    assert (found.reads, found.agree, found.labelled, found.reader_correct, found.model_correct) == (4, 3, 3, 2, 3)
    expected = cohen_kappa_score([read for read, _ in pairs], [model for _, model in pairs])
    assert found.kappa == pytest.approx(expected)
    assert found.sentence().startswith("The model agrees with 3 of 4 reads (75%; Cohen's κ")
    assert store.reads("B", TUMOUR) == [] and agreement([]).sentence() == "No reads recorded yet."
    rows = list(csv.DictReader(io.StringIO(reads_csv(reads))))
    assert tuple(rows[0]) == EXPORT_COLUMNS and len(rows) == 4
    assert rows[1]["scan"] == "d1" and rows[1]["agrees_with_model"] == "0" and rows[3]["label"] == ""


def test_a_read_without_a_class_is_one_sentence(tmp_path) -> None:
    store = ReadStore(tmp_path / "reads.sqlite3")
    with pytest.raises(ReadError, match=r"^Choose what you see in the scan before recording your read\.$"):
        keep(store, "d", None, "glioma")  # type: ignore[arg-type]  # what an unanswered radio sends
    assert store.reads() == []


def test_read_first_shows_the_image_alone_then_the_verdict_and_keeps_the_read() -> None:
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    app.session_state["model_name"] = TUMOUR
    app.session_state["worklist_read_first"] = True
    app.session_state["reader_name"] = "Dr Second"
    app.switch_page("app_pages/scans.py").run()
    assert not app.exception, app.exception
    [frame] = app.dataframe
    rows = frame.value.to_dict("records")
    assert len(rows) == 13
    # Nothing on the list gives a verdict away: no verdict, confidence, label or agreement before a read.
    assert all(not row[name] for row in rows for name in ("verdict", "confidence", "label", "agrees"))
    assert "#" not in rows[0]  # the file order (often grouped by class) is not shown
    assert not any(button.label.startswith("Open scan") for button in app.button)

    app.session_state["worklist_table"] = {"selection": {"rows": [2], "columns": []}}
    app.run()
    shown = " ".join(m.value for m in app.markdown)
    assert "Your read first" in shown and " says " not in shown  # the image alone, and the read's form
    assert not any(button.label.startswith("Open scan") for button in app.button)
    record = next(button for button in app.button if button.label == "Record my read")
    record.click().run()  # without a class
    assert "Choose what you see in the scan before recording your read." in [e.value for e in app.error]

    app.radio(key="read_class").set_value("meningioma")
    app.select_slider(key="read_confidence").set_value(4)
    record = next(button for button in app.button if button.label == "Record my read")
    record.click().run()
    assert not app.exception, app.exception
    shown = " ".join(m.value for m in app.markdown)
    assert "You read **meningioma** (4 of 5: sure)" in shown and " says " in shown
    assert any(button.label.startswith("Open scan") for button in app.button)  # now its maps can be opened
    row = app.dataframe[0].value.to_dict("records")[2]
    assert row["your read"] == "meningioma" and row["verdict"] in get_spec(TUMOUR).class_titles
    assert "The model agrees with 1 of 1 read (100%)" in shown or "The model agrees with 0 of 1 read (0%)" in shown

    [kept] = [read for read in ReadStore().reads("Dr Second", TUMOUR)]
    assert kept.read_class == "meningioma" and kept.confidence == 4 and kept.label in CLASSES
    assert row["scan"] == f"scan {kept.digest[:8]}"  # the scan is named by its pixels' digest only
    # No patient data: the file names (and the bundled files' label-bearing names) are nowhere in the store.
    stored = ReadStore().path.read_bytes()
    assert b"Te-" not in stored and b".jpg" not in stored


READ_FIRST_STUDY = """\
id: reads
title: Read first
consent: You agree.
read_first: true
conditions: [kernel, none]
randomisation: {design: within, order: fixed, seed: 1}
trials:
  - {id: d3, model: digits_cnn, image: assets/samples/digits/digit_3.png, method: kernel}
  - {id: d4, model: digits_cnn, image: assets/samples/digits/digit_4.png, method: none}
"""


def test_a_read_first_study_stores_the_read_before_the_explanation(tmp_path) -> None:
    import studies
    from studies import AnswerError, StudyStore, TrialFacts, parse_study
    from studies.facts import StudyFacts

    study = parse_study(READ_FIRST_STUDY, name="reads.yaml", folder=ROOT, verify=False)
    assert study.read_first
    facts = StudyFacts(
        study.id,
        study.digest,
        {
            trial.id: TrialFacts(
                trial.id,
                trial.model,
                "w",
                f"i{trial.id}",
                int(trial.id[1]),
                trial.id[1],
                0.9,
                int(trial.id[1]),
                trial.id[1],
                False,
                tuple("0123456789"),
                False,
                {c: f"key-{trial.id}-{c}" for c in study.conditions_for(trial) if c != studies.NO_EXPLANATION},
            )
            for trial in study.trials
        },
    )
    store = StudyStore(tmp_path / "s.sqlite3")
    participant = store.create_participant(study, facts)
    shown, control = participant.plan
    assert shown.explained and not control.explained
    assert [q.id for q in studies.questions_for(study, shown, "read")] == ["forward", "confidence"]
    assert [q.id for q in studies.questions_for(study, shown, "rest")] == ["trust", "comment"]
    with pytest.raises(AnswerError, match="record your own read of the image first"):
        store.record_trial_answers(study, participant.id, 0, {"trust": 5})
    store.record_read(study, participant.id, 0, {"forward": "3", "confidence": 6})
    assert store.read_recorded(participant.id, 0)
    store.record_read(study, participant.id, 0, {"forward": "8", "confidence": 1})  # the first read stays
    store.record_trial_answers(study, participant.id, 0, {"trust": 5})
    # The no-explanation control has nothing to hide: its questions are asked at once.
    assert studies.questions_for(study, control, "read") == ()
    store.record_trial_answers(study, participant.id, 1, {"forward": "4", "confidence": 3})
    answers = {(row["trial_id"], row["question"]): row["value"] for row in store.answer_rows(study.id)}
    assert answers == {
        ("d3", "forward"): "3",
        ("d3", "confidence"): "6",
        ("d3", "trust"): "5",
        ("d4", "forward"): "4",
        ("d4", "confidence"): "3",
    }


def test_read_first_needs_a_question_asked_before_the_explanation() -> None:
    from studies import StudyError, parse_study

    text = READ_FIRST_STUDY + "questions:\n  - trust\n"
    with pytest.raises(StudyError, match="read_first is true but no question is asked before the explanation"):
        parse_study(text, name="reads.yaml", folder=ROOT, verify=False)
