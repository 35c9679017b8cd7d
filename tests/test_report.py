"""The PDF report: from the command line on a bundled MRI and on a DICOM scan (cached explanations reused),
holding the notice, the verdict, every method's scores and parameters, and nothing identifying the patient."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pydicom

ROOT = Path(__file__).resolve().parents[1]
FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def pdf_text(data: bytes) -> str:
    """The text drawn on a PDF's pages (fpdf2 writes Flate-compressed content streams)."""
    parts = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, flags=re.S):
        try:
            parts.append(zlib.decompress(stream).decode("latin-1"))
        except zlib.error:
            continue
    return " ".join(re.findall(r"\((.*?)\)\s*Tj", "\n".join(parts)))


def pixels_per_inch(data: bytes) -> list[float]:
    """Each picture's resolution as drawn: its pixel width over the width it is placed at (fpdf2 names its
    images /I1, /I2 … in the order of their objects, and places each with "w 0 0 h x y cm /In Do")."""
    widths = [int(width) for width in re.findall(rb"/Subtype /Image.*?/Width (\d+)", data, flags=re.S)]
    content = "\n".join(
        zlib.decompress(stream).decode("latin-1", "replace")
        for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, flags=re.S)
        if stream[:2] in (b"x\x9c", b"x\xda", b"x^", b"x\x01")
    )
    placed = re.findall(r"([\d.]+) 0 0 [\d.]+ [\d.]+ [\d.]+ cm /I(\d+) Do", content)
    assert placed and len(widths) >= len({name for _, name in placed})
    return [widths[int(name) - 1] / (float(points) / 72) for points, name in placed]


def report(*args: str, cache: Path | None = None) -> subprocess.CompletedProcess:
    """``cache``: a folder of its own, for a test that counts what was computed (the session's cache holds what
    other tests computed, e.g. the Compare page's partition of the same digit)."""
    env = {**os.environ, "EXPLAINERS_CACHE_DIR": str(cache)} if cache is not None else None
    return subprocess.run(
        [sys.executable, "-m", "explainers", "report", *args, "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def test_a_report_of_a_scan_from_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "r.pdf"
    args = [
        "--model",
        "digits_cnn",
        "--image",
        str(ROOT / "assets" / "samples" / "digits" / "digit_7.png"),
        "--methods",
        "partition,kernel,gradient",
        "--max-evals",
        "40",
        "--out",
        str(out),
    ]
    first = report(*args, cache=tmp_path / "cache")
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout.strip().splitlines()[-1])
    assert result["out"] == str(out) and result["computed"] == ["partition", "kernel", "gradient"]
    data = out.read_bytes()
    assert data.startswith(b"%PDF")
    text = pdf_text(data)
    for words in (
        "For research use only; not a diagnosis.",
        "The model says: 7",
        "Partition SHAP",
        "Kernel SHAP",
        "How far to trust these maps",
        "passes the randomisation check",
        "top regions explain",
        "Why 7 rather than",  # the contrastive map, from Kernel SHAP's evaluations
        "Appendix: technical details",
        "deletion",
        "Settings of each method",
        "weights",
        "Model card",
        "Intended use",
        "Accuracy here 10 of 10",
        "on the bundled labelled samples",
        "pp per region",
    ):
        assert words.lower() in text.lower(), f"{words!r} not in the report"
    # Plain words first; the jargon only in the appendix.
    plain = text.split("Appendix: technical details")[0]
    for jargon in ("blur_kernel", "additivity", "AUC", "rho", "MoRF", "max_evals"):
        assert jargon not in plain, f"{jargon!r} before the appendix"
    assert "additivity error" in text and "blur_kernel" in text
    # Every picture at print resolution: at least 150 pixels per inch as placed on the page.
    assert min(pixels_per_inch(data)) >= 150
    again = report(*args, cache=tmp_path / "cache")  # everything cached now
    assert again.returncode == 0 and json.loads(again.stdout.strip().splitlines()[-1])["computed"] == []


def test_a_report_of_a_dicom_scan_names_no_patient(tmp_path: Path) -> None:
    out = tmp_path / "scan.pdf"
    done = report(
        "--model",
        "brain_tumor_vgg16",
        "--image",
        str(FILES / "MR_small.dcm"),
        "--methods",
        "partition",
        "--max-evals",
        "20",
        "--top-k",
        "2",
        "--hide-background",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    text = pdf_text(out.read_bytes())
    dataset = pydicom.dcmread(FILES / "MR_small.dcm")
    assert "scan " in text and "MR_small" not in text
    for value in (str(dataset.PatientName), str(dataset.PatientID)):
        assert value not in text
    # The tumour model's card, classes in words, and its accuracy measured on the 13 bundled MRIs.
    assert "no tumour" in text and "13 of 13" in text and "log-odds per region" in text
    assert "The background outside the head is hidden; it holds" in text


def test_a_photo_in_a_report_of_the_tumour_model_carries_the_warning(tmp_path: Path) -> None:
    out = tmp_path / "photo.pdf"
    done = report(
        "--model",
        "brain_tumor_vgg16",
        "--image",
        str(ROOT / "assets" / "samples" / "photos" / "rocket.png"),
        "--methods",
        "kernel",
        "--max-evals",
        "20",
        "--top-k",
        "1",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    text = pdf_text(out.read_bytes())
    assert "Warning: This image is in colour" in text
    assert "The model says:" not in text and "but this input is not what it was trained on" in text  # muted
