"""Model cards for users' own models (issue 15): a YAML file naming the weights, their format, the classes, the
preprocessing and the domain defaults, read with a strict ``yaml.SafeLoader`` (no aliases, a few levels deep, at
most 64 KB: a 1 KB "billion laughs" card must not expand to gigabytes) and checked field by field; anything wrong
is one sentence (:class:`CardError`); the settings sections (preprocessing, domain, runtime, a built-in's weights
source) are checked in :mod:`models.card_sections`. Nothing here loads the weights: :mod:`models.weights_files`
judges them by their bytes, and loading happens later in a child process.

A card (every path relative to the card's folder, never outside it)::

    name: tumour_resnet18            # lower case, digits and _; not a built-in model's name
    title: Tumour ResNet-18 (ours)
    weights: tumour_resnet18.safetensors
    format: safetensors              # or onnx; by default from the weights' suffix
    architecture: torchvision/resnet18   # safetensors only: torchvision/<classifier> or project/<model>
    classes: [glioma, meningioma, notumor, pituitary]   # or classes_file: classes.txt (one per line)
    class_words: {notumor: no tumour}
    preprocessing:
      input_size: [224, 224]         # height, width
      resize: stretch                # or center_crop, with resize_shorter_side
      colour: rgb                    # or grayscale
      scale: 255                     # 0..255 is divided by this, then (x - mean) / std
      mean: [0.485, 0.456, 0.406]
      std: [0.229, 0.224, 0.225]
      channel_order: rgb             # or bgr
      layout: nchw                   # ONNX input layout: nchw or nhwc
      outputs: logits                # or probabilities (the network ends in its own softmax)
    domain:
      input_kind: mri                # photo, mri or drawing: its policy (models.domains) gives the defaults below
      fill: constant                 # mean, blur or constant: what a hidden superpixel shows
      background: samples            # blurred, samples, black or mean: DeepSHAP's and GradientSHAP's reference
      output: log-odds               # probability or log-odds
    intended_use: Research on …
    training_data: …
    source: …
    licence: …
    clinical: true

Built-in cards (models/builtin/) go through the same reader with ``builtin=True``: trusted, they skip the sandboxed
first parse and may name a weights source (``weights:`` as a mapping, models.sources) and a ``runtime:`` section.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.card_sections import (
    CardError,
    Runtime,
    read_policy,
    read_preprocessing,
    read_runtime,
    read_weights_source,
)
from models.domains import POLICIES, DomainPolicy
from models.preprocessing import Preprocessing
from models.sources import WeightsSource
from storage.yaml_strict import Refused, strict_loader

MAX_CARD_BYTES = 64 * 1024
# A card nests three levels (preprocessing → mean → numbers); PyYAML's composer recurses once per level.
MAX_CARD_DEPTH = 10
MAX_CLASSES_FILE_BYTES = 1 * 2**20
MAX_CLASSES = 100_000
NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
PROJECT_ARCHITECTURES = ("digits_cnn", "brain_tumor_vgg16", "efficientnet_lite0")  # models.zoo.PROJECT's
_TOP = {
    "name",
    "title",
    "weights",
    "format",
    "architecture",
    "classes",
    "classes_file",
    "class_words",
    "preprocessing",
    "domain",
    "intended_use",
    "training_data",
    "source",
    "licence",
    "clinical",
    "task",
}


@dataclass(frozen=True)
class ModelCard:
    """A checked card: what the registry needs to offer the model, before its weights are loaded."""

    path: Path  # the card file
    name: str
    title: str
    weights: Path | None  # inside the card's folder; None for a built-in's weights_source
    format: str  # "safetensors" or "onnx"; "native" for a built-in's source, read by its architecture's code
    architecture: str | None  # "torchvision/resnet18", "project/digits_cnn"; None for ONNX
    classes: tuple[str, ...]
    classes_file: Path | None = None  # where the classes came from, when not listed in the card
    class_words: dict[str, str] = field(default_factory=dict)
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    policy: DomainPolicy = POLICIES["photo"]
    intended_use: str = ""
    training_data: str = ""
    source: str = ""  # where the weights come from, in words
    licence: str = "not stated"
    clinical: bool = False
    task: str = ""
    weights_source: WeightsSource | None = None  # a built-in's published weights
    runtime: Runtime = Runtime()


def _text(value: Any, what: str, limit: int = 2000) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise CardError(f"The card's {what} must be text of at most {limit} characters.")
    return value.strip()


def _inside(folder: Path, relative: Any, what: str) -> Path:
    """A file named by the card, inside the card's folder (no absolute path, no .., no link)."""
    if not isinstance(relative, str) or not relative.strip():
        raise CardError(f"The card's {what} must name a file next to the card.")
    candidate = Path(relative)
    if candidate.is_absolute() or ".." in candidate.parts:
        raise CardError(f"The card's {what} must be a file inside the card's folder, not {relative[:80]!r}.")
    path = folder / candidate
    if path.is_symlink():
        raise CardError(f"The card's {what} {candidate.name} is a link; copy the file itself next to the card.")
    resolved = path.resolve()
    if folder.resolve() not in resolved.parents:
        raise CardError(f"The card's {what} must be a file inside the card's folder, not {relative[:80]!r}.")
    if not resolved.is_file():
        raise CardError(f"The card's {what} {candidate.name} does not exist next to the card.")
    return resolved


