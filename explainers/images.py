"""Reading images from files and uploads into an :class:`InputImage`, with one clear sentence for bad input.

An InputImage carries what every later step needs and nothing that identifies a person: the pixels as shown
(H×W×3 uint8 RGB), where they came from, the display window and frame (for scans), a digest of the pixels (the
cache key's image part) and a display name. An upload's display name is made from the digest, never from the
file name, which may name the patient.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import stat
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from explainers import formats
from storage.messages import one_line

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
_HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
_NOT_REGULAR = ((stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"), (stat.S_ISFIFO, "a named pipe"),
                (stat.S_ISSOCK, "a socket"))

SourceKind = Literal["file", "upload", "sample", "dicom"]


class ImageError(ValueError):
    """An image a user gave us that we cannot use; the message is one sentence meant for them."""


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


def _to_rgb(image: Image.Image) -> np.ndarray:
    """Any PIL mode to H×W×3 uint8: 16-bit and float stretched, transparency composited over black."""
    if image.mode in _HIGH_DEPTH_MODES:
        gray = to_uint8(np.asarray(image))
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, rgba)
    array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(array)


def _read_file(path: Path, name: str) -> bytes:
    """At most MAX_FILE_BYTES + 1 bytes of a regular file; anything else is refused before it is read.

    ``os.stat`` first, so a device, named pipe or socket is never opened (reading /dev/zero never ends, opening
    a pipe waits for a writer); then the opened file is checked again, in case it was swapped in between.
    """
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise ImageError(f"The image file {name} does not exist.") from None
    except OSError as error:
        raise ImageError(f"The image file {name} cannot be read ({error.strerror or error}).") from None
    _check_regular(info, name)
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        with open(descriptor, "rb") as file:
            _check_regular(os.fstat(file.fileno()), name)
            return file.read(MAX_FILE_BYTES + 1)
    except ImageError:
        raise
    except OSError as error:
        raise ImageError(f"The image file {name} cannot be read ({error.strerror or error}).") from None


def _check_regular(info: os.stat_result, name: str) -> None:
    """Refuses a folder, device, pipe or socket, and a regular file over MAX_FILE_BYTES, by its stat."""
    if stat.S_ISDIR(info.st_mode):
        raise ImageError(f"{name} is a folder, not an image file.")
    if not stat.S_ISREG(info.st_mode):
        what = next((label for test, label in _NOT_REGULAR if test(info.st_mode)), "not a file")
        raise ImageError(f"{name} is not a regular file ({what}).")
    _check_size(info.st_size, name)


def _check_size(size: int, name: str) -> None:
    if size == 0:
        raise ImageError(f"{name} is empty (0 bytes).")
    if size > MAX_FILE_BYTES:
        raise ImageError(f"{name} is {size / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB.")


def _check_header_size(width: int, height: int, name: str) -> None:
    """Refuses, from the header alone, images without pixels, with too many, or with an absurd aspect ratio."""
    if width <= 0 or height <= 0:
        raise ImageError(f"{name} has no pixels.")
    if width * height > MAX_PIXELS:
        raise ImageError(f"{name} is {width}×{height} pixels; the limit is {MAX_PIXELS // 1_000_000} megapixels.")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise ImageError(f"{name} is {width}×{height} pixels, an aspect ratio beyond the limit of 1:{MAX_ASPECT}.")


def _downscaled(image: Image.Image) -> Image.Image:
    """The loaded image reduced by a whole factor to at most MAX_SIDE on its long side (unchanged if smaller)."""
    factor = math.ceil(max(image.size) / MAX_SIDE)
    if factor <= 1:
        return image
    if image.mode in ("1", "P") or image.mode.startswith("I;16"):  # modes Image.reduce does not take
        size = (max(1, image.width // factor), max(1, image.height // factor))
        return image.resize(size, Image.Resampling.BOX)
    return image.reduce(factor)


def is_dicom_source(source: bytes | str | Path, name: str | None = None) -> bool:
    """A DICOM file: the DICM preamble, or a scan's extension (.dcm, …), which explainers.dicom then checks."""
    from explainers.dicom import DICOM_SUFFIXES, is_dicom

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


def decode_image(source: bytes | str | Path, name: str | None = None) -> np.ndarray:
    """The pixels (H×W×3 uint8 RGB) of :func:`load_image`: decoded in the sandbox, ImageError with a sentence."""
    return load_image(source, name).pixels


