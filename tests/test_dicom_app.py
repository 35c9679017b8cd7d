"""DICOM in the dashboard and on the command line: an uploaded scan gets its verdict at once (the tumour model
explains on request), a multi-frame scan a slice slider, a broken one a sentence, and nothing from the header
is ever shown."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pydicom
from streamlit.testing.v1 import AppTest

FILES = Path(pydicom.__file__).parent / "data" / "test_files"
ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TUMOUR = "brain_tumor_vgg16"


def page_text(app: AppTest) -> str:
    parts = [m.value for m in app.markdown] + [c.value for c in app.caption] + [i.value for i in app.info]
    parts += [e.value for e in app.error] + [w.value for w in app.warning]
    parts += [str(box.value) for box in app.selectbox] + [panel.proto.body for panel in app.get("html")]
    return "\n".join(parts)


def upload(name: str, data: bytes, model: str = TUMOUR, **state) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=240)
    app.session_state["model_name"] = model
    app.session_state["image_source"] = "Upload"
    app.session_state["budget_partition"] = 20
    for key, value in state.items():
        app.session_state[key] = value
    app.run()
    app.sidebar.file_uploader[0].set_value((name, data, "application/dicom"))
    return app.run()


def test_an_uploaded_mri_gets_its_verdict_at_once_and_explains_on_request() -> None:
    from jobs.engine import ENGINES

    app = upload("Smith_John.dcm", (FILES / "MR_small.dcm").read_bytes())
    assert not app.exception, app.exception
    text = page_text(app)
    assert "says **" in text and "scan " in text
    # The tumour model waits for the button: no job was started for the scan.
    assert not [job for engine in ENGINES for job in engine.pending() if job.request.model == TUMOUR]
    assert any(button.label == "Compute" for button in app.button)
    assert [box.value for box in app.sidebar.selectbox if box.key == "scan_window"] == ["the file's own"]
    dataset = pydicom.dcmread(FILES / "MR_small.dcm")
    for value in (str(dataset.PatientName), str(dataset.PatientID), "Smith", str(dataset.StudyDate)):
        assert value not in text, f"the page shows {value!r}"
    next(button for button in app.button if button.label == "Compute").click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert len([panel for panel in app.get("html") if 'class="sx-hover' in panel.proto.body]) == 3


def test_a_multi_frame_scan_has_a_slice_slider() -> None:
    app = upload(
        "cine.dcm", (FILES / "examples_ybr_color.dcm").read_bytes(), model="digits_cnn", auto_compute_digits=False
    )
    assert not app.exception, app.exception
    [slider] = [s for s in app.sidebar.slider if s.key == "scan_slice"]
    assert slider.max == 30 and "frame 1 of 30" in page_text(app)
    slider.set_value(30).run()
    assert not app.exception and "frame 30 of 30" in page_text(app)


def test_a_png_renamed_dcm_gets_one_sentence() -> None:
    app = upload("scan.dcm", (ROOT / "assets" / "samples" / "photos" / "chelsea.png").read_bytes())
    assert not app.exception, app.exception
    assert "is not a DICOM file" in " ".join(i.value for i in app.info)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "explainers", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_the_command_line_predicts_a_dicom_file_and_a_chosen_frame() -> None:
    result = run_cli("predict", "--model", TUMOUR, "--image", str(FILES / "MR_small.dcm"))
    assert result.returncode == 0, result.stderr
    verdict = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(verdict["labels"]) == 3 and abs(sum(verdict["probs"]) - 1) < 0.2
    first = run_cli("predict", "--model", "digits_cnn", "--image", str(FILES / "examples_ybr_color.dcm"))
    last = run_cli(
        "predict", "--model", "digits_cnn", "--image", str(FILES / "examples_ybr_color.dcm"), "--frame", "30"
    )
    assert first.returncode == last.returncode == 0, (first.stderr, last.stderr)
    beyond = run_cli(
        "predict", "--model", "digits_cnn", "--image", str(FILES / "examples_ybr_color.dcm"), "--frame", "31"
    )
    assert beyond.returncode != 0 and "30 frames; there is no frame 31" in beyond.stderr
    truncated = run_cli("predict", "--model", TUMOUR, "--image", str(FILES / "MR_truncated.dcm"))
    assert truncated.returncode != 0 and "truncated or damaged" in truncated.stderr
    assert "Traceback" not in truncated.stderr + beyond.stderr
