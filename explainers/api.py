"""The one call that pages and the command line make: explain an image with a method."""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from explainers.cache import ExplanationCache, cache_key
from explainers.explanation import Explanation, top_classes
from explainers.images import image_digest
from explainers.methods import ParameterError, ProgressCallback, get_method


def explain(classifier: Any, image: np.ndarray, method: str = "partition", *, top_k: int = 3,
            max_evals: int | None = None, seed: int = 0, progress: ProgressCallback | None = None,
            params: dict[str, Any] | None = None, classes: Sequence[int] | None = None) -> Explanation:
    """Explains the top-k classes (or the given ``classes``) of ``image`` (any size, H×W×3 uint8).

    The image is first resized the way the model sees it; the result is at the model's input resolution.
    """
    spec = get_method(method)
    reason = spec.unsupported(classifier)
    if reason is not None:
        raise ParameterError(f"{spec.title} cannot explain {classifier.name}: {reason}.")
    resolved = spec.resolve(params or {})
    budget = spec.default_budget if max_evals is None else int(max_evals)
    if not spec.min_budget <= budget <= spec.max_budget:
        raise ParameterError(f"The budget for {method} must be between {spec.min_budget} and {spec.max_budget} "
                             f"{spec.budget_meaning}, not {budget}.")
    num_classes = len(classifier.class_names)
    if not 1 <= top_k <= num_classes:
        raise ParameterError(f"top-k must be between 1 and {num_classes} for {classifier.name}, not {top_k}.")
    if classes is not None:
        classes = np.asarray(classes, dtype=np.int64)
        if classes.size == 0 or classes.min() < 0 or classes.max() >= num_classes:
            raise ParameterError(f"Class ids must be between 0 and {num_classes - 1}.")
        if not spec.uses_segments:  # superpixel methods solve every class anyway; see below
            resolved["classes"] = classes
    prepared = classifier.prepare(image)
    result = spec.explain(classifier, prepared, top_k=top_k, max_evals=budget, seed=seed, progress=progress,
                          **resolved)
    result = dataclasses.replace(result, image_digest=image_digest(prepared))
    return result if classes is None or not spec.uses_segments else for_classes(result, classifier, classes)


def for_classes(explanation: Explanation, classifier: Any, classes: Sequence[int]) -> Explanation:
    """The explanation of other classes without evaluating the model (see Explanation.can_explain)."""
    classes = np.asarray(classes, dtype=np.int64)
    return explanation.for_classes(classes, tuple(classifier.class_names[c] for c in classes))


def cache_request(classifier: Any, image: np.ndarray, method: str, *, top_k: int, max_evals: int | None,
                  seed: int, params: dict[str, Any] | None, classes: Sequence[int] | None) -> dict[str, Any]:
    """Everything that determines the explanation. Superpixel methods solve every class, so top-k and the
    explained classes are not part of their request."""
    spec = get_method(method)
    request: dict[str, Any] = {
        "model": classifier.name,
        "weights_digest": classifier.weights_digest,
        "image_digest": image_digest(classifier.prepare(image)),
        "method": method,
        "params": spec.resolve(params or {}),
        "max_evals": spec.default_budget if max_evals is None else int(max_evals),
        "seed": int(seed),
    }
    if not spec.uses_segments:
        request["top_k"] = int(top_k)
        request["classes"] = None if classes is None else [int(c) for c in classes]
    return request


def _shown(explanation: Explanation, classifier: Any, method: str, top_k: int,
           classes: Sequence[int] | None) -> Explanation:
    """A stored superpixel explanation narrowed to the wanted classes (it holds every class)."""
    if not get_method(method).uses_segments:
        return explanation
    return for_classes(explanation, classifier,
                       classes if classes is not None else top_classes(explanation.probs, top_k))


def lookup_cached(cache: ExplanationCache, classifier: Any, image: np.ndarray, method: str, *, top_k: int,
                  max_evals: int | None, seed: int, params: dict[str, Any] | None,
                  classes: Sequence[int] | None = None) -> Explanation | None:
    """The cached explanation for this request, or None; never evaluates the model."""
    request = cache_request(classifier, image, method, top_k=top_k, max_evals=max_evals, seed=seed,
                            params=params, classes=classes)
    stored = cache.get(cache_key(request))
    return None if stored is None else _shown(stored, classifier, method, top_k, classes)


def explain_cached(cache: ExplanationCache | None, classifier: Any, image: np.ndarray, method: str = "partition",
                   *, top_k: int = 3, max_evals: int | None = None, seed: int = 0,
                   progress: ProgressCallback | None = None, params: dict[str, Any] | None = None,
                   classes: Sequence[int] | None = None, image_label: str = "") -> tuple[Explanation, bool]:
    """Like :func:`explain`, served from ``cache`` when the same request was answered before.

    Returns the explanation and whether it came from the cache.
    """
    request = cache_request(classifier, image, method, top_k=top_k, max_evals=max_evals, seed=seed,
                            params=params, classes=classes)
    key = cache_key(request)
    stored = cache.get(key) if cache is not None else None
    if stored is not None:
        return _shown(stored, classifier, method, top_k, classes), True
    # A superpixel explanation keeps every class, so whichever classes it shows, it can be stored as is.
    result = explain(classifier, image, method, top_k=top_k, max_evals=max_evals, seed=seed, progress=progress,
                     params=params, classes=classes)
    if cache is not None:
        cache.put(key, result, request, image_label=image_label)
    return result, False