def _classes(card: dict, folder: Path) -> tuple[tuple[str, ...], Path | None]:
    if ("classes" in card) == ("classes_file" in card):
        raise CardError("The card must give its classes either as a list (classes) or as a file (classes_file).")
    path = None
    if "classes" in card:
        names = card["classes"]
        if not isinstance(names, list):
            raise CardError("The card's classes must be a list of names.")
    else:
        path = _inside(folder, card["classes_file"], "classes_file")
        if path.stat().st_size > MAX_CLASSES_FILE_BYTES:
            raise CardError(f"The card's classes_file is over {MAX_CLASSES_FILE_BYTES // 2**20} MB.")
        try:
            names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except UnicodeDecodeError:
            raise CardError("The card's classes_file is not UTF-8 text.") from None
    if not 2 <= len(names) <= MAX_CLASSES:
        raise CardError(f"The card must name between 2 and {MAX_CLASSES:,} classes, not {len(names)}.")
    if not all(isinstance(name, (str, int)) and 0 < len(str(name).strip()) <= 100 for name in names):
        raise CardError("Every class name must be text of 1 to 100 characters.")
    names = [str(name).strip() for name in names]
    if len(set(names)) != len(names):
        duplicate = next(name for name in names if names.count(name) > 1)
        raise CardError(f"The class {duplicate[:40]!r} is named twice.")
    return tuple(names), path


def _architecture(value: Any, format_: str) -> str | None:
    if format_ == "onnx":
        if value is not None:
            raise CardError("An ONNX card needs no architecture: the graph is the architecture.")
        return None
    if not isinstance(value, str) or "/" not in value:
        raise CardError(
            "A safetensors card must name its architecture: torchvision/<name> (e.g. "
            "torchvision/resnet18) or project/<name> (digits_cnn, brain_tumor_vgg16)."
        )
    family, name = value.split("/", 1)
    if family == "project" and name in PROJECT_ARCHITECTURES:
        return value
    if family == "torchvision":
        import torchvision

        if name in torchvision.models.list_models(module=torchvision.models):
            return value
        raise CardError(f"torchvision has no image classifier named {name[:40]!r}.")
    raise CardError(
        f"The architecture {value[:60]!r} is neither torchvision/<name> nor project/<name> "
        f"({', '.join(PROJECT_ARCHITECTURES)})."
    )


def _strict_loader() -> type:
    return strict_loader(
        "model cards", MAX_CARD_DEPTH, "the card nests deeper than {depth} levels; a model card needs three"
    )


def _read_text(path: Path) -> str:
    """The card's text: a regular file (checked before opening: a pipe or device is never read) of at most
    MAX_CARD_BYTES, reading no further even if it grows meanwhile."""
    too_big = CardError(f"{path.name} is over {MAX_CARD_BYTES // 1024} KB, too large for a model card.")
    try:
        info = os.stat(path)
        if path.is_symlink() or not stat.S_ISREG(info.st_mode):
            raise CardError(f"{path.name} is not a card file.")
        if info.st_size > MAX_CARD_BYTES:
            raise too_big
        with open(path, "rb") as file:
            data = file.read(MAX_CARD_BYTES + 1)
    except OSError:
        raise CardError(f"{path.name} is not a card file.") from None
    if len(data) > MAX_CARD_BYTES:
        raise too_big
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise CardError(f"{path.name} is not readable YAML.") from None


