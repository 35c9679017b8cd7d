"""Train :class:`models.digits.DigitsCNN` and write its weights and sample images.

What it trains on, and why: the dashboard explains a small MNIST-style network,
but MNIST cannot be downloaded offline. So the network is trained on
scikit-learn's bundled copy of the UCI ML hand-written digits data set
(1,797 8x8 images, shipped inside scikit-learn, no network needed), upscaled to
MNIST's 28x28 white-on-black layout by :func:`models.digits.digits_dataset`.

A stratified 80/20 split with a fixed seed (:func:`held_out_split`) holds out
20% of the images; they are never trained on and are used to report accuracy
and to pick one correctly classified sample image per digit.
Training is deterministic (fixed seeds, deterministic algorithms) and uses mild
augmentation (random shifts of up to 2 px, small rotations and rescaling).

Run from the project root::

    .venv/bin/python -m models.train_digits

Writes ``assets/weights/digits_cnn.pt`` and
``assets/samples/digits/digit_<label>.png``; the last line printed is the
held-out accuracy.
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from models.digits import WEIGHTS_PATH, DigitsCNN, digits_dataset

SEED = 0
TEST_FRACTION = 0.2
EPOCHS = 60
BATCH_SIZE = 32
LEARNING_RATE = 2e-3
MAX_SHIFT_PX = 2.0
MAX_ROTATION_DEG = 10.0
MAX_SCALE_CHANGE = 0.08

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "assets" / "samples" / "digits"


def held_out_split(
    labels: np.ndarray, test_fraction: float = TEST_FRACTION, seed: int = SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified, seeded split of ``range(len(labels))`` into (train_idx, test_idx).

    For each class, ``round(test_fraction * count)`` of its indices (chosen by a
    seeded permutation) go to the test set. Both index arrays are sorted.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    train_parts, test_parts = [], []
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        idx = idx[rng.permutation(len(idx))]
        n_test = int(round(test_fraction * len(idx)))
        test_parts.append(idx[:n_test])
        train_parts.append(idx[n_test:])
    return np.sort(np.concatenate(train_parts)), np.sort(np.concatenate(test_parts))


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    try:
        torch.use_deterministic_algorithms(True)
    except Exception:  # noqa: BLE001 - older or odd builds lack deterministic algorithms
        pass


def _augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random small rotation, rescale and shift (up to MAX_SHIFT_PX) of N x 1 x H x W."""
    n, _, h, w = batch.shape
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(MAX_ROTATION_DEG)
    scale = 1 + (torch.rand(n, generator=generator) * 2 - 1) * MAX_SCALE_CHANGE
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * MAX_SHIFT_PX
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin
    theta[:, 1, 0], theta[:, 1, 1] = sin, cos
    # theta maps output to input coordinates in [-1, 1]; moving the digit by +s px means
    # sampling from -s px.
    theta[:, 0, 2] = -shift[:, 0] * 2 / w
    theta[:, 1, 2] = -shift[:, 1] * 2 / h
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    out = F.grid_sample(batch, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.clamp(0.0, 1.0)


@torch.no_grad()
def _predict(model: DigitsCNN, images: torch.Tensor) -> torch.Tensor:
    model.eval()
    return torch.cat([model(chunk) for chunk in images.split(512)])


def train(epochs: int = EPOCHS, seed: int = SEED) -> tuple[DigitsCNN, np.ndarray, np.ndarray, np.ndarray]:
    """Train a fresh model; returns (model, images, labels, test_idx)."""
    _seed_everything(seed)
    images, labels = digits_dataset()
    train_idx, test_idx = held_out_split(labels, seed=seed)
    x_train = torch.from_numpy(images[train_idx]).unsqueeze(1)
    y_train = torch.from_numpy(labels[train_idx])

    model = DigitsCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    steps_per_epoch = math.ceil(len(x_train) / BATCH_SIZE)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=LEARNING_RATE, epochs=epochs, steps_per_epoch=steps_per_epoch
    )
    generator = torch.Generator().manual_seed(seed)

    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        total_loss = 0.0
        for start in range(0, len(order), BATCH_SIZE):
            batch_idx = order[start : start + BATCH_SIZE]
            xb = _augment(x_train[batch_idx], generator)
            loss = F.cross_entropy(model(xb), y_train[batch_idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            total_loss += loss.item() * len(batch_idx)
        if epoch % 10 == 0 or epoch == epochs:
            print(f"epoch {epoch:3d}/{epochs}: train loss {total_loss / len(x_train):.4f}", flush=True)

    model.eval()
    return model, images, labels, test_idx


def _to_png_array(image: np.ndarray) -> np.ndarray:
    return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)


def write_samples(
    model: DigitsCNN, images: np.ndarray, labels: np.ndarray, test_idx: np.ndarray, out_dir: Path = SAMPLES_DIR
) -> list[Path]:
    """Save, per label, the held-out image the model classifies correctly with most confidence.

    Written as 8-bit grayscale ("L") 28x28 PNGs ``digit_<label>.png``, white on black.
    Each saved PNG is read back and checked to be still classified correctly.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    x_test = torch.from_numpy(images[test_idx]).unsqueeze(1)
    probs = _predict(model, x_test).softmax(dim=1).numpy()
    preds = probs.argmax(axis=1)
    y_test = labels[test_idx]
    written = []
    for label in range(10):
        candidates = np.flatnonzero((y_test == label) & (preds == label))
        if len(candidates) == 0:
            raise RuntimeError(f"no correctly classified held-out image of digit {label}")
        candidates = candidates[np.argsort(-probs[candidates, label], kind="stable")]
        for pos in candidates:
            pixels = _to_png_array(images[test_idx[pos]])
            requantised = torch.from_numpy(pixels.astype(np.float32) / 255.0)[None, None]
            if int(_predict(model, requantised).argmax(dim=1)) == label:
                break
        else:
            raise RuntimeError(f"no held-out image of digit {label} survives 8-bit quantisation")
        path = out_dir / f"digit_{label}.png"
        Image.fromarray(pixels).convert("L").save(path)
        written.append(path)
    return written


def main() -> float:
    start = time.perf_counter()
    model, images, labels, test_idx = train()
    elapsed = time.perf_counter() - start
    print(f"training time: {elapsed:.1f} s")

    WEIGHTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), WEIGHTS_PATH)
    print(f"saved weights to {WEIGHTS_PATH}")

    samples = write_samples(model, images, labels, test_idx)
    print(f"wrote {len(samples)} sample images to {SAMPLES_DIR}")

    x_test = torch.from_numpy(images[test_idx]).unsqueeze(1)
    preds = _predict(model, x_test).argmax(dim=1).numpy()
    accuracy = float((preds == labels[test_idx]).mean())
    print(f"held-out accuracy: {accuracy:.4f} ({len(test_idx)} images)")
    return accuracy


if __name__ == "__main__":
    main()
