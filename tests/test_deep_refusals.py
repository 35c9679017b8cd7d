"""DeepSHAP on real torchvision architectures (random weights, small inputs): each one either adds up or is
refused before running, in one sentence that names the layer, never with a traceback."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from cli.main import main
from explainers.images import load_image
from explainers.methods import ParameterError
from explainers.request import explain
from models import Classifier, get_spec
from models.transforms import ProbabilityModel, ScaleShift

SIZE = 48  # the smallest that every architecture below pools down without an empty feature map
# Explained: every layer is covered by a DeepLIFT rule here.
EXPLAINED: dict[str, dict[str, Any]] = {
    "resnet18": {},
    "mobilenet_v3_small": {},  # Hardswish, squeeze-excite with Hardsigmoid
    "efficientnet_b0": {},  # SiLU, squeeze-excite with Sigmoid, stochastic depth
    "shufflenet_v2_x0_5": {},  # channel shuffle: chunk, transpose, view
    "mnasnet0_5": {},
}
# Refused, with the layer the sentence must name.
REFUSED = {
    "squeezenet1_1": ({}, "network.features.2 (MaxPool2d with ceil_mode=True)"),
    "googlenet": ({"aux_logits": False, "init_weights": False}, "network.maxpool1 (MaxPool2d with ceil_mode=True)"),
    "densenet121": ({}, "network (DenseNet) calls relu"),  # F.relu in its forward, invisible to a module check
}
PHOTOS = Path(__file__).resolve().parents[1] / "assets" / "samples" / "photos"
IMAGENET_MEAN, IMAGENET_STD = (123.7, 116.3, 103.5), (58.4, 57.1, 57.4)


def torchvision_classifier(arch: str, size: int = SIZE, **kwargs: object) -> Classifier:
    """``arch`` with random weights behind the app's contract, at ``size``×``size`` input."""
    torch.manual_seed(0)
    network = torchvision.models.get_model(arch, weights=None, **kwargs)
    spec = dataclasses.replace(get_spec("resnet18"), name=arch, input_size=(size, size), resize="stretch", batch_size=4)
    return Classifier(spec, ProbabilityModel(ScaleShift(IMAGENET_MEAN, IMAGENET_STD), network), "random")


def lively(classifier: Classifier) -> None:
    """Gives a fresh initialisation a game to explain: untouched batch-norm statistics make activations vanish
    (a flat output), so they are measured on the bundled photos and noisy copies, and the head is scaled up."""
    photos = [classifier.prepare(load_image(path).pixels) for path in sorted(PHOTOS.glob("*.png"))]
    batch = torch.from_numpy(np.stack(photos * 2).astype(np.float32)).permute(0, 3, 1, 2)
    batch[len(photos) :] += torch.randn(batch[len(photos) :].shape, generator=torch.Generator().manual_seed(0)) * 30
    for module in classifier.module.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
    with torch.no_grad():
        classifier.module.train()(batch)
        for module in classifier.module.modules():
            if isinstance(module, nn.Linear):
                module.weight.mul_(30)
    classifier.module.eval()


@pytest.mark.parametrize("arch", sorted(EXPLAINED))
def test_deep_adds_up_on_the_torchvision_architectures_it_covers(arch, chelsea) -> None:
    classifier = torchvision_classifier(arch, **EXPLAINED[arch])
    lively(classifier)
    e = explain(classifier, chelsea, "deep", top_k=2, max_evals=1)
    gap = np.abs(e.probs[e.classes] - e.base_values)
    assert gap.max() > 1e-4, gap
    assert e.additivity_error <= 1e-3 * gap.max()


@pytest.mark.parametrize("arch", sorted(REFUSED))
def test_deep_refuses_the_others_in_one_sentence_naming_the_layer(arch, chelsea) -> None:
    kwargs, layer = REFUSED[arch]
    classifier = torchvision_classifier(arch, size=32, **kwargs)  # refused before any attribution
    with pytest.raises(ParameterError) as refusal:
        explain(classifier, chelsea, "deep", top_k=1, max_evals=1)
    message = str(refusal.value)
    assert message.startswith(f"DeepSHAP (DeepLIFT rescale) cannot explain {arch}: its layer {layer}")
    assert message.endswith("; use gradient, kernel or partition.") and "\n" not in message


def test_deep_refuses_layers_and_calls_outside_its_rules() -> None:
    """An allow-list: a layer or a call with no rule here is refused, not passed through as if linear."""

    class Squared(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * x

    class Masked(nn.Module):  # a ReLU written by hand: the mask comes from a comparison with the input
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * (x > 0)

    def network(*middle: nn.Module) -> nn.Module:
        return nn.Sequential(nn.Conv2d(3, 4, 3), *middle, nn.Flatten(), nn.LazyLinear(10), nn.Softmax(dim=1))

    cases = {
        "its layer 1 (AdaptiveMaxPool2d) has no DeepLIFT rule": network(nn.AdaptiveMaxPool2d(8)),
        "its layer 1 (PReLU) has no DeepLIFT rule": network(nn.PReLU()),
        "its layer 1 (MaxPool2d with both padding and dilation)": network(nn.MaxPool2d(3, padding=1, dilation=2)),
        "its layer 1 (Squared) calls mul on two input-dependent tensors": network(Squared()),
        "its layer 1 (Masked) calls gt": network(Masked()),
        "its layer 2 (Softmax) is not its last layer": network(nn.ReLU(), nn.Softmax(dim=1)),
        "its output does not come from a final softmax layer": nn.Sequential(nn.Flatten(), nn.Linear(2352, 10)),
    }
    for expected, module in cases.items():
        with torch.no_grad():
            module(torch.zeros(1, 3, 28, 28))  # sizes the lazy layer
        classifier = Classifier(get_spec("digits_cnn"), module, "random")
        with pytest.raises(ParameterError, match=re.escape(expected)):
            explain(classifier, np.zeros((28, 28, 3), np.uint8), "deep", max_evals=1)


def test_the_command_line_refuses_squeezenet_in_one_sentence(one_more_card, capsys) -> None:
    """The issue's case: squeezenet1_1 added as one more torchvision card, explained from the command line
    with random weights."""
    one_more_card("squeezenet1_1", "SqueezeNet 1.1", "SqueezeNet1_1_Weights")
    code = main(
        [
            "explain",
            "--model",
            "squeezenet1_1",
            "--weights",
            "random",
            "--image",
            str(PHOTOS / "chelsea.png"),
            "--method",
            "deep",
            "--max-evals",
            "1",
            "--quiet",
            "--no-cache",
        ]
    )
    error = capsys.readouterr().err.strip()
    assert code == 2, error
    assert "network.features.2 (MaxPool2d with ceil_mode=True) has no DeepLIFT rule here" in error
    assert "Traceback" not in error and "NotImplementedError" not in error and len(error.splitlines()) == 1
