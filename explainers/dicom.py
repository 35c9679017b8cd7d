"""DICOM scans: what the rest of the app holds of one (its header's safe facts and where its bytes are) and the
windows it offers. Every byte of the file is parsed and decoded in the sandbox (:mod:`explainers.sandbox`, by
:mod:`explainers.dicom_decode`): header first (its size before any pixel is decoded), then one frame at a time,
through the modality LUT (rescale slope and intercept), a window (the file's own VOI LUT or window, a CT preset,
or an automatic percentile window for MR, which has no fixed presets) and MONOCHROME1's inversion, to the 8-bit
picture the models see.

Privacy: nothing read from a file's header leaves the sandbox except the attributes in ``SAFE_ATTRIBUTES``
(image geometry and encoding, none of them in PS3.15 Annex E's Basic Profile) and a slice's position along its
normal (for ordering a series). A scan is named by a digest of its pixels, never by its file name or any
identifying attribute, and its cache key comes from the pixels too. Uploads are never read with ``force=True``:
a file without the DICOM preamble is refused.

Decoders: pydicom's own (uncompressed, RLE, deflate), pylibjpeg-openjpeg (JPEG 2000), pylibjpeg-rle and
python-gdcm (JPEG, JPEG-LS); all permissive licences. A transfer syntax none of them decodes gets one sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from explainers import formats
from explainers.images import ImageError, InputImage

DICOM_SUFFIXES = formats.suffixes(formats.scans())  # (".dcm", ".dicom")
# A DICOM file may hold a whole series (multi-frame): larger than a picture, read one frame at a time.
MAX_DICOM_BYTES = 512 * 1024 * 1024
MAX_FRAMES = 4096
# One frame's decoded values (rows × columns × samples, a palette's three channels counted, 1-bit pixels unpacked
# to a byte each): 32 million holds a 5928 × 4728 mammogram; the modality LUT then works in float64 (256 MB).
MAX_FRAME_VALUES = 32_000_000
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


@dataclass(frozen=True)
class Window:
    """A display window: ``centre`` and ``width`` in the modality's units, or None for the file's own VOI."""

    name: str
    centre: float | None = None
    width: float | None = None


@dataclass
class DicomScan:
    """A DICOM file whose header was read and checked in the sandbox; frames are decoded there on demand."""

    source: bytes | str | Path = field(repr=False)
    name: str | None = field(repr=False)  # an upload's file name: only for the sandbox's sentences
    frames: int
    rows: int
    columns: int
    samples: int
    modality: str
    monochrome1: bool
    palette: bool = False  # PALETTE COLOR: one index per pixel, shown through the file's colour table
    photometric: str = ""
    bits_stored: int = 0
    own_window: bool = False  # a usable VOI LUT or window in the file

    @classmethod
    def from_header(cls, source: bytes | str | Path, name: str | None, header: dict[str, Any]) -> DicomScan:
        fields = {key: header[key] for key in ("frames", "rows", "columns", "samples", "modality", "monochrome1",
                                               "palette", "photometric", "bits_stored", "own_window")}
        return cls(source, name, **fields)

    @property
    def summary(self) -> dict[str, Any]:
        """What may be shown about the scan (SAFE_ATTRIBUTES only)."""
        return {"modality": self.modality, "size": f"{self.columns} × {self.rows}", "frames": self.frames,
                "photometric": self.photometric, "bits stored": self.bits_stored}

    @property
    def has_own_window(self) -> bool:
        return self.own_window

    def windows(self) -> list[Window]:
        """The windows this scan offers, the default first: its own (when it has one), else automatic; CT presets."""
        return scan_windows(self.samples, self.palette, self.own_window, self.modality)

    def frame(self, index: int = 0) -> np.ndarray:
        """Frame ``index`` in the modality's units (after the modality LUT), decoded alone in the sandbox."""
        from explainers import sandbox

        self._check_index(index)
        return sandbox.run_on_source("scan_frame", self.source, {"name": self.name, "index": index}).arrays[0]

    def image(self, index: int = 0, window: Window | None = None) -> InputImage:
        """Frame ``index`` windowed to an 8-bit RGB picture, named by its digest (decoded in the sandbox)."""
        from explainers import sandbox

        self._check_index(index)
        window = window or self.windows()[0]
        arguments = {"name": self.name, "index": index, "window": [window.name, window.centre, window.width]}
        return sandbox.image_reply(sandbox.run_on_source("scan_image", self.source, arguments), self.source)

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.frames:
            raise DicomError(frame_message(self.frames, index))


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


def read_scan(source: bytes | str | Path, name: str | None = None) -> DicomScan:
    """Reads and checks a DICOM file's header in the sandbox (no pixel is decoded); DicomError with one sentence
    otherwise, SandboxError when the decoder stopped."""
    from explainers import sandbox

    return DicomScan.from_header(source, name, sandbox.run_on_source("scan", source, {"name": name}).result)
