"""Batch-norm folded into the convolution before it, for the backward passes of gradient methods.

In eval mode a BatchNorm2d is a per-channel affine map, so ``bn(conv(x))`` is one convolution with scaled
weights and a bias. Gradient methods run forward *and* backward through every layer; without the separate
batch-norm layers EfficientNet-Lite0's gradients cost 30 % less on a CPU (measured: 70 against 99 ms per
sample for one forward and three backward passes). The surprising detail: which batch-norm follows which
convolution is read from the order the modules were registered in, which is only a convention, so the
folded copy is used only if it computes the same outputs as the original.
"""

from __future__ import annotations

import copy
import itertools

import torch
from torch import nn

# Probabilities of the folded copy must match the original's this closely, else the original is used.
TOLERANCE = 1e-4


def _fold_pair(conv: nn.Conv2d, norm: nn.BatchNorm2d, running_mean: torch.Tensor, running_var: torch.Tensor) -> None:
    scale = torch.rsqrt(running_var + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight
    shift = -running_mean * scale
    if norm.bias is not None:
        shift = shift + norm.bias
    bias = shift if conv.bias is None else conv.bias * scale + shift
    with torch.no_grad():
        conv.weight = nn.Parameter(conv.weight * scale.view(-1, 1, 1, 1), requires_grad=False)
        conv.bias = nn.Parameter(bias.detach().clone(), requires_grad=False)


def fold_batchnorm(module: nn.Module, example: torch.Tensor) -> nn.Module:
    """A copy of ``module`` (in eval mode) with each BatchNorm2d that is registered right after a Conv2d of
    its width folded into it; ``module`` itself when nothing folds or the copy's outputs on ``example``
    differ. The convolutions keep their names and order, so hooks on them see the same inputs."""
    if not any(type(m) is nn.BatchNorm2d for m in module.modules()):
        return module
    folded = copy.deepcopy(module).eval()
    count = 0
    for parent in list(folded.modules()):
        children = list(parent.named_children())
        for (_, conv), (norm_name, norm) in itertools.pairwise(children):
            # A norm without running statistics normalises by each batch's own: nothing fixed to fold.
            if (
                isinstance(conv, nn.Conv2d)
                and type(norm) is nn.BatchNorm2d
                and norm.running_var is not None
                and norm.running_mean is not None
                and conv.out_channels == norm.num_features
            ):
                _fold_pair(conv, norm, norm.running_mean, norm.running_var)
                setattr(parent, norm_name, nn.Identity())
                count += 1
    if count == 0:
        return module
    with torch.inference_mode():
        same = torch.allclose(folded(example), module(example), rtol=0, atol=TOLERANCE)
    return folded.to(memory_format=torch.channels_last) if same else module
