"""Reference images for DeepSHAP and expected gradients: what "absent" means is a choice, stated and shown.

Defaults per model domain: photos are compared with blurred copies of themselves (absent = no detail);
MRIs and digits with the other bundled images of their domain (absent = a typical other case).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from explainers.images import image_digest, list_samples, load_image

BACKGROUNDS = ("auto", "blurred", "samples", "black", "mean")
AUTO_BACKGROUND = {"imagenet": "blurred", "mri": "samples", "digits": "samples"}


def resolve_background(classifier: Any, kind: str) -> str:
    return AUTO_BACKGROUND.get(classifier.spec.domain, "blurred") if kind == "auto" else kind


def make_background(classifier: Any, image: np.ndarray, kind: str, count: int) -> np.ndarray:
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
        pool = [classifier.prepare(load_image(s.path)) for s in list_samples() if s.domain == classifier.spec.domain]
        pool = [p.astype(np.float32) for p in pool if image_digest(p) != own] or [np.zeros_like(image)]
        # Cycle through the pool, mirrored on every second pass, to reach the requested count.
        refs = [pool[i % len(pool)] if (i // len(pool)) % 2 == 0 else pool[i % len(pool)][:, ::-1]
                for i in range(count)]
    elif kind == "black":
        refs = [np.zeros_like(image)] * count
    elif kind == "mean":
        refs = [np.broadcast_to(image.mean(axis=(0, 1)), image.shape).astype(np.float32)] * count
    else:
        raise ValueError(f"background must be one of {', '.join(BACKGROUNDS)}, not {kind!r}")
    return np.ascontiguousarray(np.stack(refs), dtype=np.float32)