def _decode_here(source: bytes | str | Path, name: str | None = None) -> np.ndarray:
    """Decodes a picture (a format of ALLOWED_FORMATS) into H×W×3 uint8 RGB, EXIF orientation applied (in the
    sandbox's child: :func:`load_here`).

    Raises ImageError with a sentence naming the file for anything unreadable, empty, oversized, of another
    format, not a regular file, over MAX_PIXELS or with an aspect ratio beyond 1:MAX_ASPECT (from the header).
    Memory stays bounded: an image over MAX_SIDE pixels on a side is downscaled in PIL by a whole factor to at
    most MAX_SIDE (a JPEG while decoding, through ``draft``; others with ``reduce``) before any numpy
    conversion, and 16-bit, 32-bit and float images are stretched in float32 after that.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        name = name or path.name
        data = _read_file(path, name)
    else:
        data = bytes(source)
        name = name or "the upload"
    _check_size(len(data), name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in ALLOWED_FORMATS:
                raise ImageError(f"{name} is a {image.format} image; use {PICTURE_FORMATS}.")
            _check_header_size(*image.size, name)
            image.seek(0)  # the first frame of a multi-page TIFF or animated WebP
            if ALLOWED_FORMATS[image.format] == "JPEG" and max(image.size) > MAX_SIDE:
                factor = math.ceil(max(image.size) / MAX_SIDE)
                image.draft(None, (image.width // factor, image.height // factor))  # DCT scaling: less to decode
            image.load()
            return _to_rgb(ImageOps.exif_transpose(_downscaled(image)))
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{name} is too large to decode safely (over {MAX_PIXELS // 1_000_000} megapixels).") \
            from None
    except UnidentifiedImageError:
        raise ImageError(f"{name} is not an image we can read; use {PICTURE_FORMATS}.") from None
    except MemoryError:
        raise  # the sandbox's child turns it into its own sentence: the file was too big, not damaged
    except (OSError, ValueError, SyntaxError, EOFError, OverflowError, struct.error,
            ZeroDivisionError) as error:  # what PIL's decoders raise on damaged data
        raise ImageError(f"{name} is damaged or truncated and cannot be decoded ({one_line(error)}).") from None


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
    def from_pixels(cls, pixels: np.ndarray, source: SourceKind = "file", display_name: str | None = None,
                    **details: object) -> InputImage:
        pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
        digest = image_digest(pixels)
        return cls(pixels, source, display_name or f"image {digest[:8]}", digest, **details)  # type: ignore[arg-type]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.pixels.shape


def as_input(image: InputImage | np.ndarray) -> InputImage:
    """An InputImage for an InputImage or a bare H×W×3 array (from code, not from a person)."""
    return image if isinstance(image, InputImage) else InputImage.from_pixels(image, "file")


def load_image(source: bytes | str | Path, name: str | None = None, *, sample: bool = False,
               frame: int = 0) -> InputImage:
    """Reads an image file (a path) or an upload (bytes) into an :class:`InputImage`; raises ImageError.

    Decoded in the sandbox (:mod:`explainers.sandbox`): a decoder that crashes, loops or runs out of memory stops
    a child process, and the caller gets one sentence (SandboxError). A file keeps its own name for display; an
    upload is named by its digest (its file name is only used in error messages, which go to the person who
    uploaded it). A DICOM scan is always named by its digest (a file name may hold a patient's name), at
    ``frame`` (0: the first) through its default window.
    """
    from explainers import sandbox

    if isinstance(source, (bytes, bytearray)) and not is_dicom_source(source, name):
        _check_size(len(source), name or "the upload")  # here too, so an oversized upload is never piped
    reply = sandbox.run_on_source("image", source, {"name": name, "sample": sample, "frame": frame})
    return sandbox.image_reply(reply, source, sample)


def load_here(source: bytes | str | Path, name: str | None = None, *, sample: bool = False,
              frame: int = 0) -> InputImage:
    """:func:`load_image`'s work, in this process: only the sandbox's child calls it."""
    if is_dicom_source(source, name):
        from explainers.dicom_decode import read_dicom

        return read_dicom(source, name if isinstance(source, (bytes, bytearray)) else None).image(frame)
    pixels = _decode_here(source, name)
    digest = image_digest(pixels)
    if isinstance(source, (str, Path)):
        return InputImage(pixels, "sample" if sample else "file", Path(source).name, digest)
    return InputImage(pixels, "upload", f"upload {digest[:8]}", digest)


def image_files(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, sorted by name (none when it does not exist)."""
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file())

