"""The architectures as code, looked up by a card's ``architecture`` (``torchvision/<name>`` or ``project/<name>``),
and a card turned into the model the registry serves: input transform → network → softmax. Built-in models and
users' models go through the same :func:`build_model`; only where the trained weights come from differs (a built-in
card's weights source, read by the architecture's own code, or a user's checked safetensors or ONNX file)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch import nn

from models.cards import ModelCard
from models.networks import ModelRefused, architecture, build_network
from models.registry import ModelSpec, WeightsKind
from models.sources import locate, missing_reason
from models.transforms import ProbabilityModel, input_transform


def build_model(card: ModelCard, weights: WeightsKind | str = "pretrained") -> nn.Module:
    """The full model the registry serves: input transform, network (the trained weights, or with ``weights=
    "random"`` the architecture as initialised), softmax (unless the network ends in one)."""
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
    return ProbabilityModel(
        input_transform(card), network, outputs_probabilities=card.preprocessing.outputs == "probabilities"
    )


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
        name=card.name,
        title=card.title,
        input_size=pre.input_size,
        class_names=card.classes,
        build=build,
        weights_file=weights_file,
        card=card,
        policy=card.policy,
        missing_reason=reason,
        resize=pre.resize,
        resize_shorter_side=pre.resize_shorter_side,
        batch_size=card.runtime.batch_size,
        # predict in ONNX Runtime on the weights' own graph, which takes N×H×W×3 pixels / scale
        runtime="onnxruntime" if onnx else "torch",
        onnx_file=weights_file if onnx else None,
        onnx_input_scale=1.0 / pre.scale,
        onnx_export=card.runtime.onnx_export,
        differentiable=card.architecture is not None,
    )
