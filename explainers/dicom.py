"""DICOM scans read with pydicom: header first (its size before any pixel is decoded), then one frame at a time,
through the modality LUT (rescale slope and intercept), a window (the file's own VOI LUT or window, a CT preset,
or an automatic percentile window for MR, which has no fixed presets) and MONOCHROME1's inversion, to the 8-bit
picture the models see.

Privacy: nothing read from a file's header is shown, logged or stored except the attributes in
``SAFE_ATTRIBUTES`` (image geometry and encoding, none of them in PS3.15 Annex E's Basic Profile). A scan is
named by a digest of its pixels, never by its file name or any identifying attribute, and its cache key comes
from the pixels too. Uploads are never read with ``force=True``: a file without the DICOM preamble is refused.

Decoders: pydicom's own (uncompressed, RLE, deflate), pylibjpeg-openjpeg (JPEG 2000), pylibjpeg-rle and
python-gdcm (JPEG, JPEG-LS); all permissive licences. A transfer syntax none of them decodes gets one sentence.
"""

from __future__ import annotations

import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from explainers.images import MAX_PIXELS, ImageError, InputImage, image_digest

DICOM_SUFFIXES = (".dcm", ".dicom")
# A DICOM file may hold a whole series (multi-frame): larger than a picture, read one frame at a time.
MAX_DICOM_BYTES = 512 * 1024 * 1024
MAX_FRAMES = 4096
# Window centre and width, in the modality's units (Hounsfield units for CT).
CT_PRESETS: dict[str, tuple[float, float]] = {
    "brain": (40, 80), "subdural": (75, 215), "soft tissue": (40, 400), "bone": (400, 1800), "lung": (-600, 1500),
}
AUTO_PERCENTILES = (0.5, 99.5)
# What may be shown about a scan: geometry and encoding only.
SAFE_ATTRIBUTES = ("Modality", "Rows", "Columns", "NumberOfFrames", "SamplesPerPixel", "PhotometricInterpretation",
                   "BitsStored")


class DicomError(ImageError):
    """A DICOM file that cannot be shown; the message is one sentence without anything from the file."""


def is_dicom(head: bytes) -> bool:
    """True when ``head`` (the file's first 132 bytes or more) has the DICOM preamble."""
    return len(head) >= 132 and head[128:132] == b"DICM"


def looks_like_dicom(name: str | None, head: bytes) -> bool:
    return is_dicom(head) or (name is not None and name.lower().endswith(DICOM_SUFFIXES))


def _reader(source: bytes | str | Path) -> Any:
    return io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else str(source)


def _size(source: bytes | str | Path) -> int:
    return len(source) if isinstance(source, (bytes, bytearray)) else os.stat(source).st_size


@dataclass(frozen=True)
class Window:
    """A display window: ``centre`` and ``width`` in the modality's units, or None for the file's own VOI."""

    name: str
    centre: float | None = None
    width: float | None = None


