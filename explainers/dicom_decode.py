"""Decoding DICOM files with pydicom: run inside the sandbox's child (:mod:`explainers.sandbox_child`), never in
the server. Every way a hostile or damaged header can fail (odd-length or huge elements, unknown VRs, windows of
width 0, empty LUT sequences, a palette without its tables, a decoder's panic) ends in one DicomError sentence
that quotes nothing from the file; the decoded size is checked against a budget before any pixel is decoded.
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np

from explainers.dicom_types import (
    AUTO_PERCENTILES,
    MAX_DICOM_BYTES,
    MAX_FRAME_VALUES,
    MAX_FRAMES,
    DicomError,
    Window,
    frame_message,
    linear_window,
    scan_windows,
)
from explainers.image_types import InputImage, image_digest, to_uint8

# JPEG (baseline, extended, lossless), JPEG-LS and JPEG 2000: the syntaxes python-gdcm and openjpeg decode.
_CODESTREAM_SYNTAXES = {f"1.2.840.10008.1.2.4.{n}" for n in (50, 51, 57, 70, 80, 81, 90, 91, 92, 93, 201, 202, 203)}
DAMAGED = "The pixel data of this DICOM file is truncated or damaged, so it cannot be shown."


def _reader(source: bytes | str | Path) -> Any:
    return io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else str(source)


class DicomFile:
    """A DICOM file, its header read and checked; frames are decoded on demand (:meth:`image`)."""

    def __init__(self, source: bytes | str | Path, dataset: Any, header: dict[str, Any]) -> None:
        self.source, self.dataset, self.header = source, dataset, header
        self.frames, self.samples = header["frames"], header["samples"]

    def frame(self, index: int = 0) -> np.ndarray:
        """Frame ``index`` in the modality's units (after the modality LUT), decoded alone."""
        from pydicom.pixels import apply_color_lut, apply_modality_lut, pixel_array

        if not 0 <= index < self.frames:
            raise DicomError(frame_message(self.frames, index))
        if os.environ.get("EXPLAINERS_DICOM_PRECHECKS", "1") != "0":  # "0": only to test the sandbox behind them
            self._check_compressed(index)
        try:
            pixels = pixel_array(_reader(self.source), index=index if self.frames > 1 else None)
        except (KeyboardInterrupt, SystemExit, MemoryError):
            raise
        except NotImplementedError as error:
            raise DicomError(
                f"This scan is compressed with {self._syntax()}, for which no decoder is installed here."
            ) from error
        except BaseException as error:  # noqa: BLE001 - pylibjpeg-rle's PanicException is a BaseException
            raise DicomError(_pixel_sentence(error, self._syntax())) from None
        expected = (self.header["rows"], self.header["columns"]) + ((self.samples,) if self.samples > 1 else ())
        if pixels.shape != expected:  # a header that lies about the size: the decoder read something else
            raise DicomError(DAMAGED)
        if self.samples > 1:
            return pixels
        if self.header["palette"]:
            try:
                return apply_color_lut(pixels, self.dataset)
            except Exception:  # noqa: BLE001 - any way the tables can be missing or malformed
                raise DicomError("This scan's colour palette is missing or damaged, so it cannot be shown.") from None
        try:
            values = apply_modality_lut(pixels, self.dataset)
        except Exception:  # noqa: BLE001 - an empty or malformed ModalityLUTSequence, a text slope
            raise DicomError(
                "This scan's modality LUT (its rescale to physical units) is damaged, so it cannot be shown."
            ) from None
        return np.nan_to_num(np.asarray(values, dtype=np.float64), copy=False)

    def _check_compressed(self, index: int) -> None:
        """Refuses a compressed frame whose codestream disagrees with the header (before any decoder runs)."""
        import pydicom
        from pydicom.encaps import get_frame

        from explainers.codestreams import geometry, mismatch

        syntax = getattr(getattr(self.dataset, "file_meta", None), "TransferSyntaxUID", None)
        if str(syntax) not in _CODESTREAM_SYNTAXES:
            return  # native pixels, RLE (its decoders check their sizes), or a syntax nothing here decodes
        assert syntax is not None  # str(None) is none of the codestream syntaxes, so None returned above
        try:
            pixel_data = pydicom.dcmread(_reader(self.source)).PixelData
            frame = get_frame(pixel_data, index, number_of_frames=self.frames)
        except (KeyboardInterrupt, SystemExit, MemoryError):
            raise
        except BaseException:  # noqa: BLE001 - fragments that do not hold the frame
            raise DicomError(DAMAGED) from None
        found = geometry(bytes(frame[: 1 << 16]))
        if found is None:
            raise DicomError(f"The pixel data of this DICOM file is not a {syntax.name} image, so it cannot be shown.")
        header = self.header
        problem = mismatch(
            found, header["rows"], header["columns"], self.samples, header["bits_allocated"], header["bits_stored"]
        )
        if problem:
            raise DicomError(problem)

    def _syntax(self) -> str:
        syntax = getattr(getattr(self.dataset, "file_meta", None), "TransferSyntaxUID", None)
        return f"the transfer syntax {getattr(syntax, 'name', None) or syntax or 'it declares'}"

    def image(self, index: int = 0, window: Window | None = None) -> InputImage:
        """Frame ``index`` windowed to an 8-bit RGB picture, named by its digest."""
        values = self.frame(index)
        header = self.header
        window = window or scan_windows(self.samples, header["palette"], header["own_window"], header["modality"])[0]
        if self.samples > 1 or header["palette"]:
            picture = to_uint8(values)
            if picture.ndim == 2:
                picture = np.repeat(picture[..., None], 3, axis=2)
        else:
            picture = apply_window(values, window, self.dataset if header["own_window"] else None)
            if header["monochrome1"]:
                picture = 255 - picture
            picture = np.repeat(picture[..., None], 3, axis=2)
        picture = np.ascontiguousarray(picture[..., :3])
        digest = image_digest(picture)
        where = f", frame {index + 1} of {self.frames}" if self.frames > 1 else ""
        shown = (window.centre, window.width) if window.centre is not None and window.width is not None else None
        return InputImage(
            picture,
            "upload" if isinstance(self.source, (bytes, bytearray)) else "file",
            f"scan {digest[:8]}{where}",
            digest,
            window=shown,
            frame=index if self.frames > 1 else None,
            modality=header["modality"] or None,
        )


