"""The out-of-domain check, measured on what ships: every bundled MRI and every DICOM MR in pydicom's wheel passes
the tumour model's check, every bundled photo is flagged; other modalities are named; digits pass the digits
model's check and photos do not; the photo models flag scans. And the warning stands beside the verdict."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from streamlit.testing.v1 import AppTest

from explainers.dicom import read_scan
from explainers.domain import domain_warning
from explainers.images import load_image

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "assets" / "samples"
DICOM = Path(pydicom.__file__).parent / "data" / "test_files"
MRIS = sorted((SAMPLES / "mri").glob("*.jpg"))
PHOTOS = sorted((SAMPLES / "photos").glob("*.png"))
DIGITS = sorted((SAMPLES / "digits").glob("*.png"))
# Every DICOM MR pydicom ships that decodes here (its transfer syntaxes, and an MR with an overlay).
DICOM_MRS = [
    "MR_small.dcm",
    "MR_small_implicit.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_expb.dcm",
    "MR_small_RLE.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "MR_small_padded.dcm",
    "examples_overlay.dcm",
]


def test_every_bundled_mri_and_dicom_mr_passes_and_every_photo_is_flagged() -> None:
    assert len(MRIS) == 13 and len(PHOTOS) == 4
    passed = [path.name for path in MRIS if domain_warning(load_image(path), "mri") is None]
    assert passed == [path.name for path in MRIS]
    for name in DICOM_MRS:
        image = read_scan(DICOM / name).image()
        assert image.modality == "MR"
        assert domain_warning(image, "mri") is None, name
    for path in PHOTOS:
        warning = domain_warning(load_image(path), "mri")
        assert warning is not None and "colour" in warning, path.name


def test_a_ct_scan_is_named_as_such_for_the_mri_model() -> None:
    warning = domain_warning(read_scan(DICOM / "CT_small.dcm").image(), "mri")
    assert warning is not None and "a CT scan" in warning and "not an MRI" in warning


def test_a_greyscale_picture_without_a_dark_background_is_flagged() -> None:
    grey = load_image(SAMPLES / "photos" / "chelsea.png").pixels.mean(axis=2, keepdims=True).repeat(3, axis=2)
    from explainers.images import InputImage

    warning = domain_warning(InputImage.from_pixels(grey), "mri")
    assert warning is not None and "dark background" in warning


@pytest.mark.parametrize(
    "kind, paths, flagged",
    [
        ("drawing", DIGITS, False),
        ("drawing", PHOTOS, True),
        ("photo", PHOTOS, False),
        ("photo", MRIS, True),
        ("photo", DIGITS, True),
    ],
)
def test_digits_and_photos_models_check_their_own_domain(kind: str, paths: list[Path], flagged: bool) -> None:
    assert paths
    for path in paths:
        assert (domain_warning(load_image(path), kind) is not None) == flagged, path.name


def test_a_photo_given_to_the_tumour_model_is_flagged_beside_its_verdict() -> None:
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240)
    app.session_state["model_name"] = "brain_tumor_vgg16"
    app.session_state["sample_mri"] = "photos/astronaut"
    app.run()
    assert not app.exception, app.exception
    warnings = " ".join(w.value for w in app.warning)
    assert "in colour" in warnings and "means nothing" in warnings
    assert "For research use only; not a diagnosis." in " ".join(c.value for c in app.caption)
    # The warning first, then the verdict muted: no bold "says **…**" a reader would take for a finding.
    markdown = "\n".join(m.value for m in app.markdown)
    assert "says " in markdown and "but this input is not what it was trained on" in markdown
    assert "says **" not in markdown
    order = [str(getattr(element, "value", "")) for element in app.main]  # the page's elements, top to bottom
    assert min(i for i, v in enumerate(order) if "in colour" in v) < min(
        i for i, v in enumerate(order) if "not what it was trained on" in v
    )
    app.session_state["sample_mri"] = "mri/Te-no_0021"
    app.run()
    assert not app.warning, [w.value for w in app.warning]
    assert "says **no tumour**" in "\n".join(m.value for m in app.markdown)
