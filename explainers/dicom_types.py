"""What every step knows of a DICOM scan before and after its decode (it imports no decoder and no sandbox):
:class:`DicomError`, the limits a scan must keep, its display windows (:class:`Window`, CT presets, DICOM's
linear VOI function) and how a scan is told from a picture (:func:`is_dicom_source`). See
:mod:`explainers.dicom` for a scan as the server holds it, :mod:`explainers.dicom_decode` for its decoding.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explainers import formats
from explainers.image_types import ImageError

DICOM_SUFFIXES = formats.suffixes(formats.scans())  # (".dcm", ".dicom")
# A DICOM file may hold a whole series (multi-frame): larger than a picture, read one frame at a time.
MAX_DICOM_BYTES = 512 * 1024 * 1024
MAX_FRAMES = 4096
# One frame's decoded values (rows × columns × samples, a palette's three channels counted, 1-bit pixels unpacked
# to a byte each): 32 million holds a 5928 × 4728 mammogram; the modality LUT then works in float64 (256 MB).
MAX_FRAME_VALUES = 32_000_000
# Window centre and width, in the modality's units (Hounsfield units for CT).
CT_PRESETS: dict[str, tuple[float, float]] = {
    "brain": (40, 80),
    "subdural": (75, 215),
    "soft tissue": (40, 400),
    "bone": (400, 1800),
    "lung": (-600, 1500),
}
AUTO_PERCENTILES = (0.5, 99.5)
# What may be shown about a scan: geometry and encoding only.
SAFE_ATTRIBUTES = (
    "Modality",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "BitsStored",
)


class DicomError(ImageError):
    """A DICOM file that cannot be shown; the message is one sentence without anything from the file."""


def is_dicom(head: bytes) -> bool:
    """True when ``head`` (the file's first 132 bytes or more) has the DICOM preamble."""
    return len(head) >= 132 and head[128:132] == b"DICM"


def is_dicom_source(source: bytes | str | Path, name: str | None = None) -> bool:
    """A DICOM file: the DICM preamble, or a scan's extension (.dcm, …), which explainers.dicom then checks."""
    if isinstance(source, (bytes, bytearray)):
        return is_dicom(bytes(source[:132])) or (name or "").lower().endswith(DICOM_SUFFIXES)
    path = Path(source)
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with open(path, "rb") as file:
            return is_dicom(file.read(132))
    except OSError:
        return False


@dataclass(frozen=True)
class Window:
    """A display window: ``centre`` and ``width`` in the modality's units, or None for the file's own VOI."""

    name: str
    centre: float | None = None
    width: float | None = None


def frame_message(frames: int, index: int) -> str:
    return f"This scan has {frames} frame{'s' * (frames > 1)}; there is no frame {index + 1}."


def scan_windows(samples: int, palette: bool, own: bool, modality: str) -> list[Window]:
    if samples > 1 or palette:
        return [Window("as stored (colour)")]
    mine = [Window("the file's own")] if own else []
    auto = [Window("automatic (percentiles)"), Window("full range")]
    presets = [Window(name, *values) for name, values in CT_PRESETS.items()] if modality == "CT" else []
    return mine + auto + presets


def linear_window(values: np.ndarray, centre: float, width: float) -> np.ndarray:
    """DICOM's linear VOI function (PS3.3 C.11.2.1.2.1) onto 0–255."""
    width = max(float(width), 1.0)
    scaled = ((values - (centre - 0.5)) / (width - 1) + 0.5) * 255
    return scaled.clip(0, 255).round().astype(np.uint8)
