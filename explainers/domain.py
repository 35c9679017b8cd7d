"""Does an input look like the model's domain? A cheap check on the pixels (and a DICOM scan's modality), run
beside every verdict, so that a colour photo given to the MRI model is flagged rather than classified silently.

The statistics and their thresholds are measured on the bundled images and pydicom's test files
(tests/test_domain.py): every bundled MRI and every DICOM MR passes the MRI check, every bundled photo fails it.

- *colour*: the mean, over pixels, of the largest minus the smallest channel (0..255). MRIs and digits: 0.00 (the
  JPEGs' chroma is nil); the photos: 41 to 107. Limit 8.
- *dark frame*: the fraction of the outer 6 % border darker than a tenth of the image's 1..99 % range. A brain
  slice sits on black: the MRIs 0.87 to 1.00, the photos 0.02 to 0.23. Limit 0.5. (A DICOM MR is trusted by its
  modality instead: pydicom's 64 × 64 MR crop has 0.18.)
- *mid-tones*: the fraction of pixels between 20 % and 80 % of that range. Digits: 0.15 to 0.23; MRIs 0.26 to
  0.63; photos 0.60 to 0.81. Limit 0.3, for drawings only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from explainers.images import InputImage

COLOUR_LIMIT = 8.0
DARK_FRAME_LIMIT = 0.5
MID_TONE_LIMIT = 0.3
# Larger images are checked on a regular sample of their pixels (the thresholds were set on images ≤ 512 px).
MAX_SIDE = 1024
_MODALITIES = {
    "MR": "an MRI",
    "CT": "a CT scan",
    "US": "an ultrasound image",
    "NM": "a nuclear-medicine image",
    "CR": "a radiograph",
    "DX": "a radiograph",
    "MG": "a mammogram",
    "PT": "a PET image",
}


def colourfulness(pixels: np.ndarray) -> float:
    pixels = np.asarray(pixels, dtype=np.int16)
    return float(np.mean(pixels.max(axis=2) - pixels.min(axis=2)))


def _grey_range(pixels: np.ndarray) -> tuple[np.ndarray, float, float]:
    grey = np.asarray(pixels, dtype=np.float32).mean(axis=2)
    low, high = np.percentile(grey, (1, 99))
    return grey, float(low), float(max(high - low, 1.0))


def dark_frame(pixels: np.ndarray) -> float:
    grey, low, spread = _grey_range(pixels)
    height, width = grey.shape
    border = max(1, round(0.06 * min(height, width)))
    frame = np.concatenate(
        [grey[:border].ravel(), grey[-border:].ravel(), grey[:, :border].ravel(), grey[:, -border:].ravel()]
    )
    return float(np.mean(frame <= low + 0.1 * spread))


def mid_tones(pixels: np.ndarray) -> float:
    grey, low, spread = _grey_range(pixels)
    scaled = (grey - low) / spread
    return float(np.mean((scaled > 0.2) & (scaled < 0.8)))


def _sampled(pixels: np.ndarray, side: int = MAX_SIDE) -> np.ndarray:
    """Every n-th pixel of an image over ``side`` on its long side: the statistics are fractions and means, which
    a regular sample keeps, and a 4096² scan would otherwise take seconds and 300 MB of float copies."""
    step = -(-max(pixels.shape[:2]) // side)
    return pixels if step <= 1 else pixels[::step, ::step]


def _modality_words(modality: str) -> str:
    return _MODALITIES.get(modality, f"a {modality} image")


def _mri_warning(pixels: np.ndarray, modality: str | None, colour: float) -> str | None:
    if modality is not None and modality != "MR":
        return (
            f"This scan is {_modality_words(modality)} (its modality is {modality}), not an MRI: the model "
            "was trained on brain MRI slices, so its verdict means nothing here."
        )
    if colour > COLOUR_LIMIT:
        return (
            "This image is in colour; the model was trained on greyscale brain MRI slices, so its verdict "
            "on it means nothing."
        )
    if modality is None and dark_frame(pixels) < DARK_FRAME_LIMIT:
        return (
            "This image has no dark background around it, as a brain MRI slice has; the model was trained "
            "on such slices, so its verdict may mean nothing here."
        )
    return None


def _drawing_warning(pixels: np.ndarray, modality: str | None, colour: float) -> str | None:
    if (
        modality is not None
        or colour > COLOUR_LIMIT
        or dark_frame(pixels) < DARK_FRAME_LIMIT
        or mid_tones(pixels) > MID_TONE_LIMIT
    ):
        return (
            "This does not look like a handwritten digit (light strokes on a dark, plain background); the "
            "model knows only those, so its verdict may mean nothing here."
        )
    return None


def _photo_warning(pixels: np.ndarray, modality: str | None, colour: float) -> str | None:
    if modality is not None:
        return (
            f"This is {_modality_words(modality)}; the model was trained on everyday colour photos, so its "
            "verdict means nothing here."
        )
    if colour <= COLOUR_LIMIT and dark_frame(pixels) >= DARK_FRAME_LIMIT:
        return (
            "This greyscale image on a dark background looks like a scan or a drawing; the model was trained on "
            "everyday colour photos, so its verdict may mean little here."
        )
    return None


# The check of each input kind (a model's domain policy names its kind: models.domains.DomainPolicy.kind).
CHECKS: dict[str, Callable[[np.ndarray, str | None, float], str | None]] = {
    "photo": _photo_warning,
    "mri": _mri_warning,
    "drawing": _drawing_warning,
}


def domain_warning(image: InputImage, input_kind: str) -> str | None:
    """One sentence when ``image`` does not look like what a model of ``input_kind`` (a key of :data:`CHECKS`)
    was trained on; None when it does."""
    pixels, modality = _sampled(image.pixels), (image.modality or "").upper() or None
    return CHECKS[input_kind](pixels, modality, colourfulness(pixels))
