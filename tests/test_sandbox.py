"""The decoding sandbox: hostile files stop a child process, never the caller; every family of failure an
attacker found ends in one sentence; the pool replaces what died; limits of memory and time hold."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom import config
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from explainers import sandbox
from explainers.dicom import DicomError, read_scan
from explainers.images import ImageError, load_image
from storage.sandbox import ChildStopped

FILES = Path(pydicom.__file__).parent / "data" / "test_files"
ROOT = Path(__file__).resolve().parents[1]
CHELSEA = ROOT / "assets" / "samples" / "photos" / "chelsea.png"


def mutated(name: str, **attributes: object) -> bytes:
    """A bundled file with attributes set to the given values (written without validation), as bytes."""
    config.settings.writing_validation_mode = config.IGNORE
    dataset = pydicom.dcmread(FILES / name)
    for keyword, value in attributes.items():
        setattr(dataset, keyword, value)
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=False)
    return buffer.getvalue()


def one_sentence(text: str) -> None:
    assert text.endswith(".") and "\n" not in text and "Traceback" not in text and len(text) < 300, text


def test_a_decoder_that_aborts_the_process_is_one_sentence_and_the_next_file_decodes() -> None:
    # python-gdcm throws a C++ exception on this header that aborts its process (SIGABRT).
    data = mutated("SC_rgb_jpeg_gdcm.dcm", BitsAllocated=32)
    before = sandbox.pool().replaced
    with pytest.raises(ImageError) as raised:
        load_image(data, name="Smith_John.dcm")
    one_sentence(str(raised.value))
    assert "Smith" not in str(raised.value)
    if isinstance(raised.value, sandbox.SandboxError):  # the child died: it was replaced
        assert str(raised.value) == sandbox.STOPPED and sandbox.pool().replaced == before + 1
    assert load_image(CHELSEA, sample=True).shape == (300, 451, 3)


def test_a_rust_panic_in_the_rle_decoder_is_one_sentence() -> None:
    # pylibjpeg-rle panics (PanicException, a BaseException) when the columns do not match the segments.
    with pytest.raises(DicomError, match="truncated or damaged") as raised:
        read_scan(mutated("MR_small_RLE.dcm", Columns=7), name="x.dcm").image()
    one_sentence(str(raised.value))


def _with_length(name: str, tag: bytes, length: int) -> bytes:
    """A file whose element ``tag`` (explicit VR little endian, a 2-byte length) declares ``length``."""
    data = bytearray((FILES / name).read_bytes())
    offset = data.index(tag, 132)
    data[offset + 6 : offset + 8] = struct.pack("<H", length)
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (lambda: _with_length("MR_small.dcm", b"\x28\x00\x10\x00US", 3), "header"),  # odd-length Rows
        (
            lambda: (FILES / "MR_small.dcm").read_bytes().replace(b"\x28\x00\x10\x00US", b"\x28\x00\x10\x00HL", 1),
            "header",
        ),  # a VR DICOM does not define
        (lambda: mutated("MR_small.dcm", NumberOfFrames="-5"), "declares -5 frames; a scan has at least one"),
        (lambda: mutated("MR_small.dcm", SamplesPerPixel=2), "2 samples per pixel"),
        (lambda: mutated("MR_small.dcm", BitsAllocated=12), "12 bits per sample"),
        (lambda: mutated("liver_1frame.dcm", Rows=6000, Columns=6000), "36 million values .1-bit pixels unpack"),
        (lambda: mutated("MR_small.dcm", ModalityLUTSequence=Sequence([Dataset()])), "modality LUT"),
        (lambda: mutated("MR_small.dcm", PhotometricInterpretation="PALETTE COLOR"), "colour palette"),
        (lambda: mutated("MR_small.dcm", Rows=128), "truncated or damaged"),
    ],
)
def test_every_dicom_failure_family_is_one_sentence(data, message: str) -> None:
    with pytest.raises(DicomError, match=message) as raised:
        read_scan(data(), name="Smith_John.dcm").image()
    one_sentence(str(raised.value))
    assert "there is no frame" not in str(raised.value) and "Smith" not in str(raised.value)


def test_a_window_of_width_zero_falls_back_to_the_automatic_window() -> None:
    scan = read_scan(mutated("MR_small.dcm", WindowCenter=0, WindowWidth=0), name="x.dcm")
    assert [window.name for window in scan.windows()][0].startswith("automatic")
    pixels = scan.image().pixels
    assert pixels.shape == (64, 64, 3) and pixels.max() == 255 and pixels.min() == 0


def test_a_frame_out_of_range_reads_as_a_sentence() -> None:
    scan = read_scan(FILES / "MR_small.dcm")
    with pytest.raises(DicomError, match="This scan has 1 frame; there is no frame 2."):
        scan.image(1)


def test_over_memory_and_overrunning_children_are_stopped_and_replaced(tmp_path: Path) -> None:
    from tests.test_bad_inputs import sixteen_bit_png

    big = sixteen_bit_png(6300)  # about 80 MB of 16-bit pixels, then float32 copies
    small = sandbox.decoder_pool(1, memory_bytes=300 * 2**20)
    try:
        reply = None
        try:
            reply = small.call("image", {"path": None, "name": "big.png"}, big)
        except ChildStopped as error:
            assert str(error) == sandbox.STOPPED
        if reply is not None:  # Python's MemoryError inside the child: a sentence, not a death
            assert "more memory" in reply.result["error"] or "too large" in reply.result["error"]
        reply = small.call("image", {"path": str(CHELSEA), "name": None, "sample": True})
        assert reply.arrays[0].shape == (300, 451, 3) and 0 < reply.peak_bytes < 300 * 2**20
    finally:
        small.close()
    slow = sandbox.decoder_pool(1, wall_seconds=0.05)
    try:
        with pytest.raises(ChildStopped, match="The decoder stopped on this file; nothing was kept."):
            slow.call("image", {"path": None, "name": "big.png"}, big)
        assert slow.last_stop == "timeout" and slow.replaced == 1
        assert slow.call("image", {"path": str(CHELSEA), "name": None}, wall_seconds=30).arrays[0].shape[2] == 3
    finally:
        slow.close()


def test_a_child_cannot_choose_the_digest_the_kind_or_the_name_of_what_it_decoded() -> None:
    upload = CHELSEA.read_bytes()
    reply = sandbox.pool().call("image", {"path": None, "name": "Smith.png", "sample": False}, upload)
    image = sandbox.image_reply(reply, upload)
    assert image.digest == load_image(CHELSEA, sample=True).digest and image.source == "upload"
    for field, lie in [("digest", "0" * 16), ("display_name", "Smith.png"), ("source", "sample")]:
        lying = sandbox.Reply({**reply.result, field: lie}, reply.arrays, 0)
        if field == "source":  # ignored: the kind is the one the caller asked for
            assert sandbox.image_reply(lying, upload).source == "upload"
            continue
        with pytest.raises(sandbox.SandboxError):
            sandbox.image_reply(lying, upload)


def test_decoded_pixels_are_writable_and_the_same_as_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    sandboxed = load_image(FILES / "CT_small.dcm")
    assert sandboxed.pixels.flags.writeable
    monkeypatch.setenv("EXPLAINERS_SANDBOX", "0")
    here = load_image(FILES / "CT_small.dcm")
    assert np.array_equal(here.pixels, sandboxed.pixels) and here.display_name == sandboxed.display_name
