"""The model registry: weights as data (name, input size, preprocessing, classes, licence, loader).

Every registered model is turned into the same callable by :func:`models.classifier.load_classifier`: a
``torch.nn.Module`` that takes N×3×H×W RGB float in [0, 255] at the model's input size and returns class
probabilities. Explainers only ever see that contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

from torch import nn

Domain = Literal["imagenet", "mri", "digits"]
ResizeMode = Literal["stretch", "center_crop"]
WeightsKind = Literal["pretrained", "random"]


@dataclass(frozen=True)
class ModelSpec:
    """What the dashboard knows about one model before loading it."""

    name: str
    title: str
    task: str
    domain: Domain
    input_size: tuple[int, int]  # height, width
    class_names: tuple[str, ...]
    source: str
    licence: str
    preprocessing: str  # human-readable, shown on the Models page
    # Builds the full model: input transform + network + softmax; see models.classifier.
    build: Callable[[WeightsKind], nn.Module]
    # Where the pretrained weights live; None when they cannot be located at all.
    weights_file: Callable[[], Path | None]
    # Why the pretrained weights cannot be used, with the fix; None when they can.
    missing_reason: Callable[[], str | None] = field(default=lambda: None)
    resize: ResizeMode = "stretch"
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

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def available(self) -> bool:
        return self.missing_reason() is None


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Adds a model; a second model with the same name is a programming error."""
    if spec.name in _REGISTRY:
        raise ValueError(f"a model named {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def all_specs() -> list[ModelSpec]:
    """Every registered model, in registration order (the default models first)."""
    return list(_REGISTRY.values())


class UnknownModelError(KeyError):
    """A model name that is not in the registry."""

    def __str__(self) -> str:
        return str(self.args[0])


def get_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(_REGISTRY)
        raise UnknownModelError(f"Unknown model {name!r}; choose one of: {known}.") from None