def _pixel_sentence(error: BaseException, syntax: str) -> str:
    text = str(error)
    if "does not support" in text:  # every installed plugin declined this variant
        return f"This scan is compressed with {syntax} in a variant that none of the decoders installed here can read."
    if "not a transfer syntax" in text:
        return "This scan declares a transfer syntax that DICOM does not define, so its pixels cannot be decoded."
    if "no pixel data" in text.lower():
        return "This DICOM file has no pixel data to show."
    return DAMAGED


def apply_window(values: np.ndarray, window: Window, dataset: Any = None) -> np.ndarray:
    """Values in the modality's units to 0–255 through ``window``; a file's own window that pydicom cannot apply
    (width 0, an empty VOI LUT) falls back to the automatic one."""
    if window.centre is not None and window.width is not None:
        return linear_window(values, window.centre, window.width)
    if window.name == "the file's own" and dataset is not None:
        from pydicom.pixels import apply_voi_lut

        try:
            return to_uint8(np.asarray(apply_voi_lut(values, dataset, index=0), dtype=np.float64))
        except Exception:  # noqa: BLE001 - a malformed window is the file's mistake; show it automatically
            pass
    if window.name == "full range":
        return to_uint8(values)
    low, high = np.percentile(values, AUTO_PERCENTILES)
    return linear_window(values, (low + high) / 2, max(high - low, 1.0) + 1)


def _integer(dataset: Any, keyword: str, default: int, what: str) -> int:
    """An integer attribute, or one sentence when it is malformed (odd length, text, several values, 2 GB)."""
    try:
        value = dataset.get(keyword, default)
        value = default if value in (None, "") else value
        return int(value)
    except Exception:  # noqa: BLE001 - pydicom raises many kinds on a damaged element
        raise DicomError(f"{what} has a damaged {keyword} in its header, so it cannot be shown.") from None


def _text(dataset: Any, keyword: str, default: str) -> str:
    try:
        value = dataset.get(keyword, default)
        return str(value if value not in (None, "") else default)[:64]
    except Exception:  # noqa: BLE001 - pydicom raises many kinds on a damaged element; the default stands in
        return default


