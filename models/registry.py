"""The model registry: weights as data (name, input size, preprocessing, classes, licence, loader).

Every registered model is turned into the same callable by :func:`models.classifier.load_classifier`: a
``torch.nn.Module`` that takes N×3×H×W RGB float in [0, 255] at the model's input size and returns class
probabilities. Explainers only ever see that contract.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Mapping

from torch import nn

Domain = Literal["imagenet", "mri", "digits"]
InputKind = Literal["photo", "mri", "drawing"]
Fill = Literal["mean", "blur", "constant"]
Background = Literal["blurred", "samples", "black", "mean"]
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
    # False for a model that runs in ONNX Runtime (a user's .onnx): no gradients, so DeepSHAP and GradientSHAP
    # say why they cannot explain it.
    differentiable: bool = True
    # -- the model's domain, as data (what "auto" means for the methods, which samples suit it) ------------
    input_kind: InputKind = "photo"
    # What a hidden superpixel shows by default: photos their mean colour; MRIs and digits black, their
    # background (a mean-coloured patch on a black scan is a bright blob the model reacts to).
    fill: Fill = "mean"
    # What "absent" means for DeepSHAP and expected gradients: blurred copies for photos (no detail), the
    # other bundled images of the domain for MRIs and digits (a typical other case).
    background: Background = "blurred"
    # The space explanations add up in unless asked otherwise (explainers.outputs): log-odds for a model whose
    # probabilities saturate (the tumour model: p = 0.9998 on a glioma), so the maps still say what moved it.
    output: Literal["probability", "log-odds"] = "probability"
    sample_folder: str = "photos"  # under the samples folder (storage.folder("samples"))
    default_sample: str = ""  # the file stem shown first, e.g. "chelsea"
    # The true label in a sample's file name: a regular expression whose first group is a code, and the codes'
    # class names (no codes: the group is the class name itself).
    label_pattern: str | None = None
    label_codes: Mapping[str, str] = field(default_factory=dict)
    # -- the model card (shown on the Models page, beside the verdict and in reports) ------------------------
    intended_use: str = ""
    training_data: str = ""
    # Class names in words where the model's own ids are not ("notumor" → "no tumour").
    class_words: Mapping[str, str] = field(default_factory=dict)
    # A clinical model carries a standing "research use, not a diagnosis" notice wherever its verdict shows.
    clinical: bool = False

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_title(self, name_or_id: str | int) -> str:
        """A class as a person reads it: "no tumour" for "notumor", an id's name in words."""
        name = name_or_id if isinstance(name_or_id, str) else self.class_names[int(name_or_id)]
        return self.class_words.get(name, name)

    @property
    def class_titles(self) -> tuple[str, ...]:
        return tuple(self.class_title(name) for name in self.class_names)

    @property
    def available(self) -> bool:
        return self.missing_reason() is None

    def label_of(self, stem: str) -> str | None:
        """The class a file name says its image shows (e.g. "Te-gl_0010" → glioma), or None."""
        if self.label_pattern is None:
            return None
        match = re.search(self.label_pattern, stem)
        if match is None:
            return None
        code = match.group(1)
        label = self.label_codes.get(code) if self.label_codes else code
        return label if label in self.class_names else None


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
