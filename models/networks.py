"""The networks as code: each architecture a card may name (``torchvision/<name>`` or ``project/<name>``), freshly
initialised or with its published weights, and a user's network from a checked card (safetensors into its
architecture, strictly, or an ONNX graph run in ONNX Runtime behind the same module contract; no gradients).
What a user's file cannot be is one sentence (:class:`ModelRefused`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from models.cards import ModelCard
from models.runtime import offline_onnxruntime
from storage.messages import one_line


class ModelRefused(ValueError):
    """A user's model that is not registered; the message is one sentence."""


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


class OnnxNetwork(nn.Module):
    """An ONNX graph as the network after the input transform: N×C×H×W in (N×H×W×C for an nhwc graph), the
    graph's first output out; a graph with a fixed batch of one is run image by image. No gradients."""

    def __init__(self, path: Path, layout: str = "nchw"):
        super().__init__()
        onnxruntime = offline_onnxruntime()
        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = max(1, torch.get_num_threads())
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        first = self.session.get_inputs()[0]
        self.input_name, self.layout = first.name, layout
        self.one_at_a_time = first.shape and first.shape[0] == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import numpy as np

        array = x.detach().float().cpu().numpy()
        if self.layout == "nhwc":
            array = array.transpose(0, 2, 3, 1)
        array = np.ascontiguousarray(array, dtype=np.float32)
        rows = [array[i : i + 1] for i in range(len(array))] if self.one_at_a_time else [array]
        outputs = [self.session.run(None, {self.input_name: row})[0] for row in rows]
        return torch.from_numpy(np.ascontiguousarray(np.concatenate(outputs), dtype=np.float32)).to(x.device)

    def __getstate__(self):  # a session does not pickle; a model is rebuilt from its card where it runs
        raise TypeError("an ONNX model is rebuilt from its card, not pickled")


def weights_file_of(card: ModelCard) -> Path:
    """A user's weights file; ModelRefused for a card without one (a built-in's source)."""
    if card.weights is None:  # a built-in's weights source: models.zoo loads it with its architecture's code
        raise ModelRefused(f"{card.name} names no weights file beside its card.")
    return card.weights


def build_network(card: ModelCard) -> nn.Module:
    """The card's architecture with its weights, strictly (every key present, none extra, every shape right),
    and every weight finite; ModelRefused with one sentence otherwise."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights = weights_file_of(card)
    if card.format == "onnx":
        try:
            return OnnxNetwork(weights, card.preprocessing.layout).eval()
        except Exception as error:  # noqa: BLE001 - ONNX Runtime's own refusals, told in a sentence
            raise ModelRefused(f"ONNX Runtime could not open {weights.name}: {one_line(error, 160)}.") from None
    try:
        network = architecture(card.architecture or "").untrained(len(card.classes))
    except KeyError:
        raise ModelRefused(f"The architecture {card.architecture} cannot be built.") from None
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, RuntimeError) as error:
        raise ModelRefused(f"{weights.name} could not be read as safetensors: {one_line(error, 160)}.") from None
    expected = network.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing:
        raise ModelRefused(
            f"{weights.name} lacks {len(missing)} weights of {card.architecture}, such as {missing[0][:60]!r}."
        )
    if unexpected:
        raise ModelRefused(
            f"{weights.name} has {len(unexpected)} weights that {card.architecture} does not, "
            f"such as {unexpected[0][:60]!r}."
        )
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise ModelRefused(
                f"{weights.name}'s {key[:60]} is {tuple(tensor.shape)} where {card.architecture} "
                f"with {len(card.classes)} classes has {tuple(expected[key].shape)}."
            )
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ModelRefused(f"{weights.name}'s {key[:60]} holds NaN or infinite values.")
    network.load_state_dict(state, strict=True)
    return network.eval()
