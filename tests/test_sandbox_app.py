"""The dashboard survives a DICOM upload that aborts its decoder: the uploader gets one sentence, and the same
server process then serves the next page and the next upload normally (the decoding child died, not the app)."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from pydicom import config
from streamlit.testing.v1 import AppTest

from explainers import sandbox

FILES = Path(pydicom.__file__).parent / "data" / "test_files"
ROOT = Path(__file__).resolve().parents[1]


def aborting_dicom() -> bytes:
    """pydicom's SC_rgb_jpeg_gdcm.dcm with BitsAllocated 32: python-gdcm throws a C++ exception on it that aborts
    its process (SIGABRT)."""
    config.settings.writing_validation_mode = config.IGNORE
    dataset = pydicom.dcmread(FILES / "SC_rgb_jpeg_gdcm.dcm")
    dataset.BitsAllocated = 32
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=False)
    return buffer.getvalue()


@pytest.fixture
def unguarded_decoders(monkeypatch: pytest.MonkeyPatch):
    """Decoders without the codestream checks that refuse this file before gdcm sees it, so it really aborts."""
    monkeypatch.setenv("EXPLAINERS_DICOM_PRECHECKS", "0")
    monkeypatch.setattr(sandbox, "_pool", None)
    yield
    if sandbox._pool is not None:
        sandbox._pool.close()


def test_an_aborting_upload_is_one_sentence_and_the_next_page_works(unguarded_decoders) -> None:
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240)
    app.session_state["model_name"] = "digits_cnn"
    app.session_state["image_source"] = "Upload"
    app.run()
    app.sidebar.file_uploader[0].set_value(("Smith_John.dcm", aborting_dicom(), "application/dicom"))
    app.run()
    assert not app.exception, app.exception
    warnings = [warning.value for warning in app.sidebar.warning]
    assert sandbox.STOPPED in warnings, warnings
    assert sandbox.pool().last_stop == "signal 6" and sandbox.pool().replaced == 1
    assert "Smith" not in " ".join(warnings)
    # The same process goes on: the Gallery page, then a good upload decodes and gets its verdict.
    app.switch_page("app_pages/gallery.py").run()
    assert not app.exception, app.exception
    app.switch_page("app_pages/explain.py").run()
    app.sidebar.file_uploader[0].set_value(("scan.dcm", (FILES / "MR_small.dcm").read_bytes(), "application/dicom"))
    app.run()
    assert not app.exception and not app.sidebar.warning, [w.value for w in app.sidebar.warning]
    # (An MR given to the digits model: its verdict muted, after the out-of-domain warning.)
    assert any("Handwritten digits (small CNN) says" in markdown.value for markdown in app.markdown)
