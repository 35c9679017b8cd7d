"""Users' own models checked in a child process with a memory limit (issue 15, item 3's second half): a real
torchvision ResNet-18 in safetensors passes; missing and unexpected keys, shapes of another class count, NaN
weights, an output size that differs from the card's classes, a hostile pickle and a model over the memory limit
are refused with one sentence, and the app's own process never loads them."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import save_file

from models.cards import read_card
from models.own import ModelRefused, validate
from models.zoo import build_model


def write(
    folder: Path,
    state: dict,
    classes: list[str],
    architecture: str = "torchvision/resnet18",
    name: str = "mine",
    extra: str = "",
) -> Path:
    save_file(state, str(folder / f"{name}.safetensors"))
    card = folder / f"{name}.yaml"
    card.write_text(
        f"name: {name}\nweights: {name}.safetensors\narchitecture: {architecture}\n"
        f"classes: [{', '.join(classes)}]\n{extra}"
    )
    return card


@pytest.fixture(scope="module")
def resnet_state() -> dict:
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None, num_classes=4).state_dict()


def refused(card: Path) -> str:
    with pytest.raises(ModelRefused) as caught:
        validate(read_card(card))
    message = str(caught.value)
    assert message.endswith(".") and len(message) < 300, message
    return message


def test_a_random_resnet18_passes_in_the_child_and_builds_here(tmp_path: Path, resnet_state: dict) -> None:
    card = read_card(write(tmp_path, resnet_state, ["a", "b", "c", "d"]))
    checked = validate(card)
    assert checked.classes == 4 and 100 * 2**20 < checked.peak_bytes < 3 * 2**30
    probs = build_model(card)(torch.full((2, 3, 224, 224), 100.0))
    assert probs.shape == (2, 4) and torch.allclose(probs.sum(dim=1), torch.ones(2))


def test_wrong_keys_shapes_and_values_are_refused(tmp_path: Path, resnet_state: dict) -> None:
    missing = {key: value for key, value in resnet_state.items() if key != "fc.bias"}
    assert "lacks 1 weights" in refused(write(tmp_path, missing, ["a", "b", "c", "d"], name="missing"))
    extra = dict(resnet_state, **{"backdoor.weight": torch.zeros(1)})
    assert "'backdoor.weight'" in refused(write(tmp_path, extra, ["a", "b", "c", "d"], name="extra"))
    # Weights for 4 classes, a card of 5: fc's shape gives it away before any forward pass.
    assert "where torchvision/resnet18 with 5 classes has (5," in refused(
        write(tmp_path, resnet_state, ["a", "b", "c", "d", "e"], name="five")
    )
    poisoned = dict(resnet_state)
    poisoned["layer1.0.conv1.weight"] = poisoned["layer1.0.conv1.weight"].clone()
    poisoned["layer1.0.conv1.weight"][0, 0, 0, 0] = float("nan")
    assert "NaN or infinite" in refused(write(tmp_path, poisoned, ["a", "b", "c", "d"], name="nan"))


def test_an_output_size_other_than_the_cards_classes_is_refused(tmp_path: Path) -> None:
    from models.digits import DigitsCNN

    state = DigitsCNN().state_dict()  # ten outputs
    digits = "preprocessing:\n  input_size: [28, 28]\n  colour: grayscale\n"
    message = refused(
        write(tmp_path, state, ["a", "b", "c", "d"], architecture="project/digits_cnn", name="ten", extra=digits)
    )
    assert "gives 10 outputs but its card names 4 classes" in message


def test_a_hostile_pickle_named_safetensors_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    card = write(tmp_path, {"w": torch.zeros(1)}, ["a", "b"], name="evil")
    (tmp_path / "evil.safetensors").write_bytes(pickle.dumps(Payload(), protocol=4))
    assert "pickle" in refused(card) and not marker.exists()


def test_a_model_over_the_memory_limit_is_refused(tmp_path: Path, resnet_state: dict, monkeypatch) -> None:
    monkeypatch.setenv("EXPLAINERS_MODEL_CHECK_MEMORY_MB", "16")  # ResNet-18's weights alone are 45 MB
    message = refused(write(tmp_path, resnet_state, ["a", "b", "c", "d"], name="big"))
    assert "more than 16 MB" in message or "ended abruptly" in message, message
