"""Cached predictions: a model's probabilities for an image, stored beside the explanations, so a folder's
verdicts (and a page's verdict) come without a model call once they have been computed."""

from __future__ import annotations

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
