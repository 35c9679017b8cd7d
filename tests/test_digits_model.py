"""Checks on the committed handwritten-digits model and its sample images."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models.digits import WEIGHTS_PATH, DigitsCNN, digits_dataset, load_digits_cnn
from models.train_digits import held_out_split

ROOT = Path(__file__).resolve().parents[1]

SAMPLES_DIR = ROOT / "assets" / "samples" / "digits"


@pytest.fixture(scope="module")
def model() -> DigitsCNN:
    return load_digits_cnn()


def test_weights_load(model: DigitsCNN) -> None:
    assert WEIGHTS_PATH.is_file()
    assert isinstance(model, DigitsCNN)
    assert not model.training
    logits = model(torch.zeros(3, 1, 28, 28))
    assert logits.shape == (3, 10)
    assert torch.isfinite(logits).all()


def test_samples_classified_as_named(model: DigitsCNN) -> None:
    paths = sorted(SAMPLES_DIR.glob("digit_*.png"))
    names = {p.name for p in paths}
    assert names == {f"digit_{d}.png" for d in range(10)}
    arrays, expected = [], []
    for path in paths:
        with Image.open(path) as img:
            assert img.mode == "L" and img.size == (28, 28)
            arrays.append(np.asarray(img.convert("L"), dtype=np.float32) / 255.0)
        match = re.fullmatch(r"digit_(\d)\.png", path.name)
        assert match is not None
        expected.append(int(match.group(1)))
    batch = torch.from_numpy(np.stack(arrays)).unsqueeze(1)
    assert batch.shape == (len(paths), 1, 28, 28)
    # White ink on black: the border is dark.
    assert batch[:, :, 0, :].max() < 0.1 and batch[:, :, :, 0].max() < 0.1
    with torch.no_grad():
        preds = model(batch).argmax(dim=1).tolist()
    assert preds == expected


def test_held_out_split_is_stratified_and_disjoint() -> None:
    _, labels = digits_dataset()
    train_idx, test_idx = held_out_split(labels)
    assert len(np.intersect1d(train_idx, test_idx)) == 0
    assert len(train_idx) + len(test_idx) == len(labels)
    assert abs(len(test_idx) / len(labels) - 0.2) < 0.01
    np.testing.assert_array_equal(held_out_split(labels)[1], test_idx)  # deterministic
    for label in range(10):
        share = np.mean(labels[test_idx] == label) / np.mean(labels == label)
        assert 0.9 < share < 1.1


def test_held_out_accuracy(model: DigitsCNN) -> None:
    images, labels = digits_dataset()
    assert images.shape[1:] == (28, 28) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    _, test_idx = held_out_split(labels)
    x = torch.from_numpy(images[test_idx]).unsqueeze(1)
    with torch.no_grad():
        preds = model(x).argmax(dim=1).numpy()
    accuracy = float((preds == labels[test_idx]).mean())
    assert accuracy >= 0.95, accuracy


def test_no_inplace_ops() -> None:
    net = DigitsCNN()
    for name, module in net.named_modules():
        assert not getattr(module, "inplace", False), f"{name} is in-place"
    # Every activation returns a new tensor rather than overwriting its input.
    seen = []

    def check(module, inputs, output):
        seen.append(module)
        assert output.data_ptr() != inputs[0].data_ptr(), f"{module} wrote over its input"

    hooks = [m.register_forward_hook(check) for m in net.modules() if isinstance(m, torch.nn.ReLU)]
    try:
        net.eval()
        net(torch.rand(2, 1, 28, 28))
    finally:
        for h in hooks:
            h.remove()
    assert len(seen) == 3
