"""What every step knows of an image, at the bottom of the decoding modules (it imports none of them): the
:class:`InputImage` a decode ends in, :class:`ImageError`, the limits a picture must keep and the formats read.

An InputImage carries what every later step needs and nothing that identifies a person: the pixels as shown
(H×W×3 uint8 RGB), where they came from, the display window and frame (for scans), a digest of the pixels (the
cache key's image part) and a display name. An upload's display name is made from the digest, never from the
file name, which may name the patient.

Layers, each importing only those above it in this list: image_types, dicom_types, archive_types (data and
limits) → image_decode, dicom_decode, archive_decode (decoding, in the sandbox's child only) → sandbox_child →
sandbox (the server's pool client) → images, dicom, archives (the server's entry points, through the sandbox).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

import numpy as np

from explainers import formats

# All from explainers.formats, the one list of what is read.
ALLOWED_FORMATS = formats.pil_names()  # PIL's name → the user's: {"WEBP": "WebP", "MPO": "JPEG", …}
UPLOAD_EXTENSIONS = formats.extensions()  # pictures and scans: ("png", "jpg", …, "dcm", "dicom")
IMAGE_SUFFIXES = formats.suffixes()  # the same with the dot, for folders: (".png", …)
PICTURE_FORMATS = formats.listed(formats.pictures())  # "PNG, JPEG, TIFF, BMP or WebP"
MAX_FILE_BYTES = 50 * 1024 * 1024
# Larger images are almost certainly a decompression bomb or a mistake; explanations run at ≤ 240 px anyway.
MAX_PIXELS = 40_000_000
# A 20000×1 strip is no photograph, and a centre crop would blow it up to gigabytes; checked from the header.
MAX_ASPECT = 50
# Decoded images are downscaled (by a whole factor, in PIL) to at most this many pixels on the long side before
# any numpy conversion, which bounds decode memory for every mode; explanations run at ≤ 240 px anyway.
MAX_SIDE = 4096

SourceKind = Literal["file", "upload", "sample", "dicom"]


class ImageError(ValueError):
    """An image a user gave us that we cannot use; the message is one sentence meant for them."""


def check_size(size: int, name: str, limit: int | None = None) -> None:
    """Refuses an empty file and one over ``limit`` bytes (MAX_FILE_BYTES), with a sentence naming it."""
    limit = MAX_FILE_BYTES if limit is None else limit
    if size == 0:
        raise ImageError(f"{name} is empty (0 bytes).")
    if size > limit:
        raise ImageError(f"{name} is {size / 2**20:.0f} MB; the limit is {limit // 2**20} MB.")


def to_uint8(array: np.ndarray) -> np.ndarray:
    """Stretches a high-bit-depth or float image to 0..255 (its own min to max, as a viewer would); uint8 is
    returned as it is (a scan's colour frame is already what is shown).

    NaN and -inf become the minimum, +inf the maximum; integers are offset exactly. One working copy: float32
    (a picture is at most MAX_SIDE on a side by now), but float64 stays float64 (a scan's values after its
    modality LUT, whose digits float32 would round off).
    """
    array = np.asarray(array)
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.integer):
        if array.size == 0:
            return np.zeros(array.shape, dtype=np.uint8)
        low, high = int(array.min()), int(array.max())
        if high == low:
            return np.zeros(array.shape, dtype=np.uint8)
        # Subtract in integers, exactly: float32 cannot tell 2_000_000_000 from 2_000_000_010.
        work = np.subtract(array, low, dtype=np.int64).astype(np.float32)
        work *= np.float32(255.0 / (high - low))
    else:
        wide = array.dtype == np.float64
        work = np.array(array, dtype=np.float64 if wide else np.float32)
        finite = np.isfinite(work)
        if not finite.any():
            return np.zeros(array.shape, dtype=np.uint8)
        lowest = float(np.min(work, where=finite, initial=np.inf))
        highest = float(np.max(work, where=finite, initial=-np.inf))
        del finite
        if highest <= lowest:
            return np.zeros(array.shape, dtype=np.uint8)
        np.nan_to_num(work, copy=False, nan=lowest, posinf=highest, neginf=lowest)
        with np.errstate(over="ignore", invalid="ignore"):  # a float32 range wider than float32 overflows to inf
            if wide:  # divided, then scaled, as scans always were: a value on a .5 rounds as before (same digest)
                work -= lowest
                work /= highest - lowest
                work *= 255.0
            else:
                work -= np.float32(lowest)
                work *= np.float32(255.0 / (highest - lowest))
    np.rint(work, out=work)
    np.clip(work, 0, 255, out=work)
    return work.astype(np.uint8)


def image_digest(image: np.ndarray) -> str:
    """Content digest of decoded pixels (shape included), so the same picture gets the same key."""
    digest = hashlib.sha256(str(image.shape).encode())
    digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class InputImage:
    """An image ready to explain: the pixels as displayed, with where they came from and how they were shown."""

    pixels: np.ndarray  # H × W × 3 uint8 RGB
    source: SourceKind
    display_name: str  # never a patient's data: a sample's or file's name, or "upload <digest>"
    digest: str  # of the pixels (shape included): the image's part of every cache key
    window: tuple[float, float] | None = None  # centre and width, for scans shown through a window
    frame: int | None = None  # the frame of a multi-frame scan
    modality: str | None = None  # a DICOM scan's modality ("MR", "CT", …): what the domain check trusts first

    @classmethod
    def from_pixels(
        cls,
        pixels: np.ndarray,
        source: SourceKind = "file",
        display_name: str | None = None,
        *,
        window: tuple[float, float] | None = None,
        frame: int | None = None,
        modality: str | None = None,
    ) -> InputImage:
        pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
        digest = image_digest(pixels)
        return cls(pixels, source, display_name or f"image {digest[:8]}", digest, window, frame, modality)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.pixels.shape


def as_input(image: InputImage | np.ndarray) -> InputImage:
    """An InputImage for an InputImage or a bare H×W×3 array (from code, not from a person)."""
    return image if isinstance(image, InputImage) else InputImage.from_pixels(image, "file")
