"""How alike two maps of one image are, for the model-parameter randomisation check (service.trust): the
Spearman rank correlation of their signed totals over the same pixel blocks (the blocks of the scores on equal
terms, explainers.faithfulness), so that superpixel and pixel methods are measured alike.

Signed, not absolute (Adebayo et al. report both): on the digits every method's absolute map kept ρ 0.6–0.96
with every layer randomised, because the regions that hiding does not change (black background hidden by a
black fill) are zero under any model, and those shared zeros dominate the ranks; the signed correlation fell to
−0.45–0.05 for every method there. A strong negative correlation fails as a strong positive one does (DeepSHAP
on the tumour model: −0.83 after the top layer, the same structure with its signs turned)."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from explainers.faithfulness import EQUAL_GRID, block_features

# A method whose map keeps a rank correlation above this in size (either sign: a map whose structure survives with
# its signs flipped still describes the image) after the top layer is randomised fails the check.
FAILS_ABOVE = 0.5


def survives(rho: float) -> bool:
    """Whether a map with rank correlation ``rho`` to the real one survived the randomisation (fails the check)."""
    return abs(rho) > FAILS_ABOVE


def block_totals(values: np.ndarray) -> np.ndarray:
    """The map's total over each block (H × W → blocks)."""
    height, width = values.shape
    features = block_features(height, width, max(1, min(height, width) // EQUAL_GRID))
    return np.bincount(features.ravel(), weights=values.ravel().astype(np.float64))


def map_similarity(first: np.ndarray, second: np.ndarray) -> float:
    """Spearman's ρ of the two H × W maps' block totals; 0 where either map is flat."""
    a, b = block_totals(first), block_totals(second)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a, b).statistic)
