"""GradientSHAP / expected gradients (Erion et al., "Improving performance of deep learning models with
axiomatic attribution priors and expected gradients", 2021), with shap's GradientExplainer semantics:
each sample takes a random reference and a random point on the line from it to the input (plus optional
Gaussian local smoothing), and the attribution is the mean of gradient × (input − reference).

Optionally the attribution is of an intermediate layer's input (the seed's layer explanation): the same
expectation taken in that layer's activation space, summed over channels and spread back over the image
pixels each activation cell covers. All top-k classes share one forward pass per batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from explainers.backgrounds import BACKGROUND_PARAM, make_background, mean_reference, resolve_background
from explainers.classifier import Classifier, gradient_module_of, logit_module_of
from explainers.errors import block_regions, mean_and_error
from explainers.explanation import Explanation
from explainers.methods.base import Attribution, PixelMethod
from explainers.methods.registry import register
from explainers.outputs import in_space, log_odds_of_logits, log_odds_of_probs
from explainers.params import Param
from explainers.progress import ProgressCallback

LAYERS = ("input", "early", "middle", "late")
LAYER_DEPTH = {"early": 0.25, "middle": 0.5, "late": 0.75}

PARAMS = (
    BACKGROUND_PARAM,
    Param("references", "int", 16, "How many background references the samples draw from.", low=1, high=128),
    Param(
        "local_smoothing",
        "float",
        0.0,
        "Standard deviation of Gaussian noise added to each sample, in 0–255 pixel units (0: none, as shap's default).",
        low=0.0,
        high=64.0,
        step=1.0,
    ),
    Param(
        "layer",
        "choice",
        "input",
        "Explain the image pixels, or the input of a convolution at about a "
        "quarter, half or three quarters of the network's depth.",
        choices=LAYERS,
    ),
    Param("batch_size", "int", 16, "Samples per forward/backward pass.", low=1, high=256),
)


def convolution_at(model: nn.Module, depth: str) -> tuple[str, nn.Module]:
    """The convolution at a fraction of the network's depth (in definition order)."""
    convs = [(name, module) for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]
    return convs[min(len(convs) - 1, int(LAYER_DEPTH[depth] * len(convs)))]


