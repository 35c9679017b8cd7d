"""Faithfulness of an explanation: deletion and insertion curves (Petsiuk et al., "RISE: Randomized Input
Sampling for Explanation of Black-box Models", 2018), each beside the same curve for a random order.

Features are the explanation's superpixels, or square pixel blocks for methods without them. A removed
feature shows what the explanation's own masker shows (the superpixel fill, shap's blur or inpainting, the
mean of DeepSHAP's or expected gradients' references), so the score asks the question the method answered.
Deletion removes the most important features first (lower area is better); insertion reveals them first on
a fully masked image (higher is better). Areas are over [0, 1] × probability, so they lie in [0, 1].

Those scores reward a method's masker as much as its map (a blur and a black fill make different images). So
every explanation is also scored on equal terms: the same pixel blocks for every method, removed by noisy
linear imputation (Rong et al., ROAD, 2022), most relevant first and least relevant first (``equal_*``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from explainers.classifier import Classifier
from explainers.explanation import Explanation
from explainers.methods import get_method

BLOCK = 16  # pixel block side for methods without superpixels
EQUAL_GRID = 14  # blocks along the shorter side in the scores on equal terms (16 pixels at 224)


@dataclass(frozen=True)
class Faithfulness:
    class_id: int
    deletion_auc: float
    insertion_auc: float
    random_deletion_auc: float
    random_insertion_auc: float
    fractions: list[float]
    deletion: list[float]
    insertion: list[float]
    random_deletion: list[float]
    random_insertion: list[float]
    # On equal terms: the same pixel blocks (EQUAL_GRID along a side) for every method, removed by noisy
    # linear imputation (explainers.imputation, ROAD) instead of the method's own masker; the most relevant
    # features first (MoRF: lower is better) and the least relevant first (LeRF: higher is better).
    # ``equal_gap`` = LeRF − MoRF area (higher is better: the map sorts what matters from what does not).
    equal_fractions: list[float]
    equal_morf: list[float]
    equal_lerf: list[float]
    equal_morf_auc: float
    equal_lerf_auc: float

    @property
    def equal_gap(self) -> float:
        return self.equal_lerf_auc - self.equal_morf_auc

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def features_of(explanation: Explanation) -> np.ndarray:
    """H × W labels of the features the curves remove: superpixels, or BLOCK × BLOCK pixel blocks."""
    if explanation.segments is not None:
        return explanation.segments
    return block_features(*explanation.values.shape[1:])


def removed_image(classifier: Classifier, explanation: Explanation, features: np.ndarray) -> np.ndarray:
    """The whole image as the explanation's method hides it (each method says so: ``Method.hidden_image``)."""
    return get_method(explanation.method).hidden_image(explanation, classifier, features)


def _curves(
    classifier: Classifier,
    image: np.ndarray,
    hidden: np.ndarray,
    features: np.ndarray,
    order: np.ndarray,
    class_id: int,
    steps: int,
) -> tuple[list[float], list[float], list[float]]:
    counts = np.unique(np.linspace(0, len(order), steps + 1).round().astype(int))
    fractions = (counts / len(order)).tolist()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    pixel_rank = rank[features]  # H × W: when each pixel's feature comes
    batch = []
    for count in counts:  # deletion: the first `count` features hidden
        batch.append(np.where((pixel_rank < count)[..., None], hidden, image))
    for count in counts:  # insertion: only the first `count` features shown
        batch.append(np.where((pixel_rank < count)[..., None], image, hidden))
    probs = classifier.predict(np.stack(batch).astype(np.float32))[:, class_id]
    return fractions, probs[: len(counts)].tolist(), probs[len(counts) :].tolist()


def area(fractions: list[float], values: list[float]) -> float:
    return float(np.trapezoid(values, fractions))


def faithfulness(
    classifier: Classifier, explanation: Explanation, class_id: int | None = None, steps: int = 10, seed: int = 0
) -> Faithfulness:
    """Deletion and insertion areas for one explained class (the top class by default), and for a random
    order of the same features; 4 × (steps + 1) model evaluations."""
    class_id = int(explanation.classes[0] if class_id is None else class_id)
    row = int(np.flatnonzero(explanation.classes == class_id)[0])
    features = features_of(explanation)
    count = int(features.max()) + 1
    importance = np.bincount(features.ravel(), weights=explanation.values[row].ravel(), minlength=count)
    order = np.argsort(-importance, kind="stable")
    random_order = np.random.default_rng(seed).permutation(count)
    image = explanation.image.astype(np.float32)
    hidden = removed_image(classifier, explanation, features)
    fractions, deletion, insertion = _curves(classifier, image, hidden, features, order, class_id, steps)
    _, random_deletion, random_insertion = _curves(classifier, image, hidden, features, random_order, class_id, steps)
    equal_fractions, morf, lerf = equal_terms(classifier, explanation, row, class_id, steps, seed)
    return Faithfulness(
        class_id,
        area(fractions, deletion),
        area(fractions, insertion),
        area(fractions, random_deletion),
        area(fractions, random_insertion),
        fractions,
        deletion,
        insertion,
        random_deletion,
        random_insertion,
        equal_fractions,
        morf,
        lerf,
        area(equal_fractions, morf),
        area(equal_fractions, lerf),
    )


