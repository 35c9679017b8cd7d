"""Model-parameter randomisation (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018): a copy of a
classifier whose weights are re-initialised layer by layer, cascading from the output, or one layer alone.

An explanation method whose map hardly changes when the model it explains is replaced by noise explains the
image, not the model. service.trust compares each method's maps before and after.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from models.classifier import Classifier

# The layers that carry learned weights, in the order the network applies them (its module order).
WEIGHTED = (nn.Conv2d, nn.Linear, nn.BatchNorm2d)


def weighted_layers(module: nn.Module) -> list[str]:
    """The names of the layers with learned weights, input side first."""
    return [name for name, layer in module.named_modules() if isinstance(layer, WEIGHTED)]


def randomised(classifier: Classifier, names: list[str], seed: int = 0) -> Classifier:
    """A copy of ``classifier`` (PyTorch predict, on its device) whose layers ``names`` are re-initialised with
    PyTorch's default initialisation (seeded); batch normalisation back to the identity."""
    module = copy.deepcopy(classifier.module)
    layers = dict(module.named_modules())
    generator = torch.random.fork_rng(devices=[])
    with generator:
        torch.manual_seed(seed)
        for name in names:
            layer = layers[name]
            if isinstance(layer, nn.BatchNorm2d):
                layer.reset_parameters()
                layer.reset_running_stats()
            else:
                layer.reset_parameters()
    copied = Classifier(classifier.spec, module, "random", device=classifier.device)
    copied.batch_size = classifier.batch_size
    return copied


def cascade(classifier: Classifier, steps: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0)) -> list[tuple[str, list[str]]]:
    """The cascade's stages, from the output: (a label, the layers randomised), the top layer alone first, then
    the top quarter, half and all of the weighted layers (``steps``: shares beyond the top layer)."""
    layers = weighted_layers(classifier.module)
    stages: list[tuple[str, list[str]]] = []
    for share in steps:
        count = max(1, round(share * len(layers)))
        label = "top layer" if count == 1 else ("every layer" if count == len(layers) else f"top {share:.0%}")
        chosen = layers[len(layers) - count :]
        if not stages or len(stages[-1][1]) != len(chosen):
            stages.append((label, chosen))
    return stages