def _load(path: Path) -> Any:
    """The card's document, parsed first in a sandboxed child (:func:`storage.sandbox.probe`), then here through
    the strict loader; CardError with one sentence otherwise."""
    from storage.sandbox import ChildStopped, probe

    text = _read_text(path)
    try:
        probe("storage.yaml_child", text, path.name, "The card reader stopped on this file; nothing was kept.")
    except ChildStopped as stopped:
        raise CardError(str(stopped)) from None
    return parse_text(text, path.name)


def parse_text(text: str, name: str) -> Any:
    """A card's text through the strict loader (aliases and deep nesting refused); CardError otherwise."""
    import yaml

    try:
        loader = _strict_loader()(text)  # the reader checks for unprintable characters here already
    except yaml.YAMLError:
        raise CardError(f"{name} is not readable YAML.") from None
    try:
        return loader.get_single_data()
    except Refused as refused:
        raise CardError(f"{name} line {refused.line}: {refused.message}.") from None
    except ValueError:  # an integer of thousands of digits, which Python refuses to convert
        raise CardError(f"{name} holds a number too long to read.") from None
    except (yaml.YAMLError, RecursionError):
        raise CardError(f"{name} is not readable YAML.") from None
    finally:
        loader.dispose()


def read_card(path: Path | str, reserved: Set[str] = frozenset(), builtin: bool = False) -> ModelCard:
    """The checked card at ``path``; CardError with one sentence otherwise. ``reserved``: names already taken.
    ``builtin``: a card of this repository (models/builtin), trusted to skip the sandboxed first parse and allowed
    a weights source and a runtime section."""
    path = Path(path)
    card = parse_text(_read_text(path), path.name) if builtin else _load(path)
    if not isinstance(card, dict):
        raise CardError(f"{path.name} is not a model card (a YAML mapping of fields).")
    unknown = sorted(set(map(str, card)) - (_TOP | {"runtime"} if builtin else _TOP))
    if unknown:
        raise CardError(f"The card has an unknown field {unknown[0][:40]!r}.")
    name = card.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise CardError(
            "The card's name must start with a lower-case letter and hold up to 40 lower-case "
            "letters, digits and underscores."
        )
    if name in reserved:
        raise CardError(f"A model named {name!r} exists already; choose another name.")
    folder = path.parent
    weights: Path | None = None
    source = None
    if builtin and isinstance(card.get("weights"), dict):
        source, format_ = read_weights_source(card["weights"]), "native"
    else:
        weights = _inside(folder, card.get("weights"), "weights")
        suffix_format = {".safetensors": "safetensors", ".onnx": "onnx"}.get(weights.suffix.lower())
        declared = card.get("format", suffix_format)
        if declared not in ("safetensors", "onnx"):
            raise CardError(
                "The card's format must be safetensors or onnx (pickled .pt, .pth, .bin and .ckpt files "
                "are never loaded)."
            )
        format_ = str(declared)
        if suffix_format != format_:
            raise CardError(f"The card says {format_} but its weights file is {weights.name}.")
    words = card.get("class_words", {})
    if not isinstance(words, dict):
        raise CardError("The card's class_words must map class names to words.")
    classes, classes_file = _classes(card, folder)
    clinical = card.get("clinical", False)
    if not isinstance(clinical, bool):
        raise CardError("The card's clinical must be true or false.")
    default_source = "a card of its user"
    if source is not None and source.kind == "torch_hub":
        import torchvision

        default_source = f"torchvision {torchvision.__version__} weights {source.location}"
    return ModelCard(
        path=path.resolve(),
        name=name,
        title=_text(card.get("title", name), "title", 120),
        weights=weights,
        format=format_,
        architecture=_architecture(card.get("architecture"), format_),
        classes=classes,
        classes_file=classes_file,
        class_words={str(k): _text(v, "class_words", 100) for k, v in words.items() if str(k) in classes},
        preprocessing=read_preprocessing(card),
        policy=read_policy(card),
        intended_use=_text(card.get("intended_use", ""), "intended_use"),
        training_data=_text(card.get("training_data", ""), "training_data"),
        source=_text(card.get("source", default_source), "source"),
        licence=_text(card.get("licence", "not stated"), "licence", 200),
        clinical=clinical,
        task=_text(card.get("task", f"image classification, {len(classes)} classes"), "task", 200),
        weights_source=source,
        runtime=read_runtime(card, builtin),
    )