def read_dicom(source: bytes | str | Path, name: str | None = None) -> DicomFile:
    """Reads and checks a DICOM file's header (no pixel is decoded); DicomError with one sentence otherwise."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    what = "This file" if name is None else "This upload"
    if not isinstance(source, (bytes, bytearray)):
        try:
            info = os.stat(source)
        except OSError as error:
            raise DicomError(f"{what} cannot be read ({error.strerror or error}).") from None
        if not stat.S_ISREG(info.st_mode):  # a device or a pipe is never opened
            raise DicomError(f"{what} is not a regular file.")
        size = info.st_size
    else:
        size = len(source)
    if size > MAX_DICOM_BYTES:
        raise DicomError(
            f"{what} is {size / 2**20:.0f} MB; DICOM files up to {MAX_DICOM_BYTES // 2**20} MB are accepted."
        )
    try:
        dataset = pydicom.dcmread(_reader(source), stop_before_pixels=True)  # never force=True
    except InvalidDicomError:
        raise DicomError(f"{what} is not a DICOM file (it has no DICOM preamble).") from None
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except BaseException:  # noqa: BLE001 - struct.error, unknown VRs, lengths past the end, panics
        raise DicomError(f"{what} looks like DICOM but its header is truncated or damaged.") from None
    return DicomFile(source, dataset, _checked_header(source, dataset, what))


def _checked_header(source: bytes | str | Path, dataset: Any, what: str) -> dict[str, Any]:
    rows, columns = _integer(dataset, "Rows", 0, what), _integer(dataset, "Columns", 0, what)
    if not rows or not columns:
        raise DicomError(
            f"{what} is a DICOM file without an image (no rows and columns): perhaps a report, a "
            "structure set or a plan."
        )
    if rows < 0 or columns < 0:
        raise DicomError(f"{what} declares a negative image size, so its header is damaged.")
    frames = _integer(dataset, "NumberOfFrames", 1, what)
    if frames < 1:
        raise DicomError(f"{what} declares {frames} frames; a scan has at least one, so its header is damaged.")
    if frames > MAX_FRAMES:
        raise DicomError(f"{what} declares {frames} frames; up to {MAX_FRAMES} are accepted.")
    samples = _integer(dataset, "SamplesPerPixel", 1, what)
    if samples not in (1, 3):
        raise DicomError(f"{what} declares {samples} samples per pixel; 1 (grey) or 3 (colour) can be shown.")
    bits = _integer(dataset, "BitsAllocated", 16, what)
    if bits not in (1, 8, 16, 32, 64):
        raise DicomError(f"{what} declares {bits} bits per sample; DICOM allows 1, 8, 16, 32 or 64.")
    photometric = _text(dataset, "PhotometricInterpretation", "MONOCHROME2").upper()
    palette = photometric == "PALETTE COLOR"
    wanted = 1 if photometric.startswith("MONOCHROME") or palette else 3
    if samples != wanted:
        raise DicomError(
            f"{what} declares {samples} sample{'s' * (samples > 1)} per pixel, which does not fit "
            f"its photometric interpretation ({photometric[:20]}), so its header is damaged."
        )
    values = rows * columns * (3 if palette else samples)
    if values > MAX_FRAME_VALUES:
        unpacked = " (1-bit pixels unpack to a byte each)" if bits == 1 else ""
        raise DicomError(
            f"{what} declares {columns} × {rows} pixels per frame, which decode to "
            f"{values / 1e6:.0f} million values{unpacked}; up to {MAX_FRAME_VALUES // 1_000_000} "
            "million are accepted."
        )
    if not _has_pixel_data(source):
        raise DicomError(f"{what} is a DICOM file without pixel data.")
    return {
        "frames": frames,
        "rows": rows,
        "columns": columns,
        "samples": samples,
        "modality": _text(dataset, "Modality", "OT") or "OT",
        "monochrome1": photometric == "MONOCHROME1",
        "palette": palette,
        "photometric": photometric,
        "bits_allocated": bits,
        "bits_stored": _integer(dataset, "BitsStored", 0, what),
        "own_window": _own_window(dataset),
    }


def _own_window(dataset: Any) -> bool:
    """Whether the file's VOI LUT or window is usable (a width of 0 or an empty sequence is not)."""
    try:
        if "VOILUTSequence" in dataset:
            return len(dataset.VOILUTSequence) > 0 and "LUTData" in dataset.VOILUTSequence[0]
        if "WindowCenter" in dataset and "WindowWidth" in dataset:
            from pydicom.multival import MultiValue

            width = dataset.WindowWidth
            return float(width[0] if isinstance(width, (MultiValue, list, tuple)) else width) >= 1
    except Exception:  # noqa: BLE001 - a malformed window is no window
        return False
    return False


def _has_pixel_data(source: bytes | str | Path) -> bool:
    """Whether the file has pixel data, read without decoding it (``defer_size`` keeps large values on disk)."""
    import pydicom

    try:
        dataset = pydicom.dcmread(
            _reader(source), defer_size=1024, specific_tags=["PixelData", "FloatPixelData", "DoubleFloatPixelData"]
        )
    except Exception:  # noqa: BLE001 - a damaged pixel element is reported when the frame is decoded
        return True
    return any(name in dataset for name in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))
