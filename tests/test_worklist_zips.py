"""Worklists at scale and from hostile zips: entries capped with the number left out stated, members unpacked in
bounded chunks whatever the zip's directory says, damaged, encrypted and exotically compressed members as one
sentence each, paths leading outside the zip skipped and stated, one row per frame of a multi-frame DICOM file,
and rows that hold thumbnails, not pixels (the full picture is decoded again on opening)."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from explainers import archives
from explainers.images import ImageError
from explainers.worklist import THUMBNAIL_SIDE, Predictor, ScanImage
from explainers.worklist_sources import from_folder, from_uploads
from models import get_spec

ROOT = Path(__file__).resolve().parents[1]
FILES = Path(pydicom.__file__).parent / "data" / "test_files"
DIGITS = ROOT / "assets" / "samples" / "digits"
SPEC = get_spec("digits_cnn")


def png(side: int = 8, value: int = 0) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((side, side, 3), value, dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def zip_of(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return buffer.getvalue()


def patch(data: bytes, name: str, local: int, central: int, value: bytes) -> bytes:
    """``value`` written at offset ``local`` of member ``name``'s local header and ``central`` of its entry in the
    central directory: what a zip that lies (or that another tool wrote) looks like."""
    patched = bytearray(data)
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(name)
    patched[info.header_offset + local : info.header_offset + local + len(value)] = value
    entry = data.index(b"PK\x01\x02")  # the central directory's entries, until this member's
    while data[entry + 46 : entry + 46 + len(name)] != name.encode():
        entry = data.index(b"PK\x01\x02", entry + 4)
    patched[entry + central : entry + central + len(value)] = value
    return bytes(patched)


def test_a_zip_of_600_entries_lists_500_and_says_100_were_left_out() -> None:
    archive = zip_of({f"scans/{n:03d}.png": png(value=n % 256) for n in range(600)})
    worklist = from_uploads(SPEC, [("many.zip", archive)])
    assert len(worklist.scans) == 500 and worklist.skipped == 100
    assert worklist.notes == ["100 more scans (files or slices) are not listed: a worklist holds up to 500."]
    assert [scan.row for scan in worklist.scans[:3]] == [1, 2, 3]


def test_a_member_larger_than_its_directory_says_is_refused_after_a_bounded_read() -> None:
    big = png(64) + bytes(40 * 2**20)  # 40 MB that Deflate packs into 40 KB
    archive = zip_of({"a_big.png": big, "b_small.png": png()})
    lying = patch(archive, "a_big.png", 22, 24, struct.pack("<I", 1000))  # uncompressed size: 1,000 bytes
    assert zipfile.ZipFile(io.BytesIO(lying)).getinfo("a_big.png").file_size == 1000
    tracemalloc.start()
    try:
        worklist = from_uploads(SPEC, [("lying.zip", lying)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, f"{peak / 2**20:.1f} MB"
    first, second = worklist.scans
    assert first.image is None and first.error is not None
    assert first.error.startswith("file 1.png is damaged inside the zip")
    assert second.image is not None  # the rest of the zip is still read


def test_a_member_over_the_per_file_limit_is_refused_before_it_is_read() -> None:
    archive = zip_of({"huge.png": bytes(archives.MAX_FILE_BYTES + 1)})
    [scan] = from_uploads(SPEC, [("huge.zip", archive)]).scans
    assert scan.error == "file 1.png unpacks to more than the limit of 50 MB (50.0 MB)."


def test_damaged_encrypted_and_exotically_compressed_members_are_one_sentence_each() -> None:
    members = {"1_aes.png": png(), "2_locked.png": png(), "3_broken.png": png(32, 7) * 3, "4_fine.png": png()}
    archive = zip_of(members)
    archive = patch(archive, "1_aes.png", 8, 10, struct.pack("<H", 99))  # compression method 99 (AES)
    flags = zipfile.ZipFile(io.BytesIO(archive)).getinfo("2_locked.png").flag_bits
    archive = patch(archive, "2_locked.png", 6, 8, struct.pack("<H", flags | 0x1))  # the encrypted flag
    info = zipfile.ZipFile(io.BytesIO(archive)).getinfo("3_broken.png")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    broken = bytearray(archive)
    broken[start : start + info.compress_size] = bytes(b ^ 0x5A for b in broken[start : start + info.compress_size])
    rows = from_uploads(SPEC, [("odd.zip", bytes(broken))]).scans
    assert [scan.image is None for scan in rows] == [True, True, True, False]
    assert rows[0].error == (
        "file 1.png is compressed with AES encryption (method 99), which is not read here; "
        "zip it again with the usual (Deflate) compression."
    )
    assert rows[1].error == "file 2.png is encrypted in the zip; zip it again without a password."
    broken_error = rows[2].error
    assert broken_error is not None and broken_error.startswith("file 3.png is damaged inside the zip")


def test_a_damaged_zip_is_one_sentence() -> None:
    from explainers.worklist import WorklistError

    with pytest.raises(WorklistError, match="^This zip file is damaged"):
        from_uploads(SPEC, [("broken.zip", zip_of({"a.png": png()})[:-30])])


def test_paths_leading_outside_the_zip_are_skipped_and_stated() -> None:
    archive = zip_of({"../evil.png": png(), "/abs.png": png(), "inner/ok.png": png(), "__MACOSX/._ok.png": b"x"})
    worklist = from_uploads(SPEC, [("paths.zip", archive)])
    assert len(worklist.scans) == 1 and worklist.scans[0].image is not None
    assert worklist.skipped == 2
    assert worklist.notes == ["2 entries with paths leading outside the zip were skipped."]


def test_past_the_total_allowance_a_zip_is_refused_member_by_member_and_the_rest_counted(monkeypatch) -> None:
    members = {f"{n}.png": png(16, n) for n in range(6)}
    monkeypatch.setattr(archives, "MAX_TOTAL_BYTES", sum(len(data) for data in list(members.values())[:3]) + 10)
    worklist = from_uploads(SPEC, [("six.zip", zip_of(members))])
    assert [scan.image is not None for scan in worklist.scans] == [True, True, True, False]
    refused = worklist.scans[3].error
    assert refused is not None and "the zip's scans unpack to more than" in refused
    assert worklist.skipped == 2 and "2 more entries were not read" in worklist.notes[0]


def test_a_multi_frame_dicom_file_gives_one_numbered_row_per_frame() -> None:
    data = (FILES / "SC_rgb_rle_2frame.dcm").read_bytes()
    worklist = from_uploads(SPEC, [("a.dcm", data), ("b.dcm", data)])
    assert [(scan.row, scan.frame) for scan in worklist.scans] == [(1, 0), (2, 1), (3, 0), (4, 1)]
    digests = [scan.image.digest if scan.image is not None else None for scan in worklist.scans]
    assert worklist.multi_frame and None not in digests and digests[0] == digests[2]
    assert worklist.load(1).frame == 1 and worklist.load(1).digest == digests[1]


def test_frames_count_toward_the_cap(tmp_path) -> None:
    (tmp_path / "dose.dcm").write_bytes((FILES / "rtdose.dcm").read_bytes())  # 15 frames
    (tmp_path / "later.png").write_bytes(png())
    worklist = from_folder(SPEC, tmp_path, limit=5)
    assert [scan.frame for scan in worklist.scans] == [0, 1, 2, 3, 4]
    assert worklist.skipped == 10 + 1 and "11 more scans (files or slices)" in worklist.notes[0]


def test_rows_keep_thumbnails_not_pixels_and_a_scan_is_decoded_again_when_opened(tmp_path) -> None:
    picture = np.random.default_rng(0).integers(0, 255, (600, 400, 3), dtype=np.uint8)
    Image.fromarray(picture).save(tmp_path / "big.png")
    worklist = from_folder(SPEC, tmp_path)
    [scan] = worklist.scans
    assert isinstance(scan.image, ScanImage) and not hasattr(scan.image, "pixels")
    assert max(scan.image.thumbnail.shape[:2]) <= THUMBNAIL_SIDE <= 128
    arrays = [value for value in vars(scan).values() if isinstance(value, np.ndarray)]
    assert all(array.size < 1000 for array in arrays)  # a verdict's probabilities at most
    opened = worklist.load(0)
    assert opened.display_name == scan.name and np.array_equal(opened.pixels, picture)
    Image.fromarray(255 - picture).save(tmp_path / "big.png")  # changed on disk since it was listed
    with pytest.raises(ImageError, match="^file 1.png changed since the worklist was read"):
        scan.image.load()


def test_verdicts_are_predicted_while_reading_then_come_from_the_cache(tmp_path) -> None:
    from explainers.cache import ExplanationCache
    from explainers.worklist import predict_all
    from models import load_classifier

    for n in (1, 7):
        (tmp_path / f"digit_{n}.png").write_bytes((DIGITS / f"digit_{n}.png").read_bytes())
    classifier, cache = load_classifier("digits_cnn"), ExplanationCache(tmp_path / "cache")
    predictor = Predictor(classifier, cache, batch=1)
    worklist = from_folder(SPEC, tmp_path, predictor=predictor)
    verdicts = [None if scan.verdict is None else SPEC.class_names[scan.verdict] for scan in worklist.scans]
    assert predictor.predicted == 2 and verdicts == ["1", "7"]
    assert predict_all(worklist, classifier, cache) == 0  # nothing decoded again, nothing predicted
    again = Predictor(classifier, cache)
    from_folder(SPEC, tmp_path, predictor=again)
    assert again.predicted == 0
