"""Reference images for DeepSHAP and expected gradients: what "absent" means is a choice, stated and shown.

Defaults per model domain: photos are compared with blurred copies of themselves (absent = no detail);
MRIs and digits with the other bundled images of their domain (absent = a typical other case).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from explainers.classifier import Classifier
from explainers.images import decode_image, image_digest, image_files
from explainers.params import Param

# "auto": the model's own default (Classifier.default_background).
BACKGROUNDS = ("auto", "blurred", "samples", "black", "mean")
BACKGROUND_PARAM = Param(
    "background",
    "choice",
    "auto",
    "References that stand for 'absent' (auto: the "
    "model's default, e.g. blurred copies for photos, the other samples of the domain for "
    "MRIs and digits).",
    choices=BACKGROUNDS,
)


def resolve_background(classifier: Classifier, kind: str) -> str:
    """The references' kind itself: "auto" is the model's default."""
    return getattr(classifier, "default_background", "blurred") if kind == "auto" else kind


def make_background(classifier: Classifier, image: np.ndarray, kind: str, count: int) -> np.ndarray:
    """count × H × W × 3 float32 references in [0, 255] for a prepared image (deterministic)."""
    kind = resolve_background(classifier, kind)
    image = image.astype(np.float32)
    if kind == "blurred":
        # Blurs from fine to coarse: the references span "a little detail removed" to "only colour left".
        size = max(image.shape[:2])
        sigmas = np.geomspace(size / 50, size / 4, count) if count > 1 else [size / 12]
        refs = [ndimage.gaussian_filter(image, sigma=(s, s, 0), mode="nearest") for s in sigmas]
    elif kind == "samples":
        own = image_digest(image.astype(np.uint8))
        folder = getattr(classifier, "sample_folder", None)
        pool = [classifier.prepare(decode_image(path)) for path in (image_files(folder) if folder else [])]
        pool = [p.astype(np.float32) for p in pool if image_digest(p) != own] or [np.zeros_like(image)]
        # Cycle through the pool, mirrored on every second pass, to reach the requested count.
        refs = [
            pool[i % len(pool)] if (i // len(pool)) % 2 == 0 else pool[i % len(pool)][:, ::-1] for i in range(count)
        ]
    elif kind == "black":
        refs = [np.zeros_like(image)] * count
    elif kind == "mean":
        refs = [np.broadcast_to(image.mean(axis=(0, 1)), image.shape).astype(np.float32)] * count
    else:
        raise ValueError(f"background must be one of {', '.join(BACKGROUNDS)}, not {kind!r}")
    return np.ascontiguousarray(np.stack(refs), dtype=np.float32)


def mean_reference(classifier: Classifier, explanation: Any) -> np.ndarray:
    """The mean of the references an explanation compared with: what its features look like hidden."""
    params = explanation.params
    references = make_background(
        classifier,
        explanation.image,
        params.get("background", "auto"),
        int(params.get("references", params.get("max_evals", 8))),
    )
    return references.mean(axis=0)
