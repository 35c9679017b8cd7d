"""Small handwritten-digits classifier used by the dashboard.

The network is the classic PyTorch MNIST example that shap's own deep-learning
examples explain, written with named ``nn.Sequential`` blocks and out-of-place
layers so that forward hooks and per-layer selection work on it.

Because MNIST cannot be downloaded in an offline setting, the committed weights
are trained (by :mod:`models.train_digits`) on scikit-learn's bundled 8x8
hand-written digits, upscaled to look like MNIST (see :func:`digits_dataset`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "MNIST_MEAN",
    "MNIST_STD",
    "WEIGHTS_PATH",
    "DigitsCNN",
    "load_digits_cnn",
    "digits_dataset",
]

#: Mean and standard deviation of MNIST pixel values (in [0, 1]).
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081

#: Where the trained state_dict is committed.
WEIGHTS_PATH = Path(__file__).resolve().parents[1] / "assets" / "weights" / "digits_cnn.pt"

_IMAGE_SIZE = 28  # MNIST canvas
_GLYPH_SIZE = 20  # MNIST digits fit a 20x20 box centred in the canvas


class DigitsCNN(nn.Module):
    """The PyTorch-MNIST example network (as in shap's examples).

    Input: ``N x 1 x 28 x 28`` float32 grayscale in [0, 1], white ink on black.
    Output: logits ``N x 10`` (no softmax).
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 10, kernel_size=5),
            nn.MaxPool2d(2),
            nn.ReLU(),
            nn.Conv2d(10, 20, kernel_size=5),
            nn.Dropout2d(),
            nn.MaxPool2d(2),
            nn.ReLU(),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(320, 50),
            nn.ReLU(),
            nn.Dropout(),
            nn.Linear(50, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - MNIST_MEAN) / MNIST_STD
        x = self.features(x)
        return self.classifier(x)


def load_digits_cnn(weights_path: Path = WEIGHTS_PATH) -> DigitsCNN:
    """Build a :class:`DigitsCNN`, load its state_dict from ``weights_path``, set eval mode."""
    model = DigitsCNN()
    state_dict = torch.load(Path(weights_path), map_location="cpu", weights_only=True)
    model.load_state_dict(state_dict)
    model.eval()
    return model


def digits_dataset() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 hand-written digits, made to look like MNIST.

    Each 8x8 glyph (values 0..16) is scaled to [0, 1], upscaled bilinearly to
    20x20 and centred in a black 28x28 canvas, as MNIST places its digits in a
    20x20 box inside 28x28. Ink is white on black, like MNIST.

    Returns ``(images, labels)``: float32 ``N x 28 x 28`` in [0, 1] and int64 ``N``.
    """
    from sklearn.datasets import load_digits  # imported lazily on purpose

    bunch = load_digits()
    glyphs = torch.from_numpy(np.asarray(bunch.images, dtype=np.float32) / 16.0)
    upscaled = F.interpolate(
        glyphs.unsqueeze(1),
        size=(_GLYPH_SIZE, _GLYPH_SIZE),
        mode="bilinear",
        align_corners=False,
    ).squeeze(1)
    images = np.zeros((len(glyphs), _IMAGE_SIZE, _IMAGE_SIZE), dtype=np.float32)
    offset = (_IMAGE_SIZE - _GLYPH_SIZE) // 2
    images[:, offset : offset + _GLYPH_SIZE, offset : offset + _GLYPH_SIZE] = upscaled.numpy()
    np.clip(images, 0.0, 1.0, out=images)
    labels = np.asarray(bunch.target, dtype=np.int64)
    return images, labels
