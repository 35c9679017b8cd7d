"""What explainers need of a model: the ``Classifier`` protocol. explainers/ types against it and never
imports models/, so any object with these members can be explained (an ONNX-only model too)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Classifier(Protocol):
    """A ready-to-call image classifier.

    ``predict`` is required: N×H×W×3 images in [0, 255] at the model's input size to N×C probabilities.
    ``gradient_module`` is optional: a differentiable torch module with the same contract (N×3×H×W in,
    probabilities out), or None; methods with ``requires_gradients`` need it. ``logit_module`` is optional
    too: the same network's logits (for log-odds). ``default_output`` (optional): the space it is explained
    in unless asked ("probability" or "log-odds"). ``device`` and
    ``predict_tensor(images)`` (N×H×W×3 float on that device) are optional too: with a GPU ``device``, the
    superpixel games build their masked images on it.
    """

    # Read-only members (properties here), so that a model's properties and plain attributes both fulfil them.
    @property
    def name(self) -> str: ...

    @property
    def class_names(self) -> tuple[str, ...]: ...

    @property
    def weights_digest(self) -> str: ...

    @property
    def batch_size(self) -> int: ...

    @property
    def default_fill(self) -> str:
        """What "auto" means for the superpixel fill: "mean", "blur" or "constant" (the model's domain policy)."""

    @property
    def default_background(self) -> str:
        """What "auto" means for the references: "blurred", "samples", "black" or "mean"."""

    @property
    def sample_folder(self) -> Path | None:
        """Images of the model's domain, for the "samples" references."""

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """The image as the model sees it: H×W×3 uint8 at its input size."""

    def predict(self, images: np.ndarray, batch_size: int | None = None) -> np.ndarray: ...


def gradient_module_of(classifier: Classifier) -> Any | None:
    """The classifier's differentiable torch module, or None when it has none (e.g. an ONNX-only model)."""
    return getattr(classifier, "gradient_module", None)


def logit_module_of(classifier: Classifier) -> Any | None:
    """The same differentiable network without its final softmax (N×3×H×W in, logits out), sharing the
    gradient module's weights; None when the classifier has none (its network ends in its own softmax)."""
    return getattr(classifier, "logit_module", None)
