"""Reading images from files and uploads into an :class:`InputImage`, with one clear sentence for bad input.

An InputImage carries what every later step needs and nothing that identifies a person: the pixels as shown
(H×W×3 uint8 RGB), where they came from, the display window and frame (for scans), a digest of the pixels (the
cache key's image part) and a display name. An upload's display name is made from the digest, never from the
file name, which may name the patient.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG", "TIFF": "TIFF", "BMP": "BMP", "WEBP": "WebP"}
UPLOAD_EXTENSIONS = ("png", "jpg", "jpeg", "tif", "tiff", "bmp", "webp")
MAX_FILE_BYTES = 50 * 1024 * 1024
# Larger images are almost certainly a decompression bomb or a mistake; explanations run at ≤ 240 px anyway.
MAX_PIXELS = 40_000_000

SourceKind = Literal["file", "upload", "sample", "dicom"]


class ImageError(ValueError):
    """An image a user gave us that we cannot use; the message is one sentence meant for them."""


def _to_uint8(array: np.ndarray) -> np.ndarray:
    """Stretches a high-bit-depth or float image to 0..255 (its own min to max, as a viewer would)."""
    array = array.astype(np.float64)
    finite = array[np.isfinite(array)]
    if finite.size == 0:
        return np.zeros(array.shape, dtype=np.uint8)
    low, high = float(finite.min()), float(finite.max())
    scaled = (np.nan_to_num(array, nan=low) - low) / (high - low) * 255.0 if high > low else np.zeros_like(array)
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)


def _to_rgb(image: Image.Image) -> np.ndarray:
    """Any PIL mode to H×W×3 uint8: 16-bit and float stretched, transparency composited over black."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        gray = _to_uint8(np.asarray(image))
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, rgba)
    array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(array)


def decode_image(source: bytes | str | Path, name: str | None = None) -> np.ndarray:
    """Decodes PNG, JPEG, TIFF, BMP or WebP into H×W×3 uint8 RGB, EXIF orientation applied.

    Raises ImageError with a sentence naming the file for anything unreadable, empty, oversized or of
    another format.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        name = name or path.name
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ImageError(f"The image file {name} does not exist.") from None
        except IsADirectoryError:
            raise ImageError(f"{name} is a folder, not an image file.") from None
        except OSError as error:
            raise ImageError(f"The image file {name} cannot be read ({error.strerror or error}).") from None
    else:
        data = bytes(source)
        name = name or "the upload"
    if len(data) == 0:
        raise ImageError(f"{name} is empty (0 bytes).")
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(f"{name} is {len(data) / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in ALLOWED_FORMATS:
                raise ImageError(f"{name} is a {image.format} image; use PNG, JPEG, TIFF, BMP or WebP.")
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ImageError(f"{name} is {width}×{height} pixels; the limit is {MAX_PIXELS // 1_000_000} "
                                 "megapixels.")
            if width == 0 or height == 0:
                raise ImageError(f"{name} has no pixels.")
            image.seek(0)  # the first frame of a multi-page TIFF or animated WebP
            image = ImageOps.exif_transpose(image)
            image.load()
            return _to_rgb(image)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{name} is too large to decode safely (over {MAX_PIXELS // 1_000_000} megapixels).") \
            from None
    except UnidentifiedImageError:
        raise ImageError(f"{name} is not an image we can read; use PNG, JPEG, TIFF, BMP or WebP.") from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as error:
        raise ImageError(f"{name} is damaged or truncated and cannot be decoded ({error}).") from None


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

    @classmethod
    def from_pixels(cls, pixels: np.ndarray, source: SourceKind = "file", display_name: str | None = None,
                    **details: object) -> "InputImage":
        pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
        digest = image_digest(pixels)
        return cls(pixels, source, display_name or f"image {digest[:8]}", digest, **details)  # type: ignore[arg-type]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.pixels.shape


def as_pixels(image: "InputImage | np.ndarray") -> np.ndarray:
    """The pixels of an InputImage, or the array itself."""
    return image.pixels if isinstance(image, InputImage) else np.asarray(image)


def as_input(image: "InputImage | np.ndarray") -> InputImage:
    """An InputImage for an InputImage or a bare H×W×3 array (from code, not from a person)."""
    return image if isinstance(image, InputImage) else InputImage.from_pixels(image, "file")


def load_image(source: bytes | str | Path, name: str | None = None, *, sample: bool = False) -> InputImage:
    """Reads an image file (a path) or an upload (bytes) into an :class:`InputImage`; raises ImageError.

    A file keeps its own name for display; an upload is named by its digest (its file name is only used in
    error messages, which go to the person who uploaded it).
    """
    pixels = decode_image(source, name)
    digest = image_digest(pixels)
    if isinstance(source, (str, Path)):
        return InputImage(pixels, "sample" if sample else "file", Path(source).name, digest)
    return InputImage(pixels, "upload", f"upload {digest[:8]}", digest)


IMAGE_SUFFIXES = tuple(f".{extension}" for extension in UPLOAD_EXTENSIONS)


def image_files(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, sorted by name (none when it does not exist)."""
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file())

