"""The architectures as code, looked up by a card's ``architecture`` (``torchvision/<name>`` or ``project/<name>``),
and a card turned into the model the registry serves: input transform → network → softmax. Built-in models and
users' models go through the same :func:`build_model`; only where the trained weights come from differs (a built-in
card's weights source, read by the architecture's own code, or a user's checked safetensors or ONNX file)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from models.cards import ModelCard
from models.classifier import Grayscale, ProbabilityModel, ScaleShift
from models.registry import ModelSpec, WeightsKind
from models.sources import locate, missing_reason


@dataclass(frozen=True)
class Architecture:
    """One network as code: freshly initialised for a class count, or with the published weights that a built-in
    card's source locates (each in its own format: a state_dict, or the ONNX graph the tumour model is ported from)."""

    untrained: Callable[[int], nn.Module]
    pretrained: Callable[[Path, int], nn.Module]  # the weights' file, the card's class count


def _state_dict_into(untrained: Callable[[int], nn.Module]) -> Callable[[Path, int], nn.Module]:
    def load(path: Path, classes: int) -> nn.Module:
        network = untrained(classes)
        network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
        return network
    return load


def _efficientnet_lite0(classes: int) -> nn.Module:
    from models.efficientnet_lite import EfficientNetLite0

    return EfficientNetLite0(num_classes=classes)


def _brain_tumor_vgg16(classes: int) -> nn.Module:
    from models.brain_tumor import BrainTumorVGG16

    return BrainTumorVGG16()  # four classes, fixed: a card with another count fails its shape check


def _brain_tumor_from_onnx(path: Path, classes: int) -> nn.Module:
    from models.brain_tumor import load_from_onnx

    return load_from_onnx(path)


def _digits_cnn(classes: int) -> nn.Module:
    from models.digits import DigitsCNN

    return DigitsCNN()  # ten classes, fixed


def _digits_from_file(path: Path, classes: int) -> nn.Module:
    from models.digits import load_digits_cnn

    return load_digits_cnn(path)


# project/<name>: this repository's own networks (models.cards.PROJECT_ARCHITECTURES names the same keys).
PROJECT: dict[str, Architecture] = {
    "efficientnet_lite0": Architecture(_efficientnet_lite0, _state_dict_into(_efficientnet_lite0)),
    "brain_tumor_vgg16": Architecture(_brain_tumor_vgg16, _brain_tumor_from_onnx),
    "digits_cnn": Architecture(_digits_cnn, _digits_from_file),
}


def architecture(name: str) -> Architecture:
    """The architecture a card names (checked by the card reader already); KeyError for an unknown one."""
    family, _, network = name.partition("/")
    if family == "torchvision":
        def untrained(classes: int) -> nn.Module:
            import torchvision

            return torchvision.models.get_model(network, weights=None, num_classes=classes)
        return Architecture(untrained, _state_dict_into(untrained))
    if family != "project":
        raise KeyError(f"no architecture named {name}")
    return PROJECT[network]


def input_transform(card: ModelCard) -> nn.Module:
    """0..255 RGB to what the network takes: channel order, grey, then (x / scale − mean) / std."""
    pre = card.preprocessing
    steps: list[nn.Module] = []
    if pre.channel_order == "bgr" and pre.colour == "rgb":
        steps.append(_Flip())
    if pre.colour == "grayscale":
        steps.append(Grayscale())
    channels = 1 if pre.colour == "grayscale" else 3
    mean = tuple(pre.mean) * (channels // len(pre.mean))
    std = tuple(pre.std) * (channels // len(pre.std))
    steps.append(ScaleShift(tuple(m * pre.scale for m in mean), tuple(s * pre.scale for s in std)))
    return steps[0] if len(steps) == 1 else nn.Sequential(*steps)


class _Flip(nn.Module):
    """RGB to BGR."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(1)


def build_model(card: ModelCard, weights: WeightsKind | str = "pretrained") -> nn.Module:
    """The full model the registry serves: input transform, network (the trained weights, or with ``weights=
    "random"`` the architecture as initialised), softmax (unless the network ends in one)."""
    from models.own import ModelRefused, build_network

    if card.architecture is None:
        if weights == "random":
            raise ModelRefused("An ONNX model has no random-weights variant; its graph holds its weights.")
        network = build_network(card)
    elif weights == "random":
        network = architecture(card.architecture).untrained(len(card.classes)).eval()
    elif card.weights_source is not None:
        path = locate(card.weights_source)
        reason = missing_reason(card.weights_source)
        if path is None or reason is not None:  # never let a loader fall back to a download
            raise FileNotFoundError(reason)
        network = architecture(card.architecture).pretrained(path, len(card.classes)).eval()
    else:
        network = build_network(card)
    return ProbabilityModel(input_transform(card), network,
                            outputs_probabilities=card.preprocessing.outputs == "probabilities")


def spec_from_card(card: ModelCard, unavailable: Callable[[], str | None] | None = None) -> ModelSpec:
    """What the registry offers for a card. ``unavailable``: why a user's model cannot run (its stamp); a
    built-in's reason comes from its weights source."""
    source, pre = card.weights_source, card.preprocessing

    def weights_file() -> Path | None:
        return locate(source) if source is not None else card.weights

    def reason() -> str | None:
        if source is not None:
            return missing_reason(source)
        return unavailable() if unavailable is not None else None

    def build(weights: WeightsKind) -> nn.Module:
        return build_model(card, weights)

    onnx = card.runtime.engine == "onnxruntime" and card.format in ("native", "onnx")
    return ModelSpec(
        name=card.name, title=card.title, input_size=pre.input_size, class_names=card.classes, build=build,
        weights_file=weights_file, card=card, policy=card.policy, missing_reason=reason, resize=pre.resize,
        resize_shorter_side=pre.resize_shorter_side, batch_size=card.runtime.batch_size,
        # predict in ONNX Runtime on the weights' own graph, which takes N×H×W×3 pixels / scale
        runtime="onnxruntime" if onnx else "torch", onnx_file=weights_file if onnx else None,
        onnx_input_scale=1.0 / pre.scale, onnx_export=card.runtime.onnx_export,
        differentiable=card.architecture is not None)


def _torchvision_builder(arch: str) -> Callable[[WeightsKind], nn.Module]:
    """The builder of another torchvision classifier with ResNet-18's card (ImageNet preprocessing); for tests that
    try an architecture without writing its card."""
    from models.registry import get_spec

    card = replace(get_spec("resnet18").card, name=arch, architecture=f"torchvision/{arch}")
    return lambda weights: build_model(card, weights)
