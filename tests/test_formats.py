"""Every format of explainers.formats' registry, by looping over it: a file of it decodes under each of its
extensions, and the uploaders offer those extensions. A format added to the registry is tested here by itself
(a scan format needs a sample in SCAN_SAMPLES)."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from explainers import formats
from explainers.dicom import read_scan
from explainers.images import ImageError, load_image

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
FILES = Path(pydicom.__file__).parent / "data" / "test_files"
SCAN_SAMPLES = {"DICOM": FILES / "MR_small.dcm"}  # PIL writes pictures; a scan format brings its own file


def picture(fmt: formats.InputFormat) -> tuple[bytes, np.ndarray]:
    """A 48×40 gradient in ``fmt`` (written by PIL under its first PIL name), and the pixels written."""
    y, x = np.mgrid[0:40, 0:48]
    rgb = np.stack([x * 5, y * 6, (x + y) * 3], axis=2).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt.pil_formats[0])
    return buffer.getvalue(), rgb


def names(fmt: formats.InputFormat) -> list[str]:
    return [f"sample.{extension}" for extension in fmt.extensions] + [f"SAMPLE.{fmt.extensions[0].upper()}"]


@pytest.mark.parametrize("fmt", formats.FORMATS, ids=lambda fmt: fmt.name)
def test_a_file_of_each_format_decodes_under_each_of_its_extensions(fmt: formats.InputFormat) -> None:
    if fmt.scan:
        assert fmt.name in SCAN_SAMPLES, f"add a {fmt.name} file to SCAN_SAMPLES"
        data = SCAN_SAMPLES[fmt.name].read_bytes()
        expected = read_scan(SCAN_SAMPLES[fmt.name]).image().digest
        for name in names(fmt):
            image = load_image(data, name=name)
            assert image.digest == expected and image.modality is not None, name
        return
    data, rgb = picture(fmt)
    for name in names(fmt):
        image = load_image(data, name=name)
        assert image.pixels.shape == rgb.shape, name
        # lossy formats (JPEG, WebP) come back close, lossless ones exact
        assert np.abs(image.pixels.astype(int) - rgb).mean() < 4, name


def test_the_registry_is_consistent() -> None:
    extensions = formats.extensions()
    assert len(set(extensions)) == len(extensions), "an extension belongs to one format"
    assert all(ext == ext.lower() and not ext.startswith(".") for ext in extensions)
    assert all(bool(fmt.pil_formats) != fmt.scan for fmt in formats.FORMATS), "a picture has PIL names, a scan none"


def test_a_picture_of_another_format_is_refused_naming_every_picture_format() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="GIF")
    with pytest.raises(ImageError) as refused:
        load_image(buffer.getvalue(), name="x.gif")
    assert all(fmt.name in str(refused.value) for fmt in formats.pictures())


def wait_for_the_warm_up() -> None:
    """The app warms the job engine in the background (a model load, numba's first compile, in this process's
    worker threads); a test process that exits in the middle of it aborts, so a quick AppTest waits for it."""
    from jobs.engine import ENGINES

    for thread in threading.enumerate():
        if thread.name == "warm-engine":
            thread.join(300)
    deadline = time.monotonic() + 300
    for engine in list(ENGINES):
        client = engine._client  # None: no cluster was started, nothing to wait for
        while client is not None and any(client.processing().values()) and time.monotonic() < deadline:
            time.sleep(0.2)


def allowed(uploader) -> set[str]:
    return {extension.lstrip(".") for extension in uploader.allowed_type}


@pytest.fixture
def app():
    """The app from app.py; after the test, its job engine's warm-up is waited for."""
    try:
        yield AppTest.from_file(APP, default_timeout=240)
    finally:
        wait_for_the_warm_up()


def test_the_uploaders_offer_every_extension_of_the_registry(app: AppTest) -> None:
    """What the pages really show: the sidebar's uploader (label and accepted types), and the Scans page's."""
    app.session_state["model_name"] = "digits_cnn"
    app.session_state["image_source"] = "Upload"
    app.run()
    assert not app.exception, app.exception
    [uploader] = app.sidebar.file_uploader
    assert set(formats.extensions()) <= allowed(uploader)
    assert all(fmt.name in uploader.label for fmt in formats.FORMATS), uploader.label

    app.session_state["worklist_source"] = "Files or a zip"
    app.switch_page("app_pages/scans.py").run()
    assert not app.exception, app.exception
    [scans] = [found for found in app.file_uploader if found.accept_multiple_files]
    assert set(formats.extensions()) | {"zip"} <= allowed(scans)
    assert all(fmt.name in scans.label for fmt in formats.FORMATS), scans.label
