"""The built-in models are cards (models/builtin/*.yaml) read by the users' card reader: each parses, its domain
policy is complete, its words match its numbers, a torchvision classifier is one more card, and importing the
package registers nothing until the first lookup."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torchvision

from models import all_specs, catalog, get_spec, load_classifier
from models.cards import CardError, read_card
from models.domains import POLICIES
from models.preprocessing import describe

ROOT = Path(__file__).resolve().parents[1]
CARDS = sorted(catalog.BUILTIN_CARDS.glob("*.yaml"))
TORCHVISION = [
    card.name
    for card in (read_card(path, builtin=True) for path in CARDS)
    if (card.architecture or "").startswith("torchvision/")
]


@pytest.mark.parametrize("path", CARDS, ids=lambda path: path.stem)
def test_every_builtin_card_parses_and_sets_its_policy(path: Path) -> None:
    card = read_card(path, builtin=True)
    spec = get_spec(card.name)
    assert spec.card == card and spec.policy == card.policy and card.weights_source is not None
    policy = spec.policy
    assert policy.kind in POLICIES and policy.name and policy.sample_folder and policy.default_sample
    assert (ROOT / "assets" / "samples" / policy.sample_folder).is_dir()
    assert policy.fill in ("mean", "blur", "constant") and policy.output in ("probability", "log-odds")
    # clinical scans wait for their button and may hide the background outside the head; the rest do neither
    assert policy.compute_automatically is (policy.kind != "mri") and policy.head_mask is (policy.kind == "mri")
    assert spec.preprocessing == describe(card.preprocessing)


def test_the_registry_keeps_the_cards_order_and_their_defaults() -> None:
    names = [spec.name for spec in all_specs()]
    assert names[:8] == [
        "efficientnet_lite0",
        "brain_tumor_vgg16",
        "digits_cnn",
        "resnet18",
        "resnet50",
        "vgg16",
        "mobilenet_v3_large",
        "efficientnet_b0",
    ]
    tumour, digits, photos = get_spec("brain_tumor_vgg16"), get_spec("digits_cnn"), get_spec("efficientnet_lite0")
    assert (tumour.policy.fill, tumour.policy.background, tumour.policy.output) == ("constant", "samples", "log-odds")
    assert tumour.label_of("Te-gl_0010") == "glioma" and digits.label_of("digit_7") == "7"
    assert (photos.policy.fill, photos.policy.background, photos.batch_size) == ("mean", "blurred", 4)
    assert tumour.runtime == "onnxruntime" and tumour.onnx_input_scale == pytest.approx(1 / 255)
    assert photos.preprocessing == "resize to 224×224 (bicubic), then (x − 127) / 128 on 0..255 RGB"


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_cards_match_their_weights_transforms_and_categories(name: str) -> None:
    spec = get_spec(name)
    assert spec.card.weights_source is not None
    weights = torchvision.models.get_weight(spec.card.weights_source.location)
    transforms, pre = weights.transforms(), spec.card.preprocessing
    assert pre.input_size == (transforms.crop_size[0],) * 2 and pre.resize_shorter_side == transforms.resize_size[0]
    assert pre.mean == tuple(transforms.mean) and pre.std == tuple(transforms.std) and pre.scale == 255
    assert spec.class_names == tuple(weights.meta["categories"])


def test_importing_models_registers_nothing_and_reads_no_folder(tmp_path: Path) -> None:
    broken = tmp_path / "own" / "broken"  # a user's folder with a card that cannot be read: seen once it is read
    broken.mkdir(parents=True)
    (broken / "card.yaml").write_text("name: [")
    script = (
        "import models, sys; from models import installed, registry; "
        "print(len(registry.registered()), len(installed.PROBLEMS)); "
        "models.all_specs(); print(len(registry.registered()) >= 8, len(installed.PROBLEMS))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "", "EXPLAINERS_MODELS_DIR": str(tmp_path / "own")},
    )
    assert done.stdout.split() == ["0", "0", "True", "1"], done.stderr


def test_a_torchvision_classifier_is_one_more_card(one_more_card) -> None:
    one_more_card("squeezenet1_1", "SqueezeNet 1.1", "SqueezeNet1_1_Weights")
    assert [spec.name for spec in all_specs()][-1] == "squeezenet1_1"
    spec = get_spec("squeezenet1_1")
    assert spec.title == "SqueezeNet 1.1 (torchvision, ImageNet)" and "squeezenet1_1-b8a52dc0.pth" in (
        spec.missing_reason() or "squeezenet1_1-b8a52dc0.pth"
    )
    classifier = load_classifier("squeezenet1_1", weights="random")
    probs = classifier.predict(np.zeros((1, 224, 224, 3), dtype=np.uint8))
    assert probs.shape == (1, 1000) and probs.sum() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    "extra, message",
    [
        ("weights:\n  torch_hub: ResNet18_Weights.IMAGENET1K_V1\n", "must name a file next to the card"),
        ("weights: net.safetensors\nruntime:\n  batch_size: 4\n", "unknown field 'runtime'"),
    ],
)
def test_a_users_card_may_not_name_a_builtin_source(tmp_path: Path, extra: str, message: str) -> None:
    (tmp_path / "net.safetensors").write_bytes(b"\0")
    card = tmp_path / "card.yaml"
    card.write_text("name: mine\narchitecture: torchvision/resnet18\nclasses: [a, b]\n" + extra)
    with pytest.raises(CardError, match=message):
        read_card(card)
