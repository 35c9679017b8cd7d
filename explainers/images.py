"""Reading images from files and uploads into H×W×3 uint8 RGB, with one clear sentence for bad input."""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG", "TIFF": "TIFF", "BMP": "BMP", "WEBP": "WebP"}
UPLOAD_EXTENSIONS = ("png", "jpg", "jpeg", "tif", "tiff", "bmp", "webp")
MAX_FILE_BYTES = 50 * 1024 * 1024
# Larger images are almost certainly a decompression bomb or a mistake; explanations run at ≤ 240 px anyway.
MAX_PIXELS = 40_000_000

ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets"
SAMPLES_DIR = ASSETS_DIR / "samples"


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


def load_image(source: bytes | str | Path, name: str | None = None) -> np.ndarray:
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


@dataclass(frozen=True)
class Sample:
    """A bundled sample image."""

    name: str  # e.g. "photos/chelsea"
    path: Path
    domain: str  # the model domain it suits: imagenet, mri, digits
    label: str | None  # the true label where the file name says it

    @property
    def title(self) -> str:
        return self.path.stem if self.label is None else f"{self.path.stem} ({self.label})"


# Folder under assets/samples → the model domain it suits.
SAMPLE_DOMAINS = {"photos": "imagenet", "mri": "mri", "digits": "digits"}
MRI_LABELS = {"gl": "glioma", "me": "meningioma", "no": "notumor", "pi": "pituitary"}


def _label_of(folder: str, stem: str) -> str | None:
    if folder == "mri" and "-" in stem:
        return MRI_LABELS.get(stem.split("-", 1)[1][:2])
    if folder == "digits" and stem.startswith("digit_"):
        return stem.removeprefix("digit_")
    return None


def list_samples() -> list[Sample]:
    """Every bundled sample image, photos first, sorted by name within a folder."""
    samples = []
    for folder in SAMPLE_DOMAINS:
        for path in sorted((SAMPLES_DIR / folder).glob("*")):
            if path.suffix.lower().lstrip(".") in UPLOAD_EXTENSIONS:
                samples.append(Sample(f"{folder}/{path.stem}", path, SAMPLE_DOMAINS[folder],
                                      _label_of(folder, path.stem)))
    return samples


def get_sample(name: str) -> Sample:
    for sample in list_samples():
        if sample.name == name:
            return sample
    raise ImageError(f"There is no sample image named {name}.")
