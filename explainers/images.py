"""Reading images from files and uploads into an :class:`InputImage`, with one clear sentence for bad input: the
server's entry point, every byte decoded in the sandbox (:mod:`explainers.sandbox`, by
:mod:`explainers.image_decode` in its child).

An InputImage (:mod:`explainers.image_types`, re-exported here with the limits and formats) carries what every
later step needs and nothing that identifies a person: the pixels as shown (H×W×3 uint8 RGB), where they came
from, the display window and frame (for scans), a digest of the pixels (the cache key's image part) and a display
name. An upload's display name is made from the digest, never from the file name, which may name the patient.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from explainers import sandbox
from explainers.dicom_types import is_dicom_source
from explainers.image_types import (
    ALLOWED_FORMATS,
    IMAGE_SUFFIXES,
    MAX_ASPECT,
    MAX_FILE_BYTES,
    MAX_PIXELS,
    MAX_SIDE,
    PICTURE_FORMATS,
    UPLOAD_EXTENSIONS,
    ImageError,
    InputImage,
    SourceKind,
    as_input,
    check_size,
    image_digest,
    to_uint8,
)

__all__ = [
    "ALLOWED_FORMATS",
    "IMAGE_SUFFIXES",
    "MAX_ASPECT",
    "MAX_FILE_BYTES",
    "MAX_PIXELS",
    "MAX_SIDE",
    "PICTURE_FORMATS",
    "UPLOAD_EXTENSIONS",
    "ImageError",
    "InputImage",
    "SourceKind",
    "as_input",
    "decode_image",
    "image_digest",
    "image_files",
    "is_dicom_source",
    "load_image",
    "to_uint8",
]


def decode_image(source: bytes | str | Path, name: str | None = None) -> np.ndarray:
    """The pixels (H×W×3 uint8 RGB) of :func:`load_image`: decoded in the sandbox, ImageError with a sentence."""
    return load_image(source, name).pixels


def load_image(
    source: bytes | str | Path, name: str | None = None, *, sample: bool = False, frame: int = 0
) -> InputImage:
    """Reads an image file (a path) or an upload (bytes) into an :class:`InputImage`; raises ImageError.

    Decoded in the sandbox (:mod:`explainers.sandbox`): a decoder that crashes, loops or runs out of memory stops
    a child process, and the caller gets one sentence (SandboxError). A file keeps its own name for display; an
    upload is named by its digest (its file name is only used in error messages, which go to the person who
    uploaded it). A DICOM scan is always named by its digest (a file name may hold a patient's name), at
    ``frame`` (0: the first) through its default window.
    """
    if isinstance(source, (bytes, bytearray)) and not is_dicom_source(source, name):
        # here too, so an oversized upload is never piped (this module's limit, which a test may lower)
        check_size(len(source), name or "the upload", MAX_FILE_BYTES)
    reply = sandbox.run_on_source("image", source, {"name": name, "sample": sample, "frame": frame})
    return sandbox.image_reply(reply, source, sample)


def image_files(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, sorted by name (none when it does not exist)."""
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file())