@dataclass
class DicomScan:
    """A DICOM file, its header read and checked; frames are decoded on demand (:meth:`image`)."""

    source: bytes | str | Path
    dataset: Any  # pydicom Dataset without pixel data (never shown: see SAFE_ATTRIBUTES)
    frames: int
    rows: int
    columns: int
    samples: int
    modality: str
    monochrome1: bool
    palette: bool = False  # PALETTE COLOR: one index per pixel, shown through the file's colour table

    @property
    def summary(self) -> dict[str, Any]:
        """What may be shown about the scan (SAFE_ATTRIBUTES only)."""
        return {"modality": self.modality, "size": f"{self.columns} × {self.rows}", "frames": self.frames,
                "photometric": str(self.dataset.get("PhotometricInterpretation", "")),
                "bits stored": int(self.dataset.get("BitsStored", 0) or 0)}

    @property
    def has_own_window(self) -> bool:
        return "VOILUTSequence" in self.dataset or "WindowCenter" in self.dataset

    def windows(self) -> list[Window]:
        """The windows this scan offers, the default first: its own (when it has one), else automatic; CT presets."""
        if self.samples > 1 or self.palette:
            return [Window("as stored (colour)")]
        own = [Window("the file's own")] if self.has_own_window else []
        auto = [Window("automatic (percentiles)"), Window("full range")]
        presets = [Window(name, *values) for name, values in CT_PRESETS.items()] if self.modality == "CT" else []
        return own + auto + presets

    def frame(self, index: int = 0) -> np.ndarray:
        """Frame ``index`` in the modality's units (after the modality LUT), decoded alone."""
        from pydicom.pixels import apply_modality_lut, pixel_array

        if not 0 <= index < self.frames:
            raise DicomError(f"This scan has {self.frames} frame{'s' * (self.frames > 1)}; there is no frame "
                             f"{index + 1}.")
        try:
            pixels = pixel_array(_reader(self.source), index=index if self.frames > 1 else None)
        except NotImplementedError as error:
            raise DicomError(f"This scan is compressed with {self._syntax()}, for which no decoder is installed "
                             "here.") from error
        except (ValueError, EOFError, OSError, RuntimeError, KeyError, AttributeError, TypeError) as error:
            if "does not support" in str(error):  # every installed plugin declined this variant
                raise DicomError(f"This scan is compressed with {self._syntax()} in a variant that none of the "
                                 "decoders installed here can read.") from error
            if "not a transfer syntax" in str(error):
                raise DicomError("This scan declares a transfer syntax that DICOM does not define, so its pixels "
                                 "cannot be decoded.") from error
            if "no pixel data" in str(error).lower():
                raise DicomError("This DICOM file has no pixel data to show.") from error
            raise DicomError("The pixel data of this DICOM file is truncated or damaged, so it cannot be shown.") \
                from error
        if self.samples > 1:
            return pixels
        if self.palette:
            from pydicom.pixels import apply_color_lut

            return apply_color_lut(pixels, self.dataset)
        return apply_modality_lut(pixels, self.dataset).astype(np.float64)

    def _syntax(self) -> str:
        syntax = getattr(getattr(self.dataset, "file_meta", None), "TransferSyntaxUID", None)
        return f"the transfer syntax {getattr(syntax, 'name', None) or syntax or 'it declares'}"

    def image(self, index: int = 0, window: Window | None = None) -> InputImage:
        """Frame ``index`` windowed to an 8-bit RGB picture, named by its digest."""
        values = self.frame(index)
        window = window or self.windows()[0]
        if self.samples > 1 or self.palette:
            picture = _to_uint8(values)
        else:
            picture = apply_window(values, window, self.dataset)
            if self.monochrome1:
                picture = 255 - picture
            picture = np.repeat(picture[..., None], 3, axis=2)
        digest = image_digest(picture)
        where = f", frame {index + 1} of {self.frames}" if self.frames > 1 else ""
        shown = (window.centre, window.width) if window.centre is not None and window.width is not None else None
        return InputImage(picture, "upload" if isinstance(self.source, (bytes, bytearray)) else "file",
                          f"scan {digest[:8]}{where}", digest, window=shown, frame=index if self.frames > 1 else None,
                          modality=self.modality or None)


