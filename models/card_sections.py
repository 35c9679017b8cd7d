"""The settings sections of a model card (models.cards): preprocessing, domain, a built-in's runtime and its
weights source, each a mapping checked key by key against the settings it may hold, with the card's error
(:class:`CardError`, one sentence) and the runtime a card asks for (:class:`Runtime`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.domains import POLICIES, DomainPolicy, policy_for
from models.preprocessing import Preprocessing
from models.sources import SourceKind, WeightsSource

_PREPROCESSING = {
    "input_size": None,
    "resize": ("stretch", "center_crop"),
    "resize_shorter_side": None,
    "colour": ("rgb", "grayscale"),
    "scale": None,
    "mean": None,
    "std": None,
    "channel_order": ("rgb", "bgr"),
    "layout": ("nchw", "nhwc"),
    "outputs": ("logits", "probabilities"),
}
_DOMAIN = {
    "input_kind": tuple(POLICIES),
    "fill": ("mean", "blur", "constant"),
    "background": ("blurred", "samples", "black", "mean"),
    "output": ("probability", "log-odds"),
}
_SOURCES: dict[SourceKind, tuple[str, ...]] = {
    "repository": ("repository", "fix"),
    "torch_hub": ("torch_hub",),
    "package": ("package", "file"),
}
_RUNTIME = {"batch_size": None, "engine": ("torch", "onnxruntime"), "onnx_export": None}  # built-in cards only


class CardError(ValueError):
    """A model card that cannot be used; the message is one sentence."""


@dataclass(frozen=True)
class Runtime:
    """How the app runs the model: images per forward pass on a CPU, PyTorch or ONNX Runtime (on the weights' own
    graph, a built-in's), and whether its module may be exported to ONNX to try ONNX Runtime on it."""

    batch_size: int = 16
    engine: str = "torch"
    onnx_export: bool = False


def _numbers(value: Any, what: str, count: tuple[int, ...], positive: bool = False) -> tuple[float, ...]:
    values = value if isinstance(value, list) else [value]
    if len(values) not in count or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise CardError(f"The card's preprocessing {what} must be {' or '.join(map(str, count))} numbers.")
    if positive and not all(v > 0 for v in values):
        raise CardError(f"The card's preprocessing {what} must be positive.")
    return tuple(float(v) for v in values)


def _shown(value: Any) -> str:
    """A value for a message: the start of a text or number, else only what kind of value it is."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**40:
        return "a very long number"  # str() of a huge int is slow, and refused past 4300 digits
    if isinstance(value, (str, int, float, bool)):
        return repr(str(value)[:40])
    kinds: dict[type, str] = {dict: "a mapping", list: "a list"}
    return kinds.get(type(value), "a " + type(value).__name__)


def _choice(section: dict, key: str, choices: tuple[str, ...] | None, default: Any, where: str) -> Any:
    value = section.get(key, default)
    if choices is not None and value not in choices:
        raise CardError(f"The card's {where}{key} must be one of {', '.join(choices)}, not {_shown(value)}.")
    return value


def _section(card: dict, key: str, allowed: dict) -> dict:
    section = card.get(key, {})
    if not isinstance(section, dict):
        raise CardError(f"The card's {key} must be a mapping of settings.")
    unknown = sorted(set(map(str, section)) - set(allowed))
    if unknown:
        raise CardError(f"The card's {key} has an unknown setting {unknown[0][:40]!r}; known: {', '.join(allowed)}.")
    return section


def read_preprocessing(card: dict) -> Preprocessing:
    """The card's preprocessing section, its defaults where it is silent."""
    section = _section(card, "preprocessing", _PREPROCESSING)
    size = section.get("input_size", [224, 224])
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and 8 <= v <= 1024 for v in size)):
        raise CardError("The card's preprocessing input_size must be [height, width], each 8 to 1024 pixels.")
    values = {
        key: _choice(section, key, choices, getattr(Preprocessing, key), "preprocessing ")
        for key, choices in _PREPROCESSING.items()
        if choices is not None
    }
    channels = (1,) if values["colour"] == "grayscale" else (1, 3)
    shorter = section.get("resize_shorter_side")
    if values["resize"] == "center_crop":
        if not (isinstance(shorter, int) and max(size) <= shorter <= 2048):
            raise CardError(
                "The card's preprocessing resize_shorter_side must be a whole number of pixels, at "
                "least the input size, for center_crop."
            )
    elif shorter is not None:
        raise CardError("The card's preprocessing resize_shorter_side applies to center_crop only.")
    scale = _numbers(section.get("scale", 255), "scale", (1,), positive=True)[0]
    mean = _numbers(section.get("mean", [0.0]), "mean", channels)
    std = _numbers(section.get("std", [1.0]), "std", channels, positive=True)
    return Preprocessing(
        (size[0], size[1]),
        values["resize"],
        shorter,
        values["colour"],
        scale,
        mean,
        std,
        values["channel_order"],
        values["layout"],
        values["outputs"],
    )


def read_weights_source(value: dict) -> WeightsSource:
    """A built-in card's ``weights`` mapping: exactly one of repository, package or torch_hub, with its settings."""
    kinds = [kind for kind in _SOURCES if kind in value]
    if len(kinds) != 1:
        raise CardError(f"A built-in card's weights must name one of {', '.join(_SOURCES)}.")
    kind = kinds[0]
    unknown = sorted(set(map(str, value)) - set(_SOURCES[kind]))
    if unknown or not all(isinstance(v, str) and v.strip() for v in value.values()):
        raise CardError(f"A built-in card's {kind} weights take text settings {', '.join(_SOURCES[kind])} only.")
    if kind == "torch_hub":
        import torchvision

        try:
            torchvision.models.get_weight(value[kind])
        except (ValueError, KeyError, AttributeError):
            raise CardError(f"torchvision has no weights named {value[kind][:60]!r}.") from None
    return WeightsSource(
        kind,
        value["file"] if kind == "package" else value[kind],
        package=value.get("package", ""),
        fix=value.get("fix", ""),
    )


def read_runtime(card: dict, builtin: bool) -> Runtime:
    """The card's runtime section (a built-in's only); ``builtin`` allows an ONNX export by default."""
    section = _section(card, "runtime", _RUNTIME)
    batch = section.get("batch_size", Runtime.batch_size)
    if not (isinstance(batch, int) and not isinstance(batch, bool) and 1 <= batch <= 256):
        raise CardError("The card's runtime batch_size must be a whole number from 1 to 256.")
    engine = _choice(section, "engine", _RUNTIME["engine"], Runtime.engine, "runtime ")
    # A built-in may be exported to ONNX and timed against PyTorch; a user's model runs as its card says.
    export = section.get("onnx_export", builtin)
    if not isinstance(export, bool):
        raise CardError("The card's runtime onnx_export must be true or false.")
    return Runtime(batch, engine, export)


def read_policy(card: dict) -> DomainPolicy:
    """The policy of the card's input kind, with the fields the card sets."""
    section = _section(card, "domain", _DOMAIN)
    kind = _choice(section, "input_kind", _DOMAIN["input_kind"], "photo", "domain ")
    return policy_for(
        kind,
        **{
            key: _choice(section, key, choices, None, "domain ")
            for key, choices in _DOMAIN.items()
            if key != "input_kind" and key in section
        },
    )
