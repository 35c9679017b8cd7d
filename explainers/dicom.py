"""DICOM scans: what the rest of the app holds of one (its header's safe facts and where its bytes are) and the
windows it offers (:mod:`explainers.dicom_types`, re-exported here with the limits). Every byte of the file is
parsed and decoded in the sandbox (:mod:`explainers.sandbox`, by :mod:`explainers.dicom_decode`): header first
(its size before any pixel is decoded), then one frame at a time, through the modality LUT (rescale slope and
intercept), a window (the file's own VOI LUT or window, a CT preset, or an automatic percentile window for MR,
which has no fixed presets) and MONOCHROME1's inversion, to the 8-bit picture the models see.

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

from explainers import sandbox
from explainers.dicom_types import (
    AUTO_PERCENTILES,
    CT_PRESETS,
    DICOM_SUFFIXES,
    MAX_DICOM_BYTES,
    MAX_FRAME_VALUES,
    MAX_FRAMES,
    SAFE_ATTRIBUTES,
    DicomError,
    Window,
    frame_message,
    is_dicom,
    linear_window,
    scan_windows,
)
from explainers.image_types import InputImage

__all__ = [
    "AUTO_PERCENTILES",
    "CT_PRESETS",
    "DICOM_SUFFIXES",
    "MAX_DICOM_BYTES",
    "MAX_FRAME_VALUES",
    "MAX_FRAMES",
    "SAFE_ATTRIBUTES",
    "DicomError",
    "DicomScan",
    "Window",
    "frame_message",
    "is_dicom",
    "linear_window",
    "read_scan",
    "scan_windows",
]


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
        fields = {
            key: header[key]
            for key in (
                "frames",
                "rows",
                "columns",
                "samples",
                "modality",
                "monochrome1",
                "palette",
                "photometric",
                "bits_stored",
                "own_window",
            )
        }
        return cls(source, name, **fields)

    @property
    def summary(self) -> dict[str, Any]:
        """What may be shown about the scan (SAFE_ATTRIBUTES only)."""
        return {
            "modality": self.modality,
            "size": f"{self.columns} × {self.rows}",
            "frames": self.frames,
            "photometric": self.photometric,
            "bits stored": self.bits_stored,
        }

    @property
    def has_own_window(self) -> bool:
        return self.own_window

    def windows(self) -> list[Window]:
        """The windows this scan offers, the default first: its own (when it has one), else automatic; CT presets."""
        return scan_windows(self.samples, self.palette, self.own_window, self.modality)

    def frame(self, index: int = 0) -> np.ndarray:
        """Frame ``index`` in the modality's units (after the modality LUT), decoded alone in the sandbox."""
        self._check_index(index)
        return sandbox.run_on_source("scan_frame", self.source, {"name": self.name, "index": index}).arrays[0]

    def image(self, index: int = 0, window: Window | None = None) -> InputImage:
        """Frame ``index`` windowed to an 8-bit RGB picture, named by its digest (decoded in the sandbox)."""
        self._check_index(index)
        window = window or self.windows()[0]
        arguments = {"name": self.name, "index": index, "window": [window.name, window.centre, window.width]}
        return sandbox.image_reply(sandbox.run_on_source("scan_image", self.source, arguments), self.source)

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.frames:
            raise DicomError(frame_message(self.frames, index))


def read_scan(source: bytes | str | Path, name: str | None = None) -> DicomScan:
    """Reads and checks a DICOM file's header in the sandbox (no pixel is decoded); DicomError with one sentence
    otherwise, SandboxError when the decoder stopped."""
    return DicomScan.from_header(source, name, sandbox.run_on_source("scan", source, {"name": name}).result)
