"""The head in a brain MRI slice: a mask of the foreground, so that maps can leave out the black background
around the head (where a model should find nothing, and a value there is worth a look, not a colour).

A threshold at a tenth of the way up the grey image's 1..99 % range (Otsu's threshold, tried first, cut dim brain
away from bright scalp on two bundled slices), the largest connected region, a small closing and its holes filled
(ventricles and dark lesions stay inside).
"""

from __future__ import annotations

import numpy as np


def head_mask(image: np.ndarray) -> np.ndarray | None:
    """H × W bool, True inside the head; None when no plausible foreground is found (a flat image, or one that is
    nearly all foreground or all background)."""
    from scipy import ndimage
    from skimage.morphology import disk

    grey = np.asarray(image, dtype=np.float32)
    if grey.ndim == 3:
        grey = grey.mean(axis=2)
    if float(grey.max() - grey.min()) < 1.0:
        return None
    low, high = np.percentile(grey, (1, 99))
    foreground = grey > low + 0.1 * (high - low)
    labels, count = ndimage.label(foreground)
    if count == 0:
        return None
    sizes = np.bincount(labels.ravel())[1:]
    largest = labels == int(np.argmax(sizes)) + 1
    radius = max(1, round(0.01 * max(grey.shape)))
    mask = ndimage.binary_fill_holes(ndimage.binary_closing(largest, disk(radius), border_value=0))
    share = float(mask.mean())
    return mask if 0.05 <= share <= 0.95 else None


def outside_share(values: np.ndarray, mask: np.ndarray) -> float:
    """The share of a map's absolute attribution that lies outside ``mask``."""
    magnitude = np.abs(np.nan_to_num(np.asarray(values, dtype=np.float64)))
    total = float(magnitude.sum())
    return float(magnitude[~mask].sum()) / total if total > 0 else 0.0
