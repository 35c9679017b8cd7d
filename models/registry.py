"""The model registry: every model the app offers, each described by a card (models/builtin/*.yaml for the built-in
ones, a user's folder under $EXPLAINERS_MODELS_DIR for theirs; models.cards reads both, models.catalog loads them).

Every registered model is turned into the same callable by :func:`models.classifier.load_classifier`: a
``torch.nn.Module`` that takes N×3×H×W RGB float in [0, 255] at the model's input size and returns class
probabilities. Explainers only ever see that contract.

Importing this package registers nothing and reads no folder: the first lookup (:func:`all_specs`,
:func:`get_spec`) loads the cards, once per process (:func:`ensure_loaded`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from torch import nn

from models.cards import ModelCard
from models.domains import DomainPolicy
from models.preprocessing import describe

WeightsKind = Literal["pretrained", "random"]


@dataclass(frozen=True)
class ModelSpec:
    """A card made ready to load: how to build and run the model (the fields), what it is (``card``, shown on the
    Models page and in reports) and what its domain means for the app (``policy``)."""

    name: str
    title: str
    input_size: tuple[int, int]  # height, width
    class_names: tuple[str, ...]
    # Builds the full model: input transform + network + softmax; see models.zoo.build_model.
    build: Callable[[WeightsKind], nn.Module]
    # Where the pretrained weights live; None when they cannot be located at all.
    weights_file: Callable[[], Path | None]
    card: ModelCard
    policy: DomainPolicy
    # Why the pretrained weights cannot be used, with the fix; None when they can.
    missing_reason: Callable[[], str | None] = field(default=lambda: None)
    resize: str = "stretch"  # or "center_crop"
    resize_shorter_side: int | None = None  # for "center_crop": the shorter side before cropping
    # Batch size for forward passes when not measured (see models.runtime): big batches are slower per
    # image on small CPUs.
    batch_size: int = 16
    # predict's runtime when not measured: PyTorch, or ONNX Runtime on onnx_file or an export of the module.
    runtime: Literal["torch", "onnxruntime"] = "torch"
    # A shipped ONNX graph of the same network: N×H×W×3 float input (times onnx_input_scale) to probabilities.
    onnx_file: Callable[[], Path | None] | None = None
    onnx_input_scale: float = 1.0
    # Whether the PyTorch module may be exported to ONNX (cached on disk) to try ONNX Runtime on it.
    onnx_export: bool = True
    # False for a model that runs in ONNX Runtime (a user's .onnx): no gradients, so DeepSHAP and GradientSHAP
    # say why they cannot explain it.
    differentiable: bool = True

    @property
    def preprocessing(self) -> str:
        """The preprocessing in words, from the card's numbers (models.preprocessing.describe)."""
        return describe(self.card.preprocessing)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_title(self, name_or_id: str | int) -> str:
        """A class as a person reads it: "no tumour" for "notumor", an id's name in words."""
        name = name_or_id if isinstance(name_or_id, str) else self.class_names[int(name_or_id)]
        return self.card.class_words.get(name, name)

    @property
    def class_titles(self) -> tuple[str, ...]:
        return tuple(self.class_title(name) for name in self.class_names)

    @property
    def available(self) -> bool:
        return self.missing_reason() is None

    def label_of(self, stem: str) -> str | None:
        """The class a file name says its image shows (e.g. "Te-gl_0010" → glioma), or None: the policy's rule."""
        return self.policy.label_of(stem, self.class_names)


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Adds a model; a second model with the same name is a programming error."""
    if spec.name in _REGISTRY:
        raise ValueError(f"a model named {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def restore(snapshot: dict[str, ModelSpec]) -> None:
    """The registry as it was at ``snapshot`` (a load that failed half way leaves nothing behind)."""
    _REGISTRY.clear()
    _REGISTRY.update(snapshot)


def registered() -> dict[str, ModelSpec]:
    """What is registered so far, by name, in registration order (models.catalog loads the cards first)."""
    return dict(_REGISTRY)
