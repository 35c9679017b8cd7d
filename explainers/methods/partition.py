"""Partition SHAP: shap's PartitionExplainer with its Image masker.

Owen values over shap's hierarchy of image rectangles (Lundberg & Lee, "A Unified Approach to Interpreting
Model Predictions", 2017; Owen values as in shap's Partition explainer). The masker hides a rectangle by
replacing it with a blurred copy (``blur(k,k)``) or an inpainting; the values of the explained classes add up
exactly to f(image) − f(everything hidden), whatever the budget.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

import cv2
import numpy as np
import torch

from explainers.classifier import Classifier
from explainers.explanation import Explanation
from explainers.methods.base import Attribution, CountingModel, PixelMethod
from explainers.methods.registry import register
from explainers.params import Param
from explainers.progress import ProgressCallback

MASKERS = ("blur", "inpaint_telea", "inpaint_ns")


def masker_spec(masker: str, blur_kernel: int) -> str:
    return f"blur({blur_kernel},{blur_kernel})" if masker == "blur" else masker


@lru_cache(maxsize=1)
def _mask_rows_masker() -> type:
    """shap's Image masker that hands the model its boolean masks (a class made on first use: importing shap
    takes a second and a half)."""
    import shap

    return type("_MaskRows", (shap.maskers.Image,), {"__call__": _mask_rows_call, "__doc__": _MaskRowsDoc})


_MaskRowsDoc = """shap's Image masker that hands the model its boolean masks instead of masked images.

    shap's blur masker copies the image and blurs all of it again for every evaluation (its blur cache is
    keyed by the id of a fresh flattened copy), then shap stacks the copies: a millisecond per evaluation,
    a sixth of a forward pass. Here the mask rows are stacked and :class:`_BlurredImages` builds the whole
    batch at once, pixel for pixel what shap's masker gives (``tests/test_speed_paths.py`` compares values).
    """


def _mask_rows_call(self: Any, mask: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, ...]:
    return (np.asarray(mask, dtype=bool).reshape(1, -1),)


class _BlurredImages:
    """The model on mask rows: each row's kept pixels from the image, the others from its blur."""

    def __init__(self, model: CountingModel, image: np.ndarray, blur_kernel: int):
        self.model = model
        self.shape = image.shape
        self.image = torch.from_numpy(image)
        # The blur exactly as shap's masker computes it.
        self.blurred = torch.from_numpy(cv2.blur(image, (blur_kernel, blur_kernel)))

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        keep = torch.from_numpy(np.ascontiguousarray(masks)).view(len(masks), *self.shape)
        return self.model(torch.where(keep, self.image, self.blurred).numpy())


@lru_cache(maxsize=8)
def _masker_template(spec: str, shape: tuple[int, ...]) -> Any:
    import shap

    return (_mask_rows_masker() if spec.startswith("blur(") else shap.maskers.Image)(spec, shape)


def image_masker(spec: str, shape: tuple[int, ...]) -> Any:
    """shap's Image masker (mask rows for blur, see _MaskRows), sharing the partition tree built for this
    shape before: building it over every pixel takes most of a second at 224 px, as long as 50 model
    evaluations. A shallow copy keeps each explanation's masker state its own."""
    masker = copy.copy(_masker_template(spec, tuple(shape)))
    masker.last_xid = None
    masker._blur_value_cache = None
    return masker


@register
class Partition(PixelMethod):
    name = "partition"
    title = "Partition SHAP (shap, blur masker)"
    summary = "Owen values over shap's hierarchy of image rectangles; hidden regions are blurred."
    paper = "Lundberg & Lee 2017, A Unified Approach to Interpreting Model Predictions (shap's Partition explainer)"
    params = (
        Param(
            "masker",
            "choice",
            "blur",
            "How a hidden region is filled: a blurred copy, or OpenCV inpainting.",
            choices=MASKERS,
        ),
        Param(
            "blur_kernel", "int", 128, "Size in pixels of the blur kernel for the blur masker.", low=3, high=512, step=1
        ),
        Param(
            "batch_size",
            "int",
            50,
            "Masked images sent to the model at once (memory vs speed).",
            low=1,
            high=512,
            step=1,
        ),
    )
    default_budget = 300
    min_budget = 20
    max_budget = 5000
    notes = ("shap's masker splits the image into rectangles, so the segment count does not apply to it.",)
    order = 10

    def attribute(
        self,
        classifier: Classifier,
        image: np.ndarray,
        classes: np.ndarray,
        budget: int,
        seed: int,
        progress: ProgressCallback | None,
        output: str = "probability",
        masker: str = "blur",
        blur_kernel: int = 128,
        batch_size: int = 50,
        **params: Any,
    ) -> Attribution:
        import shap

        counting = CountingModel(classifier, budget, progress, output)
        pixels = np.ascontiguousarray(image, dtype=np.float32)
        model = _BlurredImages(counting, pixels, blur_kernel) if masker == "blur" else counting
        explainer = shap.PartitionExplainer(model, image_masker(masker_spec(masker, blur_kernel), image.shape))
        # Passing the class ids as `outputs` keeps shap's arrays at K columns instead of every class.
        result = explainer(pixels[None], max_evals=budget, batch_size=batch_size, outputs=classes, silent=True)
        # shap gives H × W × 3 × K per image; a pixel's attribution is the sum over its channels.
        values = np.moveaxis(result.values[0].sum(axis=2), -1, 0).astype(np.float32)
        base_values = np.asarray(result.base_values[0], dtype=np.float64).reshape(-1)
        return Attribution(values, base_values, counting.evaluations, used={}, extras={})

    def hidden_image(self, explanation: Explanation, classifier: Classifier, features: np.ndarray) -> np.ndarray:
        """shap's masker with everything hidden: the blurred image, or the whole image inpainted."""
        image, masker = explanation.image, explanation.params.get("masker", "blur")
        if masker == "blur":
            kernel = int(explanation.params.get("blur_kernel", 128))
            return cv2.blur(image.astype(np.float32), (kernel, kernel)).astype(np.float32)
        flags = cv2.INPAINT_TELEA if masker == "inpaint_telea" else cv2.INPAINT_NS
        mask = np.full(image.shape[:2], 255, dtype=np.uint8)
        return cv2.inpaint(image.astype(np.uint8), mask, 3, flags).astype(np.float32)