def _to_uint8(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype == np.uint8:
        return values
    low, high = float(values.min()), float(values.max())
    return ((values - low) / max(high - low, 1e-12) * 255).round().clip(0, 255).astype(np.uint8)


def linear_window(values: np.ndarray, centre: float, width: float) -> np.ndarray:
    """DICOM's linear VOI function (PS3.3 C.11.2.1.2.1) onto 0–255."""
    width = max(float(width), 1.0)
    scaled = ((values - (centre - 0.5)) / (width - 1) + 0.5) * 255
    return scaled.clip(0, 255).round().astype(np.uint8)


def apply_window(values: np.ndarray, window: Window, dataset: Any = None) -> np.ndarray:
    """Values in the modality's units to 0–255 through ``window``."""
    if window.centre is not None and window.width is not None:
        return linear_window(values, window.centre, window.width)
    if window.name == "the file's own" and dataset is not None:
        from pydicom.pixels import apply_voi_lut

        shown = apply_voi_lut(values, dataset, index=0).astype(np.float64)
        return _to_uint8(shown)
    if window.name == "full range":
        return _to_uint8(values)
    low, high = np.percentile(values, AUTO_PERCENTILES)
    return linear_window(values, (low + high) / 2, max(high - low, 1.0) + 1)


def read_scan(source: bytes | str | Path, name: str | None = None) -> DicomScan:
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
    size = _size(source)
    if size > MAX_DICOM_BYTES:
        raise DicomError(f"{what} is {size / 2**20:.0f} MB; DICOM files up to {MAX_DICOM_BYTES // 2**20} MB are "
                         "accepted.")
    try:
        dataset = pydicom.dcmread(_reader(source), stop_before_pixels=True)  # never force=True
    except InvalidDicomError as error:
        raise DicomError(f"{what} is not a DICOM file (it has no DICOM preamble).") from error
    except (EOFError, OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as error:
        raise DicomError(f"{what} looks like DICOM but its header is truncated or damaged.") from error
    rows, columns = int(dataset.get("Rows", 0) or 0), int(dataset.get("Columns", 0) or 0)
    if not rows or not columns:
        raise DicomError(f"{what} is a DICOM file without an image (no rows and columns): perhaps a report, a "
                         "structure set or a plan.")
    try:
        frames = int(dataset.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        frames = 1
    samples = int(dataset.get("SamplesPerPixel", 1) or 1)
    if frames > MAX_FRAMES:
        raise DicomError(f"{what} declares {frames} frames; up to {MAX_FRAMES} are accepted.")
    if rows * columns > MAX_PIXELS:
        raise DicomError(f"{what} declares {columns} × {rows} pixels per frame; up to {MAX_PIXELS // 1_000_000} "
                         "million are accepted.")
    if "PixelData" not in _pixel_tags(source):
        raise DicomError(f"{what} is a DICOM file without pixel data.")
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    return DicomScan(source, dataset, frames, rows, columns, samples, str(dataset.get("Modality", "") or "OT"),
                     photometric == "MONOCHROME1", photometric == "PALETTE COLOR")


def _pixel_tags(source: bytes | str | Path) -> set[str]:
    """Whether the file has pixel data, read without decoding it (``defer_size`` keeps large values on disk)."""
    import pydicom

    try:
        dataset = pydicom.dcmread(_reader(source), defer_size=1024, specific_tags=["PixelData", "FloatPixelData",
                                                                                    "DoubleFloatPixelData"])
    except Exception:  # noqa: BLE001 - a damaged pixel element is reported when the frame is decoded
        return {"PixelData"}
    return {name for name in ("PixelData", "FloatPixelData", "DoubleFloatPixelData") if name in dataset}


def series_order(scans: Sequence[DicomScan]) -> list[int]:
    """The order of single-frame files of one series: by position along the slice normal, else instance number,
    else as given."""
    def key(item: tuple[int, DicomScan]) -> tuple:
        index, scan = item
        position = scan.dataset.get("ImagePositionPatient")
        orientation = scan.dataset.get("ImageOrientationPatient")
        if position is not None and orientation is not None and len(orientation) == 6:
            normal = np.cross(np.asarray(orientation[:3], float), np.asarray(orientation[3:], float))
            return (0, float(np.dot(normal, np.asarray(position, float))), index)
        number = scan.dataset.get("InstanceNumber")
        return (1, float(number) if number not in (None, "") else index, index)

    return [index for index, _ in sorted(enumerate(scans), key=key)]
