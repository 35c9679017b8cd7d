"""Model cards of users' own models (issue 15, item 1): a worked example is read and checked, and every mistake
or trick (paths out of the folder, links, pickles, unknown architectures, YAML tags) gets one sentence."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import save_file

from models.cards import CardError, read_card

EXAMPLE = """\
name: tumour_resnet18
title: Tumour ResNet-18 (ours)
weights: tumour_resnet18.safetensors
architecture: torchvision/resnet18
classes: [glioma, meningioma, notumor, pituitary]
class_words: {notumor: no tumour}
preprocessing:
  input_size: [224, 224]
  resize: center_crop
  resize_shorter_side: 256
  colour: rgb
  scale: 255
  mean: [0.485, 0.456, 0.406]
  std: [0.229, 0.224, 0.225]
  outputs: logits
domain:
  input_kind: mri
  fill: constant
  background: samples
  output: log-odds
intended_use: Research only.
training_data: Nothing yet (random weights).
licence: MIT
clinical: true
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cards")
    torch.manual_seed(0)
    save_file(
        torchvision.models.resnet18(weights=None, num_classes=4).state_dict(),
        str(folder / "tumour_resnet18.safetensors"),
    )
    (folder / "card.yaml").write_text(EXAMPLE)
    return folder


def card_with(folder: Path, text: str, name: str = "variant.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def refused(path: Path, **options) -> str:
    with pytest.raises(CardError) as caught:
        read_card(path, **options)
    message = str(caught.value)
    assert message.endswith(".") and len(message) < 300, message
    return message


def test_the_worked_example_is_read(folder: Path) -> None:
    card = read_card(folder / "card.yaml")
    assert card.name == "tumour_resnet18" and card.format == "safetensors"
    assert card.architecture == "torchvision/resnet18" and card.weights == (folder / "tumour_resnet18.safetensors")
    assert card.classes == ("glioma", "meningioma", "notumor", "pituitary")
    assert card.class_words == {"notumor": "no tumour"} and card.clinical and card.policy.output == "log-odds"
    assert card.preprocessing.resize == "center_crop" and card.preprocessing.resize_shorter_side == 256
    assert card.preprocessing.std == (0.229, 0.224, 0.225) and card.policy.kind == "mri"


def test_a_classes_file_and_an_onnx_card(folder: Path) -> None:
    (folder / "classes.txt").write_text("cat\ndog\n\nbird\n")
    (folder / "net.onnx").write_bytes(b"\0")  # its bytes are judged later, by models.weights_files
    card = read_card(card_with(folder, "name: pets\nweights: net.onnx\nclasses_file: classes.txt\n"))
    assert card.format == "onnx" and card.architecture is None and card.classes == ("cat", "dog", "bird")


@pytest.mark.parametrize(
    "change, words",
    [
        (("name: tumour_resnet18", "name: Bad Name"), "lower-case"),
        (("weights: tumour_resnet18.safetensors", "weights: ../outside.safetensors"), "inside the card's folder"),
        (("weights: tumour_resnet18.safetensors", "weights: /etc/passwd"), "inside the card's folder"),
        (("weights: tumour_resnet18.safetensors", "weights: missing.safetensors"), "does not exist"),
        (("weights: tumour_resnet18.safetensors", "weights: model.pt"), "never loaded"),
        (("architecture: torchvision/resnet18", "architecture: torchvision/not_a_net"), "no image classifier"),
        (("architecture: torchvision/resnet18", "architecture: os/system"), "neither torchvision"),
        (("architecture: torchvision/resnet18\n", ""), "must name its architecture"),
        (("classes: [glioma, meningioma, notumor, pituitary]", "classes: [a, a]"), "named twice"),
        (("classes: [glioma, meningioma, notumor, pituitary]", "classes: [only]"), "between 2"),
        (("classes: [glioma, meningioma, notumor, pituitary]\n", ""), "either as a list"),
        (("  input_size: [224, 224]", "  input_size: [224, 99999]"), "8 to 1024"),
        (("  resize_shorter_side: 256", "  resize_shorter_side: 100"), "at least the input size"),
        (("  std: [0.229, 0.224, 0.225]", "  std: [0.2, 0, 0.2]"), "positive"),
        (("  colour: rgb", "  colour: purple"), "one of rgb, grayscale"),
        (("  output: log-odds", "  output: odds"), "one of probability, log-odds"),
        (("clinical: true", "clinical: maybe"), "true or false"),
        (("licence: MIT", "licence: MIT\nbackdoor: yes"), "unknown field 'backdoor'"),
        (("  fill: constant", "  fill: constant\n  exec: rm"), "unknown setting 'exec'"),
    ],
)
def test_each_mistake_gets_one_sentence(folder: Path, change: tuple[str, str], words: str) -> None:
    (folder / "model.pt").write_bytes(b"\x80\x04")
    old, new = change
    assert old in EXAMPLE
    assert words in refused(card_with(folder, EXAMPLE.replace(old, new)))


def test_tricks_are_refused(folder: Path) -> None:
    assert "exists already" in refused(folder / "card.yaml", reserved={"tumour_resnet18"})
    tagged = card_with(folder, "name: !!python/object/apply:os.system [touch pwned]\n")
    assert "not readable YAML" in refused(tagged) and not (folder / "pwned").exists()
    assert "not a model card" in refused(card_with(folder, "- a list\n"))
    assert "too large" in refused(card_with(folder, "name: x\n" + "#" * 70_000 + "\n"))
    (folder / "linked.safetensors").symlink_to(folder / "tumour_resnet18.safetensors")
    linked = card_with(folder, EXAMPLE.replace("weights: tumour_resnet18.safetensors", "weights: linked.safetensors"))
    assert "is a link" in refused(linked)
    (folder / "card_link.yaml").symlink_to(folder / "card.yaml")
    assert "not a card file" in refused(folder / "card_link.yaml")


def billion_laughs(where: str = "domain:\n  fill") -> str:
    """About 1 KB of YAML whose last alias stands for 9**9 strings (gigabytes once expanded)."""
    lines = [
        "name: bomb",
        "weights: tumour_resnet18.safetensors",
        "architecture: torchvision/resnet18",
        "classes: [a, b]",
        "a0: &a0 [" + ", ".join(['"lol"'] * 9) + "]",
    ]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    return "\n".join(lines) + f"\n{where}: *a8\n"


def test_an_alias_bomb_is_refused_before_anything_expands(folder: Path) -> None:
    text = billion_laughs()
    assert len(text) < 1200
    message = refused(card_with(folder, text, "bomb.yaml"))
    assert message == "bomb.yaml line 6: YAML aliases (*a0) are not allowed in model cards."


def test_a_deeply_nested_card_is_refused(folder: Path) -> None:
    deep = EXAMPLE.replace("  fill: constant", "  fill: " + "[" * 5000 + "]" * 5000)
    assert "nests deeper than 10 levels" in refused(card_with(folder, deep, "deep.yaml"))
    deep = EXAMPLE.replace("  fill: constant", "  fill:\n" + "".join(f"{'  ' * i}  k{i}:\n" for i in range(1, 30)))
    assert "deep.yaml line" in refused(card_with(folder, deep, "deep.yaml"))


def test_a_value_shown_in_a_sentence_is_never_expanded_or_dumped(folder: Path) -> None:
    long_number = EXAMPLE.replace("  fill: constant", "  fill: " + "9" * 1000)
    assert "not a very long number" in refused(card_with(folder, long_number))
    longer = EXAMPLE.replace("  fill: constant", "  fill: " + "9" * 10_000)
    assert "number too long to read" in refused(card_with(folder, longer))
    listed = EXAMPLE.replace("  fill: constant", "  fill: [" + ", ".join(["x" * 100] * 300) + "]")
    assert "fill must be one of mean, blur, constant, not a list." in refused(card_with(folder, listed))
    assert "too large" in refused(card_with(folder, EXAMPLE + "source: " + "x" * 70_000 + "\n"))
