"""``python -m explainers scans PATH --model M``: one JSON line per scan (one per frame), a summary line last, the
cached Compare explanations counted, no file name anywhere, and exit 2 with one sentence when PATH cannot be
read."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pydicom

from cli.main import main
from cli.scans import COMPARE_METHODS

ROOT = Path(__file__).resolve().parents[1]
MRI = ROOT / "assets" / "samples" / "mri"
DIGITS = ROOT / "assets" / "samples" / "digits"
FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def scans(capsys, *args: str) -> tuple[int, list[dict], str]:
    code = main(["scans", *args])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_a_folder_of_mris_is_one_line_per_scan_then_a_summary(capsys) -> None:
    code, lines, _ = scans(capsys, str(MRI), "--model", "brain_tumor_vgg16")
    assert code == 0
    *rows, last = lines
    assert len(rows) == len(list(MRI.glob("*.jpg"))) == 13
    assert [row["row"] for row in rows] == list(range(1, 14))
    words = {"glioma", "meningioma", "no tumour", "pituitary tumour"}
    for row in rows:
        assert row["name"].startswith("scan ") and len(row["name"]) == 13 and row["frame"] is None
        assert row["verdict"] in words and row["label"] in words and 0 < row["confidence"] <= 1
        assert row["agrees"] == (row["verdict"] == row["label"]) and row["in_domain"] is True
        assert 0 <= row["cached"] <= row["wanted"] == len(COMPARE_METHODS) and row["error"] is None
    summary = last["summary"]
    assert (
        summary
        == {
            "scans": 13,
            "readable": 13,
            "failed": 0,
            "skipped": 0,
            "labelled": 13,
            "agree": sum(row["agrees"] for row in rows),
        }
        and summary["agree"] >= 10
    )
    assert "Te-" not in json.dumps(lines)  # file names never appear


def test_frames_unreadable_members_and_cached_explanations(capsys, tmp_path) -> None:
    assert (
        main(
            [
                "explain",
                "--model",
                "digits_cnn",
                "--image",
                str(DIGITS / "digit_1.png"),
                "--method",
                "partition",
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    archive = tmp_path / "scans.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("1/digit.png", (DIGITS / "digit_1.png").read_bytes())  # a folder named by its class
        zipped.writestr("two frames.dcm", (FILES / "SC_rgb_rle_2frame.dcm").read_bytes())
        zipped.writestr("broken.png", b"not a picture")
        zipped.writestr("../outside.png", b"")
    code, lines, _ = scans(capsys, str(archive), "--model", "digits_cnn", "--methods", "partition")
    assert code == 0
    *rows, last = lines
    digit = next(row for row in rows if row.get("label") == "1")
    assert digit["verdict"] == "1" and digit["agrees"] is True and (digit["cached"], digit["wanted"]) == (1, 1)
    assert [row["frame"] for row in rows if row.get("frame")] == [1, 2]
    [broken] = [row for row in rows if row["error"]]
    assert broken["verdict"] is broken["agrees"] is broken["in_domain"] is None
    assert broken["error"] == f"file {broken['row']}.png is not an image we can read; use PNG, JPEG, TIFF, BMP or WebP."
    assert last["summary"]["failed"] == 1 and last["summary"]["skipped"] == 1
    assert last["notes"] == ["1 entry with a path leading outside the zip was skipped."]


def test_a_path_that_cannot_be_read_is_exit_2_and_one_sentence(capsys, tmp_path) -> None:
    damaged = tmp_path / "damaged.zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("a.png", b"x" * 100)
    damaged.write_bytes(buffer.getvalue()[:-40])
    (tmp_path / "notes.txt").write_text("hello")
    for path, sentence in (
        (tmp_path / "missing", "Nothing exists at that path."),
        (damaged, "This zip file is damaged (or is no zip), so it cannot be opened."),
        (tmp_path / "notes.txt", "That path is neither a folder nor a .zip file."),
    ):
        code, lines, err = scans(capsys, str(path), "--model", "digits_cnn")
        assert (code, lines, err) == (2, [], f"error: {sentence}\n")


def test_the_cached_count_follows_the_compare_pages_default_methods() -> None:
    from ui.controls import COMPARE_DEFAULT_METHODS

    assert list(COMPARE_METHODS) == COMPARE_DEFAULT_METHODS