def block_features(height: int, width: int, block: int = BLOCK) -> np.ndarray:
    """H × W labels of ``block`` × ``block`` pixel blocks."""
    rows, cols = np.arange(height) // block, np.arange(width) // block
    return (rows[:, None] * (cols.max() + 1) + cols[None, :]).astype(np.int32)


def equal_terms(
    classifier: Classifier, explanation: Explanation, row: int, class_id: int, steps: int, seed: int
) -> tuple[list[float], list[float], list[float]]:
    """(fractions, MoRF curve, LeRF curve) of one explained class under the removal shared by every method:
    pixel blocks ranked by the map's total over each, removed by noisy linear imputation; 2 × (steps + 1)
    model evaluations."""
    from explainers.imputation import impute

    image = explanation.image.astype(np.float32)
    height, width = image.shape[:2]
    features = block_features(height, width, max(1, min(height, width) // EQUAL_GRID))
    count = int(features.max()) + 1
    importance = np.bincount(features.ravel(), weights=explanation.values[row].ravel(), minlength=count)
    counts = np.unique(np.linspace(0, count, steps + 1).round().astype(int))
    batch = []
    for order in (np.argsort(-importance, kind="stable"), np.argsort(importance, kind="stable")):
        rank = np.empty(count, dtype=np.int64)
        rank[order] = np.arange(count)
        for removed in counts:
            batch.append(impute(image, rank[features] < removed, seed=seed + int(removed)))
    probs = classifier.predict(np.stack(batch))[:, class_id]
    return (counts / count).tolist(), probs[: len(counts)].tolist(), probs[len(counts) :].tolist()


def segment_totals(values: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Per-superpixel sums of a pixel attribution map."""
    return np.bincount(segments.ravel(), weights=values.ravel(), minlength=int(segments.max()) + 1)


def over_segments(values: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """A pixel map summed over ``segments`` and spread evenly over each segment's pixels: the basis a superpixel
    method's map has, so both share one colour scale (each segment's pixels still add up to its total)."""
    area = np.bincount(segments.ravel(), minlength=int(segments.max()) + 1)
    return (segment_totals(values, segments) / np.maximum(area, 1))[segments]


def agreement(explanations: dict[str, Explanation], class_id: int, segments: np.ndarray) -> np.ndarray:
    """M × M Spearman rank correlations of the methods' per-superpixel attributions for one class."""
    from scipy.stats import spearmanr

    totals = []
    for explanation in explanations.values():
        row = int(np.flatnonzero(explanation.classes == class_id)[0])
        totals.append(segment_totals(explanation.values[row], segments))
    matrix = np.ones((len(totals), len(totals)))
    for i in range(len(totals)):
        for j in range(i + 1, len(totals)):
            rho = spearmanr(totals[i], totals[j]).statistic
            matrix[i, j] = matrix[j, i] = 0.0 if np.isnan(rho) else rho
    return matrix


def faithfulness_key(explanation: Explanation, class_id: int, steps: int = 10) -> str:
    """Where a class's scores are kept in the cache: keyed by the explanation's content for that class."""
    import hashlib

    digest = hashlib.sha256(explanation.values[explanation.classes == class_id].tobytes()).hexdigest()[:24]
    return f"faithfulness2:{explanation.model}:{explanation.image_digest}:{explanation.method}:{digest}:{steps}"


def cached_faithfulness(
    cache: Any, classifier: Classifier, explanation: Explanation, class_id: int, steps: int = 10
) -> Faithfulness:
    """Faithfulness scores kept beside the explanation in the cache (keyed by its content)."""
    key = faithfulness_key(explanation, class_id, steps)
    stored = cache.get_json(key) if cache is not None else None
    if stored is not None:
        return Faithfulness(**stored)
    result = faithfulness(classifier, explanation, class_id, steps=steps)
    if cache is not None:
        cache.put_json(key, result.to_dict())
    return result
