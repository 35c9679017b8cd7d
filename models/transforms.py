"""The input transforms as torch modules, so gradient methods see them (0..255 RGB in, what a network takes out),
and the model the registry serves: transform → network → softmax."""

from __future__ import annotations

import torch
from torch import nn

from models.cards import ModelCard


class ScaleShift(nn.Module):
    """Per-channel (x − mean) / std on N×C×H×W input; a module so gradient methods see it."""

    mean: torch.Tensor  # buffers, declared for the type checker (register_buffer sets them)
    std: torch.Tensor

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Grayscale(nn.Module):
    """RGB to one luma channel (ITU-R BT.601 weights), for single-channel networks."""

    weights: torch.Tensor  # a buffer, declared for the type checker

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("weights", torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.weights).sum(dim=1, keepdim=True)


class ProbabilityModel(nn.Module):
    """input transform → network → softmax (skipped when the network already ends in one)."""

    def __init__(self, transform: nn.Module, network: nn.Module, outputs_probabilities: bool = False):
        super().__init__()
        self.transform = transform
        self.network = network
        self.softmax = nn.Identity() if outputs_probabilities else nn.Softmax(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.softmax(self.network(self.transform(x)))


def input_transform(card: ModelCard) -> nn.Module:
    """0..255 RGB to what the network takes: channel order, grey, then (x / scale − mean) / std."""
    pre = card.preprocessing
    steps: list[nn.Module] = []
    if pre.channel_order == "bgr" and pre.colour == "rgb":
        steps.append(_Flip())
    if pre.colour == "grayscale":
        steps.append(Grayscale())
    channels = 1 if pre.colour == "grayscale" else 3
    mean = tuple(pre.mean) * (channels // len(pre.mean))
    std = tuple(pre.std) * (channels // len(pre.std))
    steps.append(ScaleShift(tuple(m * pre.scale for m in mean), tuple(s * pre.scale for s in std)))
    return steps[0] if len(steps) == 1 else nn.Sequential(*steps)


class _Flip(nn.Module):
    """RGB to BGR."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(1)
