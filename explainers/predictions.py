"""Cached predictions: a model's probabilities for an image, stored beside the explanations, so a folder's
verdicts (and a page's verdict) come without a model call once they have been computed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from explainers.classifier import Classifier
from explainers.images import InputImage


def prediction_key(model: str, weights_digest: str, image_digest: str) -> str:
    return f"prediction/{model}/{weights_digest}/{image_digest}"


def stored_prediction(cache: Any | None, model: str, weights_digest: str, image_digest: str) -> np.ndarray | None:
    """The stored probability vector, or None (never computes)."""
    if cache is None:
        return None
    stored = cache.get_json(prediction_key(model, weights_digest, image_digest))
    return None if stored is None else np.asarray(stored, dtype=np.float32)


def store_prediction(cache: Any | None, model: str, weights_digest: str, image_digest: str, probs: Any) -> None:
    if cache is not None:
        cache.put_json(prediction_key(model, weights_digest, image_digest), [float(p) for p in np.ravel(probs)])


def cached_prediction(cache: Any | None, classifier: Classifier, image: InputImage) -> np.ndarray:
    """The probabilities of ``image``: stored, or one forward pass (then stored)."""
    stored = stored_prediction(cache, classifier.name, classifier.weights_digest, image.digest)
    if stored is not None and len(stored) == len(classifier.class_names):
        return stored
    probs = classifier.predict(classifier.prepare(image.pixels))[0]
    store_prediction(cache, classifier.name, classifier.weights_digest, image.digest, probs)
    return probs


@dataclass(frozen=True)
class Accuracy:
    """How often the model's top class is the label, on labelled images: computed, never copied."""

    correct: int
    total: int
    per_class: dict[str, tuple[int, int]]  # class name → (correct, total)

    @property
    def rate(self) -> float:
        return self.correct / self.total if self.total else float("nan")

    def __str__(self) -> str:
        if not self.total:
            return "not measured (no labelled samples)"
        return f"{self.correct} of {self.total} ({self.rate:.0%})"


def accuracy(cache: Any | None, classifier: Classifier, labelled: Sequence[tuple[InputImage, str]]) -> Accuracy:
    """The top-1 accuracy over ``(image, true class name)`` pairs, from cached predictions where there are."""
    correct = 0
    per_class: dict[str, tuple[int, int]] = {}  # class name → (correct, total)
    for image, label in labelled:
        probs = cached_prediction(cache, classifier, image)
        hit = classifier.class_names[int(np.argmax(probs))] == label
        right, seen = per_class.get(label, (0, 0))
        per_class[label] = (right + hit, seen + 1)
        correct += hit
    return Accuracy(correct, len(labelled), per_class)
