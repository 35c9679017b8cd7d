"""The Scans page's worklist: the bundled MRIs with their verdicts and labels, filters, opening a scan (and the
next one) on the other pages, uploads of DICOM files and zips (one numbered row per frame, what was left out
stated), "explain all" on the job engine, and no way out of the server's scan folder. Zips at scale and hostile
ones: tests/test_worklist_zips.py."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pydicom
import pytest
from streamlit.testing.v1 import AppTest

from explainers.worklist import WorklistError
from explainers.worklist_sources import inside
from models import get_spec

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
FILES = Path(pydicom.__file__).parent / "data" / "test_files"
MRI = ROOT / "assets" / "samples" / "mri"
TUMOUR = "brain_tumor_vgg16"


def scans_page(model: str = TUMOUR, **state) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=300)
    app.session_state["model_name"] = model
    for key, value in state.items():
        app.session_state[key] = value
    app.switch_page("app_pages/scans.py")
    return app.run()


def table(app: AppTest) -> list[dict]:
    [frame] = app.dataframe
    return frame.value.to_dict("records")


def test_the_bundled_mris_are_listed_with_verdicts_labels_and_agreement() -> None:
    app = scans_page()
    assert not app.exception, app.exception
    rows = table(app)
    assert len(rows) == len(list(MRI.glob("*.jpg"))) == 13
    names = set(get_spec(TUMOUR).class_titles)  # in words: "no tumour", not "notumor"
    assert all(row["verdict"] in names and 0 < row["confidence"] <= 1 for row in rows)
    assert all(row["label"] in names and row["agrees"] in ("✓", "✗") for row in rows)
    assert {row["label"] for row in rows} == {"glioma", "meningioma", "no tumour", "pituitary tumour"}
    assert all(row["in domain"] == "✓" for row in rows) and not app.warning  # every bundled MRI passes
    assert all(row["scan"].startswith("scan ") and row["thumbnail"].startswith("data:image/") for row in rows)
    agree = sum(row["agrees"] == "✓" for row in rows)
    assert f"{agree} of 13 labelled ones agree" in app.markdown[0].value and agree >= 10
    app.toggle(key="worklist_disagrees").set_value(True).run()
    assert all(row["agrees"] == "✗" for row in table(app)) and len(table(app)) == 13 - agree


def test_a_second_visit_lists_the_verdicts_from_the_cache(monkeypatch) -> None:
    from models.classifier import Classifier

    scans_page()

    def no_model(*args, **kwargs):
        raise AssertionError("the worklist ran the model for a cached verdict")

    monkeypatch.setattr(Classifier, "predict", no_model)
    app = scans_page()
    assert not app.exception, app.exception
    assert len(table(app)) == 13


def test_opening_a_scan_shows_it_on_the_other_pages_with_previous_and_next() -> None:
    app = scans_page()
    rows = table(app)
    app.session_state["worklist_table"] = {"selection": {"rows": [2], "columns": []}}
    app.run()
    open_button = next(button for button in app.button if button.label.startswith("Open scan"))
    open_button.click().run()
    assert not app.exception, app.exception
    assert app.session_state["image_source"] == "Scans"
    assert "Compare methods · " in app.header[0].value
    app.switch_page("app_pages/explain.py").run()
    assert (
        rows[2]["scan"] in " ".join(m.value for m in app.markdown) + " ".join(c.value for c in app.caption)
        or app.session_state["worklist_index"] == 2
    )
    app.button(key="scan_next").click().run()
    assert not app.exception and app.session_state["worklist_index"] == 3
    assert f"the file name says **{rows[3]['label']}**" in " ".join(m.value for m in app.markdown)


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_uploaded_dicom_files_and_a_zip_are_listed_and_a_broken_one_says_why() -> None:
    app = scans_page(worklist_source="Files or a zip")
    archive = zip_of(
        {
            "glioma/a.jpg": (MRI / "Te-gl_0010.jpg").read_bytes(),
            "glioma/b.jpg": (MRI / "Te-gl_0011.jpg").read_bytes(),
            "../evil.jpg": b"nope",
        }
    )
    uploader = app.file_uploader[0]
    uploader.set_value(
        [
            ("MR_small.dcm", (FILES / "MR_small.dcm").read_bytes(), "application/dicom"),
            ("CT_small.dcm", (FILES / "CT_small.dcm").read_bytes(), "application/dicom"),
            ("scans.zip", archive, "application/zip"),
            ("fake.dcm", (ROOT / "assets" / "samples" / "photos" / "chelsea.png").read_bytes(), "application/dicom"),
        ]
    )
    app.run()
    assert not app.exception, app.exception
    rows = table(app)
    assert len(rows) == 5 and [row["#"] for row in rows] == [1, 2, 3, 4, 5]
    assert "1 entry with a path leading outside the zip was skipped." in app.warning[-1].value
    assert sum(row["label"] == "glioma" for row in rows) == 2  # from the folder name inside the zip
    assert any("not a DICOM file" in str(row["verdict"]) for row in rows)
    # The CT is flagged out of the MRI model's domain, by its modality; the MRs and the JPEGs are in it.
    assert [row["in domain"] for row in rows].count("⚠ no") == 1
    assert sum("not its domain" in str(row["verdict"]) for row in rows) == 1  # its verdict muted
    assert "1 of 4 scans do not look like the model's domain" in app.warning[0].value
    assert "a CT scan" in app.warning[0].value
    text = " ".join(str(value) for row in rows for value in row.values())
    assert "MR_small" not in text and str(pydicom.dcmread(FILES / "MR_small.dcm").PatientName) not in text


def test_explain_all_computes_every_missing_comparison(monkeypatch, tmp_path) -> None:
    digits = tmp_path / "digits"
    digits.mkdir()
    for n in (1, 7):
        (digits / f"digit_{n}.png").write_bytes(
            (ROOT / "assets" / "samples" / "digits" / f"digit_{n}.png").read_bytes()
        )
    monkeypatch.setenv("EXPLAINERS_SCANS_DIR", str(digits))
    app = scans_page("digits_cnn", compare_methods=["partition"], budget_partition=20)
    assert not app.exception, app.exception
    assert all(row["explained"] == "0 of 1" for row in table(app))
    app.button(key="worklist_explain_all").click().run()
    assert not app.exception, app.exception
    assert all(row["explained"] == "1 of 1" for row in table(app)), table(app)


def test_no_folder_outside_the_scan_folder_opens(tmp_path) -> None:
    (tmp_path / "inner").mkdir()
    assert inside(tmp_path, "inner") == (tmp_path / "inner").resolve()
    for escape in ("..", "../..", "/etc", "inner/../.."):
        with pytest.raises(WorklistError):
            inside(tmp_path, escape)


def test_a_multi_frame_upload_is_one_row_per_frame_and_opens_the_frame(tmp_path) -> None:
    app = scans_page("digits_cnn", worklist_source="Files or a zip", compare_methods=["partition"])
    data = (FILES / "SC_rgb_rle_2frame.dcm").read_bytes()
    app.file_uploader[0].set_value([("a.dcm", data, "application/dicom")])
    app.run()
    assert not app.exception, app.exception
    rows = table(app)
    assert [(row["#"], row["frame"]) for row in rows] == [(1, 1), (2, 2)]
    assert rows[0]["scan"] != rows[1]["scan"] and all(row["thumbnail"].startswith("data:image/") for row in rows)
    app.session_state["worklist_table"] = {"selection": {"rows": [1], "columns": []}}
    app.run()
    next(button for button in app.button if button.label.startswith("Open scan")).click().run()
    assert not app.exception, app.exception
    assert app.session_state["worklist_index"] == 1
    opened = app.session_state["_worklist"].load(1)
    assert opened.frame == 1 and opened.display_name.endswith("frame 2 of 2")
