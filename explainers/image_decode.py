"""Decoding pictures with PIL, and any file a person brings into an :class:`InputImage`: run inside the sandbox's
child (:mod:`explainers.sandbox_child`), never in the server, which goes through :func:`explainers.images.load_image`.
"""

from __future__ import annotations

import io
import math
import os
import stat
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from explainers.dicom_decode import read_dicom
from explainers.dicom_types import is_dicom_source
from explainers.image_types import (
    ALLOWED_FORMATS,
    MAX_ASPECT,
    MAX_FILE_BYTES,
    MAX_PIXELS,
    MAX_SIDE,
    PICTURE_FORMATS,
    ImageError,
    InputImage,
    check_size,
    image_digest,
    to_uint8,
)
from storage.messages import one_line

_HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
_NOT_REGULAR = (
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
)


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
    check_size(info.st_size, name)


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


def decode_here(source: bytes | str | Path, name: str | None = None) -> np.ndarray:
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
    check_size(len(data), name)
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
        raise ImageError(f"{name} is too large to decode safely (over {MAX_PIXELS // 1_000_000} megapixels).") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name} is not an image we can read; use {PICTURE_FORMATS}.") from None
    except MemoryError:
        raise  # the sandbox's child turns it into its own sentence: the file was too big, not damaged
    except (
        OSError,
        ValueError,
        SyntaxError,
        EOFError,
        OverflowError,
        struct.error,
        ZeroDivisionError,
    ) as error:  # what PIL's decoders raise on damaged data
        raise ImageError(f"{name} is damaged or truncated and cannot be decoded ({one_line(error)}).") from None


def load_here(
    source: bytes | str | Path, name: str | None = None, *, sample: bool = False, frame: int = 0
) -> InputImage:
    """:func:`explainers.images.load_image`'s work, in this process: only the sandbox's child calls it."""
    if is_dicom_source(source, name):
        return read_dicom(source, name if isinstance(source, (bytes, bytearray)) else None).image(frame)
    pixels = decode_here(source, name)
    digest = image_digest(pixels)
    if isinstance(source, (str, Path)):
        return InputImage(pixels, "sample" if sample else "file", Path(source).name, digest)
    return InputImage(pixels, "upload", f"upload {digest[:8]}", digest)
