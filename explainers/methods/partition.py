"""Partition SHAP: shap's PartitionExplainer with its Image masker.

Owen values over shap's hierarchy of image rectangles (Lundberg & Lee, "A Unified Approach to Interpreting
Model Predictions", 2017; Owen values as in shap's Partition explainer). The masker hides a rectangle by
replacing it with a blurred copy (``blur(k,k)``) or an inpainting; the values of the explained classes add up
exactly to f(image) − f(everything hidden), whatever the budget.
"""

from __future__ import annotations

import copy
import time
from functools import lru_cache
from typing import Any

import cv2
import numpy as np
import shap

from explainers.explanation import Explanation, make_explanation, top_classes
from explainers.base import CountingModel, Param, ProgressCallback

PARAMS = (
    Param("masker", "choice", "blur", "How a hidden region is filled: a blurred copy, or OpenCV inpainting.",
          choices=("blur", "inpaint_telea", "inpaint_ns")),
    Param("blur_kernel", "int", 128, "Size in pixels of the blur kernel for the blur masker.",
          low=3, high=512, step=1),
    Param("batch_size", "int", 50, "Masked images sent to the model at once (memory vs speed).",
          low=1, high=512, step=1),
)


def masker_spec(masker: str, blur_kernel: int) -> str:
    return f"blur({blur_kernel},{blur_kernel})" if masker == "blur" else masker


class _Image(shap.maskers.Image):
    """shap's Image masker, blurring the image once per explanation instead of once per masked image.

    shap's masker keys its blur cache by ``id`` of a flattened copy that is new at every call, so it runs
    ``cv2.blur`` over the whole image for every evaluation. Here the blur is kept for the image object the
    explainer passes each time (the same one throughout an explanation); the masked images are identical.
    """

    def __call__(self, mask: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, ...]:
        if self.blur_kernel is None or not isinstance(x, np.ndarray) or x.size != np.prod(self.input_shape):
            return super().__call__(mask, x)
        if self._blur_source is not x:
            self._blur_value_cache = cv2.blur(x.reshape(self.input_shape), self.blur_kernel).ravel()
            self._blur_source = x  # holding it keeps its id from being reused by another array
        if mask is None:
            mask = np.zeros(x.size, dtype=bool)
        out = x.ravel().copy()
        hidden = ~mask
        out[hidden] = self._blur_value_cache[hidden]
        return (out.reshape(1, *x.shape),)


@lru_cache(maxsize=8)
def _masker_template(spec: str, shape: tuple[int, ...]) -> _Image:
    return _Image(spec, shape)


def image_masker(spec: str, shape: tuple[int, ...]) -> shap.maskers.Image:
    """shap's Image masker (see _Image), sharing the partition tree built for this shape before.

    Building the tree over every pixel takes most of a second at 224 px, as long as 50 model evaluations;
    a fresh shallow copy keeps each explanation's blurred image its own.
    """
    masker = copy.copy(_masker_template(spec, tuple(shape)))
    masker.last_xid = None
    masker._blur_value_cache = None
    masker._blur_source = None
    return masker


def explain_partition(classifier: Any, image: np.ndarray, *, top_k: int, max_evals: int, seed: int,
                      progress: ProgressCallback | None = None, masker: str = "blur", blur_kernel: int = 128,
                      batch_size: int = 50, classes: np.ndarray | None = None) -> Explanation:
    """Partition SHAP of the top-k classes (or of ``classes``) of a prepared H×W×3 image."""
    started = time.perf_counter()
    probs = classifier.predict(image[None])[0]
    classes = top_classes(probs, top_k) if classes is None else np.asarray(classes, dtype=np.int64)
    counting = CountingModel(classifier, max_evals, progress)
    explainer = shap.PartitionExplainer(counting, image_masker(masker_spec(masker, blur_kernel), image.shape))
    # Passing the class ids as `outputs` keeps shap's arrays at K columns instead of every class.
    result = explainer(image[None].astype(np.float32), max_evals=max_evals, batch_size=batch_size,
                       outputs=classes, silent=True)
    # shap gives H × W × 3 × K per image; a pixel's attribution is the sum over its channels.
    values = np.moveaxis(result.values[0].sum(axis=2), -1, 0).astype(np.float32)
    base_values = np.asarray(result.base_values[0], dtype=np.float64).reshape(-1)
    return make_explanation(
        classifier, image, method="partition", values=values, base_values=base_values, probs=probs,
        classes=classes, seed=seed, n_evals=counting.evaluations + 1, started=started,
        params={"masker": masker, "blur_kernel": blur_kernel, "batch_size": batch_size, "max_evals": max_evals,
                "top_k": int(len(classes))})