def spread_to_pixels(cell_values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """K × h × w layer-cell values to K × H × W pixels: each cell's value split evenly over the pixels it
    covers (nearest cell), so every map keeps its sum."""
    k, h, w = cell_values.shape
    rows = np.minimum((np.arange(size[0]) * h) // size[0], h - 1)
    cols = np.minimum((np.arange(size[1]) * w) // size[1], w - 1)
    counts = np.outer(np.bincount(rows, minlength=h), np.bincount(cols, minlength=w)).astype(np.float64)
    return (cell_values / np.maximum(counts, 1))[:, rows][:, :, cols].astype(np.float32)


def cell_regions(cells: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """H × W labels: the layer cell (row by row) each pixel takes its value from in :func:`spread_to_pixels`."""
    h, w = cells
    rows = np.minimum((np.arange(size[0]) * h) // size[0], h - 1)
    cols = np.minimum((np.arange(size[1]) * w) // size[1], w - 1)
    return (rows[:, None] * w + cols[None, :]).astype(np.int32)


def _grads_for_classes(outputs: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """K × N × … gradients of each of the N × K explained outputs: one forward pass, then one backward pass
    per class.

    Each sample's output depends on its own input only (eval mode), so the gradient of a class's summed
    output is every sample's gradient at once. Plain backward passes through the kept graph measured 1.3×
    faster on a CPU than one vmapped backward over the K classes (``is_grads_batched``).
    """
    grads = []
    count = outputs.shape[1]
    for k in range(count):
        (grad,) = torch.autograd.grad(outputs[:, k].sum(), inputs, retain_graph=k < count - 1)
        grads.append(grad)
    return torch.stack(grads)


def expected_gradients(
    classifier: Classifier,
    image: np.ndarray,
    classes: np.ndarray,
    max_evals: int,
    seed: int,
    progress: ProgressCallback | None = None,
    background: str = "auto",
    references: int = 16,
    local_smoothing: float = 0.0,
    layer: str = "input",
    batch_size: int = 16,
    output: str = "probability",
) -> Attribution:
    """Expected gradients of ``classes``' outputs in ``output``'s space; ``max_evals`` is the number of samples.
    Log-odds are differentiated from the logits (the classifier's ``logit_module``), or from the probabilities
    of a network that ends in its own softmax."""
    generator = np.random.default_rng(seed)
    # The same network with batch-norm folded in where that applies (faster backward passes).
    logits = logit_module_of(classifier) if output == "log-odds" else None
    model = logits if logits is not None else gradient_module_of(classifier)
    if model is None:  # Method.unsupported refuses such a model first; this guards a direct call
        raise ValueError(f"{classifier.name} has no differentiable module to take gradients of.")
    class_index = torch.from_numpy(classes)

    def explained(outputs: torch.Tensor) -> torch.Tensor:
        """N × K outputs of the explained classes in ``output``'s space."""
        if output == "probability":
            return outputs[:, class_index]
        return (
            log_odds_of_logits(outputs, class_index) if logits is not None else log_odds_of_probs(outputs, class_index)
        )

    references_array = make_background(classifier, image, background, references)
    refs = torch.from_numpy(references_array).permute(0, 3, 1, 2)
    x = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None]

    layer_name, target = (None, None) if layer == "input" else convolution_at(model, layer)
    captured: dict[str, torch.Tensor] = {}
    replacement: dict[str, torch.Tensor] = {}

    def pre_hook(_: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...] | None:
        if "value" in replacement:
            return (replacement["value"],)
        captured["value"] = args[0].detach()
        return None

    handle = target.register_forward_pre_hook(pre_hook) if target is not None else None
    try:
        with torch.no_grad():
            if target is not None:
                model(x)
                x_space = captured["value"]
                base_probs = explained(model(refs)).mean(dim=0).numpy()
                ref_space = captured["value"]
            else:
                x_space, ref_space = x, refs
                # predict may run a faster runtime than the module: the same network and probabilities.
                base_probs = in_space(classifier.predict(references_array), output)[:, classes].mean(axis=0)
        totals = torch.zeros((len(classes),) + tuple(x_space.shape[2:]), dtype=torch.float64)
        # The error bars: each sample's attribution summed over a region (a block of pixels, or a layer's
        # cell), summed and squared across samples.
        regions = (
            block_regions(image.shape[:2])
            if target is None
            else cell_regions((int(x_space.shape[2]), int(x_space.shape[3])), image.shape[:2])
        )
        region_of = torch.from_numpy(regions.astype(np.int64).ravel()) if target is None else None
        region_count = int(regions.max()) + 1
        region_sums = torch.zeros((len(classes), region_count), dtype=torch.float64)
        region_squares = torch.zeros_like(region_sums)
        # Stratified draws (each reference equally often, one α per stratum of [0, 1]) lower the variance of
        # the estimate at no cost; each draw is still uniform, as in shap.
        all_picks = generator.permutation(np.resize(np.arange(len(ref_space)), max_evals))
        all_alphas = ((generator.permutation(max_evals) + generator.random(max_evals)) / max_evals).astype(np.float32)
        done = 0
        while done < max_evals:
            count = min(batch_size, max_evals - done)
            picks = torch.from_numpy(all_picks[done : done + count])
            alphas = torch.from_numpy(all_alphas[done : done + count]).view(-1, 1, 1, 1)
            start = ref_space[picks]
            points = start + alphas * (x_space - start)
            if local_smoothing > 0:
                points = points + torch.from_numpy(
                    generator.normal(0, local_smoothing, points.shape).astype(np.float32)
                )
            points = points.detach().requires_grad_(True)
            with torch.enable_grad():
                if target is not None:
                    replacement["value"] = points
                    outputs = model(x.expand(count, -1, -1, -1))
                else:
                    outputs = model(points)
                grads = _grads_for_classes(explained(outputs), points)
            replacement.pop("value", None)
            samples = (grads * (x_space - start)[None]).sum(dim=2).double()  # K × N × cells
            totals += samples.sum(dim=1)
            if region_of is None:  # a layer: its cells are the regions
                per_region = samples.flatten(2)
            else:
                per_region = torch.zeros((len(classes), count, region_count), dtype=torch.float64)
                per_region.index_add_(2, region_of, samples.flatten(2))
            region_sums += per_region.sum(dim=1)
            region_squares += (per_region**2).sum(dim=1)
            done += count
            if progress is not None:
                progress(done, max_evals)
    finally:
        if handle is not None:
            handle.remove()

    cell_values = (totals / max_evals).numpy()
    values = cell_values.astype(np.float32) if target is None else spread_to_pixels(cell_values, image.shape[:2])
    _, errors = mean_and_error(region_sums.numpy(), region_squares.numpy(), max_evals)
    return Attribution(
        values,
        np.asarray(base_probs, dtype=np.float64),
        max_evals + len(refs),
        used={"background_used": resolve_background(classifier, background), "layer_module": layer_name or "input"},
        extras={"layer_shape": list(x_space.shape[1:])},
        errors=errors.astype(np.float32),
        error_regions=regions,
    )


@register
class Gradient(PixelMethod):
    name = "gradient"
    title = "GradientSHAP (expected gradients)"
    summary = (
        "Gradients at random points between background references and the image, times the difference; "
        "optionally of an intermediate layer's input."
    )
    paper = (
        "Erion et al. 2021, Improving performance of deep learning models with axiomatic attribution priors "
        "and expected gradients (shap's GradientExplainer)"
    )
    params = PARAMS
    requires_gradients = True
    budget_meaning = "samples"
    default_budget = 64
    min_budget = 1
    max_budget = 2048
    smoke_budget = 8  # the registry smoke test runs it on VGG-16s too; 8 samples are 12 s there on 2 cores
    exactly_additive = False  # a Monte Carlo estimate of the path integral
    order = 70

    def attribute(
        self,
        classifier: Classifier,
        image: np.ndarray,
        classes: np.ndarray,
        budget: int,
        seed: int,
        progress: ProgressCallback | None,
        output: str = "probability",
        **params: Any,
    ) -> Attribution:
        return expected_gradients(classifier, image, classes, budget, seed, progress, output=output, **params)

    def hidden_image(self, explanation: Explanation, classifier: Classifier, features: np.ndarray) -> np.ndarray:
        return mean_reference(classifier, explanation)
