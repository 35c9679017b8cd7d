"""DICOM scans on the files pydicom's wheel bundles (read from its installed folder, never fetched): every
transfer syntax of MR_small gives the same picture, CT through its rescale and a window, multi-frame files one
frame at a time, and every broken or non-image file one sentence without anything from its header."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut, apply_voi_lut, apply_windowing
from pydicom.uid import UID

from explainers.dicom import CT_PRESETS, DicomError, Window, is_dicom, linear_window, read_scan

FILES = Path(pydicom.__file__).parent / "data" / "test_files"
ROOT = Path(__file__).resolve().parents[1]
MR_SYNTAXES = [
    "MR_small.dcm",
    "MR_small_implicit.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_expb.dcm",
    "MR_small_RLE.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "MR_small_padded.dcm",
]
# Attributes of PS3.15 Annex E's Basic Profile that these files fill in.
IDENTIFYING = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "InstitutionName",
    "ReferringPhysicianName",
    "StudyDate",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "AccessionNumber",
)


def path(name: str) -> Path:
    found = FILES / name
    assert found.is_file(), f"pydicom's wheel no longer bundles {name}"
    return found


@pytest.mark.parametrize("name", MR_SYNTAXES)
def test_every_lossless_syntax_of_mr_small_gives_the_same_picture(name: str) -> None:
    reference = read_scan(path("MR_small.dcm")).image()
    scan = read_scan(path(name))
    image = scan.image()
    assert scan.modality == "MR" and (scan.rows, scan.columns, scan.frames) == (64, 64, 1)
    assert image.pixels.shape == (64, 64, 3) and image.pixels.dtype == np.uint8
    assert np.array_equal(image.pixels, reference.pixels) and image.digest == reference.digest
    assert image.display_name == f"scan {image.digest[:8]}"  # named by its pixels, never by the file


def test_the_files_own_window_is_pydicoms_voi_lut_and_mr_gets_an_automatic_window() -> None:
    scan = read_scan(path("MR_small.dcm"))
    [own, auto, *_] = scan.windows()
    assert own.name == "the file's own" and auto.name.startswith("automatic")
    dataset = pydicom.dcmread(path("MR_small.dcm"))
    expected = apply_voi_lut(apply_modality_lut(dataset.pixel_array, dataset), dataset)
    low, high = expected.min(), expected.max()
    shown = scan.image(window=own).pixels[..., 0].astype(float)
    assert np.corrcoef(shown.ravel(), expected.ravel())[0, 1] > 0.999 and shown.min() == 0 and shown.max() == 255
    assert low < high
    automatic = scan.image(window=auto).pixels[..., 0]
    # The automatic window clips the brightest and darkest half per cent.
    assert (automatic == 255).mean() <= 0.01 and (automatic == 0).mean() <= 0.5


def test_ct_goes_through_its_rescale_and_a_preset_matches_pydicoms_windowing() -> None:
    scan = read_scan(path("CT_small.dcm"))
    dataset = pydicom.dcmread(path("CT_small.dcm"))
    hounsfield = apply_modality_lut(dataset.pixel_array, dataset)
    assert np.allclose(scan.frame(0), hounsfield)  # rescale slope and intercept applied
    assert "soft tissue" in [w.name for w in scan.windows()]
    centre, width = CT_PRESETS["soft tissue"]
    ours = linear_window(hounsfield, centre, width)
    # pydicom's linear window onto 0-255 (a copy of the dataset with the preset as its window, 8 bits out).
    preset = pydicom.dcmread(path("CT_small.dcm"))
    preset.WindowCenter, preset.WindowWidth, preset.BitsStored = centre, width, 8
    preset.RescaleSlope, preset.RescaleIntercept, preset.PixelRepresentation = 1, 0, 0
    theirs = apply_windowing(hounsfield.astype(float), preset)
    assert np.abs(ours.astype(float) - theirs).max() <= 1.0
    assert np.array_equal(scan.image(window=Window("soft tissue", centre, width)).pixels[..., 0], ours)


def test_monochrome1_is_inverted(tmp_path: Path) -> None:
    dataset = pydicom.dcmread(path("MR_small.dcm"))
    dataset.PhotometricInterpretation = "MONOCHROME1"
    inverted = tmp_path / "inverted.dcm"
    dataset.save_as(inverted)
    window = Window("full range")
    normal = read_scan(path("MR_small.dcm")).image(window=window).pixels
    assert np.array_equal(read_scan(inverted).image(window=window).pixels, 255 - normal)


def test_multi_frame_files_decode_one_frame_at_a_time() -> None:
    scan = read_scan(path("examples_ybr_color.dcm"))
    assert scan.frames == 30 and scan.samples == 3
    first, last = scan.image(0), scan.image(29)
    assert first.pixels.shape == (240, 320, 3) and first.digest != last.digest
    assert "frame 30 of 30" in last.display_name
    with pytest.raises(DicomError, match="30 frames; there is no frame 31"):
        scan.image(30)
    dose = read_scan(path("rtdose.dcm"))
    assert dose.frames == 15 and not np.array_equal(dose.frame(0), dose.frame(7))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("MR_truncated.dcm", "truncated or damaged"),
        ("JPEG-lossy.dcm", "JPEG Extended"),  # 12-bit JPEG: only pylibjpeg-libjpeg (GPL, not installed) reads it
        ("rtplan.dcm", "without an image"),
        ("no_meta.dcm", "not a DICOM file"),
    ],
)
def test_broken_and_non_image_files_get_one_sentence(name: str, message: str) -> None:
    with pytest.raises(DicomError, match=message) as raised:
        read_scan(path(name)).image()
    text = str(raised.value)
    assert text.count(". ") == 0 and text.endswith(".")


def test_a_png_renamed_dcm_is_refused_before_any_decode(tmp_path: Path) -> None:
    fake = tmp_path / "scan.dcm"
    fake.write_bytes((ROOT / "assets" / "samples" / "photos" / "chelsea.png").read_bytes())
    assert not is_dicom(fake.read_bytes()[:132])
    with pytest.raises(DicomError, match="not a DICOM file"):
        read_scan(fake, name="scan.dcm")


def test_a_transfer_syntax_without_a_decoder_gets_one_sentence(tmp_path: Path) -> None:
    dataset = pydicom.dcmread(path("MR_small_RLE.dcm"))
    dataset.file_meta.TransferSyntaxUID = UID("1.2.840.10008.1.2.4.100")  # MPEG2 video: nothing here decodes it
    out = tmp_path / "mpeg2.dcm"
    dataset.save_as(out, enforce_file_format=True)
    with pytest.raises(DicomError, match="compressed with the transfer syntax MPEG2.*no decoder is installed"):
        read_scan(out).image()


def test_a_huge_declared_size_is_refused_from_the_header(tmp_path: Path) -> None:
    dataset = pydicom.dcmread(path("MR_small.dcm"))
    dataset.Rows = dataset.Columns = 60000
    out = tmp_path / "huge.dcm"
    dataset.save_as(out)
    with pytest.raises(DicomError, match="60000 × 60000 pixels per frame"):
        read_scan(out)


def test_nothing_identifying_is_shown(tmp_path: Path) -> None:
    dataset = pydicom.dcmread(path("MR_small.dcm"))
    values = [str(dataset.get(name)) for name in IDENTIFYING if dataset.get(name) not in (None, "")]
    assert values, "MR_small fills in identifying attributes"
    scan = read_scan(path("MR_small.dcm"))
    image = scan.image()
    shown = " ".join([image.display_name, repr(scan.summary), *(w.name for w in scan.windows())])
    for value in values:
        assert value not in shown
    # An upload (bytes) is named the same way.
    upload = read_scan(path("MR_small.dcm").read_bytes(), name="Smith_John.dcm").image()
    assert upload.display_name == image.display_name and "Smith" not in upload.display_name
    assert os.fspath(path("MR_small.dcm")) not in shown


def test_bytes_and_paths_read_alike() -> None:
    data = path("CT_small.dcm").read_bytes()
    assert np.array_equal(
        read_scan(io.BytesIO(data).getvalue()).image().pixels, read_scan(path("CT_small.dcm")).image().pixels
    )
